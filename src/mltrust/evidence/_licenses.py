"""Collector: licenses from model cards, LICENSE files and package metadata, as SPDX IDs."""

from __future__ import annotations

import functools
import re
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from mltrust.advisories._yaml import C_LOADER_MAX_INDICATORS, indicator_count, load_untrusted_yaml
from mltrust.config import DEFAULT_LIMITS
from mltrust.evidence import _rules
from mltrust.evidence.interface import CollectContext, Collected, Collector
from mltrust.findings import Finding, Location

__all__ = ["LicenseCollector", "license_category", "read_front_matter", "spdx_from_text", "to_spdx"]

PREDICATE_TYPE = "https://mltrust.dev/licenses/v1"

#: Hugging Face ``license:`` identifiers and common spellings -> SPDX (or LicenseRef-) IDs.
_ALIASES: dict[str, str] = {
    "mit": "MIT",
    "apache-2.0": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "bsd": "BSD-3-Clause",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-3-clause-clear": "BSD-3-Clause-Clear",
    "isc": "ISC",
    "unlicense": "Unlicense",
    "cc0-1.0": "CC0-1.0",
    "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "cc-by-nc-4.0": "CC-BY-NC-4.0",
    "cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0",
    "cc-by-nc-nd-4.0": "CC-BY-NC-ND-4.0",
    "gpl-2.0": "GPL-2.0-only",
    "gpl-3.0": "GPL-3.0-only",
    "gpl": "GPL-3.0-or-later",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-3.0": "LGPL-3.0-only",
    "lgpl": "LGPL-3.0-or-later",
    "agpl-3.0": "AGPL-3.0-only",
    "mpl-2.0": "MPL-2.0",
    "openrail": "LicenseRef-OpenRAIL",
    "openrail++": "LicenseRef-OpenRAIL-M",
    "bigscience-openrail-m": "LicenseRef-BigScience-OpenRAIL-M",
    "creativeml-openrail-m": "LicenseRef-CreativeML-OpenRAIL-M",
    "bigscience-bloom-rail-1.0": "LicenseRef-BigScience-BLOOM-RAIL-1.0",
    "llama2": "LicenseRef-Llama-2",
    "llama3": "LicenseRef-Llama-3",
    "llama3.1": "LicenseRef-Llama-3.1",
    "llama3.2": "LicenseRef-Llama-3.2",
    "llama3.3": "LicenseRef-Llama-3.3",
    "gemma": "LicenseRef-Gemma",
    "python software foundation license": "PSF-2.0",
    "psf-2.0": "PSF-2.0",
    "mit license": "MIT",
    "bsd license": "BSD-3-Clause",
    "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "gnu general public license v3 (gplv3)": "GPL-3.0-only",
    "gnu general public license v2 (gplv2)": "GPL-2.0-only",
    "gnu lesser general public license v3 (lgplv3)": "LGPL-3.0-only",
    "gnu affero general public license v3": "AGPL-3.0-only",
    "isc license (iscl)": "ISC",
    "the unlicense (unlicense)": "Unlicense",
}

#: Key phrases of well-known license texts, most specific first.
_TEXTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AGPL-3.0-only", ("gnu affero general public license", "version 3")),
    ("LGPL-3.0-only", ("gnu lesser general public license", "version 3")),
    ("LGPL-2.1-only", ("gnu lesser general public license", "version 2.1")),
    ("GPL-3.0-only", ("gnu general public license", "version 3")),
    ("GPL-2.0-only", ("gnu general public license", "version 2")),
    ("MPL-2.0", ("mozilla public license", "2.0")),
    ("Apache-2.0", ("apache license", "version 2.0")),
    ("LicenseRef-Llama-3", ("llama 3", "community license")),
    ("LicenseRef-Llama-2", ("llama 2 community license",)),
    ("LicenseRef-CreativeML-OpenRAIL-M", ("creativeml open rail-m",)),
    ("LicenseRef-OpenRAIL", ("responsible ai license",)),
    ("CC-BY-NC-SA-4.0", ("attribution-noncommercial-sharealike 4.0 international",)),
    ("CC-BY-NC-4.0", ("attribution-noncommercial 4.0 international",)),
    ("CC-BY-SA-4.0", ("attribution-sharealike 4.0 international",)),
    ("CC-BY-4.0", ("attribution 4.0 international",)),
    ("CC0-1.0", ("cc0 1.0 universal",)),
    ("Unlicense", ("this is free and unencumbered software released into the public domain",)),
    ("ISC", ("permission to use, copy, modify, and/or distribute this software for any purpose",)),
    ("MIT", ("permission is hereby granted, free of charge", "the software is provided")),
    (
        "BSD-3-Clause",
        ("redistribution and use in source and binary forms", "neither the name of"),
    ),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "names of its")),
    ("BSD-2-Clause", ("redistribution and use in source and binary forms",)),
)

_LICENSE_FILES = re.compile(r"^(licen[cs]e|copying|notice)([-_.][\w.-]*)?$", re.IGNORECASE)


def license_category(spdx: str) -> str:
    """``permissive``, ``weak-copyleft``, ``strong-copyleft``, ``network-copyleft``,
    ``non-commercial``, ``use-restricted``, ``public-domain`` or ``unknown``."""
    s = spdx.upper()
    if "-NC" in s:
        return "non-commercial"
    if s.startswith("AGPL"):
        return "network-copyleft"
    if s.startswith("GPL") or s.startswith("CC-BY-SA"):
        return "strong-copyleft"
    if s.startswith(("LGPL", "MPL", "EPL")):
        return "weak-copyleft"
    if "RAIL" in s or "LLAMA" in s or "GEMMA" in s:
        return "use-restricted"
    if s in ("CC0-1.0", "UNLICENSE"):
        return "public-domain"
    if s in (
        "MIT",
        "APACHE-2.0",
        "BSD-2-CLAUSE",
        "BSD-3-CLAUSE",
        "BSD-3-CLAUSE-CLEAR",
        "ISC",
        "PSF-2.0",
        "CC-BY-4.0",
        "ZLIB",
        "0BSD",
        "BSL-1.0",
        "PYTHON-2.0",
        "HPND",
    ):
        return "permissive"
    return "unknown"


@functools.cache
def _licensing() -> Any:
    """The SPDX license table of ``license-expression`` (slow to build: built once)."""
    from license_expression import get_spdx_licensing  # type: ignore[import-untyped]

    return get_spdx_licensing()


def to_spdx(declared: str) -> str | None:
    """An SPDX identifier (or expression) for a declared license name, or None."""
    text = declared.strip()
    if not text or len(text) > 200:
        return None
    alias = _ALIASES.get(text.lower())
    if alias:
        return alias
    try:
        from license_expression import ExpressionError  # type: ignore[import-untyped]

        parsed = _licensing().parse(text, validate=True)
        return str(parsed) if parsed is not None else None
    except ExpressionError:
        return None
    except ImportError:  # pragma: no cover - license-expression is optional
        return None


def spdx_from_text(text: str) -> str | None:
    """The SPDX identifier of a license text, recognised by key phrases."""
    low = " ".join(text[: DEFAULT_LIMITS.max_license_text_bytes].lower().split())
    for spdx, phrases in _TEXTS:
        if all(p in low for p in phrases):
            return spdx
    return None


def read_front_matter(text: str) -> dict[str, Any]:
    """The YAML front matter of a model card (``---`` fenced), or ``{}``."""
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    if (
        end > DEFAULT_LIMITS.max_front_matter_bytes
        or indicator_count(text[3:end]) > C_LOADER_MAX_INDICATORS
    ):
        return {}  # not a real model card: cards are small and shallow
    try:
        data = load_untrusted_yaml(text[3:end])
    except (yaml.YAMLError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _split_expression(spdx: str) -> list[str]:
    return [p for p in re.split(r"\s+(?:AND|OR|WITH)\s+|[()]", spdx) if p.strip()]


class LicenseCollector(Collector):
    name = "licenses"
    predicate_type = PREDICATE_TYPE

    def absent(self) -> dict[str, Any]:
        return {
            "present": False,
            "spdx": [],
            "categories": [],
            "unknown": [],
            "sources": [],
        }

    def collect(self, ctx: CollectContext) -> Collected:
        started = time.perf_counter()
        sources: list[dict[str, str]] = []
        findings: list[Finding] = []
        for rel, path in ctx.analysis_files():
            name = Path(rel).name
            if name.lower() == "readme.md":
                card = read_front_matter(_read(path))
                declared = card.get("license")
                if isinstance(declared, str):
                    if declared.lower() == "other" and isinstance(card.get("license_name"), str):
                        declared = str(card["license_name"])
                    self._add(sources, findings, f"model-card:{rel}", declared, to_spdx(declared))
            elif _LICENSE_FILES.match(name) and rel.count("/") <= 2:
                spdx = spdx_from_text(_read(path))
                self._add(sources, findings, f"file:{rel}", name, spdx)
            elif name == "pyproject.toml" and "/" not in rel:
                declared_lic = _pyproject_license(path)
                if declared_lic:
                    self._add(
                        sources, findings, f"pyproject:{rel}", declared_lic, to_spdx(declared_lic)
                    )
        if ctx.environment:
            for dist in metadata.distributions():
                declared_pkg, spdx = package_license(dist)
                if declared_pkg:
                    meta: Any = dist.metadata
                    pname = str(meta.get("Name", "?"))
                    self._add(sources, findings, f"package:{pname}", declared_pkg, spdx)
        ids = sorted({part for s in sources if s["spdx"] for part in _split_expression(s["spdx"])})
        section = {
            "present": bool(sources),
            "spdx": ids,
            "categories": sorted({license_category(i) for i in ids}),
            "unknown": sorted({s["source"] for s in sources if not s["spdx"]}),
            "sources": sources,
        }
        return Collected(
            self.name,
            self.predicate_type,
            {"licenses": sources},
            section,
            tuple(findings),
            time.perf_counter() - started,
        )

    @staticmethod
    def _add(
        sources: list[dict[str, str]],
        findings: list[Finding],
        source: str,
        declared: str,
        spdx: str | None,
    ) -> None:
        sources.append({"source": source, "declared": declared, "spdx": spdx or ""})
        where = Location(source.partition(":")[2])
        if spdx is None:
            findings.append(
                Finding.of(_rules.LIC_UNKNOWN, f"{source}: cannot map {declared!r} to SPDX", where)
            )
            return
        for part in _split_expression(spdx):
            category = license_category(part)
            if category in (
                "non-commercial",
                "network-copyleft",
                "strong-copyleft",
                "use-restricted",
            ):
                findings.append(
                    Finding.of(_rules.LIC_RESTRICTIVE, f"{source}: {part} is {category}", where)
                )


def package_license(dist: metadata.Distribution) -> tuple[str, str | None]:
    """``(declared, spdx)`` from a distribution's License-Expression, License or classifiers."""
    meta: Any = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression, to_spdx(expression)
    for classifier in meta.get_all("Classifier") or []:
        if classifier.startswith("License ::") and not classifier.endswith(":: OSI Approved"):
            name = classifier.rsplit("::", 1)[-1].strip()
            spdx = to_spdx(name)
            if spdx:
                return name, spdx
    declared = (meta.get("License") or "").strip()
    if declared and "\n" not in declared and declared.upper() != "UNKNOWN":
        return declared, to_spdx(declared)
    if declared and "\n" in declared:
        return declared.splitlines()[0][:80], spdx_from_text(declared)
    return "", None


def _pyproject_license(path: Path) -> str:
    import tomllib

    try:
        data = tomllib.loads(_read(path))
    except tomllib.TOMLDecodeError:
        return ""
    lic = data.get("project", {}).get("license")
    if isinstance(lic, str):
        return lic
    if isinstance(lic, dict) and isinstance(lic.get("text"), str):
        return str(lic["text"])[:200]
    return ""


def _read(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            return fh.read(DEFAULT_LIMITS.max_license_text_bytes).decode("utf-8", errors="replace")
    except OSError:
        return ""
