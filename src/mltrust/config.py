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
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, dataclass_transform

from mltrust.errors import ConfigError
from mltrust.findings import Severity

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "ScanConfig",
    "load_scan_config",
    "subject_scan_configs",
]

_MiB = 1024 * 1024
_GiB = 1024 * _MiB

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, kw_only_default=True)
def _bounds(cls: type[_T]) -> type[_T]:
    """A frozen dataclass of keyword-only fields with plain defaults, whose ``__init__`` is
    written once here instead of generated per class.

    ``dataclasses`` writes a class's ``__init__`` as source text and compiles it at import; for
    :class:`Limits`, a hundred fields, that alone cost every ``mltrust`` process a few
    milliseconds. Type checkers still see the fields' own signature (``dataclass_transform``):
    a wrong name or type is an error there as before, and at run time an unknown name is a
    ``TypeError`` and every value is validated by ``__post_init__``.
    """
    made = dataclass(frozen=True, slots=True, repr=False, eq=False, init=False)(cls)
    fields = dataclasses.fields(made)  # type: ignore[arg-type]
    if any(f.default is dataclasses.MISSING or not f.init for f in fields):
        raise TypeError(f"{cls.__name__}: every field needs a plain default")
    defaults = tuple((f.name, f.default) for f in fields)
    assign = object.__setattr__  # what a frozen dataclass's own __init__ uses

    def __init__(self: Any, **values: Any) -> None:
        for name, default in defaults:
            assign(self, name, values.pop(name, default))
        if values:
            unknown = ", ".join(sorted(values))
            raise TypeError(f"{cls.__name__}() got unexpected keyword argument(s): {unknown}")
        self.__post_init__()

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    made.__init__ = __init__  # type: ignore[method-assign]
    made.__signature__ = _FieldSignature()  # type: ignore[attr-defined]
    return made


class _FieldSignature:
    """``inspect.signature`` of a :func:`_bounds` class: every field, keyword-only, with its
    type and default (what help() and the API reference show), built when first asked for."""

    def __get__(self, obj: object, cls: type[Any]) -> Any:
        import inspect

        kind = inspect.Parameter.KEYWORD_ONLY
        return inspect.Signature(
            [
                inspect.Parameter(f.name, kind, default=f.default, annotation=f.type)
                for f in dataclasses.fields(cls)
            ],
            return_annotation=None,
        )


@_bounds
class Limits:
    """Upper bounds on the work done for one scan, signature or verification of untrusted
    input (every bound on untrusted input lives here).

    Each field's comment in ``mltrust/config.py`` says what it bounds and what happens past
    it; no bound ends in "clean". A scan reads its bounds from ``ScanConfig.limits``:
    ``[scan.limits]`` in ``mltrust.toml`` sets the fields of the first group and of the "model
    formats" group (except those marked *default only*; :data:`SCAN_TABLE_LIMITS`) and refuses
    the others, which a scan would not read.
    Code that no configured ``Limits`` reaches (format sniffing, evidence collectors, the
    server, policy, advisories, integrations) reads :data:`DEFAULT_LIMITS`; signing,
    verification and admission take a ``limits`` argument or policy field for their group.
    """

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
    #: Files one walk of an untrusted folder lists: a model folder signed or verified (the walk
    #: stops and fails beyond it) or, as files.DEFAULT_MAX_FILES, a project checked (the listing
    #: is truncated and the check fails closed).
    max_model_files: int = 1_000_000
    #: Body of one AdmissionReview sent to ``mltrust admission serve`` (Kubernetes objects are
    #: at most ~1.5 MiB in etcd; a review carries the object and the old object).
    max_admission_bytes: int = 8 * _MiB
    #: Model locations one admitted object may name (each distinct one is verified: a full hash).
    max_admission_models: int = 16
    #: Nesting followed in an admitted object's spec when searching it for model URIs (deeper:
    #: the object is refused; read from DEFAULT_LIMITS, not the admission policy's limits).
    max_admission_spec_depth: int = 64

    # -- model formats (mltrust.scan); the file being scanned is untrusted. Read from the
    # scan's ScanConfig.limits, except where a comment says "default only" --
    #: Bytes searched for the newline of a pickle text argument (protocol 0): a name longer
    #: than this is not read as text, and the sniffer (default only) gives up on a longer line;
    #: the analysis reads lines up to the larger of this and max_text_bytes (longer: a limit
    #: finding).
    max_pickle_line_bytes: int = 1 << 20
    #: Memo entries held by the pickle analysis (checked every 65536 opcodes; beyond: a limit
    #: finding, the rest of the stream unread).
    max_pickle_memo: int = 2_000_000
    #: Stack values held by the pickle analysis (checked with the memo; beyond: a limit finding).
    max_pickle_stack: int = 1_000_000
    #: Visits of the symbolic value graph allowed per pickle analysis, plus two per byte of data
    #: (a well-formed pickle needs at most about two per byte; past it: a high finding, the
    #: pickle is treated as unsafe).
    max_pickle_value_visits: int = 500_000
    #: Items kept per symbolic container in the pickle analysis; the rest are counted, dropped
    #: (default only: read once, the containers are made in the hot loop).
    max_pickle_container_items: int = 4096
    #: Imports recorded as scan facts per file (the rest are analysed but not listed as facts).
    max_pickle_fact_imports: int = 1000
    #: Characters of a numpy dtype type code taken as a constant (longer: an unknown value;
    #: default only).
    max_pickle_dtype_code: int = 64
    #: Bytes of an importable module's source parsed to see whether a pickle's name resolves
    #: in it (a larger module counts as resolving; default only, the answer is cached).
    max_resolve_source_bytes: int = 2 << 20
    #: Header of a ``.npy`` array (beyond: the file is malformed, a finding).
    max_npy_header_bytes: int = 1 << 20
    #: Nesting of the Python literal or dtype in a ``.npy`` header (deeper: malformed, a finding).
    max_npy_header_depth: int = 32
    #: Positions searched for the end of a torch storage; beyond, the nearest are kept and the
    #: rest of the member is reported not analysed.
    max_torch_storage_frontier: int = 4096
    #: Hard links followed to a legacy torch tar's member, as tarfile's extractfile follows
    #: them (more: reported as a chain torch would follow, the member not analysed).
    max_torch_tar_link_hops: int = 64
    #: Entries of one tar member's sparse map (beyond: the member is reported, not rebuilt).
    max_tar_sparse_entries: int = 100_000
    #: Map searches one sparse tar member's rebuild may take (a disordered map makes each byte
    #: cost a search through the whole map); past it the rest is not rebuilt (a finding).
    max_tar_sparse_steps: int = 20_000_000
    #: Bytes of a tar long-name or pax header read (the rest is reported, not read).
    max_tar_meta_bytes: int = 1 << 20
    #: Links one tar path resolution passes through (Linux's MAXSYMLINKS); more is a loop
    #: and the member is reported.
    max_tar_link_hops: int = 40
    #: Path components one tar archive's link resolutions may walk in all (a few seconds at
    #: worst), plus four per byte of the archive; past it, later members' paths are not
    #: checked against the links (a finding).
    max_tar_resolve_steps: int = 2_000_000
    #: End records or central directories of one zip read besides the first (more: a finding).
    max_zip_directory_views: int = 16
    #: Bytes of raw tensor storages (``<top>/data/<n>``) CRC-checked per zip; the storages past
    #: it are not CRC-checked and are counted in the facts (every other member is checked).
    max_zip_raw_crc_bytes: int = 256 * _MiB
    #: Offsets (0, 512, 1024... doubling) up to which an HDF5 superblock is looked for behind a
    #: user block (none found: malformed; the sniffer uses the default).
    max_hdf5_userblock: int = 1 << 30
    #: Messages in one HDF5 object header, continuations included (more: malformed, a finding).
    max_hdf5_header_messages: int = 65536
    #: Continuation blocks in one HDF5 object header (more: malformed, a finding).
    max_hdf5_continuations: int = 1024
    #: JSON object starts tried by the HDF5 content fallback (beyond: not fully scanned).
    max_hdf5_fallback_candidates: int = 4096
    #: Blocks of one HDF5 fractal heap's index read (more: the heap is reported malformed).
    max_hdf5_heap_blocks: int = 1 << 16
    #: Base64 text of one serialized Keras function decoded (the rest is not decoded).
    max_keras_code_b64: int = 4 * _MiB
    #: Findings one Keras/config document may add before the rest of it is reported unchecked.
    max_findings_per_document: int = 1000
    #: Bytes of a text checked for being Python source (larger: scanned as a config; default
    #: only, a sniffing decision).
    max_python_source_bytes: int = 4 << 20
    #: Lines of a text checked for being Python source (more: scanned as a config; default only).
    max_python_source_lines: int = 60_000
    #: Values a Jinja expression is evaluated to at most (more: its value is unknown; default
    #: only).
    max_jinja_values: int = 64
    #: Characters of a YAML document given to the pure-Python composer (larger: a limit
    #: finding; when sniffing, the default decides).
    max_yaml_pure_text: int = 1 << 20
    #: ``[`` and ``{`` in a YAML document that libyaml's composer may get (more: the pure-Python
    #: composer, which is bounded by max_yaml_pure_text).
    max_yaml_c_flow_openers: int = 2_000_000
    #: Flow nesting of a YAML document that libyaml's composer (which recurses on the C stack)
    #: may get; deeper goes to the pure-Python composer.
    max_yaml_c_flow_depth: int = 500

    # -- evidence (mltrust check); the project being checked is untrusted. Default only:
    # the collectors read DEFAULT_LIMITS --
    #: Links followed, one after another, to resolve one link inside the subject (more: the
    #: link is reported as not resolved).
    max_subject_link_hops: int = 40
    #: Bytes of a ``pyvenv.cfg`` read to tell a virtual environment (larger: not one).
    max_pyvenv_cfg_bytes: int = 64 * 1024
    #: Bytes of a Git index read (larger: the tracked files are unknown, reported).
    max_git_index_bytes: int = 256 * _MiB
    #: Bytes of a ``.git`` file (a worktree's pointer) or ``commondir`` read (larger: not
    #: followed, the tracked files are unknown).
    max_git_gitfile_bytes: int = 4096
    #: Bytes of one Git ref file (``HEAD``, a loose ref) read (larger: the ref is unknown).
    max_git_ref_bytes: int = 4096
    #: Bytes of ``packed-refs`` read (larger: its refs are unknown).
    max_git_packed_refs_bytes: int = 64 * _MiB
    #: Bytes of one loose Git object file read (larger: the object counts as absent).
    max_git_loose_object_bytes: int = 16 * _MiB
    #: Git pack indexes looked through for an object (the rest are not).
    max_git_packs: int = 1000
    #: Lines of a Git ``alternates`` file followed (the rest are not).
    max_git_alternates: int = 16
    #: Bytes of a license text read and matched (the rest is not).
    max_license_text_bytes: int = 1 * _MiB
    #: Bytes of a model card's YAML front matter parsed (larger: not parsed).
    max_front_matter_bytes: int = 256 * 1024
    #: Bytes of an image vulnerability report read (larger: an error).
    max_image_report_bytes: int = 256 * _MiB
    #: Bytes of an attestation file read from the subject (larger: not read, reported).
    max_attestation_file_bytes: int = 16 * _MiB
    #: Bytes of one dependency file (requirements, lock file, Dockerfile...) read (larger: a
    #: problem, the file not checked).
    max_dependency_file_bytes: int = 8 * _MiB
    #: ``-r``/``-c`` includes followed from one requirements file (deeper: a problem).
    max_dependency_include_depth: int = 5
    #: Files one command host may run or include in turn (``bash a`` where ``a`` sources ``b``, a
    #: makefile's nested ``include``s, GitLab and just includes), read.
    max_command_host_files: int = 64
    #: Files one computed host file name may name (past it, the name is reported).
    max_command_host_matches: int = 16
    #: Lines joined while looking for the end of a quoted shell word.
    max_command_join_lines: int = 200
    #: Characters of one text re-scanned while looking for the end of a quote.
    max_command_join_bytes: int = 4 * _MiB
    #: Nesting of shell commands followed (``sh -c "bash -c ..."``, aliases, functions).
    max_command_depth: int = 3
    #: Words one shell brace expansion may produce (past it the word is kept unexpanded).
    max_brace_words: int = 256
    #: Levels of compressed or archived content opened inside one file of the subject (a gzip
    #: in a tar in a zip is three); deeper is listed as not searched.
    max_unpack_depth: int = 3
    #: Members of one archive in the subject examined; past it, the archive is not searched.
    max_unpack_members: int = 100_000
    #: Bytes of one file read whole for code analysis, notebooks or one secret search; a
    #: larger Python file or notebook is not analysed (a finding), and a larger file of any
    #: kind is searched for secrets in chunks of this size.
    max_code_text_bytes: int = 4 * _MiB
    #: Bytes of one file the secret search covers; past it, the rest is not searched (listed).
    max_secret_file_bytes: int = 64 * _MiB
    #: Bytes the chunked secret search covers over the whole project (files read whole do not
    #: count against it); past it, files are listed as not searched. The search reads about
    #: 10 MB/s on a busy CI core, so this keeps it well under a minute; model weights past the
    #: caps are not searched and need a reviewed waiver (fail closed).
    max_secret_total_bytes: int = 256 * _MiB
    #: Members of one Python archive (zip, egg, wheel) in the subject listed for code.
    max_code_archive_members: int = 100_000
    #: Bytes of source read from one Python archive in the subject.
    max_code_archive_source_bytes: int = 64 * _MiB
    #: How many times files run by files run from Python are followed.
    max_code_run_depth: int = 4
    #: How deep code strings inside code strings are followed.
    max_code_string_depth: int = 4
    #: Characters of code strings analysed (the rest are not).
    max_code_string_chars: int = 4 * _MiB
    #: Names one Python expression may stand for; past it the name is unknown.
    max_name_candidates: int = 64
    #: Fewest assignment evaluations allowed per module (8 per assignment when more); past it
    #: the module is reported as not fully analysed.
    max_symbol_steps: int = 200_000
    #: Steps one project-level name is followed through other modules' exports.
    max_export_depth: int = 16

    # -- policy, reports, advisories, serving and integrations. Default only: read from
    # DEFAULT_LIMITS --
    #: Bytes of a policy profile read.
    max_profile_bytes: int = 4 * _MiB
    #: Profiles one profile may extend in a chain (deeper: an error).
    max_profile_extends_depth: int = 4
    #: Bytes of an evidence report read to write a pull-request comment.
    max_pr_report_bytes: int = 64 * _MiB
    #: Bytes of one advisory document read (larger ones are skipped and counted).
    max_advisory_document_bytes: int = 4 * _MiB
    #: Members read from one advisory zip archive.
    max_advisory_zip_members: int = 500_000
    #: Bytes of an OSV advisory zip downloaded (the PyPI zip is tens of MiB).
    max_advisory_download_bytes: int = 1 << 30
    #: YAML structure characters (``[ { - ? :``) in one untrusted YAML document (advisories,
    #: model cards, dependency files); more: refused.
    max_untrusted_yaml_indicators: int = 50_000
    #: Bytes of a served model's settings file read.
    max_serve_settings_bytes: int = 1 * _MiB
    #: Bytes of one served model artifact verified and loaded.
    max_serve_artifact_bytes: int = 8 * _GiB
    #: Bytes of a detector's reference data read.
    max_detector_reference_bytes: int = 256 * _MiB
    #: Elements of one tensor in an inference request (more: the request is refused).
    max_request_tensor_elements: int = 10_000_000
    #: Dimensions of one tensor in an inference request.
    max_request_tensor_dims: int = 8
    #: Input (or requested output) tensors in one inference request.
    max_request_inputs: int = 64
    #: Identities given their own request-count metric series (the rest share one).
    max_metric_identities: int = 1000
    #: Bytes of a probed endpoint's answer read (the rest is never downloaded).
    max_probe_answer_bytes: int = 64 * 1024
    #: Elements in a probe request built from the model's metadata.
    max_probe_request_elements: int = 4096
    #: Bytes of an MLflow ``MLmodel`` file read when loading.
    max_mlmodel_bytes: int = 1 * _MiB
    #: Consecutive empty S3 listing pages tolerated (a server that never ends a listing).
    max_s3_empty_pages: int = 100
    #: Trials of a tuning study recorded; a larger study is refused, never truncated.
    max_tuning_trials: int = 20_000
    #: Bytes of a tuning study's SQLite storage read.
    max_tuning_storage_bytes: int = 512 * _MiB

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"limit {f.name} must be a number, not {value!r}")
            if value < 0 or (value == 0 and f.name != "max_seconds_per_file"):
                raise ConfigError(f"limit {f.name} must be positive, not {value!r}")

    # ``==`` and ``hash`` compare every field, as the generated methods would; written out
    # because generating them for a hundred fields costs every process a millisecond at import.
    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _limit_values(self) == _limit_values(other)

    def __hash__(self) -> int:
        return hash(_limit_values(self))

    def __repr__(self) -> str:
        # Only the fields that differ from the defaults: a hundred defaults say nothing (and
        # would fill every signature that takes ``limits=Limits()``).
        changed = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        )
        return f"Limits({changed})"

    def replace(self, **changes: Any) -> Limits:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown limit(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)


_limit_values = operator.attrgetter(*(f.name for f in dataclasses.fields(Limits)))

#: The default bounds, for code that no configured :class:`Limits` reaches (evidence
#: collectors, the server, policy, advisories, integrations).
DEFAULT_LIMITS = Limits()


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


def _may_name_mltrust(pyproject: Path) -> bool:
    """Whether ``pyproject`` could hold a ``tool.mltrust`` table: TOML spells a key out, bare
    or quoted, or in a basic string with ``\\u``/``\\U`` escapes, so a file without either cannot.
    Most projects' pyproject.toml has no such table; this spares parsing them (and importing the
    TOML parser) at every start. A file that might is parsed, and errors as before."""
    try:
        raw = pyproject.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {pyproject}: {exc.strerror}") from None
    return b"mltrust" in raw or b"\\u" in raw or b"\\U" in raw


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
            if pyproject.is_file() and _may_name_mltrust(pyproject):
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
            has_table = _may_name_mltrust(pyproject) and "mltrust" in _read_toml(pyproject).get(
                "tool", {}
            )
        except (ConfigError, AttributeError):
            has_table = False
        if has_table:
            out.append("pyproject.toml [tool.mltrust]")
    return out


def _scan_table_limits() -> frozenset[str]:
    """The :class:`Limits` fields a scan reads from its own configuration: the first group
    (through ``max_seconds_per_file``) and the model formats group, less its fields marked
    *default only* (read once or when sniffing, before any configuration is known)."""
    names = [f.name for f in dataclasses.fields(Limits)]
    general = names[: names.index("max_seconds_per_file") + 1]
    formats = names[names.index("max_pickle_line_bytes") : names.index("max_yaml_c_flow_depth") + 1]
    default_only = {
        "max_pickle_container_items",
        "max_pickle_dtype_code",
        "max_resolve_source_bytes",
        "max_python_source_bytes",
        "max_python_source_lines",
        "max_jinja_values",
    }
    return frozenset(general + formats) - default_only


_FIELDS = frozenset(f.name for f in dataclasses.fields(Limits))
#: What ``[scan.limits]`` may set: a field a scan does not read is refused there, not
#: accepted and silently ignored.
SCAN_TABLE_LIMITS = _scan_table_limits()


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
    ignored = sorted(set(limits_table) & _FIELDS - SCAN_TABLE_LIMITS)
    if ignored:
        raise ConfigError(
            f"[scan.limits] does not set {', '.join(ignored)}: a scan does not read "
            f"{'it' if len(ignored) == 1 else 'them'} (evidence, signing, serving and sniffing "
            "bounds use their built-in values)"
        )
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
