"""Things made on first use: package exports (a module ``__getattr__``), for packages whose public
names need heavy dependencies (NumPy, SciPy) that listing their rules or ``--help`` must not,
and compiled regular expressions (:func:`lazy_pattern`)."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, AnyStr


def lazy_exports(
    package: str, exports: Mapping[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, given module -> the public names it defines.

    A name is imported from its module the first time it is read, then kept in the package.
    List the same imports under ``if TYPE_CHECKING:`` so that type checkers see them.
    """
    module_of = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *module_of})

    return __getattr__, __dir__


def lazy_pattern(pattern: AnyStr, flags: int = 0) -> Callable[[], re.Pattern[AnyStr]]:
    """A function that returns ``re.compile(pattern, flags)``, compiled the first time it is
    called and kept: module-level patterns of the scanners cost every ``mltrust`` process
    their compile time at import, though one scan needs few of them."""
    compiled: list[re.Pattern[AnyStr]] = []

    def get() -> re.Pattern[AnyStr]:
        if not compiled:
            compiled.append(re.compile(pattern, flags))
        return compiled[0]

    return get
