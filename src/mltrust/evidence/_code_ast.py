"""ML-specific dangerous-code rules over Python's ``ast`` (nothing is imported or run)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from mltrust.evidence import _rules
from mltrust.findings import Rule

__all__ = ["CodeHit", "analyse_source"]

_DESERIALIZERS = {
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "cPickle.load",
    "cPickle.loads",
    "_pickle.load",
    "_pickle.loads",
    "dill.load",
    "dill.loads",
    "cloudpickle.load",
    "cloudpickle.loads",
    "joblib.load",
    "sklearn.externals.joblib.load",
    "pandas.read_pickle",
    "shelve.open",
    "shelve.DbfilenameShelf",
    "jsonpickle.decode",
    "marshal.load",
    "marshal.loads",
    "dill.Unpickler",
    "cloudpickle.Unpickler",
    "torch.serialization.load",
}
_YAML_SAFE_LOADERS = ("SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader")
_CONTENT_CALLS = {
    "read",
    "read_text",
    "read_bytes",
    "readline",
    "readlines",
    "urlopen",
    "get",
    "post",
    "decode",
    "getvalue",
    "recv",
    "input",
}
_CONTENT_ATTRS = {
    "text",
    "content",
    "body",
    "data",
    "form",
    "args",
    "values",
    "json",
    "files",
    "params",
    "query_params",
    "cookies",
    "headers",
    "argv",
    "environ",
    "stdin",
}
_URI_WORDS = ("uri", "url", "path", "file", "model", "source", "src", "content")


@dataclass(frozen=True, slots=True)
class CodeHit:
    rule: Rule
    line: int
    message: str


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    head = aliases.get(node.id, node.id)
    return ".".join([head, *reversed(parts)])


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


class _Visitor(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.tainted: set[str] = set()
        self.hits: list[CodeHit] = []
        #: Every value assigned to each plain name anywhere in the file (for Loader=name).
        self.assigned: dict[str, list[ast.expr]] = {}
        #: Classes of this file and their base-class expressions.
        self.classes: dict[str, list[ast.expr]] = {}

    def prepare(self, tree: ast.AST) -> None:
        """Collect assignments and classes first, so a Loader defined below its use resolves."""
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.assigned.setdefault(target.id, []).append(node.value)
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = list(node.bases)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                self.visit(node)

    def _safe_loader(self, node: ast.expr | None, depth: int = 0) -> bool:
        """Whether a Loader expression can only be a safe PyYAML loader.

        Safe: SafeLoader/CSafeLoader/BaseLoader/CBaseLoader by name, a class of this file
        deriving only from safe loaders, ``getattr(yaml, "CSafeLoader", <safe>)``, a conditional
        of safe loaders, ``None`` (PyYAML then refuses to load), and a name every assignment of
        which in this file is safe. Anything else (a parameter, an attribute of an object, an
        unknown import) is not proven safe and stays a finding.
        """
        if node is None or depth > 8:
            return False
        if isinstance(node, ast.Constant):
            return node.value is None
        if isinstance(node, ast.IfExp):
            return self._safe_loader(node.body, depth + 1) and self._safe_loader(
                node.orelse, depth + 1
            )
        if isinstance(node, ast.Call):
            func = _dotted(node.func, self.aliases)
            args = node.args
            if (
                func in ("getattr", "builtins.getattr")
                and len(args) in (2, 3)
                and isinstance(args[1], ast.Constant)
                and str(args[1].value) in _YAML_SAFE_LOADERS
                and _dotted(args[0], self.aliases) == "yaml"
            ):
                return len(args) == 2 or self._safe_loader(args[2], depth + 1)
            return False
        name = _dotted(node, self.aliases)
        if name is None:
            return False
        if name.rsplit(".", 1)[-1] in _YAML_SAFE_LOADERS and (
            name.startswith("yaml.") or name in _YAML_SAFE_LOADERS
        ):
            return True
        if isinstance(node, ast.Name) and node.id not in self.aliases:
            if node.id in self.classes:
                bases = self.classes[node.id]
                return bool(bases) and all(self._safe_loader(b, depth + 1) for b in bases)
            values = self.assigned.get(node.id)
            if values:
                return all(self._safe_loader(v, depth + 1) for v in values)
        return False

    # -- imports -------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name.split(".")[0]] = (
                a.name if a.asname else a.name.split(".")[0]
            )

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module:
            for a in node.names:
                self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    # -- taint of names holding external content ----------------------------------------
    def _external(self, node: ast.AST) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                func = sub.func
                attr = (
                    func.attr
                    if isinstance(func, ast.Attribute)
                    else (func.id if isinstance(func, ast.Name) else "")
                )
                if attr in _CONTENT_CALLS or attr == "open":
                    return True
            elif (isinstance(sub, ast.Attribute) and sub.attr in _CONTENT_ATTRS) or (
                isinstance(sub, ast.Name) and self._tainted_name(sub.id)
            ):
                return True
        return False

    def _tainted_name(self, name: str) -> bool:
        return name in self.tainted or any(w in name.lower() for w in _URI_WORDS)

    def visit_Assign(self, node: ast.Assign) -> None:
        if self._external(node.value):
            for target in node.targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        self.tainted.add(sub.id)
        self.generic_visit(node)

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            if item.optional_vars is not None and self._external(item.context_expr):
                for sub in ast.walk(item.optional_vars):
                    if isinstance(sub, ast.Name):
                        self.tainted.add(sub.id)
        self.generic_visit(node)

    # -- calls ---------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func, self.aliases) or ""
        short = name.rsplit(".", 1)[-1]
        line = node.lineno
        if name in _DESERIALIZERS:
            family = name.split(".", 1)[0]
            self._hit(
                _rules.CODE_PICKLE_LOAD,
                line,
                f"{name}() deserializes with {family}, which can run code or crash the "
                "interpreter on crafted input",
            )
        elif name == "torch.load" and not _is_true(_kw(node, "weights_only")):
            self._hit(_rules.CODE_TORCH_LOAD, line, "torch.load() without weights_only=True")
        elif name in ("yaml.load", "yaml.load_all"):
            loader = _kw(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            loader_name = _dotted(loader, self.aliases) if loader is not None else None
            if not self._safe_loader(loader):
                self._hit(
                    _rules.CODE_YAML_LOAD,
                    line,
                    f"{name}() with Loader={loader_name or 'default/unknown'}",
                )
        elif name in ("yaml.unsafe_load", "yaml.unsafe_load_all"):
            self._hit(_rules.CODE_YAML_LOAD, line, f"{name}()")
        elif name in ("numpy.load", "np.load") and _is_true(_kw(node, "allow_pickle")):
            self._hit(_rules.CODE_NUMPY_PICKLE, line, "numpy.load(allow_pickle=True)")
        elif (
            name in ("eval", "exec", "builtins.eval", "builtins.exec")
            and node.args
            and self._external(node.args[0])
        ):
            self._hit(
                _rules.CODE_EVAL_CONTENT,
                line,
                f"{short}() of content read from a file, URI, request or response",
            )
        elif (
            name in ("eval", "exec", "builtins.eval", "builtins.exec")
            and node.args
            and not isinstance(node.args[0], ast.Constant)
        ):
            self._hit(_rules.CODE_EVAL_DYNAMIC, line, f"{short}() of a value built at run time")
        if short == "load_model" and _is_false(_kw(node, "safe_mode")):
            self._hit(_rules.CODE_KERAS_UNSAFE, line, f"{name}(safe_mode=False)")
        if _is_true(_kw(node, "trust_remote_code")):
            self._hit(_rules.CODE_REMOTE_CODE, line, f"{name or 'call'}(trust_remote_code=True)")
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if (
                isinstance(key, ast.Constant)
                and key.value == "trust_remote_code"
                and _is_true(value)
            ):
                self._hit(_rules.CODE_REMOTE_CODE, node.lineno, "trust_remote_code=True (dict)")
        self.generic_visit(node)

    def _hit(self, rule: Rule, line: int, message: str) -> None:
        self.hits.append(CodeHit(rule, line, message))


def analyse_source(source: str) -> Iterator[CodeHit]:
    """Findings of the ML rules in one Python source. Raises ``SyntaxError``/``ValueError``."""
    tree = ast.parse(source)
    visitor = _Visitor()
    visitor.prepare(tree)
    visitor.visit(tree)
    yield from visitor.hits
