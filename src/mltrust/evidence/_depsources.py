"""Reading declared dependencies: requirements files, pyproject, setup.cfg, Pipfile(.lock),
poetry/uv/pdm locks, conda ``environment.yml`` pip sections, the installed environment, and
declarations outside the manifests: install commands (Dockerfiles, shell scripts, Makefiles,
CI files, tox and nox commands, package.json scripts...: the commands
:func:`mltrust.evidence._commands.commands` reads, the one reader of command hosts, shared with
the code analysis; :func:`_installs` keeps the installs), tox ``deps``, nox
``session.install``, pre-commit ``additional_dependencies``, PEP 723 script metadata and pixi
``pypi-dependencies``. No resolution, no network, nothing executed: only what the files say.

Decisions:

- **One bad line is a problem, not a dropped file.** Every reader collects
  :class:`Problem` entries (file, line, message) and keeps the dependencies it could read;
  the collector turns each problem into a finding and fails the vulnerability control (a line
  that was not understood is a requirement that was not checked). A file that cannot be read
  at all (I/O error, not a regular file, larger than ``max_dependency_file_bytes``, not
  TOML/JSON/YAML) is one problem for the whole file.
- **Encodings as pip reads them:** a UTF-8 BOM is dropped, a UTF-16 (LE/BE) BOM selects
  UTF-16; anything else is UTF-8 with undecodable bytes replaced.
- **Includes** (``-r``/``--requirement``/``-c``/``--constraint``, also ``-rfile`` and
  ``--requirement=file``) are followed relative to the including file, at most
  ``max_dependency_include_depth`` deep, and **never outside the project root**: an include that
  escapes is a problem (the checker must not read, and echo, files elsewhere), as is one that
  names a missing file (pip would fail too). URLs in includes are not fetched (a problem).
- **A requirement that names no release is reported, never dropped.** VCS references, direct
  URLs, archives, paths outside the project and shell variables become :class:`Unverifiable`
  entries (the collector fails the vulnerability control on them: the code they install was
  not checked). A folder inside the project is its own code, read where it is, and is not one.
- Line numbers point at the requirement's first physical line; for TOML/JSON/YAML files the
  line is found by searching for the requirement text (0 when not found).
"""

from __future__ import annotations

import codecs
import json
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from mltrust.advisories import normalize_name
from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import Error, InputError
from mltrust.files import read_bounded

__all__ = [
    "Dependency",
    "DependencyFileError",
    "Drift",
    "ParsedFile",
    "Problem",
    "Unverifiable",
    "dependency_kind",
    "environment_dependencies",
    "parse_lock",
    "parse_pyproject",
    "parse_requirements",
    "read_dependency_file",
    "source_kind",
]


class DependencyFileError(InputError, ValueError):
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


@dataclass(frozen=True, slots=True)
class Unverifiable:
    """A requirement that names no release of an index (VCS, URL, archive, a path outside the
    project, an unexpanded variable): it installs code that no advisory can be matched to."""

    source: str
    line: int
    requirement: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.requirement} ({self.reason})"


@dataclass
class ParsedFile:
    """What one dependency file declared, and what could not be read."""

    deps: list[Dependency] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unverifiable: list[Unverifiable] = field(default_factory=list)
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


#: Byte order marks as pip's requirements reader checks them (UTF-32 before UTF-16: the
#: UTF-16-LE mark is a prefix of the UTF-32-LE one).
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF16, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
#: pip's coding-cookie pattern (``pip/_internal/req/req_file.py``, ``PEP263_ENCODING_RE``),
#: searched in each of the first two lines that start with ``#``.
_PIP_CODING = re.compile(rb"coding[:=]\s*([-\w.]+)")


def decode_text(data: bytes) -> str:
    """Bytes of a text file decoded leniently: BOMs honoured as pip honours them, UTF-8
    otherwise (undecodable bytes replaced). For what pip reads of a requirements file see
    :func:`decode_requirements`."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, errors="replace")
    return data.decode("utf-8", errors="replace")


def decode_requirements(data: bytes) -> str:
    """The text pip reads from a requirements file's bytes, decoded the way pip's
    ``_decode_req_file`` does: a BOM first, then a coding cookie (``coding[:=]\\s*NAME``) in
    either of the first two lines when that line starts with ``#``, then UTF-8.

    Raises :class:`DependencyFileError` (fail closed) for a cookie naming a codec outside
    :data:`mltrust.evidence._classify.SAFE_CODECS` (``utf-7``, ``unicode_escape``... can turn
    a line that reads as a comment into a requirement), an unknown codec, or bytes that do
    not decode (pip then falls back to the locale's encoding, which the gate cannot know).
    """
    from mltrust.evidence._classify import SAFE_CODECS

    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise DependencyFileError(f"not valid {codec}: {exc.reason}") from None
    codec = "utf-8"
    for line in data.split(b"\n")[:2]:
        match = _PIP_CODING.search(line) if line.startswith(b"#") else None
        if match is not None:
            declared = match.group(1).decode("ascii")
            try:
                codec = codecs.lookup(declared).name
            except LookupError:
                raise DependencyFileError(
                    f"declares the unknown encoding {declared!r} (coding cookie)"
                ) from None
            if codec not in SAFE_CODECS:
                raise DependencyFileError(
                    f"declares the encoding {declared!r} (coding cookie), which pip decodes the "
                    "file with and which can turn what reads as a comment into a requirement; "
                    "only UTF-8, ASCII and Latin-1-family encodings are read"
                )
            break
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise DependencyFileError(
            f"not valid {codec} ({exc.reason} at byte {exc.start}); pip would fall back to "
            "the locale's encoding, which is not known here"
        ) from None


def _read(path: Path, *, requirements: bool = False) -> str:
    try:
        data = read_bounded(path, DEFAULT_LIMITS.max_dependency_file_bytes, what="dependency file")
    except Error as exc:
        raise DependencyFileError(str(exc)) from None
    return decode_requirements(data) if requirements else decode_text(data)


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _line_of(text: str, needle: str) -> int:
    """The 1-based line of the first occurrence of ``needle`` in ``text`` (0: not found)."""
    index = text.find(needle) if needle else -1
    return text.count("\n", 0, index) + 1 if index >= 0 else 0


_VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")
_ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".tar")


def _looks_like_reference(text: str) -> bool:
    """A pip argument that is a URL, VCS reference or local path rather than a name."""
    low = text.lower()
    return (
        "://" in text
        or low.startswith((*_VCS_PREFIXES, "file:", ".", "/", "~"))
        or low.endswith(_ARCHIVE_SUFFIXES)
        or ("/" in text and not re.search(r"[<>=!~;\[]", text.split("/", 1)[0]))
        or "\\" in text
    )


def _reference(
    text: str, rel: str, line: int, out: ParsedFile, *, base: Path | None, root: Path | None
) -> None:
    """A requirement given as a URL, VCS reference or path (also ``-e`` targets and
    ``name @ url``): an unverifiable finding, except a folder inside the project, which is the
    project's own code (its dependency files are read where they are)."""
    target = text.split("@", 1)[1].strip() if re.match(r"^[\w.-]+\s*@\s*\S", text) else text
    target = target.split("#", 1)[0].strip()
    low = target.lower()
    if "$" in target:
        out.unverifiable.append(
            Unverifiable(rel, line, _shown(text), "contains a variable; the version is unknown")
        )
        return
    if low.startswith(_VCS_PREFIXES):
        out.unverifiable.append(
            Unverifiable(rel, line, _shown(text), "a VCS reference; no release to match")
        )
        return
    if "://" in target and not low.startswith("file:"):
        out.unverifiable.append(
            Unverifiable(rel, line, _shown(text), "a direct URL; no release to match")
        )
        return
    local = re.sub(r"^file:(?://(?:localhost)?)?", "", target, flags=re.I)
    local = re.sub(r"\[[\w.,\s-]*\]$", "", local)  # ``.[dev,test]``: extras of the folder
    if base is not None and root is not None and local and not local.startswith("~"):
        try:
            resolved = (base / local).resolve()
            own = resolved.is_relative_to(root.resolve()) and resolved.is_dir()
        except (OSError, ValueError):  # a NUL or an over-long name: no folder of the project
            own = False
        if own:
            return  # the project's own code; its declarations are read where they are
    out.unverifiable.append(
        Unverifiable(
            rel,
            line,
            _shown(text),
            "a local archive or a path outside the project; no release to match",
        )
    )


def _requirement(
    text: str,
    rel: str,
    line: int,
    out: ParsedFile,
    *,
    allow_paths: bool = True,
    base: Path | None = None,
    root: Path | None = None,
) -> None:
    """Add one PEP 508 requirement string to ``out`` (or a problem, or an unverifiable
    reference: ``name @ url``, VCS, paths)."""
    if "$" in text and allow_paths:
        out.unverifiable.append(
            Unverifiable(rel, line, _shown(text), "contains a variable; the version is unknown")
        )
        return
    try:
        req = Requirement(text)
    except InvalidRequirement:
        if allow_paths and _looks_like_reference(text):
            _reference(text, rel, line, out, base=base, root=root)
            return
        out.problems.append(Problem(rel, line, f"not a valid requirement: {_shown(text)!r}"))
        return
    if req.url:
        _reference(text, rel, line, out, base=base, root=root)
        return
    out.deps.append(
        Dependency(normalize_name(req.name), _pinned_version(req), str(req.specifier), rel, line)
    )


# -- pip's option grammar (optparse): unique prefixes of long options, ``--opt=value``, short
# clusters (``-qr FILE``, ``-rFILE``), ``--`` ends the options. The tables mirror pip 26's
# ``cmdoptions`` (requirements files: ``req_file.SUPPORTED_OPTIONS`` and ``_REQ``; commands:
# the general options and ``pip install``'s). An option outside the table, an ambiguous prefix,
# or a value missing is an :class:`_OptionError`: the caller fails closed.


class _OptionError(ValueError):
    pass


def _option_table(values: str, flags: str) -> dict[str, bool]:
    table = dict.fromkeys(flags.split(), False)
    table.update(dict.fromkeys(values.split(), True))
    return table


#: Canonical names of the options whose values name what is installed.
_CANONICAL = {"-r": "--requirement", "-c": "--constraint", "-e": "--editable"}
_REQ_FILE_OPTIONS = _option_table(
    "-i --index-url --extra-index-url -c --constraint -r --requirement -e --editable -f"
    " --find-links --no-binary --only-binary --trusted-host --use-feature --hash -C"
    " --config-settings --all-releases --only-final --global-option",
    "--no-index --prefer-binary --require-hashes --no-require-hashes --pre",
)
_PIP_OPTIONS = _option_table(
    "--abi --all-releases --build-constraint --cache-dir --cert --client-cert --config-settings"
    " --constraint --default-timeout --editable --exists-action --extra-index-url --find-links"
    " --group --implementation --index-url --keyring-provider --local-log --log --log-file"
    " --no-binary --only-binary --only-final --platform --prefix --progress-bar --proxy"
    " --pypi-url --python --python-version --refresh-package --report --requirement"
    " --requirements-from-script --resume-retries --retries --root --root-user-action --source"
    " --source-dir --source-directory --src --target --timeout --trusted-host --upgrade-strategy"
    " --uploaded-prior-to --use-deprecated --use-feature --global-option --install-option"
    " --build-option -C -c -e -f -i -r -t",
    "--break-system-packages --check-build-dependencies --compile --debug"
    " --disable-pip-version-check --dry-run --force-reinstall --help --ignore-installed"
    " --ignore-requires-python --isolated --no-build-isolation --no-cache-dir --no-clean"
    " --no-color --no-compile --no-dependencies --no-deps --no-index --no-input"
    " --no-proxy-env --no-python-version-warning --no-require-hashes --no-user"
    " --no-warn-conflicts --no-warn-script-location --only-dependencies --only-deps --pre"
    " --prefer-binary --quiet --require-hashes --require-venv --require-virtualenv --upgrade"
    " --use-pep517 --no-use-pep517 --user --verbose --version -I -U -h -q -v -V",
)


def _parse_options(
    words: list[str], table: dict[str, bool], *, interspersed: bool = True
) -> tuple[list[tuple[str, str]], list[str]]:
    """``(options, positionals)`` as optparse reads ``words`` with ``table`` (spelling ->
    takes a value): each option as ``(canonical spelling, value or "")``. Without
    ``interspersed`` the first positional ends the options (pip's own command line)."""
    longs = [name for name in table if name.startswith("--")]
    options: list[tuple[str, str]] = []
    positionals: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "--":
            positionals.extend(words[i:])
            break
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            if name not in table:
                matches = [n for n in longs if n.startswith(name)]
                if len(matches) > 1 and all(table[n] for n in matches) and not eq:
                    # ambiguous here, unique in another pip release (``--requireme`` before
                    # ``--requirements-from-script``): the value is read as each of them
                    if i >= len(words):
                        raise _OptionError(f"{name} without a value")
                    options.extend((_CANONICAL.get(n, n), words[i]) for n in matches)
                    i += 1
                    continue
                if len(matches) != 1:
                    what = "ambiguous" if matches else "unknown"
                    raise _OptionError(f"{what} option {_shown(name)!r}")
                name = matches[0]
            if table[name] and not eq:
                if i >= len(words):
                    raise _OptionError(f"{name} without a value")
                value, i = words[i], i + 1
            elif eq and not table[name]:
                raise _OptionError(f"{name} takes no value")
            options.append((_CANONICAL.get(name, name), value))
            continue
        if word.startswith("-") and word != "-":
            k = 1
            while k < len(word):
                name = "-" + word[k]
                k += 1
                if name not in table:
                    raise _OptionError(f"unknown option {name!r}")
                if table[name]:
                    value = word[k:]
                    if not value:
                        if i >= len(words):
                            raise _OptionError(f"{name} without a value")
                        value, i = words[i], i + 1
                    options.append((_CANONICAL.get(name, name), value))
                    break
                options.append((_CANONICAL.get(name, name), ""))
            continue
        positionals.append(word)
        if not interspersed:
            positionals.extend(words[i:])
            break
    return options, positionals


#: pip's ``req_file.COMMENT_RE``.
_COMMENT = re.compile(r"(^|\s+)#.*$")


def _requirement_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(first line number, logical line)`` as pip's ``join_lines`` and ``ignore_comments``
    make them: a line continues when its raw text ends in ``\\`` (a trailing space after the
    backslash ends it) and is not a comment; comments are dropped after joining."""
    parts: list[str] = []
    first = 0
    numbered: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.endswith("\\") or _COMMENT.match(raw):
            if _COMMENT.match(raw):
                raw = " " + raw
            if parts:
                parts.append(raw)
                numbered.append((first, "".join(parts)))
                parts = []
            else:
                numbered.append((number, raw))
        else:
            if not parts:
                first = number
            parts.append(raw.strip("\\"))
    if parts:
        numbered.append((first, "".join(parts)))
    for number, line in numbered:
        line = _COMMENT.sub("", line).strip()
        if line:
            yield number, line


def _requirement_line(
    line: str, rel: str, number: int, out: ParsedFile
) -> tuple[str, list[tuple[str, str]]]:
    """One logical requirements-file line split as pip's ``break_args_options`` does: the
    requirement (the words before the first one starting with ``-``) and its options parsed
    with pip's grammar. Options that cannot be parsed, and words after options (pip ignores
    them), are problems (fail closed)."""
    tokens = line.split(" ")
    k = next((n for n, t in enumerate(tokens) if t.startswith("-")), len(tokens))
    req_text, option_text = " ".join(tokens[:k]).strip(), " ".join(tokens[k:])
    try:
        options, extra = _parse_options(shlex.split(option_text), _REQ_FILE_OPTIONS)
    except ValueError as exc:  # _OptionError, or shlex's unclosed quote
        out.problems.append(
            Problem(rel, number, f"option line not understood ({exc}): {_shown(line)!r}")
        )
        return req_text, []
    if extra:
        out.problems.append(
            Problem(rel, number, f"words after the options not understood: {_shown(line)!r}")
        )
    return req_text, options


def read_requirements(
    path: Path,
    rel: str,
    *,
    root: Path | None = None,
    out: ParsedFile | None = None,
    _depth: int = 0,
    _seen: frozenset[Path] = frozenset(),
) -> ParsedFile:
    """Requirements in pip's requirements-file format, read as pip reads it (lines joined,
    comments dropped, option lines parsed with pip's option grammar), tolerant: problems are
    collected; an option line that cannot be parsed is a problem, never skipped."""
    out = out if out is not None else ParsedFile()
    base = (root or path.parent).resolve()
    try:
        text = _read(path, requirements=True)
    except DependencyFileError as exc:
        out.problems.append(Problem(rel, 0, str(exc)))
        return out
    here = path.resolve()
    for start, line in _requirement_lines(text):
        req_text, options = _requirement_line(line, rel, start, out)
        for name, value in options:
            if name in ("--requirement", "--constraint"):
                _include(value.strip(), path, rel, start, base, out, _depth, _seen | {here})
            elif name == "--editable":
                _reference(value.strip(), rel, start, out, base=path.parent, root=base)
        if req_text:
            _requirement(req_text, rel, start, out, base=path.parent, root=base)
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
    if include in seen or depth >= DEFAULT_LIMITS.max_dependency_include_depth:
        out.problems.append(
            Problem(
                rel,
                line,
                f"includes nested more than "
                f"{DEFAULT_LIMITS.max_dependency_include_depth} deep (a loop?)",
            )
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


def read_dependency_file(
    path: Path, rel: str, *, root: Path, kind: str | None = None
) -> ParsedFile:
    """Read any dependency file :func:`dependency_kind` (or, by content,
    :func:`source_kind`) recognises; ``kind`` is the latter's answer when known."""
    kind = kind or dependency_kind(rel)
    reader = _HOST_READERS.get(kind or "")
    if reader is not None:
        return reader(path, rel, root=root)
    if kind == "lock":
        return read_lock(path, rel, root=root)
    if kind == "pylock":
        return read_pylock(path, rel, root=root)
    if kind == "pyproject":
        return read_pyproject(path, rel, root=root)
    if kind == "pipfile":
        return read_pipfile(path, rel, root=root)
    if kind == "pipfile-lock":
        return read_pipfile_lock(path, rel)
    if kind == "setup-cfg":
        return read_setup_cfg(path, rel)
    if kind == "setup-py":
        return read_setup_py(path, rel, root=root)
    if kind == "conda":
        return read_conda_environment(path, rel, root=root)
    parsed = read_requirements(path, rel, root=root)
    parsed.lock = kind == "requirements-lock"
    return parsed


_REQUIREMENTS_NAME = re.compile(
    r"^(?:.*[-_.])?(?:requirements?|requires|constraints?|reqs)(?:[-_.].*)?\.(?:txt|in|pip)$"
    r"|^.*requirements.*\.(?:txt|in|pip)$|^constraints.*\.(?:txt|in)$",
    re.IGNORECASE,
)
_REQUIREMENTS_FOLDERS = frozenset({"requirements", "requirements.d", "reqs", "deps"})
_LOCK_NAMES = frozenset({"poetry.lock", "uv.lock", "pdm.lock"})
#: rye's ``requirements.lock`` / ``requirements-dev.lock`` (requirements format, all pinned).
_REQUIREMENTS_LOCK = re.compile(r"^requirements(?:[-_.][^/]*)?\.lock$", re.IGNORECASE)
#: PEP 751: ``pylock.toml`` or ``pylock.<name>.toml``.
_PYLOCK = re.compile(r"^pylock(?:\.[^./]+)?\.toml$", re.IGNORECASE)
_CONDA_NAME = re.compile(
    r"^(?:.*[-_.])?environment(?:[-_.].*)?\.ya?ml$|^conda[-_.].*\.ya?ml$", re.I
)


def dependency_kind(rel: str) -> str | None:
    """Which kind of dependency file ``rel`` (a relative path) is, by name; None: not one.

    Requirements files: any name with ``requirements``/``requires``/``constraints`` as a
    word, ending ``.txt``, ``.in`` or ``.pip`` (``dev-requirements.txt``,
    ``test_requirements.txt``, ``requirements-dev.in``), and every ``.txt``/``.in`` file in a
    folder (at any depth below) named ``requirements``, ``requirements.d``, ``reqs`` or
    ``deps``. Also ``setup.py`` (read, never run), PEP 751 ``pylock.toml``/``pylock.*.toml``,
    rye's ``requirements*.lock`` and Dockerfiles (``Dockerfile``, ``Dockerfile.*``,
    ``*.Dockerfile``, the same with ``Containerfile``) for their ``pip install`` commands.
    Files that can declare dependencies outside the manifests (:func:`_host_kind`): tox,
    nox, pre-commit, pixi, CI files, Makefiles and shell scripts (the last kinds only count
    when they name an installer, see :func:`source_kind`).
    Files inside ``*.egg-info``/``*.dist-info`` folders are build metadata
    generated from the declarations read here, and are not read again.
    """
    parts = rel.split("/")
    name = parts[-1]
    lower = name.lower()
    if any(p.lower().endswith((".egg-info", ".dist-info")) for p in parts[:-1]):
        return None  # build metadata generated from pyproject/setup.cfg (read there)
    if lower in _LOCK_NAMES:
        return "lock"
    if _PYLOCK.match(name):
        return "pylock"
    if _REQUIREMENTS_LOCK.match(name):
        return "requirements-lock"
    if lower == "setup.py":
        return "setup-py"
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
    host = _host_kind(parts, name)
    if host is not None:
        return host
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


_SOURCE_KEYS = ("git", "hg", "svn", "bzr", "url", "path", "file")


def _source_reference(
    name: str, spec: Any, rel: str, line: int, out: ParsedFile, base: Path, root: Path | None
) -> bool:
    """A ``{git = ...}``/``{path = ...}``/``{url = ...}`` table (poetry, Pipfile, uv sources):
    an unverifiable reference (or the project's own folder). True when it was one."""
    specs = spec if isinstance(spec, list) else [spec]
    found = False
    for one in specs:
        if not isinstance(one, dict):
            continue
        for key in _SOURCE_KEYS:
            value = one.get(key)
            if not isinstance(value, str):
                continue
            found = True
            if key in ("git", "hg", "svn", "bzr"):
                out.unverifiable.append(
                    Unverifiable(
                        rel, line, _shown(f"{name} = {key} {value}"), f"a {key} source; no release"
                    )
                )
            elif key == "url" or "://" in value:
                out.unverifiable.append(
                    Unverifiable(rel, line, _shown(f"{name} = {value}"), "a direct URL; no release")
                )
            else:
                _reference(value, rel, line, out, base=base, root=root)
    return found


_POETRY_VERSION = r"v?\d+(?:\.\d+)*(?:[-_.]?[a-zA-Z]+\.?\d*)*(?:\+[a-zA-Z0-9.]+)?"
_POETRY_WILDCARD = re.compile(r"(==|!=|=)?\s*v?(\d+(?:\.\d+)*)(?:\.[xX*])+")
_POETRY_CARET_TILDE = re.compile(rf"([\^~])\s*({_POETRY_VERSION})")
_POETRY_BASIC = re.compile(rf"(<=|>=|==|!=|<|>|=|~=)?\s*({_POETRY_VERSION})")
#: Poetry's AND separator: a comma, or spaces that do not follow an operator.
_POETRY_AND = re.compile(r"\s*,\s*|(?<![<>=!~^,\s])\s+(?![,\s])")


def _release(version: str) -> list[int]:
    m = re.match(r"\d+(?:\.\d+)*", version.lstrip("vV"))
    return [int(x) for x in m.group().split(".")] if m else []


def _poetry_one(text: str) -> str | None:
    """One Poetry constraint (no ``||``, no ``,``) as a PEP 440 specifier ("" = any version),
    or None when it is not Poetry's grammar. As poetry-core reads it: ``^1.2.3`` allows up to
    the next release that may break (``<2``; ``^0.2.3`` ``<0.3``; ``^0.0.3`` ``<0.0.4``;
    ``^0.0`` ``<0.1``; ``^0`` ``<1``), ``~1.2.3`` up to the next minor (``~1`` the next
    major), ``1.2.*`` the ``1.2`` series, a bare version (or ``=``) exactly that version."""
    text = text.strip()
    if text in ("", "*", "x", "X"):
        return ""
    m = _POETRY_WILDCARD.fullmatch(text)
    if m:
        op = "!=" if m.group(1) == "!=" else "=="
        return f"{op}{m.group(2)}.*"
    m = _POETRY_CARET_TILDE.fullmatch(text)
    if m:
        version = m.group(2).lstrip("vV")
        parts = _release(version)
        if not parts:
            return None
        if m.group(1) == "~":
            upper = [parts[0] + 1] if len(parts) == 1 else [parts[0], parts[1] + 1]
        elif parts[0] > 0 or len(parts) == 1:
            upper = [parts[0] + 1]
        elif parts[1] > 0 or len(parts) == 2:
            upper = [0, parts[1] + 1]
        else:
            upper = [0, 0, parts[2] + 1]
        return f">={version},<{'.'.join(map(str, upper))}"
    m = _POETRY_BASIC.fullmatch(text)
    if m:
        op = m.group(1) or "=="
        return f"{'==' if op == '=' else op}{m.group(2).lstrip('vV')}"
    return None


def poetry_specifiers(constraint: str) -> list[str] | None:
    """A Poetry version constraint as PEP 440 specifiers, one per ``||`` alternative (each
    alternative is judged on its own: the stricter reading), or None when any part is not
    Poetry's grammar (the caller reports it unverifiable: an unread range is never "any")."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    out = []
    for alternative in constraint.split("||"):
        if not alternative.strip() and constraint.strip():
            return None
        parts = [p for p in _POETRY_AND.split(alternative.strip()) if p]
        specs = [_poetry_one(p) for p in parts] or [""]
        if any(s is None for s in specs):
            return None
        joined = ",".join(s for s in specs if s)
        try:
            SpecifierSet(joined)
        except InvalidSpecifier:
            return None
        out.append(joined)
    return out


def _name_table(
    table: Any,
    rel: str,
    text: str,
    out: ParsedFile,
    *,
    pipfile: bool = False,
    base: Path | None = None,
    root: Path | None = None,
) -> None:
    """``name = "constraint"`` or ``name = {version = ...}`` tables (poetry, Pipfile); Poetry's
    multiple-constraints form ``name = [{version = ..., python = ...}, ...]`` counts every
    entry (any one may be the one installed)."""
    if not isinstance(table, dict):
        return
    for name, spec in table.items():
        if str(name).lower() == "python":
            continue
        line = _line_of(text, f"{name} =") or _line_of(text, f'"{name}"')
        for one in spec if isinstance(spec, list) and not pipfile else [spec]:
            if base is not None and _source_reference(str(name), one, rel, line, out, base, root):
                continue
            _name_entry(str(name), one, rel, line, out, pipfile=pipfile)


def _name_entry(
    name: str, spec: Any, rel: str, line: int, out: ParsedFile, *, pipfile: bool
) -> None:
    constraint = spec.get("version", "") if isinstance(spec, dict) else spec
    if not isinstance(constraint, (str, int, float)) or isinstance(constraint, bool):
        out.unverifiable.append(
            Unverifiable(rel, line, _shown(f"{name} = {spec!r}"), _UNREAD_CONSTRAINT)
        )
        return
    constraint = str(constraint)
    if pipfile:
        if constraint.strip() == "*":
            constraint = ""
        version = _poetry_pinned(constraint) if constraint.startswith("==") else None
        out.deps.append(Dependency(normalize_name(name), version, constraint, rel, line))
        return
    version = _poetry_pinned(constraint)
    if version is not None:
        out.deps.append(Dependency(normalize_name(name), version, constraint, rel, line))
        return
    specs = poetry_specifiers(constraint)
    if specs is None:
        out.unverifiable.append(
            Unverifiable(rel, line, _shown(f"{name} = {constraint}"), _UNREAD_CONSTRAINT)
        )
        return
    for one in specs:
        out.deps.append(Dependency(normalize_name(name), None, one, rel, line))


_UNREAD_CONSTRAINT = "a version constraint that could not be read; what it allows is unknown"


def _table(value: Any, *keys: str) -> dict[str, Any]:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def read_pyproject(path: Path, rel: str, *, root: Path | None = None) -> ParsedFile:
    """PEP 621 dependencies and optional dependencies, PEP 735 ``[dependency-groups]``,
    ``[build-system] requires``, ``[tool.poetry]`` dependencies, groups and dev-dependencies,
    ``[tool.pdm.dev-dependencies]``, ``[tool.uv]`` dev-, override- and constraint-dependencies
    and ``[tool.uv.sources]``, ``[tool.hatch.envs.*]`` dependencies and extra-dependencies, and
    the files named by ``[tool.setuptools.dynamic]`` (read as requirements files, inside the
    project only; a file that is a dependency file by name is read on its own already)."""
    out = ParsedFile()
    try:
        data, text = _toml(path)
    except DependencyFileError as exc:
        out.problems.append(Problem(rel, 0, str(exc)))
        return out
    texts: list[str] = []
    project = _table(data, "project")
    texts.extend(_strings(project.get("dependencies")))
    for group in _table(project, "optional-dependencies").values():
        texts.extend(_strings(group))
    for group in _table(data, "dependency-groups").values():
        texts.extend(_strings(group))  # {include-group = ...} entries are tables: skipped
    texts.extend(_strings(_table(data, "build-system").get("requires")))
    for group in _table(data, "tool", "pdm", "dev-dependencies").values():
        texts.extend(_strings(group))
    uv = _table(data, "tool", "uv")
    for key in ("dev-dependencies", "override-dependencies", "constraint-dependencies"):
        texts.extend(_strings(uv.get(key)))
    _hatch(_table(data, "tool", "hatch"), text, path, rel, out, root)
    for req in texts:
        _requirement(
            req, rel, _line_of(text, req), out, allow_paths=False, base=path.parent, root=root
        )
    for name, spec in _table(uv, "sources").items():
        line = _line_of(text, f"{name} =")
        _source_reference(str(name), spec, rel, line, out, path.parent, root)
    poetry = _table(data, "tool", "poetry")
    tables = [poetry.get("dependencies"), poetry.get("dev-dependencies")]
    tables.extend(
        g.get("dependencies") for g in _table(poetry, "group").values() if isinstance(g, dict)
    )
    for table in tables:
        _name_table(table, rel, text, out, base=path.parent, root=root)
    _dynamic_files(_table(data, "tool", "setuptools", "dynamic"), path, rel, text, out, root)
    _tox_in_pyproject(data, text, path, rel, out, root)
    _pixi(_table(data, "tool", "pixi"), text, path, rel, out, root)
    return out


def _hatch(
    hatch: dict[str, Any], text: str, path: Path, rel: str, out: ParsedFile, root: Path | None
) -> None:
    """A hatch table (``[tool.hatch]`` or a ``hatch.toml``): the requirements its environments
    install (``dependencies``, ``extra-dependencies``, also set by ``overrides``), its build
    hooks' ``dependencies`` and ``env.requires``, and the installs among the commands hatch
    runs (scripts, pre-/post-install commands), as
    :func:`mltrust.evidence._commands.hatch_values` reads them."""
    from mltrust.evidence._commands import HATCH_DEPENDENCY_KEYS, hatch_commands, hatch_values

    for req in hatch_values(hatch, HATCH_DEPENDENCY_KEYS):
        _requirement(
            req, rel, _line_of(text, req), out, allow_paths=False, base=path.parent, root=root
        )
    _installs(list(hatch_commands(hatch, text)), path, rel, out, (root or path.parent).resolve())


def _dynamic_files(
    dynamic: dict[str, Any], path: Path, rel: str, text: str, out: ParsedFile, root: Path | None
) -> None:
    """``dependencies = {file = [...]}`` and ``optional-dependencies.NAME = {file = ...}``."""
    specs = [dynamic.get("dependencies")]
    optional = dynamic.get("optional-dependencies")
    if isinstance(optional, dict):
        specs.extend(optional.values())
    base = (root or path.parent).resolve()
    for spec in specs:
        files = spec.get("file") if isinstance(spec, dict) else None
        names = [files] if isinstance(files, str) else _strings(files)
        for name in names:
            line = _line_of(text, name)
            target = (path.parent / name).resolve()
            if not target.is_relative_to(base):
                out.problems.append(
                    Problem(
                        rel,
                        line,
                        f"dynamic dependencies file {_shown(name)!r} is outside the project",
                    )
                )
            elif not target.is_file():
                out.problems.append(
                    Problem(rel, line, f"dynamic dependencies file {_shown(name)!r} not found")
                )
            elif dependency_kind(target.relative_to(base).as_posix()) is None:
                read_requirements(target, target.relative_to(base).as_posix(), root=base, out=out)


def parse_pyproject(path: Path, rel: str) -> list[Dependency]:
    """Strict form of :func:`read_pyproject`."""
    return _strict(read_pyproject(path, rel))


def _lock_source(
    name: str,
    source: dict[str, Any],
    path: Path,
    rel: str,
    line: int,
    out: ParsedFile,
    root: Path | None,
) -> bool:
    """A lock entry installed from git, a URL or a path (uv ``source = {git = ...}``, poetry
    ``[package.source] type = "git"``): unverifiable (or the project's own folder). True when
    it was one; registry sources are matched by version."""
    kind = str(source.get("type", ""))
    if kind in ("git", "hg", "svn", "bzr", "url") or any(k in source for k in ("git", "url")):
        where = source.get("url") or source.get("git") or ""
        out.unverifiable.append(
            Unverifiable(
                rel, line, _shown(f"{name} {where}".strip()), "a VCS or URL source; no release"
            )
        )
        return True
    local = source.get("path") or source.get("directory")
    if kind in ("file", "directory") or local is not None:
        target = str(local if local is not None else source.get("url", ""))
        _reference(target, rel, line, out, base=path.parent, root=root)
        return True
    return False


def read_lock(path: Path, rel: str, *, root: Path | None = None) -> ParsedFile:
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
            line = _line_of(text, f'name = "{name}"')
            if isinstance(source, dict) and _lock_source(name, source, path, rel, line, out, root):
                continue
            out.deps.append(
                Dependency(
                    normalize_name(name),
                    str(version) if version is not None else None,
                    f"=={version}" if version is not None else "",
                    rel,
                    line,
                )
            )
    return out


def parse_lock(path: Path, rel: str) -> list[Dependency]:
    """Strict form of :func:`read_lock`."""
    return _strict(read_lock(path, rel))


def read_pipfile(path: Path, rel: str, *, root: Path | None = None) -> ParsedFile:
    """``[packages]`` and ``[dev-packages]`` of a Pipfile."""
    out = ParsedFile()
    try:
        data, text = _toml(path)
    except DependencyFileError as exc:
        out.problems.append(Problem(rel, 0, str(exc)))
        return out
    for section in ("packages", "dev-packages"):
        _name_table(data.get(section), rel, text, out, pipfile=True, base=path.parent, root=root)
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


def read_pylock(path: Path, rel: str, *, root: Path | None = None) -> ParsedFile:
    """``[[packages]]`` of a PEP 751 lock: ``name`` and ``version`` (pinned). A package from
    ``vcs``, ``archive`` or a ``directory`` outside the project has no release to match and is
    unverifiable, whatever ``version`` it states."""
    out = ParsedFile(lock=True)
    try:
        data, text = _toml(path)
    except DependencyFileError as exc:
        out.problems.append(Problem(rel, 0, str(exc)))
        return out
    packages = data.get("packages")
    for pkg in packages if isinstance(packages, list) else []:
        if not isinstance(pkg, dict) or not isinstance(pkg.get("name"), str):
            out.problems.append(Problem(rel, 0, "a [[packages]] entry without a name"))
            continue
        name = pkg["name"]
        line = _line_of(text, f'name = "{name}"')
        if isinstance(pkg.get("vcs"), dict) or isinstance(pkg.get("archive"), dict):
            kind = "vcs" if isinstance(pkg.get("vcs"), dict) else "archive"
            where = pkg[kind].get("url") or pkg[kind].get("path") or ""
            out.unverifiable.append(
                Unverifiable(
                    rel, line, _shown(f"{name} {where}".strip()), f"a {kind} source; no release"
                )
            )
            continue
        directory = pkg.get("directory")
        if isinstance(directory, dict):
            _reference(str(directory.get("path", "")), rel, line, out, base=path.parent, root=root)
            continue
        version = pkg.get("version")
        if not isinstance(version, str):
            out.unverifiable.append(
                Unverifiable(rel, line, name, "no version and no source the checker can match")
            )
            continue
        out.deps.append(Dependency(normalize_name(name), version, f"=={version}", rel, line))
    return out


_SETUP_KEYWORDS = ("install_requires", "extras_require", "setup_requires", "tests_require")


def read_setup_py(path: Path, rel: str, *, root: Path | None = None) -> ParsedFile:
    """``install_requires``, ``extras_require``, ``setup_requires`` and ``tests_require`` of
    ``setup(...)`` calls in a ``setup.py``, read from its syntax tree and never executed.

    A keyword's value must be a literal (a list, tuple or string; for extras a dict of them),
    or a module-level name bound once to such a literal. Anything else (a call, a comprehension,
    ``open(...)``, ``**kwargs`` passed to ``setup``, a file with no ``setup(...)`` call to read)
    is a problem: the requirements exist but cannot be known without running the file."""
    import ast

    out = ParsedFile()
    try:
        text = _read(path)
        tree = ast.parse(text, filename=rel)
    except DependencyFileError as exc:
        out.problems.append(Problem(rel, 0, str(exc)))
        return out
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        out.problems.append(Problem(rel, getattr(exc, "lineno", 0) or 0, f"does not parse: {exc}"))
        return out
    from mltrust.evidence._commands import literal_bindings

    setups = _setup_names(tree)

    def is_setup(call: ast.Call) -> bool:
        func = call.func
        if isinstance(func, ast.Name):
            return func.id in setups
        return isinstance(func, ast.Attribute) and func.attr == "setup"

    bound = literal_bindings(tree, is_setup)

    def literal(node: ast.expr) -> Any:
        if isinstance(node, ast.Name) and node.id in bound:
            node = bound[node.id]
        return ast.literal_eval(node)

    def requirement_list(value: Any) -> list[str] | None:
        if isinstance(value, str):
            return [x.split("#", 1)[0].strip() for x in value.splitlines()]
        if isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value):
            return [x.strip() for x in value]
        return None

    try:
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    except RecursionError:
        out.problems.append(Problem(rel, 0, "nested too deeply to read"))
        return out
    for node in ast.walk(tree):
        # ``setup`` handed on (``functools.partial(setup, ...)``, ``s = setuptools.setup``,
        # a helper's argument): the call that runs it is not one this reader sees.
        spelled = (
            node.id
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
            else "setup"
            if isinstance(node, ast.Attribute) and node.attr == "setup"
            else ""
        )
        if spelled in setups and not any(c.func is node for c in calls):
            out.problems.append(
                Problem(
                    rel,
                    getattr(node, "lineno", 0),
                    f"setup is passed on as {spelled!r}; the requirements of the call that "
                    "runs it were not read (setup.py is never run)",
                )
            )
    if not any(is_setup(call) for call in calls) and not out.problems:
        # ``runpy.run_path("build.py")``, ``import build``, ``getattr(setuptools, name)(...)``:
        # the call that declares the requirements is somewhere this reader does not look
        out.problems.append(
            Problem(
                rel,
                0,
                "no setup() call this reader can read; the requirements setup.py declares "
                "were not read (setup.py is never run)",
            )
        )
    for call in calls:
        if not is_setup(call):
            continue
        for kw in call.keywords:
            if kw.arg is None:
                out.problems.append(
                    Problem(
                        rel,
                        call.lineno,
                        "setup() takes **kwargs; requirements they hold were not read",
                    )
                )
                continue
            if kw.arg not in _SETUP_KEYWORDS:
                continue
            try:
                value = literal(kw.value)
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                value = None
            groups = (
                list(value.values())
                if kw.arg == "extras_require" and isinstance(value, dict)
                else [value]
            )
            items = [requirement_list(g) for g in groups]
            if value is None or any(i is None for i in items):
                out.problems.append(
                    Problem(
                        rel,
                        kw.value.lineno,
                        f"{kw.arg} is not a literal list; not read (setup.py is never run)",
                    )
                )
                continue
            for group in items:
                for item in group or []:
                    if item:
                        _requirement(
                            item,
                            rel,
                            _line_of(text, item) or kw.value.lineno,
                            out,
                            allow_paths=False,
                            base=path.parent,
                            root=root,
                        )
    return out


#: pip install options that take a value (the value is not a requirement).
_PIP_VALUE_OPTIONS = frozenset(
    {
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "-t",
        "--target",
        "--prefix",
        "--root",
        "--platform",
        "--python-version",
        "--implementation",
        "--abi",
        "--only-binary",
        "--no-binary",
        "--progress-bar",
        "--trusted-host",
        "-C",
        "--config-settings",
        "--upgrade-strategy",
        "--src",
        "--cache-dir",
        "--log",
        "--timeout",
        "--retries",
        "--proxy",
        "--cert",
        "--client-cert",
        "--exists-action",
        "--root-user-action",
        "--report",
        "--python",
        "--global-option",
        "--install-option",
        "--build-option",
        "--keyring-provider",
        "--index",
        "--default-index",
        "--group",
        "--extra",
        "--resolution",
        "--prerelease",
        "--index-strategy",
        "-p",
        "--python-platform",
    }
)


def read_command_host(
    path: Path, rel: str, *, root: Path | None = None, host: str | None = None
) -> ParsedFile:
    """The install commands of a command host (a Dockerfile, shell script, Makefile, CI file,
    Jenkinsfile, ``package.json``, Procfile, justfile): every command
    :func:`mltrust.evidence._commands.commands` reads from it (the one reader of command
    hosts, shared with the code analysis) that installs Python packages (:func:`_installs`).
    ``-r FILE``/``-c FILE`` are looked up beside the file, then at the project root, then by
    file name beside it (an image path such as ``/app/requirements.txt`` usually names a
    copied project file); one not found is unverifiable, as are arguments with variables."""
    from mltrust.evidence._classify import command_host

    out = ParsedFile()
    text = _host_text(path, rel, out)
    if text is None:
        return out
    kind = host or command_host(rel, text[:512]) or "shell"
    base = (root or path.parent).resolve()
    _installs(_host_commands(kind, text, path, base), path, rel, out, base)
    return out


def _host_commands(
    kind: str, text: str, path: Path | None = None, base: Path | None = None
) -> list[Any]:
    """The commands of the host at ``path``; a makefile's ``include`` of a project file
    (looked up as :func:`_host_file_installs` looks up a file a host runs) lends it the
    variables that file assigns."""
    from mltrust.evidence._commands import commands

    def include(name: str) -> str | None:
        # make looks from its working folder (the root); from the host's folder too: the
        # variables of every file the name may be are the host's
        if path is None or base is None:
            return None
        found = [_project_file(c, base) for c in _host_candidates(name, path, base) or ()]
        texts: list[str] = []
        for file in dict.fromkeys(f for f in found if f is not None):
            try:
                texts.append(_read(file))
            except DependencyFileError:
                pass  # reported where the file is read as a makefile
        return "\n".join(texts) if texts else None

    return commands(kind, text, include)  # type: ignore[arg-type]


def _installs(
    found: list[Any],
    path: Path,
    rel: str,
    out: ParsedFile,
    base: Path,
    seen: set[tuple[str, Path]] | None = None,
    dirs: tuple[str, ...] = (),
) -> None:
    """The installs among commands of the shared stream: a command that cannot be read is a
    problem when it names an installer (a tox reference naming nothing readable is
    unverifiable); every other command's words are read for an install. A file a command
    runs as a shell script or reads as a makefile (``bash FILE``, ``. FILE``, ``make -f
    FILE``, ``include FILE``: :func:`mltrust.evidence._commands.host_file`) is read the same
    way when it is a file of the project that is not a dependency file by name already.
    ``dirs``: the include folders of the make run the commands are read for (``make -I
    DIR``: :func:`mltrust.evidence._commands.make_include_dirs`), where a makefile they name
    is looked up too."""
    from mltrust.evidence._commands import make_include_dirs, ran_file, unread_host

    seen = set() if seen is None else seen
    for command in found:
        if command.unread:
            out.problems.append(
                Problem(rel, command.line, f"{command.unread}; what it runs is not read")
            )
            continue
        ran = ran_file(command)
        if ran is not None:
            why = unread_host(*ran)
            if why is not None:
                out.problems.append(Problem(rel, command.line, f"{why}; what it runs is not read"))
            else:
                given = make_include_dirs(command.words) or dirs if ran[0] == "make" else ()
                _host_file_installs(ran, path, out, base, seen, given)
        if command.reads is not None:
            continue
        if command.unreadable:
            if command.text.startswith("{["):
                out.unverifiable.append(
                    Unverifiable(rel, command.line, _shown(command.text), command.unreadable)
                )
            elif _has_installer(command.text):
                out.problems.append(
                    Problem(rel, command.line, f"command not understood: {command.unreadable}")
                )
            continue
        _install_words(list(command.words), command.line, path, rel, out, base)


def _host_file_installs(
    ran: tuple[str, str],
    path: Path,
    out: ParsedFile,
    base: Path,
    seen: set[tuple[str, Path]],
    dirs: tuple[str, ...] = (),
) -> None:
    kind, target = ran
    candidates = _host_candidates(target, path, base, kind, dirs)
    if candidates is None:
        out.problems.append(
            Problem(
                path.relative_to(base).as_posix() if path.is_relative_to(base) else "",
                0,
                f"runs {target!r}, which names more than "
                f"{DEFAULT_LIMITS.max_command_host_matches} files; not read",
            )
        )
        return
    # the name from the host's folder and from the root (where CI runs, and where GitLab and
    # make look): both are read when both are files, so a decoy beside the host hides nothing
    for candidate in candidates:
        _host_file_read(kind, candidate, out, base, seen, dirs)


def _host_candidates(
    target: str, path: Path, base: Path, kind: str | None = None, dirs: tuple[str, ...] = ()
) -> list[Path] | None:
    """The files the name ``target`` in the host ``path`` may be: from the host's folder and
    from the root, and from each of ``dirs`` (folders from the root: a makefile's ``include``
    in a ``make -I DIR`` run); for a name the shell computes (``bash ci/st*p``, ``. $DIR/x``,
    ``include $(wildcard mk/*.mk)``), every project file it may name (a variable naming
    nothing here, ``$HOME/.profile``, names none), but those read on their own as hosts of
    ``kind`` when it is given. None when that is more than
    ``Limits.max_command_host_matches`` files."""
    from mltrust.evidence._commands import computed_name, host_file_matches

    if target.startswith("~"):
        return []  # outside the project (``~/.profile``)
    if not computed_name(target):
        found = [path.parent / target, base / target.lstrip("/")]
        return found + [base / d / target for d in dirs if not target.startswith("/")]

    def children(rel: str) -> list[str]:
        try:
            return sorted(p.name for p in (base / rel).iterdir())
        except OSError:
            return []

    try:
        folder = path.parent.resolve().relative_to(base.resolve()).as_posix()
    except (OSError, ValueError):
        folder = ""

    def keep(rel: str) -> bool:
        full = base / rel
        return full.is_file() and (kind is None or not _read_as(kind, rel, full))

    folders = (folder if folder != "." else "", "", *dirs)
    matches = host_file_matches(target, folders, children, keep)
    return (
        None
        if len(matches) > DEFAULT_LIMITS.max_command_host_matches
        else [base / m for m in matches]
    )


def _read_as(kind: str, rel: str, path: Path) -> bool:
    """Whether the project file ``rel`` is read on its own (:func:`source_kind`) as a host
    of the kind ``kind`` (:data:`_HOST_KINDS`) already: a file of another kind by name that
    a host runs (``. ./setup.cfg``) is read as what runs it too."""
    return source_kind(rel, path) == _HOST_KINDS.get(kind, kind)


def _project_file(candidate: Path, base: Path) -> Path | None:
    """``candidate`` resolved (links followed), when it is a file inside the project
    ``base`` (no ``..`` or link out of it); else None."""
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(base) or not resolved.is_file():
        return None
    return resolved


def _host_file_read(
    kind: str,
    candidate: Path,
    out: ParsedFile,
    base: Path,
    seen: set[tuple[str, Path]],
    dirs: tuple[str, ...] = (),
) -> bool:
    """Read the installs of ``candidate`` run as a host of ``kind`` (a makefile of a ``make
    -I DIR`` run: with its include folders ``dirs``); False when it is not a file of the
    project. A makefile read on its own already is read again for such a run, but only for
    the makefiles it includes that are found in ``dirs``."""
    resolved = _project_file(candidate, base)
    if resolved is None:
        return False
    inner = resolved.relative_to(base).as_posix()
    own = _read_as(kind, inner, resolved)
    key = (f"{kind} -I {' '.join(dirs)}" if own and dirs else kind, resolved)
    # once per kind: a file run as a shell script and read as a makefile is read both ways
    if key in seen or (own and not dirs):
        return True  # read already (or being read), or read on its own as such a host
    if len(seen) >= DEFAULT_LIMITS.max_command_host_files:
        out.problems.append(
            Problem(
                inner,
                0,
                f"more than {DEFAULT_LIMITS.max_command_host_files} files run by one host; "
                "not read",
            )
        )
        return True
    seen.add(key)
    text = _host_text(resolved, inner, out)
    if text is None:
        return True
    found = _host_commands(kind, text, resolved, base)
    if own:
        from mltrust.evidence._commands import computed_name, ran_file

        # what the include folders add: the makefiles it includes found there (the others,
        # and its own commands, are read where it is read on its own)
        for command in found:
            ran = ran_file(command)
            if ran is not None and ran[0] == "make" and not computed_name(ran[1]):
                for folder in dirs:
                    _host_file_read("make", base / folder / ran[1], out, base, seen, dirs)
        return True
    _installs(found, resolved, inner, out, base, seen, dirs)
    return True


#: Words that can start an install of Python packages (a cheap test before a line is split,
#: made on the text with quotes and backslashes removed: ``p''ip`` is ``pip``); a variable,
#: a substitution or a make function (``$(subst X,,pXip)``, ```printf p`ip``) earlier on a
#: line with ``install``/``add`` counts too (see :func:`_install_args`).
_INSTALLER_HINT = re.compile(
    r"\bpip[0-9.]*\b|mpip[0-9.]*\b|\bpipx\b|\bpip-sync\b|\buvx?\b|\bpipenv\b|\bpoetry\b|\bpdm\b"
    r"|\brye\b"
    # the first ``$``/backquote of a line (possessive: each line is scanned once, not once
    # per ``$`` in it, which was quadratic in a long line of ``$a$a$a...``)
    r"|(?m:^[^\n$`]*+[$`][^\n]*?\s(?:install|add)\b)",
    re.I,
)
_PIP_WORD = re.compile(r"(?:.*/)?pip[0-9.]*|-[A-Za-z]*mpip[0-9.]*")
#: ``$PIP``/``${PIP}``/``$(PIP)`` (a Makefile's ``$MAKE_PIP`` once expanded): a variable
#: named for pip, followed by ``install``, is read as pip.
_PIP_VARIABLE = re.compile(r"\$\{?\w*PIP\w*\}?", re.I)
#: ``${VAR:-word}``/``${VAR-word}``/``${VAR:=word}``: the default names the program;
#: ``$(command -v pip)``/```which pip```: the program the substitution looks up.
_DEFAULTED = re.compile(
    r"\$\{\w+:?[-=]([^{}$]*)\}"
    r"|\$\(\s*(?:command\s+-v|which|type\s+-[pP])\s+([^\s()$`]+)\s*\)"
    r"|`\s*(?:command\s+-v|which|type\s+-[pP])\s+([^\s()$`]+)\s*`"
)
#: Tools whose ``install``/``add`` operands are requirements (read as pip's are, leniently).
_ADDERS = {"pipenv": "install", "poetry": "add", "pdm": "add", "rye": "add"}
#: uv's global options that take a value (they may precede the subcommand).
_UV_VALUE_OPTIONS = frozenset(
    {
        "--directory",
        "--project",
        "-p",
        "--python",
        "--cache-dir",
        "--config-file",
        "--color",
        "--allow-insecure-host",
        "--python-preference",
        "--index-url",
        "--index",
        "--default-index",
    }
)


#: Words that can run another file as a command host (:func:`_host_file_installs`): a host
#: that names one is read too, since the file it runs may install.
_RUNS_HOST_FILE = re.compile(
    r"\b(?:ba|da|z|k|mk|a)?sh\b|\bsource\b|(?:^|[\s;&|(`])\.[ \t]+\S|\bs?includes?\b|\bmake\b"
    r"|\bMAKE\b|\b(?:docker|podman|buildah|nerdctl|buildctl)\b"
    r"|\b(?:eval|import|mod|just|dockerfile|dockerFile|dockerComposeFile|extends)\b"
    # text a YAML loader decodes (``!!binary``: base64) hides any word from this test
    r"|!!binary|tag:yaml\.org,2002:binary",
    re.M,
)


def _has_installer(text: str) -> bool:
    """Whether ``text`` names an installer, once shell quotes and backslashes are removed."""
    return bool(_INSTALLER_HINT.search(re.sub(r"[\'\"\\]", "", text)))


def _uv_verb(words: list[str], i: int) -> tuple[str, int] | None:
    """The subcommand after ``words[i]`` (uv, or one of its subcommands), skipping uv's
    global options and their values."""
    j = i + 1
    while j < len(words):
        word = words[j]
        if word.startswith("-"):
            j += 2 if word in _UV_VALUE_OPTIONS else 1
            continue
        return word, j
    return None


def _install_args(words: list[str]) -> tuple[str, list[str]] | None:
    """``(kind, arguments)`` when ``words`` (one simple command) installs Python packages:
    ``pip install``/``python -m pip install``/``python -mpip install`` (kind ``pip``: pip's own
    grammar, its global options before ``install`` skipped), ``uv pip install`` (``uvpip``),
    ``uv add``, ``uv tool install``, ``pipx install``, ``pipenv install``, ``poetry add``,
    ``pdm add``, ``rye add`` (``uvpip``: read leniently), ``pipx inject VENV ...``
    (``inject``), ``uv pip sync FILE...``/``pip-sync FILE...`` (``sync``: operands are
    requirements files), ``uv run``/``uv tool run``/``uvx``/``pipx run`` (``with``: only the
    ``--with``/``--spec`` options install). ``problem``: pip's command line could not be
    parsed (the argument is why); ``unknown``: the program is a variable and the command
    installs (``$TOOL install x``). Kinds are prefixed ``stdin-`` when ``xargs`` runs the
    installer (operands come from standard input). None: not an install."""
    from mltrust.evidence._commands import NOT_RUNNING, argv

    head = len(words) - len(argv(words))
    if head < len(words) and words[head].rsplit("/", 1)[-1] in NOT_RUNNING:
        return None  # ``echo pip install x`` prints the words; it installs nothing
    stdin = ""
    via_uv = False
    for i, word in enumerate(words):
        defaulted = _DEFAULTED.fullmatch(word)
        if defaulted:
            word = next((g.strip() for g in defaulted.groups() if g and g.strip()), word)
        base = word.rsplit("/", 1)[-1]
        if base == "xargs":
            stdin = "stdin-"
            continue
        if _PIP_WORD.fullmatch(word) or _PIP_VARIABLE.fullmatch(word):
            rest = words[i + 1 :]
            if via_uv:
                found = verb(rest)
                if found and found[0] == "install":
                    return stdin + "uvpip", rest[found[1] + 1 :]
                if found and found[0] == "sync":
                    return stdin + "sync", rest[found[1] + 1 :]
                return None
            try:
                _, positionals = _parse_options(rest, _PIP_OPTIONS, interspersed=False)
            except _OptionError as exc:
                return (
                    ("problem", [f"pip command line not understood ({exc})"])
                    if ("install" in rest)
                    else None
                )
            if positionals[:1] == ["install"]:
                return stdin + "pip", positionals[1:]
            if positionals[:1] == ["sync"]:
                return stdin + "sync", positionals[1:]
            return None
        if base == "pip-sync":
            return stdin + "sync", words[i + 1 :]
        if base == "uvx":
            return stdin + "with", words[i + 1 :]
        if base in _ADDERS:
            found = verb(words[i + 1 :])
            if found and found[0] == _ADDERS[base]:
                return stdin + "uvpip", words[i + 2 + found[1] :]
            continue  # ``poetry run pip install ...``: the pip word comes later
        if base == "pipx":
            found = verb(words[i + 1 :])
            if found and found[0] == "install":
                return stdin + "uvpip", words[i + 2 + found[1] :]
            if found and found[0] == "inject":
                return stdin + "inject", words[i + 2 + found[1] :]
            if found and found[0] == "run":
                return stdin + "with", words[i + 2 + found[1] :]
            return None
        if base == "uv":
            uv = _uv_verb(words, i)
            if uv and uv[0] == "add":
                return stdin + "uvpip", words[uv[1] + 1 :]
            if uv and uv[0] == "tool":
                sub = _uv_verb(words, uv[1])
                if sub and sub[0] == "install":
                    return stdin + "uvpip", words[sub[1] + 1 :]
                if sub and sub[0] == "run":
                    return stdin + "with", words[sub[1] + 1 :]
            if uv and uv[0] == "pip":
                via_uv = True
                continue  # ``uv pip ...``: the next word is the pip word
            if uv and uv[0] == "run":
                return stdin + "with", words[uv[1] + 1 :]
            return None
        computed = "$" in word or "`" in word
        if computed and i >= head and all("$" in w or "`" in w for w in words[head:i]):
            # a program the shell computes (``$TOOL``, ``$(printf p)ip``; ``$SUDO $PIP``: any
            # of the leading computed words may be the program): unknown
            found = verb(words[i + 1 :])
            if found and found[0] in ("install", "add"):
                return "unknown", words[i + 2 + found[1] :]
            continue  # ``$PYTHON -m pip install ...``: the pip word comes later
    return None


def verb(words: list[str]) -> tuple[str, int] | None:
    """The first word of ``words`` that is not an option, and its index."""
    for j, word in enumerate(words):
        if not word.startswith("-"):
            return word, j
    return None


def _install_words(
    cmd: list[str], line: int, path: Path, rel: str, out: ParsedFile, base: Path
) -> None:
    """The install in one simple command's words, if it is one."""
    found = _install_args(cmd)
    if found is None:
        return
    kind, args = found
    if kind == "problem":
        out.problems.append(Problem(rel, line, args[0]))
        return
    if kind == "unknown" or kind.startswith("stdin-"):
        why = (
            "the installer is a variable the checker does not expand"
            if kind == "unknown"
            else "the installer reads its operands from standard input (xargs)"
        )
        out.unverifiable.append(Unverifiable(rel, line, _shown(" ".join(cmd)), why))
        kind = kind.removeprefix("stdin-")
        if kind == "unknown":
            return
    if kind == "with":  # ``uv run --with REQ``: only the options install
        i = 0
        while i < len(args) - 1:
            if args[i] in ("--with", "--with-requirements", "--with-editable", "--spec"):
                _pip_args(args[i : i + 2], path, rel, line, out, base)
                i += 1
            i += 1
        _pip_args(
            [a for a in args if a.startswith(("--with=", "--with-requirements=", "--spec="))],
            path,
            rel,
            line,
            out,
            base,
        )
        return
    if kind == "sync":
        for arg in args:
            if not arg.startswith("-"):
                _referenced_requirements(arg, path, rel, line, out, base)
        return
    if kind == "inject":
        positional = [i for i, a in enumerate(args) if not a.startswith("-")]
        args = args[positional[0] + 1 :] if positional else []
    if kind == "pip":
        _pip_install(args, path, rel, line, out, base)
        return
    _pip_args(args, path, rel, line, out, base)


def _pip_install(
    args: list[str], path: Path, rel: str, line: int, out: ParsedFile, base: Path
) -> None:
    """``pip install``'s arguments parsed with pip's own grammar (:func:`_parse_options`)."""
    try:
        options, positionals = _parse_options(args, _PIP_OPTIONS)
    except _OptionError as exc:
        out.problems.append(Problem(rel, line, f"pip command line not understood ({exc})"))
        return
    for name, value in options:
        if name in ("--requirement", "--constraint", "--build-constraint"):
            _referenced_requirements(value, path, rel, line, out, base)
        elif name == "--editable":
            _reference(value, rel, line, out, base=path.parent, root=base)
        elif name == "--requirements-from-script":
            out.unverifiable.append(
                Unverifiable(
                    rel, line, _shown(f"{name} {value}"), "a script's dependencies; not read here"
                )
            )
    for arg in positionals:
        _requirement(arg, rel, line, out, base=path.parent, root=base)


def _pip_args(
    args: list[str], path: Path, rel: str, line: int, out: ParsedFile, base: Path
) -> None:
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        m = re.match(
            r"^(-r|--requirement|-c|--constraint|-e|--editable|--with|--with-requirements"
            r"|--preinstall|--overrides|--with-editable)(?:=(.*))?$",
            arg,
        )
        m = m or re.match(r"^(-[rce])(.+)$", arg)
        if m:
            option, value = m.group(1), m.group(2)
            if value is None:
                if i >= len(args):
                    out.problems.append(Problem(rel, line, f"{option} without a value"))
                    break
                value = args[i]
                i += 1
            if option in ("-e", "--editable", "--with-editable"):
                _reference(value, rel, line, out, base=path.parent, root=base)
            elif option in ("--with", "--preinstall"):
                for one in value.split(","):
                    _requirement(one.strip(), rel, line, out, base=path.parent, root=base)
            else:
                _referenced_requirements(value, path, rel, line, out, base)
            continue
        if arg.startswith("-"):
            if "=" not in arg and arg in _PIP_VALUE_OPTIONS:
                i += 1
            continue
        _requirement(arg, rel, line, out, base=path.parent, root=base)


def _referenced_requirements(
    target: str, path: Path, rel: str, line: int, out: ParsedFile, base: Path
) -> None:
    """A requirements file an install command or a tox/nox/conda declaration names
    (``-r``/``-c``): looked up beside the naming file, at the project root, then by name
    beside it; read as a requirements file whatever its name (unless it is a dependency file
    by name, read on its own already). One that is not found is unverifiable."""
    if "$" in target or "://" in target:
        out.unverifiable.append(
            Unverifiable(
                rel, line, _shown(f"-r {target}"), "a requirements file the checker cannot read"
            )
        )
        return
    candidates = [path.parent / target, base / target.lstrip("/"), path.parent / Path(target).name]
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved.is_relative_to(base) and resolved.is_file():
            inner = resolved.relative_to(base).as_posix()
            if dependency_kind(inner) is None:
                read_requirements(resolved, inner, root=base, out=out)
            return
    out.unverifiable.append(
        Unverifiable(
            rel,
            line,
            _shown(f"-r {target}"),
            "a requirements file not found in the project (made at build time?); not checked",
        )
    )


# -- declarations outside the manifests: install commands, tox, nox, pre-commit, PEP 723, pixi


#: :func:`mltrust.evidence._classify.command_host`'s kinds, as dependency kinds.
_HOST_KINDS = {
    "shell": "shell",
    "make": "makefile",
    "yaml": "ci-yaml",
    "jenkins": "jenkinsfile",
    "ini": "tox",
    "toml": "tox-toml",
    "python": "nox",
    "dockerfile": "dockerfile",
    "json": "package-json",
    "lines": "procfile",
}


def _host_kind(parts: list[str], name: str) -> str | None:
    """The kind of a file that can hold install commands or dependency declarations outside
    the manifests, by name (see :func:`dependency_kind`): pre-commit and pixi files, and the
    command hosts :func:`mltrust.evidence._classify.command_host` names (one decision, shared
    with the code analysis)."""
    from mltrust.evidence._classify import command_host

    lower = name.lower()
    if lower in (".pre-commit-config.yaml", ".pre-commit-config.yml"):
        return "pre-commit"
    if lower == "pixi.toml":
        return "pixi"
    host = command_host("/".join(parts))
    return _HOST_KINDS[host] if host is not None else None


#: Kinds that are read only when they can install Python packages at all (they name an
#: installer): a Dockerfile or a script that never names pip declares no dependency.
_COMMAND_HOSTS = frozenset(
    {"dockerfile", "ci-yaml", "jenkinsfile", "makefile", "shell", "package-json", "procfile"}
)
#: The line that opens a PEP 723 block (a file without one declares nothing this way).
_SCRIPT_OPENING = re.compile(rb"(?m)^# /// script\r?$")
_SCRIPT_BLOCK = re.compile(
    r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$"
)


def _head(path: Path) -> bytes | None:
    """The file's bytes (bounded), or None when it cannot be read."""
    try:
        return read_bounded(path, DEFAULT_LIMITS.max_dependency_file_bytes, what="file")
    except Error:
        return None


def source_kind(rel: str, path: Path) -> str | None:
    """:func:`dependency_kind`, refined by content: a file that holds install commands
    (Dockerfile, CI file, Makefile, shell script) counts only when it names an installer or
    a way to run another file as a host (:data:`_RUNS_HOST_FILE`; an unreadable one counts:
    reading it reports the problem); a ``.py`` file with a PEP 723
    ``# /// script`` block is ``script``; a file whose shebang runs a shell is ``shell``,
    whatever its suffix (``./ci/boot.run``), as the code analysis reads it."""
    kind = dependency_kind(rel)
    name = rel.rsplit("/", 1)[-1]
    python_script = False
    if kind is None:
        from mltrust.evidence._classify import command_host, first_line, python_shebang

        head = first_line(path)
        if command_host(rel, head) == "shell":
            kind = "shell"
        python_script = "." not in name and python_shebang(head)
    if kind in _COMMAND_HOSTS:
        data = _head(path)
        if data is None:
            return kind
        text = data.decode("latin-1")
        return kind if _has_installer(text) or _RUNS_HOST_FILE.search(text) else None
    if kind is None and (python_script or name.lower().endswith((".py", ".pyw"))):
        data = _head(path)
        return "script" if data is not None and _SCRIPT_OPENING.search(data) else None
    return kind


def _host_text(path: Path, rel: str, out: ParsedFile) -> str | None:
    try:
        return _read(path)
    except DependencyFileError as exc:
        out.problems.append(Problem(rel, 0, str(exc)))
        return None


def _requirements_item(
    item: str, path: Path, rel: str, line: int, out: ParsedFile, base: Path
) -> None:
    """One line of a requirements list held in another file (tox ``deps``, a conda
    ``pip:`` list): ``-r``/``-c`` files, ``-e`` targets, options, or a requirement, read as a
    requirements-file line (:func:`_requirement_line`)."""
    req_text, options = _requirement_line(item.strip(), rel, line, out)
    for name, value in options:
        if name in ("--requirement", "--constraint"):
            _referenced_requirements(value.strip(), path, rel, line, out, base)
        elif name == "--editable":
            _reference(value.strip(), rel, line, out, base=path.parent, root=base)
    if req_text:
        _requirement(req_text, rel, line, out, base=path.parent, root=base)


_TOX_KEYS = ("deps", "requires")


def _tox_deps_item(item: str, line: int, path: Path, rel: str, out: ParsedFile, base: Path) -> None:
    if "{" in item:
        out.unverifiable.append(
            Unverifiable(rel, line, _shown(item), "a tox substitution the checker does not expand")
        )
        return
    item = item.replace("{toxinidir}", ".")
    _requirements_item(item, path, rel, line, out, base)


def _tox_ini(text: str, offset: int, path: Path, rel: str, out: ParsedFile, base: Path) -> None:
    """``deps``/``requires`` of every section of a tox.ini (or ``legacy_tox_ini`` string whose
    first line is line ``offset + 1`` of ``rel``), and the installs among its commands; tox
    references and factors as :func:`mltrust.evidence._commands.tox_ini_values` reads them."""
    import configparser

    from mltrust.evidence._commands import tox_ini_commands, tox_ini_values

    try:
        values = list(tox_ini_values(text, _TOX_KEYS))
    except configparser.Error as exc:
        out.problems.append(Problem(rel, offset, f"not a readable tox.ini: {exc}"))
        return
    for line, item, unresolved in values:
        line = line + offset if line else 0
        if unresolved:
            out.unverifiable.append(Unverifiable(rel, line, _shown(item), unresolved))
        else:
            _tox_deps_item(item.replace("{toxinidir}", "."), line, path, rel, out, base)
    _installs(list(tox_ini_commands(text, offset)), path, rel, out, base)


def _tox_toml(
    table: dict[str, Any], text: str, path: Path, rel: str, out: ParsedFile, base: Path
) -> None:
    """``requires`` and the ``deps`` and ``commands*`` of ``env_run_base`` and ``env.*`` in
    tox's TOML form (``tox.toml``, ``[tool.tox]``). A ``{replace = "ref", of = [...]}`` is
    followed within the table; any other substitution is unverifiable."""
    from mltrust.evidence._commands import tox_toml_commands, tox_toml_resolve, tox_toml_tables

    for env in tox_toml_tables(table):
        for key in _TOX_KEYS:
            for item in tox_toml_resolve(table, env.get(key)) if key in env else []:
                if isinstance(item, str):
                    _tox_deps_item(item.strip(), _line_of(text, item.strip()), path, rel, out, base)
                else:
                    out.unverifiable.append(
                        Unverifiable(
                            rel,
                            _line_of(text, f"{key} ="),
                            _shown(str(item)),
                            "a tox substitution the checker does not expand",
                        )
                    )
    _installs(list(tox_toml_commands(table, text)), path, rel, out, base)


def read_tox(path: Path, rel: str, *, root: Path | None = None) -> ParsedFile:
    """``deps``, ``requires`` and the install commands of ``commands``/``commands_pre``/
    ``commands_post`` of every section of a ``tox.ini`` (factor conditions such as
    ``py312: name`` are dropped, so every factor's requirements count), or of a
    ``tox.toml``."""
    out = ParsedFile()
    text = _host_text(path, rel, out)
    if text is None:
        return out
    base = (root or path.parent).resolve()
    if rel.lower().endswith(".toml"):
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            out.problems.append(Problem(rel, 0, f"not valid TOML: {exc}"))
            return out
        if rel.lower().rsplit("/", 1)[-1] == "hatch.toml":
            _hatch(data, text, path, rel, out, root)
            return out
        _tox_toml(data, text, path, rel, out, base)
        return out
    _tox_ini(text, 0, path, rel, out, base)
    return out


def _tox_in_pyproject(
    data: dict[str, Any], text: str, path: Path, rel: str, out: ParsedFile, root: Path | None
) -> None:
    tox = _table(data, "tool", "tox")
    if not tox:
        return
    legacy = tox.get("legacy_tox_ini")
    base = (root or path.parent).resolve()
    if isinstance(legacy, str):
        _tox_ini(legacy, _line_of(text, "legacy_tox_ini"), path, rel, out, base)
    _tox_toml(tox, text, path, rel, out, base)


def read_noxfile(path: Path, rel: str, *, root: Path | None = None) -> ParsedFile:
    """``session.install(...)`` (and ``run_install``) arguments, and ``session.run(...)``
    calls that run an installer, of a ``noxfile.py``, read from its syntax tree and never run
    (the commands :func:`mltrust.evidence._commands.commands` reads from it). A constant
    string, or a module-level name bound once to one or to a list of them, is read; any other
    argument is a variable, so the requirement it stands in is unverifiable."""
    out = ParsedFile()
    text = _host_text(path, rel, out)
    if text is None:
        return out
    found = _host_commands("python", text)
    for command in found:
        if command.unreadable:
            out.problems.append(Problem(rel, command.line, command.unreadable))
    base = (root or path.parent).resolve()
    _installs([c for c in found if not c.unreadable], path, rel, out, base)
    return out


def _setup_names(tree: Any) -> set[str]:
    """The names ``setup`` goes by in a setup.py: ``setup`` itself and every ``as`` name it
    is imported under (``from setuptools import setup as make_package``; likewise from
    ``distutils.core`` or any module: a ``setup`` imported under another name is still one)."""
    import ast

    names = {"setup"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.update(a.asname for a in node.names if a.name == "setup" and a.asname)
    return names


def read_pre_commit(path: Path, rel: str, *, root: Path | None = None) -> ParsedFile:
    """``additional_dependencies`` of the hooks in ``.pre-commit-config.yaml``. A hook whose
    ``language`` is given and is not ``python`` installs another ecosystem's packages and is
    skipped; one without ``language`` (set by the hook's own repository) is read as Python
    when its entries are requirements (``prettier@3`` is not one and is skipped)."""
    import yaml

    from mltrust.advisories._yaml import load_untrusted_yaml

    out = ParsedFile()
    text = _host_text(path, rel, out)
    if text is None:
        return out
    try:
        doc = load_untrusted_yaml(text.encode("utf-8"))
    except (ValueError, RecursionError, yaml.YAMLError) as exc:
        out.problems.append(Problem(rel, 0, f"not a readable pre-commit config: {exc}"))
        return out
    base = (root or path.parent).resolve()
    _installs(_host_commands("yaml", text), path, rel, out, base)  # ``entry: pip install ...``
    repos = doc.get("repos") if isinstance(doc, dict) else None
    for repo in repos if isinstance(repos, list) else []:
        hooks = repo.get("hooks") if isinstance(repo, dict) else None
        for hook in hooks if isinstance(hooks, list) else []:
            if not isinstance(hook, dict):
                continue
            language = hook.get("language")
            if language not in (None, "python", "python_venv"):
                continue
            for item in _strings(hook.get("additional_dependencies")):
                item = item.strip()
                if language is None:
                    try:
                        req = Requirement(item)
                    except InvalidRequirement:
                        continue  # another language's package (the hook's repo says which)
                    if req.url and "://" not in req.url:
                        continue  # ``name@1.0``: npm's spelling, not a URL
                _requirement(item, rel, _line_of(text, item), out, base=path.parent, root=base)
    return out


def read_script_metadata(path: Path, rel: str, *, root: Path | None = None) -> ParsedFile:
    """The ``dependencies`` of a PEP 723 ``# /// script`` block in a Python file (the
    block's TOML, read with the PEP's own regular expression). A ``# /// script`` line that
    does not open a well-formed block, a second block, or TOML that does not parse is a
    problem: a runner such as ``uv run`` would install what it declares."""
    out = ParsedFile()
    text = _host_text(path, rel, out)
    if text is None:
        return out
    text = text.replace("\r\n", "\n")
    blocks = [m for m in _SCRIPT_BLOCK.finditer(text) if m.group("type") == "script"]
    opened = len(_SCRIPT_OPENING.findall(text.encode("utf-8")))
    if not opened:
        return out
    if len(blocks) != 1 or opened != 1:
        out.problems.append(
            Problem(
                rel,
                _line_of(text, "# /// script"),
                "a '# /// script' metadata block that is not exactly one well-formed block",
            )
        )
        if not blocks:
            return out
    block = blocks[0]
    start = text.count("\n", 0, block.start()) + 1
    content = "".join(
        line[2:] if line.startswith("# ") else line[1:]
        for line in block.group("content").splitlines(keepends=True)
    )
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        out.problems.append(Problem(rel, start, f"script metadata is not valid TOML: {exc}"))
        return out
    for req in _strings(data.get("dependencies")):
        inner = _line_of(content, req)
        _requirement(
            req,
            rel,
            start + inner if inner else start,
            out,
            allow_paths=False,
            base=path.parent,
            root=root,
        )
    return out


def _pixi(
    table: dict[str, Any], text: str, path: Path, rel: str, out: ParsedFile, root: Path | None
) -> None:
    """``pypi-dependencies`` of a pixi manifest (top level, ``feature.*``, ``target.*`` and
    ``feature.*.target.*``): ``name = "SPEC"`` or ``name = {version = ...}``; ``git``,
    ``url`` and ``path`` sources as elsewhere."""
    scopes = [table]
    for feature in _table(table, "feature").values():
        if isinstance(feature, dict):
            scopes.append(feature)
    scopes.extend(
        t for s in list(scopes) for t in _table(s, "target").values() if isinstance(t, dict)
    )
    for scope in scopes:
        for name, spec in _table(scope, "pypi-dependencies").items():
            line = _line_of(text, f"{name} =")
            if _source_reference(str(name), spec, rel, line, out, path.parent, root):
                continue
            version = spec.get("version", "*") if isinstance(spec, dict) else spec
            version = str(version).strip() if isinstance(version, str) else "*"
            requirement = str(name) if version in ("", "*") else f"{name}{version}"
            _requirement(requirement, rel, line, out, allow_paths=False)


def read_pixi(path: Path, rel: str, *, root: Path | None = None) -> ParsedFile:
    """A ``pixi.toml``'s PyPI dependencies (:func:`_pixi`); its conda dependencies are
    another ecosystem and not matched."""
    out = ParsedFile()
    try:
        data, text = _toml(path)
    except DependencyFileError as exc:
        out.problems.append(Problem(rel, 0, str(exc)))
        return out
    _pixi(data, text, path, rel, out, root)
    return out


def read_conda_environment(path: Path, rel: str, *, root: Path | None = None) -> ParsedFile:
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
                _requirements_item(
                    item.strip(),
                    path,
                    rel,
                    _line_of(text, item),
                    out,
                    (root or path.parent).resolve(),
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


_HOST_READERS: dict[str, Callable[..., ParsedFile]] = {
    "shell": read_command_host,
    "makefile": read_command_host,
    "ci-yaml": read_command_host,
    "jenkinsfile": read_command_host,
    "dockerfile": read_command_host,
    "package-json": read_command_host,
    "procfile": read_command_host,
    "tox": read_tox,
    "tox-toml": read_tox,
    "nox": read_noxfile,
    "pre-commit": read_pre_commit,
    "script": read_script_metadata,
    "pixi": read_pixi,
}
