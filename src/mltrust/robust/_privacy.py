"""Membership inference: does the model reveal which records it was trained on?

Three attacks, each scored on a balanced set of members (training rows) and non-members
(held-out rows from the same distribution):

* **loss threshold** (Yeom et al. 2018): members have lower loss; score = −cross-entropy;
* **confidence threshold**: score = the top predicted probability;
* **shadow models** (Shokri et al. 2017): clones of the model are trained on half of an
  attacker-held split of the holdout data; an attack classifier learns to tell their members
  from their non-members from ``(log p_true, log p_max, entropy)`` and is then applied to the
  target. Needs a scikit-learn estimator that ``sklearn.base.clone`` can copy.

Each attack reports ROC AUC (0.5 = no leakage) and membership advantage ``max(TPR − FPR)``
(Yeom et al.), the best accuracy gain over guessing that any threshold achieves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mltrust.errors import ConfigError
from mltrust.robust._models import Classifier, adapt

__all__ = ["AttackScore", "MembershipReport", "membership_inference", "roc_auc_advantage"]


@dataclass(frozen=True, slots=True)
class AttackScore:
    name: str
    auc: float
    advantage: float


@dataclass(frozen=True, slots=True)
class MembershipReport:
    attacks: tuple[AttackScore, ...]
    members: int
    non_members: int
    train_accuracy: float
    holdout_accuracy: float
    notes: tuple[str, ...] = ()

    @property
    def worst(self) -> AttackScore:
        return max(self.attacks, key=lambda a: a.auc)

    def to_dict(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "non_members": self.non_members,
            "train_accuracy": self.train_accuracy,
            "holdout_accuracy": self.holdout_accuracy,
            "attacks": [
                {"name": a.name, "auc": a.auc, "advantage": a.advantage} for a in self.attacks
            ],
            "max_auc": self.worst.auc,
            "max_advantage": max(a.advantage for a in self.attacks),
            "notes": list(self.notes),
        }


def roc_auc_advantage(scores_in: np.ndarray, scores_out: np.ndarray) -> tuple[float, float]:
    """ROC AUC (ties count half) and ``max(TPR − FPR)`` for "higher score = member"."""
    from scipy.stats import rankdata

    n1, n0 = scores_in.size, scores_out.size
    if n1 == 0 or n0 == 0:
        raise ConfigError("membership inference needs members and non-members")
    ranks = rankdata(np.concatenate([scores_in, scores_out]))
    auc = (ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    thresholds = np.unique(np.concatenate([scores_in, scores_out]))
    s_in, s_out = np.sort(scores_in), np.sort(scores_out)
    tpr = 1.0 - np.searchsorted(s_in, thresholds, side="left") / n1
    fpr = 1.0 - np.searchsorted(s_out, thresholds, side="left") / n0
    adv = float(np.max(np.concatenate([[0.0], tpr - fpr])))
    return float(auc), adv


def _features(model: Classifier, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    P = np.clip(model.proba(X), 1e-12, 1.0)
    yi = model.label_index(y)
    p_true = np.where(yi >= 0, P[np.arange(len(yi)), np.maximum(yi, 0)], 1e-12)
    entropy = -(P * np.log(P)).sum(axis=1)
    return np.column_stack([np.log(p_true), np.log(P.max(axis=1)), entropy])


def membership_inference(
    model: Any,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_holdout: np.ndarray,
    y_holdout: np.ndarray,
    *,
    shadow: bool = True,
    n_shadow: int = 4,
    random_state: int = 0,
) -> MembershipReport:
    """Run the three attacks; see the module docstring."""
    clf = adapt(model)
    rng = np.random.default_rng(random_state)
    X_train, X_holdout = np.asarray(X_train, float), np.asarray(X_holdout, float)
    if X_train.shape[0] < 4 or X_holdout.shape[0] < 4:
        raise ConfigError("membership inference needs at least 4 members and 4 non-members")
    notes: list[str] = []
    # split the holdout: half for the attacker's shadow training, half for evaluation
    perm = rng.permutation(X_holdout.shape[0])
    use_shadow = shadow and X_holdout.shape[0] >= 40 and _clonable(model)
    if shadow and not use_shadow:
        notes.append(
            "shadow-model attack skipped (needs a clonable estimator and 40+ holdout rows)"
        )
    if use_shadow:
        half = X_holdout.shape[0] // 2
        attacker, evaluation = perm[:half], perm[half:]
    else:
        attacker, evaluation = perm[:0], perm
    m = min(evaluation.size, X_train.shape[0])
    mem = rng.choice(X_train.shape[0], size=m, replace=False)
    non = evaluation[:m]
    Xi, yi_ = X_train[mem], np.asarray(y_train)[mem]
    Xo, yo = X_holdout[non], np.asarray(y_holdout)[non]
    Fi, Fo = _features(clf, Xi, yi_), _features(clf, Xo, yo)
    attacks = [
        AttackScore("loss-threshold", *roc_auc_advantage(Fi[:, 0], Fo[:, 0])),
        AttackScore("confidence-threshold", *roc_auc_advantage(Fi[:, 1], Fo[:, 1])),
    ]
    if use_shadow:
        attacks.append(
            _shadow_attack(
                model, X_holdout[attacker], np.asarray(y_holdout)[attacker], Fi, Fo, n_shadow, rng
            )
        )
    acc_in = float(np.mean(clf.predict(X_train) == np.asarray(y_train)))
    acc_out = float(np.mean(clf.predict(X_holdout) == np.asarray(y_holdout)))
    return MembershipReport(tuple(attacks), m, m, acc_in, acc_out, tuple(notes))


def _clonable(model: Any) -> bool:
    try:
        from sklearn.base import clone

        clone(model)
    except Exception:  # noqa: BLE001 - anything clone() rejects means "not an sklearn estimator"
        return False
    return True


def _shadow_attack(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    Fi: np.ndarray,
    Fo: np.ndarray,
    n_shadow: int,
    rng: np.random.Generator,
) -> AttackScore:
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    feats: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for _ in range(max(1, n_shadow)):
        perm = rng.permutation(X.shape[0])
        half = X.shape[0] // 2
        ins, outs = perm[:half], perm[half:]
        if np.unique(y[ins]).size < 2:
            continue
        shadow = clone(model).fit(X[ins], y[ins])
        sclf = adapt(shadow)
        feats += [_features(sclf, X[ins], y[ins]), _features(sclf, X[outs], y[outs])]
        labels += [np.ones(ins.size), np.zeros(outs.size)]
    if not feats:
        raise ConfigError("shadow models could not be trained (too few classes in the holdout)")
    F, L = np.vstack(feats), np.concatenate(labels)
    scaler = StandardScaler().fit(F)
    attack = LogisticRegression(max_iter=1000).fit(scaler.transform(F), L)
    si = attack.decision_function(scaler.transform(Fi))
    so = attack.decision_function(scaler.transform(Fo))
    return AttackScore("shadow-model", *roc_auc_advantage(si, so))
