"""Checks for Jinja chat templates (Hugging Face tokenizer configs, GGUF metadata).

Chat templates are rendered by model servers with Jinja. In a non-sandboxed environment a
template that walks Python internals (``''.__class__.__mro__[1].__subclasses__()``,
``lipsum.__globals__``, ``cycler.__init__.__globals__.os``...) runs arbitrary code: server-side
template injection. Ordinary chat templates only index messages, loop and concatenate strings,
so any such construct is reported.

Two checks run, nothing is rendered. A textual one (escapes that spell ``_`` -- ``\\x5f``,
``\\u005f``, ``\\137`` -- and string literals joined with ``~`` or ``+`` folded first) that also
covers templates Jinja cannot parse; and one on the parse tree Jinja itself builds
(:mod:`._jinja_ast`), which applies the sandbox's rule to every attribute reach and folds names
the template computes at render time.
"""

from __future__ import annotations

from mltrust._lazy import lazy_pattern
from mltrust.findings import Location, Severity
from mltrust.scan._context import ScanContext
from mltrust.scan.formats._rules_keras_config import CFG_CHAT_TEMPLATE

__all__ = ["check_chat_template", "template_hazards"]

#: Python internals that lead from any object to classes, modules and builtins; nobody writes
#: them in an ordinary chat template, so any mention counts.
_STRONG_DUNDERS = frozenset(
    {
        "__subclasses__",
        "__globals__",
        "__builtins__",
        "__mro__",
        "__base__",
        "__bases__",
        "__import__",
        "__getattribute__",
        "__code__",
        "__closure__",
        "__func__",
        "__self__",
        "__reduce__",
        "__reduce_ex__",
        "__loader__",
        "__spec__",
    }
)
#: Dunders that also occur in prose (a system prompt explaining Python): they count when the
#: template accesses them (``.__init__``, ``['__class__']``, ``attr('__dict__')``) or holds them
#: as a whole string literal (``{% set c = '__class__' %}``).
_WEAK_DUNDERS = frozenset(
    {"__class__", "__init__", "__dict__", "__call__", "__new__", "__module__", "__getitem__"}
)
_ACCESS_PREFIX = r"""(?:\.\s*|\[\s*['"]|attr\s*\(\s*['"]|['"])"""


_escaped_underscore = lazy_pattern(r"\\x5[fF]|\\u005[fF]|\\U0000005[fF]|\\137")


_joined_literals = lazy_pattern(r"""(['"])\s*[~+]\s*(['"])""")


_dunder = lazy_pattern(r"__[A-Za-z][A-Za-z0-9_]*?__")


_accessed_dunder = lazy_pattern(_ACCESS_PREFIX + r"(__[A-Za-z][A-Za-z0-9_]*?__)")


_attr_filter = lazy_pattern(r"\|\s*attr\s*\(")


_mro_call = lazy_pattern(r"\.\s*mro\s*\(")


_jinja_globals = lazy_pattern(r"\b(lipsum|cycler|joiner|namespace)\s*\.\s*\w")


_template_reference = lazy_pattern(r"_TemplateReference__context|\bself\s*\.\s*_")


_bad_calls = lazy_pattern(
    r"\b(os\s*\.\s*(popen|system)|subprocess|import_module|__import__|eval\s*\(|exec\s*\()"
)


def _normalise(text: str) -> str:
    text = _escaped_underscore().sub("_", text)
    # 'ab' ~ 'cd' -> 'abcd' (repeat: chains of several literals)
    for _ in range(8):
        folded = _joined_literals().sub("", text)
        if folded == text:
            break
        text = folded
    return text


def template_hazards(text: str) -> list[tuple[Severity, str]]:
    """The dangerous constructs in the Jinja template ``text``, most severe first.

    Each entry is ``(severity, description)``; an empty list means the template uses only
    ordinary constructs.
    """
    norm = _normalise(text)
    out: list[tuple[Severity, str]] = []
    mentioned = set(_dunder().findall(norm))
    accessed = set(_accessed_dunder().findall(norm))
    critical = sorted(
        d for d in mentioned if d in _STRONG_DUNDERS or (d in _WEAK_DUNDERS and d in accessed)
    )
    other = sorted(d for d in accessed if d not in _STRONG_DUNDERS and d not in _WEAK_DUNDERS)
    if critical:
        out.append((Severity.CRITICAL, "reaches Python internals " + ", ".join(critical[:8])))
    if other:
        out.append((Severity.HIGH, "accesses dunder attributes " + ", ".join(other[:8])))
    if _template_reference().search(norm):
        out.append((Severity.CRITICAL, "reaches the template's private context (self._...)"))
    for match in _jinja_globals().finditer(norm):
        out.append((Severity.HIGH, f"takes attributes of the Jinja global {match.group(1)!r}"))
        break
    if _attr_filter().search(norm):
        out.append((Severity.HIGH, "uses the |attr() filter (computed attribute access)"))
    if _mro_call().search(norm):
        out.append((Severity.CRITICAL, "calls mro() to walk the class hierarchy"))
    bad = _bad_calls().search(norm)
    if bad:
        out.append((Severity.CRITICAL, f"names {bad.group(1)!r}"))
    from mltrust.scan.formats._jinja_ast import ast_hazards

    for hazard in ast_hazards(text) or ():
        if hazard not in out:
            out.append(hazard)
    out.sort(key=lambda item: -item[0].rank)
    return out


def check_chat_template(text: str, ctx: ScanContext, loc: Location) -> None:
    """Report a finding to ``ctx`` if the chat template ``text`` reaches Python internals."""
    hazards = template_hazards(text)
    if not hazards:
        return
    severity = hazards[0][0]
    details = "; ".join(desc for _, desc in hazards)
    ctx.report(
        CFG_CHAT_TEMPLATE,
        f"chat template {details}: server-side template injection",
        loc,
        severity=severity,
    )
