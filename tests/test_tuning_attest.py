"""`mltrust attest tuning`: a real Optuna study on SQLite is recorded in a signed statement,
linked from provenance, verified, tampered with (the signature fails), and gated by `check`."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from mltrust.cli._main import main

optuna = pytest.importorskip("optuna", reason="the tuning extra (optuna) is not installed")
attest = pytest.importorskip("mltrust.attest")

COMMIT = "3" * 40


def _study(db: Path, name: str = "search", trials: int = 10) -> Any:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name,
        storage=f"sqlite:///{db}",
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.set_user_attr("owner", "ml-team")

    def objective(trial: Any) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        depth = trial.suggest_int("depth", 2, 8)
        crit = trial.suggest_categorical("criterion", ["gini", "entropy"])
        if trial.number == 3:
            raise optuna.TrialPruned()
        if trial.number == 5:
            raise ValueError("diverged")
        for step in range(3):
            trial.report(depth * 0.1 + step, step)
        return depth * 0.1 - abs(lr - 0.01) + (crit == "gini") * 0.05

    study.optimize(objective, n_trials=trials, catch=(ValueError,))
    return study


def _setup(tmp_path: Path) -> tuple[Path, Path, Any, Any]:
    db = tmp_path / "study.db"
    study = _study(db)
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    keys = attest.generate_keypair(tmp_path / "keys" / "k", passphrase=None)
    return db, model, study, keys


def _payload(bundle_path: Path) -> dict[str, Any]:
    bundle = json.loads(bundle_path.read_text())
    return dict(json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"])))


def _attest(db: Path, model: Path, keys: Any, *more: str) -> int:
    return main(["attest", "tuning", str(db), "--model", str(model), "-k",
                 str(keys.private_path), "--no-store", *more])  # fmt: skip


def test_study_is_recorded_signed_and_verifies(tmp_path: Path) -> None:
    db, model, study, keys = _setup(tmp_path)
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    before = db.read_bytes()
    assert _attest(db, model, keys, "--dataset", str(data), "--code-commit", COMMIT) == 0
    bundle_path = model / ".mltrust" / "attestations" / "tuning.bundle.json"
    assert db.read_bytes() == before  # Optuna never opened (or migrated) the user's file
    raw = bundle_path.read_bytes()
    public = attest.load_public_key(keys.public_path)
    statement, _fp = attest.verify_bundle_bytes(raw, [public])
    assert statement["predicateType"] == "https://mltrust.dev/tuning/v1"
    assert statement["subject"][0]["digest"]["sha256"] == attest.model_manifest(model).root_digest
    rec = statement["predicate"]["study"]
    assert rec["name"] == "search"
    assert rec["directions"] == ["MAXIMIZE"]
    assert rec["userAttrs"] == {"owner": "ml-team"}
    assert rec["storage"]["sha256"] == hashlib.sha256(before).hexdigest()
    space = rec["searchSpace"]
    assert space["lr"]["name"] == "FloatDistribution" and space["lr"]["attributes"]["log"]
    assert space["depth"]["name"] == "IntDistribution"
    assert space["criterion"]["attributes"]["choices"] == ["gini", "entropy"]
    assert len(rec["trials"]) == 10
    assert rec["trialCounts"] == {"COMPLETE": 8, "FAIL": 1, "PRUNED": 1}
    by_number = {t["number"]: t for t in rec["trials"]}
    for t in study.trials:
        assert by_number[t.number]["state"] == t.state.name
        assert by_number[t.number]["params"] == t.params
    assert by_number[0]["intermediate"] == {"0": pytest.approx(by_number[0]["params"]["depth"]
                                            * 0.1), "1": pytest.approx(
        by_number[0]["params"]["depth"] * 0.1 + 1), "2": pytest.approx(
        by_number[0]["params"]["depth"] * 0.1 + 2)}  # fmt: skip
    assert rec["selected"]["number"] == study.best_trial.number
    assert rec["selected"]["how"] == "best"
    assert rec["selected"]["values"] == [pytest.approx(study.best_value)]
    pred = statement["predicate"]
    assert pred["code"] == {"digest": {"gitCommit": COMMIT}}
    assert pred["datasets"][0]["name"] == "train.csv"
    # the model folder's own digest did not change: the bundle is one of mltrust's own files
    assert main(["sign", str(model), "-k", str(keys.private_path)]) == 0
    assert main(["verify", str(model), "-k", str(keys.public_path), "--attestations"]) == 0


def test_attack_tampered_tuning_statement_fails_verification(tmp_path: Path) -> None:
    db, model, _study_obj, keys = _setup(tmp_path)
    assert main(["sign", str(model), "-k", str(keys.private_path)]) == 0
    assert _attest(db, model, keys) == 0
    verify = ["verify", str(model), "-k", str(keys.public_path), "--attestations"]
    assert main(verify) == 0
    bundle_path = model / ".mltrust" / "attestations" / "tuning.bundle.json"
    bundle = json.loads(bundle_path.read_text())
    payload = _payload(bundle_path)
    worst = min(
        (t for t in payload["predicate"]["study"]["trials"] if t["state"] == "COMPLETE"),
        key=lambda t: t["values"][0],
    )
    payload["predicate"]["study"]["selected"]["number"] = worst["number"]
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    bundle_path.write_text(json.dumps(bundle))
    public = attest.load_public_key(keys.public_path)
    from mltrust.errors import VerificationError

    with pytest.raises(VerificationError):
        attest.verify_bundle_bytes(bundle_path.read_bytes(), [public])
    assert main(verify) == 1


def test_selected_trial_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, model, _study_obj, keys = _setup(tmp_path)
    assert _attest(db, model, keys, "--selected-trial", "2") == 0
    rec = _payload(model / ".mltrust" / "attestations" / "tuning.bundle.json")["predicate"]
    assert rec["study"]["selected"] == {**rec["study"]["selected"], "number": 2, "how": "user"}
    assert _attest(db, model, keys, "--selected-trial", "99") == 2
    assert _attest(db, model, keys, "--study-name", "nope") == 2
    _study(db, name="second", trials=2)
    assert _attest(db, model, keys) == 2  # two studies: which one is ambiguous
    assert "--study-name" in capsys.readouterr().err
    assert _attest(db, model, keys, "--study-name", "second") == 0
    not_db = tmp_path / "notes.db"
    not_db.write_text("not a database")
    assert _attest(not_db, model, keys) == 2
    assert _attest(db, model, keys, "--code-commit", "abc123") == 2


def test_provenance_links_the_tuning_statement(tmp_path: Path) -> None:
    db, model, _study_obj, keys = _setup(tmp_path)
    assert _attest(db, model, keys) == 0
    tuning = model / ".mltrust" / "attestations" / "tuning.bundle.json"
    assert main(["attest", "provenance", str(model), "-k", str(keys.private_path),
                 "--tuning", str(tuning), "--no-store"]) == 0  # fmt: skip
    prov = _payload(model / ".mltrust" / "attestations" / "provenance.bundle.json")
    deps = prov["predicate"]["buildDefinition"]["resolvedDependencies"]
    link = next(d for d in deps if d["name"] == "tuning")
    signed = base64.b64decode(json.loads(tuning.read_text())["dsseEnvelope"]["payload"])
    assert link["digest"]["sha256"] == hashlib.sha256(signed).hexdigest()
    assert link["annotations"]["study"] == "search"
    # a tuning bundle about another model is refused
    other = tmp_path / "other"
    other.mkdir()
    (other / "w.bin").write_bytes(b"other")
    assert main(["attest", "provenance", str(other), "-k", str(keys.private_path),
                 "--tuning", str(tuning), "--no-store"]) == 2  # fmt: skip


def _controls(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["check", *args, "-f", "json", "--no-store"])
    out = capsys.readouterr().out
    return code, {c["id"]: c for c in json.loads(out)["controls"]}


def test_check_gates_on_tuning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, model, _study_obj, keys = _setup(tmp_path)
    profile = tmp_path / "require-tuning.yaml"
    profile.write_text(
        "name: require-tuning\ntitle: default plus tuning provenance\nextends: default\n"
        "controls:\n  - id: tuning-required\n    title: The model's tuning is attested\n"
        "    impact: medium\n    check: tuning.present\n"
    )
    args = [str(model), "--key", str(keys.public_path), "--profile", str(profile)]
    _, controls = _controls(capsys, *args)
    assert controls["tuning-required"]["status"] == "fail"
    assert controls["tuning-recorded"]["status"] == "skip"  # off unless present
    assert _attest(db, model, keys) == 0
    capsys.readouterr()
    _, controls = _controls(capsys, *args)
    assert controls["tuning-required"]["status"] == "pass"
    assert controls["tuning-recorded"]["status"] == "pass"
    # Attack: rewrite the signed payload; the statement no longer counts
    bundle_path = model / ".mltrust" / "attestations" / "tuning.bundle.json"
    bundle = json.loads(bundle_path.read_text())
    payload = _payload(bundle_path)
    payload["predicate"]["study"]["selected"]["state"] = "COMPLETE"
    payload["predicate"]["study"]["name"] = "forged"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    bundle_path.write_text(json.dumps(bundle))
    _, controls = _controls(capsys, *args)
    assert controls["tuning-required"]["status"] == "fail"
    assert controls["evidence-trusted"]["status"] == "warn"


def test_a_pruned_trial_named_as_the_models_fails_the_control(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, model, _study_obj, keys = _setup(tmp_path)
    assert _attest(db, model, keys, "--selected-trial", "3") == 0  # trial 3 was pruned
    capsys.readouterr()
    _, controls = _controls(capsys, str(model), "--key", str(keys.public_path))
    assert controls["tuning-recorded"]["status"] == "fail"
    assert "selected trial 3 (PRUNED)" in json.dumps(controls["tuning-recorded"])


def test_unreadable_evidence_is_reported_once_not_per_collector(tmp_path: Path) -> None:
    from mltrust.evidence import CollectContext, collect_evidence

    (tmp_path / ".mltrust").mkdir()
    (tmp_path / ".mltrust" / "garbage.json").write_text("{not json")
    evidence = collect_evidence(CollectContext(tmp_path))
    assert [i["source"] for i in evidence.document["robustness"]["ignored"]] == [
        ".mltrust/garbage.json"
    ]
    assert evidence.document["tuning"]["ignored"] == []
    assert evidence.document["explain"]["ignored"] == []
    assert sum(f.rule_id == "MLT-EVD-001" for f in evidence.findings) == 1
