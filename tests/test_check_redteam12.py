"""Red team round 12 (after the write-then-run rules of rounds 10 and 11): files a CI script
writes and then runs in forms the reader did not follow, so that a project installed a
vulnerable pinned package (or ran Python that unpickles its input) while
``no-vulnerable-dependencies`` (or ``no-dangerous-code``) passed. Each attack was run under
bash with a harmless payload (``touch MARKER``) to confirm it runs; each attack test failed
before its fix (expected FAIL of the control, actual PASS). Gaps not closed in this round are
strict xfails with their reason; the benign tests are ordinary CI scripts with the same forms.

Files are written by the tests (``_gate`` of round 5); payloads are built at run time
(``INSTALL``, ``PICKLE_CODE``) so this file does not trip the project's own gate."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import test_check_redteam11 as _rt11
from mltrust.evidence._commands import commands
from mltrust.policy import ControlStatus

db = _rt11.db  # the advisory fixture (evilpkg 1.5 is vulnerable)
VULN, CODE, COMPLETE, PICKLE_CODE = _rt11.VULN, _rt11.CODE, _rt11.COMPLETE, _rt11.PICKLE_CODE
INSTALL = _rt11.INSTALL
_controls = _rt11._controls


# -- 01. what was written was read with other text than the shell writes, or the file run
# was not matched with the file written. Expected: FAIL; actual before: PASS.
ATTACKS = {
    # ``echo -n`` and ``printf`` print no newline: the next write continues the same line
    "echo-n-then-append": "echo -n 'pip ' > gen.sh\necho 'install evilpkg==1.5' >> gen.sh\n"
    "bash gen.sh\n",
    "printf-then-append": "printf 'pip ' > gen.sh\nprintf 'install evilpkg==1.5\\n' >> gen.sh\n"
    "bash gen.sh\n",
    # ``\c`` (echo, printf's ``%b``) stops printing: no newline either
    "echo-backslash-c": "echo -e 'pip \\c' > gen.sh\necho 'install evilpkg==1.5' >> gen.sh\n"
    "bash gen.sh\n",
    "printf-b-backslash-c": "printf '%b' 'pip \\c' > gen.sh\n"
    "echo 'install evilpkg==1.5' >> gen.sh\n"
    "bash gen.sh\n",
    # printf's ``%c`` prints the first character of its argument
    "printf-c": "printf '%c%s\\n' px 'ip install evilpkg==1.5' > gen.sh\nbash gen.sh\n",
    # an array: ``$A`` is its first element (was: ``A=`` read as set to nothing)
    "array-first": f"A=('{INSTALL}')\necho \"$A\" > gen.sh\nbash gen.sh\n",
    "declare-array": f"declare -a A=('{INSTALL}' x)\necho \"$A\" > gen.sh\nbash gen.sh\n",
    # ``+=`` and an element assignment change a variable set before (were: read as programs)
    "append-assign": "X=pip\nX+=' install evilpkg==1.5'\necho \"$X\" > gen.sh\nbash gen.sh\n",
    "element-assign": f"A=true\nA[0]='{INSTALL}'\necho \"$A\" > gen.sh\nbash gen.sh\n",
    # an editor that changes the written file in place: its text is no longer what was written
    "sed-i": "echo 'pip install goodpkg' > gen.sh\nsed -i 's/goodpkg/evilpkg==1.5/' gen.sh\n"
    "bash gen.sh\n",
    "perl-pi": "echo 'pip install goodpkg' > gen.sh\nperl -pi -e 's/goodpkg/evilpkg==1.5/' gen.sh\n"
    "bash gen.sh\n",
    "ex": "echo 'pip install goodpkg' > gen.sh\nex -sc '%s/goodpkg/evilpkg==1.5/|x' gen.sh\n"
    "bash gen.sh\n",
    # a glob run names the file written (``bash g*.sh``)
    "glob-run": f"echo '{INSTALL}' > gen.sh\nbash g*.sh\n",
    "glob-run-class": f"mkdir -p ci\necho '{INSTALL}' > ci/gen.sh\n. ci/[g]en.sh\n",
    # a loop's glob names the file written
    "loop-glob": f"echo '{INSTALL}' > gen.sh\nfor f in *.sh; do bash \"$f\"; done\n",
    # a written file in a folder put on PATH, run by its bare name
    "path-bare-name": (
        f"mkdir -p bin\necho '{INSTALL}' > bin/gen\nchmod +x bin/gen\n"
        'export PATH="$PWD/bin:$PATH"\ngen\n'
    ),
    # the program is a variable the script set
    "variable-program": f"echo '{INSTALL}' > gen.sh\nS=bash\n$S gen.sh\n",
    # a shell function's positional parameter names the file: any file run may be it
    "function-argument": f"w() {{ echo '{INSTALL}' > \"$1\"; }}\nw gen.sh\nbash gen.sh\n",
    # find -exec / GNU parallel run the names they are given
    "find-exec": f"echo '{INSTALL}' > gen.sh\nfind . -name 'g*.sh' -exec bash {{}} \\;\n",
    "parallel": f"echo '{INSTALL}' > gen.sh\nparallel -j2 bash ::: gen.sh\n",
    # a variable set only for the command, expanded by the shell it starts
    "env-prefix": f"X='{INSTALL}' bash -c 'echo \"$X\" > gen.sh'\nbash gen.sh\n",
    # ... but not in the command's own words: ``$X`` there is the value set before
    "prefix-not-own": f"X='{INSTALL}'\nX=true echo \"$X\" > gen.sh\nbash gen.sh\n",
    # ``sh 0< FILE`` reads its script on standard input; ``ln -s`` resolves from the link
    "sh-fd0": f"echo '{INSTALL}' > gen.sh\nsh 0< gen.sh\n",
    "ln-relative": f"echo '{INSTALL}' > a.txt\nln -sf ../a.txt tools/run.sh\nbash tools/run.sh\n",
    # files a program runs on its own: a shell's $BASH_ENV, git's hooks
    "bash-env": f"export BASH_ENV=\"$PWD/env.sh\"\necho '{INSTALL}' > env.sh\nbash tools/run.sh\n",
    "bash-env-prefix": f"echo '{INSTALL}' > env.sh\nBASH_ENV=env.sh bash -c true\n",
    "git-hook": (
        f"echo '{INSTALL}' > .git/hooks/pre-commit\nchmod +x .git/hooks/pre-commit\n"
        "git commit -qm x\n"
    ),
    # the program is a variable behind a wrapper (``env``, ``sudo``, ``time``)
    "variable-program-wrapped": f"echo '{INSTALL}' > gen.sh\nS=bash\nenv $S gen.sh\n",
    # a case-insensitive file system (macOS runners): GEN.sh is gen.sh
    "case-insensitive": f"echo '{INSTALL}' > GEN.sh\nbash gen.sh\n",
    # a task runner's file written, then the runner (package.json, tox.ini, noxfile.py...)
    "npm": 'echo \'{"scripts": {"x": "pip install evilpkg==1.5"}}\' > package.json\nnpm run x\n',
    "tox": "printf '[testenv]\\ncommands = pip install evilpkg==1.5\\n' > tox.ini\ntox -e py\n",
    "nox": (
        "printf 'import nox\\n@nox.session\\ndef x(s):\\n    s.install(\"evilpkg==1.5\")\\n'"
        " > noxfile.py\nnox -s x\n"
    ),
    "just": "printf 'x:\\n\\tpip install evilpkg==1.5\\n' > justfile\njust x\n",
    "task": (
        "printf 'version: 3\\ntasks:\\n  x:\\n    cmds:\\n      - pip install evilpkg==1.5\\n'"
        " > Taskfile.yml\ntask x\n"
    ),
    # a name written that a command substitution gives: any file run may be it
    "subst-name": f"echo '{INSTALL}' > \"$(echo gen.sh)\"\nbash gen.sh\n",
    "backquote-name": f"echo '{INSTALL}' > `echo gen`.sh\nbash gen.sh\n",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_written_file_run(tmp_path: Path, db: Path, name: str) -> None:
    assert _controls(tmp_path, db, ATTACKS[name])[VULN] is ControlStatus.FAIL


def test_attack_written_module_imported_by_python_c(tmp_path: Path, db: Path) -> None:
    # ``python -c 'import gen'`` runs the gen.py the script wrote
    script = f"cat > gen.py <<'EOF'\n{PICKLE_CODE}\nEOF\npython3 -c 'import sys, gen'\n"
    assert _controls(tmp_path, db, script)[CODE] is ControlStatus.FAIL


IMPORTED = {
    # files Python, pytest and pip run on their own: site files, conftest.py, setup.py
    "sitecustomize": (
        f"cat > sitecustomize.py <<'EOF'\n{PICKLE_CODE}\nEOF\nPYTHONPATH=. python3 -V\n"
    ),
    "pth": (
        f"echo '{PICKLE_CODE}' > "
        "\"$(python3 -c 'import site; print(site.getsitepackages()[0])')/x.pth\"\npython3 -V\n"
    ),
    "conftest": f"mkdir -p tests\ncat > tests/conftest.py <<'EOF'\n{PICKLE_CODE}\nEOF\npytest -q\n",
    "setup-py": f"cat > setup.py <<'EOF'\n{PICKLE_CODE}\nEOF\npython3 -m pip install -e .\n",
    # a project Python file importing a module written here
    "project-imports": (
        f"cat > gen.py <<'EOF'\n{PICKLE_CODE}\nEOF\npython3 tools/main.py\n",
        {"tools/main.py": "import gen\n"},
    ),
    # Python importing a written module from a here-document, or from a written file
    # (which is read: the module it imports was not)
    "heredoc-import": (
        f"cat > gen.py <<'EOF'\n{PICKLE_CODE}\nEOF\npython3 - <<'EOF'\nimport gen\nEOF\n"
    ),
    "written-file-import": (
        f"cat > gen.py <<'EOF'\n{PICKLE_CODE}\nEOF\necho 'import gen' > main.py\npython3 main.py\n"
    ),
}


@pytest.mark.parametrize("name", sorted(IMPORTED))
def test_attack_written_module_imported_by_other_python(
    tmp_path: Path, db: Path, name: str
) -> None:
    given = IMPORTED[name]
    script, files = given if isinstance(given, tuple) else (given, {})
    assert _controls(tmp_path, db, script, **files)[CODE] is ControlStatus.FAIL


def test_project_script_edited_in_place_fails_closed(tmp_path: Path, db: Path) -> None:
    # ``sed -i`` changes a project script before it runs: what runs is not the file read
    script = "sed -i 's/goodpkg/evilpkg==1.5/' tools/go.sh\nbash tools/go.sh\n"
    files = {"tools/go.sh": "pip install goodpkg\n"}
    assert _controls(tmp_path, db, script, **files)[VULN] is ControlStatus.FAIL


# -- 02. known gaps (strict xfail): forms this reader does not model (runs under bash).
GAPS = {
    # hooks in the folder ``git config core.hooksPath DIR`` names
    "git-hooks-path": (
        "mkdir h\necho 'pip install evilpkg==1.5' > h/pre-commit\nchmod +x h/pre-commit\n"
        "git config core.hooksPath h\ngit commit -qm x\n"
    ),
}


@pytest.mark.xfail(strict=True, reason="known gap, git hooks in a core.hooksPath folder")
@pytest.mark.parametrize("name", sorted(GAPS))
def test_attack_written_file_gap(tmp_path: Path, db: Path, name: str) -> None:
    assert _controls(tmp_path, db, GAPS[name])[VULN] is ControlStatus.FAIL


# -- 03. ordinary CI scripts with the same forms are not flagged -----------------------------
BENIGN = {
    "echo-n": (
        "echo -n \"$(git rev-parse HEAD)\" > REVISION\nprintf '%s' 1.2.3 > VERSION\n"
        "echo -n 'export A=1' > a.env\necho '; export B=2' >> a.env\n. ./a.env\n"
        "bash tools/run.sh\n"
    ),
    "sed-i-config": (
        "sed -i 's/^version = .*/version = \"1.2.3\"/' pyproject.toml\n"
        "sed -i.bak -e 's/debug/info/' config.ini\nbash tools/run.sh\n"
    ),
    "arrays": (
        "ARGS=(--verbose --color)\nPYS=(3.10 3.11)\n"
        'for v in "${PYS[@]}"; do echo "py=$v" >> "$GITHUB_OUTPUT"; done\n'
        'echo "${ARGS[*]}" > args.txt\nbash tools/run.sh "${ARGS[@]}"\n'
    ),
    "function-writes": (
        'log() { echo "$(date) $*" >> "$LOG"; }\nsave() { echo "$2" > "out/$1.txt"; }\n'
        "log start\nsave version 1.2.3\nbash tools/run.sh\n"
    ),
    "find-parallel": (
        "find . -name '*.py' -exec python -m py_compile {} +\n"
        "find dist -name '*.whl' -exec twine check {} \\;\n"
        "parallel -j4 pytest -q {} ::: tests/a tests/b\nfind . -name '*.sh' -exec bash -n {} \\;\n"
        "echo ok > out.txt\nbash tools/run.sh\n"
    ),
    "release-bumps": (
        "jq '.version = \"1.2.3\"' package.json > tmp.json && mv tmp.json package.json\n"
        "sed -i 's/^version = .*/version = 1.2.3/' tox.ini\nnpm publish\ntox -e py\n"
        'echo \'{"name": "x", "scripts": {"t": "jest"}}\' > package.json\nnpm run t\n'
    ),
    "python-site-files": (
        "SITE=$(python -c 'import site; print(site.getsitepackages()[0])')\n"
        'echo "$PWD/src" > "$SITE/proj.pth"\npytest -q\n'
        "echo 'import coverage; coverage.process_startup()' > sitecustomize.py\n"
        "PYTHONPATH=. python -m pytest\nprintf 'import pytest\\n' > conftest.py\npytest\n"
        "printf 'from setuptools import setup\\nsetup()\\n' > setup.py\npip install -e .\n"
    ),
    "substituted-names": (
        'mkdir -p "$(dirname out/x)"\necho ok > "logs/$(date +%s).log"\n'
        'echo "$GITHUB_SHA" > "$(mktemp)"\nbash tools/run.sh\n./ci/lint.sh\n'
    ),
    "program-variables": (
        "PYTHON=python3\n$PYTHON -m pip --version\nPIP='pip install'\n$PIP -r requirements.txt\n"
        'CMD="pytest -q"\n$CMD\n${PYTHON} -m build\nbash tools/run.sh\n'
    ),
    "tools-on-path": (
        'mkdir -p bin "$HOME/.local/bin"\n'
        "curl -fsSLo ~/.local/bin/kubectl https://dl.k8s.io/v1.30.0/kubectl\n"
        "chmod +x ~/.local/bin/kubectl\n"
        "printf '#!/bin/sh\\nexec docker compose \"$@\"\\n' > bin/dc\n"
        'chmod +x bin/dc\nexport PATH="$PWD/bin:$HOME/.local/bin:$PATH"\n'
        "kubectl version --client\ndc up -d\n"
    ),
    "globs-run": 'for f in ci/*.sh; do bash "$f"; done\nbash tools/r*.sh\n',
    "python-c-imports": (
        "mkdir -p pkg\necho '__version__ = \"1.0\"' > pkg/_version.py\n"
        "python3 -c 'from pkg import _version; print(_version.__version__)'\n"
        "python3 - <<'EOF'\nimport pkg._version, json\nEOF\n"
        "echo '__version__ = \"1.0\"' > _version.py\n"
        'python3 -c "import sys, json; print(sys.version)"\nbash tools/run.sh\n'
    ),
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_ordinary_scripts_are_clean(tmp_path: Path, db: Path, name: str) -> None:
    files = {"pyproject.toml": "[project]\nname = 'x'\nversion = '1'\n", "config.ini": "a=1\n"}
    controls = _controls(tmp_path, db, BENIGN[name], **files)
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS


def test_crafted_scripts_are_bounded() -> None:
    # glob runs and bare names against thousands of written names (was: each run matched
    # against every name, quadratic: 28 s for 100 KB), long arrays and echo -n chains: each
    # name matched counts against the written text read, past it one run fails closed
    n = 3000
    lines = [f"echo x > w{i}.sh\necho x > d/p{i}" for i in range(n)]
    lines += [f"bash w*{i}?.sh\np{i} x" for i in range(n)]
    lines += [f"echo -n 'x{i} ' >> g.sh" for i in range(2000)]
    lines += ["A=(" + " ".join(["'a'"] * 5000) + ")", 'echo "$A" > a.sh', "bash a.sh"]
    # git hooks that run git: each git run reads them again, within the same budget
    lines += [f"echo 'git commit' > .git/hooks/h{i}" for i in range(300)] + ["git push"] * 300
    found = commands("shell", "\n".join(lines))
    assert any("past the characters" in c.unread for c in found)
    # a large project Python file run many times after writes: parsed once for its imports
    # (was: each run, past 300 s); conftest.py files written, read within the budget
    big = "x = 1\n" * 80000
    script = "echo x > a.txt\n" + "python3 tools/main.py\n" * 300
    script += "".join(f"echo 'import os' > t{i}/conftest.py\n" for i in range(200))
    found = commands("shell", script + "pytest\n" * 2000, lambda n: big if "main" in n else None)
    assert any("past the characters" in c.unread for c in found)


#: Words of the forms of this round, joined at random into scripts (the property test below).
_WORDS = [
    *_rt11._WORDS,
    *("sed", "-i", "perl", "-pi", "ex", "A=(", "A+=", "A[0]=x", "S=bash", "$S", "${S}"),
    *("echo", "-n", "'a\\c'", "printf", "'%c%b'", "find", "-name", "g*.sh", "-exec", "{}"),
    *("+", "parallel", ":::", "-j2", "bin/g", "g", "$1", '"$(echo g.sh)"', "`x`", "w()"),
    *("import", "g", "X=1", "mktemp", "bash", "g*.sh", "ci/[g]*.sh", "python3", "-c", "'import g'"),
]


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(st.sampled_from([*_WORDS, "\n"]), max_size=40),
    included=st.lists(st.sampled_from([*_WORDS, "\n"]), max_size=20),
)
def test_any_script_of_these_forms_is_read(words: list[str], included: list[str]) -> None:
    # any script of these words (and project files of them) gives commands, never a crash
    text = " ".join(words)
    commands("shell", text, lambda name: " ".join(included))
    commands("make", "all:\n\t" + text.replace("\n", "\n\t"), lambda name: " ".join(included))
