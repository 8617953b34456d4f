"""What a project's build, CI and shell files run with Python (text in, invocations out; no I/O).

A file the project runs with Python is Python whatever its name, and Python given inline
(``python -c CODE``, a heredoc fed to ``python -``, a GitHub step with ``shell: python``) is
Python source too. :func:`launches` reads one launcher file (its kind from
:func:`mltrust.evidence._classify.launcher_kind`) and returns what it starts with Python:

- ``file``: a script operand (``python tools/build``, ``python - < x``, ``uv run --script x``,
  ``poetry run python x``, ``CMD ["python", "x"]``), to be analysed as Python;
- ``module``: a ``-m`` module (analysed when it is a module of the project, else an installed
  one, like an import);
- ``code``: inline source, with the launcher's line of each of its lines;
- ``unknown``: Python started on something that cannot be read from the file (a ``$VAR``,
  a glob, a substitution, code piped in, text that cannot be split into words), with why:
  the caller fails it closed.

Python counts only at a command position (the first word of a command, after ``;``, ``&&``,
``|``, ``then``..., ``exec``/``env``/``sudo``/``time`` and ``NAME=value`` prefixes), so
``echo python x`` starts nothing. Interpreters are the words
:func:`~mltrust.evidence._classify.python_interpreter` accepts, tox's ``{envpython}`` and
variables named for Python (``$(PYTHON)``, ``${PYTHON3}``).
"""

from __future__ import annotations

import ast
import json
import posixpath
import re
import shlex
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from mltrust.evidence._classify import LauncherKind, python_interpreter

__all__ = ["Launch", "launches", "resolve_target"]


@dataclass(frozen=True, slots=True)
class Launch:
    """One start of Python by a launcher file."""

    line: int
    kind: Literal["file", "module", "code", "unknown"]
    #: The path, the module, the code, or why it cannot be known.
    value: str
    #: For ``code``: the launcher's line of each line of the code.
    lines: tuple[int, ...] = ()


#: Words that separate commands (shlex punctuation tokens and shell keywords).
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", "|&", ";;", "{", "}", "!"})
_KEYWORDS = frozenset({"then", "do", "else", "elif", "if", "while", "until", "in"})
#: Prefixes that run the command after them (their own options skipped).
_PREFIXES = frozenset({"exec", "time", "nohup", "command", "builtin", "nice", "stdbuf"})
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
#: Tool runners: ``TOOL run [options] python ...`` (``conda run -n env python``).
_TOOL_RUNNERS = frozenset({"poetry", "pipenv", "pdm", "hatch", "conda", "mamba", "rye", "pixi"})
_RUNNER_VALUE_OPTIONS = frozenset({"-n", "--name", "-p", "--prefix", "--cwd", "-e", "--env"})
_VARIABLE = re.compile(r"\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]|\$([A-Za-z_][A-Za-z0-9_]*)")
_HEREDOC = re.compile(r"<<(-?)[ \t]*(\\?)(['\"]?)([A-Za-z0-9_.-]+)\3")
#: What makes an operand or code depend on the shell (a value not in the file).
_DYNAMIC = re.compile(r"[$`]|\{[^}]*\}|[*?\[]")
_MAX_JOIN = 200
#: Characters of one text re-split while looking for the end of a quote (bounds the work a
#: file of unbalanced quotes costs; past it, such lines are not read: unknown if Python).
_MAX_JOIN_BYTES = 4 * 1024 * 1024
#: YAML keys whose values are prose, not commands.
_PROSE_KEYS = ("description", "name", "title", "summary", "help", "about", "comment")


def _is_python(word: str) -> bool:
    if word in ("{envpython}", "{envbindir}/python"):
        return True
    if python_interpreter(word):
        # commands are case-sensitive: "Python used to run..." in a description is prose
        return word.rsplit("/", 1)[-1][:1].islower()
    m = _VARIABLE.fullmatch(word)
    name = (m.group(1) or m.group(2)) if m else ""
    return "PYTHON" in name.upper() or name.upper() in ("PY", "PY3")


def launches(kind: LauncherKind, text: str) -> list[Launch]:
    """What the launcher ``text`` (of the given kind) starts with Python."""
    if kind == "shell":
        return _shell(text, 1)
    if kind == "make":
        return _shell(_make_text(text), 1, script=".ONESHELL" in text)
    if kind == "ini":
        return _shell(_ini_text(text), 1, script=False)
    if kind == "lines":
        return _shell(_lines_text(text), 1, script=False)
    if kind == "dockerfile":
        return _dockerfile(text)
    if kind == "json":
        return _package_json(text)
    if kind == "yaml":
        return _yaml(text)
    if kind == "python":
        return _python(text)
    raise ValueError(f"unknown launcher kind {kind!r}")


# -- shell ------------------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _shell(text: str, first: int, *, script: bool = True) -> list[Launch]:
    """Invocations of Python in shell text whose line ``i`` (0-based) is launcher line
    ``first + i``. ``script``: the text is one shell script (a quote may span lines, heredocs
    are read); else each line is a command of its own (a Makefile without ``.ONESHELL``, tox,
    a justfile), so no line hides the next one."""
    out: list[Launch] = []
    lines = text.split("\n")
    budget = _MAX_JOIN_BYTES  # text re-split while looking for a quote's end, per text
    i = 0
    while i < len(lines):
        start = i
        logical = lines[i]
        while logical.endswith("\\") and i + 1 < len(lines):
            i += 1
            logical = logical[:-1] + " " + lines[i]
        heredocs: list[tuple[str, int, bool]] = []
        for m in _HEREDOC.finditer(logical) if script else ():
            if logical[max(0, m.start() - 1) : m.start()] == "<":
                continue  # <<< here-string
            delim, quoted = m.group(4), bool(m.group(2) or m.group(3))
            body_start = i + 1
            j = body_start
            while j < len(lines) and lines[j].strip() != delim:
                j += 1
            heredocs.append(("\n".join(lines[body_start:j]), body_start, quoted))
            i = j
        words: list[str] | None = None
        joined = logical
        end = i
        for _ in range(_MAX_JOIN):
            try:
                words = _words(joined)
                break
            except ValueError:
                budget -= len(joined)
                if end + 1 >= len(lines) or heredocs or budget <= 0 or not script:
                    break
                end += 1
                joined += "\n" + lines[end]
        line = first + start
        if words is None:
            if any(_is_python(w) for w in re.split(r"[\s;&|()]+", logical)):
                out.append(Launch(line, "unknown", "cannot be split into shell words"))
            i += 1
            continue
        i = max(i, end) + 1
        out.extend(_commands(words, line, heredocs, first))
    return out


def _commands(
    words: list[str], line: int, heredocs: list[tuple[str, int, bool]], first: int
) -> list[Launch]:
    out: list[Launch] = []
    command: list[str] = []
    piped = False
    for word in [*words, ";"]:
        if word in _SEPARATORS or (not command and word in _KEYWORDS):
            if command:
                out.extend(_command(command, line, heredocs, first, piped))
            piped = word in ("|", "|&")
            command = []
            continue
        command.append(word)
    return out


def _strip_prefixes(words: list[str]) -> list[str]:
    """The command a simple command runs: leading ``NAME=value``, ``exec``, ``env -i X=1``,
    ``sudo -u u``, ``time`` and the like dropped."""
    i = 0
    while i < len(words):
        word = words[i]
        if (
            re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", word, re.DOTALL)
            or word.lstrip("@-+") in _PREFIXES
        ):
            i += 1
        elif word in ("env", "sudo", "timeout", "xvfb-run"):
            i += 1
            while i < len(words) and words[i].startswith("-"):
                takes = words[i] in ("-u", "--unset", "-C", "--chdir", "-g", "-s", "-k")
                i += 2 if takes else 1
            if word == "timeout" and i < len(words):
                i += 1  # the duration
        else:
            break
    return words[i:]


def _command(
    words: list[str], line: int, heredocs: list[tuple[str, int, bool]], first: int, piped: bool
) -> list[Launch]:
    words = _strip_prefixes(words)
    if not words:
        return []
    head = words[0].lstrip("@-+") if words[0][:1] in "@-+" else words[0]
    rest = words[1:]
    if _is_python(head):
        return _python_argv(rest, line, heredocs, first, piped)
    if head == "uv" and rest[:1] == ["run"]:
        return _uv_run(rest[1:], line, heredocs, first, piped)
    if head in _TOOL_RUNNERS and rest[:1] == ["run"]:
        i = 1
        while i < len(rest) and rest[i].startswith("-"):
            i += 2 if rest[i] in _RUNNER_VALUE_OPTIONS else 1
        if i < len(rest) and _is_python(rest[i]):
            return _python_argv(rest[i + 1 :], line, heredocs, first, piped)
    return []


def _uv_run(
    rest: list[str], line: int, heredocs: list[tuple[str, int, bool]], first: int, piped: bool
) -> list[Launch]:
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
        return _python_argv(rest[i + 1 :], line, heredocs, first, piped)
    if script or target.lower().endswith((".py", ".pyw")):
        return [_operand("file", target, line)]
    return []  # a tool of the environment (pytest, ruff...)


#: The script itself (``exec python3 "$0"`` in a shell polyglot): resolved to the launcher.
_SELF = frozenset({"$0", "${0}"})
#: Variables CI sets to the checkout folder: ``$GITHUB_WORKSPACE/tools/x`` is ``tools/x``.
_WORKSPACE = re.compile(
    r"(?:\$\{\{\s*github\.workspace\s*\}\}|\$\{?(?:GITHUB_WORKSPACE|CI_PROJECT_DIR)\}?)/"
)


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


def _python_argv(
    argv: list[str], line: int, heredocs: list[tuple[str, int, bool]], first: int, piped: bool
) -> list[Launch]:
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
    if operand in _SEPARATORS or operand in ("<", ">", ">>", "<<", "2", ">&"):
        operand = "-"
    if operand != "-":
        return [_operand("file", operand, line)]
    # Python reads its program from standard input: a redirect, a heredoc or a pipe
    tail = argv[i:]
    for k, word in enumerate(tail):
        if word == "<" and k + 1 < len(tail):
            return [_operand("file", tail[k + 1], line)]
    if "<<" in tail and heredocs:
        body, body_start, quoted = heredocs[0]
        lines = tuple(first + body_start + n for n in range(body.count("\n") + 1))
        return [_code(_dedent(body), line, lines, dynamic=not quoted)]
    if piped:
        return [Launch(line, "unknown", "Python reads its program from a pipe")]
    return []


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


# -- host formats -------------------------------------------------------------------------
def _make_text(text: str) -> str:
    """A Makefile's recipe lines (and ``$(shell ...)`` commands) as shell text, line for line:
    ``$$`` is ``$``, ``$(NAME)`` is written ``${NAME}`` so it stays one word."""
    out: list[str] = []
    recipe = False
    for raw in text.split("\n"):
        continued = recipe and bool(out) and out[-1].endswith("\\")
        if raw.startswith("\t") or continued:
            recipe = True
            body = raw.lstrip("\t").lstrip("@-+ ")
        else:
            recipe = False
            shells = re.findall(r"\$\(shell\s+([^)]*)\)", raw)
            body = " ; ".join(shells)
            if ":" in raw and ";" in raw and not raw.startswith((" ", "#")):
                body = (body + " ; " if body else "") + raw.split(";", 1)[1]  # target: ; cmd
        body = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", r"${\1}", body)
        out.append(body.replace("$$", "$"))
    return "\n".join(out)


def _ini_text(text: str) -> str:
    """tox.ini: every value line as a command (``commands =`` and its continuation lines),
    tox's ``-``/``!`` prefixes and ``{toxinidir}/`` dropped."""
    out = []
    for raw in text.split("\n"):
        body = raw.strip()
        if body.startswith(("[", "#", ";")):
            out.append("")
            continue
        body = re.sub(r"^[a-z_][a-z0-9_.-]*\s*=\s*", "", body)
        body = body.lstrip("-!").replace("{toxinidir}/", "").replace("{tox_root}/", "")
        out.append(body)
    return "\n".join(out)


def _lines_text(text: str) -> str:
    """Procfile and justfile: a ``name:`` prefix dropped from each line."""
    out = []
    for raw in text.split("\n"):
        body = raw.strip()
        body = re.sub(r"^[A-Za-z0-9_.-]+(\s+[A-Za-z0-9_.-]+)*\s*:(?!=)\s*", "", body)
        out.append(body.lstrip("@-"))
    return "\n".join(out)


def _dockerfile(text: str) -> list[Launch]:
    """A Dockerfile's ``RUN``/``CMD``/``ENTRYPOINT`` instructions, each read as a shell script
    of its own (exec form ``["python", "x"]`` read as words; heredoc bodies kept)."""
    lines = text.split("\n")
    out: list[Launch] = []
    i = 0
    while i < len(lines):
        m = re.match(r"\s*(RUN|CMD|ENTRYPOINT)\s+(.*)$", lines[i], re.IGNORECASE | re.DOTALL)
        if m is None:
            i += 1
            continue
        start = i
        body = m.group(2)
        while body.endswith("\\") and i + 1 < len(lines):
            i += 1
            body = body[:-1] + " " + lines[i]
        while m.group(1).upper() == "RUN" and body.startswith("--"):
            body = body.split(None, 1)[1] if " " in body else ""
        if body.lstrip().startswith("["):
            try:
                argv = json.loads(body)
            except ValueError:
                argv = None
            if isinstance(argv, list) and all(isinstance(a, str) for a in argv):
                body = shlex.join(argv)
        segment = [body] + [""] * (i - start)
        for m2 in _HEREDOC.finditer(body):
            j = i + 1
            while j < len(lines) and lines[j].strip() != m2.group(4):
                j += 1
            segment.extend(lines[i + 1 : j + 1])
            i = j
        out.extend(_shell("\n".join(segment), start + 1))
        i += 1
    return out


def _line_of(text: str, needle: str) -> int:
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def _package_json(text: str) -> list[Launch]:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return _shell(_lines_text(text), 1, script=False)
    scripts = doc.get("scripts") if isinstance(doc, dict) else None
    out: list[Launch] = []
    for value in scripts.values() if isinstance(scripts, dict) else []:
        if isinstance(value, str):
            out.extend(_shell(value, _line_of(text, json.dumps(value)[1:-1])))
    return out


def _yaml(text: str) -> list[Launch]:
    """Every string of a YAML launcher read as shell (a sequence of strings starting with an
    interpreter as argv; the ``run`` of a mapping whose ``shell`` is Python as code)."""
    import yaml

    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except (yaml.YAMLError, RecursionError, ValueError):
        return _shell(_lines_text(text), 1, script=False)
    out: list[Launch] = []
    seen: set[int] = set()  # an alias is the same node: walked once (no alias bombs)

    def scalar_line(node: yaml.Node) -> int:
        line = int(node.start_mark.line) + 1
        return line + 1 if getattr(node, "style", None) in ("|", ">") else line

    def walk(node: yaml.Node | None, depth: int) -> None:
        if node is None or depth > 100 or id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag == "tag:yaml.org,2002:str" and isinstance(node.value, str):
                out.extend(_shell(_WORKSPACE.sub("", node.value), scalar_line(node)))
        elif isinstance(node, yaml.SequenceNode):
            values = [n.value for n in node.value if isinstance(n, yaml.ScalarNode)]
            if values and len(values) == len(node.value) and _is_python(str(values[0])):
                out.extend(
                    _python_argv([str(v) for v in values[1:]], scalar_line(node), [], 1, False)
                )
                return
            for child in node.value:
                walk(child, depth + 1)
        elif isinstance(node, yaml.MappingNode):
            keys = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
            prose = {id(keys[k]) for k in _PROSE_KEYS if k in keys}
            shell, run = keys.get("shell"), keys.get("run")
            python_shell = (
                isinstance(shell, yaml.ScalarNode)
                and isinstance(run, yaml.ScalarNode)
                and _is_python(str(shell.value).split(" ", 1)[0] or "-")
            )
            for _key, value in node.value:
                if python_shell and value is run and isinstance(run, yaml.ScalarNode):
                    first = scalar_line(run)
                    code = str(run.value)
                    lines = tuple(first + n for n in range(code.count("\n") + 1))
                    out.append(_code(code, first, lines, dynamic=False))
                    if "${{" in code:
                        out[-1] = Launch(first, "unknown", "inline Python with ${{ }} expressions")
                    continue
                if id(value) not in prose:
                    walk(value, depth + 1)

    for document in documents:
        walk(document, 0)
    return out


def _python(text: str) -> list[Launch]:
    """A noxfile: calls whose arguments (or whose first argument, a list) are strings that start
    with an interpreter (``session.run("python", "tools/build")``)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    out: list[Launch] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        args: list[ast.expr] = list(node.args)
        if isinstance(args[0], (ast.List, ast.Tuple)):
            args = list(args[0].elts)
        if not args or not isinstance(args[0], ast.Constant) or not isinstance(args[0].value, str):
            continue
        if not _is_python(args[0].value):
            continue
        argv = []
        for arg in args[1:]:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                argv.append(arg.value)
            else:
                argv.append("${value}")  # not a constant: a value of the run
        out.extend(_python_argv(argv, node.lineno, [], 1, False))
    return out


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
