"""Offline advisory database (OSV format) and PEP 440 matching of affected versions.

>>> from mltrust.advisories import AdvisoryDB
>>> AdvisoryDB.import_osv("pypa-advisory-db", "advisories.db")   # doctest: +SKIP
>>> db = AdvisoryDB.open("advisories.db")                        # doctest: +SKIP
>>> [m.advisory.id for m in db.matches("jinja2", "2.10")]        # doctest: +SKIP
"""

from __future__ import annotations

from mltrust.advisories._cvss import cvss3_base_score, severity_from_score
from mltrust.advisories._db import (
    Advisory,
    AdvisoryDB,
    ImportStats,
    Match,
    data_time,
    default_db_path,
    download,
)
from mltrust.advisories._versions import (
    is_affected,
    max_known_version,
    normalize_name,
    parse_version,
)

__all__ = [
    "Advisory",
    "AdvisoryDB",
    "ImportStats",
    "Match",
    "cvss3_base_score",
    "data_time",
    "default_db_path",
    "download",
    "is_affected",
    "max_known_version",
    "normalize_name",
    "parse_version",
    "severity_from_score",
]
