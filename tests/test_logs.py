"""mltrust._logs: the command line's logging, configured when something first logs."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )


def test_a_waiting_configuration_applies_at_the_first_logger() -> None:
    proc = _run(
        "import sys\n"
        "from mltrust import _logs\n"
        "_logs.configure(30)\n"
        "assert 'logging' not in sys.modules\n"
        "log = _logs.logger('mltrust.scan')\n"
        "log.info('not shown')\n"
        "log.warning('shown %s', 1)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "WARNING mltrust.scan: shown 1\n"


def test_now_and_an_imported_logging_configure_at_once() -> None:
    proc = _run(
        "import logging\n"
        "from mltrust import _logs\n"
        "_logs.configure(20)\n"
        "assert logging.getLogger().level == 20 and logging.getLogger().handlers\n"
        "logging.getLogger('other.lib').info('from a library')\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "INFO other.lib: from a library\n"


def test_a_clean_scan_does_not_import_logging_and_v_configures_it(tmp_path: Path) -> None:
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps({"w": [1.0]}, protocol=4))
    code = (
        "import sys, contextlib, io\n"
        "from mltrust.cli._main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main([*sys.argv[1:], 'scan', {str(model)!r}]) == 0\n"
        "if 'logging' in sys.modules:\n"
        "    import logging\n"
        "    print(logging.getLevelName(logging.getLogger().level))\n"
        "else:\n"
        "    print('not imported')\n"
    )
    default = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert default.stdout.strip() == "not imported", default.stderr
    verbose = subprocess.run([sys.executable, "-c", code, "-v"], capture_output=True, text=True)
    assert verbose.stdout.strip() == "INFO", verbose.stderr
    quiet = subprocess.run([sys.executable, "-c", code, "-q"], capture_output=True, text=True)
    assert quiet.stdout.strip() == "ERROR", quiet.stderr  # main() gives stdout back at the end
