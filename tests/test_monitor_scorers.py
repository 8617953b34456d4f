"""Per-request scorers: calibration to a false-alarm rate, detection, persistence, protocol."""

from __future__ import annotations

import numpy as np
import pytest

from mltrust.errors import ConfigError, InputError
from mltrust.monitor import (
    AdversarialScorer,
    KNNScorer,
    LIDScorer,
    MahalanobisScorer,
    Scorer,
    load_scorer,
    make_scorer,
    save_scorer,
)


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """Small matrices: one BLAS/OpenMP thread is faster, above all on a shared, busy machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def gaussian():
    rng = np.random.default_rng(0)
    cov = np.diag(np.linspace(0.5, 2.0, 8))
    X = rng.multivariate_normal(np.zeros(8), cov, size=5000)
    return X[:2000], X[2000:3500], X[3500:]


@pytest.mark.parametrize("name", ["mahalanobis", "knn", "lid"])
def test_calibrated_false_alarm_rate_on_held_out_reference(gaussian, name):
    fit, cal, held = gaussian
    sc = make_scorer(name).fit(fit)
    assert isinstance(sc, Scorer)
    threshold = sc.calibrate(cal, 0.05)
    assert sc.threshold == threshold
    far = float(np.mean(sc.score(held) > threshold))
    assert abs(far - 0.05) < 0.025, far
    if name != "lid":  # LID measures local dimension, not distance: a shift can hide from it
        assert np.mean(sc.flag(held + 2.0)) > 0.5


def test_mahalanobis_robust_covariance_ignores_outliers(gaussian):
    fit, _cal, _ = gaussian
    dirty = np.vstack([fit, np.full((100, 8), 25.0)])
    robust = MahalanobisScorer("mcd").fit(dirty)
    naive = MahalanobisScorer("empirical").fit(dirty)
    probe = np.full((1, 8), 4.0)
    assert robust.score(probe)[0] > 2 * naive.score(probe)[0]


def test_scorer_save_load_roundtrip(gaussian, tmp_path):
    fit, cal, held = gaussian
    for sc in (MahalanobisScorer().fit(fit), KNNScorer(3).fit(fit), LIDScorer(10).fit(fit)):
        sc.calibrate(cal, 0.01)
        path = tmp_path / f"{sc.name}.npz"
        save_scorer(sc, path)
        back = load_scorer(path)
        assert type(back) is type(sc) and back.threshold == sc.threshold
        assert np.allclose(back.score(held[:50]), sc.score(held[:50]))
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(InputError):
        load_scorer(tmp_path / "junk.npz")


def test_scorer_input_validation(gaussian):
    fit, _, _ = gaussian
    sc = KNNScorer().fit(fit)
    with pytest.raises(InputError):
        sc.score(np.zeros((2, 3)))
    with pytest.raises(InputError):
        sc.score(np.full((1, 8), np.nan))
    with pytest.raises(ConfigError):
        sc.flag(fit[:2])  # not calibrated
    with pytest.raises(ConfigError):
        sc.calibrate(fit[:10], 1.5)
    with pytest.raises(ConfigError):
        KNNScorer().score(fit[:2])  # not fitted


def test_scorers_satisfy_the_gateway_detector_protocol(gaussian):
    fit, cal, _ = gaussian
    sc = MahalanobisScorer().fit(fit)
    sc.calibrate(cal, 0.01)
    try:
        from mltrust.serve.detectors.interface import Detector
    except ImportError:
        pytest.skip("serving gateway not installed")
    assert isinstance(sc, Detector)
    assert sc.mode == "annotate" and isinstance(sc.threshold, float)


def test_adversarial_scorer_flags_pgd_examples():
    """Attack: evasion with PGD examples (ATLAS AML.T0043) seen by the per-request scorer."""
    from sklearn.linear_model import LogisticRegression

    from mltrust.robust import adapt, load_dataset, pgd

    train = load_dataset("sklearn:digits:train")
    test = load_dataset("sklearn:digits:test")
    model = LogisticRegression(max_iter=3000).fit(train.X, train.y)
    sc = AdversarialScorer(model).fit(train.X)
    sc.calibrate(test.X[:270], 0.05)
    far = float(np.mean(sc.flag(test.X[270:])))
    assert far < 0.12
    adv = pgd(adapt(model), test.X[270:], test.y[270:], 0.1, lower=0.0, upper=1.0, steps=50)
    detected = float(np.mean(sc.flag(adv.X_adv[adv.fooled])))
    assert detected > 0.6
