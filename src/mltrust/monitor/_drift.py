"""Data drift between a reference and a current sample.

Per feature: a two-sample test — Kolmogorov–Smirnov (default) or Cramér–von Mises for numeric
features, χ² on the contingency table for categorical ones — with p-values corrected across
features (Bonferroni or Benjamini–Hochberg), plus two effect sizes reported beside them: the
population stability index (PSI, over ten reference-quantile bins; ≥ 0.2 is the conventional
"significant shift") and the Wasserstein-1 distance divided by the reference standard deviation.

Multivariate: the maximum mean discrepancy with an RBF kernel (median-heuristic bandwidth on
standardised features) and a permutation test on a random subsample (``max_samples`` per side:
quadratic cost, so large inputs are subsampled), or Gretton's linear-time statistic with its
normal null for the full data; and classifier-based drift: the cross-validated AUC of a model
trained to tell reference rows from current rows, with a one-sided Mann–Whitney test of
AUC = 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mltrust.errors import ConfigError, InputError

__all__ = [
    "ClassifierDrift",
    "DriftReport",
    "FeatureDrift",
    "MMDResult",
    "adjust_pvalues",
    "classifier_drift",
    "detect_drift",
    "feature_drift",
    "ks_columns",
    "mmd_test",
    "psi",
]

CORRECTIONS = ("bh", "bonferroni", "none")
TESTS = ("ks", "cvm")


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    name: str
    kind: str  # "numeric" or "categorical"
    test: str  # "ks", "cvm" or "chi2"
    statistic: float
    p_value: float
    p_adjusted: float
    drift: bool
    psi: float | None = None
    wasserstein: float | None = None


@dataclass(frozen=True, slots=True)
class MMDResult:
    statistic: float  # unbiased MMD² (permutation) or the linear-time estimate
    p_value: float
    bandwidth: float
    method: str
    n_reference: int
    n_current: int
    drift: bool


@dataclass(frozen=True, slots=True)
class ClassifierDrift:
    auc: float
    p_value: float
    n: int
    drift: bool


@dataclass(frozen=True, slots=True)
class DriftReport:
    features: tuple[FeatureDrift, ...]
    alpha: float
    correction: str
    n_reference: int
    n_current: int
    mmd: MMDResult | None = None
    classifier: ClassifierDrift | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def drifted(self) -> tuple[FeatureDrift, ...]:
        return tuple(f for f in self.features if f.drift)

    @property
    def drift(self) -> bool:
        return bool(
            self.drifted
            or (self.mmd is not None and self.mmd.drift)
            or (self.classifier is not None and self.classifier.drift)
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "drift": self.drift,
            "alpha": self.alpha,
            "correction": self.correction,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "drifted_features": [f.name for f in self.drifted],
            "features": [
                {
                    "name": f.name,
                    "kind": f.kind,
                    "test": f.test,
                    "statistic": f.statistic,
                    "p_value": f.p_value,
                    "p_adjusted": f.p_adjusted,
                    "drift": f.drift,
                    "psi": f.psi,
                    "wasserstein": f.wasserstein,
                }
                for f in self.features
            ],
            "notes": list(self.notes),
        }
        if self.mmd is not None:
            m = self.mmd
            out["mmd"] = {
                "statistic": m.statistic,
                "p_value": m.p_value,
                "bandwidth": m.bandwidth,
                "method": m.method,
                "n_reference": m.n_reference,
                "n_current": m.n_current,
                "drift": m.drift,
            }
        if self.classifier is not None:
            c = self.classifier
            out["classifier"] = {"auc": c.auc, "p_value": c.p_value, "n": c.n, "drift": c.drift}
        return out


def adjust_pvalues(p: np.ndarray, method: str) -> np.ndarray:
    """Bonferroni or Benjamini–Hochberg adjusted p-values (``none`` returns them as given)."""
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    if method == "none" or m == 0:
        return p.copy()
    if method == "bonferroni":
        out: np.ndarray = np.minimum(1.0, p * m)
        return out
    if method == "bh":
        order = np.argsort(p)
        ranked = p[order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adj = np.empty(m)
        adj[order] = np.minimum(1.0, ranked)
        return adj
    raise ConfigError(f"unknown correction {method!r}; use one of {', '.join(CORRECTIONS)}")


def ks_columns(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample KS statistic and p-value for every column (vectorised over sorted columns).

    p-values: scipy's exact computation for small samples, else the asymptotic
    Kolmogorov distribution of ``D`` at ``en = n m / (n + m)`` (as ``scipy.stats.ks_2samp``
    does in its asymptotic mode).
    """
    from scipy import stats

    n, m = ref.shape[0], cur.shape[0]
    if n * m <= 10_000:
        res = [stats.ks_2samp(ref[:, j], cur[:, j]) for j in range(ref.shape[1])]
        return (
            np.array([r.statistic for r in res], dtype=np.float64),
            np.array([r.pvalue for r in res], dtype=np.float64),
        )
    # The gap F_ref - F_cur only changes at sample points and is monotone between two
    # consecutive current points, so its extremes are at the current points: compare the
    # left limits and the values there (ties handled by left/right searchsorted).
    R = np.sort(ref, axis=0)
    C = np.sort(cur, axis=0)
    D = np.empty(ref.shape[1])
    for j in range(ref.shape[1]):
        r, c = R[:, j], C[:, j]
        kl = np.searchsorted(c, c, side="left") / m
        kr = np.searchsorted(c, c, side="right") / m
        il = np.searchsorted(r, c, side="left") / n
        ir = np.searchsorted(r, c, side="right") / n
        D[j] = max(np.abs(kl - il).max(), np.abs(kr - ir).max())
    en = n * m / (n + m)
    p = stats.kstwo.sf(D, np.round(en))
    return D, np.clip(p, 0.0, 1.0)


def psi(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> float:
    """Population stability index over reference-quantile bins (proportions floored at 1e-4)."""
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    if edges.size < 2:
        same = float(np.mean(cur == ref[0]))
        p, q = np.array([1.0, 1e-4]), np.array([max(same, 1e-4), max(1 - same, 1e-4)])
    else:
        inner = edges[1:-1]
        p = np.bincount(np.searchsorted(inner, ref, side="right"), minlength=inner.size + 1)
        q = np.bincount(np.searchsorted(inner, cur, side="right"), minlength=inner.size + 1)
        p = np.maximum(p / ref.size, 1e-4)
        q = np.maximum(q / cur.size, 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def _is_categorical(col: Any) -> bool:
    return not np.issubdtype(np.asarray(col).dtype, np.number) or np.asarray(col).dtype == bool


def _as_columns(data: Any, names: Sequence[str] | None) -> tuple[list[str], list[np.ndarray]]:
    if hasattr(data, "columns") and hasattr(data, "__getitem__"):
        cols = [str(c) for c in data.columns]
        return cols, [data[c].to_numpy() for c in data.columns]
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise ConfigError("drift needs 2-D data (rows × features)")
    cols = list(names) if names is not None else [f"f{i}" for i in range(arr.shape[1])]
    return cols, [arr[:, j] for j in range(arr.shape[1])]


def feature_drift(
    reference: Any,
    current: Any,
    *,
    test: str = "ks",
    correction: str = "bh",
    alpha: float = 0.05,
    categorical: Sequence[str] = (),
    names: Sequence[str] | None = None,
    effect_sizes: bool = True,
) -> list[FeatureDrift]:
    """Per-feature tests with multiple-testing correction (see the module docstring)."""
    from scipy import stats

    if test not in TESTS:
        raise ConfigError(f"unknown test {test!r}; use one of {', '.join(TESTS)}")
    if not 0 < alpha < 1:
        raise ConfigError("alpha must be between 0 and 1")
    rnames, rcols = _as_columns(reference, names)
    cnames, ccols = _as_columns(current, names)
    if rnames != cnames:
        missing = sorted(set(rnames) ^ set(cnames))
        raise InputError(f"reference and current have different columns: {missing[:10]}")
    if not rcols or rcols[0].size < 2 or ccols[0].size < 2:
        raise InputError("drift needs at least two rows in each sample")
    cat = set(categorical)
    kinds = [
        "categorical" if (n in cat or _is_categorical(c)) else "numeric"
        for n, c in zip(rnames, rcols, strict=True)
    ]
    num_idx = [i for i, k in enumerate(kinds) if k == "numeric"]
    stat = np.zeros(len(rnames))
    pval = np.ones(len(rnames))
    if num_idx:
        R = np.column_stack([rcols[i].astype(np.float64) for i in num_idx])
        C = np.column_stack([ccols[i].astype(np.float64) for i in num_idx])
        if not (np.all(np.isfinite(R)) and np.all(np.isfinite(C))):
            raise InputError("numeric features contain NaN or infinite values")
        if test == "ks":
            D, P = ks_columns(R, C)
        else:
            res = [
                stats.cramervonmises_2samp(
                    R[:, j],
                    C[:, j],
                    method="asymptotic" if R.shape[0] + C.shape[0] > 100 else "auto",
                )
                for j in range(R.shape[1])
            ]
            D = np.array([r.statistic for r in res])
            P = np.array([r.pvalue for r in res])
        stat[num_idx], pval[num_idx] = D, P
    for i, kind in enumerate(kinds):
        if kind != "categorical":
            continue
        r = rcols[i].astype(str)
        c = ccols[i].astype(str)
        cats, inv = np.unique(np.concatenate([r, c]), return_inverse=True)
        if cats.size < 2:
            stat[i], pval[i] = 0.0, 1.0
            continue
        table = np.vstack(
            [
                np.bincount(inv[: r.size], minlength=cats.size),
                np.bincount(inv[r.size :], minlength=cats.size),
            ]
        )
        chi = stats.chi2_contingency(table, correction=False)
        stat[i], pval[i] = float(chi.statistic), float(chi.pvalue)
    adj = adjust_pvalues(pval, correction)
    out = []
    for i, name in enumerate(rnames):
        p_i = w_i = None
        if effect_sizes and kinds[i] == "numeric":
            r = rcols[i].astype(np.float64)
            c = ccols[i].astype(np.float64)
            p_i = psi(r, c)
            sd = float(r.std())
            w_i = float(stats.wasserstein_distance(r, c)) / (sd if sd > 0 else 1.0)
        out.append(
            FeatureDrift(
                name,
                kinds[i],
                test if kinds[i] == "numeric" else "chi2",
                float(stat[i]),
                float(pval[i]),
                float(adj[i]),
                bool(adj[i] < alpha),
                p_i,
                w_i,
            )
        )
    return out


def _standardise(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = ref.mean(axis=0)
    sd = ref.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (ref - mu) / sd, (cur - mu) / sd


def _sqdist(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.maximum(
        (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T, 0.0
    )
    return out


def mmd_test(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    method: str = "permutation",
    n_permutations: int = 200,
    max_samples: int = 1000,
    bandwidth: float | None = None,
    alpha: float = 0.05,
    random_state: int = 0,
) -> MMDResult:
    """RBF-kernel MMD two-sample test (see the module docstring)."""
    rng = np.random.default_rng(random_state)
    X = np.asarray(reference, dtype=np.float64)
    Y = np.asarray(current, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ConfigError("MMD needs two 2-D arrays with the same number of columns")
    if X.shape[0] < 4 or Y.shape[0] < 4:
        raise InputError("MMD needs at least four rows in each sample")
    X, Y = _standardise(X, Y)
    if bandwidth is None:
        idx_x = rng.choice(X.shape[0], size=min(500, X.shape[0]), replace=False)
        idx_y = rng.choice(Y.shape[0], size=min(500, Y.shape[0]), replace=False)
        Z = np.vstack([X[idx_x], Y[idx_y]])
        d2 = _sqdist(Z, Z)[np.triu_indices(Z.shape[0], k=1)]
        med = float(np.median(d2[d2 > 0])) if np.any(d2 > 0) else 1.0
        bandwidth = float(np.sqrt(med / 2.0))
    if not bandwidth > 0:
        raise ConfigError("MMD bandwidth must be positive")
    gamma = 1.0 / (2.0 * bandwidth * bandwidth)
    if method == "linear":
        return _mmd_linear(X, Y, gamma, bandwidth, alpha, rng)
    if method != "permutation":
        raise ConfigError("MMD method must be permutation or linear")
    if X.shape[0] > max_samples:
        X = X[rng.choice(X.shape[0], size=max_samples, replace=False)]
    if Y.shape[0] > max_samples:
        Y = Y[rng.choice(Y.shape[0], size=max_samples, replace=False)]
    n, m = X.shape[0], Y.shape[0]
    Z = np.vstack([X, Y])
    K = np.exp(-gamma * _sqdist(Z, Z))
    Kxx, Kyy, Kxy = K[:n, :n], K[n:, n:], K[:n, n:]
    unbiased = (
        (Kxx.sum() - np.trace(Kxx)) / (n * (n - 1))
        + (Kyy.sum() - np.trace(Kyy)) / (m * (m - 1))
        - 2.0 * Kxy.mean()
    )
    s = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    observed = float(s @ K @ s)
    S = np.empty((n + m, n_permutations))
    for p in range(n_permutations):
        S[:, p] = s[rng.permutation(n + m)]
    null = np.einsum("ip,ip->p", S, K @ S)
    p_value = float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations))
    return MMDResult(float(unbiased), p_value, bandwidth, "permutation", n, m, p_value < alpha)


def _mmd_linear(
    X: np.ndarray,
    Y: np.ndarray,
    gamma: float,
    bandwidth: float,
    alpha: float,
    rng: np.random.Generator,
) -> MMDResult:
    from scipy import stats

    half = min(X.shape[0], Y.shape[0]) // 2
    X = X[rng.permutation(X.shape[0])[: 2 * half]]
    Y = Y[rng.permutation(Y.shape[0])[: 2 * half]]
    x1, x2, y1, y2 = X[:half], X[half:], Y[:half], Y[half:]

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.exp(-gamma * ((a - b) ** 2).sum(axis=1))
        return out

    h = k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)
    mean = float(h.mean())
    se = float(h.std(ddof=1) / np.sqrt(half)) if half > 1 else float("inf")
    p_value = float(stats.norm.sf(mean / se)) if se > 0 else (0.0 if mean > 0 else 1.0)
    return MMDResult(mean, p_value, bandwidth, "linear", 2 * half, 2 * half, p_value < alpha)


def classifier_drift(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    max_samples: int = 5000,
    cv: int = 5,
    alpha: float = 0.05,
    random_state: int = 0,
) -> ClassifierDrift:
    """Cross-validated AUC of a reference-vs-current classifier, and its p-value."""
    from scipy import stats
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rng = np.random.default_rng(random_state)
    X = np.asarray(reference, dtype=np.float64)
    Y = np.asarray(current, dtype=np.float64)
    size = min(X.shape[0], Y.shape[0], max_samples)
    if size < 2 * cv:
        raise InputError(f"classifier drift needs at least {2 * cv} rows per sample")
    X = X[rng.choice(X.shape[0], size=size, replace=False)]
    Y = Y[rng.choice(Y.shape[0], size=size, replace=False)]
    Z = np.vstack([X, Y])
    labels = np.concatenate([np.zeros(size), np.ones(size)])
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    clf = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=15, random_state=random_state)
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    # one OpenMP thread: on a shared, loaded machine more threads are far slower, not faster
    with threadpool_limits(limits=1, user_api="openmp"):
        scores = cross_val_predict(clf, Z, labels, cv=folds, method="predict_proba")[:, 1]
    ranks = stats.rankdata(scores)
    auc = float((ranks[size:].sum() - size * (size + 1) / 2) / (size * size))
    # Mann–Whitney normal approximation of AUC under "no difference" (one-sided)
    sd = np.sqrt((2 * size + 1) / (12.0 * size * size))
    p_value = float(stats.norm.sf((auc - 0.5) / sd))
    return ClassifierDrift(auc, p_value, 2 * size, p_value < alpha)


def detect_drift(
    reference: Any,
    current: Any,
    *,
    test: str = "ks",
    correction: str = "bh",
    alpha: float = 0.05,
    categorical: Sequence[str] = (),
    names: Sequence[str] | None = None,
    mmd: bool = True,
    mmd_method: str = "permutation",
    classifier: bool = False,
    random_state: int = 0,
) -> DriftReport:
    """Per-feature drift plus (optionally) MMD and classifier-based drift on numeric columns."""
    if correction not in CORRECTIONS:
        raise ConfigError(f"unknown correction {correction!r}; use one of {', '.join(CORRECTIONS)}")
    feats = feature_drift(
        reference,
        current,
        test=test,
        correction=correction,
        alpha=alpha,
        categorical=categorical,
        names=names,
    )
    _, rcols = _as_columns(reference, names)
    _, ccols = _as_columns(current, names)
    numeric = [i for i, f in enumerate(feats) if f.kind == "numeric"]
    notes: list[str] = []
    mres = cres = None
    if numeric and (mmd or classifier):
        R = np.column_stack([rcols[i].astype(np.float64) for i in numeric])
        C = np.column_stack([ccols[i].astype(np.float64) for i in numeric])
        if len(numeric) < len(feats):
            notes.append("multivariate tests use the numeric features only")
        if mmd:
            mres = mmd_test(R, C, method=mmd_method, alpha=alpha, random_state=random_state)
        if classifier:
            cres = classifier_drift(R, C, alpha=alpha, random_state=random_state)
    return DriftReport(
        tuple(feats), alpha, correction, len(rcols[0]), len(ccols[0]), mres, cres, tuple(notes)
    )
