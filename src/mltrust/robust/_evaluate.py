"""One entry point that runs an attack over several ε and collects the figures to report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mltrust.errors import ConfigError
from mltrust.robust._attacks import exact_linear, fgsm, minimal_linf_linear, pgd
from mltrust.robust._hsj import hop_skip_jump
from mltrust.robust._models import LinearModel, adapt
from mltrust.robust._trees import tree_attack, tree_min_perturbation

__all__ = ["ATTACKS", "EpsResult", "RobustnessReport", "evaluate_robustness"]

ATTACKS = ("fgsm", "pgd", "pgd-l2", "exact", "tree", "hsj")


@dataclass(frozen=True, slots=True)
class EpsResult:
    eps: float
    robust_accuracy: float
    bound: str  # "exact" or "upper" (an attack's figure bounds the true value from above)
    seconds: float


@dataclass(frozen=True, slots=True, eq=False)
class RobustnessReport:
    attack: str
    norm: str
    model_kind: str
    n: int
    clean_accuracy: float
    results: tuple[EpsResult, ...]
    perturbation: np.ndarray | None = None  # minimal perturbation per row (inf = none found)
    perturbation_kind: str = ""  # "exact" or "found"
    queries: int | None = None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attack": self.attack,
            "norm": self.norm,
            "model": self.model_kind,
            "samples": self.n,
            "clean_accuracy": self.clean_accuracy,
            "results": [
                {
                    "eps": r.eps,
                    "robust_accuracy": r.robust_accuracy,
                    "bound": r.bound,
                    "seconds": round(r.seconds, 4),
                }
                for r in self.results
            ],
            "notes": list(self.notes),
        }
        if self.perturbation is not None:
            p = self.perturbation[np.isfinite(self.perturbation)]
            out["min_perturbation"] = {
                "kind": self.perturbation_kind,
                "found": int(p.size),
                "none_found": int(self.perturbation.size - p.size),
                "quantiles": {str(q): float(np.quantile(p, q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)}
                if p.size
                else {},
                "mean": float(p.mean()) if p.size else None,
            }
        if self.queries is not None:
            out["queries"] = {"total": self.queries, "per_sample": self.queries / max(self.n, 1)}
        return out


def evaluate_robustness(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    eps: Sequence[float],
    *,
    attack: str = "pgd",
    norm: str | None = None,
    lower: Any = None,
    upper: Any = None,
    steps: int = 100,
    restarts: int = 3,
    pool: np.ndarray | None = None,
    random_state: int = 0,
    progress: Callable[[int], None] | None = None,
) -> RobustnessReport:
    """Clean accuracy and robust accuracy at each ε under ``attack`` (one of ``ATTACKS``)."""
    import time

    if attack not in ATTACKS:
        raise ConfigError(f"unknown attack {attack!r}; choose from {', '.join(ATTACKS)}")
    if not eps:
        raise ConfigError("give at least one ε")
    if any(not (e >= 0 and np.isfinite(e)) for e in eps):
        raise ConfigError("every ε must be a finite non-negative number")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise ConfigError("X must be a non-empty 2-D array with one label per row")
    if norm is None:
        norm = "2" if attack == "pgd-l2" else "inf"
    if attack == "pgd-l2":
        norm = "2"
    if attack in ("exact", "tree") and norm != "inf":
        raise ConfigError(f"the {attack} attack is defined for the L∞ norm")
    results: list[EpsResult] = []
    notes: list[str] = []
    pert: np.ndarray | None = None
    pert_kind = ""
    queries: int | None = None
    if attack == "tree":
        clean = float(np.mean(model.predict(X) == y))
        for e in eps:
            t0 = time.perf_counter()
            tout = tree_attack(model, X, y, float(e), lower=lower, upper=upper)
            bound = "exact" if tout.exact else "upper"
            if not tout.exact:
                notes.append(
                    f"ε={e}: {tout.exact_rows}/{X.shape[0]} rows decided exactly; "
                    "the rest by greedy search (upper bound)"
                )
            results.append(
                EpsResult(float(e), tout.outcome.robust_accuracy, bound, time.perf_counter() - t0)
            )
            if progress is not None:
                progress(1)
        if type(model).__name__ in ("DecisionTreeClassifier", "ExtraTreeClassifier"):
            pert = tree_min_perturbation(model, X, y, lower=lower, upper=upper)
            pert_kind = "exact"
        return RobustnessReport(
            attack,
            norm,
            type(model).__name__,
            X.shape[0],
            clean,
            tuple(results),
            pert,
            pert_kind,
            None,
            tuple(notes),
        )
    clf = adapt(model)
    clean = float(np.mean(clf.predict(X) == y))
    if attack == "hsj":
        t0 = time.perf_counter()
        before = clf.queries
        hsj = hop_skip_jump(
            clf,
            X,
            y,
            norm=norm,
            lower=lower,
            upper=upper,
            pool=pool,
            random_state=random_state,
            progress=progress,
        )
        spent = time.perf_counter() - t0
        queries = int(clf.queries - before)
        for e in eps:
            results.append(EpsResult(float(e), hsj.robust_accuracy(float(e)), "upper", spent))
        return RobustnessReport(
            attack,
            norm,
            clf.kind,
            X.shape[0],
            clean,
            tuple(results),
            hsj.perturbation,
            "found",
            queries,
            (),
        )
    for e in eps:
        t0 = time.perf_counter()
        if attack == "exact":
            out = exact_linear(clf, X, y, float(e), lower=lower, upper=upper)
            bound = "exact"
        elif attack == "fgsm":
            out = fgsm(clf, X, y, float(e), norm=norm, lower=lower, upper=upper)
            bound = "upper"
        else:
            out = pgd(
                clf,
                X,
                y,
                float(e),
                norm=norm,
                steps=steps,
                restarts=restarts,
                lower=lower,
                upper=upper,
                random_state=random_state,
            )
            bound = "upper"
        results.append(EpsResult(float(e), out.robust_accuracy, bound, time.perf_counter() - t0))
        if progress is not None:
            progress(1)
    if attack == "exact" and isinstance(clf, LinearModel):
        pert = minimal_linf_linear(clf, X, y, lower=lower, upper=upper)
        pert_kind = "exact"
    return RobustnessReport(
        attack,
        norm,
        clf.kind,
        X.shape[0],
        clean,
        tuple(results),
        pert,
        pert_kind,
        None,
        tuple(notes),
    )
