"""Label-flip detection: mltrust's label audit vs cleanlab, on the same out-of-sample
probabilities (5-fold, standardised LogisticRegression(C=0.1), the audit's default estimator).

breast_cancer and digits; 0%, 5% and 10% of labels flipped to another class uniformly at
random; 5 seeds. Prints recall (flips flagged) and the false-flag rate (clean rows flagged),
and whether the clean data set would pass `mltrust robustness poisoning` (≤ 2% flagged).
cleanlab is a benchmark-only dependency (the ``bench`` extra).
"""

from __future__ import annotations

import warnings

import numpy as np


def main() -> None:
    warnings.simplefilter("ignore")
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mltrust.robust import audit_labels

    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        find_label_issues = None
        print("cleanlab is not installed (pip install 'mltrust[bench]'): its column is left out")
    for name, loader in (("breast_cancer", load_breast_cancer), ("digits", load_digits)):
        X, y0 = loader(return_X_y=True)
        k = int(y0.max()) + 1
        for rate in (0.0, 0.05, 0.10):
            ours, theirs = [], []
            for seed in range(5):
                rng = np.random.default_rng(seed)
                y = y0.copy()
                flip = rng.random(y.size) < rate
                y[flip] = (y[flip] + rng.integers(1, k, flip.sum())) % k
                audit = audit_labels(X, y, random_state=seed)
                mask = np.zeros(y.size, dtype=bool)
                mask[audit.suspects] = True
                ours.append((mask & flip).sum() / max(flip.sum(), 1))
                ours.append((mask & ~flip).sum() / y.size)
                if find_label_issues is not None:
                    est = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
                    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
                    P = cross_val_predict(est, X, y, cv=folds, method="predict_proba")
                    m2 = find_label_issues(y, P)
                    theirs.append((m2 & flip).sum() / max(flip.sum(), 1))
                    theirs.append((m2 & ~flip).sum() / y.size)
            o = np.array(ours).reshape(-1, 2).mean(axis=0)
            line = (
                f"{name:<14} {rate:>4.0%} flipped: mltrust recall {o[0]:.3f} false-flag {o[1]:.4f}"
            )
            if theirs:
                t = np.array(theirs).reshape(-1, 2).mean(axis=0)
                line += f" | cleanlab recall {t[0]:.3f} false-flag {t[1]:.4f}"
            if rate == 0:
                line += f" | clean passes (≤2%): {'yes' if o[1] <= 0.02 else 'NO'}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
