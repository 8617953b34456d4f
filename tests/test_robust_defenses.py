"""Membership inference, label audit, trigger search, activation clustering, hardening."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mltrust.errors import ConfigError
from mltrust.robust import (
    activation_clusters,
    adversarial_training,
    audit_labels,
    find_trigger,
    load_dataset,
    membership_inference,
    roc_auc_advantage,
)


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """Small matrices: one BLAS/OpenMP thread is faster, above all on a shared, busy machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def digits():
    return load_dataset("sklearn:digits:train"), load_dataset("sklearn:digits:test")


@pytest.fixture(scope="module")
def clean_lr(digits):
    from sklearn.linear_model import LogisticRegression

    train, _ = digits
    return LogisticRegression(max_iter=5000).fit(train.X, train.y)


def test_roc_auc_advantage_known_values():
    auc, adv = roc_auc_advantage(np.array([3.0, 4.0]), np.array([1.0, 2.0]))
    assert auc == 1.0 and adv == 1.0
    auc, adv = roc_auc_advantage(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    assert auc == 0.5 and adv == 0.0
    auc, _ = roc_auc_advantage(np.array([1.0, 3.0]), np.array([2.0, 4.0]))
    assert auc == 0.25


def test_membership_inference_detects_overfit_model(digits):
    """Attack named after the threat: infer training-set membership (ATLAS AML.T0024.000)."""
    from sklearn.ensemble import RandomForestClassifier

    train, test = digits
    # a forest of fully grown trees on 300 rows memorises them (confidence ~1 on members)
    Xtr, ytr = train.X[:300], train.y[:300]
    model = RandomForestClassifier(n_estimators=30, random_state=0).fit(Xtr, ytr)
    rep = membership_inference(model, Xtr, ytr, test.X, test.y, n_shadow=2)
    assert {a.name for a in rep.attacks} == {
        "loss-threshold",
        "confidence-threshold",
        "shadow-model",
    }
    for a in rep.attacks:
        assert a.auc > 0.75, a
    assert max(a.advantage for a in rep.attacks) > 0.4


def test_membership_inference_near_chance_for_regularised_model(digits):
    from sklearn.linear_model import LogisticRegression

    train, test = digits
    model = LogisticRegression(C=0.01, max_iter=2000).fit(train.X, train.y)
    rep = membership_inference(model, train.X, train.y, test.X, test.y, n_shadow=2)
    for a in rep.attacks:
        assert 0.4 < a.auc < 0.56, a
    assert rep.to_dict()["max_auc"] < 0.56


def test_label_audit_flags_flipped_labels(digits):
    """Attack: label flipping on 5% of the training set (ATLAS AML.T0020)."""
    train, _ = digits
    rng = np.random.default_rng(0)
    X, y = train.X[:800], train.y[:800].copy()
    flip = rng.choice(y.size, size=y.size // 20, replace=False)
    y[flip] = (y[flip] + rng.integers(1, 10, size=flip.size)) % 10
    audit = audit_labels(X, y)
    flagged = set(audit.suspects.tolist())
    recall = len(flagged & set(flip.tolist())) / flip.size
    false_pos = len(flagged - set(flip.tolist())) / (y.size - flip.size)
    assert recall >= 0.9
    assert false_pos <= 0.025
    d = audit.to_dict(limit=3)
    assert d["suspect_count"] == len(flagged) and len(d["suspects"]) == 3


def test_label_audit_rejects_single_class():
    with pytest.raises(ConfigError):
        audit_labels(np.zeros((10, 2)), np.zeros(10))


@pytest.fixture(scope="module")
def backdoor(digits):
    """Plant a 4-pixel trigger (top-left corner = 1) relabelled as class 0 in 2.5% of rows."""
    train, _ = digits
    rng = np.random.default_rng(1)
    X, y = train.X.copy(), train.y.copy()
    idx = rng.choice(np.flatnonzero(y != 0), size=30, replace=False)
    X[np.ix_(idx, [0, 1, 8, 9])] = 1.0
    y[idx] = 0
    return X, y


def test_trigger_search_finds_planted_backdoor(digits, backdoor, clean_lr):
    """Attack: backdoor trigger planted by data poisoning (ATLAS AML.T0020)."""
    from sklearn.linear_model import LogisticRegression

    _, test = digits
    clean = clean_lr
    poisoned = LogisticRegression(max_iter=3000).fit(*backdoor)
    rep_clean = find_trigger(clean, test.X, lower=0.0, upper=1.0)
    rep_bad = find_trigger(poisoned, test.X, lower=0.0, upper=1.0)
    assert not rep_clean.suspicious
    assert rep_bad.suspicious and rep_bad.target == 0
    assert set(rep_bad.features) & {0, 1, 8, 9}
    assert rep_bad.flip_rate > rep_clean.flip_rate + 0.3


def test_activation_clustering_runs_and_needs_mlp(digits, backdoor):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    X, y = backdoor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, random_state=0).fit(X, y)
    checks = activation_clusters(mlp, X, y)
    assert len(checks) == 10
    assert all(0 < c.minority_share <= 0.5 for c in checks)
    with pytest.raises(ConfigError):
        activation_clusters(LogisticRegression(max_iter=500).fit(X[:200], y[:200]), X, y)


def test_adversarial_training_linear_improves_exact_robust_accuracy(digits, clean_lr):
    train, test = digits
    model = clean_lr
    res = adversarial_training(
        model, train.X, train.y, 0.1, X_eval=test.X, y_eval=test.y, lower=0.0, upper=1.0, rounds=1
    )
    assert res.before.method == res.after.method == "exact"
    assert round(res.before.robust_accuracy, 3) == 0.585
    assert res.after.robust_accuracy > res.before.robust_accuracy + 0.1
    assert res.after.clean_accuracy > 0.9
    # the original model is left untouched
    assert round(float(np.mean(model.predict(test.X) == test.y)), 3) == 0.970


def test_adversarial_training_mlp_improves_pgd_robust_accuracy(digits):
    from sklearn.neural_network import MLPClassifier

    train, test = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, random_state=0).fit(
            train.X, train.y
        )
    res = adversarial_training(
        mlp,
        train.X,
        train.y,
        0.1,
        X_eval=test.X[:200],
        y_eval=test.y[:200],
        lower=0.0,
        upper=1.0,
        rounds=1,
    )
    assert res.before.method == "pgd"
    assert res.after.robust_accuracy > res.before.robust_accuracy + 0.05


def test_adversarial_training_torch_improves_robust_accuracy(digits):
    torch = pytest.importorskip("torch")
    train, test = digits
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    X, y = train.X[:300], train.y[:300]
    xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    res = adversarial_training(
        net, X, y, 0.1, X_eval=test.X[:100], y_eval=test.y[:100], lower=0.0, upper=1.0, rounds=1
    )
    assert res.after.robust_accuracy > res.before.robust_accuracy


def test_adversarial_training_rejects_models_without_gradients(digits):
    from sklearn.tree import DecisionTreeClassifier

    train, _ = digits
    tree = DecisionTreeClassifier(max_depth=3).fit(train.X, train.y)
    with pytest.raises(ConfigError):
        adversarial_training(tree, train.X[:50], train.y[:50], 0.1, lower=0.0, upper=1.0)
