"""The one walker and the safe reader: links, FIFOs, devices, caps and bounds are never silent."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mltrust.errors import InputError, LimitExceeded
from mltrust.files import Entry, SkipReason, iter_walk, open_regular, read_bounded, walk
from mltrust.scan import scan_paths


def _tree(root: Path) -> None:
    (root / "b").mkdir()
    (root / "a.pkl").write_bytes(b"x")
    (root / "b" / "c.bin").write_bytes(b"yy")
    (root / "env").mkdir()
    (root / "env" / "model.pkl").write_bytes(b"zzz")


def test_walk_order_and_relative_names(tmp_path: Path) -> None:
    _tree(tmp_path)
    listing = walk(tmp_path)
    assert [e.rel for e in listing.files] == ["a.pkl", "b/c.bin", "env/model.pkl"]
    assert [e.size for e in listing.files] == [1, 2, 3]
    assert listing.skipped == ()
    assert not listing.truncated


def test_walk_never_hides_environment_folders(tmp_path: Path) -> None:
    """The first release's check walker skipped env/ silently; the one walker does not."""
    _tree(tmp_path)
    assert "env/model.pkl" in {e.rel for e in walk(tmp_path).files}


def test_pruned_folder_is_reported(tmp_path: Path) -> None:
    _tree(tmp_path)
    listing = walk(tmp_path, prune={"env"})
    assert "env/model.pkl" not in {e.rel for e in listing.files}
    assert [(s.rel, s.reason) for s in listing.skipped] == [("env", SkipReason.PRUNED)]


def test_symlink_to_dev_zero_is_reported_not_read(tmp_path: Path) -> None:
    os.symlink("/dev/zero", tmp_path / "model.sig")
    listing = walk(tmp_path)
    assert listing.files == ()
    assert [(s.rel, s.reason) for s in listing.skipped] == [("model.sig", SkipReason.SYMLINK)]
    with pytest.raises(InputError, match="symbolic link"):
        read_bounded(tmp_path / "model.sig", 1024)


def test_symlinked_folder_not_descended(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "payload.pkl").write_bytes(b"p")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "sub")
    listing = walk(root)
    assert listing.files == ()
    assert listing.skipped[0].reason is SkipReason.SYMLINK


def test_fifo_is_reported_and_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "model.sig"
    os.mkfifo(fifo)
    listing = walk(tmp_path)
    assert [(s.rel, s.reason) for s in listing.skipped] == [("model.sig", SkipReason.SPECIAL)]
    done = threading.Event()
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            read_bounded(fifo, 10)
        except BaseException as exc:
            errors.append(exc)
        done.set()

    threading.Thread(target=attempt, daemon=True).start()
    assert done.wait(5), "reading a FIFO blocked"
    assert isinstance(errors[0], InputError)
    assert "FIFO" in str(errors[0])


def test_scan_reports_fifo_inside_folder(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "weights.pkl")
    report = scan_paths([tmp_path])
    assert len(report.files) == 1
    assert report.files[0].findings, "a FIFO in a scanned folder must not pass silently"
    assert report.failed or report.errored


def test_file_cap_is_reported(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"f{i}").write_bytes(b"")
    listing = walk(tmp_path, max_files=3)
    assert len(listing.files) == 3
    assert listing.truncated
    assert listing.skipped[-1].reason is SkipReason.CAP


def test_read_bounded_counts_bytes_not_st_size(tmp_path: Path) -> None:
    f = tmp_path / "bundle.json"
    f.write_bytes(b"a" * 101)
    assert read_bounded(f, 101) == b"a" * 101
    with pytest.raises(LimitExceeded):
        read_bounded(f, 100)


def test_device_refused_even_when_named_explicitly() -> None:
    with pytest.raises(InputError, match=r"not a regular file|character device"):
        read_bounded("/dev/zero", 1 << 20, follow_links=True)


def test_open_regular_refuses_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        open_regular(tmp_path)


def test_file_root_is_one_entry(tmp_path: Path) -> None:
    f = tmp_path / "m.pkl"
    f.write_bytes(b"abc")
    items = list(iter_walk(f))
    assert len(items) == 1 and isinstance(items[0], Entry) and items[0].rel == "m.pkl"


def test_missing_root_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        walk(tmp_path / "nope")


def test_attack_open_under_refuses_a_folder_swapped_for_a_link(tmp_path: Path) -> None:
    """open_regular refuses a link only as the last component; open_under refuses one
    anywhere below the root (a sub-folder replaced by a link to ~/.ssh after the walk)."""
    from mltrust.files import open_folder, open_under

    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.bin").write_bytes(b"signed")
    secrets = tmp_path / "ssh"
    secrets.mkdir()
    (secrets / "a.bin").write_bytes(b"PRIVATE KEY")
    fd_root = open_folder(root)
    try:
        fd = open_under(fd_root, "sub/a.bin")
        assert os.read(fd, 100) == b"signed"
        os.close(fd)
        (root / "sub" / "a.bin").unlink()
        (root / "sub").rmdir()
        (root / "sub").symlink_to(secrets)
        fd = open_regular(root / "sub" / "a.bin")  # the old reader follows the folder link
        assert os.read(fd, 100) == b"PRIVATE KEY"
        os.close(fd)
        with pytest.raises(InputError, match="sub is a symbolic link"):
            open_under(fd_root, "sub/a.bin")
        for bad in ("../ssh/a.bin", "sub//a.bin", "/etc/passwd", "./x"):
            with pytest.raises(InputError, match="not a plain relative path"):
                open_under(fd_root, bad)
        (root / "dir").mkdir()
        with pytest.raises(InputError, match="not a regular file"):
            open_under(fd_root, "dir")
        os.mkfifo(root / "fifo")
        with pytest.raises(InputError, match="FIFO"):
            open_under(fd_root, "fifo")
    finally:
        os.close(fd_root)
    (tmp_path / "link").symlink_to(root)
    with pytest.raises(InputError, match="symbolic link"):
        open_folder(tmp_path / "link")
