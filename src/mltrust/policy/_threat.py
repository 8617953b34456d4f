"""The threat model a robustness control applies to, and the evidence figures measured under it.

A robust-accuracy figure means nothing without its threat model: 0.9 under L-inf ε = 0.05 on
features in ``[0, 255]`` is an adversary 255 times weaker than the same ε on ``[0, 1]``; a
figure from a one-step attack bounds the true robust accuracy far more loosely than one from
40 steps with restarts. A control that compares robust accuracy therefore names its threat
model (``threat_model:`` in the profile), and the engine lets its check see only the figures
measured under exactly that model. When the evidence holds none, the control fails closed and
says how the evidence's threat model differs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mltrust.errors import ConfigError

__all__ = ["ThreatModel", "parse_threat_model", "reads_robust_figures", "scoped_robustness"]

_NORMS = {"inf": "inf", "linf": "inf", "l_inf": "inf", "2": "2", "l2": "2", "1": "1", "l1": "1"}
_KEYS = frozenset({"norm", "epsilon", "domain", "attacks", "min_steps", "min_restarts"})
#: ε and domain bounds are compared with this relative tolerance (decimal text ↔ binary float)
_REL = 1e-9
#: what a check reads when it compares robustness figures (then it must name its threat model)
_FIGURE_FIELDS = ("robust_accuracy", "by_threat_model", "robustness.figures")


@dataclass(frozen=True, slots=True)
class ThreatModel:
    """``norm`` (``inf``/``2``/``1``), ``epsilon``, ``domain`` (``(lower, upper)`` shared by
    every feature, or ``None`` for unbounded), and optionally the attacks accepted and the least
    attack strength (steps, restarts) an iterative attack's figure must have been measured with."""

    norm: str
    epsilon: float
    domain: tuple[float, float] | None
    attacks: tuple[str, ...] = ()
    min_steps: int = 0
    min_restarts: int = 0

    def describe(self) -> str:
        dom = "unbounded" if self.domain is None else f"[{self.domain[0]:g}, {self.domain[1]:g}]"
        text = f"norm {self.norm}, eps {self.epsilon:g}, domain {dom}"
        if self.attacks:
            text += f", attack {'/'.join(self.attacks)}"
        if self.min_steps or self.min_restarts:
            text += f", at least {self.min_steps} steps and {self.min_restarts} restarts"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "norm": self.norm,
            "epsilon": self.epsilon,
            "domain": "unbounded" if self.domain is None else list(self.domain),
            "attacks": list(self.attacks),
            "min_steps": self.min_steps,
            "min_restarts": self.min_restarts,
        }


def _number(value: Any, what: str, cid: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"control {cid}: threat_model {what} must be a finite number")
    return float(value)


def _count(value: Any, what: str, cid: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"control {cid}: threat_model {what} must be a whole number ≥ 0")
    return value


def parse_threat_model(raw: Any, cid: str) -> ThreatModel:
    """Validate a control's ``threat_model`` mapping; every mistake is a ConfigError."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"control {cid}: threat_model must be a mapping (norm, epsilon, domain)")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(
            f"control {cid}: threat_model has unknown key(s) {', '.join(sorted(map(str, unknown)))}"
        )
    missing = [k for k in ("norm", "epsilon", "domain") if k not in raw]
    if missing:
        raise ConfigError(f"control {cid}: threat_model must state {', '.join(missing)}")
    norm = _NORMS.get(str(raw["norm"]).lower().replace("-", "_"))
    if norm is None:
        raise ConfigError(f"control {cid}: threat_model norm must be linf, l2 or l1")
    eps = _number(raw["epsilon"], "epsilon", cid)
    if eps <= 0:
        raise ConfigError(f"control {cid}: threat_model epsilon must be positive")
    dom = raw["domain"]
    domain: tuple[float, float] | None
    if dom == "unbounded":
        domain = None
    elif isinstance(dom, Sequence) and not isinstance(dom, str) and len(dom) == 2:
        lo, hi = _number(dom[0], "domain", cid), _number(dom[1], "domain", cid)
        if not lo < hi:
            raise ConfigError(
                f"control {cid}: threat_model domain must be [lower, upper], lower<upper"
            )
        domain = (lo, hi)
    else:
        raise ConfigError(f"control {cid}: threat_model domain must be [lower, upper] or unbounded")
    attacks = raw.get("attacks", [])
    if isinstance(attacks, str):
        attacks = [attacks]
    if not isinstance(attacks, list) or not all(isinstance(a, str) and a for a in attacks):
        raise ConfigError(f"control {cid}: threat_model attacks must be a list of attack names")
    return ThreatModel(
        norm,
        eps,
        domain,
        tuple(attacks),
        _count(raw.get("min_steps", 0), "min_steps", cid),
        _count(raw.get("min_restarts", 0), "min_restarts", cid),
    )


def reads_robust_figures(*sources: str | None) -> bool:
    """Whether a control's expressions compare robustness figures."""
    return any(s is not None and any(f in s for f in _FIGURE_FIELDS) for s in sources)


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= _REL * max(abs(a), abs(b), 1.0)


def _mismatch(fig: Mapping[str, Any], tm: ThreatModel) -> str | None:
    """Why ``fig`` was not measured under ``tm`` (None when it was; ε is compared apart)."""
    if str(fig.get("norm")) != tm.norm:
        return f"norm {fig.get('norm')}"
    lower, upper = fig.get("domain_lower"), fig.get("domain_upper")
    if tm.domain is None:
        if fig.get("domain") != "unbounded":
            return f"domain {_domain_text(fig)}"
    elif not (
        fig.get("domain") == "bounded"
        and isinstance(lower, (int, float))
        and isinstance(upper, (int, float))
        and _same(float(lower), tm.domain[0])
        and _same(float(upper), tm.domain[1])
    ):
        return f"domain {_domain_text(fig)}"
    if tm.attacks and str(fig.get("attack")) not in tm.attacks:
        return f"attack {fig.get('attack')}"
    if fig.get("bound") != "exact" and (tm.min_steps or tm.min_restarts):
        steps, restarts = fig.get("steps"), fig.get("restarts")
        if not isinstance(steps, int) or steps < tm.min_steps:
            return f"{steps if steps is not None else 'unrecorded'} attack steps"
        if not isinstance(restarts, int) or restarts < tm.min_restarts:
            return f"{restarts if restarts is not None else 'unrecorded'} restarts"
    return None


def _domain_text(fig: Mapping[str, Any]) -> str:
    lower, upper = fig.get("domain_lower"), fig.get("domain_upper")
    if fig.get("domain") == "bounded":
        if isinstance(lower, (int, float)) and isinstance(upper, (int, float)):
            return f"[{lower:g}, {upper:g}]"
        return "per-feature bounds"
    return str(fig.get("domain", "unrecorded"))


def scoped_robustness(section: Mapping[str, Any], tm: ThreatModel) -> tuple[dict[str, Any], str]:
    """The robustness section as a control under ``tm`` sees it, and why it holds no figure.

    ``figures`` keeps the figures measured under ``tm`` (norm, exact domain, attack, strength)
    at ε ≤ ``tm.epsilon``; ``min_robust_accuracy`` is the tightest bound at ``tm.epsilon``: the
    least of them (an attack's figure bounds the true robust accuracy from above, and robust
    accuracy only falls as ε grows), or -1.0 when no figure was measured at ``tm.epsilon`` itself
    — a figure at a smaller ε alone says nothing about whether the model holds at ``tm.epsilon``.
    The reason string is empty when a figure at ``tm.epsilon`` exists.
    """
    figures = section.get("figures")
    figures = [f for f in figures if isinstance(f, Mapping)] if isinstance(figures, list) else []
    eps = [float(f["eps"]) if isinstance(f.get("eps"), (int, float)) else math.nan for f in figures]
    under = [
        (f, e)
        for f, e in zip(figures, eps, strict=True)
        if e <= tm.epsilon * (1 + _REL) and _mismatch(f, tm) is None
    ]
    at_eps = [f for f, e in under if _same(e, tm.epsilon)]
    scoped = dict(section)
    scoped["figures"] = [dict(f) for f, _ in under]
    scoped["threat_model"] = tm.to_dict()
    bound = min((float(f["robust_accuracy"]) for f, _ in under), default=-1.0) if at_eps else -1.0
    scoped["min_robust_accuracy"] = bound
    scoped["by_threat_model"] = (
        [
            {
                "norm": tm.norm,
                "domain": "bounded" if tm.domain is not None else "unbounded",
                "eps": tm.epsilon,
                "robust_accuracy": bound,
                "attacks": sorted({str(f.get("attack")) for f, _ in under}),
                "sources": sorted({str(f.get("source")) for f, _ in under}),
            }
        ]
        if at_eps
        else []
    )
    if at_eps:
        return scoped, ""
    seen = sorted(
        {
            f"eps {e:g}: " + (_mismatch(f, tm) or "matches but at another eps")
            for f, e in zip(figures, eps, strict=True)
        }
    )
    what = "; ".join(seen[:6]) + (f"; … {len(seen) - 6} more" if len(seen) > 6 else "")
    reason = (
        f"the robustness evidence's threat model differs from the control's ({tm.describe()}): "
        + (what if what else "no robust-accuracy figure with a recorded threat model")
    )
    return scoped, reason
