"""The GGUF scanner's work (:mod:`mltrust.scan.formats.gguf`), imported only when a GGUF file
is scanned."""

from __future__ import annotations

import struct

from mltrust.errors import InputError, LimitExceeded
from mltrust.findings import Location, Severity
from mltrust.scan._context import ScanContext
from mltrust.scan.formats import _rules_tensor as rules

# (*) Chat-template analysis is imported where a scan first needs it: sniffing
# needs none of it, and a scan of another format should not pay for loading it.

__all__ = ["GGML_TYPE_SIZES", "scan_gguf"]

_DEFAULT_ALIGNMENT = 32
#: Most dimensions a ggml tensor has (GGML_MAX_DIMS): a fact of the format, not a bound we
#: choose, so not in :class:`~mltrust.config.Limits`.
_GGML_MAX_DIMS = 4
#: Findings of one kind listed before the rest are counted (presentation only).
_REPORTED_CAP = 20

# Metadata value types.
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL = range(8)
_STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = range(8, 13)
_FIXED_SIZE = {
    _UINT8: 1,
    _INT8: 1,
    _BOOL: 1,
    _UINT16: 2,
    _INT16: 2,
    _UINT32: 4,
    _INT32: 4,
    _FLOAT32: 4,
    _UINT64: 8,
    _INT64: 8,
    _FLOAT64: 8,
}

#: ggml tensor type -> (elements per block, bytes per block).
GGML_TYPE_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 40),  # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
    39: (32, 17),  # MXFP4
    40: (64, 36),  # NVFP4
    41: (128, 18),  # Q1_0
}


class _Reader:
    """A bounds-checked cursor over the header, in the file's byte order."""

    def __init__(self, data: memoryview, order: str, version: int) -> None:
        self.data = data
        self.pos = 0
        self.order = order
        self.size_format = "I" if version == 1 else "Q"
        self.size_bytes = 4 if version == 1 else 8

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def need(self, n: int, what: str) -> None:
        if n > self.remaining():
            raise InputError(
                f"{what} needs {n} bytes at offset {self.pos} but only {self.remaining()} remain"
            )

    def unpack(self, fmt: str, what: str) -> int:
        size = struct.calcsize(fmt)
        self.need(size, what)
        (value,) = struct.unpack_from(self.order + fmt, self.data, self.pos)
        self.pos += size
        return int(value)

    def u32(self, what: str) -> int:
        return self.unpack("I", what)

    def count(self, what: str) -> int:
        return self.unpack(self.size_format, what)

    def string_span(self, what: str) -> tuple[int, int]:
        length = self.count(f"length of {what}")
        self.need(length, what)
        start = self.pos
        self.pos += length
        return start, self.pos

    def string(self, what: str) -> str:
        start, end = self.string_span(what)
        return bytes(self.data[start:end]).decode("utf-8", "replace")


class _GgufScan:
    """The work of :meth:`GgufScanner.scan`, one scan at a time."""

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        reader: _Reader | None = None
        try:
            reader = self._header(data)
            self._parse(reader, ctx, loc)
        except LimitExceeded:
            raise
        except InputError as exc:
            offset = reader.pos if reader is not None else 0
            ctx.report(rules.GGUF_MALFORMED, str(exc), loc.at(offset))

    @staticmethod
    def _header(data: memoryview) -> _Reader:
        if len(data) < 8:
            raise InputError("file too short for a GGUF header")
        version = int.from_bytes(data[4:8], "little")
        order = "<"
        if version not in (1, 2, 3):
            swapped = int.from_bytes(data[4:8], "big")
            if swapped in (1, 2, 3):
                order, version = ">", swapped
            else:
                raise InputError(f"unsupported GGUF version {version}")
        reader = _Reader(data, order, version)
        reader.pos = 8
        return reader

    def _parse(self, r: _Reader, ctx: ScanContext, loc: Location) -> None:
        limits = ctx.config.limits
        tensor_count = r.count("tensor count")
        kv_count = r.count("metadata count")
        ctx.facts["gguf.byte_order"] = "big" if r.order == ">" else "little"
        # Smallest possible key/value: empty key (length field), type, one-byte value.
        min_kv = r.size_bytes + 4 + 1
        if kv_count > r.remaining() // min_kv:
            raise InputError(
                f"metadata count {kv_count} cannot fit in the {r.remaining()} bytes that remain"
            )
        # Smallest possible tensor info: empty name, n_dims, type, offset.
        min_tensor = r.size_bytes + 4 + 4 + 8
        if tensor_count > (r.remaining() - kv_count * min_kv) // min_tensor:
            raise InputError(
                f"tensor count {tensor_count} cannot fit in the {r.remaining()} bytes that remain"
            )
        if kv_count > limits.max_entries or tensor_count > limits.max_entries:
            raise LimitExceeded(
                f"GGUF declares {kv_count} keys and {tensor_count} tensors; "
                f"max_entries={limits.max_entries}"
            )
        alignment = _DEFAULT_ALIGNMENT
        keys: set[str] = set()
        for index in range(kv_count):
            if index % 4096 == 0:
                ctx.check_deadline()
            key_at = r.pos
            key = r.string("metadata key")
            if key in keys:
                # llama.cpp rejects the file; other readers keep the first or the last value.
                ctx.report(
                    rules.GGUF_MALFORMED,
                    f"metadata key {key!r} appears twice (readers disagree on which value wins)",
                    loc.at(key_at),
                )
            keys.add(key)
            vtype = r.u32(f"type of {key!r}")
            value_at = r.pos
            if key == "general.alignment":
                if vtype != _UINT32:
                    raise InputError(f"general.alignment has type {vtype}, not uint32")
                alignment = r.u32("general.alignment")
                if alignment == 0 or alignment & (alignment - 1):
                    ctx.report(
                        rules.GGUF_MALFORMED,
                        f"general.alignment {alignment} is not a power of two",
                        loc.at(value_at),
                    )
                    return
                continue
            if "chat_template" in key and vtype == _STRING:
                template = self._template(r, key, limits.max_text_bytes)
                from mltrust.scan.formats._jinja import check_chat_template  # (*)

                check_chat_template(template, ctx, loc.at(value_at, detail=key))
                continue
            try:
                self._skip_value(r, vtype, 0, limits.max_nesting_depth)
            except LimitExceeded:
                raise
            except InputError as exc:
                raise InputError(f"metadata {key!r} (at offset {key_at}): {exc}") from None
        ctx.facts["gguf.metadata_keys"] = kv_count
        ctx.facts["gguf.tensors"] = tensor_count
        if tensor_count > r.remaining() // min_tensor:
            raise InputError(
                f"tensor count {tensor_count} cannot fit in the {r.remaining()} bytes that remain"
            )
        tensors: list[tuple[int, int, str]] = []
        names: set[str] = set()
        problems: list[tuple[str, int]] = []
        for index in range(tensor_count):
            if index % 4096 == 0:
                ctx.check_deadline()
            info_at = r.pos
            name = r.string("tensor name")
            if name in names:
                problems.append((f"tensor name {name!r} appears twice", info_at))
            names.add(name)
            n_dims = r.u32(f"dimension count of tensor {name!r}")
            if n_dims > _GGML_MAX_DIMS:
                raise InputError(
                    f"tensor {name!r} has {n_dims} dimensions (at most {_GGML_MAX_DIMS})"
                )
            dims = [r.count(f"dimension of tensor {name!r}") for _ in range(n_dims)]
            ggml_type = r.u32(f"type of tensor {name!r}")
            offset = r.unpack("Q", f"offset of tensor {name!r}")
            size = GGML_TYPE_SIZES.get(ggml_type)
            if size is None:
                problems.append((f"tensor {name!r} has unknown ggml type {ggml_type}", info_at))
                continue
            block, type_size = size
            elements = 1
            for d in dims:
                elements *= d
            if elements >= 1 << 63:
                problems.append((f"tensor {name!r} has {elements} elements (overflow)", info_at))
                continue
            if dims and dims[0] % block:
                problems.append(
                    (
                        f"tensor {name!r}: first dimension {dims[0]} is not a multiple of the "
                        f"block size {block} of its type",
                        info_at,
                    )
                )
                continue
            if offset % alignment:
                problems.append(
                    (f"tensor {name!r} offset {offset} is not aligned to {alignment}", info_at)
                )
            tensors.append((offset, offset + elements // block * type_size, name))
        data_start = -(-r.pos // alignment) * alignment
        data_len = len(r.data) - data_start
        if data_len < 0 and tensors:
            problems.append(("file ends before the aligned start of the tensor data", r.pos))
        self._check_layout(tensors, data_len, alignment, data_start, problems)
        for message, at in problems[:_REPORTED_CAP]:
            ctx.report(rules.GGUF_TENSOR_LAYOUT, message, loc.at(at))
        if len(problems) > _REPORTED_CAP:
            ctx.report(
                rules.GGUF_TENSOR_LAYOUT,
                f"{len(problems) - _REPORTED_CAP} more tensor layout problems not listed",
                loc.at(data_start),
            )
        end = max((e for _, e, _ in tensors), default=0)
        trailing = data_len - end
        if tensors and not problems and trailing > alignment:
            ctx.report(
                rules.GGUF_TENSOR_LAYOUT,
                f"{trailing} bytes after the last tensor's data are not part of any tensor",
                loc.at(data_start + end),
                severity=Severity.LOW,
            )

    @staticmethod
    def _check_layout(
        tensors: list[tuple[int, int, str]],
        data_len: int,
        alignment: int,
        data_start: int,
        problems: list[tuple[str, int]],
    ) -> None:
        previous_end = 0
        previous = ""
        for begin, end, name in sorted(tensors):
            if end > data_len:
                problems.append(
                    (
                        f"tensor {name!r} data [{begin}, {end}) runs past the end of the "
                        f"{max(data_len, 0)}-byte data section",
                        data_start + begin,
                    )
                )
            if begin < previous_end:
                problems.append(
                    (
                        f"tensor {name!r} data at {begin} overlaps tensor {previous!r} "
                        f"(ends at {previous_end})",
                        data_start + begin,
                    )
                )
            if end > previous_end:
                previous_end, previous = end, name

    @staticmethod
    def _template(r: _Reader, key: str, max_bytes: int) -> str:
        start, end = r.string_span(key)
        if end - start > max_bytes:
            raise LimitExceeded(f"{key} of {end - start} bytes exceeds max_text_bytes={max_bytes}")
        return bytes(r.data[start:end]).decode("utf-8", "replace")

    @staticmethod
    def _skip_strings(r: _Reader, count: int) -> None:
        """Skip ``count`` strings (token lists hold hundreds of thousands): a tight loop."""
        if count > r.remaining() // r.size_bytes:
            raise InputError(
                f"array length {count} cannot fit in the {r.remaining()} bytes that remain"
            )
        length_field = struct.Struct(r.order + r.size_format)
        unpack, size = length_field.unpack_from, length_field.size
        data, pos, end = r.data, r.pos, len(r.data)
        for index in range(count):
            if pos + size > end:
                raise InputError(f"string {index} of an array is truncated at offset {pos}")
            (length,) = unpack(data, pos)
            pos += size + length
            if pos > end:
                raise InputError(f"string {index} of an array runs past the end of the file")
        r.pos = pos

    def _skip_value(self, r: _Reader, vtype: int, depth: int, max_depth: int) -> None:
        fixed = _FIXED_SIZE.get(vtype)
        if fixed is not None:
            r.need(fixed, f"value of type {vtype}")
            r.pos += fixed
        elif vtype == _STRING:
            r.string_span("string value")
        elif vtype == _ARRAY:
            if depth >= max_depth:
                raise LimitExceeded(f"arrays nest deeper than {max_depth} levels")
            etype = r.u32("array element type")
            count = r.count("array length")
            elem = _FIXED_SIZE.get(etype)
            if elem is not None:
                r.need(count * elem, f"array of {count} values of type {etype}")
                r.pos += count * elem
                return
            if etype == _STRING:
                self._skip_strings(r, count)
                return
            if etype == _ARRAY:
                minimum = 4 + r.size_bytes
            else:
                raise InputError(f"unknown array element type {etype}")
            if count > r.remaining() // minimum:
                raise InputError(
                    f"array length {count} cannot fit in the {r.remaining()} bytes that remain"
                )
            for _ in range(count):
                self._skip_value(r, etype, depth + 1, max_depth)
        else:
            raise InputError(f"unknown metadata value type {vtype}")


def scan_gguf(data: memoryview, ctx: ScanContext, loc: Location) -> None:
    """Scan a GGUF file (the work of :meth:`GgufScanner.scan`)."""
    _GgufScan().scan(data, ctx, loc)
