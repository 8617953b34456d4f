"""Rules reported by the scan engine itself (format detection, limits, errors)."""

from __future__ import annotations

from mltrust.findings import Severity, define_rule

ATLAS_UNSAFE_ARTIFACT = ("AML.T0011.000", "AML.T0010.003")

UNKNOWN_FORMAT = define_rule(
    "MLT-GEN-001",
    "unknown-format",
    "The file's content matches no format mltrust can scan; it was not scanned.",
    Severity.LOW,
    remediation="Convert the model to a supported format, or review the file by hand.",
)
MALFORMED = define_rule(
    "MLT-GEN-002",
    "malformed-input",
    "The file is truncated or malformed for its format; what could not be parsed was not "
    "checked, and loaders may behave unpredictably on it.",
    Severity.MEDIUM,
    cwe=20,
    atlas=ATLAS_UNSAFE_ARTIFACT,
    remediation="Re-export the model from a trusted source; do not load a malformed file.",
)
LIMIT_EXHAUSTED = define_rule(
    "MLT-GEN-003",
    "resource-limit-exhausted",
    "Scanning stopped because a resource limit (size, depth, count, ratio or time) was reached; "
    "the rest of the content was not checked.",
    Severity.MEDIUM,
    cwe=400,
    atlas=ATLAS_UNSAFE_ARTIFACT,
    remediation="Inspect the file; raise the limit in [scan.limits] only for trusted input.",
)
SCANNER_ERROR = define_rule(
    "MLT-GEN-004",
    "scanner-error",
    "A scanner failed unexpectedly on this content; it was not fully checked.",
    Severity.MEDIUM,
    remediation="Report the file to the mltrust maintainers; do not load it meanwhile.",
)
DISGUISED_FORMAT = define_rule(
    "MLT-GEN-005",
    "disguised-format",
    "The file name claims a data-only format but the content is a format that can execute "
    "code when loaded (for example a pickle named .safetensors).",
    Severity.HIGH,
    cwe=434,
    atlas=ATLAS_UNSAFE_ARTIFACT,
    remediation="Do not load the file; obtain the model in the format it claims to be.",
)
UNREADABLE = define_rule(
    "MLT-GEN-006",
    "unreadable-file",
    "The file could not be read (permissions, I/O error, vanished while scanning).",
    Severity.MEDIUM,
)
SYMLINK = define_rule(
    "MLT-GEN-007",
    "symlink-skipped",
    "A symbolic link inside a scanned folder does not lead to a regular file (a folder, a "
    "dangling link or a loop), so nothing behind it was scanned.",
    Severity.MEDIUM,
    cwe=59,
    remediation="Scan the link target explicitly, or remove the link if it is not part of the "
    "model.",
)
