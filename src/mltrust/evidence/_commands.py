"""The commands a command host runs (text in, commands out; no I/O): the one reader of the
files whose text a shell, ``make``, tox, nox or a CI runner executes.

A *command host* is a file :func:`mltrust.evidence._classify.command_host` names (Makefiles,
``tox.ini``/``tox.toml``/``[tool.tox]``, ``noxfile.py``, CI and pipeline YAML, Jenkinsfiles,
shell scripts, Dockerfiles, ``package.json`` scripts, Procfiles, justfiles). :func:`commands`
turns its text into the simple commands a runner would start, each a :class:`Command`: the
host line it starts on, its words after shell-style splitting (quotes removed, ``\\``-newline
joined, comments dropped), and a here-document or ``shell: python`` body it reads on standard
input. Two readers consume this stream and keep only their own reading of the words: the
Python invocations the code analysis follows (:mod:`mltrust.evidence._launchers`) and the
installs the dependency check reads (:mod:`mltrust.evidence._depsources`). One reader, so no
command can be seen by one of them and hidden from the other.

What a runner would expand at run time stays visible in the words: a shell variable, a
Makefile variable the file does not assign (``$MAKE_NAME``), a CI expression
(``$CI_EXPRESSION``), a tox substitution (``$TOX_SUBSTITUTION``), a nox argument that is not a
constant (``$NOX_COMPUTED``); each consumer decides what a word with ``$`` means (fail closed).
Text that cannot be split into words (a quote left open) is a command with ``unreadable`` set
and its raw ``text``, never dropped. Commands inside commands are commands too: ``sh -c
SCRIPT``, ``eval``, ``$(...)`` and backquotes (also inside double quotes), and Makefile
``$(shell ...)``.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mltrust.evidence._classify import LauncherKind

__all__ = ["Command", "HostKind", "Stdin", "argv", "commands"]

#: How a command host is read (see :func:`mltrust.evidence._classify.command_host`).
HostKind = LauncherKind


@dataclass(frozen=True, slots=True)
class Stdin:
    """A program text a command reads on standard input (a here-document, GitHub's
    ``shell: python`` step)."""

    text: str
    #: The host line of each line of ``text``.
    lines: tuple[int, ...]
    #: The shell expands ``$``/backquotes in it (an unquoted here-document delimiter).
    expanded: bool


@dataclass(frozen=True, slots=True)
class Command:
    """One simple command a host runs."""

    line: int
    words: tuple[str, ...]
    #: Why the words could not be read (then ``words`` is empty and ``text`` holds the text).
    unreadable: str = ""
    text: str = ""
    stdin: Stdin | None = None
    #: Its standard input is the output of the command before it (``a | python``).
    piped: bool = False


#: Words that separate commands (shlex punctuation tokens, shell grouping, backquotes).
SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", "|&", ";;", "{", "}", "!", "`"})
#: Shell keywords that start the command after them.
_KEYWORDS = frozenset({"then", "do", "else", "elif", "if", "while", "until", "in", "!"})
#: Prefixes that run the command after them (their own options skipped): see :func:`argv`.
_PREFIXES = frozenset({"exec", "time", "nohup", "command", "builtin", "nice", "stdbuf"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox"})
_HEREDOC = re.compile(r"<<(-?)[ \t]*(\\?)(['\"]?)([A-Za-z0-9_.-]+)\3")
_MAX_JOIN = 200
#: Characters of one text re-scanned while looking for the end of a quote (bounds the work).
_MAX_JOIN_BYTES = 4 * 1024 * 1024
_MAX_DEPTH = 3
#: YAML keys whose values are prose, not commands.
PROSE_KEYS = frozenset({"description", "name", "title", "summary", "help", "about", "comment"})
#: CI expressions: GitHub ``${{ }}``, GitLab ``$[[ ]]``, Azure ``$(var)``.
_CI_EXPRESSION = re.compile(r"\$\{\{.*?\}\}|\$\[\[.*?\]\]|\$\(\s*[\w.-]+\s*\)", re.S)
#: Variables CI sets to the checkout folder: ``$GITHUB_WORKSPACE/tools/x`` is ``tools/x``.
_WORKSPACE = re.compile(
    r"(?:\$\{\{\s*github\.workspace\s*\}\}|\$\{?(?:GITHUB_WORKSPACE|CI_PROJECT_DIR)\}?)/"
)


def commands(kind: HostKind, text: str) -> list[Command]:
    """The commands the host ``text`` (of the given kind) runs, in file order."""
    if kind == "shell":
        return list(_shell(text, 1))
    if kind == "make":
        return list(_make(text))
    if kind == "ini":
        return list(tox_ini_commands(text))
    if kind == "toml":
        return list(_tox_toml_text(text))
    if kind == "lines":
        return list(_shell(_lines_text(text), 1, script=False))
    if kind == "jenkins":
        return list(_shell(_line_commands(text), 1, script=False))
    if kind == "dockerfile":
        return list(_dockerfile(text))
    if kind == "json":
        return list(_package_json(text))
    if kind == "yaml":
        return list(_yaml(text))
    if kind == "python":
        return list(_python(text))
    raise ValueError(f"unknown command host kind {kind!r}")


def argv(words: tuple[str, ...] | list[str]) -> list[str]:
    """The command a simple command runs: leading ``NAME=value``, ``exec``, ``env -i X=1``,
    ``sudo -u u``, ``timeout 5``, ``time`` and the like dropped."""
    words = list(words)
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


# -- shell ------------------------------------------------------------------------------------
def _scan(text: str) -> tuple[str, str]:
    """``text`` as the shell reads it before splitting: comments (``#`` starting a word,
    outside quotes) dropped, backslash-newline joined, unquoted backquotes set apart as
    words of their own. Also the state at the end: ``""``, ``"quote"`` (a quote is open) or
    ``"continued"`` (a backslash ends the text)."""
    out: list[str] = []
    quote = ""
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if quote == "'":
            out.append(char)
            if char == "'":
                quote = ""
        elif char == "\\":
            if i + 1 >= n:
                return "".join(out), "continued"
            if text[i + 1] == "\n":
                i += 2
                continue
            out.append(text[i : i + 2])
            i += 2
            continue
        elif quote == '"':
            out.append(char)
            if char == '"':
                quote = ""
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "#" and (i == 0 or text[i - 1] in " \t\n;&|()<>"):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif char == "`":
            out.append(" ` ")
        else:
            out.append(char)
        i += 1
    return "".join(out), "quote" if quote else ""


def _split(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def _shell(text: str, first: int, *, script: bool = True, depth: int = 0) -> Iterator[Command]:
    """The commands of shell text whose line ``i`` (0-based) is host line ``first + i``.
    ``script``: the text is one shell script (a quote may span lines, here-documents are
    read); else each line is a command of its own (a Makefile recipe line, a tox command)."""
    lines = text.split("\n")
    budget = _MAX_JOIN_BYTES
    i = 0
    while i < len(lines):
        start = i
        joined = lines[i]
        clean, state = _scan(joined)
        for _ in range(_MAX_JOIN):
            if not state or i + 1 >= len(lines) or budget <= 0:
                break
            if state == "quote" and not script:
                break
            budget -= len(joined)
            i += 1
            joined += "\n" + lines[i]
            clean, state = _scan(joined)
        line = first + start
        if state == "quote":
            if joined.strip():
                yield Command(line, (), "a quote that is never closed", joined)
            i += 1
            continue
        heredocs: list[Stdin] = []
        for m in _HEREDOC.finditer(clean) if script else ():
            if clean[max(0, m.start() - 1) : m.start()] == "<":
                continue  # <<< here-string
            delim, quoted = m.group(4), bool(m.group(2) or m.group(3))
            body_start = i + 1
            j = body_start
            strip = bool(m.group(1))
            while (
                j < len(lines) and (lines[j].lstrip("\t") if strip else lines[j]).strip() != delim
            ):
                j += 1
            body = "\n".join(lines[body_start:j])
            numbers = tuple(first + body_start + k for k in range(body.count("\n") + 1))
            heredocs.append(Stdin(textwrap.dedent(body), numbers, not quoted))
            i = j
        i += 1
        try:
            words = _split(clean)
        except ValueError as exc:
            yield Command(line, (), f"cannot be split into shell words ({exc})", joined)
            continue
        yield from _simple(words, line, heredocs, depth)


def _simple(words: list[str], line: int, heredocs: list[Stdin], depth: int) -> Iterator[Command]:
    """The simple commands of a split command line, and the commands inside them."""
    command: list[str] = []
    piped = False
    pending = list(heredocs)
    for word in [*words, ";"]:
        if word in SEPARATORS or (not command and word in _KEYWORDS):
            if command:
                stdin = None
                for _ in range(command.count("<<")):
                    taken = pending.pop(0) if pending else None
                    stdin = stdin or taken
                yield Command(line, tuple(command), stdin=stdin, piped=piped)
                yield from _inner(command, line, depth)
                if stdin is not None and depth < _MAX_DEPTH and _shell_reads_stdin(command):
                    first = stdin.lines[0] if stdin.lines else line
                    yield from _shell(stdin.text, first, depth=depth + 1)
            if command or word not in _KEYWORDS:
                piped = word in ("|", "|&")
            command = []
            continue
        command.append(word)


def _shell_reads_stdin(command: list[str]) -> bool:
    """Whether a here-document given to the command is read as shell commands: always but
    for Python (``python - <<EOF``, whose body is code): a shell runs it (``bash <<EOF``), and
    a body written to a file (``cat > x.sh <<EOF``) is usually run later (fail closed)."""
    from mltrust.evidence._classify import python_interpreter

    words = argv(command)[:4]
    return not any(python_interpreter(w) or "PYTHON" in w.upper() for w in words)


def _substitutions(word: str) -> list[str]:
    """The bodies of ``$(...)`` and backquoted command substitutions in one word."""
    out: list[str] = []
    i = 0
    while i < len(word):
        if word.startswith("$((", i):
            i += 3  # arithmetic
            continue
        if word.startswith("$(", i):
            level, j = 1, i + 2
            while j < len(word) and level:
                level += {"(": 1, ")": -1}.get(word[j], 0)
                j += 1
            out.append(word[i + 2 : j - 1] if not level else word[i + 2 :])
            i = j
            continue
        if word[i] == "`":
            j = word.find("`", i + 1)
            out.append(word[i + 1 : j] if j >= 0 else word[i + 1 :])
            i = j + 1 if j >= 0 else len(word)
            continue
        i += 1
    return out


def _inner(command: list[str], line: int, depth: int) -> Iterator[Command]:
    """Commands run by a command: ``SHELL -c SCRIPT`` (anywhere in it: ``docker run img sh -c
    ...``), ``eval WORDS``, and command substitutions in its words."""
    if depth >= _MAX_DEPTH:
        return
    for word in command:
        if "$(" in word or "`" in word:
            for body in _substitutions(word):
                yield from _shell(body, line, script=False, depth=depth + 1)
    for k, word in enumerate(command[:-2]):
        if word.rsplit("/", 1)[-1] in SHELLS:
            script = _shell_script(command[k + 1 :])
            if script is not None:
                yield from _relined(_shell(script, line, depth=depth + 1), line)
                return
    head = argv(command)
    if head[:1] == ["eval"] and len(head) > 1:
        yield from _shell(" ".join(head[1:]), line, script=False, depth=depth + 1)


def _shell_script(args: list[str]) -> str | None:
    """The script of a shell's arguments when they hold ``-c`` (alone or in a cluster such as
    ``-ec``) among its options: ``bash -o pipefail -c SCRIPT``, ``sh -e -x -c SCRIPT``,
    ``bash --noprofile --norc -eo pipefail -c SCRIPT`` (``-o``/``-O`` take a value)."""
    c = False
    j = 0
    while j < len(args) and args[j][:1] in "-+" and args[j] not in ("-", "--"):
        flags = args[j][1:]
        j += 1
        if args[j - 1].startswith("--"):
            continue
        c = c or "c" in flags
        j += sum(1 for f in flags if f in "oO")
    return args[j] if c and j < len(args) else None


def _relined(found: Iterator[Command], line: int) -> Iterator[Command]:
    """Commands of a script given as one word: all on the host line of that word."""
    for command in found:
        if command.line != line:
            stdin = command.stdin
            command = Command(
                line, command.words, command.unreadable, command.text, stdin, command.piped
            )
        yield command


# -- Makefiles ---------------------------------------------------------------------------------
_MAKE_ASSIGN = re.compile(
    r"^(?:export\s+|override\s+|private\s+)*(?P<name>[^\s:#=$]+)\s*(?P<op>[:?+!]*)=\s*(?P<value>.*)$",
    re.S,
)
_MAKE_DIRECTIVE = re.compile(
    r"^(?:-?include|sinclude|ifn?eq|ifn?def|else|endif|export|unexport|vpath|undefine|override"
    r"|define|endef)\b"
)
_MAKE_REF = re.compile(r"\$\(([^()$]*)\)|\$\{([^{}$]*)\}")


def _make_expand(text: str, variables: dict[str, str]) -> str:
    """``$(NAME)``/``${NAME}`` replaced by the Makefile's own assignments, innermost first;
    what is not known (a function, a variable set elsewhere) becomes a shell variable
    ``$MAKE_NAME``. ``$$`` is a literal ``$``."""
    text = text.replace("$$", "\0")
    for _ in range(10):

        def value(m: re.Match[str]) -> str:
            name = (m.group(1) or m.group(2) or "").strip()
            if name in variables:
                return variables[name].replace("$$", "\0")
            return "$MAKE_" + re.sub(r"\W", "_", name)

        expanded = _MAKE_REF.sub(value, text)
        if expanded == text:
            break
        text = expanded
    return text.replace("\0", "$")


def _make_shells(text: str) -> tuple[str, list[str]]:
    """``text`` with each ``$(shell ...)`` replaced by ``$MAKE_SHELL``, and their bodies."""
    bodies: list[str] = []
    out: list[str] = []
    i = 0
    while i < len(text):
        m = re.compile(r"\$([({])shell\s").match(text, i)
        if m is None:
            out.append(text[i])
            i += 1
            continue
        opener, closer = m.group(1), ")" if m.group(1) == "(" else "}"
        level, j = 1, m.end()
        while j < len(text) and level:
            level += 1 if text[j] == opener else -1 if text[j] == closer else 0
            j += 1
        bodies.append(text[m.end() : j - 1] if not level else text[m.end() :])
        out.append("$MAKE_SHELL")
        i = j
    return "".join(out), bodies


def _make(text: str) -> Iterator[Command]:
    """A Makefile's commands: recipe lines (each its own shell script, or with ``.ONESHELL``
    each recipe one script), the recipe after ``target: ;``, ``$(shell ...)`` anywhere,
    ``define`` bodies, and any other line that is not an assignment, rule, directive or
    comment (fail closed: ``make`` would reject it). Variables the Makefile assigns are
    expanded (:func:`_make_expand`); ``.RECIPEPREFIX`` is honoured."""
    raw = text.split("\n")
    prefix = "\t"
    variables: dict[str, str] = {}
    # (first line, text, what) per logical line
    logical: list[tuple[int, str, str]] = []
    in_rule = False
    define = False
    i = 0
    while i < len(raw):
        start = i
        recipe = not define and in_rule and raw[i].startswith(prefix)
        body = raw[i]
        while body.endswith("\\") and (len(body) - len(body.rstrip("\\"))) % 2 and i + 1 < len(raw):
            i += 1
            nxt = raw[i]
            if recipe:
                body = body + "\n" + (nxt[len(prefix) :] if nxt.startswith(prefix) else nxt)
            else:
                body = body[:-1].rstrip() + " " + nxt.lstrip()
        i += 1
        if define:
            if re.match(r"^\s*endef\b", body):
                define = False
            else:
                logical.append((start + 1, body, "recipe"))  # a canned recipe
            continue
        if recipe:
            logical.append((start + 1, body[len(prefix) :], "recipe"))
            continue
        stripped = re.sub(r"(?<!\\)#.*", "", body, flags=re.S).strip()
        if not stripped:
            continue
        m = re.match(r"^\.RECIPEPREFIX\s*:{0,2}=\s*(\S?)", stripped)
        if m:
            prefix = m.group(1) or "\t"
            continue
        if re.match(r"^(?:override\s+|export\s+)*define\b", stripped):
            define = True
            continue
        assign = _MAKE_ASSIGN.match(stripped)
        if assign is not None:
            name, op, value = assign.group("name", "op", "value")
            if not (op == "?" and name in variables):
                variables[name] = (variables.get(name, "") + " " if op == "+" else "") + value
            logical.append((start + 1, stripped, "assign"))
        elif _MAKE_DIRECTIVE.match(stripped):
            logical.append((start + 1, stripped, "directive"))
        elif re.search(r"(?<![:$]):(?![:=])|::(?!=)", stripped):
            in_rule = True
            logical.append((start + 1, stripped, "rule"))
        else:
            logical.append((start + 1, stripped, "other"))
    oneshell = any(t.startswith(".ONESHELL") for _, t, w in logical if w == "rule")
    script: list[str] = [""] * len(raw)
    for line, body, what in logical:
        body, shells = _make_shells(body)
        for inner in shells:
            yield from _shell(_make_expand(inner, variables), line, script=False)
        if what == "recipe":
            body = _make_expand(body, variables).lstrip(" \t")
            while body[:1] in ("@", "-", "+"):
                body = body[1:].lstrip(" \t")
            if oneshell:
                for k, part in enumerate(body.split("\n")):
                    if line - 1 + k < len(script):
                        script[line - 1 + k] = part
                continue
            yield from _shell(body, line, script=False)
        elif what == "rule":
            rule = re.match(r"^[^;]*?:[^;]*;(?P<recipe>.*)$", body, re.S)
            if rule is not None and rule.group("recipe").strip():
                yield from _shell(_make_expand(rule.group("recipe"), variables), line)
        elif what == "other":
            yield from _shell(_make_expand(body, variables), line, script=False)
    if oneshell:
        yield from _shell("\n".join(script), 1)


# -- tox ---------------------------------------------------------------------------------------
_TOX_FACTOR = re.compile(r"^!?[\w{}.-]+(?:\s*,\s*!?[\w{}.-]+)*\s*:\s+(?=\S)")
_TOX_REFERENCE = re.compile(r"\{\[(?P<section>[^\]]*)\](?P<key>[\w-]+)\}")
#: tox keys whose lines tox runs as commands.
TOX_COMMAND_KEYS = (
    "commands",
    "commands_pre",
    "commands_post",
    "install_command",
    "list_dependencies_command",
)


def _line_of(text: str, needle: str) -> int:
    index = text.find(needle) if needle else -1
    return text.count("\n", 0, index) + 1 if index >= 0 else 0


def tox_ini_values(
    text: str, keys: tuple[str, ...]
) -> Iterator[tuple[int, str, str]] | Iterator[Any]:
    """``(line, item, unresolved)`` for each line of the values of ``keys`` in every section of
    a ``tox.ini``: ``{[section]key}`` references replaced by what they name, factor
    conditions (``py312: ``) dropped; ``unresolved`` says why an item that is a reference
    names nothing the checker can read. Raises ``configparser.Error``."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(text)

    def expand(value: str, depth: int) -> Iterator[tuple[str, str, str]]:
        joined: list[list[str]] = []  # [text, its first physical line]
        for raw in value.splitlines():  # tox joins a line ending in a backslash with the next
            if joined and joined[-1][0].endswith("\\"):
                joined[-1][0] = joined[-1][0][:-1] + " " + raw.strip()
            else:
                joined.append([raw.strip(), raw.strip()])
        for item, first in joined:
            if not item or item.startswith("#"):
                continue
            item = _TOX_FACTOR.sub("", item, count=1)
            whole = _TOX_REFERENCE.fullmatch(item)
            if whole is not None:
                section, key = whole.group("section") or "testenv", whole.group("key")
                if depth < 5 and parser.has_option(section, key):
                    yield from expand(parser.get(section, key), depth + 1)
                else:
                    reason = "a tox substitution that names nothing the checker can read"
                    yield item, reason, first
                continue
            yield item, "", first

    for section in parser.sections():
        for key in keys:
            if parser.has_option(section, key):
                for item, unresolved, first in expand(parser.get(section, key), 0):
                    yield _line_of(text, first), item, unresolved


def _tox_words(item: str) -> str:
    item = item.lstrip("-!").lstrip()
    item = item.replace("{envpython}", "python").replace("{envbindir}/", "")
    item = re.sub(r"\{(?:toxinidir|tox_root)\}/", "", item)
    item = re.sub(r"\{(?:toxinidir|tox_root)\}", ".", item)
    item = re.sub(r"\{posargs[^}]*\}", "", item)
    return re.sub(r"\{[^{}]*\}", "$TOX_SUBSTITUTION", item)


def tox_ini_commands(text: str, offset: int = 0) -> Iterator[Command]:
    """The commands of a ``tox.ini`` (:data:`TOX_COMMAND_KEYS`, each line one command, split
    as tox splits it)."""
    import configparser

    try:
        values = list(tox_ini_values(text, TOX_COMMAND_KEYS))
    except configparser.Error as exc:
        yield Command(offset or 1, (), f"not a readable tox.ini ({exc})", text[:200])
        return
    for line, item, unresolved in values:
        line = line + offset if line else offset
        if unresolved:
            yield Command(line, (), unresolved, item)
            continue
        yield from _shell(_tox_words(item), line, script=False)


def tox_toml_tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The environments of a tox TOML table: itself, ``env_run_base`` and ``env.*``."""
    envs = [data]
    base = data.get("env_run_base")
    if isinstance(base, dict):
        envs.append(base)
    env = data.get("env")
    envs.extend(e for e in (env.values() if isinstance(env, dict) else []) if isinstance(e, dict))
    return envs


def tox_toml_resolve(table: dict[str, Any], value: Any, depth: int = 0) -> list[Any]:
    """``value`` with ``{replace = "ref", of = [...]}`` followed within ``table``."""
    if isinstance(value, list):
        return [x for v in value for x in tox_toml_resolve(table, v, depth)]
    if isinstance(value, dict) and value.get("replace") == "ref" and depth < 5:
        of = value.get("of")
        if isinstance(of, list) and all(isinstance(k, str) for k in of):
            target: Any = table
            for key in of:
                target = target.get(key) if isinstance(target, dict) else None
            if target is not None:
                return tox_toml_resolve(table, target, depth + 1)
    return [value]


def tox_toml_commands(table: dict[str, Any], text: str) -> Iterator[Command]:
    """The commands of a tox TOML table (``tox.toml`` or ``[tool.tox]``): lists of words, run
    without a shell."""
    for env in tox_toml_tables(table):
        for key in TOX_COMMAND_KEYS:
            listed = env.get(key)
            if listed is None:
                continue
            items = listed if isinstance(listed, list) else tox_toml_resolve(table, listed)
            for command in items:
                words = tox_toml_resolve(table, command) if isinstance(command, list) else [command]
                shown = [
                    _tox_words(w) if isinstance(w, str) else "$TOX_SUBSTITUTION" for w in words
                ]
                strings = [w for w in words if isinstance(w, str)]
                line = _line_of(text, strings[-1]) if strings else _line_of(text, key)
                if isinstance(command, str) and not isinstance(listed, list):
                    yield from _shell(shown[0], line, script=False)
                    continue
                found = Command(line, tuple(w for w in shown if w))
                yield found
                yield from _inner(list(found.words), line, 0)


def _tox_toml_text(text: str) -> Iterator[Command]:
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        yield Command(1, (), f"not valid TOML ({exc})", text[:200])
        return
    tool = data.get("tool")
    tox = tool.get("tox") if isinstance(tool, dict) else None
    if isinstance(tox, dict):
        legacy = tox.get("legacy_tox_ini")
        if isinstance(legacy, str):
            yield from tox_ini_commands(legacy, _line_of(text, "legacy_tox_ini"))
        yield from tox_toml_commands(tox, text)
    elif "tool" not in data or "env" in data or "env_run_base" in data:
        yield from tox_toml_commands(data, text)


# -- line-based hosts --------------------------------------------------------------------------
def _lines_text(text: str) -> str:
    """Procfile and justfile: a ``name:`` prefix dropped from each line."""
    out = []
    for raw in text.split("\n"):
        body = raw.strip()
        body = re.sub(r"^[A-Za-z0-9_.-]+(\s+[A-Za-z0-9_.-]+)*\s*:(?!=)\s*", "", body)
        out.append(body.lstrip("@-"))
    return "\n".join(out)


_LINE_PREFIX = re.compile(
    r"^\s*(?:sh|bat|powershell|pwsh)\b\s*\(?\s*(?:script\s*:\s*)?"
    r"|^\s*(?:-\s+)*(?:[\w.-]+\s*:\s*(?:[|>][-+0-9]*\s*$)?)?"
)


def _line_commands(text: str) -> str:
    """Text that is not shell (a Jenkinsfile, CI YAML that does not load) as shell lines:
    YAML keys and list dashes, ``sh``/``bat`` steps and their quotes dropped from each line
    first; a line under a prose key (``name: pip install x``) is not a command."""
    lines = []
    for raw in text.split("\n"):
        key = re.match(r"^\s*(?:-\s+)*([\w.-]+)\s*:(?:\s|$)", raw)
        if key is not None and key.group(1).lower() in PROSE_KEYS:
            lines.append("")
            continue
        line = _LINE_PREFIX.sub("", raw, count=1).strip()
        line = re.sub(r"^(?:'''|\"\"\"|'|\")", "", line)
        line = re.sub(r"(?:'''|\"\"\"|'|\")\s*\)?\s*$", "", line)
        lines.append(_CI_EXPRESSION.sub("$CI_EXPRESSION", _WORKSPACE.sub("", line)))
    return "\n".join(lines)


# -- Dockerfiles -------------------------------------------------------------------------------
def _dockerfile(text: str) -> Iterator[Command]:
    """``RUN``, ``CMD``, ``ENTRYPOINT`` (also after ``ONBUILD`` and ``HEALTHCHECK``): the shell
    form read as a shell script (here-documents kept), the exec form as its words. The escape
    character is ``\\`` or the one a ``# escape=`` directive sets; comment lines inside a
    continued instruction are dropped, as Docker drops them. An exec-form ``ENTRYPOINT`` and
    ``CMD`` are also one command, the entrypoint's words first."""
    lines = text.split("\n")
    escape = "\\"
    for raw in lines[:10]:
        m = re.match(r"^#\s*escape\s*=\s*(\S)\s*$", raw.strip(), re.I)
        if m:
            escape = m.group(1)
            break
        if raw.strip() and not raw.strip().startswith("#"):
            break
    exec_form: dict[str, Command] = {}
    i = 0
    while i < len(lines):
        m = re.match(
            r"\s*(?:ONBUILD\s+)?(?:HEALTHCHECK\s+(?:--\S+\s+)*)?(RUN|CMD|ENTRYPOINT)(?:\s+(.*))?$",
            lines[i],
            re.I | re.S,
        )
        if m is None:
            i += 1
            continue
        start = i
        body = (m.group(2) or "").rstrip()
        while body.endswith(escape) and i + 1 < len(lines):
            i += 1
            if lines[i].strip().startswith("#"):
                continue
            body = body[: -len(escape)] + " " + lines[i].strip()
            body = body.rstrip()
        if escape != "\\":
            body = body.replace("\\", "\\\\")
        while m.group(1).upper() == "RUN" and body.startswith("--"):
            body = body.split(None, 1)[1] if len(body.split(None, 1)) > 1 else ""
        if body.lstrip().startswith("["):
            try:
                words = json.loads(body)
            except ValueError:
                words = None
            if isinstance(words, list) and all(isinstance(w, str) for w in words):
                found = Command(start + 1, tuple(words))
                yield found
                yield from _inner(list(words), start + 1, 0)
                exec_form[m.group(1).upper()] = found
                pair = (exec_form.get("ENTRYPOINT"), exec_form.get("CMD"))
                if m.group(1).upper() != "RUN" and pair[0] is not None and pair[1] is not None:
                    # the container runs ENTRYPOINT's words with CMD's after them
                    yield Command(start + 1, pair[0].words + pair[1].words)
                i += 1
                continue
        if m.group(1).upper() == "RUN" and body.startswith("<<"):
            body = "sh " + body  # ``RUN <<EOF``: the here-document is the script
        segment = [body] + [""] * (i - start)
        for m2 in _HEREDOC.finditer(body):
            j = i + 1
            while j < len(lines) and lines[j].strip() != m2.group(4):
                j += 1
            segment.extend(lines[i + 1 : j + 1])
            i = j
        yield from _shell("\n".join(segment), start + 1)
        i += 1


# -- package.json, YAML, nox -------------------------------------------------------------------
def _package_json(text: str) -> Iterator[Command]:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        yield from _shell(_lines_text(text), 1, script=False)
        return
    scripts = doc.get("scripts") if isinstance(doc, dict) else None
    for value in scripts.values() if isinstance(scripts, dict) else []:
        if isinstance(value, str):
            yield from _shell(value, max(1, _line_of(text, json.dumps(value)[1:-1])))


def _yaml(text: str) -> Iterator[Command]:
    """Every string of a YAML host read as a shell script (but those under
    :data:`PROSE_KEYS`), a sequence of strings whose first is one word also as the words of
    one command (``command: ["python", "x"]``), and the ``run`` of a mapping whose ``shell``
    is not a shell as that program's standard input (GitHub's ``shell: python``). CI
    expressions are variables; the workspace variable names the project root. A file that
    YAML cannot load is read line by line (:func:`_line_commands`)."""
    import yaml

    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except (yaml.YAMLError, RecursionError, ValueError):
        yield from _shell(_line_commands(text), 1, script=False)
        return
    out: list[Command] = []
    seen: set[int] = set()  # an alias is the same node: walked once (no alias bombs)

    def scalar_line(node: yaml.Node) -> int:
        line = int(node.start_mark.line) + 1
        return line + 1 if getattr(node, "style", None) in ("|", ">") else line

    def ci(value: str) -> str:
        return _CI_EXPRESSION.sub("$CI_EXPRESSION", _WORKSPACE.sub("", value))

    def walk(node: yaml.Node | None, depth: int) -> None:
        if node is None or depth > 100 or id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag == "tag:yaml.org,2002:str" and isinstance(node.value, str):
                out.extend(_shell(ci(node.value), scalar_line(node)))
        elif isinstance(node, yaml.SequenceNode):
            values = [n.value for n in node.value if isinstance(n, yaml.ScalarNode)]
            if values and len(values) == len(node.value) and str(values[0]).split() == [values[0]]:
                words = [ci(str(v)) for v in values]
                out.append(Command(scalar_line(node), tuple(words)))
                out.extend(_inner(words, scalar_line(node), 0))
            for child in node.value:
                walk(child, depth + 1)
        elif isinstance(node, yaml.MappingNode):
            keys = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
            prose = {id(keys[k]) for k in PROSE_KEYS if k in keys}
            shell, run = keys.get("shell"), keys.get("run")
            program = ""
            if isinstance(shell, yaml.ScalarNode) and isinstance(run, yaml.ScalarNode):
                program = str(shell.value).split(" ", 1)[0]
                if program.rsplit("/", 1)[-1] in SHELLS or program in ("", "pwsh", "cmd"):
                    program = ""
            for _key, value in node.value:
                if program and value is run and isinstance(run, yaml.ScalarNode):
                    first = scalar_line(run)
                    code = str(run.value)
                    numbers = tuple(first + n for n in range(code.count("\n") + 1))
                    expanded = "${{" in code
                    out.append(Command(first, (program, "-"), stdin=Stdin(code, numbers, expanded)))
                    continue
                if id(value) not in prose:
                    walk(value, depth + 1)

    for document in documents:
        walk(document, 0)
    yield from out


def _python(text: str) -> Iterator[Command]:
    """A noxfile, read from its syntax tree and never run: ``session.install(ARGS)`` is
    ``pip install ARGS``; ``session.run``/``run_always``/``run_install`` and any call whose
    first argument (or first argument's first item) is a constant string run their
    arguments as words. A module-level name bound once to a string or a list of them is
    read; any other argument is ``$NOX_COMPUTED``."""
    try:
        tree = ast.parse(text)
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        yield Command(getattr(exc, "lineno", 0) or 1, (), f"does not parse ({exc})", "")
        return
    bound: dict[str, list[ast.expr]] = {}
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else []
        if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets = [stmt.target]
        value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
        for target in targets:
            if isinstance(target, ast.Name) and value is not None:
                bound.setdefault(target.id, []).append(value)

    def words_of(node: ast.expr) -> list[str]:
        target = node.value if isinstance(node, ast.Starred) else node
        if isinstance(target, ast.Name) and len(bound.get(target.id, [])) == 1:
            target = bound[target.id][0]
        try:
            value = ast.literal_eval(target)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            return ["$NOX_COMPUTED"]
        if isinstance(value, str) and not isinstance(node, ast.Starred):
            return [value]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value) if isinstance(node, ast.Starred) else ["$NOX_COMPUTED"]
        return ["$NOX_COMPUTED"]

    for call in calls:
        attr = call.func.attr if isinstance(call.func, ast.Attribute) else ""
        args: list[ast.expr] = list(call.args)
        if args and isinstance(args[0], (ast.List, ast.Tuple)):
            args = list(args[0].elts)
        first = args[0] if args else None
        constant = isinstance(first, ast.Constant) and isinstance(first.value, str)
        if attr == "install":
            words = ["pip", "install"]
        elif attr in ("run", "run_always", "run_install") or constant:
            words = []
        else:
            continue
        for arg in args:
            words.extend(words_of(arg))
        if words:
            yield Command(call.lineno, tuple(words))
            yield from _inner(words, call.lineno, 0)
