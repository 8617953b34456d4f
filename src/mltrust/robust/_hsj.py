"""A HopSkipJump-style decision-based attack (Chen, Jordan, Wainwright 2020), untargeted.

Only the model's predicted label is used. Per row: start from the nearest differently
predicted pool point (or random noise in the domain), binary-search to the decision boundary,
then repeat: estimate the boundary normal from the signs of ``B`` random probes, take a
geometric step along it, and binary-search back to the boundary — keeping the closest
adversarial point found. Every model call is counted; the result reports queries per row.

The perturbation found is an upper bound on the minimal adversarial perturbation, so robust
accuracy from this attack is an upper bound on the true robust accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mltrust.errors import ConfigError
from mltrust.robust._attacks import domain_arrays
from mltrust.robust._models import Classifier

__all__ = ["HSJOutcome", "hop_skip_jump"]


@dataclass(frozen=True, slots=True, eq=False)
class HSJOutcome:
    X_adv: np.ndarray  # closest adversarial found (the input itself when none was found)
    perturbation: np.ndarray  # its norm per row; 0 if misclassified, inf if none found
    queries: np.ndarray  # model queries per row
    norm: str

    def robust_accuracy(self, eps: float) -> float:
        return float(np.mean(self.perturbation > eps)) if self.perturbation.size else float("nan")


def _dist(a: np.ndarray, b: np.ndarray, norm: str) -> float:
    diff = np.abs(a - b)
    return float(diff.max() if norm == "inf" else np.sqrt((diff * diff).sum()))


def hop_skip_jump(
    model: Classifier,
    X: np.ndarray,
    y: np.ndarray,
    *,
    norm: str = "2",
    iterations: int = 25,
    init_evals: int = 100,
    max_evals: int = 1000,
    max_queries: int = 20000,
    pool: np.ndarray | None = None,
    lower: np.ndarray | float | None = None,
    upper: np.ndarray | float | None = None,
    random_state: int | None = 0,
    progress: Callable[[int], None] | None = None,
) -> HSJOutcome:
    """Decision-based attack on each row; see the module docstring."""
    if norm not in ("2", "inf"):
        raise ConfigError(f"unknown norm {norm!r}; use inf or 2")
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    lo, hi = domain_arrays(d, lower, upper)
    rng = np.random.default_rng(random_state)
    yi = model.label_index(y)
    start = model.queries
    pred = model.predict_index(X)
    pool_X = X if pool is None else np.asarray(pool, dtype=np.float64)
    pool_pred = pred if pool is None else model.predict_index(pool_X)
    spent = model.queries - start
    X_adv = X.copy()
    pert = np.zeros(n)
    queries = np.full(n, spent / max(n, 1))
    for i in range(n):
        before = model.queries
        if pred[i] != yi[i]:
            pert[i] = 0.0
        else:
            adv = _attack_one(
                model,
                X[i],
                int(yi[i]),
                norm,
                iterations,
                init_evals,
                max_evals,
                max_queries,
                pool_X[pool_pred != yi[i]],
                lo,
                hi,
                rng,
            )
            if adv is None:
                pert[i] = np.inf
            else:
                X_adv[i] = adv
                pert[i] = _dist(adv, X[i], norm)
        queries[i] += model.queries - before
        if progress is not None:
            progress(1)
    return HSJOutcome(X_adv, pert, queries, norm)


def _attack_one(
    model: Classifier,
    x: np.ndarray,
    y: int,
    norm: str,
    iterations: int,
    init_evals: int,
    max_evals: int,
    max_queries: int,
    candidates: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray | None:
    d = x.size
    budget_end = model.queries + max_queries

    def is_adv(Z: np.ndarray) -> np.ndarray:
        out: np.ndarray = model.predict_index(np.atleast_2d(Z)) != y
        return out

    start = _initial(model, x, candidates, lo, hi, rng, is_adv, norm)
    if start is None:
        return None
    best = _boundary(x, start, norm, is_adv)
    best_dist = _dist(best, x, norm)
    span = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
    theta = (1.0 / d) if norm == "inf" else (1.0 / (d * np.sqrt(d)))
    for it in range(iterations):
        if model.queries >= budget_end or best_dist == 0:
            break
        delta = max(np.sqrt(d) * theta * best_dist, 1e-6 * float(span.mean()))
        evals = int(min(max_evals, init_evals * np.sqrt(it + 1)))
        if norm == "inf":
            U = rng.uniform(-1, 1, size=(evals, d))
        else:
            U = rng.normal(size=(evals, d))
        U /= np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-12)
        probes = np.clip(best + delta * U, lo, hi)
        U = (probes - best) / delta
        phi = np.where(is_adv(probes), 1.0, -1.0)
        mean = phi.mean()
        if abs(mean) < 1.0:
            phi = phi - mean
        grad = (phi[:, None] * U).mean(axis=0)
        if not np.any(grad):
            continue
        direction = np.sign(grad) if norm == "inf" else grad / np.linalg.norm(grad)
        step = best_dist / np.sqrt(it + 1)
        candidate = None
        for _ in range(12):
            trial = np.clip(best + step * direction, lo, hi)
            if is_adv(trial)[0]:
                candidate = trial
                break
            step /= 2
        if candidate is None:
            continue
        new = _boundary(x, candidate, norm, is_adv)
        new_dist = _dist(new, x, norm)
        if new_dist < best_dist:
            best, best_dist = new, new_dist
    return best


def _initial(
    model: Classifier,
    x: np.ndarray,
    candidates: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    rng: np.random.Generator,
    is_adv: Callable[[np.ndarray], np.ndarray],
    norm: str,
) -> np.ndarray | None:
    if candidates.shape[0]:
        diff = np.abs(candidates - x)
        dist = diff.max(axis=1) if norm == "inf" else np.sqrt((diff * diff).sum(axis=1))
        for j in np.argsort(dist)[:5]:
            if is_adv(candidates[j])[0]:
                c: np.ndarray = candidates[j]
                return c
    scale = np.where(np.isfinite(hi - lo), hi - lo, np.maximum(np.abs(x), 1.0))
    for k in range(1, 21):
        noise = x + rng.uniform(-1, 1, size=(5, x.size)) * scale * (k / 4)
        noise = np.clip(noise, lo, hi)
        hits = is_adv(noise)
        if hits.any():
            out: np.ndarray = noise[int(np.argmax(hits))]
            return out
    return None


def _boundary(
    x: np.ndarray,
    adv: np.ndarray,
    norm: str,
    is_adv: Callable[[np.ndarray], np.ndarray],
    steps: int = 14,
) -> np.ndarray:
    """Binary search between ``x`` (clean side) and ``adv`` for the closest adversarial point."""
    if norm == "inf":
        radius_hi = float(np.abs(adv - x).max())
        radius_lo = 0.0
        best = adv
        for _ in range(steps):
            mid = (radius_lo + radius_hi) / 2
            trial = np.clip(adv, x - mid, x + mid)
            if is_adv(trial)[0]:
                radius_hi, best = mid, trial
            else:
                radius_lo = mid
        return best
    t_lo, t_hi = 0.0, 1.0
    for _ in range(steps):
        mid = (t_lo + t_hi) / 2
        if is_adv(x + mid * (adv - x))[0]:
            t_hi = mid
        else:
            t_lo = mid
    out: np.ndarray = x + t_hi * (adv - x)
    return out
