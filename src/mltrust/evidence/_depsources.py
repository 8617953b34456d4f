"""Reading declared dependencies: requirements files, pyproject, setup.cfg, Pipfile(.lock),
poetry/uv/pdm locks, conda ``environment.yml`` pip sections, the installed environment. No
resolution, no network: only what the files say.

Decisions:

- **One bad line is a problem, not a dropped file.** Every reader collects
  :class:`Problem` entries (file, line, message) and keeps the dependencies it could read;
  the collector turns each problem into a finding and fails the vulnerability control (a line
  that was not understood is a requirement that was not checked). A file that cannot be read
  at all (I/O error, not a regular file, larger than :data:`_MAX_BYTES`, not TOML/JSON/YAML)
  is one problem for the whole file.
- **Encodings as pip reads them:** a UTF-8 BOM is dropped, a UTF-16 (LE/BE) BOM selects
  UTF-16; anything else is UTF-8 with undecodable bytes replaced.
- **Includes** (``-r``/``--requirement``/``-c``/``--constraint``, also ``-rfile`` and
  ``--requirement=file``) are followed relative to the including file, at most
  :data:`_MAX_INCLUDE_DEPTH` deep, and **never outside the project root**: an include that
  escapes is a problem (the checker must not read, and echo, files elsewhere), as is one that
  names a missing file (pip would fail too). URLs in includes are not fetched (a problem).
- Line numbers point at the requirement's first physical line; for TOML/JSON/YAML files the
  line is found by searching for the requirement text (0 when not found).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from mltrust.advisories import normalize_name
from mltrust.errors import Error
from mltrust.files import read_bounded

__all__ = [
    "Dependency",
    "DependencyFileError",
    "Drift",
    "ParsedFile",
    "Problem",
    "dependency_kind",
    "environment_dependencies",
    "parse_lock",
    "parse_pyproject",
    "parse_requirements",
    "read_dependency_file",
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
class Problem:
    """A line (or a whole file, line 0) that could not be read as a dependency."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.message}"


@dataclass
class ParsedFile:
    """What one dependency file declared, and what could not be read."""

    deps: list[Dependency] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: The dependency file is a lock (every entry pinned, transitive included).
    lock: bool = False


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


def decode_text(data: bytes) -> str:
    """Bytes of a text file decoded as pip does: BOMs honoured, UTF-8 otherwise."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8", errors="replace")


def _read(path: Path) -> str:
    try:
        data = read_bounded(path, _MAX_BYTES, what="dependency file")
    except Error as exc:
        raise DependencyFileError(str(exc)) from None
    return decode_text(data)


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _line_of(text: str, needle: str) -> int:
    """The 1-based line of the first occurrence of ``needle`` in ``text`` (0: not found)."""
    index = text.find(needle) if needle else -1
    return text.count("\n", 0, index) + 1 if index >= 0 else 0


def _requirement(
    text: str, rel: str, line: int, out: ParsedFile, *, allow_paths: bool = True
) -> None:
    """Add one PEP 508 requirement string to ``out`` (or a problem)."""
    try:
        req = Requirement(text)
    except InvalidRequirement:
        if allow_paths and ("://" in text or text.startswith((".", "/"))):  # URL or path
            out.deps.append(Dependency(text, None, text, rel, line))
            return
        out.problems.append(Problem(rel, line, f"not a valid requirement: {_shown(text)!r}"))
        return
    out.deps.append(
        Dependency(normalize_name(req.name), _pinned_version(req), str(req.specifier), rel, line)
    )


_INCLUDE = re.compile(
    r"^(?:-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+|(?<=^-r)|(?<=^-c))(?P<target>\S.*)$"
)


def read_requirements(
    path: Path,
    rel: str,
    *,
    root: Path | None = None,
    out: ParsedFile | None = None,
    _depth: int = 0,
    _seen: frozenset[Path] = frozenset(),
) -> ParsedFile:
    """Requirements in pip's requirements-file format, tolerant: problems are collected."""
    out = out if out is not None else ParsedFile()
    base = (root or path.parent).resolve()
    try:
        text = _read(path)
    except DependencyFileError as exc:
        out.problems.append(Problem(rel, 0, str(exc)))
        return out
    here = path.resolve()
    logical = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        line = "" if stripped.startswith("#") else re.split(r"\s#", stripped, maxsplit=1)[0]
        line = line.strip()
        if line.endswith("\\"):
            if not logical:
                start = number
            logical += line[:-1] + " "
            continue
        if logical:
            line, logical = (logical + line).strip(), ""
        else:
            start = number
        if not line:
            continue
        include = _INCLUDE.match(line)
        if include:
            _include(
                include.group("target").strip(), path, rel, start, base, out, _depth, _seen | {here}
            )
            continue
        if line.startswith("-"):  # -e, --index-url, --hash on its own line ...
            continue
        req_text = re.split(r"\s--hash[= ]", line, maxsplit=1)[0].strip()
        req_text = re.split(r"\s--(?:global-option|config-settings|install-option)", req_text)[0]
        _requirement(req_text.strip(), rel, start, out)
    return out


def _include(
    target: str,
    path: Path,
    rel: str,
    line: int,
    base: Path,
    out: ParsedFile,
    depth: int,
    seen: frozenset[Path],
) -> None:
    if "://" in target:
        out.problems.append(Problem(rel, line, f"include {_shown(target)!r} is a URL; not fetched"))
        return
    include = (path.parent / target).resolve()
    if not include.is_relative_to(base):
        out.problems.append(
            Problem(rel, line, f"include {_shown(target)!r} is outside the project")
        )
        return
    if include in seen or depth >= _MAX_INCLUDE_DEPTH:
        out.problems.append(
            Problem(rel, line, f"includes nested more than {_MAX_INCLUDE_DEPTH} deep (a loop?)")
        )
        return
    if not include.is_file():
        out.problems.append(Problem(rel, line, f"included file {_shown(target)!r} not found"))
        return
    read_requirements(
        include,
        include.relative_to(base).as_posix(),
        root=base,
        out=out,
        _depth=depth + 1,
        _seen=seen,
    )


def read_dependency_file(path: Path, rel: str, *, root: Path) -> ParsedFile:
    """Read any dependency file :func:`dependency_kind` recognises."""
    kind = dependency_kind(rel)
    if kind == "lock":
        return read_lock(path, rel)
    if kind == "pyproject":
        return read_pyproject(path, rel)
    if kind == "pipfile":
        return read_pipfile(path, rel)
    if kind == "pipfile-lock":
        return read_pipfile_lock(path, rel)
    if kind == "setup-cfg":
        return read_setup_cfg(path, rel)
    if kind == "conda":
        return read_conda_environment(path, rel)
    return read_requirements(path, rel, root=root)


_REQUIREMENTS_NAME = re.compile(
    r"^(?:.*[-_.])?(?:requirements?|requires|constraints?|reqs)(?:[-_.].*)?\.(?:txt|in|pip)$",
    re.IGNORECASE,
)
_REQUIREMENTS_FOLDERS = frozenset({"requirements", "requirements.d", "reqs", "deps"})
_LOCK_NAMES = frozenset({"poetry.lock", "uv.lock", "pdm.lock"})
_CONDA_NAME = re.compile(
    r"^(?:.*[-_.])?environment(?:[-_.].*)?\.ya?ml$|^conda[-_.].*\.ya?ml$", re.I
)


def dependency_kind(rel: str) -> str | None:
    """Which kind of dependency file ``rel`` (a relative path) is, by name; None: not one.

    Requirements files: any name with ``requirements``/``requires``/``constraints`` as a
    word, ending ``.txt``, ``.in`` or ``.pip`` (``dev-requirements.txt``,
    ``test_requirements.txt``, ``requirements-dev.in``), and every ``.txt``/``.in`` file in a
    folder (at any depth below) named ``requirements``, ``requirements.d``, ``reqs`` or
    ``deps``. Files inside ``*.egg-info``/``*.dist-info`` folders are build metadata
    generated from the declarations read here, and are not read again.
    """
    parts = rel.split("/")
    name = parts[-1]
    lower = name.lower()
    if any(p.lower().endswith((".egg-info", ".dist-info")) for p in parts[:-1]):
        return None  # build metadata generated from pyproject/setup.cfg (read there)
    if lower in _LOCK_NAMES:
        return "lock"
    if lower == "pyproject.toml":
        return "pyproject"
    if name == "Pipfile":
        return "pipfile"
    if name == "Pipfile.lock":
        return "pipfile-lock"
    if lower == "setup.cfg":
        return "setup-cfg"
    if _CONDA_NAME.match(name):
        return "conda"
    if _REQUIREMENTS_NAME.match(name):
        return "requirements"
    if lower.endswith((".txt", ".in")) and any(
        p.lower() in _REQUIREMENTS_FOLDERS for p in parts[:-1]
    ):
        return "requirements"
    return None


def _strict(parsed: ParsedFile) -> list[Dependency]:
    if parsed.problems:
        raise DependencyFileError(str(parsed.problems[0]))
    return parsed.deps


def parse_requirements(path: Path, rel: str, *, root: Path | None = None) -> list[Dependency]:
    """Like :func:`read_requirements`, but the first problem raises
    :class:`DependencyFileError` (for callers that want all or nothing)."""
    return _strict(read_requirements(path, rel, root=root))


def _toml(path: Path) -> tuple[dict[str, Any], str]:
    text = _read(path)
    try:
        return tomllib.loads(text), text
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


def _strings(value: Any) -> list[str]:
    return [str(x) for x in value if isinstance(x, str)] if isinstance(value, list) else []


def _name_table(table: Any, rel: str, text: str, out: ParsedFile, *, pipfile: bool = False) -> None:
    """``name = "constraint"`` or ``name = {version = ...}`` tables (poetry, Pipfile)."""
    if not isinstance(table, dict):
        return
    for name, spec in table.items():
        if str(name).lower() == "python":
            continue
        constraint = spec.get("version", "") if isinstance(spec, dict) else spec
        constraint = str(constraint) if isinstance(constraint, (str, int, float)) else ""
        if pipfile and constraint.strip() == "*":
            constraint = ""
        version = _poetry_pinned(constraint) if not pipfile else None
        if pipfile and constraint.startswith("=="):
            version = _poetry_pinned(constraint)
        out.deps.append(
            Dependency(
                normalize_name(str(name)),
                version,
                constraint,
                rel,
                _line_of(text, f"{name} =") or _line_of(text, f'"{name}"'),
            )
        )


def read_pyproject(path: Path, rel: str) -> ParsedFile:
    """PEP 621 dependencies and optional dependencies, PEP 735 ``[dependency-groups]``,
    ``[tool.poetry]`` dependencies, groups and dev-dependencies, ``[tool.pdm.dev-dependencies]``
    and ``[tool.uv] dev-dependencies``."""
    out = ParsedFile()
    try:
        data, text = _toml(path)
    except DependencyFileError as exc:
        out.problems.append(Problem(rel, 0, str(exc)))
        return out
    texts: list[str] = []
    project = data.get("project")
    if isinstance(project, dict):
        texts.extend(_strings(project.get("dependencies")))
        optional = project.get("optional-dependencies")
        if isinstance(optional, dict):
            for group in optional.values():
                texts.extend(_strings(group))
    groups = data.get("dependency-groups")
    if isinstance(groups, dict):
        for group in groups.values():
            texts.extend(_strings(group))  # {include-group = ...} entries are tables: skipped
    tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
    pdm = tool.get("pdm") if isinstance(tool, dict) else None
    if isinstance(pdm, dict) and isinstance(pdm.get("dev-dependencies"), dict):
        for group in pdm["dev-dependencies"].values():
            texts.extend(_strings(group))
    uv = tool.get("uv") if isinstance(tool, dict) else None
    if isinstance(uv, dict):
        texts.extend(_strings(uv.get("dev-dependencies")))
    for req in texts:
        _requirement(req, rel, _line_of(text, req), out, allow_paths=False)
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    if isinstance(poetry, dict):
        _name_table(poetry.get("dependencies"), rel, text, out)
        _name_table(poetry.get("dev-dependencies"), rel, text, out)
        pgroups = poetry.get("group")
        if isinstance(pgroups, dict):
            for g in pgroups.values():
                if isinstance(g, dict):
                    _name_table(g.get("dependencies"), rel, text, out)
    return out


def parse_pyproject(path: Path, rel: str) -> list[Dependency]:
    """Strict form of :func:`read_pyproject`."""
    return _strict(read_pyproject(path, rel))


def read_lock(path: Path, rel: str) -> ParsedFile:
    """``[[package]]`` entries of ``poetry.lock``, ``uv.lock`` or ``pdm.lock`` (all pinned)."""
    out = ParsedFile(lock=True)
    try:
        data, text = _toml(path)
    except DependencyFileError as exc:
        out.problems.append(Problem(rel, 0, str(exc)))
        return out
    packages = data.get("package")
    for pkg in packages if isinstance(packages, list) else []:
        if isinstance(pkg, dict) and isinstance(pkg.get("name"), str):
            version = pkg.get("version")
            source = pkg.get("source")
            if isinstance(source, dict) and ("editable" in source or "virtual" in source):
                continue  # the project itself
            name = pkg["name"]
            out.deps.append(
                Dependency(
                    normalize_name(name),
                    str(version) if version is not None else None,
                    f"=={version}" if version is not None else "",
                    rel,
                    _line_of(text, f'name = "{name}"'),
                )
            )
    return out


def parse_lock(path: Path, rel: str) -> list[Dependency]:
    """Strict form of :func:`read_lock`."""
    return _strict(read_lock(path, rel))


def read_pipfile(path: Path, rel: str) -> ParsedFile:
    """``[packages]`` and ``[dev-packages]`` of a Pipfile."""
    out = ParsedFile()
    try:
        data, text = _toml(path)
    except DependencyFileError as exc:
        out.problems.append(Problem(rel, 0, str(exc)))
        return out
    for section in ("packages", "dev-packages"):
        _name_table(data.get(section), rel, text, out, pipfile=True)
    return out


def read_pipfile_lock(path: Path, rel: str) -> ParsedFile:
    """``default`` and ``develop`` of a Pipfile.lock (JSON; versions ``==x``)."""
    out = ParsedFile(lock=True)
    try:
        text = _read(path)
        data = json.loads(text)
    except (DependencyFileError, ValueError, RecursionError) as exc:
        out.problems.append(Problem(rel, 0, f"not a readable Pipfile.lock: {exc}"))
        return out
    if not isinstance(data, dict):
        out.problems.append(Problem(rel, 0, "not a Pipfile.lock (no top-level object)"))
        return out
    for section in ("default", "develop"):
        table = data.get(section)
        for name, spec in table.items() if isinstance(table, dict) else []:
            version = spec.get("version") if isinstance(spec, dict) else None
            pinned = version[2:] if isinstance(version, str) and version.startswith("==") else None
            out.deps.append(
                Dependency(
                    normalize_name(str(name)),
                    pinned,
                    str(version or ""),
                    rel,
                    _line_of(text, f'"{name}"'),
                )
            )
    return out


def read_setup_cfg(path: Path, rel: str) -> ParsedFile:
    """``install_requires`` and ``extras_require`` of ``setup.cfg`` ([options])."""
    import configparser

    out = ParsedFile()
    try:
        text = _read(path)
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.read_string(text)
    except (DependencyFileError, configparser.Error) as exc:
        out.problems.append(Problem(rel, 0, f"not a readable setup.cfg: {exc}"))
        return out
    values: list[str] = []
    if parser.has_option("options", "install_requires"):
        values.append(parser.get("options", "install_requires"))
    if parser.has_section("options.extras_require"):
        values.extend(v for _, v in parser.items("options.extras_require"))
    for value in values:
        for item in value.splitlines():
            item = item.split("#", 1)[0].strip()
            if item:
                _requirement(item, rel, _line_of(text, item), out, allow_paths=False)
    return out


def read_conda_environment(path: Path, rel: str) -> ParsedFile:
    """The ``pip:`` section of a conda ``environment.yml`` (conda packages themselves are
    another ecosystem and are not matched against PyPI advisories)."""
    import yaml

    from mltrust.advisories._yaml import load_untrusted_yaml

    out = ParsedFile()
    try:
        text = _read(path)
        doc = load_untrusted_yaml(text.encode("utf-8"))
    except (DependencyFileError, ValueError, RecursionError, yaml.YAMLError) as exc:
        out.problems.append(Problem(rel, 0, f"not a readable conda environment: {exc}"))
        return out
    deps = doc.get("dependencies") if isinstance(doc, dict) else None
    for entry in deps if isinstance(deps, list) else []:
        if isinstance(entry, dict):
            for item in _strings(entry.get("pip")):
                if item.startswith("-"):
                    continue
                _requirement(item.strip(), rel, _line_of(text, item), out)
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
