"""NumPy ``.npy`` arrays (and, through the zip scanner, each member of an ``.npz``).

The header is a Python dict literal; it is parsed by a small hand-written reader of literals
(strings, numbers, booleans, tuples, lists, dicts; nothing else, bounded depth and size) —
never ``eval``. The dtype, shape and ``fortran_order`` are validated and the data size checked
against the file: fewer bytes is a truncation finding, more bytes is a finding and the trailing
part is sniffed as nested content. An object dtype (alone or in a structured field) means the
data is a pickle that ``numpy.load(allow_pickle=True)`` would unpickle: it is analysed with the
pickle scanner and an informational low finding says the array needs ``allow_pickle``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from mltrust._lazy import lazy_exports
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext
    from mltrust.scan.formats._numpy_scan import NpyHeader, parse_literal, parse_npy_header

__all__ = ["NpyHeader", "NumpyScanner", "parse_literal", "parse_npy_header"]

# Only the scanner and what its sniff needs live here; the scan itself is in
# :mod:`mltrust.scan.formats._numpy_scan`, imported when a .npy array is scanned
# (``NpyHeader``, ``parse_literal``, ``parse_npy_header`` still importable from here).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "mltrust.scan.formats._numpy_scan": (
            "NpyHeader",
            "parse_literal",
            "parse_npy_header",
        )
    },
)

_MAGIC = b"\x93NUMPY"


class NumpyScanner(FormatScanner):
    """NumPy .npy arrays: header validation, sizes, object arrays' pickles."""

    name: ClassVar[str] = "numpy"
    description: ClassVar[str] = (
        "NumPy .npy arrays (and .npz members): header and size validation; object arrays "
        "carry pickles, which are analysed"
    )
    priority: ClassVar[int] = 70
    suffixes: ClassVar[tuple[str, ...]] = (".npy",)
    can_execute_code: ClassVar[bool] = True

    def sniff(self, data: memoryview, name: str) -> bool:
        return len(data) >= 6 and bytes(data[:6]) == _MAGIC

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        from mltrust.scan.formats._numpy_scan import scan_numpy

        scan_numpy(data, ctx, loc)
