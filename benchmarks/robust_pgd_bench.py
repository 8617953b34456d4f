"""Is the default attack at least as strong as ART's PGD and AutoPGD-CE? Side by side, per row.

Models (digits ÷ 16, stratified 70/30 split, L∞, box [0, 1]):
1. LogisticRegression(max_iter=5000), ε = 0.1, 0.2;
2. a torch MLP (64-64) trained adversarially (PGD-7 at ε=0.1, 20 epochs), ε = 0.1, 0.2.

For each: robust accuracy under mltrust's PGD default (cross-entropy + margin restarts, 100
steps × 3 restarts), mltrust ``--attack auto`` (PGD ensemble + AutoPGD-CE + AutoPGD-margin;
the exact optimum for the linear model), ART's ProjectedGradientDescent (100 iterations,
step ε/4, 3 random inits) and ART's AutoProjectedGradientDescent (cross-entropy, 100
iterations, 3 random inits), and the rows ART breaks that ours does not. ART is imported
in-process when installed (the ``bench`` extra); otherwise its columns say so.
``python benchmarks/robust_pgd_bench.py [lr|mlp]`` runs one model only.
"""

from __future__ import annotations

import time
import warnings

import numpy as np


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3, stratify=y, random_state=0)
    return Xtr, Xte, ytr, yte


def _torch_mlp(Xtr: np.ndarray, ytr: np.ndarray) -> object:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 10),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    X = torch.tensor(Xtr, dtype=torch.float32)
    y = torch.tensor(ytr)
    eps, alpha = 0.1, 0.025
    for _ in range(20):
        perm = torch.randperm(X.shape[0])
        for i in range(0, X.shape[0], 64):
            xb, yb = X[perm[i : i + 64]], y[perm[i : i + 64]]
            adv = (xb + torch.empty_like(xb).uniform_(-eps, eps)).clamp(0, 1)
            for _ in range(7):
                adv.requires_grad_(True)
                loss = torch.nn.functional.cross_entropy(net(adv), yb)
                (g,) = torch.autograd.grad(loss, adv)
                adv = torch.min(torch.max(adv.detach() + alpha * g.sign(), xb - eps), xb + eps)
                adv = adv.clamp(0, 1)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(adv), yb).backward()
            opt.step()
    net.eval()
    return net


def _ours(model: object, X: np.ndarray, y: np.ndarray, eps: float) -> dict[str, np.ndarray]:
    from mltrust.robust import adapt, apgd, exact_linear, pgd
    from mltrust.robust._models import LinearModel

    clf = adapt(model)
    kw = {"lower": 0.0, "upper": 1.0}
    out = {"ours pgd": pgd(clf, X, y, eps, steps=100, restarts=3, **kw).fooled}
    if isinstance(clf, LinearModel):
        out["ours auto"] = exact_linear(clf, X, y, eps, **kw).fooled
    else:
        f = out["ours pgd"].copy()
        for loss in ("ce", "margin"):
            f |= apgd(clf, X, y, eps, steps=100, restarts=3, loss=loss, **kw).fooled
        out["ours auto"] = f
    return out


def _art(model: object, X: np.ndarray, y: np.ndarray, eps: float) -> dict[str, np.ndarray]:
    try:
        from art.attacks.evasion import AutoProjectedGradientDescent, ProjectedGradientDescent
        from art.estimators.classification import PyTorchClassifier, SklearnClassifier
    except ImportError:
        return {}
    import torch

    if isinstance(model, torch.nn.Module):
        est = PyTorchClassifier(
            model, loss=torch.nn.CrossEntropyLoss(), input_shape=(64,), nb_classes=10,
            clip_values=(0.0, 1.0),
        )  # fmt: skip
        Xa = X.astype(np.float32)
    else:
        est = SklearnClassifier(model, clip_values=(0.0, 1.0))
        Xa = X
    onehot = np.eye(10)[y]
    pgd = ProjectedGradientDescent(
        est, norm=np.inf, eps=eps, eps_step=eps / 4, max_iter=100, num_random_init=3,
        verbose=False,
    )  # fmt: skip
    try:
        apgd: object = AutoProjectedGradientDescent(
            est, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=100, nb_random_init=3,
            loss_type="cross_entropy", verbose=False,
        )  # fmt: skip
    except ValueError:  # ART's AutoPGD takes no cross-entropy loss from a scikit-learn model
        apgd = None
    out = {}
    for name, attack in (("ART pgd", pgd), ("ART apgd-ce", apgd)):
        if attack is None:
            continue
        adv = attack.generate(Xa, y=onehot)
        out[name] = np.argmax(est.predict(adv), axis=1) != y
    return out


def main() -> None:
    import sys

    import torch

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)  # tiny matrices: more threads only contend on a shared machine
    from sklearn.linear_model import LogisticRegression

    Xtr, Xte, ytr, yte = _digits()
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    models: dict[str, object] = {}
    if only in ("", "lr"):
        models["LogisticRegression"] = LogisticRegression(max_iter=5000).fit(Xtr, ytr)
    if only in ("", "mlp"):
        models["adv-trained torch MLP"] = _torch_mlp(Xtr, ytr)
    try:
        import art  # noqa: F401
    except ImportError:
        print("ART is not installed (pip install 'mltrust[bench]'): its columns are left out")
    for name, model in models.items():
        for eps in (0.1, 0.2):
            t = time.perf_counter()
            res = {**_ours(model, Xte, yte, eps), **_art(model, Xte, yte, eps)}
            acc = "  ".join(f"{k} {1 - v.mean():.3f}" for k, v in res.items())
            print(f"{name} ε={eps}: robust accuracy  {acc}  ({time.perf_counter() - t:.0f}s)")
            for ours in ("ours pgd", "ours auto"):
                for theirs in ("ART pgd", "ART apgd-ce"):
                    if theirs in res:
                        miss = int(np.sum(res[theirs] & ~res[ours]))
                        print(f"    rows {theirs} breaks that {ours} does not: {miss}")


if __name__ == "__main__":
    main()
