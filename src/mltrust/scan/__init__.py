"""Scan model files for unsafe content without executing them.

>>> from mltrust.scan import scan_paths
>>> report = scan_paths(["model.joblib"])          # doctest: +SKIP
>>> report.failed                                   # doctest: +SKIP
True
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

from mltrust.config import ScanConfig
from mltrust.scan import _archive_rules as _archive_rules  # archive/npy/torch rules
from mltrust.scan import _rules as _rules  # registers the engine's rules
from mltrust.scan._context import ScanContext
from mltrust.scan._engine import iter_files, scan_bytes, scan_file, scan_paths
from mltrust.scan._pickle import _rules as _pickle_rules  # noqa: F401
from mltrust.scan._registry import all_scanners
from mltrust.scan._result import FileResult, FileStatus, ScanReport
from mltrust.scan.formats import _rules_keras_config as _rules_keras_config  # KER/H5/CFG
from mltrust.scan.formats import _rules_tensor as _rules_tensor  # tensor-format rules
from mltrust.scan.interface import FormatScanner

__all__ = [
    "FileResult",
    "FileStatus",
    "FormatScanner",
    "ScanContext",
    "ScanReport",
    "all_scanners",
    "iter_files",
    "scan_bytes",
    "scan_file",
    "scan_paths",
]


class _CallablePackage(types.ModuleType):
    """``mltrust.scan`` is both the top-level verb and this package.

    Importing the package binds ``mltrust.scan`` to it (the import system sets the attribute on
    the parent), which hid the verb: the second ``mltrust.scan(path)`` of a session raised
    "'module' object is not callable". Calling the package does what the verb does.
    """

    def __call__(self, *paths: str | Path, config: ScanConfig | None = None) -> ScanReport:
        return scan_paths(paths, config)


sys.modules[__name__].__class__ = _CallablePackage
