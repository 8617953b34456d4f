"""Add SHA-256 hashes to requirements/lock.txt so `make` can install it with --require-hashes.

    python scripts/lock_hashes.py            # rewrite requirements/lock.txt in place

The lock is a plain `name==version` freeze (edit it by hand or with `pip freeze`); this script
downloads each pinned release once with pip (from the index or the local wheel folders pip is
configured with) and writes every pin as `name==version --hash=sha256:…`. Hashes already in the
file are kept, so a release that was hashed for another platform keeps that hash too. The
project itself is not in the lock: the Makefile installs it with `--no-deps` after the lock.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

LOCK = Path(__file__).resolve().parents[1] / "requirements" / "lock.txt"
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)")


def _read(lock: Path) -> list[tuple[str, str, set[str]]]:
    pins: list[tuple[str, str, set[str]]] = []
    for raw in lock.read_text().replace("\\\n", " ").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _PIN.match(line)
        if not m:
            raise SystemExit(f"lock_hashes: not a pin: {raw!r}")
        hashes = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
        pins.append((m.group(1), m.group(2), hashes))
    return pins


def _name_of(filename: str) -> str:
    if filename.endswith(".whl"):
        return str(parse_wheel_filename(filename)[0])
    return str(parse_sdist_filename(filename)[0])


def main() -> int:
    pins = sorted(_read(LOCK), key=lambda p: str(canonicalize_name(p[0])))
    with tempfile.TemporaryDirectory() as tmp:
        reqs = Path(tmp) / "pins.txt"
        reqs.write_text("".join(f"{n}=={v}\n" for n, v, _ in pins))
        dest = Path(tmp) / "dl"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-r", str(reqs),
             "-d", str(dest)],
            check=True,
        )  # fmt: skip
        found: dict[str, set[str]] = {}
        for f in dest.iterdir():
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            found.setdefault(str(canonicalize_name(_name_of(f.name))), set()).add(digest)
    lines = ["# Pinned with hashes; regenerate with `python scripts/lock_hashes.py`."]
    for name, version, old in pins:
        hashes = sorted(old | found.get(str(canonicalize_name(name)), set()))
        if not hashes:
            raise SystemExit(f"lock_hashes: no file downloaded for {name}=={version}")
        parts = [f"{name}=={version}"] + [f"--hash=sha256:{h}" for h in hashes]
        lines.append(" \\\n    ".join(parts))
    LOCK.write_text("\n".join(lines) + "\n")
    print(f"lock_hashes: {len(pins)} pins hashed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
