"""Gradient attacks (FGSM, PGD under L∞ and L2) and the exact L∞ optimum for linear models.

All attacks are untargeted, clipped to the feature domain ``[lower, upper]`` and to the ε-ball
around the input; success is always judged by the model's real prediction.

Exact method for an argmax-linear model (scores ``W x + b``): a point ``x`` of class ``y`` can be
pushed to a wrong prediction inside ``B = ball_∞(x, ε) ∩ [lower, upper]`` iff there is a single
other class ``j`` and a point ``x'`` in ``B`` with ``score_j(x') >= score_y(x')`` — the adversary
needs only one class to catch up, and for a fixed ``j`` the condition is linear in ``x'``. So
``x`` is robust iff for every ``j != y``::

    min_{x' in B} (w_y - w_j)·x' + (b_y - b_j)  >  0

and each minimum separates per coordinate (``B`` is a box): take ``max(lower, x-ε)`` where
``w_y - w_j`` is positive and ``min(upper, x+ε)`` where it is negative. This is the exact
optimum, not an estimate. Ties: a minimum of exactly 0 means the adversary can reach a tie,
which we count as *not* robust (conservative; scikit-learn breaks ties by class order, so a
tie may or may not flip the label).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mltrust.errors import ConfigError
from mltrust.robust._models import Classifier, LinearModel

__all__ = [
    "PGD_LOSSES",
    "AttackOutcome",
    "apgd",
    "domain_arrays",
    "exact_linear",
    "fgsm",
    "linear_min_margins",
    "minimal_linf_linear",
    "pgd",
]

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True, eq=False)
class AttackOutcome:
    """Adversarial inputs and, per row, whether the model now errs (``fooled``)."""

    X_adv: np.ndarray
    fooled: np.ndarray
    norm: str
    eps: float

    @property
    def robust_accuracy(self) -> float:
        return float(1.0 - self.fooled.mean()) if self.fooled.size else float("nan")


def domain_arrays(
    d: int, lower: np.ndarray | float | None, upper: np.ndarray | float | None
) -> tuple[np.ndarray, np.ndarray]:
    lo = np.full(d, -np.inf) if lower is None else np.broadcast_to(np.asarray(lower, float), (d,))
    hi = np.full(d, np.inf) if upper is None else np.broadcast_to(np.asarray(upper, float), (d,))
    if np.any(lo > hi):
        raise ConfigError("feature domain: lower bound above upper bound")
    return np.array(lo), np.array(hi)


def _loss_grad(
    model: Classifier, X: np.ndarray, yi: np.ndarray, loss: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row loss (higher = closer to fooled) and its gradient with respect to ``X``."""
    Z = model.logits(X)
    n = Z.shape[0]
    rows = np.arange(n)
    G = np.zeros_like(Z)
    if loss == "ce":
        Zs = Z - Z.max(axis=1, keepdims=True)
        P = np.exp(Zs)
        P /= P.sum(axis=1, keepdims=True)
        value = -np.log(np.maximum(P[rows, yi], 1e-300))
        G = P
        G[rows, yi] -= 1.0
    elif loss == "margin":
        other = Z.copy()
        other[rows, yi] = -np.inf
        j = np.argmax(other, axis=1)
        value = Z[rows, j] - Z[rows, yi]
        G[rows, j] = 1.0
        G[rows, yi] -= 1.0
    else:
        raise ConfigError(f"unknown attack loss {loss!r}")
    return value, model.logits_vjp(X, G)


def _project(
    Xa: np.ndarray, X: np.ndarray, eps: float, norm: str, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    delta = Xa - X
    if norm == "inf":
        delta = np.clip(delta, -eps, eps)
    else:
        nrm = np.linalg.norm(delta, axis=1, keepdims=True)
        delta = delta * np.minimum(1.0, eps / np.maximum(nrm, 1e-12))
    # clipping to a box that contains X never moves a coordinate away from X: stays in the ball
    out: np.ndarray = np.clip(X + delta, lo, hi)
    return out


def _check_inputs(model: Classifier, X: np.ndarray, y: np.ndarray, eps: float, norm: str) -> None:
    if not model.differentiable:
        raise ConfigError(
            f"{model.kind} model has no gradients",
            hint="use --attack hsj (black box) or --attack tree for tree models",
        )
    if norm not in ("inf", "2"):
        raise ConfigError(f"unknown norm {norm!r}; use inf or 2")
    if not (eps >= 0 and np.isfinite(eps)):
        raise ConfigError(f"ε must be a finite non-negative number, not {eps}")
    if X.shape[0] != y.shape[0]:
        raise ConfigError("X and y have different numbers of rows")


def fgsm(
    model: Classifier,
    X: np.ndarray,
    y: np.ndarray,
    eps: float,
    *,
    norm: str = "inf",
    lower: np.ndarray | float | None = None,
    upper: np.ndarray | float | None = None,
) -> AttackOutcome:
    """Fast gradient (sign) method: one step of size ε along the cross-entropy gradient."""
    X = np.asarray(X, dtype=np.float64)
    _check_inputs(model, X, y, eps, norm)
    lo, hi = domain_arrays(X.shape[1], lower, upper)
    yi = model.label_index(y)
    clean_ok = model.predict_index(X) == yi
    _, g = _loss_grad(model, X, np.maximum(yi, 0), "ce")
    if norm == "inf":
        step = np.sign(g)
    else:
        step = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    Xa = _project(X + eps * step, X, eps, norm, lo, hi)
    fooled = ~clean_ok | (model.predict_index(Xa) != yi)
    Xa = np.where(clean_ok[:, None], Xa, X)
    return AttackOutcome(Xa, fooled, norm, eps)


def _random_start(
    X0: np.ndarray, eps: float, norm: str, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    if norm == "inf":
        return _project(X0 + rng.uniform(-eps, eps, X0.shape), X0, eps, norm, lo, hi)
    u = rng.normal(size=X0.shape)
    u *= (eps * rng.uniform(size=(X0.shape[0], 1)) ** (1 / X0.shape[1])) / np.maximum(
        np.linalg.norm(u, axis=1, keepdims=True), 1e-12
    )
    return _project(X0 + u, X0, eps, norm, lo, hi)


def _direction(g: np.ndarray, norm: str) -> np.ndarray:
    if norm == "inf":
        sign: np.ndarray = np.sign(g)
        return sign
    out: np.ndarray = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    return out


PGD_LOSSES = ("auto", "ce", "margin")


def pgd(
    model: Classifier,
    X: np.ndarray,
    y: np.ndarray,
    eps: float,
    *,
    norm: str = "inf",
    steps: int = 100,
    restarts: int = 2,
    step_size: float | None = None,
    loss: str = "auto",
    lower: np.ndarray | float | None = None,
    upper: np.ndarray | float | None = None,
    random_state: int | None = 0,
    progress: Progress | None = None,
) -> AttackOutcome:
    """Projected gradient descent with random restarts (the first run starts at ``x``).

    The margin (Carlini–Wagner-style) loss ``max_{j≠y} z_j - z_y`` drives the run straight at
    the decision boundary; cross-entropy (``ce``) follows all classes at once, which is
    stronger where the scores are only a surrogate of the decision (one-vs-one SVC votes) and
    on adversarially trained networks whose margin gradient is flat. Neither dominates, so
    ``loss="auto"`` (the default) is an ensemble: every restart runs *both* losses
    (cross-entropy, then margin; restart 0 from ``x``, the others from random points of the
    ball), ``2 × restarts`` runs in all. The step size decays from ``2.5 ε / √steps`` to a
    tenth of it so that the last iterations refine the optimum. Each row stops as soon as it
    is fooled; a row counts as fooled if any run fools it.
    """
    X = np.asarray(X, dtype=np.float64)
    _check_inputs(model, X, y, eps, norm)
    if steps < 1 or restarts < 1:
        raise ConfigError("PGD needs at least one step and one restart")
    if loss not in PGD_LOSSES:
        raise ConfigError(f"unknown PGD loss {loss!r}; use one of {', '.join(PGD_LOSSES)}")
    lo, hi = domain_arrays(X.shape[1], lower, upper)
    rng = np.random.default_rng(random_state)
    yi = model.label_index(y)
    safe_y = np.maximum(yi, 0)
    fooled = (model.predict_index(X) != yi) | (yi < 0)
    best = X.copy()
    if eps == 0:
        return AttackOutcome(best, fooled, norm, eps)
    base = step_size if step_size is not None else 2.5 * eps / max(steps, 1) ** 0.5
    losses = ("ce", "margin") if loss == "auto" else (loss,)
    for r in range(restarts):
        for run_loss in losses:
            active = np.flatnonzero(~fooled)
            if active.size == 0:
                break
            X0 = X[active]
            Xa = X0.copy() if r == 0 else _random_start(X0, eps, norm, lo, hi, rng)
            live = np.ones(active.size, dtype=bool)
            for t in range(steps):
                idx = np.flatnonzero(live)
                if idx.size == 0:
                    break
                alpha = base * (1.0 - 0.9 * t / max(steps - 1, 1))
                _, g = _loss_grad(model, Xa[idx], safe_y[active[idx]], run_loss)
                move = alpha * _direction(g, norm)
                Xa[idx] = _project(Xa[idx] + move, X0[idx], eps, norm, lo, hi)
                hit = model.predict_index(Xa[idx]) != safe_y[active[idx]]
                if hit.any():
                    done = idx[hit]
                    best[active[done]] = Xa[done]
                    fooled[active[done]] = True
                    live[done] = False
            if progress is not None:
                progress(steps)
    return AttackOutcome(best, fooled, norm, eps)


def apgd(
    model: Classifier,
    X: np.ndarray,
    y: np.ndarray,
    eps: float,
    *,
    norm: str = "inf",
    steps: int = 100,
    restarts: int = 1,
    loss: str = "ce",
    lower: np.ndarray | float | None = None,
    upper: np.ndarray | float | None = None,
    random_state: int | None = 0,
) -> AttackOutcome:
    """AutoPGD-style attack (after Croce & Hein 2020): step-size control instead of a schedule.

    The step starts at ``2ε`` and moves with momentum 0.75; at checkpoints (at 22%, 41%, 56%,
    ... of the budget, as in the paper) a row's step is halved when fewer than 75% of the
    steps since the last checkpoint raised its loss, or when neither its step nor its best
    loss changed, and the row then restarts from its best point. Restart 0 starts at ``x``,
    later restarts at random points of the ball. Our own reading of the published algorithm,
    not a port of any implementation.
    """
    X = np.asarray(X, dtype=np.float64)
    _check_inputs(model, X, y, eps, norm)
    if loss not in ("ce", "margin"):
        raise ConfigError("AutoPGD loss must be ce or margin")
    lo, hi = domain_arrays(X.shape[1], lower, upper)
    rng = np.random.default_rng(random_state)
    yi = model.label_index(y)
    safe_y = np.maximum(yi, 0)
    fooled = (model.predict_index(X) != yi) | (yi < 0)
    best_adv = X.copy()
    if eps == 0 or steps < 2:
        return AttackOutcome(best_adv, fooled, norm, eps)
    # checkpoints p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), p_0 = 0, p_1 = 0.22
    marks = [0.0, 0.22]
    while marks[-1] < 1:
        marks.append(marks[-1] + max(marks[-1] - marks[-2] - 0.03, 0.06))
    checks = sorted({int(np.ceil(p * steps)) for p in marks[1:] if p < 1})
    for r in range(restarts):
        active = np.flatnonzero(~fooled)
        if active.size == 0:
            break
        X0 = X[active]
        yy = safe_y[active]
        k = active.size
        x = X0.copy() if r == 0 else _random_start(X0, eps, norm, lo, hi, rng)
        eta = np.full(k, 2.0 * eps)
        f, g = _loss_grad(model, x, yy, loss)
        x_best, f_best = x.copy(), f.copy()
        x_prev = x.copy()
        ups = np.zeros(k)
        last_check, eta_at_check, fbest_at_check = 0, eta.copy(), f_best.copy()
        done = np.zeros(k, dtype=bool)
        for t in range(steps):
            z = _project(x + eta[:, None] * _direction(g, norm), X0, eps, norm, lo, hi)
            if t == 0:
                x_new = z
            else:
                x_new = _project(x + 0.75 * (z - x) + 0.25 * (x - x_prev), X0, eps, norm, lo, hi)
            x_prev, x = x, x_new
            f_new, g = _loss_grad(model, x, yy, loss)
            ups += f_new > f
            improved = f_new > f_best
            x_best[improved], f_best[improved] = x[improved], f_new[improved]
            f = f_new
            hit = (model.predict_index(x) != yy) & ~done
            if hit.any():
                best_adv[active[hit]] = x[hit]
                fooled[active[hit]] = True
                done |= hit
            if done.all():
                break
            if t + 1 in checks:
                span = t + 1 - last_check
                halve = (ups < 0.75 * span) | ((eta == eta_at_check) & (f_best == fbest_at_check))
                eta_at_check, fbest_at_check = eta.copy(), f_best.copy()
                eta = np.where(halve, eta / 2.0, eta)
                x = np.where(halve[:, None], x_best, x)
                x_prev = x.copy()
                f, g = _loss_grad(model, x, yy, loss)
                ups[:] = 0
                last_check = t + 1
    return AttackOutcome(best_adv, fooled, norm, eps)


def linear_min_margins(
    model: LinearModel,
    X: np.ndarray,
    yi: np.ndarray,
    eps: float,
    lo: np.ndarray,
    hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the exact worst-case margin ``min_j min_{x'∈B} (s_y - s_j)(x')`` and its ``j``."""
    W, b = model.W, model.b
    n = X.shape[0]
    blo = np.maximum(lo, X - eps)
    bhi = np.minimum(hi, X + eps)
    out = np.full(n, np.inf)
    arg = np.full(n, -1)
    for j in range(W.shape[0]):
        D = W[yi] - W[j]  # (n, d)
        term = np.where(D > 0, D * blo, np.where(D < 0, D * bhi, 0.0))
        m = term.sum(axis=1) + b[yi] - b[j]
        m[yi == j] = np.inf
        better = m < out
        out[better] = m[better]
        arg[better] = j
    return out, arg


def exact_linear(
    model: Classifier,
    X: np.ndarray,
    y: np.ndarray,
    eps: float,
    *,
    lower: np.ndarray | float | None = None,
    upper: np.ndarray | float | None = None,
) -> AttackOutcome:
    """Exact worst case under L∞ for an argmax-linear model; ``X_adv`` holds the optimal points."""
    if not isinstance(model, LinearModel):
        raise ConfigError(
            f"the exact attack needs a linear model, not {model.kind}",
            hint="use --attack pgd, --attack tree or --attack hsj",
        )
    X = np.asarray(X, dtype=np.float64)
    lo, hi = domain_arrays(X.shape[1], lower, upper)
    yi = model.label_index(y)
    unknown = yi < 0
    safe_y = np.maximum(yi, 0)
    margins, worst = linear_min_margins(model, X, safe_y, eps, lo, hi)
    fooled = (margins <= 0) | unknown
    blo, bhi = np.maximum(lo, X - eps), np.minimum(hi, X + eps)
    D = model.W[safe_y] - model.W[np.maximum(worst, 0)]
    Xa = np.where(D > 0, blo, np.where(D < 0, bhi, X))
    Xa = np.where(fooled[:, None], Xa, X)
    return AttackOutcome(Xa, fooled, "inf", eps)


def minimal_linf_linear(
    model: LinearModel,
    X: np.ndarray,
    y: np.ndarray,
    *,
    lower: np.ndarray | float | None = None,
    upper: np.ndarray | float | None = None,
    tol: float = 1e-6,
) -> np.ndarray:
    """Exact minimal L∞ perturbation per row (bisection on the exact margin; ``inf`` if none).

    The worst-case margin is non-increasing in ε, so bisection converges to the smallest ε at
    which the exact attack succeeds (to ``tol``). Misclassified rows get 0.
    """
    X = np.asarray(X, dtype=np.float64)
    lo, hi = domain_arrays(X.shape[1], lower, upper)
    yi = model.label_index(y)
    safe_y = np.maximum(yi, 0)
    span = np.where(np.isfinite(hi - lo), hi - lo, np.nan)
    top = float(np.nanmax(span)) if np.any(np.isfinite(span)) else 0.0
    top = max(top, float(np.abs(X).max(initial=1.0)) * 4 + 1.0)
    m_top, _ = linear_min_margins(model, X, safe_y, top, lo, hi)
    low = np.zeros(X.shape[0])
    high = np.full(X.shape[0], top)
    m0, _ = linear_min_margins(model, X, safe_y, 0.0, lo, hi)
    for _ in range(int(np.ceil(np.log2(top / tol))) + 1):
        mid = (low + high) / 2
        m, _ = _margins_at(model, X, safe_y, mid, lo, hi)
        bad = m <= 0
        high = np.where(bad, mid, high)
        low = np.where(bad, low, mid)
    out = np.where(m_top > 0, np.inf, high)
    out = np.where((m0 <= 0) | (yi < 0), 0.0, out)
    return out


def _margins_at(
    model: LinearModel,
    X: np.ndarray,
    yi: np.ndarray,
    eps: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    e = eps[:, None]
    blo = np.maximum(lo, X - e)
    bhi = np.minimum(hi, X + e)
    W, b = model.W, model.b
    out = np.full(X.shape[0], np.inf)
    arg = np.full(X.shape[0], -1)
    for j in range(W.shape[0]):
        D = W[yi] - W[j]
        m = np.where(D > 0, D * blo, np.where(D < 0, D * bhi, 0.0)).sum(1) + b[yi] - b[j]
        m[yi == j] = np.inf
        better = m < out
        out[better] = m[better]
        arg[better] = j
    return out, arg
