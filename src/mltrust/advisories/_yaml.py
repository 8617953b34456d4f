"""YAML from untrusted files without crashing the process.

libyaml's C loader recurses on the C stack and crashes the interpreter (SIGSEGV) on documents
nested tens of thousands of levels deep (``- - - - ...`` or ``[[[[...``), where the pure-Python
loader raises ``RecursionError``. Every nesting level needs at least one indicator character
(``[ { - ? :``), so their count bounds the depth: documents under the bound take the fast C
loader, the rest the safe Python one.
"""

from __future__ import annotations

from typing import Any

import yaml

from mltrust.config import DEFAULT_LIMITS

__all__ = ["C_LOADER_MAX_INDICATORS", "indicator_count", "load_untrusted_yaml"]

#: Depth the C loader is known to handle; above this many indicators the Python loader is used.
C_LOADER_MAX_INDICATORS = 5_000

try:
    _CLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _CLoader = None


def indicator_count(data: bytes | str) -> int:
    if isinstance(data, str):
        return sum(data.count(c) for c in "[{-?:")
    return sum(data.count(c) for c in (b"[", b"{", b"-", b"?", b":"))


def load_untrusted_yaml(data: bytes | str) -> Any:
    """Parse one YAML document with a safe loader. Raises ``yaml.YAMLError`` or
    ``ValueError`` (too deeply nested) for bad input; never crashes the interpreter."""
    count = indicator_count(data)
    if count > DEFAULT_LIMITS.max_untrusted_yaml_indicators:
        raise ValueError(f"YAML document has {count} structural indicators; too complex")
    loader = _CLoader
    if loader is None or count > C_LOADER_MAX_INDICATORS:
        loader = yaml.SafeLoader
    try:
        return yaml.load(data, Loader=loader)  # noqa: S506 - both loaders are safe loaders
    except RecursionError:
        raise ValueError("YAML document is nested too deeply") from None
