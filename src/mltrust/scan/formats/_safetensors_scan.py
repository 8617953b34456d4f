"""The safetensors scanner's work (:mod:`mltrust.scan.formats.safetensors`), imported only
when a safetensors file is scanned."""

from __future__ import annotations

import json

from mltrust.errors import InputError
from mltrust.findings import Location
from mltrust.scan._context import ScanContext
from mltrust.scan.formats import _rules_tensor as rules
from mltrust.scan.formats.safetensors import _LOADER_HEADER_BYTES

__all__ = ["scan_safetensors"]

#: Findings of one kind reported per file before the rest are summarised (presentation only).
_REPORTED_CAP = 20

#: Bits per element of every dtype the reference implementation knows.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "F8_E8M0": 8,
    "E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "C64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}


class _DuplicateKeyError(ValueError):
    pass


def _pairs_hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _reject_constant(name: str) -> object:
    raise ValueError(f"non-standard JSON constant {name}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _SafetensorsScan:
    """The work of :meth:`SafetensorsScanner.scan`, one scan at a time."""

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        n = int.from_bytes(data[:8], "little")
        if n > len(data) - 8:
            ctx.report(
                rules.ST_MALFORMED,
                f"header length {n} exceeds the {len(data) - 8} bytes after the length field",
                loc.at(0),
            )
            return
        if n > _LOADER_HEADER_BYTES:
            ctx.report(
                rules.ST_MALFORMED,
                f"header length {n} exceeds the format's limit of {_LOADER_HEADER_BYTES} bytes",
                loc.at(0),
            )
            return
        if n > ctx.config.limits.max_text_bytes:
            ctx.report(
                rules.ST_MALFORMED,
                f"header of {n} bytes exceeds max_text_bytes={ctx.config.limits.max_text_bytes}",
                loc.at(0),
            )
            return
        raw = bytes(data[8 : 8 + n])
        if not raw.startswith(b"{"):
            ctx.report(rules.ST_MALFORMED, "header does not start with '{'", loc.at(8))
        stripped = raw.rstrip(b" ")
        try:
            header = json.loads(
                stripped.decode("utf-8"),
                object_pairs_hook=_pairs_hook,
                parse_constant=_reject_constant,
            )
        except _DuplicateKeyError as exc:
            ctx.report(
                rules.ST_DUPLICATE_KEY,
                f"JSON header repeats the key {str(exc)!r}",
                loc.at(8),
            )
            return
        except UnicodeDecodeError as exc:
            ctx.report(rules.ST_MALFORMED, f"header is not UTF-8: {exc.reason}", loc.at(8))
            return
        except RecursionError:
            ctx.report(rules.ST_MALFORMED, "header JSON nests too deeply", loc.at(8))
            return
        except ValueError as exc:
            ctx.report(rules.ST_MALFORMED, f"header is not valid JSON: {exc}", loc.at(8))
            return
        if not isinstance(header, dict):
            ctx.report(rules.ST_MALFORMED, "header is not a JSON object", loc.at(8))
            return
        if len(header) > ctx.config.limits.max_entries:
            ctx.report(
                rules.ST_MALFORMED,
                f"{len(header)} header entries exceed max_entries={ctx.config.limits.max_entries}",
                loc.at(8),
            )
            return
        problems = self._validate(header, len(data) - 8 - n)
        for message in problems[:_REPORTED_CAP]:
            ctx.report(rules.ST_MALFORMED, message, loc.at(8))
        if len(problems) > _REPORTED_CAP:
            ctx.report(
                rules.ST_MALFORMED,
                f"{len(problems) - _REPORTED_CAP} more header problems not listed",
                loc.at(8),
            )
        ctx.facts["safetensors.tensors"] = sum(1 for k in header if k != "__metadata__")

    @staticmethod
    def _validate(header: dict[str, object], data_len: int) -> list[str]:
        problems: list[str] = []
        spans: list[tuple[int, int, str]] = []
        for key, info in header.items():
            if key == "__metadata__":
                if info is None:
                    continue  # the reference parser reads it as an optional map
                if not isinstance(info, dict):
                    problems.append("__metadata__ is not a JSON object")
                    continue
                for mkey, mval in info.items():
                    if not isinstance(mval, str):
                        problems.append(
                            f"__metadata__[{mkey!r}] is {type(mval).__name__}, not a string"
                        )
                continue
            try:
                spans.append(_check_tensor(key, info, data_len))
            except InputError as exc:
                problems.append(str(exc))
        spans.sort()
        expected = 0
        for begin, end, key in spans:
            if begin > expected:
                problems.append(
                    f"gap of {begin - expected} unreferenced bytes in the data section before "
                    f"tensor {key!r} (offset {begin})"
                )
            elif begin < expected:
                problems.append(
                    f"tensor {key!r} at offsets [{begin}, {end}] overlaps the previous tensor "
                    f"(which ends at {expected})"
                )
            expected = max(expected, end)
        if not problems and expected != data_len:
            problems.append(
                f"tensors cover {expected} bytes but the data section holds {data_len} bytes"
            )
        return problems


def _check_tensor(key: str, info: object, data_len: int) -> tuple[int, int, str]:
    if not isinstance(info, dict):
        raise InputError(f"tensor {key!r}: entry is not a JSON object")
    missing = [k for k in ("dtype", "shape", "data_offsets") if k not in info]
    if missing:
        raise InputError(f"tensor {key!r}: missing {', '.join(missing)}")
    dtype = info["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise InputError(f"tensor {key!r}: unknown dtype {dtype!r}")
    shape = info["shape"]
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise InputError(f"tensor {key!r}: shape {shape!r} is not a list of non-negative integers")
    offsets = info["data_offsets"]
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_int(o) and o >= 0 for o in offsets)
    ):
        raise InputError(
            f"tensor {key!r}: data_offsets {offsets!r} is not two non-negative integers"
        )
    begin, end = offsets
    if begin > end:
        raise InputError(f"tensor {key!r}: data_offsets begin {begin} is after end {end}")
    if end > data_len:
        raise InputError(
            f"tensor {key!r}: data_offsets end {end} is past the data section of {data_len} bytes"
        )
    bits = DTYPE_BITS[dtype]
    count = 1
    for dim in shape:
        count *= dim
        if count * bits > (data_len + 1) * 8 * 2:
            break  # already far larger than the file: no need to finish a huge product
    nbits = count * bits
    if nbits % 8:
        raise InputError(
            f"tensor {key!r}: {count} elements of {dtype} do not fill a whole number of bytes"
        )
    if nbits // 8 != end - begin:
        raise InputError(
            f"tensor {key!r}: shape {shape} of {dtype} needs {nbits // 8} bytes but data_offsets "
            f"[{begin}, {end}] hold {end - begin}"
        )
    return begin, end, key


def scan_safetensors(data: memoryview, ctx: ScanContext, loc: Location) -> None:
    """Scan a safetensors file (the work of :meth:`SafetensorsScanner.scan`)."""
    _SafetensorsScan().scan(data, ctx, loc)
