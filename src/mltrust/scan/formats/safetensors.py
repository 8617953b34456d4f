"""safetensors: an 8-byte header length, a JSON header, then raw tensor bytes.

The format cannot carry code; the risks are a malformed header (loaders have had parsing bugs,
and a header that lies about sizes makes readers go out of bounds) and parser differentials
(duplicate keys). The data section is never read: only the header is parsed, and offsets are
checked against the file size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext

__all__ = ["SafetensorsScanner"]

# Only the scanner and what its sniff needs live here; the scan itself is in
# :mod:`mltrust.scan.formats._safetensors_scan`, imported when a safetensors file is scanned.


#: Largest header the reference implementation accepts: the loader's rule, mirrored (not a
#: bound we choose, so not in :class:`~mltrust.config.Limits`).
_LOADER_HEADER_BYTES = 100_000_000


class SafetensorsScanner(FormatScanner):
    name = "safetensors"
    description = "safetensors tensor files (header, dtypes, shapes and offsets validated)"
    priority = 60
    suffixes = (".safetensors",)
    can_execute_code = False

    def sniff(self, data: memoryview, name: str) -> bool:
        if len(data) < 10:
            return False
        n = int.from_bytes(data[:8], "little")
        # serde_json (the reference loader) skips any JSON whitespace before the '{'
        head = bytes(data[8 : 8 + max(0, min(n, 64))]).lstrip(b" \t\r\n")
        if not head.startswith(b"{"):
            return False
        if 2 <= n <= min(_LOADER_HEADER_BYTES, len(data) - 8):
            return True
        # A header length that cannot be right: still safetensors when the name says so, so
        # that the bad length is reported as malformed rather than the file as unknown.
        return name.lower().endswith(".safetensors")

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        from mltrust.scan.formats._safetensors_scan import scan_safetensors

        scan_safetensors(data, ctx, loc)
