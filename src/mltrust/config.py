"""Limits and configuration: one frozen, validated object each.

:class:`Limits` bounds every resource a scanner may spend on untrusted input. An exhausted
limit is never "clean": scanners turn it into a finding.

:class:`ScanConfig` holds the user's choices, optionally read from a TOML file
(``mltrust.toml`` or ``[tool.mltrust]`` in ``pyproject.toml``)::

    [scan]
    fail_on = "medium"
    # Import targets this project trusts, "module:qualname" or "module:*".
    allow_globals = ["mypkg.models:MyEstimator"]
    # Hydra/NeMo ``_target_`` prefixes this project trusts.
    allow_targets = ["mypkg."]

    [scan.limits]
    max_archive_depth = 4
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrust.errors import ConfigError
from mltrust.findings import Severity

__all__ = ["Limits", "ScanConfig", "load_scan_config", "subject_scan_configs"]

_MiB = 1024 * 1024
_GiB = 1024 * _MiB


@dataclass(frozen=True, slots=True)
class Limits:
    """Upper bounds on the work done for one scan, signature or verification of untrusted
    input (every bound on untrusted input lives here)."""

    #: Largest file read (files are memory-mapped, so this bounds address space, not RAM).
    max_file_bytes: int = 256 * _GiB
    #: Total bytes produced by decompression across one top-level file.
    max_decompressed_bytes: int = 8 * _GiB
    #: Largest single decompressed stream or member scanned (beyond: a finding, the rest unread).
    max_member_bytes: int = 2 * _GiB
    #: Decompressed bytes of one stream kept in memory; beyond, they go to an unlinked temporary
    #: file that is memory-mapped for scanning (only the pages a scanner reads become resident).
    max_decompressed_in_memory: int = 64 * _MiB
    #: Decompressed/compressed ratio above which a member is treated as a bomb.
    max_compression_ratio: float = 200.0
    #: Nesting depth of archives inside archives.
    max_archive_depth: int = 5
    #: Members per archive.
    max_archive_members: int = 100_000
    #: Opcodes interpreted per pickle stream.
    max_pickle_opcodes: int = 50_000_000
    #: Concatenated pickle streams per file or member.
    max_pickle_streams: int = 64
    #: Depth of nested containers (JSON/YAML configs, Keras layers, protobuf messages).
    max_nesting_depth: int = 200
    #: Bytes of a JSON/YAML/metadata document parsed as text.
    max_text_bytes: int = 64 * _MiB
    #: Entries in a header or table (GGUF keys, safetensors tensors, ONNX nodes).
    max_entries: int = 10_000_000
    #: Wall-clock seconds for one top-level file; 0 disables the bound.
    max_seconds_per_file: float = 300.0
    # -- signing and verification (mltrust.attest); the folder being verified is untrusted --
    #: Bytes of a signature bundle (model.sig, attestations), checked while reading it.
    max_bundle_bytes: int = 64 * _MiB
    #: JSON structure in a bundle outside its base64 strings (``{``, ``[`` and ``,`` counted
    #: before parsing): a real bundle has a few hundred; millions only cost memory.
    max_bundle_tokens: int = 10_000
    #: Signatures in one DSSE envelope (exactly one is accepted; more are refused unparsed).
    max_signatures: int = 16
    #: Certificates in a keyless bundle's chain.
    max_certificates: int = 8
    #: Bytes of a key, certificate or trust-root file.
    max_key_bytes: int = 1 * _MiB
    #: Bytes of a verifier state file (rollback memory).
    max_state_bytes: int = 16 * _MiB
    #: Files in a model folder signed or verified (the walk stops and fails beyond it).
    max_model_files: int = 1_000_000
    #: Body of one AdmissionReview sent to ``mltrust admission serve`` (Kubernetes objects are
    #: at most ~1.5 MiB in etcd; a review carries the object and the old object).
    max_admission_bytes: int = 8 * _MiB
    #: Model locations one admitted object may name (each distinct one is verified: a full hash).
    max_admission_models: int = 16

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"limit {f.name} must be a number, not {value!r}")
            if value < 0 or (value == 0 and f.name != "max_seconds_per_file"):
                raise ConfigError(f"limit {f.name} must be positive, not {value!r}")

    def replace(self, **changes: Any) -> Limits:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown limit(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """What a scan reports and when it fails."""

    limits: Limits = field(default_factory=Limits)
    #: Findings at or above this severity make the scan fail (exit code 1).
    fail_on: Severity = Severity.MEDIUM
    #: Extra pickle import targets trusted by this project: ``module:qualname`` or ``module:*``.
    allow_globals: frozenset[str] = frozenset()
    #: Extra Hydra ``_target_`` / Keras module prefixes trusted by this project.
    allow_targets: frozenset[str] = frozenset()
    #: Compute the SHA-256 of every scanned top-level file (costs one pass over the bytes).
    digest: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.fail_on, Severity):
            raise ConfigError("fail_on must be a Severity")
        for entry in self.allow_globals:
            module, sep, name = entry.partition(":")
            if not sep or not module or not name:
                raise ConfigError(
                    f"allow_globals entry {entry!r} must look like 'module:qualname' or 'module:*'"
                )

    def replace(self, **changes: Any) -> ScanConfig:
        return dataclasses.replace(self, **changes)


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only when there is a config file to read (start-up cost otherwise)

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path} is not UTF-8 text (byte {exc.start})") from None


def load_scan_config(
    path: Path | None = None, *, search_from: Path | None = None, exclude: Path | None = None
) -> ScanConfig:
    """Read a :class:`ScanConfig` from ``path``, or find ``mltrust.toml``/``pyproject.toml``.

    Without ``path``, the current directory (or ``search_from``) and its parents are searched for
    ``mltrust.toml`` or a ``pyproject.toml`` with a ``[tool.mltrust]`` table; none found gives the
    defaults. Folders at or under ``exclude`` (the subject being examined) are skipped: content
    under examination never configures its own examination.
    """
    table: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path)
        table = data.get("tool", {}).get("mltrust", data) if path.name == "pyproject.toml" else data
    else:
        start = (search_from or Path.cwd()).resolve()
        skip = exclude.resolve() if exclude is not None else None
        for folder in (start, *start.parents):
            if skip is not None and (folder == skip or skip in folder.parents):
                continue
            candidate = folder / "mltrust.toml"
            if candidate.is_file():
                table = _read_toml(candidate)
                break
            pyproject = folder / "pyproject.toml"
            if pyproject.is_file():
                data = _read_toml(pyproject)
                if "mltrust" in data.get("tool", {}):
                    table = data["tool"]["mltrust"]
                    break
    return scan_config_from_table(table.get("scan", {}))


def subject_scan_configs(root: Path) -> list[str]:
    """The scan configuration files a subject holds at its root (``mltrust.toml``, a
    ``pyproject.toml`` with ``[tool.mltrust]``), by name: what a scan of the subject would have
    read from the subject itself. ``mltrust check`` ignores them and records that it did."""
    out = []
    if (root / "mltrust.toml").is_file():
        out.append("mltrust.toml")
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            has_table = "mltrust" in _read_toml(pyproject).get("tool", {})
        except (ConfigError, AttributeError):
            has_table = False
        if has_table:
            out.append("pyproject.toml [tool.mltrust]")
    return out


def scan_config_from_table(scan: dict[str, Any]) -> ScanConfig:
    if not isinstance(scan, dict):
        raise ConfigError("[scan] must be a table")
    known = {"fail_on", "allow_globals", "allow_targets", "limits", "digest"}
    unknown = set(scan) - known
    if unknown:
        raise ConfigError(f"unknown [scan] key(s): {', '.join(sorted(unknown))}")
    limits_table = scan.get("limits", {})
    if not isinstance(limits_table, dict):
        raise ConfigError("[scan.limits] must be a table")
    limits = Limits().replace(**limits_table)

    def strings(key: str) -> frozenset[str]:
        value = scan.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"[scan] {key} must be a list of strings")
        return frozenset(value)

    fail_on = Severity.parse(str(scan.get("fail_on", "medium")))
    digest = scan.get("digest", False)
    if not isinstance(digest, bool):
        raise ConfigError("[scan] digest must be true or false")
    return ScanConfig(
        limits=limits,
        fail_on=fail_on,
        allow_globals=strings("allow_globals"),
        allow_targets=strings("allow_targets"),
        digest=digest,
    )
