"""Red-team bypasses of the install reader: requirements-file option lines pip honours
(abbreviated long options, several options on one line, continuation decided on the raw line),
pip/uv command lines (short-option clusters, global options before the subcommand,
``-mpip``), installers hidden by ordinary shell forms (quotes, ``${PIP:-pip}``,
``$(command -v pip)``, ``bash -o pipefail -c``, ``xargs``, ``uvx --with``) and other
installers (pipenv, poetry, pdm, hatch env commands). Each must fail the gate."""

from __future__ import annotations

from pathlib import Path

import pytest

import test_check_depattacks as _attacks
from mltrust.policy import ControlStatus
from test_check_depattacks import VULN, _check, _project

db = _attacks.db  # the advisory fixture (evilpkg 1.5 is vulnerable)

PIN = "evilpkg==1.5"


def _vulns(bundle) -> set[tuple[str, int]]:  # type: ignore[no-untyped-def]
    return {(v["source"], v["line"]) for v in bundle.document["deps"]["vulnerabilities"]}


@pytest.mark.parametrize(
    ("files", "source", "line"),
    [
        ({"requirements.txt": "--requireme pins.lst\n", "pins.lst": PIN + "\n"}, "pins.lst", 1),
        ({"requirements.txt": "--pre -r pins.lst\n", "pins.lst": PIN + "\n"}, "pins.lst", 1),
        ({"requirements.txt": "--pre --requirement=pins.lst\n", "pins.lst": PIN}, "pins.lst", 1),
        ({"requirements.txt": "-i x -rpins.lst\n", "pins.lst": PIN + "\n"}, "pins.lst", 1),
        ({"requirements.txt": "--pre \\ \n" + PIN + "\n"}, "requirements.txt", 2),
        ({"requirements.txt": "--constr pins.lst\n", "pins.lst": PIN + "\n"}, "pins.lst", 1),
        ({"tox.ini": "[testenv]\ndeps = --requireme pins.lst\n", "pins.lst": PIN}, "pins.lst", 1),
    ],
    ids=["abbrev", "option_first", "option_eq", "cluster", "trailing_space", "constr", "tox"],
)
def test_attack_requirements_option_line_pip_honours(
    tmp_path: Path, db: Path, files: dict[str, str], source: str, line: int
) -> None:
    bundle, controls = _check(_project(tmp_path, files), db)
    assert (source, line) in _vulns(bundle)
    assert controls[VULN].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    "line",
    [
        "--editab git+https://example.invalid/evilpkg@v1.5#egg=evilpkg",
        "--editable=git+https://example.invalid/evilpkg@v1.5#egg=evilpkg",
        "--no-such-option x",
        "--pre --bogus",
        "-Z evilpkg",
    ],
)
def test_attack_requirements_option_line_not_understood_fails_closed(
    tmp_path: Path, db: Path, line: str
) -> None:
    bundle, controls = _check(_project(tmp_path, {"requirements.txt": line + "\n"}), db)
    deps = bundle.document["deps"]
    assert deps["unverifiable"] or deps["errors"]
    assert controls[VULN].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    "line",
    ["--index-url https://example.invalid/simple", "--pre", "--hash=sha256:00", "-i x --pre"],
)
def test_requirements_option_lines_pip_understands_are_clean(
    tmp_path: Path, db: Path, line: str
) -> None:
    bundle, controls = _check(_project(tmp_path, {"requirements.txt": line + "\nok==1\n"}), db)
    deps = bundle.document["deps"]
    assert not deps["unverifiable"] and not deps["errors"]
    assert controls[VULN].status is ControlStatus.PASS


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        ("pip install -qr pins.lst", {"pins.lst": PIN}),
        ("pip install --requireme pins.lst", {"pins.lst": PIN}),
        ("pip install -Ur pins.lst", {"pins.lst": PIN}),
        ("pip --proxy http://127.0.0.1:9 install " + PIN, {}),
        ("pip --log /tmp/x.log install " + PIN, {}),
        ("pip --timeout 5 --cache-dir /tmp/c install " + PIN, {}),
        ("python3 -mpip install " + PIN, {}),
        ("python3 -m pip -q install " + PIN, {}),
        ("uv --directory . pip install --system " + PIN, {}),
        ("uv -p 3.12 pip install " + PIN, {}),
        ("uv --project x add " + PIN, {}),
        ("p''ip install " + PIN, {}),
        ('"pip" install ' + PIN, {}),
        ("${PIP:-pip} install " + PIN, {}),
        ("$(command -v pip) install " + PIN, {}),
        ("bash -o pipefail -c 'pip install " + PIN + "'", {}),
        ("bash -ec 'pip install " + PIN + "'", {}),
        ("eval 'pip install " + PIN + "'", {}),
        ("uvx --with " + PIN + " ruff --version", {}),
        ("uv tool run --with " + PIN + " ruff", {}),
        ("pipx run --spec " + PIN + " evil", {}),
        ("pipenv install " + PIN, {}),
        ("poetry add " + PIN, {}),
        ("pdm add " + PIN, {}),
        ("poetry run pip install " + PIN, {}),
        ("$PYTHON -m pip install " + PIN, {}),
        ("${PYTHON:-python3} -mpip --isolated install " + PIN, {}),
    ],
)
def test_attack_install_command_forms_are_read(
    tmp_path: Path, db: Path, command: str, extra: dict[str, str]
) -> None:
    files = {"build.sh": "#!/bin/sh\n" + command + "\n", **extra}
    bundle, controls = _check(_project(tmp_path, files), db)
    assert _vulns(bundle) & {("build.sh", 2), ("pins.lst", 1)}
    assert controls[VULN].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    "command",
    [
        "echo " + PIN + " | xargs pip install",
        "cat list | xargs -n1 pip install",
        "$INSTALLER install " + PIN,
        "${TOOL} install " + PIN,
    ],
)
def test_attack_install_whose_operands_are_unknown_fails_closed(
    tmp_path: Path, db: Path, command: str
) -> None:
    bundle, controls = _check(_project(tmp_path, {"build.sh": "#!/bin/sh\n" + command + "\n"}), db)
    deps = bundle.document["deps"]
    assert deps["vulnerabilities"] or deps["unverifiable"] or deps["errors"]
    assert controls[VULN].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    "command",
    [
        "pip install -U pip setuptools wheel",
        "pip install --no-cache-dir --upgrade-strategy eager -e .",
        "python -m pip install --user --only-binary :all: ok==1",
        "pip --version",
        "pip download -d dist evilpkg==1.5",
        "pip uninstall -y evilpkg",
        "poetry install --no-root",
        "bash -o pipefail -c 'echo hi'",
        "install -m 755 a /usr/local/bin/a",
    ],
)
def test_ordinary_commands_are_not_problems(tmp_path: Path, db: Path, command: str) -> None:
    files = {"build.sh": "#!/bin/sh\n" + command + "\n", "pyproject.toml": _PROJECT}
    bundle, controls = _check(_project(tmp_path, files), db)
    deps = bundle.document["deps"]
    assert not deps["vulnerabilities"] and not deps["unverifiable"] and not deps["errors"]
    assert controls[VULN].status is ControlStatus.PASS


_PROJECT = "[project]\nname = 'p'\nversion = '1'\n"


@pytest.mark.parametrize("key", ["pre-install-commands", "post-install-commands"])
def test_attack_hatch_env_install_commands_are_read(tmp_path: Path, db: Path, key: str) -> None:
    text = (
        "[project]\nname = 'x'\nversion = '1'\n[tool.hatch.envs.default]\n"
        f"{key} = ['pip install {PIN}']\n"
    )
    bundle, controls = _check(_project(tmp_path, {"pyproject.toml": text}), db)
    assert ("pyproject.toml", 5) in _vulns(bundle)
    assert controls[VULN].status is ControlStatus.FAIL
