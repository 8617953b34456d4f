"""Extraction detection benchmark: labelled benign traffic vs extraction campaigns.

Every scenario is a stream of single-row queries to an iris classifier (features bounded by the
training ranges, as a model's settings declare them), replayed through
:class:`mltrust.serve._extraction.ExtractionMonitor` with default settings for several seeds.
A stream counts as *flagged* when any of its identities alerted at any point, or (for mltrust,
not the baseline) the model-wide campaign monitor did.

Benign patterns: natural queries (real rows plus noise), class-conditional Gaussian queries, a
client replaying real training rows (exact repeats), a health probe repeating one row, a batch
job scoring the data set in order, and twenty natural users at once (campaign false alarms).

Attacks: PRADA-style perturbation clouds (Papernot et al.), a grid, a line search between two
points, uniform random sampling in the input box, Jacobian-based augmentation (JbDA) from a few
seeds, and multi-identity campaigns (JbDA and uniform sampling split over ten identities, each
below the per-identity minimum).

The baseline is PRADA alone as shipped before (repeats counted, raw distances, no lattice,
uniform or campaign test). The scenarios were also used to tune the new tests: treat the figures
as a regression check on these patterns, not as a general detection rate.

Prints one table: flagged rate per scenario for both, and the median number
of queries before the first flag.

Usage: python benchmarks/extraction_bench.py [--seeds 10] [--queries 300]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mltrust.serve._extraction as extraction
from mltrust.serve._extraction import ExtractionMonitor
from mltrust.serve._settings import ExtractionSettings

X, Y = load_iris(return_X_y=True)
LO, HI = X.min(axis=0), X.max(axis=0)
MODEL = LogisticRegression(max_iter=500).fit(X, Y)

Stream = Iterator[tuple[str, np.ndarray]]  # (identity, row)


def _clip(x: np.ndarray) -> np.ndarray:
    return np.clip(x, LO, HI)


# -- benign -----------------------------------------------------------------------------------
def natural(rng: np.random.Generator, n: int) -> Stream:
    for _ in range(n):
        yield "user", _clip(X[rng.integers(len(X))] + rng.normal(0, 0.05, 4))


def gaussian(rng: np.random.Generator, n: int) -> Stream:
    stats = []
    for label in range(3):
        members = X[np.equal(Y, label)]
        stats.append((members.mean(axis=0), np.cov(members.T)))
    for _ in range(n):
        mean, cov = stats[rng.integers(3)]
        yield "user", _clip(rng.multivariate_normal(mean, cov))


def replay(rng: np.random.Generator, n: int) -> Stream:
    rows = X[rng.choice(len(X), 40, replace=False)]
    for _ in range(n):
        yield "user", rows[rng.integers(len(rows))]


def health_probe(rng: np.random.Generator, n: int) -> Stream:
    row = X[rng.integers(len(X))]
    for _ in range(n):
        yield "probe", row


def batch_job(rng: np.random.Generator, n: int) -> Stream:
    order = np.argsort(Y, kind="stable")
    for i in range(n):
        yield "job", X[order[i % len(X)]] + (i // len(X)) * rng.normal(0, 0.02, 4)


def many_users(rng: np.random.Generator, n: int) -> Stream:
    for i in range(n):
        yield f"user{i % 20}", _clip(X[rng.integers(len(X))] + rng.normal(0, 0.05, 4))


# -- attacks ----------------------------------------------------------------------------------
def clouds(rng: np.random.Generator, n: int) -> Stream:
    seeds = X[rng.choice(len(X), 8, replace=False)]
    for i in range(n):
        yield "attacker", seeds[i % 8] + rng.normal(0, 0.01, 4)


def grid(rng: np.random.Generator, n: int) -> Stream:
    k = int(np.ceil(n ** (1 / 4)))
    axes = [np.linspace(LO[j], HI[j], k) for j in range(4)]
    points = np.array(np.meshgrid(*axes)).reshape(4, -1).T
    for p in points[rng.permutation(len(points))][:n]:
        yield "attacker", p


def line_search(rng: np.random.Generator, n: int) -> Stream:
    a, b = X[rng.integers(len(X))], X[rng.integers(len(X))]
    for t in np.linspace(0, 1, n):
        yield "attacker", a + t * (b - a)


def uniform(rng: np.random.Generator, n: int) -> Stream:
    for _ in range(n):
        yield "attacker", rng.uniform(LO, HI)


def _jbda(rng: np.random.Generator, n: int) -> Iterator[np.ndarray]:
    """Jacobian-based dataset augmentation (Papernot et al., 2017): each round queries
    ``x + lambda * sign(d p_y / d x)`` for every known point, lambda flipping sign every
    three rounds; a point already asked is not asked again (its answer is known)."""
    known = [X[i] for i in rng.choice(len(X), 10, replace=False)]
    seen = {tuple(np.round(x, 9)) for x in known}
    sent = 0
    for x in known:
        yield x
        sent += 1
    r = 0
    while sent < n:
        lam = 0.1 * (-1) ** (r // 3)
        new = []
        for x in known:
            p = MODEL.predict_proba(x.reshape(1, -1))[0]
            y = int(np.argmax(p))
            grad = p[y] * (MODEL.coef_[y] - p @ MODEL.coef_)
            step = _clip(x + lam * np.sign(grad))
            key = tuple(np.round(step, 9))
            if key in seen:
                continue
            seen.add(key)
            new.append(step)
            yield step
            sent += 1
            if sent >= n:
                return
        if not new:
            return
        known = known + new
        r += 1


def jacobian(rng: np.random.Generator, n: int) -> Stream:
    for x in _jbda(rng, n):
        yield "attacker", x


def split_jacobian(rng: np.random.Generator, n: int) -> Stream:
    for i, x in enumerate(_jbda(rng, n)):
        yield f"sybil{i % 10}", x


def split_uniform(rng: np.random.Generator, n: int) -> Stream:
    for i in range(n):
        yield f"sybil{i % 10}", rng.uniform(LO, HI)


BENIGN: dict[str, Callable[[np.random.Generator, int], Stream]] = {
    "natural": natural,
    "gaussian": gaussian,
    "replay training rows": replay,
    "health probe": health_probe,
    "batch job in order": batch_job,
    "20 users at once": many_users,
}
ATTACKS: dict[str, Callable[[np.random.Generator, int], Stream]] = {
    "perturbation clouds": clouds,
    "grid": grid,
    "line search": line_search,
    "uniform random": uniform,
    "jacobian (JbDA)": jacobian,
    "JbDA over 10 ids": split_jacobian,
    "uniform over 10 ids": split_uniform,
}


def run(stream: Stream, *, baseline: bool) -> int | None:
    """Index of the first flagged query, or None."""
    settings = ExtractionSettings(uniform_c=0.0 if baseline else 1.63)
    monitor = ExtractionMonitor(settings, ranges=None if baseline else (LO, HI))
    saved = extraction._DUP, extraction._SCALE, extraction._LATTICE_DISTINCT
    if baseline:  # PRADA as before: repeats counted, raw distances only, no lattice rule
        extraction._DUP, extraction._SCALE, extraction._LATTICE_DISTINCT = -1.0, 0.0, 0.0
    try:
        for i, (who, row) in enumerate(stream):
            _, alert = monitor.observe(who, row.reshape(1, -1))
            if alert or (not baseline and monitor.campaign_alert):
                return i + 1
    finally:
        extraction._DUP, extraction._SCALE, extraction._LATTICE_DISTINCT = saved
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"{args.seeds} seeds x {args.queries} single-row queries per scenario\n")
    print(f"{'scenario':24} {'label':7} {'baseline':>9} {'mltrust':>8} {'median queries':>15}")
    totals: dict[tuple[str, bool], list[bool]] = {}
    for label, table in (("benign", BENIGN), ("attack", ATTACKS)):
        for name, make in table.items():
            flags = {}
            first: list[int] = []
            for baseline in (True, False):
                hits = []
                for seed in range(args.seeds):
                    at = run(make(np.random.default_rng(seed), args.queries), baseline=baseline)
                    hits.append(at is not None)
                    if at is not None and not baseline:
                        first.append(at)
                flags[baseline] = sum(hits) / len(hits)
                totals.setdefault((label, baseline), []).extend(hits)
            median = f"{statistics.median(first):.0f}" if first else "-"
            print(f"{name:24} {label:7} {flags[True]:9.0%} {flags[False]:8.0%} {median:>15}")
    print()
    for label, what in (("benign", "false alarms"), ("attack", "detection")):
        base = totals[(label, True)]
        ours = totals[(label, False)]
        rate_base, rate_ours = sum(base) / len(base), sum(ours) / len(ours)
        print(f"{what:13} baseline {rate_base:5.0%}   mltrust {rate_ours:5.0%}")
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
