"""Open Inference Protocol (KServe V2) request decoding and response encoding.

Binary tensor data extension (Triton's, which tritonclient sends by default): a request whose
``Inference-Header-Content-Length`` header says N carries N bytes of JSON followed by the raw
tensors; an input with ``parameters.binary_data_size: S`` takes the next S bytes (little-endian,
row-major; BOOL one byte each; BYTES as 4-byte little-endian length + bytes per element; BF16 as
the upper 16 bits of a float32) and has no ``data``. Every byte of the binary part must be
claimed, sizes must match the shape exactly, and the element bound holds as for JSON. Outputs go
out binary when the request says ``parameters.binary_data_output: true`` or an output asks
``parameters.binary_data: true``.

Decoding turns the ``inputs`` of an infer request into named numpy arrays and fails with
:class:`ProtocolError` (HTTP 400) on anything malformed: unknown datatypes, data that does not
fill the declared shape, ragged nesting, values that do not fit the datatype. Checks against the
model's declared schema (names, ranges, NaN/inf) live in :mod:`mltrust.serve._validation`.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import InputError

__all__ = [
    "DTYPES",
    "PD_INPUT",
    "DecodedRequest",
    "ProtocolError",
    "decode_infer_request",
    "encode_tensor",
    "input_digest",
    "tensor_bytes",
]

#: datatype -> numpy dtype (BYTES handled apart).
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
_NP_TO_DATATYPE = {v: k for k, v in DTYPES.items()}
#: BF16 has no numpy dtype: decoded into float32 (exact), reported as its own datatype.
BF16 = "BF16"
DATATYPES = frozenset(DTYPES) | {"BYTES", BF16}


class ProtocolError(InputError, ValueError):
    """The request does not follow the protocol (HTTP 400). The message is safe to return."""


@dataclass(slots=True)
class DecodedRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    datatypes: dict[str, str]
    parameters: dict[str, Any]
    requested_outputs: list[str] | None
    #: outputs to send as binary data ("*": every output)
    binary_outputs: frozenset[str] = frozenset()
    #: MLServer ``pd`` codec: the columns (input names, in request order) combined into one
    #: 2-D float64 tensor, stored under the name ``PD_INPUT``
    pd_columns: tuple[str, ...] = ()

    def wants_binary(self, name: str) -> bool:
        return "*" in self.binary_outputs or name in self.binary_outputs


class _Binary:
    """The binary part of a request, handed out input by input."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, size: int, name: str) -> memoryview:
        if self.pos + size > len(self.data):
            raise ProtocolError(f"input {name!r}: binary data shorter than binary_data_size")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk


def _from_binary(chunk: memoryview, datatype: str, name: str, shape: tuple[int, ...]) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        items: list[bytes] = []
        pos, end = 0, len(chunk)
        while pos < end:
            if pos + 4 > end or len(items) >= count:
                raise ProtocolError(f"input {name!r}: malformed BYTES binary data")
            size = int.from_bytes(chunk[pos : pos + 4], "little")
            pos += 4
            if pos + size > end:
                raise ProtocolError(f"input {name!r}: malformed BYTES binary data")
            items.append(bytes(chunk[pos : pos + size]))
            pos += size
        if len(items) != count:
            raise ProtocolError(
                f"input {name!r}: {len(items)} values do not fill shape {list(shape)}"
            )
        arr = np.empty(count, dtype=object)
        arr[:] = items
        return arr.reshape(shape)
    dtype = np.dtype(np.uint16) if datatype == BF16 else DTYPES[datatype]
    if len(chunk) != count * dtype.itemsize:
        raise ProtocolError(
            f"input {name!r}: {len(chunk)} bytes do not hold shape {list(shape)} of {datatype}"
        )
    arr = np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).astype(dtype)
    if datatype == BF16:
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    elif datatype == "BOOL" and arr.size and int(np.frombuffer(chunk, np.uint8).max()) > 1:
        raise ProtocolError(f"input {name!r}: BOOL binary data must hold 0 or 1")
    return arr.reshape(shape)


def _shape(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > DEFAULT_LIMITS.max_request_tensor_dims:
        raise ProtocolError(
            f"input {name!r}: shape must be a list of at most "
            f"{DEFAULT_LIMITS.max_request_tensor_dims} integers"
        )
    out = []
    for d in value:
        if isinstance(d, bool) or not isinstance(d, int) or d < 0:
            raise ProtocolError(f"input {name!r}: shape must hold non-negative integers")
        if (
            d > DEFAULT_LIMITS.max_request_tensor_elements
        ):  # also when another dimension is 0: [0, 2**63]
            raise ProtocolError(
                f"input {name!r}: dimension larger than "
                f"{DEFAULT_LIMITS.max_request_tensor_elements}"
            )
        out.append(d)
    if math.prod(out) > DEFAULT_LIMITS.max_request_tensor_elements:
        raise ProtocolError(
            f"input {name!r}: more than {DEFAULT_LIMITS.max_request_tensor_elements} elements"
        )
    return tuple(out)


def _flatten_bytes(data: Any, out: list[Any], depth: int) -> None:
    if depth > DEFAULT_LIMITS.max_request_tensor_dims + 1:
        raise ProtocolError("data is nested too deeply")
    for item in data:
        if isinstance(item, list):
            _flatten_bytes(item, out, depth + 1)
        elif isinstance(item, str):
            out.append(item.encode("utf-8"))
        else:
            raise ProtocolError("BYTES data must hold strings")


def _numeric(data: Any, datatype: str, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype = DTYPES[datatype]
    try:
        if datatype == "BOOL":
            raw = np.asarray(data)
            if raw.dtype != np.bool_:
                raise ProtocolError(f"input {name!r}: BOOL data must hold true/false")
            arr = raw
        elif dtype.kind == "f":
            raw = np.asarray(data, dtype=np.float64)
            arr = raw.astype(dtype) if dtype != np.float64 else raw
        else:
            raw = np.asarray(data)
            if raw.size and raw.dtype.kind not in "iu":
                raise ProtocolError(f"input {name!r}: {datatype} data must hold integers")
            info = np.iinfo(dtype)
            if raw.size and (int(raw.min()) < info.min or int(raw.max()) > info.max):
                raise ProtocolError(f"input {name!r}: value out of range for {datatype}")
            arr = raw.astype(dtype)
    except (ValueError, TypeError, OverflowError):
        raise ProtocolError(
            f"input {name!r}: data is not a (rectangular) list of {datatype} values"
        ) from None
    if arr.size != math.prod(shape):
        raise ProtocolError(f"input {name!r}: {arr.size} values do not fill shape {list(shape)}")
    if arr.ndim > 1 and arr.shape != shape:
        raise ProtocolError(
            f"input {name!r}: nested data shape {list(arr.shape)} does not match {list(shape)}"
        )
    return arr.reshape(shape)


def _decode_input(doc: Any, binary: _Binary | None) -> tuple[str, str, np.ndarray]:
    if not isinstance(doc, dict):
        raise ProtocolError("each input must be an object")
    name = doc.get("name")
    if not isinstance(name, str) or not name or len(name) > 256:
        raise ProtocolError("input name must be a non-empty string")
    datatype = doc.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise ProtocolError(f"input {name!r}: unknown datatype {datatype!r}")
    shape = _shape(doc.get("shape"), name)
    params = doc.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise ProtocolError(f"input {name!r}: parameters must be an object")
    size = (params or {}).get("binary_data_size")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ProtocolError(f"input {name!r}: binary_data_size must be a non-negative integer")
        if binary is None:
            raise ProtocolError(
                f"input {name!r}: binary_data_size without Inference-Header-Content-Length"
            )
        if "data" in doc:
            raise ProtocolError(f"input {name!r}: both data and binary_data_size")
        return name, datatype, _from_binary(binary.take(size, name), datatype, name, shape)
    data = doc.get("data")
    if not isinstance(data, list):
        raise ProtocolError(f"input {name!r}: data must be a list")
    if datatype == "BYTES":
        flat: list[Any] = []
        _flatten_bytes(data, flat, 0)
        if len(flat) != math.prod(shape):
            raise ProtocolError(
                f"input {name!r}: {len(flat)} values do not fill shape {list(shape)}"
            )
        arr = np.empty(len(flat), dtype=object)
        arr[:] = flat
        return name, datatype, arr.reshape(shape)
    if datatype == BF16:
        return name, datatype, _numeric(data, "FP32", name, shape)
    return name, datatype, _numeric(data, datatype, name, shape)


PD_INPUT = "__pd__"


def _content_codecs(name: str, arr: np.ndarray, params: Any, datatype: str) -> np.ndarray:
    """MLServer's per-input ``content_type``: ``str`` (UTF-8 text) and ``base64`` (bytes)."""
    kind = params.get("content_type") if isinstance(params, dict) else None
    if kind is None or kind in ("np", "hg"):
        return arr
    if kind not in ("str", "base64"):
        raise ProtocolError(f"input {name!r}: unsupported content_type {kind!r}")
    if datatype != "BYTES":
        raise ProtocolError(f"input {name!r}: content_type {kind!r} needs datatype BYTES")
    out = np.empty(arr.size, dtype=object)
    try:
        for i, v in enumerate(arr.reshape(-1)):
            if kind == "base64":
                out[i] = base64.b64decode(v, validate=True)
            else:
                v.decode("utf-8", "strict")
                out[i] = v
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError(f"input {name!r}: data is not valid {kind}") from None
    return out.reshape(arr.shape)


def _pd_columns(inputs: dict[str, np.ndarray], datatypes: dict[str, str]) -> np.ndarray:
    """MLServer's ``pd`` codec: one input per column, combined into rows x columns."""
    columns = []
    rows = -1
    for name, arr in inputs.items():
        if (
            datatypes[name] == "BYTES"
            or arr.ndim not in (1, 2)
            or (arr.ndim == 2 and arr.shape[1] != 1)
        ):
            raise ProtocolError(f"input {name!r}: a pd column must be numeric, shape [N] or [N, 1]")
        if rows not in (-1, arr.shape[0]):
            raise ProtocolError("pd columns disagree on the number of rows")
        rows = arr.shape[0]
        columns.append(arr.reshape(-1).astype(np.float64))
    return np.column_stack(columns)


def _flag(params: Any, key: str, where: str) -> bool:
    if params is None:
        return False
    if not isinstance(params, dict):
        raise ProtocolError(f"{where}: parameters must be an object")
    value = params.get(key, False)
    if not isinstance(value, bool):
        raise ProtocolError(f"{where}: {key} must be true or false")
    return value


def decode_infer_request(doc: Any, binary: bytes | None = None) -> DecodedRequest:
    """Decode an infer request; ``binary`` is the part after the JSON header, if any."""
    if not isinstance(doc, dict):
        raise ProtocolError("request body must be a JSON object")
    rid = doc.get("id")
    if rid is not None and (not isinstance(rid, str) or len(rid) > 256):
        raise ProtocolError("id must be a string of at most 256 characters")
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise ProtocolError("parameters must be an object")
    raw_inputs = doc.get("inputs")
    if (
        not isinstance(raw_inputs, list)
        or not raw_inputs
        or len(raw_inputs) > DEFAULT_LIMITS.max_request_inputs
    ):
        raise ProtocolError(
            f"inputs must be a non-empty list of at most "
            f"{DEFAULT_LIMITS.max_request_inputs} tensors"
        )
    inputs: dict[str, np.ndarray] = {}
    datatypes: dict[str, str] = {}
    reader = _Binary(binary) if binary is not None else None
    for item in raw_inputs:
        name, datatype, arr = _decode_input(item, reader)
        arr = _content_codecs(name, arr, item.get("parameters"), datatype)
        if name in inputs:
            raise ProtocolError(f"input {name!r} appears twice")
        inputs[name] = arr
        datatypes[name] = datatype
    if reader is not None and reader.pos != len(reader.data):
        raise ProtocolError("binary data longer than the inputs' binary_data_size")
    pd_columns: tuple[str, ...] = ()
    if params.get("content_type") == "pd":
        combined = _pd_columns(inputs, datatypes)
        pd_columns = tuple(inputs)
        inputs, datatypes = {PD_INPUT: combined}, {PD_INPUT: "FP64"}
    elif params.get("content_type") not in (None, "np"):
        raise ProtocolError(f"unsupported request content_type {params.get('content_type')!r}")
    binary_out: set[str] = {"*"} if _flag(params, "binary_data_output", "request") else set()
    requested: list[str] | None = None
    raw_outputs = doc.get("outputs")
    if raw_outputs is not None:
        if (
            not isinstance(raw_outputs, list)
            or len(raw_outputs) > DEFAULT_LIMITS.max_request_inputs
        ):
            raise ProtocolError("outputs must be a list of objects with a name")
        requested = []
        for o in raw_outputs:
            if not isinstance(o, dict) or not isinstance(o.get("name"), str):
                raise ProtocolError("outputs must be a list of objects with a name")
            requested.append(o["name"])
            if _flag(o.get("parameters"), "binary_data", f"output {o['name']!r}"):
                binary_out.add(o["name"])
    return DecodedRequest(
        rid, inputs, datatypes, params, requested, frozenset(binary_out), pd_columns
    )


def datatype_of(arr: np.ndarray) -> str:
    if arr.dtype.kind in "OSU":
        return "BYTES"
    found = _NP_TO_DATATYPE.get(arr.dtype)
    if found is None:
        raise TypeError(f"no protocol datatype for numpy dtype {arr.dtype}")
    return found


def tensor_bytes(arr: np.ndarray, datatype: str) -> bytes:
    """The binary-extension form of a tensor (little-endian, row-major)."""
    if datatype == "BYTES":
        out = bytearray()
        for v in arr.reshape(-1).tolist():
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            out += len(b).to_bytes(4, "little") + b
        return bytes(out)
    return np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()


def encode_tensor(
    name: str, arr: np.ndarray, *, datatype: str | None = None, binary: list[bytes] | None = None
) -> dict[str, Any]:
    """One ``outputs`` entry: flat row-major data, or (``binary`` given) its size, with the
    bytes appended to ``binary``."""
    datatype = datatype or datatype_of(arr)
    if binary is not None:
        raw = tensor_bytes(arr, datatype)
        binary.append(raw)
        return {
            "name": name,
            "datatype": datatype,
            "shape": list(arr.shape),
            "parameters": {"binary_data_size": len(raw)},
        }
    if datatype == "BYTES":
        data: list[Any] = [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for v in arr.reshape(-1).tolist()
        ]
    else:
        data = arr.reshape(-1).tolist()
    return {"name": name, "datatype": datatype, "shape": list(arr.shape), "data": data}


def input_digest(inputs: dict[str, np.ndarray], datatypes: dict[str, str]) -> str:
    """sha256 over the canonical form of the inputs: name, datatype, shape, row-major bytes."""
    h = hashlib.sha256()
    for name in sorted(inputs):
        arr = inputs[name]
        h.update(f"{name}\x00{datatypes[name]}\x00{list(arr.shape)}\x00".encode())
        if arr.dtype == object:
            for v in arr.reshape(-1):
                b = v.encode("utf-8") if isinstance(v, str) else v
                h.update(len(b).to_bytes(8, "little"))
                h.update(b)
        else:
            h.update(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes())
    return h.hexdigest()
