"""Walk an HDF5 file's object tree for references to other files.

h5py reads three kinds of object from outside the file it opened, whatever the file's name:

* a dataset whose storage is an **External Data Files** list (``create_dataset(...,
  external=[("/etc/passwd", 0, n)])``): its values are bytes of any file;
* a **virtual dataset** (layout class 3), whose values come from other HDF5 files;
* an **external link**, which makes a path of this file open another HDF5 file.

A Keras ``.h5`` or ``model.weights.h5`` holding one loads that file's bytes into the weights
(red-team finding: the scanner read only the root attributes and passed such files). The
walker follows the tree from the root group: old-style groups (Symbol Table message, v1 B-tree
of ``SNOD`` nodes, names in a local heap), new-style compact groups (Link messages) and dense
ones (link messages in a fractal heap, :mod:`._hdf5_heap`). Groups whose heap cannot be read
are reported, so the caller can fail closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mltrust.errors import InputError, LimitExceeded
from mltrust.scan.formats._hdf5_heap import Reads, indexed_objects

__all__ = ["TreeReport", "walk_tree"]

_MSG_LINK_INFO = 0x0002
_MSG_LINK = 0x0006
_MSG_EXTERNAL_FILES = 0x0007
_MSG_LAYOUT = 0x0008
_MSG_SYMBOL_TABLE = 0x0011
_UNDEF = (1 << 64) - 1


@dataclass
class TreeReport:
    """What the walk found."""

    #: ``(object path, description)`` of every reference to another file.
    external: list[tuple[str, str]] = field(default_factory=list)
    #: Paths of groups whose links are in dense storage (not read).
    dense_groups: list[str] = field(default_factory=list)
    objects: int = 0


def walk_tree(
    reader: Reads,
    root: int,
    messages: Callable[[Any, int], list[tuple[int, int, int]]],
    max_objects: int,
) -> TreeReport:
    """Walk every object reachable from the root object header at ``root``.

    ``reader`` is :class:`mltrust.scan.formats._hdf5_scan._Reader` (bounds-checked reads, address
    sizes), ``messages`` its object-header message lister. Raises :class:`InputError` on a
    structure that cannot be followed and :class:`LimitExceeded` past ``max_objects``.
    """
    r = reader
    report = TreeReport()
    seen: set[int] = set()
    stack: list[tuple[int, str]] = [(root, "/")]
    while stack:
        header, path = stack.pop()
        if header in seen:
            continue
        seen.add(header)
        listed = messages(r, header)
        report.objects += 1
        if report.objects > max_objects:
            raise LimitExceeded(f"HDF5 file has more than {max_objects} objects")
        for mtype, pos, size in listed:
            links: list[tuple[int, int]] = []
            if mtype == _MSG_EXTERNAL_FILES:
                names = _external_file_names(r, pos)
                report.external.append(
                    (path, "dataset stored in external file(s) " + ", ".join(map(repr, names)))
                )
            elif mtype == _MSG_LAYOUT and _is_virtual_layout(r, pos):
                report.external.append((path, "virtual dataset reading other HDF5 files"))
            elif mtype == _MSG_LINK:
                links = [(pos, size)]
            elif mtype == _MSG_LINK_INFO and _dense_links(r, pos):
                try:  # links kept in a fractal heap, found through the group's name index
                    at = _link_info_heap(r, pos)
                    heap, index = _u(r, at, _so(r)), _u(r, at + _so(r), _so(r))
                    links = indexed_objects(r, heap, index, link_index=True)
                except InputError:
                    report.dense_groups.append(path)
            elif mtype == _MSG_SYMBOL_TABLE:
                for name, target in _symbol_table(r, pos):
                    if _defined(r, target):  # a soft link's entry has no object header
                        child = path.rstrip("/") + "/" + name
                        stack.append((r.addr(target), child))
            for link_pos, link_size in links:
                kind, link_name, link_target = _link(r, link_pos, link_size)
                child = path.rstrip("/") + "/" + link_name
                if kind == 0 and isinstance(link_target, int):
                    stack.append((r.addr(link_target), child))
                elif kind >= 64:
                    report.external.append((child, f"external link to {link_target!r}"))
    return report


def _u(r: Reads, pos: int, n: int) -> int:
    return r.uint(pos, n)


def _so(r: Reads) -> int:
    return r.so


def _sl(r: Reads) -> int:
    return r.sl


def _defined(r: Reads, value: int) -> bool:
    return value not in (_UNDEF, (1 << (8 * _so(r))) - 1)


def _cstring(r: Reads, pos: int, limit: int = 4096) -> str:
    raw = r.bytes_at(pos, 1)
    out = bytearray()
    while raw != b"\x00" and len(out) < limit:
        out += raw
        pos += 1
        raw = r.bytes_at(pos, 1)
    return out.decode("utf-8", "replace")


def _local_heap_data(r: Reads, heap: int) -> int:
    """Absolute position of a local heap's data segment."""
    pos = r.addr(heap)
    if r.bytes_at(pos, 4) != b"HEAP":
        raise InputError("HDF5 local heap lacks its HEAP signature")
    return r.addr(_u(r, pos + 8 + 2 * _sl(r), _so(r)))


def _external_file_names(r: Reads, pos: int) -> list[str]:
    used = _u(r, pos + 6, 2)
    data = _local_heap_data(r, _u(r, pos + 8, _so(r)))
    names = []
    slot = pos + 8 + _so(r)
    for _ in range(min(used, 16)):
        names.append(_cstring(r, data + _u(r, slot, _sl(r))))
        slot += 3 * _sl(r)
    return names


def _is_virtual_layout(r: Reads, pos: int) -> bool:
    return _u(r, pos, 1) in (3, 4) and _u(r, pos + 1, 1) == 3


def _link_info_heap(r: Reads, pos: int) -> int:
    """Position of the fractal heap address in a Link Info message."""
    return pos + 2 + (8 if _u(r, pos + 1, 1) & 0x01 else 0)


def _dense_links(r: Reads, pos: int) -> bool:
    return _defined(r, _u(r, _link_info_heap(r, pos), _so(r)))


def _link(r: Reads, pos: int, size: int) -> tuple[int, str, int | str | None]:
    """``(link type, name, target)``: an address for hard links, the file (and path) for
    external ones, None for soft links."""
    end = pos + size
    if _u(r, pos, 1) != 1:
        raise InputError("unsupported HDF5 link message version")
    flags = _u(r, pos + 1, 1)
    p = pos + 2
    kind = 0
    if flags & 0x08:
        kind = _u(r, p, 1)
        p += 1
    if flags & 0x04:
        p += 8
    if flags & 0x10:
        p += 1
    width = 1 << (flags & 0x03)
    length = _u(r, p, width)
    p += width
    name = r.bytes_at(p, length).decode("utf-8", "replace")
    p += length
    if p > end:
        raise InputError("HDF5 link message overruns its size")
    if kind == 0:
        return kind, name, _u(r, p, _so(r))
    if kind == 1:
        return kind, name, None
    info_len = _u(r, p, 2)
    info = r.bytes_at(p + 2, min(info_len, end - p - 2))
    parts = info[1:].split(b"\x00") if kind == 64 else [info]
    target = ":".join(x.decode("utf-8", "replace") for x in parts[:2] if x)
    return kind, name, target


def _symbol_table(r: Reads, pos: int) -> list[tuple[str, int]]:
    """``(name, object header address)`` of every entry of an old-style group."""
    btree = _u(r, pos, _so(r))
    data = _local_heap_data(r, _u(r, pos + _so(r), _so(r)))
    out: list[tuple[str, int]] = []
    nodes = [btree]
    visited: set[int] = set()
    while nodes:
        node = nodes.pop()
        if node in visited or len(visited) > 1 << 16:
            raise InputError("HDF5 group B-tree revisits a node")
        visited.add(node)
        at = r.addr(node)
        sig = r.bytes_at(at, 4)
        if sig == b"SNOD":
            count = _u(r, at + 6, 2)
            entry = at + 8
            for _ in range(count):
                name = _cstring(r, data + _u(r, entry, _so(r)))
                out.append((name, _u(r, entry + _so(r), _so(r))))
                entry += 2 * _so(r) + 24
            continue
        if sig != b"TREE" or _u(r, at + 4, 1) != 0:
            raise InputError("HDF5 group B-tree node lacks its TREE signature")
        used = _u(r, at + 6, 2)
        p = at + 8 + 2 * _so(r) + _sl(r)  # siblings, first key
        for _ in range(used):
            nodes.append(_u(r, p, _so(r)))
            p += _so(r) + _sl(r)
    return out
