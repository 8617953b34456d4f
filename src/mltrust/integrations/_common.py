"""What the registry and storage integrations share: the "scans clean or is refused" gate."""

from __future__ import annotations

from pathlib import Path

from mltrust.config import ScanConfig
from mltrust.errors import UnsafeModelError

__all__ = ["scan_clean"]


def scan_clean(folder: Path, config: ScanConfig | None = None, *, what: str = "the model") -> None:
    """Scan ``folder``; raise :class:`UnsafeModelError` when a file has findings at or above the
    configuration's ``fail_on``, or could not be scanned (an error is never clean).

    ``config`` defaults to the operator's: the one found from the *current* folder upwards
    (:func:`load_scan_config`, as ``mltrust scan`` does), never one found from ``folder``: a
    model that ships an ``mltrust.toml`` (``fail_on = "critical"``, an allowlist) would
    otherwise choose how strictly it is checked before it is signed or accepted. When the
    current folder is ``folder`` or inside it, the search skips ``folder`` and everything
    under it for the same reason.
    """
    from mltrust.config import load_scan_config
    from mltrust.scan import scan_paths

    report = scan_paths([folder], config or load_scan_config(exclude=folder))
    if report.failed or report.errored:
        findings = [
            f"{Path(r.path).relative_to(folder)}: {f.rule_id} {f.message}"
            for r in report.files
            for f in r.findings
            if f.severity >= report.fail_on
        ]
        raise UnsafeModelError(
            f"findings in {what}: " + "; ".join(findings[:5]),
            findings=tuple(f for r in report.files for f in r.findings),
        )
