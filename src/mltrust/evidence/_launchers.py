"""What a project's build, CI and shell files run with Python (text in, invocations out; no I/O).

A file the project runs with Python is Python whatever its name, and Python given inline
(``python -c CODE``, a heredoc fed to ``python -``, a GitHub step with ``shell: python``) is
Python source too. :func:`launches` reads one launcher file (its kind from
:func:`mltrust.evidence._classify.command_host`) and returns what it starts with Python,
from the commands :func:`mltrust.evidence._commands.commands` reads (the one reader of
command hosts, shared with the dependency check's install commands):

- ``file``: a script operand (``python tools/build``, ``python - < x``, ``uv run --script x``,
  ``poetry run python x``, ``CMD ["python", "x"]``), to be analysed as Python;
- ``module``: a ``-m`` module (analysed when it is a module of the project, else an installed
  one, like an import);
- ``code``: inline source, with the launcher's line of each of its lines;
- ``unknown``: Python started on something that cannot be read from the file (a ``$VAR``,
  a glob, a substitution, code piped in, text that cannot be split into words), with why:
  the caller fails it closed;
- ``shell``/``make``/``dockerfile``/``yaml``/``lines``: a file run as a shell script
  (``bash FILE``, ``. FILE``), read as a makefile (``make -f FILE``, ``include FILE``),
  built as a Dockerfile (``docker build -f FILE``) or included as CI YAML (GitLab's
  ``include:``) or a justfile (``import``, ``mod``, ``just -f FILE``), whatever its name:
  the caller reads it as a command host of that kind.

Python counts only at a command position (the first word of a command, after ``;``, ``&&``,
``|``, ``then``..., ``exec``/``env``/``sudo``/``time`` and ``NAME=value`` prefixes), so
``echo python x`` starts nothing. Interpreters are the words
:func:`~mltrust.evidence._classify.python_interpreter` accepts, tox's ``{envpython}`` and
variables named for Python (``$(PYTHON)``, ``${PYTHON3}``).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

from mltrust.evidence._classify import parses_as_python, python_interpreter
from mltrust.evidence._commands import (
    NOT_RUNNING,
    HostKind,
    Stdin,
    argv,
    commands,
    host_file,
    make_include_dirs,
)

__all__ = ["Launch", "launches", "resolve_target"]


@dataclass(frozen=True, slots=True)
class Launch:
    """One start of Python by a launcher file."""

    line: int
    kind: Literal[
        "file", "module", "code", "unknown", "shell", "make", "dockerfile", "yaml", "lines"
    ]
    #: The path, the module, the code, or why it cannot be known; for ``shell``/``make``/
    #: ``dockerfile``/``yaml``/``lines`` the path of a file the launcher runs as a shell
    #: script, reads as a makefile, builds as a Dockerfile or includes as CI YAML or a
    #: justfile (:func:`mltrust.evidence._commands.ran_file`): a command host whatever its
    #: name.
    value: str
    #: For ``code``: the launcher's line of each line of the code.
    lines: tuple[int, ...] = ()
    #: For ``make``: the include folders of the make run (``make -I DIR``:
    #: :func:`mltrust.evidence._commands.make_include_dirs`).
    dirs: tuple[str, ...] = ()


#: CPython options that take a value (attached or as the next word).
_PY_VALUE_OPTIONS = frozenset("cmWX")
_PY_EXIT_OPTIONS = frozenset({"-h", "-?", "--help", "-V", "--version", "--help-env"})
#: ``uv run`` options that take a value.
_UV_VALUE_OPTIONS = frozenset(
    {"--with", "--with-editable", "--with-requirements", "--python", "-p", "--project"}
    | {"--directory", "--package", "--extra", "--group", "--only-group", "--env-file"}
    | {"--index", "--default-index", "--index-url", "-i", "--extra-index-url", "--find-links"}
    | {"-f", "--config-file", "--cache-dir", "--color", "--resolution", "--prerelease"}
    | {"--exclude-newer", "--link-mode", "--no-group", "--upgrade-package", "-P"}
)
_VARIABLE = re.compile(r"\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]|\$([A-Za-z_][A-Za-z0-9_]*)")
#: What makes an operand or code depend on the shell (a value not in the file).
_DYNAMIC = re.compile(r"[$`]|\{[^}]*\}|[*?\[]")


def _is_python(word: str) -> bool:
    if word in ("{envpython}", "{envbindir}/python"):
        return True
    if python_interpreter(word):
        # commands are case-sensitive: "Python used to run..." in a description is prose
        return word.rsplit("/", 1)[-1][:1].islower()
    m = _VARIABLE.fullmatch(word)
    name = (m.group(1) or m.group(2)) if m else ""
    return "PYTHON" in name.upper() or name.upper() in ("PY", "PY3")


def launches(
    kind: HostKind, text: str, include: Callable[[str], str | None] | None = None
) -> list[Launch]:
    """What the command host ``text`` (of the given kind) starts with Python: its commands
    (:func:`mltrust.evidence._commands.commands`, the one reader of command hosts; a
    makefile's ``include`` read with ``include``) read for an interpreter at their command
    position, and the files it includes by a directive."""
    out: list[Launch] = []
    for command in commands(kind, text, include):
        if command.reads is not None:
            out.append(Launch(command.line, *command.reads))
            continue
        if command.unread:  # a file the host wrote with text it computes (fail closed)
            out.append(Launch(command.line, "unknown", command.unread))
            continue
        if command.unreadable:
            if any(_is_python(w) for w in re.split(r"[\s;&|()'\"`]+", command.text)):
                out.append(Launch(command.line, "unknown", command.unreadable))
            continue
        out.extend(_command(list(command.words), command.line, command.stdin, command.piped))
    return out


def _command(words: list[str], line: int, stdin: Stdin | None, piped: bool) -> list[Launch]:
    host = host_file(words)
    if host is not None:
        return [Launch(line, host[0], host[1], dirs=make_include_dirs(words))]
    words = argv(words)
    if not words:
        return []
    head = words[0].lstrip("@-+") if words[0][:1] in "@-+" else words[0]
    rest = words[1:]
    if _is_python(head):
        return _python_argv(rest, line, stdin, piped)
    if head == "uv" and rest[:1] == ["run"]:
        return _uv_run(rest[1:], line, stdin, piped)
    if head in NOT_RUNNING:
        return []
    # a command the reader does not know (``ssh host python3 -c ...``, a wrapper script) that
    # names an interpreter in a later word: what that interpreter would run is read, but only
    # inline code, a heredoc or an unreadable program (fail closed); a file operand there is
    # as likely an argument (``apt-get install python3 x``)
    for k, word in enumerate(rest):
        if python_interpreter(word) and word.rsplit("/", 1)[-1][:1].islower():
            found = _python_argv(rest[k + 1 :], line, stdin, piped)
            return [x for x in found if x.kind in ("code", "unknown")]
    if "$" in head or "`" in head:
        return _maybe_python(rest, line, stdin)
    return []


def _maybe_python(rest: list[str], line: int, stdin: Stdin | None) -> list[Launch]:
    """A program the shell computes (``$P -c CODE`` after ``P=python3``, ``$(echo python3)
    -c CODE``, ``$P - <<EOF``) may be Python: its ``-c`` text, or the here-document it
    reads, is read as Python code when it parses as Python (``$(CC) -c main.c`` parses too,
    and holds nothing to find; a shell's script does not parse and is left alone)."""
    for k, word in enumerate(rest[:-1]):
        if word == "-c":
            found = _code(rest[k + 1], line, (), dynamic=True)
            return [found] if parses_as_python(rest[k + 1]) and found.kind == "code" else []
    if stdin is not None and ("<<" in rest or rest in ([], ["-"])) and parses_as_python(stdin.text):
        found = _code(stdin.text, line, stdin.lines, dynamic=stdin.expanded)
        return [found] if found.kind == "code" else []
    return []


def _uv_run(rest: list[str], line: int, stdin: Stdin | None, piped: bool) -> list[Launch]:
    i = 0
    script = False
    while i < len(rest) and rest[i].startswith("-") and rest[i] != "-":
        option = rest[i]
        if option in ("--script", "-s"):
            script = True
        elif option in ("--module", "-m") and i + 1 < len(rest):
            return [_operand("module", rest[i + 1], line)]
        if option == "--":
            i += 1
            break
        i += 2 if option in _UV_VALUE_OPTIONS else 1
    if i >= len(rest):
        return []
    target = rest[i]
    if _is_python(target):
        return _python_argv(rest[i + 1 :], line, stdin, piped)
    if script or target.lower().endswith((".py", ".pyw")):
        return [_operand("file", target, line)]
    return []  # a tool of the environment (pytest, ruff...)


#: The script itself (``exec python3 "$0"`` in a shell polyglot): resolved to the launcher.
_SELF = frozenset({"$0", "${0}"})


def _operand(kind: Literal["file", "module"], value: str, line: int) -> Launch:
    if kind == "file" and value in _SELF:
        return Launch(line, kind, value)
    if _DYNAMIC.search(value) or value.startswith("~"):
        return Launch(line, "unknown", f"runs {value!r} with Python: a value of the shell")
    return Launch(line, kind, value)


def _code(text: str, line: int, lines: tuple[int, ...], dynamic: bool) -> Launch:
    if dynamic and re.search(r"[$`]", text):
        return Launch(line, "unknown", "inline Python that the shell expands ($, `)")
    return Launch(line, "code", text, lines or (line,) * (text.count("\n") + 1))


def _python_argv(argv: list[str], line: int, stdin: Stdin | None, piped: bool) -> list[Launch]:
    """What ``python ARGV`` runs, read as CPython reads its options."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in _PY_EXIT_OPTIONS:
            return []
        if word == "--":
            i += 1
            break
        if word == "-" or not word.startswith("-"):
            break
        if word.startswith("--"):
            i += 2 if word == "--check-hash-based-pycs" else 1
            continue
        for j, char in enumerate(word[1:], 1):
            if char in _PY_VALUE_OPTIONS:
                value = word[j + 1 :]
                if not value:
                    i += 1
                    value = argv[i] if i < len(argv) else ""
                if char == "c":
                    return [_code(value, line, (), dynamic=True)]
                if char == "m":
                    return [_operand("module", value, line)] if value else []
                break
        i += 1
    operand = argv[i] if i < len(argv) else "-"
    if operand in ("<", ">", ">>", "<<", "2", ">&"):
        operand = "-"
    if operand != "-":
        return [_operand("file", operand, line)]
    # Python reads its program from standard input: a redirect, a heredoc or a pipe
    tail = argv[i:]
    for k, word in enumerate(tail):
        if word == "<" and k + 1 < len(tail):
            return [_operand("file", tail[k + 1], line)]
    if stdin is not None and ("<<" in tail or tail == ["-"] or not tail):
        return [_code(stdin.text, line, stdin.lines, dynamic=stdin.expanded)]
    if piped:
        return [Launch(line, "unknown", "Python reads its program from a pipe")]
    return []


def resolve_target(
    origin: str, kind: Literal["file", "module"], value: str, tree: Collection[str]
) -> str | None:
    """The file of the project (``tree``: relative paths) that a launch or a call in
    ``origin`` (a relative path) names, else None.

    A relative path is tried from ``origin``'s folder, then from the project root (where CI
    and tools usually run); an absolute one (``/app/tools/build`` in a Dockerfile, after
    ``COPY . /app``) by its trailing parts, longest first. A folder is its ``__main__.py``.
    A module ``a.b`` is ``a/b.py`` or
    ``a/b/__main__.py`` from the root, ``origin``'s folder or ``src/``."""
    folder = posixpath.dirname(origin)
    if value in _SELF:
        return origin
    if kind == "module":
        parts = value.split(".")
        if not all(p.isidentifier() for p in parts):
            return None
        stem = "/".join(parts)
        for base in dict.fromkeys(("", folder, "src")):
            for candidate in (f"{stem}.py", f"{stem}/__main__.py", f"{stem}.pyw"):
                rel = posixpath.join(base, candidate) if base else candidate
                if rel in tree:
                    return rel
        return None
    path = value.replace("\\", "/")

    def found(rel: str) -> str | None:
        # Python runs a folder given as a script through its __main__.py
        return next((r for r in (rel, f"{rel}/__main__.py") if r in tree), None)

    if path.startswith("/"):
        parts = [p for p in path.split("/") if p and p != "."]
        for k in range(len(parts)):
            if ".." not in parts[k:] and (hit := found("/".join(parts[k:]))):
                return hit
        return None
    for base in dict.fromkeys((folder, "")):
        rel = posixpath.normpath(posixpath.join(base, path) if base else path)
        if not rel.startswith("../") and rel != ".." and (hit := found(rel)):
            return hit
    return None
