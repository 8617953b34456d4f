"""mltrust: evidence-based trust for machine-learning artifacts and endpoints.

The verbs most users need are re-exported here: :func:`scan`, :func:`load`, :func:`sign`,
:func:`verify` and :func:`evaluate`. Everything else lives in the subpackages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # types only: `mltrust --help` imports this package and should stay cheap
    from pathlib import Path

    from mltrust.config import ScanConfig
    from mltrust.scan._result import ScanReport

__all__ = ["__version__", "evaluate", "load", "scan", "sign", "verify"]


def scan(*paths: str | Path, config: ScanConfig | None = None) -> ScanReport:
    """Scan files and folders; see :func:`mltrust.scan.scan_paths`."""
    from mltrust.scan._engine import scan_paths

    return scan_paths(paths, config)


def load(source: Any, **kwargs: Any) -> Any:
    """Scan then safely deserialise a model; see :func:`mltrust.safeload.load`."""
    from mltrust.safeload import load as _load

    return _load(source, **kwargs)


def sign(path: str | Path, **kwargs: Any) -> Any:
    """Sign a model or data folder; see :func:`mltrust.attest.sign`."""
    from mltrust.attest import sign as _sign

    return _sign(path, **kwargs)


def verify(path: str | Path, **kwargs: Any) -> Any:
    """Verify a signed model or data folder; see :func:`mltrust.attest.verify`."""
    from mltrust.attest import verify as _verify

    return _verify(path, **kwargs)


def evaluate(evidence: Any, **kwargs: Any) -> Any:
    """Evaluate evidence against a policy profile; see :func:`mltrust.policy.evaluate`."""
    from mltrust.policy import evaluate as _evaluate

    return _evaluate(evidence, **kwargs)
