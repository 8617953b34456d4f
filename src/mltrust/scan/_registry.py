"""The one table of format scanners, and detection by content.

To add a format: write ``mltrust/scan/formats/<name>.py`` with a :class:`FormatScanner`
subclass and add one line to :data:`_FORMATS`.
"""

from __future__ import annotations

import functools
import importlib
import os

from mltrust.scan.interface import FormatScanner

__all__ = ["all_scanners", "claimed_by_suffix", "detect"]

#: ``module:Class`` of every format scanner, imported on first use.
_FORMATS: tuple[str, ...] = (
    "mltrust.scan.formats.onnx:OnnxScanner",
    "mltrust.scan.formats.onnx:OrtFormatScanner",
    "mltrust.scan.formats.onnx:OnnxTextScanner",
    "mltrust.scan.formats.tensorflow:TensorflowScanner",
    "mltrust.scan.formats.tensorflow:TfCheckpointScanner",
    "mltrust.scan.formats.gguf:GgufScanner",
    "mltrust.scan.formats.safetensors:SafetensorsScanner",
    "mltrust.scan.formats.zip:ZipScanner",
    "mltrust.scan.formats.tar:TarScanner",
    "mltrust.scan.formats.compressed:CompressedScanner",
    "mltrust.scan.formats.numpy:NumpyScanner",
    "mltrust.scan.formats.pytorch:LegacyTorchScanner",
    "mltrust.scan.formats.pytorch:TorchFlatbufferScanner",
    "mltrust.scan.formats.hdf5:Hdf5Scanner",
    "mltrust.scan.formats.config:ConfigScanner",
    "mltrust.scan.formats.pickle:PickleScanner",
    "mltrust.scan.formats.pickle:JoblibZFileScanner",
)


@functools.cache
def all_scanners() -> tuple[FormatScanner, ...]:
    """Every registered scanner, highest priority first."""
    scanners: list[FormatScanner] = []
    for spec in _FORMATS:
        module_name, _, cls_name = spec.partition(":")
        cls = getattr(importlib.import_module(module_name), cls_name)
        scanners.append(cls())
    scanners.sort(key=lambda s: -s.priority)
    return tuple(scanners)


def detect(data: memoryview, name: str, *, raw: bool = False) -> list[FormatScanner]:
    """The scanners whose format ``data`` is, or contains (several for a polyglot).

    ``raw`` marks bytes their container defines as raw data: a match then also needs
    :meth:`FormatScanner.claims_raw_data`.
    """
    matched = [s for s in all_scanners() if s.sniff(data, name)]
    if raw and matched:
        matched = [s for s in matched if s.claims_raw_data(data)]
    covered = {name for s in matched for name in s.supersedes}
    return [s for s in matched if s.name not in covered]


@functools.cache
def _suffix_table() -> dict[str, FormatScanner]:
    table: dict[str, FormatScanner] = {}
    for scanner in all_scanners():
        for suffix in scanner.suffixes:
            table.setdefault(suffix.lower(), scanner)
    return table


def claimed_by_suffix(name: str) -> FormatScanner | None:
    """The scanner whose format the file name's suffix conventionally claims, if any."""
    _, ext = os.path.splitext(name)
    return _suffix_table().get(ext.lower()) if ext else None
