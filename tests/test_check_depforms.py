"""Red-team bypasses of the dependency gate (check3 #12, #11): Poetry constraints in forms the
gate did not read (caret, tilde, wildcards, ``||`` unions, the multiple-constraints list) were
taken as "any version" or an unread range judged clean; and setup.py / noxfile declarations
through aliases and mutated lists. Each Poetry reading is poetry-core's (2.x) own, kept here as
fixed expected values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mltrust.advisories import AdvisoryDB
from mltrust.evidence import CollectContext, collect_evidence
from mltrust.evidence._depsources import poetry_specifiers
from mltrust.policy import ControlStatus, evaluate, load_profile

NOW = "2099-01-01T00:00:00Z"
VULN = "no-vulnerable-dependencies"
HIGH = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def _advisory(aid: str, events: list[dict[str, str]], versions: list[str]) -> dict:  # type: ignore[type-arg]
    return {
        "id": aid,
        "modified": NOW,
        "severity": [{"type": "CVSS_V3", "score": HIGH}],
        "affected": [
            {
                "package": {"name": "evilpkg", "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
                "versions": versions,
            }
        ],
    }


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """evilpkg: OSV-EVIL-1 (high) affects < 2.0 (1.0, 1.5, 1.9); OSV-EVIL-2 (high) affects
    0.0.130 only (fixed 0.0.131); 3.0 fixed-by 3.1 (OSV-EVIL-3)."""
    src = tmp_path / "osv"
    src.mkdir()
    docs = [
        _advisory("OSV-EVIL-1", [{"introduced": "1.0"}, {"fixed": "2.0"}], ["1.0", "1.5", "1.9"]),
        _advisory("OSV-EVIL-2", [{"introduced": "0.0.130"}, {"fixed": "0.0.131"}], ["0.0.130"]),
        _advisory("OSV-EVIL-3", [{"introduced": "3.0"}, {"fixed": "3.1"}], ["3.0"]),
    ]
    for doc in docs:
        (src / f"{doc['id']}.json").write_text(json.dumps(doc))
    target = tmp_path / "adv.db"
    AdvisoryDB.import_osv(src, target)
    return target


def _check(tmp_path: Path, db: Path, files: dict[str, str]):  # type: ignore[no-untyped-def]
    root = tmp_path / "p"
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    bundle = collect_evidence(CollectContext(root, advisory_db=db))
    verdict = evaluate(bundle.document, load_profile("default"), waivers=())
    return bundle.document["deps"], {r.control.id: r for r in verdict.results}


def _poetry(line: str) -> dict[str, str]:
    return {"pyproject.toml": f'[tool.poetry]\nname = "x"\n[tool.poetry.dependencies]\n{line}\n'}


# -- Poetry's constraint grammar --------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [  # poetry-core's parse_constraint, written as PEP 440
        ("^0.0.130", [">=0.0.130,<0.0.131"]),
        ("~0.0.130", [">=0.0.130,<0.1"]),
        ("^1.2.3", [">=1.2.3,<2"]),
        ("^0.2.3", [">=0.2.3,<0.3"]),
        ("^0.0", [">=0.0,<0.1"]),
        ("^0", [">=0,<1"]),
        ("~1", [">=1,<2"]),
        ("~1.2", [">=1.2,<1.3"]),
        ("~1.2.3rc1", [">=1.2.3rc1,<1.3"]),
        ("1.2.*", ["==1.2.*"]),
        ("1.x", ["==1.*"]),
        ("!=1.2.*", ["!=1.2.*"]),
        (">=1.2,<2.0", [">=1.2,<2.0"]),
        (">=1.2 <2.0", [">=1.2,<2.0"]),
        (">= 1.2, < 2.0", [">=1.2,<2.0"]),
        ("^1.2 || ^3.0", [">=1.2,<2", ">=3.0,<4"]),
        ("~=1.2", ["~=1.2"]),
        ("*", [""]),
        ("=1.5", ["==1.5"]),
    ],
)
def test_poetry_constraints_read_as_poetry_does(constraint: str, expected: list[str]) -> None:
    assert poetry_specifiers(constraint) == expected


@pytest.mark.parametrize("constraint", ["what?", "^", "1.2 ||", ">>1.0", "^1.2 ^^1.3", "~>1.0"])
def test_unreadable_poetry_constraint_is_none(constraint: str) -> None:
    assert poetry_specifiers(constraint) is None


@pytest.mark.parametrize(
    "line",
    [
        "evilpkg = '^0.0.130'",
        "evilpkg = '~1.5.0'",
        "evilpkg = '^1.5'",
        "evilpkg = '~1.5'",
        "evilpkg = '1.*'",
        "evilpkg = '~3.0'",
        "evilpkg = { version = '^1.5', optional = true }",
        "evilpkg = '^1.5 || ^3.1'",  # each alternative is judged
        "evilpkg = [{ version = '0.0.130', python = '>=3.8' }, { version = '3.1' }]",
        "evilpkg = [{ version = '^3.1', python = '<3.8' }, { version = '^0.0.130' }]",
    ],
)
def test_attack_poetry_constraint_forms_are_judged(tmp_path: Path, db: Path, line: str) -> None:
    deps, controls = _check(tmp_path, db, _poetry(line))
    assert deps["vulnerabilities"] or any(r["blocking"] for r in deps["unpinned_vulnerable"]), deps
    assert controls[VULN].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    "line",
    [
        "evilpkg = 'what?'",
        "evilpkg = '^1.5 ^^2'",
        "evilpkg = { version = ['1.5'] }",
        "evilpkg = [{ version = '3.1' }, { version = 'nonsense!' }]",
    ],
)
def test_attack_unreadable_poetry_constraint_fails_closed(
    tmp_path: Path, db: Path, line: str
) -> None:
    deps, controls = _check(tmp_path, db, _poetry(line))
    assert [u["source"] for u in deps["unverifiable"]] == ["pyproject.toml"], deps
    assert controls[VULN].status is ControlStatus.FAIL


def test_attack_unreadable_pipfile_specifier_fails_closed(tmp_path: Path, db: Path) -> None:
    deps, controls = _check(tmp_path, db, {"Pipfile": "[packages]\nevilpkg = '^1.5'\n"})
    assert [u["source"] for u in deps["unverifiable"]] == ["Pipfile"], deps
    assert controls[VULN].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    "line", ["evilpkg = '^3.1'", "evilpkg = '>=3.1 <4'", "evilpkg = [{ version = '3.1' }]"]
)
def test_poetry_constraints_allowing_fixed_releases_pass(
    tmp_path: Path, db: Path, line: str
) -> None:
    deps, controls = _check(tmp_path, db, _poetry(line))
    assert deps["unverifiable"] == [] and deps["problems"] == []
    assert controls[VULN].status is not ControlStatus.FAIL


# -- setup.py and noxfile: aliases and mutated lists (check3 #11) -----------------------------

BAD, GOOD = "evilpkg==1.5", "evilpkg==3.1"


@pytest.mark.parametrize(
    "content",
    [
        f"from setuptools import setup as make_package\nmake_package(install_requires=['{BAD}'])\n",
        f"from distutils.core import setup as s\ns(install_requires=['{BAD}'])\n",
        f"import setuptools as st\nst.setup(install_requires=['{BAD}'])\n",
        f"import distutils.core\ndistutils.core.setup(install_requires=['{BAD}'])\n",
    ],
)
def test_attack_aliased_setup_call_is_read(tmp_path: Path, db: Path, content: str) -> None:
    deps, controls = _check(tmp_path, db, {"setup.py": content})
    assert ("evilpkg", "1.5") in {(v["package"], v["version"]) for v in deps["vulnerabilities"]}
    assert controls[VULN].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    "content",
    [
        f"from setuptools import setup\nR = ['{GOOD}']\nR[0] = '{BAD}'\n"
        "setup(install_requires=R)\n",
        f"from setuptools import setup\nR = ['{GOOD}']\nR.append('{BAD}')\n"
        "setup(install_requires=R)\n",
        f"from setuptools import setup\nR = ['{GOOD}']\nR += ['{BAD}']\n"
        "setup(install_requires=R)\n",
        f"from setuptools import setup\nR = ['{GOOD}']\nR.extend(['{BAD}'])\n"
        "setup(install_requires=R)\n",
        f"from setuptools import setup\nR = ['{GOOD}']\nM = R\nM.insert(0, '{BAD}')\n"
        "setup(install_requires=R)\n",
        f"from setuptools import setup\nR = ['{GOOD}']\ndef f(x):\n    x[0] = '{BAD}'\nf(R)\n"
        "setup(install_requires=R)\n",
        f"from setuptools import setup\nR = ['{GOOD}']\ndef f():\n    global R\n"
        f"    R = ['{BAD}']\nf()\nsetup(install_requires=R)\n",
        f"import functools, setuptools\nmk = functools.partial(setuptools.setup)\n"
        f"mk(install_requires=['{BAD}'])\n",
        f"import setuptools\ns = setuptools.setup\ns(install_requires=['{BAD}'])\n",
    ],
)
def test_attack_mutated_or_passed_on_setup_input_fails_closed(
    tmp_path: Path, db: Path, content: str
) -> None:
    deps, controls = _check(tmp_path, db, {"setup.py": content})
    assert deps["problems"] or deps["vulnerabilities"], deps
    assert controls[VULN].status is ControlStatus.FAIL or deps["problems"]
    assert ("evilpkg", "3.1") not in {
        (d["package"], d.get("version")) for d in deps.get("dependencies", [])
    } or deps["problems"]


def test_setup_list_only_read_stays_literal(tmp_path: Path, db: Path) -> None:
    content = (
        f"from setuptools import setup\nR = ['{GOOD}']\nif R and len(R) > 0:\n    pass\n"
        "for r in R:\n    print(r.strip())\nsetup(install_requires=R, tests_require=R)\n"
    )
    deps, controls = _check(tmp_path, db, {"setup.py": content})
    assert deps["problems"] == [] and deps["unverifiable"] == [], deps
    assert controls[VULN].status is not ControlStatus.FAIL


_NOX = "import nox\n{top}\n@nox.session\ndef tests(session):\n{body}\n"


@pytest.mark.parametrize(
    ("top", "body"),
    [
        ("", f"    install = session.install\n    install('{BAD}')"),
        ("", f"    run = session.run\n    run('pip', 'install', '{BAD}')"),
        (f"DEPS = ['{GOOD}']\nDEPS[0] = '{BAD}'", "    session.install(*DEPS)"),
        (f"DEPS = ['{GOOD}']", f"    DEPS.append('{BAD}')\n    session.install(*DEPS)"),
        (f"DEPS = ['{GOOD}']", f"    DEPS += ['{BAD}']\n    session.install(*DEPS)"),
        ("import functools", f"    i = functools.partial(session.install, '{BAD}')\n    i()"),
        ("", f"    i = session.install\n    helper(i, '{BAD}')"),
    ],
)
def test_attack_nox_alias_or_mutated_list_fails(
    tmp_path: Path, db: Path, top: str, body: str
) -> None:
    deps, controls = _check(tmp_path, db, {"noxfile.py": _NOX.format(top=top, body=body)})
    assert deps["vulnerabilities"] or deps["unverifiable"] or deps["problems"], deps
    assert controls[VULN].status is ControlStatus.FAIL or deps["problems"]


def test_nox_list_only_read_is_trusted(tmp_path: Path, db: Path) -> None:
    text = _NOX.format(top=f"DEPS = ['{GOOD}']", body="    session.install(*DEPS)")
    deps, controls = _check(tmp_path, db, {"noxfile.py": text})
    assert deps["unverifiable"] == [] and deps["problems"] == [], deps
    assert controls[VULN].status is not ControlStatus.FAIL
