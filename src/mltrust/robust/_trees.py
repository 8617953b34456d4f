"""Attacks on decision trees and small tree ensembles, by leaf-box geometry.

A fitted scikit-learn tree sends ``x`` left when ``x[f] <= threshold``, so every leaf is a box
``lo < x <= hi`` (open below, closed above). Under an L∞ budget ε the adversary can reach
exactly the leaves whose box meets ``ball_∞(x, ε) ∩ domain``.

* **Single tree — exact.** ``x`` is robust iff no reachable leaf predicts another class. The
  minimal adversarial L∞ perturbation is the distance from ``x`` to the nearest wrong leaf box
  (an infimum: the lower face is open).
* **Ensembles (random forest, extra trees, binary gradient boosting) — exact when the search
  finishes.** A depth-first "leaf intersection" search picks one reachable leaf per tree,
  intersecting boxes as it goes and dropping empty intersections; a branch is cut when even
  the best remaining leaves cannot make another class win. A complete consistent choice of
  leaves is a real region of input space, so a fooling combination is a true adversarial
  example and an exhausted search proves robustness. When the search exceeds its node budget
  the row falls back to a greedy threshold search (each step moves one feature just across a
  split threshold inside the ball, picking the move that lowers the margin most); then the
  result is only an **upper bound** on robust accuracy, and the outcome says how many rows
  were decided exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mltrust.errors import ConfigError
from mltrust.robust._attacks import AttackOutcome, domain_arrays

__all__ = ["TreeAttackOutcome", "leaf_boxes", "tree_attack", "tree_min_perturbation"]

_NUDGE = 1e-9


@dataclass(frozen=True, slots=True, eq=False)
class Leaves:
    lo: np.ndarray  # (L, d) exclusive lower bounds
    hi: np.ndarray  # (L, d) inclusive upper bounds
    value: np.ndarray  # (L, k) leaf contribution (class probabilities, or raw score)


def leaf_boxes(tree: Any, d: int) -> Leaves:
    """The leaves of a fitted sklearn ``DecisionTree*`` as boxes, with their values."""
    t = tree.tree_
    left, right = t.children_left, t.children_right
    feat, thr = t.feature, t.threshold
    lo_list: list[np.ndarray] = []
    hi_list: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    stack = [(0, np.full(d, -np.inf), np.full(d, np.inf))]
    while stack:
        node, lo, hi = stack.pop()
        if left[node] == -1:
            lo_list.append(lo)
            hi_list.append(hi)
            v = np.asarray(t.value[node], dtype=np.float64)[0]
            vals.append(v)
            continue
        f, th = int(feat[node]), float(thr[node])
        h = hi.copy()
        h[f] = min(h[f], th)
        stack.append((int(left[node]), lo, h))
        lo2 = lo.copy()
        lo2[f] = max(lo2[f], th)
        stack.append((int(right[node]), lo2, hi))
    return Leaves(np.array(lo_list), np.array(hi_list), np.array(vals))


def _reachable(
    leaves: Leaves, x: np.ndarray, eps: float, dlo: np.ndarray, dhi: np.ndarray
) -> np.ndarray:
    a = np.maximum(x - eps, dlo)
    b = np.minimum(x + eps, dhi)
    return np.asarray(np.all((b > leaves.lo) & (a <= leaves.hi), axis=1))


def _box_distance(leaves: Leaves, x: np.ndarray, dlo: np.ndarray, dhi: np.ndarray) -> np.ndarray:
    """L∞ distance (infimum) from ``x`` to each leaf box intersected with the domain."""
    lo = np.maximum(leaves.lo, dlo)
    hi = np.minimum(leaves.hi, dhi)
    empty = np.any(lo > hi, axis=1) | np.any((leaves.lo >= dhi), axis=1)
    gap = np.maximum(np.maximum(lo - x, x - hi), 0.0).max(axis=1)
    return np.where(empty, np.inf, gap)


@dataclass(frozen=True, slots=True, eq=False)
class TreeAttackOutcome:
    outcome: AttackOutcome
    exact_rows: int  # rows decided exactly (the rest are greedy upper bounds)

    @property
    def exact(self) -> bool:
        return self.exact_rows == self.outcome.fooled.size


class _Ensemble:
    """An ensemble as a list of leaf sets plus how leaf values combine into class scores."""

    def __init__(self, model: Any, d: int) -> None:
        name = type(model).__name__
        self.model = model
        self.classes = np.asarray(model.classes_)
        if name in ("DecisionTreeClassifier", "ExtraTreeClassifier"):
            self.trees = [leaf_boxes(model, d)]
            self.kind = "tree"
        elif name in ("RandomForestClassifier", "ExtraTreesClassifier"):
            self.trees = [leaf_boxes(t, d) for t in model.estimators_]
            self.kind = "forest"
        elif name == "GradientBoostingClassifier" and len(self.classes) == 2:
            self.trees = [leaf_boxes(t, d) for t in model.estimators_[:, 0]]
            self.kind = "boosting"
        else:
            raise ConfigError(
                f"the tree attack supports decision trees, random/extra forests and binary "
                f"gradient boosting, not {name}",
                hint="use --attack hsj for other models",
            )
        for leaves in self.trees:
            if self.kind != "boosting":
                s = leaves.value.sum(axis=1, keepdims=True)
                leaves.value[:] = leaves.value / np.where(s == 0, 1.0, s)
        self.lr = float(getattr(model, "learning_rate", 1.0))

    def scores(self, leaf_values: np.ndarray) -> np.ndarray:
        """Class scores from summed leaf values (same argmax as the model's predict)."""
        if self.kind == "boosting":
            return np.asarray(np.array([0.0, 1.0]) * leaf_values[0])
        return leaf_values

    def predict_index(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(np.searchsorted(self.classes, self.model.predict(X)))

    def margin(self, X: np.ndarray, yi: int) -> np.ndarray:
        """Margin of the true class over the best other (≤ 0 means fooled), from the model."""
        if self.kind == "boosting":
            z = self.model.decision_function(X)
            return np.asarray(z if yi == 1 else -z)
        P = self.model.predict_proba(X)
        other = P.copy()
        other[:, yi] = -np.inf
        return np.asarray(P[:, yi] - other.max(axis=1))


def _offset(ens: _Ensemble, x: np.ndarray) -> float:
    """Boosting: the constant init score, recovered as decision(x) - lr * sum(leaf values)."""
    total = 0.0
    for leaves in ens.trees:
        inside = np.all((x > leaves.lo) & (x <= leaves.hi), axis=1)
        total += float(leaves.value[np.argmax(inside), 0])
    return float(ens.model.decision_function(x[None, :])[0]) - ens.lr * total


def _search(
    ens: _Ensemble,
    x: np.ndarray,
    yi: int,
    eps: float,
    dlo: np.ndarray,
    dhi: np.ndarray,
    budget: int,
) -> tuple[bool | None, np.ndarray | None]:
    """Leaf-intersection DFS. Returns (fooled, witness) or (None, None) when over budget."""
    lo0, hi0 = np.maximum(x - eps, dlo), np.minimum(x + eps, dhi)
    per_tree = []
    for leaves in ens.trees:
        r = np.flatnonzero(np.all((hi0 > leaves.lo) & (lo0 <= leaves.hi), axis=1))
        per_tree.append((leaves, r))
    per_tree.sort(key=lambda t: len(t[1]))
    k = len(ens.classes)
    boosting = ens.kind == "boosting"
    scale = ens.lr if boosting else 1.0
    offset = _offset(ens, x) if boosting else 0.0
    # gain toward a wrong class per leaf: v_j - v_y (forest, per class j); for boosting the
    # signed score toward the other class (y=1 is fooled when the decision drops to <= 0)
    sign = -1.0 if yi == 1 else 1.0

    def gains(leaves: Leaves, idx: np.ndarray) -> np.ndarray:
        v = leaves.value[idx]
        if boosting:
            return np.asarray((sign * scale * v[:, 0])[:, None])  # (m, 1): toward the wrong class
        return np.asarray(v - v[:, [yi]])  # (m, k)

    best_rest = [np.zeros(1 if boosting else k)]
    for leaves, idx in reversed(per_tree):
        best_rest.append(best_rest[-1] + gains(leaves, idx).max(axis=0))
    best_rest.reverse()
    base = np.array([sign * offset]) if boosting else np.zeros(k)
    nodes = 0
    # stack entries: (tree position, strict lower bounds, closed upper bounds, gain so far);
    # the region is {x' : lo0 <= x', s < x' <= h}
    s0 = np.full(x.size, -np.inf)
    stack: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = [(0, s0, hi0, base)]
    while stack:
        pos, s, h, acc = stack.pop()
        nodes += 1
        if nodes > budget:
            return None, None
        bound = acc + best_rest[pos]
        if not boosting:
            bound[yi] = -np.inf
        if bound.max() < 0:
            continue
        if pos == len(per_tree):
            floor = np.maximum(lo0, s)
            point = np.where(floor < h, (floor + h) / 2, h)
            if ens.predict_index(point[None, :])[0] != yi:
                return True, point
            continue
        leaves, idx = per_tree[pos]
        g = gains(leaves, idx)
        order = np.argsort(-g.max(axis=1))
        for o in order[::-1]:
            li = idx[o]
            ns = np.maximum(s, leaves.lo[li])
            nh = np.minimum(h, leaves.hi[li])
            if np.all(ns < nh) and np.all(lo0 <= nh):
                stack.append((pos + 1, ns, nh, acc + g[o]))
    return False, None


def _greedy(
    ens: _Ensemble, x: np.ndarray, yi: int, eps: float, dlo: np.ndarray, dhi: np.ndarray, steps: int
) -> tuple[bool, np.ndarray]:
    """Greedy threshold search: move one feature across a split per step (an upper bound)."""
    thresholds: dict[int, set[float]] = {}
    for leaves in ens.trees:
        for arr in (leaves.lo, leaves.hi):
            rows, cols = np.nonzero(np.isfinite(arr))
            for r, f in zip(rows, cols, strict=True):
                thresholds.setdefault(int(f), set()).add(float(arr[r, f]))
    cur = x.copy()
    lo0, hi0 = np.maximum(x - eps, dlo), np.minimum(x + eps, dhi)
    for _ in range(steps):
        cands = []
        for feat, ths in thresholds.items():
            for t in ths:
                for v in (t, t + _NUDGE * (1 + abs(t))):
                    if lo0[feat] <= v <= hi0[feat] and v != cur[feat]:
                        c = cur.copy()
                        c[feat] = v
                        cands.append(c)
        for feat in range(x.size):
            for v in (lo0[feat], hi0[feat]):
                if np.isfinite(v) and v != cur[feat]:
                    c = cur.copy()
                    c[feat] = v
                    cands.append(c)
        if not cands:
            break
        C = np.array(cands)
        m = ens.margin(C, yi)
        best = int(np.argmin(m))
        if m[best] >= ens.margin(cur[None, :], yi)[0]:
            break
        cur = C[best]
        if m[best] <= 0 and ens.predict_index(cur[None, :])[0] != yi:
            return True, cur
    return bool(ens.predict_index(cur[None, :])[0] != yi), cur


def tree_attack(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    eps: float,
    *,
    lower: np.ndarray | float | None = None,
    upper: np.ndarray | float | None = None,
    budget: int = 20000,
    greedy_steps: int = 20,
) -> TreeAttackOutcome:
    """L∞ attack on a tree model (exact for single trees; see the module docstring)."""
    X = np.asarray(X, dtype=np.float64)
    if not (eps >= 0 and np.isfinite(eps)):
        raise ConfigError(f"ε must be a finite non-negative number, not {eps}")
    d = X.shape[1]
    dlo, dhi = domain_arrays(d, lower, upper)
    ens = _Ensemble(model, d)
    classes = ens.classes
    pos = np.searchsorted(classes, y)
    yi = np.where((pos < len(classes)) & (classes[np.minimum(pos, len(classes) - 1)] == y), pos, -1)
    pred = ens.predict_index(X)
    fooled = (pred != yi) | (yi < 0)
    X_adv = X.copy()
    exact_rows = 0
    if ens.kind == "tree":
        leaves = ens.trees[0]
        leaf_cls = np.argmax(leaves.value, axis=1)
        for i in range(X.shape[0]):
            exact_rows += 1
            if fooled[i]:
                continue
            reach = _reachable(leaves, X[i], eps, dlo, dhi) & (leaf_cls != yi[i])
            if reach.any():
                fooled[i] = True
                li = int(np.flatnonzero(reach)[0])
                X_adv[i] = _point_in(leaves.lo[li], leaves.hi[li], X[i], eps, dlo, dhi)
        return TreeAttackOutcome(AttackOutcome(X_adv, fooled, "inf", eps), exact_rows)
    for i in range(X.shape[0]):
        if fooled[i]:
            exact_rows += 1
            continue
        if eps == 0:
            exact_rows += 1
            continue
        res, witness = _search(ens, X[i], int(yi[i]), eps, dlo, dhi, budget)
        if res is None:
            res, witness = _greedy(ens, X[i], int(yi[i]), eps, dlo, dhi, greedy_steps)
            if not res:
                witness = None
        else:
            exact_rows += 1
        if res and witness is not None:
            fooled[i] = True
            X_adv[i] = witness
    return TreeAttackOutcome(AttackOutcome(X_adv, fooled, "inf", eps), exact_rows)


def _point_in(
    lo: np.ndarray, hi: np.ndarray, x: np.ndarray, eps: float, dlo: np.ndarray, dhi: np.ndarray
) -> np.ndarray:
    """A point of the leaf box (∩ ball ∩ domain) near ``x``.

    Coordinates already inside stay; the others move just inside the nearest face (by a
    thousandth of the interval, so that the float32 rounding scikit-learn trees apply to
    inputs cannot push the point back across a threshold).
    """
    a = np.maximum(x - eps, dlo)
    floor = np.maximum(a, lo)
    ceil = np.minimum(np.minimum(x + eps, dhi), hi)
    width = ceil - floor
    inside = (x > lo) & (x >= a) & (x <= ceil)
    below = np.where(width > 0, floor + 1e-3 * width, floor)
    above = np.where(width > 0, ceil - 1e-3 * width, ceil)
    out: np.ndarray = np.where(inside, x, np.where(x <= floor, below, above))
    return out


def tree_min_perturbation(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    lower: np.ndarray | float | None = None,
    upper: np.ndarray | float | None = None,
) -> np.ndarray:
    """Exact minimal L∞ perturbation per row for a single decision tree (0 if misclassified)."""
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    dlo, dhi = domain_arrays(d, lower, upper)
    ens = _Ensemble(model, d)
    if ens.kind != "tree":
        raise ConfigError("minimal perturbations are exact only for a single decision tree")
    leaves = ens.trees[0]
    leaf_cls = np.argmax(leaves.value, axis=1)
    yi = np.searchsorted(ens.classes, y)
    pred = ens.predict_index(X)
    out = np.empty(X.shape[0])
    for i in range(X.shape[0]):
        if pred[i] != yi[i]:
            out[i] = 0.0
            continue
        dist = _box_distance(leaves, X[i], dlo, dhi)
        wrong = leaf_cls != yi[i]
        out[i] = float(dist[wrong].min()) if wrong.any() else np.inf
    return out
