"""Objects of an HDF5 fractal heap, where ``libver="latest"`` files keep dense attributes and
links (more than 8 of them, or large ones), found the way libhdf5 finds them.

The group's or object's name-index v2 B-tree lists a heap ID per attribute (record type 8) or
link (type 5); each managed heap ID is an offset and a length in the heap's address space,
mapped here onto the direct blocks of the heap (a root direct block, or a root indirect block's
rows of direct blocks). What libhdf5 reads is what is returned: not the blocks' bytes in order,
which can hold freed objects and can hide an object inside another's value (a red-team note on
the first version of this reader). B-trees deeper than one leaf, heaps with I/O filters, huge or
tiny objects and nested indirect blocks are not read (:class:`InputError`): the caller fails
closed.
"""

from __future__ import annotations

from typing import Protocol

from mltrust.config import Limits
from mltrust.errors import InputError

__all__ = ["Reads", "indexed_objects"]

_UNDEF = (1 << 64) - 1


class Reads(Protocol):
    """The bounds-checked reader of :mod:`.hdf5` (``_Reader``)."""

    so: int
    sl: int
    limits: Limits

    def uint(self, pos: int, n: int) -> int: ...
    def bytes_at(self, pos: int, n: int) -> bytes: ...
    def addr(self, rel: int) -> int: ...


def _defined(r: Reads, value: int) -> bool:
    return value not in (_UNDEF, (1 << (8 * r.so)) - 1)


def _blocks(r: Reads, heap: int) -> tuple[list[tuple[int, int, int]], int, int]:
    """Direct blocks ``(heap offset, file position, size)``, the heap offset width and the
    heap ID length width."""
    pos = r.addr(heap)
    if r.bytes_at(pos, 4) != b"FRHP":
        raise InputError("HDF5 fractal heap lacks its FRHP signature")
    so, sl = r.so, r.sl
    filters = r.uint(pos + 7, 2)
    max_managed = r.uint(pos + 10, 4)
    p = pos + 14 + sl + so + sl + so + 4 * sl  # past the managed object count
    huge = r.uint(p + sl, sl)
    tiny = r.uint(p + 3 * sl, sl)
    p += 4 * sl
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
    length_size = (min(max_direct, max_managed).bit_length() + 7) // 8
    blocks: list[tuple[int, int, int]] = []
    if not _defined(r, root):
        return blocks, offset_size, length_size
    if rows == 0:
        blocks.append((0, r.addr(root), start))
        return blocks, offset_size, length_size
    at = r.addr(root)
    if r.bytes_at(at, 4) != b"FHIB":
        raise InputError("HDF5 fractal heap indirect block lacks its FHIB signature")
    if rows * width > r.limits.max_hdf5_heap_blocks:
        raise InputError("HDF5 fractal heap has too many blocks")
    max_direct_rows = (max_direct.bit_length() - start.bit_length()) + 2
    entry = at + 5 + so + offset_size
    offset = 0
    for row in range(rows):
        size = start if row < 2 else start << (row - 1)
        for _ in range(width):
            child = r.uint(entry, so)
            entry += so
            if _defined(r, child):
                if row >= max_direct_rows:
                    raise InputError("HDF5 fractal heap with nested indirect blocks is not read")
                blocks.append((offset, r.addr(child), size))
            offset += size
    return blocks, offset_size, length_size


def indexed_objects(r: Reads, heap: int, btree: int, link_index: bool) -> list[tuple[int, int]]:
    """``(position, size)`` of every object the name-index B-tree at ``btree`` lists in the
    fractal heap at ``heap`` (attribute records, or link records when ``link_index``)."""
    blocks, offset_size, length_size = _blocks(r, heap)
    at = r.addr(btree)
    if r.bytes_at(at, 4) != b"BTHD":
        raise InputError("HDF5 v2 B-tree lacks its BTHD signature")
    kind = r.uint(at + 5, 1)
    record_size = r.uint(at + 10, 2)
    depth = r.uint(at + 12, 2)
    root = r.uint(at + 16, r.so)
    count = r.uint(at + 16 + r.so, 2)
    if kind != (5 if link_index else 8) or depth != 0:
        raise InputError("HDF5 name index is not a single-leaf B-tree of the expected type")
    found: list[tuple[int, int]] = []
    if not _defined(r, root) or count == 0:
        return found
    leaf = r.addr(root)
    if r.bytes_at(leaf, 4) != b"BTLF":
        raise InputError("HDF5 v2 B-tree leaf lacks its BTLF signature")
    for index in range(count):
        record = leaf + 6 + index * record_size
        heap_id = record + (4 if link_index else 0)
        if r.uint(heap_id, 1) & 0x30:
            raise InputError("HDF5 heap ID of a huge or tiny object is not read")
        offset = r.uint(heap_id + 1, offset_size)
        length = r.uint(heap_id + 1 + offset_size, length_size)
        for block_offset, position, size in blocks:
            if block_offset <= offset and offset + length <= block_offset + size:
                if r.bytes_at(position, 4) != b"FHDB":
                    raise InputError("HDF5 fractal heap direct block lacks its FHDB signature")
                found.append((position + offset - block_offset, length))
                break
        else:
            raise InputError(f"HDF5 heap ID offset {offset} is in no direct block")
    return found
