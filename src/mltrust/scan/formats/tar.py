"""Tar archives (ustar, GNU and pax), parsed header by header without :mod:`tarfile`.

Member data is a zero-copy slice of the buffer and is sniffed by content. Reported: path
traversal, symbolic and hard links that point outside the extraction folder, device files and
FIFOs, bad header checksums, truncation, data after the end-of-archive marker, and more members
than ``max_archive_members``.

:mod:`tarfile` is the oracle (``torch.load`` reads the oldest checkpoint format with it, and
``TarFile.extractall`` is how tars get unpacked): headers, numbers and names are read exactly as
``TarInfo.frombuf`` reads them, and a file is a tar whenever its first block is a header tarfile
accepts, whatever its name field holds. Member paths and link targets are resolved through the
symbolic links the archive created before them, as the OS does while ``extractall`` (default
filter) writes them: ``d -> .`` then ``e -> d/d/..`` leaves the folder although every name looks
harmless. ``.tar.gz`` and friends reach this scanner through the compressed
scanner. The very old tar-based PyTorch format (``storages``, ``tensors``, ``pickle`` members) is
recognised the way ``torch.load`` recognises it (a ``storages`` member, links followed as
tarfile follows them): besides the generic sniffing of each member, every pickle torch would
unpickle is analysed (see :func:`mltrust.scan.formats.pytorch.scan_legacy_tar`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from mltrust.errors import InputError
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext

__all__ = ["TarScanner", "tar_checksum_ok"]

# Only what :meth:`TarScanner.sniff` needs lives here; the scanning itself is in
# :mod:`mltrust.scan.formats._tar_scan`, imported when a tar is scanned.

_BLOCK = 512
_HIGH_BYTES = bytes(range(128, 256))
# The numeric fields TarInfo.frombuf reads besides the checksum: mode, uid, gid, size, mtime,
# devmajor, devminor. One that does not parse makes the whole header invalid for tarfile.
_NUMBERS = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (329, 337), (337, 345))


def _nti(field: bytes) -> int:
    """A numeric header field, read exactly as ``tarfile.nti`` reads it.

    GNU base-256 only after a 0x80 (positive) or 0xff (negative) lead byte; anything else is the
    text before the first NUL, which must be ASCII and is then given to ``int(text.strip() or
    "0", 8)``: leading white space, a sign, a ``0o`` prefix and ``_`` between digits all count,
    and bytes after the NUL are ignored. Raises :class:`InputError` where tarfile raises.
    """
    if field[0] in (0o200, 0o377):
        value = int.from_bytes(field[1:], "big")
        if field[0] == 0o377:
            value -= 256 ** (len(field) - 1)
        return value
    try:
        text = field.split(b"\x00", 1)[0].decode("ascii")
        return int(text.strip() or "0", 8)
    except ValueError:
        raise InputError(f"bad number {field!r} in tar header") from None


def tar_checksum_ok(block: bytes) -> bool:
    """Whether the 512-byte block carries a checksum tarfile accepts (unsigned or signed sum)."""
    if len(block) < _BLOCK:
        return False
    try:
        stored = _nti(block[148:156])
    except InputError:
        return False
    body = block[:148] + b" " * 8 + block[156:_BLOCK]
    unsigned = sum(body)
    if stored == unsigned:
        return True
    high = len(body) - len(body.translate(None, _HIGH_BYTES))
    return stored == unsigned - 256 * high


def _frombuf(block: bytes) -> None:
    """Raise :class:`InputError` where ``TarInfo.frombuf`` rejects the (non-zero) block.

    A bad checksum or any numeric field that does not parse (the old GNU sparse map included)
    makes tarfile stop reading the archive there, or refuse to open it at offset 0.
    """
    if not tar_checksum_ok(block):
        raise InputError("bad checksum")
    for lo, hi in _NUMBERS:
        _nti(block[lo:hi])
    if block[156:157] == b"S":
        _old_sparse(block[386:482], 4, keep_zero=True)
        _nti(block[483:495])


def starts_tar(data: memoryview | bytes) -> bool:
    """Whether ``data`` is a tar archive: exactly when tarfile.open(mode="r:") accepts its
    first block as a header (ustar, GNU, pax or v7 with no magic at all: its name field may be
    empty and its numbers written any way tarfile reads them). A first block of zeros opens
    as an empty archive: nothing in it is read, so it is not claimed. The one decision of
    what is a tar, shared by the scanner and the secret search's unpacking."""
    if len(data) < _BLOCK:
        return False
    block = bytes(data[:_BLOCK])
    if not any(block):
        return False
    try:
        _frombuf(block)
    except InputError:
        return False
    return True


def _old_sparse(buf: bytes, count: int, *, keep_zero: bool) -> list[tuple[int, int]]:
    """The ``(offset, numbytes)`` pairs of an old GNU sparse map; :class:`InputError` where
    tarfile raises (its ``except ValueError`` never catches ``InvalidHeaderError``)."""
    structs: list[tuple[int, int]] = []
    for i in range(count):
        offset = _nti(buf[i * 24 : i * 24 + 12])
        numbytes = _nti(buf[i * 24 + 12 : i * 24 + 24])
        if keep_zero or (offset and numbytes):
            structs.append((offset, numbytes))
    return structs


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
        return starts_tar(data)

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        from mltrust.scan.formats._tar_scan import scan_tar

        scan_tar(data, ctx, loc)
