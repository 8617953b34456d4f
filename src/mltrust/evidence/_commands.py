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
import base64
import contextlib
import contextvars
import dataclasses
import itertools
import json
import posixpath
import re
import shlex
import textwrap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal

from mltrust.config import DEFAULT_LIMITS
from mltrust.evidence._classify import LauncherKind, python_interpreter, python_shebang

__all__ = [
    "NOT_RUNNING",
    "Command",
    "HostFileKind",
    "HostKind",
    "Stdin",
    "argv",
    "commands",
    "computed_name",
    "host_file",
    "host_file_matches",
    "make_include_dirs",
    "ran_file",
    "unread_host",
]

#: How a command host is read (see :func:`mltrust.evidence._classify.command_host`).
HostKind = LauncherKind
#: How a file a host runs or includes is read (:func:`host_file`, :attr:`Command.reads`).
HostFileKind = Literal["shell", "make", "dockerfile", "yaml", "lines"]


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
    #: A file the host itself reads as a command host of its own, and how, by a directive
    #: rather than a command (GitLab's ``include:``, a justfile's ``import``/``mod``): read
    #: as :func:`host_file` names (:func:`ran_file`). ``words`` is empty.
    reads: tuple[HostFileKind, str] | None = None
    #: Why the file this command runs cannot be read at all: the script wrote it earlier with
    #: text it computes (``curl URL > x.sh; bash x.sh``). ``words`` is empty; both readers of
    #: the stream fail closed on it, as on :func:`unread_host`.
    unread: str = ""


#: Words that separate commands (shlex punctuation tokens, shell grouping, backquotes).
SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", "|&", ";;", "{", "}", "!", "`"})
#: Process substitution (``<(cmd)``, ``>(cmd)``): a command list starts after it.
SEPARATORS |= {"<(", ">("}
#: Programs that run a ``-c COMMAND`` string with a shell (``su -c``, ``script -qc``).
_C_RUNNERS = frozenset({"su", "script", "runuser"})
#: Shell keywords that start the command after them.
_KEYWORDS = frozenset({"then", "do", "else", "elif", "if", "while", "until", "in", "!"})
#: Commands that print, test or look up their words rather than run them: none of their
#: words is a command (``echo pip install x`` installs nothing, ``which python3`` starts
#: nothing). Both readers of the stream skip a command whose program (:func:`argv`) is one.
NOT_RUNNING = frozenset(
    {"echo", "printf", "which", "type", "hash", "whereis", "whatis", "alias", "test", "["}
    | {"[[", ":", "true", "false", "logger", "man", "help"}
)
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox"})
_HEREDOC = re.compile(r"<<(-?)[ \t]*(\\?)(['\"]?)([A-Za-z0-9_.-]+)\3")
#: YAML keys whose values are prose, not commands.
PROSE_KEYS = frozenset({"description", "name", "title", "summary", "help", "about", "comment"})
#: CI expressions: GitHub ``${{ }}``, GitLab ``$[[ ]]``, Azure ``$(var)``.
_CI_EXPRESSION = re.compile(r"\$\{\{.*?\}\}|\$\[\[.*?\]\]|\$\(\s*[\w.-]+\s*\)", re.S)
#: Variables CI sets to the checkout folder: ``$GITHUB_WORKSPACE/tools/x`` is ``tools/x``.
_WORKSPACE = re.compile(
    r"(?:\$\{\{\s*github\.workspace\s*\}\}|\$\{?(?:GITHUB_WORKSPACE|CI_PROJECT_DIR)\}?)/"
)


def commands(
    kind: HostKind, text: str, include: Callable[[str], str | None] | None = None
) -> list[Command]:
    """The commands the host ``text`` (of the given kind) runs, in file order. For a
    makefile, ``include(NAME)`` gives the text of a project file its ``include`` names, or
    None (:func:`_make`): the variables it assigns are the host's. The files its scripts
    write are the host's (:data:`_HOST_FILES`)."""
    token = _HOST_FILES.set(_Files.of(text)) if _HOST_FILES.get() is None else None
    given = _INCLUDE.set(include) if token is not None else None
    try:
        return _host_commands(kind, text, include)
    finally:
        if token is not None:
            _HOST_FILES.reset(token)
        if given is not None:
            _INCLUDE.reset(given)


def _host_commands(
    kind: HostKind, text: str, include: Callable[[str], str | None] | None
) -> list[Command]:
    if kind == "shell":
        return list(_shell(text, 1))
    if kind == "make":
        return list(_make(text, include))
    if kind == "ini":
        return list(tox_ini_commands(text))
    if kind == "toml":
        return list(_tox_toml_text(text))
    if kind == "lines":
        return list(_lines(text, include))
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


#: Commands that run the command in their remaining words, each with its options that take
#: a value (``-n 5``) and how many plain words come before the command (``timeout 5``,
#: ``chrt 10``, ``taskset 0x3``, ``docker run IMAGE``). Options are skipped as each wrapper
#: reads them; what follows is the command they run.
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "exec": (frozenset({"-a"}), 0),
    "time": (frozenset({"-f", "--format", "-o", "--output"}), 0),
    "nohup": (frozenset(), 0),
    "command": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "--class", "-n", "--classdata", "-p", "-P", "-u"}), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e", "--input", "--output", "--error"}), 0),
    "chrt": (frozenset({"-T", "-P", "-D", "--sched-runtime", "--sched-period"}), 1),
    "taskset": (frozenset(), 1),
    "setsid": (frozenset(), 0),
    "catchsegv": (frozenset(), 0),
    "timeout": (frozenset({"-s", "--signal", "-k", "--kill-after"}), 1),
    "env": (frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}), 0),
    "sudo": (
        frozenset({"-u", "--user", "-g", "--group", "-C", "--close-from", "-D", "--chdir"})
        | frozenset({"-h", "--host", "-p", "--prompt", "-r", "--role", "-t", "--type"})
        | frozenset({"-U", "--other-user", "-T", "--command-timeout", "-R", "--chroot"}),
        0,
    ),
    "doas": (frozenset({"-u", "-C", "-a"}), 0),
    "runuser": (frozenset({"-u", "--user", "-g", "--group", "-G"}), 0),
    "xvfb-run": (
        frozenset({"-n", "--server-num", "-s", "--server-args", "-f", "--auth-file"})
        | frozenset({"-e", "--error-file", "-p", "--xauth-protocol"}),
        0,
    ),
    "strace": (frozenset("-" + c for c in "abeEIoOpPsSuUX"), 0),
    "ltrace": (frozenset("-" + c for c in "aADeFlLnopsuwx"), 0),
    "valgrind": (frozenset(), 0),
    "firejail": (frozenset(), 0),
    "unbuffer": (frozenset(), 0),
    "flock": (frozenset({"-w", "--timeout", "-E", "--conflict-exit-code"}), 1),
    "chroot": (frozenset({"--userspec", "--groups"}), 1),
    "nsenter": (frozenset({"-t", "--target", "-S", "-G", "--setuid", "--setgid"}), 0),
    "unshare": (frozenset(), 0),
    "srun": (frozenset({"-n", "-N", "-p", "-t", "-c", "-J", "-A", "-o", "-e", "--gres"}), 0),
    "mpirun": (frozenset({"-n", "-np", "-c", "-N", "--host", "-H", "--hostfile", "-x"}), 0),
    "mpiexec": (frozenset({"-n", "-np", "-c", "-N", "--host", "-H", "--hostfile", "-x"}), 0),
}
#: ``TOOL run [options] COMMAND`` (``conda run -n env python``); ``uv run`` is read by the
#: launcher reader itself (its ``--script``).
_RUN_TOOLS = frozenset(
    {"poetry", "pipenv", "pdm", "hatch", "conda", "mamba", "micromamba", "rye", "pixi"}
)
_RUN_TOOL_VALUES = frozenset(
    {"-n", "--name", "-p", "--prefix", "--cwd", "-e", "--env", "--environment", "-r"}
    | {"--root-prefix", "--manifest-path", "--python", "-a", "--arch"}
)
#: ``docker run [options] IMAGE COMMAND`` and the like: options that take a value.
_CONTAINER_VALUES = frozenset(
    {"-v", "--volume", "-e", "--env", "-p", "--publish", "-w", "--workdir", "-u", "--user"}
    | {"--name", "--entrypoint", "--network", "--net", "--env-file", "-m", "--memory"}
    | {"--mount", "--platform", "-l", "--label", "-h", "--hostname", "--cpus", "--gpus"}
    | {"--device", "--add-host", "--cap-add", "--cap-drop", "--security-opt", "--ulimit"}
    | {"--tmpfs", "--shm-size", "--runtime", "--pull", "--restart", "--log-driver"}
    | {"--log-opt", "--ipc", "--pid", "--dns", "--link", "--volumes-from", "--cidfile"}
    | {"--expose", "-a", "--attach", "--group-add", "--stop-signal", "--userns", "--uts"}
    | {"--label-file", "--ip", "--ip6", "--cgroupns", "--detach-keys", "--health-cmd"}
    | {"-c", "--container", "-n", "--namespace", "--context", "--kubeconfig", "-f"}
)
_CONTAINER_TOOLS = frozenset({"docker", "podman", "nerdctl", "kubectl", "oc"})


def _assignment(word: str) -> bool:
    # ``A=x``, ``A+=x``, ``A[0]=x``
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])?\+?=.*", word, re.DOTALL) is not None


def _skip_options(words: list[str], i: int, values: frozenset[str]) -> int:
    """The index of the first word after the options at ``words[i:]`` (``--`` ends them)."""
    while i < len(words) and words[i].startswith("-") and words[i] != "-":
        option = words[i]
        if option == "--":
            return i + 1
        if "=" in option and option.startswith("--"):
            i += 1
            continue
        i += 2 if option in values else 1
    return i


def argv(words: tuple[str, ...] | list[str]) -> list[str]:
    """The command a simple command runs: leading ``NAME=value`` words and the wrappers that
    run the rest of their words dropped, each with its own options (:data:`_WRAPPERS`:
    ``exec -a name``, ``nice -n 5``, ``env -i X=1 -u Y``, ``time -p``, ``timeout -k 1 5``,
    ``sudo -u u``...); ``env -S STRING`` is split into the words it runs; ``conda``/
    ``micromamba``/``poetry``... ``run [options]``, ``docker``/``podman run [options] IMAGE``,
    ``docker exec [options] CONTAINER`` and ``kubectl exec ... --`` run what follows."""
    words = list(words)
    i = 0
    for _ in range(64):
        if i >= len(words):
            break
        word = words[i]
        name = word.lstrip("@-+") if word[:1] in "@-+" and i == 0 else word
        name = name.rsplit("/", 1)[-1] if name.startswith("/") else name
        if _assignment(word):
            i += 1
        elif name in _WRAPPERS:
            values, plain = _WRAPPERS[name]
            i += 1
            if name == "env":
                while i < len(words):
                    option = words[i]
                    split = None
                    if option in ("-S", "--split-string") and i + 1 < len(words):
                        split, i = words[i + 1], i + 2
                    elif option.startswith("--split-string="):
                        split, i = option.split("=", 1)[1], i + 1
                    elif option.startswith("-S") and len(option) > 2:
                        split, i = option[2:], i + 1
                    elif option.startswith("-") and option != "-":
                        i = _skip_options(words, i, values) if option != "--" else i + 1
                        if option == "--":
                            break
                        continue
                    elif _assignment(option):
                        i += 1
                    else:
                        break
                    if split is not None:
                        try:
                            words[i:i] = _split(split)
                        except ValueError:
                            words[i:i] = ["$ENV_SPLIT_STRING"]
                continue
            if name == "nice" and i < len(words) and re.fullmatch(r"-\d+", words[i]):
                i += 1  # ``nice -10``
            i = _skip_options(words, i, values)
            i += plain
        elif name in _RUN_TOOLS and words[i + 1 : i + 2] == ["run"]:
            i = _skip_options(words, i + 2, _RUN_TOOL_VALUES)
        elif name in _CONTAINER_TOOLS and words[i + 1 : i + 2] in (["run"], ["exec"]):
            sub = words[i + 1]
            rest = words[i + 2 :]
            if name in ("kubectl", "oc"):
                if "--" not in rest:
                    break  # ``kubectl exec POD CMD`` (old form): left to the caller
                i = i + 2 + rest.index("--") + 1
                continue
            i = _skip_options(words, i + 2, _CONTAINER_VALUES)
            i += 1  # the image (run) or the container (exec)
            del sub
        else:
            break
    return words[i:]


def host_file(words: tuple[str, ...] | list[str]) -> tuple[HostFileKind, str] | None:
    """The file a command reads as a command host, and how: a shell script (``bash FILE``,
    ``sh -e FILE``, ``bash < FILE``, ``. FILE``, ``source FILE``, ``eval "$(cat FILE)"``), a
    makefile (``make -f FILE``, ``$(MAKE) --file=FILE``; a Makefile's ``include FILE`` is
    such a command too), a justfile (``just -f FILE``, ``just --justfile FILE``) or a
    Dockerfile (``docker build -f FILE``, ``docker buildx build --file FILE``, podman,
    buildah, nerdctl). None for a shell given its script with ``-c`` or on a pipe, and for
    any other command. Both readers of the stream follow it (:func:`ran_file`, also for
    the files a host includes by a directive): what such a file runs is run by the
    project, whatever the file's name."""
    runs = argv(words)
    if not runs:
        return None
    name = runs[0].rsplit("/", 1)[-1]
    if runs[0] in (".", "source"):
        return ("shell", runs[1]) if len(runs) > 1 else None
    if _EVAL_FILE.fullmatch(runs[0]):
        # ``$(cat FILE)`` as the program (also a ``bash -c "$(cat FILE)"`` script): FILE's
        # words run, read as FILE's text is
        m = _EVAL_FILE.fullmatch(runs[0])
        return ("shell", m.group(1) or m.group(2)) if m is not None else None
    if runs[0] == "eval" and len(runs) > 1:
        # ``eval "$(cat FILE)"``, ``eval "$(< FILE)"``, ``eval `cat FILE```: FILE's text runs
        m = _EVAL_FILE.fullmatch(" ".join(runs[1:]))
        return ("shell", m.group(1) or m.group(2)) if m is not None else None
    if name == "just":
        found = _file_option(runs, ("--justfile",), "nquv")
        return ("lines", found) if found is not None else None
    if name in SHELLS:
        j = 1
        while j < len(runs) and runs[j][:1] in "-+" and runs[j] not in ("-", "--"):
            option = runs[j]
            j += 1
            if option.startswith("--"):
                j += 1 if option in ("--rcfile", "--init-file") else 0
                continue
            if "c" in option:
                return None  # the script is the -c text
            if "s" in option[1:]:
                # the script is standard input: ``sh -s < x.sh`` runs x.sh
                return ("shell", runs[runs.index("<") + 1]) if "<" in runs[j:-1] else None
            j += sum(1 for f in option[1:] if f in "oO")
        j += 1 if runs[j : j + 1] == ["--"] else 0
        if runs[j : j + 2] == ["0", "<"]:
            j += 1  # ``sh 0< x.sh`` (split as ``0 <``): standard input, as ``sh < x.sh``
        if runs[j : j + 1] in (["<"], ["-"]) or j >= len(runs):
            # the script is standard input: a file redirected to it is the script
            rest = runs[j:]
            return ("shell", rest[rest.index("<") + 1]) if "<" in rest[:-1] else None
        return ("shell", runs[j])
    if _is_make(runs[0]):
        found = _file_option(runs, ("--file", "--makefile"), "BbdeikLnpqRrSstwv")
        if found is None:
            # ``MAKEFILES=x.mk make``: make reads x.mk before the makefile
            given = [w[10:] for w in words[: len(words) - len(runs)] if w.startswith("MAKEFILES=")]
            found = next((n for g in given for n in g.split()), None)
        if found is None and make_include_dirs(words):
            # ``make -I DIR``: the makefile make reads finds the files it includes in DIR
            # too (:func:`make_include_dirs`), so it is read again, for those
            found = posixpath.normpath(posixpath.join(_make_options(words)[0], "Makefile"))
        if found is not None:
            return ("make", found)
    if name in ("docker-compose", "podman-compose") or (
        name in _BUILDERS and runs[1:2] == ["compose"]
    ):
        # Compose runs the services of the file ``-f`` names, whatever its name
        found = _file_option(runs, ("--file",), "")
        return ("yaml", found) if found is not None else None
    if name in _BUILDERS and "build" in runs[1:3]:
        found = _file_option(runs, ("--file",), "q")
        if found is not None:
            return ("dockerfile", found)
    return None


def _is_make(program: str) -> bool:
    name = program.rsplit("/", 1)[-1]
    return name in ("make", "gmake") or name.upper() in ("$MAKE", "${MAKE}", "$MAKE_MAKE")


#: make's options whose value may be the next word (``-C DIR``, ``-I DIR``, ``-f FILE``...),
#: the flags that take none (they may come before one in a cluster: ``-sI mk``), and the long
#: options that take a value.
_MAKE_VALUE_FLAGS = "CIfoW"
_MAKE_FLAGS = "BbdeikLnpqRrSstwv"
_MAKE_LONG_VALUES = frozenset(
    {"--directory", "--include-dir", "--file", "--makefile", "--old-file", "--assume-old"}
    | {"--new-file", "--what-if", "--assume-new"}
)


def _make_options(words: tuple[str, ...] | list[str]) -> tuple[str, list[str]]:
    """The folder (``-C DIR``, the first one; ``""``: the working folder) and the include
    folders (``-I DIR``, ``-IDIR``, ``--include-dir[=]DIR``, also given in a ``MAKEFLAGS=...``
    assignment before the command) of a make command; ``("", [])`` for another command."""
    runs = argv(words)
    if not runs or not _is_make(runs[0]):
        return "", []
    given: list[str] = []
    for word in words[: len(words) - len(runs)]:
        if word.startswith("MAKEFLAGS="):
            given.extend(w if w.startswith("-") else "-" + w for w in word[10:].split()[:1])
            given.extend(word[10:].split()[1:])
    folder, dirs = "", []
    options = [*given, *runs[1:]]
    value = re.compile(f"-[{_MAKE_FLAGS}]*([{_MAKE_VALUE_FLAGS}])(.*)", re.S)
    k = 0
    while k < len(options):
        word = options[k]
        k += 1
        if word == "--":
            break
        letter, found = "", None
        if word.startswith("--"):
            option, eq, rest = word.partition("=")
            if option not in _MAKE_LONG_VALUES:
                continue
            letter = {"--directory": "C", "--include-dir": "I"}.get(option, "f")
            found = rest if eq else None
        elif (m := value.fullmatch(word)) is not None:
            letter, found = m.group(1), m.group(2) or None
        else:
            continue
        if found is None:
            found = options[k] if k < len(options) else ""
            k += 1
        if letter == "C" and not folder:
            folder = found
        elif letter == "I" and found:
            dirs.append(found)
    return folder, dirs


def make_include_dirs(words: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The project folders (relative to where the command runs) a make command searches for
    a file an ``include`` names that is not found from its folder: its ``-I`` folders
    (:func:`_make_options`), joined to its ``-C`` folder. A folder outside the project by its
    name (absolute, ``~``) or one the shell computes is left out: nothing of the project is
    there to read (a ``..`` is kept: the readers' containment checks drop it)."""
    folder, dirs = _make_options(words)
    out = [
        posixpath.normpath(posixpath.join(folder, d))
        for d in dirs
        if not d.startswith(("/", "~")) and not computed_name(d) and not computed_name(folder)
    ]
    return tuple(dict.fromkeys(out))


def _file_option(runs: list[str], long: tuple[str, ...], flags: str) -> str | None:
    """The value of a tool's ``-f FILE`` option: ``-f FILE``, ``-fFILE``, a cluster of its
    flags that take no value ending in it (``make -sf FILE``, ``-sfFILE``), or one of the
    ``long`` names (``--file FILE``, ``--file=FILE``); None when it has none."""
    cluster = re.compile(f"-(?:[{re.escape(flags)}]*)f(.*)" if flags else "-f(.*)", re.S)
    for k, word in enumerate(runs[1:], 1):
        if word == "--":
            return None
        if word.startswith("--"):
            option, eq, value = word.partition("=")
            if option in long:
                if eq:
                    return value
                return runs[k + 1] if k + 1 < len(runs) else None
            continue
        m = cluster.fullmatch(word)
        if m is not None:
            if m.group(1):
                return m.group(1)
            return runs[k + 1] if k + 1 < len(runs) else None
    return None


#: ``$(cat FILE)``, ``$(< FILE)``, ```cat FILE```: the text of one file (``eval`` runs it).
_EVAL_FILE = re.compile(
    r"\$\(\s*(?:cat\s+(?:--\s+)?|<\s*)([^\s()$`;|&<>]+)\s*\)|`\s*cat\s+(?:--\s+)?([^\s`$;|&<>]+)\s*`"
)


def ran_file(command: Command) -> tuple[HostFileKind, str] | None:
    """The file a command of the stream runs or its host includes, read as a command host
    of the kind given: :attr:`Command.reads`, else :func:`host_file` of its words."""
    if command.reads is not None:
        return command.reads
    return host_file(command.words) if not command.unreadable else None


#: Names of the script itself (``exec bash "$0"``): read already.
_SELF_NAMES = frozenset({"$0", "${0}", "$BASH_SOURCE", "${BASH_SOURCE}", "${BASH_SOURCE[0]}"})


def unread_host(kind: HostFileKind, target: str) -> str | None:
    """Why the file a host runs or includes (:func:`ran_file`) cannot be read at all, else
    None: a remote file (a name with ``://``: GitLab's ``remote:``, ``project:``,
    ``component:`` and ``artifact:`` includes, which cannot be fetched offline), or a shell
    script whose name is nothing but what the shell computes (``bash "$f"``, ``. "${STEP}"``,
    ``source "$(cmd)"``: no character of it says which file; :func:`host_file_matches`
    matches nothing). Both readers fail closed on it: what that file runs is not read. A
    computed name with a literal part (``$HOME/.profile``, ``ci/$STEP.sh``) is matched against
    the project's files instead, and a makefile's (``-include $(DEPS)``) is make's own
    dependency output."""
    if "://" in target:
        return f"includes the remote file {target!r}, which cannot be read offline"
    if (
        kind == "shell"
        and target not in _SELF_NAMES
        and computed_name(target)
        and not _HOST_WILD.sub("", target).strip("/.\"'")
    ):
        return f"runs {target!r} as a shell script, a file whose name the shell computes"
    return None


#: Programs whose ``build -f FILE`` (``buildx build``) builds the Dockerfile FILE.
_BUILDERS = frozenset({"docker", "podman", "buildah", "nerdctl", "buildctl"})
#: What the shell computes in a file name: an expansion (``$X``, ``${X}``, ``$(...)``,
#: backquotes) or a glob (``*``, ``?``, ``[...]``).
_HOST_WILD = re.compile(
    r"\$\{[^}]*\}|\$\([^)]*\)|`[^`]*`|\$[A-Za-z_][A-Za-z0-9_]*|\$[0-9@*#?$!-]|[*?]|\[[^\]/]*\]"
)


def computed_name(target: str) -> bool:
    """Whether the shell computes the file name ``target`` (:data:`_HOST_WILD`)."""
    return _HOST_WILD.search(target) is not None


def host_file_matches(
    target: str,
    folders: Iterable[str],
    children: Callable[[str], Iterable[str]],
    keep: Callable[[str], bool],
) -> list[str]:
    """The project files (relative paths) a host file name the shell computes may name
    (:func:`host_file`: ``bash ci/st*p``, ``. "$DIR/common.sh"``, ``include mk/*.mk``), tried
    from each of ``folders`` (relative; ``""`` is the root); ``children(folder)`` lists the
    names in a folder. A part of the path with a glob or an expansion matches every name in
    its folder that fits the literal characters around it (a variable may hold anything:
    reading one file too many only adds findings; ``[...]`` also matches itself, a quoted
    name). Only paths ``keep`` accepts (files the caller would read) are counted: at most
    ``max_command_host_matches`` + 1 (more: the caller reports the name). Nothing is matched for
    a name outside the project (``~/x``, an absolute path) or one that is nothing but
    expansions (``bash "$f"`` in a loop: no character of it says which file)."""
    if target.startswith(("~", "/")) or not _HOST_WILD.sub("", target).strip("/."):
        return []
    parts: list[str | re.Pattern[str]] = []
    pieces = [p for p in target.replace("\\", "/").split("/") if p not in ("", ".")]
    for k, piece in enumerate(pieces):
        if "**" in piece:
            # ``**`` (GitLab's ``ci/**.yml``, bash's globstar ``ci/**/*.sh``) names files in
            # every folder below: the rest of the name is matched against paths, ``/`` too
            rest = "/".join(pieces[k:])
            regex, last = [], 0
            for m in re.finditer(r"\*\*/?|" + _HOST_WILD.pattern, rest):
                regex.append(re.escape(rest[last : m.start()]))
                regex.append("(?:.*/)?" if m.group() == "**/" else ".*")
                last = m.end()
            regex.append(re.escape(rest[last:]))
            parts.append(re.compile("(?:" + "".join(regex) + ")/RECURSIVE", re.S))
            break
        if not _HOST_WILD.search(piece):
            parts.append(piece)
            continue
        regex, last = [], 0
        for m in _HOST_WILD.finditer(piece):
            regex.append(re.escape(piece[last : m.start()]))
            found = m.group()
            if found.startswith("[") and len(found) > 2:
                regex.append(f"(?:{re.escape(found)}|[{re.escape(found[1:-1])}]|.*)")
            else:
                regex.append(".*")
            last = m.end()
        regex.append(re.escape(piece[last:]))
        parts.append(re.compile("".join(regex), re.S))
    out: list[str] = []
    for folder in dict.fromkeys(folders):
        current = [folder]
        for part in parts:
            following: list[str] = []
            for here in current:
                if isinstance(part, str):
                    following.append(posixpath.join(here, part) if here else part)
                    continue
                if part.pattern.endswith("/RECURSIVE"):
                    following.extend(_below(here, part, children))
                    continue
                for name in children(here):
                    if part.fullmatch(name):
                        following.append(posixpath.join(here, name) if here else name)
            current = following[:4096]
        for rel in current:
            if rel not in out and keep(rel):
                out.append(rel)
                if len(out) > DEFAULT_LIMITS.max_command_host_matches:
                    return out
    return out


def _below(
    folder: str, part: re.Pattern[str], children: Callable[[str], Iterable[str]]
) -> list[str]:
    """The paths below ``folder`` (at any depth, at most 4096 visited) whose path from it
    matches the recursive pattern ``part`` (:func:`host_file_matches`)."""
    regex = re.compile(part.pattern.removesuffix("/RECURSIVE"), re.S)
    out: list[str] = []
    queue, visited = [""], 0
    while queue and visited < 4096:
        inner = queue.pop(0)
        for name in children(posixpath.join(folder, inner).rstrip("/") if folder else inner):
            visited += 1
            sub = posixpath.join(inner, name) if inner else name
            if regex.fullmatch(sub):
                out.append(posixpath.join(folder, sub) if folder else sub)
            queue.append(sub)
    return out


# -- shell ------------------------------------------------------------------------------------
def _substitution_end(text: str, i: int, budget: list[int]) -> int:
    """The index of the character that closes the command substitution starting at
    ``text[i]`` (``$(`` or a backquote), quotes inside it honoured; -1 when it is not closed
    in ``text``, or when the characters ``budget`` allows for one text are spent (so many
    unclosed openings cost linear time, not quadratic)."""
    start = i
    end = _substitution_close(text, i, budget[0])
    budget[0] -= (end if end >= 0 else len(text)) - start
    return end if budget[0] >= 0 else -1


def _substitution_close(text: str, i: int, allowed: int) -> int:
    limit = min(len(text), i + max(allowed, 0) + 1)
    if text[i] == "`":
        k = i + 1
        while k < limit:
            if text[k] == "\\":
                k += 2
                continue
            if text[k] == "`":
                return k
            k += 1
        return -1
    level, k = 0, i  # ``text[i]`` is the opening parenthesis
    while k < limit:
        char = text[k]
        if char == "\\":
            k += 2
            continue
        if char in "'\"":
            end = text.find(char, k + 1, limit)
            if end < 0:
                return -1
            k = end + 1
            continue
        level += 1 if char == "(" else -1 if char == ")" else 0
        if level == 0:
            return k
        k += 1
    return -1


#: An unquoted word with nothing the shell expands but braces (brace expansion comes first).
_BRACE_WORD = re.compile(
    r"(?:[^\s;&|()<>'\"$`\\{]|'[^']*'|\"[^\"$`\\]*\")*"
    r"\{(?:[^\s;&|()<>'\"$`\\]|'[^']*'|\"[^\"$`\\]*\")*"
)


def _brace_expand(word: str, depth: int = 0) -> list[str]:
    """Bash's brace expansion of one word: ``pre{a,b}post`` is ``preapost prebpost``, groups
    multiply, nest, and ``{1..3}``/``{a..c}`` are sequences; a brace with neither a comma nor a
    sequence at its top level is kept as written."""
    if depth > 8:
        return [word]

    def unquoted(k: int) -> int:
        """The next index from ``k`` outside a quoted part (a quote skipped whole)."""
        while k < len(word) and word[k] in "'\"":
            end = word.find(word[k], k + 1)
            k = end + 1 if end >= 0 else len(word)
        return k

    def find_brace(k: int) -> int:
        k = unquoted(k)
        while k < len(word) and word[k] != "{":
            k = unquoted(k + 1)
        return k if k < len(word) else -1

    start = find_brace(0)
    while start >= 0:
        level, k, commas = 0, start, []
        while k < len(word):
            k = unquoted(k)
            if k >= len(word):
                break
            if word[k] == "{":
                level += 1
            elif word[k] == "}":
                level -= 1
                if level == 0:
                    break
            elif word[k] == "," and level == 1:
                commas.append(k)
            k += 1
        if k >= len(word):
            return [word]
        body, head, tail = word[start + 1 : k], word[:start], word[k + 1 :]
        items: list[str] | None = None
        if commas:
            bounds = [start, *commas, k]
            items = [word[a + 1 : b] for a, b in itertools.pairwise(bounds)]
        else:
            seq = re.fullmatch(r"(-?\d+)\.\.(-?\d+)|([A-Za-z])\.\.([A-Za-z])", body)
            if seq is not None:
                if seq.group(1) is not None:
                    a, b = int(seq.group(1)), int(seq.group(2))
                    step = 1 if b >= a else -1
                    items = [str(n) for n in range(a, b + step, step)][
                        : DEFAULT_LIMITS.max_brace_words
                    ]
                else:
                    a, b = ord(seq.group(3)), ord(seq.group(4))
                    step = 1 if b >= a else -1
                    items = [chr(n) for n in range(a, b + step, step)]
        if items is None:
            start = find_brace(start + 1)  # not an expansion: the next brace may be
            continue
        out: list[str] = []
        for item in items:
            for one in _brace_expand(head + item + tail, depth + 1):
                out.append(one)
                if len(out) > DEFAULT_LIMITS.max_brace_words:
                    return [word]
        return out
    return [word]


#: Bash's ANSI-C quoting ``$'...'`` (a backslash escapes the quote) and its escapes.
_ANSI_C = re.compile(r"\$'((?:[^'\\]|\\.)*)'", re.S)
_ANSI_ESCAPE = re.compile(
    r"\\(?:([abeEfnrtv\\'\"?])|([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{1,4})"
    r"|U([0-9A-Fa-f]{1,8})|c(.))",
    re.S,
)
_ANSI_SIMPLE = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n"}
_ANSI_SIMPLE |= {"r": "\r", "t": "\t", "v": "\v"}
#: An unquoted reference to ``IFS`` (whitespace by default: the shell splits words there).
_IFS = re.compile(r"\$(?:\{IFS\}|IFS(?![A-Za-z0-9_]))")


def _ansi_c(body: str) -> str:
    """The text of an ANSI-C quoted string's body, its escapes decoded as bash does."""

    def one(m: re.Match[str]) -> str:
        simple, octal, hex2, u4, u8, ctrl = m.groups()
        if simple is not None:
            return _ANSI_SIMPLE.get(simple, simple)
        if ctrl is not None:
            return chr(ord(ctrl) & 0x1F)
        code = int(octal, 8) if octal else int(hex2 or u4 or u8, 16)
        return chr(code) if code <= 0x10FFFF else "?"

    return _ANSI_ESCAPE.sub(one, body)


def _quoted(text: str) -> str:
    """``text`` as one double-quoted shell word (shlex gives it back whole)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scan(text: str) -> tuple[str, str]:
    """``text`` as the shell reads it before splitting: comments (``#`` starting a word,
    outside quotes) dropped, backslash-newline joined, an unquoted command substitution
    (``$(...)``, backquotes) kept whole inside its word (``$(printf p)ip`` is one word, as
    the shell builds it; the body is read by :func:`_inner`), bash's brace expansion
    (:func:`_brace_expand`: ``{pip,install}``) done on unquoted words; a backquote that is
    never closed is set apart as a word of its own. Also the state at the end: ``""``,
    ``"quote"`` (a quote is open) or ``"continued"`` (a backslash ends the text)."""
    out: list[str] = []
    quote = ""
    i, n = 0, len(text)
    budget = [4 * n + 65_536]  # characters searched for closing parentheses, all told
    next_brace = text.find("{")  # the next brace at or after i (brace expansion is tried there)
    while i < n:
        char = text[i]
        if not quote and char == "$" and text.startswith(("$'", '$"'), i):
            if text[i + 1] == '"':  # ``$"..."``: a translated string, read as ``"..."``
                i += 1
                continue
            ansi = _ANSI_C.match(text, i)
            if ansi is not None:  # ``$'\x69nstall'`` is the word ``install``
                out.append(_quoted(_ansi_c(ansi.group(1))))
                i = ansi.end()
                continue
        if not quote and char == "$":
            ifs = _IFS.match(text, i)
            if ifs is not None:  # unquoted ``$IFS`` splits words: ``pip${IFS}install``
                out.append(" ")
                i = ifs.end()
                continue
        if not quote and (char == "`" or (text.startswith("$(", i) and text[i + 2 : i + 3] != "(")):
            end = _substitution_end(text, i if char == "`" else i + 1, budget)
            if end >= 0:
                out.append(_quoted(text[i : end + 1]))
                i = end + 1
                continue
        if 0 <= next_brace < i:
            next_brace = text.find("{", i)
        if not quote and 0 <= next_brace < i + 4096 and (i == 0 or text[i - 1] in " \t\n;&|()"):
            brace = _BRACE_WORD.match(text, i)
            if brace is not None and brace.end() > i:
                found = brace.group()
                end = brace.end()
                if end >= n or text[end] in " \t\n;&|()<>":
                    words = [w for w in _brace_expand(found) if w]
                    out.append(" ".join(words) if words else "''")
                    i = end
                    continue
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


def heredoc_delimiters(clean: str) -> list[tuple[str, bool, bool]]:
    """``(delimiter, quoted, strip)`` for each here-document redirection (``<<WORD``,
    ``<<-WORD``; not ``<<<``) outside quotes in ``clean`` (text after :func:`_scan`), in
    order: the delimiter is the word after quote removal (any characters), ``quoted`` when
    any part of it was quoted (the body is then not expanded), ``strip`` for ``<<-``."""
    out: list[tuple[str, bool, bool]] = []
    quote = ""
    i, n = 0, len(clean)
    while i < n:
        char = clean[i]
        if quote:
            if char == "\\" and quote == '"':
                i += 2
                continue
            if char == quote:
                quote = ""
            i += 1
            continue
        if char == "\\":
            i += 2
            continue
        if char in "'\"":
            quote = char
            i += 1
            continue
        if clean.startswith("<<<", i):
            i += 3  # a here-string
            continue
        if not clean.startswith("<<", i):
            i += 1
            continue
        i += 2
        strip = i < n and clean[i] == "-"
        i += 1 if strip else 0
        while i < n and clean[i] in " \t":
            i += 1
        word: list[str] = []
        quoted = False
        while i < n and clean[i] not in " \t\n;&|<>()":
            char = clean[i]
            if char == "\\" and i + 1 < n:
                word.append(clean[i + 1])
                quoted = True
                i += 2
            elif char in "'\"":
                end = clean.find(char, i + 1)
                end = n if end < 0 else end
                word.append(clean[i + 1 : end])
                quoted = True
                i = end + 1
            else:
                word.append(char)
                i += 1
        if word or quoted:
            out.append(("".join(word), quoted, strip))
    return out


def _split(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def _shell(
    text: str,
    first: int,
    *,
    script: bool = True,
    depth: int = 0,
    written: _Files | None = None,
) -> Iterator[Command]:
    """The commands of shell text whose line ``i`` (0-based) is host line ``first + i``.
    ``script``: the text is one shell script (a quote may span lines, here-documents are
    read); else each line is a command of its own (a Makefile recipe line, a tox command).
    ``written``: the files the same shell wrote before this text (a CI job's earlier
    ``script:`` lines), updated as it writes more."""
    lines = text.split("\n")
    budget = DEFAULT_LIMITS.max_command_join_bytes
    aliases: dict[str, str] = {}  # ``alias NAME=VALUE`` earlier in this script
    loops: dict[str, list[str]] = {}  # ``for NAME in WORDS`` earlier in this script
    # the files this script writes (_writes), for the commands that run them: the host's
    # (one CI job's steps, a Dockerfile's RUN lines, a makefile's recipe lines write into
    # one file system), else this script's, else each line's (a shell of its own)
    shared = written if written is not None else _HOST_FILES.get()
    if shared is None and script:
        shared = _Files.of(text)
    i = 0
    while i < len(lines):
        start = i
        joined = lines[i]
        clean, state = _scan(joined)
        for _ in range(DEFAULT_LIMITS.max_command_join_lines):
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
        for delim, quoted, strip in heredoc_delimiters(clean) if script else ():
            body_start = i + 1
            j = body_start
            # only a line that is exactly the delimiter ends the body (``<<-``: after its
            # leading tabs); without one the body runs to the end of the text, as in bash
            while j < len(lines) and (lines[j].lstrip("\t") if strip else lines[j]) != delim:
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
        here = shared if shared is not None else _Files.of(joined)
        yield from _simple(words, line, heredocs, depth, aliases, loops=loops, written=here)


def _simple(
    words: list[str],
    line: int,
    heredocs: list[Stdin],
    depth: int,
    aliases: dict[str, str] | None = None,
    piped: bool = False,
    loops: dict[str, list[str]] | None = None,
    written: _Files | None = None,
) -> Iterator[Command]:
    """The simple commands of a split command line, and the commands inside them. A command
    whose first word is an alias the script defined earlier (``alias inst='pip install'``;
    sh, zsh and bash with ``expand_aliases`` expand them) is read as the alias's words. A
    command that runs a file named by the variable of a ``for NAME in WORDS`` loop earlier
    in the script (``for f in ci/*.sh; do bash "$f"; done``) is read once per word. A
    command that runs a file the script ``written`` earlier is read from what it wrote
    (:func:`_runs_written`)."""
    aliases = {} if aliases is None else aliases
    loops = {} if loops is None else loops
    command: list[str] = []
    printing: list[str] = []  # the command before this one (its output may be piped here)
    feeding: list[str] = []  # a shell whose script is the process substitution that follows
    pending = list(heredocs)
    output: _Written | None = None  # what the command before this one printed (_writes)
    grouped = False  # the command follows ``}`` or ``)``: its redirections are the group's
    for word in [*words, ";"]:
        # ``source <(cat FILE)``, ``bash <(cat FILE)``: the next command prints the script
        feeds = word == "<(" and bool(command) and _reads_substitution(command)
        if word == "(" and command and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\+?=", command[-1]):
            # an array (``A=(...)``, ``declare -a A=(...)``): ``$A`` is not one text known
            command[-1] = command[-1].rstrip("+=") + "+="
        if word in SEPARATORS or (not command and word in _KEYWORDS):
            if command and written is not None:
                command = _program_variable(command, written)
            if command and command[0] in aliases and depth >= DEFAULT_LIMITS.max_command_depth:
                yield _too_deep(line, f"{command[0]}={aliases[command[0]]}", command)
                command = []
                piped = word in ("|", "|&")
                continue
            if command and command[0] in aliases:
                try:
                    value = _split(aliases[command[0]])
                except ValueError:
                    value = ["$ALIAS"]
                rest = {k: v for k, v in aliases.items() if k != command[0]}
                yield from _simple(
                    [*value, *command[1:]], line, pending, depth + 1, rest, piped, loops, written
                )
                command = []
                piped = word in ("|", "|&")
                continue
            if command:
                if argv(command)[:1] == ["alias"]:
                    for definition in argv(command)[1:]:
                        name, eq, body = definition.partition("=")
                        if eq and name:
                            aliases[name] = body
                if command[0] == "for" and command[2:3] == ["in"]:
                    loops[command[1]] = command[3:]
                stdin = None
                for _ in range(command.count("<<")):
                    taken = pending.pop(0) if pending else None
                    stdin = stdin or taken
                ran = None
                if written is not None and written.texts:
                    with _prefixed(command, written):
                        ran = _runs_written(command, line, depth, written, stdin)
                    if ran is None:  # a project file, which may run what was written
                        yield from _runs_project(command, line, depth, written)
                if ran is not None:
                    yield from ran[0]  # what the script wrote into the file it runs
                if ran is None or ran[1]:
                    for each in _loop_runs(command, loops):
                        # ``for f in *.sh; do bash "$f"; done``: a file written here it may run
                        again = _runs_written(each, line, depth, written) if written else None
                        if again is not None:
                            yield from again[0]
                        yield Command(line, tuple(each), stdin=stdin, piped=piped)
                fed = output if piped else None
                if written is not None:
                    _read_names(command, fed, loops)
                    output = _writes(command, line, stdin, fed, written, grouped, loops)
                with _prefixed(command, written):
                    yield from _inner(command, line, depth, written)
                    for each in _started_files(command, written):
                        if depth >= DEFAULT_LIMITS.max_command_depth or written is None:
                            break
                        if each[0] == ".":
                            yield from _simple(each, line, [], depth + 1, written=written)
                        else:
                            yield from _site_file(each[1], line, depth, written)
                for each in [*_xargs_runs(command, fed, stdin), *_started_runs(command)]:
                    # ``echo gen.sh | xargs bash``: the commands xargs starts
                    if depth >= DEFAULT_LIMITS.max_command_depth:
                        yield _too_deep(line, " ".join(each), command)
                        break
                    yield from _simple(each, line, [], depth + 1, loops=loops, written=written)
                printed = _printed_into_shell(printing, command) if piped else None
                if feeding and printed is None:
                    printed = _printed_into_shell(command, feeding)
                feeding = ["sh"] if feeds else []
                if printed is not None:  # ``echo 'pip install x' | bash``
                    if depth >= DEFAULT_LIMITS.max_command_depth:
                        yield _too_deep(line, printed, command)
                    else:
                        yield from _shell(printed, line, depth=depth + 1, written=written)
                printing = command
                if stdin is not None and _shell_reads_stdin(command):
                    first = stdin.lines[0] if stdin.lines else line
                    if depth >= DEFAULT_LIMITS.max_command_depth:
                        yield _too_deep(first, stdin.text, command)
                    else:
                        yield from _shell(stdin.text, first, depth=depth + 1, written=written)
            grouped = word in ("}", ")")
            if command or word not in _KEYWORDS:
                piped = word in ("|", "|&")
            command = []
            continue
        command.append(word)


@contextlib.contextmanager
def _prefixed(command: list[str], written: _Files | None) -> Iterator[None]:
    """While the program ``command`` starts is read (``X=... bash -c '...'``, a written file
    it runs), the variables its leading ``NAME=VALUE`` words set hold those values (the
    command's own words were expanded before them: not here)."""
    k = next((k for k, w in enumerate(command) if not _assignment(w)), len(command))
    if written is None or k == 0 or k == len(command):
        yield
        return
    saved = dict(written.variables)
    for var, value in _assigned(command[:k], []):
        written.variables[var] = _expanded(value, written) if value is not None else None
    try:
        yield
    finally:
        written.variables = saved


def _program_variable(command: list[str], written: _Files) -> list[str]:
    """``command`` with its program given by a variable the script set to one text known
    (``S=bash; $S gen.sh``, ``PIP='pip install'; $PIP x``, after a wrapper: ``env $S``,
    ``$SUDO $S``) replaced by that text's words."""
    for _ in range(4):
        k = len(command) - len(argv(command))
        word = command[k] if k < len(command) else ""
        m = re.fullmatch(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))", word)
        value = written.variables.get((m.group(1) or m.group(2)) if m else "")
        if not value:
            break
        try:
            command = [*command[:k], *_split(value), *command[k + 1 :]]
        except ValueError:
            break
    return command


#: Tools that run the commands of a file they find by name in the working folder: its kind
#: (:func:`commands`) and its names, in their order.
_TOOL_FILES: dict[str, tuple[HostKind, tuple[str, ...]]] = {
    **dict.fromkeys(("npm", "yarn", "pnpm"), ("json", ("package.json",))),
    "tox": ("ini", ("tox.ini",)),
    "nox": ("python", ("noxfile.py",)),
    "just": ("lines", ("justfile", "Justfile", ".justfile")),
    "task": ("yaml", ("Taskfile.yml", "Taskfile.yaml", "taskfile.yml", "taskfile.yaml")),
}


#: Programs that start Python (its site files run), or run project files by name.
_PYTHON_TOOLS = frozenset({"pytest", "py.test", "pip", "pip3", "tox", "nox", "uv", "poetry"})
#: The git commands that run hooks.
_GIT_HOOKED = frozenset(
    {"commit", "merge", "push", "rebase", "checkout", "switch", "pull", "am", "cherry-pick"}
)


def _started_files(command: list[str], written: _Files | None) -> list[list[str]]:
    """The files a program runs on its own that the host wrote, as ``. FILE`` commands: a
    shell's ``$BASH_ENV``/``$ENV`` (set by the script, or for the command) and git's hooks
    (``.git/hooks/NAME``, run by ``git commit``, ``push``, ``merge``...)."""
    runs = argv(command)
    head = runs[0].rsplit("/", 1)[-1] if runs else ""
    if written is None or not runs or written.spent:
        return []  # past the written text a host may read: reported where a file runs
    if head in SHELLS:
        given = [w.partition("=")[2] for w in command if w.startswith(("BASH_ENV=", "ENV="))]
        names = [*given, *(written.variables.get(v) or "" for v in ("BASH_ENV", "ENV"))]
        return [[".", n] for n in dict.fromkeys(names) if n]
    if python_interpreter(head) or head in _PYTHON_TOOLS:
        # Python runs the site files on its path at start (``sitecustomize.py``, ``.pth``),
        # pytest the ``conftest.py`` files, pip installing a folder its ``setup.py``
        tool = runs[2] if python_interpreter(head) and runs[1:3] == ["-m", *runs[2:3]] else head
        tool = tool[2:] if python_interpreter(head) and tool.startswith("-m") else tool
        kinds: list[tuple[str, ...]] = [("sitecustomize.py", "usercustomize.py", ".pth")]
        kinds += [("conftest.py",)] if tool in ("pytest", "py.test") else []
        kinds += [("setup.py",)] if tool in ("pip", "pip3") and "install" in runs else []
        names = [n for n in written.texts if any(n.endswith(e) for k in kinds for e in k)]
        return [["python", n] for n in names[: DEFAULT_LIMITS.max_command_host_matches]]
    if head == "git" and set(runs[1:]) & _GIT_HOOKED:
        hooks = [[".", n] for n in written.texts if n.startswith(".git/hooks/")]
        return hooks[: DEFAULT_LIMITS.max_command_host_matches]
    return []


def _site_file(name: str, line: int, depth: int, written: _Files) -> Iterator[Command]:
    """What a Python file written here that Python, pytest or pip runs on its own runs
    (:func:`_started_files`): read as a written file Python runs; of a ``.pth`` file only its
    lines that start with ``import`` run (a text not known: fail closed)."""
    if not name.endswith(".pth"):
        found = _runs_written(["python3", name], line, depth + 1, written)
        yield from found[0] if found is not None else ()
        return
    texts = written.texts.get(name, ())
    if any(t.text is None or t.downloaded for t in texts):
        why = f"Python starts with {name!r}, a file written with text only known when it runs"
        yield Command(line, (), unread=why, text=name)
        return
    lines = [ln for t in texts for ln in (t.text or "").split("\n")]
    code = "\n".join(ln for ln in lines if ln.startswith(("import ", "import\t")))
    if code:
        yield Command(line, ("python3", "-"), stdin=Stdin(code, (), False))


def _started_runs(command: list[str]) -> list[list[str]]:
    """The commands ``find ... -exec CMD {} ;`` (``-execdir``, ``-ok``) and GNU ``parallel
    CMD ::: ARGS`` start, as :func:`_xargs_runs` gives xargs': find's ``{}`` is the name its
    ``-name``/``-path`` gives (else any name, ``*``), parallel's each argument after
    ``:::`` (in place of ``{}``, else appended)."""
    runs = argv(command)
    head = runs[0].rsplit("/", 1)[-1] if runs else ""
    out: list[list[str]] = []
    if head == "find":
        names = [runs[k + 1] for k, w in enumerate(runs[:-1]) if w in ("-name", "-path")]
        found = names[-1] if names else "*"
        for k, word in enumerate(runs):
            if word in ("-exec", "-execdir", "-ok", "-okdir"):
                end = next((e for e in range(k + 1, len(runs)) if runs[e] in (";", "+")), None)
                started = runs[k + 1 : end]
                out.append([found if w == "{}" else w for w in started])
    elif head == "parallel" and ":::" in runs:
        k = runs.index(":::")
        start = _skip_options(runs, 1, frozenset({"-j", "-S", "--jobs", "-I", "-X"}))
        template, args = runs[start:k], [w for w in runs[k + 1 :] if w not in (":::", "::::")]
        for arg in args[: DEFAULT_LIMITS.max_command_host_matches]:
            placed = [arg if w == "{}" else w for w in template]
            out.append(placed if "{}" in template else [*template, arg])
    return [each for each in out if each]


#: ``xargs`` options that take a value (attached or as the next word), and those whose
#: value may only be attached (``-i[R]``, ``-l[N]``, ``-e[EOF]``).
_XARGS_VALUES = frozenset("InLPdaEs")
_XARGS_ATTACHED = frozenset("ile")
_XARGS_LONG = frozenset(
    {"--max-args", "--max-lines", "--max-procs", "--delimiter", "--arg-file", "--eof"}
    | {"--max-chars", "--process-slot-var"}
)
#: What xargs gives the command it runs when its input is not known.
_XARGS_INPUT = "$XARGS_INPUT"


def _xargs_runs(command: list[str], fed: _Written | None, stdin: Stdin | None) -> list[list[str]]:
    """The commands ``xargs [options] COMMAND ARGS`` starts: COMMAND ARGS with each item of
    its input added (``-I R``/``-i``/``--replace``: R replaced in ARGS by each line). Its
    input is known when it is a literal (``echo a.sh | xargs bash``, a here-document): each
    word (each line with ``-I``/``-L``) is read as an item, each in a command of its own
    (reading an operand too many only adds findings). Else (``find ... | xargs bash``, ``-a
    FILE``) an item is the computed word :data:`_XARGS_INPUT`: a shell run on it fails
    closed as any script whose name the shell computes (:func:`unread_host`), Python run on
    it as a file not known (a makefile so named is matched as any computed makefile name);
    the other programs take it as data, so they are left to the readers as they are written
    (an installer reading standard input is read as such). Empty for another command."""
    runs = argv(command)
    if not runs or runs[0].rsplit("/", 1)[-1] != "xargs":
        return []
    words: list[str] = []
    for k, word in enumerate(runs):
        if word not in _REDIRECT_OPS and (not k or runs[k - 1] not in _REDIRECT_OPS):
            words.append(word)
    replace, lines, from_file = None, False, False
    k = 1
    while k < len(words) and words[k].startswith("-") and words[k] != "-":
        option = words[k]
        k += 1
        if option == "--":
            break
        if option.startswith("--"):
            name, eq, value = option.partition("=")
            if name == "--replace":
                replace, lines = (value if eq else "{}"), True
            elif name in _XARGS_LONG and not eq:
                k += 1
            from_file = from_file or name == "--arg-file"
            lines = lines or name == "--max-lines"
            continue
        letter, rest = option[1:2], option[2:]
        if letter in _XARGS_ATTACHED:
            if letter == "i":
                replace, lines = rest or "{}", True
            lines = lines or letter == "l"
        elif letter in _XARGS_VALUES:
            value = rest or (words[k] if k < len(words) else "")
            k += 0 if rest else 1
            if letter == "I":
                replace, lines = value, True
            from_file = from_file or letter == "a"
            lines = lines or letter == "L"
    args = words[k:] or ["echo"]
    text = None if from_file else (fed.text if fed is not None else None)
    if text is None and stdin is not None and not from_file:
        text = stdin.text
    items = [ln.strip() for ln in (text or "").split("\n") if ln.strip()]
    if not lines:
        items = [w for ln in items for w in ln.split()]
    known = text is not None and len(items) <= DEFAULT_LIMITS.max_command_host_matches
    if not known:
        items = [_XARGS_INPUT]
    out = [[a.replace(replace, item) for a in args] if replace else [*args, item] for item in items]
    if not out:
        return [args]  # no input: the command runs once, as written (unless ``-r``)
    started = argv(out[0])
    if not known and host_file(out[0]) is None and not python_interpreter((started or [""])[0]):
        return []
    return out


def _loop_runs(command: list[str], loops: dict[str, list[str]]) -> list[list[str]]:
    """``command``, or, when the file it runs (:func:`host_file`) is nothing but the
    variable of a ``for`` loop (``bash "$f"``), the command once per word of the loop (at
    most ``Limits.max_command_host_matches``; more, or no loop: the command as written)."""
    ran = host_file(command) if loops else None
    m = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", ran[1]) if ran is not None else None
    values = loops.get(m.group(1), []) if m is not None else []
    if not values or len(values) > DEFAULT_LIMITS.max_command_host_matches or ran is None:
        return [command]
    return [[value if word == ran[1] else word for word in command] for value in values]


def _reads_substitution(command: list[str]) -> bool:
    """Whether ``command`` (``source``, ``.``, a shell given no script) runs as a script
    the process substitution that follows it (``source <(cat FILE)``)."""
    runs = argv(command)
    if runs in (["."], ["source"]):
        return True
    return len(runs) >= 1 and runs[0].rsplit("/", 1)[-1] in SHELLS and host_file(runs) is None


def _printed_into_shell(before: list[str], command: list[str]) -> str | None:
    """The script a shell reads on a pipe from ``echo``/``printf`` (``echo 'pip install x' |
    bash``): the words printed, joined; None when ``command`` is not a shell reading its
    standard input or ``before`` does not print."""
    runs, printer = argv(command), argv(before)
    if not runs or not printer or runs[0].rsplit("/", 1)[-1] not in SHELLS:
        return None
    if host_file(command) is not None or _shell_script(runs[1:]) is not None:
        return None  # the shell runs a file or its -c text, not its standard input
    if printer[0] in ("echo", "printf"):
        return _printed(printer)
    if printer[0] == "cat":
        # ``cat FILE | sh``, ``source <(cat FILE)``: the shell runs FILE's text, as ``. FILE``
        files = [w for w in printer[1:] if not w.startswith("-") or w == "-"]
        return "\n".join(". " + shlex.quote(f) for f in files if f != "-") or None
    return None


#: A conversion of a ``printf`` format (``%s``, ``%-5s``, ``%b``; ``%%`` is a ``%``).
_PRINTF_DIRECTIVE = re.compile(r"%(?:%|[-+ #0]*[0-9]*(?:\.[0-9]*)?([A-Za-z]))")


def _printed(printer: list[str]) -> str | None:
    """What ``echo WORDS``/``printf FORMAT ARGS`` prints (``printer`` is its :func:`argv`),
    read as text: echo's words joined, their backslash escapes decoded (as dash's ``echo``
    and ``echo -e`` do: reading a line too many only adds findings); printf's format with
    its escapes decoded and its conversions given the arguments in turn, reused while
    arguments are left (as printf does); None for another command."""
    if printer[:1] == ["echo"]:
        said = " ".join(w for w in printer[1:] if not re.fullmatch(r"-[neE]+", w))
        said = said.split("\\c", 1)[0]  # ``\c``: nothing more is printed, no newline
        # echo's octal escape is ``\0NNN`` (``$'...'``'s is ``\NNN``)
        return _ansi_c(re.sub(r"\\0([0-7]{1,3})", r"\\\1", said))
    words = printer[2:] if printer[1:2] == ["--"] else printer[1:]
    if printer[:1] != ["printf"] or not words or words[0].startswith("-v"):
        return None
    form, args = words[0], words[1:]
    out: list[str] = []
    for _ in range(64):
        used, last = 0, 0
        for m in _PRINTF_DIRECTIVE.finditer(form):
            out.append(_ansi_c(form[last : m.start()]))
            last = m.end()
            if m.group() == "%%":
                out.append("%")
                continue
            value = args[used] if used < len(args) else ""
            used += 1
            value = value[:1] if m.group(1) == "c" else value  # ``%c``: its first character
            if m.group(1) == "b" and "\\c" in value:  # ``%b`` of ``\c``: printing stops
                out.append(_ansi_c(value.split("\\c", 1)[0]))
                return "".join(out)
            out.append(_ansi_c(value) if m.group(1) == "b" else value)
        out.append(_ansi_c(form[last:]))
        args = args[used:]
        if not args or not used:
            break
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Written:
    """What a shell script wrote into a file it may run later (:func:`_writes`): ``text``
    (None when the script computes it: a command's output), with the host line of each of
    its lines and whether the shell expanded ``$`` in it, the files whose text was copied in
    before it (``cat a.sh > b.sh``, ``>>`` onto a file not written here), and whether it
    holds a download too (``curl URL > x.sh``; ``text`` is what was written beside it)."""

    text: str | None
    lines: tuple[int, ...] = ()
    expanded: bool = False
    sources: tuple[str, ...] = ()
    #: What is downloaded is not the project's: a shell running it is read as ``curl URL |
    #: bash`` is (what it runs is not read); Python running it is not analysed (fail closed,
    #: as ``curl URL | python``).
    downloaded: bool = False


#: A download's text (:attr:`_Written.downloaded`).
_DOWNLOAD = _Written("", downloaded=True)


#: Programs that download into the file their option names, and that option (short, long).
_DOWNLOADERS = {"curl": ("o", "--output"), "wget": ("O", "--output-document")}


#: Characters of project files one host's runs may read again for what it wrote
#: (:func:`_runs_project`), however short the host is.
_INLINE_BUDGET = 1 << 22


@dataclass
class _Files:
    """The files a shell script wrote (:func:`_writes`): the texts each may hold, by name,
    and how many more characters of such texts may be read (each command that runs a file
    reads its texts again, and they may run what they wrote: a bound on the work, as many
    characters as the script has, at least :data:`_WRITTEN_BUDGET`; past it a file run is
    not read and fails closed, reported once)."""

    texts: dict[str, tuple[_Written, ...]] = field(default_factory=dict)
    left: int = 0
    spent: bool = False
    #: Names in ``texts`` that are globs: written to a loop variable's name whose values
    #: are not all known (:func:`_write_names`); a file run that matches one may be it.
    patterns: set[str] = field(default_factory=set)
    #: The project files read for what they run that the host wrote (:func:`_runs_project`).
    inlined: set[str] = field(default_factory=set)
    #: What each Python file run writes (:func:`_python_writes`), read once per host.
    python: dict[str, list[str]] = field(default_factory=dict)
    #: The modules each project Python file run, or each Python text, imports
    #: (:func:`_imports_written`), parsed once.
    imports: dict[str, list[str]] = field(default_factory=dict)
    #: Characters of such project files that may still be read (past it: fail closed).
    inline_left: int = _INLINE_BUDGET
    #: The names in ``texts`` in a folder by their last part (a program run by its bare
    #: name may be one, the folder on PATH: :func:`_read_written`).
    last: dict[str, dict[str, None]] = field(default_factory=dict)
    #: Variables the host's scripts set (:func:`_assigned`), with their value when it is
    #: one text known (None: computed, or set to more than one).
    variables: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def of(cls, text: str) -> _Files:
        return cls(left=max(len(text), _WRITTEN_BUDGET))


#: Characters of written text any script may read (:class:`_Files`), however short it is.
_WRITTEN_BUDGET = 1 << 16
#: The files the host being read (:func:`commands`) wrote so far, shared by all its scripts.
_HOST_FILES: contextvars.ContextVar[_Files | None] = contextvars.ContextVar(
    "_HOST_FILES", default=None
)


#: Redirections that write a file (the file is the next word), and the other redirections
#: (their next word is a file read or a descriptor, not a word of the command).
_WRITE_OPS = frozenset({">", ">>", ">|", "&>", "&>>"})
_REDIRECT_OPS = _WRITE_OPS | {"<", "<<", "<<-", "<<<", ">&", "<&", "<>"}


def _written_name(target: str) -> str | None:
    """The name a script writes or runs as the key of what it wrote: ``./x.sh`` and
    ``"$PWD/x.sh"`` are ``x.sh``; None for a name the shell computes or a device."""
    target = _PWD.sub("", target)
    if not target or computed_name(target) or target.startswith(("/dev/", "~")):
        return None
    return posixpath.normpath(target)


def _spelled(target: str, written: _Files | None = None) -> str | None:
    """A name :func:`_written_name` does not know (``~/x.sh``, ``"$HOME/x.sh"``) as the key
    of what a script wrote there: the same spelling is the same file (for a run, only one
    so written); None for a device or a name the shell computes by a command."""
    if not target or target.startswith("/dev/") or re.search(r"\$\(|`", target):
        return None
    return target if written is None or target in written.texts else None


#: The working folder at the start of a name (``$PWD/x``, ``$(pwd)/x``).
_PWD = re.compile(r"^(?:\$\{?PWD\}?|\$\(\s*pwd\s*\)|`\s*pwd\s*`)/+")


def _writes(
    command: list[str],
    line: int,
    stdin: Stdin | None,
    piped: _Written | None,
    written: _Files,
    grouped: bool = False,
    loops: dict[str, list[str]] | None = None,
) -> _Written:
    """Record in ``written`` the files ``command`` writes by redirection (``>``, ``>>``,
    ``&>``), ``tee FILE``, ``cp``/``mv``/``ln`` or a download (``curl -o``, ``wget -O``), with
    what it writes there; return what it prints (for the command it is piped into). Known:
    ``echo``/``printf`` of words without command substitution, ``cat``/``tee`` given a
    here-document or a pipe from such a command, ``cat FILE`` (the file's text), nothing
    (``: > x``, ``> x``); anything else is computed, also the output of a group (``{ ...; } >
    x``, ``grouped``) and ``exec > x``. A write is one more text the file may hold (it may
    sit in a branch not taken, a ``trap``, a heredoc never run): the texts written before are
    kept, at most ``Limits.max_command_host_matches`` (more: one not known). A name with the
    variable of a ``for`` loop or a ``read`` (``loops``) is each name it may be
    (:func:`_write_names`)."""
    loops = {} if loops is None else loops
    words: list[str] = []
    targets: list[tuple[str, bool]] = []  # (file, appended)
    fd_other = False
    k = 0
    while k < len(command):
        word = command[k]
        if word in _REDIRECT_OPS and k + 1 < len(command):
            # ``>& FILE`` (not a descriptor) writes stdout and stderr into FILE, as ``&>``
            if word in _WRITE_OPS or (
                word == ">&" and not re.fullmatch(r"[0-9]+-?|-", command[k + 1])
            ):
                # ``2> f``: what is written is not the output read below
                fd_other = fd_other or (bool(words) and words[-1] in ("2", "3", "4", "5"))
                targets.append((command[k + 1], word.endswith(">>")))
            elif word == "<":
                words.append(command[k + 1])  # ``cat < a.sh``: read as ``cat a.sh``
            k += 2
            continue
        words.append(word)
        k += 1
    runs = argv(words)
    head = runs[0].rsplit("/", 1)[-1] if runs else ""
    for var, value in _assigned(words, runs):
        # the shell expands the value as it assigns it (``B="$A x"``, ``X=$X``)
        value = _expanded(value, written) if value is not None else None
        was = written.variables.get(var, value)
        written.variables[var] = value if was == value else None
        if runs[:1] not in (["for"], ["read"], ["getopts"]) and var in loops:
            # ``f=x.sh`` after ``for f in ...``: no longer the loop's
            written.variables[var] = value
            del loops[var]
    if head == "tee":
        names = [w for w in runs[1:] if not w.startswith("-")]
        targets.extend((w, any(o in ("-a", "--append") for o in runs[1:])) for w in names)
    operands = [w for w in runs[1:] if not w.startswith("-")]
    if head in ("cp", "mv", "ln", "install") and len(operands) > 2:
        # ``install -m 755 a b``, ``cp a b DIR``: the last operand is written (fail closed)
        for name in _write_names(operands[-1], loops, written, False):
            _may_hold(written, name, (_Written(None),))
    if head == "dd":
        # ``dd of=x.sh``: what it copies is not read here (fail closed)
        for word in runs[1:]:
            for name in _write_names(word[3:], loops, written, False) if word[:3] == "of=" else ():
                _may_hold(written, name, (_Written(None),))
    if head in ("cp", "mv", "ln", "install") and len(operands) == 2:
        # ``cp a.sh b.sh``: b.sh holds what a.sh holds (``-t DIR``: three words, left alone)
        given = operands[0]
        symbolic = head == "ln" and any(
            re.fullmatch(r"-[a-zA-Z]*s[a-zA-Z]*|--symbolic", w) for w in runs
        )
        if symbolic and not given.startswith(("/", "~", "$")):
            # ``ln -s ../a.sh d/b.sh``: the link's target is found from the link's folder
            given = posixpath.join(posixpath.dirname(operands[1]), given)
        source = _written_name(given)
        for name in _write_names(operands[1], loops, written, False):
            copied = written.texts.get(source or "", (_Written("", sources=(given,)),))
            _may_hold(written, name, copied if source is not None else (_Written(None),))
    if _edits_in_place(runs):
        # ``sed -i``, ``perl -pi``: the files it edits hold text not known here (fail closed)
        for word in operands:
            for name in _write_names(word, loops, written, False):
                _may_hold(written, name, (_Written(None),))
    for target in _python_writes(runs, stdin, written):
        # ``python -c "open('x.sh', 'w').write(...)"``: what Python writes is not read here
        for name in _write_names(target, loops, written, False):
            _may_hold(written, name, (_Written(None),))
    if head in _DOWNLOADERS:
        # ``curl -o x.sh URL``, ``wget -O x.sh URL``: what it fetches is not known
        option, long = _DOWNLOADERS[head]
        for k, word in enumerate(runs[1:], 1):
            value = None
            if word.startswith(long + "="):
                value = word.partition("=")[2]
            elif word == long or re.fullmatch(f"-[A-Za-z]*{option}", word):
                value = runs[k + 1] if k + 1 < len(runs) else None
            elif (m := re.fullmatch(f"-[A-Za-z]*{option}(.+)", word)) is not None:
                value = m.group(1)
            for name in _write_names(value or "", loops, written, False) if value != "-" else ():
                _may_hold(written, name, (_DOWNLOAD,))
    printed: _Written = _Written(None)
    if (not words and not grouped) or head in (":", "true"):
        printed = _Written("")
    elif head in _DOWNLOADERS:
        printed = _DOWNLOAD  # ``curl URL > x.sh``, ``wget -qO- URL | tee x.sh``
    elif head in ("echo", "printf"):
        text = _printed(runs)
        text = _expanded(text, written) if text is not None else None
        # echo ends what it prints with a newline (not ``echo -n``), printf only where its
        # format says (``printf 'pip ' > x; echo install ... >> x`` writes one line)
        options = itertools.takewhile(lambda w: re.fullmatch(r"-[neE]+", w), runs[1:])
        plain = not any("n" in w for w in options) and "\\c" not in " ".join(runs)
        ends = "\n" if head == "echo" and plain else ""
        if text is not None:
            printed = _Written(text + ends, (line,) * (text.count("\n") + 1), "$" in text)
    elif head in ("cat", "tee"):
        files = [w for w in runs[1:] if not w.startswith("-")] if head == "cat" else []
        if files and all(_written_name(f) is not None for f in files):
            printed = _Written("")
            for f in files:
                # a file written here holds what was written (one text known, or not known)
                held = written.texts.get(_written_name(f) or "", (_Written("", sources=(f,)),))
                printed = _joined(printed, held[0] if len(held) == 1 else _Written(None))
        elif not files and stdin is not None:
            body = _expanded(stdin.text, written) if stdin.expanded else stdin.text
            lines = stdin.lines
            if body is not None and body.count("\n") != stdin.text.count("\n"):
                lines = (lines[0] if lines else line,) * (body.count("\n") + 1)
            printed = _Written(body, lines, stdin.expanded)
        elif not files and piped is not None:
            printed = piped
    for target, appended in targets:
        for name in _write_names(target, loops, written, True):
            what = _Written(None) if fd_other else printed
            if not appended:
                _may_hold(written, name, (what,))
                continue
            # appended to each text the file may hold (one not written here: the project's)
            before = written.texts.get(name, (_Written("", sources=(name,)),))
            written.texts[name] = ()
            _may_hold(written, name, tuple(_joined(b, what) for b in before))
    return printed


#: Programs that edit the files they are given in place, and the option that says so.
_IN_PLACE = {
    "sed": re.compile(r"-[nErsuzE]*i.*|--in-place(?:=.*)?"),
    "perl": re.compile(r"-[A-Za-z0-9]*i.*"),
    "ruby": re.compile(r"-[A-Za-z0-9]*i.*"),
    "awk": re.compile(r"inplace|-iinplace"),
    "gawk": re.compile(r"inplace|-iinplace"),
    **dict.fromkeys(("ed", "ex", "vi", "vim"), re.compile(r".*")),  # editors: any use
}


def _edits_in_place(runs: list[str]) -> bool:
    """Whether the command edits its file operands in place (:data:`_IN_PLACE`)."""
    head = runs[0].rsplit("/", 1)[-1] if runs else ""
    option = _IN_PLACE.get(head)
    return option is not None and any(option.fullmatch(w) for w in runs[1:])


#: Python calls whose string arguments name a file they write (``open``: unless its mode
#: is a literal that only reads), or a path whose methods may write it.
_PY_WRITERS = frozenset(
    {"open", "Path", "PurePath", "PosixPath", "write_text", "write_bytes", "copy", "copy2"}
    | {"copyfile", "copytree", "move", "rename", "renames", "replace", "symlink", "link"}
    | {"symlink_to", "hardlink_to", "urlretrieve", "fdopen", "NamedTemporaryFile"}
)


def _python_writes(runs: list[str], stdin: Stdin | None, written: _Files) -> list[str]:
    """The file names the Python code a command runs writes: ``python -c CODE``, Python
    reading a here-document (``python3 - <<EOF``) or ``python FILE`` (what the script wrote
    there, else the project's file, :data:`_INCLUDE`), its string literals given to a call
    that may write a file (:data:`_PY_WRITERS`). A name Python computes is not known (the
    code analysis reads the code itself)."""
    if not runs or not python_interpreter(runs[0]):
        return []
    code = stdin.text if stdin is not None else None
    k = 1
    while k < len(runs):
        word = runs[k]
        if word.startswith("-c"):
            code = word[2:] or (runs[k + 1] if k + 1 < len(runs) else "")
            break
        if word.startswith("-m"):
            return []
        if not word.startswith("-"):
            name = _written_name(word)
            held = written.texts.get(name or "", ())
            if name is None or held:
                # a file the script wrote: what it wrote (a text not known writes nothing
                # known; it fails closed where it runs)
                return [n for t in held if t.text for n in _python_names(t.text)]
            if name not in written.python:
                include = _INCLUDE.get()
                text = include(name) if include is not None else None
                written.python[name] = _python_names(text) if text else []
            return written.python[name]
        k += 2 if word in ("-W", "-X") else 1
    return _python_names(code) if code else []


def _python_tree(code: str) -> ast.AST | None:
    """Python ``code`` parsed, or None where Python itself could not run it."""
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _python_names(code: str) -> list[str]:
    """The string literals Python ``code`` gives a call that may write a file."""
    tree = _python_tree(code)
    if tree is None:
        return []
    out: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if called not in _PY_WRITERS:
            continue
        mode = node.args[1] if called == "open" and len(node.args) > 1 else None
        mode = next((k.value for k in node.keywords if k.arg == "mode"), mode)
        if isinstance(mode, ast.Constant) and not re.search(r"[wax+]", str(mode.value)):
            continue  # ``open('x', 'r')`` reads
        for arg in node.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value:
                out.append(arg.value)
    return out


def _expanded(text: str, written: _Files) -> str | None:
    """Text the shell prints or writes, with the variables the script set (:func:`_assigned`)
    replaced by their values (``X='...'; echo "$X" > x.sh``, ``printf -v X``); None when the
    shell computes it: a command substitution, or such a variable whose value is not one
    text known (``read X``, a loop's, ``X=$(cmd)``, set twice) or changed (``${X%.sh}``). A
    variable the script did not set (``$HOME``, ``$GITHUB_SHA``) stays in the text, where the
    readers fail closed on it as a word. Quotes are not known here: ``'$X'`` is replaced too."""
    if re.search(r"\$\(|`", text):
        return None
    for _ in range(4):
        used = [
            m for m in _VARIABLE.finditer(text) if (m.group(1) or m.group(2)) in written.variables
        ]
        if not used:
            return text
        out, last, size = [], 0, len(text)
        for m in used:
            value = written.variables[m.group(1) or m.group(2)]
            plain = m.group(2) is not None or m.group() == "${" + m.group(1) + "}"
            size += len(value or "")
            if value is None or not plain or size > _WRITTEN_BUDGET:
                return None  # not known, or past what any script may read
            out.append(text[last : m.start()] + value)
            last = m.end()
        text = "".join(out) + text[last:]
        if len(text) > _WRITTEN_BUDGET or re.search(r"\$\(|`", text):
            return None
    return None


#: Commands that set the variables their ``NAME=VALUE`` words name.
_DECLARERS = frozenset({"export", "local", "declare", "typeset", "readonly"})


def _assigned(words: list[str], runs: list[str]) -> list[tuple[str, str | None]]:
    """The shell variables a command sets, each with its value when it is known:
    ``NAME=VALUE`` alone (not before a program) and ``export``/``local``/``declare``
    ``NAME=VALUE`` (VALUE; ``+=``: not known), ``printf -v NAME FORMAT ARGS`` (what printf
    prints), and not known: ``read NAME...``, ``mapfile``/``readarray NAME``, ``for NAME
    in``, ``getopts OPTS NAME``."""
    name = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

    def pairs(given: list[str]) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for w in given:
            if _assignment(w):
                var, _, value = w.partition("=")
                # ``+=`` and an element (``A[1]=``): what the variable holds is not one text
                whole = var.endswith(("+", "]"))
                out.append((re.split(r"[+\[]", var, maxsplit=1)[0], None if whole else value))
        return out

    if not runs:
        return pairs(words)
    head, rest = runs[0], runs[1:]
    if head in _DECLARERS:
        return pairs(rest)
    if head == "printf":
        for k, w in enumerate(rest):
            var = rest[k + 1] if w == "-v" and k + 1 < len(rest) else w[2:] if w[:2] == "-v" else ""
            if name.fullmatch(var):
                shown = _printed(["printf", *rest[k + (2 if w == "-v" else 1) :]])
                return [(var, shown)]
        return []
    if head in ("read", "mapfile", "readarray"):
        found = rest[_skip_options(rest, 0, _READ_VALUES) :]
        return [(w, None) for w in found if name.fullmatch(w)]
    if head in ("for", "getopts") and rest:
        return [(rest[0] if head == "for" else rest[-1], None)]
    return []


#: A shell variable in a word (``$f``, ``${f}``, ``${f%.txt}``).
_VARIABLE = re.compile(r"\$\{[#!]?([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _write_names(
    target: str, loops: dict[str, list[str]], written: _Files, spelled: bool
) -> list[str]:
    """The keys of what a script writes to ``target`` (:func:`_written_name`; ``spelled``:
    else :func:`_spelled`). A name with the variable of a ``for NAME in WORDS`` loop or a
    ``read NAME`` (``loops``: its words, or the lines a literal piped into it) is each name
    it may be, the variable replaced by each word; a word the shell computes (``*.txt``,
    ``$(ls)``, what ``read`` got from a command) makes the name a glob
    (:attr:`_Files.patterns`: a file run that matches it may be it)."""
    used = [m.group(1) or m.group(2) for m in _VARIABLE.finditer(target)]
    # a variable the script set to one known text is that text (``OUT=gen.sh; ... > $OUT``)
    given = {u: [v] for u in used if u not in loops and (v := written.variables.get(u))}
    loops = {**loops, **given}
    # a name a command substitution or a positional parameter gives (``> "$(echo x.sh)"``,
    # a function's ``> "$1"``) may be any file that fits it, but a fresh temporary file's
    # (``$(mktemp)``, never run by that name)
    substituted = bool(re.search(r"\$\(|`|\$\{?[0-9@*]", target)) and not re.fullmatch(
        r"\$\(\s*mktemp\b[^()`]*\)|`\s*mktemp\b[^`]*`", target
    )
    if not any(u in loops for u in used) and not substituted:
        name = _written_name(target) or (_spelled(target) if spelled else None)
        return [name] if name is not None else []
    names = [target]
    for var in dict.fromkeys(u for u in used if u in loops):
        values = loops[var] or ["*"]
        # ``${f%.txt}`` and the like: a value changed by the shell (a glob)
        changed = re.compile(rf"\$\{{[#!]?{var}[^A-Za-z0-9_}}][^}}]*\}}")
        named = re.compile(rf"\$\{{{var}\}}|\${var}(?![A-Za-z0-9_])")
        names = [
            named.sub(v.replace("\\", "\\\\"), changed.sub("*", n)) for n in names for v in values
        ]
        if len(names) > DEFAULT_LIMITS.max_command_host_matches:
            names = [_HOST_WILD.sub("*", target)]
    out: list[str] = []
    for name in dict.fromkeys(names):
        known = _written_name(name)
        if known is not None:
            out.append(known)
            continue
        pattern = _HOST_WILD.sub("*", _PWD.sub("", name))
        if pattern.startswith(("/dev/", "~")):
            continue
        if re.search(r"[()`]", pattern):
            # a substitution nested in another: any name ending as the name does after it
            pattern = "*" + re.split(r"[()`'\"]", pattern)[-1]
        glob = posixpath.normpath(pattern)
        if glob not in written.patterns and len(written.patterns) >= _PATTERNS:
            # past the bound, any name: each file run may hold what such names hold
            glob = "*"
            written.texts[glob] = (_Written(None),)
        written.patterns.add(glob)
        out.append(glob)
    return out


#: Globs one host's writes may make (:attr:`_Files.patterns`; each file run is matched
#: against them); past it, a glob written is any name, holding text not known.
_PATTERNS = DEFAULT_LIMITS.max_command_host_files


#: ``read`` options that take a value.
_READ_VALUES = frozenset({"-p", "-d", "-n", "-N", "-t", "-u", "-a", "-i"})


def _read_names(command: list[str], piped: _Written | None, loops: dict[str, list[str]]) -> None:
    """Record the variables ``read NAME...`` sets (``echo a.sh | while read f``), as a
    ``for`` loop's are: their values are the lines of what a literal piped into it printed
    (its words, for more than one name); else not known (``[]``)."""
    runs = argv(command)
    if runs[:1] != ["read"]:
        return
    names = runs[_skip_options(runs, 1, _READ_VALUES) :]
    names = [n for n in names if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)]
    text = piped.text if piped is not None else None
    lines = [ln.strip() for ln in (text or "").split("\n") if ln.strip()]
    values = lines if len(names) == 1 else [w for ln in lines for w in ln.split()]
    for name in names:
        known = text is not None and len(values) <= DEFAULT_LIMITS.max_command_host_matches
        loops[name] = values if known else []


def _joined(before: _Written, after: _Written) -> _Written:
    """The text of a file ``before`` with ``after`` appended to it (``>>``)."""
    if before.text is None or after.text is None:
        return _Written(None)
    return _Written(
        before.text + after.text,
        before.lines + after.lines,
        before.expanded or after.expanded,
        before.sources + after.sources,
        before.downloaded or after.downloaded,
    )


def _may_hold(written: _Files, name: str, texts: tuple[_Written, ...]) -> None:
    """Add ``texts`` to those the file ``name`` may hold (:func:`_writes`)."""
    if name.partition("/")[2]:
        written.last.setdefault(name.rsplit("/", 1)[-1], {})[name] = None
    found = tuple(dict.fromkeys((*written.texts.get(name, ()), *texts)))
    if len(found) > DEFAULT_LIMITS.max_command_host_matches:
        found = (_Written(None),)
    written.texts[name] = found


#: The names make looks for its makefile by, in its order.
_MAKEFILE_NAMES = ("GNUmakefile", "makefile", "Makefile")


#: The text of a project file by name (:func:`commands`' ``include``), for the host read.
_INCLUDE: contextvars.ContextVar[Callable[[str], str | None] | None] = contextvars.ContextVar(
    "_INCLUDE", default=None
)
#: While a project file is read for what it runs that the host wrote (:func:`_runs_project`):
#: where those commands go (the rest of its commands are read where it is read itself).
_COLLECT: contextvars.ContextVar[list[Command] | None] = contextvars.ContextVar(
    "_COLLECT", default=None
)


def _runs_project(command: list[str], line: int, depth: int, written: _Files) -> Iterator[Command]:
    """What a project file ``command`` runs (``bash tools/x.sh``, ``make``, ``make -f x.mk``)
    runs or includes of the files the host wrote before (``echo ... > gen.sh; bash
    tools/x.sh`` where x.sh runs gen.sh; the Makefile's ``include a.inc`` of a written
    a.inc): the project file's text (``include``, as :func:`commands` was given it) is read
    with what the host wrote, and only the commands read from written files are kept (its
    own are read where it is read as a host). Each file once per state of what was
    written, at most :data:`_INLINE_BUDGET` characters per host (past it: fail closed,
    reported once)."""
    include = _INCLUDE.get()
    runs = argv(command)
    if include is None or not runs:
        return
    ran = host_file(command)
    if ran is None and _is_make(runs[0]):
        folder = _make_options(command)[0]
        ran = ("make", posixpath.join(folder, "Makefile"))
    if ran is None or ran[0] not in ("shell", "make") or computed_name(ran[1]):
        return
    name = _written_name(ran[1])
    if name is None or name in written.texts:
        return
    key = f"{ran[0]}:{name}:{sum(len(v) for v in written.texts.values())}"
    if key in written.inlined:
        return
    written.inlined.add(key)
    if depth >= DEFAULT_LIMITS.max_command_depth:
        return  # the readers read it as a host of its own, deep enough
    texts = [include(n) for n in ((name,) if ran[0] == "shell" else _make_names(name))]
    text = next((t for t in texts if t), None)
    if text is None:
        return
    written.inline_left -= len(text)
    if written.inline_left < 0:
        if "" not in written.inlined:
            written.inlined.add("")  # reported once
            why = f"runs {name!r} after writing files, past the project text read for them"
            yield Command(line, (), unread=why, text=" ".join(command))
        return
    outer = _COLLECT.get()
    collected: list[Command] = []
    token = _COLLECT.set(collected)
    try:
        if ran[0] == "shell":
            for _ in _shell(text, line, depth=depth + 1, written=written):
                pass
        else:
            for _ in _make(text, include, depth + 1, written):
                pass
    finally:
        _COLLECT.reset(token)
    found = list(_relined(iter(collected), line))
    if outer is not None:
        outer.extend(found)
    else:
        yield from found


def _make_names(name: str) -> tuple[str, ...]:
    """The makefiles make looks for where ``name`` (a plain ``make``'s ``Makefile``) is."""
    folder = posixpath.dirname(name)
    if posixpath.basename(name) != "Makefile":
        return (name,)
    return tuple(posixpath.join(folder, m) for m in _MAKEFILE_NAMES)


def _runs_written(
    command: list[str], line: int, depth: int, written: _Files, stdin: Stdin | None = None
) -> tuple[list[Command], bool] | None:
    """:func:`_read_written`; while a project file is read for what it runs that the host
    wrote (:func:`_runs_project`), its commands are collected there."""
    collect = _COLLECT.get()
    token = _COLLECT.set(None)
    try:
        found = _read_written(command, line, depth, written, stdin)
    finally:
        _COLLECT.reset(token)
    if found is not None and collect is not None:
        collect.extend(found[0])
    return found


def _read_written(
    command: list[str], line: int, depth: int, written: _Files, stdin: Stdin | None = None
) -> tuple[list[Command], bool] | None:
    """The commands that running a file the script wrote earlier (:func:`_writes`) runs:
    ``bash x.sh``, ``. x.sh``, ``./x.sh``, ``make -f x.mk`` (any :func:`host_file`; also the
    files written into its ``-I`` folders), ``python x.py``, ``python -m m`` (the files of
    the module written: :func:`_module_written`), and any file whose name matches a glob
    written by a loop (:attr:`_Files.patterns`); read from each text written (a file copied
    in is read as the file, a download is not the project's: :attr:`_Written.downloaded`; a
    name written in another folder, after a ``cd``, is matched by its last part). A file one of
    whose texts is not known is one that cannot be read (``unread``: both readers fail
    closed). Also whether the command is still read as written (the file may be the
    project's: the write may not have run), but for Python (the text written is what
    runs). None when ``command`` runs no file the script wrote."""
    from mltrust.evidence._classify import python_interpreter

    runs = argv(command)
    ran = host_file(command)
    kind: HostFileKind | Literal["python", "tool"] | None = None
    name = None
    tool = _TOOL_FILES.get(runs[0].rsplit("/", 1)[-1]) if runs else None
    if ran is not None:
        kind, name = ran[0], _written_name(ran[1]) or _spelled(ran[1], written)
    elif runs and _is_make(runs[0]):
        # ``make``, ``make -C DIR``: the makefile make looks for there, if written here
        folder = _make_options(command)[0]
        makefiles = (_written_name(posixpath.join(folder, m)) for m in _MAKEFILE_NAMES)
        kind, name = "make", next((f for f in makefiles if f in written.texts), None)
    elif tool is not None:
        # ``npm run x``, ``tox``, ``nox``, ``just``, ``task``: the file it reads, if written
        kind, name = "tool", next((f for f in tool[1] if f in written.texts), None)
    elif runs and "/" in runs[0]:
        kind, name = "shell", _written_name(runs[0]) or _spelled(runs[0], written)
    elif runs and python_interpreter(runs[0]):
        j = 1
        code = None  # ``python -c CODE``, Python reading a here-document
        while j < len(runs) and runs[j].startswith("-") and runs[j] != "-":
            if runs[j].startswith("-c"):
                code = runs[j][2:] or (runs[j + 1] if j + 1 < len(runs) else "")
                break
            if runs[j].startswith("-m"):
                # ``python -m a.b``: a/__init__.py, a/b/__init__.py and a/b/__main__.py (or
                # a/b.py) run; those written here are read (the project's may run too)
                dotted = runs[j][2:] or (runs[j + 1] if j + 1 < len(runs) else "")
                name = _module_written(dotted, written)
                if name is None:
                    return None
                kind = "python"
                break
            j += 2 if runs[j] in ("-W", "-X") else 1
        else:
            if j < len(runs) and runs[j] != "-":
                kind, name = "python", _written_name(runs[j])
            elif stdin is not None:
                code = stdin.text
        if code is not None:
            # ``python -c 'import gen'``: the modules it imports that were written here
            imported = _imports_written([code], written)
            if not imported:
                return None
            kind, name = "python", "-m " + " ".join(imported)
    texts: tuple[_Written, ...] | None = None
    if kind is None and runs and runs[0] in written.last:
        # ``gen`` after writing bin/gen (a folder on PATH): the known texts of the files it
        # may be, as for a name written in another folder (below)
        on_path = [t for n in written.last[runs[0]] for t in written.texts[n]]
        texts = tuple(t for t in on_path if t.text is not None)
        if not texts:
            return None
        kind, name = "shell", runs[0]
    if name is None and ran is not None and _HOST_WILD.sub("", ran[1]).strip("/."):
        # a name the shell computes (``bash g*.sh``, ``. "$D/gen.sh"``): the files written
        # here that it may name, as a loop's glob may name a file run (:attr:`_Files.patterns`)
        name = posixpath.normpath(_HOST_WILD.sub("*", _PWD.sub("", ran[1])))
        if len(written.texts) > written.left:
            return _past(written, name, command, line)
        written.left -= len(written.texts)  # each name matched counts as a character read
        matched = [n for n in written.texts if n not in written.patterns and fnmatchcase(n, name)]
        if not matched:
            return None
        kind = ran[0]
        texts = tuple(
            t for n in matched[: DEFAULT_LIMITS.max_command_host_matches] for t in written.texts[n]
        )
    if name is None or kind is None:
        return None
    texts = texts or written.texts.get(name)
    module = name.startswith("-m ")
    parts = name[3:].split() if module else [name]
    if module:
        texts = tuple(t for f in parts for t in written.texts[f])
        name = parts[-1]
    # written to a loop variable's name that may be this one (``for f in *.sh; do ... >
    # "$f"``): what was written there is one more text it may hold
    globbed = tuple(
        t
        for p in sorted(written.patterns)
        if p != name and fnmatchcase(name, p)
        for t in written.texts[p]
    )
    if kind == "make":
        # ``make -I DIR``: a makefile it reads may include what the script wrote into DIR
        dirs = make_include_dirs(command)
        globbed += tuple(
            t
            for n, f in sorted(written.texts.items())
            if n != name and any(n.startswith(d.rstrip("/") + "/") for d in dirs)
            for t in f
        )
    if texts is None and kind == "python" and (include := _INCLUDE.get()) is not None:
        # a project Python file that imports modules written here: those are read
        key = "\0" + name  # a file's name, beside the texts parsed (no text starts so)
        if key not in written.imports:  # each project file parsed once per host
            project = include(name)
            written.imports[key] = _python_imports(project) if project else []
        imported = _imports_written([], written, written.imports[key])
        texts = tuple(t for f in imported for t in written.texts[f]) or None
    if texts is None:
        # written in another folder (``cd d; echo ... > x.sh; cd ..; bash d/x.sh``): its
        # known texts are read too
        last = name.rsplit("/", 1)[-1]
        # (``GEN.sh`` too: a case-insensitive file system, macOS)
        last = last.lower()
        alike = [
            t for n, f in written.texts.items() if n.rsplit("/", 1)[-1].lower() == last for t in f
        ]
        texts = tuple(t for t in alike if t.text is not None) + globbed
        if not texts:
            return None
    else:
        texts += globbed
    if kind == "tool":
        # a tool's file edited by what is not read here (``jq ... > p.json; mv p.json
        # package.json``, ``sed -i`` of its version): its known texts, the project's is read
        # as a host of its own
        texts = tuple(t for t in texts or () if t.text is not None and not t.downloaded)
        if not texts:
            return None
    if kind == "python":
        # the modules written here that the Python run imports (``import gen``, gen.py)
        codes = [t.text for t in texts or () if t.text]
        extra = [f for f in _imports_written(codes, written) if f not in parts]
        texts = (*(texts or ()), *(t for f in extra for t in written.texts[f]))
    if ran is None and kind == "shell":
        first = next((t.text for t in texts if t.text), "").split("\n", 1)[0]
        kind = "python" if first.startswith("#!") and python_shebang(first) else "shell"
    cost = sum(len(t.text or "") + 1 for t in texts)
    if cost > written.left:
        return _past(written, name, command, line)
    written.left -= cost
    if any(t.text is None or (kind == "python" and (t.sources or t.downloaded)) for t in texts):
        why = (
            f"runs {name!r}, a file the script writes with text only known when it runs "
            "(a download, the output of a command)"
        )
        return [Command(line, (), unread=why, text=" ".join(command))], False
    out: list[Command] = []
    for found in texts:
        text = found.text or ""  # each is known (above)
        if kind == "tool":
            # the tool's file read as its own kind (a project file copied in: its text)
            include = _INCLUDE.get()
            copied = [include(f) if include is not None else None for f in found.sources]
            whole = "".join(c or "" for c in copied) + text
            if tool is not None and whole.strip():
                out.extend(_relined(iter(commands(tool[0], whole)), line))
            continue
        if kind != "python":
            out.extend(Command(line, (), reads=(kind, source)) for source in found.sources)
        if not text.strip():
            continue
        if depth >= DEFAULT_LIMITS.max_command_depth:
            out.append(_too_deep(line, text, command))
        elif kind == "python":
            stdin = Stdin(text, found.lines, found.expanded)
            program = runs[0] if python_interpreter(runs[0]) else "python3"  # ``./x``: shebang
            out.append(Command(line, (program, "-"), stdin=stdin))
        elif kind == "shell":
            out.extend(_relined(_shell(text, line, depth=depth + 1, written=written), line))
        elif kind == "make":
            out.extend(_relined(_make(text, None, depth + 1, written), line))
        else:
            out.extend(_relined(iter(commands(kind, text)), line))
    return out, kind != "python" or module


def _python_imports(code: str) -> list[str]:
    """The modules Python ``code`` imports by a literal name (``import a.b``, ``from a import
    b``: ``a`` and ``a.b``)."""
    tree = _python_tree(code)
    if tree is None:
        return []
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append(node.module)
            out.extend(f"{node.module}.{a.name}" for a in node.names if a.name != "*")
    return out


def _imports_written(
    codes: list[str], written: _Files, modules: list[str] | None = None
) -> list[str]:
    """The files written here that Python ``codes`` (or the ``modules`` named) import
    (:func:`_module_written`), and those their text imports in turn, at most
    ``Limits.max_command_host_matches``."""
    out: list[str] = []
    queue, seen = list(codes), set()
    first = list(modules or [])
    while (queue or first) and len(out) < DEFAULT_LIMITS.max_command_host_matches:
        if first:
            names, first = first, []
        else:
            code = queue.pop(0)
            if code not in written.imports:  # each text parsed once per host
                written.imports[code] = _python_imports(code)
            names = written.imports[code]
        for module in names:
            found = _module_written(module, written) if module not in seen else None
            seen.add(module)
            for f in found[3:].split() if found else ():
                if f not in out:
                    out.append(f)
                    queue.extend(t.text for t in written.texts[f] if t.text)
    return out


def _past(written: _Files, name: str, command: list[str], line: int) -> tuple[list[Command], bool]:
    """A run of ``name`` past the characters of written text a script may read
    (:class:`_Files`): not read, fails closed (reported once)."""
    if written.spent:
        return [], True
    written.spent = True
    why = f"runs {name!r}, a file the script wrote, past the characters of such text read"
    return [Command(line, (), unread=why, text=" ".join(command))], False


def _module_written(module: str, written: _Files) -> str | None:
    """The files ``python -m MODULE`` runs that the script wrote, as ``"-m FILE..."`` (the
    packages' ``__init__.py`` files, then the module's ``__main__.py`` or ``.py``); None when
    it wrote none of them or the module's name is computed."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", module):
        return None
    parts = module.split(".")
    names = ["/".join(parts[: k + 1]) + "/__init__.py" for k in range(len(parts))]
    names += ["/".join(parts) + "/__main__.py", "/".join(parts) + ".py"]
    found = [n for n in names if n in written.texts]
    return "-m " + " ".join(found) if found else None


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


def _inner(
    command: list[str], line: int, depth: int, written: _Files | None = None
) -> Iterator[Command]:
    """Commands run by a command: ``SHELL -c SCRIPT`` (anywhere in it: ``docker run img sh -c
    ...``), ``eval WORDS``, and command substitutions in its words. ``written``: the files
    the script wrote so far (:func:`_writes`), the same files for the shells it starts."""
    for word in command:
        if "$(" in word or "`" in word:
            for body in _substitutions(word):
                if depth >= DEFAULT_LIMITS.max_command_depth:
                    yield _too_deep(line, body, command)
                else:
                    yield from _shell(body, line, script=False, depth=depth + 1, written=written)
    head = argv(command)
    if head[:1] == ["trap"] and len(head) > 2 and not head[1].startswith("-"):
        # ``trap 'ACTION' EXIT``: the shell runs ACTION
        if depth >= DEFAULT_LIMITS.max_command_depth:
            yield _too_deep(line, head[1], command)
        else:
            yield from _relined(_shell(head[1], line, depth=depth + 1, written=written), line)
    if head[:1] and head[0].rsplit("/", 1)[-1] in SHELLS and "<<<" in head[1:-1]:
        # ``bash <<< 'SCRIPT'``: a here-string is the shell's script
        here = head[head.index("<<<", 1) + 1]
        if depth >= DEFAULT_LIMITS.max_command_depth:
            yield _too_deep(line, here, command)
        else:
            yield from _relined(_shell(here, line, depth=depth + 1, written=written), line)
    for k, word in enumerate(command[:-1]):
        program = word.rsplit("/", 1)[-1]
        if program in SHELLS | _C_RUNNERS:
            script = (
                _su_script(command[k + 1 :])
                if program in _USER_SWITCHERS
                else _shell_script(command[k + 1 :])
            )
            if script is not None:
                if depth >= DEFAULT_LIMITS.max_command_depth:
                    yield _too_deep(line, script, command)
                else:
                    yield from _relined(
                        _shell(script, line, depth=depth + 1, written=written), line
                    )
                return
    if head[:1] == ["eval"] and len(head) > 1:
        if depth >= DEFAULT_LIMITS.max_command_depth:
            yield _too_deep(line, " ".join(head[1:]), command)
        else:
            yield from _shell(
                " ".join(head[1:]), line, script=False, depth=depth + 1, written=written
            )


def _too_deep(line: int, text: str, command: list[str]) -> Command:
    """A command nested past ``max_command_depth`` (a shell in a shell in a shell..., an alias
    of an alias...): not read, so it is a command that cannot be read (fail closed: readers
    of an unreadable command report it when its text names an installer or Python)."""
    shown = " ".join(command)
    return Command(
        line,
        (),
        f"nested deeper than {DEFAULT_LIMITS.max_command_depth} levels",
        f"{shown}\n{text}",
    )


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


#: Programs that run a ``-c COMMAND`` string as another user; their options and the user
#: may come before or after it (``su -l bob -c CMD``, ``su bob -lc CMD``, ``su --command=CMD``).
_USER_SWITCHERS = frozenset({"su", "runuser"})
#: Their options that take a value (the shell, a group, the environment to keep).
_SU_VALUES = frozenset({"-s", "--shell", "-g", "--group", "-G", "--supp-group", "-w"})
_SU_VALUES |= {"--whitelist-environment", "-u", "--user"}


def _su_script(args: list[str]) -> str | None:
    """The ``-c`` text of ``su``/``runuser`` arguments, wherever it stands among them
    (``-c``, ``--command``, ``--session-command``, their ``=VALUE`` forms, or a cluster
    ending in ``c``: ``-lc``); None when there is none (``runuser -u bob -- CMD`` is a
    wrapper: :func:`argv`)."""
    j = 0
    while j < len(args):
        word = args[j]
        if word == "--":
            return None
        if word in ("-c", "--command", "--session-command"):
            return args[j + 1] if j + 1 < len(args) else None
        if word.startswith(("--command=", "--session-command=")):
            return word.split("=", 1)[1]
        if re.fullmatch(r"-[A-Za-z]+", word) and word.endswith("c") and len(word) > 2:
            return args[j + 1] if j + 1 < len(args) else None
        j += 2 if word in _SU_VALUES else 1
    return None


def _relined(found: Iterator[Command], line: int) -> Iterator[Command]:
    """Commands of a script given as one word: all on the host line of that word."""
    for command in found:
        yield dataclasses.replace(command, line=line) if command.line != line else command


# -- Makefiles ---------------------------------------------------------------------------------
_MAKE_ASSIGN = re.compile(
    r"^(?:export\s+|override\s+|private\s+)*(?P<name>[^\s:#=$]+)\s*(?P<op>[:?+!]*)=\s*(?P<value>.*)$",
    re.S,
)
_MAKE_DIRECTIVE = re.compile(
    r"^(?:-?include|sinclude|ifn?eq|ifn?def|else|endif|export|unexport|vpath|undefine|override"
    r"|define|endef)\b"
)
#: References evaluated while expanding one text (bounds nested ``call``/``foreach`` work).
_MAKE_STEPS = 20_000
#: References open inside one another (``$($($(X)))``, a variable whose value names itself).
_MAKE_NESTING = 48
#: Expanded text longer than this is cut (a ``foreach`` over a long list).
_MAKE_TEXT = 1 << 20
#: GNU make's functions. Those with a branch in :func:`_make_function` are evaluated as make
#: evaluates them; ``shell`` was read already (:func:`_make_shells`); any other one yields a
#: value the checker does not know (``$MAKE_NAME``).
_MAKE_FUNCTIONS = frozenset(
    {"call", "subst", "patsubst", "strip", "findstring", "filter", "filter-out", "sort"}
    | {"word", "wordlist", "words", "firstword", "lastword", "dir", "notdir", "suffix"}
    | {"basename", "addsuffix", "addprefix", "join", "if", "or", "and", "foreach", "value"}
    | {"eval", "origin", "flavor", "info", "warning", "error", "shell", "wildcard"}
    | {"realpath", "abspath", "file", "let", "guile", "intcmp"}
)

#: The functions of words and file names (no effect, no file system).
_MAKE_TEXT_FUNCTIONS = frozenset(
    {"subst", "patsubst", "strip", "findstring", "filter", "filter-out", "sort", "word"}
    | {"wordlist", "words", "firstword", "lastword", "dir", "notdir", "suffix", "basename"}
    | {"addsuffix", "addprefix", "join"}
)


def _make_unknown(name: str) -> str:
    return "$MAKE_" + (re.sub(r"\W", "_", name.strip())[:64] or "VALUE")


def _make_expand(text: str, variables: dict[str, str]) -> str:
    """``text`` expanded as make expands it: ``$(NAME)``/``${NAME}`` by the Makefile's own
    assignments (computed names too), ``$(call NAME,ARGS)`` with ``$(1)``... bound, and the
    text functions (``subst``, ``patsubst``, ``if``, ``foreach``, ``firstword``...) evaluated;
    what is not known (a variable set elsewhere, a function of the file system) becomes a
    shell variable ``$MAKE_NAME``. ``$$`` is a literal ``$``."""
    budget = _MakeBudget(_MAKE_STEPS)
    return _make_text(text.replace("$$", "\0"), variables, budget).replace("\0", "$")


@dataclass(slots=True)
class _MakeBudget:
    """The work left to one expansion: references to evaluate, and the variables being
    expanded now (make refuses a variable that references itself; so does this reader)."""

    steps: int
    depth: int = 0
    open: set[str] = field(default_factory=set)


def _make_text(text: str, variables: dict[str, str], budget: _MakeBudget) -> str:
    out: list[str] = []
    size = 0
    i = 0
    while i < len(text):
        j = text.find("$", i)
        if j < 0 or j + 1 >= len(text):
            out.append(text[i:])
            break
        out.append(text[i:j])
        opener = text[j + 1]
        if opener not in "({":
            # ``$F`` is make's ``$(F)`` when the makefile assigns F; ``$@``, ``$$``, ``$X``
            # of a name not assigned: left as written (a variable: the readers fail closed)
            known = opener in variables and (opener.isalnum() or opener == "_")
            out.append(_make_reference(opener, variables, budget) if known else text[j : j + 2])
            i = j + 2
            continue
        closer = ")" if opener == "(" else "}"
        level, k = 1, j + 2
        while k < len(text) and level:
            level += 1 if text[k] == opener else -1 if text[k] == closer else 0
            k += 1
        if level:
            out.append(text[j:])  # never closed: left as written
            break
        part = _make_reference(text[j + 2 : k - 1], variables, budget)
        size += len(part)
        if size > _MAKE_TEXT:
            out.append(_make_unknown("TOO_LONG"))
            break
        out.append(part)
        i = k
    return "".join(out)


def _make_args(text: str, count: int) -> list[str]:
    """A function's arguments: split at commas outside parentheses and braces, at most
    ``count`` of them (the last keeps its commas, as make keeps them)."""
    args: list[str] = []
    level, start = 0, 0
    for k, char in enumerate(text):
        if char in "({":
            level += 1
        elif char in ")}":
            level -= 1
        elif char == "," and level == 0 and len(args) < count - 1:
            args.append(text[start:k])
            start = k + 1
    args.append(text[start:])
    return args


def _make_reference(inner: str, variables: dict[str, str], budget: _MakeBudget) -> str:
    budget.steps -= 1
    if budget.steps < 0 or budget.depth >= _MAKE_NESTING:
        return _make_unknown("TOO_DEEP")
    budget.depth += 1
    try:
        return _make_evaluate(inner, variables, budget)
    finally:
        budget.depth -= 1


def _make_evaluate(inner: str, variables: dict[str, str], budget: _MakeBudget) -> str:
    m = re.match(r"([a-z-]+)[ \t]+(.*)$", inner, re.S)
    if m is not None and m.group(1) in _MAKE_FUNCTIONS:
        return _make_function(m.group(1), m.group(2), variables, budget)
    name = _make_text(inner, variables, budget).strip()  # ``$($(X)_FLAGS)``
    if name in variables and name not in budget.open:
        budget.open.add(name)
        try:
            return _make_text(variables[name].replace("$$", "\0"), variables, budget)
        finally:
            budget.open.discard(name)
    return _make_unknown(name)


def _make_pattern(pattern: str, word: str) -> str | None:
    """The stem ``%`` matches when ``word`` matches ``pattern`` (``""`` when it has no ``%``
    and matches whole), else None."""
    if "%" not in pattern:
        return "" if word == pattern else None
    head, _, tail = pattern.partition("%")
    if len(word) >= len(head) + len(tail) and word.startswith(head) and word.endswith(tail):
        return word[len(head) : len(word) - len(tail)]
    return None


def _make_function(name: str, rest: str, variables: dict[str, str], budget: _MakeBudget) -> str:
    """One function call, as GNU make evaluates it (see :data:`_MAKE_FUNCTIONS`)."""

    def expand(text: str) -> str:
        return _make_text(text, variables, budget)

    if name == "call":
        args = _make_args(rest, 1 << 16)
        called = expand(args[0]).strip()
        if called not in variables or called in budget.open:
            return _make_unknown(called)
        local = {**variables, "0": called}
        for n in range(1, 10):
            local[str(n)] = ""
        for n, arg in enumerate(args[1:], 1):
            local[str(n)] = expand(arg)
        budget.open.add(called)
        try:
            return _make_text(variables[called].replace("$$", "\0"), local, budget)
        finally:
            budget.open.discard(called)
    if name == "foreach":
        var, items, body = [*_make_args(rest, 3), "", ""][:3]
        var = expand(var).strip()
        return " ".join(
            _make_text(body, {**variables, var: w}, budget) for w in expand(items).split()
        )
    if name == "if":
        cond, then, *other = _make_args(rest, 3)
        return expand(then) if expand(cond).strip() else (expand(other[0]) if other else "")
    if name in ("or", "and"):
        value = ""
        for arg in _make_args(rest, 1 << 16):
            value = expand(arg).strip()
            if bool(value) == (name == "or"):
                return value
        return value
    if name == "value":
        return variables.get(expand(rest).strip(), "")
    if name == "eval":
        # its text becomes part of the makefile (``$(eval $(X))``, ``$(eval $(call R,..))``):
        # read where it stands, as a line of the makefile is read (a rule's recipe after
        # ``;``, a define body's recipe lines are commands)
        return expand(rest)
    if name == "wildcard":
        # the files the patterns name: the patterns, matched as a host file's glob is
        # (``include $(wildcard mk/*.mk)``)
        return expand(rest)
    if name in ("info", "warning"):
        return ""
    if name in ("origin", "flavor"):
        return "file" if name == "origin" else "recursive"
    if name not in _MAKE_TEXT_FUNCTIONS:
        return _make_unknown(name)
    counts = {"subst": 3, "patsubst": 3, "findstring": 2, "filter": 2, "filter-out": 2}
    counts |= {"word": 2, "wordlist": 3, "addsuffix": 2, "addprefix": 2, "join": 2}
    args = [expand(a) for a in _make_args(rest, counts.get(name, 1))]
    words = args[-1].split()
    if name == "subst" and len(args) == 3:
        return args[2].replace(args[0], args[1]) if args[0] else args[2]
    if name == "patsubst" and len(args) == 3:
        pattern, replacement = args[0].strip(), args[1].strip()
        out = []
        for word in words:
            stem = _make_pattern(pattern, word)
            out.append(word if stem is None else replacement.replace("%", stem, 1))
        return " ".join(out)
    if name == "strip":
        return " ".join(words)
    if name == "findstring" and len(args) == 2:
        return args[0] if args[0] in args[1] else ""
    if name in ("filter", "filter-out") and len(args) == 2:
        patterns = args[0].split()
        keep = name == "filter"
        return " ".join(
            w for w in words if any(_make_pattern(p, w) is not None for p in patterns) == keep
        )
    if name == "sort":
        return " ".join(sorted(set(words)))
    if name in ("word", "wordlist"):
        try:
            bounds = [int(a.strip()) for a in args[:-1]]
        except ValueError:
            return _make_unknown(name)
        first = bounds[0]
        last = bounds[1] if name == "wordlist" else first
        return " ".join(words[max(first, 1) - 1 : max(last, 0)])
    if name == "words":
        return str(len(words))
    if name == "firstword":
        return words[0] if words else ""
    if name == "lastword":
        return words[-1] if words else ""
    if name == "dir":
        return " ".join(w.rsplit("/", 1)[0] + "/" if "/" in w else "./" for w in words)
    if name == "notdir":
        return " ".join(w.rsplit("/", 1)[-1] for w in words)
    if name in ("suffix", "basename"):
        out = []
        for w in words:
            base = w.rsplit("/", 1)[-1]
            dot = base.rfind(".")
            cut = len(w) - len(base) + dot if dot >= 0 else -1
            if name == "suffix":
                out.append(w[cut:] if cut >= 0 else "")
            else:
                out.append(w[:cut] if cut >= 0 else w)
        return " ".join(o for o in out if o)
    if name in ("addsuffix", "addprefix") and len(args) == 2:
        fix = args[0].strip()
        return " ".join(w + fix if name == "addsuffix" else fix + w for w in words)
    if name == "join" and len(args) == 2:
        left, right = args[0].split(), words
        n = max(len(left), len(right))
        return " ".join(
            (left[k] if k < len(left) else "") + (right[k] if k < len(right) else "")
            for k in range(n)
        )
    return _make_unknown(name)


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


#: ``target: NAME = value`` (a target-specific variable).
_MAKE_TARGET_ASSIGN = re.compile(
    r"^[^:=#]+?::?\s*(?:export\s+|override\s+|private\s+)*"
    r"(?P<name>[^\s:#=$]+)\s*(?P<op>[:?+!]*)=\s*(?P<value>.*)$",
    re.S,
)
_MAKE_CONDITIONAL = re.compile(r"^(?:else\s+)?(ifn?eq|ifn?def)\b|^(endif)\b|^(else)\b")
#: At most this many combinations of the values of variables with more than one value.
_MAKE_WORLDS = 16
#: Shells that read a recipe line as POSIX shell commands.
_POSIX_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox"})


def _make_worlds(candidates: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the values of the Makefile's variables (a variable set in an
    ``ifeq``/``ifdef`` block or for one target has each of its values); past
    :data:`_MAKE_WORLDS` combinations the rest of those variables are not expanded (a
    ``$MAKE_NAME`` shell variable: the readers fail closed on it)."""
    worlds: list[dict[str, str]] = [{}]
    for name, values in candidates.items():
        values = list(dict.fromkeys(values))
        if len(values) == 1:
            for world in worlds:
                world[name] = values[0]
        elif len(worlds) * len(values) <= _MAKE_WORLDS:
            worlds = [{**world, name: value} for world in worlds for value in values]
    return worlds


def _make_program(value: str) -> tuple[str, ...] | None:
    """The words of a Makefile ``SHELL`` value when it is not a POSIX shell (None when it
    is, or is not set)."""
    try:
        words = argv(_split(value))
    except ValueError:
        return (value,)
    if not words:
        return None
    if words[0].rsplit("/", 1)[-1] in _POSIX_SHELLS:
        return None
    return tuple(_split(value))


#: ``include``, ``-include``, ``sinclude``: make reads the files named as makefiles.
_MAKE_INCLUDE = re.compile(r"^(?:-?include|sinclude)\s")


def _make(
    text: str,
    include: Callable[[str], str | None] | None = None,
    depth: int = 0,
    written: _Files | None = None,
) -> Iterator[Command]:
    """A Makefile's commands: recipe lines (each its own shell script, or with ``.ONESHELL``
    each recipe one script), the recipe after ``target: ;``, ``$(shell ...)`` anywhere,
    the right side of ``NAME != command`` (run when make reads the file), ``define`` bodies,
    and any other line that is not an assignment, rule, directive or comment (fail closed:
    ``make`` would reject it). Variables the Makefile assigns are expanded
    (:func:`_make_expand`), a variable with more than one possible value (set in a
    conditional block or for one target) with each of them (:func:`_make_worlds`);
    ``.RECIPEPREFIX`` is honoured. When ``SHELL`` names a program that is not a POSIX shell,
    make runs each recipe line as ``SHELL .SHELLFLAGS LINE``: that is the command
    (``python3 -c LINE``). ``include(NAME)`` gives the text of a makefile an ``include``
    names (None when it is not a file of the project; the caller keeps it inside): the
    variables it assigns (and those of the makefiles it includes, once each, at most
    :data:`DEFAULT_LIMITS.max_command_host_files`) are the host's, as make reads it in place.
    ``depth``: how deep a makefile a script wrote is read (:func:`_runs_written`); ``written``:
    the files the host wrote (its recipes' scripts write there too; a makefile an ``include``
    names that was written is read from what was written)."""
    raw = text.split("\n")
    files = written if written is not None else _HOST_FILES.get()
    prefix = "\t"
    candidates: dict[str, list[str]] = {}
    # (first line, text, what) per logical line
    logical: list[tuple[int, str, str]] = []
    included: list[str] = []  # makefiles whose variables were read, in order
    borrowed: set[int] = set()  # the entries of ``logical`` an included makefile holds
    # an included makefile's recipe lines without a variable: read here only when SHELL
    # makes something other than a shell run them (the host's SHELL is theirs too)
    unborrowed: list[tuple[int, str, str]] = []

    def assign(name: str, op: str, value: str, certain: bool) -> None:
        old = candidates.get(name)
        if "!" in op:
            new = ["$(shell)"]  # a value the shell prints: not known
        elif op == "+":
            new = [(v + " " if v else "") + value for v in (old or [""])]
        elif op == "?" and old is not None:
            new = old
        else:
            new = [value]
        candidates[name] = new if certain or old is None else [*old, *new]
        candidates[name] = candidates[name][-_MAKE_WORLDS:]

    def parse(lines: list[str], at: int, outer: int) -> None:
        # the logical lines of one makefile: the host's (``at`` 0), or one it includes at
        # host line ``at``, whose variables are the host's; its commands are read as its own
        # host too, so only those that use a variable (which the host may assign) are kept,
        # at the include's line
        nonlocal prefix
        in_rule = False
        define = False
        depth = outer  # conditional blocks open

        def keep(entry: tuple[int, str, str]) -> None:
            if not at:
                logical.append(entry)
            elif (entry[2] in ("recipe", "rule", "other") or "!" in entry[2]) and "$" in entry[1]:
                borrowed.add(len(logical))
                logical.append((at, entry[1], entry[2]))
            elif entry[2] == "recipe":
                unborrowed.append((at, entry[1], entry[2]))

        i = 0
        while i < len(lines):
            start = i
            recipe = not define and in_rule and lines[i].startswith(prefix)
            body = lines[i]
            while (
                body.endswith("\\")
                and (len(body) - len(body.rstrip("\\"))) % 2
                and i + 1 < len(lines)
            ):
                i += 1
                nxt = lines[i]
                if recipe:
                    body = body + "\n" + (nxt[len(prefix) :] if nxt.startswith(prefix) else nxt)
                else:
                    body = body[:-1].rstrip() + " " + nxt.lstrip()
            i += 1
            if define:
                if re.match(r"^\s*endef\b", body):
                    define = False
                else:
                    keep((start + 1, body, "recipe"))  # a canned recipe
                continue
            if recipe:
                keep((start + 1, body[len(prefix) :], "recipe"))
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
            conditional = _MAKE_CONDITIONAL.match(stripped)
            if conditional is not None:
                if conditional.group(1) and not stripped.startswith("else"):
                    depth += 1
                elif conditional.group(2):
                    depth = max(outer, depth - 1)
                keep((start + 1, stripped, "directive"))
                continue
            plain = _MAKE_ASSIGN.match(stripped)
            target = None if plain is not None else _MAKE_TARGET_ASSIGN.match(stripped)
            if plain is not None or target is not None:
                found = plain or target
                assert found is not None
                name, op, value = found.group("name", "op", "value")
                assign(name, op, value, certain=plain is not None and depth == 0)
                keep((start + 1, value if "!" in op else stripped, "assign" + op))
                if target is not None:
                    in_rule = True
            elif _MAKE_DIRECTIVE.match(stripped):
                keep((start + 1, stripped, "directive"))
                if include is not None and _MAKE_INCLUDE.match(stripped):
                    # make reads the included makefile here: its variables are the host's
                    world = {k: v[-1] for k, v in candidates.items()}
                    for name in _make_expand(stripped, world).split()[1:]:
                        if name in included:
                            continue
                        if len(included) >= DEFAULT_LIMITS.max_command_host_files:
                            break
                        included.append(name)
                        found_text = include(name)
                        if found_text is not None:
                            parse(found_text.split("\n"), at or start + 1, depth)
            elif re.search(r"(?<![:$]):(?![:=])|::(?!=)", stripped):
                in_rule = True
                keep((start + 1, stripped, "rule"))
            else:
                keep((start + 1, stripped, "other"))

    parse(raw, 0, 0)
    worlds = _make_worlds(candidates)
    # what runs a recipe line: the shell, or each program SHELL may name
    programs: list[tuple[str, ...]] = []
    for world in worlds:
        value = _make_expand(world["SHELL"], world).strip() if "SHELL" in world else ""
        program = _make_program(value) if value else None
        if program is not None:
            flags = world.get(".SHELLFLAGS", "-c")
            try:
                program += tuple(_split(_make_expand(flags, world)))
            except ValueError:
                program += (flags,)
            programs.append(program)
    # a SHELL only known when make runs: its recipes are also read as shell (and fail closed
    # as commands of an unknown program)
    posix = len(programs) < len(worlds) or any("$" in p[0] for p in programs)
    if programs:
        borrowed.update(range(len(logical), len(logical) + len(unborrowed)))
        logical.extend(unborrowed)
    oneshell = any(t.startswith(".ONESHELL") for _, t, w in logical if w == "rule")
    script: list[str] = [""] * len(raw)
    seen: set[tuple[int, str]] = set()

    def once(line: int, body: str) -> bool:
        key = (line, body)
        if key in seen:
            return False
        seen.add(key)
        return True

    for index, (line, original, what) in enumerate(logical):
        for world in worlds:
            body, shells = _make_shells(original)
            for inner in shells:
                inner = _make_expand(inner, world)
                if once(line, "shell " + inner):
                    yield from _shell(inner, line, script=False, depth=depth, written=files)
            if what.startswith("assign") and "!" in what:
                value = _make_expand(original, world)
                if once(line, "shell " + value):
                    yield from _shell(value, line, script=False, depth=depth, written=files)
            elif what == "recipe":
                body = _make_expand(body, world).lstrip(" \t")
                while body[:1] in ("@", "-", "+"):
                    body = body[1:].lstrip(" \t")
                if not once(line, body):
                    continue
                for program in programs:
                    runs = argv(program)
                    if runs and python_interpreter(runs[0]):
                        yield Command(line, (*program, body))  # ``python3 -c LINE``
                    else:
                        reason = f"a recipe line make runs with SHELL={' '.join(program)!r}"
                        yield Command(line, (), reason, body)
                if not posix:
                    continue
                if oneshell and index not in borrowed:
                    for k, part in enumerate(body.split("\n")):
                        if line - 1 + k < len(script):
                            script[line - 1 + k] = part
                    continue
                yield from _shell(body, line, script=False, depth=depth, written=files)
            elif what == "rule":
                rule = re.match(r"^[^;]*?:[^;]*;(?P<recipe>.*)$", body, re.S)
                if rule is not None and rule.group("recipe").strip():
                    after = _make_expand(rule.group("recipe"), world)
                    if once(line, after):
                        yield from _shell(after, line, depth=depth, written=files)
            elif what == "other":
                other = _make_expand(body, world)
                if once(line, other):
                    yield from _shell(other, line, script=False, depth=depth, written=files)
            elif what == "directive" and _MAKE_INCLUDE.match(original):
                # make reads each included file as a makefile: ``make -f FILE`` in the stream
                # (one the host wrote is read from what it wrote, as a run of it is)
                for name in _make_expand(original, world).split()[1:]:
                    if once(line, "include " + name):
                        yield from _simple(["make", "-f", name], line, [], depth, written=files)
    if oneshell:
        yield from _shell("\n".join(script), 1, depth=depth, written=files)


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


#: Keys of a hatch environment whose values hatch runs as shell commands (``scripts`` values
#: are commands, or lists of them).
HATCH_COMMAND_KEYS = ("scripts", "pre-install-commands", "post-install-commands")
#: Keys of a hatch environment (or an override of one) that list requirements it installs.
HATCH_DEPENDENCY_KEYS = ("dependencies", "extra-dependencies")


def hatch_values(hatch: dict[str, Any], keys: tuple[str, ...]) -> Iterator[str]:
    """The strings of ``keys`` in every environment of a hatch table (``[tool.hatch]`` or a
    ``hatch.toml``: ``envs.*``, and anywhere in an environment's ``overrides``, whose values
    may be strings, lists, ``scripts`` tables or ``{value = ...}`` tables); for
    :data:`HATCH_DEPENDENCY_KEYS` also the build hooks' and targets' ``dependencies`` and
    ``env.requires`` (environment plugins)."""
    envs = hatch.get("envs")
    tables: list[Any] = list(envs.values()) if isinstance(envs, dict) else []
    if keys == HATCH_DEPENDENCY_KEYS:
        env = hatch.get("env")
        if isinstance(env, dict):
            yield from (r for r in env.get("requires") or [] if isinstance(r, str))
        tables.append(hatch.get("build"))

    def strings(value: Any, depth: int) -> Iterator[str]:
        if depth > 8:
            return
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            for item in value:
                yield from strings(item, depth + 1)
        elif isinstance(value, dict):
            if "value" in value:
                yield from strings(value["value"], depth + 1)
            else:  # a ``scripts`` table: each script's commands
                for item in value.values():
                    yield from strings(item, depth + 1)

    def walk(table: Any, depth: int) -> Iterator[str]:
        if not isinstance(table, dict) or depth > 8:
            return
        for name, value in table.items():
            if name in keys:
                yield from strings(value, 0)
            elif isinstance(value, dict):  # overrides, matrices, hooks, targets
                yield from walk(value, depth + 1)

    for table in tables:
        yield from walk(table, 0)


def _hatch_words(item: str) -> str:
    """A hatch command with its context fields replaced: ``{args}`` (the user's arguments)
    dropped, ``{root}`` the project, any other field a ``$HATCH_FIELD`` variable."""
    item = re.sub(r"\{args(?::[^{}]*)?\}", "", item)
    item = re.sub(r"\{root(?::[^{}]*)?\}", ".", item)
    return re.sub(r"\{[^{}]*\}", "$HATCH_FIELD", item)


def hatch_commands(hatch: dict[str, Any], text: str) -> Iterator[Command]:
    """The shell commands hatch runs for the environments of a hatch table: scripts and pre-/
    post-install commands (:func:`hatch_values`)."""
    for item in hatch_values(hatch, HATCH_COMMAND_KEYS):
        yield from _shell(_hatch_words(item), _line_of(text, item.strip()), script=False)


def _tox_toml_text(text: str) -> Iterator[Command]:
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        yield Command(1, (), f"not valid TOML ({exc})", text[:200])
        return
    tool = data.get("tool")
    hatch = tool.get("hatch") if isinstance(tool, dict) else data
    if isinstance(hatch, dict):
        yield from hatch_commands(hatch, text)  # ``[tool.hatch]`` or a hatch.toml
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


def _program_of(words: list[str]) -> tuple[str, str]:
    """``("posix" | "python" | "other", shown)`` for the words that start a program."""
    runs = argv(words)
    if not runs or runs[0].rsplit("/", 1)[-1] in _POSIX_SHELLS:
        return "posix", " ".join(words)
    if python_interpreter(runs[0]):
        return "python", " ".join(words)
    return "other", " ".join(words)


#: A justfile's ``import 'FILE'``/``import? "FILE"`` and ``mod NAME``/``mod? NAME 'FILE'``.
_JUST_INCLUDE = re.compile(
    r"^(?P<kind>import|mod)\??[ \t]+(?:(?P<name>[A-Za-z_][A-Za-z0-9_-]*)[ \t]*)?"
    r"(?:'''(?P<tsingle>.*?)'''|\"\"\"(?P<tdouble>.*?)\"\"\""
    r"|'(?P<single>[^'\n]*)'|\"(?P<double>(?:[^\"\\\n]|\\.)*)\")?[ \t\r]*(?:#.*)?$"
)


def _lines(text: str, include: Callable[[str], str | None] | None = None) -> Iterator[Command]:
    """A Procfile or justfile (:func:`_lines_text`), with what just itself runs a recipe with:
    a recipe whose body starts with ``#!`` is a script for that interpreter (a Python one is
    that interpreter's standard input, ``{{...}}`` interpolations in it values of just), and
    ``set shell := [...]`` names the program each recipe line is given to (Python: ``python3
    -c LINE``); a recipe with the ``[script(...)]`` attribute (or ``[script]`` and ``set
    script-interpreter``) is a script for that interpreter, as with a shebang; a program
    that is neither sh-like nor Python is not read (fail closed). just merges the files a
    justfile ``import``s into it (``include(PATH)`` gives their text): a setting in any of
    them holds for all, and when it makes something other than a shell run recipe lines,
    the imported recipes are read here too, with it."""
    imported: list[str] = []
    for raw in text.split("\n") if include is not None else ():
        directive = _JUST_INCLUDE.match(raw)
        if directive is not None and directive.group("kind") == "import":
            paths = directive.group("tsingle", "tdouble", "single", "double")
            target = next((p for p in paths if p), None)
            merged = include(target) if include is not None and target else None
            if merged is not None:
                imported.append(merged)
    settings = "\n".join([text, *imported])
    shell: list[str] = []
    m = re.search(r"^set\s+shell\s*:=\s*\[(.*?)\]", settings, re.M | re.S)
    if m is not None:
        shell = [a or b for a, b in re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'', m.group(1))]
    kind, shown = _program_of(shell) if shell else ("posix", "")
    lines = (settings if imported and kind != "posix" else text).split("\n")
    quoted = r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\''
    # ``[script("python3")]`` / ``[script]`` (with ``set script-interpreter``) before a recipe:
    # just writes its body to a file and runs it with that interpreter, as with a shebang
    interpreter = ["sh", "-eu"]
    m = re.search(r"^set\s+script-interpreter\s*:=\s*\[(.*?)\]", settings, re.M | re.S)
    if m is not None:
        interpreter = [a or b for a, b in re.findall(quoted, m.group(1))] or interpreter
    script_by: list[str] | None = None
    generic = list(lines)
    for k, raw in enumerate(lines):
        # ``import 'FILE'`` / ``mod NAME ['FILE']``: just reads FILE's recipes as its own
        directive = _JUST_INCLUDE.match(raw)
        if directive is None:
            continue
        generic[k] = ""
        path = next(
            (p for p in directive.group("tsingle", "tdouble", "single", "double") if p), None
        )
        name = directive.group("name")
        if path is None and (directive.group("kind") == "import" or name is None):
            continue
        # ``mod NAME``: NAME.just or a folder NAME holding mod.just or a justfile; ``mod NAME
        # PATH``: PATH, or such a folder
        folder = name if path is None else path.rstrip("/")
        named = [f"{name}.just"] if path is None else [path]
        if directive.group("kind") == "mod":
            named += [f"{folder}/{f}" for f in ("mod.just", "justfile", ".justfile", "Justfile")]
        for target in named:
            yield Command(k + 1, (), reads=("lines", target))
    i = 0
    while i < len(lines):
        attribute = re.match(r"^\s*\[(.*)\]\s*$", lines[i])
        if attribute is not None:
            found = re.search(r"(?:^|[\s,])script\s*(?:\((.*?)\))?\s*(?:,|$)", attribute.group(1))
            if found is not None:
                given = [a or b for a, b in re.findall(quoted, found.group(1) or "")]
                script_by = given or interpreter
            i += 1
            continue
        header = re.match(r"^[@A-Za-z0-9_][^:#=]*:(?!=)", lines[i])
        by, script_by = script_by, None
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if header is None or j >= len(lines) or not lines[j][:1].isspace():
            i += 1
            continue
        end = j
        while end < len(lines) and (not lines[end].strip() or lines[end][:1].isspace()):
            end += 1
        body = textwrap.dedent("\n".join(lines[j:end]))
        if by is not None:
            body = "#!" + " ".join(shlex.quote(w) for w in by) + "\n" + body
            j -= 1  # (the body's lines keep their numbers)
        if body.startswith("#!"):
            first, _, script = body.partition("\n")
            try:
                words = _split(first[2:])
            except ValueError:
                words = [first[2:]]
            what, program = _program_of(words)
            numbers = tuple(j + 2 + k for k in range(script.count("\n") + 1))
            if what == "python":
                code = re.sub(r"\{\{.*?\}\}", "$JUST_EXPRESSION", script, flags=re.S)
                yield Command(j + 1, (*words, "-"), stdin=Stdin(code, numbers, "$" in code))
            elif what == "posix":
                yield from _shell(script, j + 2)
            else:
                yield Command(j + 1, (), f"a just recipe run by {program!r}", script)
            for k in range(j, end):
                generic[k] = ""
        elif kind != "posix":
            for k in range(j, end):
                line = lines[k].strip().lstrip("@-")
                if not line or line.startswith("#"):
                    continue
                if kind == "python":
                    yield Command(k + 1, (*shell, line))
                else:
                    yield Command(k + 1, (), f"a just recipe line run by {shown!r}", line)
                generic[k] = ""
        i = end
    yield from _shell(_lines_text("\n".join(generic)), 1, script=False)


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
#: A file Python runs without being asked: at start-up (``sitecustomize``, a ``.pth`` file's
#: ``import`` lines) or as a script or module (``.py``).
_PYTHON_DEST = re.compile(r"(?:^|/)(?:[^/]*\.pyw?|[^/]*\.pth)$", re.I)
_DOCKER_HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z0-9_.-]+)\2$")


def _dockerfile(text: str) -> Iterator[Command]:
    """``RUN``, ``CMD``, ``ENTRYPOINT`` (also after ``ONBUILD`` and ``HEALTHCHECK``): the shell
    form read as a shell script (here-documents kept), the exec form as its words. The escape
    character is ``\\`` or the one a ``# escape=`` directive sets; comment lines and empty lines
    inside a continued instruction are dropped, as Docker drops them. An exec-form
    ``ENTRYPOINT`` and ``CMD`` are also one command, the entrypoint's words first.

    A ``SHELL`` instruction that is not a POSIX shell (``SHELL ["python3", "-c"]``) makes the
    shell form of the stage's later instructions one command: its words with the text after
    them (a stage started ``FROM`` an earlier stage keeps that stage's shell). A ``COPY`` or
    ``ADD`` here-document written to a Python file (``.py``, ``.pyw``, ``sitecustomize``) is a
    Python program, and to a ``.pth`` file its ``import`` lines are (Python runs them at
    start-up)."""
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
    shell: list[str] | None = None  # None: /bin/sh -c
    stage_shells: dict[str, list[str] | None] = {}
    stage = ""
    i = 0

    def joined(body: str) -> str:
        nonlocal i
        body = body.rstrip()
        while body.endswith(escape) and i + 1 < len(lines):
            i += 1
            if not lines[i].strip() or lines[i].strip().startswith("#"):
                continue
            body = body[: -len(escape)] + " " + lines[i].strip()
            body = body.rstrip()
        return body

    while i < len(lines):
        other = re.match(r"\s*(FROM|SHELL|COPY|ADD)(?:\s+(.*))?$", lines[i], re.I | re.S)
        if other is not None:
            start = i
            name, body = other.group(1).upper(), joined(other.group(2) or "")
            if name == "FROM":
                parts = [w for w in body.split() if not w.startswith("--")]
                shell = stage_shells.get(parts[0].lower()) if parts else None
                stage = parts[2].lower() if len(parts) > 2 and parts[1].lower() == "as" else ""
                stage_shells[stage] = shell
            elif name == "SHELL":
                try:
                    words = json.loads(body)
                except ValueError:
                    words = None
                if not (
                    isinstance(words, list) and words and all(isinstance(w, str) for w in words)
                ):
                    yield Command(start + 1, (), "a SHELL instruction that cannot be read", body)
                    words = ["$DOCKER_SHELL"]
                program = argv(words)[:1]
                shell = None if program and program[0].rsplit("/", 1)[-1] in SHELLS else words
                stage_shells[stage] = shell
            elif "<<" in body:
                yield from _docker_copy_heredocs(body, lines, start, i)
                i = _heredoc_end(body, lines, i)
            i += 1
            continue
        m = re.match(
            r"\s*(?:ONBUILD\s+)?(?:HEALTHCHECK\s+(?:--\S+\s+)*)?(RUN|CMD|ENTRYPOINT)(?:\s+(.*))?$",
            lines[i],
            re.I | re.S,
        )
        if m is None:
            i += 1
            continue
        start = i
        body = joined(m.group(2) or "")
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
        if shell is not None:
            # the stage's SHELL runs the text (a HEALTHCHECK's too): its words, then the text
            words = [*shell, body]
            yield Command(start + 1, tuple(words))
            yield from _inner(words, start + 1, 0)
            program = argv(shell)[:1]
            if program and python_interpreter(program[0]):
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


def _heredoc_end(body: str, lines: list[str], i: int) -> int:
    """The index of the last line of the here-documents of a ``COPY``/``ADD`` ending on line
    ``i``."""
    for word in body.split():
        m = _DOCKER_HEREDOC.fullmatch(word)
        if m is not None:
            i += 1
            while i < len(lines) and lines[i].strip() != m.group(3):
                i += 1
    return min(i, len(lines) - 1)


def _docker_copy_heredocs(body: str, lines: list[str], start: int, i: int) -> Iterator[Command]:
    """The Python that a ``COPY``/``ADD`` ending on line ``i`` writes from here-documents: a
    ``.py`` file's text, a ``.pth`` file's ``import`` lines, each as ``python -`` reading it."""
    words = [w for w in body.split() if not w.startswith("--")]
    sources = words[:-1]
    dest = words[-1] if len(words) > 1 else ""
    for word in sources:
        m = _DOCKER_HEREDOC.fullmatch(word)
        if m is None:
            continue
        first = i + 1
        i = first
        while i < len(lines) and lines[i].strip() != m.group(3):
            i += 1
        content = lines[first:i]
        path = dest
        if dest.endswith("/") or len(sources) > 1:
            path = dest.rstrip("/") + "/" + m.group(3)
        if not _PYTHON_DEST.search(path):
            continue
        if path.lower().endswith(".pth"):
            # site.py runs a .pth line that starts with "import" (then a space or a tab)
            content = [ln if re.match(r"import[ \t]", ln) else "" for ln in content]
            if not any(content):
                continue
        numbers = tuple(first + 1 + n for n in range(len(content)))
        code = "\n".join(content)
        expanded = not m.group(2)
        yield Command(start + 1, ("python", "-"), stdin=Stdin(code, numbers, expanded))


# -- package.json, YAML, nox -------------------------------------------------------------------
#: The commands a dev container runs as it is made and started (``devcontainer.json``): a
#: string (run by a shell), an array (one command's words, no shell) or an object of named
#: commands of either form, run in parallel.
DEVCONTAINER_KEYS = (
    "initializeCommand",
    "onCreateCommand",
    "updateContentCommand",
    "postCreateCommand",
    "postStartCommand",
    "postAttachCommand",
)
#: A JSONC token: a string (kept), a comment (dropped), or a comma before a closing bracket.
_JSONC = re.compile(r'"(?:[^"\\]|\\.)*"|//[^\n]*|/\*.*?(?:\*/|\Z)|,(?=\s*[}\]])', re.S)


def _jsonc(text: str) -> str:
    """JSON with comments (``//``, ``/* */``) and trailing commas, as VS Code reads
    ``devcontainer.json``, made JSON (a comment keeps its newlines, so lines stay)."""

    def one(m: re.Match[str]) -> str:
        found = m.group()
        return found if found.startswith('"') else "\n" * found.count("\n")

    return _JSONC.sub(one, text)


def _package_json(text: str) -> Iterator[Command]:
    """``package.json`` ``scripts`` and ``devcontainer.json`` lifecycle commands
    (:data:`DEVCONTAINER_KEYS`; comments and trailing commas allowed), with the Dockerfile
    (``build.dockerfile``, ``dockerFile``) and Compose files (``dockerComposeFile``) a dev
    container is made from. Control characters in strings are taken, as the lenient
    parsers of npm and VS Code take them. A file that does not load is read line by line as
    shell, and is also a command not understood (fail closed: those tools may read it)."""
    try:
        doc = json.loads(_jsonc(text), strict=False)
    except (ValueError, RecursionError):
        yield Command(1, (), "a JSON file that does not parse", text)
        yield from _shell(_lines_text(text), 1, script=False)
        return
    if not isinstance(doc, dict):
        return
    scripts = doc.get("scripts")
    for value in scripts.values() if isinstance(scripts, dict) else []:
        if isinstance(value, str):
            yield from _shell(value, max(1, _line_of(text, json.dumps(value)[1:-1])))
    # the image a dev container is built from, and its Compose files, relative to it
    build = doc.get("build")
    dockerfile = build.get("dockerfile") if isinstance(build, dict) else doc.get("dockerFile")
    if isinstance(dockerfile, str):
        line = max(1, _line_of(text, json.dumps(dockerfile)))
        yield Command(line, (), reads=("dockerfile", dockerfile))
    compose = doc.get("dockerComposeFile")
    for name in compose if isinstance(compose, list) else [compose]:
        if isinstance(name, str):
            yield Command(max(1, _line_of(text, json.dumps(name))), (), reads=("yaml", name))
    for key in DEVCONTAINER_KEYS:
        value = doc.get(key)
        line = max(1, _line_of(text, f'"{key}"'))
        for one in value.values() if isinstance(value, dict) else [value]:
            if isinstance(one, str):
                yield from _relined(_shell(one, line), line)
            elif isinstance(one, list) and one and all(isinstance(w, str) for w in one):
                yield Command(line, tuple(one))
                yield from _inner(list(one), line, 0)
            elif one is not None:
                yield Command(line, (), f"a {key} that is not a command", json.dumps(one))


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

    def default_shell(keys: dict[Any, yaml.Node]) -> yaml.Node | None:
        # GitHub's ``defaults: run: shell:`` (workflow or job): the shell of its ``run`` steps
        defaults = keys.get("defaults")
        if isinstance(defaults, yaml.MappingNode):
            runs = {k.value: v for k, v in defaults.value if isinstance(k, yaml.ScalarNode)}
            run = runs.get("run")
            if isinstance(run, yaml.MappingNode):
                found = {k.value: v for k, v in run.value if isinstance(k, yaml.ScalarNode)}
                shell = found.get("shell")
                return shell if isinstance(shell, yaml.ScalarNode) else None
        return None

    executors: dict[str, yaml.Node] = {}  # CircleCI executors that set a ``shell``
    for document in documents:
        if isinstance(document, yaml.MappingNode):
            top = {k.value: v for k, v in document.value if isinstance(k, yaml.ScalarNode)}
            defined = top.get("executors")
            for key, value in defined.value if isinstance(defined, yaml.MappingNode) else []:
                if isinstance(value, yaml.MappingNode):
                    fields = {k.value: v for k, v in value.value if isinstance(k, yaml.ScalarNode)}
                    if isinstance(fields.get("shell"), yaml.ScalarNode):
                        executors[str(key.value)] = fields["shell"]

    def job_shell(keys: dict[Any, yaml.Node]) -> yaml.Node | None:
        # CircleCI's job-level ``shell:`` (or its executor's): the shell of its ``run`` steps
        if "steps" not in keys:
            return None
        shell = keys.get("shell")
        if isinstance(shell, yaml.ScalarNode):
            return shell
        executor = keys.get("executor")
        if isinstance(executor, yaml.MappingNode):
            named = {k.value: v for k, v in executor.value if isinstance(k, yaml.ScalarNode)}
            executor = named.get("name")
        return executors.get(str(executor.value)) if isinstance(executor, yaml.ScalarNode) else None

    def words_of(node: yaml.Node | None) -> list[str] | None:
        if isinstance(node, yaml.SequenceNode):
            values = [n.value for n in node.value if isinstance(n, yaml.ScalarNode)]
            return [ci(str(v)) for v in values] if len(values) == len(node.value) else None
        if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str):
            try:
                return _split(ci(node.value))
            except ValueError:
                return None
        return None

    def pairs(keys: dict[Any, yaml.Node]) -> None:
        # a container runs its entrypoint's words with its command's after them (GitLab
        # ``services``/``image``, Compose), Kubernetes and Tekton a step's command with its args
        for program, arguments in (("entrypoint", "command"), ("command", "args")):
            first, second = words_of(keys.get(program)), words_of(keys.get(arguments))
            if first and second and isinstance(keys[program], yaml.SequenceNode):
                line = scalar_line(keys[arguments])
                out.append(Command(line, (*first, *second)))
                out.extend(_inner([*first, *second], line, 0))

    def included(node: yaml.Node, depth: int) -> None:
        # GitLab's ``include:``: file names, not commands, but for the ``inputs:`` an entry
        # gives its file (substituted into its scripts: ``$[[ inputs.cmd ]]``)
        out.extend(_yaml_includes(node, scalar_line))
        seen.add(id(node))
        for item in node.value if isinstance(node, yaml.SequenceNode) else [node]:
            if isinstance(item, yaml.MappingNode):
                for key, value in item.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == "inputs":
                        walk(value, depth + 1)

    def walk(node: yaml.Node | None, depth: int, inherited: yaml.Node | None = None) -> None:
        if node is None or depth > 100 or id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            text = _yaml_text(node)
            if text is not None:
                out.extend(_shell(ci(text), scalar_line(node)))
                if python_shebang(text.lstrip()):
                    # a script a runner writes to a file and executes (Tekton ``script``,
                    # Argo ``source``): its shebang's Python runs the rest
                    shebang, _, body = text.lstrip().partition("\n")
                    start = scalar_line(node) + 1
                    numbers = tuple(start + n for n in range(body.count("\n") + 1))
                    stdin = Stdin(body, numbers, _CI_EXPRESSION.search(body) is not None)
                    try:
                        interpreter = _split(shebang[2:])
                    except ValueError:
                        interpreter = ["python"]
                    out.append(Command(start - 1, (*interpreter, "-"), stdin=stdin))
        elif isinstance(node, yaml.SequenceNode):
            values = [n.value for n in node.value if isinstance(n, yaml.ScalarNode)]
            if values and len(values) == len(node.value) and str(values[0]).split() == [values[0]]:
                words = [ci(str(v)) for v in values]
                out.append(Command(scalar_line(node), tuple(words)))
                out.extend(_inner(words, scalar_line(node), 0))
            for child in node.value:
                walk(child, depth + 1, inherited)
        elif isinstance(node, yaml.MappingNode):
            keys = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
            # a prose key holds prose only when its value is text (a step's or a workflow's
            # ``name``); a mapping under it is a job (GitHub job ``name``, GitLab ``description``)
            prose = {
                id(keys[k])
                for k in PROSE_KEYS
                if k in keys and isinstance(keys[k], yaml.ScalarNode)
            }
            inherited = default_shell(keys) or job_shell(keys) or inherited
            pairs(keys)
            extends = keys.get("extends")
            if isinstance(extends, yaml.MappingNode):
                # a Compose service extending one of another file: that file's services run
                given = {k.value: v for k, v in extends.value if isinstance(k, yaml.ScalarNode)}
                other = given.get("file")
                if isinstance(other, yaml.ScalarNode) and (text := _yaml_text(other)) is not None:
                    out.append(Command(scalar_line(other), (), reads=("yaml", text.strip())))
            build = keys.get("build")
            if isinstance(build, yaml.MappingNode):
                # a Compose service's image: its Dockerfile, from the build's context
                given = {k.value: v for k, v in build.value if isinstance(k, yaml.ScalarNode)}
                dockerfile, context = given.get("dockerfile"), given.get("context")
                folder = str(context.value) if isinstance(context, yaml.ScalarNode) else "."
                if isinstance(dockerfile, yaml.ScalarNode) and "://" not in folder:
                    name = posixpath.normpath(posixpath.join(folder, str(dockerfile.value)))
                    out.append(Command(scalar_line(dockerfile), (), reads=("dockerfile", name)))
            trigger = keys.get("trigger")
            if isinstance(trigger, yaml.MappingNode):
                # a GitLab child pipeline: ``trigger: include:`` runs that file's jobs
                found = {k.value: v for k, v in trigger.value if isinstance(k, yaml.ScalarNode)}
                if "include" in found and id(found["include"]) not in seen:
                    included(found["include"], depth)
            run = keys.get("run")
            if not isinstance(run, yaml.ScalarNode) and isinstance(
                keys.get("command"), yaml.ScalarNode
            ):
                run = keys["command"]  # CircleCI ``run: {command: ..., shell: ...}``
            shell = keys.get("shell", inherited if isinstance(run, yaml.ScalarNode) else None)
            program = ""
            if isinstance(shell, yaml.ScalarNode) and isinstance(run, yaml.ScalarNode):
                program = str(shell.value).strip().split(" ", 1)[0]
                if program.rsplit("/", 1)[-1] in SHELLS or program in ("", "pwsh", "cmd"):
                    program = ""
                elif _CI_EXPRESSION.search(str(shell.value)):
                    # a shell the run computes may be Python: read the text as both
                    program = "$CI_SHELL_MAYBE_PYTHON"
            task = keys.get("task")
            inputs = keys.get("inputs")
            if (
                isinstance(task, yaml.ScalarNode)
                and str(task.value).strip().lower().startswith("pythonscript@")
                and isinstance(inputs, yaml.MappingNode)
            ):
                # Azure Pipelines' PythonScript task: an inline script or a script file
                given = {k.value: v for k, v in inputs.value if isinstance(k, yaml.ScalarNode)}
                script, path = given.get("script"), given.get("scriptPath")
                if isinstance(script, yaml.ScalarNode):
                    first = scalar_line(script)
                    code = str(script.value)
                    numbers = tuple(first + n for n in range(code.count("\n") + 1))
                    stdin = Stdin(code, numbers, "$(" in code or "${{" in code)
                    out.append(Command(first, ("python", "-"), stdin=stdin))
                if isinstance(path, yaml.ScalarNode):
                    out.append(Command(scalar_line(path), ("python", ci(str(path.value)))))
            for _key, value in node.value:
                if program and value is run and isinstance(run, yaml.ScalarNode):
                    first = scalar_line(run)
                    code = str(run.value)
                    numbers = tuple(first + n for n in range(code.count("\n") + 1))
                    expanded = "${{" in code
                    out.append(Command(first, (program, "-"), stdin=Stdin(code, numbers, expanded)))
                    if not program.startswith("$"):
                        continue
                if id(value) not in prose:
                    walk(value, depth + 1, inherited)

    def top_pairs(node: yaml.MappingNode, depth: int = 0) -> Iterator[tuple[Any, Any]]:
        # a mapping's pairs with those a merge key (``<<: *base``, ``<<: [*a, *b]``) brings
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:merge":
                merged = value.value if isinstance(value, yaml.SequenceNode) else [value]
                for one in merged:
                    if isinstance(one, yaml.MappingNode) and depth < 8:
                        yield from top_pairs(one, depth + 1)
            else:
                yield key, value

    for document in documents:
        if isinstance(document, yaml.MappingNode):
            for key, value in top_pairs(document):
                if isinstance(key, yaml.ScalarNode) and key.value == "include":
                    included(value, 0)
                if (
                    isinstance(key, yaml.ScalarNode)
                    and key.value == "includes"
                    and isinstance(value, yaml.MappingNode)
                ):
                    out.extend(_taskfile_includes(value, scalar_line))
        walk(document, 0)
    yield from out


#: Tags of YAML scalars that are not text: a number, a boolean, null, a date (a merge key).
_YAML_NOT_TEXT = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null", "timestamp", "merge")
)


def _yaml_text(node: Any) -> str | None:
    """The text a YAML scalar is to the loader of a CI runner: a string, also one given a
    tag (``!!binary`` is base64 of its text; a local tag such as ``!x`` leaves the text
    as written, as Ruby's and Go's loaders do); None for a number, boolean, null or date."""
    if not isinstance(node.value, str) or node.tag in _YAML_NOT_TEXT:
        return None
    if node.tag == "tag:yaml.org,2002:binary":
        import binascii

        try:
            return base64.b64decode("".join(node.value.split()), validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            return node.value
    return str(node.value)


#: GitLab ``include:`` keys that name a file GitLab fetches from elsewhere, and how it is
#: shown (:func:`unread_host` reads ``://`` as remote). ``template:`` is deliberately absent:
#: it names a template shipped inside the GitLab installation itself (``Security/SAST``,
#: ``Python``), code of the CI vendor the project already trusts to run its pipeline, as a
#: GitHub workflow's ``uses:`` of an action is; failing every project that includes one would
#: teach users to waive the control. Anything a project or a third party controls (``remote:``,
#: ``project:``, ``component:``, a generated ``artifact:``) fails closed.
_REMOTE_INCLUDES = {
    "remote": "",
    "component": "gitlab-component://",
    "artifact": "gitlab-artifact://",  # a child pipeline a job writes at run time
}


#: The names task looks for in a folder (an ``includes:`` entry naming a folder).
_TASKFILE_NAMES = tuple(
    f"{t}askfile{d}.{y}" for d in ("", ".dist") for y in ("yml", "yaml") for t in "Tt"
)


def _taskfile_includes(node: Any, scalar_line: Callable[[Any], int]) -> Iterator[Command]:
    """A Taskfile's ``includes:`` (``NAME: PATH`` or ``NAME: {taskfile: PATH}``): each PATH,
    a Taskfile or a folder holding one, read as YAML (a URL cannot be read offline)."""
    import yaml

    for _name, value in node.value[:4096]:
        if isinstance(value, yaml.MappingNode):
            keys = {k.value: v for k, v in value.value if isinstance(k, yaml.ScalarNode)}
            value = keys.get("taskfile")
        text = _yaml_text(value) if isinstance(value, yaml.ScalarNode) else None
        if text is None:
            continue
        # a template (``./tasks/{{OS}}.yml``) is a value task computes: matched as a glob
        path = re.sub(r"\{\{.*?\}\}", "*", text.strip(), flags=re.S)
        named = [path]
        if "://" not in path and not path.endswith((".yml", ".yaml")):
            folder = path.rstrip("/")
            named += [f"{folder}/{f}" for f in _TASKFILE_NAMES]
        for target in named:
            yield Command(scalar_line(value), (), reads=("yaml", target))


def _yaml_includes(node: Any, scalar_line: Callable[[Any], int]) -> Iterator[Command]:
    """The files a YAML host's top-level ``include:`` merges into it (GitLab CI; Compose's
    ``include:`` of other Compose files): ``include: FILE``, a list of names, ``local:``
    (Compose ``path:``) mappings, each a command that reads FILE as YAML
    (:attr:`Command.reads`), also under a job's ``trigger:`` (a child pipeline); a
    ``remote:``, ``component:``, ``project:`` or ``artifact:`` include names a file that
    cannot be read offline (:func:`unread_host`); a ``template:`` is GitLab's own (see
    ``_REMOTE_INCLUDES``)."""
    import yaml

    def local(name: str) -> str:
        # a local include names a path from the project root (``/ci/*.yml`` is ``ci/*.yml``)
        name = name.strip()
        return name if "://" in name else name.lstrip("/")

    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    for item in items[:4096]:
        text = _yaml_text(item) if isinstance(item, yaml.ScalarNode) else None
        if text is not None:
            yield Command(scalar_line(item), (), reads=("yaml", local(text)))
        if not isinstance(item, yaml.MappingNode):
            continue
        keys = {k.value: v for k, v in item.value if isinstance(k, yaml.ScalarNode)}
        for key in ("local", "path"):
            names = keys.get(key)
            for name in names.value if isinstance(names, yaml.SequenceNode) else [names]:
                text = _yaml_text(name) if isinstance(name, yaml.ScalarNode) else None
                if text is not None:
                    yield Command(scalar_line(name), (), reads=("yaml", local(text)))
        for key, scheme in _REMOTE_INCLUDES.items():
            name = keys.get(key)
            if isinstance(name, yaml.ScalarNode):
                target = f"{scheme}{str(name.value).strip()}"
                yield Command(scalar_line(name), (), reads=("yaml", target))
        project = keys.get("project")
        if isinstance(project, yaml.ScalarNode):
            files = keys.get("file")
            names = files.value if isinstance(files, yaml.SequenceNode) else [files]
            for name in names:
                shown = str(name.value).strip() if isinstance(name, yaml.ScalarNode) else ""
                target = f"gitlab-project://{str(project.value).strip()}/{shown.lstrip('/')}"
                yield Command(scalar_line(project), (), reads=("yaml", target))


#: Methods that read a list or string without changing it: calling them keeps a binding literal.
_READ_METHODS = frozenset(
    {"copy", "count", "index", "get", "keys", "values", "items", "join", "split", "strip"}
    | {"startswith", "endswith", "format", "lower", "upper", "splitlines"}
)
_READ_PARENTS = (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.If, ast.IfExp, ast.While)
#: Builtins that only read their argument (unless the file rebinds the name).
_READ_BUILTINS = frozenset(
    {"len", "print", "sorted", "list", "tuple", "set", "frozenset", "str", "repr", "bool"}
    | {"enumerate", "any", "all", "min", "max", "reversed", "iter", "isinstance"}
)
_NOX_INSTALLS = frozenset({"install", "run", "run_always", "run_install", "conda_install"})


def literal_bindings(tree: ast.Module, reads: Callable[[ast.Call], bool]) -> dict[str, ast.expr]:
    """Module-level ``NAME = value`` bindings whose value can be trusted to be what the file
    uses: the name is bound exactly once in the whole file (any scope, any form: a
    rebinding, ``+=``, a loop variable, a walrus, an import), by a single-target assignment,
    and every use of it only reads it: an argument of a call ``reads`` accepts, an item read
    (``N[0]``), a reading method (``N.count(...)``), a loop's iterable, a comparison or an
    operand. Anything else (``N[0] = ...``, ``N.append(...)``, ``N.extend``, ``del N[0]``,
    ``M = N`` then ``M.append``, passing ``N`` to another function) may change the list
    before it is used, so the name is not trusted (its value is unknown). A module that can
    rebind its names without naming them (:func:`_rebinds_globals`) has no trusted binding."""
    stores: dict[str, int] = {}
    untrusted: set[str] = set()
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
        names: list[str] = []
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.append(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.extend((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            untrusted.update(node.names)
        for name in names:
            stores[name] = stores.get(name, 0) + 1

    def reading(node: ast.Name) -> bool:
        parent = parents.get(id(node))
        if isinstance(parent, (ast.Starred, ast.keyword)):
            node, parent = parent, parents.get(id(parent))  # type: ignore[assignment]
        if isinstance(parent, ast.Call):
            func = parent.func
            called = func.id if isinstance(func, ast.Name) else ""
            pure = called in _READ_BUILTINS and called not in stores
            return node is not func and (reads(parent) or pure)
        if isinstance(parent, ast.Attribute):
            call = parents.get(id(parent))
            return (
                isinstance(parent.ctx, ast.Load)
                and isinstance(call, ast.Call)
                and call.func is parent
                and parent.attr in _READ_METHODS
            )
        if isinstance(parent, ast.Subscript):
            return isinstance(parent.ctx, ast.Load)
        if isinstance(parent, (ast.For, ast.AsyncFor, ast.comprehension)):
            return parent.iter is node
        return isinstance(parent, _READ_PARENTS)

    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and not reading(node):
            untrusted.add(node.id)
    if _rebinds_globals(tree):
        return {}
    bound: dict[str, ast.expr] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            continue
        if (
            isinstance(target, ast.Name)
            and stores.get(target.id) == 1
            and target.id not in untrusted
        ):
            bound[target.id] = value
    return bound


def _rebinds_globals(tree: ast.Module) -> bool:
    """Whether the module can rebind its own names without naming them: through
    ``globals()``, ``locals()`` or ``vars()`` (the module namespace at module level),
    ``sys.modules`` (the module object), or ``exec``/``eval`` run in the module namespace
    (without a namespace of their own)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in ("globals", "locals") or (name == "vars" and not node.args):
                return True  # also ``builtins.globals()``
            if name in ("exec", "eval") and len(node.args) + len(node.keywords) < 2:
                return True
            if any(isinstance(a, ast.Name) and a.id == "__name__" for a in node.args):
                return True  # ``importlib.import_module(__name__).NAME = ...``
        if isinstance(node, ast.Attribute) and node.attr in ("modules", "f_globals", "f_locals"):
            return True  # ``sys.modules[__name__].NAME = ...``, a frame's namespace
    return False


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
    # ``install = session.install`` (in any scope): calling ``install`` is the same call.
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr in _NOX_INSTALLS
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    aliases[target.id] = node.value.attr

    def method(call: ast.Call) -> str:
        func = call.func
        if isinstance(func, ast.Attribute):
            return func.attr
        return aliases.get(func.id, "") if isinstance(func, ast.Name) else ""

    def reads(call: ast.Call) -> bool:
        return method(call) in _NOX_INSTALLS

    bound = literal_bindings(tree, reads)

    def words_of(node: ast.expr) -> list[str]:
        target = node.value if isinstance(node, ast.Starred) else node
        if isinstance(target, ast.Name) and target.id in bound:
            target = bound[target.id]
        try:
            value = ast.literal_eval(target)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            return ["$NOX_COMPUTED"]
        if isinstance(value, str) and not isinstance(node, ast.Starred):
            return [value]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value) if isinstance(node, ast.Starred) else ["$NOX_COMPUTED"]
        return ["$NOX_COMPUTED"]

    parents = {id(c): n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
    for node in ast.walk(tree):
        # ``session.install`` handed on (``functools.partial(session.install, ...)``, a
        # helper's argument, a container): what it installs is not read.
        if isinstance(node, ast.Attribute) and node.attr in _NOX_INSTALLS:
            spelled = f"session.{node.attr}"
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in aliases:
            spelled = node.id  # the alias itself handed on
        else:
            continue
        parent = parents.get(id(node))
        if not (isinstance(parent, ast.Call) and parent.func is node) and not (
            isinstance(node, ast.Attribute)
            and isinstance(parent, ast.Assign)
            and all(isinstance(t, ast.Name) for t in parent.targets)
        ):
            yield Command(node.lineno, (), f"{spelled} is passed on; what it runs is not read", "")
    for call in calls:
        attr = method(call)
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
