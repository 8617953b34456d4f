"""mltrust's own SBOM (`make sbom`): complete for the installed environment and strictly valid."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path) -> dict[str, object]:
    out = tmp_path / "mltrust.cdx.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "self_sbom.py"), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert isinstance(doc, dict)
    return doc


def test_self_sbom_is_strictly_valid_cyclonedx_16(tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    doc = _run(tmp_path)
    assert doc["specVersion"] == "1.6"
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    assert error is None, error


def test_self_sbom_lists_every_core_dependency_at_its_installed_version(tmp_path: Path) -> None:
    doc = _run(tmp_path)
    meta = doc["metadata"]
    assert isinstance(meta, dict)
    assert meta["component"]["name"] == "mltrust"
    components = doc["components"]
    assert isinstance(components, list)
    by_name = {str(canonicalize_name(c["name"])): c for c in components}
    core = metadata.distribution("mltrust").requires or []
    from packaging.requirements import Requirement

    for line in core:
        req = Requirement(line)
        if req.marker is not None:
            continue  # extras and platform-specific requirements
        name = str(canonicalize_name(req.name))
        assert name in by_name, f"core dependency {name} missing from the SBOM"
        assert by_name[name]["version"] == metadata.version(req.name)
        assert by_name[name]["purl"] == f"pkg:pypi/{name}@{metadata.version(req.name)}"
        assert by_name[name]["hashes"][0]["alg"] == "SHA-256"


def test_self_sbom_dependency_graph_is_closed(tmp_path: Path) -> None:
    doc = _run(tmp_path)
    refs = {c["bom-ref"] for c in doc["components"]} | {doc["metadata"]["component"]["bom-ref"]}
    for dep in doc["dependencies"]:
        assert dep["ref"] in refs
        for target in dep.get("dependsOn", []):
            assert target in refs, f"{dep['ref']} depends on unknown {target}"
