"""Compressed and archived content for the secret search: what a file decompresses to.

A secret in a ``.gz`` file, a ``.tar.gz`` member or a deflated zip member (a wheel, a jar, a
``.docx``) is not in the file's bytes as text; the search reads it only after decompression.
:func:`unpack` yields every piece of decompressed content under a file, and every piece it could
not produce, with the reason; the caller searches the first and lists the second as not
searched (fail closed). Decisions, stated once:

- **What is opened is decided by content, and by name.** A gzip, bzip2, xz, LZMA or zlib stream
  is recognised by its first bytes (:func:`~mltrust.scan.formats.compressed.sniff_compression`,
  the model scanner's sniffer), a zip by its local-header magic, a tar by a first block
  tarfile accepts (:func:`~mltrust.scan.formats.tar.starts_tar`, the tar scanner's sniff: v7
  archives have no magic). zstd (the sniffer's), lzip, lzop, 7z and rar content, recognised by
  its magic, and files named like them (or ``.br``, ``.Z``) cannot be decoded here: listed as
  not searched.
  A file *named* like one (``.gz``, ``.zip``, ``.whl``, ``.tar`` ...) that cannot be read as one
  is a piece not searched, so a broken archive is never taken as clean.
- **Bytes stored verbatim are not produced again.** A stored zip member and a tar member are
  already in their container's bytes, which the caller searches (a tar inside a gzip is
  produced whole, headers and all); they are opened only when they are themselves compressed or
  archived. Deflated, bzip2 and LZMA zip members and every decompressed stream are produced.
- **Output is bounded.** Every produced byte (and every stored member read to look inside it)
  is charged to an allowance the caller sets (the per-file and per-project secret budgets);
  a stream or member past it is produced up to the allowance and listed as not searched.
  Containers are opened at most ``max_unpack_depth`` levels deep; deeper compressed content is
  listed. Streams are decoded by the model scanner's bounded decoder
  (:func:`~mltrust.scan.formats.compressed.inflate`), zip members by :mod:`zipfile` with bounded
  reads (its CRC check included), tar headers by :mod:`tarfile`.
- **Hostile input never crashes the search.** Encrypted members, unknown compression methods,
  bad checksums, truncated or corrupt streams and unreadable directories are all pieces not
  searched, with the reason.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mltrust.config import DEFAULT_LIMITS

__all__ = ["TAIL", "Allowance", "Piece", "is_packed", "unpack"]

#: Bytes of a stored member read to tell whether it is itself compressed or archived.
_HEAD = 512
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_EOCD = b"PK\x05\x06"
#: Bytes at the end searched for a zip's end-of-directory record (its size plus the longest
#: comment).
TAIL = 22 + 65_535
_ZIP_NAMES = (
    ".zip",
    ".whl",
    ".egg",
    ".jar",
    ".war",
    ".ear",
    ".aar",
    ".apk",
    ".pyz",
    ".pyzw",
    ".nupkg",
    ".docx",
    ".xlsx",
    ".pptx",
    ".odt",
    ".ods",
    ".odp",
    ".epub",
)
_TAR_NAMES = (".tar",)
_STREAM_NAMES = (
    ".gz",
    ".tgz",
    ".bz2",
    ".tbz",
    ".tbz2",
    ".xz",
    ".txz",
    ".lzma",
    ".zlib",
    ".zst",
    ".zstd",
    ".tzst",
    ".lz",
    ".lzo",
    ".lz4",
    ".br",
    ".z",
    ".7z",
    ".rar",
)
#: Compressions and archives no decoder here reads, by their first bytes (zstd is the model
#: scanner's sniffer's): what they hold is listed as not searched, not passed as binary data.
_UNDECODABLE = (
    (b"LZIP", "lzip"),
    (b"\x89LZO\x00\r\n\x1a\n", "lzop"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
)
_ZIP_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    zipfile.BadZipFile,
    zlib.error,
)
_TAR_ERRORS = (OSError, EOFError, ValueError, UnicodeError, OverflowError, tarfile.TarError)


@dataclass
class Allowance:
    """Bytes :func:`unpack` may still produce (decompressed output and stored members read)."""

    left: int
    used: int = 0

    def take(self, n: int) -> None:
        self.left -= n
        self.used += n


@dataclass(frozen=True, slots=True)
class Piece:
    """Decompressed content (``data``) at ``where`` (``file:member:inner ...``), or content
    that was not searched and why (``data`` None)."""

    where: str
    data: bytes | None
    why: str = ""


def _kind(name: str, head: bytes, tail: bytes = b"") -> str | None:
    """``zip``, ``tar``, a stream's compression, or None; by content first, then by name
    (``named-<kind>`` for a name that promises what the content does not show). ``tail``:
    the last bytes, where a zip with something before it (a zip application behind a
    shebang, a polyglot) keeps its end-of-directory record."""
    from mltrust.scan.formats.compressed import sniff_compression
    from mltrust.scan.formats.tar import starts_tar

    if head.startswith(_ZIP_MAGIC) or _EOCD in tail:
        return "zip"
    if starts_tar(head):
        return "tar"
    stream = sniff_compression(head)
    if stream is not None:
        return stream
    for magic, kind in _UNDECODABLE:
        if head.startswith(magic):
            return kind
    low = name.lower()
    if low.endswith(_ZIP_NAMES):
        return "named-zip"
    if low.endswith(_TAR_NAMES):
        return "named-tar"
    if low.endswith(_STREAM_NAMES):
        return "named-stream"
    return None


def is_packed(name: str, head: bytes, tail: bytes = b"") -> bool:
    """Whether a file called ``name`` starting with ``head`` (at least 512 bytes when it has
    them) and ending with ``tail`` (:data:`TAIL` bytes) is content :func:`unpack` opens."""
    return _kind(name, head, tail) is not None


def unpack(where: str, data: Any, allowance: Allowance, depth: int = 0) -> Iterator[Piece]:
    """The decompressed pieces under ``data`` (bytes, or a read-only ``mmap``) of the file or
    member ``where``, and the pieces not searched. ``data`` itself is the caller's to search."""
    name = where.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    kind = _kind(name, bytes(data[:_HEAD]), bytes(data[-TAIL:]) if len(data) > 22 else b"")
    if kind is None:
        return
    if depth >= DEFAULT_LIMITS.max_unpack_depth:
        yield Piece(
            where,
            None,
            f"compressed or archived content nested more than "
            f"{DEFAULT_LIMITS.max_unpack_depth} levels deep; "
            "not searched",
        )
        return
    if kind == "named-stream":
        yield Piece(where, None, "named like a compressed stream but not one; not searched")
    elif kind in ("zip", "named-zip"):
        yield from _zip(where, data, allowance, depth)
    elif kind in ("tar", "named-tar"):
        yield from _tar(where, data, allowance, depth)
    else:
        yield from _stream(where, name, kind, data, allowance, depth)


def _spent(where: str) -> Piece:
    return Piece(
        where,
        None,
        "the secret search's budget for decompressed content is spent; not searched",
    )


def _stream(
    where: str, name: str, kind: str, data: Any, allowance: Allowance, depth: int
) -> Iterator[Piece]:
    from mltrust.config import Limits, ScanConfig
    from mltrust.scan._context import ScanContext
    from mltrust.scan.formats._compressed_scan import _inner_name, inflate

    if allowance.left <= 0:
        yield _spent(where)
        return
    limits = Limits(max_member_bytes=allowance.left, max_decompressed_bytes=allowance.left)
    ctx = ScanContext(ScanConfig(limits=limits))
    view = memoryview(data)
    try:
        res = inflate(view, kind, ctx)
    except LookupError:
        yield Piece(where, None, f"{kind} compression cannot be decoded here; not searched")
        return
    finally:
        view.release()
    try:
        out = bytes(res.data[: allowance.left])  # the decoder may stop one byte past its cap
    finally:
        res.close()
    allowance.take(len(out))
    inner = _inner_name(name, kind)
    inner_where = f"{where}:{inner if inner != name else name + '~'}"
    if out:
        yield Piece(inner_where, out)
    if res.limited is not None:
        yield Piece(where, None, f"decompressed past the secret search's budget ({res.limited})")
    elif res.error is not None:
        yield Piece(where, None, f"{res.error}; the rest not searched")
    elif res.end < len(data):
        # bytes after the last stream: the caller searched them raw; another compression?
        tail = bytes(data[res.end : res.end + _HEAD])
        if _kind("", tail) is not None:
            yield from unpack(f"{where}@{res.end}", bytes(data[res.end :]), allowance, depth)
    yield from unpack(inner_where, out, allowance, depth + 1)


class _MapReader(io.RawIOBase):
    """A seekable file over a read-only ``mmap`` (which has no ``seekable`` before 3.13)."""

    def __init__(self, view: Any) -> None:
        super().__init__()
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._view[self._pos : self._pos + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, len(self._view))[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def tell(self) -> int:
        return self._pos


def _file(data: Any) -> Any:
    if isinstance(data, bytes | bytearray):
        return io.BytesIO(data)
    return io.BufferedReader(_MapReader(data))


def _zip(where: str, data: Any, allowance: Allowance, depth: int) -> Iterator[Piece]:
    source = _file(data)
    try:
        archive = zipfile.ZipFile(source)
    except _ZIP_ERRORS as exc:
        yield Piece(where, None, f"zip archive could not be read ({exc}); not searched")
        return
    with archive:
        infos = archive.infolist()
        if len(infos) > DEFAULT_LIMITS.max_unpack_members:
            yield Piece(
                where,
                None,
                f"zip lists more than {DEFAULT_LIMITS.max_unpack_members} members; not searched",
            )
            return
        for info in infos:
            if info.is_dir():
                continue
            member = f"{where}:{info.filename}"
            if info.flag_bits & 0x1:
                yield Piece(member, None, "encrypted zip member; not searched")
                continue
            stored = info.compress_type == zipfile.ZIP_STORED
            try:
                if stored:
                    with archive.open(info) as fh:
                        head = fh.read(_HEAD)
                    if not is_packed(info.filename, head):
                        continue  # verbatim in the container's bytes, searched there
                if allowance.left <= 0:
                    yield _spent(member)
                    continue
                with archive.open(info) as fh:
                    content = fh.read(allowance.left + 1)
            except _ZIP_ERRORS as exc:
                yield Piece(member, None, f"zip member could not be read ({exc}); not searched")
                continue
            over = len(content) > allowance.left
            content = content[: allowance.left]
            allowance.take(len(content))
            if not stored:
                yield Piece(member, content)
            if over:
                yield Piece(
                    member,
                    None,
                    "decompressed past the secret search's budget; the rest not searched",
                )
                continue
            yield from unpack(member, content, allowance, depth + 1)


def _tar(where: str, data: Any, allowance: Allowance, depth: int) -> Iterator[Piece]:
    source = _file(data)
    try:
        archive = tarfile.open(fileobj=source, mode="r:")  # noqa: SIM115 (closed below)
    except _TAR_ERRORS as exc:
        yield Piece(where, None, f"tar archive could not be read ({exc}); not searched")
        return
    with archive:
        count = 0
        while True:
            try:
                info = archive.next()
            except _TAR_ERRORS as exc:
                yield Piece(where, None, f"tar archive could not be read ({exc}); not searched")
                return
            if info is None:
                return
            count += 1
            if count > DEFAULT_LIMITS.max_unpack_members:
                yield Piece(
                    where,
                    None,
                    f"tar holds more than "
                    f"{DEFAULT_LIMITS.max_unpack_members} members; not searched",
                )
                return
            if not info.isreg():
                continue  # names and link targets are in the container's bytes
            member = f"{where}:{info.name}"
            try:
                fh = archive.extractfile(info)
                if fh is None:
                    continue
                with fh:
                    if not is_packed(info.name, fh.read(_HEAD)):
                        continue  # verbatim in the container's bytes, searched there
                    if allowance.left <= 0:
                        yield _spent(member)
                        continue
                    fh.seek(0)
                    content = fh.read(allowance.left + 1)
            except _TAR_ERRORS as exc:
                yield Piece(member, None, f"tar member could not be read ({exc}); not searched")
                continue
            if len(content) > allowance.left:
                allowance.take(allowance.left)
                yield Piece(member, None, "larger than the secret search's budget; not searched")
                continue
            allowance.take(len(content))
            yield from unpack(member, content, allowance, depth + 1)
