"""What a file of the subject is, for code and dependency analysis: the one classifier.

A file is Python source when its name ends ``.py``/``.pyw``/``.py3``, Cython source
(``.pyx``/``.pxd``/``.pxi``: analysed as Python when it parses as Python, else not analysed,
since ``cdef`` code cannot be read by the Python rules), IPython source (``.ipy``: magics
become what IPython runs, as in notebooks), or, whatever its name, when its first line is a
shebang that runs a Python interpreter (``#!/usr/bin/env python3``,
``#!/usr/bin/python3.11 -S``, ``#!/usr/bin/env -S python -u``, ``#!/usr/bin/env -S uv run
--script``): such a script runs as Python whether or not it has a suffix, so it is analysed
as Python. A ``.ipynb`` file is a notebook. Dependency files are recognised by name
(:func:`mltrust.evidence._depsources.dependency_kind`). Type stubs (``.pyi``) are never run
and are not code; ``.rpy`` (Ren'Py), ``.sage`` and ``.bzl`` (Starlark) are other languages.

A file the project *runs with Python* is Python source too, whatever its name: the files
that start Python (:func:`command_host`: Makefiles, ``tox.ini``, ``noxfile.py``, CI YAML,
pre-commit hooks, shell scripts, Dockerfiles, ``package.json``...) are read for the
invocations they make (:mod:`mltrust.evidence._launchers`), and each file operand they
name is analysed as Python (``code_kind(..., run_by_python=True)``).

Shebangs are read as the kernel and GNU ``env`` read them: the kernel hands everything after
the interpreter path to it as one argument, and ``env -S``/``--split-string`` splits that
string itself (single and double quotes, backslash escapes, ``\\_`` as a separator), so
``#!/usr/bin/env -S "python3"`` and ``#!/usr/bin/env -S python3\\_-u`` run Python. Python
interpreters are ``python``, ``python3.13t`` (free-threaded), ``python3-dbg``, ``pythonw``,
``pypy3``, ``ipython3``, ``graalpy``; runners ``uv run``, ``pipx run``, ``poetry run
python``... Fail closed (:func:`code_kind`): a file whose shebang names any other
interpreter (a wrapper, a shell polyglot that re-executes itself with Python, ``${PY}``) is
still analysed as Python when its body parses as Python; a shell or Perl script almost never
does, and when one does, analysing it costs nothing.

Compiled code (:func:`compiled_kind`): Python bytecode (``.pyc``, ``.pyo``) and native
extension modules (``.so``, ``.pyd``) run when imported but cannot be analysed, so in the
analysed tree (outside pruned folders, or tracked by git anywhere) they are files not
analysed, never clean ones.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath
from typing import Literal

__all__ = [
    "CODE_SUFFIXES",
    "CodeKind",
    "LauncherKind",
    "code_kind",
    "code_kind_by_name",
    "command_host",
    "compiled_kind",
    "first_line",
    "launcher_kind",
    "named_for_analysis",
    "pyc_unchecked",
    "python_interpreter",
    "python_shebang",
    "python_source_text",
]

CodeKind = Literal["python", "ipython", "notebook"]
#: How a file that may start Python is read for its invocations (see :func:`launcher_kind`).
LauncherKind = Literal[
    "shell", "make", "yaml", "dockerfile", "ini", "toml", "json", "python", "lines", "jenkins"
]

#: Python source by name (every text file is searched for secrets whatever its name). Cython
#: sources are listed: one that does not parse as Python is not analysed (fail closed).
CODE_SUFFIXES = frozenset({".py", ".pyw", ".py3", ".pyx", ".pxd", ".pxi"})
_IPYTHON = ".ipy"
_NOTEBOOK = ".ipynb"
#: ``python``, ``python3``, ``python3.11``, ``python3.13t``, ``pypy3``, ``python3-dbg``,
#: ``pythonw``, ``ipython3``, ``graalpy``...
_INTERPRETER = re.compile(
    r"(?:i?python|pythonw|pypy|graalpy|jython)[0-9.]*t?(?:-[a-z0-9]+)?(?:\.exe)?",
    re.IGNORECASE,
)
#: Commands that run a tool or interpreter named later on their line (``poetry run python``).
_RUNNERS = frozenset({"uv", "uvx", "pipx", "poetry", "pdm", "hatch", "conda", "rye", "pixi"})
#: Interpreters of other languages: a script behind one of these is not analysed as Python
#: even when its text happens to parse as Python. Shells are not listed: a ``#!/bin/sh``
#: polyglot re-executing itself with ``python3`` is a known trick, so a shell script that
#: parses as Python is analysed as Python.
_OTHER_LANGUAGES = frozenset(
    {"node", "nodejs", "deno", "bun", "perl", "ruby", "php", "lua", "Rscript", "julia"}
    | {"awk", "gawk", "osascript", "tclsh", "wish", "expect", "pwsh", "make", "sed"}
)
#: ``env`` options that take a value as the next word.
_ENV_ARG_OPTIONS = frozenset(
    {"-u", "--unset", "-C", "--chdir", "-P", "--default-signal", "--ignore-signal"}
)
#: ``env`` short options that take a value (the rest of the word, else the next word).
_ENV_SHORT_ARG = frozenset("uCP")
#: Bytecode and native extension modules: code Python imports that cannot be analysed.
_BYTECODE_SUFFIXES = frozenset({".pyc", ".pyo"})
_EXTENSION_SUFFIXES = frozenset({".so", ".pyd"})
#: Source encodings read as CPython reads them: ASCII-compatible codecs whose decoding a
#: reviewer reading the file as UTF-8 also sees for every ASCII byte. Any other declared
#: codec (``utf-7``, ``unicode_escape``, ``raw_unicode_escape``, ``utf-16``, ``rot13``...)
#: can turn what looks like a comment into code, so such a file is not analysed.
SAFE_CODECS = frozenset(
    {"utf-8", "utf-8-sig", "ascii", "latin-1"}
    | {f"iso8859-{n}" for n in range(1, 17)}
    | {f"cp{n}" for n in range(1250, 1259)}
)
#: Bytes of a file's start read to find its first line.
HEAD_BYTES = 512


def code_kind_by_name(rel: str) -> CodeKind | None:
    """The kind a file's name alone gives it (:data:`CODE_SUFFIXES`, ``.ipy``, ``.ipynb``),
    else None."""
    suffix = PurePosixPath(rel).suffix.lower()
    if suffix in CODE_SUFFIXES:
        return "python"
    if suffix == _IPYTHON:
        return "ipython"
    if suffix == _NOTEBOOK:
        return "notebook"
    return None


def code_kind(
    rel: str, head: str, *, whole: bool = True, run_by_python: bool = False
) -> CodeKind | None:
    """The kind of a file from its name, else from its first line (a Python shebang), else
    ``python`` when the project runs it with Python (``run_by_python``: a launcher names it,
    see :func:`launcher_kind`), else, when ``head`` is the file's whole text (``whole``), for
    a file with any other shebang (not another language's, :data:`_OTHER_LANGUAGES`),
    ``python`` when the text after the shebang parses as Python: fail closed on interpreters
    not known. A file read only in part (larger than the analysis reads, or binary) is
    judged by its shebang alone."""
    by_name = code_kind_by_name(rel)
    if by_name is not None:
        return by_name
    if python_shebang(head) or run_by_python:
        return "python"
    if not whole or _shebang_command(head) in _OTHER_LANGUAGES:
        return None
    return "python" if _parses_behind_shebang(head) else None


#: Shells whose scripts are read for the Python they start.
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox"})
_SHELL_SUFFIXES = frozenset({".sh", ".bash", ".zsh", ".ksh"})
_MAKE_SUFFIXES = frozenset({".mk", ".mak", ".make"})
#: YAML files whose strings are commands: CI pipelines, hooks, ML pipelines (DVC, MLflow).
_YAML_LAUNCHERS = frozenset(
    {".gitlab-ci.yml", ".gitlab-ci.yaml", ".pre-commit-config.yaml", ".pre-commit-config.yml"}
    | {".pre-commit-hooks.yaml", ".travis.yml", "azure-pipelines.yaml"}
    | {"azure-pipelines.yml", "bitbucket-pipelines.yml", ".drone.yml", "cloudbuild.yaml"}
    | {"taskfile.yml", "taskfile.yaml", "taskfile.dist.yml", "taskfile.dist.yaml"}
    | {"dvc.yaml", "mlproject", "action.yml", "action.yaml"}
)
#: Compose files (``docker-compose.yml``, ``compose.yaml``, ``docker-compose.prod.yml``): the
#: ``command``/``entrypoint`` of each service runs in its container.
_COMPOSE = re.compile(r"(?:docker-)?compose(?:[._-][^/]*)?\.ya?ml")
#: Dockerfiles by name, as projects name them for ``docker build -f``: the word first
#: (``Dockerfile``, ``Dockerfile.dev``, ``Dockerfile-dev``, ``Dockerfile_gpu``) or last
#: (``gpu.Dockerfile``, ``gpu-Dockerfile``), lower-cased.
_DOCKERFILE = re.compile(r"(?:docker|container)file(?:[._-].*)?|.+[._-](?:docker|container)file")
_YAML_FOLDERS = (".github/workflows/", ".circleci/", ".gitlab/", ".buildkite/", ".tekton/")


def command_host(rel: str, head: str = "") -> LauncherKind | None:
    """Whether ``rel`` is a command host, and how its commands are read
    (:func:`mltrust.evidence._commands.commands`): the one decision of which files hold
    commands that a shell, ``make``, tox, hatch, nox or a CI runner executes. By name:
    Makefiles (``*.mk``, ``*.mak``, ``*.make``), ``tox.ini``, ``tox.toml``, ``hatch.toml``
    and ``pyproject.toml`` (``[tool.tox]``, ``[tool.hatch]``), ``noxfile.py``, CI and
    pipeline YAML (any ``.yml``/``.yaml`` below ``.github/workflows``, ``.circleci``,
    ``.gitlab``, ``.buildkite``, ``.tekton``, the named files of :data:`_YAML_LAUNCHERS`
    and Compose files, :data:`_COMPOSE`), Jenkinsfiles, Dockerfiles and Containerfiles
    (:data:`_DOCKERFILE`: ``Dockerfile``, ``Dockerfile.dev``, ``Dockerfile-dev``,
    ``Dockerfile_gpu``, ``gpu.Dockerfile``...), ``package.json``, ``devcontainer.json``
    (also ``.devcontainer.json`` and a Feature's ``devcontainer-feature.json``; their
    lifecycle commands), ``Procfile``,
    ``justfile``, shell scripts by suffix; or, for a file whose start ``head`` is given, by
    a shebang that runs a shell. None for any other file."""
    low = rel.lower()
    name = low.rsplit("/", 1)[-1]
    suffix = PurePosixPath(name).suffix
    if name in ("makefile", "gnumakefile") or suffix in _MAKE_SUFFIXES:
        return "make"
    if name == "tox.ini":
        return "ini"
    if name in ("tox.toml", "pyproject.toml", "hatch.toml"):
        return "toml"
    if name == "noxfile.py":
        return "python"
    if name in _YAML_LAUNCHERS or name.endswith(".gitlab-ci.yml") or _COMPOSE.fullmatch(name):
        return "yaml"
    if suffix in (".yml", ".yaml") and (
        low.startswith(_YAML_FOLDERS) or any(f"/{f}" in low for f in _YAML_FOLDERS)
    ):
        return "yaml"
    if rel.rsplit("/", 1)[-1] == "Jenkinsfile" or name.startswith("jenkinsfile."):
        return "jenkins"
    if _DOCKERFILE.fullmatch(name):
        return "dockerfile"
    if name in ("package.json", "devcontainer.json", ".devcontainer.json"):
        return "json"
    if name == "devcontainer-feature.json":  # a local Feature's own lifecycle commands
        return "json"
    if name in ("procfile", "justfile", ".justfile"):
        return "lines"
    if suffix in _SHELL_SUFFIXES or (head.startswith("#!") and _shebang_command(head) in _SHELLS):
        return "shell"
    return None


#: The name :mod:`mltrust.evidence._code` reads command hosts by (files that may start Python).
launcher_kind = command_host


def _shebang_command(text: str) -> str:
    """The command a shebang names (for ``env``, the command it runs), else ``""``."""
    line = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    words = line[2:].split() if line.startswith("#!") else []
    if not words:
        return ""
    command = os.path.basename(words[0])
    if command == "env":
        found = _env_command(line[2:].lstrip()[len(words[0]) :].strip())
        command = os.path.basename(found[0]) if found else ""
    return command


def parses_as_python(code: str) -> bool:
    """Whether Python's parser accepts ``code`` (warnings silenced; any parser failure,
    including too deep nesting or exhausted memory, is False)."""
    import ast
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _parses_behind_shebang(text: str) -> bool:
    text = text.lstrip("\ufeff")
    if not text.startswith("#!"):
        return False
    body = text.split("\n", 1)[1] if "\n" in text else ""
    return bool(body.strip()) and parses_as_python(body)


def compiled_kind(rel: str) -> Literal["bytecode", "extension"] | None:
    """``bytecode`` for ``.pyc``/``.pyo``, ``extension`` for a native extension module
    (``.so``, ``.pyd``, including tagged names such as ``x.cpython-312-x86_64-linux-gnu.so``);
    else None. Shared libraries loaded only through ``ctypes`` (``.dll``, ``.dylib``,
    ``libx.so.1``) are not importable as modules and are not counted."""
    suffix = PurePosixPath(rel).suffix.lower()
    if suffix in _BYTECODE_SUFFIXES:
        return "bytecode"
    if suffix in _EXTENSION_SUFFIXES:
        return "extension"
    return None


def pyc_unchecked(path: str | os.PathLike[str]) -> bool:
    """Whether a ``.pyc`` file's header says it is hash-based and unchecked (PEP 552 flags
    ``0b01``): Python imports it without looking at the source beside it. Unreadable or
    short files count as unchecked (fail closed)."""
    from mltrust.errors import Error
    from mltrust.files import open_regular

    try:
        fd = open_regular(path)
    except Error:
        return True
    try:
        head = os.read(fd, 8)
    except OSError:
        return True
    finally:
        os.close(fd)
    if len(head) < 8:
        return True
    flags = int.from_bytes(head[4:8], "little")
    return flags & 0b11 == 0b01 or flags > 0b11


def python_source_text(data: bytes) -> str:
    """The text CPython compiles from a source file's bytes: a UTF-8 BOM or a PEP 263 coding
    cookie in the first two lines is honoured (:func:`tokenize.detect_encoding`, the rule
    CPython's tokenizer applies), UTF-8 otherwise. Raises ``ValueError`` (with the reason) for
    a cookie naming a codec outside :data:`SAFE_CODECS`, an unknown codec, or bytes the codec
    cannot decode: such a file is not analysed. A UTF-16 BOM is read as UTF-16 text (CPython
    refuses such a file, so reading it costs nothing)."""
    import codecs
    import io
    import tokenize

    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise ValueError(f"source encoding: {exc.msg if hasattr(exc, 'msg') else exc}") from None
    name = codecs.lookup(encoding).name
    if name not in SAFE_CODECS:
        raise ValueError(
            f"declares the source encoding {encoding!r} (PEP 263 coding cookie): Python decodes "
            "it with that codec, which can turn what reads as a comment into code; only UTF-8, "
            "ASCII and Latin-1-family encodings are analysed"
        )
    if name == "utf-8-sig":
        data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        name = "utf-8"
    try:
        return data.decode(name)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid {encoding}: {exc.reason} at byte {exc.start}") from None


def named_for_analysis(rel: str) -> bool:
    """Whether the name alone makes ``rel`` a code, notebook, compiled-code or dependency
    file."""
    from mltrust.evidence._depsources import dependency_kind

    return (
        code_kind_by_name(rel) is not None
        or compiled_kind(rel) is not None
        or dependency_kind(rel) is not None
    )


def python_shebang(text: str) -> bool:
    """Whether the first line of ``text`` is a shebang that runs Python.

    The interpreter word, or for ``env`` the first word after its options (``-i``, ``-u
    NAME``, clusters such as ``-iS``) and ``NAME=value`` assignments, must name Python
    (:data:`_INTERPRETER`) or be a runner (``uv run``, ``poetry run python``). ``env -S STRING``
    and ``--split-string=STRING`` split STRING as GNU env does (:func:`_env_split`).
    """
    line = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    if not line.startswith("#!"):
        return False
    words = line[2:].split()
    if not words:
        return False
    command = os.path.basename(words[0])
    rest = words[1:]
    if command == "env":
        # the kernel passes everything after the interpreter path as one argument
        argument = line[2:].lstrip()[len(words[0]) :].strip()
        words = _env_command(argument)
        if not words:
            return False
        command, rest = os.path.basename(words[0]), words[1:]
    return _runs_python(command, rest)


def python_interpreter(word: str) -> bool:
    """Whether a command word names a Python interpreter (``python3.12``, ``.venv/bin/python``,
    ``pypy3``, ``ipython``...)."""
    return _INTERPRETER.fullmatch(os.path.basename(word)) is not None


def _runs_python(command: str, rest: list[str]) -> bool:
    if _INTERPRETER.fullmatch(command):
        return True
    if command in _RUNNERS:
        if command == "uv" and "run" in rest:
            return True
        return any(_INTERPRETER.fullmatch(os.path.basename(w)) for w in rest)
    return False


def _env_command(argument: str) -> list[str]:
    """The command words ``env`` runs for the shebang argument ``argument`` (options and
    ``NAME=value`` assignments dropped). Without ``-S`` the argument is split on blanks
    (Linux would pass it whole; splitting errs on the side of seeing Python)."""
    words = argument.split()
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            return words[i + 1 :]
        if word.startswith("--split-string="):
            return _env_command(
                " ".join(_env_split(" ".join([word[len("--split-string=") :], *words[i + 1 :]])))
            )
        if word == "--split-string":
            return _env_command(" ".join(_env_split(" ".join(words[i + 1 :]))))
        if word in _ENV_ARG_OPTIONS:
            i += 2
            continue
        if word.startswith("--"):
            i += 1
            continue
        if word.startswith("-") and len(word) > 1:
            cluster = word[1:]
            for j, char in enumerate(cluster):
                if char == "S":
                    tail = " ".join([cluster[j + 1 :], *words[i + 1 :]]).strip()
                    return _env_command(" ".join(_quote_words(_env_split(tail))))
                if char in _ENV_SHORT_ARG:
                    if j == len(cluster) - 1:
                        i += 1  # its value is the next word
                    break
            i += 1
            continue
        if "=" in word and not word.startswith("="):
            i += 1
            continue
        return words[i:]
    return []


def _quote_words(words: list[str]) -> list[str]:
    """Words split by :func:`_env_split`, with blanks inside one word made ``_`` so the
    result splits on blanks again into the same words (only the command word matters)."""
    return [w.replace(" ", "_").replace("\t", "_") or "''" for w in words]


def _env_split(text: str) -> list[str]:
    """Split an ``env -S`` string as GNU coreutils does: blanks separate words; ``'...'`` is
    literal (``\\'`` and ``\\\\`` excepted); ``"..."`` keeps blanks and honours escapes;
    ``\\_`` is a separator outside quotes and a space inside double quotes; ``\\c`` ends the
    string; ``\\t``, ``\\n``... are the usual characters; ``#`` at a word's start begins a
    comment. ``${VAR}`` is kept as written (its value is unknown)."""
    escapes = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v"}
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quote = ""
    i = 0
    while i < len(text):
        char = text[i]
        if quote == "'":
            if char == "\\" and text[i + 1 : i + 2] in ("'", "\\"):
                current.append(text[i + 1])
                i += 2
                continue
            if char == "'":
                quote = ""
            else:
                current.append(char)
            i += 1
            continue
        if char == "\\":
            nxt = text[i + 1 : i + 2]
            i += 2
            if nxt == "c":
                break
            if nxt == "_":
                if quote:
                    current.append(" ")
                elif in_word:
                    words.append("".join(current))
                    current, in_word = [], False
                continue
            current.append(escapes.get(nxt, nxt))
            in_word = True
            continue
        if quote == '"':
            if char == '"':
                quote = ""
            else:
                current.append(char)
            i += 1
            continue
        if char in "'\"":
            quote = char
            in_word = True
        elif char in " \t\n\r\f\v":
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        elif char == "#" and not in_word:
            break
        else:
            current.append(char)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(current))
    return words


def first_line(path: str | os.PathLike[str]) -> str:
    """The start of a file (its first :data:`HEAD_BYTES` bytes, decoded leniently), read
    safely; ``""`` when it cannot be read."""
    from mltrust.errors import Error
    from mltrust.files import open_regular

    try:
        fd = open_regular(path)
    except Error:  # unreadable: no first line (the caller reports it)
        return ""
    try:
        data = os.read(fd, HEAD_BYTES)
    except OSError:
        return ""
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace")
