"""`mltrust robustness ...` end to end: models saved with joblib, loaded by the safe loader."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pytest

from mltrust.cli._main import main
from mltrust.robust import load_dataset


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """Small matrices: one BLAS/OpenMP thread is faster, above all on a shared, busy machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def lr_file(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression

    train = load_dataset("sklearn:digits:train")
    path = tmp_path_factory.mktemp("models") / "lr.joblib"
    joblib.dump(LogisticRegression(max_iter=5000).fit(train.X, train.y), path)
    return path


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_default_invocation_exact_json(capsys, lr_file, tmp_path):
    rc, out, err = _run(
        capsys,
        "robustness",
        lr_file,
        "--data",
        "sklearn:digits:test",
        "--attack",
        "exact",
        "--eps",
        "0.05,0.1,0.2,0.3",
        "--format",
        "json",
        "--html",
        tmp_path / "r.html",
        "--png-dir",
        tmp_path / "png",
        "--statement",
        tmp_path / "st.json",
    )
    assert rc == 0, err
    body = json.loads(out)
    assert round(body["clean_accuracy"], 3) == 0.970
    assert [round(r["robust_accuracy"], 3) for r in body["results"]] == [0.865, 0.585, 0.019, 0.0]
    html = (tmp_path / "r.html").read_text()
    assert "<svg" in html and "0.865" in html and "<script" not in html
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [
        "accuracy_vs_eps.png",
        "perturbation_histogram.png",
    ]
    assert (tmp_path / "png" / "accuracy_vs_eps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    st = json.loads((tmp_path / "st.json").read_text())
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == "https://mltrust.dev/robustness/v1"
    assert st["subject"][0]["name"] == "lr.joblib"
    assert len(st["subject"][0]["digest"]["sha256"]) == 64
    assert round(st["predicate"]["min_robust_accuracy"], 3) == 0.0


def test_cli_pgd_text_and_fail_under(capsys, lr_file):
    rc, out, _ = _run(
        capsys,
        "robustness",
        lr_file,
        "--data",
        "sklearn:digits:test",
        "--attack",
        "pgd",
        "--eps",
        "0.1",
        "--steps",
        "50",
        "--restarts",
        "1",
        "--fail-under",
        "0.9",
    )
    assert rc == 1
    assert "robust accuracy" in out and "clean accuracy: 0.970" in out
    assert "MLT-ROB-001 medium" in out


def test_cli_hsj_reports_queries(capsys, lr_file):
    rc, out, _ = _run(
        capsys,
        "robustness",
        lr_file,
        "--data",
        "sklearn:digits:test",
        "--attack",
        "hsj",
        "--eps",
        "0.1",
        "--limit",
        "8",
        "--format",
        "json",
    )
    assert rc == 0
    body = json.loads(out)
    assert body["queries"]["total"] > 0 and body["samples"] == 8
    assert body["min_perturbation"]["kind"] == "found"


def test_cli_tree_attack_on_csv(capsys, tmp_path):
    import pandas as pd
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    X = rng.uniform(size=(200, 3))
    y = (X[:, 0] > 0.5).astype(int)
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": y}).to_csv(
        tmp_path / "d.csv", index=False
    )
    joblib.dump(
        DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y), tmp_path / "t.joblib"
    )
    rc, out, _ = _run(
        capsys,
        "robustness",
        tmp_path / "t.joblib",
        "--data",
        tmp_path / "d.csv",
        "--attack",
        "tree",
        "--eps",
        "0.01,0.2",
        "--clip",
        "0,1",
        "--format",
        "json",
    )
    assert rc == 0
    body = json.loads(out)
    r = [x["robust_accuracy"] for x in body["results"]]
    assert r[1] < r[0] <= 1.0
    assert all(x["bound"] == "exact" for x in body["results"])


def test_cli_harden_saves_loadable_model(capsys, lr_file, tmp_path):
    out_path = tmp_path / "hard.joblib"
    rc, out, err = _run(
        capsys,
        "robustness",
        "harden",
        lr_file,
        "--data",
        "sklearn:digits",
        "--eps",
        "0.1",
        "--rounds",
        "1",
        "--save",
        out_path,
        "--format",
        "json",
    )
    assert rc == 0, err
    body = json.loads(out)
    assert body["after"]["robust_accuracy"] > body["before"]["robust_accuracy"]
    tm = body["threat_model"]
    assert tm["eps"] == [0.1] and tm["norm"] == "inf" and tm["domain"] != "unbounded"
    from mltrust.safeload import load

    hardened = load(out_path)
    test = load_dataset("sklearn:digits:test")
    assert np.mean(hardened.predict(test.X) == test.y) > 0.9


def test_cli_privacy_and_poisoning(capsys, lr_file):
    rc, out, _ = _run(
        capsys,
        "robustness",
        "privacy",
        lr_file,
        "--data",
        "sklearn:digits",
        "--no-shadow",
        "--format",
        "json",
    )
    assert rc == 0
    body = json.loads(out)
    assert {a["name"] for a in body["attacks"]} == {"loss-threshold", "confidence-threshold"}
    rc, out, _ = _run(
        capsys,
        "robustness",
        "privacy",
        lr_file,
        "--data",
        "sklearn:digits",
        "--no-shadow",
        "--fail-above",
        "0.3",
    )
    assert rc == 1 and "MLT-ROB-002" in out
    rc, out, _ = _run(
        capsys,
        "robustness",
        "poisoning",
        "--data",
        "sklearn:digits:train",
        "--model",
        lr_file,
        "--format",
        "json",
    )
    body = json.loads(out)
    assert rc == 0
    assert body["trigger"]["suspicious"] is False
    assert body["labels"]["suspect_count"] < 0.02 * 1257
    assert body["findings"] == []


def test_cli_errors_are_one_line(capsys, lr_file, tmp_path):
    rc, _, err = _run(capsys, "robustness", lr_file, "--data", "sklearn:nope")
    assert rc == 2 and "unknown data set" in err and "Traceback" not in err
    rc, _, err = _run(
        capsys, "robustness", lr_file, "--data", "sklearn:digits:test", "--eps", "0.1,abc"
    )
    assert rc == 2
    rc, _, err = _run(
        capsys, "robustness", tmp_path / "missing.joblib", "--data", "sklearn:digits:test"
    )
    assert rc == 2 and "not found" in err
    rc, _, err = _run(
        capsys, "robustness", lr_file, "--data", "sklearn:digits:test", "--attack", "tree"
    )
    assert rc == 2 and "tree attack supports" in err


def test_cli_refuses_malicious_model_file(capsys, tmp_path):
    """Attack: a pickle that runs code on load must be refused by the safe loader."""
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /dev/null",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Evil()))
    rc, _, err = _run(capsys, "robustness", path, "--data", "sklearn:digits:test")
    assert rc == 2 and "Traceback" not in err
