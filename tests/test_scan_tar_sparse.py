"""GNU sparse tar members as every real reader rebuilds them.

Python's tarfile gives a sparse member two ways: ``extractfile`` (``_FileInFile``: each byte from
the first map run holding it, searched from the last run used) and ``extract``/``extractall``
(``makefile``: the stored data read in one stream, each run written at its offset in map order,
later runs over earlier ones, then cut to the member's size). A map in a *global* pax header
(``g``) applies to the member after it too. Each attack is checked against the real tarfile in a
subprocess (``extractall(filter='data')`` / ``extractfile`` then ``pickle.load`` creates a
marker file); only then is the scanner asked. The payloads are never loaded here.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from mltrust.config import Limits
from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats import _tar_scan

_MEDIUM = (Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)


def _payload(marker: Path) -> bytes:
    """A protocol-0 pickle that creates ``marker`` when loaded (no shell)."""
    return f"c__builtin__\nopen\n(S'{marker}'\nS'w'\ntR.".encode()


def _pad(b: bytes) -> bytes:
    return b + bytes(-len(b) % 512)


def _hdr(name: str, size: int, typ: bytes = tarfile.REGTYPE) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.type = typ
    ti.mtime = 0
    return ti.tobuf(format=tarfile.USTAR_FORMAT)


def _pax(records: dict[str, str], typ: bytes = tarfile.XHDTYPE) -> bytes:
    return tarfile.TarInfo._create_pax_generic_header(records, typ, "utf-8")  # type: ignore[attr-defined]


def _old_gnu(name: str, raw: bytes, smap: list[tuple[int, int]], realsize: int) -> bytes:
    assert len(smap) <= 4
    h = bytearray(_hdr(name, len(raw)))
    h[156:157] = b"S"
    for i, (o, n) in enumerate(smap):
        h[386 + 24 * i : 398 + 24 * i] = b"%011o\0" % o
        h[398 + 24 * i : 410 + 24 * i] = b"%011o\0" % n
    h[483:495] = b"%011o\0" % realsize
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h) + _pad(raw)


def _end(blob: bytes) -> bytes:
    return blob + bytes(1024)


_LOADER = """
import pickle, sys, tarfile
path, how, dest = sys.argv[1:4]
with tarfile.open(path) as t:
    if how == "extractall":
        try:
            t.extractall(dest, filter="data")
        except Exception:
            pass  # what was written before the error stays on disk
        with open(dest + "/model.pkl", "rb") as f:
            pickle.load(f)
    else:
        pickle.load(t.extractfile("model.pkl"))
"""


def _really_runs(blob: bytes, how: str, tmp_path: Path, marker: Path) -> bool:
    """Whether the real tarfile (``how``: extractall or extractfile) + pickle.load runs it."""
    path = tmp_path / f"{how}.tar"
    path.write_bytes(blob)
    dest = tmp_path / f"out-{how}"
    dest.mkdir()
    subprocess.run(
        [sys.executable, "-c", _LOADER, str(path), how, str(dest)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return marker.exists()


def _worst(blob: bytes) -> dict[str, Severity]:
    out: dict[str, Severity] = {}
    for f in scan_bytes(blob, "model.tar").findings:
        out[f.rule_id] = max(out.get(f.rule_id, f.severity), f.severity)
    return out


def _flags_payload(blob: bytes) -> None:
    rules = _worst(blob)
    assert _pickle_flagged(rules), rules
    assert rules.get("MLT-ARC-018") in _MEDIUM, rules


def _pickle_flagged(rules: dict[str, Severity]) -> bool:
    """The payload's import of ``builtins.open`` is reported as dangerous (high or above)."""
    return any(k.startswith("MLT-PKL-") and v in _MEDIUM[1:] for k, v in rules.items())


# -- attacks -----------------------------------------------------------------------------------


def test_global_pax_sparse_map_extractall_writes_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    p = _payload(marker)
    raw = b"\xff" + p  # not a pickle as stored; makefile writes raw[1:] over raw[:1]
    blob = _end(
        _pax({"GNU.sparse.map": f"0,1,0,{len(p)}"}, tarfile.XGLTYPE)
        + _hdr("model.pkl", len(raw))
        + _pad(raw)
    )
    assert _really_runs(blob, "extractall", tmp_path, marker)
    _flags_payload(blob)


def test_global_pax_sparse_map_extractfile_reads_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    p = _payload(marker)
    raw = p[:1] + b"\xff" + p[1:]
    blob = _end(
        _pax({"GNU.sparse.map": f"0,1,0,{len(raw)}"}, tarfile.XGLTYPE)
        + _hdr("model.pkl", len(raw))
        + _pad(raw)
    )
    assert _really_runs(blob, "extractfile", tmp_path, marker)
    rules = _worst(blob)
    assert _pickle_flagged(rules), rules


def test_global_pax_sparse_00_extractall_writes_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    p = _payload(marker)
    body = b"\xff" * 7 + p
    # 0.0 records repeat (offset/numbytes per run), so they are written by hand.
    recs = _records(
        [
            ("GNU.sparse.size", str(len(p))),
            ("GNU.sparse.numblocks", "2"),
            ("GNU.sparse.offset", "0"),
            ("GNU.sparse.numbytes", "7"),
            ("GNU.sparse.offset", "0"),
            ("GNU.sparse.numbytes", str(len(p))),
        ]
    )
    g = _hdr("pax_global_header", len(recs), tarfile.XGLTYPE) + _pad(recs)
    blob = _end(g + _hdr("model.pkl", len(body)) + _pad(body))
    assert _really_runs(blob, "extractall", tmp_path, marker)
    _flags_payload(blob)


def _record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return f"{n}{body}".encode()


def _records(items: list[tuple[str, str]]) -> bytes:
    return b"".join(_record(k, v) for k, v in items)


def test_global_pax_sparse_10_extractall_writes_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    p = _payload(marker)
    smap = _pad(f"2\n0\n1\n0\n{len(p)}\n".encode())
    body = smap + b"\xff" + p
    recs = _records(
        [("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.realsize", str(len(p)))]
    )
    g = _hdr("pax_global_header", len(recs), tarfile.XGLTYPE) + _pad(recs)
    blob = _end(g + _hdr("model.pkl", len(body)) + _pad(body))
    assert _really_runs(blob, "extractall", tmp_path, marker)
    _flags_payload(blob)


def test_pax_x_overlapping_sparse_map_extractall_writes_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    p = _payload(marker)
    raw = b"\xff" + p
    blob = _end(
        _pax({"GNU.sparse.map": f"0,1,0,{len(p)}"}) + _hdr("model.pkl", len(raw)) + _pad(raw)
    )
    assert _really_runs(blob, "extractall", tmp_path, marker)
    _flags_payload(blob)


def test_old_gnu_sparse_overlapping_map_extractall_writes_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    p = _payload(marker)
    raw = b"\xff" + p
    blob = _end(_old_gnu("model.pkl", raw, [(0, 1), (0, len(p))], len(p)))
    assert _really_runs(blob, "extractall", tmp_path, marker)
    _flags_payload(blob)


def test_global_sparse_map_stays_for_later_x_headers(tmp_path: Path) -> None:
    """The map of a ``g`` header is also merged into every later ``x`` header's records."""
    marker = tmp_path / "ran"
    p = _payload(marker)
    raw = b"\xff" + p
    g = _pax({"GNU.sparse.map": f"0,1,0,{len(p)}"}, tarfile.XGLTYPE)
    first = _hdr("a.txt", 2) + _pad(b"hi")  # takes the map first
    x = _pax({"comment": "x"})
    blob = _end(g + first + x + _hdr("model.pkl", len(raw)) + _pad(raw))
    assert _really_runs(blob, "extractall", tmp_path, marker)
    _flags_payload(blob)


def test_sparse_run_past_archive_end_leaves_written_runs(tmp_path: Path) -> None:
    """extractall fails on a run whose data is missing, after writing the runs before it."""
    marker = tmp_path / "ran"
    p = _payload(marker)
    raw = b"\xff" + p
    body = _pad(raw)
    smap = f"0,{len(raw)},1,{len(raw)},0,{1 << 20}"
    blob = (
        _pax({"GNU.sparse.map": smap, "GNU.sparse.size": str(len(raw))})
        + _hdr("model.pkl", len(raw))
        + body
    )
    # no end-of-archive marker: the last run reads past the end of the file
    rules = _worst(blob)
    assert max(rules.values()) in _MEDIUM, rules


# -- benign ------------------------------------------------------------------------------------


def test_tarfile_written_archive_is_clean() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, content in (("a.txt", b"hello\n"), ("b.bin", bytes(3000))):
            ti = tarfile.TarInfo(name)
            ti.size = len(content)
            t.addfile(ti, io.BytesIO(content))
    rules = _worst(buf.getvalue())
    assert not {k: v for k, v in rules.items() if v in _MEDIUM}, rules


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar not installed")
@pytest.mark.parametrize("fmt", ["gnu", "pax-0.0", "pax-0.1", "pax-1.0", "oldgnu"])
def test_gnu_tar_sparse_archive_is_clean_and_rebuilt(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "holes.bin", "wb") as f:
        for i in range(6):
            f.seek(i * 40960)
            f.write(bytes([65 + i]) * 1000)
        f.truncate(6 * 40960 + 100)
    expected = (src / "holes.bin").read_bytes()
    out = tmp_path / "a.tar"
    args = ["tar", "--sparse", "-cf", str(out), "-C", str(src), "holes.bin"]
    if fmt.startswith("pax-"):
        major, minor = fmt[4:].split(".")
        args[1:1] = ["--format=pax", f"--sparse-version={major}.{minor}"]
    else:
        args[1:1] = [f"--format={fmt}"]
    subprocess.run(args, check=True, capture_output=True)
    blob = out.read_bytes()
    rules = _worst(blob)
    assert not {k: v for k, v in rules.items() if v in _MEDIUM}, rules
    assert _views(blob)["holes.bin"] == {expected}


# -- differential ------------------------------------------------------------------------------


def _views(blob: bytes) -> dict[str, set[bytes]]:
    view = memoryview(blob)
    out: dict[str, set[bytes]] = {}
    for m in _tar_scan._walk(view, Limits()):
        if isinstance(m, _tar_scan._Member) and m.type in _tar_scan._REGULAR:
            if m.sparse is None:
                out[m.name] = {bytes(view[m.data_start : m.data_start + m.size])}
            else:
                out[m.name] = set(
                    _tar_scan._sparse_views(
                        view, m, Limits(max_decompressed_in_memory=1 << 24)
                    ).contents.values()
                )
    return out


_DIFF = """
import json, sys, tarfile, os
path, dest = sys.argv[1:3]
res = {}
with tarfile.open(path) as t:
    for m in t.getmembers():
        try:
            res[m.name] = [t.extractfile(m).read().hex()]
        except Exception:
            res[m.name] = [None]
    try:
        t.extractall(dest, filter="data")
    except Exception:
        pass
for name in res:
    p = os.path.join(dest, name)
    res[name].append(open(p, "rb").read().hex() if os.path.isfile(p) else None)
print(json.dumps(res))
"""


def _random_map(rng: random.Random, size: int, ordered: bool) -> list[tuple[int, int]]:
    runs = []
    pos = 0
    for _ in range(rng.randint(1, 5)):
        if ordered:
            pos += rng.randint(0, 300)
            n = rng.randint(0, 400)
            runs.append((pos, n))
            pos += n
        else:
            runs.append((rng.randint(0, size + 50), rng.randint(0, 300)))
    return runs


def _sparse_tar(rng: random.Random, kind: str, smap: list[tuple[int, int]], size: int) -> bytes:
    stored = sum(n for _, n in smap)
    raw = bytes(rng.randrange(256) for _ in range(stored))
    flat = ",".join(f"{o},{n}" for o, n in smap)
    if kind == "x-0.1":
        return (
            _pax({"GNU.sparse.map": flat, "GNU.sparse.size": str(size)})
            + _hdr("m", stored)
            + _pad(raw)
        )
    if kind == "g-0.1":
        return (
            _pax({"GNU.sparse.map": flat, "GNU.sparse.size": str(size)}, tarfile.XGLTYPE)
            + _hdr("m", stored)
            + _pad(raw)
        )
    if kind in ("x-0.0", "g-0.0"):
        items = [("GNU.sparse.size", str(size))]
        for o, n in smap:
            items += [("GNU.sparse.offset", str(o)), ("GNU.sparse.numbytes", str(n))]
        recs = _records(items)
        typ = tarfile.XHDTYPE if kind[0] == "x" else tarfile.XGLTYPE
        return _hdr("pax", len(recs), typ) + _pad(recs) + _hdr("m", stored) + _pad(raw)
    if kind in ("x-1.0", "g-1.0"):
        body = _pad(f"{len(smap)}\n".encode() + b"".join(b"%d\n%d\n" % r for r in smap)) + raw
        recs = _records(
            [
                ("GNU.sparse.major", "1"),
                ("GNU.sparse.minor", "0"),
                ("GNU.sparse.realsize", str(size)),
            ]
        )
        typ = tarfile.XHDTYPE if kind[0] == "x" else tarfile.XGLTYPE
        return _hdr("pax", len(recs), typ) + _pad(recs) + _hdr("m", len(body)) + _pad(body)
    assert kind == "S"
    return _old_gnu("m", raw, smap[:4], size)


@pytest.mark.parametrize("kind", ["x-0.1", "g-0.1", "x-0.0", "g-0.0", "x-1.0", "g-1.0", "S"])
def test_sparse_views_include_what_tarfile_returns(tmp_path: Path, kind: str) -> None:
    """Differential: extractfile's and extractall's bytes are among the rebuilt contents."""
    import json

    rng = random.Random(kind)
    cases = []
    for i in range(24):
        size = rng.randint(1, 1500)
        smap = _random_map(rng, size, ordered=i % 2 == 0)
        if kind == "S":
            smap = [(o, n) for o, n in smap if o and n][:4] or [(1, 1)]
        cases.append(_end(_sparse_tar(rng, kind, smap, size)))
    for i, blob in enumerate(cases):
        path = tmp_path / f"{i}.tar"
        path.write_bytes(blob)
        dest = tmp_path / f"out{i}"
        dest.mkdir()
        done = subprocess.run(
            [sys.executable, "-c", _DIFF, str(path), str(dest)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        real = json.loads(done.stdout)["m"]
        ours = _views(blob)["m"]
        for got in real:
            if got is not None:
                assert bytes.fromhex(got) in ours, (i, kind)
