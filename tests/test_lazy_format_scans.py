"""Every process imports every format scanner (each one sniffs every file), but the work of a
scan is imported only when its format is scanned: ``formats/<name>.py`` holds the scanner and
what its sniff needs, ``formats/_<name>_scan.py`` the rest. A clean scan of a small pickle
must not import the scanning implementation of any other format."""

from __future__ import annotations

import importlib
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

#: The implementation modules split out of their format modules.
MOVED = (
    "mltrust.scan.formats._compressed_scan",
    "mltrust.scan.formats._config_scan",
    "mltrust.scan.formats._gguf_scan",
    "mltrust.scan.formats._hdf5_scan",
    "mltrust.scan.formats._numpy_scan",
    "mltrust.scan.formats._safetensors_scan",
    "mltrust.scan.formats._tar_scan",
    "mltrust.scan.formats._tensorflow_scan",
)

_PROBE = """
import json
import sys
from mltrust.cli._main import main
try:
    code = main(["scan", "--no-progress", sys.argv[1]])
except SystemExit as exc:
    code = exc.code
print("exit", code or 0)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("mltrust.scan.formats."))))
"""


def test_clean_pickle_scan_imports_no_other_format_implementation(tmp_path: Path) -> None:
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"w": [0.5] * 64}, protocol=4))
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    *_, status, listed = proc.stdout.strip().splitlines()
    assert status == "exit 0", proc.stdout + proc.stderr
    modules = set(json.loads(listed))
    # Every scanner was loaded (each sniffed the file) ...
    for name in ("tar", "tensorflow", "hdf5", "config", "safetensors", "gguf", "numpy"):
        assert f"mltrust.scan.formats.{name}" in modules
    # ... and none of their scanning implementations.
    assert modules.isdisjoint(MOVED), sorted(modules.intersection(MOVED))


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("compressed", ("Inflated", "inflate")),
        ("config", ("judge_target",)),
        ("gguf", ("GGML_TYPE_SIZES",)),
        ("hdf5", ("RootAttributes", "read_root_attributes")),
        ("numpy", ("NpyHeader", "parse_literal", "parse_npy_header")),
    ],
)
def test_public_names_stay_importable_from_the_format_module(
    module: str, names: tuple[str, ...]
) -> None:
    light = importlib.import_module(f"mltrust.scan.formats.{module}")
    heavy = importlib.import_module(f"mltrust.scan.formats._{module}_scan")
    for name in names:
        assert name in light.__all__
        assert getattr(light, name) is getattr(heavy, name)
