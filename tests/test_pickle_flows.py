"""How allowlisted globals are used: bypasses built only from allowlisted names, from raw bytes.

Each payload here imports nothing outside the allowlist (or hides it in nested bytes), so an
import-only scanner passes it. The analyser must follow how each global is used: called with
pickle-supplied arguments, handed to an allowed function that calls its arguments, stored in a
container or in BUILD state, or fetched once and reused from the memo.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path

import joblib
import numpy as np
import pytest

import mltrust
from mltrust.errors import UnsafeModelError
from mltrust.findings import Finding, Severity
from mltrust.scan import scan_bytes

P4 = b"\x80\x04"


def su(text: str) -> bytes:
    raw = text.encode()
    return (
        b"\x8c" + bytes([len(raw)]) + raw
        if len(raw) < 256
        else b"X" + struct.pack("<I", len(raw)) + raw
    )


def sg(module: str, name: str) -> bytes:
    return su(module) + su(name) + b"\x93"


def sb(raw: bytes) -> bytes:
    """Bytes constant (BINBYTES)."""
    return b"B" + struct.pack("<I", len(raw)) + raw


def evil_inner(canary: Path) -> bytes:
    """A complete pickle that runs a shell command when loaded."""
    return P4 + sg("os", "system") + su(f"touch {canary}") + b"\x85R."


def findings(data: bytes) -> list[Finding]:
    return list(scan_bytes(data, "model.pkl").findings)


def worst(fs: list[Finding]) -> Severity:
    return max((f.severity for f in fs), key=lambda s: s.rank, default=Severity.INFO)


def loud(fs: list[Finding]) -> list[tuple[str, str]]:
    return [(f.rule_id, f.message) for f in fs if f.severity >= Severity.MEDIUM]


def assert_refused(data: bytes, canary: Path, *, even_if_tolerated: bool = False) -> None:
    """``mltrust.load`` refuses; with ``even_if_tolerated`` also when the caller tolerates
    every finding (the restricted unpickler itself must stop the payload)."""
    with pytest.raises(UnsafeModelError):
        mltrust.load(data)
    if even_if_tolerated:
        with pytest.raises(UnsafeModelError):
            mltrust.load(data, fail_on=Severity.CRITICAL)
    assert not canary.exists()


# ------------------------------------------------------------- nested loaders, wherever they flow


def test_nested_loader_called_through_rebuild_from_type_v2(canary: Path) -> None:
    # _rebuild_from_type_v2(func, type, args, state) calls func(*args): the nested torch bytes
    # reach torch.load although no REDUCE calls _load_from_bytes directly.
    data = (
        P4
        + sg("torch._tensor", "_rebuild_from_type_v2")
        + b"("
        + sg("torch.storage", "_load_from_bytes")
        + sg("torch", "Tensor")
        + sb(evil_inner(canary))
        + b"\x85}tR."
    )
    fs = findings(data)
    assert worst(fs) is Severity.CRITICAL, loud(fs)
    assert any("os.system" in f.message for f in fs)
    assert_refused(data, canary)


def test_nested_loader_called_through_randomstate_ctor(canary: Path) -> None:
    # numpy.random._pickle.__randomstate_ctor(name, ctor) calls ctor(name).
    data = (
        P4
        + sg("numpy.random._pickle", "__randomstate_ctor")
        + sb(evil_inner(canary))
        + sg("torch.storage", "_load_from_bytes")
        + b"\x86R."
    )
    fs = findings(data)
    assert worst(fs) is Severity.CRITICAL, loud(fs)
    assert_refused(data, canary)


def test_nested_loader_stored_as_defaultdict_factory(canary: Path) -> None:
    data = (
        P4 + sg("collections", "defaultdict") + sg("torch.storage", "_load_from_bytes") + b"\x85R."
    )
    fs = findings(data)
    assert worst(fs) >= Severity.HIGH, loud(fs)
    assert "MLT-PKL-015" in {f.rule_id for f in fs}
    assert_refused(data, canary)


def test_nested_loader_set_as_attribute_by_build(canary: Path) -> None:
    data = (
        P4
        + sg("argparse", "Namespace")
        + b")\x81}"
        + su("loader")
        + sg("torch.storage", "_load_from_bytes")
        + b"sb."
    )
    fs = findings(data)
    assert worst(fs) >= Severity.HIGH, loud(fs)
    assert_refused(data, canary)


def test_nested_loader_used_once_then_reused_from_the_memo(canary: Path) -> None:
    benign = pickle.dumps([1, 2], 4)
    data = (
        P4
        + b"]"  # result list
        + sg("torch.storage", "_load_from_bytes")
        + b"\x94"  # memo 0
        + sb(benign)
        + b"\x85R"  # a checked direct call with constant bytes
        + b"a"  # append the result
        + b"h\x00a"  # the same loader appended to the returned list
        + b"."
    )
    fs = findings(data)
    assert worst(fs) >= Severity.HIGH, loud(fs)
    assert_refused(data, canary)


def test_nested_loader_on_computed_bytes() -> None:
    data = (
        P4
        + sg("torch.storage", "_load_from_bytes")
        + sg("builtins", "bytes")
        + b"K\x05\x85R"
        + b"\x85R."
    )
    fs = findings(data)
    assert worst(fs) >= Severity.HIGH, loud(fs)


# ------------------------------------------------------------- getattr fetched once, used later


def test_getattr_used_safely_once_then_stored(canary: Path) -> None:
    data = (
        P4
        + b"]"
        + sg("builtins", "getattr")
        + b"\x94"
        + sg("collections", "OrderedDict")
        + su("fromkeys")
        + b"\x86R"  # getattr(OrderedDict, "fromkeys"): the allowed method
        + b"a"
        + b"h\x00a"  # getattr itself handed to the caller in the result
        + b"."
    )
    fs = findings(data)
    assert worst(fs) is Severity.CRITICAL, loud(fs)
    assert any("getattr" in f.message for f in fs)
    assert_refused(data, canary)


def test_getattr_reused_through_rebuild_from_type_v2(canary: Path) -> None:
    # _rebuild_from_type_v2(getattr, Tensor, (str, "join"), {}) -> getattr(str, "join")
    data = (
        P4
        + sg("torch._tensor", "_rebuild_from_type_v2")
        + b"("
        + sg("builtins", "getattr")
        + sg("torch", "Tensor")
        + sg("builtins", "str")
        + su("join")
        + b"\x86}tR."
    )
    fs = findings(data)
    assert worst(fs) >= Severity.HIGH, loud(fs)
    assert any("str.join" in f.message for f in fs)


# ------------------------------------------------------------- types called, bases, partials


def test_reconstructor_with_a_class_base_runs_its_constructor(canary: Path) -> None:
    # _reconstructor(cls, base, state) runs base.__init__(obj, state) on pickle data.
    data = (
        P4
        + sg("copyreg", "_reconstructor")
        + sg("argparse", "Namespace")
        + sg("pathlib", "PosixPath")
        + su(str(canary))
        + b"\x87R."
    )
    fs = findings(data)
    assert worst(fs) >= Severity.HIGH, loud(fs)
    assert_refused(data, canary)


def test_type_entry_called_with_arguments_is_reported() -> None:
    data = P4 + sg("numpy", "matrix") + su("1 2; 3 4") + b"\x85R."
    fs = findings(data)
    assert "MLT-PKL-014" in {f.rule_id for f in fs}, loud(fs)
    assert worst(fs) >= Severity.MEDIUM


def test_value_entry_called_is_reported() -> None:
    data = P4 + sg("numpy", "log1p") + b"G?\xf0\x00\x00\x00\x00\x00\x00\x85R."
    fs = findings(data)
    assert "MLT-PKL-014" in {f.rule_id for f in fs}, loud(fs)


def test_partial_over_a_nested_loader(canary: Path) -> None:
    data = (
        P4
        + sg("functools", "partial")
        + sg("torch.storage", "_load_from_bytes")
        + sb(evil_inner(canary))
        + b"\x86R."
    )
    fs = findings(data)
    assert worst(fs) >= Severity.HIGH, loud(fs)
    assert_refused(data, canary)


def test_partial_whose_function_is_replaced_by_build(canary: Path) -> None:
    # partial(np.log1p) then BUILD (func, args, kwds, dict) swaps in another callable.
    data = (
        P4
        + sg("functools", "partial")
        + sg("numpy", "log1p")
        + b"\x85R"
        + b"("
        + sg("torch.storage", "_load_from_bytes")
        + sb(evil_inner(canary))
        + b"\x85}Nt"
        + b"b."
    )
    fs = findings(data)
    assert worst(fs) >= Severity.HIGH, loud(fs)
    assert_refused(data, canary)


def test_partial_over_a_listed_function_is_benign() -> None:
    sklearn = pytest.importorskip("sklearn.utils.validation")
    import functools

    data = pickle.dumps(functools.partial(sklearn.check_array, dtype=[np.float64]), 4)
    assert loud(findings(data)) == []


# ------------------------------------------------------------- classes re-exported elsewhere


def test_reexported_sympy_poly_under_scipy_is_not_allowed(canary: Path) -> None:
    # scipy.special._precompute.expn_asy re-exports sympy.Poly, whose constructor sympifies
    # (evaluates) a string. The old "any CamelCase class in scipy" rule admitted it.
    data = (
        P4
        + sg("scipy.special._precompute.expn_asy", "Poly")
        + su(f"__import__('os').system('touch {canary}')")
        + b"\x85R."
    )
    fs = findings(data)
    assert worst(fs) >= Severity.MEDIUM, loud(fs)
    assert any("expn_asy.Poly" in f.message for f in fs)
    assert_refused(data, canary, even_if_tolerated=True)


def test_scipy_distribution_state_is_code() -> None:
    # rv_generic.__setstate__ runs exec(self._parse_arg_template): a distribution object is
    # a code-execution gadget even with its own class name.
    data = (
        P4
        + sg("scipy.stats._continuous_distns", "norm_gen")
        + b")\x81}"
        + su("_parse_arg_template")
        + su("import os")
        + b"sb."
    )
    fs = findings(data)
    assert worst(fs) >= Severity.HIGH, loud(fs)


# ------------------------------------------------------------- joblib array wrappers


def _joblib(value: object) -> bytes:
    buf = io.BytesIO()
    joblib.dump(value, buf)
    return buf.getvalue()


def test_joblib_dtype_flags_hiding_object_fields() -> None:
    arr = np.zeros(2, dtype=[("a", "O"), ("b", "f8")])
    data = _joblib(arr)
    assert loud(findings(data)) == []
    # The dtype state ends ..., elsize 16, alignment 1, flags 27 (objects): set flags to 0.
    marker = b"K\x10K\x01K\x1bt"
    assert marker in data  # first in the wrapper's dtype, then inside the object pickle
    forged = data.replace(marker, b"K\x10K\x01K\x00t", 1)
    fs = findings(forged)
    assert worst(fs) >= Severity.HIGH, loud(fs)


def test_joblib_object_region_of_a_structured_array_is_scanned(canary: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {canary}",))

    arr = np.zeros(1, dtype=[("a", "O"), ("b", "f8")])
    arr[0]["a"] = Evil()
    data = _joblib(arr)
    fs = findings(data)
    assert worst(fs) is Severity.CRITICAL, loud(fs)
    assert_refused(data, canary)


def _legacy(filename: str) -> bytes:
    return (
        P4
        + sg("joblib.numpy_pickle_compat", "NDArrayWrapper")
        + b")\x81}("
        + su("filename")
        + su(filename)
        + su("subclass")
        + sg("numpy", "ndarray")
        + su("allow_mmap")
        + b"\x89ub."
    )


@pytest.mark.parametrize(
    ("filename", "severity"),
    [("model.pkl_01.npy", Severity.MEDIUM), ("../../../tmp/evil.npy", Severity.HIGH)],
)
def test_legacy_joblib_wrapper_naming_another_file(
    filename: str, severity: Severity, canary: Path
) -> None:
    data = _legacy(filename)
    fs = findings(data)
    assert worst(fs) >= severity, loud(fs)
    assert "MLT-JBL-003" in {f.rule_id for f in fs}
    assert_refused(data, canary, even_if_tolerated=True)


def test_pyarrow_array_with_forged_offsets_is_refused_by_the_loader() -> None:
    # pyarrow rebuilds arrays from pickled buffers without validating them; mltrust.load
    # validates every rebuilt array, so out-of-bounds offsets are an error, not a later read.
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    data = pickle.dumps(pd.array(["ab", "cd"], dtype="string[pyarrow]"), 4)
    assert not isinstance(mltrust.load(data), Exception)
    offsets = struct.pack("<3q", 0, 2, 4)  # large_string: 64-bit offsets
    assert offsets in data
    forged = data.replace(offsets, struct.pack("<3q", 0, 2, 1 << 40))
    with pytest.raises(UnsafeModelError, match="pyarrow"):
        mltrust.load(forged)


def test_numpy_dtype_flags_hiding_object_fields_in_a_plain_pickle() -> None:
    # Only allowlisted globals: _reconstruct, ndarray, dtype. The dtype's pickled flags say "no
    # objects" while a field is an object, so ndarray.__setstate__ copies raw bytes into object
    # pointers (the real unpickler then dereferences attacker-chosen addresses).
    arr = np.zeros(1, dtype=[("a", "O"), ("b", "f8")])
    data = pickle.dumps(arr, 2)
    assert loud(findings(data)) == []
    marker = b"K\x10K\x01K\x1bt"  # elsize 16, alignment 1, flags 27 (objects), TUPLE
    assert marker in data
    forged = data.replace(marker, b"K\x10K\x01K\x00t", 1)
    fs = findings(forged)
    assert worst(fs) >= Severity.HIGH, loud(fs)
    assert any("object pointers" in f.message for f in fs)


def test_numpy_dtype_field_outside_its_element() -> None:
    # A structured dtype whose field offset lies beyond the element size: indexing the array
    # reads (and assigning writes) outside its memory.
    arr = np.zeros(1, dtype=[("a", "f8")])
    data = pickle.dumps(arr, 2)
    assert loud(findings(data)) == []
    marker = b"K\x00\x86"  # the field spec (dtype, offset 0) as BININT1 0 + TUPLE2
    assert data.count(marker) == 1
    forged = data.replace(marker, b"J\x00\x00\x10\x00\x86")  # offset 1 MiB
    fs = findings(forged)
    assert worst(fs) >= Severity.HIGH, loud(fs)
    assert any("outside the array's memory" in f.message for f in fs)


def test_joblib_wrapper_created_by_reconstructor_is_read_like_joblib() -> None:
    # joblib reads raw array data after the BUILD of any NumpyArrayWrapper instance, also one
    # created by copyreg._reconstructor instead of NEWOBJ; the analyser must skip the same bytes.
    buf = io.BytesIO()
    joblib.dump(np.arange(8.0), buf, protocol=2)
    data = buf.getvalue()
    head = b"cjoblib.numpy_pickle\nNumpyArrayWrapper\n"
    assert head in data
    i = data.index(head)
    j = data.index(b")\x81", i)
    rebuilt = (
        data[:i]
        + b"ccopyreg\n_reconstructor\n"
        + data[i:j]
        + b"cbuiltins\nobject\nN\x87R"
        + data[j + 2 :]
    )
    # mltrust: ignore[MLT-CODE-001] joblib itself is the oracle for bytes the test built
    assert np.array_equal(joblib.load(io.BytesIO(rebuilt)), np.arange(8.0))
    assert loud(findings(rebuilt)) == []
