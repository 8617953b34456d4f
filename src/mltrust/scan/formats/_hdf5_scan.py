"""The HDF5 reader and the HDF5 scanner's work (:mod:`mltrust.scan.formats.hdf5`), imported
only when an HDF5 file is scanned. See that module for what is read and why."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from mltrust._lazy import lazy_pattern
from mltrust.config import DEFAULT_LIMITS, Limits
from mltrust.errors import InputError
from mltrust.findings import Location
from mltrust.scan._context import ScanContext
from mltrust.scan.formats._rules_keras_config import (
    H5_DUPLICATE_ATTRIBUTE,
    H5_EXTERNAL_REFERENCE,
    H5_MALFORMED,
    H5_NOT_FULLY_SCANNED,
)
from mltrust.scan.formats.hdf5 import find_superblock

# (*) The HDF5 object-tree walk, fractal heaps and Keras analysis are imported where a scan
# first needs them: sniffing needs none of them, and a scan of another format should not pay
# for loading them.

__all__ = ["RootAttributes", "read_root_attributes", "scan_hdf5"]


_UNDEF = (1 << 64) - 1

# Object header message types.
_MSG_DATATYPE = 0x0003
_MSG_ATTRIBUTE = 0x000C
_MSG_CONTINUATION = 0x0010
_MSG_ATTRIBUTE_INFO = 0x0015

#: Root attributes the scanner decodes; anything else is only listed.
_WANTED = frozenset({"model_config", "training_config", "keras_version", "backend"})
_CONFIG_ATTRS = ("model_config", "training_config")


_class_name_key = lazy_pattern(rb'"class_name"\s*:')


_object_start = lazy_pattern(rb'\{\s*"')


_model_config_name = lazy_pattern(rb"model_config|training_config")


@dataclass
class RootAttributes:
    """What was read from the root group's attributes."""

    #: Decoded attribute values by name (strings; lists for arrays of strings). With duplicate
    #: names, the last one read; ``all_values`` keeps every one.
    values: dict[str, str | list[str]] = field(default_factory=dict)
    #: Every decoded value of each wanted attribute, in file order (duplicates included).
    all_values: dict[str, list[str | list[str]]] = field(default_factory=dict)
    #: Every attribute name seen on the root group.
    names: list[str] = field(default_factory=list)
    #: True when attributes live in dense storage this parser could not read.
    dense: bool = False
    #: Attributes that were present but whose value could not be decoded.
    undecoded: list[str] = field(default_factory=list)
    #: Structures readers may disagree on (duplicate global heap object indices...).
    anomalies: list[str] = field(default_factory=list)

    def record(self, name: str, values: list[str] | None) -> None:
        """One attribute read from the header or the dense storage, in file order."""
        self.names.append(name)
        if name not in _WANTED:
            return
        if values is None:
            self.undecoded.append(name)
            return
        value = values[0] if len(values) == 1 else values
        self.values[name] = value
        self.all_values.setdefault(name, []).append(value)


class _Reader:
    """Bounds-checked little-endian reads over the file, addresses relative to ``base``."""

    def __init__(
        self,
        data: memoryview,
        base: int,
        size_of_offsets: int,
        size_of_lengths: int,
        limits: Limits,
    ):
        if size_of_offsets not in (2, 4, 8) or size_of_lengths not in (2, 4, 8):
            raise InputError(
                f"HDF5 superblock declares unsupported address sizes "
                f"{size_of_offsets}/{size_of_lengths}"
            )
        self.data = data
        self.base = base
        self.so = size_of_offsets
        self.sl = size_of_lengths
        #: Parsed global heap collections, by relative address.
        self.heaps: dict[int, dict[int, tuple[int, int]]] = {}
        #: Structures readers may disagree on (reported, the file is still parsed).
        self.anomalies: list[str] = []
        #: Bounds on the B-trees read (levels, nodes per tree).
        self.max_depth = limits.max_nesting_depth
        self.max_nodes = limits.max_entries
        self.max_blocks = limits.max_hdf5_heap_blocks
        self.limits = limits

    def bytes_at(self, pos: int, n: int) -> bytes:
        if pos < 0 or n < 0 or pos + n > len(self.data):
            raise InputError(f"HDF5 structure points outside the file (offset {pos}, {n} bytes)")
        return bytes(self.data[pos : pos + n])

    def uint(self, pos: int, n: int) -> int:
        return int.from_bytes(self.bytes_at(pos, n), "little")

    def addr(self, rel: int) -> int:
        """Absolute file position of the relative address ``rel``."""
        if rel == _UNDEF or rel == (1 << (8 * self.so)) - 1:
            raise InputError("HDF5 structure uses an undefined address where one is required")
        return self.base + rel


def _parse_superblock(data: memoryview, sb: int, limits: Limits) -> tuple[_Reader, int]:
    """A reader and the absolute position of the root group's object header."""
    if sb + 16 > len(data):
        raise InputError("HDF5 superblock truncated")
    version = data[sb + 8]
    if version in (0, 1):
        so = data[sb + 13]
        sl = data[sb + 14]
        pos = sb + 24 + (4 if version == 1 else 0)
        reader = _Reader(data, 0, so, sl, limits)
        base = reader.uint(pos, so)
        # root group symbol table entry after base, free-space, EOF and driver addresses
        entry = pos + 4 * so
        header = reader.uint(entry + so, so)
    elif version in (2, 3):
        so = data[sb + 9]
        sl = data[sb + 10]
        pos = sb + 12
        reader = _Reader(data, 0, so, sl, limits)
        base = reader.uint(pos, so)
        header = reader.uint(pos + 3 * so, so)
    else:
        raise InputError(f"unsupported HDF5 superblock version {version}")
    # Files written with a user block keep base 0 in some writers and the superblock offset in
    # others; addresses are relative to the superblock's position in both cases.
    reader.base = base if base == sb else sb + base if base < sb else base
    return reader, reader.addr(header)


def _messages(r: _Reader, header: int) -> list[tuple[int, int, int]]:
    """``(type, absolute data position, size)`` of every message in an object header."""
    out: list[tuple[int, int, int]] = []
    blocks: list[tuple[int, int, int, bool]] = []  # (start, end, version, continuation)
    if r.bytes_at(header, 4) == b"OHDR":
        version = r.uint(header + 4, 1)
        if version != 2:
            raise InputError(f"unsupported HDF5 object header version {version}")
        flags = r.uint(header + 5, 1)
        pos = header + 6
        if flags & 0x20:
            pos += 16
        if flags & 0x10:
            pos += 4
        width = 1 << (flags & 0x03)
        chunk = r.uint(pos, width)
        pos += width
        blocks.append((pos, pos + chunk, 2, False))
        creation_order = bool(flags & 0x04)
    else:
        version = r.uint(header, 1)
        if version != 1:
            raise InputError(f"unsupported HDF5 object header version {version}")
        size = r.uint(header + 8, 4)
        blocks.append((header + 16, header + 16 + size, 1, False))
        creation_order = False
    continuations = 0
    while blocks:
        start, end, ver, cont_block = blocks.pop(0)
        if end > len(r.data):
            raise InputError("HDF5 object header runs past the end of the file")
        pos = start
        if ver == 2 and cont_block:
            if r.bytes_at(start, 4) != b"OCHK":
                raise InputError("HDF5 continuation block lacks its OCHK signature")
            pos += 4
            end -= 4  # checksum
        while True:
            if len(out) >= r.limits.max_hdf5_header_messages:
                raise InputError("HDF5 object header has too many messages")
            if ver == 1:
                if pos + 8 > end:
                    break
                mtype = r.uint(pos, 2)
                msize = r.uint(pos + 2, 2)
                dpos = pos + 8
                nxt = dpos + msize
            else:
                hdr = 4 + (2 if creation_order else 0)
                if pos + hdr > end:
                    break
                mtype = r.uint(pos, 1)
                msize = r.uint(pos + 1, 2)
                dpos = pos + hdr
                nxt = dpos + msize
            if nxt > end:
                raise InputError("HDF5 header message runs past its block")
            out.append((mtype, dpos, msize))
            if mtype == _MSG_CONTINUATION:
                continuations += 1
                if continuations > r.limits.max_hdf5_continuations:
                    raise InputError("HDF5 object header has too many continuation blocks")
                cont = r.addr(r.uint(dpos, r.so))
                length = r.uint(dpos + r.so, r.sl)
                blocks.append((cont, cont + length, ver, True))
            pos = nxt
    return out


@dataclass(frozen=True, eq=False, repr=False)  # never compared or printed: no generated == or repr
class _Datatype:
    """An HDF5 datatype message: its class, element size and whether it is a string."""

    cls: int
    size: int
    vlen_string: bool


def _datatype(r: _Reader, pos: int) -> _Datatype:
    head = r.uint(pos, 1)
    cls = head & 0x0F
    bits = r.uint(pos + 1, 1)
    size = r.uint(pos + 4, 4)
    return _Datatype(cls, size, cls == 9 and (bits & 0x0F) == 1)


def _dataspace_count(r: _Reader, pos: int) -> int:
    version = r.uint(pos, 1)
    rank = r.uint(pos + 1, 1)
    if version == 1:
        dims = pos + 8
    elif version == 2:
        if r.uint(pos + 3, 1) == 2:  # null dataspace
            return 0
        dims = pos + 4
    else:
        raise InputError(f"unsupported HDF5 dataspace version {version}")
    count = 1
    for i in range(rank):
        count *= r.uint(dims + i * r.sl, r.sl)
        if count > 1 << 20:
            raise InputError("HDF5 attribute has too many elements")
    return count


def _global_heap(r: _Reader, collection: int) -> dict[int, tuple[int, int]]:
    """Objects of the global heap collection at ``collection``: index -> (position, size)."""
    cached = r.heaps.get(collection)
    if cached is not None:
        return cached
    pos = r.addr(collection)
    if r.bytes_at(pos, 4) != b"GCOL":
        raise InputError("HDF5 variable-length string points to no global heap collection")
    size = r.uint(pos + 8, r.sl)
    end = min(pos + size, len(r.data))
    obj = pos + 8 + r.sl
    objects: dict[int, tuple[int, int]] = {}
    # Read as libhdf5 reads it (H5HG__cache_heap_deserialize): a free-space object (index 0)
    # is stepped over by its size, objects after it still count, and an index seen twice
    # keeps its LAST object. Keeping the first would read a value h5py never returns.
    for _ in range(1 << 16):
        if obj + 8 + r.sl > end:
            break
        idx = r.uint(obj, 2)
        osize = r.uint(obj + 8, r.sl)
        data = obj + 8 + r.sl
        if idx == 0:
            if osize < 8 + r.sl:
                break
            obj += osize
            continue
        if idx in objects:
            r.anomalies.append(
                f"global heap collection at {collection} holds two objects with index {idx} "
                "(HDF5 readers use the last one)"
            )
        objects[idx] = (data, osize)
        obj = data + ((osize + 7) & ~7)
    if len(r.heaps) >= 256:
        raise InputError("HDF5 attributes reference too many global heap collections")
    r.heaps[collection] = objects
    return objects


def _global_heap_object(r: _Reader, collection: int, index: int, max_len: int) -> bytes:
    found = _global_heap(r, collection).get(index)
    if found is None:
        raise InputError(f"HDF5 global heap object {index} not found")
    data, osize = found
    if osize > max_len:
        raise InputError(f"HDF5 string of {osize} bytes exceeds the text limit")
    return r.bytes_at(data, osize)


def _attribute(r: _Reader, pos: int, size: int, max_len: int) -> tuple[str, list[str] | None]:
    """The name of the attribute message at ``pos`` and its string values (None if not text)."""
    version = r.uint(pos, 1)
    name_size = r.uint(pos + 2, 2)
    dt_size = r.uint(pos + 4, 2)
    ds_size = r.uint(pos + 6, 2)
    if version == 1:
        p = pos + 8
        name = r.bytes_at(p, name_size)
        p += (name_size + 7) & ~7
        dt_pos = p
        p += (dt_size + 7) & ~7
        ds_pos = p
        p += (ds_size + 7) & ~7
    elif version in (2, 3):
        p = pos + 8 + (1 if version == 3 else 0)
        name = r.bytes_at(p, name_size)
        dt_pos = p + name_size
        ds_pos = dt_pos + dt_size
        p = ds_pos + ds_size
    else:
        raise InputError(f"unsupported HDF5 attribute message version {version}")
    if p > pos + size:
        raise InputError("HDF5 attribute message fields overrun the message")
    text_name = name.split(b"\x00", 1)[0].decode("utf-8", "replace")
    flags = r.uint(pos + 1, 1) if version > 1 else 0
    if flags & 0x03:  # shared datatype or dataspace: not used for Keras string attributes
        return text_name, None
    dtype = _datatype(r, dt_pos)
    count = _dataspace_count(r, ds_pos)
    values: list[str] = []
    if dtype.cls == 3:  # fixed-length string
        total = dtype.size * count
        if total > max_len:
            raise InputError(f"HDF5 attribute {text_name!r} exceeds the text limit")
        raw = r.bytes_at(p, total)
        for i in range(count):
            item = raw[i * dtype.size : (i + 1) * dtype.size].split(b"\x00", 1)[0]
            values.append(item.decode("utf-8", "replace"))
        return text_name, values
    if dtype.vlen_string:
        step = 4 + r.so + 4
        total = 0
        for i in range(min(count, 4096)):
            base = p + i * step
            length = r.uint(base, 4)
            collection = r.uint(base + 4, r.so)
            index = r.uint(base + 4 + r.so, 4)
            if length == 0 or collection == 0:
                values.append("")
                continue
            raw = _global_heap_object(r, collection, index, max_len)
            total += len(raw)
            if total > max_len:
                raise InputError(f"HDF5 attribute {text_name!r} exceeds the text limit")
            values.append(raw[:length].decode("utf-8", "replace"))
        return text_name, values
    return text_name, None


def _dense_attributes(
    r: _Reader, heap: int, index: int, out: RootAttributes, max_text_bytes: int
) -> None:
    """Attributes kept in a fractal heap, read where its name index points, as libhdf5 does
    (:mod:`._hdf5_heap`); ``out.dense`` (content search, not fully scanned) when they cannot
    be read that way."""
    try:
        from mltrust.scan.formats._hdf5_heap import indexed_objects  # (*)

        objects = indexed_objects(r, heap, index, link_index=False)
        decoded = [_attribute(r, pos, size, max_text_bytes) for pos, size in objects]
    except InputError:
        out.dense = True
        return
    for name, values in decoded:
        out.record(name, values)


def read_root_attributes(data: memoryview, limits: Limits | None = None) -> RootAttributes:
    """Read the root group's string attributes of the HDF5 file in ``data``.

    Raises :class:`InputError` when there is no HDF5 signature or the structure is malformed
    or uses features this reader does not follow.
    """
    limits = limits or DEFAULT_LIMITS
    sb = find_superblock(data, limits)
    if sb is None:
        raise InputError("no HDF5 signature")
    max_text_bytes = limits.max_text_bytes
    reader, header = _parse_superblock(data, sb, limits)
    out = RootAttributes()
    for mtype, pos, size in _messages(reader, header):
        if mtype == _MSG_ATTRIBUTE_INFO:
            flags = reader.uint(pos + 1, 1)
            heap = reader.uint(pos + 2 + (2 if flags & 0x01 else 0), reader.so)
            if heap not in (_UNDEF, (1 << (8 * reader.so)) - 1):
                index = reader.uint(pos + 2 + (2 if flags & 0x01 else 0) + reader.so, reader.so)
                _dense_attributes(reader, heap, index, out, max_text_bytes)
        elif mtype == _MSG_ATTRIBUTE:
            out.record(*_attribute(reader, pos, size, max_text_bytes))
    out.anomalies = reader.anomalies
    return out


def _decode_json_at(
    data: memoryview, start: int, limit: int, decoder: json.JSONDecoder
) -> tuple[object, int] | None:
    """The JSON value starting at ``start`` and the offset just past it, or None.

    The bytes are read as latin-1, so text offsets are file offsets (every key and class name
    Keras uses is ASCII). The window grows only while the value runs past its end.
    """
    window = min(1 << 20, limit)
    while True:
        text = bytes(data[start : start + window]).decode("latin-1")
        try:
            doc, end = decoder.raw_decode(text)
            return doc, start + end
        except RecursionError:
            return None
        except json.JSONDecodeError as exc:
            cut = exc.pos >= len(text) - 1 or exc.msg.startswith("Unterminated string")
            if not cut or start + window >= len(data) or window >= limit:
                return None  # not JSON (or longer than max_text_bytes)
            window = min(window * 8, limit)
        except ValueError:
            return None


def _content_fallback(data: memoryview, ctx: ScanContext, loc: Location) -> tuple[int, int]:
    """Analyse every JSON object that holds a ``"class_name"`` key, in any key order.

    For each ``"class_name"`` key not inside an object already analysed, the JSON objects that
    start before it (at most ``max_text_bytes`` before) are decoded with :mod:`json`, earliest
    first, until one spans the key: the outermost document is found whatever the key order
    (Keras does not care about it). Returns (objects analysed, keys no decodable object spans);
    the caller reports the file as not fully scanned when any key was left.
    """
    limit = ctx.config.limits.max_text_bytes
    decoder = json.JSONDecoder()
    found = missed = tries = 0
    covered = 0
    for key in _class_name_key().finditer(data):  # type: ignore[call-overload]
        at = key.start()
        if at < covered:
            continue
        span: tuple[object, int, int] | None = None
        for cand in _object_start().finditer(data, max(covered, at - limit), at):  # type: ignore[call-overload]
            tries += 1
            if tries > ctx.limits.max_hdf5_fallback_candidates:
                return found, missed + 1
            decoded = _decode_json_at(data, cand.start(), limit, decoder)
            if decoded is not None and decoded[1] > at:
                span = (decoded[0], cand.start(), decoded[1])
                break
            ctx.check_deadline()
        if span is None:
            missed += 1
            covered = at + 1
            continue
        doc, start, end = span
        found += 1
        covered = end
        from mltrust.scan.formats.keras import analyze_keras_config  # (*)

        analyze_keras_config(doc, ctx, loc.at(start, detail="config found by content"))
        ctx.check_deadline()
    return found, missed


def scan_hdf5(data: memoryview, ctx: ScanContext, loc: Location) -> None:
    """Scan an HDF5 file (the work of :meth:`Hdf5Scanner.scan`)."""
    try:
        attrs = read_root_attributes(data, ctx.config.limits)
    except InputError as exc:
        ctx.report(
            H5_MALFORMED,
            f"HDF5 structure not parsed ({exc}); searched by content instead",
            loc,
        )
        _fallback(data, ctx, loc, reason=str(exc))
        return
    keras = [n for n in attrs.names if n in _WANTED]
    if keras:
        ctx.facts["hdf5_root_attributes"] = sorted(set(attrs.names))[:32]
    seen: set[str] = set()
    for name in attrs.names:
        if name in seen:
            ctx.report(
                H5_DUPLICATE_ATTRIBUTE,
                f"the root group has more than one attribute named {name!r}; every value "
                "was analysed",
                loc.at(detail=name),
            )
        seen.add(name)
    for anomaly in dict.fromkeys(attrs.anomalies):
        ctx.report(
            H5_DUPLICATE_ATTRIBUTE,
            f"{anomaly}; the value HDF5 reads was analysed",
            loc,
        )
    for name in attrs.undecoded:
        if name in _CONFIG_ATTRS:
            ctx.report(
                H5_NOT_FULLY_SCANNED,
                f"root attribute {name} is not a string this scanner can decode",
                loc.at(detail=name),
            )
    for name in _CONFIG_ATTRS:
        for value in attrs.all_values.get(name, []):
            texts = value if isinstance(value, list) else [value]
            for text in texts:
                _analyse(text, name, ctx, loc)
    if attrs.dense:
        _fallback(data, ctx, loc, reason="dense attribute storage not read", dense=True)
    _walk_tree(data, ctx, loc)


def _walk_tree(data: memoryview, ctx: ScanContext, loc: Location) -> None:
    """Datasets stored in other files, virtual datasets and external links anywhere in
    the file: h5py reads them from outside it (see :mod:`._hdf5_tree`)."""
    try:
        limits = ctx.config.limits
        reader, root = _parse_superblock(data, find_superblock(data, limits) or 0, limits)
        from mltrust.scan.formats._hdf5_tree import walk_tree  # (*)

        tree = walk_tree(reader, root, _messages, ctx.config.limits.max_entries)
    except InputError as exc:
        ctx.report(
            H5_NOT_FULLY_SCANNED,
            f"the HDF5 object tree could not be walked ({exc}); datasets stored in or "
            "linked to other files may not have been found",
            loc,
        )
        return
    ctx.facts["hdf5_objects"] = tree.objects
    for path, what in tree.external[:20]:
        ctx.report(
            H5_EXTERNAL_REFERENCE,
            f"{path}: {what}; h5py reads it from outside this file when the model loads",
            loc.at(detail=path),
        )
    if tree.dense_groups:
        ctx.report(
            H5_NOT_FULLY_SCANNED,
            f"{len(tree.dense_groups)} group(s) keep their links in dense storage "
            f"(first: {tree.dense_groups[0]}); links to other files there were not checked",
            loc,
        )


def _analyse(text: str, name: str, ctx: ScanContext, loc: Location) -> None:
    here = loc.at(detail=f"attribute {name}")
    try:
        doc = json.loads(text)
    except RecursionError:
        ctx.report(H5_NOT_FULLY_SCANNED, f"{name} is nested too deeply to analyse", here)
        return
    except ValueError as exc:
        ctx.report(H5_NOT_FULLY_SCANNED, f"{name} is not valid JSON: {exc}", here)
        return
    ctx.facts["keras_config"] = True
    from mltrust.scan.formats.keras import analyze_keras_config  # (*)

    analyze_keras_config(doc, ctx, here)


def _fallback(
    data: memoryview, ctx: ScanContext, loc: Location, *, reason: str, dense: bool = False
) -> None:
    found, missed = _content_fallback(data, ctx, loc)
    # The config was not read where Keras reads it: what the content search found was
    # analysed, and the file is still reported as not fully scanned when it names a Keras
    # config, when some "class_name" key could not be placed in a decodable object, or
    # when the attribute table itself (dense storage) was not read.
    if dense or missed or _model_config_name().search(data):  # type: ignore[call-overload]
        ctx.report(
            H5_NOT_FULLY_SCANNED,
            f"the Keras model_config/training_config was not read from the root group "
            f"({reason}); searched by content: {found} config object(s) analysed, "
            f"{missed} 'class_name' key(s) in no decodable JSON object. Lambda layers and "
            "custom objects may not all have been checked",
            loc,
        )
