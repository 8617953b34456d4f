"""Gradients from fitted parameters, tree attacks against brute force, HSJ, data loading."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mltrust.errors import ConfigError, InputError
from mltrust.robust import (
    BlackBoxModel,
    LinearModel,
    MLPModel,
    SVCModel,
    TorchModel,
    adapt,
    exact_linear,
    hop_skip_jump,
    load_dataset,
    pgd,
    tree_attack,
)


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """Small matrices: one BLAS/OpenMP thread is faster, above all on a shared, busy machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def small():
    """A small 3-class problem in [0, 1]^6 (fast to fit for many model kinds)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=240,
        n_features=6,
        n_informative=4,
        n_redundant=0,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=0,
    )
    X = (X - X.min(0)) / (X.max(0) - X.min(0))
    return X, y


def _numeric_vjp(clf, X, G, h=1e-6):
    out = np.zeros_like(X)
    for j in range(X.shape[1]):
        e = np.zeros(X.shape[1])
        e[j] = h
        out[:, j] = ((clf.logits(X + e) - clf.logits(X - e)) * G).sum(1) / (2 * h)
    return out


@pytest.fixture(scope="module")
def fitted(small):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _models(*small)


def _models(X, y):
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    yb = (y == 0).astype(int)
    return [
        (LogisticRegression(max_iter=2000).fit(X, y), y, LinearModel),
        (LogisticRegression(max_iter=2000).fit(X, yb), yb, LinearModel),
        (LinearSVC().fit(X, y), y, LinearModel),
        (SGDClassifier(random_state=0).fit(X, y), y, LinearModel),
        (SVC(kernel="linear").fit(X, yb), yb, LinearModel),
        (SVC(kernel="rbf", gamma=2.0).fit(X, y), y, SVCModel),
        (SVC(kernel="rbf").fit(X, yb), yb, SVCModel),
        (
            MLPClassifier(
                hidden_layer_sizes=(16, 8), activation="tanh", max_iter=2000, random_state=0
            ).fit(X, y),
            y,
            MLPModel,
        ),
        (
            MLPClassifier(
                hidden_layer_sizes=(8,), activation="relu", max_iter=2000, random_state=0
            ).fit(X, yb),
            yb,
            MLPModel,
        ),
        (
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y),
            y,
            LinearModel,
        ),
        (
            make_pipeline(
                StandardScaler(),
                MLPClassifier(
                    hidden_layer_sizes=(8,), activation="logistic", max_iter=2000, random_state=0
                ),
            ).fit(X, y),
            y,
            MLPModel,
        ),
    ]


def test_adapters_predict_like_the_model_and_gradients_match_finite_differences(small, fitted):
    X, _ = small
    rng = np.random.default_rng(0)
    for model, labels, kind in fitted:
        clf = adapt(model)
        assert isinstance(clf, kind), type(model)
        assert np.array_equal(clf.predict(X), model.predict(X)), type(model)
        G = rng.normal(size=(5, len(clf.classes_)))
        num = _numeric_vjp(clf, X[:5], G)
        ana = clf.logits_vjp(X[:5], G)
        assert np.allclose(ana, num, rtol=1e-4, atol=1e-5), type(model)


def test_pgd_attacks_every_gradient_model_within_budget(small, fitted):
    X, _ = small
    for model, labels, _ in fitted:
        clf = adapt(model)
        clean = np.mean(clf.predict(X) == labels)
        out = pgd(clf, X, labels, 0.15, lower=0.0, upper=1.0, steps=50)
        assert out.robust_accuracy < clean, type(model)
        assert np.all(np.abs(out.X_adv - X) <= 0.15 + 1e-9)
        assert out.X_adv.min() >= 0 and out.X_adv.max() <= 1
        assert np.all(model.predict(out.X_adv[out.fooled]) != labels[out.fooled])


def test_exact_is_a_lower_bound_for_pgd_on_linear_models(small):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    X, y = small
    for model in (LogisticRegression(max_iter=2000).fit(X, y), LinearSVC().fit(X, y)):
        clf = adapt(model)
        for eps in (0.02, 0.05, 0.1, 0.2):
            e = exact_linear(clf, X, y, eps, lower=0, upper=1).robust_accuracy
            p = pgd(clf, X, y, eps, lower=0, upper=1).robust_accuracy
            assert e <= p + 1e-12
            assert p - e <= 0.03


def test_autopgd_is_bounded_by_and_close_to_the_exact_optimum(small):
    """AutoPGD's figure is an upper bound on robust accuracy: never below the exact optimum,
    and with the margin loss it gets within a few rows of it on linear models (cross-entropy
    aims at all classes at once and stops short here, as PGD with cross-entropy does)."""
    from sklearn.linear_model import LogisticRegression

    from mltrust.robust import apgd

    X, y = small
    clf = adapt(LogisticRegression(max_iter=2000).fit(X, y))
    for eps in (0.05, 0.1, 0.2):
        e = exact_linear(clf, X, y, eps, lower=0, upper=1).robust_accuracy
        for loss in ("ce", "margin"):
            out = apgd(clf, X, y, eps, loss=loss, steps=50, lower=0, upper=1)
            assert np.all(np.abs(out.X_adv - X) <= eps + 1e-12)
            assert np.all((out.X_adv >= 0) & (out.X_adv <= 1))
            assert e <= out.robust_accuracy + 1e-12
            same_loss = pgd(clf, X, y, eps, loss=loss, restarts=1, lower=0, upper=1)
            assert out.robust_accuracy <= same_loss.robust_accuracy + 0.01
            if loss == "margin":
                assert out.robust_accuracy - e <= 0.03, eps


def test_exact_linear_against_brute_force_vertices():
    """On a 3-feature model, enumerate the box corners of ball ∩ domain: the optimum of a
    linear function over a box is at a corner, so brute force is exact too."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    X = rng.uniform(size=(150, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0.8).astype(int) + (X[:, 2] > 0.7)
    model = LogisticRegression(max_iter=2000).fit(X, y)
    clf = adapt(model)
    eps = 0.08
    out = exact_linear(clf, X, y, eps, lower=0.0, upper=1.0)
    for i in range(X.shape[0]):
        lo = np.maximum(0, X[i] - eps)
        hi = np.minimum(1, X[i] + eps)
        corners = np.array(list(itertools.product(*zip(lo, hi, strict=True))))
        scores = clf.logits(corners)
        yi = int(np.searchsorted(clf.classes_, y[i]))
        other = np.delete(scores, yi, axis=1).max(axis=1)
        brute = bool(np.any(other >= scores[:, yi]))
        assert brute == bool(out.fooled[i])


def test_exact_rejects_nonlinear_models(small):
    from sklearn.neural_network import MLPClassifier

    X, y = small
    mlp = MLPClassifier(hidden_layer_sizes=(4,), max_iter=50, random_state=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(X, y)
    with pytest.raises(ConfigError):
        exact_linear(adapt(mlp), X, y, 0.1)


def _brute_force_tree(model, x, y, eps, grid=9):
    """Check every grid point of the ball (plus every threshold crossing) — tiny trees only."""
    d = x.size
    values = []
    t = model.tree_ if hasattr(model, "tree_") else None
    thresholds = [[] for _ in range(d)]
    trees = [model] if t is not None else list(np.ravel(model.estimators_))
    for tr in trees:
        for f, th in zip(tr.tree_.feature, tr.tree_.threshold, strict=True):
            if f >= 0:
                thresholds[f] += [th, np.nextafter(th, np.inf)]
    for f in range(d):
        vals = set(np.linspace(x[f] - eps, x[f] + eps, grid))
        vals |= {v for v in thresholds[f] if x[f] - eps <= v <= x[f] + eps}
        values.append(sorted(vals))
    pts = np.array(list(itertools.product(*values)))
    return bool(np.any(model.predict(pts) != y))


def test_tree_attack_matches_brute_force_on_tiny_trees():
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    X = rng.uniform(size=(80, 2))
    y = ((X[:, 0] > 0.5) ^ (X[:, 1] > 0.4)).astype(int)
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    for eps in (0.02, 0.07, 0.15):
        out = tree_attack(tree, X[:40], y[:40], eps)
        assert out.exact
        for i in range(40):
            assert _brute_force_tree(tree, X[i], y[i], eps) == bool(out.outcome.fooled[i])


def test_forest_attack_exact_on_tiny_forest_matches_brute_force():
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    rng = np.random.default_rng(2)
    X = rng.uniform(size=(120, 2))
    y = (X[:, 0] + X[:, 1] > 1.0).astype(int)
    for model in (
        RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0),
        GradientBoostingClassifier(n_estimators=4, max_depth=2, random_state=0),
    ):
        model.fit(X, y)
        out = tree_attack(model, X[:30], y[:30], 0.08, lower=0.0, upper=1.0)
        assert out.exact
        f = out.outcome.fooled
        assert np.all(model.predict(out.outcome.X_adv[f]) != y[:30][f])
        for i in range(30):
            brute = _brute_force_tree(model, X[i], y[i], 0.08)
            assert brute == bool(f[i]), (type(model).__name__, i)


def test_forest_attack_falls_back_to_bound_when_budget_exhausted():
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(3)
    X = rng.uniform(size=(200, 4))
    y = (X.sum(1) > 2).astype(int)
    model = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(X, y)
    out = tree_attack(model, X[:20], y[:20], 0.2, lower=0.0, upper=1.0, budget=5)
    assert out.exact_rows < 20 and not out.exact
    f = out.outcome.fooled
    assert f.any()
    assert np.all(model.predict(out.outcome.X_adv[f]) != y[:20][f])


def test_hsj_finds_adversarials_and_counts_queries(small):
    from sklearn.svm import SVC

    X, y = small
    model = SVC(kernel="rbf", gamma=3.0).fit(X[:180], y[:180])
    box = BlackBoxModel(model)
    calls = {"rows": 0}
    original = model.predict

    def counting(Z):
        calls["rows"] += len(Z)
        return original(Z)

    model.predict = counting
    out = hop_skip_jump(
        box, X[180:], y[180:], norm="2", iterations=8, lower=0.0, upper=1.0, pool=X[:180]
    )
    assert int(out.queries.sum()) == calls["rows"] > 0
    correct = original(X[180:]) == y[180:]
    found = np.isfinite(out.perturbation) & (out.perturbation > 0)
    assert found[correct].mean() > 0.95
    assert np.all(out.perturbation[~correct] == 0)
    model.predict = original
    assert np.all(model.predict(out.X_adv[found]) != y[180:][found])
    assert out.X_adv.min() >= 0 and out.X_adv.max() <= 1
    assert np.allclose(np.linalg.norm(out.X_adv - X[180:], axis=1)[found], out.perturbation[found])
    assert out.robust_accuracy(0.0) < 1.0


def test_hsj_upper_bounds_exact_on_linear_model(small):
    from sklearn.linear_model import LogisticRegression

    from mltrust.robust import minimal_linf_linear

    X, y = small
    model = LogisticRegression(max_iter=2000).fit(X, y)
    clf = adapt(model)
    out = hop_skip_jump(clf, X[:30], y[:30], norm="inf", lower=0.0, upper=1.0, iterations=15)
    exact = minimal_linf_linear(clf, X[:30], y[:30], lower=0.0, upper=1.0)
    ok = np.isfinite(out.perturbation)
    assert np.all(out.perturbation[ok] >= exact[ok] - 1e-6)
    assert np.median(out.perturbation[ok] / np.maximum(exact[ok], 1e-9)) < 1.6


def test_torch_adapter_gradients_and_pgd():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 3))
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(50, 6))
    clf = adapt(net)
    assert isinstance(clf, TorchModel)
    assert list(clf.classes_) == [0, 1, 2]
    y = clf.predict(X)
    G = rng.normal(size=(4, 3))
    assert np.allclose(clf.logits_vjp(X[:4], G), _numeric_vjp(clf, X[:4], G, h=1e-3), atol=1e-3)
    out = pgd(clf, X, y, 0.3, lower=0.0, upper=1.0, steps=40)
    assert out.robust_accuracy < 1.0
    assert np.all(np.abs(out.X_adv - X) <= 0.3 + 1e-6)


def test_black_box_model_has_no_gradients(small):
    from sklearn.neighbors import KNeighborsClassifier

    X, y = small
    clf = adapt(KNeighborsClassifier().fit(X, y))
    assert isinstance(clf, BlackBoxModel)
    with pytest.raises(ConfigError):
        pgd(clf, X, y, 0.1)


def test_load_dataset_formats(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = rng.integers(0, 2, 20)
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": y}).to_csv(
        tmp_path / "d.csv", index=False
    )
    ds = load_dataset(tmp_path / "d.csv")
    assert ds.X.shape == (20, 3) and ds.feature_names == ("a", "b", "c")
    assert np.array_equal(ds.y, y)
    ds = load_dataset(tmp_path / "d.csv", label="a")
    assert ds.feature_names == ("b", "c", "label")
    np.savez(tmp_path / "d.npz", X=X, y=y)
    assert load_dataset(tmp_path / "d.npz").X.shape == (20, 3)
    assert load_dataset("sklearn:breast_cancer").X.shape == (569, 30)
    with pytest.raises(ConfigError):
        load_dataset("sklearn:nope")
    with pytest.raises(ConfigError):
        load_dataset(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("a,label\nx,1\ny,0\n")
    with pytest.raises(InputError):
        load_dataset(tmp_path / "bad.csv")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError):
        load_dataset(tmp_path / "bad.npz")
    # object arrays need pickle: refused, never unpickled
    np.savez(tmp_path / "obj.npz", X=np.array([object()] * 3, dtype=object), y=np.arange(3))
    with pytest.raises(InputError):
        load_dataset(tmp_path / "obj.npz")
