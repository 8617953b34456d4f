"""HDF5 files (Keras ``.h5`` models and weights), parsed from bytes without h5py.

Keras stores the model architecture as JSON in attributes of the root group:
``model_config`` (layers, Lambda bytecode, custom objects), ``training_config`` (optimizer,
losses), with ``keras_version`` and ``backend``. Weights-only files have none of them.

The scanner is a minimal HDF5 reader for exactly that (option "a" of the design):

* the superblock, versions 0-3, at offset 0 or after a user block (512, 1024, 2048...);
* the root group's object header, version 1 (8-byte aligned messages) or version 2
  (``OHDR``/``OCHK``), following continuation messages;
* attribute messages, versions 1-3, whose value is a fixed-length string or a variable-length
  string stored in a global heap collection (``GCOL``). Every attribute message is read: two
  attributes of one name are a high finding (readers may pick either), and every value of a
  configuration attribute is analysed.

Attributes kept in dense storage (a fractal heap, only written by ``libver="latest"`` files with
many or large attributes) are read from the heap's blocks (:mod:`._hdf5_heap`). Heaps that
cannot be read that way and files whose structure cannot be parsed are searched by content
instead: every JSON object holding a ``"class_name"`` key (in any key order) is decoded with
:mod:`json` (bounded) and analysed, and the file is still reported as not fully scanned (the
attribute Keras reads was not located), never as clean.

The whole object tree is then walked (:mod:`._hdf5_tree`) for data h5py reads from other
files: external storage, virtual datasets, external links.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from mltrust._lazy import lazy_exports
from mltrust.config import DEFAULT_LIMITS, Limits
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext
    from mltrust.scan.formats._hdf5_scan import RootAttributes, read_root_attributes

__all__ = ["Hdf5Scanner", "RootAttributes", "read_root_attributes"]

# Only the scanner and what its sniff needs live here; the HDF5 reader and the scan are in
# :mod:`mltrust.scan.formats._hdf5_scan`, imported when an HDF5 file is scanned
# (``RootAttributes`` and ``read_root_attributes`` are still importable from here).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {"mltrust.scan.formats._hdf5_scan": ("RootAttributes", "read_root_attributes")},
)

SIGNATURE = b"\x89HDF\r\n\x1a\n"


def find_superblock(data: memoryview, limits: Limits = DEFAULT_LIMITS) -> int | None:
    """Offset of the HDF5 signature: 0, or a power of two from 512, or None."""
    if bytes(data[:8]) == SIGNATURE:
        return 0
    offset = 512
    while offset + 8 <= len(data) and offset <= limits.max_hdf5_userblock:
        if bytes(data[offset : offset + 8]) == SIGNATURE:
            return offset
        offset *= 2
    return None


class Hdf5Scanner(FormatScanner):
    """HDF5 files; Keras model configs in the root attributes are analysed."""

    name: ClassVar[str] = "hdf5"
    description: ClassVar[str] = (
        "HDF5 (.h5): Keras model_config/training_config root attributes (Lambda layers, "
        "non-Keras callables); weights-only files are data"
    )
    priority: ClassVar[int] = 60
    suffixes: ClassVar[tuple[str, ...]] = (".h5", ".hdf5", ".keras.h5", ".hdf")

    def sniff(self, data: memoryview, name: str) -> bool:
        return find_superblock(data) is not None

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        from mltrust.scan.formats._hdf5_scan import scan_hdf5

        scan_hdf5(data, ctx, loc)
