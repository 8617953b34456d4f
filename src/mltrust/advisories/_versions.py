"""PEP 440 matching of OSV ``affected`` entries (ECOSYSTEM ranges and explicit version lists)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from packaging.version import InvalidVersion, Version

__all__ = ["is_affected", "max_known_version", "normalize_name", "parse_version"]

_NAME_SEP = re.compile(r"[-_.]+")


def normalize_name(name: str) -> str:
    """The PEP 503 normalized form of a distribution name (``Jinja_2`` -> ``jinja-2``)."""
    return _NAME_SEP.sub("-", name).lower().strip()


@functools.lru_cache(maxsize=65536)
def parse_version(text: str) -> Version | None:
    """``text`` as a PEP 440 version, or ``None`` when it is not one (memoised: matching a
    range against a package with hundreds of advisories parses the same strings again and
    again; versions are immutable)."""
    try:
        return Version(str(text).strip())
    except InvalidVersion:
        return None


def _in_ranges(version: Version, ranges: Iterable[Mapping[str, Any]]) -> bool:
    for rng in ranges:
        if str(rng.get("type", "")).upper() not in ("ECOSYSTEM", "SEMVER"):
            continue
        events = rng.get("events") or []
        # OSV: events are ordered; an "introduced" opens an interval that the next
        # "fixed" (exclusive) or "last_affected" (inclusive) closes.
        lower: Version | None = None
        open_interval = False
        for event in events:
            if not isinstance(event, Mapping):
                continue
            if "introduced" in event:
                text = str(event["introduced"])
                lower = Version("0") if text == "0" else parse_version(text)
                open_interval = lower is not None
            elif "fixed" in event and open_interval and lower is not None:
                fixed = parse_version(str(event["fixed"]))
                if fixed is not None and lower <= version < fixed:
                    return True
                open_interval = False
            elif "last_affected" in event and open_interval and lower is not None:
                last = parse_version(str(event["last_affected"]))
                if last is not None and lower <= version <= last:
                    return True
                open_interval = False
            elif "limit" in event:
                continue
        if open_interval and lower is not None and version >= lower:
            return True
    return False


def is_affected(version: str, ranges: Sequence[Mapping[str, Any]], versions: Sequence[str]) -> bool:
    """Whether ``version`` is affected by one OSV ``affected`` entry.

    An explicit ``versions`` list matches by PEP 440 equality (``1.0`` == ``1.0.0``);
    ECOSYSTEM ranges are compared with PEP 440 ordering. An unparsable installed version only
    matches the explicit list, by string.
    """
    parsed = parse_version(version)
    if parsed is None:
        return version in versions
    for v in versions:
        pv = parse_version(v)
        if pv is not None and pv == parsed:
            return True
    return _in_ranges(parsed, ranges)


def max_known_version(ranges: Sequence[Mapping[str, Any]], versions: Sequence[str]) -> str | None:
    """The highest version an advisory mentions (a lower bound of the latest release)."""
    seen: list[Version] = []
    for v in versions:
        pv = parse_version(v)
        if pv is not None:
            seen.append(pv)
    for rng in ranges:
        for event in rng.get("events") or []:
            if not isinstance(event, Mapping):
                continue
            for key in ("introduced", "fixed", "last_affected"):
                if key in event and str(event[key]) != "0":
                    pv = parse_version(str(event[key]))
                    if pv is not None:
                        seen.append(pv)
    final = [v for v in seen if not v.is_prerelease and not v.is_devrelease]
    pool = final or seen
    return str(max(pool)) if pool else None
