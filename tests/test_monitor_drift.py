"""Drift tests: calibration under no drift, power under shifts, corrections, MMD, classifier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mltrust.errors import ConfigError, InputError
from mltrust.monitor import (
    adjust_pvalues,
    classifier_drift,
    detect_drift,
    feature_drift,
    ks_columns,
    mmd_test,
    psi,
    render_drift,
)


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """Small matrices: one BLAS/OpenMP thread is faster, above all on a shared, busy machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.mark.parametrize(
    ("n", "m"),
    [(40, 30), (3000, 2000), (1000, 1000), (10_000, 300), (10_001, 400), (30_000, 20_000)],
)
@pytest.mark.parametrize("kind", ["continuous", "integer"])
def test_ks_pvalues_equal_scipy_ks_2samp(n, m, kind):
    """Same exact/asymptotic choice as scipy's method='auto', to 1e-9, with and without ties."""
    rng = np.random.default_rng(n + m)
    R, C = rng.normal(size=(n, 3)), rng.normal(0.05, 1, size=(m, 3))
    if kind == "integer":
        R, C = np.round(R * 2), np.round(C * 2)
    D, P = ks_columns(R, C)
    for j in range(3):
        ref = stats.ks_2samp(R[:, j], C[:, j])
        assert D[j] == pytest.approx(ref.statistic, abs=1e-12)
        assert P[j] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(("n", "m"), [(15, 12), (200, 150), (3000, 1000)])
def test_cvm_without_ties_equals_scipy(n, m):
    from mltrust.monitor import cvm_columns

    rng = np.random.default_rng(n)
    R, C = rng.normal(size=(n, 2)), rng.normal(0.1, 1, size=(m, 2))
    T, P, how = cvm_columns(R, C)
    for j in range(2):
        ref = stats.cramervonmises_2samp(R[:, j], C[:, j])
        assert T[j] == pytest.approx(ref.statistic, rel=1e-9)
        assert P[j] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
    assert set(how) == {"exact" if max(n, m) <= 20 else "asymptotic"}


def test_cvm_on_integer_data_does_not_false_alarm():
    """scipy's mid-rank formula flags every integer column (unequal sizes); ours does not."""
    rng = np.random.default_rng(11)
    R = rng.integers(0, 4, size=(1000, 20)).astype(float)
    C = rng.integers(0, 4, size=(500, 20)).astype(float)
    scipy_p = [stats.cramervonmises_2samp(R[:, j], C[:, j]).pvalue for j in range(20)]
    assert np.mean(np.array(scipy_p) < 0.05) > 0.9  # the bug this guards against
    feats = feature_drift(R, C, test="cvm", correction="none")
    assert {f.test for f in feats} == {"cvm-perm"}
    assert sum(f.p_value < 0.05 for f in feats) <= 4
    # the statistic on tied data is Anderson's T from its definition: check on a tiny case
    from mltrust.monitor import cvm_columns

    r, c = np.array([[0.0], [0.0], [1.0]]), np.array([[1.0], [1.0], [2.0]])
    T, _, _ = cvm_columns(r, c, permutations=9)
    F = np.array([2 / 3, 1, 1])  # at 0, 1, 2
    G = np.array([0, 2 / 3, 1])
    t = np.array([2, 3, 1])
    assert T[0] == pytest.approx(9 / 36 * float(((F - G) ** 2 * t).sum()))
    shifted = feature_drift(R, C + 1, test="cvm")
    assert all(f.drift for f in shifted)


def test_effect_sizes_equal_the_reference_implementations():
    from mltrust.monitor._drift import effect_size_columns

    rng = np.random.default_rng(12)
    R = np.column_stack([rng.normal(size=3000), rng.poisson(2, 3000), np.zeros(3000)])
    C = np.column_stack([rng.normal(0.3, 1, 2000), rng.poisson(2.5, 2000), np.ones(2000)])
    P, W = effect_size_columns(R, C)
    for j in range(3):
        assert P[j] == pytest.approx(psi(R[:, j], C[:, j]), rel=1e-9)
        sd = R[:, j].std() or 1.0
        assert W[j] == pytest.approx(stats.wasserstein_distance(R[:, j], C[:, j]) / sd, rel=1e-9)


def test_corrections_known_values():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    assert np.allclose(adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 1.0])
    # BH: sorted 0.01,0.03,0.04,0.5 -> 0.04, 0.06, 0.0533, 0.5 -> monotone: 0.04,.0533,.0533,.5
    assert np.allclose(adjust_pvalues(p, "bh"), [0.04, 0.053333, 0.053333, 0.5], atol=1e-6)
    assert np.array_equal(adjust_pvalues(p, "none"), p)
    with pytest.raises(ConfigError):
        adjust_pvalues(p, "holm")


@pytest.mark.parametrize("correction", ["bh", "bonferroni"])
def test_no_drift_few_rejections_after_correction(correction):
    rng = np.random.default_rng(1)
    rejections = 0
    for _ in range(20):
        R, C = rng.normal(size=(500, 20)), rng.normal(size=(400, 20))
        feats = feature_drift(R, C, correction=correction, alpha=0.05)
        rejections += any(f.drift for f in feats)
    # family-wise (Bonferroni) / FDR (BH, all nulls true => FWER) at 5%: ~1 of 20 runs
    assert rejections <= 3


def test_shifted_mean_is_detected_on_the_right_feature():
    rng = np.random.default_rng(2)
    R, C = rng.normal(size=(2000, 10)), rng.normal(size=(1000, 10))
    C[:, 4] += 0.3
    rep = detect_drift(R, C)
    assert rep.drift
    assert [f.name for f in rep.drifted] == ["f4"]
    assert rep.mmd is not None and rep.mmd.drift
    f4 = rep.features[4]
    assert f4.psi is not None and f4.psi > rep.features[0].psi
    assert f4.wasserstein == pytest.approx(0.3, abs=0.08)


def test_cvm_test_and_categorical_chi2():
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=800), "c": rng.choice(["a", "b", "c"], 800)})
    cur = pd.DataFrame(
        {"x": rng.normal(size=600), "c": rng.choice(["a", "b", "c"], 600, p=[0.6, 0.2, 0.2])}
    )
    feats = {f.name: f for f in feature_drift(ref, cur, test="cvm")}
    assert feats["c"].test == "chi2" and feats["c"].drift
    assert feats["x"].test == "cvm" and not feats["x"].drift
    with pytest.raises(InputError):
        feature_drift(ref, cur.rename(columns={"x": "y"}))


def test_psi_zero_for_identical_and_large_for_shift():
    rng = np.random.default_rng(4)
    r = rng.normal(size=5000)
    assert psi(r, r) == pytest.approx(0.0, abs=1e-12)
    assert psi(r, r + 1.0) > 0.2


def test_mmd_permutation_pvalue_uniform_under_null_and_small_under_shift():
    rng = np.random.default_rng(5)
    pvals = [
        mmd_test(
            rng.normal(size=(150, 3)), rng.normal(size=(150, 3)), n_permutations=99, random_state=s
        ).p_value
        for s in range(12)
    ]
    assert np.mean(np.array(pvals) < 0.05) <= 2 / 12
    assert 0.2 < np.mean(pvals) < 0.8
    X = rng.normal(size=(300, 3))
    Y = rng.normal(size=(300, 3))
    Y[:, 0] *= 2.0  # a variance change, invisible to a mean test
    res = mmd_test(X, Y, n_permutations=199)
    assert res.p_value < 0.01 and res.drift and res.statistic > 0
    assert res.p_value >= 1 / 200  # permutation p-values are never 0


def test_mmd_linear_time_for_large_inputs():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(20000, 5))
    same = mmd_test(X, rng.normal(size=(20000, 5)), method="linear")
    shifted = mmd_test(X, rng.normal(0.3, 1, size=(20000, 5)), method="linear")
    assert same.method == "linear" and not same.drift
    assert shifted.drift and shifted.p_value < 1e-6


def test_classifier_drift_auc_and_pvalue():
    rng = np.random.default_rng(7)
    R = rng.normal(size=(800, 4))
    none = classifier_drift(R, rng.normal(size=(800, 4)))
    assert 0.4 < none.auc < 0.6 and not none.drift and none.n == 800
    C = rng.normal(size=(800, 4))
    C[:, 1] = np.abs(C[:, 1])  # a shape change
    some = classifier_drift(R, C)
    assert some.auc > 0.6 and some.drift and some.p_value < 1e-4


def test_render_formats():
    rng = np.random.default_rng(8)
    ref = pd.DataFrame({"a": rng.normal(size=300), "b": rng.choice(["u", "v"], 300)})
    cur = pd.DataFrame({"a": rng.normal(1, 1, size=300), "b": rng.choice(["u", "v"], 300)})
    rep = detect_drift(ref, cur, mmd=False)
    text = render_drift(rep, "text")
    assert "drift: YES" in text and " * a" in text
    import json

    body = json.loads(render_drift(rep, "json"))
    assert body["drift"] is True and body["drifted_features"] == ["a"]
    html = render_drift(rep, "html", reference=ref, current=cur)
    assert html.count("<svg") == 2 and "<script" not in html
