"""Decoding compressed streams with hard caps, and the compressed scanner's work
(:mod:`mltrust.scan.formats.compressed`), imported only when a stream is decoded. See that
module for the limits and why."""

from __future__ import annotations

import mmap
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrust.errors import LimitExceeded
from mltrust.scan import _archive_rules as R
from mltrust.scan.formats.compressed import (
    _GZIP,
    _LZ4,
    _Decoder,
    _lz4_module,
    _lzma_error,
    _zstd_skippable,
    new_decoder,
    sniff_compression,
)

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext

__all__ = ["Inflated", "inflate", "scan_compressed"]

_CHUNK = 1 << 20
#: Output asked of a decoder per call when a corrupt stream is decoded again to keep what
#: comes before the error (half of the 8 KiB that Python's buffered readers ask for).
_SALVAGE_STEP = 4096
#: The kinds LZMAFile's FORMAT_AUTO decodes, one stream after the other.
_LZMA_FAMILY = frozenset({"xz", "lzma"})
#: Output below this size is never called a bomb, whatever the ratio (tiny inputs of zeros).
_BOMB_FLOOR = 32 << 20


class _Spill:
    """Decoded output: in memory up to a threshold, then in an unlinked temporary file."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.buf = bytearray()
        self.file: Any = None
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def write(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.file is None:
            self.buf += piece
            if len(self.buf) > self.threshold:
                import tempfile  # only when spilling (its import costs start-up time)

                self.file = tempfile.TemporaryFile(prefix="mltrust-inflate-")  # noqa: SIM115
                self.file.write(self.buf)
                self.buf = bytearray()
        else:
            self.file.write(piece)

    def truncate(self, size: int) -> None:
        if size >= self.size:
            return
        self.size = size
        if self.file is None:
            del self.buf[size:]
        else:
            self.file.flush()
            self.file.truncate(size)
            self.file.seek(size)

    def finish(self) -> bytearray | mmap.mmap:
        """The decoded bytes: the buffer, or a read-only map of the spill file."""
        if self.file is None:
            return self.buf
        self.file.flush()
        if not self.size:
            self.file.close()
            return bytearray()
        try:
            return mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
        finally:
            self.file.close()  # the map keeps the (unlinked) file alive


@dataclass
class Inflated:
    """The bounded result of decoding one or more concatenated streams.

    ``data`` is a ``bytearray``, or a read-only ``mmap`` of a spill file for output beyond
    ``max_decompressed_in_memory``; call :meth:`close` once the content has been scanned.
    """

    data: bytearray | mmap.mmap = field(default_factory=bytearray)
    #: True when the last stream reached its end marker.
    complete: bool = False
    #: Why decoding stopped early: a corrupt block, or None.
    error: str | None = None
    #: Which limit stopped decoding (bomb), or None.
    limited: str | None = None
    #: Offset in the input just after the last complete stream.
    end: int = 0
    streams: int = 0

    def close(self) -> None:
        """Drop a spill mapping (a no-op for in-memory output)."""
        if isinstance(self.data, mmap.mmap):
            try:
                self.data.close()
            except BufferError:  # a scanner kept a view alive; the GC unmaps it
                pass


def inflate(
    src: memoryview,
    kind: str,
    ctx: ScanContext,
    *,
    multi: bool = True,
    expected: int | None = None,
    decoder_factory: Callable[[], _Decoder] | None = None,
) -> Inflated:
    """Decode ``src`` as ``kind`` into a bounded buffer, charging ``ctx`` for every byte.

    ``multi`` decodes further streams of the same kind that follow the first one. ``expected``
    (a declared uncompressed size) only tightens the cap: output beyond it is a finding for the
    caller, never trusted to allocate.
    """
    limits = ctx.limits
    cap = int(limits.max_member_bytes)
    ratio = float(limits.max_compression_ratio)
    if expected is not None:
        cap = min(cap, max(expected, 0) + 1)
    res = Inflated()
    out = _Spill(int(limits.max_decompressed_in_memory))
    try:
        _decode_into(src, kind, ctx, res, out, cap, ratio, multi, expected, decoder_factory)
    finally:
        res.data = out.finish()
    return res


def _decode_into(
    src: memoryview,
    kind: str,
    ctx: ScanContext,
    res: Inflated,
    out: _Spill,
    cap: int,
    ratio: float,
    multi: bool,
    expected: int | None,
    decoder_factory: Callable[[], _Decoder] | None,
    step: int = _CHUNK,
) -> None:
    pos = 0
    total_in = len(src)
    stream_kind = kind
    while pos < total_in:
        dec = decoder_factory() if decoder_factory is not None else new_decoder(stream_kind)
        start, mark = pos, len(out)
        res.complete = False
        eof = False
        resume: int | None = None
        try:
            while pos < total_in and not eof:
                chunk = src[pos : pos + _CHUNK]
                pos += len(chunk)
                data: Any = chunk
                while True:
                    room = cap - len(out) + 1
                    if room <= 0:
                        break
                    piece = dec.decompress(data, min(room, step))
                    if piece:
                        out.write(piece)
                        ctx.charge_decompressed(len(piece))
                    if len(out) > cap:
                        break
                    produced = len(out)
                    # All input so far: concatenated small streams are not each a "bomb".
                    consumed = max(pos, 1)
                    if produced > _BOMB_FLOOR and produced > ratio * consumed:
                        res.limited = (
                            f"{kind} output exceeds {ratio:g}x its input "
                            f"({produced} bytes from {consumed})"
                        )
                        return
                    if dec.eof:
                        eof = True
                        break
                    tail = getattr(dec, "unconsumed_tail", b"")
                    if tail:
                        data = tail
                        continue
                    if getattr(dec, "needs_input", True):
                        break
                    data = b""
                if len(out) > cap:
                    if expected is not None and len(out) == expected + 1:
                        res.limited = f"{kind} output exceeds its declared size of {expected}"
                    else:
                        res.limited = f"{kind} output exceeds max_member_bytes={cap}"
                    out.truncate(cap)
                    return
                ctx.check_deadline()
        except LimitExceeded as exc:
            res.limited = str(exc)
            return
        except (zlib.error, _lzma_error(), OSError, EOFError, ValueError, RuntimeError) as exc:
            res.error = f"corrupt {stream_kind} data: {exc}"
            if stream_kind == "gzip" and decoder_factory is None:
                # Python's gzip module (gzip.open, pandas.read_pickle, tarfile's r:gz) reads
                # the header itself (no header CRC check, reserved flags ignored) and returns
                # a member's data before it checks the CRC-32 and size after it; zlib's
                # decoder raised and dropped the output (red-team finding: nothing scanned).
                resume = _python_gzip_member(src, start, ctx, res, out, mark, cap, ratio, expected)
                if resume is None:
                    return
            elif step > _SALVAGE_STEP and decoder_factory is None:
                # Readers hand out each small read's output before they meet the corrupt
                # byte (lzma.open: 8 KiB reads); the error dropped up to a whole step of
                # output here (red-team finding: a pickle at the start of a stream corrupt
                # near its end was not scanned). The stream is decoded again in small steps.
                _rewind(ctx, out, mark)
                again = Inflated()
                _decode_into(
                    src[start:],
                    stream_kind,
                    ctx,
                    again,
                    out,
                    cap,
                    ratio,
                    False,
                    expected,
                    None,
                    step=_SALVAGE_STEP,
                )
                res.limited = again.limited
                return
            else:
                return
        if resume is not None:
            pos = resume
        elif not eof:
            res.error = f"{stream_kind} stream is truncated (no end-of-stream marker)"
            return
        res.complete = True
        res.streams += 1
        if resume is None:
            # lz4's decoder reports ``unused_data`` as None when nothing follows the frame.
            unused = len(dec.unused_data or b"") + len(getattr(dec, "unconsumed_tail", b"") or b"")
            pos -= unused
        res.end = pos
        if multi and kind == "gzip":
            # Python's gzip module (gzip.open, pandas.read_pickle, tarfile's r:gz) skips NUL
            # padding after a member and reads the member that follows it (red-team finding:
            # a pickle split over two members with NULs between them was read as truncated).
            after = _after_nuls(src, pos)
            if bytes(src[after : after + 2]) == _GZIP:
                pos = after
        if multi and stream_kind == "lz4" and decoder_factory is None:
            # lz4.frame (joblib's lz4 reader) skips skippable frames and reads the frame after
            # them (red-team finding: one between two frames stopped the decoding mid-pickle).
            after = _after_skippable(src, pos, ctx)
            if bytes(src[after : after + 4]) == _LZ4:
                pos = after
        if not multi or pos >= total_in:
            break
        following = sniff_compression(src[pos : pos + 16])
        if following is None:
            break
        if following != stream_kind and not (
            # lzma.open / LZMAFile (joblib's xz and lzma readers, pandas.read_pickle) read
            # each further stream in FORMAT_AUTO: .xz and .lzma streams mix (red-team finding:
            # an xz stream then an lzma one stopped the decoding mid-pickle).
            decoder_factory is None and {stream_kind, following} <= _LZMA_FAMILY
        ):
            break
        if kind == "gzip" and bytes(src[pos : pos + 2]) != _GZIP:
            break
        stream_kind = following


def _rewind(ctx: ScanContext, out: _Spill, mark: int) -> None:
    """Drop the output after ``mark`` to decode it again, and its charge to the budget."""
    ctx.decompressed_bytes -= max(len(out) - mark, 0)
    out.truncate(mark)


def _python_gzip_member(
    src: memoryview,
    start: int,
    ctx: ScanContext,
    res: Inflated,
    out: _Spill,
    mark: int,
    cap: int,
    ratio: float,
    expected: int | None,
) -> int | None:
    """Decode the gzip member at ``start`` as Python's gzip module does (its own header
    reading, raw deflate) into ``out`` from ``mark``; the offset after its trailer when the
    deflate data ends and the 8-byte trailer is there (the reading may go on), else None.
    The trailer is not checked: a member after a bad one is decoded too (a superset)."""
    _rewind(ctx, out, mark)
    body = _gzip_body(src, start)
    if body is None:
        return None
    raw = Inflated()
    _decode_into(src[body:], "deflate", ctx, raw, out, cap, ratio, False, expected, None)
    res.limited = raw.limited
    after = body + raw.end + 8
    if raw.limited or not raw.complete or after > len(src):
        return None
    return after


def _gzip_body(src: memoryview, start: int) -> int | None:
    """The offset of the deflate data of the gzip member at ``start`` (after its header's
    optional extra field, name, comment and header CRC), or None when the header is cut."""
    flags = src[start + 3] if start + 3 < len(src) else 0
    at = start + 10
    if flags & 0x04:  # FEXTRA
        at += 2 + int.from_bytes(src[at : at + 2], "little")
    for bit in (0x08, 0x10):  # FNAME, FCOMMENT: NUL-terminated
        if flags & bit:
            end = bytes(src[at : at + (1 << 20)]).find(b"\x00")
            if end < 0:
                return None
            at += end + 1
    if flags & 0x02:  # FHCRC
        at += 2
    return at if at <= len(src) else None


def _after_skippable(src: memoryview, pos: int, ctx: ScanContext) -> int:
    """The offset after the LZ4 skippable frames (magic ``0x184D2A50``..``5F``, a 32-bit
    little-endian size, that many bytes) that start at ``pos``; ``pos`` when there are none
    or the last one runs past the end."""
    at, count = pos, 0
    while _zstd_skippable(bytes(src[at : at + 4])) and at + 8 <= len(src):
        count += 1
        if count % 4096 == 0:
            ctx.check_deadline()
        at += 8 + int.from_bytes(src[at + 4 : at + 8], "little")
        if at > len(src):
            return pos
    return at


def _after_nuls(src: memoryview, pos: int) -> int:
    """The offset of the first byte at or after ``pos`` that is not NUL (``len(src)`` if none)."""
    while pos < len(src):
        chunk = bytes(src[pos : pos + _CHUNK])
        rest = chunk.lstrip(b"\x00")
        pos += len(chunk) - len(rest)
        if rest:
            break
    return pos


def _inner_name(name: str, kind: str) -> str:
    lowered = name.lower()
    for suffix in (".gz", ".tgz", ".bz2", ".xz", ".lzma", ".z", ".lz4", ".zlib"):
        if lowered.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem + ".tar" if suffix == ".tgz" else stem
    return name


def scan_compressed(data: memoryview, ctx: ScanContext, loc: Location) -> None:
    """Decode and scan a compressed stream (the work of :meth:`CompressedScanner.scan`)."""
    kind = sniff_compression(data[:65536])
    if kind is None:
        return
    ctx.facts.setdefault("compression", kind)
    if kind == "lz4" and _lz4_module() is None:
        ctx.report(
            R.ARC_NOT_SCANNED,
            "LZ4 frame found but the lz4 module is not installed; content not scanned",
            loc,
        )
        return
    if kind == "zstd":
        ctx.report(
            R.ARC_NOT_SCANNED,
            "Zstandard frame (pandas.read_pickle reads .zst files); mltrust has no zstd "
            "decoder, so the content was not scanned",
            loc,
        )
        return
    res = inflate(data, kind, ctx)
    if res.limited:
        ctx.report(R.ARC_BOMB, res.limited, loc)
    elif res.error:
        ctx.report(
            R.ARC_TRUNCATED,
            f"{res.error} after {len(res.data)} decoded bytes; the decoded part was scanned",
            loc,
        )
    inner = _inner_name(loc.members[-1] if loc.members else loc.path, kind)
    if res.data:
        view = memoryview(res.data)
        try:
            ctx.scan_nested(view, ctx.whole_file_member(loc, f"[{kind}]"), inner.rsplit("/", 1)[-1])
        finally:
            view.release()
            res.close()
    elif res.complete:
        ctx.facts.setdefault("empty_stream", True)
    if res.complete and not res.limited and res.end < len(data):
        rest = data[res.end :]
        if any(rest[: 1 << 16]) or _nonzero(rest):
            ctx.report(
                R.ARC_HIDDEN_DATA,
                f"{len(rest)} bytes follow the end of the {kind} stream",
                loc.at(res.end),
            )
            ctx.scan_nested(rest, loc.member(f"[after-{kind}@{res.end}]"), "trailing")


def _nonzero(view: memoryview) -> bool:
    step = 1 << 20
    return any(view[i : i + step].tobytes().strip(b"\x00") for i in range(0, len(view), step))
