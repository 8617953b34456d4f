"""Model-extraction detection, per identity and per model, on every row of every request.

Two tests run on each identity's recent *distinct* queries (a ring buffer of ``history`` rows):

* **PRADA** (Juuti et al., 2019): the minimum L2 distance of each new row to the identity's
  earlier rows. Natural query streams give distances that look roughly normal; synthetic
  extraction queries (perturbations of seeds, grids, line searches, Jacobian-based steps) do
  not. Once ``min_samples`` distances exist, the Shapiro-Wilk W of the recent distances is
  computed every ``every`` rows; ``W < threshold`` (default 0.80) alerts. Distances beyond 3
  standard deviations are trimmed first.
* **Uniform sampling**: a campaign that draws queries uniformly inside the input box passes
  PRADA (its distances are nearly normal). When the model declares per-feature ranges, each
  feature of the stored rows is compared with the uniform distribution on its range
  (Kolmogorov-Smirnov D); when *every* feature is within ``uniform_c / sqrt(n)`` of uniform
  (n >= ``uniform_min_rows``), the identity alerts. Real data is rarely uniform in all features
  at once; if yours is, disable it with ``uniform_c: 0``.

Exact repeats of a row the identity already sent are skipped: they teach an attacker nothing new
(the answer is the same), and counting them made two benign patterns look like attacks -- a user
re-sending real training rows, and a health probe repeating one row (all distances 0).

**Campaigns split across identities** are watched by the same tests on one model-wide stream of
every identity's rows. Its alert cannot say who is guilty, so it never blocks: it is reported
(``extraction_campaign`` in the audit entry, a ``campaign`` detector alert in the metrics).

In ``block`` mode an identity's requests are refused (429) for ``block_s`` seconds after its
alert (the ``Retry-After`` sent); then its statistics start afresh. Figures for benign traffic
and attacks: ``benchmarks/extraction_bench.py``.

Memory is bounded: ``history`` rows and distances per identity, at most ``max_identities``
identities (least recently seen dropped), plus one model-wide stream.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from mltrust.serve._settings import ExtractionSettings

__all__ = ["ExtractionMonitor", "ExtractionState"]

_DUP = 1e-9  # relative squared distance under which a row repeats an earlier one
#: Distances are scaled by n**(_SCALE/d) (n rows seen before, d features): for natural data the
#: nearest-neighbour distance shrinks like n**(-1/d), so unscaled distances drift as the history
#: grows and a benign stream's early, larger distances alone make it look non-normal.
_SCALE = 1.0
#: Distances that take few distinct values (grids, line searches) alert on their own.
_LATTICE_DISTINCT = 0.25


@dataclass(slots=True)
class ExtractionState:
    rows: np.ndarray  # ring buffer of the identity's last distinct queries
    norms: np.ndarray  # their squared norms
    filled: int
    pos: int
    distances: np.ndarray  # ring buffer of minimum distances
    n_dist: int
    since_test: int
    w: float | None
    alert: bool
    blocked_until: float = 0.0  # time.monotonic() when a block lifts
    uniform_d: float | None = None
    raw: np.ndarray | None = None  # the distances before scaling (lattice test)


class ExtractionMonitor:
    def __init__(
        self,
        settings: ExtractionSettings,
        *,
        every: int = 16,
        ranges: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        import scipy.stats  # noqa: F401 - imported now (seconds), not inside a request

        self.settings = settings
        self._every = every
        self._states: OrderedDict[str, ExtractionState] = OrderedDict()
        self._campaign: ExtractionState | None = None
        self._lock = threading.Lock()
        self._lo: np.ndarray | None = None
        self._span: np.ndarray | None = None
        if ranges is not None:
            lo = np.asarray(ranges[0], dtype=np.float64)
            hi = np.asarray(ranges[1], dtype=np.float64)
            if lo.shape == hi.shape and lo.ndim == 1 and bool(np.all(hi > lo)):
                self._lo, self._span = lo, hi - lo
        #: the model-wide stream's latest verdict (annotation only)
        self.campaign_alert = False

    def _new_state(self, width: int) -> ExtractionState:
        h = self.settings.history
        return ExtractionState(
            np.zeros((h, width)), np.zeros(h), 0, 0, np.zeros(h), 0, 0, None, False, raw=np.zeros(h)
        )

    def _state(self, identity: str, width: int) -> ExtractionState:
        state = self._states.get(identity)
        if state is None or state.rows.shape[1] != width:
            state = self._new_state(width)
            self._states[identity] = state
            if len(self._states) > self.settings.max_identities:
                self._states.popitem(last=False)
        else:
            self._states.move_to_end(identity)
        return state

    @staticmethod
    def _observe_one(state: ExtractionState, x: np.ndarray, h: int) -> None:
        # the common case, one row per request: as few numpy calls as possible
        xn = float(x @ x)
        n = state.filled
        if n:
            d2 = state.norms[:n] - 2.0 * (state.rows[:n] @ x)
            best = max(float(d2.min()) + xn, 0.0)
            if best <= _DUP * max(1.0, xn):
                return  # a repeat: nothing new asked, nothing recorded
            d = best**0.5
            i = state.n_dist % h
            state.distances[i] = d * n ** (_SCALE / x.shape[0])
            if state.raw is not None:
                state.raw[i] = d
            state.n_dist += 1
            state.since_test += 1
        state.rows[state.pos] = x
        state.norms[state.pos] = xn
        state.pos = (state.pos + 1) % h
        state.filled = min(n + 1, h)

    @staticmethod
    def _observe_many(state: ExtractionState, X: np.ndarray, h: int) -> None:
        m = X.shape[0]
        xn = np.einsum("ij,ij->i", X, X)
        # squared distances to earlier queries: ||a||^2 + ||b||^2 - 2 a.b, vectorised
        best = np.full(m, np.inf)
        if state.filled:
            hist = state.rows[: state.filled]
            d2 = state.norms[: state.filled, None] + xn[None, :] - 2.0 * (hist @ X.T)
            best = d2.min(axis=0)
        # rows of the same request count as earlier queries for the rows after them
        inner = xn[:, None] + xn[None, :] - 2.0 * (X @ X.T)
        inner[np.triu_indices(m)] = np.inf
        best = np.maximum(np.minimum(best, inner.min(axis=1)), 0.0)
        fresh = best > _DUP * np.maximum(1.0, xn)  # inf (a first row) counts as fresh
        valid = fresh & np.isfinite(best)
        dist = np.sqrt(best[valid])
        k = dist.shape[0]
        if k:
            idx = (state.n_dist + np.arange(k)) % h
            # rows seen before each one: the history plus the fresh rows ahead of it in the batch
            before = state.filled + np.cumsum(fresh)[valid] - 1
            scale = np.maximum(before, 1) ** (_SCALE / X.shape[1])
            state.distances[idx] = dist * scale
            if state.raw is not None:
                state.raw[idx] = dist
            state.n_dist += k
            state.since_test += k
        keep = X[fresh]
        kn = xn[fresh]
        k = keep.shape[0]
        if k:
            idx = (state.pos + np.arange(k)) % h
            state.rows[idx] = keep
            state.norms[idx] = kn
            state.pos = (state.pos + k) % h
            state.filled = min(state.filled + k, h)

    def blocked(self, identity: str, now: float | None = None) -> float:
        """Seconds until ``identity``'s block lifts; 0.0 when it is not blocked.

        A block lasts ``block_s`` from the alert, as announced in ``Retry-After``. When it
        lifts, the identity's distance statistics start afresh (its query history is kept), so
        it is judged again on what it asks next rather than re-blocked by the old alert.
        """
        state = self._states.get(identity)
        if state is None or not state.alert or self.settings.mode != "block":
            return 0.0
        now = time.monotonic() if now is None else now
        left = state.blocked_until - now
        if left > 0:
            return left
        with self._lock:
            state.alert = False
            state.w = None
            state.uniform_d = None
            state.n_dist = 0
            state.since_test = 0
            state.blocked_until = 0.0
        return 0.0

    def _uniform_d(self, state: ExtractionState) -> float | None:
        """max over features of the KS distance to uniform-on-range (None: not tested)."""
        s = self.settings
        n = state.filled
        if (
            self._lo is None
            or self._span is None
            or s.uniform_c <= 0
            or n < max(s.uniform_min_rows, 3)
            or self._lo.shape[0] != state.rows.shape[1]
        ):
            return None
        u = np.sort(np.clip((state.rows[:n] - self._lo) / self._span, 0.0, 1.0), axis=0)
        i = np.arange(1, n + 1, dtype=np.float64)[:, None]
        d = np.maximum(i / n - u, u - (i - 1) / n).max(axis=0)
        return float(d.max())

    def _test(self, state: ExtractionState, h: int) -> bool | None:
        """Run the tests when due: True (alert), False (clear) or None (not due)."""
        count = min(state.n_dist, h)
        if count < self.settings.min_samples or state.since_test < self._every:
            return None
        state.since_test = 0
        # W of the scaled distances, and of the raw ones when kept: both must look non-normal.
        # Scaling removes the drift of natural streams (false alarms on plain traffic); the raw
        # test keeps a class-ordered batch job, whose scaled distances jump, from alerting.
        state.w = _shapiro_w(state.distances[:count])
        if state.raw is not None and _SCALE:
            state.w = max(state.w, _shapiro_w(state.raw[:count]))
        state.uniform_d = self._uniform_d(state)
        if state.raw is not None and _lattice(state.raw[:count]):
            return True
        uniform = (
            state.uniform_d is not None
            and state.uniform_d < self.settings.uniform_c / state.filled**0.5
        )
        return state.w < self.settings.threshold or uniform

    def observe(
        self, identity: str, X: np.ndarray, now: float | None = None
    ) -> tuple[float | None, bool]:
        """Record a batch of rows -- every row, in chunks of ``history`` -- and return
        (latest W or None, alert). Rows early in a large batch are seen like the last ones, so
        attack rows cannot hide in front of a benign tail."""
        if X.ndim != 2 or X.shape[0] == 0 or X.dtype.kind not in "fiub":
            return None, False
        h = self.settings.history
        X = np.asarray(X, dtype=np.float64)
        with self._lock:
            state = self._state(identity, X.shape[1])
            campaign = self._campaign
            if campaign is None or campaign.rows.shape[1] != X.shape[1]:
                campaign = self._campaign = self._new_state(X.shape[1])
            hit = False
            for start in range(0, X.shape[0], h):
                chunk = X[start : start + h]
                for st in (state, campaign):
                    if chunk.shape[0] == 1:
                        self._observe_one(st, chunk[0], h)
                    else:
                        self._observe_many(st, chunk, h)
                verdict = self._test(campaign, h)
                if verdict is not None:
                    self.campaign_alert = verdict
                verdict = self._test(state, h)
                if verdict is None:
                    continue
                if verdict:
                    hit = True
                    if not state.alert:
                        now = time.monotonic() if now is None else now
                        state.blocked_until = now + self.settings.block_s
                    state.alert = True
                elif self.settings.mode != "block":
                    state.alert = False  # annotate: the flag follows the latest test
                if state.alert and self.settings.mode == "block":
                    break  # blocked: the rest of the batch changes nothing
            return state.w, hit or state.alert


def _lattice(raw: np.ndarray) -> bool:
    """Few distinct distances: a grid or a fixed-step walk (natural data repeats none)."""
    scale = max(float(np.abs(raw).max()), 1e-12)
    distinct = np.unique(np.round(raw / scale, 6)).shape[0]
    return bool(distinct < _LATTICE_DISTINCT * raw.shape[0])


def _shapiro_w(values: np.ndarray) -> float:
    if float(np.ptp(values)) <= 1e-9 * max(1.0, float(np.abs(values).max())):
        return 0.0  # identical distances (e.g. a grid) are as far from normal as it gets
    from scipy.stats import shapiro

    # distances beyond 3 standard deviations (a user's first queries, jumps between topics)
    # are left out, as PRADA's growing set does; the test is about the bulk's shape
    mean, std = float(values.mean()), float(values.std())
    kept = values[np.abs(values - mean) <= 3 * std] if std > 0 else values
    if kept.shape[0] >= 3:
        values = kept
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(shapiro(values).statistic)
