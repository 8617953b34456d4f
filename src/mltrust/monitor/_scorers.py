"""Per-request anomaly scorers for the serving gateway's detector interface.

Every scorer follows :class:`Scorer`: ``fit`` on reference inputs, ``score`` new inputs
(higher = more unusual), and ``calibrate`` a threshold on *held-out* reference inputs so that
the share of reference inputs flagged (``score > threshold``) is at most the chosen false-alarm
rate: the threshold is the ``⌈(1 − rate)(n + 1)⌉``-th smallest calibration score (the
split-conformal quantile), so on exchangeable new data the false-alarm rate is at most
``rate`` in expectation.

* :class:`MahalanobisScorer` — distance to the reference mean under a shrunk (Ledoit–Wolf) or
  robust (minimum covariance determinant) covariance;
* :class:`KNNScorer` — mean distance to the ``k`` nearest reference points (standardised);
* :class:`LIDScorer` — local intrinsic dimensionality, maximum-likelihood estimator
  (Levina & Bickel 2004; Ma et al. 2018 use it to detect adversarial inputs);
* :class:`AdversarialScorer` — LID combined with the instability of the model's prediction
  under small random noise (adversarial inputs sit next to a decision boundary, so their
  prediction flips or loses confidence under noise that leaves natural inputs unchanged).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mltrust.errors import ConfigError, InputError

__all__ = [
    "AdversarialScorer",
    "KNNScorer",
    "LIDScorer",
    "MahalanobisScorer",
    "Scorer",
    "load_scorer",
    "make_scorer",
    "save_scorer",
]


@runtime_checkable
class Scorer(Protocol):
    name: str
    threshold: float | None

    def fit(self, X: np.ndarray) -> Any: ...

    def score(self, X: np.ndarray) -> np.ndarray: ...

    def calibrate(self, X_ref: np.ndarray, false_alarm_rate: float) -> float: ...


def _check(X: Any, d: int | None = None) -> np.ndarray:
    try:
        A = np.atleast_2d(np.asarray(X, dtype=np.float64))
    except (TypeError, ValueError):
        raise InputError("scorer input must be numeric") from None
    if A.ndim != 2 or (d is not None and A.shape[1] != d):
        raise InputError(f"scorer input must have shape (n, {d})")
    if not np.all(np.isfinite(A)):
        raise InputError("scorer input contains NaN or infinite values")
    return A


class _Base:
    name = "base"
    #: what the gateway does on an alert ("annotate" or "block"); see serve's Detector
    mode = "annotate"

    def __init__(self) -> None:
        self.threshold: float | None = None
        self.d: int | None = None

    def _require_fit(self) -> None:
        if self.d is None:
            raise ConfigError(f"{self.name} scorer is not fitted")

    def score(self, X: np.ndarray) -> np.ndarray:
        self._require_fit()
        return self._score(_check(X, self.d))

    def _score(self, X: np.ndarray) -> np.ndarray:
        raise ConfigError("abstract scorer")

    def calibrate(self, X_ref: np.ndarray, false_alarm_rate: float) -> float:
        """Set and return the threshold for ``false_alarm_rate`` on held-out reference data."""
        if not 0 < false_alarm_rate < 1:
            raise ConfigError("false-alarm rate must be between 0 and 1")
        s = np.sort(self.score(X_ref))
        n = s.size
        if n == 0:
            raise ConfigError("calibration needs reference rows")
        rank = int(np.ceil((1.0 - false_alarm_rate) * (n + 1)))
        self.threshold = float(s[min(rank, n) - 1])
        return self.threshold

    def flag(self, X: np.ndarray) -> np.ndarray:
        """``score > threshold`` per row (requires :meth:`calibrate`)."""
        if self.threshold is None:
            raise ConfigError(f"{self.name} scorer is not calibrated")
        out: np.ndarray = self.score(X) > self.threshold
        return out


class MahalanobisScorer(_Base):
    name = "mahalanobis"

    def __init__(self, covariance: str = "ledoit-wolf", random_state: int = 0) -> None:
        super().__init__()
        if covariance not in ("ledoit-wolf", "mcd", "empirical"):
            raise ConfigError("covariance must be ledoit-wolf, mcd or empirical")
        self.covariance = covariance
        self.random_state = random_state
        self.location = np.zeros(0)
        self.precision = np.zeros((0, 0))

    def fit(self, X: np.ndarray) -> MahalanobisScorer:
        from sklearn.covariance import EmpiricalCovariance, LedoitWolf, MinCovDet

        A = _check(X)
        if A.shape[0] < 2:
            raise InputError("need at least two reference rows")
        if self.covariance == "mcd":
            est: Any = MinCovDet(random_state=self.random_state).fit(A)
        elif self.covariance == "ledoit-wolf":
            est = LedoitWolf().fit(A)
        else:
            est = EmpiricalCovariance().fit(A)
        self.location = np.asarray(est.location_, dtype=np.float64)
        self.precision = np.linalg.pinv(np.asarray(est.covariance_, dtype=np.float64))
        self.d = A.shape[1]
        return self

    def _score(self, X: np.ndarray) -> np.ndarray:
        D = X - self.location
        out: np.ndarray = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", D, self.precision, D), 0))
        return out


class _Neighbours(_Base):
    def __init__(self, k: int) -> None:
        super().__init__()
        if k < 1:
            raise ConfigError("k must be at least 1")
        self.k = k
        self.mu = np.zeros(0)
        self.sd = np.ones(0)
        self.ref = np.zeros((0, 0))
        self._nn: Any = None

    def fit(self, X: np.ndarray) -> Any:
        A = _check(X)
        if A.shape[0] <= self.k:
            raise InputError(f"need more than k={self.k} reference rows")
        self.mu = A.mean(axis=0)
        sd = A.std(axis=0)
        self.sd = np.where(sd > 0, sd, 1.0)
        self.ref = (A - self.mu) / self.sd
        self.d = A.shape[1]
        self._nn = None
        return self

    def _distances(self, X: np.ndarray) -> np.ndarray:
        from sklearn.neighbors import NearestNeighbors

        if self._nn is None:
            self._nn = NearestNeighbors(n_neighbors=self.k).fit(self.ref)
        dist, _ = self._nn.kneighbors((X - self.mu) / self.sd, n_neighbors=self.k)
        out: np.ndarray = dist
        return out


class KNNScorer(_Neighbours):
    name = "knn"

    def __init__(self, k: int = 5) -> None:
        super().__init__(k)

    def _score(self, X: np.ndarray) -> np.ndarray:
        out: np.ndarray = self._distances(X).mean(axis=1)
        return out


class LIDScorer(_Neighbours):
    name = "lid"

    def __init__(self, k: int = 20) -> None:
        super().__init__(max(k, 2))

    def _score(self, X: np.ndarray) -> np.ndarray:
        dist = np.maximum(self._distances(X), 1e-12)
        ratio = np.log(dist / dist[:, -1:])  # ≤ 0; last column is 0
        mean = ratio[:, :-1].sum(axis=1) / (self.k - 1)
        out: np.ndarray = -1.0 / np.minimum(mean, -1e-12)
        return out


class AdversarialScorer(_Base):
    """``z(LID) + z(instability)`` with z-scores taken on the reference data."""

    name = "adversarial"

    def __init__(
        self,
        model: Any,
        *,
        k: int = 20,
        noise: float = 0.02,
        copies: int = 8,
        random_state: int = 0,
    ) -> None:
        super().__init__()
        from mltrust.robust import adapt

        self.clf = adapt(model)
        self.lid = LIDScorer(k)
        self.noise = noise
        self.copies = copies
        self.random_state = random_state
        self.stats = np.array([0.0, 1.0, 0.0, 1.0])

    def _instability(self, X: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(self.random_state)
        P = self.clf.proba(X)
        top = P.argmax(axis=1)
        rows = np.arange(X.shape[0])
        scale = self.noise * self.lid.sd
        drop = np.zeros(X.shape[0])
        for _ in range(self.copies):
            Q = self.clf.proba(X + rng.normal(size=X.shape) * scale)
            drop += np.maximum(P[rows, top] - Q[rows, top], 0.0) + (Q.argmax(axis=1) != top)
        out: np.ndarray = drop / self.copies
        return out

    def fit(self, X: np.ndarray) -> AdversarialScorer:
        A = _check(X)
        self.lid.fit(A)
        self.d = A.shape[1]
        lid = self.lid.score(A)
        inst = self._instability(A)
        self.stats = np.array(
            [lid.mean(), max(lid.std(), 1e-12), inst.mean(), max(inst.std(), 1e-12)]
        )
        return self

    def _score(self, X: np.ndarray) -> np.ndarray:
        lid = self.lid.score(X)
        inst = self._instability(X)
        m1, s1, m2, s2 = self.stats
        out: np.ndarray = (lid - m1) / s1 + (inst - m2) / s2
        return out


def make_scorer(name: str, **kwargs: Any) -> Any:
    """A fresh scorer by name: mahalanobis, knn, lid (adversarial needs ``model=``)."""
    table: dict[str, Any] = {
        "mahalanobis": MahalanobisScorer,
        "knn": KNNScorer,
        "lid": LIDScorer,
        "adversarial": AdversarialScorer,
    }
    if name not in table:
        raise ConfigError(f"unknown scorer {name!r}; use one of {', '.join(table)}")
    return table[name](**kwargs)


def save_scorer(scorer: Any, path: str | Path) -> None:
    """Save a fitted Mahalanobis/kNN/LID scorer as NPZ (no pickle), atomically."""

    if isinstance(scorer, MahalanobisScorer):
        arrays = {"location": scorer.location, "precision": scorer.precision}
        meta: dict[str, Any] = {"covariance": scorer.covariance}
    elif isinstance(scorer, (KNNScorer, LIDScorer)):
        arrays = {"mu": scorer.mu, "sd": scorer.sd, "ref": scorer.ref}
        meta = {"k": scorer.k}
    else:
        raise ConfigError(f"cannot save a {type(scorer).__name__}; it holds a model")
    if scorer.d is None:
        raise ConfigError("fit the scorer before saving it")
    meta.update(name=scorer.name, d=scorer.d, threshold=scorer.threshold, format=1)
    from mltrust.store._atomic import atomic_path

    payload: dict[str, Any] = {"meta": np.array(json.dumps(meta)), **arrays}
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **payload)


def load_scorer(path: str | Path) -> Any:
    """Load a scorer written by :func:`save_scorer` (NPZ, ``allow_pickle=False``)."""
    from mltrust._npz import read_npz_arrays

    arrays = read_npz_arrays(path, "saved mltrust scorer")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (ValueError, KeyError) as exc:
        raise InputError(f"{path}: not a saved mltrust scorer ({exc})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: not a saved mltrust scorer (its metadata is not an object)")
    name = meta.get("name")
    try:
        if name == "mahalanobis":
            sc: Any = MahalanobisScorer(meta["covariance"])
            sc.location, sc.precision = arrays["location"], arrays["precision"]
        elif name in ("knn", "lid"):
            sc = KNNScorer(int(meta["k"])) if name == "knn" else LIDScorer(int(meta["k"]))
            sc.mu, sc.sd, sc.ref = arrays["mu"], arrays["sd"], arrays["ref"]
        else:
            raise InputError(f"{path}: unknown scorer {name!r}")
        sc.d = int(meta["d"])
        th = meta.get("threshold")
        sc.threshold = None if th is None else float(th)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: malformed scorer file ({exc})") from None
    return sc
