"""Pickle and joblib files (protocols 0-5, concatenated streams, joblib array data).

Also the legacy joblib "Z-file" container (joblib < 0.10 compressed pickles: ``ZF``, the
uncompressed length in hex, then one zlib stream), decompressed within the scan's budget and
scanned as nested content. Modern compressed joblib files are plain zlib/gzip/bz2/xz/lzma
streams handled by the generic decompression scanners.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from mltrust.errors import InputError, LimitExceeded
from mltrust.scan._pickle import _rules as _pickle_rules  # noqa: F401  (registers the rules)
from mltrust.scan._pickle._machine import scan_pickle_stream
from mltrust.scan.formats._pickle_head import Reach, simulate
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext

__all__ = ["JoblibZFileScanner", "PickleScanner"]

#: Opcodes the sniffer follows before it calls bytes a pickle because the unpickler would still
#: be running (see :mod:`mltrust.scan.formats._pickle_head`).
_SNIFF_OPS = 512
#: A data-only pickle without a PROTO header is still reported as a pickle from this many
#: opcodes on (fewer: two random bytes and a ``.`` would make a "pickle" of tensor data).
_DATA_OPS = 3


class PickleScanner(FormatScanner):
    """Python pickles (and joblib files, which are pickles followed by raw array data)."""

    name: ClassVar[str] = "pickle"
    description: ClassVar[str] = (
        "Python pickle protocols 0-5 and joblib dumps: a symbolic stack machine resolves every "
        "import and call without unpickling"
    )
    priority: ClassVar[int] = 40
    suffixes: ClassVar[tuple[str, ...]] = (".pkl", ".pickle", ".joblib", ".dat")
    can_execute_code: ClassVar[bool] = True

    def sniff(self, data: memoryview, name: str) -> bool:
        """Whether the real unpickler would get anywhere in ``data``.

        Anything on which ``pickle.load`` reaches an import or a call, or is still unpickling
        after :data:`_SNIFF_OPS` opcodes, is a pickle, whatever its first byte (protocol 0/1
        text, no PROTO, long lines, leading MARK/POP...). A complete pickle that imports nothing
        is reported as a pickle when it has a PROTO header or runs a few opcodes, and so is a
        PROTO header followed by a few valid opcodes and then garbage (a damaged pickle: the
        scan reports it malformed). Other bytes on which both unpicklers fail before any import
        are not a pickle: nothing in them can run.
        """
        if not len(data):
            return False
        reach, first_ops = simulate(data, 0, max_ops=_SNIFF_OPS)
        if reach is Reach.CODE or reach is Reach.UNKNOWN:
            return True
        if reach is Reach.DATA:
            return data[0] == 0x80 or first_ops >= _DATA_OPS
        # A PROTO header and a few valid opcodes, then breakage: a damaged pickle. It cannot
        # run code as it is, but it is a pickle that cannot be parsed: reported (fail closed).
        return data[0] == 0x80 and first_ops >= _DATA_OPS

    def claims_raw_data(self, data: memoryview) -> bool:
        """Raw bytes are a pickle to report only if an unpickler would reach an import."""
        reach, _ = simulate(data, 0, max_ops=_SNIFF_OPS)
        return reach is Reach.CODE or reach is Reach.UNKNOWN

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        summary = scan_pickle_stream(data, ctx, loc, context="pickle")
        ctx.facts["pickle_streams"] = summary.streams
        ctx.facts["pickle_opcodes"] = summary.opcodes


_ZF_LENGTH = len(f"{2**64:#x}")  # joblib's _MAX_LEN


def _zfile_length(data: memoryview) -> int | None:
    """The length field of a Z-file as joblib's read_zfile parses it: ``int(field, 16)``."""
    field = bytes(data[2 : 2 + _ZF_LENGTH])
    try:
        return int(field, 16)
    except ValueError:
        return None


class JoblibZFileScanner(FormatScanner):
    """Legacy joblib compressed pickles (``ZF`` + hex length + zlib stream)."""

    name: ClassVar[str] = "joblib-zfile"
    description: ClassVar[str] = (
        "legacy joblib (< 0.10) zlib-compressed pickle; decompressed and scanned as a pickle"
    )
    priority: ClassVar[int] = 45
    can_execute_code: ClassVar[bool] = True

    def sniff(self, data: memoryview, name: str) -> bool:
        # joblib.load sends every file starting with "ZF" to read_zfile; it fails unless the
        # next 19 bytes parse as int(..., 16), so those are what is claimed (no more: a "ZF"
        # file joblib cannot read holds nothing it would run).
        return bytes(data[:2]) == b"ZF" and _zfile_length(data) is not None

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        from mltrust.scan import _archive_rules as R
        from mltrust.scan.formats._compressed_scan import inflate

        declared = _zfile_length(data)
        if declared is None or declared < 0:
            raise InputError("Z-file length field is not a valid length")
        limit = ctx.config.limits.max_member_bytes
        if declared > limit:
            raise LimitExceeded(f"Z-file declares {declared} bytes, above max_member_bytes")
        # read_zfile skips one space after the length field (old Python 2 headers), then hands
        # the rest to zlib.decompress(data, 15): any zlib header, any window size.
        body = 2 + _ZF_LENGTH
        if bytes(data[body : body + 1]) == b" ":
            body += 1
        # Decoded like every other stream: bounded, charged, spilled beyond the memory budget.
        res = inflate(data[body:], "zlib", ctx, multi=False, expected=declared)
        try:
            if res.limited:
                ctx.report(R.ARC_BOMB, f"Z-file: {res.limited}", loc)
            elif res.error:
                ctx.report(R.ARC_TRUNCATED, f"Z-file: {res.error}", loc)
            elif len(res.data) != declared:
                raise InputError(f"Z-file holds {len(res.data)} bytes but declares {declared}")
            if res.data:
                view = memoryview(res.data)
                try:
                    ctx.scan_nested(view, ctx.whole_file_member(loc, "zfile"), "zfile.pkl")
                finally:
                    view.release()
        finally:
            res.close()
