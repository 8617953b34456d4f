"""Symbolic links inside a scanned folder: the loader follows them, so the scan reads the target.

A Hugging Face cache snapshot holds only links into ``../../blobs/``; a scan that skipped them
reported "0 scanned" and passed while ``pickle.load`` ran the payload through the link. A link to
a regular file is now scanned as that file; a link that cannot be followed to one (dangling, a
loop, a folder, a device) is not scanned and fails at medium.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

import mltrust
from mltrust.findings import Severity


class _Payload:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned",))


def _hf_cache(tmp_path: Path) -> Path:
    """models--x/snapshots/<rev>/model.pkl -> ../../blobs/<sha>, as huggingface_hub lays it out."""
    repo = tmp_path / "models--acme--m"
    (repo / "blobs").mkdir(parents=True)
    blob = repo / "blobs" / "0a1b2c"
    blob.write_bytes(pickle.dumps(_Payload()))
    snap = repo / "snapshots" / "deadbeef"
    snap.mkdir(parents=True)
    (snap / "model.pkl").symlink_to(Path("..", "..", "blobs", "0a1b2c"))
    return snap


def _worst(report) -> Severity | None:  # type: ignore[no-untyped-def]
    sev = [f.severity for r in report.files for f in r.findings]
    return max(sev, key=lambda s: s.rank) if sev else None


def test_attack_payload_behind_a_cache_link_is_scanned(tmp_path: Path) -> None:
    snap = _hf_cache(tmp_path)
    with open(snap / "model.pkl", "rb") as fh:  # what a loader reads: the target's bytes
        assert b"system" in fh.read()
    report = mltrust.scan(snap)
    assert report.to_dict()["summary"]["scanned"] == 1
    assert _worst(report) is not None and _worst(report).rank >= Severity.HIGH.rank
    assert report.failed


@pytest.mark.parametrize("kind", ["dangling", "loop", "folder"])
def test_attack_link_that_cannot_be_followed_fails(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "model"
    root.mkdir()
    (root / "weights.bin").write_bytes(b"\0" * 16)
    link = root / "model.pkl"
    if kind == "dangling":
        link.symlink_to("missing.bin")
    elif kind == "loop":
        link.symlink_to("model.pkl")
    else:
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "evil.pkl").write_bytes(pickle.dumps(_Payload()))
        link.symlink_to(tmp_path / "elsewhere")
    report = mltrust.scan(root)
    linked = [r for r in report.files if r.path.endswith("model.pkl")]
    assert linked and linked[0].findings
    assert max(f.severity.rank for f in linked[0].findings) >= Severity.MEDIUM.rank
    assert report.failed


def test_benign_file_behind_a_link_stays_clean(tmp_path: Path) -> None:
    snap = _hf_cache(tmp_path)
    (tmp_path / "models--acme--m" / "blobs" / "0a1b2c").write_bytes(pickle.dumps({"w": [1.0]}))
    report = mltrust.scan(snap)
    assert report.to_dict()["summary"]["scanned"] == 1 and not report.failed


def test_the_verb_survives_its_package_being_imported(tmp_path: Path) -> None:
    """``mltrust.scan`` is also a package; importing it must not hide the verb."""
    import mltrust.scan

    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps([1, 2]))
    assert not mltrust.scan(path).failed
    assert not mltrust.scan(path).failed
    assert mltrust.scan.scan_paths([path]).files[0].path == str(path)
