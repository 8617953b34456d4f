"""Rules reported by the container scanners (zip, tar, compressed streams), NumPy and PyTorch."""

from __future__ import annotations

from mltrust.findings import Severity, define_rule

__all__ = [
    "ARC_BAD_CRC",
    "ARC_BOMB",
    "ARC_COMMENT",
    "ARC_DUPLICATE",
    "ARC_ENCRYPTED",
    "ARC_FLAGS",
    "ARC_HEADER_MISMATCH",
    "ARC_HIDDEN_DATA",
    "ARC_LINK_ESCAPE",
    "ARC_MEMBER_COUNT",
    "ARC_NAME_MISMATCH",
    "ARC_NOT_SCANNED",
    "ARC_OVERLAP",
    "ARC_PREFIX",
    "ARC_READERS_DISAGREE",
    "ARC_SPECIAL_FILE",
    "ARC_TRAVERSAL",
    "ARC_TRUNCATED",
    "NPY_MALFORMED",
    "NPY_OBJECT",
    "NPY_SIZE",
    "NPY_TRAILING",
    "PT_CODE",
    "PT_LEGACY_HEADER",
    "PT_STORAGE",
    "PT_TRAILING",
]

_ATLAS = ("AML.T0011.000", "AML.T0010.003")

ARC_TRAVERSAL = define_rule(
    "MLT-ARC-001",
    "archive-path-traversal",
    "An archive member name is absolute or climbs out of the extraction folder with '..', "
    "directly or through a symbolic link the archive created before it; extracting the "
    "archive writes outside the intended folder.",
    Severity.HIGH,
    cwe=22,
    atlas=_ATLAS,
    remediation="Do not extract the archive; rebuild it with relative member names.",
)
ARC_NAME_MISMATCH = define_rule(
    "MLT-ARC-002",
    "zip-name-mismatch",
    "A zip member has different names in its local header and in the central directory. "
    "Readers that trust one or the other see different files: a known scanner bypass.",
    Severity.HIGH,
    cwe=436,
    atlas=_ATLAS,
    remediation="Do not load the archive; it was crafted to look different to different readers.",
)
ARC_DUPLICATE = define_rule(
    "MLT-ARC-003",
    "archive-duplicate-member",
    "Two archive members have the same name; which one a loader uses depends on the reader, "
    "so a scanner and a loader may look at different content.",
    Severity.HIGH,
    cwe=436,
    atlas=_ATLAS,
    remediation="Rebuild the archive with unique member names.",
)
ARC_OVERLAP = define_rule(
    "MLT-ARC-004",
    "zip-overlapping-members",
    "Zip members overlap in the file (shared or interleaved data): a decompression-bomb or "
    "parser-confusion technique never produced by ordinary zip writers.",
    Severity.HIGH,
    cwe=409,
    atlas=_ATLAS,
    remediation="Do not load the archive.",
)
ARC_BAD_CRC = define_rule(
    "MLT-ARC-005",
    "archive-bad-checksum",
    "A member's data does not match its stored CRC-32 (or a tar header is one Python's tarfile "
    "rejects, for a wrong checksum or a number it cannot read, and stops reading at): the "
    "archive was corrupted or edited after it was written.",
    Severity.MEDIUM,
    cwe=354,
    atlas=_ATLAS,
    remediation="Obtain the file again from a trusted source.",
)
ARC_ENCRYPTED = define_rule(
    "MLT-ARC-006",
    "archive-encrypted-member",
    "A member is encrypted (or uses a compression method mltrust cannot read), so its content "
    "could not be scanned.",
    Severity.MEDIUM,
    cwe=693,
    atlas=_ATLAS,
    remediation="Provide the model unencrypted so it can be scanned.",
)
ARC_FLAGS = define_rule(
    "MLT-ARC-007",
    "zip-unusual-flags",
    "A zip member sets general-purpose flag bits that ordinary model writers never set.",
    Severity.LOW,
    cwe=20,
    remediation="Rebuild the archive with a standard zip writer.",
)
ARC_PREFIX = define_rule(
    "MLT-ARC-008",
    "archive-polyglot-prefix",
    "Data precedes the first zip member: the file is also something else (for example a pickle "
    "that runs when the file is loaded with pickle instead of as a zip).",
    Severity.MEDIUM,
    cwe=434,
    atlas=_ATLAS,
    remediation="Do not load the file; a model archive starts with its first member.",
)
ARC_COMMENT = define_rule(
    "MLT-ARC-009",
    "zip-comment-data",
    "The zip archive carries a comment; model writers do not write one, and comments can hide "
    "data from scanners.",
    Severity.LOW,
    cwe=20,
)
ARC_BOMB = define_rule(
    "MLT-ARC-010",
    "decompression-bomb",
    "A compressed member expands beyond the configured ratio or size limits (decompression bomb); "
    "only the part within the limits was scanned.",
    Severity.HIGH,
    cwe=409,
    atlas=_ATLAS,
    remediation="Do not decompress the file.",
)
ARC_MEMBER_COUNT = define_rule(
    "MLT-ARC-011",
    "archive-member-limit",
    "The archive holds more members than max_archive_members; the rest was not scanned.",
    Severity.MEDIUM,
    cwe=400,
    atlas=_ATLAS,
    remediation="Inspect the archive; raise the limit in [scan.limits] only for trusted input.",
)
ARC_NOT_SCANNED = define_rule(
    "MLT-ARC-012",
    "compressed-not-scanned",
    "The content uses a compression mltrust cannot decode here (for example LZ4 without the "
    "lz4 module, or an unknown zip method), or is a tar member Python's tarfile cannot read "
    "(a broken GNU sparse map), so it was not scanned.",
    Severity.MEDIUM,
    cwe=693,
    atlas=_ATLAS,
    remediation="Install the decoder (pip install lz4) or provide the model uncompressed.",
)
ARC_LINK_ESCAPE = define_rule(
    "MLT-ARC-013",
    "archive-link-escape",
    "A tar symbolic or hard link points outside the extraction folder: absolute, with '..', "
    "or once the other links of the archive are followed (d -> . then e -> d/d/..), or "
    "through a loop of links.",
    Severity.HIGH,
    cwe=59,
    atlas=_ATLAS,
    remediation="Do not extract the archive.",
)
ARC_SPECIAL_FILE = define_rule(
    "MLT-ARC-014",
    "archive-special-file",
    "A tar member is a device file, FIFO or other special file; model archives hold none.",
    Severity.MEDIUM,
    cwe=73,
    atlas=_ATLAS,
    remediation="Do not extract the archive.",
)
ARC_TRUNCATED = define_rule(
    "MLT-ARC-015",
    "archive-truncated",
    "A compressed stream or archive ends early or is corrupt; what was decoded before the error "
    "was scanned, the rest was not.",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
    remediation="Obtain the file again from a trusted source.",
)
ARC_HIDDEN_DATA = define_rule(
    "MLT-ARC-016",
    "archive-hidden-data",
    "The archive holds bytes that no member accounts for (between members, after the end of "
    "the archive, or a local zip entry missing from the central directory).",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
    remediation="Do not load the file; rebuild the archive with a standard writer.",
)
ARC_HEADER_MISMATCH = define_rule(
    "MLT-ARC-017",
    "zip-header-mismatch",
    "A zip member's local header disagrees with its central-directory entry on the compression "
    "method, sizes or CRC: readers that trust the local header decode different bytes.",
    Severity.MEDIUM,
    cwe=436,
    atlas=_ATLAS,
    remediation="Do not load the archive; rebuild it with a standard zip writer.",
)
ARC_READERS_DISAGREE = define_rule(
    "MLT-ARC-018",
    "archive-readers-disagree",
    "Two real readers of this archive would see different members or different bytes for the "
    "same member: PyTorch's reader matches record names case-insensitively and takes the first "
    "match, the zip64 record the locator points at and the central directory at the offset the "
    "end record gives; Python's zipfile (numpy, Keras, joblib) matches names exactly, takes the "
    "last duplicate, the zip64 record just before the locator and the central directory just "
    "before the end record (shifting every member offset when that is not the recorded one). "
    "Python's tarfile (torch.load of a legacy tar) reads the bytes a tar directory, link, "
    "device or FIFO entry declares as its data as further members; other tar readers skip "
    "them. A GNU sparse tar member whose map is irregular (overlapping, out-of-order or "
    "negative runs, runs past its size) is rebuilt differently by tarfile's extractfile() and "
    "extractall() and by other tar readers. What one reader loads may not be what another "
    "checked.",
    Severity.HIGH,
    cwe=436,
    atlas=_ATLAS,
    remediation="Do not load the archive; rebuild it with a standard writer.",
)
PT_CODE = define_rule(
    "MLT-PT-001",
    "torchscript-dangerous-code",
    "TorchScript source in the archive reaches Python internals, the operating system or "
    "processes (__import__, os., subprocess, eval/exec, builtins).",
    Severity.HIGH,
    cwe=94,
    atlas=_ATLAS,
    remediation="Do not load the TorchScript module; re-export it from trusted code.",
)
PT_SCRIPT_FILE_OP = define_rule(
    "MLT-PT-005",
    "torchscript-file-or-network-op",
    "TorchScript source (or a mobile module's bytecode.pkl, or a flatbuffer module's source "
    "or operator tables) calls an operator that reads or writes files or talks "
    "to other hosts (aten::save writes a chosen path, aten::from_file reads any file into a "
    "tensor, prim::rpc_*): running the loaded module does it.",
    Severity.HIGH,
    cwe=73,
    atlas=_ATLAS,
    remediation="Do not run the TorchScript module; re-export it from trusted code.",
)
PT_SCRIPT_UNPROVEN = define_rule(
    "MLT-PT-006",
    "torchscript-code-not-proven-safe",
    "TorchScript source (or a mobile module's bytecode.pkl, or a flatbuffer module's source, "
    "operator tables and types) could not be shown to use only torch's own operators: "
    "it calls operators of a namespace torch does not register (a custom operator library's "
    "native code), creates native classes outside torch's (in code, bytecode, types or the "
    "archive's pickles), picks an operator at run time, or cannot be read (source that is not "
    "valid Python syntax, bytecode that does not evaluate, a flatbuffer module that is not "
    "well formed or holds values of kinds mltrust does not know).",
    Severity.MEDIUM,
    cwe=829,
    atlas=_ATLAS,
    remediation="Review the custom operators and classes the module needs before loading it.",
)
PT_LEGACY_HEADER = define_rule(
    "MLT-PT-002",
    "torch-legacy-header",
    "A legacy (non-zip) PyTorch file has a wrong magic number or protocol version, or fewer "
    "than the five pickles the format defines; or a member of the oldest (tar) format that torch "
    "reads has no integer count or cannot be analysed (a link to a file outside the archive).",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
    remediation="Re-save the model with a current torch.save.",
)
PT_STORAGE = define_rule(
    "MLT-PT-003",
    "torch-storage-mismatch",
    "The raw tensor storages of a legacy PyTorch file do not match the storage keys and sizes "
    "its pickles declare (truncated or padded).",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
    remediation="Obtain the file again from a trusted source.",
)
PT_TRAILING = define_rule(
    "MLT-PT-004",
    "torch-trailing-data",
    "Bytes follow the last tensor storage of a legacy PyTorch file; they were sniffed as "
    "nested content.",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
)
NPY_OBJECT = define_rule(
    "MLT-NPY-001",
    "numpy-object-array",
    "A NumPy array has an object dtype: its data is a pickle, loaded only with "
    "allow_pickle=True (the pickle itself was scanned).",
    Severity.LOW,
    cwe=502,
    atlas=_ATLAS,
    remediation="Store numeric data with a numeric dtype; avoid allow_pickle=True.",
)
NPY_MALFORMED = define_rule(
    "MLT-NPY-002",
    "numpy-bad-header",
    "A .npy header is malformed: bad magic, version, header dictionary, dtype or shape.",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
)
NPY_SIZE = define_rule(
    "MLT-NPY-003",
    "numpy-truncated",
    "A .npy file holds fewer data bytes than its shape and dtype declare.",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
)
NPY_TRAILING = define_rule(
    "MLT-NPY-004",
    "numpy-trailing-data",
    "Bytes follow the array data of a .npy file; they were sniffed as nested content.",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
)
