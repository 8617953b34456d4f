"""One entry point that runs an attack over several ε and collects the figures to report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mltrust.errors import ConfigError
from mltrust.robust._attacks import apgd, exact_linear, fgsm, minimal_linf_linear, pgd
from mltrust.robust._hsj import hop_skip_jump
from mltrust.robust._models import LinearModel, adapt
from mltrust.robust._trees import tree_attack, tree_min_perturbation

__all__ = ["ATTACKS", "EpsResult", "RobustnessReport", "evaluate_robustness", "threat_model"]

ATTACKS = ("auto", "fgsm", "pgd", "pgd-l2", "apgd", "exact", "tree", "hsj")
TREE_MODELS = (
    "DecisionTreeClassifier",
    "ExtraTreeClassifier",
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "GradientBoostingClassifier",
)


def _bound_record(v: Any, d: int | None) -> Any:
    """A domain bound for JSON: a number, a per-feature list, or None for ±∞ / no bound."""
    if v is None:
        return None
    arr = np.asarray(v, dtype=np.float64).ravel()
    if arr.size == 0:
        return None
    if np.all(arr == arr[0]):
        return float(arr[0]) if np.isfinite(arr[0]) else None
    return [float(x) if np.isfinite(x) else None for x in arr]


def threat_model(
    *,
    attack: str,
    norm: str,
    eps: Sequence[float],
    lower: Any = None,
    upper: Any = None,
    steps: int | None = None,
    restarts: int | None = None,
    loss: str | None = None,
    clip: str | None = None,
    attacks_run: Sequence[str] = (),
) -> dict[str, Any]:
    """The threat model a robustness figure holds under, as recorded in every output.

    ``domain`` is ``"unbounded"`` when no coordinate is clipped (the adversary may move every
    feature by ε in either direction, whatever values make sense), else ``{"lower", "upper"}``
    with a number for a bound shared by all features, a per-feature list, or ``null`` for no
    bound. ``steps``/``restarts``/``loss`` are ``null`` for attacks without them (exact, tree).
    """
    lo, hi = _bound_record(lower, None), _bound_record(upper, None)
    domain: Any = "unbounded" if lo is None and hi is None else {"lower": lo, "upper": hi}
    return {
        "attack": attack,
        "attacks_run": list(attacks_run) or [attack],
        "norm": norm,
        "eps": [float(e) for e in eps],
        "domain": domain,
        "clip": clip,
        "steps": steps,
        "restarts": restarts,
        "loss": loss,
    }


def domain_text(tm: dict[str, Any]) -> str:
    """One line for text reports: ``unbounded`` or the bounds."""
    dom = tm["domain"]
    if dom == "unbounded":
        return "unbounded (no clipping: pass --clip to bound the features)"

    def one(v: Any) -> str:
        if isinstance(v, list):
            return f"per-feature ({len(v)} values)"
        return "none" if v is None else f"{v:g}"

    return f"[{one(dom['lower'])}, {one(dom['upper'])}]"


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
    threat: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attack": self.attack,
            "norm": self.norm,
            "threat_model": dict(self.threat),
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


def _is_tree(model: Any) -> bool:
    """A model the tree attack handles (gradient boosting only with two classes)."""
    name = type(model).__name__
    if name == "GradientBoostingClassifier":
        return len(getattr(model, "classes_", ())) == 2
    return name in TREE_MODELS


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
    clip: str | None = None,
) -> RobustnessReport:
    """Clean and robust accuracy at each ε under ``attack`` (one of ``ATTACKS``).

    ``auto`` runs the strongest applicable set: the exact optimum for argmax-linear models
    under L∞, the exact/greedy tree attack for tree ensembles, for other differentiable models
    the PGD ensemble (cross-entropy + margin restarts) *and* AutoPGD with both losses, a row
    counting as broken when any of them breaks it; HopSkipJump for black boxes. The threat
    model (norm, ε, domain, steps, restarts, loss, the attacks run) is part of the report.
    """
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
    _check_width(model, X)
    y = _check_labels(model, y)
    chosen = attack
    clf = None
    if attack == "auto":
        if _is_tree(model):
            chosen = "tree" if norm == "inf" else "hsj"
        else:
            clf = adapt(model)
            if isinstance(clf, LinearModel) and norm == "inf":
                chosen = "exact"
            elif clf.differentiable:
                chosen = "ensemble"
            else:
                chosen = "hsj"
    runs = {
        "ensemble": ["pgd(ce+margin)", "apgd-ce", "apgd-margin"],
        "pgd": ["pgd(ce+margin)"],
        "pgd-l2": ["pgd(ce+margin)"],
        "apgd": ["apgd-ce", "apgd-margin"],
    }.get(chosen, [chosen])
    iterative = chosen in ("ensemble", "pgd", "pgd-l2", "apgd", "hsj")
    tm = threat_model(
        attack=attack,
        norm=norm,
        eps=eps,
        lower=lower,
        upper=upper,
        steps=steps if iterative and chosen != "hsj" else None,
        restarts=restarts if iterative and chosen != "hsj" else None,
        loss="ce+margin" if chosen in ("ensemble", "pgd", "pgd-l2", "apgd") else None,
        clip=clip,
        attacks_run=runs,
    )
    results: list[EpsResult] = []
    notes: list[str] = []
    if tm["domain"] == "unbounded":
        notes.append(
            "the feature domain is unbounded: the adversary may push every feature by ε "
            "beyond the values the data takes (bound it with --clip)"
        )
    pert: np.ndarray | None = None
    pert_kind = ""
    queries: int | None = None
    if chosen == "tree":
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
            tm,
        )
    clf = clf if clf is not None else adapt(model)
    clean = float(np.mean(clf.predict(X) == y))
    if chosen == "hsj":
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
            tuple(notes),
            tm,
        )
    for e in eps:
        t0 = time.perf_counter()
        common: dict[str, Any] = {"lower": lower, "upper": upper}
        if chosen == "exact":
            fooled = exact_linear(clf, X, y, float(e), **common).fooled
            bound = "exact"
        elif chosen == "fgsm":
            fooled = fgsm(clf, X, y, float(e), norm=norm, **common).fooled
            bound = "upper"
        else:
            it: dict[str, Any] = {"norm": norm, "steps": steps, "restarts": restarts}
            it.update(common, random_state=random_state)
            fooled = np.zeros(X.shape[0], dtype=bool)
            if chosen in ("ensemble", "pgd", "pgd-l2"):
                fooled |= pgd(clf, X, y, float(e), **it).fooled
            if chosen in ("ensemble", "apgd"):
                for loss in ("ce", "margin"):
                    left = ~fooled
                    if left.any():
                        out = apgd(clf, X[left], y[left], float(e), loss=loss, **it)
                        fooled[np.flatnonzero(left)[out.fooled]] = True
            bound = "upper"
        acc = float(1.0 - fooled.mean())
        results.append(EpsResult(float(e), acc, bound, time.perf_counter() - t0))
        if progress is not None:
            progress(1)
    if chosen == "exact" and isinstance(clf, LinearModel):
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
        tm,
    )


def _check_width(model: Any, X: np.ndarray) -> None:
    """A model fitted on another number of features is an input error, not a crash later."""
    inner = getattr(model, "steps", None)
    width = getattr(model, "n_features_in_", None)
    if width is None and isinstance(inner, list) and inner:
        width = getattr(inner[-1][1], "n_features_in_", None)
    if isinstance(width, (int, np.integer)) and int(width) != X.shape[1]:
        from mltrust.errors import InputError

        raise InputError(
            f"the model expects {int(width)} features but the data has {X.shape[1]}",
            hint="check --label and the data file (the label column is not a feature)",
        )


def _check_labels(model: Any, y: np.ndarray) -> np.ndarray:
    """Labels in the model's class type: numeric text becomes numbers; other text against a
    numeric-class model (or numbers against text classes) is an input error — compared as
    they are, no row would ever count as correct."""
    from mltrust.errors import InputError

    classes = getattr(model, "classes_", None)
    if classes is None:
        return y
    classes = np.asarray(classes)
    numeric_classes = np.issubdtype(classes.dtype, np.number) or classes.dtype == bool
    numeric_labels = np.issubdtype(y.dtype, np.number) or y.dtype == bool
    if numeric_classes == numeric_labels:
        return y
    if numeric_classes:
        try:
            return y.astype(classes.dtype)
        except (TypeError, ValueError):
            pass
    else:
        as_text = y.astype(str)
        if np.isin(as_text, classes.astype(str)).all():
            return as_text.astype(classes.dtype)
    shown = ", ".join(str(v) for v in classes[:6])
    raise InputError(
        f"the labels ({', '.join(str(v) for v in np.unique(y)[:4])}, ...) do not match the "
        f"model's classes ({shown})",
        hint="check --label (is it the right column?) and that MODEL was trained on this data",
    )
