"""Waivers: a justified, expiring exception to one finding, or to one control.

Format (YAML; see ``docs/waivers.md``)::

    waivers:
      - advisory: PYSEC-2019-217        # one advisory (id or alias) for one package
        package: jinja2
        justification: sandbox not used; upgrade planned in JIRA-12
        expires: 2026-03-31
      - rule: MLT-CODE-013               # one rule in the files matching a path glob
        path: scripts/**/*.py
        justification: build-time eval of our own constants
        expires: 2026-01-31
      - fingerprint: 3f2a9c0d1e4b5a6c    # exactly one finding (from the JSON/SARIF report)
        justification: reviewed
        expires: 2026-01-31
      - control: model-signed            # a whole control (for controls without findings)
        justification: signing lands next release
        expires: 2026-01-31

Decisions:

- A **finding waiver** (``advisory``+``package``, ``rule``+``path``, or ``fingerprint``)
  removes exactly the findings it names from the evidence before any control is evaluated, so
  it holds whatever profile is used and never hides another finding of the same control.
- A **control waiver** names a control ID of the one catalogue (every control of every
  shipped profile, plus those of the profile in use). An ID in no catalogue is an error, as is
  a rule ID that is not registered or a malformed fingerprint: a typo must not silently waive
  nothing.
- A ``path`` glob matches whole relative paths segment by segment: ``*`` and ``?`` never
  cross ``/`` (``tests/*`` is the files directly in ``tests/``), ``**`` as a whole segment
  matches any number of segments (``tests/**`` is everything below ``tests/``, ``**/*.py``
  every Python file), ``[abc]`` is a character class. A pattern that is absolute, holds a
  backslash, an empty, ``.`` or ``..`` segment, or ``**`` inside a segment is an error; a
  finding path that is not a plain relative path (``..``, absolute, backslash) matches no
  waiver, so the waiver never reaches further than the pattern reads.
- Every waiver needs a justification and an expiry date no further away than the maximum
  (``max_days``, default 365, set by the profile's ``waiver_max_days``); it applies through
  its expiry date, and an expired waiver is reported.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mltrust.errors import ConfigError, Error

__all__ = [
    "DEFAULT_MAX_DAYS",
    "Waiver",
    "check_path_glob",
    "load_waivers",
    "parse_waivers",
    "path_matches",
]

#: Longest a waiver may run, in days from the day it is loaded, unless the profile says.
DEFAULT_MAX_DAYS = 365
_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
_ADVISORY = re.compile(r"^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._:-]+$")
_KEYS = frozenset(
    {"control", "justification", "expires", "subject", "advisory", "package", "rule", "path"}
    | {"fingerprint"}
)


def check_path_glob(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid waiver path glob, or None when it is (rules above)."""
    if "\\" in pattern:
        return "use '/' between folders; a backslash is not allowed"
    if pattern.startswith("/") or re.match(r"^[A-Za-z]:", pattern):
        return "the path must be relative to the subject, not absolute"
    for segment in pattern.split("/"):
        if segment in ("", ".", ".."):
            return f"empty, '.' or '..' segment in {pattern!r}"
        if "**" in segment and segment != "**":
            return "'**' must be a whole path segment (like 'a/**/b')"
    return None


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        c = segment[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = segment.find("]", i + 2 if segment[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = segment[i + 1 : end]
                negate = body.startswith("!")
                chars = "".join(ch if ch == "-" else re.escape(ch) for ch in body[negate:])
                # A class never matches '/' (a range like [.-0] would hold it).
                out.append("(?!/)[" + ("^" if negate else "") + chars + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    segments = pattern.split("/")
    for n, segment in enumerate(segments):
        last = n == len(segments) - 1
        if segment == "**":
            parts.append("(?:[^/]+(?:/[^/]+)*)?" if last else "(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(parts), re.DOTALL)


def path_matches(pattern: str, path: str) -> bool:
    """Whether the relative ``path`` matches the waiver glob ``pattern`` (``*`` within one
    segment, ``**`` across segments). An invalid pattern, or a path with ``..``, ``.`` or
    empty segments, a backslash, or a leading ``/``, never matches."""
    if check_path_glob(pattern) is not None or not path:
        return False
    if "\\" in path or path.startswith("/") or any(p in ("", ".", "..") for p in path.split("/")):
        return False
    return _glob_regex(pattern).fullmatch(path) is not None


@dataclass(frozen=True, slots=True)
class Waiver:
    #: The control waived, for a control waiver ("" for a finding waiver).
    control: str
    justification: str
    expires: _dt.date
    subject: str | None = None
    advisory: str | None = None
    package: str | None = None
    rule: str | None = None
    path: str | None = None
    fingerprint: str | None = None

    @property
    def is_finding(self) -> bool:
        """Whether this waiver names findings rather than a whole control."""
        return bool(self.advisory or self.rule or self.fingerprint)

    def describe(self) -> str:
        if self.fingerprint:
            return f"finding {self.fingerprint}"
        if self.advisory:
            return f"{self.advisory} in {self.package}"
        if self.rule:
            return f"{self.rule} in {self.path}"
        return self.control

    def applies_to_subject(self, subject_name: str) -> bool:
        return self.subject is None or fnmatch.fnmatchcase(subject_name, self.subject)

    def matches(self, control_id: str, subject_name: str) -> bool:
        """Whether this control waiver covers ``control_id`` for the subject."""
        if self.is_finding or self.control != control_id:
            return False
        return self.applies_to_subject(subject_name)

    def matches_row(self, row: Mapping[str, Any]) -> bool:
        """Whether this finding waiver covers one finding row of the evidence document."""
        if not self.is_finding:
            return False
        if self.fingerprint:
            return row.get("fingerprint") == self.fingerprint
        if self.advisory:
            from mltrust.advisories import normalize_name

            ids = {str(row.get("id", ""))} | {str(a) for a in row.get("aliases", ()) or ()}
            package = normalize_name(str(row.get("package", "")))
            return self.advisory in ids and package == normalize_name(self.package or "")
        path = str(row.get("path", row.get("source", "")))
        return row.get("rule_id") == self.rule and path_matches(self.path or "", path)

    def expired(self, today: _dt.date) -> bool:
        """A waiver applies through its expiry date and stops the day after."""
        return today > self.expires

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"justification": self.justification}
        for key in ("control", "advisory", "package", "rule", "path", "fingerprint", "subject"):
            value = getattr(self, key)
            if value:
                out[key] = value
        out["expires"] = self.expires.isoformat()
        return out


def _date(value: Any, where: str) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{where}: expires must be a date YYYY-MM-DD, not {value!r}")


def _text(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def parse_waivers(
    data: Any,
    *,
    source: str = "<waivers>",
    controls: Collection[str] | None = None,
    today: _dt.date | None = None,
    max_days: int = DEFAULT_MAX_DAYS,
) -> tuple[Waiver, ...]:
    """Waivers from parsed YAML: a list, or a mapping with a ``waivers`` list.

    ``controls`` is the catalogue control waivers are checked against (None: not checked);
    ``max_days`` bounds how far ``expires`` may lie after ``today``.
    """
    from mltrust.findings import get_rule

    _register_rules()
    if isinstance(data, Mapping):
        unknown_top = set(data) - {"waivers"}
        if unknown_top:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown_top)))}"
            )
        data = data.get("waivers")
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ConfigError(f"{source}: waivers must be a list")
    day = today or _dt.datetime.now(_dt.UTC).date()
    out = []
    for i, raw in enumerate(data, 1):
        where = f"{source}: waiver #{i}"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where} must be a mapping")
        unknown = set(raw) - _KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        fields = {k: _text(raw, k, where) for k in _KEYS - {"expires"}}
        control, advisory, package = fields["control"], fields["advisory"], fields["package"]
        rule, path, fp = fields["rule"], fields["path"], fields["fingerprint"]
        selectors = sum(1 for x in (control, advisory, rule, fp) if x)
        if selectors != 1:
            raise ConfigError(
                f"{where}: name exactly one of control, advisory (+ package), rule (+ path) "
                "or fingerprint"
            )
        if advisory and (not package or not _ADVISORY.match(advisory)):
            raise ConfigError(f"{where}: advisory needs a package and an id like PYSEC-2024-1")
        if package and not advisory:
            raise ConfigError(f"{where}: package is only used with advisory")
        if rule:
            if not path:
                raise ConfigError(f"{where}: rule {rule} needs a path (glob; '**' for all files)")
            try:
                get_rule(rule)
            except (KeyError, Error) as exc:
                raise ConfigError(f"{where}: unknown rule id {rule!r}") from exc
        if path and not rule:
            raise ConfigError(f"{where}: path is only used with rule")
        if path:
            problem = check_path_glob(path)
            if problem is not None:
                raise ConfigError(f"{where}: path {path!r}: {problem}")
        if fp and not _FINGERPRINT.match(fp):
            raise ConfigError(f"{where}: fingerprint must be 16 hex digits, not {fp!r}")
        if control and controls is not None and control not in controls:
            raise ConfigError(
                f"{where}: unknown control {control!r}",
                hint="control IDs: " + ", ".join(sorted(controls)),
            )
        name = control or advisory or rule or fp
        if not fields["justification"]:
            raise ConfigError(f"{where} ({name}): a non-empty justification is required")
        if "expires" not in raw:
            raise ConfigError(f"{where} ({name}): expires (YYYY-MM-DD) is required")
        expires = _date(raw["expires"], where)
        if (expires - day).days > max_days:
            raise ConfigError(
                f"{where} ({name}): expires {expires.isoformat()} is more than {max_days} days "
                "away; waivers must be reviewed at least that often"
            )
        out.append(
            Waiver(
                control or "",
                str(fields["justification"]),
                expires,
                fields["subject"],
                advisory,
                package,
                rule,
                path,
                fp,
            )
        )
    return tuple(out)


def _register_rules() -> None:
    """Import the packages whose rules a finding waiver may name (they register on import)."""
    import importlib

    for name in ("mltrust.scan", "mltrust.evidence", "mltrust.policy._rules"):
        try:
            importlib.import_module(name)
        except ImportError:  # an optional part not installed: its rules cannot be named
            pass


def load_waivers(
    path: str | Path,
    *,
    controls: Collection[str] | None = None,
    today: _dt.date | None = None,
    max_days: int = DEFAULT_MAX_DAYS,
) -> tuple[Waiver, ...]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read waivers {p}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"waivers {p} are not UTF-8 text (byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"waivers {p} are not valid YAML: {exc}") from None
    return parse_waivers(data, source=str(p), controls=controls, today=today, max_days=max_days)
