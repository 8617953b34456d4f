"""Collector: scan the model content of the subject with :mod:`mltrust.scan`.

Which files are models is decided exactly as ``mltrust scan`` decides it, by content: every
file the one walker (:func:`mltrust.files.walk`) lists is handed to
:func:`mltrust.scan.scan_file`, whose detector (:func:`mltrust.scan._registry.detect`) sniffs
the bytes. A file no format scanner recognises (source code, text, images) is not model
content and is left out of this section; everything else, with every finding, is kept. No
folder is pruned for this collector: a payload under ``env/``, ``node_modules/``,
``site-packages/`` or ``.git/`` is scanned like any other file. What the walk could not hand
over is reported: unreadable folders, special files and the file cap become error results
(failing the ``model-scanned`` control), symbolic links are listed in ``links_not_followed``.
The file-name suffix only ever adds work: a file named like a model (``weights.bin``) whose
content no scanner recognises is kept and counted as not scanned (fail closed).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from mltrust.config import ScanConfig
from mltrust.evidence.interface import (
    CollectContext,
    Collected,
    Collector,
    finding_fingerprint,
    severity_counts,
    walk_problems,
)
from mltrust.files import SkipReason
from mltrust.findings import Finding, Location, Severity
from mltrust.scan import FileResult, FileStatus

__all__ = ["ModelScanCollector", "is_model_file"]

PREDICATE_TYPE = "https://mltrust.dev/scan/v1"

#: Suffixes conventionally used for serialized models and tensors (for describing files in
#: the ML-BOM only; what is scanned is decided by content).
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
#: Formats that describe or merely wrap content (a JSON/YAML configuration, an archive, a
#: compressed stream): a file is a model only when some other format was found in it (a zip
#: holding a pickle is a model; a git object, zlib around text, is not).
_NOT_MODEL_FORMATS = frozenset({"config", "compressed", "zip", "tar"})


def _holds_model(result: FileResult) -> bool:
    return any(fmt.rsplit(":", 1)[-1] not in _NOT_MODEL_FORMATS for fmt in result.formats)


def _quiet(result: FileResult, fail_on: Severity = Severity.MEDIUM) -> FileResult:
    """``result`` without "unknown format" notes about members of a recognised container
    (a zip of CSV files, a git object holding text), and without low/info notes about files
    that hold no model (a YAML or JSON file, or source text the config scanner read as YAML):
    ``mltrust scan`` reports them; in a project they are noise, and below ``medium`` they
    never change a verdict. Findings at ``medium`` (or the configured ``fail_on``, if lower)
    and above are always kept."""
    from dataclasses import replace as _replace

    from mltrust.scan import _rules as scan_rules

    if result.status is not FileStatus.SCANNED:
        return result
    model = _holds_model(result)
    kept = tuple(
        f
        for f in result.findings
        if not (f.rule_id == scan_rules.UNKNOWN_FORMAT.id and f.location.members)
        and (model or f.severity.rank >= min(Severity.MEDIUM.rank, fail_on.rank))
    )
    return result if len(kept) == len(result.findings) else _replace(result, findings=kept)


def is_model_file(path: Path) -> bool:
    """Whether ``path`` is conventionally named like a serialized model (BOM description)."""
    return path.suffix.lower() in MODEL_SUFFIXES


def _is_model_content(path: Path, result: FileResult) -> bool:
    """Whether ``mltrust scan`` has anything to say about this file beyond "no known format"
    (which, for a project, is every source file), or the file is named like a model and its
    content was not recognised (fail closed: reported as not scanned)."""
    from mltrust.scan import _rules as scan_rules

    if result.status is not FileStatus.NOT_SCANNED or is_model_file(path):
        return True
    return any(f.rule_id != scan_rules.UNKNOWN_FORMAT.id for f in result.findings)


def _skip_result(path: str, rule_reason: SkipReason, detail: str) -> FileResult:
    from mltrust.scan import _rules as scan_rules

    rule = scan_rules.LIMIT_EXHAUSTED if rule_reason is SkipReason.CAP else scan_rules.UNREADABLE
    finding = Finding.of(rule, detail, Location(path))
    return FileResult(
        path=path, size=0, status=FileStatus.ERROR, findings=(finding,), reason=detail
    )


def _scan_all(paths: list[str], config: ScanConfig, jobs: int) -> dict[str, FileResult]:
    from mltrust.scan import scan_file

    if jobs > 1 and len(paths) > 64:
        from mltrust.executors import ProcessExecutor
        from mltrust.scan._engine import _scan_on

        return _scan_on(ProcessExecutor(jobs), paths, config, None)
    return {p: scan_file(p, config) for p in paths}


class ModelScanCollector(Collector):
    name = "scan"
    predicate_type = PREDICATE_TYPE

    def applies(self, ctx: CollectContext) -> bool:
        return bool(ctx.files()) or bool(ctx.skipped())

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
            "links_not_followed": [],
            "models": 0,
            "ignored_config": [],
        }

    def collect(self, ctx: CollectContext) -> Collected:
        from mltrust import __version__
        from mltrust.scan import ScanReport

        started = time.perf_counter()
        files = ctx.files()
        config = ctx.scan_config.replace(digest=True)
        scanned = _scan_all([str(p) for _, p in files], config, ctx.jobs)
        rel_of = {str(p): rel for rel, p in files}
        results = [
            _quiet(scanned[str(p)], config.fail_on)
            for _, p in files
            if ctx.is_file or _is_model_content(p, scanned[str(p)])
        ]
        for rel, result in ((rel, scanned[str(p)]) for rel, p in files):
            if result.sha256:
                ctx.record_sha256(rel, result.sha256)
        for skip in walk_problems(ctx.skipped()):
            rel_of[skip.path] = skip.rel
            results.append(_skip_result(skip.path, skip.reason, skip.detail))
        links = [s.rel for s in ctx.skipped() if s.reason is SkipReason.SYMLINK]
        report = ScanReport(
            files=tuple(results),
            fail_on=config.fail_on,
            seconds=time.perf_counter() - started,
            tool_version=__version__,
        )
        ctx.shared["model_files"] = [rel_of.get(r.path, r.path) for r in results if _holds_model(r)]
        ctx.shared["scan_report"] = report
        findings: list[Finding] = []
        rows = []
        for result in report.files:
            rel = rel_of.get(result.path, result.path)
            for f in result.findings:
                moved = replace(f, location=replace(f.location, path=rel))
                findings.append(moved)
                rows.append(
                    {
                        "rule_id": f.rule_id,
                        "severity": f.severity.value,
                        "message": f.message,
                        "path": rel,
                        "fingerprint": finding_fingerprint(moved),
                    }
                )
        not_scanned = [
            rel_of.get(r.path, r.path) for r in report.files if r.status is not FileStatus.SCANNED
        ]
        section: dict[str, Any] = {
            "present": bool(results),
            "files": len(report.files),
            "scanned": sum(1 for r in report.files if r.status is FileStatus.SCANNED),
            "not_scanned": sum(1 for r in report.files if r.status is FileStatus.NOT_SCANNED),
            "errors": sum(1 for r in report.files if r.status is FileStatus.ERROR),
            "failed": report.failed,
            "findings_by_severity": severity_counts(f.severity for f in findings),
            "findings": rows,
            "not_scanned_files": not_scanned,
            "formats": sorted({fmt for r in report.files for fmt in r.formats}),
            "links_not_followed": links,
            "models": len(ctx.shared["model_files"]),
            # The subject's own mltrust.toml / [tool.mltrust]: never applied (shown, not used).
            "ignored_config": list(ctx.ignored_scan_config),
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
