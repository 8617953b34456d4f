"""The legacy (non-zip) PyTorch format: ``torch.save(..., _use_new_zipfile_serialization=False)``.

Layout: five consecutive pickles — the magic number ``0x1950a86a20f9469cfc6c``, the protocol
version (1001), a ``sys_info`` dict, the object pickle (tensors as persistent ids) and the list
of storage keys — then, for each key, an 8-byte little-endian element count followed by the
storage's raw bytes.

Each pickle is analysed in turn with the pickle scanner (``single=True``). The file is
recognised, and the version checked, by the *value* the pickle machine computes for the first
and second pickle, as torch compares values (any encoding of the magic number counts). A reader
without ``peek`` (``torch.load`` of a BytesIO) starts the next pickle after the FRAME holding a
STOP, a buffered file right after the STOP: both readings are walked where they differ.

The storage section is then checked against the keys: element sizes are not recorded in the
section itself, so the scanner searches for a choice of element size (1, 2, 4, 8 or 16 bytes)
per storage that lands exactly on the end of the file. When none does,
the bytes after the longest consistent walk are reported and sniffed as nested content (a
pickle appended after the storages runs when a tool reads it as a pickle).

The zip format is handled by the zip scanner (``*/data.pkl`` is a pickle); the very old
tar-based format is decided here (:func:`scan_legacy_tar`) for the tar scanner.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from mltrust.scan import _archive_rules as R
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext

__all__ = [
    "LegacyTorchScanner",
    "TarMember",
    "TorchFlatbufferScanner",
    "read_storage_keys",
    "scan_legacy_tar",
]

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_VERSION = 1001
_ELEMENT_SIZES = (4, 8, 2, 1, 16)
#: Bytes the magic-number pickle is looked for in. A longer one is not recognised, and the file
#: is then analysed as concatenated pickles (all five are still analysed; only the storage
#: check is lost).
_MAGIC_HEAD = 4096


def _pickled_int(data: memoryview, start: int = 0) -> tuple[int, int] | None:
    """The integer the pickle at ``start`` evaluates to and where it ends, else None.

    torch compares the *value* ``pickle.load`` returns, so the pickle is evaluated by the
    symbolic machine (any opcodes that compute an integer: LONG1, text INT with a NUL, NONE and
    POP around it, memo traffic...), not matched against byte patterns.
    """
    from mltrust.scan._pickle import pickle_value

    got = pickle_value(data, start)
    if got is None or type(got[0]) is not int:
        return None
    return got[0], got[1]


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
        got = _pickled_int(data[:_MAGIC_HEAD])
        return got is not None and got[0] == _MAGIC_NUMBER

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        # Two readings exist. A buffered file (``peek``) resumes each load right after the
        # STOP; a reader without ``peek`` (torch.load of a BytesIO or an unbuffered file)
        # consumes the whole FRAME that holds a STOP, so each of its loads resumes at that
        # frame's end. No reader mixes them: the second reading is walked from the first
        # pickle where the two part, with the pickles before it shared.
        first = self._walk(data, ctx, loc, 0, [], [], follow_frames=False)
        if first is not None:
            pos, bounds, values = first
            self._walk(data, ctx, loc, pos, bounds, values, follow_frames=True)
        self._joblib_view(data, ctx, loc)

    @staticmethod
    def _joblib_view(data: memoryview, ctx: ScanContext, loc: Location) -> None:
        """``joblib.load`` of the same file: it unpickles only the first pickle, but reads the
        raw data of a NumpyArrayWrapper after its BUILD and goes on unpickling after that data
        (pickle.load goes on right after the BUILD). The legacy layout supersedes the pickle
        scanner, so joblib's reading of the first pickle is analysed here (for a real legacy
        file it is the magic number: nothing more)."""
        from mltrust.scan._pickle import scan_pickle_stream

        scan_pickle_stream(data, ctx, loc, start=0, single=True, context="joblib")

    def _walk(
        self,
        data: memoryview,
        ctx: ScanContext,
        loc: Location,
        pos: int,
        bounds: list[tuple[int, int]],
        values: list[object],
        *,
        follow_frames: bool,
    ) -> tuple[int, list[tuple[int, int]], list[object]] | None:
        """Walk one reading from pickle ``len(bounds) + 1`` at ``pos``. Without
        ``follow_frames``, returns where the no-peek reading parts from this one (the
        position, bounds and values it starts with), or None when it never does."""
        from mltrust.scan._pickle import scan_pickle_stream

        parting: tuple[int, list[tuple[int, int]], list[object]] | None = None
        for index in range(len(bounds), 5):
            if pos >= len(data):
                break
            summary = scan_pickle_stream(data, ctx, loc, start=pos, single=True, context="pytorch")
            if not summary.complete or summary.end <= pos:
                ctx.report(
                    R.PT_LEGACY_HEADER,
                    f"pickle {index + 1} of 5 is incomplete; the storages were not checked",
                    loc.at(pos),
                )
                return parting
            after = summary.end
            if summary.frame_end > summary.end:
                if follow_frames:
                    after = summary.frame_end
                elif parting is None:
                    parting = (
                        summary.frame_end,
                        [*bounds, (pos, summary.frame_end)],
                        [*values, summary.result],
                    )
            bounds.append((pos, after))
            values.append(summary.result)
            pos = after
        if len(bounds) < 5:
            ctx.report(
                R.PT_LEGACY_HEADER,
                f"only {len(bounds)} of the 5 pickles of the legacy format are present",
                loc.at(pos),
            )
            return parting
        version = values[1]
        if not isinstance(version, (int, float)) or version != _VERSION:
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
            return parting
        ctx.facts.setdefault("torch_storages", len(keys))
        self._check_storages(data, ctx, loc, keys, keys_end)
        return parting

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
            if len(nxt) > ctx.limits.max_torch_storage_frontier:
                nxt = set(sorted(nxt)[: ctx.limits.max_torch_storage_frontier])
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
# What torch.load does with a file that ``tarfile.open`` reads (``_legacy_load``): it
# extracts the member named ``storages`` (the last member of that exact name, whatever its
# type) to a fresh folder and reads it unbuffered: a pickled count, then per storage a pickled
# ``(key, location, storage_type)`` tuple, an 8-byte element count and the raw elements
# (``element_size(storage_type._dtype)`` bytes each), then a pickled list of storage views. It
# then does the same with ``tensors`` (a pickled count, then per tensor a pickled
# ``(key, storage_id, type)`` tuple and packed sizes, strides and offset) and finally
# unpickles ``tarfile.extractfile("pickle")``. Each step runs before the next can fail, so a
# file with only a ``storages`` member runs every pickle in it; the sys_info member is never
# read. Links are followed as tarfile follows them: ``extract`` of a hard link copies the
# member it names (searched among the members before it) unless a file of that name was already
# extracted, a symbolic link is created as such (it reaches only files extracted before it, or
# files outside the archive); ``extractfile`` of either kind returns its target's data.

#: Element sizes of the storage classes torch's legacy loader accepts (by class name).
_STORAGE_SIZES = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "BFloat16Storage": 2,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QUInt8Storage": 1,
    "QInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
}


class TorchFlatbufferScanner(FormatScanner):
    """TorchScript modules saved as a flatbuffer (``_save_jit_module_to_bytes``, mobile
    ``_use_flatbuffer=True``): read from bytes (:mod:`._ptflat`) and judged as the zip form is.

    ``torch.jit.load`` and ``_load_for_lite_interpreter`` both take a file with ``PTMF`` at
    byte 4 as one, whatever its name, before they look for a zip; ``torch.jit.load`` compiles
    the TorchScript source it carries (``jit_sources``) and the lite interpreter runs its
    functions' operator tables; both build the objects its types name, native classes among
    them. A red-team module whose ``forward`` called ``aten::save`` was "unknown format" (low)
    and passed the gate.

    Each source file gets the checks of a zip's ``code/**.py`` and the operator tables and
    type strings the decisions on ``bytecode.pkl`` (:mod:`._torchscript`), reported by the
    same function; extra files are scanned as nested content. A buffer that is not well formed
    (offsets or lengths outside it, unknown value or type kinds) is MLT-PT-006 and one with
    more tables and vector entries than ``max_entries`` MLT-GEN-003: what was read before is
    still judged. Tensor storages are raw bytes the loaders only copy, and are not scanned.
    """

    name: ClassVar[str] = "torchscript-fb"
    description: ClassVar[str] = (
        "TorchScript/mobile modules in flatbuffer form (PTMF): sources, operators, native classes"
    )
    priority: ClassVar[int] = 40
    suffixes: ClassVar[tuple[str, ...]] = (".ff",)
    can_execute_code: ClassVar[bool] = True

    def sniff(self, data: memoryview, name: str) -> bool:
        return len(data) >= 8 and bytes(data[4:8]) == b"PTMF"

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        from mltrust.scan import _rules
        from mltrust.scan.formats._ptflat import read_flat_module
        from mltrust.scan.formats._torchscript import analyze_tables
        from mltrust.scan.formats.zip import check_torchscript_source, report_torchscript

        module = read_flat_module(
            data,
            int(ctx.limits.max_entries),
            int(ctx.limits.max_archive_members),
            ctx.check_deadline,
        )
        for name, content in module.sources:
            check_torchscript_source(content, ctx, loc.member(f"jit_sources/{name}"))
        # Each distinct name judged once: a vector may point a million times at one long
        # string, each pointer one budget entry (red-team finding: judging every pointer
        # read the string a million times, past the time limit).
        report = analyze_tables(
            dict.fromkeys(name for name, _ in module.operators),
            dict.fromkeys(module.types),
            dict.fromkeys(module.custom_classes),
        )
        report.unproven.extend(module.unknown)
        report_torchscript(report, ctx, loc)
        for name, content in module.extra_files:
            ctx.scan_nested(content, loc.member(f"extra_files/{name}"), posixpath.basename(name))
        if module.malformed is not None:
            ctx.report(
                R.PT_SCRIPT_UNPROVEN,
                f"TorchScript flatbuffer module is malformed ({module.malformed}); the rest "
                "was not analysed",
                loc,
            )
        if module.exhausted is not None:
            ctx.report(_rules.LIMIT_EXHAUSTED, module.exhausted + "; the rest not analysed", loc)


@dataclass(frozen=True)
class TarMember:
    """One member of a tar file as ``tarfile`` lists it, for :func:`scan_legacy_tar`."""

    name: str
    #: "file" (data: regular or unknown type), "hard", "sym" or "other" (no data).
    kind: str
    link: str
    #: The bytes ``extractfile`` returns for a "file" (None when tarfile cannot read them).
    read: Callable[[], memoryview | bytes | None]


def _last(members: Sequence[TarMember], name: str, before: int | None = None) -> int | None:
    """``tarfile._getmember``: the last member called ``name`` (normalised names when
    ``before`` is given or for link targets), optionally among the first ``before``."""
    end = len(members) if before is None else before
    for i in range(end - 1, -1, -1):
        if members[i].name == name:
            return i
    return None


def _find_link_target(members: Sequence[TarMember], index: int) -> int | None:
    """``TarFile._find_link_target``: symbolic links relative to their folder, searched in
    the whole archive; hard links searched among the members before them."""
    m = members[index]
    if m.kind == "sym":
        target = "/".join(x for x in (posixpath.dirname(m.name), m.link) if x)
        end = len(members)
    else:
        target, end = m.link, index
    want = posixpath.normpath(target) if target else "."
    for i in range(end - 1, -1, -1):
        if posixpath.normpath(members[i].name) == want:
            return i
    return None


def _extractfile(
    members: Sequence[TarMember], index: int, hops: int
) -> memoryview | bytes | str | None:
    """What ``extractfile`` returns: the data, None (no file object) or why it fails (after
    ``hops`` links, max_torch_tar_link_hops: tarfile recurses until it fails)."""
    for _ in range(hops):
        m = members[index]
        if m.kind == "file":
            return m.read()
        if m.kind == "other":
            return None
        target = _find_link_target(members, index)
        if target is None:
            return f"its link target {m.link!r} is not in the archive"
        index = target
    return "its links do not end (tarfile recurses until it fails)"


def _outside(name: str, link: str, symbolic: bool) -> bool:
    base = posixpath.dirname(name) if symbolic else ""
    joined = posixpath.normpath(posixpath.join(base, link)) if link else "."
    return link.startswith("/") or joined == ".." or joined.startswith("../")


def _extracted(
    members: Sequence[TarMember], index: int, done: dict[str, memoryview | bytes], hops: int
) -> memoryview | bytes | str | None:
    """What torch reads from the file ``tar.extract`` writes for ``members[index]``: the data,
    None (nothing readable: torch fails before unpickling) or a reason it cannot be analysed."""
    m = members[index]
    if m.kind == "file":
        return m.read()
    if m.kind == "other":
        return None
    if _outside(m.name, m.link, m.kind == "sym"):
        return (
            f"a {'symbolic' if m.kind == 'sym' else 'hard'} link to {m.link!r}, outside the archive"
        )
    # Already-extracted files: a link reaches them by their path in the folder.
    base = posixpath.dirname(m.name) if m.kind == "sym" else ""
    path = posixpath.normpath(posixpath.join(base, m.link)) if m.link else "."
    if path in done:
        return done[path]
    if m.kind == "sym":
        return None  # a dangling link: open() fails
    got = _extractfile(members, index, hops)  # tarfile copies the member the hard link names
    return got


def scan_legacy_tar(members: Sequence[TarMember], ctx: ScanContext, loc: Location) -> None:
    """Analyse a tar file the way ``torch.load`` reads it (see the section comment)."""
    storages = _last(members, "storages")
    if storages is None:
        # torch fails on the missing member before it unpickles anything.
        return
    ctx.facts.setdefault("torch_legacy_tar", True)
    done: dict[str, memoryview | bytes] = {}
    for which in ("storages", "tensors"):
        index = _last(members, which)
        if index is None:
            return
        body = _extracted(members, index, done, ctx.limits.max_torch_tar_link_hops)
        if isinstance(body, str):
            ctx.report(
                R.PT_LEGACY_HEADER,
                f"{which} is {body}: torch would read it; not analysed",
                loc.member(which),
            )
            return
        if body is None:
            return  # torch fails here: nothing more runs
        done[which] = body
        view = body if isinstance(body, memoryview) else memoryview(body)
        scan_legacy_tar_member(view, which, ctx, loc.member(which))
    index = _last(members, "pickle")
    if index is None:
        return
    # A regular member is also sniffed and analysed with the others, as any reader may read
    # it; here it is analysed as torch reads it (pickle.Unpickler: no joblib array reads).
    body = _extractfile(members, index, ctx.limits.max_torch_tar_link_hops)
    if isinstance(body, str):
        ctx.report(
            R.PT_LEGACY_HEADER,
            f"the pickle member cannot be followed: {body}; torch's load would fail there",
            loc.member("pickle"),
        )
        return
    if body:
        from mltrust.scan._pickle import scan_pickle_stream

        view = body if isinstance(body, memoryview) else memoryview(body)
        scan_pickle_stream(view, ctx, loc.member("pickle"), single=True, context="pytorch")


def _one_pickle(
    data: memoryview, ctx: ScanContext, loc: Location, pos: int
) -> tuple[set[int], object] | None:
    """Analyse the pickle at ``pos``; return where the next read starts (after its STOP, or
    after the frame that holds it: torch reads these members unbuffered) and its value. None
    when it does not parse to a STOP."""
    from mltrust.scan._pickle import scan_pickle_stream
    from mltrust.scan.formats._pickle_head import Reach, simulate

    if simulate(data, pos, max_ops=4096)[0] is Reach.NOTHING:
        return None  # the unpickler fails there before anything can run
    summary = scan_pickle_stream(data, ctx, loc, start=pos, single=True, context="pytorch")
    if not summary.complete or summary.end <= pos:
        return None
    return {summary.end, max(summary.end, summary.frame_end)}, summary.result


def scan_legacy_tar_member(data: memoryview, which: str, ctx: ScanContext, loc: Location) -> None:
    """Analyse every pickle of the ``storages`` or ``tensors`` member of a legacy tar file.

    What cannot be followed the way torch reads it is reported (medium): torch runs every
    pickle it reaches before failing, and the rest of the member was not analysed.
    """
    first = _one_pickle(data, ctx, loc, 0) if len(data) else None
    count = first[1] if first is not None else None
    if first is None or type(count) is not int or count < 0:
        ctx.report(R.PT_LEGACY_HEADER, f"{which}: the count pickle is not an integer", loc)
        return
    limit = int(ctx.limits.max_entries)
    if count > limit:
        ctx.report(R.PT_STORAGE, f"{which}: {count} entries exceed max_entries", loc)
        return
    frontier = first[0]
    for index in range(count):
        ctx.check_deadline()
        if len(frontier) > ctx.limits.max_torch_storage_frontier:
            _frontier_exhausted(ctx, loc, which, len(frontier))
            return
        nxt: set[int] = set()
        for pos in sorted(frontier):
            got = _one_pickle(data, ctx, loc, pos)
            if got is None:
                continue
            for after in got[0]:
                nxt |= _skip_raw(data, after, which, got[1])
        if not nxt:
            ctx.report(
                R.PT_STORAGE,
                f"{which}: entry {index + 1} of {count} cannot be followed; the rest of the "
                "member was not checked",
                loc,
            )
            return
        frontier = nxt
    # In ``storages``, the pickled storage views follow the last storage. Every position it
    # may start at is analysed (the element size is not always known): one that parses does
    # not stand for another, which torch may be the one to read.
    if which == "storages":
        if len(frontier) > ctx.limits.max_torch_storage_frontier:
            _frontier_exhausted(ctx, loc, which, len(frontier))
            return
        parsed = [_one_pickle(data, ctx, loc, pos) is not None for pos in sorted(frontier)]
        if not any(parsed):
            ctx.report(
                R.PT_STORAGE, "storages: the storage-views pickle is missing or malformed", loc
            )


def _frontier_exhausted(ctx: ScanContext, loc: Location, which: str, count: int) -> None:
    from mltrust.scan import _rules as G

    ctx.report(
        G.LIMIT_EXHAUSTED,
        f"{which}: {count} candidate positions for the next pickle (element sizes unknown), "
        f"more than "
        f"{ctx.limits.max_torch_storage_frontier}; the rest of the member was not analysed",
        loc,
    )


def _element_sizes(args: object) -> tuple[int, ...]:
    """The element size(s) a storage entry's ``(key, location, storage_type)`` selects."""
    from mltrust.scan._pickle._values import Global

    if isinstance(args, tuple) and len(args) == 3 and isinstance(args[2], Global):
        size = _STORAGE_SIZES.get(args[2].name)
        if size is not None and args[2].module in ("torch", "torch.cuda"):
            return (size,)
    return _ELEMENT_SIZES


def _skip_raw(data: memoryview, pos: int, which: str, args: object) -> set[int]:
    """Positions after the raw bytes that follow an entry's pickle."""
    size = len(data)
    if which == "storages":
        if pos + 8 > size:
            return set()
        count = int.from_bytes(data[pos : pos + 8], "little", signed=True)
        if count < 0:
            return set()
        return {e for w in _element_sizes(args) if (e := pos + 8 + count * w) <= size}
    if pos + 8 > size:
        return set()
    ndim = int.from_bytes(data[pos : pos + 4], "little", signed=True)
    end = pos + 8 + 16 * ndim + 8
    return {end} if 0 <= ndim <= 64 and end <= size else set()
