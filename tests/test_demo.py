"""The main job: `mltrust demo` runs end to end and every step turns out as it claims."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("httpx")

#: Each claim the demo must make and fulfil (a ✔ line), in order.
EXPECTED_CLAIMS = [
    "model trained",
    "the freshly trained model scans clean",
    "a signing key pair is generated",
    "the model folder is signed",
    "the signature verifies against the pinned public key",
    "training provenance is attested",
    "the scan result is attested",
    "the policy gate passes",
    "a CycloneDX 1.6 ML-BOM names the model",
    "an API key is created",
    "the server is live on 127.0.0.1",
    "the signed, clean model is admitted",
    "a valid, authenticated inference call succeeds",
    "a request without a key is refused (401)",
    "an out-of-range input is rejected before inference (422)",
    "a burst of 30 queries hits the rate limit (429)",
    "the audit log shows who asked what",
    "the audit hash chain verifies",
    "the scanner flags the payload",
    "signature verification names the modified file",
    "admission refuses the swapped model (ready 503)",
    "inference on the refused model is not served",
    "the attacker's command never ran",
    "the restored model verifies again",
    "a one-character change to the serving policy is caught",
]


def test_demo_completes_and_every_step_holds(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "mltrust", "demo", "--workdir", str(work), "--keep"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
    assert "✘" not in out
    passed = [line.strip() for line in out.splitlines() if line.strip().startswith("✔")]
    position = 0
    for claim in EXPECTED_CLAIMS:
        hits = [i for i, line in enumerate(passed) if claim in line and i >= position]
        assert hits, f"claim missing or out of order: {claim}"
        position = hits[0]
    assert "All " in out and "checks turned out as claimed" in out
    # The evidence it says it leaves behind is really there.
    assert (work / "repo" / "iris" / "model.sig").is_file()
    assert (work / "iris.cdx.json").is_file()
    assert (work / "repo" / ".mltrust" / "audit.db").is_file()
    assert not (work / "PWNED-if-this-exists.txt").exists()


def test_demo_refuses_non_empty_workdir(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "mltrust", "demo", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "not empty" in proc.stderr
