"""The reusable GitHub Action (action.yml) and the example workflow.

The action's metadata and both workflows are validated against the GitHub schemas vendored in
check-jsonschema (offline). Then the action's own `run:` steps are executed here, in order, by a
small runner that evaluates the `${{ }}` expressions and `if:` conditions the action uses, with
the environment GitHub gives a step (GITHUB_OUTPUT, GITHUB_ENV, RUNNER_TEMP, …): the same
commands in the same order as on GitHub. Steps that `uses:` another action (setup-python, cache,
upload-sarif) are GitHub's, not ours, and are recorded as skipped; the install step is replaced
by this environment's mltrust (it is the same source tree).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from _check_helpers import MALICIOUS_PICKLE, REPO, clean_project, require_snapshot

BIN = Path(sys.executable).parent


def _schema_check(schema: str, *files: Path) -> None:
    exe = BIN / "check-jsonschema"
    assert exe.exists(), "check-jsonschema is part of the test extra"
    proc = subprocess.run(
        [str(exe), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_action_metadata_is_valid() -> None:
    _schema_check("vendor.github-actions", REPO / "action.yml")


def test_workflows_are_valid() -> None:
    _schema_check(
        "vendor.github-workflows",
        REPO / "examples" / "github" / "mltrust.yml",
        REPO / ".github" / "workflows" / "mltrust.yml",
    )


def test_example_workflow_uses_the_action_and_not_the_users_repo() -> None:
    """The first release's workflow ran `pip install -e .` — installing the user's project."""
    wf = yaml.safe_load((REPO / "examples" / "github" / "mltrust.yml").read_text())
    steps = wf["jobs"]["check"]["steps"]
    assert any(str(s.get("uses", "")).startswith("mltrust/mltrust@") for s in steps)
    assert not any("pip install" in str(s.get("run", "")) for s in steps)
    assert wf["permissions"]["security-events"] == "write"


_REF = re.compile(r"(inputs|steps|github|runner)\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


class _Runner:
    """Runs a composite action's steps the way the Actions runner does, for what action.yml uses."""

    def __init__(self, action: dict[str, Any], inputs: dict[str, str], work: Path) -> None:
        self.action = action
        self.work = work
        self.temp = work / "runner-temp"
        self.temp.mkdir()
        self.inputs = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}
        unknown = set(inputs) - set(self.inputs)
        assert not unknown, f"inputs the action does not declare: {unknown}"
        self.inputs.update(inputs)
        self.outputs: dict[str, dict[str, str]] = {}
        self.env: dict[str, str] = {}
        self.github = {"action_path": str(REPO), "event_name": "push", "repository": "o/r"}
        self.ran: list[str] = []
        self.skipped: list[str] = []
        self.failed = False

    def lookup(self, ref: str) -> str:
        scope, _, path = ref.partition(".")
        parts = path.split(".")
        if scope == "inputs":
            return self.inputs.get(path, "")
        if scope == "steps" and len(parts) == 3 and parts[1] == "outputs":
            return self.outputs.get(parts[0], {}).get(parts[2], "")
        if scope == "github":
            return self.github.get(path, "")
        if scope == "runner" and path == "temp":
            return str(self.temp)
        raise AssertionError(f"expression the test runner does not know: {ref}")

    def expr(self, text: str) -> str | bool:
        """The subset of GitHub expressions action.yml uses: refs, ==/!= literals, &&, always()."""
        text = text.strip()
        if text.startswith("${{") and text.endswith("}}"):
            text = text[3:-2].strip()
        if "&&" in text:
            return all(self.expr(part) for part in text.split("&&"))
        if text == "always()":
            return True
        m = re.fullmatch(r"([\w.-]+)\s*(==|!=)\s*'([^']*)'", text)
        if m:
            equal = self.lookup(m.group(1)) == m.group(3)
            return equal if m.group(2) == "==" else not equal
        assert _REF.fullmatch(text), f"expression the test runner does not know: {text}"
        return self.lookup(text)

    def interpolate(self, text: str) -> str:
        return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(self.expr(m.group(1))), text)

    def run(self, skip_names: set[str]) -> None:
        for step in self.action["runs"]["steps"]:
            name = step.get("name", step.get("id", "?"))
            cond = step.get("if")
            # A failed step stops the job, except for steps whose condition says always().
            if self.failed and (cond is None or "always()" not in cond):
                continue
            if cond is not None and not self.expr(cond):
                continue
            if "uses" in step or name in skip_names:
                self.skipped.append(name)
                continue
            out_file = self.temp / f"out-{len(self.ran)}"
            env_file = self.temp / f"env-{len(self.ran)}"
            out_file.write_text("")
            env_file.write_text("")
            env = {
                **os.environ,
                **self.env,
                **{k: self.interpolate(str(v)) for k, v in step.get("env", {}).items()},
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "RUNNER_TEMP": str(self.temp),
                "GITHUB_OUTPUT": str(out_file),
                "GITHUB_ENV": str(env_file),
                "GITHUB_STEP_SUMMARY": str(self.temp / "summary.md"),
            }
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                cwd=self.work,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            self.ran.append(name)
            if step.get("id"):
                self.outputs[step["id"]] = dict(
                    line.split("=", 1) for line in out_file.read_text().splitlines() if line
                )
            for line in env_file.read_text().splitlines():
                if line:
                    k, v = line.split("=", 1)
                    self.env[k] = v
            if proc.returncode != 0:
                self.failed = True
                self.last_error = proc.stdout + proc.stderr


def _action() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "action.yml").read_text())
    assert data["runs"]["using"] == "composite"
    return data


def _osv_subset(tmp: Path) -> Path:
    snap = require_snapshot()
    src = tmp / "osv"
    for name in ("jinja2", "numpy"):
        shutil.copytree(snap / "vulns" / name, src / name)
    return src


def _signed(tmp: Path) -> tuple[Path, Path]:
    from mltrust import attest

    project = clean_project(tmp / "project")
    keys = attest.generate_keypair(tmp / "keys" / "release", passphrase=None)
    attest.sign(project, key=keys.private_path)
    return project, keys.public_path


INSTALL = "Install mltrust (this action's own ref)"


def test_action_steps_pass_a_clean_signed_project(tmp_path: Path) -> None:
    project, pub = _signed(tmp_path)
    runner = _Runner(
        _action(),
        {
            "path": str(project),
            "trusted-key": f"\n  {pub}  \n",
            "advisory-db": str(_osv_subset(tmp_path)),
            # the shared snapshot is fixed and old: its age is not the point here
            "advisory-db-max-age": "0",
        },
        tmp_path,
    )
    runner.run({INSTALL})
    assert not runner.failed, getattr(runner, "last_error", "")
    assert runner.outputs["check"]["exit-code"] == "0"
    assert "Import the advisory database" in runner.ran
    assert Path(runner.outputs["check"]["report"]).read_text().strip()
    assert Path(runner.outputs["check"]["sarif"]).is_file()
    assert Path(runner.env["MLTRUST_ADVISORY_DB"]).is_file()
    assert INSTALL in runner.skipped
    assert "Fail on policy failure" not in runner.ran


def test_action_steps_fail_the_job_on_a_malicious_model(tmp_path: Path) -> None:
    project, pub = _signed(tmp_path)
    (project / "extra.pkl").write_bytes(MALICIOUS_PICKLE)
    runner = _Runner(
        _action(),
        {
            "path": str(project),
            "trusted-key": str(pub),
            "advisory-db": str(_osv_subset(tmp_path)),
            "advisory-db-max-age": "0",
        },
        tmp_path,
    )
    runner.run({INSTALL})
    assert runner.outputs["check"]["exit-code"] == "1"
    assert runner.ran[-1] == "Fail on policy failure"
    assert runner.failed
    assert "extra.pkl" in Path(runner.outputs["check"]["report"]).read_text()


def test_action_does_not_fail_the_job_when_told_not_to(tmp_path: Path) -> None:
    project, pub = _signed(tmp_path)
    (project / "extra.pkl").write_bytes(MALICIOUS_PICKLE)
    runner = _Runner(
        _action(),
        {"path": str(project), "trusted-key": str(pub), "fail-on-policy": "false"},
        tmp_path,
    )
    runner.run({INSTALL})
    assert runner.outputs["check"]["exit-code"] in ("1", "2")
    assert not runner.failed
    assert "Fail on policy failure" not in runner.ran


@pytest.mark.parametrize("hostile", ["$(touch PWNED)", "`touch PWNED`", "x; touch PWNED"])
def test_action_inputs_are_never_interpreted_by_the_shell(tmp_path: Path, hostile: str) -> None:
    """Inputs reach scripts through env variables only, never spliced into the script text."""
    runner = _Runner(_action(), {"path": hostile, "profile": hostile}, tmp_path)
    runner.run({INSTALL})
    assert not (tmp_path / "PWNED").exists()
    for step in _action()["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), f"expression spliced into {step.get('name')}"
