"""Code collector: ML-specific dangerous calls, notebooks, bandit, committed secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from _check_helpers import PEM_KEY, notebook
from mltrust.evidence import CollectContext
from mltrust.evidence._code import CodeCollector, notebook_source
from mltrust.evidence._code_ast import analyse_source
from mltrust.evidence._secrets import find_secrets, shannon_entropy


def _rules(src: str) -> list[tuple[int, str]]:
    return [(h.line, h.rule.id) for h in analyse_source(src)]


@pytest.mark.parametrize(
    ("src", "rule"),
    [
        ("import pickle\npickle.load(f)\n", "MLT-CODE-001"),
        ("import pickle as pk\npk.loads(b)\n", "MLT-CODE-001"),
        ("from joblib import load\nload('m.joblib')\n", "MLT-CODE-001"),
        ("import pandas as pd\npd.read_pickle('x')\n", "MLT-CODE-001"),
        ("import dill\ndill.load(f)\n", "MLT-CODE-001"),
        ("import torch\ntorch.load('m.pt')\n", "MLT-CODE-002"),
        ("import torch\ntorch.load('m.pt', weights_only=False)\n", "MLT-CODE-002"),
        ("import yaml\nyaml.load(s)\n", "MLT-CODE-003"),
        ("import yaml\nyaml.load(s, Loader=yaml.Loader)\n", "MLT-CODE-003"),
        ("import yaml\nyaml.unsafe_load(s)\n", "MLT-CODE-003"),
        ("import numpy as np\nnp.load('a.npy', allow_pickle=True)\n", "MLT-CODE-004"),
        ("with open(model_uri) as f:\n    model = eval(f.read())\n", "MLT-CODE-005"),
        ("exec(open('setup.cfg').read())\n", "MLT-CODE-005"),
        ("import requests\nexec(requests.get(url).text)\n", "MLT-CODE-005"),
        ("m = AutoModel.from_pretrained('x', trust_remote_code=True)\n", "MLT-CODE-006"),
        ("import keras\nkeras.models.load_model('m.keras', safe_mode=False)\n", "MLT-CODE-007"),
    ],
)
def test_dangerous_call_detected(src: str, rule: str) -> None:
    assert rule in {r for _, r in _rules(src)}


@pytest.mark.parametrize(
    "src",
    [
        "import torch\ntorch.load('m.pt', weights_only=True)\n",
        "import yaml\nyaml.load(s, Loader=yaml.SafeLoader)\n",
        "import yaml\nfrom yaml import CSafeLoader\nyaml.load(s, CSafeLoader)\n",
        "import yaml\nyaml.safe_load(s)\n",
        "import numpy as np\nnp.load('a.npy')\n",
        "eval('1 + 1')\n",
        "import json\njson.load(f)\n",
        "m = AutoModel.from_pretrained('x', trust_remote_code=False)\n",
    ],
)
def test_safe_call_not_flagged(src: str) -> None:
    assert _rules(src) == []


def test_notebook_cells_map_lines_back() -> None:
    nb = notebook(
        ["%matplotlib inline\nimport pickle\n", "x = 1\nm = pickle.load(open('m', 'rb'))\n"]
    )
    code, cells = notebook_source(nb)
    hits = list(analyse_source(code))
    (hit,) = [h for h in hits if h.rule.id == "MLT-CODE-001"]
    assert cells[hit.line - 1] == (2, 2)  # cell index 2 (after the markdown cell), line 2


def test_notebook_with_pickle_load_in_project(tmp_path: Path) -> None:
    (tmp_path / "explore.ipynb").write_text(
        notebook(["import pickle\n", "with open('m.pkl', 'rb') as f:\n    m = pickle.load(f)\n"])
    )
    result = CodeCollector().collect(CollectContext(tmp_path))
    (row,) = [r for r in result.section["dangerous"] if r["rule_id"] == "MLT-CODE-001"]
    assert row["path"] == "explore.ipynb"
    assert (row["cell"], row["line"]) == (2, 2)
    assert result.section["notebooks"] == 1


def test_bandit_runs_on_python_and_notebook_code(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text("import subprocess\nsubprocess.call(cmd, shell=True)\n")
    result = CodeCollector().collect(CollectContext(tmp_path))
    bandit = [r for r in result.section["findings"] if r["tool"].startswith("bandit:")]
    assert any(r["tool"] == "bandit:B602" and r["line"] == 2 for r in bandit)
    assert all(r["rule_id"] == "MLT-CODE-008" for r in bandit)


def test_unparsable_code_is_reported_not_skipped(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def f(:\n")
    (tmp_path / "broken.ipynb").write_text("{not json")
    result = CodeCollector().collect(CollectContext(tmp_path))
    assert sorted(result.section["not_analysed"]) == ["broken.ipynb", "broken.py"]
    assert {f.rule_id for f in result.findings} == {"MLT-CODE-012"}


def test_committed_private_key_in_repo(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id_rsa").write_text(PEM_KEY)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "secret.pem").write_text(PEM_KEY)  # VCS internals are skipped
    result = CodeCollector().collect(CollectContext(tmp_path))
    secrets = result.section["secrets"]
    assert [(s["path"], s["rule_id"]) for s in secrets] == [("keys/id_rsa", "MLT-CODE-009")]


@pytest.mark.parametrize(
    ("text", "label"),
    [
        # mltrust: ignore[MLT-CODE-010] AWS's documented example key, a fixture for the token rules
        ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n", "AWS"),
        # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
        ("token: ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + "\n", "GitHub"),
        # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
        ("HF_TOKEN = 'hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789" + "'\n", "Hugging Face"),
        # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
        ("key = 'AIza" + "SyA1234567890abcdefghijklmnopqrstu" + "v'\n", "Google"),
        # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
        ("slack: xoxb-" + "123456789012-abcdefghijkl" + "\n", "Slack"),
    ],
)
def test_token_formats(text: str, label: str) -> None:
    (hit,) = list(find_secrets(text))
    assert hit.rule.id == "MLT-CODE-010"
    assert label in hit.message
    secret = text.split("=")[-1].split(":")[-1].strip().strip("'")
    assert secret not in hit.message  # never echo the whole secret


def test_high_entropy_assignment_but_not_placeholders() -> None:
    value = "q8Zr2LxT0vKp9WmB4nYc7HdE1sJf6UaG"
    assert shannon_entropy(value) > 4
    (hit,) = list(find_secrets(f'api_secret = "{value}"'))
    assert hit.rule.id == "MLT-CODE-011"
    assert value not in hit.message
    assert list(find_secrets('password = "changeme-changeme-changeme"')) == []
    assert list(find_secrets('api_key = "${API_KEY_FROM_ENVIRONMENT}"')) == []
    assert list(find_secrets('tokenizer_name = "bert-base-uncased-model"')) == []


def test_secrets_in_config_files(tmp_path: Path) -> None:
    # mltrust: ignore[MLT-CODE-011] a fake password the test plants
    (tmp_path / ".env").write_text("DB_PASSWORD=Zk3q9PdL0wX7vRt2Yb8NcE5m\n")
    # mltrust: ignore[MLT-CODE-010] AWS's documented example key, a fixture
    (tmp_path / "settings.json").write_text('{"aws": "AKIAIOSFODNN7EXAMPLE"}\n')
    # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00AKIAIOSFODNN7EXAMPLE")
    section = CodeCollector().collect(CollectContext(tmp_path)).section
    # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
    # Binary files are searched too, by their printable runs (as `strings` reads them).
    assert sorted(s["path"] for s in section["secrets"]) == [".env", "image.png", "settings.json"]
