"""Builders shared by the check/policy/collector tests: projects on disk, advisory data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: A pickle whose REDUCE calls os.system("id") (protocol 2, built from raw opcodes).
MALICIOUS_PICKLE = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."

PEM_KEY = (
    # mltrust: ignore[MLT-CODE-009] truncated fake key, a fixture for the secret rules
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "-----END RSA PRIVATE KEY-----\n"
)


def advisory_snapshot() -> Path | None:
    """The PyPA advisory database snapshot, or None when this machine does not have it."""
    env = os.environ.get("MLTRUST_TEST_ADVISORY_DB")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data" / "pypa-advisory-db")
    for c in candidates:
        if (c / "vulns").is_dir():
            return c
    return None


def require_snapshot() -> Path:
    snap = advisory_snapshot()
    if snap is None:
        pytest.skip(
            "PyPA advisory snapshot not found (set MLTRUST_TEST_ADVISORY_DB or provide "
            "../shared/data/pypa-advisory-db)"
        )
    return snap


def subset_db(tmp: Path, packages: tuple[str, ...] = ("jinja2", "werkzeug")) -> Path:
    """An advisory database imported from the real snapshot's files for ``packages`` only."""
    from mltrust.advisories import AdvisoryDB

    snap = require_snapshot()
    src = tmp / "osv"
    for name in packages:
        shutil.copytree(snap / "vulns" / name, src / name)
    db = tmp / "advisories.db"
    AdvisoryDB.import_osv(src, db)
    return db


def notebook(cells: list[str]) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": "markdown", "metadata": {}, "source": ["# notes\n"]},
                *(
                    {
                        "cell_type": "code",
                        "metadata": {},
                        "execution_count": None,
                        "outputs": [],
                        "source": src.splitlines(keepends=True),
                    }
                    for src in cells
                ),
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def bad_project(root: Path) -> Path:
    """A project with a vulnerable pin, an unsafe pickle.load, a committed key, a bad model."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "requirements.txt").write_text("jinja2==2.10\nrequests>=2.0\n")
    (root / "train.py").write_text(
        "import pickle\n\n\ndef load(path):\n    with open(path, 'rb') as f:\n"
        "        return pickle.load(f)\n"
    )
    (root / "deploy_key.pem").write_text(PEM_KEY)
    models = root / "models"
    models.mkdir()
    (models / "model.pkl").write_bytes(MALICIOUS_PICKLE)
    return root


def clean_project(root: Path) -> Path:
    """A project that passes the default profile once signed."""
    import numpy as np
    from safetensors.numpy import save_file

    root.mkdir(parents=True, exist_ok=True)
    (root / "requirements.txt").write_text("numpy==2.1.0\n")
    (root / "serve.py").write_text(
        "import numpy as np\n\n\ndef predict(x):\n    return float(np.asarray(x).sum())\n"
    )
    (root / "README.md").write_text(
        "---\nlicense: apache-2.0\npipeline_tag: tabular-classification\n---\n# demo model\n"
    )
    save_file({"w": np.ones((2, 2), dtype=np.float32)}, str(root / "model.safetensors"))
    return root
