"""False-alarm rates of every drift test on no-shift data (continuous, integer, categorical).

Each test, and the overall verdict, must reject a true "no drift" at most α of the time. The
fast variants run few repetitions with a bound the broken tests exceeded by far (CvM on
integer data rejected 100% of the time); the slow ones (MLTRUST_SLOW=1) run 200 repetitions
and allow α plus three binomial standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mltrust.monitor import classifier_drift, detect_drift, feature_drift, mmd_test

ALPHA = 0.05


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _sample(kind: str, rng: np.random.Generator, n: int, d: int) -> pd.DataFrame:
    if kind == "continuous":
        data = rng.normal(size=(n, d))
    elif kind == "integer":
        data = rng.poisson(2.0, size=(n, d)).astype(float)
    else:  # categorical and a mixed frame
        frame = pd.DataFrame(rng.normal(size=(n, d)), columns=[f"x{i}" for i in range(d)])
        frame["c"] = rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.2, 0.1])
        return frame
    return pd.DataFrame(data, columns=[f"x{i}" for i in range(d)])


def _rejections(test: str, kind: str, reps: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    hits = 0
    for r in range(reps):
        # unequal sizes on purpose: scipy's CvM mishandles ties only when n ≠ m
        ref, cur = _sample(kind, rng, 300, 4), _sample(kind, rng, 180, 4)
        num_r = ref.select_dtypes("number").to_numpy()
        num_c = cur.select_dtypes("number").to_numpy()
        if test in ("ks", "cvm"):
            feats = feature_drift(ref[["x0"]], cur[["x0"]], test=test, alpha=ALPHA, random_state=r)
            hits += feats[0].drift
        elif test == "chi2":
            feats = feature_drift(ref[["c"]], cur[["c"]], alpha=ALPHA)
            hits += feats[0].drift
        elif test == "mmd":
            hits += mmd_test(num_r, num_c, n_permutations=99, alpha=ALPHA, random_state=r).drift
        elif test == "classifier":
            hits += classifier_drift(num_r, num_c, alpha=ALPHA, random_state=r).drift
        else:  # the overall verdict with every family on
            rep = detect_drift(ref, cur, alpha=ALPHA, classifier=True, random_state=r)
            hits += rep.drift
    return int(hits)


CASES = [
    ("ks", "continuous"),
    ("ks", "integer"),
    ("cvm", "continuous"),
    ("cvm", "integer"),
    ("chi2", "categorical"),
    ("mmd", "continuous"),
    ("mmd", "integer"),
    ("classifier", "continuous"),
    ("classifier", "integer"),
    ("overall", "continuous"),
    ("overall", "integer"),
    ("overall", "categorical"),
]


def _bound(reps: int) -> int:
    return math.floor(reps * (ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / reps)))


@pytest.mark.parametrize(("test", "kind"), CASES)
def test_false_alarm_rate_at_most_alpha_fast(test, kind):
    reps = 20  # P(Bin(20, 0.05) > 5) < 0.001; the old CvM on integers scored 20/20
    assert _rejections(test, kind, reps, seed=1) <= 5


@pytest.mark.slow
@pytest.mark.parametrize(("test", "kind"), CASES)
def test_false_alarm_rate_at_most_alpha_200_repetitions(test, kind):
    reps = 200
    assert _rejections(test, kind, reps, seed=2) <= _bound(reps)
