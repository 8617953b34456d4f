"""Red team rtscan10: the light/heavy split of eight format scanners (tar, tensorflow,
compressed, hdf5, config, safetensors, gguf, numpy) loses no path.

Each hostile file is built here at run time; the real loader (joblib, numpy, torch, h5py,
gguf) is the oracle of what runs, in a subprocess, and the payload only creates a marker file.
The nesting tests also scan in a fresh interpreter, where the ``_*_scan`` modules are not yet
imported: the lazy imports themselves are on the path under test.
"""

from __future__ import annotations

import bz2
import gzip
import importlib
import io
import json
import lzma
import os
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from mltrust.findings import Finding, Severity
from mltrust.scan import scan_bytes

_SRC = Path(__file__).resolve().parents[1] / "src"


def _loud(findings: tuple[Finding, ...]) -> str:
    return "\n".join(f"{f.rule_id} {f.severity} {f.location}: {f.message}" for f in findings)


def _payload(marker: Path) -> bytes:
    """A protocol-0 pickle whose REDUCE runs a shell command that creates ``marker``."""
    module, name = "o" + "s", "sys" + "tem"
    command = f"touch {marker}"
    return b"c%s\n%s\n(V%s\ntR." % (module.encode(), name.encode(), command.encode())


def _runs(code: str, path: Path, marker: Path) -> bool:
    """Whether the oracle ``code`` (given the path as argv[1]) creates ``marker``."""
    if marker.exists():
        marker.unlink()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(  # the oracle may fail after the payload ran: only the marker counts
        [sys.executable, "-c", code, str(path)], env=env, capture_output=True, timeout=120
    )
    ran = marker.exists()
    if ran:
        marker.unlink()
    return ran


_FRESH_SCAN = """
import json, sys
from mltrust.scan import scan_file
result = scan_file(sys.argv[1])
print(json.dumps([[f.rule_id, f.severity.value] for f in result.findings]))
"""


def _fresh_worst(path: Path) -> str:
    """The worst severity a scan of ``path`` reports in a new interpreter (nothing imported)."""
    env = {**os.environ, "PYTHONPATH": str(_SRC)}
    out = subprocess.run(
        [sys.executable, "-c", _FRESH_SCAN, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = json.loads(out.strip().splitlines()[-1])
    order = [s.value for s in Severity]
    return max((sev for _, sev in found), key=order.index, default="none")


def _assert_critical(path: Path, *, fresh: bool = False) -> None:
    """The scan of ``path`` is critical; with ``fresh``, in a new interpreter too."""
    data = path.read_bytes()
    result = scan_bytes(data, path.name)
    worst = max((f.severity for f in result.findings), default=None)
    assert worst is Severity.CRITICAL, _loud(result.findings)
    if fresh:
        assert _fresh_worst(path) == Severity.CRITICAL.value


# ------------------------------------------------ lazy exports name the moved objects
@pytest.mark.parametrize(
    ("light", "heavy", "names"),
    [
        ("compressed", "_compressed_scan", ("Inflated", "inflate")),
        ("config", "_config_scan", ("judge_target",)),
        ("gguf", "_gguf_scan", ("GGML_TYPE_SIZES",)),
        ("hdf5", "_hdf5_scan", ("RootAttributes", "read_root_attributes")),
        ("numpy", "_numpy_scan", ("NpyHeader", "parse_literal", "parse_npy_header")),
    ],
)
def test_lazy_exports_are_the_moved_objects(light: str, heavy: str, names: tuple[str, ...]) -> None:
    base = "mltrust.scan.formats."
    light_mod = importlib.import_module(base + light)
    heavy_mod = importlib.import_module(base + heavy)
    for name in names:
        assert getattr(light_mod, name) is getattr(heavy_mod, name)
    with pytest.raises(AttributeError):
        _ = light_mod.no_such_name  # an unknown name is an AttributeError, not a module


# ------------------------------------- joblib's whole-file compression reaches the pickle
def _lz4(data: bytes) -> bytes:
    lz4_frame = pytest.importorskip("lz4.frame")
    out: bytes = lz4_frame.compress(data)
    return out


def _alone(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_ALONE)


_COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "lzma": _alone,
    "zlib": zlib.compress,
    "lz4": _lz4,
}


#: joblib's gzip and zlib readers do not go on into a second stream: joblib.load of a split
#: file is killed for memory after about a minute here, so those two are not tried split.
_SPLIT_READ = sorted(set(_COMPRESSORS) - {"gzip", "zlib"})


@pytest.mark.parametrize(
    ("kind", "split"),
    [(k, False) for k in sorted(_COMPRESSORS)] + [(k, True) for k in _SPLIT_READ],
    ids=[f"one-stream-{k}" for k in sorted(_COMPRESSORS)]
    + [f"split-streams-{k}" for k in _SPLIT_READ],
)
def test_compressed_joblib_payload_is_critical(kind: str, split: bool, tmp_path: Path) -> None:
    """A joblib dump compressed whole, also with the pickle split over concatenated streams
    (the GLOBAL's name cut in two), where joblib's reader goes on into the next stream."""
    pytest.importorskip("joblib")
    marker = tmp_path / "ran"
    pk = _payload(marker)
    compress = _COMPRESSORS[kind]
    if split:
        cut = pk.index(b"tem\n")
        data = compress(pk[:cut]) + compress(pk[cut:])
    else:
        data = compress(pk)
    path = tmp_path / f"model.joblib.{kind}"
    path.write_bytes(data)
    oracle = "import joblib, sys; joblib.load(sys.argv[1])"
    if not _runs(oracle, path, marker):
        pytest.skip(f"joblib does not read {kind} {'split' if split else 'whole'} here")
    _assert_critical(path)


# ------------------------------------------- .npy headers numpy reads as object arrays
def _npy(header: str, body: bytes) -> bytes:
    raw = header.encode("latin-1")
    raw += b" " * ((64 - (len(raw) + 11) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + body


_OBJECT_HEADERS = {
    "string-dtype": "{'descr': 'T', 'fortran_order': False, 'shape': (1,)}",
    "dict-descr": "{'descr': {'aO': 1}, 'fortran_order': False, 'shape': (1,)}",
    "list-field": "{'descr': ['aO'], 'fortran_order': False, 'shape': (1,)}",
    "escaped-O": "{'descr': '\\x4f', 'fortran_order': False, 'shape': (1,)}",
    "bool-shape": "{'descr': 'O', 'fortran_order': False, 'shape': (True,)}",
    "nested-field": (
        "{'descr': [('a', '<f8'), ('b', [('c', 'O')])], 'fortran_order': False, 'shape': (1,)}"
    ),
}


@pytest.mark.parametrize("variant", sorted(_OBJECT_HEADERS))
def test_npy_header_numpy_reads_as_object_is_critical(variant: str, tmp_path: Path) -> None:
    """Headers this scanner's literal reader rejects or reads differently, that numpy reads
    as an object dtype (StringDType 'T' included) and so unpickles what follows."""
    np = pytest.importorskip("numpy")
    marker = tmp_path / "ran"
    path = tmp_path / "a.npy"
    path.write_bytes(_npy(_OBJECT_HEADERS[variant], _payload(marker)))
    oracle = "import numpy, sys; numpy.load(sys.argv[1], allow_pickle=True)"
    assert _runs(oracle, path, marker), f"numpy {np.__version__} does not run {variant}"
    _assert_critical(path, fresh=True)


# ------------------------------------------------------- nesting through moved scanners
def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_npz_in_tar_in_gzip_in_zip_is_critical(tmp_path: Path) -> None:
    """zip -> gzip (compressed) -> tar -> npz (zip) -> object .npy: every hop a moved scan."""
    pytest.importorskip("numpy")
    marker = tmp_path / "ran"
    inner = tmp_path / "x.npz"
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as zf:
        body = _npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,)}", _payload(marker))
        zf.writestr("x.npy", body)
    inner.write_bytes(npz.getvalue())
    oracle = "import numpy, sys; numpy.load(sys.argv[1], allow_pickle=True)['x']"
    assert _runs(oracle, inner, marker)
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("bundle.tar.gz", gzip.compress(_tar({"weights/x.npz": npz.getvalue()})))
    path = tmp_path / "bundle.zip"
    path.write_bytes(outer.getvalue())
    _assert_critical(path, fresh=True)


def test_legacy_torch_tar_gzipped_storages_pickle_is_critical(tmp_path: Path) -> None:
    """A legacy torch tar whose ``storages`` count pickle is the payload, then gzipped: the
    compressed scan (moved) reaches the tar scan (moved) and the legacy torch reading."""
    pytest.importorskip("torch")
    marker = tmp_path / "ran"
    tar = _tar({"storages": _payload(marker), "tensors": b"\x80\x02K\x00.", "pickle": b"N."})
    plain = tmp_path / "legacy.pt"
    plain.write_bytes(tar)
    oracle = "import torch, sys; torch.load(sys.argv[1], weights_only=False)"
    assert _runs(oracle, plain, marker)
    _assert_critical(plain, fresh=True)
    packed = tmp_path / "legacy.pt.gz"
    packed.write_bytes(gzip.compress(tar))
    _assert_critical(packed, fresh=True)


_TEMPLATE = "{{ cycler.__init__.__glo" + "bals__.os.popen('id').read() }}"


def test_gguf_chat_template_in_tar_is_critical(tmp_path: Path) -> None:
    """A GGUF (moved scan) whose named chat template escapes the sandbox, inside a tar
    (moved scan); the gguf package's reader is the oracle of what llama.cpp tooling reads."""
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("tokenizer.chat_template.tool_use", _TEMPLATE)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    reader = gguf.GGUFReader(str(path))
    field = reader.fields["tokenizer.chat_template.tool_use"]
    assert bytes(field.parts[-1]).decode() == _TEMPLATE
    _assert_critical(path, fresh=True)
    bundle = tmp_path / "m.tar"
    bundle.write_bytes(_tar({"model/m.gguf": path.read_bytes()}))
    _assert_critical(bundle, fresh=True)


_LAMBDA = {
    "class_name": "Sequential",
    "config": {
        "layers": [
            {
                "class_name": "Lambda",
                "config": {"function": ["4wEAAAAAAAAA", "", None], "function_type": "lambda"},
            }
        ]
    },
}


@pytest.mark.parametrize("storage", ["compact", "dense"])
def test_hdf5_keras_lambda_in_xz_is_critical(storage: str, tmp_path: Path) -> None:
    """A Keras .h5 (moved scan) whose model_config holds a Lambda, in compact and dense
    attribute storage, also xz-compressed (moved scan); h5py is the oracle of the config."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "model.h5"
    kwargs = {"libver": "latest"} if storage == "dense" else {}
    with h5py.File(path, "w", **kwargs) as f:
        if storage == "dense":
            for i in range(40):
                f.attrs[f"pad{i}"] = "x" * 100
        f.attrs["model_config"] = json.dumps(_LAMBDA)
    with h5py.File(path, "r") as f:
        assert json.loads(f.attrs["model_config"]) == _LAMBDA
    _assert_critical(path, fresh=True)
    packed = tmp_path / "model.h5.xz"
    packed.write_bytes(lzma.compress(path.read_bytes()))
    _assert_critical(packed, fresh=True)


def test_hydra_target_yaml_in_bz2_tar_is_critical(tmp_path: Path) -> None:
    """A Hydra config (moved scan) in a bz2 tar; PyYAML is the oracle of the mapping read."""
    yaml = pytest.importorskip("yaml")
    text = "model:\n  _target_: " + "o" + "s.sys" + "tem\n  command: touch x\n"
    assert yaml.safe_load(text)["model"]["_target_"].endswith("tem")
    path = tmp_path / "configs.tar.bz2"
    path.write_bytes(bz2.compress(_tar({"conf/config.yaml": text.encode()})))
    _assert_critical(path, fresh=True)


# --------------------------------------------------- mltrust.load makes the same decision
@pytest.mark.parametrize("kind", ["gzip", "bz2", "xz", "zlib"])
def test_safeload_refuses_compressed_joblib_payload(kind: str, tmp_path: Path) -> None:
    pytest.importorskip("joblib")
    from mltrust.errors import UnsafeModelError
    from mltrust.safeload import load

    marker = tmp_path / "ran"
    with pytest.raises(UnsafeModelError):
        load(_COMPRESSORS[kind](_payload(marker)))
    assert not marker.exists()


def test_safeload_refuses_npy_the_scan_cannot_read(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    from mltrust.errors import UnsafeModelError
    from mltrust.safeload import load

    marker = tmp_path / "ran"
    with pytest.raises(UnsafeModelError):
        load(_npy(_OBJECT_HEADERS["string-dtype"], _payload(marker)))
    assert not marker.exists()


# ------------------------------- (1) gzip members apart by NUL padding: Python reads on
_GZIP_READ = "import gzip, pickle, sys; pickle.load(gzip.open(sys.argv[1]))"
_TAR_GZ_READ = (
    "import pickle, sys, tarfile; pickle.load(tarfile.open(sys.argv[1]).extractfile('x.pkl'))"
)


@pytest.mark.parametrize("pad", [1, 4, 100, 70_000])
def test_attack_gzip_members_split_by_nul_padding(pad: int, tmp_path: Path) -> None:
    """Python's gzip module (gzip.open, pandas.read_pickle, tarfile's r:gz) skips NUL bytes
    after a member and reads the next one: a pickle split over two members with padding
    between them runs whole. Was: the first member alone was read (a truncated pickle,
    medium) and the rest reported as hidden data (medium): the critical payload unseen."""
    marker = tmp_path / "ran"
    pk = _payload(marker)
    cut = pk.index(b"tem\n")
    path = tmp_path / "model.pkl.gz"
    path.write_bytes(gzip.compress(pk[:cut]) + b"\0" * pad + gzip.compress(pk[cut:]))
    assert _runs(_GZIP_READ, path, marker)
    _assert_critical(path)


def test_attack_tar_gz_after_empty_member_and_padding(tmp_path: Path) -> None:
    """An empty gzip member, NUL padding, then the real .tar.gz: tarfile reads the tar (and
    the pickle in it); the scan decoded only the empty member."""
    marker = tmp_path / "ran"
    tar = _tar({"x.pkl": _payload(marker)})
    path = tmp_path / "bundle.tar.gz"
    path.write_bytes(gzip.compress(b"") + b"\0" * 512 + gzip.compress(tar))
    assert _runs(_TAR_GZ_READ, path, marker)
    _assert_critical(path)


# ------------------------------------------- (2) .xz and .lzma streams mix in LZMAFile
_LZMA_READ = "import lzma, pickle, sys; pickle.load(lzma.open(sys.argv[1]))"


@pytest.mark.parametrize(("first", "second"), [("xz", "lzma"), ("lzma", "xz")])
def test_attack_xz_and_lzma_streams_mixed(first: str, second: str, tmp_path: Path) -> None:
    """LZMAFile reads every further stream in FORMAT_AUTO (joblib's xz and lzma readers,
    lzma.open, pandas.read_pickle): an .xz stream then a .lzma one is one pickle. Was: the
    decoding stopped at the change of kind, the pickle truncated (medium), the os.system
    REDUCE unseen."""
    marker = tmp_path / "ran"
    pk = _payload(marker)
    cut = pk.index(b"tem\n")
    data = _COMPRESSORS[first](pk[:cut]) + _COMPRESSORS[second](pk[cut:])
    path = tmp_path / "model.pkl.xz"
    path.write_bytes(data)
    assert _runs(_LZMA_READ, path, marker)
    pytest.importorskip("joblib")
    assert _runs("import joblib, sys; joblib.load(sys.argv[1])", path, marker)
    _assert_critical(path)


# ------------------------------------------ (3) an LZ4 skippable frame between frames
@pytest.mark.parametrize("skips", [1, 3])
def test_attack_lz4_skippable_frame_between_frames(skips: int, tmp_path: Path) -> None:
    """LZ4's frame format has skippable frames (magic 0x184D2A50..5F, a size, that many
    bytes); joblib's lz4 reader (lz4.frame) skips them and reads the next frame. Was: the
    decoding stopped at the skippable frame (taken for a zstd one), the pickle split over the
    frames truncated (medium), the os.system REDUCE unseen."""
    pytest.importorskip("joblib")
    marker = tmp_path / "ran"
    pk = _payload(marker)
    cut = pk.index(b"tem\n")
    skip = b"".join(struct.pack("<II", 0x184D2A50 + i, 5) + b"hello" for i in range(skips))
    path = tmp_path / "model.joblib"
    path.write_bytes(_lz4(pk[:cut]) + skip + _lz4(pk[cut:]))
    assert _runs("import joblib, sys; joblib.load(sys.argv[1])", path, marker)
    _assert_critical(path)


# ---------------------------------------- (4) a gzip member whose trailer does not check
@pytest.mark.parametrize("field", ["crc", "size"])
def test_attack_gzip_bad_trailer(field: str, tmp_path: Path) -> None:
    """Python's gzip module (gzip.open, pandas.read_pickle) returns a member's data before it
    checks the CRC-32 and size after it: a complete pickle runs before the check fails. Was:
    zlib's gzip decoder raised on the trailer and dropped the member's output: nothing was
    scanned, medium 'corrupt gzip data after 0 decoded bytes'."""
    marker = tmp_path / "ran"
    data = bytearray(gzip.compress(_payload(marker)))
    data[-8 if field == "crc" else -1] ^= 0xFF
    path = tmp_path / "model.pkl.gz"
    path.write_bytes(bytes(data))
    assert _runs(_GZIP_READ, path, marker)
    _assert_critical(path)


# ------------------------- (5) a stream corrupt near its end, after the pickle it holds
@pytest.mark.parametrize("kind", ["xz", "lzma"])
def test_attack_stream_corrupt_after_the_pickle(kind: str, tmp_path: Path) -> None:
    """lzma.open (pandas.read_pickle) hands out the output of each 8 KiB read before it
    meets a corrupt byte further on: the pickle at the start runs. Was: the scan asked the
    decoder for up to 1 MiB at once, the error came in that call and its output was
    dropped: 'corrupt data after 0 decoded bytes', medium, nothing scanned."""
    marker = tmp_path / "ran"
    data = bytearray(_COMPRESSORS[kind](_payload(marker) + os.urandom(100_000)))
    data[-30] ^= 0xFF
    path = tmp_path / "model.pkl.xz"
    path.write_bytes(bytes(data))
    assert _runs(_LZMA_READ, path, marker)
    _assert_critical(path)


# --------------------------- (6) gzip headers Python's gzip module reads and zlib rejects
def _odd_header(member: bytes, variant: str) -> bytes:
    """``member`` (a gzip member of flags 0) with a wrong header CRC or a reserved flag."""
    if variant == "bad-header-crc":
        return member[:3] + bytes([member[3] | 0x02]) + member[4:10] + b"\0\0" + member[10:]
    return member[:3] + bytes([member[3] | 0x20]) + member[4:]  # reserved flag bit 5


@pytest.mark.parametrize("variant", ["bad-header-crc", "reserved-flag"])
@pytest.mark.parametrize("split", [False, True], ids=["one-member", "split-members"])
def test_attack_gzip_header_zlib_rejects(variant: str, split: bool, tmp_path: Path) -> None:
    """Python's gzip module reads the header itself: it skips the header CRC unchecked and
    ignores reserved flags, then reads on into the next member. Was: zlib's gzip decoder
    failed at the header, nothing was decoded (medium), the pickle gzip.open runs unseen."""
    marker = tmp_path / "ran"
    pk = _payload(marker)
    cut = pk.index(b"tem\n") if split else len(pk)
    data = _odd_header(gzip.compress(pk[:cut], mtime=0), variant)
    if split:
        data += gzip.compress(pk[cut:])
    path = tmp_path / "model.pkl.gz"
    path.write_bytes(data)
    assert _runs(_GZIP_READ, path, marker)
    _assert_critical(path)
