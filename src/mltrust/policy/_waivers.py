"""Waivers: a justified, expiring exception to one control (optionally for some subjects)."""

from __future__ import annotations

import datetime as _dt
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mltrust.errors import ConfigError

__all__ = ["Waiver", "load_waivers", "parse_waivers"]


@dataclass(frozen=True, slots=True)
class Waiver:
    control: str
    justification: str
    expires: _dt.date
    subject: str | None = None

    def matches(self, control_id: str, subject_name: str) -> bool:
        if self.control != control_id:
            return False
        return self.subject is None or fnmatch.fnmatchcase(subject_name, self.subject)

    def expired(self, today: _dt.date) -> bool:
        """A waiver applies through its expiry date and stops the day after."""
        return today > self.expires

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "control": self.control,
            "justification": self.justification,
            "expires": self.expires.isoformat(),
        }
        if self.subject is not None:
            out["subject"] = self.subject
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


def parse_waivers(data: Any, *, source: str = "<waivers>") -> tuple[Waiver, ...]:
    """Waivers from parsed YAML: a list, or a mapping with a ``waivers`` list."""
    if isinstance(data, Mapping):
        data = data.get("waivers")
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ConfigError(f"{source}: waivers must be a list")
    out = []
    for i, raw in enumerate(data, 1):
        where = f"{source}: waiver #{i}"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where} must be a mapping")
        unknown = set(raw) - {"control", "justification", "expires", "subject"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        control = raw.get("control")
        if not isinstance(control, str) or not control.strip():
            raise ConfigError(f"{where}: control is required")
        justification = raw.get("justification")
        if not isinstance(justification, str) or not justification.strip():
            raise ConfigError(f"{where} (control {control}): a non-empty justification is required")
        if "expires" not in raw:
            raise ConfigError(f"{where} (control {control}): expires (YYYY-MM-DD) is required")
        subject = raw.get("subject")
        if subject is not None and not isinstance(subject, str):
            raise ConfigError(f"{where}: subject must be a glob string")
        out.append(
            Waiver(control.strip(), justification.strip(), _date(raw["expires"], where), subject)
        )
    return tuple(out)


def load_waivers(path: str | Path) -> tuple[Waiver, ...]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read waivers {p}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"waivers {p} are not valid YAML: {exc}") from None
    return parse_waivers(data, source=str(p))
