"""The example scanner in docs/extending.md works as written.

The code block is copied out of the page into a module and registered beside the shipped
scanners, in a child process (its rule must not leak into this process's rule registry). A
payload behind the made-up format is found through the nested pickle scan, and a truncated file
gets the example's own rule.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"

RUNNER = """
import json, os, pickle, struct, sys
sys.path.insert(0, sys.argv[1])
import myfmt_example
from mltrust.scan import _registry

shipped = _registry.all_scanners()
_registry.all_scanners = lambda: (*shipped, myfmt_example.MyFormatScanner())
from mltrust.scan import scan_paths

class P:
    def __reduce__(self):
        return (os.system, ("echo pwned",))

body = pickle.dumps(P())
evil = os.path.join(sys.argv[1], "evil.myfmt")
short = os.path.join(sys.argv[1], "short.myfmt")
with open(evil, "wb") as fh:
    fh.write(myfmt_example.MAGIC + struct.pack("<I", len(body)) + body)
with open(short, "wb") as fh:
    fh.write(myfmt_example.MAGIC + struct.pack("<I", 999) + pickle.dumps(1))
out = {}
for path in (evil, short):
    result = scan_paths([path]).files[0]
    out[os.path.basename(path)] = {
        "formats": list(result.formats),
        "rules": sorted({(f.rule_id, f.severity.value) for f in result.findings}),
    }
print(json.dumps(out))
"""


def _example() -> str:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (block,) = [b for b in blocks if "class MyFormatScanner" in b]
    return block


def test_the_guide_scanner_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "myfmt_example.py").write_text(_example(), encoding="utf-8")
    (tmp_path / "runner.py").write_text(RUNNER, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "runner.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    evil, short = out["evil.myfmt"], out["short.myfmt"]
    assert "myfmt" in evil["formats"]
    assert any(sev in ("high", "critical") for _, sev in evil["rules"]), evil
    assert ["MLT-EXM-001", "medium"] in short["rules"], short
