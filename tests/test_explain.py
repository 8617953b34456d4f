"""`mltrust explain`: attributions validated against known values, a model that uses 2 of 20
features, the sanity checks (one built to fail), the report, and signed evidence for `check`."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mltrust.cli._main import main
from mltrust.explain import (
    CheckStatus,
    ExplainConfig,
    explain,
    integrated_gradients,
    kernel_shap,
    shapley_exact,
)

SMALL = ExplainConfig(samples=24, background=12, coalitions=256, repeats=3)
SIGNAL = (3, 11)


def _data(n: int = 400, d: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = ((X[:, SIGNAL[0]] + X[:, SIGNAL[1]]) > 0).astype(int)
    return X, y


def _two_class(g: Any) -> Any:
    """A ``score`` whose class-1 column is ``g(X)`` (any real values: the Shapley algebra does
    not need probabilities)."""

    def score(X: np.ndarray) -> np.ndarray:
        v = g(X)
        return np.stack([-v, v], axis=1)

    return score


# --- attribution methods against known values ---------------------------------------------


def test_shapley_of_a_linear_function_is_weight_times_offset_from_background() -> None:
    rng = np.random.default_rng(1)
    w = np.array([2.0, -1.0, 0.5, 0.0, 3.0])
    X, B = rng.normal(size=(6, 5)), rng.normal(size=(9, 5))
    target = np.ones(6, dtype=int)
    phi, exact = kernel_shap(_two_class(lambda Z: Z @ w), X, target, B)
    assert exact
    np.testing.assert_allclose(phi, w * (X - B.mean(axis=0)), atol=1e-9)


def test_kernel_regression_equals_the_shapley_formula_with_interactions() -> None:
    rng = np.random.default_rng(2)
    X, B = rng.normal(size=(5, 4)), rng.normal(size=(7, 4))
    score = _two_class(lambda Z: Z[:, 0] * Z[:, 1] + np.sin(Z[:, 2]) * Z[:, 3] ** 2)
    target = np.ones(5, dtype=int)
    phi, exact = kernel_shap(score, X, target, B)
    assert exact
    ref = shapley_exact(score, X, target, B)
    np.testing.assert_allclose(phi, ref, atol=1e-9)
    # efficiency: the values add up to f(x) - E f(B)
    fx = score(X)[:, 1]
    np.testing.assert_allclose(phi.sum(axis=1), fx - score(B)[:, 1].mean(), atol=1e-9)


def test_symmetric_interaction_splits_evenly() -> None:
    # f = x0 * x1 with background 0: both features get half of f(x) (symmetry axiom)
    X = np.array([[2.0, 3.0, 5.0]])
    B = np.zeros((1, 3))
    phi = shapley_exact(_two_class(lambda Z: Z[:, 0] * Z[:, 1]), X, np.array([1]), B)
    np.testing.assert_allclose(phi, [[3.0, 3.0, 0.0]])


def test_sampled_kernel_shap_is_close_to_exact() -> None:
    rng = np.random.default_rng(3)
    d = 12
    X, B = rng.normal(size=(3, d)), rng.normal(size=(6, d))
    score = _two_class(lambda Z: np.tanh(Z[:, 0] + 0.5 * Z[:, 5] * Z[:, 6]) + 0.3 * Z[:, 9])
    t = np.ones(3, dtype=int)
    exact, is_exact = kernel_shap(score, X, t, B, exact_max=12)
    approx, is_exact2 = kernel_shap(score, X, t, B, exact_max=4, samples=3000, seed=0)
    assert is_exact and not is_exact2
    np.testing.assert_allclose(approx.sum(axis=1), exact.sum(axis=1), atol=1e-9)
    assert np.max(np.abs(approx - exact)) < 0.05


def test_integrated_gradients_of_a_separable_quadratic_are_exact() -> None:
    w = np.array([1.0, -2.0, 0.5])
    X = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    b = np.array([0.5, 0.0, -1.0])
    ig, gap = integrated_gradients(lambda Z: (Z**2) @ w, lambda Z: 2 * Z * w, X, b, steps=8)
    np.testing.assert_allclose(ig, w * (X**2 - b**2), atol=1e-12)
    assert gap < 1e-12


# --- the known case: 2 of 20 features ------------------------------------------------------


def _names(d: int = 20) -> list[str]:
    return [f"f{i}" for i in range(d)]


def test_two_of_twenty_features_get_the_attribution_mass_linear() -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    exp = explain(LogisticRegression().fit(X, y), X, y, _names(), SMALL)
    assert set(exp.methods) == {"shap", "permutation", "integrated_gradients"}
    for method, imp in exp.methods.items():
        assert imp[list(SIGNAL)].sum() > 0.8, (method, imp)
    top2 = {f["name"] for f in exp.features()[:2]}
    assert top2 == {"f3", "f11"}
    assert {c.name: c.status for c in exp.checks} == dict.fromkeys(
        ("randomisation", "stability", "faithfulness", "agreement"), CheckStatus.PASS
    )


def test_two_of_twenty_features_get_the_attribution_mass_forest() -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = _data()
    rf = RandomForestClassifier(n_estimators=25, random_state=0).fit(X, y)
    exp = explain(rf, X, y, _names(), SMALL)
    assert "integrated_gradients" not in exp.methods  # no gradients: said in the notes
    assert any("no gradients" in n for n in exp.notes)
    assert {f["name"] for f in exp.features()[:2]} == {"f3", "f11"}
    assert exp.importance[list(SIGNAL)].sum() > 0.6
    assert exp.methods["permutation"][list(SIGNAL)].sum() > 0.8
    assert all(c.status is CheckStatus.PASS for c in exp.checks), exp.checks


# --- the randomisation check must be able to fail ------------------------------------------


class _FixedRule:
    """A scikit-learn-style classifier that 'learns' coefficients but never uses them: its
    output depends on the input only, so no explanation of it can depend on its parameters."""

    def __init__(self, scale: float = 3.0) -> None:
        self.scale = scale

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"scale": self.scale}

    def set_params(self, **params: Any) -> _FixedRule:
        self.scale = params.get("scale", self.scale)
        return self

    def fit(self, X: np.ndarray, y: np.ndarray) -> _FixedRule:
        self.classes_ = np.unique(y)
        self.coef_ = np.linalg.lstsq(X, y - y.mean(), rcond=None)[0]  # learnt, never used
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.scale * (X[:, 0] + 0.5 * X[:, 1])))
        return np.stack([1 - p, p], axis=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes_[(self.predict_proba(X)[:, 1] > 0.5).astype(int)])


def test_randomisation_check_fails_for_a_model_that_ignores_its_parameters() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 6))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    exp = explain(_FixedRule().fit(X, y), X, y, _names(6), SMALL)
    check = next(c for c in exp.checks if c.name == "randomisation")
    assert check.status is CheckStatus.FAIL
    assert check.figures["weighted_tau"] == pytest.approx(1.0)
    assert check.figures["relative_change"] == pytest.approx(0.0, abs=1e-9)
    assert not exp.passed
    # the same data with a model that learns: the check passes
    from sklearn.linear_model import LogisticRegression

    ok = explain(LogisticRegression().fit(X, y), X, y, _names(6), SMALL)
    assert next(c for c in ok.checks if c.name == "randomisation").status is CheckStatus.PASS


def test_torch_model_gets_integrated_gradients_and_weight_randomisation() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    y = (X[:, 2] - X[:, 4] > 0).astype(np.int64)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    exp = explain(net, X.astype(np.float64), y, _names(6), SMALL)
    assert "integrated_gradients" in exp.methods
    assert exp.details["ig_completeness_gap"] < 0.05
    for imp in exp.methods.values():
        assert imp[[2, 4]].sum() > 0.7
    rand = next(c for c in exp.checks if c.name == "randomisation")
    assert "torch parameters redrawn" in rand.figures["method"]
    assert rand.status is CheckStatus.PASS


# --- the command, the report, and signed evidence ------------------------------------------


def _project(tmp_path: Path) -> tuple[Path, Path, Path]:
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    project = tmp_path / "p"
    project.mkdir()
    X, y = _data(n=300)
    names = _names()
    names[7] = "<script>alert(1)</script>"
    frame = pd.DataFrame(X, columns=names)
    frame["label"] = y
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    model = project / "model.joblib"
    joblib.dump(LogisticRegression().fit(X, y), model)
    return project, model, data


def _explain_args(model: Path, data: Path, *more: str) -> list[str]:
    return ["explain", str(model), "--data", str(data), "--samples", "16", "--background",
            "8", "--coalitions", "128", *more]  # fmt: skip


def test_cli_json_reports_features_and_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, model, data = _project(tmp_path)
    html = tmp_path / "report.html"
    code = main(_explain_args(model, data, "--format", "json", "--html", str(html)))
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    features = out["features"]
    assert {f["name"] for f in features[:2]} == {"f3", "f11"}
    assert all(set(f) >= {"name", "importance"} for f in features)
    assert sum(f["importance"] for f in features) == pytest.approx(1.0, abs=1e-4)
    assert {c["name"]: c["passed"] for c in out["checks"]} == dict.fromkeys(
        ("randomisation", "stability", "faithfulness", "agreement"), True
    )
    assert all("figures" in c for c in out["checks"])
    page = html.read_text()
    assert page.count("<svg") >= 3
    assert "<script>alert(1)</script>" not in page  # names from the data are escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_attack_explain_never_unpickles_an_unsafe_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, data = _project(tmp_path)
    canary = tmp_path / "canary"
    evil = tmp_path / "evil.joblib"
    payload = f"touch {canary}".encode()
    evil.write_bytes(
        b"\x80\x02cposix\nsystem\nq\x00X" + len(payload).to_bytes(4, "little") + payload
        + b"q\x01\x85q\x02Rq\x03."
    )  # fmt: skip
    assert main(_explain_args(evil, data, "--format", "json")) == 2
    assert not canary.exists()


def test_attest_explain_then_check_gates_on_it_and_tampering_is_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    attest = pytest.importorskip("mltrust.attest")
    project, model, data = _project(tmp_path)
    keys = attest.generate_keypair(tmp_path / "keys" / "k", passphrase=None)
    st = tmp_path / "explain.json"
    assert main(_explain_args(model, data, "--statement", str(st))) == 0
    monkeypatch.chdir(project)
    assert main(["attest", "explain", model.name, "--statement", str(st), "-k",
                 str(keys.private_path)]) == 0  # fmt: skip
    bundle_path = project / ".mltrust" / "attestations" / "model.joblib.explain.bundle.json"
    assert bundle_path.is_file()
    capsys.readouterr()

    def controls() -> dict[str, Any]:
        main(["check", str(project), "--key", str(keys.public_path), "-f", "json", "--no-store"])
        return {c["id"]: c for c in json.loads(capsys.readouterr().out)["controls"]}

    assert controls()["explanation-sanity"]["status"] == "pass"
    # a failed check recorded in a signed statement fails the control
    statement = json.loads(st.read_text())
    statement["predicate"]["checks"][0]["status"] = "fail"
    st.write_text(json.dumps(statement))
    assert main(["attest", "explain", model.name, "--statement", str(st), "-k",
                 str(keys.private_path)]) == 0  # fmt: skip
    capsys.readouterr()
    got = controls()
    assert got["explanation-sanity"]["status"] == "fail"
    assert "randomisation: fail" in json.dumps(got["explanation-sanity"])
    # Attack: flip the status back to pass inside the signed payload (signature kept).
    bundle = json.loads(bundle_path.read_text())
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload["predicate"]["checks"][0]["status"] = "pass"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    bundle_path.write_text(json.dumps(bundle))
    got = controls()
    assert got["explanation-sanity"]["status"] == "skip"  # nothing trusted is left
    assert got["evidence-trusted"]["status"] == "warn"


def test_attest_explain_refuses_a_statement_about_another_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    attest = pytest.importorskip("mltrust.attest")
    project, model, data = _project(tmp_path)
    keys = attest.generate_keypair(tmp_path / "keys" / "k", passphrase=None)
    st = tmp_path / "explain.json"
    assert main(_explain_args(model, data, "--statement", str(st))) == 0
    model.write_bytes(model.read_bytes() + b"\n")
    code = main(["attest", "explain", str(model), "--statement", str(st), "-k",
                 str(keys.private_path)])  # fmt: skip
    assert code == 2
    assert not (project / ".mltrust" / "attestations").exists()


def test_cli_explains_a_torchscript_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch = pytest.importorskip("torch")
    import pandas as pd

    torch.manual_seed(0)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y = (X[:, 2] - X[:, 4] > 0).astype(np.int64)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(torch.as_tensor(X)), torch.as_tensor(y))
        loss.backward()
        opt.step()
    model = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(net), str(model))
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(6)])
    frame["label"] = y
    data = tmp_path / "six.csv"
    frame.to_csv(data, index=False)
    code = main(_explain_args(model, data, "--format", "json"))
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {f["name"] for f in out["features"][:2]} == {"c2", "c4"}
    assert "integrated_gradients" in out["methods"]
    rand = next(c for c in out["checks"] if c["name"] == "randomisation")
    assert rand["passed"] and "torch parameters redrawn" in rand["figures"]["method"]


def test_hostile_inputs_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    _, model, data = _project(tmp_path)
    # the data has other columns than the model was trained on
    frame = pd.read_csv(data)
    narrow = tmp_path / "narrow.csv"
    frame.drop(columns=["f0"]).to_csv(narrow, index=False)
    assert main(_explain_args(model, narrow)) == 2
    assert "takes 20 features" in capsys.readouterr().err
    # too many features
    wide = tmp_path / "wide.csv"
    pd.DataFrame(np.zeros((4, 300)), columns=[f"w{i}" for i in range(300)]).assign(
        label=[0, 1, 0, 1]
    ).to_csv(wide, index=False)
    assert main(_explain_args(model, wide)) == 2
    assert "at most 256" in capsys.readouterr().err
    # text where numbers should be
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,x,0\n2,y,1\n")
    assert main(_explain_args(model, bad)) == 2
    assert "error:" in capsys.readouterr().err


def test_property_exact_kernel_shap_is_efficient_and_matches_the_formula() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=25, deadline=None)
    @given(
        d=st.integers(min_value=1, max_value=5),
        seed=st.integers(min_value=0, max_value=2**31 - 1),
    )
    def check(d: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        W = rng.normal(size=(d, d))
        X, B = rng.normal(size=(3, d)), rng.normal(size=(4, d))
        score = _two_class(lambda Z: np.tanh(Z @ W).sum(axis=1) * Z[:, 0])
        t = np.ones(3, dtype=int)
        phi, exact = kernel_shap(score, X, t, B)
        assert exact
        np.testing.assert_allclose(
            phi.sum(axis=1), score(X)[:, 1] - score(B)[:, 1].mean(), atol=1e-8
        )
        np.testing.assert_allclose(phi, shapley_exact(score, X, t, B), atol=1e-8)

    check()
