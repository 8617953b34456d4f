"""Adversarial training (Madry et al. 2018) for models whose gradients we have.

* ``LogisticRegression`` (and other refittable linear models): rounds of "attack the current
  model on the training set with PGD (or FGSM), refit on clean + adversarial rows";
* ``MLPClassifier``: epochs of ``partial_fit`` on mini-batches mixing clean rows and PGD rows
  crafted against the current weights;
* ``torch.nn.Module``: the standard loop — Adam on the cross-entropy of PGD examples (plus the
  clean loss).

The result carries clean and robust accuracy before and after on the evaluation data (exact
for linear models, PGD otherwise).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mltrust.errors import ConfigError
from mltrust.robust._attacks import exact_linear, fgsm, pgd
from mltrust.robust._models import Classifier, LinearModel, MLPModel, TorchModel, adapt

__all__ = ["HardenResult", "adversarial_training", "evaluate"]


@dataclass(frozen=True, slots=True)
class Scores:
    clean_accuracy: float
    robust_accuracy: float
    method: str


@dataclass(frozen=True, slots=True, eq=False)
class HardenResult:
    model: Any
    before: Scores
    after: Scores
    eps: float
    norm: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "eps": self.eps,
            "norm": self.norm,
            "before": {
                "clean_accuracy": self.before.clean_accuracy,
                "robust_accuracy": self.before.robust_accuracy,
                "method": self.before.method,
            },
            "after": {
                "clean_accuracy": self.after.clean_accuracy,
                "robust_accuracy": self.after.robust_accuracy,
                "method": self.after.method,
            },
        }


def evaluate(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    eps: float,
    *,
    norm: str = "inf",
    lower: Any = None,
    upper: Any = None,
) -> Scores:
    """Clean accuracy and the strongest robust accuracy we can compute for ``model``."""
    clf = adapt(model)
    clean = float(np.mean(clf.predict(X) == y))
    if isinstance(clf, LinearModel) and norm == "inf":
        out = exact_linear(clf, X, y, eps, lower=lower, upper=upper)
        return Scores(clean, out.robust_accuracy, "exact")
    out = pgd(clf, X, y, eps, norm=norm, steps=100, restarts=3, lower=lower, upper=upper)
    return Scores(clean, out.robust_accuracy, "pgd")


def _craft(
    clf: Classifier,
    X: np.ndarray,
    y: np.ndarray,
    eps: float,
    norm: str,
    attack: str,
    lower: Any,
    upper: Any,
    seed: int,
) -> np.ndarray:
    if attack == "fgsm":
        return fgsm(clf, X, y, eps, norm=norm, lower=lower, upper=upper).X_adv
    # training wants the loss-maximising point even when the row is not fooled: CE loss,
    # no early stop benefit needed, so a plain fixed-step PGD run
    out = pgd(
        clf,
        X,
        y,
        eps,
        norm=norm,
        steps=10,
        restarts=1,
        loss="ce",
        lower=lower,
        upper=upper,
        random_state=seed,
    )
    return out.X_adv


def adversarial_training(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    eps: float,
    *,
    X_eval: np.ndarray | None = None,
    y_eval: np.ndarray | None = None,
    norm: str = "inf",
    attack: str = "pgd",
    rounds: int = 5,
    lower: Any = None,
    upper: Any = None,
    random_state: int = 0,
    progress: Callable[[int], None] | None = None,
) -> HardenResult:
    """Return a hardened copy of ``model`` with before/after scores (``model`` is unchanged)."""
    if attack not in ("pgd", "fgsm"):
        raise ConfigError(f"adversarial training supports pgd and fgsm, not {attack!r}")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    Xe = X if X_eval is None else np.asarray(X_eval, dtype=np.float64)
    ye = y if y_eval is None else np.asarray(y_eval)
    before = evaluate(model, Xe, ye, eps, norm=norm, lower=lower, upper=upper)
    clf = adapt(model)
    if isinstance(clf, LinearModel) and hasattr(model, "fit"):
        hardened = _harden_refit(
            model, X, y, eps, norm, attack, rounds, lower, upper, random_state, progress
        )
    elif isinstance(clf, MLPModel):
        hardened = _harden_mlp(
            model, X, y, eps, norm, attack, rounds, lower, upper, random_state, progress
        )
    elif isinstance(clf, TorchModel):
        hardened = _harden_torch(
            clf, X, y, eps, norm, attack, rounds, lower, upper, random_state, progress
        )
    else:
        raise ConfigError(
            f"adversarial training needs a linear model, MLPClassifier or torch module, "
            f"not {type(model).__name__}"
        )
    after = evaluate(hardened, Xe, ye, eps, norm=norm, lower=lower, upper=upper)
    return HardenResult(hardened, before, after, eps, norm)


def _harden_refit(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    eps: float,
    norm: str,
    attack: str,
    rounds: int,
    lower: Any,
    upper: Any,
    seed: int,
    progress: Callable[[int], None] | None,
) -> Any:
    """Linear models: minimise the exact worst-case softmax loss instead of sampling attacks.

    For scores ``W x + b`` the worst case of ``z_j − z_y`` over ``‖δ‖ ≤ ε`` is
    ``z_j − z_y + ε ‖w_j − w_y‖_*`` (dual norm: L1 for L∞, L2 for L2), so the robust
    cross-entropy has a closed form (Goodfellow et al. 2015 §5; Wong & Kolter 2018 for the
    general case). We minimise it with L-BFGS under scikit-learn's L2 penalty ``1/(2C)‖W‖²``,
    starting from the fitted weights. (Sampled PGD-and-refit rounds do worse here: refitting
    on adversarial rows inflates the weights.) The box constraint is ignored while training,
    which only makes the training adversary stronger.
    """
    from scipy.optimize import minimize

    clf = adapt(model)
    if not isinstance(clf, LinearModel):
        raise ConfigError("robust refit needs a linear model")
    yi = clf.label_index(y)
    if np.any(yi < 0):
        raise ConfigError("training labels not among the model's classes")
    k, d = clf.W.shape
    n = X.shape[0]
    C = float(getattr(model, "C", 1.0) or 1.0)
    rows = np.arange(n)
    onehot = np.zeros((n, k))
    onehot[rows, yi] = 1.0
    dual_l1 = norm == "inf"

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W = theta[: k * d].reshape(k, d)
        b = theta[k * d :]
        diff = W[None, :, :] - W[:, None, :]  # diff[y, j] = w_j - w_y
        if dual_l1:
            N = np.abs(diff).sum(axis=2)
            dN = np.sign(diff)
        else:
            N = np.sqrt((diff * diff).sum(axis=2))
            dN = diff / np.maximum(N[:, :, None], 1e-12)
        Z = X @ W.T + b
        A = Z - Z[rows, yi][:, None] + eps * N[yi]
        A[rows, yi] = 0.0
        Am = A.max(axis=1, keepdims=True)
        E = np.exp(A - Am)
        S = E.sum(axis=1, keepdims=True)
        loss = float((np.log(S) + Am).sum())
        P = E / S  # dloss/dA
        P_off = P.copy()
        P_off[rows, yi] = 0.0
        gW = P_off.T @ X  # through z_j
        gb = P_off.sum(axis=0)
        tot = P_off.sum(axis=1)
        gW -= (onehot * tot[:, None]).T @ X  # through -z_y
        gb -= onehot.T @ tot
        # through eps * N[y, j]: d/dw_j = eps*dN[y,j], d/dw_y = -eps*dN[y,j]
        M = onehot.T @ P_off  # M[y, j] = sum of P over rows of class y
        G = eps * (M[:, :, None] * dN)
        gW += G.sum(axis=0)
        gW -= G.sum(axis=1)
        obj = C * loss + 0.5 * float((W * W).sum())
        grad = np.concatenate([(C * gW + W).ravel(), C * gb])
        return obj, grad

    theta0 = np.concatenate([clf.W.ravel(), clf.b])
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    # small matrices: one BLAS thread is faster than several, above all on a busy machine
    with threadpool_limits(limits=1, user_api="blas"):
        res = minimize(
            objective,
            theta0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 100 * max(1, rounds)},
        )
    W = res.x[: k * d].reshape(k, d)
    b = res.x[k * d :]
    hardened = copy.deepcopy(model)
    target = hardened.steps[-1][1] if hasattr(hardened, "steps") else hardened
    if getattr(target, "coef_", None) is not None and np.asarray(target.coef_).shape[0] == 1:
        W, b = (W[1] - W[0])[None, :], np.array([b[1] - b[0]])
    if hasattr(hardened, "steps"):
        raise ConfigError("robust refit of a Pipeline is not supported; harden the bare model")
    target.coef_ = W
    target.intercept_ = b
    if progress is not None:
        progress(1)
    return hardened


def _harden_mlp(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    eps: float,
    norm: str,
    attack: str,
    rounds: int,
    lower: Any,
    upper: Any,
    seed: int,
    progress: Callable[[int], None] | None,
) -> Any:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    hardened = copy.deepcopy(model)
    rng = np.random.default_rng(seed)
    batch = 128
    epochs = max(1, rounds) * 4
    for epoch in range(epochs):
        order = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], batch):
            idx = order[start : start + batch]
            X_adv = _craft(
                MLPModel(hardened), X[idx], y[idx], eps, norm, attack, lower, upper, seed + epoch
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                hardened.partial_fit(np.vstack([X[idx], X_adv]), np.concatenate([y[idx], y[idx]]))
        if progress is not None and epoch % 4 == 3:
            progress(1)
    return hardened


def _harden_torch(
    clf: TorchModel,
    X: np.ndarray,
    y: np.ndarray,
    eps: float,
    norm: str,
    attack: str,
    rounds: int,
    lower: Any,
    upper: Any,
    seed: int,
    progress: Callable[[int], None] | None,
) -> Any:
    import torch

    module = copy.deepcopy(clf.module)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    yi = clf.label_index(y)
    batch = 128
    for epoch in range(max(1, rounds) * 10):
        order = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], batch):
            idx = order[start : start + batch]
            current = TorchModel(module, clf.classes_)
            X_adv = _craft(current, X[idx], y[idx], eps, norm, attack, lower, upper, seed + epoch)
            module.train()
            xb = torch.as_tensor(np.vstack([X[idx], X_adv]), dtype=torch.float32)
            yb = torch.as_tensor(np.concatenate([yi[idx], yi[idx]]), dtype=torch.long)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(module(xb), yb)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            module.eval()
        if progress is not None and epoch % 10 == 9:
            progress(1)
    return module
