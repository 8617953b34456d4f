"""Red team rtbenign: the relaxations of issue 10 (benign false alarms) as bypasses.

Each test builds its files itself (the real joblib/numpy, or raw pickle bytes) and uses the
real loader in a subprocess as the oracle of what runs; payloads only create a marker file.
"""

from __future__ import annotations

import io
import os
import pickletools
import subprocess
import sys
from pathlib import Path

import pytest

from mltrust.findings import Finding, Severity
from mltrust.scan import scan_file

np = pytest.importorskip("numpy")


def _loud(findings: tuple[Finding, ...]) -> str:
    return "\n".join(f"{f.rule_id} {f.severity} {f.location}: {f.message}" for f in findings)


def _worst(findings: tuple[Finding, ...]) -> Severity | None:
    return max((f.severity for f in findings), default=None)


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE


def _load_in_subprocess(code: str, path: Path, *, pythonpath: Path | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    subprocess.run(  # the oracle may fail after the payload ran: only the marker counts
        [sys.executable, "-c", code, str(path)], env=env, capture_output=True, timeout=60
    )


# ------------------------------------------- (4) an excused shifted import ended the view
def _object_array_dump_hiding(module: str, marker: Path) -> bytes:
    """A joblib dump of one object array whose own pickle pickle.load reads with the outer
    stream's memo: joblib's reading imports numpy:dtype twice and calls dtype('f8');
    pickle.load's imports ``module``:dtype (not installed here: excused), then os:system
    and calls it with a command that creates ``marker``."""
    joblib = pytest.importorskip("joblib")
    buf = io.BytesIO()
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = 1, "a"
    joblib.dump(arr, buf, protocol=4)
    real = buf.getvalue()
    outer = real[: real.index(b"\x10ub") + 3]  # ... 'numpy_array_alignment_bytes': 16}, BUILD
    shifted = sum(op.name == "MEMOIZE" for op, _, _ in pickletools.genops(outer + b"."))
    # Index i of the inner memo is joblib's value; pickle.load's memo index i is the outer
    # stream's, and index shifted + j is the inner stream's j-th.
    # mltrust: ignore[MLT-CODE-001] attack payload strings, only ever loaded in a subprocess
    names = [module, "os", "system", f"touch {marker}"]
    names += ["x"] * (shifted - len(names)) + ["numpy", "numpy", "dtype", "f8"]
    inner = b"\x80\x04" + b"".join(_u(n) + b"\x940" for n in names)
    inner += b"h" + bytes([shifted]) + _u("dtype") + b"\x930"
    inner += b"h" + bytes([shifted + 1]) + b"h" + bytes([shifted + 2]) + b"\x93"
    inner += b"h" + bytes([shifted + 3]) + b"\x85R."
    return outer + inner + b"."


def test_shifted_import_of_a_module_missing_here_does_not_hide_what_pickle_load_runs_after(
    tmp_path: Path,
) -> None:
    """pickle.load fails on a shifted import only where its module is missing: where the file
    is loaded it may be installed (torch:dtype, with mltrust in its own venv), and pickle.load
    reads on to a hidden os.system. The scan ended pickle.load's view at the excused import."""
    module = "mlt_rt9_only_where_loaded"
    env = tmp_path / "site"
    env.mkdir()
    (env / f"{module}.py").write_text("dtype = None\n")
    marker = tmp_path / "ran"
    models = tmp_path / "models"
    models.mkdir()
    path = models / "model.joblib"
    path.write_bytes(_object_array_dump_hiding(module, marker))
    # mltrust: ignore[MLT-CODE-001] oracle: pickle.load of the hostile file, in a subprocess
    oracle = "import pickle,sys; pickle.load(open(sys.argv[1],'rb'))"
    _load_in_subprocess(oracle, path, pythonpath=env)
    assert marker.exists(), "oracle: pickle.load ran the payload"
    result = scan_file(path)
    worst = _worst(result.findings)
    assert worst is not None and worst >= Severity.HIGH, _loud(result.findings)
    assert any("os.system" in f.message for f in result.findings), _loud(result.findings)


# ------------------------------- (1) an archive member named like a whole-file decoding
def _legacy_wrapper(filename: str) -> bytes:
    """A joblib 0.9-style pickle: NEWOBJ of NDArrayWrapper, BUILD with its attribute dict."""
    return (
        b"\x80\x04" + _u("joblib.numpy_pickle_compat") + _u("NDArrayWrapper") + b"\x93)\x81}("
        + _u("filename") + _u(filename)
        + _u("subclass") + _u("numpy") + _u("ndarray") + b"\x93"
        + _u("allow_mmap") + b"\x89ub."
    )  # fmt: skip


@pytest.mark.parametrize("member", ["zfile", "[gzip]", "[lz4]"])
def test_archive_member_named_like_a_whole_file_decoding_is_not_vouched_for(
    tmp_path: Path, member: str
) -> None:
    """A legacy wrapper inside an archive is read by joblib from wherever the archive is
    extracted, so its companion beside the archive proves nothing (medium, rule MLT-JBL-003).
    A zip member named "zfile" or "[gzip]" took the name test for a decoding of the whole
    file, and a benign c.npy beside the zip vouched for it."""
    import zipfile

    joblib = pytest.importorskip("joblib")
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as z:
        z.writestr(member, _legacy_wrapper("c.npy"))
    buf = io.BytesIO()
    np.save(buf, np.arange(3.0))
    (tmp_path / "c.npy").write_bytes(buf.getvalue())
    # Oracle: joblib reads the companion next to the extracted member, not next to the zip.
    out = tmp_path / "extracted"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(out)
    with pytest.raises(FileNotFoundError):
        # mltrust: ignore[MLT-CODE-001] oracle: a benign file this test wrote itself
        joblib.load(out / member)
    result = scan_file(bundle)
    assert any(
        f.rule_id == "MLT-JBL-003" and f.severity >= Severity.MEDIUM for f in result.findings
    ), _loud(result.findings)


# ------------------------------- (3) a shebang line ended by a line break YAML knows
@pytest.mark.parametrize("brk", ["\r", "\x85", "\u2028", "\u2029", "\r\n"])
def test_shell_shebang_ended_by_a_yaml_line_break_is_still_read_as_yaml(
    tmp_path: Path, brk: str
) -> None:
    """PyYAML ends a line (so the ``#!`` comment) at CR, NEL, LS and PS too, where the shell
    sniff's first line runs on to the next LF; a Python tag right after it is still read."""
    marker = tmp_path / "ran"
    # mltrust: ignore[MLT-CFG-004] attack payload text, only ever loaded in a subprocess
    text = f"#!/bin/sh{brk}!!python/object/apply:os.system ['touch {marker}']\n"
    path = tmp_path / "run.sh"
    path.write_bytes(text.encode())
    # mltrust: ignore[MLT-CODE-001] oracle: yaml.unsafe_load_all, in a subprocess
    oracle = "import sys,yaml; list(yaml.unsafe_load_all(open(sys.argv[1],encoding='utf-8')))"
    _load_in_subprocess(oracle, path)
    assert marker.exists(), "oracle: PyYAML ran the tag"
    result = scan_file(path)
    worst = _worst(result.findings)
    assert worst is not None and worst >= Severity.HIGH, _loud(result.findings)


# ------------------------------- (1) the folder a companion is looked up in, through "link/.."
def test_companion_is_looked_up_where_joblib_resolves_link_dot_dot(tmp_path: Path) -> None:
    """joblib joins the companion's name to the folder part of the path it was given, and the
    OS resolves "link/.." physically; the scan took os.path.abspath of the path, which drops
    "link/.." lexically, so it vouched with a benign c.npy in another folder."""
    pytest.importorskip("joblib")
    marker = tmp_path / "ran"
    (tmp_path / "models").mkdir()
    (tmp_path / "elsewhere" / "sub").mkdir(parents=True)
    (tmp_path / "models" / "link").symlink_to(tmp_path / "elsewhere" / "sub")
    (tmp_path / "elsewhere" / "model.pkl").write_bytes(_legacy_wrapper("c.npy"))
    cmd = f"touch {marker}".encode()
    # mltrust: ignore[MLT-CODE-001] attack payload built as bytes, only loaded in a subprocess
    payload = b"\x80\x02cos\nsystem\nX" + len(cmd).to_bytes(4, "little") + cmd + b"\x85R."
    (tmp_path / "elsewhere" / "c.npy").write_bytes(payload)
    buf = io.BytesIO()
    np.save(buf, np.arange(3.0))
    (tmp_path / "models" / "c.npy").write_bytes(buf.getvalue())
    path = tmp_path / "models" / "link" / ".." / "model.pkl"
    # mltrust: ignore[MLT-CODE-001] oracle: joblib.load of the hostile file, in a subprocess
    _load_in_subprocess("import joblib,sys; joblib.load(sys.argv[1])", path)
    assert marker.exists(), "oracle: joblib read the companion beside the real file"
    result = scan_file(str(path))
    worst = _worst(result.findings)
    assert worst is not None and worst >= Severity.HIGH, _loud(result.findings)


def test_module_beside_is_looked_up_where_the_os_resolves_link_dot_dot(tmp_path: Path) -> None:
    """The same folder decides which modules ship beside the file (found_beside): a loader
    started beside the real file imports the module there."""
    from mltrust.scan._pickle._resolve import found_beside

    (tmp_path / "models").mkdir()
    (tmp_path / "elsewhere" / "sub").mkdir(parents=True)
    (tmp_path / "models" / "link").symlink_to(tmp_path / "elsewhere" / "sub")
    (tmp_path / "elsewhere" / "mlt_rt9_beside.py").write_text("x = 1\n")
    path = tmp_path / "models" / "link" / ".." / "model.pkl"
    assert found_beside(str(path), "mlt_rt9_beside")
