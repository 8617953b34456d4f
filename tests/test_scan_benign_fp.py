"""False alarms on real benign files (issue 10's installed-packages bench) and the malicious
variants next to each, which stay findings.

* legacy joblib (< 0.10) dumps: an array wrapper naming a companion ``.npy`` next to the model;
* networkx graph pickles (networkx ships DiGraph ``.gpickle`` files as test data);
* shell scripts (a Bats test file) that the config sniffer took for YAML because of ``${``.

Every file is built here, by the real library where it is installed, else from raw bytes; the
real loaders (joblib.load, pickle, yaml) are the oracles for what is read.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import zipfile
from pathlib import Path

import pytest

from mltrust.errors import UnsafeModelError
from mltrust.findings import Finding, Severity
from mltrust.scan import scan_bytes, scan_file

np = pytest.importorskip("numpy")


def _worst(findings: tuple[Finding, ...]) -> Severity | None:
    return max((f.severity for f in findings), default=None)


def _loud(findings: tuple[Finding, ...]) -> str:
    return "\n".join(f"{f.rule_id} {f.severity} {f.location}: {f.message}" for f in findings)


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE


# --------------------------------------------------------------- legacy joblib wrappers
def _legacy(filename: str, cls: str = "NDArrayWrapper") -> bytes:
    """A joblib 0.9-style pickle: NEWOBJ of the wrapper, BUILD with its attribute dict."""
    return (
        b"\x80\x04" + _u("joblib.numpy_pickle_compat") + _u(cls) + b"\x93)\x81}("
        + _u("filename") + _u(filename)
        + _u("subclass") + _u("numpy") + _u("ndarray") + b"\x93"
        + _u("allow_mmap") + b"\x89ub."
    )  # fmt: skip


def _companion_npy(path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.arange(6, dtype=np.float64))
    path.write_bytes(buf.getvalue())


def test_legacy_joblib_wrapper_with_its_companion_npy_is_not_medium(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    model = tmp_path / "model.pkl"
    model.write_bytes(_legacy("model.pkl_01.npy"))
    _companion_npy(tmp_path / "model.pkl_01.npy")
    # Oracle: joblib reads the companion by that name, next to the model.
    # mltrust: ignore[MLT-CODE-001] oracle: a benign file this test wrote itself
    assert np.array_equal(joblib.load(model), np.arange(6, dtype=np.float64))
    result = scan_file(model)
    worst = _worst(result.findings)
    assert worst is None or worst < Severity.MEDIUM, _loud(result.findings)
    assert any("[companion model.pkl_01.npy]" in f for f in result.formats), result.formats


def test_legacy_joblib_compressed_wrapper_with_its_companion_is_not_medium(
    tmp_path: Path,
) -> None:
    joblib = pytest.importorskip("joblib")
    from joblib.numpy_pickle_compat import ZNDArrayWrapper, write_zfile

    arr = np.arange(4, dtype=np.int64)
    # What joblib 0.9 wrote: the wrapper carries numpy's own reduce arguments; the raw data
    # goes to the companion Z-file.
    _, init_args, state = arr.__reduce__()
    body = pickle.dumps(ZNDArrayWrapper("model.gz_01.npy.z", init_args, state[:-1]), protocol=2)
    model = tmp_path / "model.gz"
    with model.open("wb") as f:
        write_zfile(f, body)
    with (tmp_path / "model.gz_01.npy.z").open("wb") as f:
        write_zfile(f, arr.tobytes())
    # mltrust: ignore[MLT-CODE-001] oracle: a benign file this test wrote itself
    assert np.array_equal(joblib.load(model), arr)  # oracle: the Z-file format joblib reads
    result = scan_file(model)
    worst = _worst(result.findings)
    assert worst is None or worst < Severity.MEDIUM, _loud(result.findings)


def test_legacy_joblib_wrapper_whose_companion_holds_a_payload_is_critical(
    tmp_path: Path,
) -> None:
    model = tmp_path / "model.pkl"
    model.write_bytes(_legacy("model.pkl_01.npy"))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|O", "fortran_order": False, "shape": (1,)}
    )
    # mltrust: ignore[MLT-CODE-001] attack payload built as bytes, never loaded here
    payload = b"\x80\x04" + _u("os") + _u("system") + b"\x93" + _u("id") + b"\x85R."
    (tmp_path / "model.pkl_01.npy").write_bytes(header.getvalue() + payload)
    result = scan_file(model)
    worst = _worst(result.findings)
    assert worst is not None and worst >= Severity.HIGH, _loud(result.findings)
    assert any(
        "[companion model.pkl_01.npy]" in f.location.members and f.severity >= Severity.HIGH
        for f in result.findings
    ), _loud(result.findings)


@pytest.mark.parametrize(
    "name", ["../model.pkl_01.npy", "sub/model.pkl_01.npy", "/tmp/model.pkl_01.npy", ".."]
)
def test_legacy_joblib_wrapper_naming_a_path_is_high_even_if_the_file_exists(
    tmp_path: Path, name: str
) -> None:
    inner = tmp_path / "sub"
    inner.mkdir()
    _companion_npy(tmp_path / "model.pkl_01.npy")
    _companion_npy(inner / "model.pkl_01.npy")
    model = inner / "model.pkl"
    model.write_bytes(_legacy(name))
    result = scan_file(model)
    assert _worst(result.findings) is Severity.HIGH, _loud(result.findings)
    assert "MLT-JBL-003" in {f.rule_id for f in result.findings}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize(
    ("name", "expected"),
    [("m.pkl_01.npy", None), ("missing.npy", Severity.MEDIUM), ("../m.pkl_01.npy", Severity.HIGH)],
)
def test_legacy_joblib_wrapper_pickled_by_the_real_class_at_every_protocol(
    tmp_path: Path, protocol: int, name: str, expected: Severity | None
) -> None:
    """INST/OBJ (protocols 0-1), copyreg._reconstructor and NEWOBJ all lead to the BUILD that
    joblib's load_build answers with read()."""
    pytest.importorskip("joblib")
    from joblib.numpy_pickle_compat import NDArrayWrapper

    folder = tmp_path / "model"
    folder.mkdir()
    _companion_npy(folder / "m.pkl_01.npy")
    _companion_npy(tmp_path / "m.pkl_01.npy")
    model = folder / "m.pkl"
    model.write_bytes(pickle.dumps(NDArrayWrapper(name, np.ndarray), protocol=protocol))
    result = scan_file(model)
    worst = _worst(result.findings)
    if expected is None:
        assert worst is None or worst < Severity.MEDIUM, _loud(result.findings)
    else:
        assert worst is expected, _loud(result.findings)


def test_legacy_joblib_wrapper_built_by_its_constructor_with_a_path_is_high(
    tmp_path: Path,
) -> None:
    # NDArrayWrapper("../x.npy", ndarray) by REDUCE, then a BUILD that names no file: read()
    # opens the constructor's path.
    data = (
        b"\x80\x04" + _u("joblib.numpy_pickle_compat") + _u("NDArrayWrapper") + b"\x93"
        + _u("../model.pkl_01.npy") + _u("numpy") + _u("ndarray") + b"\x93\x86R}b."
    )  # fmt: skip
    _companion_npy(tmp_path / "model.pkl_01.npy")
    inner = tmp_path / "sub"
    inner.mkdir()
    model = inner / "model.pkl"
    model.write_bytes(data)
    result = scan_file(model)
    assert _worst(result.findings) is Severity.HIGH, _loud(result.findings)


def test_legacy_joblib_wrapper_without_its_companion_stays_medium(tmp_path: Path) -> None:
    model = tmp_path / "model.pkl"
    model.write_bytes(_legacy("model.pkl_01.npy"))
    result = scan_file(model)
    assert _worst(result.findings) is Severity.MEDIUM, _loud(result.findings)
    assert "MLT-JBL-003" in {f.rule_id for f in result.findings}


def test_legacy_joblib_wrapper_whose_companion_is_a_link_stays_medium(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _companion_npy(elsewhere / "real.npy")
    folder = tmp_path / "model"
    folder.mkdir()
    os.symlink(elsewhere / "real.npy", folder / "model.pkl_01.npy")
    model = folder / "model.pkl"
    model.write_bytes(_legacy("model.pkl_01.npy"))
    result = scan_file(model)
    assert _worst(result.findings) is Severity.MEDIUM, _loud(result.findings)


def test_legacy_joblib_wrapper_whose_companion_is_unknown_content_stays_medium(
    tmp_path: Path,
) -> None:
    # np.load(allow_pickle=True) unpickles whatever is not .npy/.npz: content no format
    # recognises is not vouched for.
    (tmp_path / "model.pkl_01.npy").write_bytes(b"\x01\x02garbage that is not a pickle")
    model = tmp_path / "model.pkl"
    model.write_bytes(_legacy("model.pkl_01.npy"))
    result = scan_file(model)
    assert _worst(result.findings) is Severity.MEDIUM, _loud(result.findings)


def test_legacy_joblib_wrapper_in_memory_or_in_an_archive_stays_medium(tmp_path: Path) -> None:
    data = _legacy("model.pkl_01.npy")
    _companion_npy(tmp_path / "model.pkl_01.npy")
    assert _worst(scan_bytes(data, str(tmp_path / "model.pkl")).findings) is Severity.MEDIUM
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model.pkl", data)
    archive = tmp_path / "model.zip"
    archive.write_bytes(buf.getvalue())
    result = scan_file(archive)
    assert _worst(result.findings) is not None, _loud(result.findings)
    assert _worst(result.findings) >= Severity.MEDIUM, _loud(result.findings)
    assert "MLT-JBL-003" in {f.rule_id for f in result.findings}


def test_safe_loader_still_refuses_a_legacy_wrapper_with_a_benign_companion(
    tmp_path: Path,
) -> None:
    import mltrust

    model = tmp_path / "model.pkl"
    model.write_bytes(_legacy("model.pkl_01.npy"))
    _companion_npy(tmp_path / "model.pkl_01.npy")
    with pytest.raises(UnsafeModelError):
        mltrust.load(model)


# --------------------------------------------------------------- networkx graphs
def test_networkx_digraph_pickle_is_clean(tmp_path: Path) -> None:
    nx = pytest.importorskip("networkx")
    for cls in (nx.Graph, nx.DiGraph, nx.MultiGraph, nx.MultiDiGraph):
        g = cls()
        g.add_edge(1, 2, capacity=3.0)
        g.add_node("x", demand=-1)
        for protocol in (2, 4):
            data = pickle.dumps(g, protocol=protocol)
            # mltrust: ignore[MLT-CODE-001] oracle: a benign file this test wrote itself
            assert type(pickle.loads(data)) is cls  # oracle: the real class
            found = scan_bytes(data, "graph.gpickle").findings
            worst = _worst(found)
            assert worst is None or worst < Severity.MEDIUM, (cls, protocol, _loud(found))


def test_networkx_digraph_pickle_with_a_payload_in_its_state_is_flagged() -> None:
    nx = pytest.importorskip("networkx")
    g = nx.DiGraph()
    g.add_edge(1, 2)
    data = pickle.dumps(g, protocol=2)
    assert data.endswith(b"ub.")
    # One more key in the state dict (inside SETITEMS' MARK): its value is a call.
    # mltrust: ignore[MLT-CODE-001] attack payload built as bytes, never loaded here
    call = _u("evil") + b"cos\nsystem\n" + _u("id") + b"\x85R"
    hostile = data[:-3] + call + b"ub."
    pickletools.dis(hostile, out=io.StringIO())  # oracle: a well-formed pickle
    found = scan_bytes(hostile, "graph.gpickle").findings
    assert _worst(found) is not None and _worst(found) >= Severity.HIGH, _loud(found)


# --------------------------------------------------------------- shell scripts vs YAML
_BATS = b"""#!/usr/bin/env bats

load test_helper
export CACHE_PATH="$TMP/cache"

setup() {
  mkdir -p "${INSTALL_ROOT}"
}
# a comment ends YAML's plain scalar: the next line is a YAML error
@test "build" {
  run build "${1}.tar.gz"
}
cat > patch <<OUT
--- a/configure 2017-09-14
+++ b/configure 2017-09-14
OUT
"""


def test_shell_script_with_interpolations_is_not_read_as_yaml() -> None:
    yaml = pytest.importorskip("yaml")
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(_BATS)  # oracle: no YAML loader reads it
    result = scan_bytes(_BATS, "build.bats")
    worst = _worst(result.findings)
    assert worst is None or worst < Severity.MEDIUM, _loud(result.findings)
    assert not any("config" in f for f in result.formats), result.formats


@pytest.mark.parametrize(
    "text",
    [
        # mltrust: ignore[MLT-CODE-001] YAML attack configs as bytes, never loaded here
        b"#!/bin/bash\nrun: !!python/object/apply:os.system [id]\n",
        b"#!/usr/bin/env bats\n_target_: os.system\ncommand: ${oc.env:HOME}\n",
        b"#!/bin/sh\n!!python/object/apply:os.system [id]\n---\nnot: [yaml\n",
        b"#!/bin/sh\n- !!python/name:os.system\n",
    ],
)
def test_yaml_config_with_a_shell_shebang_is_still_a_config(text: bytes) -> None:
    yaml = pytest.importorskip("yaml")
    # Oracle: PyYAML reads a mapping, a tag or a sequence from the first document.
    node = next(iter(yaml.compose_all(text.split(b"\n---")[0], Loader=yaml.SafeLoader)))
    assert isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) or node.tag.startswith(
        "tag:yaml.org,2002:python"
    )
    result = scan_bytes(text, "deploy.sh")
    assert any("config" in f for f in result.formats), result.formats
    worst = _worst(result.findings)
    assert worst is not None and worst >= Severity.MEDIUM, _loud(result.findings)


# --------------------------------------------------------------- joblib object arrays
def _object_array(*items: object) -> object:
    arr = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        arr[i] = item
    return arr


def _dumps_with_object_arrays() -> dict[str, tuple[object, int]]:
    """Real joblib dumps whose pickle.load reading was misjudged (generated benign dumps)."""
    import datetime

    return {
        # pickle.load stops at the first array's alignment pad (no opcode): the object array
        # after it is never read by pickle.load.
        "first-array-numeric": (
            ["s5", "s9", datetime.date(2020, 1, 5), np.arange(3), {"k": np.float32(1)}, "s9",
             _object_array("numpy", np.arange(3), None), np.arange(3), np.arange(3)],
            4,
        ),
        # pickle.load's shifted memo gives the module "f8" (a dtype code) to an import of
        # "dtype": it fails there, before the opcodes the analysis went on to read.
        "shifted-import-fails": (
            [np.float64(0.3), _object_array("numpy", np.arange(3), None), np.int64(6),
             np.arange(3)],
            3,
        ),
        # pickle.load imports numpy._core.multiarray:dtype (numpy.dtype itself) and calls it.
        "shifted-import-is-numpy-dtype": (
            [{"k": np.float32(1)}, np.int64(6), "s9", np.float64(0.5),
             _object_array("numpy", np.int64(2), None), np.float64(0.02)],
            4,
        ),
    }  # fmt: skip


@pytest.mark.parametrize("case", sorted(_dumps_with_object_arrays()))
def test_joblib_dump_with_an_object_array_is_clean(tmp_path: Path, case: str) -> None:
    joblib = pytest.importorskip("joblib")
    value, protocol = _dumps_with_object_arrays()[case]
    path = tmp_path / f"{case}.joblib"
    joblib.dump(value, path, protocol=protocol)
    # mltrust: ignore[MLT-CODE-001] oracle: a benign file this test wrote itself
    assert repr(joblib.load(path)) == repr(value)  # oracle: joblib's own reading
    with pytest.raises(Exception):  # oracle: pickle.load fails on it
        # mltrust: ignore[MLT-CODE-001] oracle: a benign file this test wrote itself
        pickle.loads(path.read_bytes())
    result = scan_file(path)
    worst = _worst(result.findings)
    assert worst is None or worst < Severity.MEDIUM, _loud(result.findings)


def test_joblib_dump_with_a_payload_in_the_first_array_region_is_still_flagged(
    tmp_path: Path,
) -> None:
    """The first array region is where pickle.load's reading starts to differ from joblib's:
    raw data there that reads as opcodes is still analysed, and so are later regions."""
    joblib = pytest.importorskip("joblib")
    # mltrust: ignore[MLT-CODE-001] attack payload built as bytes, never loaded here
    payload = b"cos\nsystem\n" + _u("id") + b"\x85R."
    arr = np.frombuffer(payload.ljust(32, b"\x00"), dtype=np.uint8).copy()
    path = tmp_path / "model.joblib"
    joblib.dump([arr, _object_array("a", None)], path)
    data = path.read_bytes()
    start = data.index(payload)
    # joblib pads the array data to 16 bytes with a pad-length byte: put the payload where
    # pickle.load reads its next opcode, right after the wrapper's BUILD.
    pad = 0
    while data[start - pad - 1] == 0xFF:
        pad += 1
    assert data[start - pad - 1] == pad  # the pad-length byte, then the padding
    hostile = data[: start - pad - 1] + data[start:]
    path.write_bytes(hostile)
    result = scan_file(path)
    worst = _worst(result.findings)
    assert worst is not None and worst >= Severity.HIGH, _loud(result.findings)
