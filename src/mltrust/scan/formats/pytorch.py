"""The legacy (non-zip) PyTorch format: ``torch.save(..., _use_new_zipfile_serialization=False)``.

Layout: five consecutive pickles — the magic number ``0x1950a86a20f9469cfc6c``, the protocol
version (1001), a ``sys_info`` dict, the object pickle (tensors as persistent ids) and the list
of storage keys — then, for each key, an 8-byte little-endian element count followed by the
storage's raw bytes.

Each pickle is analysed in turn with the pickle scanner (``single=True``); the magic and version
are checked byte for byte. The storage section is then checked against the keys: element sizes
are not recorded in the section itself, so the scanner searches for a choice of element size
(1, 2, 4, 8 or 16 bytes) per storage that lands exactly on the end of the file. When none does,
the bytes after the longest consistent walk are reported and sniffed as nested content (a
pickle appended after the storages runs when a tool reads it as a pickle).

The zip format is handled by the zip scanner (``*/data.pkl`` is a pickle), and the very old
tar-based format by the tar scanner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from mltrust.scan import _archive_rules as R
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext

__all__ = ["LegacyTorchScanner", "read_storage_keys"]

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_VERSION = 1001
_ELEMENT_SIZES = (4, 8, 2, 1, 16)
_MAX_FRONTIER = 4096
#: The first pickle is tiny; any longer one is not the magic number.
_MAGIC_HEAD = 256


def _pickled_int(chunk: bytes) -> int | None:
    """The integer a tiny pickle holds, in any encoding ``pickle.load`` reads, else None.

    torch's legacy loader compares the first unpickled value with its magic number, so the
    number may be written as LONG1/LONG4, BININT*, text ``I``/``L`` lines, with or without
    PROTO/FRAME headers and memo opcodes; all are recognised.
    """
    pos = 0
    n = len(chunk)
    value: int | None = None
    while pos < n:
        op = chunk[pos]
        pos += 1
        if op == 0x80:  # PROTO
            pos += 1
        elif op == 0x95:  # FRAME
            pos += 8
        elif op in (0x94,):  # MEMOIZE
            continue
        elif op == 0x71:  # BINPUT
            pos += 1
        elif op == 0x72:  # LONG_BINPUT
            pos += 4
        elif value is None and op in (0x8A, 0x8B):  # LONG1, LONG4
            width = 1 if op == 0x8A else 4
            length = int.from_bytes(chunk[pos : pos + width], "little", signed=op == 0x8B)
            pos += width
            if length < 0 or pos + length > n:
                return None
            value = int.from_bytes(chunk[pos : pos + length], "little", signed=True)
            pos += length
        elif value is None and op in (0x4B, 0x4D, 0x4A):  # BININT1, BININT2, BININT
            width = {0x4B: 1, 0x4D: 2, 0x4A: 4}[op]
            value = int.from_bytes(chunk[pos : pos + width], "little", signed=op == 0x4A)
            pos += width
        elif value is None and op in (0x49, 0x4C, 0x70):  # INT, LONG text (PUT: memo)
            nl = chunk.find(b"\n", pos)
            if nl < 0:
                return None
            line = chunk[pos:nl].strip()
            pos = nl + 1
            if op == 0x70:
                continue
            try:
                value = int(line[:-1] if line.endswith(b"L") else line, 0)
            except ValueError:
                return None
        elif op == 0x70:  # PUT after the value
            nl = chunk.find(b"\n", pos)
            if nl < 0:
                return None
            pos = nl + 1
        elif op == 0x2E:  # STOP
            return value
        else:
            return None
    return None


def _small_int(chunk: bytes) -> int | None:
    """The integer the version pickle holds, else None."""
    return _pickled_int(chunk)


def read_storage_keys(chunk: bytes) -> list[str] | None:
    """The list of strings the fifth legacy pickle holds, or None if it holds anything else."""
    pos = 0
    keys: list[str] = []
    n = len(chunk)
    while pos < n:
        op = chunk[pos]
        pos += 1
        if op == 0x80:  # PROTO
            pos += 1
        elif op == 0x95:  # FRAME
            pos += 8
        elif op in (0x5D, 0x28, 0x65, 0x61, 0x94):  # EMPTY_LIST MARK APPENDS APPEND MEMOIZE
            continue
        elif op == 0x71:  # BINPUT
            pos += 1
        elif op == 0x72:  # LONG_BINPUT
            pos += 4
        elif op in (0x58, 0x8C):  # BINUNICODE, SHORT_BINUNICODE
            width = 4 if op == 0x58 else 1
            if pos + width > n:
                return None
            length = int.from_bytes(chunk[pos : pos + width], "little")
            pos += width
            if pos + length > n:
                return None
            keys.append(chunk[pos : pos + length].decode("utf-8", "replace"))
            pos += length
        elif op == 0x2E:  # STOP
            return keys
        else:
            return None
    return None


class LegacyTorchScanner(FormatScanner):
    """Legacy PyTorch files: five pickles, then raw storages."""

    name: ClassVar[str] = "pytorch-legacy"
    description: ClassVar[str] = (
        "legacy (non-zip) torch.save files: the five pickles are analysed, the magic and "
        "version checked, and the raw storage section validated against the storage keys"
    )
    priority: ClassVar[int] = 80
    suffixes: ClassVar[tuple[str, ...]] = ()
    can_execute_code: ClassVar[bool] = True
    supersedes: ClassVar[tuple[str, ...]] = ("pickle",)

    def sniff(self, data: memoryview, name: str) -> bool:
        return _pickled_int(bytes(data[:_MAGIC_HEAD])) == _MAGIC_NUMBER

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        from mltrust.scan._pickle import scan_pickle_stream

        pos = 0
        bounds: list[tuple[int, int]] = []
        for index in range(5):
            if pos >= len(data):
                break
            summary = scan_pickle_stream(data, ctx, loc, start=pos, single=True, context="pytorch")
            if not summary.complete or summary.end <= pos:
                ctx.report(
                    R.PT_LEGACY_HEADER,
                    f"pickle {index + 1} of 5 is incomplete; the storages were not checked",
                    loc.at(pos),
                )
                return
            bounds.append((pos, summary.end))
            pos = summary.end
        if len(bounds) < 5:
            ctx.report(
                R.PT_LEGACY_HEADER,
                f"only {len(bounds)} of the 5 pickles of the legacy format are present",
                loc.at(pos),
            )
            return
        version = _small_int(bytes(data[bounds[1][0] : bounds[1][1]]))
        if version != _VERSION:
            ctx.report(
                R.PT_LEGACY_HEADER,
                f"protocol version {version!r} where {_VERSION} is expected",
                loc.at(bounds[1][0]),
            )
        keys_start, keys_end = bounds[4]
        keys = read_storage_keys(bytes(data[keys_start:keys_end]))
        if keys is None:
            ctx.report(
                R.PT_STORAGE,
                "the storage-key pickle is not a plain list of strings",
                loc.at(keys_start),
            )
            if keys_end < len(data):
                ctx.scan_nested(
                    data[keys_end:], loc.member("[storages]"), "storages", raw_data_ok=True
                )
            return
        ctx.facts.setdefault("torch_storages", len(keys))
        self._check_storages(data, ctx, loc, keys, keys_end)

    def _check_storages(
        self, data: memoryview, ctx: ScanContext, loc: Location, keys: list[str], start: int
    ) -> None:
        size = len(data)
        frontier = {start}
        furthest = start
        for i, key in enumerate(keys):
            nxt: set[int] = set()
            for pos in frontier:
                if pos + 8 > size:
                    continue
                count = int.from_bytes(data[pos : pos + 8], "little")
                for width in _ELEMENT_SIZES:
                    end = pos + 8 + count * width
                    if end <= size:
                        nxt.add(end)
            if not nxt:
                ctx.report(
                    R.PT_STORAGE,
                    f"storage {i + 1} of {len(keys)} ({key!r}) runs past the end of the file",
                    loc.at(furthest),
                )
                return
            if len(nxt) > _MAX_FRONTIER:
                nxt = set(sorted(nxt)[:_MAX_FRONTIER])
            frontier = nxt
            furthest = max(frontier)
            ctx.check_deadline()
        if size in frontier:
            return
        from mltrust.scan._registry import detect

        ends = sorted(frontier)
        found = next((e for e in ends if detect(data[e:], "trailing")), None)
        if found is None:
            ctx.report(
                R.PT_STORAGE,
                f"the {len(keys)} storages do not end at the end of the file (truncated or "
                f"padded): at least {size - ends[-1]} bytes unexplained",
                loc.at(ends[-1]),
            )
            return
        ctx.report(
            R.PT_TRAILING,
            f"{size - found} bytes follow the {len(keys)} tensor storages",
            loc.at(found),
        )
        ctx.scan_nested(data[found:], loc.member(f"[after-storages@{found}]"), "trailing")


# --------------------------------------------------------------------------------------------
# The oldest format: a tar of ``sys_info``, ``pickle``, ``storages`` and ``tensors``.
#
# ``storages`` holds a pickled count, then per storage a pickled ``(key, location, type)`` tuple,
# an 8-byte element count and the raw elements, then a pickled list of storage views.
# ``tensors`` holds a pickled count, then per tensor a pickled ``(key, storage_id, type)``
# tuple and packed sizes, strides and offset. torch's legacy loader unpickles every one of
# those pickles, so each is analysed, not only the first of each member (what follows the raw
# bytes would otherwise pass as "trailing data").

_LEGACY_TAR_MEMBERS = frozenset({"storages", "tensors", "pickle"})


def is_legacy_tar(names: set[str]) -> bool:
    """Whether tar member names are those of the oldest torch.save format."""
    return names >= _LEGACY_TAR_MEMBERS


def _one_pickle(data: memoryview, ctx: ScanContext, loc: Location, pos: int) -> int | None:
    """Analyse the pickle at ``pos`` (if the unpickler would get anywhere there) and return
    where it ends; None, without a finding, when no pickle starts there."""
    from mltrust.scan._pickle import scan_pickle_stream
    from mltrust.scan.formats._pickle_head import Reach, simulate

    if simulate(data, pos, max_ops=4096)[0] is Reach.NOTHING:
        return None

    summary = scan_pickle_stream(data, ctx, loc, start=pos, single=True, context="pytorch")
    if not summary.complete or summary.end <= pos:
        return None
    return int(summary.end)


def scan_legacy_tar_member(data: memoryview, which: str, ctx: ScanContext, loc: Location) -> None:
    """Analyse every pickle of the ``storages`` or ``tensors`` member of a legacy tar file."""
    end = _one_pickle(data, ctx, loc, 0)
    count = _pickled_int(bytes(data[:end])) if end is not None else None
    if end is None or count is None or count < 0:
        ctx.report(R.PT_LEGACY_HEADER, f"{which}: the count pickle is not an integer", loc)
        return
    limit = int(ctx.limits.max_entries)
    if count > limit:
        ctx.report(R.PT_STORAGE, f"{which}: {count} entries exceed max_entries", loc)
        return
    frontier = {end}
    for index in range(count):
        ctx.check_deadline()
        nxt: set[int] = set()
        for pos in sorted(frontier)[:_MAX_FRONTIER]:
            after = _one_pickle(data, ctx, loc, pos)
            if after is None:
                continue
            nxt |= _skip_raw(data, after, which)
        if not nxt:
            ctx.report(
                R.PT_STORAGE,
                f"{which}: entry {index + 1} of {count} cannot be followed; the rest of the "
                "member was not checked",
                loc,
            )
            return
        frontier = nxt
    # In ``storages``, the pickled storage views follow the last storage.
    if which == "storages" and not any(
        _one_pickle(data, ctx, loc, pos) is not None for pos in sorted(frontier)[:8]
    ):
        ctx.report(R.PT_STORAGE, "storages: the storage-views pickle is missing or malformed", loc)


def _skip_raw(data: memoryview, pos: int, which: str) -> set[int]:
    """Positions after the raw bytes that follow an entry's pickle."""
    size = len(data)
    if which == "storages":
        if pos + 8 > size:
            return set()
        count = int.from_bytes(data[pos : pos + 8], "little")
        return {e for w in _ELEMENT_SIZES if (e := pos + 8 + count * w) <= size}
    if pos + 8 > size:
        return set()
    ndim = int.from_bytes(data[pos : pos + 4], "little", signed=True)
    end = pos + 8 + 16 * ndim + 8
    return {end} if 0 <= ndim <= 64 and end <= size else set()
