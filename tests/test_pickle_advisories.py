"""Public bypass advisories of other pickle scanners, replayed from raw bytes.

One case per advisory (picklescan, fickling, modelscan): the import target and call shape the
advisory reports, written by the test with its own opcodes. Each must be flagged at high or
above, and ``mltrust.load`` must refuse it even when the caller tolerates every finding (the
restricted unpickler never imports the target), so the canary is never created.

Advisory ids are cited per case; targets of libraries that are not installed are still built
(the scanner never imports them).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import mltrust
from mltrust.errors import UnsafeModelError
from mltrust.findings import Finding, Severity
from mltrust.scan import scan_bytes

P4 = b"\x80\x04"
CMD = "CANARY"  # replaced by the canary command in each test


def _str(text: str) -> bytes:
    raw = text.encode()
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def _value(v: object) -> bytes:
    if v is None:
        return b"N"
    if v is True:
        return b"\x88"
    if v is False:
        return b"\x89"
    if isinstance(v, int):
        return b"J" + struct.pack("<i", v)
    if isinstance(v, str):
        return _str(v)
    if isinstance(v, bytes):
        return b"C" + bytes([len(v)]) + v
    if isinstance(v, dict):
        return b"}"
    if isinstance(v, list):
        return b"](" + b"".join(_value(x) for x in v) + b"e"
    raise TypeError(v)


def sg(module: str, name: str) -> bytes:
    return _str(module) + _str(name) + b"\x93"


def call(module: str, name: str, *args: object) -> bytes:
    return P4 + sg(module, name) + b"(" + b"".join(_value(a) for a in args) + b"tR."


def _fill(args: tuple[object, ...], command: str) -> tuple[object, ...]:
    code = f"__import__('os').system({command!r})"
    out: list[object] = []
    for a in args:
        if a == CMD:
            out.append(command)
        elif a == "PY":
            out.append(code)
        else:
            out.append(a)
    return tuple(out)


#: (advisory, module, qualified name, arguments); "PY" is a Python payload, CMD a shell one.
ADVISORIES: list[tuple[str, str, str, tuple[object, ...]]] = [
    # picklescan
    ("GHSA-4r9r-ch6f-vxmx", "torch.utils.bottleneck.__main__", "run_cprofile", ("PY", {})),
    ("GHSA-4whj-rm5r-c2v8", "torch.utils.bottleneck.__main__", "run_autograd_prof", ("PY", {})),
    ("GHSA-86cj-95qr-2p4f", "torch._dynamo.guards", "GuardBuilder.get", ({}, "PY")),
    (
        "GHSA-f4x7-rfwp-v3xw",
        "torch.fx.experimental.symbolic_shapes",
        "ShapeEnv.evaluate_guards_expression",
        ({}, "PY", []),
    ),
    ("GHSA-f745-w6jp-hpxx", "torch.utils.collect_env", "run", (CMD,)),
    (
        "GHSA-h3qp-7fh3-f8h4",
        "torch.utils.data.datapipes.utils.decoder",
        "basichandlers",
        ("pickle", b""),
    ),
    ("GHSA-vr7h-p6mm-wpmh", "torch.jit.unsupported_tensor_ops", "execWrapper", ("PY", {}, {})),
    ("GHSA-vv6j-3g6g-2pvj", "torch.utils._config_module", "ConfigModule.load_config", ({}, b"")),
    ("GHSA-5qwp-399c-mjwf", "trace", "Trace.run", ({}, "PY")),
    ("GHSA-g344-hcph-8vgg", "trace", "Trace.runctx", ({}, "PY", {}, {})),
    ("GHSA-x696-vm39-cp64", "profile", "Profile.run", ({}, "PY")),
    ("GHSA-6vqj-c2q5-j97w", "profile", "Profile.runctx", ({}, "PY", {}, {})),
    ("GHSA-f54q-57x4-jg88", "lib2to3.pgen2.grammar", "Grammar.loads", ({}, b"")),
    ("GHSA-p9w7-82w4-7q8m", "lib2to3.pgen2.pgen", "ParserGenerator.make_label", (None, {}, "PY")),
    ("GHSA-3vg9-h568-4w9m", "idlelib.debugobj", "ObjectTreeItem.SetText", ({}, "PY")),
    ("GHSA-6w4w-5w54-rjvr", "idlelib.autocomplete", "AutoComplete.get_entity", ({}, "PY")),
    (
        "GHSA-7cq8-mj8x-j263",
        "idlelib.autocomplete",
        "AutoComplete.fetch_completions",
        ({}, "PY", 1),
    ),
    ("GHSA-8r4j-24qv-fmq9", "idlelib.calltip", "Calltip.fetch_tip", ({}, "PY")),
    ("GHSA-9xph-j2h6-g47v", "idlelib.calltip", "get_entity", ("PY",)),
    ("GHSA-m869-42cg-3xwr", "idlelib.run", "Executive.runcode", ({}, "PY")),
    ("GHSA-j343-8v2j-ff7w", "idlelib.pyshell", "ModifiedInterpreter.runcommand", ({}, "PY")),
    ("GHSA-3gf5-cxq9-w223", "idlelib.pyshell", "ModifiedInterpreter.runcode", ({}, "PY")),
    ("GHSA-cj3c-v495-4xqh", "code", "InteractiveInterpreter.runcode", ({}, "PY")),
    ("GHSA-xp4f-hrf8-rxw7", "ensurepip", "_run_pip", ("PY",)),
    ("GHSA-vvpj-8cmc-gx39", "pkgutil", "resolve_name", ("os:system",)),
    ("GHSA-fqq6-7vqf-w3fg", "doctest", "debug_script", ("PY", True)),
    ("GHSA-9w88-8rmg-7g2p", "cProfile", "runctx", ("PY", None, None)),
    ("GHSA-49gj-c84q-6qm9", "cProfile", "run", ("PY",)),
    ("GHSA-7wx9-6375-f5wh", "profile", "run", ("PY",)),
    (
        "GHSA-q77w-mwjj-7mqx",
        "asyncio.unix_events",
        "_UnixSubprocessTransport._start",
        ({}, CMD, True, None, None, None, 0),
    ),
    ("GHSA-m273-6v24-x4m4", "distutils.file_util", "write_file", ("pwned.env", ["x"])),
    ("GHSA-4675-36f9-wf6r", "ctypes", "CDLL", (None,)),
    ("GHSA-vqmv-47xg-9wpr", "pty", "spawn", (["/bin/sh", "-c", CMD],)),
    ("GHSA-r8g5-cgf2-4m4m", "numpy.f2py.crackfortran", "getlincoef", ("PY", [])),
    ("GHSA-g38g-8gr9-h9xp", "uuid", "_get_command_stdout", (CMD,)),
    ("GHSA-g38g-8gr9-h9xp/osx", "_osx_support", "_read_output", (CMD,)),
    ("GHSA-g38g-8gr9-h9xp/aix", "_aix_support", "_read_cmd_output", (CMD,)),
    ("GHSA-g38g-8gr9-h9xp/imaplib", "imaplib", "IMAP4_stream", (CMD,)),
    ("GHSA-9726-w42j-3qjr", "_io", "FileIO", ("/etc/hosts", "r")),
    ("GHSA-9726-w42j-3qjr/urlopen", "urllib.request", "urlopen", ("https://example.invalid",)),
    ("GHSA-m7j5-r2p5-c39r", "logging", "FileHandler", ("evil.log",)),
    ("GHSA-9m3x-qqw2-h32h", "types", "CodeType", (0, 0)),
    ("GHSA-9m3x-qqw2-h32h/cloudpickle", "cloudpickle.cloudpickle", "subimport", ("os",)),
    # picklescan fixtures named in its test suite (compile_file, pipepager, venv, timeit, runstring)
    (
        "picklescan-malicious17",
        "torch._inductor.codecache",
        "compile_file",
        ("", "", ["sh", "-c", CMD]),
    ),
    ("picklescan-malicious18", "pydoc", "pipepager", ("", CMD)),
    ("picklescan-malicious20", "venv", "create", ("venv", False, False, True, False, CMD)),
    ("picklescan-malicious21", "timeit", "timeit", ("", "PY")),
    ("picklescan-malicious22", "numpy.testing._private.utils", "runstring", ("PY", {})),
    # fickling
    ("fickling-GHSA-r7v6-mfhq-g3m2", "pty", "spawn", (CMD,)),
    ("fickling-GHSA-m6fh-58r7-x697", "_posixsubprocess", "fork_exec", (["/bin/sh"],)),
    ("fickling-GHSA-m6fh-58r7-x697/site", "site", "addsitedir", ("/tmp",)),
    ("fickling-GHSA-m6fh-58r7-x697/atexit", "atexit", "register", ("PY",)),
    ("GHSA-955r-x9j8-7rhh", "_operator", "methodcaller", ("system", CMD)),
    ("fickling-GHSA-q5qq-mvfm-j35x/ctypes", "ctypes", "CDLL", ("./payload.so",)),
    ("fickling-GHSA-q5qq-mvfm-j35x/importlib", "importlib", "import_module", ("os",)),
    (
        "fickling-GHSA-q5qq-mvfm-j35x/multiprocessing",
        "multiprocessing.util",
        "spawnv_passfds",
        (b"/bin/sh", [], []),
    ),
    ("fickling-GHSA-wfq2-52f7-7qvj", "runpy", "run_path", ("/tmp/payload.py",)),
    ("fickling-GHSA-h4rm-mm56-xf63", "builtins", "exec", ("PY",)),
    # modelscan issue #338 (execution primitives missing from its denylist)
    (
        "modelscan-338/spawnv_passfds",
        "multiprocessing.util",
        "spawnv_passfds",
        (b"/bin/sh", [], []),
    ),
    ("modelscan-338/collect_env", "torch.utils.collect_env", "run", (CMD,)),
    (
        "modelscan-338/mlflow",
        "mlflow.projects.backend.local",
        "_run_entry_point",
        (CMD, ".", "", ""),
    ),
    (
        "modelscan-338/read_csv",
        "pandas.io.parsers.readers",
        "read_csv",
        ("https://example.invalid",),
    ),
    ("modelscan-338/bdb", "bdb", "Bdb.run", ({}, "PY")),
]


def _findings(data: bytes) -> list[Finding]:
    return list(scan_bytes(data, "model.pkl").findings)


def _worst(fs: list[Finding]) -> Severity:
    return max((f.severity for f in fs), key=lambda s: s.rank, default=Severity.INFO)


def _refused(data: bytes, canary: Path) -> None:
    for fail_on in (Severity.MEDIUM, Severity.CRITICAL):
        with pytest.raises(UnsafeModelError):
            mltrust.load(data, fail_on=fail_on)
    assert not canary.exists()


@pytest.mark.parametrize(
    ("advisory", "module", "name", "args"), ADVISORIES, ids=[a[0] for a in ADVISORIES]
)
def test_advisory_is_flagged_and_refused(
    advisory: str, module: str, name: str, args: tuple[object, ...], canary: Path
) -> None:
    data = call(module, name, *_fill(args, f"touch {canary}"))
    fs = _findings(data)
    assert _worst(fs) >= Severity.HIGH, (advisory, [(f.rule_id, f.message) for f in fs])
    assert any(name.split(".")[0] in f.message for f in fs)
    _refused(data, canary)


def test_GHSA_84r2_jw7c_4r5q_methodcaller_over_pydoc_locate(canary: Path) -> None:
    # methodcaller("system", cmd)(pydoc.locate("os")): two gadgets chained by REDUCE.
    data = (
        P4
        + sg("operator", "methodcaller")
        + _str("system")
        + _str(f"touch {canary}")
        + b"\x86R"
        + sg("pydoc", "locate")
        + _str("os")
        + b"\x85R\x85R."
    )
    fs = _findings(data)
    assert _worst(fs) is Severity.CRITICAL
    _refused(data, canary)


def test_GHSA_9gvj_pp9x_gcfr_stack_global_from_protocol0_strings(canary: Path) -> None:
    # STACK_GLOBAL operands pushed with STRING (protocol 0 quoting), no PROTO header.
    data = b"S'os'\nS'system'\n\x93S'touch " + str(canary).encode() + b"'\n\x85R."
    fs = _findings(data)
    assert _worst(fs) is Severity.CRITICAL, [(f.rule_id, f.message) for f in fs]
    _refused(data, canary)


def test_GHSA_97f8_7cmv_76j2_torch_magic_number_built_by_eval(canary: Path) -> None:
    # A legacy torch file whose "magic number" pickle is eval("0x1950...") instead of an int.
    magic = P4 + sg("builtins", "eval") + _str("0x1950A86A20F9469CFC6C") + b"\x85R."
    rest = b"\x80\x02M\xe9\x03.\x80\x02}q\x00." + b"\x80\x02}q\x00." + b"\x80\x02]q\x00."
    data = magic + rest
    fs = list(scan_bytes(data, "model.pt").findings)
    assert _worst(fs) is Severity.CRITICAL, [(f.rule_id, f.message) for f in fs]
    _refused(data, canary)


def test_picklescan_issue_14_memo_confusion_put_and_memoize(canary: Path) -> None:
    # BINPUT and MEMOIZE mixed so that a memo-index-tracking scanner resolves the wrong names.
    data = (
        P4
        + _str("os")
        + b"q\x00"  # BINPUT 0
        + _str("system")
        + b"q\x01"  # BINPUT 1
        + _str("torch._utils")
        + b"\x94"  # MEMOIZE -> index len(memo) == 2
        + _str("_rebuild_tensor_v2")
        + b"\x94"  # MEMOIZE -> 3
        + b"0000"
        + b"h\x00h\x01\x93"
        + _str(f"touch {canary}")
        + b"\x85R."
    )
    fs = _findings(data)
    assert _worst(fs) is Severity.CRITICAL
    assert any("os.system" in f.message for f in fs)
    _refused(data, canary)


def test_fickling_GHSA_mxhj_88fx_4pcv_obj_call_whose_result_is_popped(canary: Path) -> None:
    # OBJ calls os.system, POP discards the result: the call still ran.
    data = b"(cos\nsystem\nS'touch " + str(canary).encode() + b"'\no0N."
    fs = _findings(data)
    assert _worst(fs) is Severity.CRITICAL, [(f.rule_id, f.message) for f in fs]
    _refused(data, canary)


def test_picklescan_malicious19_partial_over_torch_load(canary: Path) -> None:
    data = (
        P4 + sg("functools", "partial") + sg("torch", "load") + _str("/tmp/other.pt") + b"\x86R)R."
    )
    fs = _findings(data)
    assert _worst(fs) is Severity.CRITICAL
    _refused(data, canary)


def test_modelscan_issue_330_numpy_builtins_through_build(canary: Path) -> None:
    # numpy.__builtins__ fetched as a global, then eval taken from it with getattr.
    data = bytes.fromhex(
        "80049566000000000000008c056e756d70798c0473697a659394948c056e756d70798c0c5f5f6275696c"
        "74696e735f5f93949468017d7d8c0573686170656803738662680168018c046576616c86528c1d5f5f69"
        "6d706f72745f5f28226f7322292e73797374656d28226964222985522e"
    )
    fs = _findings(data)
    assert _worst(fs) is Severity.CRITICAL
    _refused(data, canary)


def test_modelscan_issue_85_build_setattr_on_a_function_then_stack_global(canary: Path) -> None:
    # BUILD sets numpy.prod.a = "os", numpy.prod.b = "system"; STACK_GLOBAL reads them back.
    data = (
        b"\x80\x05cnumpy\nprod\n"
        + b"N(Va\nVos\nd\x86b"
        + b"N(Vb\nVsystem\nd\x86b"
        + b"0cnumpy\nprod.a\np0\ncnumpy\nprod.b\np1\n00g0\ng1\n\x93"
        + b"Vtouch "
        + str(canary).encode()
        + b"\n\x85R."
    )
    fs = _findings(data)
    assert _worst(fs) >= Severity.HIGH, [(f.rule_id, f.message) for f in fs]
    _refused(data, canary)
