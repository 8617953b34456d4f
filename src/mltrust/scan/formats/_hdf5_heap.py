"""Objects of an HDF5 fractal heap, where ``libver="latest"`` files keep dense attributes and
links (more than 8 of them, or large ones), found the way libhdf5 finds them.

The group's or object's name-index v2 B-tree lists a heap ID per attribute (record type 8) or
link (type 5). The B-tree is read at every depth: internal nodes (``BTIN``) hold records too,
and point at children whose record counts they carry, in fields whose widths follow from the
node size (as libhdf5 derives them when it opens the tree). Each heap ID is then resolved:

* a managed object: an offset and a length in the heap's address space, mapped onto the
  direct blocks of its doubling table (a root direct block, or a root indirect block whose
  rows hold direct blocks and, past the largest direct block size, nested indirect blocks);
* a huge object (larger than the heap's managed object limit, e.g. a fixed-length
  ``model_config`` string over 64 KiB): its address and length are in the heap ID itself or
  in the heap's huge-object B-tree (record type 1), keyed by the ID.

What libhdf5 reads is what is returned: not the blocks' bytes in order, which can hold freed
objects and can hide an object inside another's value (a red-team note on the first version of
this reader). Heaps with I/O filters, filtered huge objects and tiny objects are not read
(:class:`InputError`): the caller fails closed. Trees are bounded by the reader's
``max_depth`` and ``max_nodes`` (from :class:`mltrust.config.Limits`; ``max_nodes`` bounds the
records too, and every node's records must lie inside the file), and a node reached twice is an
error, so a crafted tree can neither loop nor claim billions of records.
"""

from __future__ import annotations

import bisect
from typing import Protocol

from mltrust.errors import InputError

__all__ = ["Reads", "btree_records", "indexed_objects"]

_UNDEF = (1 << 64) - 1
#: Signature, version, type and checksum of every v2 B-tree node.
_NODE_PREFIX = 10
#: v2 B-tree record types read here.
_BT_HUGE = 1
_BT_LINK_NAME = 5
_BT_ATTR_NAME = 8


class Reads(Protocol):
    """The bounds-checked reader of :mod:`.hdf5` (``_Reader``) and its bounds."""

    so: int
    sl: int
    max_depth: int
    max_nodes: int
    max_blocks: int

    def uint(self, pos: int, n: int) -> int: ...
    def bytes_at(self, pos: int, n: int) -> bytes: ...
    def addr(self, rel: int) -> int: ...


def _defined(r: Reads, value: int) -> bool:
    return value not in (_UNDEF, (1 << (8 * r.so)) - 1)


def _enc_size(n: int) -> int:
    """Bytes libhdf5 uses to store a count up to ``n`` (``H5VM_limit_enc_size``)."""
    return max(n.bit_length() - 1, 0) // 8 + 1


def btree_records(r: Reads, btree: int, kind: int) -> tuple[list[int], int]:
    """Positions of every record of the v2 B-tree whose header is at relative address
    ``btree`` (internal nodes' records included), and the record size. ``kind`` is the record
    type the caller expects; any other type, a node reached twice, a depth over
    ``r.max_depth`` or more than ``r.max_nodes`` nodes raises :class:`InputError`."""
    at = r.addr(btree)
    if r.bytes_at(at, 4) != b"BTHD":
        raise InputError("HDF5 v2 B-tree lacks its BTHD signature")
    if r.uint(at + 5, 1) != kind:
        raise InputError(f"HDF5 v2 B-tree is not of the expected record type {kind}")
    node_size = r.uint(at + 6, 4)
    record_size = r.uint(at + 10, 2)
    depth = r.uint(at + 12, 2)
    root = r.uint(at + 16, r.so)
    root_count = r.uint(at + 16 + r.so, 2)
    if depth > r.max_depth:
        raise InputError(f"HDF5 v2 B-tree is deeper than {r.max_depth} levels")
    if record_size == 0 or node_size <= _NODE_PREFIX + record_size:
        raise InputError("HDF5 v2 B-tree has invalid node or record sizes")
    # Widths and capacities per depth, as libhdf5 computes them (H5B2__hdr_init).
    leaf_max = (node_size - _NODE_PREFIX) // record_size
    count_size = _enc_size(leaf_max)
    max_records = [leaf_max]
    total_max = [leaf_max]
    total_size = [0]
    pointer_size = [0]
    for d in range(1, depth + 1):
        pointer = r.so + count_size + (total_size[d - 1] if d > 1 else 0)
        fits = (node_size - (_NODE_PREFIX + pointer)) // (record_size + pointer)
        if fits <= 0:
            raise InputError("HDF5 v2 B-tree internal nodes hold no record")
        max_records.append(fits)
        total_max.append((fits + 1) * total_max[d - 1] + fits)
        total_size.append(_enc_size(total_max[d]))
        pointer_size.append(pointer)
    records: list[int] = []
    if not _defined(r, root) or root_count == 0:
        return records, record_size
    visited: set[int] = set()
    stack = [(root, root_count, depth)]
    while stack:
        node, count, level = stack.pop()
        if node in visited:
            raise InputError("HDF5 v2 B-tree reaches a node twice")
        visited.add(node)
        if len(visited) > r.max_nodes:
            raise InputError(f"HDF5 v2 B-tree has more than {r.max_nodes} nodes")
        if count > max_records[level]:
            raise InputError("HDF5 v2 B-tree node claims more records than it holds")
        pos = r.addr(node)
        signature = b"BTLF" if level == 0 else b"BTIN"
        if r.bytes_at(pos, 4) != signature or r.uint(pos + 5, 1) != kind:
            raise InputError(f"HDF5 v2 B-tree node lacks its {signature.decode()} signature")
        first = pos + 6
        if count and len(records) + count > r.max_nodes:
            raise InputError(f"HDF5 v2 B-tree has more than {r.max_nodes} records")
        if count:
            r.uint(first + count * record_size - 1, 1)  # the records lie inside the file
        records.extend(first + i * record_size for i in range(count))
        if level == 0:
            continue
        p = first + count * record_size
        for _ in range(count + 1):
            child = r.uint(p, r.so)
            child_count = r.uint(p + r.so, count_size)
            stack.append((child, child_count, level - 1))
            p += pointer_size[level]
    return records, record_size


class _Heap:
    """A fractal heap's header fields and the direct blocks of its managed space."""

    def __init__(self, r: Reads, heap: int) -> None:
        pos = r.addr(heap)
        if r.bytes_at(pos, 4) != b"FRHP":
            raise InputError("HDF5 fractal heap lacks its FRHP signature")
        so, sl = r.so, r.sl
        self.r = r
        self.id_len = r.uint(pos + 5, 2)
        filters = r.uint(pos + 7, 2)
        max_managed = r.uint(pos + 10, 4)
        self.huge_tree = r.uint(pos + 14 + sl, so)
        p = pos + 14 + sl + so + sl + so + 4 * sl  # past the managed object count
        p += 4 * sl  # huge and tiny object sizes and counts
        self.width = r.uint(p, 2)
        self.start = r.uint(p + 2, sl)
        max_direct = r.uint(p + 2 + sl, sl)
        heap_bits = r.uint(p + 2 + 2 * sl, 2)
        root = r.uint(p + 6 + 2 * sl, so)
        rows = r.uint(p + 6 + 2 * sl + so, 2)
        if filters:
            raise InputError("HDF5 fractal heap with I/O filters is not read")
        start, width = self.start, self.width
        if not 0 < start <= max_direct or start & (start - 1) or max_direct & (max_direct - 1):
            raise InputError("HDF5 fractal heap has invalid block sizes")
        if not 0 < width <= r.max_blocks or width & (width - 1):
            raise InputError("HDF5 fractal heap has an invalid table width")
        self.offset_size = (heap_bits + 7) // 8
        self.length_size = (min(max_direct, max_managed).bit_length() + 7) // 8
        self.max_direct_rows = (max_direct.bit_length() - start.bit_length()) + 2
        #: ``(heap offset, file position, size)`` of every direct block, by offset.
        self.blocks: list[tuple[int, int, int]] = []
        if _defined(r, root):
            if rows == 0:
                self.blocks.append((0, r.addr(root), start))
            else:
                self._indirect(root, rows, 0, set())
        self.blocks.sort()
        self.offsets = [b[0] for b in self.blocks]

    def _row_size(self, row: int) -> int:
        return self.start if row < 2 else self.start << (row - 1)

    def _indirect(self, block: int, rows: int, offset: int, visited: set[int]) -> None:
        """Direct blocks under the indirect block at ``block`` (heap offset ``offset``)."""
        r = self.r
        pending = [(block, rows, offset)]
        while pending:
            block, rows, offset = pending.pop()
            if block in visited:
                raise InputError("HDF5 fractal heap reaches an indirect block twice")
            visited.add(block)
            at = r.addr(block)
            if r.bytes_at(at, 4) != b"FHIB":
                raise InputError("HDF5 fractal heap indirect block lacks its FHIB signature")
            if rows * self.width + len(self.blocks) > r.max_blocks or rows > 64:
                raise InputError("HDF5 fractal heap has too many blocks")
            entry = at + 5 + r.so + self.offset_size
            for row in range(rows):
                size = self._row_size(row)
                for _ in range(self.width):
                    child = r.uint(entry, r.so)
                    entry += r.so
                    if _defined(r, child):
                        if row < self.max_direct_rows:
                            self.blocks.append((offset, r.addr(child), size))
                        else:  # a nested indirect block spanning ``size`` bytes
                            nested = size.bit_length() - (self.start * self.width).bit_length() + 1
                            if nested <= 0 or nested >= rows:
                                raise InputError("HDF5 fractal heap indirect block is malformed")
                            pending.append((child, nested, offset))
                    offset += size

    def managed(self, heap_id: int) -> tuple[int, int]:
        r = self.r
        offset = r.uint(heap_id + 1, self.offset_size)
        length = r.uint(heap_id + 1 + self.offset_size, self.length_size)
        i = bisect.bisect_right(self.offsets, offset) - 1
        if i >= 0:
            block_offset, position, size = self.blocks[i]
            if offset + length <= block_offset + size:
                if r.bytes_at(position, 4) != b"FHDB":
                    raise InputError("HDF5 fractal heap direct block lacks its FHDB signature")
                return position + offset - block_offset, length
        raise InputError(f"HDF5 heap ID offset {offset} is in no direct block")

    def huge(self, heap_id: int, table: dict[int, tuple[int, int]] | None) -> tuple[int, int]:
        r = self.r
        if self.id_len - 1 >= r.so + r.sl:  # address and length kept in the ID itself
            return r.addr(r.uint(heap_id + 1, r.so)), r.uint(heap_id + 1 + r.so, r.sl)
        if table is None:
            raise InputError("HDF5 huge heap object without its B-tree")
        key = r.uint(heap_id + 1, min(self.id_len - 1, 8))
        if key not in table:
            raise InputError(f"HDF5 huge heap object {key} is not in its B-tree")
        return table[key]

    def huge_table(self) -> dict[int, tuple[int, int]] | None:
        """Huge objects by ID (unfiltered records, type 1), or None when there is none."""
        r = self.r
        if not _defined(r, self.huge_tree) or self.id_len - 1 >= r.so + r.sl:
            return None
        records, size = btree_records(r, self.huge_tree, _BT_HUGE)
        if size < r.so + 2 * r.sl:
            raise InputError("HDF5 huge object B-tree records are too small")
        table: dict[int, tuple[int, int]] = {}
        for rec in records:
            key = r.uint(rec + r.so + r.sl, r.sl)
            if key in table:
                raise InputError(f"HDF5 huge heap object {key} is listed twice")
            table[key] = (r.addr(r.uint(rec, r.so)), r.uint(rec + r.so, r.sl))
        return table


def indexed_objects(r: Reads, heap: int, btree: int, link_index: bool) -> list[tuple[int, int]]:
    """``(position, size)`` of every object the name-index B-tree at ``btree`` lists in the
    fractal heap at ``heap`` (attribute records, or link records when ``link_index``)."""
    fheap = _Heap(r, heap)
    records, record_size = btree_records(r, btree, _BT_LINK_NAME if link_index else _BT_ATTR_NAME)
    id_at = 4 if link_index else 0  # after the name hash, or first
    if record_size < id_at + fheap.id_len or fheap.id_len < 2:
        raise InputError("HDF5 name index records do not hold a heap ID")
    huge: dict[int, tuple[int, int]] | None = None
    found: list[tuple[int, int]] = []
    for record in records:
        heap_id = record + id_at
        flags = r.uint(heap_id, 1)
        if flags & 0xC0:
            raise InputError("HDF5 heap ID of an unknown version")
        kind = (flags >> 4) & 0x03
        if kind == 0:
            found.append(fheap.managed(heap_id))
        elif kind == 1:
            if huge is None:
                huge = fheap.huge_table()
            found.append(fheap.huge(heap_id, huge))
        else:
            raise InputError("HDF5 heap ID of a tiny object is not read")
    return found
