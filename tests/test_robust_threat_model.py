"""The threat model travels with every robustness figure; the default attack is the strongest.

Also the bad inputs that used to end in "internal error": a model fitted on another width, and
text labels against a model trained on numbers.
"""

from __future__ import annotations

import json
import os
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest

from mltrust.cli._main import main
from mltrust.robust import adapt, evaluate_robustness, load_dataset, pgd


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def svc_csv(tmp_path_factory):
    """A sparse LinearSVC on [0, 1] features, saved with joblib, and its data as CSV."""
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(300, 6))
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    folder = tmp_path_factory.mktemp("tm")
    joblib.dump(LinearSVC(C=1.0).fit(X, y), folder / "svc.joblib")
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["label"] = y
    frame.to_csv(folder / "data.csv", index=False)
    return folder


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_csv_domain_is_recorded_unbounded_and_clip_bounds_it(capsys, svc_csv, tmp_path):
    model, data = svc_csv / "svc.joblib", svc_csv / "data.csv"
    rc, out, err = _run(
        capsys, "robustness", model, "--data", data, "--eps", "0.2", "-f", "json",
        "--statement", tmp_path / "st.json",
    )  # fmt: skip
    assert rc == 0, err
    body = json.loads(out)
    tm = body["threat_model"]
    assert tm["domain"] == "unbounded" and tm["norm"] == "inf" and tm["eps"] == [0.2]
    assert tm["attacks_run"] == ["exact"] and tm["clip"] == "auto"
    assert any("unbounded" in n for n in body["notes"])
    st = json.loads((tmp_path / "st.json").read_text())
    assert st["predicate"]["threat_model"] == tm
    unbounded = body["results"][0]["robust_accuracy"]
    rc, out, _ = _run(
        capsys, "robustness", model, "--data", data, "--eps", "0.2", "--clip", "0,1", "-f", "json"
    )
    clipped = json.loads(out)
    assert clipped["threat_model"]["domain"] == {"lower": 0.0, "upper": 1.0}
    assert clipped["results"][0]["robust_accuracy"] >= unbounded
    rc, out, _ = _run(capsys, "robustness", model, "--data", data, "--eps", "0.2", "--clip", "0,1")
    assert "threat model: L∞, ε ∈ {0.2}, domain [0, 1]" in out


def test_text_html_and_pngs_show_threat_model_and_share_a_file_mode(capsys, svc_csv, tmp_path):
    from mltrust.robust import html_report, write_pngs

    ds = load_dataset(str(svc_csv / "data.csv"))
    # mltrust: ignore[MLT-CODE-001] loads a model this test fixture saved a moment ago
    model = joblib.load(svc_csv / "svc.joblib")
    rep = evaluate_robustness(model, ds.X, ds.y, [0.1], attack="pgd", steps=10, restarts=1)
    assert rep.threat["steps"] == 10 and rep.threat["restarts"] == 1
    assert rep.threat["loss"] == "ce+margin"
    page = html_report(rep)
    assert "threat model: L∞" in page and "domain unbounded" in page
    rc, _, err = _run(
        capsys, "robustness", svc_csv / "svc.joblib", "--data", svc_csv / "data.csv",
        "--eps", "0.1", "--html", tmp_path / "r.html", "--png-dir", tmp_path / "png",
    )  # fmt: skip
    assert rc == 0, err
    modes = {os.stat(p).st_mode & 0o777 for p in [tmp_path / "r.html", *write_pngs(rep, tmp_path)]}
    modes |= {os.stat(p).st_mode & 0o777 for p in (tmp_path / "png").iterdir()}
    assert len(modes) == 1


def test_help_shows_the_main_command_options(capsys):
    try:
        rc = main(["robustness", "--help"])
    except SystemExit as exc:
        rc = exc.code
    out = capsys.readouterr().out
    assert rc in (0, None)
    for opt in ("--data", "--attack", "--eps", "--clip", "--norm", "--steps", "--statement"):
        assert opt in out
    assert "harden" in out and "poisoning" in out


def test_model_width_and_label_type_mismatches_are_one_line_errors(capsys, svc_csv, tmp_path):
    frame = pd.read_csv(svc_csv / "data.csv")
    frame.drop(columns=["x5"]).to_csv(tmp_path / "narrow.csv", index=False)
    rc, _, err = _run(
        capsys, "robustness", svc_csv / "svc.joblib", "--data", tmp_path / "narrow.csv"
    )
    assert rc == 2 and "expects 6 features but the data has 5" in err
    assert "internal error" not in err
    frame["label"] = np.where(frame["label"] == 1, "yes", "no")
    frame.to_csv(tmp_path / "text.csv", index=False)
    rc, _, err = _run(capsys, "robustness", svc_csv / "svc.joblib", "--data", tmp_path / "text.csv")
    assert rc == 2 and "do not match the model's classes" in err
    assert "internal error" not in err


@pytest.fixture(scope="module")
def mlp_digits():
    from sklearn.neural_network import MLPClassifier

    train = load_dataset("sklearn:digits:train")
    test = load_dataset("sklearn:digits:test")
    model = MLPClassifier(hidden_layer_sizes=(32,), max_iter=120, tol=1e-3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged after 120 epochs is fine here
        model.fit(train.X / 16, train.y)
    return model, test.X[:120] / 16, test.y[:120]


def test_pgd_ensemble_breaks_every_row_either_loss_breaks(mlp_digits):
    model, X, y = mlp_digits
    clf = adapt(model)
    kw = {"steps": 20, "restarts": 1, "lower": 0.0, "upper": 1.0}
    ce = pgd(clf, X, y, 0.05, loss="ce", **kw).fooled
    margin = pgd(clf, X, y, 0.05, loss="margin", **kw).fooled
    both = pgd(clf, X, y, 0.05, **kw).fooled
    assert not np.any((ce | margin) & ~both)
    assert both.sum() >= max(ce.sum(), margin.sum())


def test_auto_picks_exact_for_linear_tree_attack_for_trees_and_is_strongest(mlp_digits):
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    model, X, y = mlp_digits
    kw = {"steps": 20, "restarts": 1, "lower": 0.0, "upper": 1.0}
    auto = evaluate_robustness(model, X, y, [0.05], attack="auto", **kw)
    plain = evaluate_robustness(model, X, y, [0.05], attack="pgd", **kw)
    assert auto.threat["attacks_run"] == ["pgd(ce+margin)", "apgd-ce", "apgd-margin"]
    assert auto.results[0].robust_accuracy <= plain.results[0].robust_accuracy
    lr = LogisticRegression(max_iter=2000).fit(X, y)
    rep = evaluate_robustness(lr, X, y, [0.05], attack="auto", lower=0.0, upper=1.0)
    assert rep.threat["attacks_run"] == ["exact"] and rep.results[0].bound == "exact"
    tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
    rep = evaluate_robustness(tree, X, y, [0.05], attack="auto", lower=0.0, upper=1.0)
    assert rep.threat["attacks_run"] == ["tree"] and rep.threat["steps"] is None


def test_evidence_carries_each_figure_with_its_threat_model(capsys, svc_csv, tmp_path):
    """Each signed figure reaches the evidence with the domain it was measured in (only
    statements signed by a --key count; see docs/policy.md)."""
    from mltrust.attest import generate_keypair
    from mltrust.evidence import CollectContext, collect_evidence

    keys = generate_keypair(tmp_path / "keys" / "k", passphrase=None)
    model, data = svc_csv / "svc.joblib", svc_csv / "data.csv"
    by_domain = {}
    for clip, name in (("auto", "open"), ("0,1", "box")):
        statement = tmp_path / f"{name}.json"
        rc, _, err = _run(
            capsys, "robustness", model, "--data", data, "--eps", "0.2", "--clip", clip,
            "--statement", statement,
        )  # fmt: skip
        assert rc == 0, err
        rc, _, err = _run(
            capsys, "attest", "robustness", model, "--statement", statement,
            "--key", keys.private_path, "--no-store",
        )  # fmt: skip
        assert rc == 0, err
        ctx = CollectContext(svc_csv, keys=(keys.public_path,))
        section = collect_evidence(ctx).document["robustness"]
        ((domain, norm, eps, acc),) = {
            (f["domain"], f["norm"], f["eps"], f["robust_accuracy"]) for f in section["figures"]
        }
        assert (norm, eps) == ("inf", 0.2)
        by_domain[domain] = acc
    assert set(by_domain) == {"unbounded", "bounded"}
    assert by_domain["bounded"] >= by_domain["unbounded"]
