"""ML-specific dangerous-code rules over Python's ``ast`` (nothing is imported or run).

Every callee, argument and base class is first resolved to *canonical dotted names* through one
per-module symbol table (:class:`_Symbols`), and the rule table runs on those names, never on
the text of the code. The table follows ``import``/``import as``/``from import``, assignments of
names and attributes, ``__import__``/``importlib.import_module`` of constant strings,
``getattr`` with a constant name, ``X.__dict__[...]``/``vars(X)[...]`` with a constant key and
``sys.modules[...]``. It is flow-insensitive: a name bound several times (in any scope) stands
for every value it is ever bound to, so a rebinding can only add findings.
"""

from __future__ import annotations

import ast
from collections import deque
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
#: The only PyYAML loaders that construct plain data (and only while the module leaves them be).
_YAML_SAFE = frozenset(
    {
        "yaml.SafeLoader",
        "yaml.CSafeLoader",
        "yaml.BaseLoader",
        "yaml.CBaseLoader",
        "yaml.loader.SafeLoader",
        "yaml.loader.BaseLoader",
        "yaml.cyaml.CSafeLoader",
        "yaml.cyaml.CBaseLoader",
    }
)
#: Modules most of whose namespace is a dangerous callable: an attribute of one chosen at run
#: time (``getattr(pickle, name)``) is a finding of the module's rule.
_DANGEROUS_MODULES = {
    "pickle": _rules.CODE_PICKLE_LOAD,
    "cPickle": _rules.CODE_PICKLE_LOAD,
    "_pickle": _rules.CODE_PICKLE_LOAD,
    "dill": _rules.CODE_PICKLE_LOAD,
    "cloudpickle": _rules.CODE_PICKLE_LOAD,
    "joblib": _rules.CODE_PICKLE_LOAD,
    "marshal": _rules.CODE_PICKLE_LOAD,
    "shelve": _rules.CODE_PICKLE_LOAD,
    "jsonpickle": _rules.CODE_PICKLE_LOAD,
    "torch.serialization": _rules.CODE_TORCH_LOAD,
    "yaml": _rules.CODE_YAML_LOAD,
    "builtins": _rules.CODE_EVAL_DYNAMIC,
}
#: Attribute names that are dangerous on a module chosen at run time (``__import__(name).loads``).
_DANGEROUS_ATTRS = frozenset(
    {"load", "loads", "Unpickler", "unsafe_load", "unsafe_load_all", "eval", "exec", "decode"}
)
_EVAL = frozenset({"eval", "exec", "builtins.eval", "builtins.exec"})
_DUNDER_IMPORT = frozenset({"__import__", "builtins.__import__", "importlib.__import__"})
_IMPORTERS = _DUNDER_IMPORT | {"importlib.import_module", "pkgutil.resolve_name"}
_GETATTR = frozenset({"getattr", "builtins.getattr"})
_VARS = frozenset({"vars", "builtins.vars"})
_SCOPES = frozenset({"globals", "locals", "builtins.globals", "builtins.locals"})
_PARTIAL = frozenset({"functools.partial", "functools.partialmethod"})
#: Spellings of one module under another name.
_MODULE_ALIASES = {"__builtins__": "builtins", "__builtin__": "builtins"}
#: A value nothing is known about (a parameter, a call result, a literal).
_UNKNOWN = "?"
#: A module chosen at run time (``__import__(name)``).
_DYNAMIC = "*"
#: ``None`` (a Loader of None makes PyYAML refuse to load).
_NONE = "<None>"
#: Prefix of a class defined in this module.
_CLASS = "<class>:"
#: Most names one expression may stand for; past it the name is unknown.
_MAX_CANDIDATES = 64
#: Fewest assignment evaluations allowed per module (see :meth:`_Symbols._propagate`).
_MAX_STEPS = 200_000
_CONSTRUCTOR_METHODS = frozenset({"add_constructor", "add_multi_constructor"})
#: Node types that bind a name, and those that may change a class or module attribute.
_BINDERS = frozenset(
    {
        ast.Import,
        ast.ImportFrom,
        ast.ClassDef,
        ast.FunctionDef,
        ast.AsyncFunctionDef,
        ast.Lambda,
        ast.Assign,
        ast.AnnAssign,
        ast.AugAssign,
        ast.NamedExpr,
        ast.For,
        ast.AsyncFor,
        ast.comprehension,
        ast.With,
        ast.AsyncWith,
        ast.ExceptHandler,
    }
)
_MUTATORS = frozenset({ast.Call, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete})
#: Calls that look at a callable without calling it.
_INSPECTORS = frozenset({"isinstance", "issubclass", "setattr", "hasattr", "id", "type", "repr"})
#: Where a callable is handed on to code the rules do not follow.
_HANDING_ON = (
    ast.keyword,
    ast.arguments,  # a default value: ``def f(d, load=pickle.loads)``
    ast.Return,
    ast.Yield,
    ast.YieldFrom,
    ast.Tuple,
    ast.List,
    ast.Set,
    ast.Dict,
    ast.Lambda,
    ast.Starred,
    ast.Await,
)
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


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _const_str(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _text(node: ast.AST) -> str:
    """The dotted text of a callee as written (for messages only, never for decisions)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([node.id, *reversed(parts)])


def _join(base: str, attr: str) -> str:
    return f"{base}.{attr}"


def _mentions(node: ast.AST) -> set[str]:
    """Names (``x``) and attribute names (``.x``) an expression mentions: what its value
    depends on in the symbol table."""
    out: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            name = _MODULE_ALIASES.get(sub.id, sub.id)
            out.update((name, "." + name))
        elif isinstance(sub, ast.Attribute):
            out.add("." + sub.attr)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and len(sub.value) < 200:
            out.add("." + sub.value)
    return out


def _bound_names(target: ast.expr) -> Iterator[ast.Name]:
    for sub in ast.walk(target):
        if isinstance(sub, ast.Name):
            yield sub


class _Symbols:
    """One module's symbol table: local name -> the canonical dotted names it may stand for.

    ``names``: a name's candidates (``?`` for a value that is not a known name or module, such
    as a parameter or a call result). ``attrs``: the same for attributes assigned anywhere
    (``yaml.SafeLoader = X``, ``self.f = pickle.loads``), keyed by the canonical name of the
    target. ``mutated``: canonical names (and local classes) whose constructors or attributes
    the module changes. ``classes``: the classes this module defines.
    """

    def __init__(self, nodes: list[ast.AST]) -> None:
        self.names: dict[str, set[str]] = {}
        self.attrs: dict[str, set[str]] = {}
        self.classes: dict[str, list[ast.ClassDef]] = {}
        self.star: list[str] = []
        self.mutated: set[str] = set()
        #: (line, name) of each change to a name under ``yaml``.
        self.yaml_patches: list[tuple[int, str]] = []
        self._pending: set[str] = set()
        #: (target expression, value expression) of every assignment, resolved in rounds.
        bindings: list[tuple[ast.expr, ast.expr | None]] = []
        for node in nodes:
            if type(node) not in _BINDERS:
                continue
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self._bind(a.asname, {a.name})
                    else:
                        top = a.name.split(".")[0]
                        self._bind(top, {top})
            elif isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                for a in node.names:
                    if a.name == "*":
                        self.star.append(module)
                    else:
                        self._bind(a.asname or a.name, {_join(module, a.name)})
            elif isinstance(node, ast.ClassDef):
                self.classes.setdefault(node.name, []).append(node)
                self._bind(node.name, {_CLASS + node.name})
                # ``class C: f = pickle.loads`` is also ``C.f`` and ``self.f``
                for stmt in node.body:
                    if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                        for target in targets:
                            if isinstance(target, ast.Name):
                                for owner in (_CLASS + node.name, _UNKNOWN):
                                    member = ast.Attribute(ast.Name(owner), target.id)
                                    bindings.append((member, stmt.value))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                if not isinstance(node, ast.Lambda):
                    self._bind(node.name, {_UNKNOWN})
                args = node.args
                for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                    self._bind(arg.arg, {_UNKNOWN})
                for arg_or_none in (args.vararg, args.kwarg):
                    if arg_or_none is not None:
                        self._bind(arg_or_none.arg, {_UNKNOWN})
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    self._pairs(target, node.value, bindings)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                value = node.value if not isinstance(node, ast.AugAssign) else None
                if isinstance(node, ast.AnnAssign) and value is None:
                    continue
                bindings.append((node.target, value))
            elif isinstance(node, ast.NamedExpr):
                bindings.append((node.target, node.value))
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                bindings.append((node.target, None))
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        bindings.append((item.optional_vars, None))
            elif isinstance(node, ast.ExceptHandler) and node.name:
                self._bind(node.name, {_UNKNOWN})
        self._propagate(bindings)
        for node in nodes:
            if type(node) in _MUTATORS:
                self._note_mutation(node)

    # -- building --------------------------------------------------------------------------
    def _propagate(self, bindings: list[tuple[ast.expr, ast.expr | None]]) -> None:
        """Bind every assignment until nothing changes.

        A worklist: an assignment is evaluated again only when a name or attribute name it
        mentions gained a candidate, so a chain of any length resolves in time linear in its
        size. Candidate sets only grow (and stop at :data:`_MAX_CANDIDATES`), so this ends;
        past :data:`_MAX_STEPS` evaluations it raises ``ValueError`` and the file is reported
        as not analysed rather than judged on a half-built table.
        """
        users: dict[str, list[int]] = {}
        for index, (target, value) in enumerate(bindings):
            mentioned = _mentions(target) | (_mentions(value) if value is not None else set())
            for key in mentioned:
                users.setdefault(key, []).append(index)
        # A name some assignment binds stands for nothing until that assignment is evaluated
        # (not for itself, which would make every chain grow to the candidate limit).
        self._pending = {t.id for t, _ in bindings if isinstance(t, ast.Name)}
        queued = [True] * len(bindings)
        queue = deque(range(len(bindings)))
        budget = max(_MAX_STEPS, 8 * len(bindings))
        while queue:
            budget -= 1
            if budget < 0:
                raise ValueError("too many interdependent assignments to resolve names")
            index = queue.popleft()
            queued[index] = False
            target, value = bindings[index]
            found = self.resolve(value) if value is not None else {_UNKNOWN}
            changed: list[str] = []
            if isinstance(target, ast.Name):
                if self._bind(target.id, found):
                    changed.append(target.id)
            elif isinstance(target, (ast.Attribute, ast.Subscript)):
                for key in self._target_keys(target):
                    if self._add(self.attrs, key, found):
                        changed.append("." + key.rsplit(".", 1)[-1])
            else:
                for name in _bound_names(target):
                    if self._bind(name.id, {_UNKNOWN}):
                        changed.append(name.id)
            for key in changed:
                for user in users.get(key, ()):
                    if not queued[user]:
                        queued[user] = True
                        queue.append(user)
        for pending in self._pending:
            if not self.names.get(pending):
                self.names[pending] = {_UNKNOWN}  # only bound in a cycle of names: unknown
        self._pending = set()

    @staticmethod
    def _pairs(
        target: ast.expr, value: ast.expr, out: list[tuple[ast.expr, ast.expr | None]]
    ) -> None:
        """``a, b = x, y`` binds pairwise; any other unpacking binds to an unknown value."""
        if isinstance(target, (ast.Tuple, ast.List)):
            if (
                isinstance(value, (ast.Tuple, ast.List))
                and len(value.elts) == len(target.elts)
                and not any(isinstance(e, ast.Starred) for e in (*target.elts, *value.elts))
            ):
                for t, v in zip(target.elts, value.elts, strict=True):
                    _Symbols._pairs(t, v, out)
                return
            out.append((target, None))
            return
        out.append((target, value))

    @staticmethod
    def _add(table: dict[str, set[str]], key: str, values: set[str]) -> bool:
        have = table.setdefault(key, set())
        if values <= have or len(have) > _MAX_CANDIDATES:
            return False
        have |= values
        return True

    def _bind(self, name: str, values: set[str]) -> bool:
        return self._add(self.names, name, values)

    def _target_keys(self, target: ast.Attribute | ast.Subscript) -> set[str]:
        """Canonical names an attribute (or constant-key subscript) target may be."""
        if isinstance(target, ast.Attribute):
            return {_join(b, target.attr) for b in self.resolve(target.value)}
        key = _const_str(target.slice)
        base = self.namespace(target.value)
        if key is None or base is None:
            return set()
        return {_join(b, key) for b in base}

    def _note_mutation(self, node: ast.AST) -> None:
        """Record loaders (or any class or module) whose constructors or attributes the module
        changes; a change under ``yaml`` is also kept with its line (:attr:`yaml_patches`),
        since it makes every module's "safe" loader unsafe, not only this one's."""
        touched: set[str] = set()
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in _CONSTRUCTOR_METHODS:
                touched |= self.resolve(func.value)
            callee = self.resolve(func)
            if callee & {"yaml.add_constructor", "yaml.add_multi_constructor"}:
                loader = _kw(node, "Loader") or (node.args[2] if len(node.args) > 2 else None)
                if loader is not None:
                    touched |= self.resolve(loader)
            if callee & {"setattr", "builtins.setattr", "delattr", "builtins.delattr"}:
                name = _const_str(node.args[1]) if len(node.args) > 1 else None
                for base in self.resolve(node.args[0]) if node.args else set():
                    touched.add(_join(base, name if name is not None else _DYNAMIC))
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                # ``L.yaml_constructors[tag] = f``, ``L.construct_x = f``, ``yaml.SafeLoader = X``
                inner = target
                while isinstance(inner, ast.Subscript):
                    inner = inner.value
                if isinstance(inner, ast.Attribute):
                    owners = self.resolve(inner.value)
                    touched |= owners | {_join(b, inner.attr) for b in owners}
        self.mutated |= touched
        patched = sorted(t for t in touched if t.startswith("yaml."))
        if patched:
            self.yaml_patches.append((getattr(node, "lineno", 0), patched[0]))

    # -- resolution ------------------------------------------------------------------------
    def _name(self, name: str) -> set[str]:
        name = _MODULE_ALIASES.get(name, name)
        found = self.names.get(name)
        if found:
            # A name also bound to something unknown (a parameter, ``pickle = lazy("pickle")``)
            # may still be what its spelling says.
            return found | {name} if _UNKNOWN in found else set(found)
        if name in self._pending:
            return set()
        out = {name}
        out.update(_join(m, name) for m in self.star)
        return out

    def namespace(self, node: ast.expr) -> set[str] | None:
        """Modules a mapping stands for: ``X.__dict__``, ``vars(X)``, ``__builtins__``,
        ``sys.modules`` (as the empty prefix); None when it is none of those."""
        if isinstance(node, ast.Name) and _MODULE_ALIASES.get(node.id) == "builtins":
            return {"builtins"}
        found = self.resolve(node)
        if "sys.modules" in found:
            return {""}
        # X.__dict__ and vars(X) (which resolves to X.__dict__), however they were reached
        out = {c.removesuffix(".__dict__") for c in found if c.endswith(".__dict__")}
        return out or None

    @staticmethod
    def _mapping_get(callee: set[str], args: list[ast.expr]) -> set[str] | None:
        """``sys.modules.get("pickle")``, ``vars(builtins).get("eval")``, ``X.__dict__.get``."""
        if not args:
            return None
        key = _const_str(args[0])
        out: set[str] = set()
        for name in callee:
            if not name.endswith(".get"):
                continue
            owner = name.removesuffix(".get")
            if owner == "sys.modules":
                out.add(key if key is not None else _DYNAMIC)
            elif owner.endswith(".__dict__"):
                out.add(_join(owner.removesuffix(".__dict__"), key or _DYNAMIC))
        return out or None

    def resolve(self, node: ast.AST, depth: int = 0) -> set[str]:
        """The canonical dotted names an expression may stand for (``?``: not a known name)."""
        if depth > 40:
            return {_UNKNOWN}
        out = self._resolve(node, depth)
        if len(out) > _MAX_CANDIDATES:
            return {_UNKNOWN}
        # An attribute or name the module assigns to also stands for what it was assigned.
        extra: set[str] = set()
        for name in out:
            extra |= self.attrs.get(name, set())
        return out | extra

    def _resolve(self, node: ast.AST, depth: int) -> set[str]:
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Attribute):
            # ``?.f`` (an attribute of an unknown object) still finds ``self.f = pickle.loads``
            return {_join(b, node.attr) for b in self.resolve(node.value, depth + 1)}
        if isinstance(node, ast.Constant):
            return {_NONE} if node.value is None else {_UNKNOWN}
        if isinstance(node, ast.IfExp):
            return self.resolve(node.body, depth + 1) | self.resolve(node.orelse, depth + 1)
        if isinstance(node, ast.BoolOp):
            out: set[str] = set()
            for value in node.values:
                out |= self.resolve(value, depth + 1)
            return out
        if isinstance(node, ast.NamedExpr):
            return self.resolve(node.value, depth + 1)
        if isinstance(node, ast.Subscript):
            key = _const_str(node.slice)
            scope = node.value
            if isinstance(scope, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
                # ``[pickle][0]``, ``{"f": pickle.loads}["f"]``: any element it may be
                elements = scope.values if isinstance(scope, ast.Dict) else scope.elts
                found: set[str] = set()
                for element in elements[:_MAX_CANDIDATES]:
                    found |= self.resolve(element, depth + 1)
                return found or {_UNKNOWN}
            if isinstance(scope, ast.Call) and self.resolve(scope.func, depth + 1) & _SCOPES:
                return self._name(key) if key is not None else {_UNKNOWN}
            base = self.namespace(node.value)
            if base is None:
                return {_UNKNOWN}
            if key is None:
                return {_join(b, _DYNAMIC) if b else _DYNAMIC for b in base}
            return {_join(b, key) if b else key for b in base}
        if isinstance(node, ast.Call):
            callee = self.resolve(node.func, depth + 1)
            args = node.args
            if callee & _GETATTR and len(args) in (2, 3):
                name = _const_str(args[1])
                out = {
                    (_join(b, name if name is not None else _DYNAMIC) if b != _UNKNOWN else b)
                    for b in self.resolve(args[0], depth + 1)
                }
                if len(args) == 3:
                    out |= self.resolve(args[2], depth + 1)
                return out
            if callee & _VARS and args:
                return {_join(b, "__dict__") for b in self.resolve(args[0], depth + 1)}
            mapped = self._mapping_get(callee, args)
            if mapped is not None:
                return mapped
            if callee & _IMPORTERS and args:
                name = _const_str(args[0])
                if name is None or name.startswith("."):
                    return {_DYNAMIC}
                if callee & _DUNDER_IMPORT:
                    return {name.split(".")[0]}
                return {name.replace(":", ".")}  # pkgutil.resolve_name("pickle:loads")
            if (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in ("__getattribute__", "__getattr__")
                and len(args) == 1
            ):
                name = _const_str(args[0])
                return {
                    _join(b, name if name is not None else _DYNAMIC)
                    for b in self.resolve(node.func.value, depth + 1)
                }
            return {_UNKNOWN}
        return {_UNKNOWN}

    def is_mutated(self, name: str) -> bool:
        """Whether the module rebinds ``name``, changes its constructors or attributes, or
        sets an attribute chosen at run time on its module. Any such change to a ``yaml.``
        name counts for every yaml name: loaders share constructor tables with their bases."""
        if name in self.mutated or _join(name.rsplit(".", 1)[0], _DYNAMIC) in self.mutated:
            return True
        return name.startswith("yaml.") and any(
            m == "yaml" or m.startswith("yaml.") for m in self.mutated
        )


def _index(tree: ast.AST) -> tuple[list[ast.AST], dict[int, ast.AST], set[int]]:
    """One walk of the tree: every node, each node's parent, and the nodes inside annotations
    (a type is named there, nothing is called)."""
    nodes: list[ast.AST] = []
    parents: dict[int, ast.AST] = {}
    roots: list[ast.AST] = []
    todo: deque[ast.AST] = deque([tree])
    while todo:
        node = todo.popleft()
        nodes.append(node)
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
            todo.append(child)
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return nodes, parents, {id(sub) for root in roots for sub in ast.walk(root)}


class _Visitor(ast.NodeVisitor):
    def __init__(self, tree: ast.AST) -> None:
        nodes, self.parents, self.annotations = _index(tree)
        self.symbols = _Symbols(nodes)
        self.tainted: set[str] = set()
        self.hits: list[CodeHit] = []
        self._seen: set[tuple[str, int]] = set()

    # -- yaml loaders ----------------------------------------------------------------------
    def _safe_loader(self, node: ast.expr | None) -> bool:
        """Whether a Loader expression can only be a safe PyYAML loader.

        Every name the expression may stand for (through the symbol table, never by its
        text) must be the real ``yaml.SafeLoader``/``CSafeLoader``/``BaseLoader``/
        ``CBaseLoader`` that this module never rebinds or gives constructors to, ``None``
        (PyYAML then refuses to load), or a class of this module that is itself safe
        (:meth:`_safe_class`). A parameter, a call result, an attribute of an object or a class
        imported from elsewhere is not proven safe and stays a finding.
        """
        if node is None:
            return False
        return self._safe_names(self.symbols.resolve(node), 0)

    def _safe_names(self, names: set[str], depth: int) -> bool:
        if not names or depth > 8:
            return False
        for name in names:
            if name == _NONE:
                continue
            if name.startswith(_CLASS):
                if not self._safe_class(name.removeprefix(_CLASS), depth + 1):
                    return False
                continue
            if name not in _YAML_SAFE or self.symbols.is_mutated(name):
                return False
        return True

    def _safe_class(self, name: str, depth: int) -> bool:
        """A class of this module is a safe loader only when every definition of it derives
        only from safe loaders, has no metaclass or keywords, a body of nothing but a
        docstring or ``pass``, and the module never adds constructors to it or assigns to its
        attributes. Conservative on purpose: anything else a class body does can change what
        the loader constructs."""
        if self.symbols.is_mutated(_CLASS + name):
            return False
        for cls in self.symbols.classes.get(name, []):
            if not cls.bases or cls.keywords or cls.decorator_list:
                return False
            for stmt in cls.body:
                if isinstance(stmt, ast.Pass):
                    continue
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    continue
                return False
            for base in cls.bases:
                if not self._safe_names(self.symbols.resolve(base), depth + 1):
                    return False
        return bool(self.symbols.classes.get(name))

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
        callee = self.symbols.resolve(node.func)
        for name in sorted(callee):
            self._check_call(node, name, node.args, node.keywords)
        line = node.lineno
        if callee & _PARTIAL and node.args:
            # functools.partial(f, *a, **kw) is f called later with a and kw: judged here.
            for name in sorted(self.symbols.resolve(node.args[0])):
                self._check_call(node, name, node.args[1:], node.keywords, bound=True)
        # getattr(pickle, name), pickle.__getattribute__(name), vars(pickle).get(name)
        produced = self.symbols.resolve(node)
        owners = {c.removesuffix("." + _DYNAMIC) for c in produced if c.endswith("." + _DYNAMIC)}
        self._dynamic_attribute(owners, line, "getattr")
        if callee & (_DUNDER_IMPORT | {"pkgutil.resolve_name"}) and (
            not node.args or _const_str(node.args[0]) is None
        ):
            self._hit(
                _rules.CODE_EVAL_DYNAMIC,
                line,
                f"{_text(node.func) or '__import__'}() of a name built at run time (dynamic): any "
                "module can be imported and called",
            )
        shown = _text(node.func) or next((c for c in sorted(callee) if c != _UNKNOWN), "")
        shorts = {c.rsplit(".", 1)[-1] for c in callee} | {shown.rsplit(".", 1)[-1]}
        if "load_model" in shorts and _is_false(_kw(node, "safe_mode")):
            self._hit(_rules.CODE_KERAS_UNSAFE, line, f"{shown}(safe_mode=False)")
        if _is_true(_kw(node, "trust_remote_code")):
            self._hit(_rules.CODE_REMOTE_CODE, line, f"{shown or 'call'}(trust_remote_code=True)")
        self._value_use(node)  # map(getattr(pickle, "loads"), xs)
        self.generic_visit(node)

    def _check_call(
        self,
        node: ast.Call,
        name: str,
        args: list[ast.expr],
        keywords: list[ast.keyword],
        *,
        bound: bool = False,
    ) -> None:
        """The rule table, on one canonical callee name."""
        line = node.lineno
        how = " (through functools.partial)" if bound else ""
        short = name.rsplit(".", 1)[-1]
        call = ast.Call(func=node.func, args=args, keywords=keywords)
        if name in _DESERIALIZERS:
            family = name.split(".", 1)[0]
            self._hit(
                _rules.CODE_PICKLE_LOAD,
                line,
                f"{name}(){how} deserializes with {family}, which can run code or crash the "
                "interpreter on crafted input",
            )
        elif name == "torch.load" and not _is_true(_kw(call, "weights_only")):
            self._hit(_rules.CODE_TORCH_LOAD, line, f"torch.load() without weights_only=True{how}")
        elif name in ("yaml.load", "yaml.load_all"):
            loader = _kw(call, "Loader") or (args[1] if len(args) > 1 else None)
            if not self._safe_loader(loader):
                shown = sorted(self.symbols.resolve(loader)) if loader is not None else []
                text = ", ".join(s for s in shown if s != _UNKNOWN) or "default/unknown"
                self._hit(_rules.CODE_YAML_LOAD, line, f"{name}(){how} with Loader={text}")
        elif name in ("yaml.unsafe_load", "yaml.unsafe_load_all"):
            self._hit(_rules.CODE_YAML_LOAD, line, f"{name}(){how}")
        elif name in ("numpy.load", "np.load") and _is_true(_kw(call, "allow_pickle")):
            self._hit(_rules.CODE_NUMPY_PICKLE, line, f"numpy.load(allow_pickle=True){how}")
        elif name in _EVAL and args and self._external(args[0]):
            self._hit(
                _rules.CODE_EVAL_CONTENT,
                line,
                f"{short}(){how} of content read from a file, URI, request or response",
            )
        elif name in _EVAL and (bound or (args and not isinstance(args[0], ast.Constant))):
            self._hit(
                _rules.CODE_EVAL_DYNAMIC, line, f"{short}(){how} of a value built at run time"
            )
        elif name.startswith(_DYNAMIC + ".") and short in _DANGEROUS_ATTRS:
            rule = _rules.CODE_PICKLE_LOAD
            if short in ("eval", "exec"):
                rule = _rules.CODE_EVAL_DYNAMIC
            self._hit(rule, line, f"{short}(){how} of a module chosen at run time (dynamic)")

    def _dynamic_attribute(self, modules: set[str], line: int, how: str) -> None:
        """``getattr(pickle, name)``, ``vars(builtins)[name]``: fail closed on a dangerous
        module."""
        for module in sorted(modules):
            rule = _DANGEROUS_MODULES.get(module)
            if rule is not None:
                self._hit(
                    rule,
                    line,
                    f"{how}({module}, <name>): an attribute of {module} chosen at run time "
                    "(dynamic)",
                )

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Load) and _const_str(node.slice) is None:
            # X.__dict__[name], vars(X)[name] (sys.modules[name] is judged where it is used)
            base = self.symbols.namespace(node.value)
            if base:
                self._dynamic_attribute(base, node.lineno, "vars")
        self._value_use(node)
        self.generic_visit(node)

    # -- dangerous callables handed on as values ---------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._value_use(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load):
            self._value_use(node)
        self.generic_visit(node)

    def _value_use(self, node: ast.expr) -> None:
        """A dangerous callable passed, returned or stored where it is not followed (``map(
        pickle.loads, xs)``, ``return torch.load``): a finding where it is handed on."""
        if id(node) in self.annotations or not self._handed_on(node):
            return
        for name in sorted(self.symbols.resolve(node)):
            rule: Rule | None = None
            if name in _DESERIALIZERS:
                rule = _rules.CODE_PICKLE_LOAD
            elif name in ("torch.load", "yaml.unsafe_load", "yaml.unsafe_load_all"):
                rule = _rules.CODE_TORCH_LOAD if name == "torch.load" else _rules.CODE_YAML_LOAD
            elif name in _EVAL:
                rule = _rules.CODE_EVAL_DYNAMIC
            if rule is not None:
                self._hit(
                    rule,
                    node.lineno,
                    f"{name} handed on as a value: how it is called later is not checked",
                )
                return

    def _handed_on(self, node: ast.expr) -> bool:
        """Whether a name is used as a value (not called, bound to a name the table follows,
        a base class, compared, or part of a longer dotted name)."""
        child: ast.AST = node
        parent = self.parents.get(id(node))
        while isinstance(parent, (ast.IfExp, ast.BoolOp)) and child is not getattr(
            parent, "test", None
        ):
            child, parent = parent, self.parents.get(id(parent))
        if parent is None:
            return False
        if isinstance(parent, ast.Call):
            if child is parent.func:
                return False
            callee = self.symbols.resolve(parent.func)
            if parent.args and child is parent.args[0] and callee & (_GETATTR | _VARS | _PARTIAL):
                return False
            return not callee & _INSPECTORS
        if isinstance(parent, (ast.Attribute, ast.Subscript)):
            return parent.value is not child if isinstance(parent, ast.Subscript) else False
        if isinstance(parent, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
            return False
        return isinstance(parent, _HANDING_ON)

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
        if (rule.id, line) in self._seen:
            return
        self._seen.add((rule.id, line))
        self.hits.append(CodeHit(rule, line, message))


def analyse_source(source: str) -> Iterator[CodeHit]:
    """Findings of the ML rules in one Python source. Raises ``SyntaxError``/``ValueError``."""
    tree = ast.parse(source)
    visitor = _Visitor(tree)
    visitor.visit(tree)
    for line, name in visitor.symbols.yaml_patches:
        visitor._hit(
            _rules.CODE_YAML_LOAD,
            line,
            f"{name} is changed at run time (rebound, or given constructors): a yaml loader "
            "trusted as safe anywhere in the process may no longer be",
        )
    yield from visitor.hits
