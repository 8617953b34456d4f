"""GGUF (llama.cpp): header, metadata key/values, tensor infos, aligned tensor data.

The header is parsed with every count and length checked against the bytes that remain before
anything is looped over or allocated, so a hostile count costs nothing. Chat templates
(``tokenizer.chat_template`` and ``tokenizer.chat_template.<name>``) are Jinja code rendered by
the serving stack; they go to the shared template checker. Tensor data is never read: only its
offsets and sizes are checked against the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrust._lazy import lazy_exports
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext
    from mltrust.scan.formats._gguf_scan import GGML_TYPE_SIZES

__all__ = ["GGML_TYPE_SIZES", "GgufScanner"]

# Only the scanner and what its sniff needs live here; the scan itself is in
# :mod:`mltrust.scan.formats._gguf_scan`, imported when a GGUF file is scanned
# (``GGML_TYPE_SIZES`` still importable from here).
__getattr__, __dir__ = lazy_exports(
    __name__, {"mltrust.scan.formats._gguf_scan": ("GGML_TYPE_SIZES",)}
)

_MAGIC = b"GGUF"


class GgufScanner(FormatScanner):
    name = "gguf"
    description = "GGUF models (llama.cpp): header bounds, tensor layout, chat templates"
    priority = 60
    suffixes = (".gguf",)
    can_execute_code = False

    def sniff(self, data: memoryview, name: str) -> bool:
        return len(data) >= 4 and data[:4] == _MAGIC

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        from mltrust.scan.formats._gguf_scan import scan_gguf

        scan_gguf(data, ctx, loc)
