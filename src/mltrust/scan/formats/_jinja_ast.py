"""Jinja chat templates analysed on the parse tree that Jinja itself builds.

A textual search for ``__class__`` misses names that are built while the template renders:
``'__cla' ~ 'ss__'``, ``'__ssalc__'|reverse``, ``'%c'|format(95)``, ``['__cla','ss__']|join``,
a ``{% set %}`` variable assigned from such an expression, ``dict(__class__=1)|first``... This
module parses the template with Jinja's own parser (a :class:`~jinja2.sandbox.SandboxedEnvironment`
with the extensions Hugging Face's renderer enables; nothing is rendered) and applies the
sandbox's own rule to every way a template can reach an attribute: a name starting with ``_``
(or one of the sandbox's unsafe frame/code attributes, or ``mro``) is an escape.

Every attribute reach is checked: ``x.name``, ``x['name']`` (Jinja falls back from item to
attribute), ``|attr(...)``, ``attribute=`` of ``map``/``selectattr``/``sort``/``groupby``/...,
``map('attr', ...)``, ``str.format`` fields. Names are folded where the template computes them
from its own literals (concatenation, ``~``, ``+``, ``*``, ``%``, ``format``, ``join``,
``reverse``, ``replace``, ``lower``/``upper``, indexing and slicing, ``{% set %}``, macro
arguments). A name that cannot be folded is reported too unless it is computed only from the
render-time data (``messages``, ``tools``: values the template's user supplies, not the
template) and numbers: a string literal, template text, a macro (its name, ``caller()``), a
Jinja global, ``loop.cycle``, a list the template fills with ``append``... could build any name
(red-team findings).

What is not checked: templates that do not parse (the renderer rejects them too; the textual
check in :mod:`._jinja` still runs), ``{% include %}``/``{% import %}`` of other templates (no
loader is configured by chat renderers), and denial of service by rendering cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from mltrust.config import DEFAULT_LIMITS
from mltrust.findings import Severity

__all__ = ["ast_hazards"]

_STRING_FILTERS = {"lower", "upper", "reverse", "replace", "trim", "string", "capitalize", "title"}
_ATTRIBUTE_FILTERS = {
    "map",
    "selectattr",
    "rejectattr",
    "sort",
    "groupby",
    "sum",
    "unique",
    "min",
    "max",
    "join",
}
#: Jinja globals whose own attributes lead into Python internals.
_GLOBAL_OBJECTS = {"lipsum", "cycler", "joiner", "namespace", "range", "dict", "self"}
#: Methods that change a list, dict or set in place (their arguments become its values).
_MUTATORS = frozenset({"append", "extend", "insert", "update", "setdefault", "add", "__setitem__"})
#: Methods of the types render-time data and numbers have: reached without a call, they are
#: bound methods whose text (``<built-in method bit_length of int object...>``) is Python's.
_METHOD_NAMES = frozenset(
    name
    for t in (str, bytes, int, float, bool, list, tuple, dict, set, type(None))
    for name in dir(t)
    if not name.startswith("_") and name not in ("real", "imag", "numerator", "denominator")
)
#: ``loop`` attributes that are numbers or booleans (the others return template values).
_LOOP_NUMBERS = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length", "depth", "depth0"}
)
#: Render variables whose values come from the model's own files, not the user: the special
#: tokens (transformers passes ``special_tokens_map`` and ``extra_special_tokens``; llama.cpp
#: servers the GGUF vocabulary's bos/eos) and the renderers' helper functions.
_ARTIFACT_NAMES = frozenset({"raise_exception", "strftime_now", "additional_special_tokens"})


def _artifact_value(name: str) -> bool:
    return name in _ARTIFACT_NAMES or name.endswith(("_token", "_tokens"))


#: Names the template's user provides at render time (anything not assigned in the template).
_UNSAFE_EXTRA = {"mro", "format_map", "func_globals", "f_globals", "f_locals", "f_builtins"}


def _environment() -> Any:
    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _Generation(Extension):
        """Parses ``{% generation %}...{% endgeneration %}`` (Hugging Face's extension)."""

        tags = {"generation"}  # noqa: RUF012 (Jinja's interface)

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    return ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_Generation, "jinja2.ext.loopcontrols", "jinja2.ext.do"],
    )


def _unsafe(name: str) -> Severity | None:
    from jinja2 import sandbox

    internal = (
        sandbox.UNSAFE_GENERATOR_ATTRIBUTES
        | sandbox.UNSAFE_COROUTINE_ATTRIBUTES
        | sandbox.UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
    )
    if "__" in name or name in internal or name in _UNSAFE_EXTRA:
        return Severity.CRITICAL
    if name.startswith("_"):
        return Severity.HIGH
    return None


class _Analyser:
    def __init__(self, tree: Any) -> None:
        from jinja2 import nodes

        self.nodes = nodes
        self.tree = tree
        self.assigned: dict[str, list[Any]] = {}
        #: Names the template binds to values this analyser does not model (macros, their
        #: ``caller``/``varargs``/``kwargs``, parameters of a macro used other than by a
        #: direct call): never render-time data, never folded.
        self.opaque: set[str] = set()
        #: Names whose value is changed in place (``x.append(...)``): never folded.
        self.mutated: set[str] = set()
        for node in tree.find_all((nodes.Assign, nodes.For, nodes.AssignBlock, nodes.With)):
            self._record(node)
        self._record_macros(tree)
        self._record_mutations(tree)
        self.hazards: list[tuple[Severity, str]] = []

    # -- what names hold -----------------------------------------------------------------------
    def _record(self, node: Any) -> None:
        n = self.nodes
        if isinstance(node, n.Assign | n.For):
            self._bind(node.target, node.node if isinstance(node, n.Assign) else node.iter)
        elif isinstance(node, n.AssignBlock):
            # ``{% set x %}...{% endset %}``: the block's text (red-team finding: a bare name
            # target was not recorded, so the block's value passed for render-time data).
            self._bind(node.target, n.List(node.body))
        elif isinstance(node, n.With):
            for target, value in zip(node.targets, node.values, strict=False):
                self._bind(target, value)

    def _bind(self, target: Any, value: Any) -> None:
        n = self.nodes
        names = [target] if isinstance(target, n.Name) else list(target.find_all(n.Name))
        for name in names:
            self.assigned.setdefault(name.name, []).append(value)
        if isinstance(target, n.NSRef):
            self.assigned.setdefault(f"{target.name}.{target.attr}", []).append(value)

    def _record_macros(self, tree: Any) -> None:
        """Macro names, their parameters (defaults and the arguments of every direct call) and
        the names Jinja binds inside macros (red-team finding: ``a_b.name[1]`` is ``'_'``,
        and a macro-bound name passed for render-time data)."""
        n = self.nodes
        macros = {m.name: m for m in tree.find_all(n.Macro)}
        if not macros and not any(True for _ in tree.find_all(n.CallBlock)):
            return
        self.opaque.update(("caller", "varargs", "kwargs"))
        self.opaque.update(macros)
        callees: set[int] = set()
        for call in tree.find_all(n.Call):
            if not (isinstance(call.node, n.Name) and call.node.name in macros):
                continue
            callees.add(id(call.node))
            macro = macros[call.node.name]
            params = [a.name for a in macro.args]
            if call.dyn_args is not None or call.dyn_kwargs is not None:
                self.opaque.update(params)
            for name, value in zip(params, call.args, strict=False):
                self.assigned.setdefault(name, []).append(value)
            for kw in call.kwargs:
                self.assigned.setdefault(kw.key, []).append(kw.value)
        for name, macro in macros.items():
            params = [a.name for a in macro.args]
            with_default = params[len(params) - len(macro.defaults) :]
            for arg, default in zip(with_default, macro.defaults, strict=True):
                self.assigned.setdefault(arg, []).append(default)
            escaped = any(
                use.name == name and id(use) not in callees for use in tree.find_all(n.Name)
            )
            if escaped:  # called through another name: its arguments are not all seen
                self.opaque.update(params)
        for block in tree.find_all(n.CallBlock):
            self.opaque.update(a.name for a in block.args)

    def _record_mutations(self, tree: Any) -> None:
        """``x.append(v)``, ``x.update(d)``...: ``v`` becomes one of ``x``'s values and ``x`` is
        no longer folded (red-team finding: ``[]`` folded to no values, so ``x[0]`` built from
        an appended ``'_'`` was never judged)."""
        n = self.nodes
        for call in tree.find_all(n.Call):
            target = call.node
            if not (isinstance(target, n.Getattr) and isinstance(target.node, n.Name)):
                continue
            name = target.node.name
            if target.attr in _MUTATORS:
                self.mutated.add(name)
                values = [*call.args, *(kw.value for kw in call.kwargs)]
                values += [v for v in (call.dyn_args, call.dyn_kwargs) if v is not None]
                self.assigned.setdefault(name, []).extend(values)

    def render_data(self, expr: Any, seen: frozenset[str] = frozenset()) -> bool:
        """Whether ``expr`` is computed only from render-time data (``messages``, ``tools``:
        values the template's user supplies) and numbers, by operations that add nothing of
        the template's own: then a name it computes is the user's, not a template hazard.
        Anything else (a string literal, template text, a macro, a Jinja global, a value
        this analyser does not model) could build any name."""
        n = self.nodes
        pure = self.render_data
        if isinstance(expr, n.Const):
            return expr.value is None or isinstance(expr.value, (bool, int, float))
        if isinstance(expr, n.Name):
            name = expr.name
            if name in seen:
                return True
            if name in self.opaque or name in _GLOBAL_OBJECTS:
                return False
            if name == "loop":
                return False  # loop.cycle(...), loop.previtem: template values
            values = self.assigned.get(name)
            if values is None:
                # Not bound by the template: render-time data, except the values renderers
                # take from the artifact itself (red-team finding: bos_token "_" and
                # eos_token "globals" defined next to the template built "__globals__").
                return not _artifact_value(name)
            return all(pure(v, seen | {name}) for v in values)
        if isinstance(expr, n.Getattr):
            base = expr.node
            if isinstance(base, n.Name) and base.name == "loop":
                return expr.attr in _LOOP_NUMBERS
            if expr.attr in _METHOD_NAMES:
                # A bound method (not called): its text is Python's, chosen by the template
                # (red-team finding: ``((0).bit_length|string)[20]`` is ``'_'``).
                return False
            if isinstance(base, n.Name) and self._is_namespace(base.name):
                key = f"{base.name}.{expr.attr}"
                if key in seen:
                    return True
                values = [*self.assigned.get(key, []), *self._namespace_args(base.name, expr.attr)]
                return all(pure(v, seen | {key}) for v in values)
            return pure(base, seen)
        if isinstance(expr, n.Getitem):
            arg = expr.arg
            if isinstance(arg, n.Slice):
                parts = [p for p in (arg.start, arg.stop, arg.step) if p is not None]
                return pure(expr.node, seen) and all(pure(p, seen) for p in parts)
            keys = self.fold(arg)
            if keys is not None and any(k in _METHOD_NAMES for k in keys if isinstance(k, str)):
                return False  # ``x['bit_length']``: Jinja falls back to the bound method
            key_ok = keys is not None or pure(arg, seen)
            return pure(expr.node, seen) and key_ok
        if isinstance(expr, n.Filter | n.Test):
            if expr.node is not None and not pure(expr.node, seen):
                return False
            return self._pure_args(expr, seen)
        if isinstance(expr, n.Call):
            callee = expr.node
            if isinstance(callee, n.Name):
                if callee.name != "range":
                    return False  # a macro or a global function: its text is the template's
            elif isinstance(callee, n.Getattr):  # a method of render-time data, called
                if callee.attr in _UNSAFE_EXTRA or not pure(callee.node, seen):
                    return False
            elif not pure(callee, seen):
                return False
            return self._pure_args(expr, seen)
        if isinstance(expr, n.CondExpr):
            return pure(expr.expr1, seen) and (expr.expr2 is None or pure(expr.expr2, seen))
        if isinstance(expr, n.BinExpr | n.Compare | n.Concat | n.UnaryExpr | n.List | n.Tuple):
            return all(pure(child, seen) for child in expr.iter_child_nodes())
        if isinstance(expr, n.Operand):
            return pure(expr.expr, seen)
        if isinstance(expr, n.Dict):
            # ``{"type": t}``: keys are the template's, but plain words without ``_`` cannot
            # be sliced or joined into a dunder; the values decide.
            return all(
                isinstance(pair.key, n.Const)
                and isinstance(pair.key.value, str)
                and pair.key.value.isalnum()
                and pure(pair.value, seen)
                for pair in expr.items
            )
        return False

    def _pure_args(self, node: Any, seen: frozenset[str]) -> bool:
        args = [*node.args, *(kw.value for kw in node.kwargs)]
        args += [v for v in (node.dyn_args, node.dyn_kwargs) if v is not None]
        return all(self.render_data(a, seen) for a in args)

    def _is_namespace(self, name: str) -> bool:
        n = self.nodes
        values = self.assigned.get(name, [])
        return bool(values) and all(
            isinstance(v, n.Call) and isinstance(v.node, n.Name) and v.node.name == "namespace"
            for v in values
        )

    def _namespace_args(self, name: str, attr: str) -> list[Any]:
        return [kw.value for v in self.assigned.get(name, []) for kw in v.kwargs if kw.key == attr]

    def fold(self, expr: Any, seen: frozenset[str] = frozenset()) -> set[Any] | None:
        """The values ``expr`` can take when computed from literals, or None if unknown."""
        n = self.nodes
        if isinstance(expr, n.Const):
            return {expr.value}
        if isinstance(expr, n.Name):
            values = self.assigned.get(expr.name)
            if not values or expr.name in seen or expr.name in self.mutated | self.opaque:
                return None
            return self._union(self.fold(v, seen | {expr.name}) for v in values)
        if isinstance(expr, n.CondExpr):
            return self._union([self.fold(expr.expr1, seen), self.fold(expr.expr2, seen)])
        if isinstance(expr, n.Concat):
            parts = [self.fold(p, seen) for p in expr.nodes]
            return self._product(parts, lambda *xs: "".join(str(x) for x in xs))
        if isinstance(expr, n.Add | n.Mul | n.Mod):
            left, right = self.fold(expr.left, seen), self.fold(expr.right, seen)

            def apply(a: Any, b: Any) -> Any:
                if isinstance(expr, n.Add):
                    return a + b
                if isinstance(expr, n.Mul):
                    if isinstance(a, str) and isinstance(b, int) and 0 <= b <= 64:
                        return a * b
                    if isinstance(b, str) and isinstance(a, int) and 0 <= a <= 64:
                        return a * b
                    raise TypeError
                return a % b

            return self._product([left, right], apply)
        if isinstance(expr, n.List | n.Tuple):
            parts = [self.fold(i, seen) for i in expr.items]
            return self._product(parts, lambda *xs: tuple(xs))
        if isinstance(expr, n.Getitem):
            return self._product(
                [self.fold(expr.node, seen), self._fold_subscript(expr.arg, seen)],
                lambda a, b: (
                    a[slice(*b[1:])] if isinstance(b, tuple) and b[:1] == ("slice",) else a[b]
                ),
            )
        if isinstance(expr, n.Neg | n.Pos):
            sign = -1 if isinstance(expr, n.Neg) else 1
            return self._product([self.fold(expr.node, seen)], lambda a: sign * a)
        if isinstance(expr, n.Filter) and expr.node is not None:
            return self._fold_call(expr.name, expr.node, expr.args, seen, method=False)
        if isinstance(expr, n.Call) and isinstance(expr.node, n.Getattr):
            return self._fold_call(expr.node.attr, expr.node.node, expr.args, seen, method=True)
        return None

    def _fold_subscript(self, arg: Any, seen: frozenset[str]) -> set[Any] | None:
        """Folded subscripts; slices as ``("slice", start, stop, step)`` (slices are unhashable
        before Python 3.12)."""
        n = self.nodes
        if isinstance(arg, n.Slice):
            bounds = [
                {None} if part is None else self.fold(part, seen)
                for part in (arg.start, arg.stop, arg.step)
            ]
            return self._product(bounds, lambda *xs: ("slice", *xs))
        return self.fold(arg, seen)

    def _fold_call(
        self, name: str, node: Any, args: list[Any], seen: frozenset[str], *, method: bool
    ) -> set[Any] | None:
        base = self.fold(node, seen)
        folded = [self.fold(a, seen) for a in args]

        def apply(value: Any, *xs: Any) -> Any:
            if name == "join" and method:
                return str(value).join(str(v) for v in xs[0])
            if name == "join":
                return (xs[0] if xs else "").join(str(v) for v in value)
            if name == "format":
                return value.format(*xs) if method else value % xs
            if name == "reverse":
                return value[::-1]
            if name in ("string", "trim"):
                return str(value).strip() if name == "trim" else str(value)
            if name in _STRING_FILTERS or name in ("lower", "upper"):
                return getattr(value, name)(*xs)
            raise TypeError

        if name not in _STRING_FILTERS | {"join", "format"}:
            return None
        return self._product([base, *folded], apply)

    @staticmethod
    def _union(parts: Iterator[set[Any] | None] | list[set[Any] | None]) -> set[Any] | None:
        out: set[Any] = set()
        for part in parts:
            if part is None:
                return None
            out |= part
            if len(out) > DEFAULT_LIMITS.max_jinja_values:
                return None
        return out

    @staticmethod
    def _product(parts: list[set[Any] | None], fn: Any) -> set[Any] | None:
        if any(p is None for p in parts):
            return None
        out: set[Any] = set()
        most = DEFAULT_LIMITS.max_jinja_values
        for combo in itertools.islice(itertools.product(*parts), most * 4):  # type: ignore[arg-type]
            try:
                value = fn(*combo)
                hash(value)
            except Exception:  # noqa: BLE001 (the model of the value is wrong: unknown)
                # Red-team finding: failed folds gave "no values", so ``x[0]`` of a list the
                # template fills with ``append`` was never judged.
                return None
            out.add(value)
            if len(out) > DEFAULT_LIMITS.max_jinja_values:
                return None
        return out

    # -- checks ------------------------------------------------------------------------------
    def report(self, severity: Severity, what: str) -> None:
        self.hazards.append((severity, what))

    def check_name(self, expr: Any, how: str) -> None:
        """A computed attribute name: folded and judged, or reported if built from literals."""
        values = self.fold(expr)
        if values is None:
            if not self.render_data(expr):
                self.report(Severity.HIGH, f"builds an attribute name at render time ({how})")
            return
        for value in values:
            if not isinstance(value, str):
                continue
            for part in value.split("."):
                sev = _unsafe(part)
                if sev is not None:
                    self.report(sev, f"reaches {part!r} ({how})")

    def run(self) -> list[tuple[Severity, str]]:
        n = self.nodes
        for node in self.tree.find_all(
            (
                n.Getattr,
                n.Getitem,
                n.Filter,
                n.Call,
                n.Keyword,
                n.Import,
                n.FromImport,
                n.Include,
                n.Extends,
            )
        ):
            if isinstance(node, n.Getattr):
                sev = _unsafe(node.attr)
                if sev is not None:
                    self.report(sev, f"reaches attribute {node.attr!r}")
                if isinstance(node.node, n.Name) and node.node.name in _GLOBAL_OBJECTS:
                    self.report(
                        Severity.HIGH, f"takes attributes of the Jinja global {node.node.name!r}"
                    )
                if node.attr == "format":
                    self._check_format(node.node)
            elif isinstance(node, n.Getitem):
                if not isinstance(node.arg, n.Slice):
                    self.check_name(node.arg, "subscript")
            elif isinstance(node, n.Filter | n.Call):
                self._check_filter_or_call(node)
            elif isinstance(node, n.Keyword):
                sev = _unsafe(node.key)
                if sev is not None:
                    self.report(sev, f"passes the keyword {node.key!r} (builds the name as data)")
            else:
                self.report(Severity.MEDIUM, "imports another template")
        return self.hazards

    def _check_filter_or_call(self, node: Any) -> None:
        n = self.nodes
        name = node.name if isinstance(node, n.Filter) else None
        if name == "attr" and node.args:
            self.report(Severity.HIGH, "uses the |attr() filter (computed attribute access)")
            self.check_name(node.args[0], "|attr()")
        if (
            name == "map"
            and len(node.args) > 1
            and isinstance(node.args[0], n.Const)
            and node.args[0].value == "attr"
        ):
            self.check_name(node.args[1], "map('attr')")
        if name in _ATTRIBUTE_FILTERS or name is None:
            for kw in node.kwargs:
                if kw.key == "attribute":
                    self.check_name(kw.value, f"{name or 'call'}(attribute=)")
        if name in ("format",) and node.node is not None:
            self._check_format(node.node)

    def _check_format(self, template: Any) -> None:
        """``str.format`` reaches attributes through its fields (``{0.__class__}``)."""
        values = self.fold(template)
        if values is None:
            if not self.render_data(template):
                self.report(Severity.HIGH, "formats with a string built at render time")
            return
        import string

        for value in values:
            if not isinstance(value, str):
                continue
            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(value) if f]
            except ValueError:
                continue
            for field in fields:
                for part in field.replace("[", ".").replace("]", "").split("."):
                    sev = _unsafe(part)
                    if sev is not None:
                        self.report(sev, f"reaches {part!r} through a format field")


def ast_hazards(text: str) -> list[tuple[Severity, str]] | None:
    """Hazards found on the parse tree of ``text``, or None when Jinja cannot parse it."""
    from jinja2 import TemplateSyntaxError

    try:
        tree = _environment().parse(text)
    except TemplateSyntaxError:
        return None
    except RecursionError:
        return [(Severity.MEDIUM, "nests too deeply to parse")]
    try:
        return _Analyser(tree).run()
    except RecursionError:
        return [(Severity.MEDIUM, "nests too deeply to analyse")]
