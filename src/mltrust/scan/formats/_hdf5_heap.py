"""Objects of an HDF5 fractal heap, where ``libver="latest"`` files keep dense attributes and
links (more than 8 of them, or large ones).

The heap is read without its name-index B-tree: every direct block's object area is parsed
from its start, one message after another (the objects are attribute or link messages, which
say their own size), up to the zero-filled free space. That yields every live object of a heap
written in one go, and possibly stale ones of deleted objects; callers treat the result as a
superset, and it is only trusted when it holds at least as many objects as the heap header
counts. Heaps with I/O filters, huge or tiny objects, or nested indirect blocks are not read
(:class:`InputError`): the caller fails closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from mltrust.errors import InputError

__all__ = ["Reads", "heap_objects"]

_UNDEF = (1 << 64) - 1
_MAX_BLOCKS = 1 << 16


class Reads(Protocol):
    """The bounds-checked reader of :mod:`.hdf5` (``_Reader``)."""

    so: int
    sl: int

    def uint(self, pos: int, n: int) -> int: ...
    def bytes_at(self, pos: int, n: int) -> bytes: ...
    def addr(self, rel: int) -> int: ...


def _defined(r: Reads, value: int) -> bool:
    return value not in (_UNDEF, (1 << (8 * r.so)) - 1)


def _regions(r: Reads, heap: int) -> tuple[list[tuple[int, int]], int]:
    """``(start, end)`` of every direct block's object area, and the live object count."""
    pos = r.addr(heap)
    if r.bytes_at(pos, 4) != b"FRHP":
        raise InputError("HDF5 fractal heap lacks its FRHP signature")
    so, sl = r.so, r.sl
    filters = r.uint(pos + 7, 2)
    flags = r.uint(pos + 9, 1)
    p = pos + 14 + sl + so + sl + so + 3 * sl  # ... past the direct block iterator offset
    managed = r.uint(p, sl)
    huge = r.uint(p + 2 * sl, sl)
    tiny = r.uint(p + 4 * sl, sl)
    p += 5 * sl
    width = r.uint(p, 2)
    start = r.uint(p + 2, sl)
    max_direct = r.uint(p + 2 + sl, sl)
    heap_bits = r.uint(p + 2 + 2 * sl, 2)
    root = r.uint(p + 6 + 2 * sl, so)
    rows = r.uint(p + 6 + 2 * sl + so, 2)
    if filters or huge or tiny:
        raise InputError("HDF5 fractal heap with filters, huge or tiny objects is not read")
    if not 0 < start <= max_direct or start & (start - 1) or max_direct & (max_direct - 1):
        raise InputError("HDF5 fractal heap has invalid block sizes")
    offset_size = (heap_bits + 7) // 8
    header = 5 + so + offset_size + (4 if flags & 0x02 else 0)
    regions: list[tuple[int, int]] = []

    def direct(address: int, size: int) -> None:
        at = r.addr(address)
        if r.bytes_at(at, 4) != b"FHDB":
            raise InputError("HDF5 fractal heap direct block lacks its FHDB signature")
        r.bytes_at(at, size)  # the whole block is in the file
        regions.append((at + header, at + size))

    if not _defined(r, root):
        return regions, managed
    if rows == 0:
        direct(root, start)
        return regions, managed
    at = r.addr(root)
    if r.bytes_at(at, 4) != b"FHIB":
        raise InputError("HDF5 fractal heap indirect block lacks its FHIB signature")
    max_direct_rows = (max_direct.bit_length() - start.bit_length()) + 2
    entry = at + 5 + so + offset_size
    if rows * width > _MAX_BLOCKS:
        raise InputError("HDF5 fractal heap has too many blocks")
    for row in range(rows):
        size = start if row < 2 else start << (row - 1)
        for _ in range(width):
            child = r.uint(entry, so)
            entry += so
            if not _defined(r, child):
                continue
            if row >= max_direct_rows:
                raise InputError("HDF5 fractal heap with nested indirect blocks is not read")
            direct(child, size)
    return regions, managed


def heap_objects(
    r: Reads, heap: int, object_size: Callable[[Any, int, int], int]
) -> list[tuple[int, int]]:
    """``(position, size)`` of every object found in the fractal heap at ``heap``.

    ``object_size(r, pos, end)`` returns the size of the message at ``pos`` (raising
    :class:`InputError` when it is not one). Raises :class:`InputError` when the heap is not
    read or fewer objects are found than the heap holds.
    """
    regions, live = _regions(r, heap)
    found: list[tuple[int, int]] = []
    for start, end in regions:
        pos = start
        while pos < end and r.uint(pos, 1) != 0:
            size = object_size(r, pos, end)
            if size <= 0 or pos + size > end:
                raise InputError("HDF5 fractal heap object runs past its block")
            found.append((pos, size))
            pos += size
            if len(found) > 1 << 20:
                raise InputError("HDF5 fractal heap has too many objects")
    if len(found) < live:
        raise InputError(
            f"HDF5 fractal heap holds {live} objects but {len(found)} were read in order"
        )
    return found
