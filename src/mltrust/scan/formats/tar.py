"""Tar archives (ustar, GNU and pax), parsed header by header without :mod:`tarfile`.

Member data is a zero-copy slice of the buffer and is sniffed by content. Reported: path
traversal, symbolic and hard links that point outside the extraction folder, device files and
FIFOs, bad header checksums, truncation, data after the end-of-archive marker, and more members
than ``max_archive_members``. ``.tar.gz`` and friends reach this scanner through the compressed
scanner. The very old tar-based PyTorch format (``storages``, ``tensors``, ``pickle`` members) is
recognised the way ``torch.load`` recognises it (a ``storages`` member, links followed as
tarfile follows them): besides the generic sniffing of each member, every pickle torch would
unpickle is analysed (see :func:`mltrust.scan.formats.pytorch.scan_legacy_tar`).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from mltrust.errors import InputError
from mltrust.scan import _archive_rules as R
from mltrust.scan.formats.pytorch import TarMember, scan_legacy_tar
from mltrust.scan.formats.zip import is_traversal
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext

__all__ = ["TarScanner", "tar_checksum_ok"]

_BLOCK = 512
# tarfile.REGULAR_TYPES and SUPPORTED_TYPES: data follows a header only for the regular types
# and for types tarfile does not know; after any other header the next block is a header.
_REGULAR = (b"0", b"\x00", b"7", b"S")
_SUPPORTED = frozenset((b"0", b"\x00", b"1", b"2", b"5", b"6", b"7", b"3", b"4", b"L", b"K", b"S"))
_META = (b"L", b"K", b"x", b"g", b"X")
_MAX_SPARSE_ENTRIES = 100_000
_SPARSE_00 = (
    re.compile(rb"\d+ GNU.sparse.offset=(\d+)\n"),
    re.compile(rb"\d+ GNU.sparse.numbytes=(\d+)\n"),
)
_SPECIAL = {b"3": "character device", b"4": "block device", b"6": "FIFO"}
_MAX_META = 1 << 20
_CHKSUM_FIELD = re.compile(rb"[0-7 \x00]{8}")
_HIGH_BYTES = bytes(range(128, 256))


def _octal(field: bytes) -> int:
    """A numeric header field: octal text or GNU base-256."""
    if field and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:
            raise InputError("negative base-256 number in tar header")
        return value
    text = field.split(b"\x00", 1)[0].strip(b" \x00")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise InputError(f"bad octal number {text!r} in tar header") from None


def tar_checksum_ok(block: bytes) -> bool:
    """Whether the 512-byte header block carries a valid checksum (unsigned or signed sum)."""
    if len(block) < _BLOCK or _CHKSUM_FIELD.match(block, 148) is None:
        return False
    try:
        stored = _octal(block[148:156])
    except InputError:
        return False
    body = block[:148] + b" " * 8 + block[156:_BLOCK]
    unsigned = sum(body)
    if stored == unsigned:
        return True
    high = len(body) - len(body.translate(None, _HIGH_BYTES))
    return stored == unsigned - 256 * high


_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")


def _pax_records(payload: bytes) -> dict[str, str]:
    """The records of a pax header, parsed as ``TarInfo._proc_pax`` parses them.

    ``"%d %s=%s\n"`` records are read until one does not match (tarfile ignores the rest);
    a zero length, on which tarfile fails, is an error.
    """
    records: dict[str, str] = {}
    pos = 0
    while True:
        match = _PAX_RECORD.match(payload, pos)
        if match is None:
            break
        length = int(match.group(1))
        if length == 0:
            raise InputError("malformed pax extended header length")
        value = payload[match.end(2) + 1 : match.start(1) + length - 1]
        records[match.group(2).decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        pos += length
    return records


def _cstr(field: bytes) -> str:
    return field.split(b"\x00", 1)[0].decode("utf-8", "replace")


def _link_escapes(name: str, target: str, symbolic: bool) -> bool:
    if not target:
        return False
    if target.startswith("/") or (is_traversal(target) and not symbolic):
        return True
    base = posixpath.dirname(name) if symbolic else ""
    joined = posixpath.normpath(posixpath.join(base, target))
    return joined == ".." or joined.startswith("../") or joined.startswith("/")


def _blocks(count: int) -> int:
    """``count`` rounded up to whole blocks, exactly as ``TarInfo._block`` does."""
    blocks, remainder = divmod(count, _BLOCK)
    if remainder:
        blocks += 1
    return blocks * _BLOCK


def _kind(typeflag: bytes) -> str:
    names = {b"1": "hard link", b"2": "symbolic link", b"5": "directory"}
    return names.get(typeflag) or _SPECIAL.get(typeflag) or f"member of type {typeflag!r}"


@dataclass
class _Member:
    """One member as :mod:`tarfile` reads it (the oracle: ``torch.load`` of a legacy tar)."""

    type: bytes
    name: str
    link: str
    size: int  # bytes extractfile() returns
    data_start: int  # TarInfo.offset_data
    next_header: int  # TarFile.offset after this member
    sparse: list[tuple[int, int]] | None = None
    hidden_size: int = 0  # size field of a member tarfile reads no data for
    problem: str = ""  # tarfile fails on (or hangs in) this member: not scanned


def _old_sparse(buf: bytes, count: int, *, keep_zero: bool) -> list[tuple[int, int]]:
    structs: list[tuple[int, int]] = []
    for i in range(count):
        try:
            offset = _octal(buf[i * 24 : i * 24 + 12])
            numbytes = _octal(buf[i * 24 + 12 : i * 24 + 24])
        except InputError:
            break
        if keep_zero or (offset and numbytes):
            structs.append((offset, numbytes))
    return structs


def _member(
    block: bytes,
    start: int,
    data: memoryview,
    global_pax: dict[str, str],
    chain: list[tuple[bytes, bytes]],
) -> _Member:
    """Mirror ``TarInfo.frombuf`` + ``_proc_member`` (+ the pax/GNU headers in ``chain``).

    The meta headers are applied innermost first, as tarfile's recursion does: the header that
    comes first in the archive has the last word. Sparse members (old GNU ``S`` and the pax
    GNU.sparse 0.0, 0.1 and 1.0 forms) get their map, from which :func:`_unsparse` rebuilds the
    bytes tarfile returns. Whatever tarfile would raise on becomes ``problem``.
    """
    t = block[156:157]
    hsize = _octal(block[124:136])
    name = _cstr(block[0:100])
    if t == b"\x00" and name.endswith("/"):
        t = b"5"  # old V7 directory: tarfile reads no data after it
    m = _Member(t, name, _cstr(block[157:257]), hsize, start, start)
    fpos = start
    if t == b"S":
        m.sparse = _old_sparse(block[386:482], 4, keep_zero=True)
        extended = bool(block[482])
        m.size = _octal(block[483:495])
        while extended:
            ext = bytes(data[fpos : fpos + _BLOCK])
            if len(ext) < _BLOCK:
                m.problem = "GNU sparse extension header is truncated"
                break
            m.sparse += _old_sparse(ext, 21, keep_zero=False)
            extended = bool(ext[504])
            fpos += _BLOCK
        m.data_start = fpos
        m.next_header = fpos + _blocks(hsize)
    elif t in _REGULAR or t not in _SUPPORTED:
        m.next_header = start + _blocks(hsize)
    else:
        m.hidden_size = hsize
    if t == b"5":
        m.name = m.name.rstrip("/")
    prefix = _cstr(block[345:500])
    if prefix and t not in (b"L", b"K", b"S"):
        m.name = prefix + "/" + m.name
    try:
        if t != b"S":
            _apply_pax(m, global_pax)
        for kind, payload in reversed(chain):
            if kind == b"L":
                m.name = _cstr(payload)
                if m.type == b"5":
                    m.name = m.name.removesuffix("/")
            elif kind == b"K":
                m.link = _cstr(payload)
            else:
                fpos = _pax_level(m, payload, global_pax, data, fpos)
    except (InputError, ValueError) as exc:
        m.problem = f"tarfile cannot read this member ({exc})"
    if m.hidden_size or (m.type not in _REGULAR and m.type in _SUPPORTED):
        # A pax size on such a member: tarfile ignores it, GNU tar and libarchive skip it.
        m.hidden_size = max(m.hidden_size, m.size)
    if m.size < 0:
        m.problem = "negative member size"
    return m


def _apply_pax(m: _Member, pax: dict[str, str]) -> None:
    for key, value in pax.items():  # in order: the last of path / GNU.sparse.name wins
        if key == "GNU.sparse.name":
            m.name = value
        elif key in ("GNU.sparse.size", "GNU.sparse.realsize"):
            m.size = int(value)
        elif key == "path":
            m.name = value.rstrip("/")
        elif key == "linkpath":
            m.link = value
        elif key == "size":
            try:
                m.size = int(value)
            except ValueError:
                m.size = 0


def _pax_level(
    m: _Member, payload: bytes, global_pax: dict[str, str], data: memoryview, fpos: int
) -> int:
    """One ``x`` header on its member (``TarInfo._proc_pax``); returns the read position."""
    pax = dict(global_pax)
    pax.update(_pax_records(payload))
    numbers: list[int] = []
    if "GNU.sparse.map" in pax:
        numbers = [int(x) for x in pax["GNU.sparse.map"].split(",")]
        m.sparse = list(zip(numbers[::2], numbers[1::2], strict=False))
    elif "GNU.sparse.size" in pax:
        offsets = [int(x.group(1)) for x in _SPARSE_00[0].finditer(payload)]
        numbytes = [int(x.group(1)) for x in _SPARSE_00[1].finditer(payload)]
        m.sparse = list(zip(offsets, numbytes, strict=False))
    elif pax.get("GNU.sparse.major") == "1" and pax.get("GNU.sparse.minor") == "0":
        buf = bytes(data[fpos : fpos + _BLOCK])
        fpos += _BLOCK
        head, buf = buf.split(b"\n", 1)
        fields = int(head)
        if fields > _MAX_SPARSE_ENTRIES:
            raise InputError(f"{fields} sparse map entries")
        while len(numbers) < fields * 2:
            if b"\n" not in buf:
                buf += bytes(data[fpos : fpos + _BLOCK])
                fpos += _BLOCK
            number, buf = buf.split(b"\n", 1)
            numbers.append(int(number))
        m.data_start = fpos
        m.sparse = list(zip(numbers[::2], numbers[1::2], strict=False))
    _apply_pax(m, pax)
    if "size" in pax:
        m.next_header = m.data_start
        if m.type in _REGULAR or m.type not in _SUPPORTED:
            m.next_header += _blocks(m.size)
    return fpos


def _unsparse(data: memoryview, m: _Member, limit: int) -> bytes | str:
    """The bytes ``tarfile``'s ``_FileInFile`` returns for a sparse member, or why not.

    Its map and read loop are mirrored step by step (holes read as zeros, data taken in order
    from ``offset_data``), so a map tarfile would loop on forever is reported, not followed.
    """
    size = m.size
    if size > limit:
        return f"{size} bytes once expanded, above max_decompressed_in_memory"
    blockinfo = m.sparse or []
    if len(blockinfo) > _MAX_SPARSE_ENTRIES:
        return f"{len(blockinfo)} sparse map entries"
    table: list[tuple[bool, int, int, int]] = []
    lastpos = 0
    realpos = m.data_start
    for offset, length in blockinfo:
        if offset > lastpos:
            table.append((False, lastpos, offset, 0))
        table.append((True, offset, offset + length, realpos))
        realpos += length
        lastpos = offset + length
    if lastpos < size:
        table.append((False, lastpos, size, 0))
    out = bytearray()
    position = 0
    index = 0
    while position < size:
        tried = 0
        while True:
            has_data, lo, hi, real = table[index] if table else (False, 0, 0, 0)
            if lo <= position < hi:
                break
            index = (index + 1) % max(len(table), 1)
            tried += 1
            if tried > len(table):
                return "tarfile would never finish reading its sparse map"
        length = min(size - position, hi - position)
        if has_data:
            at = real + (position - lo)
            if at < 0 or at + length > len(data):
                return "its data runs past the end of the archive"
            out += data[at : at + length]
        else:
            out += bytes(length)
        position += length
    return bytes(out)


def _as_tar_member(m: _Member, data: memoryview, ctx: ScanContext) -> TarMember:
    """``m`` for the legacy torch decision (its data is read only if torch would read it)."""
    if m.type == b"1" or m.type == b"2":
        return TarMember(m.name, "hard" if m.type == b"1" else "sym", m.link, lambda: None)
    if m.problem or (m.type in _SUPPORTED and m.type not in _REGULAR):
        return TarMember(m.name, "other", m.link, lambda: None)

    def read() -> memoryview | bytes | None:
        if m.sparse is None:
            return data[m.data_start : min(m.data_start + m.size, len(data))]
        content = _unsparse(data, m, int(ctx.limits.max_decompressed_in_memory))
        return None if isinstance(content, str) else content

    return TarMember(m.name, "file", m.link, read)


class TarScanner(FormatScanner):
    """Tar archives; members sniffed by content, links and special files checked."""

    name: ClassVar[str] = "tar"
    description: ClassVar[str] = (
        "tar archives (ustar/GNU/pax; also the oldest PyTorch format): traversal, links, "
        "special files, every member sniffed by content"
    )
    priority: ClassVar[int] = 58
    suffixes: ClassVar[tuple[str, ...]] = (".tar",)
    can_execute_code: ClassVar[bool] = True

    def sniff(self, data: memoryview, name: str) -> bool:
        if len(data) < _BLOCK:
            return False
        block = bytes(data[:_BLOCK])
        if not block[:100].strip(b"\x00"):
            return False
        return tar_checksum_ok(block)

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        listed: list[_Member] = []  # every member, as tarfile lists them
        self._scan_members(data, ctx, loc, listed)
        # The oldest torch.save format is decided the way torch.load decides it (tarfile
        # stops quietly at a bad header after the first, so the members before it count).
        scan_legacy_tar([_as_tar_member(m, data, ctx) for m in listed], ctx, loc)

    def _scan_members(
        self, data: memoryview, ctx: ScanContext, loc: Location, listed: list[_Member]
    ) -> None:
        size = len(data)
        pos = 0
        members = 0
        max_members = int(ctx.limits.max_archive_members)
        # Meta headers (L, K, x, X) waiting for the member they describe, in archive order.
        chain: list[tuple[bytes, bytes]] = []
        global_pax: dict[str, str] = {}
        seen: set[str] = set()
        ended = False
        while pos + _BLOCK <= size:
            block = bytes(data[pos : pos + _BLOCK])
            if not any(block):
                ended = True
                break
            if not tar_checksum_ok(block):
                ctx.report(R.ARC_BAD_CRC, "tar header checksum is wrong", loc.at(pos))
                return
            typeflag = block[156:157]
            try:
                hsize = _octal(block[124:136])
            except InputError as exc:
                ctx.report(R.ARC_TRUNCATED, str(exc), loc.at(pos))
                return
            start = pos + _BLOCK
            if typeflag in _META:
                # tarfile reads the whole padded payload of a meta header, then the next header.
                pos = start + _blocks(hsize)
                if start + hsize > size:
                    ctx.report(
                        R.ARC_TRUNCATED,
                        f"tar header payload of {hsize} bytes runs past the end",
                        loc.at(start),
                    )
                if hsize > _MAX_META:
                    ctx.report(
                        R.ARC_NOT_SCANNED,
                        f"tar {typeflag!r} header of {hsize} bytes; only its first "
                        f"{_MAX_META} bytes were read",
                        loc.at(start),
                    )
                # The padded payload, as tarfile reads it (its pax parser sees the padding).
                payload = bytes(data[start : min(pos, size, start + _MAX_META)])
                if typeflag == b"g":
                    global_pax.update(_pax_records(payload))
                else:
                    chain.append((typeflag, payload))
                continue
            members += 1
            if members > max_members:
                ctx.report(
                    R.ARC_MEMBER_COUNT,
                    f"more than {max_members} members (max_archive_members); the rest not scanned",
                    loc.at(pos),
                )
                return
            ctx.check_deadline()
            m = _member(block, start, data, global_pax, chain)
            chain = []
            listed.append(m)
            pos = m.next_header
            name = m.name
            mloc = loc.member(name)
            if m.problem:
                ctx.report(R.ARC_NOT_SCANNED, f"{m.problem}; member not scanned", mloc)
            if m.hidden_size:
                # tarfile reads the bytes that follow as the next headers (other tar readers skip
                # them): what is hidden there is scanned below, as tarfile sees it.
                ctx.report(
                    R.ARC_READERS_DISAGREE,
                    f"{_kind(m.type)} declares {m.hidden_size} bytes of data; Python's tarfile "
                    "reads those bytes as the next members, other tar readers skip them",
                    mloc,
                )
            if is_traversal(name):
                ctx.report(R.ARC_TRAVERSAL, f"member name {name!r} escapes the folder", mloc)
            typeflag = m.type
            if typeflag in (b"1", b"2"):
                symbolic = typeflag == b"2"
                kind = "symbolic" if symbolic else "hard"
                if _link_escapes(name, m.link, symbolic):
                    ctx.report(R.ARC_LINK_ESCAPE, f"{kind} link to {m.link!r} points outside", mloc)
                continue
            if typeflag in _SPECIAL:
                ctx.report(R.ARC_SPECIAL_FILE, f"member is a {_SPECIAL[typeflag]}", mloc)
                continue
            if typeflag == b"5":
                continue
            if typeflag not in _REGULAR:
                ctx.report(
                    R.ARC_SPECIAL_FILE,
                    f"member has unknown type {typeflag!r}; its data was sniffed",
                    mloc,
                )
            if name in seen:
                ctx.report(
                    R.ARC_DUPLICATE,
                    f"member name {name!r} appears more than once (tarfile reads the last)",
                    mloc,
                )
            seen.add(name)
            if m.problem:
                continue
            lo, hi = m.data_start, m.data_start + m.size
            if m.sparse is None and hi > size:
                ctx.report(
                    R.ARC_TRUNCATED,
                    f"tar member of {m.size} bytes runs past the end of the archive",
                    loc.at(lo),
                )
                hi = size
            if m.sparse is not None:
                # Holes cost nothing in the archive: the expanded size is charged like
                # decompressed output (a LimitExceeded stops the scan with a finding).
                ctx.charge_decompressed(max(m.size, 0))
                content = _unsparse(data, m, int(ctx.limits.max_decompressed_in_memory))
                if isinstance(content, str):
                    ctx.report(R.ARC_NOT_SCANNED, f"sparse member: {content}; not scanned", mloc)
                    continue
                if content:
                    ctx.scan_nested(content, mloc, name)
            elif hi > lo:
                ctx.scan_nested(data[lo:hi], mloc, name)
        ctx.facts.setdefault("tar_members", members)
        if not ended and pos < size:
            ctx.report(R.ARC_TRUNCATED, "tar archive ends inside a header block", loc.at(pos))
        if not ended and pos >= size and members:
            # No end-of-archive marker: tolerated by tarfile, still worth saying.
            ctx.facts.setdefault("tar_unterminated", True)
        if ended:
            rest = data[pos:]
            nonzero = next((i for i in range(0, len(rest), 4096) if any(rest[i : i + 4096])), -1)
            if nonzero >= 0:
                off = pos + nonzero
                ctx.report(
                    R.ARC_HIDDEN_DATA,
                    f"data follows the end-of-archive marker at offset {off}",
                    loc.at(off),
                )
                ctx.scan_nested(data[off:], loc.member(f"[after-tar@{off}]"), "trailing")
