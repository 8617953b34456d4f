"""The MLflow model registry as mltrust's artifact store: sign, verify, load and promote versions.

    mltrust mlflow sign    models:/NAME/VERSION --key release.key
    mltrust mlflow verify  models:/NAME/VERSION --key release.pub
    mltrust mlflow promote models:/NAME/VERSION --alias production --key release.pub

The tracking server is the one named by ``MLFLOW_TRACKING_URI`` (or ``--tracking-uri``): the only
network peer these commands talk to, and one the user chose.

Decisions:

- **What is signed is what MLflow serves.** The version's artifacts are downloaded through
  MLflow (``models:/NAME/VERSION``) into a private temporary folder, scanned, and signed there
  with the registered name and the version number as the signed identity; verification downloads
  them again and re-hashes every file, so a changed artifact store is detected.
- **Where the evidence lives.** The bundle (``model.sig``) and the signed scan attestation are
  logged as artifacts of the version's run under ``mltrust/NAME/VERSION/``; the version gets the
  tags ``mltrust.signature`` (that artifact's URI) and ``mltrust.root_digest``. Tags and run
  artifacts are writable by anyone who can write the registry, so nothing in them is trusted:
  a forged or swapped bundle fails verification against the pinned key, and a bundle for
  another name or version fails the identity check.
- **Scan before sign.** A version whose artifacts have findings at or above ``fail_on`` is not
  signed (:class:`~mltrust.errors.UnsafeModelError`). The scan uses the operator's
  configuration (found from the current folder), never an ``mltrust.toml`` in the artifacts.
- **Nothing unsigned rides along.** Verification, promotion and loading refuse a version whose
  artifacts hold anything the signature does not cover (a ``.git/`` or ``.github/`` added to
  the store after signing, a link, a special file), though the signed files still match.
- **Promotion is gated.** :func:`promote` sets an alias only after verification and a clean scan
  of the downloaded artifacts.
- **Loading** (:func:`load_model`) verifies, then loads the scikit-learn flavour's pickle with the
  restricted unpickler (:func:`mltrust.load`); other flavours are refused rather than handed to
  MLflow's own loaders, which unpickle without restriction.
- MLflow's telemetry is switched off for these commands (``MLFLOW_DISABLE_TELEMETRY``): mltrust
  never phones home, and does not let a library do it on its behalf.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import ConfigError, InputError, VerificationError

__all__ = [
    "SignedVersion",
    "load_model",
    "parse_model_uri",
    "promote",
    "sign_model_version",
    "verify_model_version",
]

#: Run artifact folder holding mltrust's evidence for one registered version.
EVIDENCE_DIR = "mltrust"
TAG_SIGNATURE = "mltrust.signature"
TAG_DIGEST = "mltrust.root_digest"
_URI = re.compile(r"^models:/([^/\s]{1,256})/([1-9][0-9]{0,9})$")


@dataclass(frozen=True, slots=True)
class SignedVersion:
    name: str
    version: int
    root_digest: str
    signature_uri: str
    files: int


def parse_model_uri(uri: str) -> tuple[str, int]:
    """``models:/NAME/VERSION`` → ``(NAME, VERSION)``; aliases and stages are not signable."""
    m = _URI.match(uri)
    if not m:
        raise ConfigError(
            f"{uri!r} is not a model version URI; expected models:/NAME/VERSION "
            "(a numeric version, not an alias or stage)"
        )
    return m.group(1), int(m.group(2))


def _mlflow() -> Any:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    try:
        import mlflow
    except ImportError:
        raise ConfigError(
            "the MLflow integration needs mlflow", hint="pip install 'mltrust[mlflow]'"
        ) from None
    return mlflow


def _client(tracking_uri: str | None) -> Any:
    mlflow = _mlflow()
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise ConfigError("no MLflow tracking server: set MLFLOW_TRACKING_URI or --tracking-uri")
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri)


def _version(client: Any, name: str, version: int) -> Any:
    try:
        return client.get_model_version(name, str(version))
    except _errors() as exc:
        raise InputError(f"models:/{name}/{version}: {_short(exc)}") from None


def _errors() -> tuple[type[BaseException], ...]:
    """What MLflow raises for a server-side refusal or a transport failure (requests' errors
    are OSError subclasses); anything else is a bug and propagates."""
    from mlflow.exceptions import MlflowException

    return (MlflowException, OSError, ValueError)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


@contextmanager
def _downloaded(name: str, version: int, tracking_uri: str | None) -> Iterator[Path]:
    """The version's artifacts in a private temporary folder, removed afterwards."""
    mlflow = _mlflow()
    with tempfile.TemporaryDirectory(prefix="mltrust-mlflow-") as tmp:
        dest = Path(tmp) / "model"
        dest.mkdir(mode=0o700)
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}",
                dst_path=str(dest),
                tracking_uri=tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"),
            )
        except _errors() as exc:
            raise InputError(f"cannot download models:/{name}/{version}: {_short(exc)}") from None
        yield Path(local)


def _scan_clean(folder: Path) -> None:
    from mltrust.integrations._common import scan_clean

    scan_clean(folder, what="the version's artifacts")


def sign_model_version(
    uri: str,
    *,
    key: str | Path,
    passphrase: bytes | None = None,
    tracking_uri: str | None = None,
) -> SignedVersion:
    """Scan, sign and attest a registered model version; store the evidence in its run."""
    from mltrust.attest import attest_scan, load_private_key, sign

    name, version = parse_model_uri(uri)
    client = _client(tracking_uri)
    mv = _version(client, name, version)
    run_id = getattr(mv, "run_id", None)
    if not run_id:
        raise InputError(f"{uri}: the version has no run to store the signature in")
    private = load_private_key(key, passphrase)
    with _downloaded(name, version, tracking_uri) as folder, tempfile.TemporaryDirectory() as out:
        _scan_clean(folder)
        bundle = Path(out) / "model.sig"
        sign(folder, key=private, output=bundle, model_name=name, version=version)
        verified = _verify_folder(folder, bundle, name, version, private.public_key())
        scan_bundle = Path(out) / "scan.sig"
        attest_scan(folder, key=private, output=scan_bundle)
        artifact_path = f"{EVIDENCE_DIR}/{name}/{version}"
        try:
            client.log_artifact(run_id, str(bundle), artifact_path=artifact_path)
            client.log_artifact(run_id, str(scan_bundle), artifact_path=artifact_path)
            sig_uri = f"runs:/{run_id}/{artifact_path}/model.sig"
            client.set_model_version_tag(name, str(version), TAG_SIGNATURE, sig_uri)
            client.set_model_version_tag(name, str(version), TAG_DIGEST, verified.root_digest)
        except _errors() as exc:
            raise InputError(f"cannot store the signature in MLflow: {_short(exc)}") from None
        return SignedVersion(name, version, verified.root_digest, sig_uri, len(verified.files))


def _verify_folder(
    folder: Path, bundle: Path, name: str, version: int, key: Any | Sequence[Any]
) -> Any:
    from mltrust.attest import PinnedKeys, verify

    keys = key if isinstance(key, Sequence) and not isinstance(key, (str, bytes)) else [key]
    verified = verify(folder, trust=PinnedKeys(*keys), signature=bundle)
    if verified.model_name != name or verified.version != version:
        raise VerificationError(
            f"the signature is for {verified.model_name} version {verified.version}, "
            f"not {name} version {version}"
        )
    return verified


def _uncovered(folder: Path, verified: Any) -> list[str]:
    """Everything in the downloaded artifacts that the signature does not cover: files left
    out of it (``.git*``, mltrust's own files), links, special files, unreadable entries."""
    from mltrust.files import Entry, iter_walk

    out: list[str] = []
    for item in iter_walk(folder):
        if isinstance(item, Entry):
            if item.rel not in verified.files:
                out.append(f"not covered by the signature: {item.rel}")
        else:
            out.append(f"not covered by the signature: {item.rel} ({item.detail})")
    return out


def _fetch_signature(mv: Any, dest: Path, tracking_uri: str | None) -> Path:
    mlflow = _mlflow()
    tags = getattr(mv, "tags", None) or {}
    sig_uri = tags.get(TAG_SIGNATURE)
    if not sig_uri:
        raise VerificationError(
            f"models:/{mv.name}/{mv.version} is not signed (no {TAG_SIGNATURE} tag)"
        )
    if not str(sig_uri).startswith("runs:/") or ".." in str(sig_uri):
        raise VerificationError(f"{TAG_SIGNATURE} is not a run artifact URI: {sig_uri!r}")
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=str(sig_uri),
            dst_path=str(dest),
            tracking_uri=tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"),
        )
    except _errors() as exc:
        raise VerificationError(f"cannot download the signature {sig_uri}: {_short(exc)}") from None
    return Path(local)


@contextmanager
def _verified(
    uri: str,
    key: str | Path | Sequence[str | Path],
    tracking_uri: str | None,
    *,
    scan: bool,
) -> Iterator[tuple[Any, str, int, Path, Any]]:
    """``(client, name, version, folder, verified)`` for a version whose download verified
    (name, version, every file) and, with ``scan``, scans clean; the folder is removed after."""
    from mltrust.attest import load_public_key

    name, version = parse_model_uri(uri)
    client = _client(tracking_uri)
    mv = _version(client, name, version)
    keys = [load_public_key(k) for k in ([key] if isinstance(key, (str, Path)) else key)]
    with tempfile.TemporaryDirectory() as sig_dir:
        bundle = _fetch_signature(mv, Path(sig_dir), tracking_uri)
        with _downloaded(name, version, tracking_uri) as folder:
            verified = _verify_folder(folder, bundle, name, version, keys)
            # The artifact store is writable by others: a .git/ (hooks, core.fsmonitor) or
            # .github/ added after signing is left out of the digests, so it is refused here
            # rather than promoted or loaded with a model that "verified".
            uncovered = _uncovered(folder, verified)
            if uncovered:
                raise VerificationError(
                    f"the artifacts hold {len(uncovered)} path(s) the signature does not cover",
                    differences=uncovered,
                )
            if scan:
                _scan_clean(folder)
            yield client, name, version, folder, verified


def verify_model_version(
    uri: str,
    *,
    key: str | Path | Sequence[str | Path],
    tracking_uri: str | None = None,
) -> Any:
    """Download the version and its signature, and verify name, version and every file."""
    with _verified(uri, key, tracking_uri, scan=False) as (*_, verified):
        return verified


def load_model(
    uri: str,
    *,
    key: str | Path | Sequence[str | Path],
    tracking_uri: str | None = None,
) -> Any:
    """Verify a version, scan it, and load its scikit-learn model with the safe loader.

    The pickle is read once, checked against its signed digest, and those same bytes are
    scanned again and unpickled by :func:`mltrust.load` (restricted to the allowlist).
    """
    import yaml

    import mltrust
    from mltrust.files import read_bounded

    with _verified(uri, key, tracking_uri, scan=True) as (_c, _n, _v, folder, verified):
        doc = yaml.safe_load(
            read_bounded(folder / "MLmodel", DEFAULT_LIMITS.max_mlmodel_bytes, what="MLmodel")
        )
        flavors = doc.get("flavors", {}) if isinstance(doc, dict) else {}
        sk = flavors.get("sklearn") if isinstance(flavors, dict) else None
        if not isinstance(sk, dict) or not isinstance(sk.get("pickled_model"), str):
            raise ConfigError(
                f"{uri}: only the sklearn flavour is loaded safely; found "
                f"{sorted(flavors) if isinstance(flavors, dict) else 'no flavours'}"
            )
        rel = sk["pickled_model"]
        target = (folder / rel).resolve()
        if folder.resolve() not in target.parents:
            raise VerificationError(f"{uri}: pickled_model points outside the model")
        data = read_bounded(target, 1 << 36, what="pickled model")
        if not verified.matches(target.relative_to(folder.resolve()).as_posix(), data):
            raise VerificationError(f"{uri}: {rel} changed after verification")
        return mltrust.load(data)


def promote(
    uri: str,
    *,
    alias: str,
    key: str | Path | Sequence[str | Path],
    tracking_uri: str | None = None,
) -> Any:
    """Set ``alias`` on a version only if it verifies and its artifacts scan clean."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,63}", alias):
        raise ConfigError(f"alias {alias!r} must be a letter then letters, digits, '_' or '-'")
    with _verified(uri, key, tracking_uri, scan=True) as (client, name, version, _f, verified):
        try:
            client.set_registered_model_alias(name, alias, str(version))
        except _errors() as exc:
            raise InputError(f"cannot set alias {alias!r}: {_short(exc)}") from None
        return verified
