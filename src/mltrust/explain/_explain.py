"""Explaining a classifier on a data set, and checking the explanation.

:func:`explain` computes global feature importance three ways — Shapley values (exact or
Kernel SHAP), permutation importance and, for models with gradients, integrated gradients —
and runs four sanity checks whose figures and verdicts go into the report and the signed
statement:

* **randomisation** (Adebayo et al. 2018): the model is randomised — a torch module's weights
  redrawn, a scikit-learn estimator cloned and refit on permuted labels — and the Shapley
  importance (mean absolute attribution, not normalised) recomputed. The attributions changed
  when the ranking moved (weighted Kendall tau below ``randomisation_max_similarity``) *or* their
  size moved (relative L1 change at least ``randomisation_min_change``): a linear model refit on
  permuted labels keeps ranking features by their spread but its attributions collapse. When
  neither moved, the attributions do not depend on what the model learnt: fail.
* **stability**: Gaussian noise of ``noise`` × each feature's standard deviation is added to the
  explained rows; the weighted Kendall tau between the importance before and after must reach
  ``stability_min``. The mean cosine similarity of the per-row attributions is reported too.
* **faithfulness** (deletion/insertion curves, Petsiuk et al. 2018): features are removed
  (set to the background mean) or inserted in the order of their attribution; a faithful order
  gives a lower deletion area and a higher insertion area than random orders. Pass when
  ``insertion - deletion`` beats the random orders' figure.
* **agreement**: the weighted Kendall tau between every pair of methods must reach
  ``agreement_min``.

Weighted Kendall tau (Vigna 2015, ``scipy.stats.weightedtau``) is the rank correlation used
throughout: it weighs agreement among the top-ranked features more than among the long tail of
near-zero ones, whose order is noise for any method. Spearman's rho is reported beside it.

The model is whatever the safe loader returned; this module never loads files.
"""

from __future__ import annotations

import copy
import enum
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mltrust.errors import ConfigError, InputError
from mltrust.explain._attribution import (
    integrated_gradients,
    kernel_shap,
    permutation_importance,
)

__all__ = [
    "Check",
    "CheckStatus",
    "ExplainConfig",
    "Explanation",
    "explain",
    "randomise",
    "rank_similarity",
]


@dataclass(frozen=True, slots=True)
class ExplainConfig:
    """Every bound and threshold of :func:`explain`, validated once."""

    #: rows explained (a seeded random subset when the data set is larger)
    samples: int = 64
    #: background rows that stand in for "feature absent"
    background: int = 32
    #: up to this many features every coalition is enumerated (exact Shapley values)
    exact_max_features: int = 10
    #: coalitions sampled per row above that
    coalitions: int = 1024
    #: shuffles per feature for permutation importance
    repeats: int = 5
    #: steps of the integrated-gradients path
    ig_steps: int = 32
    #: input noise for the stability check, as a fraction of each feature's std
    noise: float = 0.05
    #: randomised models the randomisation check averages over
    randomisations: int = 3
    #: random orders the faithfulness check compares against
    random_orders: int = 5
    seed: int = 0
    max_features: int = 256
    randomisation_max_similarity: float = 0.5
    #: ... or the attributions' relative L1 change reaches this
    randomisation_min_change: float = 0.5
    stability_min: float = 0.7
    agreement_min: float = 0.5

    def __post_init__(self) -> None:
        for name in (
            "samples",
            "background",
            "coalitions",
            "repeats",
            "ig_steps",
            "randomisations",
            "random_orders",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"explain: {name} must be at least 1")
        if not 1 <= self.exact_max_features <= 14:
            raise ConfigError("explain: exact_max_features must be 1..14 (2^d coalitions)")
        if not 0 < self.randomisation_min_change <= 2:
            raise ConfigError("explain: randomisation_min_change must be in (0, 2]")
        if not 0 < self.noise <= 1:
            raise ConfigError("explain: noise must be in (0, 1]")
        for name in ("randomisation_max_similarity", "stability_min", "agreement_min"):
            if not -1 <= getattr(self, name) <= 1:
                raise ConfigError(f"explain: {name} must be in [-1, 1]")


class CheckStatus(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    #: could not run (no gradients, one method only); never counted as a pass
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
    figures: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "passed": self.status is CheckStatus.PASS,
            "detail": self.detail,
            "figures": dict(self.figures),
        }


@dataclass(frozen=True, slots=True, eq=False)
class Explanation:
    """Global importances per method (each normalised to sum 1), the checks, and the curves."""

    feature_names: tuple[str, ...]
    model_kind: str
    rows: int
    background: int
    #: method -> normalised global importance (length d)
    methods: Mapping[str, np.ndarray]
    #: the method behind ``features[].importance``
    primary: str
    shap_exact: bool
    checks: tuple[Check, ...]
    #: "deletion"/"insertion" (and "random_…") -> mean curve over rows, length d + 1
    curves: Mapping[str, np.ndarray]
    notes: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def importance(self) -> np.ndarray:
        return self.methods[self.primary]

    @property
    def passed(self) -> bool:
        return all(c.status is CheckStatus.PASS for c in self.checks)

    def features(self) -> list[dict[str, Any]]:
        """``{name, importance, <method>: value}`` per feature, most important first."""
        order = np.argsort(-self.importance, kind="stable")
        out = []
        for j in order:
            row: dict[str, Any] = {
                "name": self.feature_names[j],
                "importance": round(float(self.importance[j]), 6),
            }
            for m, values in self.methods.items():
                row[m] = round(float(values[j]), 6)
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": {"kind": self.model_kind},
            "rows": self.rows,
            "background": self.background,
            "primary": self.primary,
            "methods": sorted(self.methods),
            "shap_exact": self.shap_exact,
            "features": self.features(),
            "checks": [c.to_dict() for c in self.checks],
            "passed": self.passed,
            "curves": {k: [round(float(v), 6) for v in c] for k, c in self.curves.items()},
            "details": dict(self.details),
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
        }


def rank_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Weighted Kendall tau of two importance vectors (top ranks weigh most), in [-1, 1].

    Two identical vectors give 1; when one of them is constant (no ranking at all) and the
    other is not, 0; both constant, 1.
    """
    from scipy.stats import weightedtau

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ca, cb = np.ptp(a) < 1e-12, np.ptp(b) < 1e-12
    if ca or cb:
        return 1.0 if ca and cb else 0.0
    tau = float(weightedtau(a, b).statistic)
    return tau if np.isfinite(tau) else 0.0


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(a) < 1e-12 or np.ptp(b) < 1e-12:
        return 0.0
    rho = float(spearmanr(a, b).statistic)
    return rho if np.isfinite(rho) else 0.0


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.maximum(np.asarray(v, dtype=np.float64), 0.0)
    s = v.sum()
    return v / s if s > 0 else v


class _Model:
    """What the methods need from a model: probabilities, predictions, maybe gradients."""

    def __init__(self, model: Any) -> None:
        from mltrust.robust import adapt

        self.model = model
        self.adapter = adapt(model)
        self.kind = type(model).__name__
        self.has_proba = callable(getattr(model, "predict_proba", None))

    def score(self, X: np.ndarray) -> np.ndarray:
        if self.has_proba:
            return np.asarray(self.model.predict_proba(X), dtype=np.float64)
        return np.asarray(self.adapter.proba(X), dtype=np.float64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.adapter.predict(X))

    @property
    def differentiable(self) -> bool:
        return bool(self.adapter.differentiable)

    def log_prob(self, target: np.ndarray) -> tuple[Callable[..., np.ndarray], ...]:
        """Row-wise ``log p_target(x)`` and its gradient, from the adapter's logits."""
        a = self.adapter

        def f(X: np.ndarray) -> np.ndarray:
            z = a.logits(X)
            z = z - z.max(axis=1, keepdims=True)
            lse = np.log(np.exp(z).sum(axis=1))
            return np.asarray(z[np.arange(X.shape[0]), target] - lse)

        def grad(X: np.ndarray) -> np.ndarray:
            z = a.logits(X)
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            G = -p
            G[np.arange(X.shape[0]), target] += 1.0
            return np.asarray(a.logits_vjp(X, G))

        return f, grad


def randomise(model: Any, X: np.ndarray, y: np.ndarray, seed: int) -> tuple[Any, str]:
    """A copy of ``model`` that learnt nothing: a torch module with its weights redrawn, else
    a scikit-learn clone refit on permuted labels."""
    rng = np.random.default_rng(seed)
    torch = sys.modules.get("torch")  # a torch module exists only once torch is imported
    if torch is not None and isinstance(model, torch.nn.Module):
        twin = copy.deepcopy(model)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in twin.parameters():
                std = float(p.detach().float().std()) if p.numel() > 1 else 0.1
                p.copy_(torch.randn(p.shape, generator=gen) * (std or 0.1))
        return twin, "torch parameters redrawn (normal, same std per tensor)"
    from sklearn.base import clone

    try:
        twin = clone(model)
    except (TypeError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot randomise {type(model).__name__}: {exc}") from None
    try:
        twin.fit(X, y[rng.permutation(len(y))])
    except (ValueError, TypeError, ArithmeticError, RuntimeError) as exc:  # its own validation
        raise ConfigError(
            f"cannot refit {type(model).__name__} on permuted labels for the randomisation "
            f"check: {type(exc).__name__}: {exc}"
        ) from None
    return twin, "scikit-learn clone refit on permuted labels"


def _curves(
    score: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    target: np.ndarray,
    baseline: np.ndarray,
    orders: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean deletion and insertion curves (length d + 1) for per-row feature orders."""
    n, d = X.shape
    dele = np.empty((d + 1, n, d))
    ins = np.empty((d + 1, n, d))
    rows = np.arange(n)
    for t in range(d + 1):
        mask = np.zeros((n, d), dtype=bool)
        if t:
            mask[rows[:, None], orders[:, :t]] = True
        dele[t] = np.where(mask, baseline[None, :], X)
        ins[t] = np.where(mask, X, baseline[None, :])
    tt = np.tile(target, d + 1)
    fd = np.asarray(score(dele.reshape(-1, d)))[np.arange(tt.size), tt].reshape(d + 1, n)
    fi = np.asarray(score(ins.reshape(-1, d)))[np.arange(tt.size), tt].reshape(d + 1, n)
    return fd.mean(axis=1), fi.mean(axis=1)


def _auc(curve: np.ndarray) -> float:
    """Area under a curve sampled at 0..d features, on a [0, 1] x-axis."""
    return float(np.trapezoid(curve, dx=1.0 / max(len(curve) - 1, 1)))


def explain(
    model: Any,
    X: np.ndarray,
    y: np.ndarray | None,
    feature_names: Sequence[str],
    config: ExplainConfig | None = None,
) -> Explanation:
    """Attributions of ``model`` on ``X`` (labels ``y``, or the model's own predictions when
    ``None``) and the four sanity checks."""
    cfg = config or ExplainConfig()
    started = time.perf_counter()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise InputError("explain needs a table of at least 2 rows and 1 feature")
    n_all, d = X.shape
    if d > cfg.max_features:
        raise ConfigError(f"{d} features; explain handles at most {cfg.max_features}")
    if len(feature_names) != d:
        raise InputError(f"{len(feature_names)} feature names for {d} columns")
    if not np.all(np.isfinite(X)):
        raise InputError("features contain NaN or infinite values")
    m = _Model(model)
    expected = getattr(model, "n_features_in_", None)
    if isinstance(expected, int) and expected != d:
        raise InputError(f"the model takes {expected} features; the data has {d}")
    try:
        probe = m.score(X[:2])
    except (ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise InputError(
            f"the model does not accept this data: {type(exc).__name__}: {exc}"
        ) from None
    if probe.ndim != 2 or probe.shape[0] != 2 or not np.all(np.isfinite(probe)):
        raise InputError("the model's class scores are not a finite (rows × classes) table")
    notes: list[str] = []
    labels = np.asarray(y) if y is not None else m.predict(X)
    if y is None:
        notes.append("no labels: permutation importance measures agreement with the model")
    rng = np.random.default_rng(cfg.seed)
    idx = rng.permutation(n_all)
    Xe = X[idx[: cfg.samples]]
    B = X[idx[-cfg.background :]] if n_all > cfg.samples else X[idx[: cfg.background]]
    baseline = B.mean(axis=0)
    target = np.argmax(m.score(Xe), axis=1)

    def shap_of(
        score: Callable[[np.ndarray], np.ndarray], rows: np.ndarray
    ) -> tuple[np.ndarray, bool]:
        return kernel_shap(
            score,
            rows,
            target,
            B,
            exact_max=cfg.exact_max_features,
            samples=cfg.coalitions,
            seed=cfg.seed,
        )

    local, exact = shap_of(m.score, Xe)
    methods: dict[str, np.ndarray] = {"shap": _normalise(np.abs(local).mean(axis=0))}
    # permutation importance on every labelled row (it needs many rows to be stable)
    keep = idx[: max(cfg.samples, 512)]
    Xp, yp = X[keep], labels[keep]
    perm_mean, perm_std, base_acc = permutation_importance(
        m.predict, Xp, yp, repeats=cfg.repeats, seed=cfg.seed
    )
    methods["permutation"] = _normalise(perm_mean)
    details: dict[str, Any] = {
        "baseline_accuracy": round(base_acc, 6),
        "permutation_std": [round(float(s), 6) for s in perm_std],
        "explained_class_share": {
            str(m.adapter.classes_[c]): int(np.sum(target == c)) for c in np.unique(target)
        },
    }
    ig_local: np.ndarray | None = None
    if m.differentiable:
        f, grad = m.log_prob(target)
        ig_local, gap = integrated_gradients(f, grad, Xe, baseline, steps=cfg.ig_steps)
        methods["integrated_gradients"] = _normalise(np.abs(ig_local).mean(axis=0))
        details["ig_completeness_gap"] = round(gap, 6)
    else:
        notes.append(f"{m.adapter.kind} model has no gradients: integrated gradients not run")

    checks: list[Check] = []
    # 1. model randomisation (several draws: one random model can rank like the real one
    # by chance when there are few features)
    raw = np.abs(local).mean(axis=0)
    taus, rhos, changes = [], [], []
    how = ""
    for r in range(cfg.randomisations):
        twin, how = randomise(model, X, labels, cfg.seed + 1 + r)
        local_r, _ = shap_of(_Model(twin).score, Xe)
        raw_r = np.abs(local_r).mean(axis=0)
        taus.append(rank_similarity(raw, raw_r))
        rhos.append(_spearman(raw, raw_r))
        changes.append(float(np.abs(raw - raw_r).sum() / max(raw.sum(), 1e-12)))
    sim, change = float(np.mean(taus)), float(np.mean(changes))
    changed = sim < cfg.randomisation_max_similarity or change >= cfg.randomisation_min_change
    checks.append(
        Check(
            "randomisation",
            CheckStatus.PASS if changed else CheckStatus.FAIL,
            f"{how} ({cfg.randomisations}×): ranking similarity {sim:.3f} "
            f"(changed below {cfg.randomisation_max_similarity}), attribution change "
            f"{change:.3f} (changed at {cfg.randomisation_min_change})",
            {
                "method": how,
                "runs": cfg.randomisations,
                "weighted_tau": round(sim, 6),
                "weighted_tau_runs": [round(t, 6) for t in taus],
                "spearman": round(float(np.mean(rhos)), 6),
                "relative_change": round(change, 6),
                "threshold": cfg.randomisation_max_similarity,
                "min_change": cfg.randomisation_min_change,
            },
        )
    )
    # 2. stability under input noise
    noise = rng.normal(0.0, 1.0, Xe.shape) * (cfg.noise * X.std(axis=0))[None, :]
    local_n, _ = shap_of(m.score, Xe + noise)
    noisy_imp = _normalise(np.abs(local_n).mean(axis=0))
    tau = rank_similarity(methods["shap"], noisy_imp)
    num = (local * local_n).sum(axis=1)
    den = np.linalg.norm(local, axis=1) * np.linalg.norm(local_n, axis=1)
    cos = float(np.mean(np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)))
    checks.append(
        Check(
            "stability",
            CheckStatus.PASS if tau >= cfg.stability_min else CheckStatus.FAIL,
            f"noise {cfg.noise:g}×std: ranking similarity {tau:.3f} "
            f"(needs ≥ {cfg.stability_min}), per-row cosine {cos:.3f}",
            {
                "noise": cfg.noise,
                "weighted_tau": round(tau, 6),
                "spearman": round(_spearman(methods["shap"], noisy_imp), 6),
                "mean_cosine": round(cos, 6),
                "threshold": cfg.stability_min,
            },
        )
    )
    # 3. faithfulness: deletion / insertion
    order = np.argsort(-np.abs(local), axis=1, kind="stable")
    del_c, ins_c = _curves(m.score, Xe, target, baseline, order)
    rdel, rins = np.zeros(d + 1), np.zeros(d + 1)
    for _ in range(cfg.random_orders):
        ro = np.argsort(rng.random((Xe.shape[0], d)), axis=1)
        a, b = _curves(m.score, Xe, target, baseline, ro)
        rdel += a / cfg.random_orders
        rins += b / cfg.random_orders
    ours = _auc(ins_c) - _auc(del_c)
    rand = _auc(rins) - _auc(rdel)
    checks.append(
        Check(
            "faithfulness",
            CheckStatus.PASS if ours > rand else CheckStatus.FAIL,
            f"insertion − deletion AUC {ours:.3f} vs {rand:.3f} for random orders",
            {
                "deletion_auc": round(_auc(del_c), 6),
                "insertion_auc": round(_auc(ins_c), 6),
                "random_deletion_auc": round(_auc(rdel), 6),
                "random_insertion_auc": round(_auc(rins), 6),
                "score": round(ours, 6),
                "random_score": round(rand, 6),
            },
        )
    )
    # 4. agreement between methods
    names = sorted(methods)
    pairs = {
        f"{a}~{b}": round(rank_similarity(methods[a], methods[b]), 6)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }
    low = min(pairs.values())
    checks.append(
        Check(
            "agreement",
            CheckStatus.PASS if low >= cfg.agreement_min else CheckStatus.FAIL,
            f"lowest ranking similarity between methods {low:.3f} (needs ≥ {cfg.agreement_min})",
            {"weighted_tau": pairs, "min": low, "threshold": cfg.agreement_min},
        )
    )
    return Explanation(
        feature_names=tuple(str(n) for n in feature_names),
        model_kind=m.kind,
        rows=int(Xe.shape[0]),
        background=int(B.shape[0]),
        methods=methods,
        primary="shap",
        shap_exact=exact,
        checks=tuple(checks),
        curves={
            "deletion": del_c,
            "insertion": ins_c,
            "random_deletion": rdel,
            "random_insertion": rins,
        },
        notes=tuple(notes),
        details=details,
        seconds=time.perf_counter() - started,
    )
