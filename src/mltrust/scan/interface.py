"""The format-scanner plug-in interface.

A format scanner recognises one format by content (:meth:`FormatScanner.sniff`) and reports
findings about it (:meth:`FormatScanner.scan`). It never executes, imports or deserialises what
it scans. Scanners are registered in :mod:`mltrust.scan._registry`, one line each.

Buffers are ``memoryview`` objects over ``bytes`` or a read-only memory map: slicing them is
free, so a scanner should slice instead of copying and skip large payloads by offset.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext

__all__ = ["FormatScanner"]


class FormatScanner(ABC):
    """Recognises and scans one file format."""

    #: Short stable name, used in reports (``pickle``, ``zip``, ``gguf``...).
    name: ClassVar[str]
    #: One line for ``mltrust formats`` and the docs.
    description: ClassVar[str]
    #: When several scanners sniff the same bytes, all of them run (polyglots); the one with the
    #: highest priority is reported first as the file's primary format.
    priority: ClassVar[int] = 50
    #: File-name suffixes conventionally used for the format (reporting hints only: detection is
    #: always by content).
    suffixes: ClassVar[tuple[str, ...]] = ()
    #: True for formats that can carry code executed on load (pickle and its containers); a file
    #: whose name claims a data-only format but whose content is one of these is reported.
    can_execute_code: ClassVar[bool] = False
    #: Names of formats this scanner fully covers when it matches: those scanners are then not
    #: run on the same bytes (legacy PyTorch supersedes ``pickle``: its raw tensor data after the
    #: fifth pickle must not be read as a trailing pickle).
    supersedes: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def sniff(self, data: memoryview, name: str) -> bool:
        """Whether ``data`` is (or contains, for polyglots) this format.

        Must be cheap: look at a bounded head or tail, never the whole buffer. ``name`` is the
        file or member name, usable only to break ties between formats that lack magic bytes
        (protobuf), never to decide that content is safe.
        """

    def claims_raw_data(self, data: memoryview) -> bool:
        """Whether ``data``, which :meth:`sniff` matched but which its container defines as raw
        bytes (a PyTorch tensor storage, a joblib array buffer), must still be scanned as this
        format: only when a reader could run code from it. Raw bytes match some sniffers by
        chance (a tensor that starts with a PROTO byte); by default a match stands."""
        return True

    @abstractmethod
    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        """Report findings about ``data`` to ``ctx``.

        Raise :class:`mltrust.errors.InputError` for malformed input and
        :class:`mltrust.errors.LimitExceeded` for an exhausted limit; the engine turns both into
        findings. Nested content (archive members, embedded pickles) goes to
        :meth:`ScanContext.scan_nested`.
        """
