"""Tuning provenance: a signed record of the hyperparameter search that chose a model.

``mltrust attest tuning STUDY --study-name NAME --model MODEL --key KEY`` reads an Optuna
study and signs an in-toto statement (predicate ``https://mltrust.dev/tuning/v1``) whose
subject is the model's root digest (the one ``sign`` and ``attest provenance`` name), holding:
the search space (each parameter's distribution as Optuna serialises it), every trial's
number, state, parameters, objective values, intermediate values and user attributes, the
selected trial (the best one, or ``--selected-trial``), and the digests of the training data
sets (root digests) and the code commit. ``attest provenance --tuning BUNDLE`` then lists the
signed tuning statement among the model's resolved dependencies, so provenance links to it.

Decisions:

* **Optuna's own reader.** The storage is read with ``optuna.load_study`` (the ``tuning``
  extra), not by a second parser of Optuna's SQLite schema: a private copy of a schema that
  changes between Optuna versions could disagree with Optuna about what a study holds. The
  cost is an optional dependency at attestation time only; ``check`` never needs Optuna.
* **Check bytes, then use the same bytes.** A SQLite file (a path or ``sqlite:///PATH``) is
  read once, bounded, hashed (``storage.sha256`` in the predicate), written to a private
  temporary folder and opened there, so the study recorded is the study hashed and Optuna never
  writes to (or migrates) the user's file. Other RDB URLs (PostgreSQL, MySQL) are opened as
  given and carry no storage digest; the statement says so.
* **Fail closed.** A study over ``max_tuning_trials`` trials is refused rather than truncated;
  non-finite objective values are recorded as the strings ``"nan"``, ``"inf"``, ``"-inf"``
  (JSON has no such numbers). A missing study or a storage Optuna cannot read is an
  :class:`~mltrust.errors.InputError`.

Not recorded: the sampler and pruner objects (Optuna does not store them), and anything about
how a trial's objective was computed beyond what the trial itself stored.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrust.attest._attestations import (
    _COMMIT,
    _store_and_write,
    _subject,
    attestation_path,
    model_manifest,
)
from mltrust.attest._bundle import STATEMENT_TYPE
from mltrust.attest._keys import PrivateKey
from mltrust.attest._manifest import build_manifest
from mltrust.attest._sign import format_time, resolve_private_key
from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import ConfigError, InputError

if TYPE_CHECKING:
    from mltrust.store import EvidenceStore

__all__ = [
    "TUNING_PREDICATE",
    "attest_tuning",
    "read_optuna_study",
    "tuning_statement",
]

TUNING_PREDICATE = "https://mltrust.dev/tuning/v1"


def _number(v: Any) -> Any:
    """A JSON-safe objective value: finite floats as they are, others as strings."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        f = float(v)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return v
    return v


def _jsonable(v: Any, depth: int = 0) -> Any:
    """User attributes and parameter values as JSON (unknown objects as their ``repr``)."""
    if depth > 20:
        return repr(v)
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, depth + 1) for x in v]
    if isinstance(v, (str, bool)) or v is None:
        return v
    if isinstance(v, (int, float)):
        return _number(v)
    return repr(v)


def _time(t: datetime | None) -> str | None:
    if t is None:
        return None
    return format_time(t if t.tzinfo else t.replace(tzinfo=UTC))


def _storage_file(storage: str) -> Path | None:
    """The SQLite file behind ``storage`` (a path or ``sqlite:///PATH``), else ``None``."""
    if storage.startswith("sqlite:///"):
        rest = storage[len("sqlite:///") :]
        if not rest or rest.startswith(":memory:") or "?" in rest:
            raise ConfigError(f"unsupported SQLite URL {storage!r}; pass sqlite:///PATH")
        return Path(rest)
    if "://" in storage:
        return None
    return Path(storage)


def read_optuna_study(
    storage: str, study_name: str | None, *, selected_trial: int | None = None
) -> dict[str, Any]:
    """The ``study`` part of the predicate, read with Optuna from ``storage``."""
    try:
        import optuna
        from optuna.distributions import distribution_to_json
    except ImportError:
        raise ConfigError(
            "reading an Optuna study needs optuna", hint="pip install 'mltrust[tuning]'"
        ) from None
    from mltrust.digest import sha256_bytes
    from mltrust.files import read_bounded

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage_doc: dict[str, Any]
    path = _storage_file(storage)
    with tempfile.TemporaryDirectory(prefix="mltrust-tuning-") as tmp:
        if path is not None:
            if not path.is_file():
                raise InputError(f"study storage {path} is not a file")
            data = read_bounded(path, DEFAULT_LIMITS.max_tuning_storage_bytes, what="study storage")
            if not data.startswith(b"SQLite format 3\x00"):
                raise InputError(f"{path} is not a SQLite database")
            copy = Path(tmp) / "study.db"
            copy.write_bytes(data)
            url = f"sqlite:///{copy}"
            storage_doc = {"kind": "sqlite", "name": path.name, "sha256": sha256_bytes(data)}
        else:
            url = storage
            storage_doc = {"kind": storage.split("://", 1)[0], "sha256": None}
        rdb: Any = None
        try:
            rdb = optuna.storages.RDBStorage(url, skip_table_creation=path is None)
            names = [s.study_name for s in rdb.get_all_studies()]
            if study_name is None:
                if len(names) != 1:
                    raise ConfigError(
                        f"the storage holds {len(names)} studies; choose one with --study-name",
                        hint=f"studies: {', '.join(sorted(names)[:20])}",
                    )
                study_name = names[0]
            if study_name not in names:
                raise InputError(f"no study named {study_name!r} in the storage")
            study = optuna.load_study(study_name=study_name, storage=rdb)
            trials = study.get_trials(deepcopy=False)
            if len(trials) > DEFAULT_LIMITS.max_tuning_trials:
                raise InputError(
                    f"study {study_name!r} has {len(trials)} trials; at most "
                    f"{DEFAULT_LIMITS.max_tuning_trials} "
                    "are recorded (nothing was attested)"
                )
            directions = [d.name for d in study.directions]
            space: dict[str, list[Any]] = {}
            trial_docs = []
            for t in trials:
                for pname, dist in t.distributions.items():
                    doc = json.loads(distribution_to_json(dist))
                    seen = space.setdefault(pname, [])
                    if doc not in seen:
                        seen.append(doc)
                trial_docs.append(
                    {
                        "number": t.number,
                        "state": t.state.name,
                        "values": None if t.values is None else [_number(v) for v in t.values],
                        "params": _jsonable(t.params),
                        "intermediate": {
                            str(k): _number(v) for k, v in sorted(t.intermediate_values.items())
                        },
                        "userAttrs": _jsonable(t.user_attrs),
                        "started": _time(t.datetime_start),
                        "completed": _time(t.datetime_complete),
                    }
                )
            complete = [t for t in trials if t.state.name == "COMPLETE"]
            best: list[int] = []
            if complete:
                if len(directions) == 1:
                    best = [study.best_trial.number]
                else:
                    best = sorted(t.number for t in study.best_trials)
            if selected_trial is not None:
                if not any(t.number == selected_trial for t in trials):
                    raise InputError(f"study {study_name!r} has no trial {selected_trial}")
                chosen, how = selected_trial, "user"
            elif len(best) == 1:
                chosen, how = best[0], "best"
            else:
                raise InputError(
                    f"study {study_name!r} has no single best trial "
                    f"({'no complete trial' if not best else 'a Pareto front'}); "
                    "name the model's trial with --selected-trial"
                )
            user_attrs = _jsonable(study.user_attrs)
        except (optuna.exceptions.OptunaError, ImportError) as exc:
            raise InputError(f"cannot read the Optuna study: {exc}") from None
        except Exception as exc:  # sqlalchemy errors: a file Optuna cannot read
            if isinstance(exc, (ConfigError, InputError)):
                raise
            detail = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise InputError(
                f"cannot read the Optuna study: {type(exc).__name__}: {detail}"
            ) from None
        finally:
            if rdb is not None:
                rdb.engine.dispose()
    picked = next(d for d in trial_docs if d["number"] == chosen)
    counts: dict[str, int] = {}
    for d in trial_docs:
        counts[d["state"]] = counts.get(d["state"], 0) + 1
    return {
        "framework": {"name": "optuna", "version": optuna.__version__},
        "storage": storage_doc,
        "name": study_name,
        "directions": directions,
        "userAttrs": user_attrs,
        "searchSpace": {k: v[0] if len(v) == 1 else v for k, v in sorted(space.items())},
        "trialCounts": dict(sorted(counts.items())),
        "trials": trial_docs,
        "bestTrials": best,
        "selected": {
            "number": chosen,
            "how": how,
            "state": picked["state"],
            "params": picked["params"],
            "values": picked["values"],
        },
    }


def tuning_statement(
    model: str | Path,
    study: Mapping[str, Any],
    *,
    datasets: Sequence[str | Path] = (),
    code_commit: str | None = None,
    ignore: Sequence[str] = (),
    include_git: bool = False,
) -> dict[str, Any]:
    """The tuning statement about ``model``'s root digest."""
    manifest = model_manifest(model, ignore, include_git=include_git)
    data = []
    for ds in datasets:
        p = Path(ds)
        if not p.exists():
            raise InputError(f"data set not found: {p}")
        m = build_manifest(p)
        data.append({"name": p.resolve().name, "digest": {"sha256": m.root_digest}})
    code: dict[str, Any] | None = None
    if code_commit is not None:
        commit = code_commit.strip().lower()
        if not _COMMIT.match(commit):
            raise ConfigError(
                f"code commit {code_commit!r} is not a full git commit id (40 or 64 hex digits)",
                hint="pass the output of `git rev-parse HEAD`",
            )
        code = {"digest": {"gitCommit": commit}}
    return {
        "_type": STATEMENT_TYPE,
        "subject": _subject(manifest),
        "predicateType": TUNING_PREDICATE,
        "predicate": {
            "study": dict(study),
            "datasets": data,
            "code": code,
            "recordedAt": format_time(datetime.now(UTC)),
        },
    }


def attest_tuning(
    model: str | Path,
    storage: str,
    *,
    key: str | Path | PrivateKey,
    study_name: str | None = None,
    selected_trial: int | None = None,
    datasets: Sequence[str | Path] = (),
    code_commit: str | None = None,
    store: EvidenceStore | None = None,
    passphrase: bytes | None = None,
    output: str | Path | None = None,
    ignore: Sequence[str] = (),
    include_git: bool = False,
    insecure_key_permissions: bool = False,
) -> Path:
    """Read the study, sign the tuning statement about ``model``; returns the bundle path."""
    private = resolve_private_key(key, passphrase, insecure_permissions=insecure_key_permissions)
    study = read_optuna_study(storage, study_name, selected_trial=selected_trial)
    statement = tuning_statement(
        model,
        study,
        datasets=datasets,
        code_commit=code_commit,
        ignore=ignore,
        include_git=include_git,
    )
    out = Path(output) if output is not None else attestation_path(model, "tuning")
    return _store_and_write(statement, private, out, store)
