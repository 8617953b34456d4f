"""Kubeflow Pipelines components: compiled by the real kfp compiler, run against the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from _check_helpers import MALICIOUS_PICKLE

BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _cli_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Components call `mltrust`; in a container it is on PATH, here it is this venv's."""
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("MLTRUST_PASSPHRASE", "kfp-test")


def _ir(tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "pipeline.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "mltrust.integrations.kfp", "--compile", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load(out.read_text())
    assert isinstance(doc, dict)
    return doc


def test_example_pipeline_compiles_to_ir_with_gates(tmp_path: Path) -> None:
    ir = _ir(tmp_path)
    assert ir["pipelineInfo"]["name"] == "mltrust-gated-release"
    executors = ir["deploymentSpec"]["executors"]
    assert {"exec-train-iris", "exec-scan", "exec-sign", "exec-check", "exec-deploy"} <= set(
        executors
    )
    root = ir["root"]["dag"]["tasks"]
    # deploy is reachable only through the scan gate, then the check gate
    outer = root["condition-1"]
    assert outer["triggerPolicy"]["condition"].endswith(
        "['pipelinechannel--scan-verdict'] == 'pass'"
    )
    inner_dag = ir["components"]["comp-condition-1"]["dag"]["tasks"]
    gate = inner_dag["condition-2"]["triggerPolicy"]["condition"]
    assert gate.endswith("['pipelinechannel--check-Output'] == 'pass'")
    check_dag = ir["components"]["comp-condition-2"]["dag"]["tasks"]
    verify_gate = check_dag["condition-3"]["triggerPolicy"]["condition"]
    assert verify_gate.endswith("['pipelinechannel--verify-Output'] == 'pass'")
    assert "deploy" in ir["components"]["comp-condition-3"]["dag"]["tasks"]
    assert "deploy" not in root and "deploy" not in inner_dag and "deploy" not in check_dag
    # the verify step is bound to the name and version the run signed
    verify_inputs = check_dag["verify"]["inputs"]["parameters"]
    assert {"name", "version"} <= set(verify_inputs)
    # the verdict is a typed output parameter; the report an artifact
    scan_outputs = ir["components"]["comp-scan"]["outputDefinitions"]
    assert scan_outputs["parameters"]["verdict"]["parameterType"] == "STRING"
    assert "report" in scan_outputs["artifacts"]
    # no secret travels as a pipeline parameter: only the key's path does
    params = ir["root"]["inputDefinitions"]["parameters"]
    assert "passphrase" not in " ".join(params).lower()
    assert params["key_path"]["defaultValue"].startswith("/var/run/secrets/")


def test_components_install_this_mltrust_version(tmp_path: Path) -> None:
    from mltrust import __version__

    ir = _ir(tmp_path)
    command = " ".join(ir["deploymentSpec"]["executors"]["exec-scan"]["container"]["command"])
    assert f"mltrust[policy,ml]=={__version__}" in command


def _art(path: Path) -> SimpleNamespace:
    return SimpleNamespace(path=str(path))


def test_scan_component_fails_a_malicious_model(tmp_path: Path) -> None:
    from mltrust.integrations.kfp import scan_component

    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.pkl").write_bytes(MALICIOUS_PICKLE)
    result = scan_component.python_func(model=_art(model), report=_art(tmp_path / "r.json"))
    assert result.verdict == "fail"
    assert result.findings >= 1


def test_scan_sign_verify_components_on_a_clean_model(tmp_path: Path) -> None:
    import pickle

    from mltrust.attest import generate_keypair
    from mltrust.integrations.kfp import scan_component, sign_component, verify_component

    # mltrust: ignore[MLT-CODE-014] throwaway passphrase of keys the test generates
    keys = generate_keypair(tmp_path / "keys" / "release", passphrase=b"kfp-test")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    scanned = scan_component.python_func(model=_art(model), report=_art(tmp_path / "r.json"))
    assert scanned.verdict == "pass"
    sig = tmp_path / "model.sig"
    signed = sign_component.python_func(
        model=_art(model),
        key_path=str(keys.private_path),
        public_key=str(keys.public_path),
        name="iris",
        version=3,
        signature=_art(sig),
    )
    assert len(signed.root_digest) == 64
    bound = {"name": "iris", "version": 3}
    verdict = verify_component.python_func(
        model=_art(model), signature=_art(sig), public_key=str(keys.public_path), **bound
    )
    assert verdict == "pass"
    (model / "weights.pkl").write_bytes(pickle.dumps({"w": [9.0, 9.0]}))
    verdict = verify_component.python_func(
        model=_art(model), signature=_art(sig), public_key=str(keys.public_path), **bound
    )
    assert verdict == "fail"


# -- the verify gate is bound to the model it expects (red team 07) -------------------------
# These run the step the component runs (mltrust.integrations._kfp_steps) and need no kfp.


@pytest.fixture
def released(tmp_path: Path) -> dict[str, Any]:
    from mltrust.attest import generate_keypair, sign

    kp = generate_keypair(tmp_path / "pipeline", passphrase=None)
    out: dict[str, Any] = {"pub": str(kp.public_path)}
    for name, version in (("fraud", 7), ("toy", 1), ("fraud", 2)):
        d = tmp_path / f"{name}-v{version}"
        d.mkdir()
        (d / "model.bin").write_bytes(f"{name} {version}".encode())
        sig = tmp_path / f"{name}-v{version}.sig"
        sign(d, key=kp.private_path, model_name=name, version=version, output=sig)
        out[f"{name}-v{version}"] = (str(d), str(sig))
    return out


def test_kfp_verify_step_refuses_another_model_signed_by_the_pipeline_key(
    released: dict[str, Any],
) -> None:
    from mltrust.integrations._kfp_steps import verify_verdict

    pub = released["pub"]
    model, sig = released["fraud-v7"]
    assert verify_verdict(model, pub, sig, "fraud", 7) == "pass"
    model, sig = released["toy-v1"]
    assert verify_verdict(model, pub, sig, "fraud", min_version=1) == "fail"


def test_kfp_verify_step_refuses_an_older_release(released: dict[str, Any]) -> None:
    from mltrust.integrations._kfp_steps import verify_verdict

    model, sig = released["fraud-v2"]
    assert verify_verdict(model, released["pub"], sig, "fraud", min_version=7) == "fail"
    assert verify_verdict(model, released["pub"], sig, "fraud", version=7) == "fail"


def test_kfp_verify_step_without_binding_is_an_error(released: dict[str, Any]) -> None:
    from mltrust.integrations._kfp_steps import verify_command, verify_verdict

    model, sig = released["fraud-v7"]
    assert verify_verdict(model, released["pub"], sig, "") == "error"
    assert verify_verdict(model, released["pub"], sig, "fraud") == "error"
    with pytest.raises(ValueError):
        verify_command(model, released["pub"], sig, "fraud", version=7, min_version=7)
    args = verify_command(model, released["pub"], sig, "fraud", min_version=3)
    assert args[args.index("--name") + 1] == "fraud"
    assert args[args.index("--min-version") + 1] == "3" and "--version" not in args


def test_kfp_component_sources_call_the_bound_step() -> None:
    """The component functions (shipped by source) pass name and version through."""
    import ast

    import mltrust.integrations as pkg

    src = (Path(pkg.__file__).parent / "kfp.py").read_text()
    funcs = {n.name: n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef)}
    verify_args = [a.arg for a in funcs["_verify"].args.args]
    assert {"name", "version", "min_version"} <= set(verify_args)
    assert "verify_verdict" in ast.unparse(funcs["_verify"])
    assert "verify_command" in ast.unparse(funcs["_sign"])
    wiring = ast.unparse(funcs["pipeline"])
    assert "verify_component(" in wiring and "name=model_name" in wiring
    assert "version=model_version" in wiring
