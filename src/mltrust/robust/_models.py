"""Model adapters: one small interface over the classifiers we attack.

Every adapter gives the model's true prediction (``predict``) and, where the model is
differentiable, class scores (``logits``) with their vector-Jacobian product (``logits_vjp``)
computed from the fitted parameters themselves — no finite differences, no framework needed
for scikit-learn models:

* linear models (``LogisticRegression`` binary and multinomial, ``LinearSVC``, ``SGDClassifier``,
  ``RidgeClassifier``, binary ``SVC(kernel='linear')``): scores ``X W^T + b``;
* ``MLPClassifier``: a forward pass through ``coefs_``/``intercepts_`` and back-propagation;
* ``SVC`` (linear or RBF kernel, one-vs-one): the pairwise decision functions from the support
  vectors and dual coefficients; the class score is the sum of a class's signed pairwise values
  (a smooth surrogate of the vote; success is always checked with the real ``predict``);
* ``torch.nn.Module`` (the ``torch`` extra, imported lazily): autograd;
* anything with ``predict`` (and maybe ``predict_proba``): a query-counting black box.

``Pipeline``s whose steps before the classifier are ``StandardScaler``, ``MinMaxScaler`` or
``MaxAbsScaler`` are unwrapped into an element-wise affine map, so gradients and the exact
linear method see the raw feature space.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from mltrust.errors import ConfigError

__all__ = [
    "BlackBoxModel",
    "Classifier",
    "LinearModel",
    "MLPModel",
    "SVCModel",
    "TorchModel",
    "adapt",
]


class Classifier:
    """Adapter base: ``predict`` counts queries; ``logits``/``logits_vjp`` where differentiable."""

    classes_: np.ndarray
    differentiable: bool = False
    #: what the adapter wraps, for reports
    kind: str = "model"

    def __init__(self) -> None:
        self.queries = 0

    def _predict_index(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(np.argmax(self.logits(X), axis=1))

    def predict_index(self, X: np.ndarray) -> np.ndarray:
        """Index into ``classes_`` of the model's prediction for each row (counts queries)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        self.queries += X.shape[0]
        return self._predict_index(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_index(X)])

    def label_index(self, y: np.ndarray) -> np.ndarray:
        """Map labels to indices into ``classes_``; unknown labels give -1 (never correct)."""
        y = np.asarray(y)
        order = np.argsort(self.classes_)
        sorted_classes = self.classes_[order]
        pos = np.searchsorted(sorted_classes, y)
        pos = np.clip(pos, 0, len(sorted_classes) - 1)
        found = sorted_classes[pos] == y
        return np.where(found, order[pos], -1)

    def logits(self, X: np.ndarray) -> np.ndarray:
        raise ConfigError(f"{self.kind}: model has no gradients; use a black-box attack")

    def logits_vjp(self, X: np.ndarray, G: np.ndarray) -> np.ndarray:
        """Gradient of ``sum(G * logits(X))`` with respect to ``X``."""
        raise ConfigError(f"{self.kind}: model has no gradients; use a black-box attack")

    def proba(self, X: np.ndarray) -> np.ndarray:
        z = self.logits(X)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        out: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return out


class _Affine:
    """x -> (x - shift) * scale, element-wise (the scalers a Pipeline may hold)."""

    def __init__(self, shift: np.ndarray, scale: np.ndarray) -> None:
        self.shift = shift
        self.scale = scale

    def __call__(self, X: np.ndarray) -> np.ndarray:
        out: np.ndarray = (X - self.shift) * self.scale
        return out

    def then(self, other: _Affine) -> _Affine:
        # other((x - s1) * k1) = ((x - s1) * k1 - s2) * k2 = (x - (s1 + s2 / k1)) * k1 k2
        safe = np.where(self.scale == 0, 1.0, self.scale)
        return _Affine(self.shift + other.shift / safe, self.scale * other.scale)


def _scaler_affine(step: Any, d: int) -> _Affine:
    name = type(step).__name__
    if name == "StandardScaler":
        mean = step.mean_ if step.mean_ is not None else np.zeros(d)
        scale = step.scale_ if step.scale_ is not None else np.ones(d)
        return _Affine(np.asarray(mean, float), 1.0 / np.asarray(scale, float))
    if name == "MinMaxScaler":
        # x * scale_ + min_ = (x + min_/scale_) * scale_
        scale = np.asarray(step.scale_, float)
        safe = np.where(scale == 0, 1.0, scale)
        return _Affine(-np.asarray(step.min_, float) / safe, scale)
    if name == "MaxAbsScaler":
        return _Affine(np.zeros(d), 1.0 / np.asarray(step.scale_, float))
    raise ConfigError(f"pipeline step {name} is not supported for gradients")


class LinearModel(Classifier):
    """Scores ``A(x) W^T + b`` (A: optional element-wise affine preprocessing)."""

    differentiable = True
    kind = "linear"

    def __init__(
        self,
        W: np.ndarray,
        b: np.ndarray,
        classes: np.ndarray,
        pre: _Affine | None = None,
        model: Any = None,
    ) -> None:
        super().__init__()
        W = np.atleast_2d(np.asarray(W, dtype=np.float64))
        b = np.atleast_1d(np.asarray(b, dtype=np.float64))
        if W.shape[0] == 1 and len(classes) == 2:  # binary: scores [0, z]
            W = np.vstack([np.zeros_like(W), W])
            b = np.concatenate([[0.0], b])
        if W.shape[0] != len(classes):
            raise ConfigError("linear model: coefficient rows do not match the classes")
        self.classes_ = np.asarray(classes)
        self.model = model
        if pre is not None:  # fold the affine map into the weights: W((x - s) k) + b
            W, b = W * pre.scale, b - (W * pre.scale) @ pre.shift
        self.W = W
        self.b = b

    def logits(self, X: np.ndarray) -> np.ndarray:
        out: np.ndarray = X @ self.W.T + self.b
        return out

    def logits_vjp(self, X: np.ndarray, G: np.ndarray) -> np.ndarray:
        out: np.ndarray = G @ self.W
        return out


_ACTS = ("identity", "logistic", "tanh", "relu")


def _act(name: str, Z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.asarray(np.maximum(Z, 0.0))
    if name == "tanh":
        return np.asarray(np.tanh(Z))
    if name == "logistic":
        out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * Z))
        return out
    return Z


def _act_grad(name: str, Z: np.ndarray, A: np.ndarray) -> np.ndarray:
    if name == "relu":
        return (Z > 0).astype(np.float64)
    if name == "tanh":
        return np.asarray(1.0 - A * A)
    if name == "logistic":
        return A * (1.0 - A)
    return np.ones_like(Z)


class MLPModel(Classifier):
    """``MLPClassifier``: forward pass through the fitted layers and back-propagation."""

    differentiable = True
    kind = "mlp"

    def __init__(self, model: Any, pre: _Affine | None = None) -> None:
        super().__init__()
        if getattr(model, "activation", None) not in _ACTS:
            raise ConfigError("MLPClassifier with an unknown activation")
        if getattr(model, "out_activation_", "softmax") not in ("softmax", "logistic"):
            raise ConfigError("MLPClassifier output activation not supported")
        if getattr(model, "n_outputs_", 1) > 1 and model.out_activation_ == "logistic":
            raise ConfigError("multi-label MLPClassifier is not supported")
        self.model = model
        self.coefs = [np.asarray(c, dtype=np.float64) for c in model.coefs_]
        self.intercepts = [np.asarray(c, dtype=np.float64) for c in model.intercepts_]
        self.activation = str(model.activation)
        self.binary = model.out_activation_ == "logistic"
        self.classes_ = np.asarray(model.classes_)
        self.pre = pre

    def _forward(self, X: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        A = self.pre(X) if self.pre is not None else X
        acts, pres = [A], []
        last = len(self.coefs) - 1
        for i, (W, b) in enumerate(zip(self.coefs, self.intercepts, strict=True)):
            Z = A @ W + b
            pres.append(Z)
            A = Z if i == last else _act(self.activation, Z)
            acts.append(A)
        return acts, pres

    def hidden(self, X: np.ndarray) -> np.ndarray:
        """Activations of the last hidden layer (for activation clustering)."""
        acts, _ = self._forward(X)
        return acts[-2]

    def logits(self, X: np.ndarray) -> np.ndarray:
        acts, _ = self._forward(X)
        z = acts[-1]
        if self.binary:
            z = np.hstack([np.zeros_like(z), z])
        return z

    def logits_vjp(self, X: np.ndarray, G: np.ndarray) -> np.ndarray:
        acts, pres = self._forward(X)
        delta = G[:, 1:2] if self.binary else G
        for i in range(len(self.coefs) - 1, -1, -1):
            grad_a = delta @ self.coefs[i].T
            if i == 0:
                break
            delta = grad_a * _act_grad(self.activation, pres[i - 1], acts[i])
        if self.pre is not None:
            grad_a = grad_a * self.pre.scale
        return grad_a


class SVCModel(Classifier):
    """``SVC`` with a linear or RBF kernel (one-vs-one), differentiable through its kernel."""

    differentiable = True
    kind = "svc"

    def __init__(self, model: Any, pre: _Affine | None = None) -> None:
        super().__init__()
        kernel = getattr(model, "kernel", None)
        if kernel not in ("linear", "rbf"):
            raise ConfigError(f"SVC kernel {kernel!r} is not supported for gradients")
        self.model = model
        self.pre = pre
        self.kernel = kernel
        self.classes_ = np.asarray(model.classes_)
        self.sv = np.asarray(model.support_vectors_, dtype=np.float64)
        gamma = getattr(model, "_gamma", None)
        self.gamma = float(gamma if gamma is not None else 1.0)
        dual = np.asarray(model.dual_coef_, dtype=np.float64)
        n_sup = np.asarray(model.n_support_)
        start = np.concatenate([[0], np.cumsum(n_sup)])
        k = len(self.classes_)
        # pairwise coefficient vectors over all support vectors, libsvm ordering (i<j)
        pairs: list[tuple[int, int]] = []
        coef_rows: list[np.ndarray] = []
        for i in range(k):
            for j in range(i + 1, k):
                row = np.zeros(self.sv.shape[0])
                si, sj = slice(start[i], start[i + 1]), slice(start[j], start[j + 1])
                row[si] = dual[j - 1, si]
                row[sj] = dual[i, sj]
                coef_rows.append(row)
                pairs.append((i, j))
        self.pairs = pairs
        self.C = np.vstack(coef_rows)  # (P, n_sv)
        self.intercept = np.asarray(model.intercept_, dtype=np.float64)
        # scikit-learn's sign convention: positive pairwise value votes for the first class
        # of the pair in its ovo decision function; binary SVC flips it (positive -> classes_[1])
        self.sign = -1.0 if k == 2 else 1.0
        M = np.zeros((len(pairs), k))
        for p, (i, j) in enumerate(pairs):
            M[p, i] += 1.0
            M[p, j] -= 1.0
        self.M = M

    def _kernel(self, A: np.ndarray) -> np.ndarray:
        if self.kernel == "linear":
            out: np.ndarray = A @ self.sv.T
            return out
        sq = (A * A).sum(1)[:, None] + (self.sv * self.sv).sum(1)[None, :] - 2 * A @ self.sv.T
        return np.asarray(np.exp(-self.gamma * np.maximum(sq, 0.0)))

    def pairwise(self, X: np.ndarray) -> np.ndarray:
        A = self.pre(X) if self.pre is not None else X
        out: np.ndarray = self._kernel(A) @ self.C.T + self.intercept
        return out

    def _predict_index(self, X: np.ndarray) -> np.ndarray:
        if len(self.classes_) == 2:
            return (self.sign * self.pairwise(X)[:, 0] < 0).astype(np.int64)
        return np.asarray(np.searchsorted(self.classes_, self.model.predict(X)))

    def logits(self, X: np.ndarray) -> np.ndarray:
        # pairwise value f_ij > 0 votes for i; class score = sum of signed pairwise values
        F = self.sign * self.pairwise(X)
        out: np.ndarray = F @ self.M
        return out

    def logits_vjp(self, X: np.ndarray, G: np.ndarray) -> np.ndarray:
        A = self.pre(X) if self.pre is not None else X
        GF = self.sign * (G @ self.M.T)  # (n, P): d/d pairwise
        GK = GF @ self.C  # (n, n_sv): d/d kernel values
        if self.kernel == "linear":
            grad: np.ndarray = GK @ self.sv
        else:
            K = self._kernel(A)
            W = GK * K  # (n, n_sv)
            grad = -2 * self.gamma * (W.sum(1)[:, None] * A - W @ self.sv)
        if self.pre is not None:
            grad = grad * self.pre.scale
        return grad


class TorchModel(Classifier):
    """A ``torch.nn.Module`` returning class scores (the ``torch`` extra; imported lazily)."""

    differentiable = True
    kind = "torch"

    def __init__(self, module: Any, classes: np.ndarray | None = None) -> None:
        super().__init__()
        import torch

        self.torch = torch
        self.module = module
        try:
            module.eval()
        except NotImplementedError:
            pass  # torch.export programs: fixed at export time, no train/eval switch
        if classes is None:
            with torch.no_grad():
                probe = module(torch.zeros(1, self._in_features(), dtype=torch.float32))
            classes = np.arange(int(probe.shape[-1]))
        self.classes_ = np.asarray(classes)

    def _in_features(self) -> int:
        for p in self.module.parameters():
            if p.dim() == 2:
                return int(p.shape[1])
        raise ConfigError("torch module: cannot infer the input width; pass classes=")

    def logits(self, X: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.no_grad():
            out = self.module(torch.as_tensor(X, dtype=torch.float32))
        z: np.ndarray = out.double().numpy()
        return z

    def logits_vjp(self, X: np.ndarray, G: np.ndarray) -> np.ndarray:
        torch = self.torch
        xt = torch.as_tensor(X, dtype=torch.float32).clone().requires_grad_(True)
        out = self.module(xt)
        (grad,) = torch.autograd.grad(out, xt, grad_outputs=torch.as_tensor(G, dtype=out.dtype))
        g: np.ndarray = grad.double().numpy()
        return g


class BlackBoxModel(Classifier):
    """Any object with ``predict`` (and optionally ``predict_proba``); counts queries."""

    kind = "black-box"

    def __init__(self, model: Any, classes: np.ndarray | None = None) -> None:
        super().__init__()
        if not callable(getattr(model, "predict", None)):
            raise ConfigError(f"{type(model).__name__} has no predict method")
        self.model = model
        cls = classes if classes is not None else getattr(model, "classes_", None)
        if cls is None:
            raise ConfigError("black-box model: classes unknown; pass classes=")
        self.classes_ = np.asarray(cls)

    def _predict_index(self, X: np.ndarray) -> np.ndarray:
        return self.label_index(np.asarray(self.model.predict(X)))

    def proba(self, X: np.ndarray) -> np.ndarray:
        if callable(getattr(self.model, "predict_proba", None)):
            p: np.ndarray = np.asarray(self.model.predict_proba(X), dtype=np.float64)
            return p
        idx = self._predict_index(X)
        out = np.zeros((X.shape[0], len(self.classes_)))
        out[np.arange(len(idx)), idx] = 1.0
        return out


def _unwrap_pipeline(model: Any) -> tuple[Any, _Affine | None]:
    steps = getattr(model, "steps", None)
    if not isinstance(steps, list) or not steps:
        return model, None
    final = steps[-1][1]
    d = int(getattr(model, "n_features_in_", 0) or getattr(final, "n_features_in_", 0))
    pre: _Affine | None = None
    for _, step in steps[:-1]:
        if step is None or step == "passthrough":
            continue
        aff = _scaler_affine(step, d)
        pre = aff if pre is None else pre.then(aff)
    return final, pre


def adapt(model: Any, *, classes: np.ndarray | None = None) -> Classifier:
    """Wrap ``model`` in the most capable adapter (gradients when possible)."""
    if isinstance(model, Classifier):
        return model
    # a torch module can only exist once torch is imported: never import it just to ask
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return TorchModel(model, classes)
    try:
        inner, pre = _unwrap_pipeline(model)
    except ConfigError:
        return BlackBoxModel(model, classes)
    name = type(inner).__name__
    if name == "MLPClassifier" and hasattr(inner, "coefs_"):
        return MLPModel(inner, pre)
    if name == "SVC" and hasattr(inner, "dual_coef_"):
        if inner.kernel == "linear" and len(inner.classes_) == 2:
            return LinearModel(inner.coef_, inner.intercept_, inner.classes_, pre, model)
        if inner.kernel in ("linear", "rbf"):
            return SVCModel(inner, pre)
    linear = {
        "LogisticRegression",
        "LogisticRegressionCV",
        "LinearSVC",
        "SGDClassifier",
        "RidgeClassifier",
        "RidgeClassifierCV",
        "Perceptron",
        "PassiveAggressiveClassifier",
    }
    if name in linear and hasattr(inner, "coef_") and hasattr(inner, "classes_"):
        multi_class = getattr(inner, "multi_class", "auto")
        if multi_class not in ("auto", "multinomial", "ovr", "deprecated", None):
            return BlackBoxModel(model, classes)
        return LinearModel(inner.coef_, inner.intercept_, inner.classes_, pre, model)
    return BlackBoxModel(model, classes)
