"""Tar archives (ustar, GNU and pax), parsed header by header without :mod:`tarfile`.

Member data is a zero-copy slice of the buffer and is sniffed by content. Reported: path
traversal, symbolic and hard links that point outside the extraction folder, device files and
FIFOs, bad header checksums, truncation, data after the end-of-archive marker, and more members
than ``max_archive_members``. ``.tar.gz`` and friends reach this scanner through the compressed
scanner. The very old tar-based PyTorch format (``storages``, ``tensors``, ``pickle`` members) is
recognised by its member names: besides the generic sniffing of each member, every pickle of
the ``storages`` and ``tensors`` members is analysed (they interleave pickles and raw bytes;
see :func:`mltrust.scan.formats.pytorch.scan_legacy_tar_member`).
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING, ClassVar

from mltrust.errors import InputError
from mltrust.scan import _archive_rules as R
from mltrust.scan.formats.pytorch import is_legacy_tar, scan_legacy_tar_member
from mltrust.scan.formats.zip import is_traversal
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext

__all__ = ["TarScanner", "tar_checksum_ok"]

_BLOCK = 512
_REGULAR = (b"0", b"\x00", b"7")
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


def _pax_records(payload: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(payload):
        space = payload.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(payload[pos:space])
        except ValueError:
            raise InputError("malformed pax extended header") from None
        if length <= 0 or pos + length > len(payload):
            raise InputError("malformed pax extended header length")
        record = payload[space + 1 : pos + length - 1]
        key, _, value = record.partition(b"=")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
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
        size = len(data)
        pos = 0
        members = 0
        max_members = int(ctx.limits.max_archive_members)
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[str, str] = {}
        global_pax: dict[str, str] = {}
        seen: set[str] = set()
        spans: dict[str, tuple[int, int]] = {}
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
                msize = _octal(block[124:136])
            except InputError as exc:
                ctx.report(R.ARC_TRUNCATED, str(exc), loc.at(pos))
                return
            start = pos + _BLOCK
            end = start + msize
            pos = start + -(-msize // _BLOCK) * _BLOCK
            if end > size:
                ctx.report(
                    R.ARC_TRUNCATED,
                    f"tar member of {msize} bytes runs past the end of the archive",
                    loc.at(start),
                )
                end = size
            if typeflag in (b"L", b"K", b"x", b"g"):
                payload = bytes(data[start : min(end, start + _MAX_META)])
                if typeflag == b"L":
                    long_name = _cstr(payload)
                elif typeflag == b"K":
                    long_link = _cstr(payload)
                elif typeflag == b"x":
                    pax = _pax_records(payload)
                else:
                    global_pax.update(_pax_records(payload))
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
            prefix = _cstr(block[345:500]) if block[257:262] == b"ustar" else ""
            name = _cstr(block[0:100])
            if prefix:
                name = prefix + "/" + name
            name = pax.get("path", global_pax.get("path", long_name or name))
            link = pax.get("linkpath", long_link or _cstr(block[157:257]))
            if "size" in pax:
                try:
                    psize = int(pax["size"])
                except ValueError:
                    raise InputError("malformed pax size") from None
                if psize != msize:
                    end = min(start + psize, size)
                    pos = start + -(-psize // _BLOCK) * _BLOCK
            long_name = long_link = None
            pax = {}
            mloc = loc.member(name)
            if is_traversal(name):
                ctx.report(R.ARC_TRAVERSAL, f"member name {name!r} escapes the folder", mloc)
            if typeflag in (b"1", b"2"):
                symbolic = typeflag == b"2"
                kind = "symbolic" if symbolic else "hard"
                if _link_escapes(name, link, symbolic):
                    ctx.report(R.ARC_LINK_ESCAPE, f"{kind} link to {link!r} points outside", mloc)
                continue
            if typeflag in _SPECIAL:
                ctx.report(R.ARC_SPECIAL_FILE, f"member is a {_SPECIAL[typeflag]}", mloc)
                continue
            if typeflag == b"5":
                continue
            if typeflag == b"S":
                ctx.report(
                    R.ARC_NOT_SCANNED, "GNU sparse member is not supported; not scanned", mloc
                )
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
            spans[name] = (start, end)
            if end > start:
                ctx.scan_nested(data[start:end], mloc, name)
        ctx.facts.setdefault("tar_members", members)
        if is_legacy_tar(set(spans)):
            ctx.facts.setdefault("torch_legacy_tar", True)
            for which in ("storages", "tensors"):
                lo, hi = spans[which]  # the last member of that name, as tarfile extracts
                scan_legacy_tar_member(data[lo:hi], which, ctx, loc.member(which))
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
