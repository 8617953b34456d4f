"""Red-team findings against the tar, zip, joblib and HDF5 readers of ``mltrust scan``.

One test per attack, named after it. The real loader is the oracle: each test first checks
that tarfile / zipfile / joblib / h5py really reads the hidden content, then that the scanner
reports it. No payload is ever loaded: the pickles are only built and scanned.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import pickle
import random
import struct
import tarfile
import warnings
import zipfile
import zlib
from typing import Any

import pytest

from mltrust.config import Limits
from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats import _tar_scan


class _Evil:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("true",))


PAYLOAD = pickle.dumps(_Evil(), protocol=2)


def _rules(data: bytes, name: str) -> dict[str, Severity]:
    out: dict[str, Severity] = {}
    for f in scan_bytes(data, name).findings:
        out[f.rule_id] = max(out.get(f.rule_id, f.severity), f.severity)
    return out


def _pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 512)


def _header(name: str, size: int, typ: bytes = tarfile.REGTYPE, **fields: Any) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.type = typ
    ti.mode = 0o644
    for k, v in fields.items():
        setattr(ti, k, v)
    return ti.tobuf(format=tarfile.USTAR_FORMAT)


def _with_size(header: bytes, size: int) -> bytes:
    """``header`` with its size field set to ``size`` (tobuf writes 0 for non-regular types)."""
    h = bytearray(header)
    h[124:136] = b"%011o\0" % size
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def _regular(name: str, data: bytes) -> bytes:
    return _header(name, len(data)) + _pad(data)


def _legacy_members() -> bytes:
    return b"".join(_regular(n, PAYLOAD) for n in ("storages", "tensors", "pickle"))


def _tarfile_members(blob: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(blob)) as t:
        for m in t.getmembers():
            if m.isreg():
                f = t.extractfile(m)
                assert f is not None
                out[m.name] = f.read()
    return out


# -- 1. data hidden after a non-regular tar header -------------------------------------------


@pytest.mark.parametrize(
    ("typ", "fields"),
    [
        (tarfile.DIRTYPE, {}),
        (tarfile.SYMTYPE, {"linkname": "x"}),
        (tarfile.LNKTYPE, {"linkname": "x"}),
        (tarfile.CHRTYPE, {}),
        (tarfile.BLKTYPE, {}),
        (tarfile.FIFOTYPE, {}),
    ],
)
def test_tar_members_hidden_in_non_regular_member_data(typ: bytes, fields: dict[str, str]) -> None:
    hidden = _legacy_members()
    blob = _with_size(_header("d", 0, typ, **fields), len(hidden)) + hidden + b"\0" * 1024
    assert _tarfile_members(blob)["storages"] == PAYLOAD  # tarfile reads them as members
    rules = _rules(blob, "model.pt")
    assert rules.get("MLT-ARC-018") == Severity.HIGH
    assert rules.get("MLT-PKL-001") == Severity.CRITICAL


def test_tar_members_hidden_after_directory_with_pax_size() -> None:
    """Header size 0, pax size N: tarfile reads the next N bytes as members, GNU tar skips them."""
    hidden = _legacy_members()
    blob = _pax([("size", str(len(hidden)))]) + _header("d", 0, tarfile.DIRTYPE) + hidden
    blob += b"\0" * 1024
    assert "storages" in _tarfile_members(blob)
    rules = _rules(blob, "model.pt")
    assert rules.get("MLT-ARC-018") == Severity.HIGH
    assert rules.get("MLT-PKL-001") == Severity.CRITICAL


def test_tar_members_hidden_in_v7_directory_data() -> None:
    """An old-style directory (type NUL, name ending in '/') carries no data for tarfile."""
    hidden = _legacy_members()
    head = bytearray(_with_size(_header("d/", 0), len(hidden)))
    head[156:157] = b"\0"
    head[148:156] = b" " * 8
    head[148:156] = b"%06o\0 " % sum(head)
    blob = bytes(head) + hidden + b"\0" * 1024
    assert "storages" in _tarfile_members(blob)
    rules = _rules(blob, "model.pt")
    assert rules.get("MLT-ARC-018") == Severity.HIGH
    assert rules.get("MLT-PKL-001") == Severity.CRITICAL


def test_tar_regular_members_unchanged() -> None:
    blob = _regular("a.txt", b"hello") + _header("dir", 0, tarfile.DIRTYPE) + b"\0" * 1024
    assert "MLT-ARC-018" not in _rules(blob, "x.tar")


def test_tar_pax_records_after_a_malformed_one_are_ignored_like_tarfile() -> None:
    """tarfile stops at the first record that does not parse: a later 'path' is not applied."""
    records = _pax_record("path", "storages") + b"bogus\n" + _pax_record("path", "innocent")
    blob = _header("././@PaxHeader", len(records), tarfile.XHDTYPE) + _pad(records)
    blob += _regular("x", PAYLOAD) + _regular("tensors", PAYLOAD) + _regular("pickle", PAYLOAD)
    blob += b"\0" * 1024
    assert set(_tarfile_members(blob)) == {"storages", "tensors", "pickle"}
    result = scan_bytes(blob, "model.pt")
    assert "storages:pickle" in result.formats
    assert dict(result.facts).get("torch_legacy_tar") is True


# -- 2. GNU sparse members (pax 0.0 / 0.1 / 1.0 and old GNU 'S') -----------------------------


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return f"{n}{body}".encode()


def _pax(records: list[tuple[str, str]]) -> bytes:
    payload = b"".join(_pax_record(k, v) for k, v in records)
    return _header("././@PaxHeader", len(payload), tarfile.XHDTYPE) + _pad(payload)


def _sparse10(name: str, chunks: list[tuple[int, bytes]], realsize: int) -> bytes:
    smap = f"{len(chunks)}\n" + "".join(f"{o}\n{len(c)}\n" for o, c in chunks)
    body = _pad(smap.encode()) + b"".join(c for _, c in chunks)
    pax = _pax(
        [
            ("GNU.sparse.major", "1"),
            ("GNU.sparse.minor", "0"),
            ("GNU.sparse.name", name),
            ("GNU.sparse.realsize", str(realsize)),
        ]
    )
    return pax + _header(f"GNUSparseFile.0/{name}", len(body)) + _pad(body)


def _sparse01(name: str, chunks: list[tuple[int, bytes]], realsize: int) -> bytes:
    smap = ",".join(f"{o},{len(c)}" for o, c in chunks)
    body = b"".join(c for _, c in chunks)
    pax = _pax(
        [
            ("GNU.sparse.map", smap),
            ("GNU.sparse.name", name),
            ("GNU.sparse.size", str(realsize)),
        ]
    )
    return pax + _header(f"GNUSparseFile.0/{name}", len(body)) + _pad(body)


def _sparse00(name: str, chunks: list[tuple[int, bytes]], realsize: int) -> bytes:
    records = [("GNU.sparse.size", str(realsize)), ("GNU.sparse.numblocks", str(len(chunks)))]
    for o, c in chunks:
        records += [("GNU.sparse.offset", str(o)), ("GNU.sparse.numbytes", str(len(c)))]
    body = b"".join(c for _, c in chunks)
    return _pax([*records, ("path", name)]) + _header("sparse", len(body)) + _pad(body)


def _old_gnu_sparse(name: str, chunks: list[tuple[int, bytes]], realsize: int) -> bytes:
    assert len(chunks) <= 4
    body = b"".join(c for _, c in chunks)
    h = bytearray(_header(name, len(body)))
    h[156:157] = b"S"
    for i, (o, c) in enumerate(chunks):
        h[386 + 24 * i : 398 + 24 * i] = b"%011o\0" % o
        h[398 + 24 * i : 410 + 24 * i] = b"%011o\0" % len(c)
    h[483:495] = b"%011o\0" % realsize
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h) + _pad(body)


_SPARSE = {
    "pax-1.0": _sparse10,
    "pax-0.1": _sparse01,
    "pax-0.0": _sparse00,
    "gnu-S": _old_gnu_sparse,
}


@pytest.mark.parametrize("kind", sorted(_SPARSE))
def test_tar_gnu_sparse_member_hides_pickle(kind: str) -> None:
    make = _SPARSE[kind]
    blob = b"".join(
        make(n, [(0, PAYLOAD)], len(PAYLOAD)) for n in ("storages", "tensors", "pickle")
    )
    blob += b"\0" * 1024
    assert _tarfile_members(blob)["storages"] == PAYLOAD  # the oracle strips the sparse map
    rules = _rules(blob, "model.pt")
    assert rules.get("MLT-PKL-001") == Severity.CRITICAL


@pytest.mark.parametrize("kind", sorted(_SPARSE))
def test_tar_sparse_reconstruction_matches_tarfile(kind: str) -> None:
    """Differential: the bytes rebuilt for random sparse maps are tarfile's bytes."""
    rng = random.Random(kind)
    for _ in range(20):
        chunks, pos = [], 0
        for _ in range(rng.randint(1, 4)):
            pos += rng.randint(0, 700)
            chunk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 900)))
            chunks.append((pos, chunk))
            pos += len(chunk)
        realsize = pos + rng.randint(0, 600)
        blob = _SPARSE[kind]("m", chunks, realsize) + b"\0" * 1024
        expected = _tarfile_members(blob)["m"]
        view = memoryview(blob)
        (m,) = [m for m in _tar_scan._walk(view, Limits()) if isinstance(m, _tar_scan._Member)]
        assert not m.problem and m.name == "m"
        views = _tar_scan._sparse_views(view, m, Limits(max_decompressed_in_memory=1 << 20))
        assert not views.odd and not views.errors
        assert list(views.contents.values()) == [expected]


def test_tar_sparse_map_tarfile_cannot_read_is_not_scanned() -> None:
    blob = _sparse10("storages", [(0, PAYLOAD)], len(PAYLOAD))
    blob = blob.replace(b"1\n0\n", b"x\n0\n", 1) + b"\0" * 1024
    assert _rules(blob, "model.pt").get("MLT-ARC-012") == Severity.MEDIUM


# -- 3. tar/zip polyglot read by zipfile (Keras) ---------------------------------------------


def test_tar_zip_polyglot_keras_config_is_scanned() -> None:
    cfg = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {
                    "class_name": "Lambda",
                    "config": {"name": "l", "function": ["4wEAAAAAAAAAAAAAAAEAAAAD", None, None]},
                }
            ]
        },
    }
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.3.3"}))
        z.writestr("config.json", json.dumps(cfg))
    zb = zbuf.getvalue()
    eocd = zb.rfind(b"PK\x05\x06")
    _cd_size, cd_off = struct.unpack("<II", zb[eocd + 12 : eocd + 20])
    cd, p = bytearray(zb[cd_off:eocd]), 0
    while p < len(cd):  # the zip sits 512 bytes in, inside a directory entry's "data"
        n, e, c = struct.unpack("<HHH", cd[p + 28 : p + 34])
        cd[p + 42 : p + 46] = struct.pack("<I", struct.unpack("<I", cd[p + 42 : p + 46])[0] + 512)
        p += 46 + n + e + c
    end = bytearray(zb[eocd : eocd + 22])
    end[16:20] = struct.pack("<I", cd_off + 512)
    zlen = eocd + 22
    tail = 1024 + (-zlen % 512)
    end[20:22] = struct.pack("<H", tail)
    inner = zb[:cd_off] + bytes(cd) + bytes(end)
    blob = _with_size(_header("d", 0, tarfile.DIRTYPE), zlen) + inner + b"\0" * tail
    assert tarfile.is_tarfile(io.BytesIO(blob))
    with zipfile.ZipFile(io.BytesIO(blob)) as z:  # what Keras load_model reads
        assert json.loads(z.read("config.json")) == cfg
    result = scan_bytes(blob, "model.keras")
    assert "zip" in result.formats and "tar" in result.formats
    assert any(f.rule_id == "MLT-KER-001" and f.severity >= Severity.HIGH for f in result.findings)


# -- 4. legacy joblib Z-files -----------------------------------------------------------------


def _zfile(body: bytes, length: str, space: bool = False) -> bytes:
    return b"ZF" + length.encode().ljust(19) + (b" " if space else b"") + body


@pytest.mark.parametrize(
    ("variant", "wbits", "space", "length"),
    [
        ("space-before-zlib", 15, True, "hex"),
        ("zlib-window-8k", 13, False, "hex"),
        ("zlib-window-512", 9, False, "hex"),
        ("length-without-0x", 15, False, "bare"),
        ("control", 15, False, "hex"),
    ],
)
def test_joblib_zfile_variants_are_scanned(
    variant: str, wbits: int, space: bool, length: str
) -> None:
    from joblib.numpy_pickle_compat import read_zfile

    co = zlib.compressobj(9, zlib.DEFLATED, wbits)
    body = co.compress(PAYLOAD) + co.flush()
    text = hex(len(PAYLOAD)) if length == "hex" else f"{len(PAYLOAD):x}"
    blob = _zfile(body, text, space)
    assert read_zfile(io.BytesIO(blob)) == PAYLOAD  # joblib.load would unpickle this
    assert _rules(blob, "model.pkl").get("MLT-PKL-001") == Severity.CRITICAL, variant


# -- 5. joblib compressed streams: joblib's prefixes, confirmed by decoding ---------------------


def _joblib_streams() -> dict[str, bytes]:
    out = {}
    for dsz in (64 * 1024, 96 * 1024, 1 << 20, 3 << 19):
        c = lzma.LZMACompressor(
            format=lzma.FORMAT_ALONE, filters=[{"id": lzma.FILTER_LZMA1, "dict_size": dsz}]
        )
        out[f"lzma-dict-{dsz}"] = c.compress(PAYLOAD) + c.flush()
    for level in (1, 3, 6, 9):  # 78 01, 78 5e, 78 9c, 78 da: joblib's prefix is 78 alone
        out[f"zlib-level-{level}"] = zlib.compress(PAYLOAD, level)
    import bz2
    import gzip

    out["gzip"] = gzip.compress(PAYLOAD)
    out["bz2"] = bz2.compress(PAYLOAD)
    out["xz"] = lzma.compress(PAYLOAD)
    return out


@pytest.mark.parametrize("variant", sorted(_joblib_streams()))
def test_joblib_lzma_dictsize_and_other_compressor_prefixes(variant: str) -> None:
    from joblib.numpy_pickle_utils import _detect_compressor

    blob = _joblib_streams()[variant]
    assert _detect_compressor(io.BytesIO(blob)) != "not-compressed"  # joblib would decode it
    assert _rules(blob, "model.joblib").get("MLT-PKL-001") == Severity.CRITICAL, variant


def test_text_starting_with_joblib_prefix_bytes_is_not_claimed() -> None:
    from mltrust.scan.formats.compressed import sniff_compression

    for head in (b"x marks the spot", b"BZ is not bzip2", b"]\x00 not lzma at all......"):
        assert sniff_compression(head) is None


# -- 6. Keras .h5: dense attribute storage, reordered JSON keys --------------------------------


def _h5(cfg: dict[str, Any], dense: bool) -> bytes:
    h5py = pytest.importorskip("h5py")
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver="latest" if dense else "earliest") as f:
        f.attrs["model_config"] = json.dumps(cfg)
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        if dense:
            for i in range(12):
                f.attrs[f"pad{i}"] = "x" * 100
    return bio.getvalue()


def _reordered_config(pad: int = 0) -> dict[str, Any]:
    lam = {
        "config": {"name": "lambda", "function": ["4wEAAAAAAAAAAAAAAAEAAAAD", None, None]},
        "class_name": "Lambda",
    }
    inp = {"class_name": "InputLayer", "config": {"name": "in", "pad": "p" * pad}}
    return {"config": {"name": "seq", "layers": [inp, lam]}, "class_name": "Sequential"}


@pytest.mark.parametrize("dense", [True, False])
def test_h5_dense_storage_with_reordered_keras_keys(dense: bool) -> None:
    h5py = pytest.importorskip("h5py")
    blob = _h5(_reordered_config(), dense)
    with h5py.File(io.BytesIO(blob)) as f:  # the oracle reads the Lambda
        assert json.loads(f.attrs["model_config"])["config"]["layers"][1]["class_name"] == "Lambda"
    rules = _rules(blob, "model.h5")
    assert rules.get("MLT-KER-001", Severity.INFO) >= Severity.HIGH
    assert "MLT-H5-001" not in rules  # dense storage is read where Keras reads it


def test_h5_dense_storage_benign_config_is_read_and_clean() -> None:
    cfg = {"config": {"name": "seq", "layers": []}, "class_name": "Sequential"}
    result = scan_bytes(_h5(cfg, dense=True), "model.h5")
    assert not result.findings, result.findings
    assert dict(result.facts).get("keras_config") is True


def test_h5_dense_lambda_with_escaped_keys_is_read_exactly() -> None:
    # json reads "class\u005fname" as class_name; a content search for the key does not
    h5py = pytest.importorskip("h5py")
    lam = {"class_name": "Lambda", "config": {"name": "l", "function": ["4wEAAAAAAAAAAAAA"]}}
    text = json.dumps({"class_name": "Sequential", "config": {"layers": [lam]}})
    text = text.replace('"class_name"', '"class\\u005fname"')
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver="latest") as f:
        f.attrs["model_config"] = text
        for i in range(12):
            f.attrs[f"pad{i}"] = "x" * 100
    with h5py.File(io.BytesIO(bio.getvalue())) as f:  # Keras' reader: json.loads
        assert json.loads(f.attrs["model_config"])["config"]["layers"][0]["class_name"] == "Lambda"
    rules = _rules(bio.getvalue(), "model.h5")
    assert rules.get("MLT-KER-001") == Severity.CRITICAL, rules


def test_h5_dense_links_are_followed() -> None:
    h5py = pytest.importorskip("h5py")
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver="latest") as f:
        layers = f.create_group("layers")
        for i in range(30):  # more than 8 links: dense storage
            layers.create_group(f"dense_{i}").create_dataset("kernel", data=[1.0, 2.0])
        layers["dense_29"]["outside"] = h5py.ExternalLink("other.h5", "/data")
    result = scan_bytes(bio.getvalue(), "model.weights.h5")
    assert [f.rule_id for f in result.findings] == ["MLT-H5-004"], result.findings
    assert dict(result.facts)["hdf5_objects"] == 62


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    return buf.getvalue()


def test_zip_archived_as_a_tar_member_is_not_a_polyglot() -> None:
    # A checkpoint zip stored in a tar: zipfile reading the tar reads exactly that member's
    # bytes, which the tar scanner scans as a member; no whole-file polyglot findings.
    inner = _zip_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("checkpoint.pt")
        info.size = len(inner)
        t.addfile(info, io.BytesIO(inner))
    rules = _rules(buf.getvalue(), "checkpoint.tar")
    assert not {"MLT-ARC-008", "MLT-ARC-016", "MLT-ARC-018"} & set(rules), rules


def test_attack_zip_appended_after_the_tar_is_still_scanned_as_a_zip() -> None:
    # The same zip outside every member (after the tar's end blocks): zipfile reads it, the
    # tar scanner does not, so the whole-file zip reading stays.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("notes.txt")
        info.size = 5
        t.addfile(info, io.BytesIO(b"hello"))
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("archive/data.pkl", PAYLOAD)
    data = buf.getvalue() + evil.getvalue()
    assert zipfile.is_zipfile(io.BytesIO(data))  # the real reader sees the zip
    assert _rules(data, "model.tar").get("MLT-PKL-001") is Severity.CRITICAL


# -- 7. Non-pickle formats (scanfmt red team): Keras, HDF5, Jinja, ONNX, TensorFlow ----------


def _keras_zip(layers: list[dict[str, Any]]) -> bytes:
    cfg = {
        "module": "keras",
        "class_name": "Sequential",
        "registered_name": None,
        "config": {"name": "s", "layers": layers},
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.8.0"}))
        z.writestr("config.json", json.dumps(cfg))
        z.writestr("model.weights.h5", b"")
    return buf.getvalue()


def _torch_module_wrapper(module: object) -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "TorchModuleWrapper",
        "registered_name": "TorchModuleWrapper",
        "config": {"name": "w", "module": module, "output_shape": None},
    }


@pytest.mark.parametrize("encoding", ["base64", "__bytes__"])
def test_keras_torch_module_wrapper_pickle_is_reported(encoding: str) -> None:
    # Keras' TorchModuleWrapper.from_config runs torch.load(config["module"],
    # weights_only=False): the oracle is that call on the embedded bytes.
    import base64

    payload = pickle.dumps(_Evil(), protocol=0)
    if encoding == "base64":
        module: object = base64.b64encode(payload).decode("ascii")
    else:
        module = {"class_name": "__bytes__", "config": {"value": payload.decode("utf-8")}}
    rules = _rules(_keras_zip([_torch_module_wrapper(module)]), "model.keras")
    assert rules.get("MLT-KER-002", Severity.INFO) >= Severity.HIGH, rules
    # The embedded pickle itself is scanned: os.system is critical.
    pickle_rules = [sev for rule, sev in rules.items() if rule.startswith("MLT-PKL-")]
    assert max(pickle_rules, default=Severity.INFO) >= Severity.CRITICAL, rules


@pytest.mark.parametrize(
    ("layer", "vocabulary", "expected"),
    [
        ("StringLookup", "/etc/passwd", Severity.HIGH),
        ("IntegerLookup", "gs://bucket/v.txt", Severity.HIGH),
        ("TextVectorization", "vocab.txt", Severity.MEDIUM),
        ("WordPieceTokenizer", "../../secrets.txt", Severity.HIGH),
    ],
)
def test_keras_lookup_vocabulary_path_is_reported(
    layer: str, vocabulary: str, expected: Severity
) -> None:
    spec = {
        "module": "keras.layers",
        "class_name": layer,
        "registered_name": None,
        "config": {"name": "lk", "vocabulary": vocabulary},
    }
    assert _rules(_keras_zip([spec]), "model.keras").get("MLT-KER-002") == expected


def test_keras_lookup_with_inline_vocabulary_is_benign() -> None:
    spec = {
        "module": "keras.layers",
        "class_name": "StringLookup",
        "registered_name": None,
        "config": {"name": "lk", "vocabulary": ["a", "b"]},
    }
    assert _rules(_keras_zip([spec]), "model.keras") == {}


def _h5_two_heap_objects(free_first: bool) -> bytes:
    """model_config (vlen str) whose global heap holds a benign object and, after it, a Lambda
    config under the SAME index (or the benign one turned into free space)."""
    h5py = pytest.importorskip("h5py")
    lam = {
        "class_name": "Lambda",
        "config": {"name": "l", "function": ["4wEAAAAAAAAAAAAAAAEAAAAD", None, None]},
    }
    evil = json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": [lam]}})
    good = json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": []}})
    width = max(len(evil), len(good))
    evil, good = evil.ljust(width), good.ljust(width)  # libhdf5 checks the stored length
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        f.attrs["model_config"] = good
        f.attrs["zzz"] = evil
    data = bytearray(bio.getvalue())
    gcol = data.index(b"GCOL")
    first = gcol + 16  # 8-byte lengths: signature, version, reserved, collection size
    second = first + 16 + ((width + 7) & ~7)
    assert data[first : first + 2] == b"\x01\x00" and data[second : second + 2] == b"\x02\x00"
    data[second : second + 2] = b"\x01\x00"
    if free_first:
        data[first : first + 2] = b"\x00\x00"
        data[first + 8 : first + 16] = (second - first).to_bytes(8, "little")
    ref = width.to_bytes(4, "little") + gcol.to_bytes(8, "little")
    data = data.replace(ref + (2).to_bytes(4, "little"), ref + (1).to_bytes(4, "little"))
    return bytes(data)


@pytest.mark.parametrize("free_first", [False, True])
def test_h5_global_heap_object_index_reused_reads_what_hdf5_reads(free_first: bool) -> None:
    h5py = pytest.importorskip("h5py")
    blob = _h5_two_heap_objects(free_first)
    with h5py.File(io.BytesIO(blob)) as f:  # the oracle returns the Lambda config
        assert "Lambda" in f.attrs["model_config"]
    rules = _rules(blob, "model.h5")
    assert rules.get("MLT-KER-001", Severity.INFO) >= Severity.HIGH, rules
    if not free_first:
        assert rules.get("MLT-H5-003") == Severity.HIGH, rules
    else:  # read exactly as libhdf5 reads it: not a parse failure
        assert "MLT-H5-002" not in rules, rules


_PBTXT_VARIANTS = {
    "op_before_name": 'node { op: "EagerPyFunc" name: "f" }',
    "single_quotes": "node { name: 'f' op: 'PyFunc' }",
    "joined_literals": 'node { name: "f" op: "Py" "Func" }',
    "angle_brackets": 'node < op: "PyFuncStateless" name: "f" >',
    "escaped_op": 'node { name: "f" op: "\\x50yFunc" }',
    "list_syntax": 'node: [ { name: "a" op: "Relu" }, { op: "PyFunc", name: "f" } ]',
    "repeated_op_merge_keeps_last": 'node { name: "f" op: "Relu" op: "EagerPyFunc" }',
    "in_function_op_first": (
        'library { function { node_def { op: "PyFunc" name: "p" } '
        'signature { name: "__inference_f_1" } } }'
    ),
}


def _text_format_ops(text: str) -> list[str]:
    """The oracle: google.protobuf's text_format reading the same layout as TensorFlow's
    SavedModel -> MetaGraphDef -> GraphDef (node 1, library 2) -> NodeDef (name 1, op 2)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

    fd = descriptor_pb2.FileDescriptorProto(name="sm.proto", package="t")
    for name, fields in {
        "NodeDef": [("name", 1, 9, None, 1), ("op", 2, 9, None, 1)],
        "OpDef": [("name", 1, 9, None, 1)],
        "FunctionDef": [("signature", 1, 11, "OpDef", 1), ("node_def", 3, 11, "NodeDef", 3)],
        "Lib": [("function", 1, 11, "FunctionDef", 3)],
        "GraphDef": [("node", 1, 11, "NodeDef", 3), ("library", 2, 11, "Lib", 1)],
        "MetaGraphDef": [("graph_def", 2, 11, "GraphDef", 1)],
        "SavedModel": [
            ("saved_model_schema_version", 1, 3, None, 1),
            ("meta_graphs", 2, 11, "MetaGraphDef", 3),
        ],
    }.items():
        m = fd.message_type.add(name=name)
        for fname, num, typ, tname, label in fields:
            f = m.field.add(name=fname, number=num, type=typ, label=label)
            if tname:
                f.type_name = ".t." + tname
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("t.SavedModel"))
    # TensorFlow's loader reads saved_model.pbtxt with text_format.Merge
    graph = text_format.Merge(text, cls()).meta_graphs[0].graph_def
    return [n.op for n in graph.node] + [n.op for f in graph.library.function for n in f.node_def]


_PBTXT_WRAPPERS = {
    "plain": "saved_model_schema_version: 1\nmeta_graphs: {{ graph_def {{ {body} }} }}\n",
    "commented": "# exported\nmeta_graphs {{ graph_def {{ {body} }} }}\n",
    "top_level_list": "meta_graphs: [ {{ graph_def {{ {body} }} }} ]\n",
}


@pytest.mark.parametrize("variant", sorted(_PBTXT_VARIANTS))
@pytest.mark.parametrize("wrapper", sorted(_PBTXT_WRAPPERS))
def test_tf_text_saved_model_ops_in_any_field_order(variant: str, wrapper: str) -> None:
    pytest.importorskip("google.protobuf")
    text = _PBTXT_WRAPPERS[wrapper].format(body=_PBTXT_VARIANTS[variant])
    assert any(op.startswith("Py") or op == "EagerPyFunc" for op in _text_format_ops(text))
    rules = _rules(text.encode(), "saved_model.pbtxt")
    assert rules.get("MLT-TF-002") == Severity.CRITICAL, rules


def test_tf_text_saved_model_standard_saver_is_not_a_python_op() -> None:
    text = (
        "meta_graphs {\n  saver_def { filename_tensor_name: 'save/Const:0' }\n"
        "  graph_def {\n    node { op: 'SaveV2' name: 'save/SaveV2' }\n"
        "    node { name: 'x' op: 'Placeholder' attr { key: 'dtype' value { type: DT_FLOAT } } }\n"
        "  }\n}\n"
    )
    rules = _rules(text.encode(), "saved_model.pbtxt")
    assert not [r for r in rules if r.startswith("MLT-TF-") and rules[r] >= Severity.MEDIUM], rules


def _ld(num: int, payload: bytes) -> bytes:
    return bytes([num << 3 | 2, len(payload)]) + payload


def test_tf_binary_saved_model_with_unknown_field_is_scanned() -> None:
    node = _ld(1, _ld(1, b"f") + _ld(2, b"EagerPyFunc"))
    data = b"\xf8\x06\x01" + b"\x08\x01" + _ld(2, _ld(2, node))  # field 111, then the model
    rules = _rules(data, "saved_model.pb")
    assert rules.get("MLT-TF-002") == Severity.CRITICAL, rules
    assert rules.get("MLT-TF-001") == Severity.MEDIUM, rules


@pytest.mark.parametrize(
    "op",
    [
        "CacheDatasetV2",
        "MatchingFilesDataset",
        "GenerateVocabRemapping",
        "LoadAndRemapMatrix",
        "DataServiceDatasetV4",
    ],
)
def test_tf_file_and_network_ops_are_reported(op: str) -> None:
    data = _ld(1, _ld(1, b"n") + _ld(2, op.encode()))
    assert _rules(data, "frozen.pb").get("MLT-TF-003") == Severity.HIGH


@pytest.mark.parametrize(("source", "reported"), [(b"local://", False), (b"/etc/passwd", True)])
def test_tf_decode_proto_descriptor_source(source: bytes, reported: bool) -> None:
    attr = _ld(5, _ld(1, b"descriptor_source") + _ld(2, _ld(2, source)))
    data = _ld(1, _ld(1, b"n") + _ld(2, b"DecodeProtoV2") + attr)
    assert ("MLT-TF-003" in _rules(data, "frozen.pb")) is reported


def _onnx_model(op: str = "Relu", domain: str = "") -> bytes:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], domain=domain)], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    data: bytes = model.SerializeToString()
    assert onnx.load_from_string(data).graph.node[0].op_type == op
    return data


@pytest.mark.parametrize(
    "prefix",
    [b"\xa0\x06\x01", b"\x10\x05", b"\xa2\x06\x03abc", b"\xa0\x06\x01" * 80],
    ids=["unknown-varint", "known-number-wrong-type", "unknown-bytes", "80-unknown-fields"],
)
def test_onnx_with_leading_unknown_fields_is_scanned(prefix: bytes) -> None:
    onnx = pytest.importorskip("onnx")
    data = prefix + _onnx_model("PyOp", "ai.onnx.contrib")
    assert onnx.load_from_string(data).graph.node[0].op_type == "PyOp"  # the oracle
    rules = _rules(data, "model.bin")
    assert rules.get("MLT-ONX-006") == Severity.HIGH, rules


def test_onnx_runtime_runs_a_model_with_a_leading_unknown_field() -> None:
    ort = pytest.importorskip("onnxruntime")
    np = pytest.importorskip("numpy")
    data = b"\xa0\x06\x01" + _onnx_model()
    out = ort.InferenceSession(data).run(None, {"x": np.array([-1.0, 2.0], np.float32)})
    assert out[0].tolist() == [0.0, 2.0]
    assert "onnx" in scan_bytes(data, "model.onnx").formats


def test_ort_format_model_is_not_unknown(tmp_path: Any) -> None:
    pytest.importorskip("onnxruntime")
    src = tmp_path / "m.onnx"
    src.write_bytes(_onnx_model())
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    data = (tmp_path / "m.ort").read_bytes()
    assert data[4:8] == b"ORTM"
    for name in ("m.ort", "m.bin"):  # onnxruntime reads ORT bytes by their identifier
        assert _rules(data, name).get("MLT-ONX-007") == Severity.MEDIUM


@pytest.mark.parametrize("space", [b"\n", b"\t", b"\r\n", b"  \n"])
def test_safetensors_header_with_leading_json_whitespace_is_scanned(space: bytes) -> None:
    st = pytest.importorskip("safetensors.numpy")
    header = space + b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    data = struct.pack("<Q", len(header)) + header + b"\0" * 4
    assert st.load(data)["a"].tolist() == [0.0]  # the Rust loader accepts it
    result = scan_bytes(data, "model.bin")
    assert "safetensors" in result.formats
    assert max(f.severity for f in result.findings) >= Severity.MEDIUM


@pytest.mark.parametrize("name", ["m.onnx", "saved_model.pb", "m.gguf", "m.safetensors", "m.h5"])
def test_unrecognised_content_named_like_a_model_fails_closed(name: str) -> None:
    result = scan_bytes(b"\x01\x02not a model at all\xff", name)
    assert not result.formats
    assert result.findings and max(f.severity for f in result.findings) == Severity.MEDIUM


@pytest.mark.parametrize("name", ["notes.bin", "input_0.pb", "sub/output_0.pb"])
def test_unrecognised_content_with_another_name_stays_low(name: str) -> None:
    """``.pb`` is every protobuf's suffix (ONNX ships its test tensors as ``input_0.pb``); only
    ``saved_model.pb`` is opened by name by a model loader."""
    result = scan_bytes(b"\x01\x02not a model at all\xff", name)
    assert [f.severity for f in result.findings] == [Severity.LOW]


def _run_template(template: str, tmp_path: Any) -> bool:
    """The oracle: render with a plain (non-sandboxed) Jinja environment, as some servers do;
    the payload only creates a marker file under ``tmp_path``."""
    jinja2 = pytest.importorskip("jinja2")
    marker = tmp_path / "marker"
    # mltrust: ignore[MLT-CODE-008] the oracle is the unsandboxed renderer the attack targets
    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    env.from_string(template.replace("MARKER", str(marker))).render(messages=[])
    return marker.exists()


_REACH = '{{ lipsum[G]["os"]["system"]("touch MARKER") }}'
_SSTI_VARIANTS = {
    "macro_name": "{% macro a_b() %}{% endmacro %}{% set u = a_b.name[1] %}"
    + _REACH.replace("G", 'u ~ u ~ "globals" ~ u ~ u'),
    "macro_default": '{% macro m(u="_") %}'
    + _REACH.replace("G", 'u ~ u ~ "globals" ~ u ~ u')
    + "{% endmacro %}{{ m() }}",
    "macro_argument": "{% macro m(u) %}"
    + _REACH.replace("G", 'u ~ u ~ "globals" ~ u ~ u')
    + '{% endmacro %}{{ m("_") }}',
    "caller": "{% macro m() %}{% set u = caller() %}"
    + _REACH.replace("G", 'u ~ u ~ "globals" ~ u ~ u')
    + "{% endmacro %}{% call m() %}_{% endcall %}",
    "list_append": '{% set x = [] %}{% do x.append("_") %}{% set u = x[0] %}'
    + _REACH.replace("G", 'u ~ u ~ "globals" ~ u ~ u'),
    "list_insert": '{% set x = ["a"] %}{% do x.insert(0, "_") %}{% set u = x[0] %}'
    + _REACH.replace("G", 'u ~ u ~ "globals" ~ u ~ u'),
    "loop_cycle": '{% for m in [1] %}{% set u = loop.cycle("_") %}'
    + _REACH.replace("G", 'u ~ u ~ "globals" ~ u ~ u')
    + "{% endfor %}",
    "set_block": "{% set u %}_{% endset %}{% set g %}{{u}}{{u}}globals{{u}}{{u}}{% endset %}"
    + _REACH.replace("G", "g"),
}


def test_chat_template_name_built_from_the_configs_own_special_tokens(tmp_path: Any) -> None:
    jinja2 = pytest.importorskip("jinja2")
    marker = tmp_path / "marker"
    template = _REACH.replace("G", "bos_token ~ bos_token ~ eos_token ~ bos_token ~ bos_token")
    template = template.replace("MARKER", str(marker))
    config = {"bos_token": "_", "eos_token": "globals", "chat_template": template}
    # transformers renders with the tokenizer's special tokens as variables
    # mltrust: ignore[MLT-CODE-008] the oracle is the unsandboxed renderer the attack targets
    env = jinja2.Environment()
    env.from_string(template).render(messages=[], bos_token="_", eos_token="globals")
    assert marker.exists()
    rules = _rules(json.dumps(config).encode(), "tokenizer_config.json")
    assert rules.get("MLT-CFG-007", Severity.INFO) >= Severity.HIGH, rules


def _from_method_reprs(name: str) -> str:
    """``name`` spelled with no string literal: characters sliced from the text of bound
    methods, ``<built-in method bit_length of int object at ...>`` and a dict's ``items``."""
    int_text, dict_text = repr((0).bit_length), repr({}.items)
    return " ~ ".join(
        f"A[{int_text.index(c)}]" if c in int_text else f"D[{dict_text.index(c)}]" for c in name
    )


_SSTI_VARIANTS["method_reprs"] = (
    "{% set A = (0).bit_length|string %}{% set D = ({}).items|string %}"
    + _REACH.replace("G", _from_method_reprs("__globals__"))
)
_SSTI_VARIANTS["method_reprs_by_item"] = "{% set A = (0)['bit_length']|string %}" + _REACH.replace(
    "G", _from_method_reprs("__globals__").replace("D[", "(({})['items']|string)[")
)


@pytest.mark.parametrize("variant", sorted(_SSTI_VARIANTS))
def test_chat_template_names_built_from_template_values(variant: str, tmp_path: Any) -> None:
    template = _SSTI_VARIANTS[variant]
    assert _run_template(template, tmp_path)  # reaches os.popen under a plain Environment
    from mltrust.scan.formats._jinja import template_hazards

    hazards = template_hazards(template)
    assert hazards and hazards[0][0] >= Severity.HIGH, hazards
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_chat_template(template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    rules = _rules(path.read_bytes(), "m.gguf")
    assert rules.get("MLT-CFG-007", Severity.INFO) >= Severity.HIGH, rules


_TOOL_TEMPLATE = (
    "{%- macro py_type(spec) %}{%- set m = {'string': 'str', 'integer': 'int'} %}"
    "{%- if m[spec.type] is defined %}{{ m[spec.type] }}"
    "{%- elif spec.type == 'array' %}{{ 'list[' + py_type(spec|items) + ']' }}"
    "{%- else %}{%- for t in spec.type %}{{ py_type({'type': t}) }}{%- endfor %}{%- endif %}"
    "{%- endmacro %}"
    "{%- for tool in tools %}{%- for name, fields in tool.parameters.properties|items %}"
    "{{ name }}: {{ py_type(fields) }}{%- endfor %}"
    "{%- for req in tool.parameters.required %}{{ tool.parameters.properties[req] }}"
    "{%- endfor %}{%- endfor %}"
    "{%- set ns = namespace(i=0) %}{%- for message in messages %}{%- set ns.i = ns.i + 1 %}"
    "{{ messages[ns.i - 1]['role'] }}{{ messages[loop.index0 - 1]['content'] }}"
    "{%- for k, v in message|items %}{{ message[k] }}{%- endfor %}{%- endfor %}"
)


def test_chat_template_macros_and_data_keys_are_benign() -> None:
    from mltrust.scan.formats._jinja import template_hazards

    assert template_hazards(_TOOL_TEMPLATE) == []


def test_tfhub_module_marker_is_a_known_companion_not_an_unread_model() -> None:
    result = scan_bytes(b"\x08\x03", "tfhub_module.pb")  # ModuleDef { format: 3 }
    assert result.formats and not result.findings


def _onnx_with_external(location: str) -> Any:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    w = TensorProto(name="W", data_type=TensorProto.UINT8, dims=[4])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "4")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.UINT8, [4])
    nodes = [
        helper.make_node("Add", ["x", "W"], ["y"]),
        helper.make_node("PyOp", ["y"], ["z"], domain="ai.onnx.contrib"),
    ]
    z = helper.make_tensor_value_info("z", TensorProto.UINT8, [4])
    graph = helper.make_graph(nodes, "g", [x], [z], [w])
    return helper.make_model(graph)


@pytest.mark.parametrize("ext", [".json", ".onnxjson", ".textproto", ".txtpb", ".prototxt"])
def test_onnx_text_and_json_serialisations_are_scanned_as_onnx(ext: str, tmp_path: Any) -> None:
    onnx = pytest.importorskip("onnx")
    path = tmp_path / f"model{ext}"
    onnx.save_model(_onnx_with_external("../../etc/passwd"), str(path))
    # onnx.load picks the serialisation by extension and reads the same graph
    loaded = onnx.load(str(path), load_external_data=False)
    assert [n.op_type for n in loaded.graph.node] == ["Add", "PyOp"]
    rules = _rules(path.read_bytes(), path.name)
    assert rules.get("MLT-ONX-006") == Severity.HIGH, rules
    assert rules.get("MLT-ONX-002") == Severity.HIGH, rules


def test_onnx_text_syntax_model_is_analysed(tmp_path: Any) -> None:
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "model.onnxtxt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the onnxtxt format is experimental"
        onnx.save_model(_onnx_with_external("w.bin"), str(path))
        assert onnx.load(str(path), load_external_data=False).graph.node[1].op_type == "PyOp"
    # parsed like onnx.parser parses it (redteam7; it was "not analysed", medium, before)
    assert _rules(path.read_bytes(), path.name) == {"MLT-ONX-006": Severity.HIGH}


@pytest.mark.parametrize("ext", [".json", ".txtpb"])
def test_benign_onnx_text_serialisations_are_clean(ext: str, tmp_path: Any) -> None:
    onnx = pytest.importorskip("onnx")
    path = tmp_path / f"model{ext}"
    onnx.save_model(onnx.load_from_string(_onnx_model()), str(path))
    rules = _rules(path.read_bytes(), path.name)
    assert not [r for r, sev in rules.items() if sev >= Severity.MEDIUM], rules


def test_chat_template_dict_of_named_templates_is_checked() -> None:
    # transformers keeps {"default": ..., "tool_use": ...} as is and renders the entries
    payload = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
    config = {"bos_token": "<s>", "chat_template": {"default": "{{ x }}", "tool_use": payload}}
    rules = _rules(json.dumps(config).encode(), "tokenizer_config.json")
    assert rules.get("MLT-CFG-007") == Severity.CRITICAL, rules


def test_onnx_external_data_at_the_runtime_memory_marker_is_an_escape() -> None:
    model = _onnx_with_external("*/_ORT_MEM_ADDR_/*")
    rules = _rules(model.SerializeToString(), "m.onnx")
    assert rules.get("MLT-ONX-002") == Severity.HIGH, rules


def test_tf_saved_model_with_an_onnx_graph_field_is_scanned_as_both() -> None:
    # TensorFlow skips field 7; ONNX readers take it as the graph: a polyglot is both.
    node = _ld(1, _ld(1, b"f") + _ld(2, b"EagerPyFunc"))
    data = b"\x08\x01" + _ld(2, _ld(2, node)) + _ld(7, _ld(1, _ld(4, b"Relu")))
    result = scan_bytes(data, "saved_model.pb")
    assert "tensorflow" in result.formats, result.formats
    assert any(f.rule_id == "MLT-TF-002" for f in result.findings)


def _meta_graph(op: bytes, node: bytes = b"save/restore_all") -> bytes:
    """A TF1 checkpoint ``.meta`` (MetaGraphDef): import_meta_graph + Saver.restore runs the
    op its SaverDef names."""

    def ld(num: int, payload: bytes) -> bytes:
        return bytes([num << 3 | 2]) + _varint(len(payload)) + payload

    graph = ld(1, ld(1, node) + ld(2, op))
    saver = ld(1, b"save/Const:0") + ld(3, b"save/restore_all")
    return ld(1, ld(1, b"v1")) + ld(2, graph) + ld(3, saver)


def _varint(n: int) -> bytes:
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        out += bytes([low | (0x80 if n else 0)])
        if not n:
            return out


def test_tf1_meta_graph_restore_op_that_writes_files_is_reported() -> None:
    rules = _rules(_meta_graph(b"WriteFile"), "model.ckpt.meta")
    assert rules.get("MLT-TF-003") == Severity.HIGH, rules
    text = (
        'meta_info_def { meta_graph_version: "v1" }\n'
        'graph_def { node { op: "WriteFile" name: "save/restore_all" } }\n'
        'saver_def { restore_op_name: "save/restore_all" }\n'
    )
    assert _rules(text.encode(), "model.ckpt.meta").get("MLT-TF-003") == Severity.HIGH


def test_tf1_meta_graph_standard_restore_is_benign() -> None:
    result = scan_bytes(_meta_graph(b"RestoreV2", b"save/RestoreV2"), "model.ckpt.meta")
    assert "tensorflow" in result.formats
    assert not [f for f in result.findings if f.severity >= Severity.MEDIUM], result.findings


def _h5_with_outside_data(kind: str, tmp_path: Any, libver: str) -> bytes:
    h5py = pytest.importorskip("h5py")
    np = pytest.importorskip("numpy")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"S" * 32)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.arange(4)
    path = tmp_path / "model.weights.h5"
    with h5py.File(path, "w", libver=libver) as f:
        vars_ = f.create_group("layers/dense/vars")
        if kind == "external_storage":
            vars_.create_dataset("0", shape=(32,), dtype="u1", external=[(str(secret), 0, 32)])
        elif kind == "external_link":
            vars_["0"] = h5py.ExternalLink(str(other), "/data")
        else:
            layout = h5py.VirtualLayout(shape=(4,), dtype="i8")
            layout[:] = h5py.VirtualSource(str(other), "data", shape=(4,))
            vars_.create_virtual_dataset("0", layout)
    with h5py.File(path, "r") as f:  # the oracle reads the data from the other file
        value = f["layers/dense/vars/0"][()]
        assert value.tolist() in ([83] * 32, [0, 1, 2, 3])
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["external_storage", "external_link", "virtual_dataset"])
@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_h5_data_read_from_outside_the_file_is_reported(
    kind: str, libver: str, tmp_path: Any
) -> None:
    rules = _rules(_h5_with_outside_data(kind, tmp_path, libver), "model.weights.h5")
    assert rules.get("MLT-H5-004") == Severity.HIGH, rules


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_h5_weights_with_groups_links_and_chunks_walk_clean(libver: str) -> None:
    h5py = pytest.importorskip("h5py")
    np = pytest.importorskip("numpy")
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver=libver) as f:
        layers = f.create_group("model_weights")
        for i in range(6 if libver == "latest" else 300):  # compact links / multi-node B-tree
            g = layers.create_group(f"dense_{i}")
            g.create_dataset("kernel", data=np.ones((4, 4)), chunks=(2, 2), compression="gzip")
            g["up"] = h5py.SoftLink("/model_weights")
        f["alias"] = layers
    result = scan_bytes(bio.getvalue(), "model.h5")
    assert not result.findings, result.findings


@pytest.mark.parametrize(
    "text", ["graph:\n  nodes:\n    - a\nfunctions:\n  - x\n", "graph: {nodes: [a, b]}\n"]
)
def test_yaml_configs_named_like_onnx_fields_are_not_flagged(text: str) -> None:
    result = scan_bytes(text.encode(), "pipeline.yaml")
    assert not [f for f in result.findings if f.severity >= Severity.MEDIUM], result.findings


def test_h5_dense_storage_after_rewrites_and_deletions() -> None:
    h5py = pytest.importorskip("h5py")
    np = pytest.importorskip("numpy")
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver="latest") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {}})
        f.attrs["strings"] = ["a", "bb", "ccc"]
        f.attrs["compound"] = np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])
        for i in range(10):
            f.attrs[f"p{i}"] = "v" * i
        del f.attrs["p3"]  # the freed object stays in the heap: read as a stale copy
        group = f.create_group("g")
        for i in range(40):
            group.create_group(f"c{i}")
        for i in range(0, 40, 3):
            del group[f"c{i}"]  # stale link objects point at freed headers
    result = scan_bytes(bio.getvalue(), "model.h5")
    assert not result.findings, result.findings
    assert dict(result.facts)["hdf5_objects"] == 28
    # An attribute rewritten with a smaller value leaves the old one's tail in the block: the
    # heap is then not read in order, and the file fails closed (never an error, never clean).
    with h5py.File(bio, "a") as f:
        f.attrs["model_config"] = "{}"
    rules = _rules(bio.getvalue(), "model.h5")
    assert rules in ({}, {"MLT-H5-001": Severity.MEDIUM}), rules


def test_h5_dense_links_behind_a_deeper_name_index_are_read() -> None:
    h5py = pytest.importorskip("h5py")
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver="latest") as f:
        for i in range(200):  # more links than one B-tree leaf holds
            f.create_group(f"layer_{i}")
    result = scan_bytes(bio.getvalue(), "model.weights.h5")
    assert result.findings == ()
    assert dict(result.facts)["hdf5_objects"] == 201  # was "not fully scanned" (redteam7)
