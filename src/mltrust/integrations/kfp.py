"""Kubeflow Pipelines v2 components for mltrust, and an example gated pipeline.

    python -m mltrust.integrations.kfp --compile pipeline.yaml

Components (typed inputs and outputs; each writes its report as an output artifact and returns
its verdict as a parameter that later steps can gate on):

- :func:`scan_component`: ``mltrust scan`` of a model artifact → report + verdict;
- :func:`sign_component`: ``mltrust sign`` → signature artifact + root digest;
- :func:`verify_component`: ``mltrust verify`` against a public key, bound to the expected
  ``name`` and ``version`` (or ``min_version``) → verdict;
- :func:`check_component`: ``mltrust check`` with a profile → report + verdict;
- :func:`robustness_component`: ``mltrust robustness`` on a data set → report + robust accuracy.

The example pipeline trains a model, scans it, signs it, checks it, verifies it against the name
and version it signed, and deploys only when the scan, check and verify verdicts are ``pass``
(``dsl.If``). Components call the mltrust command line, so
their behaviour is exactly the CLI's (same exit codes, same reports).

Decisions:

- **Image.** Components run in ``MLTRUST_KFP_IMAGE`` (default ``python:3.11-slim``) and install
  ``mltrust[...]`` at the version that compiled the pipeline, unless the image already has it
  (``MLTRUST_KFP_PREINSTALLED=1``: nothing is installed at run time, the right choice for
  clusters without internet access).
- **Secrets** (the signing key and its passphrase) are never pipeline parameters, which KFP
  stores in its database in clear: the key is a file path inside the container (a mounted
  Kubernetes secret) and the passphrase comes from ``MLTRUST_PASSPHRASE`` in the container's
  environment.
- A verdict is one of ``pass``, ``fail`` or ``error`` (exit 0, 1, 2); gates compare with
  ``pass`` so that an error never deploys.
"""

import argparse
import os
import sys
from typing import Any, NamedTuple

from mltrust import __version__

__all__ = [
    "check_component",
    "compile_pipeline",
    "pipeline",
    "robustness_component",
    "scan_component",
    "sign_component",
    "verify_component",
]

try:
    from kfp import compiler, dsl
    from kfp.dsl import Artifact, Dataset, Input, Model, Output
except ImportError:  # pragma: no cover - the error is raised when the module is used
    raise ImportError(
        "the Kubeflow Pipelines components need the kfp SDK: pip install 'mltrust[kfp]'"
    ) from None


def _image() -> str:
    return os.environ.get("MLTRUST_KFP_IMAGE", "python:3.11-slim")


def _packages() -> list[str] | None:
    if os.environ.get("MLTRUST_KFP_PREINSTALLED") == "1":
        return None
    return [f"mltrust[policy,ml]=={__version__}"]


def _component(func: Any) -> Any:
    return dsl.component(
        func,
        base_image=_image(),
        packages_to_install=_packages(),
        install_kfp_package=os.environ.get("MLTRUST_KFP_PREINSTALLED") != "1",
    )


def _scan(model: Input[Model], report: Output[Artifact]) -> NamedTuple(
    "Outputs", [("verdict", str), ("findings", int)]
):
    """Scan the model artifact (file or folder) without executing it."""
    import json
    import subprocess
    from typing import NamedTuple

    proc = subprocess.run(
        ["mltrust", "scan", model.path, "--format", "json", "--output", report.path],
        check=False,
    )
    verdict = {0: "pass", 1: "fail"}.get(proc.returncode, "error")
    findings = 0
    if verdict != "error":
        with open(report.path) as fh:
            for line in fh:
                line = line.strip()
                if line.startswith("{") and '"findings"' in line:
                    doc = json.loads(line)
                    findings += len(doc.get("findings", []))

    class Outputs(NamedTuple):
        verdict: str
        findings: int

    return Outputs(verdict, findings)


def _sign(
    model: Input[Model],
    key_path: str,
    public_key: str,
    name: str,
    version: int,
    signature: Output[Artifact],
) -> NamedTuple("Outputs", [("root_digest", str)]):
    """Sign the model; the key is a mounted file, its passphrase MLTRUST_PASSPHRASE."""
    import json
    import subprocess
    from typing import NamedTuple

    subprocess.run(
        ["mltrust", "sign", model.path, "--key", key_path, "--name", name,
         "--version", str(version), "--output", signature.path, "--no-progress"],
        check=True,
    )  # fmt: skip
    from mltrust.integrations._kfp_steps import verify_command

    # the self-check is bound to the name and version just signed
    proc = subprocess.run(
        verify_command(model.path, public_key, signature.path, name, version, json_output=True),
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"the signature just written does not verify: {proc.stdout}")
    digest = str(json.loads(proc.stdout)["rootDigest"]["sha256"])

    class Outputs(NamedTuple):
        root_digest: str

    return Outputs(digest)


def _verify(
    model: Input[Model],
    signature: Input[Artifact],
    public_key: str,
    name: str = "",
    version: int = -1,
    min_version: int = -1,
) -> str:
    """Verify the model against its signature and a pinned public key, bound to the model
    expected: ``name`` and exactly one of ``version``/``min_version`` (-1: not given). A
    missing name or version is the verdict ``error`` (fail closed). Returns the verdict."""
    from mltrust.integrations._kfp_steps import verify_verdict

    return verify_verdict(model.path, public_key, signature.path, name, version, min_version)


def _check(model: Input[Model], profile: str, public_key: str, report: Output[Artifact]) -> str:
    """Gate the model on a policy profile; the report (JSON) is an artifact."""
    import subprocess

    args = ["mltrust", "check", model.path, "--profile", profile, "--format", "json",
            "--output", report.path, "--no-store"]  # fmt: skip
    if public_key:
        args += ["--key", public_key]
    proc = subprocess.run(args, check=False)
    return {0: "pass", 1: "fail"}.get(proc.returncode, "error")


def _robustness(
    model: Input[Model], data: Input[Dataset], label: str, eps: float, report: Output[Artifact]
) -> NamedTuple("Outputs", [("verdict", str), ("robust_accuracy", float)]):
    """Adversarial robustness of a classifier at one epsilon; the JSON report is an artifact."""
    import json
    import subprocess
    from typing import NamedTuple

    proc = subprocess.run(
        ["mltrust", "robustness", model.path, "--data", data.path, "--label", label,
         "--eps", str(eps), "--format", "json", "--output", report.path],
        check=False,
    )  # fmt: skip
    verdict = {0: "pass", 1: "fail"}.get(proc.returncode, "error")
    accuracy = -1.0
    if verdict != "error":
        with open(report.path) as fh:
            doc = json.load(fh)
        results = doc.get("results") or doc.get("attacks") or []
        if results and isinstance(results, list):
            accuracy = float(results[0].get("robust_accuracy", -1.0))

    class Outputs(NamedTuple):
        verdict: str
        robust_accuracy: float

    return Outputs(verdict, accuracy)


def _train_iris(model: Output[Model]) -> None:
    """Example training step: iris, exported to ONNX (no code runs when it is loaded)."""
    import os

    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=1000).fit(x.astype(np.float32), y)
    onx = to_onnx(clf, x[:1].astype(np.float32), options={id(clf): {"zipmap": False}})
    os.makedirs(model.path, exist_ok=True)
    with open(os.path.join(model.path, "model.onnx"), "wb") as fh:
        fh.write(onx.SerializeToString())


def _deploy(model: Input[Model], signature: Input[Artifact], target: str) -> str:
    """Example deployment step: copy the verified model and its signature to ``target``."""
    import os
    import shutil

    dest = os.path.join(target, "model")
    shutil.copytree(model.path, dest, dirs_exist_ok=True)
    shutil.copyfile(signature.path, os.path.join(dest, "model.sig"))
    return dest


scan_component = _component(_scan)
sign_component = _component(_sign)
verify_component = _component(_verify)
check_component = _component(_check)
robustness_component = _component(_robustness)
train_component = _component(_train_iris)
deploy_component = _component(_deploy)


@dsl.pipeline(  # type: ignore[untyped-decorator]
    name="mltrust-gated-release",
    description="Train, scan, sign and check a model; deploy only when every gate passes.",
)
def pipeline(
    key_path: str = "/var/run/secrets/mltrust/release.key",
    public_key: str = "/var/run/secrets/mltrust/release.key.pub",
    profile: str = "default",
    model_name: str = "iris",
    model_version: int = 1,
    deploy_target: str = "/mnt/models",
) -> None:
    trained = train_component()
    scanned = scan_component(model=trained.outputs["model"])
    with dsl.If(scanned.outputs["verdict"] == "pass", name="scan-passed"):
        signed = sign_component(
            model=trained.outputs["model"],
            key_path=key_path,
            public_key=public_key,
            name=model_name,
            version=model_version,
        )
        checked = check_component(
            model=trained.outputs["model"], profile=profile, public_key=public_key
        )
        checked.after(signed)
        with dsl.If(checked.outputs["Output"] == "pass", name="check-passed"):
            # bound to the name and version this run signed: another model signed by the
            # pipeline key, or an older release, does not pass
            verified = verify_component(
                model=trained.outputs["model"],
                signature=signed.outputs["signature"],
                public_key=public_key,
                name=model_name,
                version=model_version,
            )
            with dsl.If(verified.output == "pass", name="verify-passed"):
                deploy_component(
                    model=trained.outputs["model"],
                    signature=signed.outputs["signature"],
                    target=deploy_target,
                )


def compile_pipeline(path: str) -> None:
    """Write the example pipeline's IR YAML to ``path``."""
    compiler.Compiler().compile(pipeline_func=pipeline, package_path=path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mltrust.integrations.kfp")
    parser.add_argument("--compile", metavar="OUT.yaml", required=True, help="write the IR here")
    args = parser.parse_args(argv)
    compile_pipeline(args.compile)
    print(f"compiled {pipeline.name} to {args.compile}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
