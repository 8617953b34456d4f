"""Red team round 11: files a CI/build script writes and then runs, in the forms round 10 left
as known gaps, each widened to its class: a makefile the script wrote that includes another
one, files written into a ``make -I`` folder, ``python -m`` of a written package, a name that
is a ``for``/``read`` variable, a variable the script set (``X=...``, ``printf -v``), what
``python -c`` writes, and the commands ``xargs`` starts. Either the file run is read from
what was written (followed) or, where that text or name is only known when the script runs,
both checks fail closed; the benign tests are ordinary CI scripts using the same forms.

Files are written by the tests (``_gate`` of round 5); payloads are built at run time
(``INSTALL``, ``PICKLE_CODE``) so this file does not trip the project's own gate."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import test_check_redteam10 as _rt10
from mltrust.evidence._commands import commands
from mltrust.policy import ControlStatus

db = _rt10.db  # the advisory fixture (evilpkg 1.5 is vulnerable)
_gate = _rt10._gate
VULN, CODE, COMPLETE, PICKLE_CODE = _rt10.VULN, _rt10.CODE, _rt10.COMPLETE, _rt10.PICKLE_CODE
INSTALL, REQS = _rt10.INSTALL, _rt10.REQS
RUN = {"tools/run.sh": "echo run\n", "ci/lint.sh": "echo lint\n"}


def _controls(tmp_path: Path, db: Path, script: str, **files: str) -> dict[str, ControlStatus]:
    _, controls = _gate(tmp_path, db, {"ci.sh": "#!/bin/bash\n" + script, **RUN, **REQS, **files})
    return controls


# -- 01. followed: the file run is read from the text written. Expected: FAIL (the pinned
# vulnerable install, or the Python that unpickles its input, is read); actual before: PASS.
FOLLOWED = {
    # a written makefile's include of a written file (``-include`` too), chained
    "make-include-chain": (
        "printf 'b:\\n\\tpip install evilpkg==1.5\\n' > c.mk\n"
        "printf -- '-include c.mk\\n' > b.mk\nprintf 'include b.mk\\n' > a.mk\nmake -f a.mk\n"
    ),
    # a make -I folder given attached, a written file below it
    "make-I-attached": (
        "mkdir -p inc/sub\nprintf 'b:\\n\\tpip install evilpkg==1.5\\n' > inc/sub/x.mk\n"
        "make -Iinc b\n"
    ),
    # each word of a for loop is a name written; ``${n}`` spelled with braces, a folder
    "for-words": f"for f in a.sh gen.sh; do echo '{INSTALL}' > \"ci/$f\"; done\nbash ci/gen.sh\n",
    "for-braces": f"for n in gen; do echo '{INSTALL}' > \"${{n}}.sh\"; done\nsh ./gen.sh\n",
    "for-cp": f"echo '{INSTALL}' > a.txt\nfor f in gen.sh; do cp a.txt \"$f\"; done\nbash gen.sh\n",
    # a variable the script set names the file (after a loop that used the same name)
    "var-name": (
        f"for f in a.sh; do :; done\nf=gen.sh\nOUT=$f\necho '{INSTALL}' > \"$OUT\"\nbash gen.sh\n"
    ),
    # the lines piped into ``while read`` are its variable's values
    "read-lines": (
        f"printf 'x.sh\\ngen.sh\\n' | while read -r f; do echo '{INSTALL}' >> \"$f\"; done\n"
        ". ./gen.sh\n"
    ),
    # a variable the script set: its value is what is written
    "assigned": f"X='{INSTALL}'\necho \"$X\" > gen.sh\nbash gen.sh\n",
    "export-heredoc": f"export CMD='{INSTALL}'\ncat > gen.sh <<EOF\n$CMD\nEOF\nbash gen.sh\n",
    "nested": 'A=\'pip install\'\nB="$A evilpkg==1.5"\necho "$B" > gen.sh\nbash gen.sh\n',
    "printf-v-format": (
        "printf -v X '%s %s' 'pip install' 'evilpkg==1.5'\necho \"$X\" > gen.sh\nsh gen.sh\n"
    ),
    # xargs runs its command on the words of a literal input
    "xargs": f"echo '{INSTALL}' > gen.sh\necho gen.sh | xargs bash\n",
    "xargs-replace": f"echo '{INSTALL}' > gen.sh\necho gen.sh | xargs -I{{}} sh {{}}\n",
    "xargs-n1": f"echo '{INSTALL}' > gen.sh\nprintf 'gen.sh\\n' | xargs -n1 -r bash\n",
    "xargs-heredoc": f"echo '{INSTALL}' > gen.sh\nxargs -n1 bash <<'EOF'\ngen.sh\nEOF\n",
}


@pytest.mark.parametrize("name", sorted(FOLLOWED))
def test_attack_written_file_followed(tmp_path: Path, db: Path, name: str) -> None:
    controls = _controls(tmp_path, db, FOLLOWED[name], Makefile="-include x.mk\n")
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "script",
    [
        f"mkdir -p a/b\ncat > a/b/__main__.py <<'EOF'\n{PICKLE_CODE}\nEOF\npython3 -m a.b\n",
        f"mkdir m\ncat > m/__init__.py <<'EOF'\n{PICKLE_CODE}\nEOF\npython -u -m m.cli --help\n",
        f"cat > gen.py <<'EOF'\n{PICKLE_CODE}\nEOF\npython3 -mgen\n",
    ],
    ids=["main-dotted", "package-init", "module-file"],
)
def test_attack_written_module_run_by_python_m(tmp_path: Path, db: Path, script: str) -> None:
    # ``python -m`` runs the packages' __init__.py and the module's __main__.py or .py
    assert _controls(tmp_path, db, script)[CODE] is ControlStatus.FAIL


# -- 02. fail closed: what is written, or where, is only known when the script runs.
# Expected: FAIL in both checks; actual before: PASS.
FAIL_CLOSED = {
    # Python writes the file: the names its code gives a writing call hold unknown text
    "python-c-path": (
        "python3 -c \"import pathlib; pathlib.Path('gen.sh').write_text(open('a').read())\"\n"
        "bash gen.sh\n"
    ),
    "python-heredoc": (
        "python3 - <<'EOF'\nimport shutil\nshutil.copy('a.txt', 'gen.sh')\nEOF\nbash gen.sh\n"
    ),
    # a loop over a glob or a command's output writes names only known when it runs
    "for-glob": 'for f in *.tpl; do base64 -d < "$f" > "${f%.tpl}.sh"; done\nbash build.sh\n',
    "for-substitution": (
        'for f in $(ls tpl); do base64 -d < "tpl/$f" > "ci/$f"; done\nbash ci/lint.sh\n'
    ),
    "read-command": (
        'find . -name \'*.b64\' | while read -r f; do base64 -d < "$f" > "${f%.b64}"; done\n'
        "bash tools/run.sh\n"
    ),
    # a variable whose value the shell computes, or that has more than one
    "var-computed": 'X=$(base64 -d < a.b64)\necho "$X" > gen.sh\nbash gen.sh\n',
    "var-twice": 'X=true\nX=$1\necho "$X" > gen.sh\nbash gen.sh\n',
    "var-changed": "X='a.b64'\necho \"${X/a.b64/$1}\" > gen.sh\nbash gen.sh\n",
    # xargs runs the names its input gives: only known when it runs
    "xargs-find": "find ci -name '*.sh' | xargs -n1 bash\n",
    "xargs-replace-ls": "ls ci/*.sh | xargs -I{} sh {}\n",
    "xargs-arg-file": "echo ci/lint.sh > list\nxargs -a list bash\n",
}


@pytest.mark.parametrize("name", sorted(FAIL_CLOSED))
def test_attack_written_file_fails_closed(tmp_path: Path, db: Path, name: str) -> None:
    files = {"a.b64": "cGlwCg==\n", "tpl/x.tpl": "cGlwCg==\n"}
    controls = _controls(tmp_path, db, FAIL_CLOSED[name], **files)
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_xargs_runs_python_on_its_input(tmp_path: Path, db: Path) -> None:
    script = "find . -name 'gen_*.py' | xargs -n1 python3\n"
    assert _controls(tmp_path, db, script)[CODE] is ControlStatus.FAIL


def test_written_makefile_that_runs_itself_is_bounded() -> None:
    # a written makefile whose recipe runs it again: read to the depth cap (was: Python's
    # recursion limit, an exception out of the check)
    text = "printf 'b:\\n\\tmake -f g.mk\\n' > g.mk\nmake -f g.mk\n"
    found = commands("shell", text)
    assert any("nested deeper" in c.unreadable for c in found)


# -- 03. ordinary CI scripts with the same forms are not flagged -----------------------------
BENIGN = {
    "github-outputs": (
        "set -euo pipefail\nversion=$(git describe --tags)\n"
        'echo "version=$version" >> "$GITHUB_OUTPUT"\n'
        'echo "SHA=$(git rev-parse HEAD)" >> $GITHUB_ENV\n'
        'echo "$HOME/.local/bin" >> "$GITHUB_PATH"\n'
        'for v in 3.10 3.11; do echo "py=$v" >> "$GITHUB_STEP_SUMMARY"; done\n'
        "bash tools/run.sh\n"
    ),
    "loop-copies": (
        'mkdir -p out build\nfor f in *.txt; do cat "$f" > out/$f; done\n'
        'for f in docs/*.md; do sed \'s/a/b/\' "$f" > "build/${f%.md}.html"; done\n'
        "bash tools/run.sh\n"
    ),
    "read-checksums": (
        'find dist -name \'*.whl\' | while read -r f; do sha256sum "$f" > "$f.sha256"; done\n'
        "git ls-files '*.json' | while IFS= read -r f; do\n"
        '  python -m json.tool "$f" >/dev/null\ndone\n'
        "./tools/run.sh\n"
    ),
    "temp-files": (
        'OUT=$(mktemp)\npytest -q > "$OUT" || cat "$OUT"\nLOG=build.log\nmake all > "$LOG"\n'
        'tmp="$RUNNER_TEMP/cov.xml"\ncoverage xml -o "$tmp"\nbash tools/run.sh\n'
    ),
    "logs": (
        "pytest -q > pytest.log 2>&1 || cat pytest.log\n"
        'for py in 3.10 3.11; do tox -e "py$py" > "logs/tox-$py.txt"; done\nbash tools/run.sh\n'
    ),
    "variables-written": (
        'VERSION=1.2.3\necho "$VERSION" > VERSION.txt\nprintf -v NAME \'%s-%s\' app "$VERSION"\n'
        "cat > .env <<EOF\nVERSION=$VERSION\nNAME=$NAME\nEOF\n. ./.env\n"
        "REGISTRY=ghcr.io/org\ncat > push.sh <<EOF\ndocker push $REGISTRY/app:$VERSION\nEOF\n"
        "bash push.sh\n"
    ),
    "xargs": (
        "git ls-files '*.sh' | xargs shellcheck\nfind . -name '*.pyc' | xargs rm -f\n"
        "git diff --name-only | xargs -r black --check\nls dist/*.whl | xargs -I{} twine check {}\n"
        "find . -name '*.py' -print0 | xargs -0 python -m py_compile\necho a b | xargs -n1 echo\n"
        "echo ci/lint.sh | xargs bash\n"
    ),
    "python-c": (
        "python -c \"import json; json.dump({'a': 1}, open('report.json', 'w'))\"\n"
        "python3 -c \"print(open('VERSION.txt').read())\"\n"
        "python3 -c \"import pathlib; pathlib.Path('build').mkdir(exist_ok=True)\"\n"
        "bash tools/run.sh\n"
    ),
    "python-m": (
        "mkdir -p pkg\necho '__version__ = \"1.0\"' > pkg/_version.py\n"
        "python -m pytest -q\npython -m pkg.cli --help\n"
    ),
    "make-include-dir": (
        "mkdir -p mk\necho 'CC=gcc' > mk/config.mk\nprintf 'VERSION=%s\\n' 1.2 >> mk/config.mk\n"
        "make -I mk all\n"
    ),
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_ordinary_scripts_are_clean(tmp_path: Path, db: Path, name: str) -> None:
    controls = _controls(tmp_path, db, BENIGN[name], Makefile="-include config.mk\nall:\n\t@true\n")
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS


# -- 04. a project file the script runs runs (or includes) a file the script wrote: read with
# what the script wrote (was: each project file read as a host of its own, without it).
# Expected: FAIL; actual before: PASS.
PROJECT = {
    # the project's Makefile includes a file the script wrote in the working folder
    "makefile-includes": (
        "printf 'b:\\n\\tpip install evilpkg==1.5\\n' > a.inc\nmake b\n",
        {"Makefile": "include a.inc\n"},
    ),
    "makefile-f-includes": (
        "mkdir -p mk\nprintf 'b:\\n\\tpip install evilpkg==1.5\\n' > mk/a.inc\n"
        "make -f build/rules.mk b\n",
        {"build/rules.mk": "-include mk/a.inc\n"},
    ),
    # a project script runs a file the script wrote, directly or through another
    "script-runs": (
        f"echo '{INSTALL}' > gen.sh\nbash tools/go.sh\n",
        {"tools/go.sh": "bash gen.sh\n"},
    ),
    "script-chain": (
        f"echo '{INSTALL}' > gen.sh\n. tools/a.sh\n",
        {"tools/a.sh": "sh tools/b.sh\n", "tools/b.sh": "./gen.sh\n"},
    ),
    # what was written with text not known fails closed there too
    "script-runs-computed": (
        "base64 -d < a.b64 > gen.sh\nbash tools/go.sh\n",
        {"tools/go.sh": "bash gen.sh\n", "a.b64": "cGlwCg==\n"},
    ),
}


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_attack_written_file_run_by_project_file(tmp_path: Path, db: Path, name: str) -> None:
    script, files = PROJECT[name]
    assert _controls(tmp_path, db, script, **files)[VULN] is ControlStatus.FAIL


def test_project_scripts_after_ordinary_writes_are_clean(tmp_path: Path, db: Path) -> None:
    # a job that writes outputs and logs, then runs project scripts that write and run their
    # own files: nothing is flagged
    script = (
        'echo "v=1" >> "$GITHUB_OUTPUT"\npytest > log.txt || true\necho ok > status.txt\n'
        "bash tools/go.sh\nmake all\nbash tools/go.sh\n"
    )
    files = {
        "tools/go.sh": "echo 'echo hi' > hi.sh\nbash hi.sh\ncat status.txt\n",
        "Makefile": "-include local.mk\nall:\n\t@bash tools/go.sh\n",
    }
    controls = _controls(tmp_path, db, script, **files)
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS


@pytest.mark.parametrize(
    "code",
    [
        f"open('gen.sh', 'w').write('{INSTALL}')\n",
        "import pathlib\n\ndef main():\n    pathlib.Path('gen.sh').write_text(TEMPLATE)\n",
        "import shutil\nshutil.copy(SRC, 'gen.sh')\n",
    ],
    ids=["open", "path-in-function", "copy"],
)
def test_attack_written_by_project_python(tmp_path: Path, db: Path, code: str) -> None:
    # a project Python file the script runs writes the script it runs next: the names its
    # code gives a writing call hold text not known (fail closed)
    files = {"tools/gen.py": code}
    script = "python3 -W ignore tools/gen.py\nbash gen.sh\n"
    assert _controls(tmp_path, db, script, **files)[VULN] is ControlStatus.FAIL


def test_project_python_that_writes_data_is_clean(tmp_path: Path, db: Path) -> None:
    # project Python that writes reports and reads configuration, then project scripts run
    files = {
        "tools/report.py": (
            "import json, pathlib\nconf = open('setup.cfg').read()\n"
            "json.dump({'n': len(conf)}, open('report.json', 'w'))\n"
            "pathlib.Path('build').mkdir(exist_ok=True)\n"
            "with open('build/summary.md', 'a') as f:\n    f.write('ok')\n"
        ),
        "setup.cfg": "[metadata]\nname = x\n",
    }
    script = "python tools/report.py\nbash tools/run.sh\nmake -f build.mk\n"
    controls = _controls(tmp_path, db, script, **files, **{"build.mk": "all:\n\t@true\n"})
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS


@pytest.mark.xfail(strict=True, reason="known gap, a name Python holds in a variable")
def test_attack_written_by_project_python_variable_name_gap(tmp_path: Path, db: Path) -> None:
    # the name written is a Python variable (its literal value is not followed)
    files = {"tools/gen.py": f"OUT = 'gen.sh'\nopen(OUT, 'w').write('{INSTALL}')\n"}
    script = "python3 tools/gen.py\nbash gen.sh\n"
    assert _controls(tmp_path, db, script, **files)[VULN] is ControlStatus.FAIL


def test_loop_names_past_the_bound_fail_closed() -> None:
    # more globs written by loops than one host may hold: any file run then fails closed
    loops = "".join(f'for f in *.t{i}; do cat "$f" > "o{i}/$f"; done\n' for i in range(70))
    found = commands("shell", loops + "bash tools/run.sh\n")
    assert any(c.unread for c in found)
    # under it, a run that matches none of them is read as written
    found = commands("shell", loops.split("\n", 1)[0] + "\nbash tools/run.sh\n")
    assert not any(c.unread for c in found)


def test_variable_values_past_the_budget_are_not_known() -> None:
    # values doubling at each assignment: not expanded past what any script may read
    lines = ["A0=xxxxxxxxxxxxxxxx"] + [f'A{i}="$A{i - 1}$A{i - 1}"' for i in range(1, 40)]
    found = commands("shell", "\n".join([*lines, 'echo "$A39" > g.sh', "bash g.sh"]))
    assert any(c.unread for c in found)


def test_xargs_without_input_is_read() -> None:
    # a literal input with no words: xargs runs its command once (was: an IndexError)
    found = commands("shell", ": | xargs bash\nprintf '' | xargs -I{} sh {}\n")
    assert [c.words for c in found if c.words[:1] in (("bash",), ("sh",))]


#: Words of the write-then-run forms, joined at random into scripts (what the property test
#: below feeds the reader).
_WORDS = [
    "for",
    "f",
    "in",
    "a.sh",
    "*.sh",
    "do",
    "done",
    ";",
    "|",
    "&&",
    "echo",
    "'x",
    "y'",
    ">",
    ">>",
    "$f",
    '"${f%.sh}"',
    "${f}",
    "while",
    "read",
    "-r",
    "xargs",
    "-I{}",
    "-n1",
    "-a",
    "-0",
    "-L",
    "2",
    "--replace",
    "-i",
    "env",
    "A={}",
    "sh",
    "bash",
    "{}",
    "python3",
    "-c",
    "-m",
    "m.x",
    "-W",
    "printf",
    "-v",
    "X",
    "'%s'",
    "X=1",
    "X=$(ls)",
    "export",
    "make",
    "-I",
    "mk",
    "-f",
    "g.mk",
    "include",
    "g.sh",
    "mk/a.inc",
    "${X:-a}",
    "$X",
    "(",
    ")",
    "<",
    "-",
    ":",
    "tools/x.sh",
]


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(st.sampled_from([*_WORDS, "\n"]), max_size=40),
    included=st.lists(st.sampled_from([*_WORDS, "\n"]), max_size=20),
)
def test_any_write_then_run_script_is_read(words: list[str], included: list[str]) -> None:
    # any script of these words (and project files of them) gives commands, never a crash
    text = " ".join(words)
    commands("shell", text, lambda name: " ".join(included))
    commands("make", "all:\n\t" + text.replace("\n", "\n\t"), lambda name: " ".join(included))
