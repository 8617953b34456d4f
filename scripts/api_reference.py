"""Write docs/api.md: the public Python API, from the code's own signatures and docstrings.

Usage: ``.venv/bin/python scripts/api_reference.py`` (``--check`` exits 1 when docs/api.md is out
of date; tests/test_docs.py runs that check). The public API is what each package's ``__all__``
exports; the page lists every such name with its signature and docstring, package by package.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "api.md"

#: Packages in the order of the layers (top-level verbs first, core last).
PACKAGES = (
    "mltrust",
    "mltrust.scan",
    "mltrust.safeload",
    "mltrust.attest",
    "mltrust.bom",
    "mltrust.evidence",
    "mltrust.policy",
    "mltrust.report",
    "mltrust.robust",
    "mltrust.monitor",
    "mltrust.explain",
    "mltrust.serve",
    "mltrust.vault",
    "mltrust.store",
    "mltrust.state",
    "mltrust.advisories",
    "mltrust.findings",
    "mltrust.errors",
    "mltrust.config",
    "mltrust.digest",
    "mltrust.files",
)

_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def _signature(obj: object) -> str:
    try:
        text = str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    return _ADDRESS.sub("", text)


def _doc(obj: object) -> str:
    doc = inspect.getdoc(obj) or "*(no docstring)*"
    return doc.strip()


def _entry(package: str, name: str, obj: object) -> list[str]:
    if inspect.isclass(obj):
        kind = "exception" if issubclass(obj, BaseException) else "class"
        lines = [f"### `{name}` ({kind})", ""]
        sig = _signature(obj)
        if sig and kind == "class":
            lines += ["```python", f"{name}{sig}", "```", ""]
        lines += [_doc(obj), ""]
        methods = [
            (m, v)
            for m, v in vars(obj).items()
            if not m.startswith("_") and (inspect.isfunction(v) or isinstance(v, property))
        ]
        for m, v in methods:
            target = v.fget if isinstance(v, property) else v
            head = f"- `{m}`" if isinstance(v, property) else f"- `{m}{_signature(target)}`"
            first = (inspect.getdoc(target) or "").split("\n\n")[0].replace("\n", " ")
            lines.append(f"{head}: {first}" if first else head)
        if methods:
            lines.append("")
        return lines
    if callable(obj):
        return [
            f"### `{name}()`",
            "",
            "```python",
            f"{name}{_signature(obj)}",
            "```",
            "",
            _doc(obj),
            "",
        ]
    shown = _ADDRESS.sub("", repr(obj))
    if len(shown) > 200:
        shown = shown[:197] + "..."
    return [f"### `{name}`", "", f"`{package}.{name}` = `{shown}`", ""]


def render() -> str:
    out = [
        "# Python API reference",
        "",
        "Generated from the code by `scripts/api_reference.py`: every name a package exports in",
        "its `__all__`, with its signature and docstring. Anything not listed here is internal",
        "and may change without notice.",
        "",
    ]
    for package in PACKAGES:
        module = importlib.import_module(package)
        names = list(getattr(module, "__all__", ()))
        out += [f"## `{package}`", "", _doc(module).split("\n\n")[0], ""]
        for name in names:
            out += _entry(package, name, getattr(module, name))
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--check"]:
        if PAGE.read_text(encoding="utf-8") != text:
            print("docs/api.md is out of date: run scripts/api_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
