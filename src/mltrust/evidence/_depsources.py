"""Reading declared dependencies: requirements files, pyproject, poetry.lock, uv.lock, the
installed environment. No resolution, no network: only what the files say."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from mltrust.advisories import normalize_name

__all__ = [
    "Dependency",
    "DependencyFileError",
    "Drift",
    "environment_dependencies",
    "parse_lock",
    "parse_pyproject",
    "parse_requirements",
]

_MAX_BYTES = 8 * 1024 * 1024
_MAX_INCLUDE_DEPTH = 5


class DependencyFileError(ValueError):
    """A dependency file could not be parsed."""


@dataclass(frozen=True, slots=True)
class Dependency:
    name: str
    #: The exact version when pinned (``==``/``===`` without wildcard, or a lock entry).
    version: str | None
    specifier: str
    source: str
    line: int = 0

    @property
    def pinned(self) -> bool:
        return self.version is not None


@dataclass(frozen=True, slots=True)
class Drift:
    package: str
    requirement: str
    required_by: str


def _pinned_version(req: Requirement) -> str | None:
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


def _read(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_BYTES + 1)
    except OSError as exc:
        raise DependencyFileError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > _MAX_BYTES:
        raise DependencyFileError(f"{path} is larger than {_MAX_BYTES} bytes")
    return data.decode("utf-8", errors="replace")


def parse_requirements(
    path: Path, rel: str, *, root: Path | None = None, _depth: int = 0
) -> list[Dependency]:
    """Requirements in pip's requirements-file format.

    ``-r``/``-c`` includes are followed only inside ``root`` (the project; default: the file's
    folder), so a hostile project cannot make the checker read, and echo, files elsewhere.
    """
    base = (root or path.parent).resolve()
    out: list[Dependency] = []
    logical = ""
    start = 0
    for number, raw in enumerate(_read(path).splitlines(), 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            if not logical:
                start = number
            logical += line[:-1] + " "
            continue
        if logical:
            line, logical = logical + line, ""
        else:
            start = number
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ", "-c ", "--constraint ")):
            target = line.split(None, 1)[1].strip()
            include = (path.parent / target).resolve()
            if not include.is_relative_to(base):
                raise DependencyFileError(
                    f"{rel}:{start}: include {target!r} is outside the project"
                )
            if _depth >= _MAX_INCLUDE_DEPTH:
                raise DependencyFileError(
                    f"{rel}:{start}: includes nested more than {_MAX_INCLUDE_DEPTH} deep (a loop?)"
                )
            if include.is_file():
                out.extend(
                    parse_requirements(
                        include,
                        include.relative_to(base).as_posix(),
                        root=base,
                        _depth=_depth + 1,
                    )
                )
            continue
        if line.startswith("-"):  # -e, --index-url, --hash on its own line ...
            continue
        text = re.split(r"\s--hash[= ]", line, maxsplit=1)[0].strip()
        try:
            req = Requirement(text)
        except InvalidRequirement:
            if "://" in text or text.startswith((".", "/")):  # URL or local path
                out.append(Dependency(text, None, text, rel, start))
                continue
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise DependencyFileError(
                f"{rel}:{start}: not a valid requirement: {shown!r}"
            ) from None
        out.append(
            Dependency(
                normalize_name(req.name), _pinned_version(req), str(req.specifier), rel, start
            )
        )
    return out


def _toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(_read(path))
    except tomllib.TOMLDecodeError as exc:
        raise DependencyFileError(f"{path.name} is not valid TOML: {exc}") from None


def _poetry_pinned(constraint: str) -> str | None:
    text = constraint.strip()
    if text.startswith("=="):
        text = text[2:].strip()
    elif text.startswith("="):
        text = text[1:].strip()
    if re.fullmatch(r"\d+(\.\d+)*([a-zA-Z0-9.+-]*)?", text):
        return text
    return None


def parse_pyproject(path: Path, rel: str) -> list[Dependency]:
    """``[project.dependencies]``, optional dependencies and ``[tool.poetry.dependencies]``."""
    data = _toml(path)
    out: list[Dependency] = []
    project = data.get("project")
    texts: list[str] = []
    if isinstance(project, dict):
        deps_list = project.get("dependencies")
        if isinstance(deps_list, list):
            texts.extend(str(x) for x in deps_list)
        optional = project.get("optional-dependencies") or {}
        if isinstance(optional, dict):
            for group in optional.values():
                if isinstance(group, list):
                    texts.extend(str(x) for x in group)
    for text in texts:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            raise DependencyFileError(f"{rel}: not a valid requirement: {text!r}") from None
        out.append(
            Dependency(normalize_name(req.name), _pinned_version(req), str(req.specifier), rel)
        )
    tool = data.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    if isinstance(poetry, dict):
        tables = [poetry.get("dependencies") or {}]
        groups = poetry.get("group") or {}
        if isinstance(groups, dict):
            tables.extend((g or {}).get("dependencies") or {} for g in groups.values())
        for table in tables:
            if not isinstance(table, dict):
                continue
            for name, spec in table.items():
                if str(name).lower() == "python":
                    continue
                constraint = spec.get("version", "") if isinstance(spec, dict) else str(spec)
                out.append(
                    Dependency(
                        normalize_name(str(name)),
                        _poetry_pinned(str(constraint)),
                        str(constraint),
                        rel,
                    )
                )
    return out


def parse_lock(path: Path, rel: str) -> list[Dependency]:
    """``[[package]]`` entries of ``poetry.lock`` or ``uv.lock`` (all pinned)."""
    data = _toml(path)
    out = []
    packages = data.get("package")
    for pkg in packages if isinstance(packages, list) else []:
        if isinstance(pkg, dict) and isinstance(pkg.get("name"), str):
            version = pkg.get("version")
            source = pkg.get("source")
            if isinstance(source, dict) and ("editable" in source or "virtual" in source):
                continue  # the project itself
            out.append(
                Dependency(
                    normalize_name(pkg["name"]),
                    str(version) if version is not None else None,
                    f"=={version}" if version is not None else "",
                    rel,
                )
            )
    return out


def environment_dependencies() -> tuple[list[Dependency], list[Drift]]:
    """Installed distributions (pinned by definition) and the ranges they require."""
    deps: dict[str, Dependency] = {}
    drift: list[Drift] = []
    for dist in metadata.distributions():
        meta: Any = dist.metadata
        name = meta.get("Name")
        if not name:
            continue
        norm = normalize_name(name)
        deps.setdefault(norm, Dependency(norm, dist.version, f"=={dist.version}", "environment"))
        for text in dist.requires or []:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is not None and "extra" in str(req.marker):
                continue
            if _pinned_version(req) is None:
                drift.append(Drift(normalize_name(req.name), f"{req.name}{req.specifier}", norm))
    return sorted(deps.values(), key=lambda d: d.name), drift
