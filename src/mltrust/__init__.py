"""mltrust: evidence-based trust for machine-learning artifacts and endpoints.

The verbs most users need are re-exported here: :func:`scan`, :func:`load`, :func:`sign`,
:func:`verify` and :func:`evaluate`. Everything else lives in the subpackages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # types only: `mltrust --help` imports this package and should stay cheap
    from pathlib import Path

    from mltrust.attest import sign as sign
    from mltrust.attest import verify as verify
    from mltrust.config import ScanConfig
    from mltrust.policy import evaluate as evaluate
    from mltrust.safeload import load as load
    from mltrust.scan._result import ScanReport

__all__ = ["__version__", "evaluate", "load", "scan", "sign", "verify"]


def scan(*paths: str | Path, config: ScanConfig | None = None) -> ScanReport:
    """Scan files and folders; see :func:`mltrust.scan.scan_paths`."""
    from mltrust.scan._engine import scan_paths

    return scan_paths(paths, config)


#: The other verbs are the subpackages' own functions, imported on first use (PEP 562) so that
#: ``import mltrust`` stays cheap and each verb keeps its full, typed signature.
_VERBS = {
    "load": "mltrust.safeload",
    "sign": "mltrust.attest",
    "verify": "mltrust.attest",
    "evaluate": "mltrust.policy",
}


def __getattr__(name: str) -> Any:
    module = _VERBS.get(name)
    if module is None:
        raise AttributeError(f"module 'mltrust' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
