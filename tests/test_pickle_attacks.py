"""One regression test per pickle/joblib attack technique, built from raw bytes.

Every payload only ever touches the ``canary`` file; scanning must never create it.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import time
import zipfile
import zlib
from pathlib import Path

import joblib
import numpy as np
import pytest

from mltrust.config import Limits, ScanConfig
from mltrust.findings import Finding, Location, Severity
from mltrust.scan import scan_bytes
from mltrust.scan._context import ScanContext
from mltrust.scan._pickle import scan_pickle_stream

# ----------------------------------------------------------------------------- byte builders


def glob0(module: str, name: str) -> bytes:
    """GLOBAL opcode (protocol 0 text)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def su(text: str) -> bytes:
    """SHORT_BINUNICODE."""
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def bu(text: str) -> bytes:
    """BINUNICODE (protocol 1+)."""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def sg(module: str, name: str) -> bytes:
    """STACK_GLOBAL with constant operands."""
    return su(module) + su(name) + b"\x93"


P2 = b"\x80\x02"
P4 = b"\x80\x04"


def cmd(canary: Path) -> str:
    return f"touch {canary}"


def call1(target: bytes, arg: bytes) -> bytes:
    """target(arg) with REDUCE: target pushes a callable, arg pushes one value."""
    return target + arg + b"\x85R"


def findings(
    data: bytes, name: str = "model.pkl", config: ScanConfig | None = None
) -> list[Finding]:
    return list(scan_bytes(data, name, config).findings)


def direct(data: bytes, context: str = "pickle", config: ScanConfig | None = None) -> list[Finding]:
    ctx = ScanContext(config=config or ScanConfig())
    scan_pickle_stream(memoryview(data), ctx, Location("x.pkl"), context=context)
    return ctx.findings


def worst(fs: list[Finding]) -> Severity:
    return max((f.severity for f in fs), key=lambda s: s.rank, default=Severity.INFO)


def rules(fs: list[Finding]) -> set[str]:
    return {f.rule_id for f in fs}


def assert_flagged(
    fs: list[Finding], at_least: Severity = Severity.HIGH, rule: str | None = None
) -> None:
    assert worst(fs) >= at_least, [(f.rule_id, f.severity, f.message) for f in fs]
    if rule is not None:
        assert rule in rules(fs), [(f.rule_id, f.message) for f in fs]


# ----------------------------------------------------------------------------- core techniques


def test_os_system_via_global_protocol0(canary: Path) -> None:
    data = glob0("os", "system") + b"(S'" + cmd(canary).encode() + b"'\ntR."
    fs = findings(data, "model.bin")
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")
    msg = next(f.message for f in fs if f.rule_id == "MLT-PKL-001")
    assert "REDUCE calls os.system" in msg and "shell command" in msg
    f = next(f for f in fs if f.rule_id == "MLT-PKL-001")
    assert f.location.offset is not None and f.location.index is not None
    assert f.cwe == 502 and "AML.T0011.000" in f.atlas


def test_protocol0_without_proto_header_is_sniffed(canary: Path) -> None:
    data = b"cos\nsystem\n(S'ls'\ntR."
    result = scan_bytes(data, "weights.dat")
    assert "pickle" in result.formats
    assert_flagged(list(result.findings), Severity.CRITICAL)


def test_stack_global_with_memo_fetched_operands(canary: Path) -> None:
    data = (
        P4
        + su("os")
        + b"\x94"  # memo 0
        + su("system")
        + b"\x94"  # memo 1
        + b"00"  # pop both
        + su("builtins")
        + su("len")
        + b"00"  # decoys popped
        + b"h\x00h\x01\x93"
        + su(cmd(canary))
        + b"\x85R."
    )
    fs = findings(data)
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")
    assert any("os.system" in f.message for f in fs)


def test_stack_global_with_dup_and_pop_mark_decoys(canary: Path) -> None:
    data = (
        P4
        + b"("
        + su("builtins")
        + su("print")
        + b"1"  # POP_MARK drops the decoys
        + su("subprocess")
        + b"2"  # DUP
        + b"0"  # POP the copy
        + su("getoutput")
        + b"\x93"
        + su(cmd(canary))
        + b"\x85R."
    )
    fs = findings(data)
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")
    assert any("subprocess.getoutput" in f.message for f in fs)


def test_long_binput_long_binget_memo(canary: Path) -> None:
    data = (
        P4
        + sg("posix", "system")
        + b"r\x10\x27\x00\x00"  # LONG_BINPUT 10000
        + b"0"
        + b"j\x10\x27\x00\x00"  # LONG_BINGET 10000
        + su(cmd(canary))
        + b"\x85R."
    )
    assert_flagged(findings(data), Severity.CRITICAL, "MLT-PKL-001")


def test_text_put_get_memo_protocol0(canary: Path) -> None:
    data = b"cos\nsystem\np7\n0g7\n(S'" + cmd(canary).encode() + b"'\ntR."
    assert_flagged(findings(data), Severity.CRITICAL, "MLT-PKL-001")


def test_inst_opcode(canary: Path) -> None:
    data = b"(S'" + cmd(canary).encode() + b"'\nios\nsystem\n."
    fs = findings(data)
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")
    assert any(f.message.startswith("INST calls os.system") for f in fs)


def test_obj_opcode(canary: Path) -> None:
    data = b"(" + glob0("os", "system") + b"S'" + cmd(canary).encode() + b"'\no."
    fs = findings(data)
    assert any(f.message.startswith("OBJ calls os.system") for f in fs)


def test_newobj_opcode(canary: Path) -> None:
    data = P2 + glob0("subprocess", "Popen") + b"(" + bu("touch") + bu(str(canary)) + b"l\x85\x81."
    fs = findings(data)
    assert_flagged(fs, Severity.CRITICAL)
    assert any(f.message.startswith("NEWOBJ calls subprocess.Popen") for f in fs)


def test_newobj_ex_opcode(canary: Path) -> None:
    data = P4 + sg("subprocess", "Popen") + b"(" + su("touch") + su(str(canary)) + b"l\x85}\x92."
    fs = findings(data)
    assert any(f.message.startswith("NEWOBJ_EX calls subprocess.Popen") for f in fs)


def test_build_sets_setstate_in_state_dict() -> None:
    data = (
        P4
        + sg("collections", "OrderedDict")
        + b")\x81"
        + b"N}"
        + su("__setstate__")
        + sg("builtins", "exec")
        + b"s\x86b"  # BUILD with (None, {'__setstate__': exec}) slot state
        + su("print(1)")
        + b"b."  # second BUILD calls the planted __setstate__
    )
    fs = findings(data)
    assert "MLT-PKL-008" in rules(fs)
    assert_flagged(fs, Severity.CRITICAL)


def test_build_on_a_class_object() -> None:
    data = P4 + sg("collections", "OrderedDict") + b"N}" + su("x") + b"K\x01s\x86b."
    fs = findings(data)
    assert "MLT-PKL-008" in rules(fs)
    assert worst(fs) >= Severity.HIGH


@pytest.mark.parametrize("ext", [b"\x82\x01", b"\x83\x01\x02", b"\x84\x01\x02\x03\x04"])
def test_ext_opcodes_are_flagged(ext: bytes) -> None:
    data = P2 + ext + b")R."
    fs = findings(data)
    assert_flagged(fs, Severity.HIGH, "MLT-PKL-007")


def test_computed_stack_global_name_is_critical() -> None:
    # module name produced by calling builtins.str at load time
    data = (
        P4
        + sg("builtins", "str")
        + su("os")
        + b"\x85R"
        + su("system")
        + b"\x93"
        + su("x")
        + b"\x85R."
    )
    fs = findings(data)
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-005")


def test_protocol2_builtin_eval_alias(canary: Path) -> None:
    data = P2 + glob0("__builtin__", "eval") + bu(f"open({str(canary)!r}, 'w')") + b"\x85R."
    fs = findings(data)
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")
    assert any("builtins.eval" in f.message for f in fs)


def test_commands_getoutput_alias(canary: Path) -> None:
    data = glob0("commands", "getoutput") + b"(S'" + cmd(canary).encode() + b"'\ntR."
    fs = findings(data)
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")
    assert any("subprocess" in f.message for f in fs)


@pytest.mark.parametrize(
    ("module", "name", "at_least"),
    [
        ("builtins", "getattr", Severity.CRITICAL),
        ("builtins", "exec", Severity.CRITICAL),
        ("builtins", "compile", Severity.CRITICAL),
        ("builtins", "__import__", Severity.CRITICAL),
        ("builtins", "open", Severity.HIGH),
        ("builtins", "breakpoint", Severity.CRITICAL),
        ("builtins", "input", Severity.HIGH),
        ("functools", "partial", Severity.HIGH),
        ("operator", "attrgetter", Severity.CRITICAL),
        ("operator", "methodcaller", Severity.CRITICAL),
        ("operator", "call", Severity.CRITICAL),
        ("_operator", "attrgetter", Severity.CRITICAL),
        ("typing", "_eval_type", Severity.CRITICAL),
        ("pkgutil", "resolve_name", Severity.CRITICAL),
        ("importlib", "import_module", Severity.CRITICAL),
        ("importlib.util", "spec_from_file_location", Severity.CRITICAL),
        ("marshal", "loads", Severity.CRITICAL),
        ("types", "FunctionType", Severity.CRITICAL),
        ("types", "CodeType", Severity.CRITICAL),
        ("pickle", "loads", Severity.CRITICAL),
        ("_pickle", "loads", Severity.CRITICAL),
        ("dill", "loads", Severity.CRITICAL),
        ("cloudpickle", "loads", Severity.CRITICAL),
        ("numpy.testing._private.utils", "runstring", Severity.CRITICAL),
        ("cProfile", "run", Severity.CRITICAL),
        ("cProfile", "runctx", Severity.CRITICAL),
        ("profile", "run", Severity.CRITICAL),
        ("pdb", "run", Severity.CRITICAL),
        ("bdb", "Bdb", Severity.CRITICAL),
        ("timeit", "timeit", Severity.CRITICAL),
        ("trace", "Trace", Severity.CRITICAL),
        ("pip", "main", Severity.CRITICAL),
        ("pip._internal.cli.main", "main", Severity.CRITICAL),
        ("runpy", "run_path", Severity.CRITICAL),
        ("runpy", "_run_code", Severity.CRITICAL),
        ("code", "InteractiveInterpreter", Severity.CRITICAL),
        ("pty", "spawn", Severity.CRITICAL),
        ("ctypes", "CDLL", Severity.CRITICAL),
        ("socket", "create_connection", Severity.HIGH),
        ("urllib.request", "urlopen", Severity.HIGH),
        ("http.client", "HTTPSConnection", Severity.HIGH),
        ("requests", "get", Severity.HIGH),
        ("webbrowser", "open", Severity.CRITICAL),
        ("shutil", "rmtree", Severity.HIGH),
        ("os", "remove", Severity.HIGH),
        ("os", "rename", Severity.HIGH),
        ("os", "fdopen", Severity.HIGH),
        ("os", "popen", Severity.CRITICAL),
        ("os", "execv", Severity.CRITICAL),
        ("os", "spawnl", Severity.CRITICAL),
        ("os", "fork", Severity.HIGH),
        ("os", "kill", Severity.HIGH),
        ("nt", "system", Severity.CRITICAL),
        ("posixpath", "join", Severity.HIGH),
        ("io", "open", Severity.HIGH),
        ("codecs", "open", Severity.HIGH),
        ("tempfile", "mkstemp", Severity.HIGH),
        ("glob", "glob", Severity.HIGH),
        ("sys", "modules", Severity.CRITICAL),
        ("subprocess", "check_output", Severity.CRITICAL),
        ("torch", "load", Severity.CRITICAL),
        ("torch.serialization", "load", Severity.CRITICAL),
        ("numpy", "load", Severity.CRITICAL),
        ("joblib", "load", Severity.CRITICAL),
        ("multiprocessing", "Process", Severity.CRITICAL),
        ("threading", "Thread", Severity.HIGH),
        ("sklearn.utils._testing", "assert_run_python_script_without_output", Severity.CRITICAL),
    ],
)
def test_gadget_and_dangerous_imports(
    module: str, name: str, at_least: Severity, canary: Path
) -> None:
    data = P4 + call1(sg(module, name), su(cmd(canary))) + b"."
    fs = findings(data)
    assert_flagged(fs, at_least)
    assert any(f"{module}.{name}" in f.message for f in fs)


def test_import_without_call_is_still_reported() -> None:
    data = P4 + sg("os", "system") + b"."
    assert_flagged(findings(data), Severity.CRITICAL, "MLT-PKL-001")


@pytest.mark.parametrize(
    ("module", "name"),
    [("pathlib", "Path.touch"), ("pathlib", "PosixPath.write_text"), ("pathlib", "Path.unlink")],
)
def test_path_touch_style_dotted_names(module: str, name: str, canary: Path) -> None:
    data = P4 + sg(module, name) + sg("pathlib", "PosixPath") + su(str(canary)) + b"\x85R\x85R."
    fs = findings(data)
    assert_flagged(fs, Severity.HIGH)
    assert any(name in f.message for f in fs)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("torch", "os.system"),
        ("numpy", "os.system"),
        ("sklearn.externals.joblib", "os.system"),
        ("some.module", "subprocess.Popen"),
        ("collections", "os.popen"),
    ],
)
def test_reexported_module_reach(module: str, name: str, canary: Path) -> None:
    data = P4 + call1(sg(module, name), su(cmd(canary))) + b"."
    fs = findings(data)
    assert_flagged(fs, Severity.CRITICAL)
    assert any("reaches" in f.message for f in fs)


def test_dict_get_dotted_builtin_method() -> None:
    data = P4 + sg("builtins", "dict.get") + b"}" + su("k") + b"\x86R."
    assert_flagged(findings(data), Severity.HIGH)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("builtins", "object.__subclasses__"),
        ("os", "system.__globals__"),
        ("numpy", "__builtins__.eval"),
        ("collections", "OrderedDict.__init__.__globals__"),
        ("builtins", "__class__"),
    ],
)
def test_dunder_qualnames_are_critical(module: str, name: str) -> None:
    data = P4 + sg(module, name) + b"."
    fs = findings(data)
    assert_flagged(fs, Severity.CRITICAL)


def test_nested_pickle_loads_is_scanned(canary: Path) -> None:
    inner = P2 + glob0("os", "system") + bu(cmd(canary)) + b"\x85R."
    outer = P4 + sg("pickle", "loads") + b"C" + bytes([len(inner)]) + inner + b"\x85R."
    fs = findings(outer)
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")
    assert any("pickle.loads" in f.message for f in fs)
    assert any("os.system" in f.message for f in fs), "the inner payload must be found too"


def test_payload_then_garbage(canary: Path) -> None:
    data = P2 + glob0("os", "system") + bu(cmd(canary)) + b"\x85R" + b"\xff\xfe\x00garbage"
    fs = findings(data)
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")
    assert "MLT-GEN-002" in rules(fs)


def test_payload_then_truncation(canary: Path) -> None:
    data = P2 + glob0("os", "system") + bu(cmd(canary)) + b"\x85R" + b"X\xff\x00\x00"
    fs = findings(data)
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")
    assert "MLT-GEN-002" in rules(fs)


def test_two_concatenated_pickles_payload_in_second(canary: Path) -> None:
    first = pickle.dumps({"weights": [1.0, 2.0]}, protocol=4)
    second = P2 + glob0("os", "system") + bu(cmd(canary)) + b"\x85R."
    fs = findings(first + second)
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")


def test_trailing_non_pickle_bytes_are_low() -> None:
    fs = findings(pickle.dumps([1, 2, 3], protocol=2) + b"\x00\x01\x02 trailing junk")
    assert "MLT-PKL-010" in rules(fs)
    assert worst(fs) < Severity.MEDIUM


def test_payload_after_large_binbytes8_skip(canary: Path) -> None:
    size = 32 << 20
    blob = b"\x8e" + struct.pack("<Q", size) + bytes(size)
    data = P4 + blob + b"0" + call1(sg("os", "system"), su(cmd(canary))) + b"."
    started = time.perf_counter()
    fs = findings(data)
    assert time.perf_counter() - started < 2.0
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")


def test_payload_after_large_binunicode8_and_bytearray8(canary: Path) -> None:
    size = 8 << 20
    data = (
        P4
        + b"\x8d"
        + struct.pack("<Q", size)
        + b"a" * size
        + b"0\x96"
        + struct.pack("<Q", size)
        + bytes(size)
        + b"0"
        + call1(sg("os", "system"), su(cmd(canary)))
        + b"."
    )
    assert_flagged(findings(data), Severity.CRITICAL, "MLT-PKL-001")


def test_frame_opcode_is_followed(canary: Path) -> None:
    body = call1(sg("os", "system"), su(cmd(canary))) + b"."
    data = P4 + b"\x95" + struct.pack("<Q", len(body)) + body
    assert_flagged(findings(data), Severity.CRITICAL, "MLT-PKL-001")


def test_protocol0_string_escapes_in_stack_global_operands() -> None:
    data = b"S'o\\x73'\nS'sys\\x74em'\n\x93S'x'\n\x85R."
    fs = findings(data)
    assert any("os.system" in f.message for f in fs)


def test_persistent_id_outside_pytorch_is_low_and_inside_is_silent() -> None:
    data = P2 + bu("storage") + b"Q."
    assert "MLT-PKL-009" in rules(direct(data))
    assert worst(direct(data)) < Severity.MEDIUM
    assert "MLT-PKL-009" not in rules(direct(data, context="pytorch"))


def test_out_of_band_buffer_is_low() -> None:
    data = b"\x80\x05\x97\x98."
    fs = direct(data)
    assert "MLT-PKL-013" in rules(fs)
    assert worst(fs) < Severity.MEDIUM


def test_codecs_encode_with_computed_argument() -> None:
    data = (
        P2
        + glob0("_codecs", "encode")
        + glob0("builtins", "str")
        + b")R"
        + bu("latin1")
        + b"\x86R."
    )
    assert "MLT-PKL-012" in rules(findings(data))


def test_copyreg_reconstructor_with_dangerous_class(canary: Path) -> None:
    data = b"ccopy_reg\n_reconstructor\n(csubprocess\nPopen\nc__builtin__\nobject\nNtR."
    fs = findings(data)
    assert_flagged(fs, Severity.CRITICAL)
    assert any("subprocess.Popen" in f.message for f in fs)


def test_functools_partial_wrapping_os_system(canary: Path) -> None:
    data = P4 + sg("functools", "partial") + sg("os", "system") + su(cmd(canary)) + b"\x86R)R."
    fs = findings(data)
    assert any("functools.partial" in f.message for f in fs)
    assert any("os.system" in f.message for f in fs)
    assert worst(fs) == Severity.CRITICAL


def test_getattr_chain_calls_computed_value(canary: Path) -> None:
    data = (
        P4
        + sg("builtins", "getattr")
        + sg("os", "path")
        + su("exists")
        + b"\x86R"
        + su("x")
        + b"\x85R."
    )
    fs = findings(data)
    assert_flagged(fs, Severity.CRITICAL)
    assert "MLT-PKL-012" in rules(fs)  # the call of a computed callable


def test_unknown_import_is_medium_and_config_can_allow_it() -> None:
    data = P4 + sg("mycompany.models", "Custom") + b")R."
    fs = findings(data)
    assert worst(fs) == Severity.MEDIUM and "MLT-PKL-004" in rules(fs)
    allowed = ScanConfig(allow_globals=frozenset({"mycompany.models:*"}))
    assert worst(findings(data, config=allowed)) < Severity.MEDIUM
    exact = ScanConfig(allow_globals=frozenset({"mycompany.models:Custom"}))
    assert worst(findings(data, config=exact)) < Severity.MEDIUM


def test_opcode_limit_is_a_finding_not_clean() -> None:
    data = pickle.dumps(list(range(200_000)), protocol=4)
    config = ScanConfig(limits=Limits(max_pickle_opcodes=1000))
    fs = findings(data, config=config)
    assert "MLT-GEN-003" in rules(fs)


def test_stream_limit_is_a_finding() -> None:
    one = pickle.dumps(1, protocol=2)
    config = ScanConfig(limits=Limits(max_pickle_streams=3))
    fs = findings(one * 10, config=config)
    assert "MLT-GEN-003" in rules(fs)


def test_deep_mark_nesting_is_bounded() -> None:
    data = P2 + b"(" * 200_000 + b"N."
    fs = findings(data)
    assert "MLT-GEN-003" in rules(fs) or "MLT-GEN-002" in rules(fs)


def test_polyglot_pickle_prefix_before_zip(canary: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model/data.pkl", pickle.dumps({"a": 1}, protocol=2))
    data = P2 + glob0("os", "system") + bu(cmd(canary)) + b"\x85R." + buf.getvalue()
    result = scan_bytes(data, "model.pt")
    assert "pickle" in result.formats
    assert_flagged(list(result.findings), Severity.CRITICAL, "MLT-PKL-001")


# ----------------------------------------------------------------------------- joblib


class _Payload:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


def _joblib_bytes(value: object, **kw: object) -> bytes:
    buf = io.BytesIO()
    joblib.dump(value, buf, **kw)
    return buf.getvalue()


def test_joblib_payload_after_numpy_array(canary: Path) -> None:
    data = _joblib_bytes(
        {"weights": np.arange(300_000, dtype=np.float64), "p": _Payload(cmd(canary))}
    )
    fs = findings(data, "model.joblib")
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")
    assert "MLT-GEN-002" not in rules(fs)


def test_joblib_payload_after_several_arrays_of_many_dtypes(canary: Path) -> None:
    value = {
        "f4": np.ones((7, 3), dtype=np.float32),
        "fortran": np.asfortranarray(np.ones((5, 4))),
        "u": np.array(["abc", "de"]),
        "s": np.array([b"xy", b"z"]),
        "b": np.array([True, False]),
        "dt": np.array(["2020-01-01"], dtype="datetime64[ns]"),
        "rec": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        "c": np.array([1 + 2j]),
        "empty": np.zeros((0, 3)),
        "scalar": np.array(3.0),
        "p": _Payload(cmd(canary)),
    }
    fs = findings(_joblib_bytes(value), "model.joblib")
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")
    assert "MLT-GEN-002" not in rules(fs) and "MLT-JBL-001" not in rules(fs)


def test_joblib_object_dtype_array_carries_payload(canary: Path) -> None:
    arr = np.empty(2, dtype=object)
    arr[0] = "ok"
    arr[1] = _Payload(cmd(canary))
    fs = findings(_joblib_bytes({"a": np.arange(10.0), "o": arr, "z": np.ones(3)}), "m.joblib")
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")
    assert "MLT-GEN-002" not in rules(fs)


def test_joblib_compressed_zlib_payload(canary: Path) -> None:
    data = _joblib_bytes({"a": np.arange(1000.0), "p": _Payload(cmd(canary))}, compress=3)
    assert_flagged(findings(data, "m.joblib"), Severity.CRITICAL, "MLT-PKL-001")


def test_joblib_legacy_zfile_payload(canary: Path) -> None:
    inner = pickle.dumps(_Payload(cmd(canary)), protocol=2)
    header = b"ZF" + f"{len(inner):#x}".ljust(19).encode()
    data = header + zlib.compress(inner)
    fs = findings(data, "old.pkl")
    assert_flagged(fs, Severity.CRITICAL, "MLT-PKL-001")


def test_joblib_wrapper_with_unresolvable_state_fails_closed() -> None:
    data = P4 + sg("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + b"Nb."
    fs = findings(data, "m.joblib")
    assert "MLT-JBL-001" in rules(fs)
    assert worst(fs) >= Severity.MEDIUM


def test_joblib_array_truncated() -> None:
    data = _joblib_bytes({"a": np.arange(1000.0)})
    fs = findings(data[:-5000], "m.joblib")
    assert "MLT-JBL-002" in rules(fs)


def test_joblib_raw_region_that_is_a_pickle_for_pickle_load(canary: Path) -> None:
    class NoTell(io.BytesIO):
        def tell(self) -> int:
            raise io.UnsupportedOperation("no tell")

    hidden = b"cos\nsystem\n(S'" + cmd(canary).encode() + b"'\ntR."
    buf = NoTell()
    joblib.dump({"a": np.frombuffer(hidden, dtype=np.uint8)}, buf)
    fs = findings(buf.getvalue(), "m.joblib")
    assert "MLT-JBL-004" in rules(fs)
    assert worst(fs) >= Severity.HIGH


# ----------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    "data",
    [
        b"Hello world, this is a text file.\n",
        b'{"model": "json", "layers": []}',
        b"class Foo:\n    pass\n",
        b"(tuple) and more text",
        b"I am not a pickle\n",
        bytes(range(256)) * 4,
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
        b"GGUF\x03\x00\x00\x00\x00\x00\x00\x00",
        b"\x93NUMPY\x01\x00v\x00",
    ],
)
def test_sniff_does_not_claim_non_pickles(data: bytes) -> None:
    from mltrust.scan.formats.pickle import PickleScanner

    assert not PickleScanner().sniff(memoryview(data), "x.pkl")


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_sniff_claims_every_protocol(protocol: int) -> None:
    from mltrust.scan.formats.pickle import PickleScanner

    data = pickle.dumps({"a": [1, 2.5, "x", b"y", None, True]}, protocol=protocol)
    assert PickleScanner().sniff(memoryview(data), "noext")


def test_unbounded_stack_growth_is_a_limit_finding() -> None:
    data = P2 + b"K\x01" * 1_100_000 + b"."
    started = time.perf_counter()
    fs = direct(data)
    assert time.perf_counter() - started < 5.0
    assert "MLT-GEN-003" in rules(fs)


def test_joblib_raw_region_pickle_with_long_innocent_prefix(canary: Path) -> None:
    class NoTell(io.BytesIO):
        def tell(self) -> int:
            raise io.UnsupportedOperation("no tell")

    prefix = b"N0" * 100  # 200 harmless opcodes before the payload
    hidden = prefix + b"cos\nsystem\n(S'" + cmd(canary).encode() + b"'\ntR."
    buf = NoTell()
    joblib.dump({"a": np.frombuffer(hidden, dtype=np.uint8)}, buf)
    fs = findings(buf.getvalue(), "m.joblib")
    assert "MLT-JBL-004" in rules(fs)


def test_time_limit_is_a_finding_and_never_raises() -> None:
    data = pickle.dumps(list(range(300_000)), protocol=4)
    ctx = ScanContext(config=ScanConfig(), deadline=time.monotonic() - 1)
    summary = scan_pickle_stream(memoryview(data), ctx, Location("slow.pkl"))
    assert not summary.complete
    assert "MLT-GEN-003" in rules(ctx.findings)


@pytest.mark.parametrize(
    "template",
    [
        # a long command string in a protocol 0 pickle (no PROTO header)
        b"cos\nsystem\n(S'" + b"A" * 5000 + b" CMD'\ntR.",
        # INT parsed in base 0, as pickle does
        b"I0x10\n0cos\nsystem\n(S'CMD'\ntR.",
        # PROTO in the middle of a protocol 0 stream
        b"(\x80\x021cos\nsystem\n(S'CMD'\ntR.",
        # values left on the stack and an open MARK at STOP (pickle.load ignores them)
        b"N(cos\nsystem\nS'CMD'\n\x85R.",
        # an EXT opcode first (extension registered by the loading process)
        b"\x82\x01cos\nsystem\n(S'CMD'\ntR.",
    ],
)
def test_protocol0_sniff_evasions_are_still_scanned(template: bytes, canary: Path) -> None:
    data = template.replace(b"CMD", cmd(canary).encode())
    result = scan_bytes(data, "model.bin")
    assert "pickle" in result.formats
    assert_flagged(list(result.findings), Severity.HIGH)
