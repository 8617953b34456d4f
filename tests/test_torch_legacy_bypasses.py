"""Bypasses of the legacy PyTorch scanners (red team, scan round 3, findings 03 and 06).

Every attack file is built here from raw bytes and first loaded with the real
``torch.load(weights_only=False)`` in a subprocess, with a harmless payload that writes a
marker file: the test proves torch runs the payload, then that the scan reports it.
"""

from __future__ import annotations

import io
import pickle
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats.pytorch import LegacyTorchScanner

torch = pytest.importorskip("torch")

MAGIC = 0x1950A86A20F9469CFC6C


def marker_pickle(marker: Path, protocol: int = 2) -> bytes:
    """A pickle that writes ``marker`` when loaded (builtins.exec of one line)."""
    code = f"open({str(marker)!r}, 'w').write('ran')"
    return pickle.dumps(_Exec(code), protocol=protocol)


class _Exec:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[object, ...]:
        # mltrust: ignore[MLT-CODE-013] the payload the attack file carries; the test never calls it
        return (exec, (self.code,))


def torch_runs_it(path: Path, marker: Path) -> bool:
    """Whether ``torch.load(path, weights_only=False)`` writes ``marker`` (in a subprocess)."""
    # mltrust: ignore[MLT-CODE-002] torch is the oracle: it loads the test's own attack file
    script = (
        "import sys, torch\n"
        "try:\n"
        "    torch.load(sys.argv[1], weights_only=False)\n"
        "except Exception:\n"
        "    pass\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=120)
    return marker.exists()


def severe(data: bytes, name: str = "model.pt") -> list[object]:
    return [f for f in scan_bytes(data, name).findings if f.severity >= Severity.HIGH]


def tar_of(members: list[tuple[str, bytes | None, str]]) -> bytes:
    """A PAX tar; each member is (name, data, link target): data None makes a hard link."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.SYMTYPE if link.startswith("sym:") else tarfile.LNKTYPE
                info.linkname = link.removeprefix("sym:")
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def storages_with_views(views: bytes) -> bytes:
    """A ``storages`` member: one float storage of one element, then ``views``."""
    return (
        pickle.dumps(1, protocol=2)
        + pickle.dumps(("0", "cpu", torch.FloatStorage), protocol=2)
        + struct.pack("<q", 1)
        + struct.pack("<f", 1.0)
        + views
    )


# --------------------------------------------------------------------------------------------
# 03: the oldest (tar) format, decided the way torch decides it.


def test_legacy_tar_pickle_member_is_a_hard_link(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    raw = tar_of(
        [
            ("storages", storages_with_views(marker_pickle(marker)), ""),
            ("tensors", pickle.dumps(0, protocol=2), ""),
            ("p", pickle.dumps({"ok": 1}, protocol=2), ""),
            ("pickle", None, "p"),
        ]
    )
    path = tmp_path / "evil.pt"
    path.write_bytes(raw)
    assert torch_runs_it(path, marker)
    assert severe(raw), scan_bytes(raw, "evil.pt").findings


def test_legacy_tar_with_only_a_storages_member(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    raw = tar_of([("storages", storages_with_views(marker_pickle(marker)), "")])
    path = tmp_path / "evil.pt"
    path.write_bytes(raw)
    assert torch_runs_it(path, marker)
    assert severe(raw), scan_bytes(raw, "evil.pt").findings


def test_legacy_tar_storages_member_is_a_hard_link(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    raw = tar_of(
        [
            ("blob", storages_with_views(marker_pickle(marker)), ""),
            ("storages", None, "blob"),
        ]
    )
    path = tmp_path / "evil.pt"
    path.write_bytes(raw)
    assert torch_runs_it(path, marker)
    assert severe(raw), scan_bytes(raw, "evil.pt").findings


def test_legacy_tar_symlinks_are_followed_as_extract_creates_them(tmp_path: Path) -> None:
    # ``storages`` as a symbolic link is extracted as a link to a file never extracted: torch
    # fails before unpickling. ``tensors`` as a symbolic link to ``storages`` reads the
    # extracted ``storages``: its pickles are walked in the tensors layout.
    marker = tmp_path / "ran"
    dangling = tar_of(
        [("blob", storages_with_views(marker_pickle(marker)), ""), ("storages", None, "sym:blob")]
    )
    path = tmp_path / "dangling.pt"
    path.write_bytes(dangling)
    assert not torch_runs_it(path, marker)
    result = scan_bytes(dangling, "dangling.pt")
    assert not result.fails(Severity.MEDIUM), result.findings
    assert "torch_legacy_tar" in dict(result.facts)


def test_legacy_tar_frame_hides_bytes_after_the_count_pickle(tmp_path: Path) -> None:
    # torch reads the member unbuffered: pickle.load consumes the whole FRAME, so the next
    # load starts at the frame's end, not after the STOP inside it.
    marker = tmp_path / "ran"
    body = b"K\x01." + b"\xff" * 16
    count = b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body
    plain = storages_with_views(marker_pickle(marker))
    storages = count + plain[len(pickle.dumps(1, protocol=2)) :]
    raw = tar_of([("storages", storages, "")])
    path = tmp_path / "evil.pt"
    path.write_bytes(raw)
    assert torch_runs_it(path, marker)
    assert severe(raw), scan_bytes(raw, "evil.pt").findings


def test_legacy_tar_storages_that_do_not_parse_are_not_low() -> None:
    # A count of two storages but only one present: torch fails after running what it read;
    # what cannot be followed is reported (medium), not passed as trailing data.
    body = storages_with_views(b"").replace(
        pickle.dumps(1, protocol=2), pickle.dumps(2, protocol=2), 1
    )
    raw = tar_of([("storages", body + b"\xff" * 7, "")])
    result = scan_bytes(raw, "x.pt")
    assert result.fails(Severity.MEDIUM), result.findings


def test_legacy_tar_benign_torch_layout_stays_clean(tmp_path: Path) -> None:
    raw = tar_of(
        [
            ("sys_info", pickle.dumps({"protocol_version": 1001}, protocol=2), ""),
            ("storages", storages_with_views(pickle.dumps([], protocol=2)), ""),
            ("tensors", pickle.dumps(0, protocol=2), ""),
            ("p", pickle.dumps({"answer": 42}, protocol=2), ""),
            ("pickle", None, "p"),
        ]
    )
    path = tmp_path / "ok.pt"
    path.write_bytes(raw)
    # mltrust: ignore[MLT-CODE-002] torch is the oracle for a benign file the test built
    assert torch.load(path, weights_only=False) == {"answer": 42}
    result = scan_bytes(raw, "ok.pt")
    assert not result.fails(Severity.MEDIUM), result.findings


# --------------------------------------------------------------------------------------------
# 06: the non-zip legacy format with unusual encodings of its first pickles.

_SYS_INFO = pickle.dumps(
    {
        "protocol_version": 1001,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 4},
    },
    protocol=2,
)


def test_legacy_magic_as_none_pop_long1_and_version_with_nul(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    magic = b"N0\x8a\x0a" + MAGIC.to_bytes(10, "little") + b"."
    version = b"I1001\x00\n."
    raw = magic + version + _SYS_INFO + marker_pickle(marker) + pickle.dumps([], protocol=2)
    path = tmp_path / "evil.pt"
    path.write_bytes(raw)
    assert torch_runs_it(path, marker)
    result = scan_bytes(raw, "evil.pt")
    assert result.formats[0] == "pytorch-legacy", result.formats
    assert severe(raw), result.findings


def test_legacy_frame_hides_the_pickles_a_bytesio_reader_loads(tmp_path: Path) -> None:
    # torch.load of a BytesIO: the unpickler (no peek) consumes the magic pickle's whole FRAME,
    # so the version pickle is read after the frame; the bytes after the STOP are skipped.
    marker = tmp_path / "ran"
    body = b"\x8a\x0a" + MAGIC.to_bytes(10, "little") + b"." + b"\xff" * 8
    magic = b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body
    raw = magic + pickle.dumps(1001, protocol=2) + _SYS_INFO + marker_pickle(marker)
    raw += pickle.dumps([], protocol=2)
    path = tmp_path / "evil.pt"
    path.write_bytes(raw)
    script = (
        "import io, sys, torch\n"
        "try:\n"
        "    torch.load(io.BytesIO(open(sys.argv[1], 'rb').read()), weights_only=False)\n"
        "except Exception:\n"
        "    pass\n"
    )
    # mltrust: ignore[MLT-CODE-002] torch is the oracle: it loads the test's own attack file
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=120)
    assert marker.exists()
    assert severe(raw), scan_bytes(raw, "evil.pt").findings


@pytest.mark.parametrize(
    "magic",
    [
        b"N0\x8a\x0a" + MAGIC.to_bytes(10, "little") + b".",  # NONE POP LONG1
        b"(\x8a\x0a"
        + MAGIC.to_bytes(10, "little")
        + b"1\x8a\x0a"
        + MAGIC.to_bytes(10, "little")
        + b".",
        b"\x8a\x0a" + MAGIC.to_bytes(10, "little") + b"p0\n0g0\n.",  # PUT, POP, GET
        b"L" + str(MAGIC).encode() + b"L\n.",  # text LONG
        b"I" + hex(MAGIC).encode() + b"\n.",  # text INT in hex (C strtol overflows: PyLong)
        b"\x80\x02\x8a\x0a" + MAGIC.to_bytes(10, "little") + b"\x94.",
    ],
    ids=["none-pop", "mark-pop-mark", "put-pop-get", "text-long", "text-int-hex", "memoize"],
)
def test_legacy_magic_any_encoding_is_recognised(magic: bytes) -> None:
    # mltrust: ignore[MLT-CODE-001] the real unpickler as oracle, on bytes the test built
    assert pickle.loads(magic) == MAGIC
    raw = magic + pickle.dumps(1001, protocol=2) + _SYS_INFO + pickle.dumps({}, protocol=2)
    raw += pickle.dumps([], protocol=2)
    assert LegacyTorchScanner().sniff(memoryview(raw), "x.pt")


def test_legacy_benign_torch_save_stays_clean() -> None:
    buf = io.BytesIO()
    torch.save({"w": torch.arange(4.0), "n": 3}, buf, _use_new_zipfile_serialization=False)
    result = scan_bytes(buf.getvalue(), "m.pt")
    assert result.formats[0] == "pytorch-legacy"
    assert not result.fails(Severity.MEDIUM), result.findings


def test_zip_torch_save_stays_clean() -> None:
    buf = io.BytesIO()
    torch.save({"w": torch.arange(4.0), "n": 3}, buf)
    result = scan_bytes(buf.getvalue(), "m.pt")
    assert not result.fails(Severity.MEDIUM), result.findings


# --------------------------------------------------------------------------------------------
# Concatenated pickles: a stream that the C unpickler accepts hides the ones after it.


@pytest.mark.parametrize(
    "middle",
    [b"I1001\x00\n.", b"F1.5\x00junk\n.", b"L7\x00\n.", b"N\x8a\x01\x07p0\x00x\n."],
    ids=["int-nul", "float-nul", "long-nul", "put-nul"],
)
def test_pickle_after_a_nul_terminated_text_pickle_is_analysed(
    middle: bytes, tmp_path: Path
) -> None:
    # mltrust: ignore[MLT-CODE-001] the real unpickler as oracle, on bytes the test built
    pickle.loads(middle)  # the C unpickler accepts it
    raw = pickle.dumps(1, protocol=2) + middle + marker_pickle(tmp_path / "x")
    assert severe(raw, "data.pkl"), scan_bytes(raw, "data.pkl").findings


def test_inert_bytes_after_a_pickle_stay_low() -> None:
    raw = pickle.dumps({"a": 1}, protocol=2) + b"\x00\xffjust some trailing bytes"
    result = scan_bytes(raw, "data.pkl")
    assert not result.fails(Severity.MEDIUM), result.findings
    assert "MLT-PKL-010" in {f.rule_id for f in result.findings}


# --------------------------------------------------------------------------------------------
# The text opcodes' numbers: ours against CPython's unpicklers, on generated lines.

_PARTS = [
    b"",
    b"0",
    b"1",
    b"7",
    b"8",
    b"00",
    b"01",
    b"007",
    b"09",
    b"10",
    b"1001",
    b"x",
    b"0x",
    b"0X1f",
    b"0o7",
    b"0b1",
    b"-",
    b"+",
    b" ",
    b"\t",
    b"\x0b",
    b"\x00",
    b"_",
    b"1_0",
    b"L",
    b".",
    b"e",
    b"e5",
    b"1e999",
    b"inf",
    b"nan",
    b"9" * 20,
    b"-9223372036854775808",
    b"9223372036854775808",
    b"\xff",
    b"j",
    b"\r",
]


def _lines() -> list[bytes]:
    import itertools

    small = [b"", b"0", b"1", b"7", b"x", b"-", b" ", b"\x00", b"_", b"L", b".", b"e"]
    out = {a + b for a, b in itertools.product(_PARTS, repeat=2)}
    out |= {a + b + c for a, b, c in itertools.product(small, repeat=3)}
    return sorted(out)


def _outcome(loads: object, data: bytes) -> object:
    try:
        value = loads(data)  # type: ignore[operator]
    except Exception:
        return "refused"
    return ("nan",) if value != value else (type(value) is bool, value)


@pytest.mark.parametrize("op", [b"I", b"L", b"F", b"g", b"p"])
def test_text_opcode_numbers_match_the_unpicklers(op: bytes) -> None:
    import math

    from mltrust.scan._pickle._text import float_arg, int_arg, key_arg, long_arg

    parse = {b"I": int_arg, b"L": long_arg, b"F": float_arg}.get(op, key_arg)
    for line in _lines():
        if op in (b"g", b"p"):
            if sum(ch in b"0123456789" for ch in line) > 3:
                continue  # a large key makes the C unpickler allocate a memo that large
            # PUT then GET the key (what both unpicklers accept as a memo key).
            data = b"N" + op + line + b"\n" if op == b"p" else b"Np" + line + b"\ng" + line + b"\n"
            data += b"."
        else:
            data = op + line + b"\n."
        # mltrust: ignore[MLT-CODE-001] the real unpicklers as oracles, on bytes the test built
        c = _outcome(pickle.loads, data)
        # mltrust: ignore[MLT-CODE-001] the real unpicklers as oracles, on bytes the test built
        py = _outcome(pickle._loads, data)  # type: ignore[attr-defined]
        try:
            ours: object = parse(line)
        except (ValueError, OverflowError):
            ours = "refused"
        if c == "refused" and py == "refused":
            assert ours == "refused" or op in (b"g", b"p"), (op, line, ours)
            continue
        assert ours != "refused", (op, line, c, py)
        if op in (b"I", b"L", b"F") and c != "refused":
            want = c[1] if isinstance(c, tuple) and len(c) == 2 else math.nan
            assert ours == want or (ours != ours and want != want), (op, line, ours, c)


def test_pickle_after_the_frame_of_the_previous_stop_is_analysed(tmp_path: Path) -> None:
    # pickle.load twice on a BytesIO: the first load consumes its whole FRAME, hidden junk
    # included, and the second starts after it.
    body = b"K\x01." + b"\xff" * 8
    raw = b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body + marker_pickle(tmp_path / "x")
    reader = io.BytesIO(raw)
    # mltrust: ignore[MLT-CODE-001] the real unpickler as oracle, on bytes the test built
    assert pickle.load(reader) == 1
    assert reader.tell() == len(raw) - len(marker_pickle(tmp_path / "x"))
    assert severe(raw, "data.pkl"), scan_bytes(raw, "data.pkl").findings
