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
and sniffed on their own. The readers' leniencies are followed too: NUL padding between gzip
members, a gzip header or trailer zlib rejects (Python's ``gzip`` reads the header itself and
checks the trailer after handing out the data), ``.xz`` and ``.lzma`` streams mixed
(``LZMAFile`` reads each in ``FORMAT_AUTO``), LZ4 skippable frames between frames; and a
stream that fails is decoded again in small steps, so that what a reader's small reads get
before the error is scanned.
"""

from __future__ import annotations

import importlib
import zlib
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from mltrust._lazy import lazy_exports
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext
    from mltrust.scan.formats._compressed_scan import Inflated, inflate

__all__ = ["CompressedScanner", "Inflated", "inflate", "new_decoder", "sniff_compression"]

# Only the scanner, its sniff and the decoders live here; decoding a whole stream and the scan
# are in :mod:`mltrust.scan.formats._compressed_scan`, imported when a stream is decoded
# (``Inflated`` and ``inflate`` are still importable from here, loaded on first use).
__getattr__, __dir__ = lazy_exports(
    __name__, {"mltrust.scan.formats._compressed_scan": ("Inflated", "inflate")}
)

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
        from mltrust.scan.formats._compressed_scan import scan_compressed

        scan_compressed(data, ctx, loc)
