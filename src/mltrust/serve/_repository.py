"""The model repository and admission: a model is served only after its evidence passes.

For each folder under the repository (hidden folders skipped), in this order:

1. the settings file is read **once** (no link followed, bounded) and those bytes are parsed
   and validated (artifact URI inside the folder);
2. the folder's signature (``mltrust.attest``) must verify against a trusted key, and be for
   the model this folder holds: the signed model name must equal the folder's name (or the
   name ``signed_names`` maps the folder to), so another model signed by the same key cannot
   be dropped in its place; with ``min_versions``/``state``, an older release than allowed
   or than already seen (rollback) is refused; unless ``allow_unsigned`` (development only;
   warned at every start);
3. the settings bytes parsed in step 1 must be the signed bytes of that file
   (``VerifiedModel.matches``, with the manifest's own hash algorithm): settings swapped in
   around verification are never used;
4. the artifact bytes are read once; they must be the signed bytes of the artifact;
5. the whole folder is scanned by path (``mltrust.scan``) **and the artifact buffer of step 4
   is scanned itself**, so the scan gate judges the bytes that were verified and that the
   runtime loads; any finding at ``fail_on`` (medium) or above, or an unreadable file, refuses
   the model;
6. optionally a ``mltrust check`` profile (``mltrust.policy``) must pass;
7. the runtime loads *the bytes of step 4* (joblib only through ``mltrust.safeload``), and
   detector reference files are read once and must be their signed bytes too.

Nothing from the folder is unpickled or imported before steps 2-6 pass. A refused model keeps a
``reason`` (shown to admins and logged); its ready endpoint answers 503. Not bound: other files
of the folder are scanned by path; serve never loads them.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import ConfigError, Error
from mltrust.files import read_bounded
from mltrust.serve._batching import Batcher
from mltrust.serve._extraction import ExtractionMonitor
from mltrust.serve._logging import log
from mltrust.serve._settings import (
    ModelSettings,
    TensorSpec,
    find_settings_file,
    read_model_settings,
)
from mltrust.serve._validation import CompiledSchema
from mltrust.serve.detectors import Detector, build_detector
from mltrust.serve.detectors._reference import bound_to
from mltrust.serve.runtimes import Runtime, load_runtime

__all__ = ["AdmissionOptions", "ServedModel", "admit_model", "load_repository"]


@dataclass(frozen=True, slots=True)
class AdmissionOptions:
    trusted_keys: tuple[Path, ...] = ()
    #: model name -> keys trusted for that model only (in addition to ``trusted_keys``).
    model_keys: tuple[tuple[str, Path], ...] = ()
    allow_unsigned: bool = False
    plugin_path: Path | None = None
    check_profile: str | None = None
    #: folder name -> the signed model name expected there (default: the folder's own name).
    signed_names: tuple[tuple[str, str], ...] = ()
    #: expected (signed) model name -> the lowest signed version admitted (``--min-version``).
    min_versions: tuple[tuple[str, int], ...] = ()
    #: Rollback memory (``--state``): the highest signed version admitted per expected name
    #: (attest's state file; a lower one, or the same version with other content, is refused).
    #: Keep it outside the model repository: an uploader must not be able to write it.
    state: Path | None = None


@dataclass(slots=True)
class ServedModel:
    name: str
    folder: Path
    settings: ModelSettings | None = None
    runtime: Runtime | None = None
    reason: str | None = None
    artifact_sha256: str | None = None
    signed_by: str | None = None
    schema: CompiledSchema | None = None
    detectors: tuple[Detector, ...] = ()
    extraction: ExtractionMonitor | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    output_names: frozenset[str] = frozenset()
    labels: np.ndarray | None = None
    batcher: Batcher | None = None

    @property
    def ready(self) -> bool:
        return self.runtime is not None and self.reason is None

    @property
    def version(self) -> str:
        return self.settings.version if self.settings else ""


def _scan(folder: Path) -> None:
    from mltrust.scan import scan_paths

    report = scan_paths([folder])
    bad = [
        f"{f.rule_id} {f.message}"
        for r in report.files
        for f in r.findings
        if f.severity >= report.fail_on
    ]
    if report.failed or bad:
        raise _Refused("scan failed: " + "; ".join(bad[:3]))
    if report.errored:
        raise _Refused("scan failed: a file could not be read")


def _scan_artifact(name: str, data: bytes) -> None:
    """Scan the admitted artifact buffer itself (the bytes verified and loaded)."""
    from mltrust.config import ScanConfig
    from mltrust.scan import scan_bytes

    config = ScanConfig()
    result = scan_bytes(data, name=name, config=config)
    bad = [f"{f.rule_id} {f.message}" for f in result.findings if f.severity >= config.fail_on]
    if bad:
        raise _Refused("scan failed: " + "; ".join(bad[:3]))


def _verify_signature(settings: ModelSettings, options: AdmissionOptions) -> Any:
    """The VerifiedModel, or None with ``allow_unsigned``; raises _Refused otherwise."""
    if options.allow_unsigned:
        return None
    keys = list(options.trusted_keys) + [p for m, p in options.model_keys if m == settings.name]
    if not keys:
        raise _Refused("no trusted key configured (pass --trusted-key, or --allow-unsigned)")
    try:
        attest = importlib.import_module("mltrust.attest")
    except ModuleNotFoundError as exc:
        if exc.name != "mltrust.attest":
            raise
        raise _Refused(
            "signature required but signing support (mltrust.attest) is unavailable"
        ) from None
    expected = dict(options.signed_names).get(settings.folder.name, settings.folder.name)
    min_version = dict(options.min_versions).get(expected)
    try:
        return attest.verify(
            settings.folder,
            trust=attest.PinnedKeys(*keys),
            name=expected,
            min_version=min_version,
            state=options.state,
        )
    except Error as exc:
        raise _Refused(f"signature invalid: {str(exc).splitlines()[0]}") from None


def _check_signed(verified: Any, folder: Path, path: Path, data: bytes, what: str) -> None:
    """``data`` (read once, and what is used) must be the verified bytes of ``path``."""
    if verified is None:
        return
    rel = path.relative_to(folder).as_posix()
    if rel not in verified.files:
        raise _Refused(f"{what} {rel} is not covered by the signature")
    if not verified.matches(rel, data):
        raise _Refused(f"{what} {rel} differs from the signed file")


def _check_profile(settings: ModelSettings, options: AdmissionOptions) -> None:
    """Run the ``mltrust check`` evidence collectors and profile on the folder, when asked."""
    profile = options.check_profile
    if profile is None:
        return
    try:
        policy = importlib.import_module("mltrust.policy")
        evidence = importlib.import_module("mltrust.evidence")
    except ModuleNotFoundError as exc:
        if exc.name not in ("mltrust.policy", "mltrust.evidence"):
            raise
        log.warning(
            "policy check skipped: mltrust.policy/evidence is not installed",
            extra={"fields": {"model": settings.name, "profile": profile}},
        )
        return
    keys = tuple(options.trusted_keys) + tuple(
        p for m, p in options.model_keys if m == settings.name
    )
    try:
        loaded = policy.load_profile(profile)
        ctx = evidence.CollectContext(path=settings.folder, keys=keys)
        bundle = evidence.collect_evidence(ctx)
        verdict = policy.evaluate(bundle.document, loaded, collector_errors=bundle.errors)
    except Error as exc:
        raise _Refused(f"policy check error: {str(exc).splitlines()[0]}") from None
    status = str(getattr(verdict, "status", "error"))
    if status != "pass":
        failed = [
            str(getattr(getattr(r, "control", None), "id", "?"))
            for r in getattr(verdict, "results", ())
            if str(getattr(r, "status", "")) in ("fail", "error")
        ]
        raise _Refused(f"policy profile {profile!r}: {status} ({', '.join(failed[:5])})")


class _Refused(Exception):
    pass


def _metadata(model: ServedModel, runtime: Runtime, settings: ModelSettings) -> dict[str, Any]:
    return {
        "name": settings.name,
        "versions": [settings.version],
        "platform": runtime.platform,
        "inputs": [t.to_metadata() for t in runtime.input_specs()],
        "outputs": [t.to_metadata() for t in runtime.output_specs()],
    }


def admit_model(folder: Path, options: AdmissionOptions) -> ServedModel:
    model = ServedModel(name=folder.name, folder=folder)
    try:
        settings, settings_path, settings_bytes = read_model_settings(folder)
        model.name = settings.name
        if not settings.uri.is_file():
            raise _Refused(f"artifact {settings.uri.name} is missing")
        if settings.uri.stat().st_size > DEFAULT_LIMITS.max_serve_artifact_bytes:
            raise _Refused("artifact is too large")
        verified = _verify_signature(settings, options)
        _check_signed(verified, folder, settings_path, settings_bytes, "settings file")
        try:
            artifact = read_bounded(
                settings.uri, DEFAULT_LIMITS.max_serve_artifact_bytes, what="artifact"
            )
        except Error as exc:
            raise _Refused(f"artifact unreadable: {str(exc).splitlines()[0]}") from None
        _check_signed(verified, folder, settings.uri, artifact, "artifact")
        model.settings = settings
        if verified is not None:
            model.signed_by = str(getattr(verified, "key_fingerprint", "") or "trusted key")
        _scan(folder)
        _scan_artifact(str(settings.uri), artifact)
        _check_profile(settings, options)
        digest = hashlib.sha256(artifact).hexdigest()
        model.artifact_sha256 = digest
        runtime = load_runtime(settings, artifact, plugin_path=options.plugin_path)
        policy = settings.policy
        inputs = runtime.input_specs()
        model.schema = CompiledSchema(
            inputs,
            margin=policy.range_margin,
            max_rows=policy.max_batch_rows,
            any_name=settings.mlserver_style or not settings.inputs,
        )
        with bound_to(verified.matches if verified is not None else None):
            model.detectors = tuple(build_detector(settings.folder, d) for d in policy.detectors)
        if policy.extraction.enabled:
            ranged = [i for i in inputs if i.min is not None and i.max is not None]
            model.extraction = ExtractionMonitor(
                policy.extraction,
                ranges=(np.asarray(ranged[0].min), np.asarray(ranged[0].max))
                if len(inputs) == 1 and ranged
                else None,
            )
        model.metadata = _metadata(model, runtime, settings)
        model.outputs = runtime.default_outputs()
        model.output_names = frozenset(o.name for o in runtime.output_specs())
        labels = getattr(getattr(runtime, "_model", None), "classes_", None)
        model.labels = np.asarray(labels) if labels is not None else None
        model.runtime = runtime
    except _Refused as exc:
        model.reason = str(exc)
    except Error as exc:
        model.reason = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    except Exception as exc:  # noqa: BLE001 - a broken model must not stop the server
        model.reason = f"load failed: {type(exc).__name__}: {exc}"
    if model.reason is not None:
        log.error("model refused", extra={"fields": {"model": model.name, "reason": model.reason}})
    else:
        log.info(
            "model admitted",
            extra={
                "fields": {
                    "model": model.name,
                    "version": model.version,
                    "sha256": model.artifact_sha256,
                    "signed_by": model.signed_by,
                }
            },
        )
    return model


def load_repository(repo: Path, options: AdmissionOptions) -> dict[str, ServedModel]:
    if not repo.is_dir():
        raise ConfigError(f"{repo}: model repository is not a folder")
    if options.state is not None and repo.resolve() in options.state.resolve().parents:
        raise ConfigError(
            f"the admission state file {options.state} lies inside the model repository",
            hint="keep --state outside REPO: an uploader must not be able to reset it",
        )
    if options.allow_unsigned:
        log.warning(
            "--allow-unsigned: models are served WITHOUT signature verification (development only)"
        )
    models: dict[str, ServedModel] = {}
    unsettled: dict[str, ServedModel] = {}
    for folder in sorted(p for p in repo.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.is_symlink() or find_settings_file(folder) is None:
            # reported, not skipped: an operator who forgot the settings file sees why the
            # model is not served (503 for it, the reason at /v2/admin/models and in the log)
            what = (
                "the model folder is a symbolic link"
                if folder.is_symlink()
                else "no settings file (mltrust-model.yaml/.json or model-settings.json)"
            )
            model = ServedModel(name=folder.name, folder=folder, reason=f"refused: {what}")
            log.warning(
                "model folder refused", extra={"fields": {"folder": folder.name, "reason": what}}
            )
            unsettled[model.name] = model
            continue
        model = admit_model(folder, options)
        if model.name in models:
            model.reason = f"duplicate model name {model.name!r}"
            model.runtime = None
            models[f"{model.name}@{folder.name}"] = model
            continue
        models[model.name] = model
    for name, model in unsettled.items():
        models.setdefault(name, model)
    return models


def spec_names(specs: tuple[TensorSpec, ...]) -> list[str]:
    return [s.name for s in specs]
