"""Real models saved by their own libraries: no finding, and ``mltrust.load`` returns what the
library's loader returns (``scripts/allowlist_evidence.py`` builds the cases)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("torch")


def _evidence() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "scripts" / "allowlist_evidence.py"
    # mltrust: ignore[MLT-CODE-013] this repository's own script, loaded to test it
    spec = importlib.util.spec_from_file_location("allowlist_evidence", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["allowlist_evidence"] = module
    spec.loader.exec_module(module)
    return module


EV = _evidence()
#: Flagged on purpose: SciPy distributions (rv_generic.__setstate__ runs exec on pickled state).
FLAGGED_BY_DESIGN = {"scipy.stats.frozen"}
#: Rules of the pickle analyser (other scanners' findings are their own tests' business).
_OURS = ("MLT-PKL-", "MLT-JBL-")


def test_real_models_are_quiet_and_load_like_their_library() -> None:
    all_cases, _missing = EV.cases()
    assert len(all_cases) > 100
    problems = []
    for case in all_cases:
        row = EV.scan_case(case)
        if case.name in FLAGGED_BY_DESIGN:
            assert row["findings"], f"{case.name} ({case.how}) must be flagged"
            continue
        if row["findings"] or row["load"] != "same":
            problems.append((case.name, case.how, row["findings"][:2], row["load"][:200]))
    assert problems == []


def test_legacy_torch_file_loads_the_object_not_the_magic_number() -> None:
    import io

    import torch

    import mltrust

    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf, _use_new_zipfile_serialization=False)
    loaded = mltrust.load(buf.getvalue())
    assert isinstance(loaded, dict) and torch.equal(loaded["w"], torch.ones(2))


def test_test_data_shipped_in_installed_packages() -> None:
    rows = EV.installed_test_data()
    assert len(rows) > 20
    unexpected = []
    for row in rows:
        for finding in row["findings"]:
            rule = finding.split()[1]
            # Legacy (< 0.10) joblib files in joblib's own test data name sibling .npy files:
            # scanned here as bytes (scan_bytes), which cannot vouch for another file, so
            # medium by design (scan_file scans the sibling: tests/test_scan_benign_fp.py).
            if rule == "MLT-JBL-003" and row["path"].startswith("joblib/test/data/"):
                continue
            if rule.startswith(_OURS):
                unexpected.append((row["path"], finding))
    assert unexpected == []
