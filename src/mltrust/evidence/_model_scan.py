"""Collector: scan the model files of the subject with :mod:`mltrust.scan`."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from mltrust.config import ScanConfig
from mltrust.evidence.interface import CollectContext, Collected, Collector, severity_counts
from mltrust.findings import Finding
from mltrust.scan import FileResult

__all__ = ["ModelScanCollector", "is_model_file"]

PREDICATE_TYPE = "https://mltrust.dev/scan/v1"

#: Suffixes conventionally used for serialized models and tensors.
MODEL_SUFFIXES = frozenset(
    {
        ".pkl",
        ".pickle",
        ".joblib",
        ".dill",
        ".sav",
        ".pt",
        ".pth",
        ".bin",
        ".ckpt",
        ".mar",
        ".safetensors",
        ".onnx",
        ".h5",
        ".hdf5",
        ".keras",
        ".gguf",
        ".ggml",
        ".npy",
        ".npz",
        ".pb",
        ".tflite",
        ".msgpack",
        ".model",
        ".mlmodel",
        ".pmml",
        ".nemo",
        ".llamafile",
        ".cbm",
        ".ubj",
        ".params",
        ".torchscript",
        ".ptl",
        ".skops",
    }
)
#: Suffixes that are never models (text, images, documents), so they are not sniffed.
_NEVER_MODEL = frozenset(
    {
        ".py",
        ".pyi",
        ".ipynb",
        ".md",
        ".rst",
        ".txt",
        ".toml",
        ".cfg",
        ".ini",
        ".lock",
        ".yaml",
        ".yml",
        ".json",
        ".csv",
        ".tsv",
        ".html",
        ".css",
        ".js",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".svg",
        ".pdf",
        ".sig",
        ".pem",
        ".pub",
        ".key",
        ".sh",
        ".env",
        ".gitignore",
        ".c",
        ".h",
        ".rs",
        ".go",
        ".java",
        ".xml",
    }
)
_READ_THRESHOLD = 1 << 20
#: A protocol 0/1 pickle that starts with GLOBAL: ``c<module>\n<name>\n``.
_PROTO0_GLOBAL = re.compile(rb"c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n")
_MAGICS = (b"\x93NUMPY", b"\x89HDF\r\n\x1a\n", b"GGUF", b"PK\x03\x04")


def is_model_file(path: Path) -> bool:
    """Whether ``path`` looks like a serialized model, by suffix or by its first bytes.

    Pickle content is recognised whatever the file is called (a pickle named ``notes.txt`` is
    still a model to scan); other container formats only when the name does not say text.
    """
    suffix = path.suffix.lower()
    if suffix in MODEL_SUFFIXES:
        return True
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(256)
            tail = b""
            if size:
                fh.seek(max(size - 2, 0))
                tail = fh.read(2)
    except OSError:
        return False
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle protocol 2-5
        return True
    if _PROTO0_GLOBAL.match(head) and tail.rstrip(b"\r\n").endswith(b"."):  # protocol 0/1
        return True
    if suffix in _NEVER_MODEL or path.name.startswith("."):
        return False
    return head.startswith(_MAGICS)


def _scan_one(path: Path, config: ScanConfig) -> FileResult:
    """Scan one file: small files from one read (the bytes scanned are the bytes hashed),
    large ones through the engine's memory map."""
    from mltrust.scan import scan_bytes, scan_file

    try:
        size = path.stat().st_size
        if size < _READ_THRESHOLD:
            with path.open("rb") as fh:
                data = fh.read(_READ_THRESHOLD)
            return scan_bytes(data, str(path), config)
    except OSError:
        pass  # scan_file reports the unreadable file as a finding
    return scan_file(path, config)


class ModelScanCollector(Collector):
    name = "scan"
    predicate_type = PREDICATE_TYPE

    def _targets(self, ctx: CollectContext) -> list[tuple[str, Path]]:
        if ctx.is_file:
            return ctx.files()
        return [(rel, p) for rel, p in ctx.files() if is_model_file(p)]

    def applies(self, ctx: CollectContext) -> bool:
        return bool(self._targets(ctx))

    def absent(self) -> dict[str, Any]:
        return {
            "present": False,
            "files": 0,
            "scanned": 0,
            "not_scanned": 0,
            "errors": 0,
            "failed": False,
            "findings_by_severity": severity_counts(()),
            "findings": [],
            "not_scanned_files": [],
            "formats": [],
        }

    def collect(self, ctx: CollectContext) -> Collected:
        from mltrust import __version__
        from mltrust.scan import FileStatus, ScanReport

        started = time.perf_counter()
        targets = self._targets(ctx)
        config = ctx.scan_config.replace(digest=True)
        report = ScanReport(
            files=tuple(_scan_one(p, config) for _, p in targets),
            fail_on=config.fail_on,
            seconds=time.perf_counter() - started,
            tool_version=__version__,
        )
        ctx.shared["scan_report"] = report
        rel_of = {str(p): rel for rel, p in targets}
        findings: list[Finding] = []
        rows = []
        for result in report.files:
            rel = rel_of.get(result.path, result.path)
            if result.sha256:
                ctx.record_sha256(rel, result.sha256)
            for f in result.findings:
                findings.append(replace(f, location=replace(f.location, path=rel)))
                rows.append(
                    {
                        "rule_id": f.rule_id,
                        "severity": f.severity.value,
                        "message": f.message,
                        "path": rel,
                    }
                )
        not_scanned = [
            rel_of.get(r.path, r.path) for r in report.files if r.status is not FileStatus.SCANNED
        ]
        section: dict[str, Any] = {
            "present": True,
            "files": len(report.files),
            "scanned": sum(1 for r in report.files if r.status is FileStatus.SCANNED),
            "not_scanned": sum(1 for r in report.files if r.status is FileStatus.NOT_SCANNED),
            "errors": sum(1 for r in report.files if r.status is FileStatus.ERROR),
            "failed": report.failed,
            "findings_by_severity": severity_counts(f.severity for f in findings),
            "findings": rows,
            "not_scanned_files": not_scanned,
            "formats": sorted({fmt for r in report.files for fmt in r.formats}),
        }
        predicate = report.to_dict()
        for entry in predicate["files"]:
            entry["path"] = rel_of.get(entry["path"], entry["path"])
        return Collected(
            self.name,
            self.predicate_type,
            predicate,
            section,
            tuple(findings),
            time.perf_counter() - started,
        )
