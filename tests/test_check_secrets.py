"""Secrets in plain sight: every text file and every notebook cell is searched, with few
false positives. The tokens are assembled at run time so this file holds none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _check_helpers import PEM_KEY
from mltrust.evidence import CollectContext, collect_evidence
from mltrust.evidence._secrets import find_secrets
from mltrust.policy import ControlStatus, evaluate, load_profile

# mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
GH = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
# mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
AWS = "AKIA" + "Q3EGUIXT4KCM7ZPW"
# mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
HF = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
# mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
SLACK = "xoxb-" + "123456789012-abcdefghijkl"
# mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
GOOGLE = "AIza" + "SyA1234567890abcdefghijklmnopqrstuv"
# mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
# mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
NPM = "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"

PLANTED = {
    "README.md": f"Set the token:\n\n    export GITHUB_TOKEN={GH}\n",
    "Dockerfile": f"FROM python:3.11\nENV AWS_ACCESS_KEY_ID={AWS}\n",
    "Makefile": f"deploy:\n\tcurl -H 'Authorization: Bearer {HF}' https://x.invalid\n",
    ".env.production": "DB_PASSWORD=Zk3q9PdL0wX7vRt2\n",
    ".envrc": f"export SLACK_TOKEN={SLACK}\n",
    "web/app.js": f"const mapsKey = '{GOOGLE}';\n",
    "analysis/model.R": f'Sys.setenv(STRIPE_KEY = "{STRIPE}")\n',
    "env/settings.ini": f"[npm]\nauth = {NPM}\n",
    "deploy_key": PEM_KEY,
    # mltrust: ignore[MLT-CODE-014] a planted fake password the recall test must find
    "config/db.yaml": "url: postgres://svc:Qm7vT2xLp9@db.internal:5432/app\n",
}


def _notebook(cells: list[tuple[str, str]]) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": kind, "metadata": {}, "source": src.splitlines(keepends=True)}
                | ({"outputs": [], "execution_count": None} if kind == "code" else {})
                for kind, src in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def _secrets(root: Path) -> tuple[list[dict], dict]:
    bundle = collect_evidence(CollectContext(root))
    verdict = evaluate(bundle.document, load_profile("default"))
    return bundle.document["code"]["secrets"], {r.control.id: r for r in verdict.results}


def test_attack_secrets_in_every_kind_of_text_file_are_found(tmp_path: Path) -> None:
    for rel, text in PLANTED.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "nb.ipynb").write_text(
        # mltrust: ignore[MLT-CODE-014] a planted test secret, assembled from pieces
        _notebook([("markdown", "# Setup\n"), ("code", 'import db\npassword = "hunter2hunter2"\n')])
    )
    secrets, controls = _secrets(tmp_path)
    found = {s["path"] for s in secrets}
    assert found == {*PLANTED, "nb.ipynb"}, sorted({*PLANTED, "nb.ipynb"} - found)
    nb = next(s for s in secrets if s["path"] == "nb.ipynb")
    assert (nb["cell"], nb["line"]) == (1, 2)
    assert controls["no-committed-secrets"].status is ControlStatus.FAIL
    text = json.dumps(secrets)
    for token in (GH, AWS, HF, SLACK, GOOGLE, STRIPE, NPM, "hunter2hunter2", "Qm7vT2xLp9"):
        assert token not in text  # reports never echo a secret


def test_secret_in_notebook_markdown_and_output(tmp_path: Path) -> None:
    doc = json.loads(_notebook([("markdown", f"token is {GH}\n"), ("code", "print(1)\n")]))
    doc["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": [AWS]}]
    (tmp_path / "nb.ipynb").write_text(json.dumps(doc))
    secrets, _ = _secrets(tmp_path)
    assert sorted((s["cell"], s["line"]) for s in secrets) == [(0, 1), (1, 1)]


BENIGN = {
    "README.md": (
        "Run `docker run -e POSTGRES_PASSWORD=postgres postgres`.\n"
        "Connect with postgres://user:password@localhost:5432/db or "
        "mysql://root:${MYSQL_ROOT_PASSWORD}@db/app.\n"
        "Set `HF_TOKEN=<your token>` and `OPENAI_API_KEY=sk-...`.\n"
    ),
    "docker-compose.yml": (
        "services:\n  db:\n    environment:\n      POSTGRES_PASSWORD: postgres\n"
        "      SECRET_KEY: ${SECRET_KEY}\n"
    ),
    "train.py": (
        "tokenizer_name = 'bert-base-uncased'\npassword = os.environ['DB_PASSWORD']\n"
        "secret_name = 'my-k8s-secret'\nkey = 'sepal_length'\n"
        "def login(password: str = '') -> None:\n    self_password = password\n"
    ),
    "package-lock.json": json.dumps(
        {"packages": {"x": {"integrity": "sha512-" + "A1b2C3d4E5f6" * 7 + "==", "version": "1.0"}}}
    ),
    ".env.example": "DB_PASSWORD=changeme\nAPI_TOKEN=your-token-here\n",
    "notes.ipynb": _notebook([("code", "password = getpass.getpass()\n")]),
}


def test_benign_project_has_no_secret_findings(tmp_path: Path) -> None:
    for rel, text in BENIGN.items():
        (tmp_path / rel).write_text(text)
    secrets, controls = _secrets(tmp_path)
    assert secrets == []
    assert controls["no-committed-secrets"].status is ControlStatus.PASS


def test_untracked_key_is_not_called_committed(tmp_path: Path) -> None:
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed (the oracle that writes the index)")
    (tmp_path / "tracked_key.pem").write_text(PEM_KEY)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "local_key.pem").write_text(PEM_KEY)
    (tmp_path / ".gitignore").write_text("a/\n")
    # A commit behind HEAD: the index counts only in a real repository (_gitindex).
    commit = ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]
    for args in (["init", "-q"], ["add", "tracked_key.pem", ".gitignore"], commit):
        subprocess.run([git, *args], cwd=tmp_path, check=True, capture_output=True)
    secrets, _ = _secrets(tmp_path)
    by_path = {s["path"]: s for s in secrets}
    assert by_path["tracked_key.pem"]["git"] == "tracked"
    assert by_path["a/local_key.pem"]["git"] == "untracked"
    assert "not committed" in by_path["a/local_key.pem"]["message"]
    for version in ("4", "3"):
        subprocess.run(
            [git, "update-index", "--index-version", version],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )
        secrets, _ = _secrets(tmp_path)
        assert {s["path"]: s["git"] for s in secrets}["tracked_key.pem"] == "tracked"


@pytest.mark.parametrize(
    ("token", "label"),
    [
        # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
        ("0123456789abcdef0123456789abcdef" + "-us21", "Mailchimp"),
        # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
        ("123456789:AA" + "Hn3kZ9xq2Lw8Rt5Yp0Vb7Mc4Ns6Jd1Fg2", "Telegram"),
        # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
        ("sq0atp-" + "AbCdEfGhIjKlMnOpQrStUv", "Square"),
        # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
        ("dapi" + "0123456789abcdef0123456789abcdef", "Databricks"),
        # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
        ("SK" + "0123456789abcdef0123456789abcdef", "Twilio"),
        # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
        ("shpat_" + "0123456789abcdef0123456789abcdef", "Shopify"),
        ("dop_v1_" + "0123456789abcdef" * 4, "DigitalOcean"),
        # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
        ("r8_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567890", "Replicate"),
    ],
)
def test_more_vendor_tokens(token: str, label: str) -> None:
    (hit,) = list(find_secrets(f"value: {token}\n"))
    assert label in hit.message and token not in hit.message
