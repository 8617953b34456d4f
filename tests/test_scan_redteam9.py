"""Red team rtbenign: the relaxations of issue 10 (benign false alarms) as bypasses.

Each test builds its files itself (the real joblib/numpy, or raw pickle bytes) and uses the
real loader in a subprocess as the oracle of what runs; payloads only create a marker file.
"""

from __future__ import annotations

import io
import os
import pickletools
import struct
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from mltrust.findings import Finding, Severity
from mltrust.scan import scan_bytes, scan_file

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


# == round 9b: flatbuffer TorchScript and header-less ONNX text ====================================


def _fb_rules(data: bytes, name: str) -> dict[str, Severity]:
    out: dict[str, Severity] = {}
    for f in scan_bytes(data, name).findings:
        out[f.rule_id] = max(out.get(f.rule_id, f.severity), f.severity)
    return out


# -- flatbuffer TorchScript --------------------------------------------------------------------


def _torch() -> Any:
    return pytest.importorskip("torch")


def _flat(module: Any, tmp_path: Path) -> bytearray:
    from torch.jit._serialization import save_jit_module_to_flatbuffer

    path = tmp_path / "module.ff"
    save_jit_module_to_flatbuffer(module, str(path))
    return bytearray(path.read_bytes())


def _lite(data: bytes, tmp_path: Path) -> Any:
    from torch.jit.mobile import _load_for_lite_interpreter

    path = tmp_path / "edited.ff"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _load_for_lite_interpreter(str(path))


def _u32(data: bytearray, pos: int) -> int:
    value: int = struct.unpack_from("<I", data, pos)[0]
    return value


def _vtable(data: bytearray, table: int) -> int:
    soffset: int = struct.unpack_from("<i", data, table)[0]
    return table - soffset


def _field(data: bytearray, table: int, slot: int) -> int:
    vtable = _vtable(data, table)
    return table + struct.unpack_from("<H", data, vtable + slot)[0]


def _ivalues(data: bytearray) -> list[int]:
    root = _u32(data, 0)
    pos = _field(data, root, 12)
    vec = pos + _u32(data, pos)
    return [vec + 4 + 4 * i + _u32(data, vec + 4 + 4 * i) for i in range(_u32(data, vec))]


def _saver_flat(torch: Any, target: Path, tmp_path: Path) -> bytearray:
    class Saver(torch.nn.Module):
        def __init__(self, path: str) -> None:
            super().__init__()
            self.path = path

        def forward(self, x):  # an unannotated argument is a Tensor to TorchScript
            torch.save(x, self.path)  # mltrust: ignore[MLT-CODE-001] the attack under test
            return x

    data = _flat(torch.jit.script(Saver(str(target))), tmp_path)
    # the lite interpreter never reads jit_sources: launder them, the operator table stays
    assert data.count(b"torch.save(") == 1
    return bytearray(data.replace(b"torch.save(", b"torch.relu("))


def test_flatbuffer_table_size_smaller_than_its_fields_hides_a_file_operator(
    tmp_path: Path,
) -> None:
    # flatbuffers' verifier and accessors never read a vtable's table-size entry; the reader
    # called a field past it "outside the table" and stopped before the operator tables
    torch = _torch()
    target = tmp_path / "written.pt"
    data = _saver_flat(torch, target, tmp_path)
    root = _u32(data, 0)
    struct.pack_into("<H", data, _vtable(data, root) + 2, 4)
    assert _fb_rules(bytes(data), "model.ff").get("MLT-PT-005") == Severity.HIGH
    _lite(bytes(data), tmp_path)(torch.ones(2))  # the oracle: loads, and the table saves
    assert target.exists()


@pytest.mark.parametrize("vsize", [0, 2])
def test_flatbuffer_empty_vtable_shorter_than_four_bytes_hides_a_file_operator(
    tmp_path: Path, vsize: int
) -> None:
    # a vtable of 0 or 2 bytes is a table with no fields to flatbuffers (a NONE value); the
    # reader called it malformed and never reached the function after it
    torch = _torch()
    target = tmp_path / "written.pt"
    data = _saver_flat(torch, target, tmp_path)
    first = _ivalues(data)[0]
    vtable = _vtable(data, first)
    assert struct.unpack_from("<HH", data, vtable) == (4, 4)  # no fields: NONE
    struct.pack_into("<H", data, vtable, vsize)
    assert _fb_rules(bytes(data), "model.ff").get("MLT-PT-005") == Severity.HIGH
    _lite(bytes(data), tmp_path)(torch.ones(2))
    assert target.exists()


def _native_class_flat(torch: Any, tmp_path: Path, type_name: bytes) -> bytes:
    """A module building dist_rpc.WorkerInfo in forward, its source laundered and its type
    annotation replaced by ``type_name`` (a new string at the end, the vector entry moved)."""

    class NativeClass(torch.nn.Module):
        def forward(self, x):  # an unannotated argument is a Tensor to TorchScript
            w = torch.classes.dist_rpc.WorkerInfo("a", 1)  # noqa: F841
            return x + 1

    data = _flat(torch.jit.script(NativeClass()), tmp_path)
    call = (
        b"__torch__.torch.classes.dist_rpc.WorkerInfo.__new__("
        b"__torch__.torch.classes.dist_rpc.WorkerInfo)"
    )
    assert data.count(call) == 1
    data = bytearray(data.replace(call, b"None" + b" " * (len(call) - 4)))
    old = b"__torch__.torch.classes.dist_rpc.WorkerInfo"
    string = bytes(data).index(struct.pack("<I", len(old)) + old + b"\0")
    refs = [p for p in range(0, len(data) - 3, 4) if p + _u32(data, p) == string]
    assert len(refs) == 1
    data += b"\0" * (-len(data) % 4)
    new = len(data)
    data += struct.pack("<I", len(type_name)) + type_name + b"\0"
    data += b"\0" * (-len(data) % 4)
    struct.pack_into("<I", data, refs[0], new - refs[0])
    return bytes(data)


def test_flatbuffer_native_class_type_spelled_with_spaces_is_medium(tmp_path: Path) -> None:
    # A type string not starting with __torch__.torch.classes goes to torch's mobile type
    # parser, which skips spaces between tokens: " __torch__ . torch . classes . NS . C" is
    # the native class NS.C. The name pattern saw no native class at all.
    torch = _torch()
    spaced = b" __torch__ . torch . classes . dist_rpc . WorkerInfo"
    data = _native_class_flat(torch, tmp_path, spaced)
    assert _fb_rules(data, "model.ff").get("MLT-PT-006") == Severity.MEDIUM
    assert float(_lite(data, tmp_path)(torch.ones(1))[0]) == 2.0  # built the native class
    # the oracle's control: the parser really looks the spaced name up (a class that is not
    # registered crashes this torch build when forward builds it: run in a child process)
    missing = _native_class_flat(torch, tmp_path, b" __torch__ . torch . classes . nope . Nope")
    path = tmp_path / "missing.ff"
    path.write_bytes(missing)
    code = (
        "import sys, torch, torch.jit.mobile as m\n"
        "m._load_for_lite_interpreter(sys.argv[1])(torch.ones(1))"
    )
    child = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True)
    assert child.returncode != 0


def _files(data: bytearray, slot: int) -> list[tuple[int, int, bytes]]:
    """``(table, content field position, name)`` of each ExtraFile of a Module vector."""
    pos = _field(data, _u32(data, 0), slot)
    vec = pos + _u32(data, pos)
    out = []
    for i in range(_u32(data, vec)):
        table = vec + 4 + 4 * i + _u32(data, vec + 4 + 4 * i)
        name = _field(data, table, 4)
        out.append((table, _field(data, table, 6), _string(data, name + _u32(data, name))))
    return out


def _string(data: bytearray, pos: int) -> bytes:
    return bytes(data[pos + 4 : pos + 4 + _u32(data, pos)])


def test_flatbuffer_extra_file_sharing_bytes_with_a_source_is_scanned_as_a_file(
    tmp_path: Path,
) -> None:
    # An extra file whose content is the same string as a jit_sources entry (flatbuffers
    # may share any string) was scanned once, as TorchScript source: a pickle in it was a
    # medium "parser rejects" and not the pickle's own finding. torch.jit.load compiles only
    # the sources its types name, so a source entry nobody names is never compiled, while
    # the application gets the extra file.
    torch = _torch()

    class Plain(torch.nn.Module):
        def forward(self, x):  # an unannotated argument is a Tensor to TorchScript
            return x + 1

    payload = b"cos\nsystem\n(S'true'\ntR."  # mltrust: ignore[MLT-CODE-001] the payload
    from torch.jit._serialization import save_jit_module_to_flatbuffer

    path = tmp_path / "module.ff"
    save_jit_module_to_flatbuffer(
        torch.jit.script(Plain()), str(path), _extra_files={"config.pkl": payload}
    )
    data = bytearray(path.read_bytes())
    assert _fb_rules(bytes(data), "model.ff").get("MLT-PKL-001") == Severity.CRITICAL
    ((_, source_content, source_name),) = _files(data, 20)
    ((_, extra_content, _),) = _files(data, 6)
    source_text = _string(data, source_content + _u32(data, source_content))
    # a new jit_sources vector at the end: a copy of the real source and "unused" sharing
    # one string with the extra file (every uoffset points forward, as flatbuffers needs)
    data += b"\0" * (-len(data) % 4)
    base = len(data)
    # vector (12 bytes), then each table (12 bytes) after its vtable (8 bytes), then strings
    vec, table_a, table_b, strings = base, base + 20, base + 40, base + 52
    parts = [source_name, source_text, b"unused", payload]
    at, where = strings, []
    for part in parts:
        where.append(at)
        at += 4 + len(part) + 1 + (-(4 + len(part) + 1) % 4)
    blob = bytearray(at - base)
    struct.pack_into("<III", blob, 0, 2, table_a - (vec + 4), table_b - (vec + 8))
    for table, (name, content) in ((table_a, (0, 1)), (table_b, (2, 3))):
        vtable = table - 8
        struct.pack_into("<HHHH", blob, vtable - base, 8, 12, 4, 8)
        struct.pack_into("<i", blob, table - base, table - vtable)
        struct.pack_into("<I", blob, table + 4 - base, where[name] - (table + 4))
        struct.pack_into("<I", blob, table + 8 - base, where[content] - (table + 8))
    for pos, part in zip(where, parts, strict=True):
        struct.pack_into("<I", blob, pos - base, len(part))
        blob[pos - base + 4 : pos - base + 4 + len(part)] = part
    data += blob
    root_sources = _field(data, _u32(data, 0), 20)
    struct.pack_into("<I", data, root_sources, vec - root_sources)
    struct.pack_into("<I", data, extra_content, where[3] - extra_content)
    assert _fb_rules(bytes(data), "model.ff").get("MLT-PKL-001") == Severity.CRITICAL
    # the oracle: torch.jit.load compiles the module and hands the pickle over
    edited = tmp_path / "edited.ff"
    edited.write_bytes(bytes(data))
    extra = {"config.pkl": ""}
    module = torch.jit.load(str(edited), _extra_files=extra)
    assert float(module(torch.ones(1))[0]) == 2.0
    assert extra["config.pkl"] == payload


def _amplified(count: int, size: int) -> bytes:
    """A module whose one function lists ``count`` type annotations, all one string of
    ``size`` bytes (flatbuffers lets any number of offsets point at one string)."""
    buf = bytearray(b"\0\0\0\0PTMF")
    buf += struct.pack("<7H", 14, 8, 0, 0, 0, 0, 4) + b"\0\0"  # 8: Module vtable (ivalues)
    buf += struct.pack("<iI", 24 - 8, 32 - 28)  # 24: Module
    buf += struct.pack("<II", 1, 48 - 36)  # 32: ivalues, one value
    buf += struct.pack("<4H", 8, 12, 4, 8)  # 40: IValue vtable
    buf += struct.pack("<iII", 48 - 40, 16, 76 - 56)  # 48: IValue of kind Function
    buf += struct.pack("<7H", 14, 8, 0, 0, 0, 0, 4) + b"\0\0"  # 60: Function vtable
    buf += struct.pack("<iI", 76 - 60, 84 - 80)  # 76: Function (type_annotations)
    string = 84 + 4 + 4 * count
    buf += struct.pack("<I", count)
    buf += b"".join(struct.pack("<I", string - (88 + 4 * i)) for i in range(count))
    buf += struct.pack("<I", size) + b"x" * size + b"\0"
    struct.pack_into("<I", buf, 0, 24)
    return bytes(buf)


def test_flatbuffer_one_long_type_string_named_by_many_offsets_is_judged_once() -> None:
    # Each offset costs one entry of max_entries (10 million), but the string was judged
    # once per offset: 10 000 offsets to 1 MB read 10 GB (2 million: well past the time limit)
    import time

    data = _amplified(10_000, 1 << 20)
    started = time.monotonic()
    scan_bytes(data, "model.ff")
    assert time.monotonic() - started < 5


def test_mobile_bytecode_repeating_one_long_string_is_judged_once() -> None:
    # bytecode.pkl's value as the pickle evaluator builds it: a memo get (two bytes) repeats
    # one object, so 10 000 type rows and operator entries can all be one 1 MB string
    import time

    from mltrust.scan.formats._torchscript import analyze_bytecode

    long = "x" * (1 << 20)
    value = (("types", [long] * 10_000), ("operators", [(long, "", 1)] * 10_000))
    started = time.monotonic()
    report = analyze_bytecode(value, 10_000_000)
    assert time.monotonic() - started < 5
    assert report.unproven  # the operator entry is still judged (not understood)
    spaced = " __torch__ . torch . classes . dist_rpc . WorkerInfo"
    assert analyze_bytecode(("types", [spaced] * 3), 100).unproven


# -- header-less ONNX text: false positives ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "create.xml",  # an EPP command template: a namespaced XML root named domain:
            b'<domain:create xmlns:domain="urn:ietf:params:xml:ns:domain-1.0">\n'
            b"  <domain:name>example.com</domain:name>\n</domain:create>\n",
        ),
        ("notes.txt", b"<doc_string: what the tool prints>\nSee the manual.\n"),
        ("tags.txt", b"<ir_version: latest>\n"),
        ("meta.html", b"<metadata_props: see below>\n"),
    ],
)
def test_text_opening_with_a_model_keyword_but_no_value_onnx_reads_is_not_onnx(
    name: str, text: bytes
) -> None:
    # onnx.parser reads a header keyword's value by its kind (a "string", an integer, a
    # [list]); text whose first value is none of these is not ONNX text, and was medium
    import onnx.parser

    with pytest.raises(onnx.parser.ParseError):
        onnx.parser.parse_model(text.decode())
    findings = scan_bytes(text, name).findings
    assert not [f for f in findings if f.rule_id.startswith("MLT-ONX")], findings


def test_onnx_text_header_values_of_every_kind_are_still_claimed() -> None:
    import onnx.parser

    graph = b"g (float[N] X) => (float[N] Y) {\n  Y = evil.dom.Boom(X)\n}\n"
    for header in (
        b"<ir_version: -8>",
        b"<model_version: # a comment\n 8>",
        b'<domain: "a">',
        b'<opset_import: ["evil.dom": 1]>',
        b"<metadata_props: []>",
    ):
        onnx.parser.parse_model((header + graph).decode())  # the oracle reads it
        rules = _fb_rules(header + graph, "model.txt")
        assert rules.get("MLT-ONX-005") == Severity.MEDIUM, (header, rules)


def test_flatbuffer_type_annotation_vector_before_a_function_does_not_hide_its_operators(
    tmp_path: Path,
) -> None:
    # torch's verifier counts tables (a million at most), not strings: a function whose
    # type_annotations repeat one string spends max_entries cheaply. Put before the function
    # that saves, it stopped the walk first: a limit finding (medium) and no MLT-PT-005.
    from mltrust.config import Limits, ScanConfig

    torch = _torch()
    target = tmp_path / "written.pt"
    data = _saver_flat(torch, target, tmp_path)
    root = _u32(data, 0)
    pos = _field(data, root, 12)
    vec = pos + _u32(data, pos)
    count = 5000  # over the max_entries below; ten million with the defaults
    data += b"\0" * (-len(data) % 4)
    base = len(data)
    ivt, iv, fvt, ft = base, base + 8, base + 20, base + 44  # vtables before their tables
    qn, instr, ops, consts, types = base + 68, base + 88, base + 92, base + 96, base + 100
    text = types + 4 + 4 * count
    blob = bytearray(text + 12 - base)

    def put(fmt: str, at: int, *values: int) -> None:
        struct.pack_into(fmt, blob, at - base, *values)

    put("<4H", ivt, 8, 12, 4, 8)  # IValue: type, val
    put("<iBxxxI", iv, iv - ivt, 16, ft - (iv + 8))  # kind Function
    put("<12H", fvt, 22, 24, 4, 8, 12, 16, 20, 0, 0, 0, 0, 0)  # qn ... type_annotations
    offsets = [qn - (ft + 4), instr - (ft + 8), ops - (ft + 12), consts - (ft + 16)]
    put("<i5I", ft, ft - fvt, *offsets, types - (ft + 20))
    put("<I", qn, 11)
    blob[qn + 4 - base : qn + 15 - base] = b"__torch__.b"
    put("<I", types, count)
    for i in range(count):
        put("<I", types + 4 + 4 * i, text - (types + 4 + 4 * i))
    put("<I", text, 6)
    blob[text + 4 - base : text + 10 - base] = b"Tensor"
    data += blob
    struct.pack_into("<I", data, vec + 4, iv - (vec + 4))  # value 0 (None) is now it
    config = ScanConfig(limits=Limits(max_entries=2000))
    rules: dict[str, Severity] = {}
    for f in scan_bytes(bytes(data), "model.ff", config).findings:
        rules[f.rule_id] = max(rules.get(f.rule_id, f.severity), f.severity)
    assert rules.get("MLT-GEN-003") == Severity.MEDIUM
    assert rules.get("MLT-PT-005") == Severity.HIGH, rules
    _lite(bytes(data), tmp_path)(torch.ones(2))  # the oracle: loads, and the table saves
    assert target.exists()


def test_torchscript_source_with_a_nul_in_a_comment_still_names_its_file_operator(
    tmp_path: Path,
) -> None:
    # torch.jit.load compiles jit_sources (not the mobile tables, laundered here to
    # aten::sqrt): TorchScript's lexer skips a NUL inside a comment, Python's parser rejects
    # the whole source, and aten::save was only "not proven" (medium), in either form
    torch = _torch()
    target = tmp_path / "written.pt"
    data = bytearray(_saver_flat(torch, target, tmp_path).replace(b"torch.relu(", b"torch.save("))
    assert data.count(b"aten::save") == 1
    data = bytearray(data.replace(b"aten::save", b"aten::sqrt"))
    old, new = b"    path = self.path\n", b"    path=self.path#\0\n"
    assert data.count(old) == 1 and len(old) == len(new)
    data = bytearray(data.replace(old, new))
    assert _fb_rules(bytes(data), "model.ff").get("MLT-PT-005") == Severity.HIGH
    path = tmp_path / "edited.ff"
    path.write_bytes(bytes(data))
    torch.jit.load(str(path))(torch.ones(2))  # the oracle: compiles the source, saves
    assert target.exists()
