"""Manifest details: order, root-digest encoding, ignore rules, special files."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pytest

from mltrust.attest import build_manifest
from mltrust.attest._manifest import expand_ignore, normalize_ignore
from mltrust.errors import ConfigError, InputError


def test_order_is_by_path_components(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").write_bytes(b"1")
    (tmp_path / "a.b").write_bytes(b"2")
    (tmp_path / "A").write_bytes(b"3")
    names = [f.name for f in build_manifest(tmp_path).files]
    assert names == ["A", "a/b", "a.b"]  # "a/b" before "a.b", as model-signing orders them


def test_root_digest_encoding_known_answer(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"hello")
    manifest = build_manifest(tmp_path)
    digest = hashlib.sha256(b"hello").digest()

    def lp(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    expected = hashlib.sha256(
        b"mltrust-manifest-v1\0"
        + lp(b"x")
        + struct.pack(">Q", 5)
        + lp(b"sha256")
        + struct.pack(">I", 1)
        + lp(digest)
    ).hexdigest()
    assert manifest.root_digest == expected
    assert manifest.compat_digest == hashlib.sha256(digest).hexdigest()


def test_moving_bytes_between_names_changes_root(tmp_path: Path) -> None:
    (tmp_path / "ab").write_bytes(b"")
    (tmp_path / "c").write_bytes(b"")
    first = build_manifest(tmp_path).root_digest
    (tmp_path / "ab").rename(tmp_path / "a")
    (tmp_path / "c").rename(tmp_path / "bc")
    assert build_manifest(tmp_path).root_digest != first


def test_default_ignores_and_user_paths(tmp_path: Path) -> None:
    names = (".git/HEAD", ".mltrust/evidence.db", "docs/a.md", "w.bin", ".gitignore")
    for name in (*names, ".mltrust/notes.py", ".mltrust/attestations/scan.bundle.json"):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    m = build_manifest(tmp_path, ignore=["docs"])
    # only the exact files mltrust writes are left out of .mltrust/, never the folder
    assert [f.name for f in m.files] == [".mltrust/notes.py", "w.bin"]
    assert "docs" in m.ignore and ".mltrust/evidence.db" in m.ignore
    assert ".mltrust" not in m.ignore


def test_ignore_entries_validated() -> None:
    assert normalize_ignore(["./a/", "a", "b\\c"]) == ("a", "b/c")
    for bad in ("..", "../x", "/etc", ".", ""):
        with pytest.raises(ConfigError):
            normalize_ignore([bad])


def test_expand_ignore_does_not_follow_symlinked_dirs(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("x")
    model = tmp_path / "m"
    (model / "d").mkdir(parents=True)
    (model / "d" / "n.md").write_text("x")
    os.symlink(outside, model / "link")
    assert expand_ignore(model, ["*.md", "keep"]) == ["keep", "d/n.md"]


def test_fifo_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InputError, match="not a regular file"):
        build_manifest(tmp_path)


def test_unknown_hash_algorithm(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        build_manifest(tmp_path, hash_algorithm="md5")


def test_manifest_of_a_symlinked_root_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    with pytest.raises(InputError, match="symbolic link"):
        build_manifest(tmp_path / "alias")


def test_many_threads_same_digests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(7):
        (tmp_path / f"f{i}").write_bytes(os.urandom(300_000 + i))
    one = build_manifest(tmp_path, shard_size=100_000)
    monkeypatch.setenv("MLTRUST_HASH_THREADS", "1")
    assert build_manifest(tmp_path, shard_size=100_000) == one
    monkeypatch.setenv("MLTRUST_HASH_THREADS", "5")
    assert build_manifest(tmp_path, shard_size=100_000).root_digest == one.root_digest
