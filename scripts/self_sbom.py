"""Write the CycloneDX 1.6 SBOM of mltrust itself, from the environment it is installed in.

    python scripts/self_sbom.py -o mltrust.cdx.json        # `make sbom`

Every component is an installed distribution reached from mltrust's own requirements (with the
extras the environment was installed with), with its exact version, a PyPI package URL, its
declared license and the SHA-256 of its `RECORD` file (the list of installed files and their
hashes, so the BOM pins what is on disk, not only a version number). The dependency graph comes
from each distribution's `Requires-Dist`, evaluated against this interpreter (markers and
extras). The document is checked with cyclonedx-python-lib's strict JSON validator before it is
written; a BOM that does not validate is not written and the script exits 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT_NAME = "mltrust"


def _norm(name: str) -> str:
    return str(canonicalize_name(name))


def _installed() -> dict[str, metadata.Distribution]:
    out: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out.setdefault(_norm(name), dist)
    return out


def _requirements(dist: metadata.Distribution, extras: set[str]) -> list[tuple[str, set[str]]]:
    """``(name, extras)`` of the requirements of ``dist`` that apply here with ``extras``."""
    out: list[tuple[str, set[str]]] = []
    base_env = default_environment()
    for line in dist.requires or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None:
            wanted = any(
                req.marker.evaluate({**base_env, "extra": e}) for e in (extras or {""})
            ) or req.marker.evaluate({**base_env, "extra": ""})
            if not wanted:
                continue
        out.append((_norm(req.name), set(req.extras)))
    return out


def _record_sha256(dist: metadata.Distribution) -> str | None:
    text = dist.read_text("RECORD")
    if text is None:
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _license(dist: metadata.Distribution) -> str | None:
    expr = dist.metadata.get("License-Expression")
    if expr:
        return str(expr).strip()
    value = dist.metadata.get("License")
    if value and len(str(value)) < 100 and "\n" not in str(value):
        return str(value).strip()
    return None


def _root_extras(
    dist: metadata.Distribution, installed: dict[str, metadata.Distribution]
) -> set[str]:
    """The extras of mltrust whose requirements are all installed (what the venv was built with)."""
    extras: set[str] = set()
    for extra in dist.metadata.get_all("Provides-Extra") or []:
        reqs = [n for n, _ in _requirements(dist, {extra})]
        if reqs and all(n in installed for n in reqs):
            extras.add(extra)
    return extras


def build() -> tuple[object, int]:
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
    from packageurl import PackageURL

    installed = _installed()
    root = installed.get(ROOT_NAME)
    if root is None:
        raise SystemExit("self_sbom: mltrust is not installed in this environment")
    extras = _root_extras(root, installed)

    components: dict[str, Component] = {}
    edges: dict[str, set[str]] = {}
    todo: list[tuple[str, set[str]]] = [(ROOT_NAME, extras)]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, want = todo.pop()
        key = (name, frozenset(want))
        if key in seen or name not in installed:
            continue
        seen.add(key)
        dist = installed[name]
        version = dist.version
        if name not in components:
            purl = PackageURL(type="pypi", name=name, version=version)
            comp = Component(
                name=dist.metadata["Name"],
                version=version,
                type=ComponentType.APPLICATION if name == ROOT_NAME else ComponentType.LIBRARY,
                purl=purl,
                bom_ref=f"pkg:pypi/{name}@{version}",
            )
            record = _record_sha256(dist)
            if record is not None:
                comp.hashes.add(HashType(alg=HashAlgorithm.SHA_256, content=record))
            lic = _license(dist)
            if lic:
                if re.fullmatch(r"[A-Za-z0-9.+-]+", lic):
                    comp.licenses.add(DisjunctiveLicense(name=lic))
                else:
                    comp.licenses.add(LicenseExpression(lic))
            components[name] = comp
        for dep, dep_extras in _requirements(dist, want):
            if dep in installed:
                edges.setdefault(name, set()).add(dep)
                todo.append((dep, dep_extras))

    bom = Bom()
    bom.metadata.component = components[ROOT_NAME]
    for name, comp in sorted(components.items()):
        if name != ROOT_NAME:
            bom.components.add(comp)
    for name, deps in edges.items():
        bom.register_dependency(components[name], [components[d] for d in sorted(deps)])
    return bom, len(components)


def render(bom: object) -> str:
    from cyclonedx.output.json import JsonV1Dot6
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = JsonV1Dot6(bom).output_as_string(indent=2)  # type: ignore[arg-type]
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        print(f"self_sbom: the SBOM does not validate: {error}", file=sys.stderr)
        raise SystemExit(2)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    bom, count = build()
    text = render(bom)
    json.loads(text)  # the validator said so; this is a cheap second look
    if args.output:
        args.output.write_text(text + "\n")
        print(f"self_sbom: {count} components written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
