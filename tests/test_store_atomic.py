"""Atomic replacement of files: all or nothing, no stray temporary files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltrust.store._atomic import atomic_path, atomic_write_bytes


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_failed_write_leaves_target_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "model.joblib"
    target.write_bytes(b"previous model")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a mod")
        raise RuntimeError("writer crashed")
    assert target.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.joblib"]


def test_missing_folder_is_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "bundle.sig"
    atomic_write_bytes(target, b"{}")
    assert target.read_bytes() == b"{}"
