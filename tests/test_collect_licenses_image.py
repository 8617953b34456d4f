"""License collector (model cards, LICENSE texts, package metadata) and image reports."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from mltrust.errors import InputError
from mltrust.evidence import CollectContext
from mltrust.evidence._image import ImageReportCollector, parse_image_report
from mltrust.evidence._licenses import (
    LicenseCollector,
    license_category,
    package_license,
    read_front_matter,
    spdx_from_text,
    to_spdx,
)

MIT = """MIT License

Copyright (c) 2024 Someone

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction...

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
"""
BSD3 = """Redistribution and use in source and binary forms, with or without modification, are
permitted provided that the following conditions are met: ... 3. Neither the name of the
copyright holder nor the names of its contributors may be used to endorse ..."""
AGPL = "GNU AFFERO GENERAL PUBLIC LICENSE\n Version 3, 19 November 2007\n"
LGPL = "GNU LESSER GENERAL PUBLIC LICENSE\n Version 3, 29 June 2007\n"
GPL2 = "GNU GENERAL PUBLIC LICENSE\n Version 2, June 1991\n"
CC_NC = "Attribution-NonCommercial 4.0 International\n\nCreative Commons Corporation"
LLAMA2 = "LLAMA 2 COMMUNITY LICENSE AGREEMENT\nLlama 2 Version Release Date: July 18, 2023"


@pytest.mark.parametrize(
    ("text", "spdx"),
    [
        (MIT, "MIT"),
        (BSD3, "BSD-3-Clause"),
        (AGPL, "AGPL-3.0-only"),
        (LGPL, "LGPL-3.0-only"),
        (GPL2, "GPL-2.0-only"),
        (CC_NC, "CC-BY-NC-4.0"),
        (LLAMA2, "LicenseRef-Llama-2"),
        ("Apache License\nVersion 2.0, January 2004", "Apache-2.0"),
        ("Mozilla Public License Version 2.0", "MPL-2.0"),
        ("hello world", None),
    ],
)
def test_license_texts_by_key_phrases(text: str, spdx: str | None) -> None:
    assert spdx_from_text(text) == spdx


def test_declared_names_to_spdx_and_categories() -> None:
    assert to_spdx("apache-2.0") == "Apache-2.0"
    assert to_spdx("cc-by-nc-4.0") == "CC-BY-NC-4.0"
    assert to_spdx("openrail") == "LicenseRef-OpenRAIL"
    assert to_spdx("MIT OR Apache-2.0") == "MIT OR Apache-2.0"
    assert to_spdx("my own license") is None
    assert license_category("CC-BY-NC-4.0") == "non-commercial"
    assert license_category("AGPL-3.0-only") == "network-copyleft"
    assert license_category("LicenseRef-Llama-2") == "use-restricted"
    assert license_category("MIT") == "permissive"


def test_front_matter() -> None:
    card = read_front_matter("---\nlicense: mit\ndatasets: [iris]\n---\n# Model\n")
    assert card == {"license": "mit", "datasets": ["iris"]}
    assert read_front_matter("# no front matter") == {}
    assert read_front_matter("---\n: : [bad\n---\n") == {}


def test_collector_reads_card_license_file_and_flags_noncommercial(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n# m\n")
    (tmp_path / "LICENSE").write_text(MIT)
    (tmp_path / "third_party").mkdir()
    (tmp_path / "third_party" / "COPYING").write_text("some custom terms")
    result = LicenseCollector().collect(CollectContext(tmp_path))
    section = result.section
    assert section["spdx"] == ["CC-BY-NC-4.0", "MIT"]
    assert "non-commercial" in section["categories"]
    assert section["unknown"] == ["file:third_party/COPYING"]
    assert {f.rule_id for f in result.findings} == {"MLT-LIC-001", "MLT-LIC-002"}


def test_package_metadata_license() -> None:
    declared, spdx = package_license(metadata.distribution("click"))
    assert declared
    assert spdx is not None and license_category(spdx.split()[0]) in ("permissive", "unknown")


TRIVY = {
    "SchemaVersion": 2,
    "ArtifactName": "registry.example/ml-serving:1.4",
    "ArtifactType": "container_image",
    "Results": [
        {
            "Target": "registry.example/ml-serving:1.4 (debian 12.5)",
            "Class": "os-pkgs",
            "Type": "debian",
            "Vulnerabilities": [
                {
                    "VulnerabilityID": "CVE-2024-2961",
                    "PkgName": "libc6",
                    "InstalledVersion": "2.36-9+deb12u4",
                    "FixedVersion": "2.36-9+deb12u7",
                    "Severity": "HIGH",
                    "Title": "glibc: iconv overflow",
                },
                {
                    "VulnerabilityID": "CVE-2023-45853",
                    "PkgName": "zlib1g",
                    "InstalledVersion": "1:1.2.13.dfsg-1",
                    "Severity": "CRITICAL",
                },
            ],
        },
        {
            "Target": "Python",
            "Class": "lang-pkgs",
            "Type": "python-pkg",
            "Vulnerabilities": [
                {
                    "VulnerabilityID": "CVE-2024-34064",
                    "PkgName": "Jinja2",
                    "InstalledVersion": "3.1.3",
                    "FixedVersion": "3.1.4",
                    "Severity": "MEDIUM",
                }
            ],
        },
        {"Target": "app/requirements.txt", "Class": "lang-pkgs"},
    ],
}
GRYPE = {
    "matches": [
        {
            "vulnerability": {
                "id": "GHSA-h5c8-rqwp-cp95",
                "severity": "Medium",
                "fix": {"versions": ["3.1.3"], "state": "fixed"},
            },
            "artifact": {"name": "jinja2", "version": "3.1.2", "type": "python"},
        },
        {
            "vulnerability": {
                "id": "CVE-2023-4911",
                "severity": "High",
                "fix": {"versions": [], "state": "not-fixed"},
            },
            "artifact": {"name": "libc6", "version": "2.36-9", "type": "deb"},
        },
    ],
    "source": {"type": "image", "target": {"userInput": "ml-serving:1.4"}},
    "descriptor": {"name": "grype", "version": "0.74.0"},
}


def test_trivy_report() -> None:
    tool, image, vulns = parse_image_report(TRIVY)
    assert (tool, image) == ("trivy", "registry.example/ml-serving:1.4")
    assert [(v["id"], v["severity"], v["fixed"]) for v in vulns] == [
        ("CVE-2024-2961", "high", ["2.36-9+deb12u7"]),
        ("CVE-2023-45853", "critical", []),
        ("CVE-2024-34064", "medium", ["3.1.4"]),
    ]


def test_grype_report() -> None:
    tool, image, vulns = parse_image_report(GRYPE)
    assert (tool, image) == ("grype", "ml-serving:1.4")
    assert vulns[0]["package"] == "jinja2" and vulns[0]["fixed"] == ["3.1.3"]
    assert vulns[1]["severity"] == "high" and vulns[1]["fixed"] == []


def test_image_collector_and_malformed_reports(tmp_path: Path) -> None:
    report = tmp_path / "trivy.json"
    report.write_text(json.dumps(TRIVY))
    ctx = CollectContext(tmp_path, image_report=report)
    result = ImageReportCollector().collect(ctx)
    assert result.section["vulnerabilities_by_severity"]["critical"] == 1
    assert result.section["fixable"] == 2
    assert len(result.findings) == 3
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(InputError, match="not valid JSON"):
        ImageReportCollector().collect(CollectContext(tmp_path, image_report=bad))
    with pytest.raises(InputError, match="neither a Trivy"):
        parse_image_report({"foo": 1})
