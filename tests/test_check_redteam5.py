"""Red team round 5 (rtcheck5): projects that hold a vulnerable pinned dependency or Python
that unpickles its input, and that ``mltrust check`` passed. Each attack test failed before
its fix (expected FAIL of the control, actual PASS).

Payloads are built at run time (``PICKLE_CODE``) so this file does not trip the project's
own gate."""

from __future__ import annotations

from pathlib import Path

import pytest

import test_check_depattacks as _attacks
from mltrust.evidence import CollectContext, collect_evidence
from mltrust.evidence._commands import commands
from mltrust.policy import ControlStatus, evaluate, load_profile

db = _attacks.db  # the advisory fixture (evilpkg 1.5 is vulnerable)

PIN = "evilpkg==1.5"
VULN = "no-vulnerable-dependencies"
CODE = "no-dangerous-code"
PICKLE_CODE = "import pickle, sys; pickle." + "loads(sys.stdin.buffer.read())"


def _gate(tmp_path: Path, db: Path, files: dict[str, str]):  # type: ignore[no-untyped-def]
    root = tmp_path / "p"
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    bundle = collect_evidence(CollectContext(root, advisory_db=db))
    verdict = evaluate(bundle.document, load_profile("default"))
    return bundle.document, {r.control.id: r.status for r in verdict.results}


# -- 01. nesting past the reader's depth cap was dropped silently (fail open) ---------------
# sh -c inside sh -c... four deep, $( ) four deep, an alias of an alias four deep and a
# here-document fed to sh four deep: bash runs the install; the reader stopped at depth 3
# and yielded nothing. Expected: FAIL (the unread text is a command not understood that
# names an installer); actual before the fix: PASS.
NESTED = {
    "sh-c": '#!/bin/sh\nsh -c "sh -c \'sh -c \\"sh -c pip\\\\ install\\\\ ' + PIN + '\\"\'"\n',
    "substitution": f"#!/bin/sh\necho $(echo $(echo $(echo $(pip install {PIN}))))\n",
    "alias": (
        "#!/bin/bash\nshopt -s expand_aliases\nalias a='pip install'\nalias b=a\n"
        f"alias c=b\nalias d=c\nd {PIN}\n"
    ),
    "heredoc": (
        f"#!/bin/sh\nsh <<'A'\nsh <<'B'\nsh <<'C'\nsh <<'D'\npip install {PIN}\nD\nC\nB\nA\n"
    ),
}


@pytest.mark.parametrize("name", sorted(NESTED))
def test_attack_nesting_past_depth_cap_installs(tmp_path: Path, db: Path, name: str) -> None:
    _, controls = _gate(tmp_path, db, {"ci.sh": NESTED[name]})
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_nesting_past_depth_cap_runs_python(tmp_path: Path, db: Path) -> None:
    inner = f"python3 -c '{PICKLE_CODE}'"
    text = f"#!/bin/sh\necho $(echo $(echo $(echo $({inner}))))\n"
    _, controls = _gate(tmp_path, db, {"ci.sh": text})
    assert controls[CODE] is ControlStatus.FAIL


def test_nesting_within_cap_is_read_normally() -> None:
    found = commands("shell", "sh -c \"sh -c 'pip install x'\"\n")
    assert ("pip", "install", "x") in [c.words for c in found]
    assert not any(c.unreadable for c in found)


# -- 02. bash ANSI-C quoting and $IFS word splitting ----------------------------------------
# ``pip $'\x69nstall' evilpkg==1.5`` and ``pip${IFS}install${IFS}evilpkg==1.5`` are
# ``pip install evilpkg==1.5`` to bash; the reader kept ``$\x69nstall`` and one word
# ``pip${IFS}install...``. Expected: FAIL; actual before the fix: PASS.
@pytest.mark.parametrize(
    "line",
    [
        f"pip $'\\x69nstall' {PIN}",
        f"$'\\160\\151\\160' install {PIN}",
        f"pip${{IFS}}install${{IFS}}{PIN}",
        f"pip$IFS'install'$IFS'{PIN}'",
    ],
    ids=["ansi-hex", "ansi-octal", "ifs-braced", "ifs-plain"],
)
def test_attack_ansi_c_and_ifs_installs(tmp_path: Path, db: Path, line: str) -> None:
    _, controls = _gate(tmp_path, db, {"ci.sh": f"#!/bin/bash\n{line}\n"})
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_ansi_c_python_code(tmp_path: Path, db: Path) -> None:
    code = PICKLE_CODE.replace("; ", "\\n").replace("loads", "lo\\x61ds")
    _, controls = _gate(tmp_path, db, {"ci.sh": f"#!/bin/bash\npython3 -c $'{code}'\n"})
    assert controls[CODE] is ControlStatus.FAIL


def test_ansi_c_and_ifs_words() -> None:
    found = commands("shell", 'printf $\'a\\tb\\x21\' "$IFS" $"x y"\n')
    assert found[0].words == ("printf", "a\tb!", "$IFS", "x y")


def test_ansi_c_and_ifs_project_is_clean(tmp_path: Path, db: Path) -> None:
    text = "#!/bin/bash\nprintf $'a\\tb\\n'\nIFS=$'\\n' read -r x <<<\"$IFS\"\npython -m pytest\n"
    _, controls = _gate(tmp_path, db, {"ci.sh": text})
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls["analysis-complete"] is ControlStatus.PASS


# -- 03. a host file whose name the shell computes was skipped silently ----------------------
# ``bash ci/st*p`` (a glob), ``. "$D/step"`` (a variable), ``make -f mk/b*d`` and a
# Makefile's ``include mk/*.x`` run the project's file ci/step (mk/...), a file no reader
# takes by name; both readers dropped any name holding ``$ * ? [``. Expected: FAIL;
# actual before the fix: PASS.
HOSTS = {
    "glob": ("ci.sh", "#!/bin/sh\nbash ci/st*p\n", "ci/step"),
    "variable": ("ci.sh", '#!/bin/sh\nD=ci\n. "$D/step"\n', "ci/step"),
    "bracket-name": ("ci.sh", "#!/bin/sh\nbash 'ci/st[e]p'\n", "ci/st[e]p"),
    "make-f-glob": ("ci.sh", "#!/bin/sh\nmake -f mk/b*d\n", "mk/build"),
    "make-include-glob": ("Makefile", "include mk/*.x\nall:\n\techo ok\n", "mk/a.x"),
}


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_attack_computed_host_file_installs(tmp_path: Path, db: Path, name: str) -> None:
    host, text, ran = HOSTS[name]
    recipe = "\t" if ran.startswith("mk/") else ""
    body = f"b:\n{recipe}pip install {PIN}\n" if recipe else f"pip install {PIN}\n"
    _, controls = _gate(tmp_path, db, {host: text, ran: body})
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_attack_computed_host_file_runs_python(tmp_path: Path, db: Path, name: str) -> None:
    host, text, ran = HOSTS[name]
    line = f"python3 -c '{PICKLE_CODE}'"
    body = f"b:\n\t{line}\n" if ran.startswith("mk/") else f"{line}\n"
    _, controls = _gate(tmp_path, db, {host: text, ran: body})
    assert controls[CODE] is ControlStatus.FAIL


def test_computed_host_outside_project_is_clean(tmp_path: Path, db: Path) -> None:
    text = '#!/bin/sh\n. "$HOME/.cargo/env"\n. ~/.profile\nsource .venv/bin/activate\npytest\n'
    _, controls = _gate(tmp_path, db, {"ci.sh": text, "docs/env": "pip install sphinx\n"})
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls["analysis-complete"] is ControlStatus.PASS


def test_computed_host_naming_too_many_files_is_reported(tmp_path: Path, db: Path) -> None:
    files = {"ci.sh": "#!/bin/sh\nfor f in x; do bash steps/$f; done\n"}
    files |= {f"steps/s{k}": "echo ok\n" for k in range(20)}
    doc, _ = _gate(tmp_path, db, files)
    assert any("more than" in p["message"] for p in doc["deps"]["problems"])


# -- 04. performance: the installer hint was quadratic in a line of many ``$`` ---------------
# ``echo $IFS$IFS...`` (800 KB on one line) took 670 s in check (the hint regex retried its
# lazy scan from every ``$``). Expected: seconds; actual before the fix: minutes.
def test_attack_long_line_of_dollars_is_fast(tmp_path: Path, db: Path) -> None:
    import time

    started = time.perf_counter()
    _gate(tmp_path, db, {"ci.sh": "#!/bin/bash\necho " + "$a" * 60_000 + "\n"})
    assert time.perf_counter() - started < 20


def test_installer_hint_still_sees_a_variable_then_install(tmp_path: Path, db: Path) -> None:
    _, controls = _gate(tmp_path, db, {"ci.sh": f"#!/bin/bash\necho ok; $X install {PIN}\n"})
    assert controls[VULN] is ControlStatus.FAIL


# -- 05. ``$SUDO $PIP install x``: only the first computed word was taken as the program -----
# Expected: FAIL (an install by a program the shell computes); actual before the fix: PASS.
def test_attack_two_computed_words_then_install(tmp_path: Path, db: Path) -> None:
    _, controls = _gate(tmp_path, db, {"ci.sh": f"#!/bin/bash\n$SUDO $TOOL install {PIN}\n"})
    assert controls[VULN] is ControlStatus.FAIL


# -- 09. other ways bash runs a string: ``>(...)``, ``trap``, here-strings, ``su -c`` --------
# ``echo x > >(pip install ...)`` (an echo: skipped whole), ``trap 'pip install ...' EXIT``,
# ``bash <<< 'pip install ...'``, ``su -c '...' root``, ``script -qc '...' /dev/null``.
# Expected: FAIL; actual before the fix: PASS.
@pytest.mark.parametrize(
    "line",
    [
        f"echo x > >(pip install {PIN})",
        f"trap 'pip install {PIN}' EXIT",
        f"bash <<< 'pip install {PIN}'",
        f"su -c 'pip install {PIN}' root",
        f"script -qc 'pip install {PIN}' /dev/null",
        f"echo 'pip install {PIN}' | bash",
        f"printf 'set -e\\npip install {PIN}\\n' | sh -s",
    ],
    ids=["procsub-out", "trap", "here-string", "su-c", "script-c", "echo-pipe", "printf-pipe"],
)
def test_attack_strings_bash_runs_install(tmp_path: Path, db: Path, line: str) -> None:
    _, controls = _gate(tmp_path, db, {"ci.sh": f"#!/bin/bash\n{line}\n"})
    assert controls[VULN] is ControlStatus.FAIL


def test_trap_and_here_string_project_is_clean(tmp_path: Path, db: Path) -> None:
    text = (
        "#!/bin/bash\ntrap 'rm -rf build' EXIT\ntrap - INT\ncat <<< 'pip install x'\n"
        "echo 'pip install x' | tee notes.txt\necho ok | bash ./run.sh\n"
    )
    _, controls = _gate(tmp_path, db, {"ci.sh": text})
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls["analysis-complete"] is ControlStatus.PASS


# 06. A Makefile's ``include x.mk`` was read as a makefile of its own, but the variables it
# assigns were not known to the including Makefile: ``$(F)`` in a recipe, with
# ``F = pip install evilpkg==1.5`` in x.mk, was read as the unknown ``$MAKE_F`` (no args).
# Expected: FAIL; actual before the fix (check11, more in test_check_redteam7.py): PASS.
def test_attack_make_variable_from_included_file(tmp_path: Path, db: Path) -> None:
    files = {"Makefile": "include x.mk\nall:\n\t$(F)\n", "x.mk": f"F = pip install {PIN}\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


# 07. GitLab's local ``include:`` and a justfile's ``import``: the included file (a name no
# reader takes) was never read. Expected: FAIL; actual before the fix (check11, more in
# test_check_redteam7.py): PASS.
@pytest.mark.parametrize(
    ("host", "text", "ran", "body"),
    [
        (
            ".gitlab-ci.yml",
            "include:\n  - local: ci/jobs.yml\n",
            "ci/jobs.yml",
            f"job:\n  script:\n    - pip install {PIN}\n",
        ),
        ("justfile", "import 'tasks.just'\n", "tasks.just", f"setup:\n    pip install {PIN}\n"),
    ],
    ids=["gitlab-include", "just-import"],
)
def test_attack_included_ci_file_installs(
    tmp_path: Path, db: Path, host: str, text: str, ran: str, body: str
) -> None:
    _, controls = _gate(tmp_path, db, {host: text, ran: body})
    assert controls[VULN] is ControlStatus.FAIL


# 08. A hub download without a pinned revision is not a finding at all (no rule):
# ``hf_hub_download("x/y", "f.bin")`` fetches whatever the branch holds today.
# It is surfaced, though: bandit's B615 (which covers hf_hub_download) comes through as
# MLT-CODE-008 at medium, a warning of the default profile like every other bandit medium
# (issue 11: surface every bandit medium/high; only high code findings fail the gate).
def test_attack_hub_download_without_revision(tmp_path: Path, db: Path) -> None:
    text = "from huggingface_hub import hf_hub_download\nhf_hub_download('x/y', 'f.bin')\n"
    document, _ = _gate(tmp_path, db, {"a.py": text})
    findings = [f for f in document["code"]["findings"] if "B615" in f.get("message", "")]
    assert findings and findings[0]["severity"] == "medium", document["code"]["findings"]
