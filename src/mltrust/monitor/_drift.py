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
    "cvm_columns",
    "detect_drift",
    "feature_drift",
    "ks_columns",
    "mmd_test",
    "psi",
]

CORRECTIONS = ("bh", "bonferroni", "none")
TESTS = ("ks", "cvm")
MMD_METHODS = ("auto", "permutation", "linear")


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
    family_alpha: float | None = None  # α per family (Bonferroni split of ``alpha``)

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
            "family_alpha": self.alpha if self.family_alpha is None else self.family_alpha,
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


KS_EXACT_MAX_N = 10_000  # scipy.stats.ks_2samp(method="auto"): exact up to this sample size


def _ks_sorted(Rs: np.ndarray, Cs: np.ndarray) -> np.ndarray:
    """KS statistic per row of feature-major sorted samples (``Rs``: features × n).

    ``F_ref − F_cur`` only changes at sample points and is monotone between two consecutive
    current points, so its extremes are at the current points: compare the left limits and the
    values there (ties handled by left/right insertion points), as scipy's statistic does.
    """
    n, m = Rs.shape[1], Cs.shape[1]
    D = np.empty(Rs.shape[0])
    for j in range(Rs.shape[0]):
        r, c = Rs[j], Cs[j]
        kl = np.searchsorted(c, c, side="left") / m
        kr = np.searchsorted(c, c, side="right") / m
        il = np.searchsorted(r, c, side="left") / n
        ir = np.searchsorted(r, c, side="right") / n
        D[j] = max(np.abs(kl - il).max(), np.abs(kr - ir).max())
    return D


def _ks_pvalues(D: np.ndarray, n: int, m: int) -> np.ndarray:
    """scipy's asymptotic two-sided p-value: ``kstwo.sf(D, round(n m / (n + m)))``.

    Computed by :func:`mltrust.monitor._kstwo.kstwo_sf` (scipy's algorithm without importing
    ``scipy.stats``, which would cost a fresh CLI process most of its time budget).
    """
    from mltrust.monitor._kstwo import kstwo_sf

    big, small = float(max(n, m)), float(min(n, m))
    en = big * small / (big + small)
    out: np.ndarray = np.clip(kstwo_sf(D, int(np.round(en))), 0.0, 1.0)
    return out


def ks_columns(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample KS statistic and p-value for every column, as ``scipy.stats.ks_2samp`` gives.

    The same choice as scipy's ``method="auto"``: the exact distribution when both samples have
    at most 10,000 rows (scipy itself computes those p-values, column by column), else Smirnov's
    asymptotic distribution ``kstwo(round(n m / (n + m)))`` — vectorised over columns here. With
    ties the statistic is taken where scipy takes it and the continuous null makes the p-value
    conservative.
    """
    ref = np.asarray(ref, dtype=np.float64)
    cur = np.asarray(cur, dtype=np.float64)
    return _ks_features(np.ascontiguousarray(ref.T), np.ascontiguousarray(cur.T))[:2]


def _ks_features(
    RT: np.ndarray, CT: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """KS per feature row; also returns the sorted rows when it sorted them (for reuse)."""
    n, m = RT.shape[1], CT.shape[1]
    if max(n, m) <= KS_EXACT_MAX_N:
        from scipy import stats  # the exact null (lattice-path counts): scipy's own code

        res = [stats.ks_2samp(RT[j], CT[j]) for j in range(RT.shape[0])]
        return (
            np.array([r.statistic for r in res], dtype=np.float64),
            np.array([r.pvalue for r in res], dtype=np.float64),
            None,
            None,
        )
    Rs, Cs = np.sort(RT, axis=1), np.sort(CT, axis=1)
    D = _ks_sorted(Rs, Cs)
    return D, _ks_pvalues(D, n, m), Rs, Cs


def _cvm_tied(r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Counts per distinct pooled value: (reference counts, totals), ``n``, ``m``."""
    values, inv = np.unique(np.concatenate([r, c]), return_inverse=True)
    a = np.bincount(inv[: r.size], minlength=values.size)
    t = np.bincount(inv, minlength=values.size)
    return a, t, r.size, c.size


def _cvm_stat_counts(a: np.ndarray, t: np.ndarray, n: int, m: int) -> np.ndarray:
    """Anderson's T from counts (rows of ``a`` are alternative reference-count vectors).

    ``T = n m / N² Σ_z t_z (F_n(z) − G_m(z))²`` over the distinct pooled values ``z`` with
    multiplicity ``t_z`` — the definition, which stays right under ties (the rank formula scipy
    uses, ``U`` with mid-ranks, is only equal to it without ties).
    """
    N = n + m
    F = np.cumsum(a, axis=-1) / n
    G = np.cumsum(t - a, axis=-1) / m
    out: np.ndarray = n * m / (N * N) * ((F - G) ** 2 * t).sum(axis=-1)
    return out


def cvm_columns(
    ref: np.ndarray,
    cur: np.ndarray,
    *,
    permutations: int = 999,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Two-sample Cramér–von Mises statistic and p-value per column, correct under ties.

    Without ties: ``scipy.stats.cramervonmises_2samp(method="auto")`` (exact up to 20 rows a
    side, else the asymptotic distribution). With ties (repeated values, integer or rounded
    data) scipy's mid-rank formula inflates the statistic and its null no longer applies, so we
    compute ``T`` from its definition over the distinct values and take a permutation p-value
    ``(1 + #{T* ≥ T}) / (1 + B)``: permuting the pooled rows only redistributes each distinct
    value's multiplicity between the samples, so each of the ``B`` permutations is one draw of
    the multivariate hypergeometric reference counts (cost ``B × distinct values``). Returns the
    statistics, p-values and the method used per column (``exact``/``asymptotic``/
    ``permutation``).
    """
    from scipy import stats

    ref = np.asarray(ref, dtype=np.float64)
    cur = np.asarray(cur, dtype=np.float64)
    rng = np.random.default_rng(random_state)
    d = ref.shape[1]
    T = np.empty(d)
    P = np.empty(d)
    methods: list[str] = []
    for j in range(d):
        r, c = ref[:, j], cur[:, j]
        a, t, n, m = _cvm_tied(r, c)
        if t.size == n + m:  # no ties: scipy is right
            res = stats.cramervonmises_2samp(r, c, method="auto")
            T[j], P[j] = float(res.statistic), float(res.pvalue)
            methods.append("exact" if max(n, m) <= 20 else "asymptotic")
            continue
        observed = float(_cvm_stat_counts(a, t, n, m))
        hits = 0
        chunk = max(1, min(permutations, 4_000_000 // max(t.size, 1)))
        done = 0
        while done < permutations:
            b = min(chunk, permutations - done)
            A = rng.multivariate_hypergeometric(t, n, size=b, method="marginals")
            hits += int(np.sum(_cvm_stat_counts(A, t, n, m) >= observed * (1 - 1e-12) - 1e-15))
            done += b
        T[j], P[j] = observed, (1 + hits) / (1 + permutations)
        methods.append("permutation")
    return T, P, methods


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


def effect_size_columns(
    ref: np.ndarray, cur: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """PSI and Wasserstein-1 / reference sd for every column at once (the values of
    :func:`psi` and ``scipy.stats.wasserstein_distance``)."""
    RT = np.ascontiguousarray(np.asarray(ref, dtype=np.float64).T)
    CT = np.ascontiguousarray(np.asarray(cur, dtype=np.float64).T)
    return _effect_sorted(np.sort(RT, axis=1), np.sort(CT, axis=1), bins)


def _effect_sorted(Rs: np.ndarray, Cs: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """PSI and W1/sd from feature-major sorted samples, vectorised over features.

    W1 in its quantile form, ``∫₀¹ |F_ref⁻¹(u) − F_cur⁻¹(u)| du``: both quantile functions are
    steps at multiples of ``1/n`` and ``1/m``, the same breakpoints for every feature, so one
    gather per sample gives all features at once (counted in units of ``1/(n m)``, exactly).
    """
    n, m = Rs.shape[1], Cs.shape[1]
    ends = np.union1d(np.arange(1, n + 1, dtype=np.int64) * m, np.arange(1, m + 1) * n)
    widths = np.diff(np.concatenate([[0], ends])) / (n * m)
    ir = (ends + m - 1) // m - 1
    ic = (ends + n - 1) // n - 1
    gaps = Rs[:, ir]
    gaps -= Cs[:, ic]
    np.abs(gaps, out=gaps)
    w1 = gaps @ widths
    sd = Rs.std(axis=1)
    w1 = w1 / np.where(sd > 0, sd, 1.0)
    Q = np.quantile(Rs, np.linspace(0, 1, bins + 1), axis=1)
    out = np.empty(Rs.shape[0])
    for j in range(Rs.shape[0]):
        edges = np.unique(Q[:, j])
        if edges.size < 2:
            out[j] = psi(Rs[j], Cs[j], bins)
            continue
        inner = edges[1:-1]
        # bin k holds the values in [inner[k-1], inner[k]): counts from left insertion points
        pr = np.diff(np.concatenate([[0], np.searchsorted(Rs[j], inner, side="left"), [n]]))
        qc = np.diff(np.concatenate([[0], np.searchsorted(Cs[j], inner, side="left"), [m]]))
        p = np.maximum(pr / n, 1e-4)
        q = np.maximum(qc / m, 1e-4)
        out[j] = float(np.sum((q - p) * np.log(q / p)))
    return out, w1


def _is_categorical(col: Any) -> bool:
    return not np.issubdtype(np.asarray(col).dtype, np.number) or np.asarray(col).dtype == bool


def _as_columns(data: Any, names: Sequence[str] | None) -> tuple[list[str], list[np.ndarray]]:
    if hasattr(data, "columns") and hasattr(data, "__getitem__"):
        cols = [str(c) for c in data.columns]
        if len(set(cols)) != len(cols):
            raise InputError("the data has duplicate column names")
        return cols, [data[c].to_numpy() for c in data.columns]
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise ConfigError("drift needs 2-D data (rows × features)")
    cols = list(names) if names is not None else [f"f{i}" for i in range(arr.shape[1])]
    if len(cols) != arr.shape[1]:
        raise InputError(f"{len(cols)} column names for {arr.shape[1]} columns")
    return cols, [arr[:, j] for j in range(arr.shape[1])]


def _aligned(
    reference: Any, current: Any, names: Sequence[str] | None
) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Both samples' columns in the reference's order (current's may come in another order)."""
    rnames, rcols = _as_columns(reference, names)
    cnames, ccols = _as_columns(current, names)
    if rnames != cnames:
        only_ref = [c for c in rnames if c not in set(cnames)]
        only_cur = [c for c in cnames if c not in set(rnames)]
        if only_ref or only_cur:
            raise InputError(
                "reference and current have different columns: "
                f"only in reference {only_ref[:10]}, only in current {only_cur[:10]}"
            )
        pos = {c: i for i, c in enumerate(cnames)}
        ccols = [ccols[pos[c]] for c in rnames]
    if not rcols or rcols[0].size < 2 or ccols[0].size < 2:
        raise InputError("drift needs at least two rows in each sample")
    return rnames, rcols, ccols


def _numeric(col: np.ndarray, name: str, which: str) -> np.ndarray:
    try:
        out = np.asarray(col, dtype=np.float64)
    except (TypeError, ValueError):
        bad = next((v for v in col if not _is_number(v)), "?")
        raise InputError(
            f"column {name!r} is numeric in the reference but {which} holds {str(bad)[:40]!r}",
            hint=f"fix the data, --drop {name}, or pass --categorical {name}",
        ) from None
    if not np.all(np.isfinite(out)):
        raise InputError(f"column {name!r} holds NaN or infinite values in {which}")
    return out


def _stray_text(name: str, col: np.ndarray, which: str) -> None:
    """A text column whose values are numbers but for a few (≤ 5%) is a data error — read as
    categorical it would compare every distinct number as its own category."""
    if not _is_categorical(col) or col.dtype == bool or col.size == 0:
        return
    numeric = np.fromiter((_is_number(v) for v in col), dtype=bool, count=col.size)
    bad = col.size - int(numeric.sum())
    if 0 < bad <= 0.05 * col.size:
        value = col[int(np.argmin(numeric))]
        raise InputError(
            f"column {name!r} holds numbers but {which} also holds {str(value)[:40]!r} "
            f"({bad} non-numeric value(s))",
            hint=f"fix the data, --drop {name}, or pass --categorical {name}",
        )


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _chi2_independence(table: np.ndarray) -> tuple[float, float]:
    """Pearson's χ² test of a contingency table with no empty row or column: the statistic and
    p-value of ``scipy.stats.chi2_contingency(table, correction=False)``, from
    ``scipy.special`` (``scipy.stats`` takes most of a second to import)."""
    from scipy.special import chdtrc

    observed = np.asarray(table, dtype=np.float64)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    dof = (observed.shape[0] - 1) * (observed.shape[1] - 1)
    if dof == 0:
        return 0.0, 1.0
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    return chi2, float(chdtrc(dof, chi2))


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
    permutations: int = 999,
    random_state: int = 0,
) -> list[FeatureDrift]:
    """Per-feature tests with multiple-testing correction (see the module docstring).

    ``categorical`` must name existing columns (an unknown name is an error, not ignored). A
    column is numeric when the *reference* column is; a current column of such a feature that
    holds text is an :class:`~mltrust.errors.InputError`. ``effect_sizes=False`` skips PSI and
    Wasserstein (they are computed vectorised, but they cost as much as the tests).
    """
    if test not in TESTS:
        raise ConfigError(f"unknown test {test!r}; use one of {', '.join(TESTS)}")
    if not 0 < alpha < 1:
        raise ConfigError("alpha must be between 0 and 1")
    rnames, rcols, ccols = _aligned(reference, current, names)
    unknown = [c for c in categorical if c not in set(rnames)]
    if unknown:
        raise ConfigError(f"--categorical names no column of the data: {unknown[:10]}")
    cat = set(categorical)
    for n, r, c in zip(rnames, rcols, ccols, strict=True):
        if n not in cat:
            _stray_text(n, r, "the reference")
            _stray_text(n, c, "the current data")
    kinds = [
        "categorical" if (n in cat or _is_categorical(c)) else "numeric"
        for n, c in zip(rnames, rcols, strict=True)
    ]
    num_idx = [i for i, k in enumerate(kinds) if k == "numeric"]
    stat = np.zeros(len(rnames))
    pval = np.ones(len(rnames))
    used = [test if k == "numeric" else "chi2" for k in kinds]
    psis = np.full(len(rnames), np.nan)
    w1s = np.full(len(rnames), np.nan)
    if num_idx:
        # feature-major (features × rows): each feature's values contiguous for the sorts
        RT = np.stack([_numeric(rcols[i], rnames[i], "the reference") for i in num_idx])
        CT = np.stack([_numeric(ccols[i], rnames[i], "the current data") for i in num_idx])
        Rs = Cs = None
        if test == "ks":
            D, P, Rs, Cs = _ks_features(RT, CT)
        else:
            D, P, how = cvm_columns(
                RT.T, CT.T, permutations=permutations, random_state=random_state
            )
            for i, h in zip(num_idx, how, strict=True):
                if h == "permutation":
                    used[i] = "cvm-perm"
        stat[num_idx], pval[num_idx] = D, P
        if effect_sizes:
            if Rs is None or Cs is None:
                Rs, Cs = np.sort(RT, axis=1), np.sort(CT, axis=1)
            psis[num_idx], w1s[num_idx] = _effect_sorted(Rs, Cs)
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
        stat[i], pval[i] = _chi2_independence(table)
    adj = adjust_pvalues(pval, correction)
    out = []
    for i, name in enumerate(rnames):
        has = effect_sizes and kinds[i] == "numeric"
        out.append(
            FeatureDrift(
                name,
                kinds[i],
                used[i],
                float(stat[i]),
                float(pval[i]),
                float(adj[i]),
                bool(adj[i] < alpha),
                float(psis[i]) if has else None,
                float(w1s[i]) if has else None,
            )
        )
    return out


def _standardise(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # pooled moments: the same transform whichever rows are called "reference", so the
    # permutation null stays exact
    pooled = np.concatenate([ref, cur], axis=0)
    mu = pooled.mean(axis=0)
    sd = pooled.std(axis=0)
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
    method: str = "auto",
    n_permutations: int = 200,
    max_samples: int = 2000,
    bandwidth: float | None = None,
    alpha: float = 0.05,
    random_state: int = 0,
) -> MMDResult:
    """RBF-kernel MMD two-sample test (see the module docstring).

    ``method``: ``permutation`` (unbiased quadratic-time MMD², ``n_permutations`` label
    permutations on at most ``max_samples`` rows per side, a seeded random subsample above
    that), ``linear`` (Gretton's linear-time statistic on all rows, normal null) or ``auto``.
    The linear statistic averages ``min(n, m) / 2`` independent pair terms, so its power grows
    like ``√pairs``, while the quadratic statistic's grows like the subsample size: ``auto``
    takes the linear-time test on all rows only when ``pairs ≥ max_samples²`` (where it is the
    stronger), else the permutation test. (100,000 vs 10,000 rows with a 0.05 sd shift in 5 of
    50 features: permutation on 2,000 rows p = 0.025, linear on all rows p = 0.85.) Cost:
    permutation ``O((2·max_samples)² · n_permutations)``, linear ``O(rows · features)``.
    """
    if method not in MMD_METHODS:
        raise ConfigError(f"MMD method must be one of {', '.join(MMD_METHODS)}")
    if max_samples < 4:
        raise ConfigError("MMD max_samples must be at least 4")
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
    if method == "auto":
        pairs = min(X.shape[0], Y.shape[0]) // 2
        method = "linear" if pairs >= max_samples * max_samples else "permutation"
    if method == "linear":
        return _mmd_linear(X, Y, gamma, bandwidth, alpha, rng)
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
    from scipy.special import ndtr  # the normal tail: scipy.stats.norm.sf(z) is ndtr(-z)

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
    p_value = float(ndtr(-(mean / se))) if se > 0 else (0.0 if mean > 0 else 1.0)
    return MMDResult(mean, p_value, bandwidth, "linear", 2 * half, 2 * half, p_value < alpha)


def classifier_drift(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    max_samples: int = 5000,
    alpha: float = 0.05,
    random_state: int = 0,
) -> ClassifierDrift:
    """Held-out AUC of a reference-vs-current classifier, and its exact-null p-value.

    Half of each (sub)sample trains a gradient-boosted classifier; the other half is scored
    once. Given the trained model, the held-out scores of the two samples are exchangeable
    under "no drift", so the one-sided Mann–Whitney test of ``AUC = 0.5`` on them
    (``scipy.stats.mannwhitneyu``, tie-corrected) has its nominal level. (Pooling
    cross-validated scores from several fold models is not: each fold's model shifts the
    scores of its own fold, which false-alarmed about 13% of the time at α = 5%.)
    """
    from scipy import stats
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(random_state)
    X = np.asarray(reference, dtype=np.float64)
    Y = np.asarray(current, dtype=np.float64)
    size = min(X.shape[0], Y.shape[0], max_samples)
    if size < 10:
        raise InputError("classifier drift needs at least 10 rows per sample")
    X = X[rng.choice(X.shape[0], size=size, replace=False)]
    Y = Y[rng.choice(Y.shape[0], size=size, replace=False)]
    half = size // 2
    Z_fit = np.vstack([X[:half], Y[:half]])
    y_fit = np.concatenate([np.zeros(half), np.ones(half)])
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    clf = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=15, random_state=random_state)
    # one OpenMP thread: on a shared, loaded machine more threads are far slower, not faster
    with threadpool_limits(limits=1, user_api="openmp"):
        clf.fit(Z_fit, y_fit)
        s_ref = clf.predict_proba(X[half:])[:, 1]
        s_cur = clf.predict_proba(Y[half:])[:, 1]
    res = stats.mannwhitneyu(s_cur, s_ref, alternative="greater")
    auc = float(res.statistic) / (s_cur.size * s_ref.size)
    p_value = float(res.pvalue)
    return ClassifierDrift(auc, p_value, s_cur.size + s_ref.size, p_value < alpha)


FAMILIES = ("features", "mmd", "classifier")


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
    mmd_method: str = "auto",
    mmd_samples: int = 2000,
    classifier: bool = False,
    effect_sizes: bool = True,
    random_state: int = 0,
) -> DriftReport:
    """Per-feature drift plus (optionally) MMD and classifier-based drift on numeric columns.

    The overall verdict is at most ``alpha`` under no drift: ``alpha`` is split evenly
    (Bonferroni) over the families that run — the per-feature family (itself corrected across
    features), MMD and the classifier test — and the report drifts when any family rejects at
    its share. Bonferroni needs no assumption about how the families depend on each other
    (they test the same rows); a Cauchy or harmonic-mean combination would be a little more
    powerful but is only approximately valid under dependence.
    """
    if correction not in CORRECTIONS:
        raise ConfigError(f"unknown correction {correction!r}; use one of {', '.join(CORRECTIONS)}")
    if not 0 < alpha < 1:
        raise ConfigError("alpha must be between 0 and 1")
    rnames, rcols, ccols = _aligned(reference, current, names)
    kinds_numeric = [
        i
        for i, (n, c) in enumerate(zip(rnames, rcols, strict=True))
        if n not in set(categorical) and not _is_categorical(c)
    ]
    families = 1 + int(bool(kinds_numeric) and mmd) + int(bool(kinds_numeric) and classifier)
    share = alpha / families
    feats = feature_drift(
        reference,
        current,
        test=test,
        correction=correction,
        alpha=share,
        categorical=categorical,
        names=names,
        effect_sizes=effect_sizes,
        random_state=random_state,
    )
    numeric = [i for i, f in enumerate(feats) if f.kind == "numeric"]
    notes: list[str] = []
    mres = cres = None
    if numeric and (mmd or classifier):
        R = np.column_stack([rcols[i].astype(np.float64) for i in numeric])
        C = np.column_stack([ccols[i].astype(np.float64) for i in numeric])
        if len(numeric) < len(feats):
            notes.append("multivariate tests use the numeric features only")
        if mmd:
            mres = mmd_test(
                R,
                C,
                method=mmd_method,
                max_samples=mmd_samples,
                alpha=share,
                random_state=random_state,
            )
        if classifier:
            cres = classifier_drift(R, C, alpha=share, random_state=random_state)
    return DriftReport(
        tuple(feats),
        alpha,
        correction,
        len(rcols[0]),
        len(ccols[0]),
        mres,
        cres,
        tuple(notes),
        share,
    )
