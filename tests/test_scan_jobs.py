"""`scan --jobs N`: worker processes give the same results, in the same order, as one process."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mltrust.errors import ConfigError
from mltrust.scan import scan_paths

_SYSTEM = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00idq\x00\x85q\x01Rq\x02."


def _folder(root: Path, count: int = 80) -> Path:
    for i in range(count):
        data = _SYSTEM if i % 7 == 0 else pickle.dumps({"layer": i, "w": list(range(i))})
        (root / f"{i:03d}.pkl").write_bytes(data)
    (root / "notes.bin").write_bytes(b"\x00\x01\x02 not a model")
    return root


def _comparable(report):  # type: ignore[no-untyped-def]
    return [
        (r.path, r.status, r.formats, tuple(f.to_dict()["rule_id"] for f in r.findings))
        for r in report.files
    ]


def test_parallel_scan_matches_single_process(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    one = scan_paths([folder])
    two = scan_paths([folder], jobs=2)
    assert _comparable(one) == _comparable(two)
    assert two.failed and sum(1 for r in two.files if r.findings) >= 12


def test_parallel_scan_reports_progress_for_every_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    seen: list[str] = []
    scan_paths([folder], jobs=2, on_file=lambda path, _result: seen.append(path))
    assert sorted(seen) == sorted(str(p) for p in folder.iterdir())


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        scan_paths([tmp_path], jobs=0)
