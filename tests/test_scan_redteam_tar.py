"""Red-team findings against the tar reader: header encodings, empty names, symlink chains.

Python's :mod:`tarfile` is the oracle (``torch.load`` reads the oldest checkpoint format with
it, and ``TarFile.extractall`` is how tars get unpacked). Each attack test first proves, with
the real reader in a subprocess, that the hidden content is read or written outside the
destination; then that ``mltrust scan`` reports it. The differential tests at the end compare
our member list with tarfile's for many odd but valid archives.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltrust.config import Limits
from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats import _tar_scan
from mltrust.scan.formats import tar as tar_mod

# -- helpers -----------------------------------------------------------------------------------


class _Marker:
    """A pickle that writes a file when loaded: proves the real loader ran it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # mltrust: ignore[MLT-CODE-013] the payload the attack file carries; the test never calls it
        return (exec, (f"open({self.path!r}, 'w').write('ran')",))


def _worst(data: bytes, name: str = "x.tar") -> dict[str, Severity]:
    out: dict[str, Severity] = {}
    for f in scan_bytes(data, name).findings:
        out[f.rule_id] = max(out.get(f.rule_id, f.severity), f.severity)
    return out


def _fails(data: bytes, at: Severity, name: str = "x.tar") -> bool:
    return any(s >= at for s in _worst(data, name).values())


def _tar(members: list[tuple[str, bytes, str, bytes]], fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    """``(name, type, linkname, data)`` members written by tarfile itself."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, typ, target, data in members:
            ti = tarfile.TarInfo(name)
            ti.type = typ
            ti.linkname = target
            if typ == tarfile.REGTYPE:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return buf.getvalue()


_REG = tarfile.REGTYPE
_SYM = tarfile.SYMTYPE
_LNK = tarfile.LNKTYPE
_DIR = tarfile.DIRTYPE


def _checksum(block: bytes | bytearray) -> int:
    return 256 + sum(block[:148]) + sum(block[156:512])


def _set_field(raw: bytes, at: int, lo: int, hi: int, value: bytes) -> bytes:
    """``raw`` with bytes ``lo:hi`` of the header at ``at`` replaced (checksum redone in octal)."""
    out = bytearray(raw)
    out[at + lo : at + hi] = value.ljust(hi - lo, b"\0")[: hi - lo]
    blk = out[at : at + 512]
    out[at + 148 : at + 156] = b"%06o\0 " % _checksum(blk)
    return bytes(out)


# Ways to write a number that tarfile's nti() reads; each takes (value, field width).
_ENCODINGS: dict[str, Callable[[int, int], bytes]] = {
    "octal": lambda v, w: b"%0*o\0" % (w - 1, v),
    "base256": lambda v, w: b"\x80" + v.to_bytes(w - 1, "big"),
    "tab": lambda v, w: b"\t%o" % v,
    "spaces": lambda v, w: b" %o " % v,
    "0o": lambda v, w: b"0o%o" % v,
    "underscore": lambda v, w: b"_".join(bytes([c]) for c in b"%o" % v),
    "plus": lambda v, w: b"+%o" % v,
    "junk-after-nul": lambda v, w: b"%o\0\xff\xfeZ" % v,
    "no-nul": lambda v, w: b"%0*o" % (w, v),
}


def _encode(value: int, width: int, style: str) -> bytes:
    out = _ENCODINGS[style](value, width)
    if len(out) > width:
        out = _ENCODINGS["octal"](value, width)
    return out.ljust(width, b"\0")


def _with_checksum(raw: bytes, at: int, style: str) -> bytes:
    """The header at ``at`` with its checksum written in ``style``."""
    out = bytearray(raw)
    blk = bytearray(out[at : at + 512])
    out[at + 148 : at + 156] = _encode(_checksum(blk), 8, style)
    return bytes(out)


def _legacy_torch(evil: Any, first: bytes = b"") -> bytes:
    """The oldest torch.save layout (a tar of storages/tensors/pickle), ``first`` prepended."""
    members = [
        ("storages", _REG, "", pickle.dumps(0, protocol=2) + pickle.dumps([], protocol=2)),
        ("tensors", _REG, "", pickle.dumps(0, protocol=2)),
        ("pickle", _REG, "", pickle.dumps(evil, protocol=2)),
    ]
    return first + _tar(members)


def _empty_name_header(typ: bytes = _REG) -> bytes:
    """A valid ustar header block whose name field is all NULs."""
    ti = tarfile.TarInfo("x")
    ti.type = typ
    blk = bytearray(ti.tobuf(format=tarfile.USTAR_FORMAT))
    blk[0:100] = bytes(100)
    blk[148:156] = b"%06o\0 " % _checksum(blk)
    return bytes(blk)


def _run(code: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, timeout=120
    )


_EXTRACT = "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])"


def _escapes_on_extract(blob: bytes, tmp_path: Path, marker: str) -> bool:
    """Whether ``tarfile.extractall`` (default filter) writes ``marker`` beside ``dest``."""
    box = tmp_path / "box"
    (box / "dest").mkdir(parents=True)
    (tmp_path / "a.tar").write_bytes(blob)
    try:
        _run(_EXTRACT, str(tmp_path / "a.tar"), str(box / "dest"))
    except subprocess.CalledProcessError:
        pass  # extraction may fail after the escaping write
    return (box / marker).exists()


# -- 04: a first header with an empty name ----------------------------------------------------


def test_attack_empty_first_name_hides_legacy_torch_pickle(tmp_path: Path) -> None:
    raw = _legacy_torch(_Marker(tmp_path / "ran"), first=_empty_name_header())
    assert raw[:100] == bytes(100)
    assert _oracle(raw) == ["", "storages", "tensors", "pickle"]  # tarfile reads every member
    assert _worst(raw, "model.pt").get("MLT-PKL-001") == Severity.CRITICAL


def test_attack_empty_first_name_hides_path_traversal(tmp_path: Path) -> None:
    """An empty-named directory is extracted as the destination itself; the next member climbs
    out. (An empty-named regular file makes extractall fail before the next member.)"""
    raw = _empty_name_header(_DIR) + _tar([("../marker", _REG, "", b"outside\n")])
    assert _escapes_on_extract(raw, tmp_path, "marker")
    assert _worst(raw).get("MLT-ARC-001") == Severity.HIGH


# -- 05: numbers written in encodings tarfile accepts -----------------------------------------

# "spaces" and "no-nul" were read before the fix too: they stay in the differential tests.
_CHECKSUM_STYLES = sorted(set(_ENCODINGS) - {"octal", "spaces", "no-nul"})


@pytest.mark.parametrize("style", _CHECKSUM_STYLES)
def test_attack_first_checksum_in_odd_encoding_hides_legacy_torch_pickle(style: str) -> None:
    raw = _with_checksum(_legacy_torch(_Marker(Path("/nonexistent/x"))), 0, style)
    assert _oracle(raw) == ["storages", "tensors", "pickle"]
    assert tar_mod.TarScanner().sniff(memoryview(raw), "model.pt")
    assert _worst(raw, "model.pt").get("MLT-PKL-001") == Severity.CRITICAL


@pytest.mark.parametrize("style", _CHECKSUM_STYLES)
def test_attack_later_checksum_in_odd_encoding_hides_member(style: str) -> None:
    raw = _legacy_torch(_Marker(Path("/nonexistent/x")))
    third = raw.index(b"pickle\0") // 512 * 512
    raw = _with_checksum(raw, third, style)
    assert _oracle(raw) == ["storages", "tensors", "pickle"]
    worst = _worst(raw, "model.pt")
    assert worst.get("MLT-PKL-001") == Severity.CRITICAL
    assert "MLT-ARC-005" not in worst  # tarfile reads the header: it is not corrupt


def test_attack_every_numeric_field_in_odd_encodings(tmp_path: Path) -> None:
    """mode, uid, gid, size, mtime and the checksum each written another valid way."""
    raw = _tar([("../marker", _REG, "", b"outside\n")])
    size = len(b"outside\n")
    raw = _set_field(raw, 0, 100, 108, _encode(0o644, 8, "0o"))
    raw = _set_field(raw, 0, 108, 116, _encode(0, 8, "spaces"))
    raw = _set_field(raw, 0, 116, 124, _encode(0, 8, "base256"))
    raw = _set_field(raw, 0, 124, 136, _encode(size, 12, "base256"))
    raw = _set_field(raw, 0, 136, 148, _encode(0o1234, 12, "underscore"))
    raw = _with_checksum(raw, 0, "tab")
    assert _escapes_on_extract(raw, tmp_path, "marker")
    assert _worst(raw).get("MLT-ARC-001") == Severity.HIGH


def test_real_torch_load_runs_the_hidden_pickles(tmp_path: Path) -> None:
    """The oracle for the two tests above: torch's legacy tar path runs every variant."""
    pytest.importorskip("torch")
    paths = []
    for i, style in enumerate(["empty-name", *_CHECKSUM_STYLES]):
        marker = tmp_path / f"ran-{i}"
        if style == "empty-name":
            raw = _legacy_torch(_Marker(marker), first=_empty_name_header())
        else:
            raw = _with_checksum(_legacy_torch(_Marker(marker)), 0, style)
        (tmp_path / f"{i}.pt").write_bytes(raw)
        paths.append((str(tmp_path / f"{i}.pt"), str(marker)))
    code = (
        "import os, sys, torch\n"
        "for path, marker in zip(sys.argv[1::2], sys.argv[2::2]):\n"
        "    try:\n"
        "        torch.load(path, weights_only=False)\n"
        "    except Exception:\n"
        "        pass\n"
        "    assert os.path.exists(marker), path\n"
    )
    _run(code, *[x for pair in paths for x in pair])


# -- 02: symbolic links resolved through earlier links ----------------------------------------

_CHAINS: dict[str, list[tuple[str, bytes, str, bytes]]] = {
    # d -> . ; e -> d/d/d/.. (lexically d/d, really the parent of the destination)
    "dot-chain": [("d", _SYM, ".", b""), ("e", _SYM, "d/d/d/..", b"")],
    # a -> x/.. is inside while x does not exist; x -> d (= the root) makes a the parent
    "late-link": [("d", _SYM, ".", b""), ("a", _SYM, "x/..", b""), ("x", _SYM, "d", b"")],
    # a hard link to a symlink member is extracted as a copy of that symlink, elsewhere
    "hardlink-copies-symlink": [
        ("sub", _DIR, "", b""),
        ("sub/s", _SYM, "..", b""),
        ("t", _LNK, "sub/s", b""),
    ],
    # the member's own parent is reached through a link that was fine when created
    "parent-through-link": [("d", _SYM, ".", b""), ("d/d/e", _SYM, "..", b"")],
    # a symbolic link over an existing folder is never created (the folder cannot be unlinked):
    # d/l is resolved from the folder d, where ".." is the root, not from a/b/c
    "link-over-folder-is-not-created": [
        ("d", _DIR, "", b""),
        ("d", _SYM, "a/b/c", b""),
        ("q", _SYM, ".", b""),
        ("d/l", _SYM, "../q/..", b""),
    ],
}
_THROUGH = {"dot-chain": "e", "late-link": "a", "hardlink-copies-symlink": "t"}
_THROUGH["parent-through-link"] = "e"
_THROUGH["link-over-folder-is-not-created"] = "d/l"


@pytest.mark.parametrize("kind", sorted(_CHAINS))
def test_attack_symlink_chain_escapes_destination(kind: str, tmp_path: Path) -> None:
    through = _THROUGH[kind]
    raw = _tar([*_CHAINS[kind], (f"{through}/marker", _REG, "", b"outside\n")])
    assert _escapes_on_extract(raw, tmp_path, "marker")
    worst = _worst(raw)
    assert worst.get("MLT-ARC-001") == Severity.HIGH, worst  # e/marker is written outside


def test_attack_symlink_chain_link_itself_is_reported() -> None:
    raw = _tar(_CHAINS["dot-chain"])
    assert _worst(raw).get("MLT-ARC-013") == Severity.HIGH


def test_attack_symlink_that_escapes_only_after_later_links_is_reported() -> None:
    """No member is written through it, but the link left on disk points outside."""
    raw = _tar(_CHAINS["late-link"])
    assert _worst(raw).get("MLT-ARC-013") == Severity.HIGH


def test_attack_symlink_loop_is_reported() -> None:
    raw = _tar([("l1", _SYM, "l2", b""), ("l2", _SYM, "l1", b""), ("l1/x", _REG, "", b"x")])
    assert _fails(raw, Severity.HIGH)


def test_symlinks_that_stay_inside_are_clean(tmp_path: Path) -> None:
    raw = _tar(
        [
            ("usr/lib/a", _REG, "", b"a"),
            ("lib", _SYM, "usr/lib", b""),
            ("lib/b", _REG, "", b"b"),
            ("usr/share", _SYM, "../usr/./lib/../lib", b""),
            ("here", _SYM, ".", b""),
            ("here/here/c", _REG, "", b"c"),
            ("h", _LNK, "lib/b", b""),
        ]
    )
    box = tmp_path / "box"
    (box / "dest").mkdir(parents=True)
    (tmp_path / "a.tar").write_bytes(raw)
    _run(_EXTRACT, str(tmp_path / "a.tar"), str(box / "dest"))
    assert os.listdir(box) == ["dest"]
    worst = _worst(raw)
    assert "MLT-ARC-001" not in worst and "MLT-ARC-013" not in worst, worst


# -- differential: tarfile's member list is ours ----------------------------------------------


def _oracle(blob: bytes) -> list[str] | None:
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as t:
            return [m.name for m in t.getmembers()]
    except Exception:  # tarfile refuses the file (or crashes on it): nothing is loaded
        return None


def _ours(blob: bytes) -> list[str] | None:
    view = memoryview(blob)
    if not tar_mod.TarScanner().sniff(view, "x.tar"):
        return None
    return [m.name for m in _tar_scan._walk(view, Limits()) if isinstance(m, _tar_scan._Member)]


def _assert_agrees(blob: bytes) -> None:
    expected = _oracle(blob)
    if expected:
        # Fail closed: whatever tarfile opens with members, we recognise as a tar.
        assert tar_mod.TarScanner().sniff(memoryview(blob), "x.tar"), expected
    got = _ours(blob)
    if expected and got != expected:
        assert _fails(blob, Severity.MEDIUM), (got, expected)


_NUMERIC = [(100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (329, 337), (337, 345)]
_NAMES = st.sampled_from(["a", "b/c", "", ".", "..", "../x", "/abs", "d/", "x" * 120, "é"])
_TYPES = st.sampled_from([_REG, _DIR, _SYM, _LNK, tarfile.FIFOTYPE, b"Z"])


@st.composite
def _archives(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
    members = draw(
        st.lists(st.tuples(_NAMES, _TYPES, _NAMES, st.binary(max_size=600)), min_size=1, max_size=4)
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, typ, target, data in members:
            ti = tarfile.TarInfo(name)
            ti.type = typ
            ti.linkname = target
            try:
                if typ in (_REG, b"Z"):
                    ti.size = len(data)
                    t.addfile(ti, io.BytesIO(data))
                else:
                    t.addfile(ti)
            except ValueError:  # a name the format cannot hold
                continue
    raw = buf.getvalue()
    if draw(st.booleans()):  # the first header's name field emptied
        raw = _set_field(raw, 0, 0, 100, b"")
    # Re-encode numeric fields of the headers tarfile reads (member headers and meta headers).
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        offsets = sorted({0, *(m.offset for m in t.getmembers())})
    for at in offsets:
        if at + 512 > len(raw) or not any(raw[at : at + 512]):
            continue
        for lo, hi in _NUMERIC:
            if draw(st.booleans()):
                style = draw(st.sampled_from(sorted(_ENCODINGS)))
                value = tarfile.nti(raw[at + lo : at + hi])  # type: ignore[attr-defined]
                if value >= 0:
                    raw = _set_field(raw, at, lo, hi, _encode(value, hi - lo, style))
        raw = _with_checksum(raw, at, draw(st.sampled_from(sorted(_ENCODINGS))))
    return raw


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(_archives())
def test_differential_member_names_match_tarfile(raw: bytes) -> None:
    _assert_agrees(raw)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(min_size=512, max_size=2048), st.data())
def test_differential_random_header_with_valid_checksum(block: bytes, data: st.DataObject) -> None:
    """Arbitrary bytes made into a header by valid numbers and checksum: tarfile is the judge."""
    raw = bytearray(block)
    raw[156] = data.draw(st.sampled_from(list(b"0125L Kx g S7Z\x00")))
    for lo, hi in _NUMERIC:
        value = data.draw(st.integers(0, 8 ** (hi - lo - 2)))
        style = data.draw(st.sampled_from(sorted(_ENCODINGS)))
        raw[lo:hi] = _encode(value, hi - lo, style)
    _assert_agrees(_with_checksum(bytes(raw), 0, data.draw(st.sampled_from(sorted(_ENCODINGS)))))


_CRAFTED = {
    "gnu-longname": _tar([("n" * 300, _REG, "", b"x")], tarfile.GNU_FORMAT),
    "pax-longlink": _tar([("l", _SYM, "t" * 300, b"")], tarfile.PAX_FORMAT),
    "empty-first-name": _empty_name_header() + _tar([("a", _REG, "", b"a")]),
    "empty-first-dir": _empty_name_header(_DIR) + _tar([("a", _REG, "", b"a")]),
    "negative-base256-size": _set_field(
        _tar([("a", _REG, "", b"a"), ("b", _REG, "", b"b")]), 0, 124, 136, b"\xff" * 12
    ),
    "high-byte-not-base256": _set_field(
        _tar([("a", _REG, "", b"a"), ("b", _REG, "", b"b")]), 512 * 2, 124, 136, b"\x81" + bytes(11)
    ),
    "bad-mode-second-header": _set_field(
        _tar([("a", _REG, "", b"a"), ("b", _REG, "", b"b")]), 512 * 2, 100, 108, b"9"
    ),
    "non-utf8-name": _tar([("a", _REG, "", b"a")]).replace(b"a\0", b"\xff\0", 1),
}


@pytest.mark.parametrize("kind", sorted(_CRAFTED))
def test_differential_crafted_archives(kind: str) -> None:
    raw = _CRAFTED[kind]
    if kind == "non-utf8-name":
        raw = _with_checksum(raw, 0, "octal")
    _assert_agrees(raw)


def test_attack_link_resolution_step_bomb_fails_closed() -> None:
    """Long link targets followed many times: the per-archive step budget runs out, and the
    paths it could not check are reported (high), in bounded time."""
    raw = _tar(
        [
            ("x", _SYM, "./" * 200_000 + ".", b""),
            *[(f"y{i}", _SYM, "x/" * 39 + "f", b"") for i in range(20)],
        ],
        tarfile.PAX_FORMAT,
    )
    findings = scan_bytes(raw, "x.tar").findings
    assert any(f.severity >= Severity.HIGH and "too many steps" in f.message for f in findings), (
        findings
    )
