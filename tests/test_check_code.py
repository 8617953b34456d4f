"""Dangerous code must not pass the gate: eval of request data, marshal/dill/cloudpickle/shelve,
unparsable code, and parity with plain bandit on the same tree (every MEDIUM/HIGH issue)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from _check_helpers import notebook
from mltrust.evidence import CollectContext, collect_evidence
from mltrust.policy import ControlStatus, evaluate, load_profile

pytest.importorskip("bandit", reason="bandit (the policy extra) is not installed")


def _check(root: Path):  # type: ignore[no-untyped-def]
    bundle = collect_evidence(CollectContext(root))
    verdict = evaluate(bundle.document, load_profile("default"))
    return bundle, {r.control.id: r for r in verdict.results}


APP = """\
import marshal
from flask import Flask, request

app = Flask(__name__)


@app.route("/calc", methods=["POST"])
def calc():
    return str(eval(request.form["expr"]))


@app.route("/load", methods=["POST"])
def load():
    return repr(marshal.loads(request.data))
"""


def test_attack_eval_of_request_and_marshal_fail_the_gate(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    bundle, controls = _check(tmp_path)
    assert controls["no-dangerous-code"].status is ControlStatus.FAIL
    text = "\n".join(controls["no-dangerous-code"].details)
    assert "app.py:9" in text and "app.py:14" in text
    tools = {f["tool"] for f in bundle.document["code"]["dangerous"]}
    assert {"bandit:B307", "bandit:B302"} <= tools  # bandit's own tests are kept, not dropped


@pytest.mark.parametrize(
    "call",
    [
        "dill.loads(blob)",
        "cloudpickle.load(fh)",
        "shelve.open(name)",
        "marshal.load(fh)",
        "jsonpickle.decode(text)",
        "exec(code_from_somewhere)",
    ],
)
def test_attack_other_deserialisers_fail_the_gate(tmp_path: Path, call: str) -> None:
    module = call.split(".", 1)[0] if "." in call else "os"
    (tmp_path / "job.py").write_text(
        f"import {module}\n\n\ndef run(blob, fh, name, text, code_from_somewhere):\n"
        f"    return {call}\n"
    )
    _, controls = _check(tmp_path)
    assert controls["no-dangerous-code"].status is ControlStatus.FAIL


def test_attack_unparsable_code_fails_unless_waived(tmp_path: Path) -> None:
    (tmp_path / "{{cookiecutter.name}}.py").write_text(
        "import pickle\n{% if x %}\npickle.loads(b)\n"
    )
    bundle, controls = _check(tmp_path)
    assert bundle.document["code"]["not_analysed"] == ["{{cookiecutter.name}}.py"]
    assert controls["no-dangerous-code"].status is ControlStatus.FAIL


def test_attack_file_bandit_gives_up_on_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bandit records a file whose analysis raised inside one of its tests as skipped and
    # reports nothing for it; that file was not analysed, so the control must not pass
    from bandit.core import manager

    real = manager.BanditManager._execute_ast_visitor

    def crashing(self, fname, fdata, data, nosec_lines):  # type: ignore[no-untyped-def]
        if b"TRIGGER" in data:
            raise RuntimeError("a bandit test crashed")
        return real(self, fname, fdata, data, nosec_lines)

    monkeypatch.setattr(manager.BanditManager, "_execute_ast_visitor", crashing)
    (tmp_path / "app.py").write_text(
        "import subprocess\nsubprocess.call('x', shell=True)  # TRIGGER\n"
    )
    (tmp_path / "ok.py").write_text("x = 1\n")
    bundle, controls = _check(tmp_path)
    assert bundle.document["code"]["not_analysed"] == ["app.py"]
    assert any(
        "bandit did not analyse it" in f["message"] for f in bundle.document["code"]["findings"]
    )
    assert controls["no-dangerous-code"].status is ControlStatus.FAIL


def test_notebook_eval_points_at_cell_and_line(tmp_path: Path) -> None:
    (tmp_path / "nb.ipynb").write_text(
        notebook(["import sys\n", "x = 1\nvalue = eval(sys.argv[1])\n"])
    )
    bundle, controls = _check(tmp_path)
    rows = [
        r for r in bundle.document["code"]["dangerous"] if r["rule_id"].startswith("MLT-CODE-00")
    ]
    assert rows and rows[0]["cell"] == 2 and rows[0]["line"] == 2  # 0-based, markdown counted
    assert controls["no-dangerous-code"].status is ControlStatus.FAIL


PARITY_TREE = {
    "app.py": APP,
    "svc/train.py": (
        "import pickle, yaml, hashlib, subprocess, tempfile, torch, requests\n"
        "from transformers import AutoModel\n\n"
        "def go(path, cmd):\n"
        "    m = pickle.load(open(path, 'rb'))\n"
        "    cfg = yaml.load(open(path))\n"
        "    h = hashlib.md5(b'x').hexdigest()\n"
        "    subprocess.call(cmd, shell=True)\n"
        "    t = torch.load(path)\n"
        "    r = requests.get('https://example.invalid')\n"
        "    model = AutoModel.from_pretrained('org/model')\n"
        "    f = open('/tmp/x', 'w')\n"
        "    return m, cfg, h, t, r, model, f\n"
    ),
    "svc/server.py": (
        "import ssl, xml.etree.ElementTree as ET\n"
        "from flask import Flask\n"
        "app = Flask(__name__)\n\n"
        "def parse(s):\n"
        "    return ET.fromstring(s)\n\n"
        "if __name__ == '__main__':\n"
        "    app.run(host='0.0.0.0', debug=True)\n"
    ),
    "deep/a/b/c/util.py": "import os\n\ndef run(x):\n    os.system(x)\n    exec(x)\n",
}


def test_parity_every_bandit_medium_and_high_is_surfaced(tmp_path: Path) -> None:
    for rel, text in PARITY_TREE.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "bandit", "-r", str(tmp_path), "-f", "json", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(proc.stdout)
    expected = {
        (Path(r["filename"]).relative_to(tmp_path).as_posix(), r["line_number"], r["test_id"])
        for r in report["results"]
        if r["issue_severity"] in ("MEDIUM", "HIGH")
    }
    assert len(expected) >= 10  # the oracle found what the tree plants
    bundle, _ = _check(tmp_path)
    ours = {
        (f["path"], f["line"], f["tool"].split(":", 1)[1])
        for f in bundle.document["code"]["findings"]
        if f["tool"].startswith("bandit:")
    }
    assert expected <= ours, sorted(expected - ours)


def test_attack_nosec_comment_does_not_waive_a_finding(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text(
        "import subprocess\n\n\ndef go(cmd):\n    subprocess.call(cmd, shell=True)  # nosec\n"
    )
    bundle, _ = _check(tmp_path)
    tools = {(f["tool"], f["line"]) for f in bundle.document["code"]["findings"]}
    assert ("bandit:B602", 5) in tools


def test_parallel_bandit_gives_the_same_findings(tmp_path: Path) -> None:
    for i in range(120):
        (tmp_path / f"m{i:03d}.py").write_text(
            f"import subprocess\n\n\ndef f{i}(cmd):\n    subprocess.call(cmd, shell=True)\n"
        )
    one = collect_evidence(CollectContext(tmp_path)).document["code"]["findings"]
    two = collect_evidence(CollectContext(tmp_path, jobs=2)).document["code"]["findings"]
    assert sum(1 for f in one if f["tool"] == "bandit:B602") == 120
    assert one == two
