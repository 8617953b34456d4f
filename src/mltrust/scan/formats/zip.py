"""Zip archives, read the way PyTorch's reader (miniz) and zipfile read them: by the central
directory.

The End Of Central Directory record (and its zip64 locator and record), the central directory
and every local header are parsed here with :mod:`struct`; :mod:`zipfile` plays no part in any
decision. Oddities that readers tolerate are tolerated for reading and reported as findings:
bad CRCs, unusual flag bits, encrypted members (not scannable), local/central name mismatches,
duplicate names, overlapping members, path traversal, a comment, bytes before the first member
(polyglots), bytes no member accounts for, and local entries missing from the central directory.

Every reader's view is scanned. PyTorch's reader (miniz) reads the central directory at the
offset the end record gives and the zip64 record the locator points at; Python's zipfile
(numpy, Keras, joblib) reads the zip64 record just before the locator and the directory just
before its end record, shifting every member offset by the difference (its allowance for
prepended data). Both readings are made; when they list different members, the members of both
are scanned and the disagreement is reported (MLT-ARC-018). End records are searched for as far
from the end as either reader searches, and other end records found there are read and scanned
too.

Every member is sniffed by content through :meth:`ScanContext.scan_nested`. A name adds checks,
never removes them: ``code/**.py`` is checked as TorchScript source, ``data.pkl`` unpickled as
PyTorch does, and both are sniffed and scanned as whatever their bytes are as well, since
zipfile-based loaders ignore what the name says. STORED members are zero-copy slices of the
file; compressed members are decoded into bounded buffers
(:func:`mltrust.scan.formats.compressed.inflate`).

PyTorch checkpoints are zips too: ``<top>/data.pkl`` (and ``constants.pkl``) are pickles and are
scanned as such by sniffing; ``<top>/data/<n>`` members are raw tensor storages (passed with
``raw_data_ok``); the small ``version``/``byteorder``/``serialization_id`` records are checked in
place; TorchScript ``code/**.py`` source is checked for calls into Python internals, the OS or
processes, and for the operators and native classes it names (:mod:`._torchscript`: file and
network operators, custom operator libraries).

Polyglot prefix: bytes before the first local header are reported (MLT-ARC-008) and sniffed
nested *only if* no other scanner already recognised the whole file from offset 0 — a pickle
followed by a zip is scanned once, by the pickle scanner that the engine runs on the same bytes,
instead of twice.

CRC policy. A CRC mismatch never stops a member from being scanned (content is sniffed and scanned
whatever its checksum, as PyTorch's reader loads it), so the CRC is an integrity signal, not a
gate. Every member that is not a raw tensor storage — pickles, TorchScript code, configs, nested
archives, anything else — is verified in full. Raw storages (``<top>/data/<n>`` in both headers;
bytes that are never executed) are verified in full, in central-directory order, up to
``max_zip_raw_crc_bytes`` (256 MiB) per archive; storages beyond that budget are not CRC-checked
and their count and size are recorded in the facts (``zip_crc_unverified_*``). The choice is
deterministic (the same file gives the same findings every run) and keeps a 1 GiB checkpoint above
1 GB/s on two loaded cores, where verifying every storage byte measured 0.6 GB/s. Verification runs
on two worker threads (zlib.crc32 releases the GIL) while the main thread sniffs and scans members;
a single member of 128 MiB or more is split into 16 MiB chunks checked on both threads and combined
with the CRC-32 combination algebra. The pages of each chunk and of each scanned member are
released from this process with ``madvise(MADV_DONTNEED)`` (read-only file mapping: the page cache
keeps them), so resident memory stays bounded however large the checkpoint.
"""

from __future__ import annotations

import mmap
import posixpath
import re
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from mltrust._lazy import lazy_pattern
from mltrust.errors import InputError
from mltrust.scan import _archive_rules as R
from mltrust.scan.formats.compressed import new_decoder
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext
    from mltrust.scan.formats._torchscript import ScriptReport
    from mltrust.scan.formats.compressed import Inflated

__all__ = [
    "ZipEntry",
    "ZipScanner",
    "check_torchscript_source",
    "is_traversal",
    "parse_central_directory",
    "release_pages",
    "report_torchscript",
]

_EOCD = b"PK\x05\x06"
_EOCD64 = b"PK\x06\x06"
_LOC64 = b"PK\x06\x07"
_CEN = b"PK\x01\x02"
_LOC = b"PK\x03\x04"
_EOCD_FMT = struct.Struct("<4sHHHHIIH")
_LOC64_FMT = struct.Struct("<4sIQI")
_EOCD64_FMT = struct.Struct("<4sQHHIIQQQQ")
_CEN_FMT = struct.Struct("<4sHHHHHHIIIHHHHHII")
_LOC_FMT = struct.Struct("<4sHHHHHIIIHH")
#: How far from the end readers look for the end record. zipfile reads the last 64 KiB + 22
#: bytes; miniz (PyTorch) reads 4 KiB blocks backwards (3 bytes of overlap) and gives up after
#: the block that reaches 65,557 bytes from the end: 4096 + 16 * 4093 bytes. The wider is searched.
_SEARCH_WINDOW = max((1 << 16) + 22, 4096 + 16 * 4093)
#: Flag bits ordinary writers set: compression options (1, 2), data descriptor (3), UTF-8 (11).
_ORDINARY_FLAGS = 0b0000_1000_0000_1110
_ENCRYPTED = 0x0001 | 0x0040
_CRC_CHUNK = 16 << 20
_PARALLEL_MIN = 128 << 20


# PyTorch's reader (miniz) finds records by name case-insensitively: so do these patterns.
_raw_storage = lazy_pattern(r"^[^/]+/data/\d+$")


_torch_pickle = lazy_pattern(
    r"^[^/]+/(?:data|constants)\.pkl$|^[^/]+/code/.*\.debug_pkl$", re.IGNORECASE
)


_torch_meta = lazy_pattern(
    r"^[^/]+/(?:\.data/)?(?:version|byteorder|serialization_id|\.format_version|"
    r"\.storage_alignment)$",
    re.IGNORECASE,
)


_torch_meta_value = lazy_pattern(rb"^[A-Za-z0-9_.\-]{0,40}\s*$")


_torchscript_code = lazy_pattern(r"^[^/]+/code/.*\.py$")


#: A mobile (lite interpreter) module's operator tables.
_torch_bytecode = lazy_pattern(r"^[^/]+/bytecode\.pkl$", re.IGNORECASE)


_dangerous_code = lazy_pattern(
    r"__import__|\bimportlib\b|\bos\s*\.|\bsubprocess\b|\bbuiltins\b|__builtins__|"
    r"\beval\s*\(|\bexec\s*\(|\bcompile\s*\(|\bopen\s*\(|\bsocket\b|\bctypes\b|\bsys\s*\.|"
    r"__globals__|__subclasses__"
)


#: String literals are blanked before matching: TorchScript raises "builtins.ValueError" by name.
_string_literal = lazy_pattern(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")


def is_traversal(name: str) -> bool:
    """Whether an archive member name is absolute or climbs out of its folder."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return True
    return ".." in norm.split("/")


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One central-directory entry, with the sizes and offsets zip64 extras resolve."""

    index: int
    name: str
    flags: int
    method: int
    crc: int
    csize: int
    usize: int
    offset: int
    cen_offset: int


def _find_eocd(data: memoryview) -> int:
    """The end record PyTorch's reader (miniz) picks: the last signature with a whole record
    after it, within :data:`_SEARCH_WINDOW` bytes of the end. ``zipfile`` picks the same one or
    none (it gives up when the last signature in its shorter window is cut short)."""
    n = len(data)
    if n >= _EOCD_FMT.size and data[n - 22 : n - 18] == _EOCD:
        return n - 22  # the usual case: no archive comment
    found = _eocd_candidates(data)
    return found[0] if found else -1


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    i = 0
    while i + 4 <= len(extra):
        hid, size = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4 : i + 4 + size]
        if hid == 0x0001:
            j = 0
            if usize == 0xFFFFFFFF and j + 8 <= len(body):
                usize = struct.unpack_from("<Q", body, j)[0]
                j += 8
            if csize == 0xFFFFFFFF and j + 8 <= len(body):
                csize = struct.unpack_from("<Q", body, j)[0]
                j += 8
            if offset == 0xFFFFFFFF and j + 8 <= len(body):
                offset = struct.unpack_from("<Q", body, j)[0]
            break
        i += 4 + size
    return usize, csize, offset


def _inside_tar_member(data: memoryview, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` lies within the data of one regular member of ``data`` read
    as a plain tar (ustar/GNU headers walked as ``tarfile`` walks them; at most 100,000 headers
    and only up to ``start``). False on anything unexpected: the caller then scans the zip."""
    pos = 0
    n = len(data)
    for _ in range(100_000):
        if pos + 512 > n or pos > start:
            return False
        header = bytes(data[pos : pos + 512])
        if header == bytes(512) or header[257:262] != b"ustar":
            return False
        field = header[124:136]
        if field[0] & 0x80:  # GNU base-256
            size = int.from_bytes(field[1:], "big")
        else:
            try:
                size = int(field.rstrip(b" \0") or b"0", 8)
            except ValueError:
                return False
        body = pos + 512
        kind = header[156:157]
        if kind in (b"0", b"\0") and body <= start and end <= body + size:
            return True
        if size and kind not in (b"0", b"\0", b"x", b"g", b"L", b"K"):
            return False  # data after a header tarfile reads differently: no shortcut
        pos = body + -(-size // 512) * 512
    return False


# never compared or printed: no generated == or repr
@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _View:
    """Another reading of the same end record: a central directory that a real reader would
    read where the one scanned first is not (see :func:`parse_central_directory`)."""

    reader: str
    cd_start: int
    entries: list[ZipEntry]


@dataclass(eq=False, repr=False)  # state, never compared or printed: no generated == or repr
class _Directory:
    """A central directory as one reader reads it, and how other readers would differ."""

    entries: list[ZipEntry]
    cd_start: int
    cd_end: int
    eocd: int
    eocd_end: int
    declared: int
    delta: int
    comment: bytes
    #: Offset of the end record the directory size was measured from (zip64 record or EOCD).
    record: int
    #: Ways real readers would read the end records differently (empty when they agree).
    disagreements: list[str]
    #: Central directories other readers read from the same end record (empty when they agree).
    others: list[_View]
    #: Who reads ``entries`` this way (PyTorch's reader, or zipfile when PyTorch's finds none).
    reader: str


def _eocd_candidates(data: memoryview) -> list[int]:
    """Every end-of-central-directory signature in the tail a reader searches, last first."""
    n = len(data)
    start = max(0, n - _SEARCH_WINDOW)
    tail = bytes(data[start:])
    out: list[int] = []
    pos = len(tail)
    while True:
        pos = tail.rfind(_EOCD, 0, pos)
        if pos < 0:
            return out
        if pos + _EOCD_FMT.size <= len(tail):
            out.append(start + pos)


# never compared or printed: no generated == or repr
@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Reading:
    """Where one reader looks for the central directory: (start, size, offset shift, count)."""

    reader: str
    start: int
    size: int
    delta: int
    declared: int
    record: int


def _zip64_record(data: memoryview, pos: int) -> tuple[int, int, int] | None:
    if 0 <= pos <= len(data) - _EOCD64_FMT.size and data[pos : pos + 4] == _EOCD64:
        fields = _EOCD64_FMT.unpack_from(data, pos)
        return fields[7], fields[8], fields[9]
    return None


def _readings(data: memoryview, eocd: int, disagreements: list[str]) -> list[_Reading]:
    """How PyTorch's reader (miniz) and zipfile locate the directory from the end record at
    ``eocd``, in that order; reasons they differ are appended to ``disagreements``.

    miniz reads the zip64 record the locator points at and the directory at the recorded
    offset. zipfile reads the zip64 record just before the locator and the directory right
    before its end record (``end record - directory size``): when that is not the recorded
    offset it shifts every member offset by the difference (its allowance for data prepended
    to the archive).
    """
    (_, _, _, _, n_total, cd_size, cd_offset, _) = _EOCD_FMT.unpack_from(data, eocd)
    miniz = (n_total, cd_size, cd_offset, eocd)
    pyzip = (n_total, cd_size, cd_offset, eocd)
    needs64 = n_total == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF
    if eocd >= 20:
        sig, _, rec_off, _ = _LOC64_FMT.unpack_from(data, eocd - 20)
        if sig == _LOC64:
            before = eocd - 20 - _EOCD64_FMT.size
            pointed = _zip64_record(data, rec_off)
            previous = _zip64_record(data, before)
            if pointed is not None:
                miniz = (*pointed, rec_off)
            if previous is not None:
                pyzip = (*previous, before)
            if pointed is None and previous is None:
                if needs64:
                    raise InputError(
                        "zip64 locator points at no zip64 end-of-central-directory record"
                    )
            elif (pointed is None or previous is None) and rec_off != before:
                disagreements.append(
                    "the zip64 locator points at a record that is not the one zipfile reads"
                )
            elif pointed != previous:
                disagreements.append("two different zip64 end records")
            first = pointed if pointed is not None else previous
            if first is not None and not needs64 and first != (n_total, cd_size, cd_offset):
                disagreements.append("the zip64 end record contradicts the end record it extends")
    out = [_Reading("PyTorch's reader", miniz[2], miniz[1], 0, miniz[0], miniz[3])]
    start = pyzip[3] - pyzip[1]
    out.append(
        _Reading(
            "zipfile (numpy, Keras, joblib)", start, pyzip[1], start - pyzip[2], pyzip[0], pyzip[3]
        )
    )
    return out


def _plausible(data: memoryview, r: _Reading) -> bool:
    if r.size == 0:
        return 0 <= r.start <= len(data)
    return 0 <= r.start <= len(data) - 4 and data[r.start : r.start + 4] == _CEN


def _read_entries(data: memoryview, r: _Reading, max_members: int) -> list[ZipEntry]:
    entries: list[ZipEntry] = []
    pos = r.start
    end = r.start + r.size
    while pos < end and len(entries) < max_members:
        if pos + _CEN_FMT.size > len(data) or data[pos : pos + 4] != _CEN:
            if not entries and r.declared:
                raise InputError(f"zip central directory entry expected at offset {pos}")
            break
        f = _CEN_FMT.unpack_from(data, pos)
        flags, method, crc, csize, usize = f[3], f[4], f[7], f[8], f[9]
        nlen, xlen, clen2, offset = f[10], f[11], f[12], f[16]
        raw_name = bytes(data[pos + 46 : pos + 46 + nlen])
        extra = bytes(data[pos + 46 + nlen : pos + 46 + nlen + xlen])
        usize, csize, offset = _zip64_extra(extra, usize, csize, offset)
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        entries.append(
            ZipEntry(len(entries), name, flags, method, crc, csize, usize, offset + r.delta, pos)
        )
        pos += 46 + nlen + xlen + clen2
    return entries


def parse_central_directory(
    data: memoryview, max_members: int, eocd: int | None = None
) -> _Directory:
    """Parse the EOCD (zip64 too) and up to ``max_members`` central-directory entries.

    ``eocd`` picks an end record (default: the last one, as readers do). Raises
    :class:`InputError` when there is no usable directory. The directory PyTorch's reader
    reads comes first when there is one, else zipfile's; where zipfile reads another directory
    too, its entries are in ``_Directory.others``. Where real readers would read the end
    records differently, the reasons are in ``_Directory.disagreements``.
    """
    if eocd is None:
        eocd = _find_eocd(data)
    if eocd < 0:
        raise InputError("zip end-of-central-directory record not found")
    clen = _EOCD_FMT.unpack_from(data, eocd)[7]
    comment = bytes(data[eocd + 22 : eocd + 22 + clen])
    eocd_end = eocd + 22 + len(comment)
    disagreements: list[str] = []
    readings = _readings(data, eocd, disagreements)
    usable = [r for r in readings if _plausible(data, r)]
    if not usable:
        # Nobody finds a directory: fail as the last reader (zipfile) fails.
        last = readings[-1]
        if last.start < 0:
            raise InputError("zip central directory size exceeds the file")
        _read_entries(data, last, max_members)  # raises when members were declared
        usable = [last]
    first = usable[0]
    entries = _read_entries(data, first, max_members)
    others: list[_View] = []
    for r in usable[1:]:
        if (r.start, r.size, r.delta) == (first.start, first.size, first.delta):
            continue
        try:
            view = _read_entries(data, r, max_members)
        except InputError:
            continue
        others.append(_View(r.reader, r.start, view))
    return _Directory(
        entries,
        first.start,
        first.start + first.size,
        eocd,
        eocd_end,
        first.declared,
        first.delta,
        comment,
        first.record,
        disagreements,
        others,
        first.reader,
    )


def _entry_key(e: ZipEntry) -> tuple[str, int, int, int, int, int]:
    """What makes two directory entries the same member to scan (not their position)."""
    return (e.name, e.offset, e.csize, e.usize, e.method, e.flags)


def release_pages(view: memoryview, start: int, end: int) -> None:
    """Drop the pages of ``view[start:end]`` from this process when ``view`` maps a whole file.

    Only for read-only file mappings: the page cache keeps the data, resident memory shrinks.
    """
    obj = view.obj
    if not isinstance(obj, mmap.mmap) or len(view) != len(obj) or not hasattr(obj, "madvise"):
        return
    page = mmap.PAGESIZE
    lo = -(-start // page) * page
    hi = (end // page) * page
    if hi > lo:
        try:
            obj.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        except (OSError, ValueError):
            return


def _crc_chunk(view: memoryview, start: int, end: int) -> int:
    value = zlib.crc32(view[start:end])
    release_pages(view, start, end)
    return value


def _combine_crcs(parts: list[tuple[int, int]]) -> int:
    """CRC-32 of a concatenation from per-part (crc, length), via the zlib combine algebra."""
    crc = 0
    for part_crc, length in parts:
        crc = _crc32_combine(crc, part_crc, length)
    return crc


def _gf2_times(mat: list[int], vec: int) -> int:
    total = 0
    i = 0
    while vec:
        if vec & 1:
            total ^= mat[i]
        vec >>= 1
        i += 1
    return total


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def _crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]
    even = _gf2_square(odd)
    odd = _gf2_square(even)
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def stored_crc(view: memoryview, start: int, end: int, pool: ThreadPoolExecutor | None) -> int:
    """CRC-32 of ``view[start:end]``: chunked, on ``pool`` when large, pages released."""
    size = end - start
    if size < _PARALLEL_MIN or pool is None:
        crc = 0
        for lo in range(start, end, _CRC_CHUNK):
            hi = min(end, lo + _CRC_CHUNK)
            crc = zlib.crc32(view[lo:hi], crc)
            release_pages(view, lo, hi)
        return crc
    bounds = [(lo, min(end, lo + _CRC_CHUNK)) for lo in range(start, end, _CRC_CHUNK)]
    futures = [pool.submit(_crc_chunk, view, lo, hi) for lo, hi in bounds]
    parts = [(fut.result(), hi - lo) for fut, (lo, hi) in zip(futures, bounds, strict=True)]
    return _combine_crcs(parts)


def _count_fact(ctx: ScanContext, key: str, amount: int) -> None:
    value = ctx.facts.get(key, 0)
    ctx.facts[key] = (value if isinstance(value, int) else 0) + amount


def _check_crc(ctx: ScanContext, mloc: Location, crc: int, recorded: int) -> None:
    if crc != recorded:
        ctx.report(
            R.ARC_BAD_CRC,
            f"CRC-32 0x{crc:08x} does not match the recorded 0x{recorded:08x}",
            mloc,
        )


class ZipScanner(FormatScanner):
    """Zip archives (PyTorch checkpoints, .npz, .keras...), every member sniffed by content."""

    name: ClassVar[str] = "zip"
    description: ClassVar[str] = (
        "zip archives read by the central directory like PyTorch's reader (PyTorch zip "
        "checkpoints, TorchScript, .npz): structure checks, bounded decompression, every "
        "member sniffed by content"
    )
    priority: ClassVar[int] = 60
    suffixes: ClassVar[tuple[str, ...]] = (".zip", ".pt", ".pth", ".npz", ".mar", ".ckpt")
    can_execute_code: ClassVar[bool] = True

    def sniff(self, data: memoryview, name: str) -> bool:
        if len(data) < 22:
            return False
        head = bytes(data[:4])
        if head == _LOC:
            return True
        if head == _EOCD and len(data) >= 22:
            return True
        # A zip further in: a polyglot (pickle + zip, tar + zip) or a self-extracting prefix.
        # zipfile (Keras, numpy) opens any file whose end record it finds, whatever comes first,
        # so this reading is scanned too, beside the tar or pickle scanner's reading of the file.
        if _find_eocd(data) < 0:
            return False
        try:
            directory = parse_central_directory(data, 1)
        except (InputError, struct.error):
            return False
        if not directory.entries and not any(v.entries for v in directory.others):
            return False
        # A tar whose regular member is this whole zip (a checkpoint archived with tar): the
        # tar scanner scans that member, and zipfile reading the tar reads the same bytes, so
        # the whole-file reading adds nothing but noise. Any other layout is scanned as a zip.
        first = min((e.offset for e in directory.entries), default=directory.cd_start)
        return not _inside_tar_member(data, min(first, directory.cd_start), directory.eocd_end)

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        limits = ctx.limits
        try:
            directory = parse_central_directory(data, int(limits.max_archive_members))
        except InputError as exc:
            if bytes(data[:4]) != _LOC:
                raise
            # No usable central directory (truncated, or a streaming-only zip): PyTorch cannot
            # load it, streaming readers can; read the members from their local headers.
            ctx.report(
                R.ARC_TRUNCATED,
                f"{exc}; members were read from their local headers instead",
                loc,
            )
            self._scan_local_entries(data, 0, len(data), ctx, loc)
            return
        entries = directory.entries
        ctx.facts.setdefault("zip_members", len(entries))
        if directory.declared > len(entries) and len(entries) >= limits.max_archive_members:
            ctx.report(
                R.ARC_MEMBER_COUNT,
                f"archive declares {directory.declared} members; only the first "
                f"{len(entries)} (max_archive_members) were scanned",
                loc,
            )
        elif directory.declared != len(entries) and directory.declared != 0xFFFF:
            ctx.report(
                R.ARC_HIDDEN_DATA,
                f"end record declares {directory.declared} members, the central directory "
                f"holds {len(entries)}",
                loc.at(directory.eocd),
            )
        self._check_comment_and_tail(data, ctx, loc, directory)
        spans = self._check_names_and_spans(data, ctx, loc, entries)
        # What other readers see: members of their directories that the first one lacks.
        scanned = {_entry_key(e) for e in entries}
        extra: list[tuple[list[ZipEntry], dict[int, tuple[int, int, str]]]] = []
        for view in self._check_readers_agree(data, ctx, loc, directory, spans):
            fresh = [e for e in view if _entry_key(e) not in scanned]
            scanned.update(_entry_key(e) for e in fresh)
            if fresh:
                extra.append((fresh, self._check_names_and_spans(data, ctx, loc, fresh)))
        covered = [
            (e.offset, sp[e.index][1]) for fresh, sp in extra for e in fresh if e.index in sp
        ]
        self._check_prefix_and_gaps(data, ctx, loc, directory, spans, covered)
        pool: ThreadPoolExecutor | None = None
        if len(data) >= _PARALLEL_MIN:
            # Imported here: threads are only for large archives (start-up cost otherwise).
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=2)
        pending: list[tuple[Future[int], ZipEntry]] = []
        budget = [ctx.limits.max_zip_raw_crc_bytes]
        where = {_entry_key(e): spans.get(e.index) for e in entries}
        try:
            for view, view_spans in [(entries, spans), *extra]:
                for entry in view:
                    ctx.check_deadline()
                    span = view_spans.get(entry.index)
                    where[_entry_key(entry)] = span
                    self._scan_member(data, ctx, loc, entry, span, pool, pending, budget)
            for future, entry in pending:
                _check_crc(ctx, loc.member(entry.name), future.result(), entry.crc)
                span = where.get(_entry_key(entry))
                if span is not None:
                    release_pages(data, span[0], span[1])
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    # -- structure ---------------------------------------------------------------------------

    @staticmethod
    def _check_readers_agree(
        data: memoryview,
        ctx: ScanContext,
        loc: Location,
        d: _Directory,
        spans: dict[int, tuple[int, int, str]],
    ) -> list[list[ZipEntry]]:
        """End records and central directories that real readers would read differently: a
        high finding each. Returns the other readers' member lists, to be scanned too.

        An end-record signature inside a member's data is that member's own business (a
        stored nested archive, scanned as a member), not a second view of this archive.
        """
        for reason in d.disagreements:
            ctx.report(R.ARC_READERS_DISAGREE, reason, loc.at(d.eocd))
        first = {_entry_key(e) for e in d.entries}
        views: list[list[ZipEntry]] = []
        for other in d.others:
            if {_entry_key(e) for e in other.entries} == first:
                continue
            ctx.report(
                R.ARC_READERS_DISAGREE,
                f"{other.reader} reads the central directory at offset {other.cd_start}, "
                f"{d.reader} at {d.cd_start}: they list different members "
                f"({', '.join(repr(e.name) for e in other.entries[:4])} against "
                f"{', '.join(repr(e.name) for e in d.entries[:4])}); both were scanned",
                loc.at(other.cd_start),
            )
            views.append(other.entries)
        inside = [(lo, hi) for lo, hi, _ in spans.values()]
        reported = False
        limit = int(ctx.limits.max_archive_members)
        work = 0
        for other_eocd in _eocd_candidates(data):
            if other_eocd == d.eocd or any(lo <= other_eocd < hi for lo, hi in inside):
                continue
            if len(views) >= ctx.limits.max_zip_directory_views or work > 4 * limit:
                ctx.report(
                    R.ARC_MEMBER_COUNT,
                    f"more end records or central directories than "
                    f"{ctx.limits.max_zip_directory_views} (or entries "
                    f"than {4 * limit}) to compare; the rest not read or scanned",
                    loc.at(other_eocd),
                )
                break
            try:
                alt = parse_central_directory(data, limit, other_eocd)
            except (InputError, struct.error):
                continue
            work += len(alt.entries) + 1
            if not alt.entries or {_entry_key(e) for e in alt.entries} <= first:
                continue
            if not reported:
                ctx.report(
                    R.ARC_READERS_DISAGREE,
                    f"a second end-of-central-directory record at offset {other_eocd} describes "
                    f"other members ({', '.join(repr(e.name) for e in alt.entries[:4])}); "
                    "readers that pick it see a different archive; its members were scanned",
                    loc.at(other_eocd),
                )
                reported = True
            views.append(alt.entries)
            views.extend(v.entries for v in alt.others)
        return views

    def _check_comment_and_tail(
        self, data: memoryview, ctx: ScanContext, loc: Location, d: _Directory
    ) -> None:
        if d.comment:
            ctx.report(
                R.ARC_COMMENT,
                f"archive comment of {len(d.comment)} bytes",
                loc.at(d.eocd + 22),
            )
            from mltrust.scan._registry import detect

            if detect(memoryview(d.comment), "comment"):
                ctx.report(
                    R.ARC_HIDDEN_DATA,
                    "the archive comment holds a recognised format; it was scanned",
                    loc.at(d.eocd + 22),
                )
                ctx.scan_nested(d.comment, loc.member("[comment]"), "comment")
        if d.record - d.cd_end > 0:
            lo, hi = d.cd_end, d.record
            ctx.report(
                R.ARC_HIDDEN_DATA,
                f"{hi - lo} bytes lie between the central directory and its end record",
                loc.at(lo),
            )
            ctx.scan_nested(data[lo:hi], loc.member(f"[gap@{lo}]"), "gap")
        if d.eocd_end < len(data):
            rest = data[d.eocd_end :]
            ctx.report(
                R.ARC_HIDDEN_DATA,
                f"{len(rest)} bytes follow the end-of-central-directory record",
                loc.at(d.eocd_end),
            )
            ctx.scan_nested(rest, loc.member(f"[after-zip@{d.eocd_end}]"), "trailing")

    def _check_names_and_spans(
        self, data: memoryview, ctx: ScanContext, loc: Location, entries: list[ZipEntry]
    ) -> dict[int, tuple[int, int, str]]:
        """Check names and local headers; returns index -> (data start, data end, local name)."""
        seen: dict[str, int] = {}
        folded: dict[str, int] = {}
        spans: dict[int, tuple[int, int, str]] = {}
        size = len(data)
        for e in entries:
            mloc = loc.member(e.name)
            if is_traversal(e.name):
                ctx.report(R.ARC_TRAVERSAL, f"member name {e.name!r} escapes the folder", mloc)
            key = posixpath.normpath(e.name.replace("\\", "/")) if e.name else e.name
            if key in seen:
                ctx.report(
                    R.ARC_DUPLICATE,
                    f"member name {e.name!r} appears more than once (entries {seen[key]} and "
                    f"{e.index}): PyTorch's reader loads the first, zipfile the last",
                    mloc,
                )
            elif key.lower() in folded:
                first = folded[key.lower()]
                ctx.report(
                    R.ARC_READERS_DISAGREE,
                    f"member names {entries[first].name!r} and {e.name!r} differ only in case: "
                    "PyTorch's reader serves the first for either name, zipfile each its own",
                    mloc,
                )
            else:
                seen[key] = e.index
            folded.setdefault(key.lower(), e.index)
            if e.flags & ~(_ORDINARY_FLAGS | _ENCRYPTED):
                ctx.report(R.ARC_FLAGS, f"general-purpose flags 0x{e.flags:04x}", mloc)
            if e.offset < 0 or e.offset + _LOC_FMT.size > size:
                ctx.report(
                    R.ARC_TRUNCATED, f"local header offset {e.offset} is outside the file", mloc
                )
                continue
            lf = _LOC_FMT.unpack_from(data, e.offset)
            if lf[0] != _LOC:
                ctx.report(R.ARC_TRUNCATED, f"no local header signature at offset {e.offset}", mloc)
                continue
            nlen, xlen = lf[9], lf[10]
            raw_local = bytes(data[e.offset + 30 : e.offset + 30 + nlen])
            lname = raw_local.decode("utf-8" if lf[2] & 0x800 else "cp437", "replace")
            if lname != e.name:
                ctx.report(
                    R.ARC_NAME_MISMATCH,
                    f"local header names the member {lname!r}, the central directory {e.name!r}",
                    mloc.at(e.offset),
                )
                if is_traversal(lname):
                    ctx.report(
                        R.ARC_TRAVERSAL, f"local member name {lname!r} escapes the folder", mloc
                    )
            self._compare_headers(e, lf, ctx, mloc)
            start = e.offset + 30 + nlen + xlen
            end = start + e.csize
            if end > size:
                ctx.report(
                    R.ARC_TRUNCATED,
                    f"member data ({e.csize} bytes at {start}) runs past the end of the file",
                    mloc.at(start),
                )
                end = size
            spans[e.index] = (start, end, lname)
        ordered = sorted(
            ((e.offset, spans[e.index][1], e) for e in entries if e.index in spans),
            key=lambda t: (t[0], t[1]),
        )
        reach = -1
        reach_name = ""
        for lo, hi, e in ordered:
            if lo < reach:
                ctx.report(
                    R.ARC_OVERLAP,
                    f"member {e.name!r} at offset {lo} overlaps member {reach_name!r}",
                    loc.member(e.name).at(lo),
                )
            if hi > reach:
                reach, reach_name = hi, e.name
        return spans

    @staticmethod
    def _compare_headers(
        e: ZipEntry, lf: tuple[object, ...], ctx: ScanContext, mloc: Location
    ) -> None:
        method, crc, csize, usize = lf[3], lf[6], lf[7], lf[8]
        diffs = []
        if method != e.method:
            diffs.append(f"method {method} vs {e.method}")
        descriptor = isinstance(lf[2], int) and lf[2] & 0x08
        if not descriptor:
            if crc != e.crc:
                diffs.append("CRC")
            if csize not in (e.csize, 0xFFFFFFFF):
                diffs.append(f"compressed size {csize} vs {e.csize}")
            if usize not in (e.usize, 0xFFFFFFFF):
                diffs.append(f"size {usize} vs {e.usize}")
        if diffs:
            ctx.report(
                R.ARC_HEADER_MISMATCH,
                "local header disagrees with the central directory: " + ", ".join(diffs),
                mloc,
            )

    def _check_prefix_and_gaps(
        self,
        data: memoryview,
        ctx: ScanContext,
        loc: Location,
        d: _Directory,
        spans: dict[int, tuple[int, int, str]],
        covered: list[tuple[int, int]],
    ) -> None:
        """Bytes before the first member and between members; ``covered`` are the (local header,
        data end) of members only other readers' directories list: not gaps, already scanned."""
        from mltrust.scan._registry import detect

        offsets = sorted(
            {e.offset for e in d.entries if e.index in spans} | {o for o, _ in covered}
        )
        first = offsets[0] if offsets else d.cd_start
        if first > 0:
            prefix = data[:first]
            others = [s for s in detect(data, "") if s.name != self.name]
            ctx.report(
                R.ARC_PREFIX,
                f"{first} bytes precede the first zip member"
                + (f" (the file is also {others[0].name})" if others else ""),
                loc.at(0),
            )
            if not others:
                ctx.scan_nested(prefix, loc.member("[prefix]"), "prefix")
        # Gaps between members (beyond data descriptors) and before the central directory.
        end_by_offset: dict[int, int] = {}
        for e in d.entries:
            if e.index in spans:
                end_by_offset[e.offset] = max(end_by_offset.get(e.offset, 0), spans[e.index][1])
        for lo, hi in covered:
            end_by_offset[lo] = max(end_by_offset.get(lo, 0), hi)
        regions: list[tuple[int, int]] = []
        reach = first
        for off in [*offsets, d.cd_start]:
            if off - reach > 24:
                regions.append((reach, off))
            reach = max(reach, end_by_offset.get(off, off))
        for lo, hi in regions:
            gap = data[lo:hi]
            found = bytes(gap[: 1 << 20]).find(_LOC)
            if found >= 0:
                ctx.report(
                    R.ARC_HIDDEN_DATA,
                    f"a local zip entry at offset {lo + found} is missing from the central "
                    "directory (seen only by streaming readers); scanned as they read it",
                    loc.at(lo + found),
                    severity=R.ARC_NAME_MISMATCH.default_severity,
                )
                if found > 24:
                    ctx.scan_nested(data[lo : lo + found], loc.member(f"[gap@{lo}]"), "gap")
                self._scan_local_entries(data, lo + found, hi, ctx, loc)
            else:
                ctx.report(
                    R.ARC_HIDDEN_DATA, f"{hi - lo} bytes between members belong to none", loc.at(lo)
                )
                ctx.scan_nested(gap, loc.member(f"[gap@{lo}]"), "gap")

    def _scan_local_entries(
        self, data: memoryview, pos: int, end: int, ctx: ScanContext, loc: Location
    ) -> int:
        """Read members by their local headers alone, as streaming readers do.

        Used for local entries the central directory does not list, and for archives whose
        central directory is missing. Returns the number of entries read.
        """
        count = 0
        limit = int(ctx.limits.max_archive_members)
        while pos + _LOC_FMT.size <= end and data[pos : pos + 4] == _LOC:
            if count >= limit:
                ctx.report(
                    R.ARC_MEMBER_COUNT,
                    f"more than {limit} local entries; the rest not scanned",
                    loc.at(pos),
                )
                break
            lf = _LOC_FMT.unpack_from(data, pos)
            flags, method, crc, csize, usize, nlen, xlen = (
                lf[2],
                lf[3],
                lf[6],
                lf[7],
                lf[8],
                lf[9],
                lf[10],
            )
            name = bytes(data[pos + 30 : pos + 30 + nlen]).decode(
                "utf-8" if flags & 0x800 else "cp437", "replace"
            )
            extra = bytes(data[pos + 30 + nlen : pos + 30 + nlen + xlen])
            usize, csize, _ = _zip64_extra(extra, usize, csize, 0)
            start = pos + 30 + nlen + xlen
            if flags & 0x08 or start + csize > end:
                csize = end - start  # sizes follow the data: take what remains
            entry = ZipEntry(-1, name, flags, method, crc, csize, usize, pos, -1)
            mloc = loc.member(name or f"[local@{pos}]")
            if is_traversal(name):
                ctx.report(R.ARC_TRAVERSAL, f"member name {name!r} escapes the folder", mloc)
            count += 1
            consumed = csize
            if flags & _ENCRYPTED:
                ctx.report(
                    R.ARC_ENCRYPTED, "member is encrypted; its content was not scanned", mloc
                )
            elif method == 0:
                self._dispatch(data[start : start + csize], ctx, mloc, name, name)
            else:
                holder = self._decode(data[start : start + csize], entry, ctx, mloc, strict=False)
                if holder is not None:
                    if holder.complete:
                        consumed = holder.end
                    if holder.data:
                        view = memoryview(holder.data)
                        try:
                            self._dispatch(view, ctx, mloc, name, name)
                        finally:
                            view.release()
                            holder.close()
            pos = start + consumed
            if flags & 0x08:
                # Skip the data descriptor (optional signature, CRC, two sizes).
                nxt = bytes(data[pos : min(end, pos + 64)]).find(_LOC)
                if nxt < 0:
                    break
                pos += nxt
        return count

    # -- members -----------------------------------------------------------------------------

    def _scan_member(
        self,
        data: memoryview,
        ctx: ScanContext,
        loc: Location,
        e: ZipEntry,
        span: tuple[int, int, str] | None,
        pool: ThreadPoolExecutor | None,
        pending: list[tuple[Future[int], ZipEntry]],
        budget: list[int],
    ) -> None:
        mloc = loc.member(e.name)
        if span is None:
            return
        start, end, lname = span
        if e.name.endswith("/") and e.csize == 0:
            return
        if e.flags & _ENCRYPTED:
            ctx.report(R.ARC_ENCRYPTED, "member is encrypted; its content was not scanned", mloc)
            return
        stored = data[start:end]
        holder: Inflated | None = None
        if e.method == 0:
            content = stored
            if e.csize != e.usize:
                ctx.report(
                    R.ARC_TRUNCATED,
                    f"stored member declares {e.csize} bytes stored but {e.usize} uncompressed",
                    mloc,
                )
            size = end - start
            raw = bool(_raw_storage().match(e.name)) and bool(_raw_storage().match(lname))
            verify = not raw or size <= budget[0]
            if raw and verify:
                budget[0] -= size
            elif raw:
                _count_fact(ctx, "zip_crc_unverified_members", 1)
                _count_fact(ctx, "zip_crc_unverified_bytes", size)
            if not verify:
                pass
            elif pool is None:
                _check_crc(ctx, mloc, stored_crc(data, start, end, None), e.crc)
            elif end - start >= _PARALLEL_MIN:
                # One large member: its chunks run on both threads while this one waits.
                _check_crc(ctx, mloc, stored_crc(data, start, end, pool), e.crc)
            else:
                # Members check on the pool while this thread sniffs; results read at the end.
                pending.append((pool.submit(stored_crc, data, start, end, None), e))
        else:
            holder = self._decode(stored, e, ctx, mloc)
            if holder is None:
                return
            content = memoryview(holder.data)
            if holder.complete:
                _check_crc(ctx, mloc, stored_crc(content, 0, len(content), None), e.crc)
        try:
            self._dispatch(content, ctx, mloc, e.name, lname)
            if holder is None and e.csize != e.usize:
                # A stored member is read by its uncompressed size by PyTorch's reader (and by
                # zipfile when that is the smaller): those bytes are scanned too.
                other_end = min(len(data), start + e.usize)
                if start < other_end != end:
                    self._dispatch(data[start:other_end], ctx, mloc, e.name, lname)
                    release_pages(data, start, other_end)
        finally:
            if holder is not None:
                content.release()
                holder.close()
            else:
                # Whatever the nested scanners touched of this member leaves resident memory.
                release_pages(data, start, end)

    def _decode(
        self,
        stored: memoryview,
        e: ZipEntry,
        ctx: ScanContext,
        mloc: Location,
        *,
        strict: bool = True,
    ) -> Inflated | None:
        kinds = {8: "deflate", 12: "bzip2", 14: "lzma-zip"}
        kind = kinds.get(e.method)
        if kind is None:
            ctx.report(
                R.ARC_NOT_SCANNED,
                f"compression method {e.method} is not supported; member not scanned",
                mloc,
            )
            return None
        factory = None
        src = stored
        if kind == "lzma-zip":
            import lzma

            if len(stored) < 4:
                raise InputError("zip LZMA member too short")
            psize = int.from_bytes(stored[2:4], "little")
            props = bytes(stored[4 : 4 + psize])
            src = stored[4 + psize :]
            decode_props = getattr(lzma, "_decode_filter_properties")  # noqa: B009
            try:
                filt = decode_props(lzma.FILTER_LZMA1, props)
            except lzma.LZMAError as exc:
                raise InputError(f"zip LZMA properties are invalid: {exc}") from None

            def factory() -> lzma.LZMADecompressor:
                return lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=[filt])

            kind = "lzma"
        from mltrust.scan.formats.compressed import inflate  # loads the scanning half

        holder = inflate(
            src,
            kind,
            ctx,
            multi=False,
            expected=e.usize if strict else None,
            decoder_factory=factory if factory is not None else (lambda: new_decoder(kind)),
        )
        if holder.limited:
            ctx.report(R.ARC_BOMB, holder.limited, mloc)
        elif holder.error and not (kind == "lzma" and holder.data):
            ctx.report(R.ARC_TRUNCATED, holder.error, mloc)
        elif strict and holder.complete and len(holder.data) != e.usize:
            ctx.report(
                R.ARC_TRUNCATED,
                f"member decodes to {len(holder.data)} bytes, {e.usize} declared",
                mloc,
            )
        return holder

    def _dispatch(
        self, content: memoryview, ctx: ScanContext, mloc: Location, name: str, lname: str
    ) -> None:
        """Scan one member: by content always; its name may add checks, never remove them.

        The name is the attacker's choice and zipfile-based loaders (numpy, Keras) ignore what
        it says: an object array named ``<top>/code/x.py`` still unpickles. So a member whose
        name marks it as TorchScript source, a PyTorch pickle or a small PyTorch record is
        checked as such *and* sniffed; the name only spares it the "unknown format" report when
        no format matches (source text, a version string).
        """
        if not len(content):
            return
        skip: frozenset[str] = frozenset()
        if (
            _torch_meta().match(name)
            and len(content) <= 64
            and _torch_meta_value().match(bytes(content))
        ):
            known = True
        elif _torchscript_code().match(name) or _torchscript_code().match(lname):
            self._check_torchscript(content, ctx, mloc)
            known = True
        elif _torch_pickle().match(name) or _torch_pickle().match(lname):
            # PyTorch unpickles these whatever they contain (no PROTO needed, any first
            # opcode); persistent ids are its storages.
            from mltrust.scan._pickle import scan_pickle_stream

            prefix = "!".join(mloc.members)
            ctx.formats.append(f"{prefix}:pickle")
            scan_pickle_stream(content, ctx, mloc, context="pytorch")
            known = True
            skip = frozenset({"pickle"})
        else:
            known = False
            if _torch_bytecode().match(name):
                self._check_torchscript_bytecode(content, ctx, mloc)
        raw_ok = bool(_raw_storage().match(name)) and bool(_raw_storage().match(lname))
        if known:
            from mltrust.scan._registry import detect

            if any(s.name not in skip for s in detect(content, name)):
                ctx.scan_nested(content, mloc, name, exclude=skip)
            return
        ctx.scan_nested(content, mloc, name, raw_data_ok=raw_ok)

    @staticmethod
    def _check_torchscript_bytecode(content: memoryview, ctx: ScanContext, mloc: Location) -> None:
        """The operator tables of a mobile module's ``bytecode.pkl`` (the pickle itself is
        analysed as any member is)."""
        from mltrust.scan._pickle import pickle_value
        from mltrust.scan.formats._torchscript import analyze_bytecode

        got = pickle_value(content)
        report = analyze_bytecode(got[0] if got else None, int(ctx.limits.max_entries))
        report_torchscript(report, ctx, mloc)

    @staticmethod
    def _check_torchscript(content: memoryview, ctx: ScanContext, mloc: Location) -> None:
        check_torchscript_source(content, ctx, mloc)


def report_torchscript(report: ScriptReport, ctx: ScanContext, mloc: Location) -> None:
    """Report what :mod:`._torchscript` found in TorchScript code or operator tables (MLT-PT-005
    for file or network operators, MLT-PT-006 for the rest): the zip, mobile and flatbuffer
    forms of a module report alike."""
    if report.file_or_network:
        ctx.report(
            R.PT_SCRIPT_FILE_OP,
            "TorchScript code calls " + ", ".join(report.file_or_network[:8]),
            mloc,
        )
    if report.unproven:
        ctx.report(
            R.PT_SCRIPT_UNPROVEN,
            "TorchScript code not proven to use only torch's operators: "
            + "; ".join(report.unproven[:8]),
            mloc,
        )


def check_torchscript_source(content: memoryview, ctx: ScanContext, mloc: Location) -> None:
    """Check one TorchScript source file (a zip's ``code/**.py``, a flatbuffer's
    ``jit_sources`` entry): what it reaches of Python and the system (MLT-PT-001), the
    operators and native classes it names (:mod:`._torchscript`), and ``max_text_bytes``."""
    from mltrust.scan.formats._torchscript import analyze_torchscript

    limit = int(ctx.limits.max_text_bytes)
    count = ctx.facts.get("torchscript_code_files", 0)
    ctx.facts["torchscript_code_files"] = (count if isinstance(count, int) else 0) + 1
    source = bytes(content[:limit]).decode("utf-8", "replace")
    report_torchscript(analyze_torchscript(source), ctx, mloc)
    text = _string_literal().sub('""', source)
    first = _dangerous_code().search(text)
    if first is not None:
        hits = sorted({m.group(0).strip() for m in _dangerous_code().finditer(text)})
        line = text.count("\n", 0, first.start()) + 1
        ctx.report(
            R.PT_CODE,
            "TorchScript code uses " + ", ".join(repr(h) for h in hits[:8]),
            mloc.at(detail=f"line {line}"),
        )
    if len(content) > limit:
        from mltrust.scan import _rules

        ctx.report(
            _rules.LIMIT_EXHAUSTED,
            f"TorchScript source larger than max_text_bytes={limit}; the rest not checked",
            mloc,
        )
