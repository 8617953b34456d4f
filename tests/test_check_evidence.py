"""Only trusted evidence counts: `mltrust attest robustness` signs a measurement, `mltrust
check --key` counts it, and a hand edit of anything in .mltrust/ is ignored and reported."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mltrust.cli._main import main

attest = pytest.importorskip("mltrust.attest", reason="signing (mltrust.attest) not present")

PREDICATE = "https://mltrust.dev/robustness/v1"


def _project(tmp_path: Path, robust: float) -> tuple[Path, Path, Path, Path]:
    from mltrust.digest import sha256_file

    project = tmp_path / "p"
    project.mkdir()
    model = project / "model.safetensors"
    model.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": model.name, "digest": {"sha256": sha256_file(model)}}],
        "predicateType": PREDICATE,
        "predicate": {"clean_accuracy": 0.9, "results": [{"eps": 0.1, "robust_accuracy": robust}]},
    }
    st = tmp_path / "statement.json"
    st.write_text(json.dumps(statement))
    keys = attest.generate_keypair(tmp_path / "keys" / "k", passphrase=None)
    return project, model, st, keys.private_path, keys.public_path  # type: ignore[return-value]


def _controls(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict]:
    code = main(["check", *args, "-f", "json", "--no-store"])
    out, _ = capsys.readouterr()
    assert code in (0, 1), out
    return {c["id"]: c for c in json.loads(out)["controls"]}


def test_attest_robustness_then_check_counts_it_and_edits_are_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, model, st, private, public = _project(tmp_path, 0.2)  # type: ignore[misc]
    monkeypatch.chdir(project)  # attest records into ./.mltrust/evidence.db, as `check .` does
    args = ["attest", "robustness", model.name, "--statement", str(st), "-k", str(private)]
    assert main(args) == 0
    capsys.readouterr()
    bundle_path = project / ".mltrust" / "attestations" / "model.safetensors.robustness.bundle.json"
    assert bundle_path.is_file()
    # attest recorded into ./.mltrust/evidence.db, the store `mltrust check .` uses here.
    assert (project / ".mltrust" / "evidence.db").is_file()
    controls = _controls(capsys, str(project), "--key", str(public))
    assert controls["robustness-threshold"]["status"] == "fail"
    # Attack: rewrite the signed payload to 0.99 (signature kept).
    bundle = json.loads(bundle_path.read_text())
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload["predicate"]["results"][0]["robust_accuracy"] = 0.99
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    bundle_path.write_text(json.dumps(bundle))
    controls = _controls(capsys, str(project), "--key", str(public))
    assert controls["robustness-threshold"]["status"] == "skip"  # nothing trusted is left
    assert controls["evidence-trusted"]["status"] == "warn"
    assert "not signed by a trusted key" in json.dumps(controls["evidence-trusted"])


def test_attest_robustness_refuses_a_statement_about_another_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, model, st, private, _ = _project(tmp_path, 0.2)  # type: ignore[misc]
    monkeypatch.chdir(tmp_path)
    model.write_bytes(model.read_bytes() + b" ")
    code = main(["attest", "robustness", str(model), "--statement", str(st), "-k", str(private)])
    assert code == 2
    assert not (project / ".mltrust" / "attestations").exists()


def test_attestation_beside_a_model_in_a_subfolder_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, model, st, private, public = _project(tmp_path, 0.2)  # type: ignore[misc]
    (project / "models").mkdir()
    moved = project / "models" / model.name
    model.rename(moved)
    monkeypatch.chdir(project)
    args = ["attest", "robustness", "models/" + moved.name, "--statement", str(st)]
    assert main([*args, "-k", str(private)]) == 0
    capsys.readouterr()
    assert (project / "models" / ".mltrust" / "attestations").is_dir()
    controls = _controls(capsys, ".", "--key", str(public))
    assert controls["robustness-threshold"]["status"] == "fail"  # 0.2 < 0.5, and it counted


def test_attest_a_file_inside_a_signed_folder_is_refused_with_the_way_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundle would be an unsigned file in a signed folder and break `verify` of the folder:
    refused up front, nothing written, the folder still verifies."""
    project, model, st, private, public = _project(tmp_path, 0.2)  # type: ignore[misc]
    monkeypatch.setenv("MLTRUST_PASSPHRASE", "")
    assert main(["sign", str(project), "-k", str(private)]) == 0
    capsys.readouterr()
    code = main(["attest", "robustness", str(model), "--statement", str(st), "-k", str(private)])
    err = capsys.readouterr().err
    assert code == 2 and "signed folder" in err and "sign the folder again" in err
    assert not (project / ".mltrust" / "attestations").exists()
    assert main(["verify", str(project), "--key", str(public)]) == 0
