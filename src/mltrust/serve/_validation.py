"""Validation of decoded inputs against the model's declared schema (HTTP 422 on failure)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import InputError
from mltrust.serve._settings import TensorSpec

__all__ = ["CompiledSchema", "ValidationFailed"]

_FLOAT_TYPES = {"FP16", "BF16", "FP32", "FP64"}
_INT_TYPES = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "BOOL"}


class ValidationFailed(InputError, ValueError):
    """Input does not match the schema. The message is safe to return to the client.

    ``detail`` may say more (which feature, which side of its training range): it goes to the
    audit log, and to callers who hold ``admin`` on the model. A plain caller learns only
    "out of range": naming the feature and bound would let a dozen queries binary-search a
    training minimum per feature (the accept/refuse answer itself still leaks a widened bound;
    ``range_margin`` blurs it).
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail or message


def _datatype_ok(expected: str, given: str) -> bool:
    # numeric models accept any numeric datatype that converts without loss of meaning
    return given == expected or (expected in _FLOAT_TYPES and given in _FLOAT_TYPES | _INT_TYPES)


class _Input:
    __slots__ = ("datatype", "hi", "lo", "name", "shape")

    def __init__(self, spec: TensorSpec, margin: float) -> None:
        self.name = spec.name
        self.datatype = spec.datatype
        self.shape = spec.shape
        self.lo: np.ndarray | None = None
        self.hi: np.ndarray | None = None
        if spec.min is not None and spec.max is not None:
            lo = np.asarray(spec.min, dtype=np.float64)
            hi = np.asarray(spec.max, dtype=np.float64)
            span = np.where(hi > lo, hi - lo, np.maximum(np.abs(lo), 1.0))
            self.lo = lo - margin * span
            self.hi = hi + margin * span


class CompiledSchema:
    """Precomputed checks for one model's inputs."""

    def __init__(
        self, specs: tuple[TensorSpec, ...], *, margin: float, max_rows: int, any_name: bool
    ) -> None:
        self._inputs = [_Input(s, margin) for s in specs]
        self._max_rows = max_rows
        #: MLServer-style models accept one input under any name.
        self._any_name = any_name and len(self._inputs) == 1

    @property
    def unmonitored_inputs(self) -> tuple[str, ...]:
        """Inputs the extraction monitor and detectors cannot see (non-numeric: BYTES)."""
        return tuple(i.name for i in self._inputs if i.datatype == "BYTES")

    @property
    def single_input(self) -> str | None:
        """The name of the model's only input, if it has exactly one."""
        return self._inputs[0].name if len(self._inputs) == 1 else None

    def precheck(self, doc: Any) -> None:
        """Before any element is decoded: refuse what :meth:`validate` would refuse anyway, from
        the request's declared ``datatype`` and ``shape`` alone.

        Checked per input: the datatype against the model's input of that name (or its only
        input, for models that take one input under any name), the batch size (``shape[0]``)
        against ``max_batch_rows``, and the element count against ``max_batch_rows`` times the
        model's fixed per-row size. So a request of a million ``BYTES`` elements for an FP64
        model, or of more rows than allowed, costs no decoding work. Malformed declarations are
        left to the decoder (400); everything is checked again after decoding.
        """
        if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
            return
        params = doc.get("parameters")
        pd = isinstance(params, dict) and params.get("content_type") == "pd"
        by_name = {i.name: i for i in self._inputs}
        for item in doc["inputs"]:
            if not isinstance(item, dict):
                continue
            name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
            if (
                not isinstance(shape, list)
                or len(shape) > 8
                or not all(
                    isinstance(d, int)
                    and not isinstance(d, bool)
                    and 0 <= d <= DEFAULT_LIMITS.max_request_tensor_elements
                    for d in shape
                )
            ):
                continue
            spec = by_name.get(name) if isinstance(name, str) else None
            if spec is None and self._any_name and not pd:
                spec = self._inputs[0]
            if (
                spec is not None
                and isinstance(datatype, str)
                and not pd
                and not _datatype_ok(spec.datatype, datatype)
            ):
                raise ValidationFailed(
                    f"input {name!r}: datatype {datatype} where {spec.datatype} is expected"
                )
            one_row = spec is not None and not pd and len(shape) == 1 and len(spec.shape) == 2
            rows = 1 if one_row or not shape else shape[0]
            if rows > self._max_rows:
                raise ValidationFailed(f"input {name!r}: more than {self._max_rows} rows")
            if spec is None or pd or (len(shape) != len(spec.shape) and not one_row):
                continue
            per_row = math.prod(d for d in spec.shape[1:])
            if all(d >= 0 for d in spec.shape[1:]) and math.prod(shape) > max(rows, 1) * per_row:
                raise ValidationFailed(
                    f"input {name!r}: shape {shape} does not match {list(spec.shape)}"
                )

    def validate(self, inputs: dict[str, np.ndarray], datatypes: dict[str, str]) -> int:
        """Check inputs in place; return the batch size (rows)."""
        if self._any_name:
            if len(inputs) != 1:
                raise ValidationFailed("this model takes exactly one input")
            given = next(iter(inputs))
            own = self._inputs[0].name
            if given != own:  # the runtime looks the tensor up by its own name
                inputs[own] = inputs.pop(given)
                datatypes[own] = datatypes.pop(given)
            pairs = [(self._inputs[0], own)]
        else:
            expected = {i.name for i in self._inputs}
            if set(inputs) != expected:
                missing = sorted(expected - set(inputs))
                extra = sorted(set(inputs) - expected)
                raise ValidationFailed(
                    f"inputs do not match the model: missing {missing}, unexpected {extra}"
                )
            pairs = [(i, i.name) for i in self._inputs]
        rows = -1
        for spec, name in pairs:
            arr = inputs[name]
            datatype = datatypes[name]
            if not _datatype_ok(spec.datatype, datatype):
                raise ValidationFailed(
                    f"input {name!r}: datatype {datatype} where {spec.datatype} is expected"
                )
            if len(arr.shape) != len(spec.shape) and not (
                len(spec.shape) == 2 and arr.ndim == 1 and spec.shape[1] == arr.shape[0]
            ):
                raise ValidationFailed(
                    f"input {name!r}: shape {list(arr.shape)} does not match {list(spec.shape)}"
                )
            if arr.ndim == 1 and len(spec.shape) == 2:
                arr = arr.reshape(1, -1)
                inputs[name] = arr
            for got, want in zip(arr.shape, spec.shape, strict=True):
                if want != -1 and got != want:
                    raise ValidationFailed(
                        f"input {name!r}: shape {list(arr.shape)} does not match {list(spec.shape)}"
                    )
            n = arr.shape[0] if arr.ndim else 1
            if n > self._max_rows:
                raise ValidationFailed(f"input {name!r}: more than {self._max_rows} rows")
            if n == 0:
                raise ValidationFailed(f"input {name!r}: empty batch")
            if rows not in (-1, n):
                raise ValidationFailed("inputs disagree on the batch size")
            rows = n
            ranged = spec.lo is not None and spec.hi is not None and arr.dtype != object
            if (
                ranged
                and arr.ndim == 2
                and spec.lo is not None
                and arr.shape[1] == spec.lo.shape[0]
            ):
                # one pass: NaN fails both comparisons, so in-range implies finite
                if not bool(np.logical_and(arr >= spec.lo, arr <= spec.hi).all()):
                    self._explain(spec, name, arr)
                continue
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise ValidationFailed(f"input {name!r}: NaN or infinite value")
            if ranged:
                self._explain(spec, name, arr)
        return rows

    @staticmethod
    def _explain(spec: _Input, name: str, arr: np.ndarray) -> None:
        """Raise the precise reason a tensor failed the range check (or return if it passed)."""
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValidationFailed(f"input {name!r}: NaN or infinite value")
        if spec.lo is None or spec.hi is None:
            return
        width = spec.lo.shape[0]
        if arr.ndim == 2 and arr.shape[1] == width:
            bad = (arr < spec.lo) | (arr > spec.hi)
        elif width == 1:
            bad = (arr < spec.lo[0]) | (arr > spec.hi[0])
        else:
            raise ValidationFailed(f"input {name!r}: feature count does not match ranges")
        if bad.any():
            col = int(np.argwhere(bad)[0][-1]) if arr.ndim == 2 else 0
            raise ValidationFailed(
                f"input {name!r}: value out of range",
                f"input {name!r}: feature {col} outside the range seen in training",
            )
