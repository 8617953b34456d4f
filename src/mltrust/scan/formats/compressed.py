"""Compressed streams: gzip, bzip2, xz, raw LZMA ("lzma alone"), zlib and LZ4 frames.

joblib compresses whole pickles this way, and ``.tar.gz`` archives arrive this way. Streams are
decompressed incrementally, 1 MiB at a time, and never held in memory beyond
``max_decompressed_in_memory``: past it, the output goes on to an unlinked temporary file that
is memory-mapped for scanning, so only the pages a scanner actually reads become resident (the
pickle analyser skips array payloads by offset), and the mapping is dropped as soon as the
nested scan returns. A small high-ratio stream (or one nested in a zip in a tar) therefore costs
disk and time, bounded by the limits, not gigabytes of memory. Every byte produced is charged to
the per-file decompression budget (``max_decompressed_bytes``, across nesting levels), a single
stream stops at ``max_member_bytes``, and output beyond ``max_compression_ratio`` times all the
input consumed so far (past a small floor) is treated as a bomb. Whatever
was decoded before a limit, a truncation or a corrupt block is still scanned: a pickle payload
at the start of a stream executes before a loader ever sees the broken tail.

Concatenated gzip, bzip2 and xz streams are decoded as one output (as ``gzip``/``bz2``/``lzma``
readers do); bytes after the last stream that do not start another are reported as hidden data
and sniffed on their own.
"""

from __future__ import annotations

import importlib
import mmap
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from mltrust.errors import LimitExceeded
from mltrust.scan import _archive_rules as R
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext

__all__ = ["CompressedScanner", "Inflated", "inflate", "new_decoder", "sniff_compression"]

_CHUNK = 1 << 20
#: Output below this size is never called a bomb, whatever the ratio (tiny inputs of zeros).
_BOMB_FLOOR = 32 << 20

_GZIP = b"\x1f\x8b"
_XZ = b"\xfd7zXZ\x00"
_LZ4 = b"\x04\x22\x4d\x18"
#: A Zstandard frame (RFC 8878), and the range of its skippable frames' magic numbers.
_ZSTD = b"\x28\xb5\x2f\xfd"


def _zstd_skippable(h: bytes) -> bool:
    """A zstd skippable frame: magic ``0x184D2A50``..``0x184D2A5F``, little-endian."""
    return len(h) >= 4 and 0x50 <= h[0] <= 0x5F and h[1:4] == b"\x2a\x4d\x18"


_BZ2_BLOCK = b"\x31\x41\x59\x26\x53\x59"
_BZ2_EOS = b"\x17\x72\x45\x38\x50\x90"


class _Decoder(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: Any, max_length: int = ...) -> bytes: ...


def _lz4_module() -> Any | None:
    try:
        return importlib.import_module("lz4.frame")
    except ImportError:
        return None


def _lzma_error() -> type[Exception]:
    """``lzma.LZMAError`` (evaluated only when an exception is being matched)."""
    import lzma

    return lzma.LZMAError


def new_decoder(kind: str) -> _Decoder:
    """A fresh incremental decoder for ``kind`` (``gzip``, ``zlib``, ``deflate``, ``bzip2``,
    ``xz``, ``lzma``, ``lz4``)."""
    if kind == "gzip":
        return zlib.decompressobj(31)
    if kind == "zlib":
        return zlib.decompressobj(15)
    if kind == "deflate":
        return zlib.decompressobj(-15)
    if kind == "bzip2":
        import bz2  # imported on first use: start-up time of every scan

        return bz2.BZ2Decompressor()
    if kind in ("xz", "lzma"):
        import lzma

        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE)
    if kind == "lz4":
        mod = _lz4_module()
        if mod is None:
            raise LookupError("lz4")
        dec: _Decoder = mod.LZ4FrameDecompressor()
        return dec
    raise LookupError(kind)


def sniff_compression(head: memoryview | bytes) -> str | None:
    """The compression of a stream starting with ``head``, or None.

    The prefixes are joblib's (``joblib.compressor``: zlib ``78``, gzip ``1f 8b``, bz2 ``BZ``,
    lzma ``5d 00``, xz ``fd 37 7a 58 5a``, lz4 ``04 22 4d 18``): any stream joblib would hand
    to a decoder is claimed here when the decoder accepts its first bytes, so a header variant
    joblib reads (another zlib window, another LZMA dictionary size) cannot slip past as
    unknown data. Well-formed gzip and bzip2 headers are claimed without probing, so that a
    truncated stream is still scanned (and reported truncated).
    """
    h = bytes(head[:16])
    if h.startswith(_GZIP):
        if len(h) > 2 and h[2] == 8:
            return "gzip"
        return "gzip" if _probe(head, "gzip") else None
    if h.startswith(_XZ):
        return "xz"
    if h.startswith(_LZ4):
        return "lz4"
    if h.startswith(_ZSTD) or _zstd_skippable(h):
        # pandas.read_pickle infers zstd from ".zst" and reads it with the zstandard module;
        # no decoder here (Python 3.14's compression.zstd is not on 3.11): claimed, to be
        # reported as not scanned rather than passed as unknown bytes.
        return "zstd"
    if h.startswith(b"BZ"):
        if (
            h.startswith(b"BZh")
            and len(h) >= 10
            and 0x31 <= h[3] <= 0x39
            and h[4:10]
            in (
                _BZ2_BLOCK,
                _BZ2_EOS,
            )
        ):
            return "bzip2"
        return "bzip2" if _probe(head, "bzip2") else None
    if _zlib_header(h):
        # joblib's and zlib's default header (78) needs only a clean start; any other window
        # is claimed only on stronger evidence (see _probe_strict), since those two bytes and
        # a few decodable ones occur in ordinary binary data (a git index, raw tensor bytes)
        strict = h[0] != 0x78
        return "zlib" if _probe(head, "zlib", strict=strict) else None
    if _lzma_alone_header(h):
        strict = not h.startswith(b"\x5d\x00")
        return "lzma" if _probe(head, "lzma", strict=strict) else None
    return None


def _zlib_header(h: bytes) -> bool:
    """Whether ``h`` starts with a header zlib accepts (RFC 1950): method 8 (deflate), a window
    of at most 32 KiB (CINFO <= 7: first byte ``08``, ``18`` ... ``78``), and a check value
    making the first two bytes a multiple of 31. Not only joblib's ``78``: ``zlib.decompress``
    reads a stream made with any window size."""
    return len(h) >= 2 and h[0] & 0x0F == 8 and h[0] >> 4 <= 7 and (h[0] << 8 | h[1]) % 31 == 0


def _lzma_alone_header(h: bytes) -> bool:
    """Whether ``h`` starts like a raw LZMA ("alone") stream liblzma decodes: a properties byte
    ``(pb*5 + lp)*9 + lc`` below 225 (joblib's ``5d`` is one value of many), a 4-byte
    dictionary size (any), an 8-byte length (-1 for unknown, else below 2**38 as liblzma's
    own sniffer requires; a length of 0 hides nothing) and the range coder's first byte, which
    is always 0."""
    if len(h) < 14 or h[0] >= 225 or h[13] != 0:
        return False
    size = int.from_bytes(h[5:13], "little")
    return size == (1 << 64) - 1 or 0 < size < (1 << 38)


#: Output a strict probe must reach (or the stream must end cleanly before it).
_STRICT_OUTPUT = 4096


def _probe(head: memoryview | bytes, kind: str, *, strict: bool = False) -> bool:
    """Whether the first bytes decode without error (cheap: at most 64 KiB in, 4 KiB out).

    ``strict`` (headers that ordinary binary data matches by chance): the first bytes must
    also either end the stream cleanly or decode to a full 4 KiB. Both decoders accept a few
    bytes of almost anything before they fail, and a false claim is not free (raw tensor bytes
    reported as a truncated stream, a git index as "not searched")."""
    decoder = new_decoder(kind)
    try:
        out = decoder.decompress(bytes(head[:65536]), _STRICT_OUTPUT)
    except (zlib.error, _lzma_error(), EOFError, ValueError, OSError):
        return False  # OSError: bz2's "Invalid data stream"
    if not strict:
        return True
    return len(out) >= _STRICT_OUTPUT or bool(getattr(decoder, "eof", False))


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
) -> None:
    pos = 0
    total_in = len(src)
    while pos < total_in:
        dec = decoder_factory() if decoder_factory is not None else new_decoder(kind)
        res.complete = False
        eof = False
        try:
            while pos < total_in and not eof:
                chunk = src[pos : pos + _CHUNK]
                pos += len(chunk)
                data: Any = chunk
                while True:
                    room = cap - len(out) + 1
                    if room <= 0:
                        break
                    piece = dec.decompress(data, min(room, _CHUNK))
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
            res.error = f"corrupt {kind} data: {exc}"
            return
        if not eof:
            res.error = f"{kind} stream is truncated (no end-of-stream marker)"
            return
        res.complete = True
        res.streams += 1
        # lz4's decoder reports ``unused_data`` as None when nothing follows the frame.
        unused = len(dec.unused_data or b"") + len(getattr(dec, "unconsumed_tail", b"") or b"")
        pos -= unused
        res.end = pos
        if not multi or pos >= total_in or sniff_compression(src[pos : pos + 16]) != kind:
            break
        if kind == "gzip" and bytes(src[pos : pos + 2]) != _GZIP:
            break


def _inner_name(name: str, kind: str) -> str:
    lowered = name.lower()
    for suffix in (".gz", ".tgz", ".bz2", ".xz", ".lzma", ".z", ".lz4", ".zlib"):
        if lowered.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem + ".tar" if suffix == ".tgz" else stem
    return name


class CompressedScanner(FormatScanner):
    """gzip / bzip2 / xz / lzma / zlib / lz4 streams, decoded with hard caps and scanned."""

    name: ClassVar[str] = "compressed"
    description: ClassVar[str] = (
        "gzip, bzip2, xz, lzma, zlib and LZ4 streams (joblib compression, .tar.gz): decoded "
        "with size, ratio and total limits, then the content is sniffed and scanned"
    )
    priority: ClassVar[int] = 55
    suffixes: ClassVar[tuple[str, ...]] = (
        ".gz", ".tgz", ".bz2", ".xz", ".lzma", ".lz4", ".z", ".zst",
    )  # fmt: skip
    can_execute_code: ClassVar[bool] = True

    def sniff(self, data: memoryview, name: str) -> bool:
        return sniff_compression(data[:65536]) is not None

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
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
                ctx.scan_nested(
                    view, ctx.whole_file_member(loc, f"[{kind}]"), inner.rsplit("/", 1)[-1]
                )
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
