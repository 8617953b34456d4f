"""Attribution methods for tabular classifiers: permutation importance, Shapley values
(exact and Kernel SHAP) and integrated gradients.

Every method explains one scalar per row: the probability the model gives to the class it
predicts for that row's *unchanged* input (``target``), so a coalition or a path never switches
the class being explained. All methods take a plain ``score(X) -> (n, k)`` probability
function, so they are checked here against closed-form values (tests/test_explain.py) without
any model.

Decisions:

* **Interventional Shapley values** over a background sample ``B``: the value of a coalition
  ``S`` for row ``x`` is ``mean_b f(x_S, b_~S)``. With ``d <= exact_max_features`` every
  coalition is enumerated and the Kernel SHAP regression is solved exactly (which equals the
  Shapley formula); above that, coalitions are sampled in complementary pairs with sizes drawn
  from the Shapley kernel, and the regression keeps the efficiency constraint
  ``sum(phi) = f(x) - E f(B)`` exactly (Lundberg & Lee 2017). No library is needed, and the
  values can be validated against known ones.
* **Integrated gradients** (Sundararajan et al. 2017) on the logit of the target class, from the
  background mean, with the trapezoid rule; only for models whose adapter has gradients
  (linear, MLP, SVC, torch). The completeness gap ``|sum(IG) - (z(x) - z(baseline))|`` is
  reported, so a coarse path shows.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from math import comb

import numpy as np

__all__ = [
    "Score",
    "coalitions",
    "integrated_gradients",
    "kernel_shap",
    "permutation_importance",
    "shapley_exact",
]

#: ``score(X)`` -> class probabilities, shape ``(n, k)``.
Score = Callable[[np.ndarray], np.ndarray]


def _target_values(score: Score, X: np.ndarray, target: np.ndarray) -> np.ndarray:
    p = np.asarray(score(X), dtype=np.float64)
    return np.asarray(p[np.arange(X.shape[0]), target], dtype=np.float64)


def coalitions(d: int, *, exact_max: int, samples: int, seed: int) -> tuple[np.ndarray, bool]:
    """Coalition masks (``m x d`` booleans, never empty nor full) and whether they are all of
    them. Sampled ones come in complementary pairs with sizes drawn from the Shapley kernel."""
    if d < 2:
        return np.zeros((0, d), dtype=bool), True
    if d <= exact_max:
        rows = []
        for size in range(1, d):
            for idx in combinations(range(d), size):
                z = np.zeros(d, dtype=bool)
                z[list(idx)] = True
                rows.append(z)
        return np.array(rows, dtype=bool), True
    rng = np.random.default_rng(seed)
    sizes = np.arange(1, d)
    weight = (d - 1) / (sizes * (d - sizes))
    weight = weight / weight.sum()
    half = max(samples // 2, d)
    drawn = rng.choice(sizes, size=half, p=weight)
    out = np.zeros((2 * half, d), dtype=bool)
    for i, s in enumerate(drawn):
        members = rng.choice(d, size=int(s), replace=False)
        out[2 * i, members] = True
        out[2 * i + 1] = ~out[2 * i]
    return out, False


def _coalition_values(
    score: Score, X: np.ndarray, target: np.ndarray, Z: np.ndarray, background: np.ndarray
) -> np.ndarray:
    """``v[i, j] = mean_b f_target(x_i on Z_j, b elsewhere)``, shape ``(n, m)``."""
    n, d = X.shape
    m, k = Z.shape[0], background.shape[0]
    out = np.empty((n, m))
    # rows per model call bounded (about 4M numbers) so memory stays small for any n, m, k
    chunk = max(1, 4_000_000 // max(1, m * k * max(d, 1)))
    for start in range(0, n, chunk):
        xs = X[start : start + chunk]
        c = xs.shape[0]
        mixed = np.where(Z[None, :, None, :], xs[:, None, None, :], background[None, None, :, :])
        flat = mixed.reshape(c * m * k, d)
        t = np.repeat(target[start : start + chunk], m * k)
        vals = _target_values(score, flat, t).reshape(c, m, k)
        out[start : start + c] = vals.mean(axis=2)
    return out


def kernel_shap(
    score: Score,
    X: np.ndarray,
    target: np.ndarray,
    background: np.ndarray,
    *,
    exact_max: int = 10,
    samples: int = 1024,
    seed: int = 0,
) -> tuple[np.ndarray, bool]:
    """Shapley values ``(n, d)`` of each row's target probability, and whether they are exact
    (every coalition enumerated) rather than a Kernel SHAP estimate."""
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    fx = _target_values(score, X, target)
    base = np.asarray(score(background), dtype=np.float64).mean(axis=0)[target]
    delta = fx - base
    if d == 1:
        return delta[:, None], True
    Z, exact = coalitions(d, exact_max=exact_max, samples=samples, seed=seed)
    V = _coalition_values(score, X, target, Z, background)  # (n, m)
    zf = Z.astype(np.float64)
    if exact:
        sizes = zf.sum(axis=1)
        w = (d - 1) / (np.array([comb(d, int(s)) for s in sizes]) * sizes * (d - sizes))
    else:
        w = np.ones(Z.shape[0])  # sizes were drawn from the kernel already
    # eliminate the last feature with the efficiency constraint: phi_d = delta - sum(phi_<d)
    A = zf[:, :-1] - zf[:, -1:]  # (m, d-1)
    Y = V.T - base[None, :] - zf[:, -1:] * delta[None, :]  # (m, n)
    AW = A * w[:, None]
    gram = A.T @ AW
    rhs = AW.T @ Y
    beta = np.linalg.lstsq(gram, rhs, rcond=None)[0].T  # (n, d-1)
    last = delta - beta.sum(axis=1)
    return np.hstack([beta, last[:, None]]), exact


def shapley_exact(
    score: Score, X: np.ndarray, target: np.ndarray, background: np.ndarray
) -> np.ndarray:
    """The Shapley formula itself, ``sum_S |S|!(d-|S|-1)!/d! (v(S+i) - v(S))`` (small ``d``
    only; the reference the regression is validated against)."""
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    allz = np.array([[(mask >> j) & 1 for j in range(d)] for mask in range(1 << d)], dtype=bool)
    V = _coalition_values(score, X, target, allz, background)  # (n, 2^d)
    phi = np.zeros((n, d))
    fact = [float(np.prod(np.arange(1, s + 1))) for s in range(d + 1)]
    for mask in range(1 << d):
        s = bin(mask).count("1")
        for i in range(d):
            if mask >> i & 1:
                continue
            wgt = fact[s] * fact[d - s - 1] / fact[d]
            phi[:, i] += wgt * (V[:, mask | (1 << i)] - V[:, mask])
    return phi


def permutation_importance(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    *,
    repeats: int = 5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean and standard deviation of the accuracy lost when one column is shuffled, and the
    baseline accuracy (Breiman 2001)."""
    rng = np.random.default_rng(seed)
    base = float(np.mean(predict(X) == y))
    d = X.shape[1]
    drops = np.zeros((repeats, d))
    for r in range(repeats):
        for j in range(d):
            Xp = X.copy()
            Xp[:, j] = X[rng.permutation(X.shape[0]), j]
            drops[r, j] = base - float(np.mean(predict(Xp) == y))
    return drops.mean(axis=0), drops.std(axis=0), base


def integrated_gradients(
    f: Callable[[np.ndarray], np.ndarray],
    grad: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    baseline: np.ndarray,
    *,
    steps: int = 32,
) -> tuple[np.ndarray, float]:
    """Integrated gradients ``(n, d)`` of a per-row scalar ``f`` (``grad`` its gradient, both
    row-wise) from ``baseline`` along the straight path (trapezoid rule), and the largest
    completeness gap ``|sum(IG) - (f(x) - f(baseline))|`` relative to ``|f(x) - f(baseline)|``
    (rows where that difference is below 1e-6 are left out of the ratio)."""
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    if n == 0:
        return np.zeros((0, d)), 0.0
    alphas = np.linspace(0.0, 1.0, steps + 1)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[0] = weights[-1] = 0.5 / steps
    diff = X - baseline[None, :]
    total = np.zeros((n, d))
    for a, w in zip(alphas, weights, strict=True):
        total += w * grad(baseline[None, :] + a * diff)
    ig = diff * total
    change = f(X) - f(np.repeat(baseline[None, :], n, axis=0))
    gap = np.abs(ig.sum(axis=1) - change)
    keep = np.abs(change) > 1e-6
    ratio = gap[keep] / np.abs(change[keep])
    return ig, float(ratio.max()) if ratio.size else 0.0
