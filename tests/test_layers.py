"""The layers of the architecture hold: imports only go downwards.

The layers are those of the design (interfaces → decisions → evidence → storage → core). Every
``import mltrust.…`` in the source is checked, including imports inside functions (the lazy ones
count: a lazy upward import is still an upward dependency). This is our own contract checker,
read from the AST, so that it needs no extra tool in CI; a package or module missing from the
table below fails the test, so a new one must be placed in a layer on purpose.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mltrust"

INTERFACES, DECISIONS, EVIDENCE, STORAGE, CORE = 4, 3, 2, 1, 0
NAMES = {4: "interfaces", 3: "decisions", 2: "evidence", 1: "storage", 0: "core"}

#: Top-level packages and modules of ``mltrust`` by layer.
PACKAGES: dict[str, int] = {
    "cli": INTERFACES,
    "serve": INTERFACES,
    "admission": INTERFACES,
    "integrations": INTERFACES,
    "probe": INTERFACES,  # `check --target URL`: talks HTTP to an endpoint
    "policy": DECISIONS,
    "report": DECISIONS,
    "scan": EVIDENCE,
    "safeload": EVIDENCE,
    "attest": EVIDENCE,
    "bom": EVIDENCE,
    "evidence": EVIDENCE,
    "robust": EVIDENCE,
    "monitor": EVIDENCE,
    "explain": EVIDENCE,
    "executors": EVIDENCE,  # run robustness work in worker processes
    "store": STORAGE,
    "state": STORAGE,
    "vault": STORAGE,
    "advisories": STORAGE,
    "errors": CORE,
    "findings": CORE,
    "digest": CORE,
    "config": CORE,
    "files": CORE,
    "identity": CORE,
    "_lazy": CORE,
    "_logs": CORE,  # the command line's logging, configured when first used
    "_precompiled": CORE,  # dataclass methods compiled at install time (the CLI installs it)
    "_precompiled_table": CORE,
    "_npz": CORE,
}

#: Modules placed in another layer than their package: the vault's HTTP side is an interface.
MODULES: dict[str, int] = {
    "vault._app": INTERFACES,
    "vault._client": INTERFACES,
    "vault._openapi": INTERFACES,
}

#: The package roots re-export the public verbs of every layer; they are not a layer themselves.
UNLAYERED = {"__init__", "__main__"}


def _layer(module: str) -> int | None:
    """The layer of ``mltrust.<module>`` (dotted, without the ``mltrust.`` prefix)."""
    parts = module.split(".")
    if parts[0] in UNLAYERED and len(parts) == 1:
        return None
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in MODULES:
            return MODULES[key]
    if parts[0] not in PACKAGES:
        raise AssertionError(f"mltrust.{parts[0]} is in no layer: add it to tests/test_layers.py")
    return PACKAGES[parts[0]]


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """Every ``mltrust.…`` module that ``path`` imports (absolute or relative), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("mltrust.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
                names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
                found += [(node.lineno, f"mltrust.{n}".rstrip(".")) for n in names]
            elif node.module and node.module.startswith("mltrust."):
                found.append((node.lineno, node.module))
    return found


def _violations() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        own = _layer(module)
        if own is None:
            continue
        for line, target in _imports(path, module):
            name = target.removeprefix("mltrust.")
            if not name or name == "mltrust":
                continue
            theirs = _layer(name)
            if theirs is not None and theirs > own:
                out.append(
                    f"{path.relative_to(SRC.parent)}:{line}: {NAMES[own]} imports "
                    f"mltrust.{name} ({NAMES[theirs]})"
                )
    return out


def test_imports_only_go_downwards() -> None:
    assert _violations() == []


def test_every_package_is_placed_in_a_layer() -> None:
    tops = {p.stem for p in SRC.glob("*.py")} | {p.parent.name for p in SRC.glob("*/__init__.py")}
    tops -= UNLAYERED
    assert tops - set(PACKAGES) == set()


@pytest.mark.parametrize(
    ("source", "line", "layer"),
    [
        ("scan/_x.py", "from mltrust.cli._main import main\n", "interfaces"),
        ("errors.py", "def f():\n    import mltrust.store._audit\n", "storage"),
        ("files.py", "from .policy import evaluate\n", "decisions"),
    ],
)
def test_the_checker_sees_an_upward_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, line: str, layer: str
) -> None:
    """The checker itself can fail: an upward import planted in a copy of the tree is reported."""
    import shutil

    copy = tmp_path / "mltrust"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / source
    target.write_text(line, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "SRC", copy)
    found = _violations()
    assert any(source in v and f"({layer})" in v for v in found), found
