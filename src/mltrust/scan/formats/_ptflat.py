"""What a TorchScript/mobile module in flatbuffer form (``PTMF`` at byte 4) names, read from bytes.

The layout is torch's ``mobile_bytecode.fbs`` (``torch::jit::mobile::serialization``): a root
``Module`` table holding ``ivalues`` (every value of the module, functions among them, each an
``IValue`` union), ``object_types``, ``jit_sources`` (the TorchScript source ``torch.jit.load``
compiles), ``extra_files`` and raw ``storage_data``. Both loaders parse *every* entry of
``ivalues`` in order (``FlatbufferLoader::parseModule``), so this reader walks them all too,
reachable from the state object or not, and collects what can run:

* the operators of every ``Function`` (``name``/``overload_name``): the lite interpreter and
  ``CLASS_WITH_SETSTATE`` objects (whose ``__setstate__`` runs at load) run these tables;
* every type string the loader resolves (``ObjectType.type_name``, function
  ``type_annotations``, schema argument types, ``List``/``Dict`` annotations, enum type
  names): a string starting with ``__torch__.torch.classes`` is looked up as a native
  (TorchBind) class, and a ``CUSTOM_CLASS`` object runs that class's native ``__setstate__``;
* the ``jit_sources`` files and the ``extra_files``, as (name, bytes).

No value is followed by index, so shared or cyclic references cost nothing, and a function
table or string shared by many entries is read once; flatbuffer offsets are read with bounds
checks. Every vector element, table field and 16 bytes of text count against one budget
(``Limits.max_entries``), the files against ``Limits.max_archive_members``: exhausting either,
an offset outside the buffer, a length past its end, an object whose type index is past
``object_types`` (the loader reads it unchecked), files whose bytes overlap (torch's writer
never shares them) or an unknown union kind stops or marks the walk, and the caller reports it
(fail closed). The judgement of the names is :mod:`._torchscript`'s, not this module's.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["FlatModule", "read_flat_module"]

# Field offsets (vtable slots) of mobile_bytecode.fbs, as flatc numbers them: 4 + 2 * index.
_MODULE_EXTRA_FILES = 6
_MODULE_IVALUES = 12
_MODULE_OBJECT_TYPES = 18
_MODULE_JIT_SOURCES = 20
_EXTRA_NAME = 4
_EXTRA_CONTENT = 6
_IVALUE_TYPE = 4
_IVALUE_VAL = 6
_OBJTYPE_NAME = 4
_OBJECT_TYPE_INDEX = 4
_OBJTYPE_KIND = 6
_LIST_ANNOTATION = 6
_DICT_ANNOTATION = 8
_ENUM_TYPE_NAME = 4
_FUNC_QN = 4
_FUNC_OPERATORS = 8
_FUNC_TYPE_ANNOTATIONS = 12
_FUNC_SCHEMA = 16
_OP_NAME = 4
_OP_OVERLOAD = 6
_SCHEMA_ARGUMENTS = 4
_SCHEMA_RETURNS = 6
_ARG_TYPE = 6

# IValueUnion kinds.
_KIND_LIST = 7
_KIND_OBJECT = 10
_KIND_DICT = 9
_KIND_ENUM = 15
_KIND_FUNCTION = 16
_KIND_LAST = 16
#: TypeType of an ObjectType whose objects run a native class's ``__setstate__``.
TYPE_CUSTOM_CLASS = 2
_TYPE_KIND_LAST = 4

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U16 = struct.Struct("<H")
#: Bytes of decoded text that cost one entry of the budget.
_TEXT_BYTES_PER_ENTRY = 16
#: Budget entries between two calls of the deadline check.
_TICK_EVERY = 1 << 16


class _Malformed(Exception):
    """The buffer is not a flatbuffer the schema describes (offset out of range...)."""


class _Exhausted(Exception):
    """More vector elements and tables than ``max_entries``."""


@dataclass
class FlatModule:
    """What one flatbuffer module names. Filled as far as the walk got."""

    #: ``(name, overload_name)`` of every operator of every function.
    operators: list[tuple[str, str]] = field(default_factory=list)
    #: Every type string the loader resolves.
    types: list[str] = field(default_factory=list)
    #: Object type names whose kind is ``CUSTOM_CLASS`` (native classes built at load).
    custom_classes: list[str] = field(default_factory=list)
    #: ``(name, content)`` of the TorchScript source files ``torch.jit.load`` compiles.
    sources: list[tuple[str, memoryview]] = field(default_factory=list)
    #: ``(name, content)`` of the extra files.
    extra_files: list[tuple[str, memoryview]] = field(default_factory=list)
    #: Parts that could not be judged (unknown union or type kinds).
    unknown: list[str] = field(default_factory=list)
    #: Why the walk stopped early: the buffer is malformed.
    malformed: str | None = None
    #: Why the walk stopped early: the entry budget is spent.
    exhausted: str | None = None
    #: Number of functions read.
    functions: int = 0


class _Reader:
    def __init__(self, data: memoryview, max_entries: int, tick: Callable[[], None]) -> None:
        self.data = data
        self.size = len(data)
        self.budget = max_entries
        self.tick = tick
        self.next_tick = max_entries - _TICK_EVERY
        self.texts: dict[int, str] = {}

    def charge(self, n: int = 1) -> None:
        self.budget -= n
        if self.budget < 0:
            raise _Exhausted
        if self.budget < self.next_tick:
            self.next_tick = self.budget - _TICK_EVERY
            self.tick()

    def _get(self, st: struct.Struct, pos: int) -> int:
        if pos < 0 or pos + st.size > self.size:
            raise _Malformed(f"read at {pos} outside the {self.size}-byte buffer")
        value: int = st.unpack_from(self.data, pos)[0]
        return value

    def u32(self, pos: int) -> int:
        return self._get(_U32, pos)

    def deref(self, pos: int) -> int:
        """The position a uoffset stored at ``pos`` points to."""
        target = pos + self.u32(pos)
        if target >= self.size:
            raise _Malformed(f"offset at {pos} points past the end of the buffer")
        return target

    def field(self, table: int, slot: int) -> int | None:
        """The position of a table's field, or None when the field is absent."""
        self.charge()
        vtable = table - self._get(_I32, table)
        vsize = self._get(_U16, vtable)
        # As flatbuffers reads a table: a vtable of 0 or 2 bytes is a table with no fields,
        # and the table-size entry is never read (red-team finding: a field past it, or a
        # vtable shorter than 4 bytes, stopped the walk before the operator tables).
        if vsize % 2:
            raise _Malformed(f"vtable at {vtable} has odd size {vsize}")
        if slot + 2 > vsize:
            return None
        rel = self._get(_U16, vtable + slot)
        if rel == 0:
            return None
        if table + rel >= self.size:
            raise _Malformed(f"field {slot} of table at {table} lies outside the buffer")
        return table + rel

    def table(self, table: int, slot: int) -> int | None:
        pos = self.field(table, slot)
        return None if pos is None else self.deref(pos)

    def u32_field(self, table: int, slot: int) -> int:
        pos = self.field(table, slot)
        return 0 if pos is None else self.u32(pos)

    def u8_field(self, table: int, slot: int) -> int:
        pos = self.field(table, slot)
        if pos is None:
            return 0
        if pos >= self.size:
            raise _Malformed(f"field at {pos} outside the buffer")
        return int(self.data[pos])

    def span(self, pos: int) -> tuple[int, int]:
        """``(start, end)`` of the bytes of the string at ``pos``."""
        length = self.u32(pos)
        if length > self.size - pos - 4:
            raise _Malformed(f"string at {pos} of {length} bytes runs past the end")
        return pos + 4, pos + 4 + length

    def text_at(self, pos: int) -> str:
        got = self.texts.get(pos)
        if got is None:
            start, end = self.span(pos)
            self.charge((end - start) // _TEXT_BYTES_PER_ENTRY)
            got = bytes(self.data[start:end]).decode("utf-8", "replace")
            self.texts[pos] = got
        return got

    def text(self, table: int, slot: int) -> str | None:
        pos = self.table(table, slot)
        return None if pos is None else self.text_at(pos)

    def tables(self, table: int, slot: int) -> list[int]:
        """The positions of the tables (or strings) a vector of offsets points to."""
        vec = self.table(table, slot)
        if vec is None:
            return []
        count = self.u32(vec)
        if count > (self.size - vec - 4) // 4:
            raise _Malformed(f"vector at {vec} of {count} entries runs past the end")
        self.charge(count)
        return [self.deref(vec + 4 + 4 * i) for i in range(count)]


def read_flat_module(
    data: memoryview,
    max_entries: int,
    max_files: int,
    tick: Callable[[], None] = lambda: None,
) -> FlatModule:
    """Walk the flatbuffer module in ``data`` (``PTMF`` at byte 4) as far as it is well formed.

    ``tick`` is called every so often (a deadline check may raise from it).
    """
    out = FlatModule()
    reader = _Reader(data, max_entries, tick)
    try:
        _walk(reader, out, max_files)
    except _Malformed as exc:
        out.malformed = str(exc)
    except _Exhausted:
        out.exhausted = (
            f"the module has more tables, vector entries and text than max_entries={max_entries}"
        )
    return out


def _walk(r: _Reader, out: FlatModule, max_files: int) -> None:
    root = r.deref(0)
    values = r.tables(root, _MODULE_IVALUES)
    # The operator tables first: values, functions and operators are tables (torch's verifier
    # allows a million in all) with short names (it loads no operator it cannot find), so a
    # module torch loads cannot spend max_entries before them; strings it can (a vector of
    # ten million type annotations, a long file name), and they come after (red-team
    # finding: such a vector before a function hid its aten::save behind a limit finding).
    functions: set[int] = set()
    kinds = []
    for iv in values:
        kinds.append(r.u8_field(iv, _IVALUE_TYPE))
        if kinds[-1] == _KIND_FUNCTION:
            func = r.table(iv, _IVALUE_VAL)
            if func is not None and func not in functions:
                functions.add(func)
                for op in r.tables(func, _FUNC_OPERATORS):
                    name, overload = r.text(op, _OP_NAME), r.text(op, _OP_OVERLOAD)
                    out.operators.append((name or "", overload or ""))
    out.functions = len(functions)
    files: list[tuple[int, int, str, bool]] = []  # start, end, name, is source
    for is_source, slot in ((True, _MODULE_JIT_SOURCES), (False, _MODULE_EXTRA_FILES)):
        for ef in r.tables(root, slot):
            if len(files) >= max_files:
                out.exhausted = f"the module holds more files than max_archive_members={max_files}"
                break
            name = r.text(ef, _EXTRA_NAME) or ""
            pos = r.table(ef, _EXTRA_CONTENT)
            start, end = (0, 0) if pos is None else r.span(pos)
            files.append((start, end, name, is_source))
    _keep_files(r.data, files, out)
    object_types = r.tables(root, _MODULE_OBJECT_TYPES)
    for i, ot in enumerate(object_types):
        name = r.text(ot, _OBJTYPE_NAME) or ""
        kind = r.u8_field(ot, _OBJTYPE_KIND)
        out.types.append(name)
        if kind == TYPE_CUSTOM_CLASS:
            out.custom_classes.append(name)
        elif kind > _TYPE_KIND_LAST:
            out.unknown.append(f"object type {i} of unknown kind {kind}")
    functions.clear()
    for i, (iv, kind) in enumerate(zip(values, kinds, strict=True)):
        if kind > _KIND_LAST:
            out.unknown.append(f"value {i} of unknown kind {kind}")
            continue
        if kind not in (_KIND_LIST, _KIND_DICT, _KIND_ENUM, _KIND_FUNCTION, _KIND_OBJECT):
            continue
        val = r.table(iv, _IVALUE_VAL)
        if val is None:
            continue
        if kind == _KIND_OBJECT:
            # the loader takes object_types[type_index] unchecked (a read outside the vector)
            index = r.u32_field(val, _OBJECT_TYPE_INDEX)
            if index >= len(object_types):
                raise _Malformed(f"value {i} names object type {index} of {len(object_types)}")
        elif kind == _KIND_FUNCTION:
            _function(r, val, out, functions)
        else:
            slot = {
                _KIND_LIST: _LIST_ANNOTATION,
                _KIND_DICT: _DICT_ANNOTATION,
                _KIND_ENUM: _ENUM_TYPE_NAME,
            }[kind]
            text = r.text(val, slot)
            if text is not None:
                out.types.append(text)


def _keep_files(data: memoryview, files: list[tuple[int, int, str, bool]], out: FlatModule) -> None:
    """The files' contents, each range of bytes once per kind: a file whose bytes are
    another's of its kind is left out (its content is scanned under the other's name), one
    that overlaps another of its kind partly is malformed (the walk goes on: its names are
    still read). Sources and extra files are kept apart, each byte read at most twice: an
    extra file sharing a source's string is still scanned as a file (red-team finding: a
    pickle shared with a source entry nobody compiles was read as source only)."""
    for kind in (True, False):
        seen: set[tuple[int, int]] = set()
        reach = 0
        kept = out.sources if kind else out.extra_files
        for start, end, name, _ in sorted(f for f in files if f[3] == kind):
            if start == end or (start, end) in seen:
                if start == end:
                    kept.append((name, data[0:0]))
                continue
            if start < reach:
                out.unknown.append(f"file {name[:80]!r} shares bytes with another file")
                continue
            seen.add((start, end))
            reach = end
            kept.append((name, data[start:end]))


def _function(r: _Reader, func: int, out: FlatModule, seen: set[int]) -> None:
    if func in seen:  # a table many values point to: the same names
        return
    seen.add(func)
    r.text(func, _FUNC_QN)
    for pos in r.tables(func, _FUNC_TYPE_ANNOTATIONS):
        out.types.append(r.text_at(pos))
    schema = r.table(func, _FUNC_SCHEMA)
    if schema is None:
        return
    for slot in (_SCHEMA_ARGUMENTS, _SCHEMA_RETURNS):
        for arg in r.tables(schema, slot):
            text = r.text(arg, _ARG_TYPE)
            if text is not None:
                out.types.append(text)
