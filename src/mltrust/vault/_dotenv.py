r"""``.env`` files: read (import) and write (``vault pull``).

Read: ``KEY=VALUE`` lines, optional ``export``, ``#`` comments, values bare, in single quotes
(literal) or double quotes (``\\n``, ``\\"``, ``\\\\`` escapes). No variable expansion and no
command substitution: a ``.env`` file is data. A malformed line is an error naming its line
number, never its content (it may hold a secret).

Write (``vault pull --dotenv``): every value must read back the same in the three readers a
pulled file meets — a POSIX shell (``set -a; . ./.env``), docker compose and python-dotenv —
and must never run code in the shell. What each reader does:

* single quotes: the shell takes everything literally up to the next ``'``; compose takes them
  literally but for ``\'``; python-dotenv decodes ``\\`` and ``\'`` (so backslashes differ);
* double quotes: the shell expands ``$…`` and runs `` `…` `` (escapes ``\$ \` \" \\``);
  compose interpolates ``$…`` and decodes ``\n \t \" \\``…; python-dotenv decodes
  ``\" \\ \n``… but keeps ``\$`` and `` \` `` as two characters;
* python-dotenv also expands ``${NAME}`` inside *any* quotes, with no escape for it.

So a value is written in single quotes when it holds no ``'``, backslash or newline; else in
double quotes, escaping only ``\`` and ``"`` (newlines literal), when it holds no ``$`` or
backtick; a value containing ``${``, a carriage return or a NUL byte, or one that needs both
forms, has no safe spelling and is refused with an error naming the variable (``vault run``
passes such values without any file). The file is created mode 0600 (``O_EXCL`` temporary
file, fsync, rename).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from mltrust.errors import ConfigError, InputError

__all__ = ["parse_dotenv", "remove_dotenv", "write_dotenv"]

_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


def parse_dotenv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    # only \n (and \r\n) end a line: str.splitlines() would also split on \x1e, \u2028…
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    i = 0
    while i < len(lines):
        number = i + 1
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise InputError(f".env line {number}: not KEY=VALUE")
        key, raw = match.group(1), match.group(2)
        if raw.startswith("'"):
            end = raw.find("'", 1)
            if end < 0 or (raw[end + 1 :].strip() and not raw[end + 1 :].lstrip().startswith("#")):
                raise InputError(f".env line {number}: unterminated single quote")
            out[key] = raw[1:end]
        elif raw.startswith('"'):
            buf: list[str] = []
            rest = raw[1:]
            while True:
                j = 0
                closed = False
                while j < len(rest):
                    ch = rest[j]
                    if ch == "\\" and j + 1 < len(rest):
                        buf.append(_ESCAPES.get(rest[j + 1], "\\" + rest[j + 1]))
                        j += 2
                        continue
                    if ch == '"':
                        closed = True
                        break
                    buf.append(ch)
                    j += 1
                if closed:
                    tail = rest[j + 1 :].strip()
                    if tail and not tail.startswith("#"):
                        raise InputError(f".env line {number}: text after the closing quote")
                    break
                if i >= len(lines):  # a multi-line value runs to the end of the file
                    raise InputError(f".env line {number}: unterminated double quote")
                buf.append("\n")
                rest = lines[i]
                i += 1
            out[key] = "".join(buf)
        else:
            value = re.split(r"\s+#", raw, maxsplit=1)[0]
            out[key] = value.strip()
    return out


def _quote(name: str, value: str) -> str:
    """``value`` spelled so that sh, docker compose and python-dotenv all read it back as is
    (see the module docstring); InputError naming ``name`` when no spelling is safe."""
    if "${" in value:
        problem = "holds '${' (python-dotenv expands ${NAME} inside any quotes)"
    elif "\r" in value or "\0" in value:
        problem = "holds a carriage return or a NUL byte"
    elif any(c in value for c in "'\\\n") and ("$" in value or "`" in value):
        problem = "holds a quote, backslash or newline together with '$' or a backtick"
    else:
        if not any(c in value for c in "'\\\n"):
            spelled = f"'{value}'"
        else:
            spelled = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        # Last guard: the spelling must read back as is (white space at the end of a line
        # inside a multi-line value does not survive every reader, ours included).
        try:
            if parse_dotenv(f"{name}={spelled}\n").get(name) == value:
                return spelled
        except InputError:
            pass
        problem = "does not read back the same once written (white space around a line break?)"
    raise InputError(
        f"variable {name}: its value {problem}; no .env quoting reads back the same in sh,"
        " docker compose and python-dotenv",
        hint="use `mltrust vault run` (no file), or change the value",
    )


def write_dotenv(path: Path, values: dict[str, str]) -> None:
    """Write ``values`` to ``path`` atomically, readable by the owner only."""
    # every value is checked before the file is created: no half-written .env
    data = "".join(f"{k}={_quote(k, v)}\n" for k, v in sorted(values.items()))
    folder = path.parent if str(path.parent) else Path(".")
    tmp = folder / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.write(fd, data.encode("utf-8"))
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise


def remove_dotenv(path: Path) -> bool:
    """Remove the file (or a link in its place); True when something was removed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a .env file") from None
    return True
