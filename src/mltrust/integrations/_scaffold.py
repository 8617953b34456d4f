"""`mltrust init`: scaffold a secure ML project, or add what is missing to an existing one.

Decisions:

- **Never overwrite.** A file that already exists is left as it is and reported as kept, unless
  the caller passes ``force``; a scaffold must not destroy a user's work.
- **Keys stay out of the project.** The Makefile generates the signing key under the user's
  config folder and copies only the public key into ``keys/``; ``.gitignore`` keeps ``*.key``,
  ``.env*`` and ``.mltrust/`` out of git.
- **Safe formats.** ``train.py`` exports to ONNX (data only) with a serving settings file that
  declares the input schema and training ranges.
- **Pinned dependencies** at the versions this mltrust was tested with, so ``mltrust check``
  can match every pin against the advisory database.
- The scaffold passes its own ``mltrust check`` out of the box (a test runs it).
"""

from __future__ import annotations

import importlib.resources
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mltrust import __version__
from mltrust.errors import ConfigError

__all__ = ["FILES", "ScaffoldResult", "scaffold"]

#: target path in the project -> template name. One line per scaffolded file.
FILES: dict[str, str] = {
    "train.py": "train.py.tmpl",
    "requirements.txt": "requirements.txt.tmpl",
    "README.md": "README.md.tmpl",
    "Makefile": "Makefile.tmpl",
    ".gitignore": "gitignore.tmpl",
    "mltrust.toml": "mltrust.toml.tmpl",
    "mltrust-policy.yaml": "policy.yaml.tmpl",
    ".pre-commit-config.yaml": "pre-commit-config.yaml.tmpl",
    ".github/workflows/mltrust.yml": "workflow.yml.tmpl",
}

#: ``{name}`` placeholders in templates; any other brace is left alone (YAML, Python).
_PLACEHOLDER = re.compile(r"\{(project|model|license|version|numpy|sklearn|skl2onnx)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Versions pinned in requirements.txt when the package is not installed here.
_FALLBACK_PINS = {"numpy": "2.3.5", "scikit-learn": "1.7.2", "skl2onnx": "1.19.1"}


@dataclass(frozen=True, slots=True)
class ScaffoldResult:
    root: Path
    written: tuple[str, ...]
    kept: tuple[str, ...]


def _pin(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return _FALLBACK_PINS[dist]


def _template(name: str) -> str:
    return (
        importlib.resources.files("mltrust.integrations")
        .joinpath("templates", "init", name)
        .read_text(encoding="utf-8")
    )


def _validate_name(kind: str, value: str) -> str:
    if not _NAME.match(value):
        raise ConfigError(
            f"{kind} name {value!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def scaffold(
    root: str | os.PathLike[str],
    *,
    project: str | None = None,
    model: str = "model",
    license_id: str = "apache-2.0",
    force: bool = False,
    on_file: Callable[[str, bool], None] | None = None,
) -> ScaffoldResult:
    """Write the scaffold under ``root`` (created if missing); existing files are kept.

    ``on_file(relative_path, written)`` is called for each file in :data:`FILES` order.
    """
    base = Path(root)
    if base.exists() and not base.is_dir():
        raise ConfigError(f"{base} exists and is not a folder")
    project = _validate_name("project", project or base.resolve().name or "project")
    model = _validate_name("model", model)
    if not re.fullmatch(r"[A-Za-z0-9.+-]{1,64}", license_id):
        raise ConfigError(f"license {license_id!r} is not an SPDX-style identifier")
    values = {
        "project": project,
        "model": model,
        "license": license_id,
        "version": __version__,
        "numpy": _pin("numpy"),
        "sklearn": _pin("scikit-learn"),
        "skl2onnx": _pin("skl2onnx"),
    }
    written: list[str] = []
    kept: list[str] = []
    for rel, template in FILES.items():
        target = base / rel
        if target.is_symlink() or (target.exists() and not force):
            kept.append(rel)
            if on_file is not None:
                on_file(rel, False)
            continue
        content = _PLACEHOLDER.sub(lambda m: values[m.group(1)], _template(template))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.mltrust-init")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, target)
        written.append(rel)
        if on_file is not None:
            on_file(rel, True)
    (base / "keys").mkdir(exist_ok=True)
    return ScaffoldResult(base, tuple(written), tuple(kept))
