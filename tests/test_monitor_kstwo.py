"""KS p-values without scipy.stats: equal to scipy's, branch by branch, and the drift CLI's
asymptotic path (the 100k × 10k case) no longer imports scipy.stats at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from mltrust.monitor import feature_drift
from mltrust.monitor._kstwo import SMIRNOV_MAX_N, _smirnov, kstwo_sf


def _close(a: np.ndarray, b: np.ndarray) -> None:
    for x, y in zip(np.ravel(a), np.ravel(b), strict=True):
        assert x == pytest.approx(y, rel=1e-9, abs=1e-15)


# n ≤ 140 (Durbin, Pomeranz, Smirnov branches), n > 140 (Durbin, Pelz–Good, Smirnov), the
# Ruben–Gambino extremes, and the two sides of the summed-Smirnov limit
@pytest.mark.parametrize("n", [1, 2, 7, 60, 140, 141, 384, 2_000, 9_091, 12_000, 25_000, 25_001])
def test_kstwo_sf_equals_scipy_in_every_branch(n):
    xs = np.concatenate(
        [
            np.linspace(0.0, 1.0, 41),
            np.geomspace(1e-6, 1.0, 40),
            [0.5 / n, 1.0 / n, 1.0 - 1.0 / n, 1.5, -0.1],
            np.sqrt(np.geomspace(0.05, 400.0, 60) / n),  # n x² across every cut-off
        ]
    )
    _close(kstwo_sf(xs, n), stats.kstwo.sf(xs, n))


@pytest.mark.parametrize("n", [10, 1_000, SMIRNOV_MAX_N])
def test_smirnov_sum_equals_scipy_special(n):
    grid = np.concatenate([np.linspace(0.001, 0.999, 25), np.sqrt(np.linspace(1, 50, 25) / n)])
    for x in grid[grid < 1]:
        assert _smirnov(n, float(x)) == pytest.approx(
            float(special.smirnov(n, x)), rel=1e-9, abs=1e-15
        )


def test_kstwo_sf_rejects_a_non_integral_n():
    with pytest.raises(ValueError):
        kstwo_sf(np.array([0.1]), 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        kstwo_sf(np.array([0.1]), 0)


def test_asymptotic_feature_drift_equals_ks_2samp_with_drifted_and_clean_columns():
    """The CLI case in small: more than 10,000 reference rows (scipy's asymptotic choice), with
    drifted columns (the Smirnov tail) and clean ones (Pelz–Good) — p-values as ks_2samp's."""
    rng = np.random.default_rng(7)
    R = rng.normal(size=(12_000, 6))
    C = rng.normal(size=(1_500, 6))
    C[:, :3] += np.array([0.08, 0.15, 0.4])
    feats = feature_drift(R, C, effect_sizes=False)
    for j, f in enumerate(feats):
        ref = stats.ks_2samp(R[:, j], C[:, j])
        assert f.statistic == pytest.approx(ref.statistic, abs=1e-12)
        assert f.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
    assert [f.drift for f in feats][:3] == [True, True, True]


def test_categorical_chi2_equals_chi2_contingency():
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"c": rng.choice(list("abcd"), size=500, p=[0.4, 0.3, 0.2, 0.1])})
    cur = pd.DataFrame({"c": rng.choice(list("abcde"), size=300, p=[0.3, 0.3, 0.2, 0.1, 0.1])})
    (f,) = feature_drift(ref, cur)
    cats, inv = np.unique(np.concatenate([ref["c"], cur["c"]]), return_inverse=True)
    table = np.vstack(
        [np.bincount(inv[:500], minlength=cats.size), np.bincount(inv[500:], minlength=cats.size)]
    )
    chi = stats.chi2_contingency(table, correction=False)
    assert f.test == "chi2"
    assert f.statistic == pytest.approx(chi.statistic, rel=1e-12)
    assert f.p_value == pytest.approx(chi.pvalue, rel=1e-9, abs=1e-15)


def test_drift_cli_asymptotic_path_does_not_import_scipy_stats(tmp_path: Path):
    """``scipy.stats`` costs a fresh process over a second: the CSV → KS → FDR path must not
    import it (nor scipy.special, for statistics within the summed-Smirnov range)."""
    rng = np.random.default_rng(11)
    cols = [f"f{i}" for i in range(4)]
    pd.DataFrame(rng.normal(size=(10_500, 4)), columns=cols).to_csv(tmp_path / "r.csv", index=False)
    cur = rng.normal(size=(800, 4))
    cur[:, 0] += 0.5
    pd.DataFrame(cur, columns=cols).to_csv(tmp_path / "c.csv", index=False)
    code = (
        "import sys\n"
        "from mltrust.cli._main import main\n"
        f"rc = main(['monitor', 'drift', '--reference', {str(tmp_path / 'r.csv')!r}, "
        f"'--current', {str(tmp_path / 'c.csv')!r}, '--no-mmd', '-f', 'json', "
        f"'-o', {str(tmp_path / 'o.json')!r}])\n"
        "print(rc, sorted(m for m in ('scipy.stats', 'scipy.special') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "[]"], proc.stdout + proc.stderr
    assert json.loads((tmp_path / "o.json").read_text())["drifted_features"] == ["f0"]
