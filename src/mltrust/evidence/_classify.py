"""What a file of the subject is, for code and dependency analysis: the one classifier.

A file is Python source when its name ends ``.py``/``.pyw``, or, whatever its name, when its
first line is a shebang that runs a Python interpreter (``#!/usr/bin/env python3``,
``#!/usr/bin/python3.11 -S``, ``#!/usr/bin/env -S python -u``, ``#!/usr/bin/env -S uv run
--script``): such a script runs as Python whether or not it has a suffix, so it is analysed
as Python. A ``.ipynb`` file is a notebook. Dependency files are recognised by name
(:func:`mltrust.evidence._depsources.dependency_kind`).
"""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath
from typing import Literal

__all__ = [
    "CODE_SUFFIXES",
    "CodeKind",
    "code_kind",
    "code_kind_by_name",
    "first_line",
    "named_for_analysis",
    "python_shebang",
]

CodeKind = Literal["python", "notebook"]

#: Python source by name (every text file is searched for secrets whatever its name).
CODE_SUFFIXES = frozenset({".py", ".pyw"})
_NOTEBOOK = ".ipynb"
#: ``python``, ``python3``, ``python3.11``, ``pypy3``, ``python3-dbg``...
_INTERPRETER = re.compile(r"(?:python|pypy)[0-9.]*(?:-[a-z0-9]+)?", re.IGNORECASE)
#: ``env`` options that take a value as the next word.
_ENV_ARG_OPTIONS = frozenset({"-u", "--unset", "-C", "--chdir", "-P", "--default-signal"})
#: Bytes of a file's start read to find its first line.
HEAD_BYTES = 512


def code_kind_by_name(rel: str) -> CodeKind | None:
    """The kind a file's name alone gives it (``.py``/``.pyw``/``.ipynb``), else None."""
    suffix = PurePosixPath(rel).suffix.lower()
    if suffix in CODE_SUFFIXES:
        return "python"
    if suffix == _NOTEBOOK:
        return "notebook"
    return None


def code_kind(rel: str, head: str) -> CodeKind | None:
    """The kind of a file from its name, else from its first line (a Python shebang)."""
    by_name = code_kind_by_name(rel)
    if by_name is not None:
        return by_name
    return "python" if python_shebang(head) else None


def named_for_analysis(rel: str) -> bool:
    """Whether the name alone makes ``rel`` a code, notebook or dependency file."""
    from mltrust.evidence._depsources import dependency_kind

    return code_kind_by_name(rel) is not None or dependency_kind(rel) is not None


def python_shebang(text: str) -> bool:
    """Whether the first line of ``text`` is a shebang that runs Python.

    The interpreter word, or for ``env`` the first word after its options (``-S``, ``-i``,
    ``-u NAME``) and ``NAME=value`` assignments, must name Python (``python``, ``python3.11``,
    ``pypy3``) or be ``uv run`` (PEP 723 scripts).
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
        i = 0
        found = ""
        while i < len(rest):
            word = rest[i]
            if word.startswith("-S") and len(word) > 2:  # -Spython3
                found = word[2:]
                rest = rest[i + 1 :]
                break
            if word in _ENV_ARG_OPTIONS:
                i += 2
                continue
            if word.startswith("-") or ("=" in word and not word.startswith("=")):
                i += 1
                continue
            found = word
            rest = rest[i + 1 :]
            break
        command = os.path.basename(found)
    if _INTERPRETER.fullmatch(command):
        return True
    return command == "uv" and "run" in rest


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
