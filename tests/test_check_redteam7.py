"""Red team round 7 (check11, issue 11): files a command host names that the project runs but
``mltrust check`` never read, and ways a command runs a string or a file that were not read.
Each attack test failed before its fix (expected FAIL of the control, actual PASS); each
benign test shows that an ordinary project using the same feature is not flagged.

Files are written by the tests (``_gate`` of round 5); payloads are built at run time
(``PICKLE_CODE``) so this file does not trip the project's own gate."""

from __future__ import annotations

from pathlib import Path

import pytest

import test_check_redteam5 as _rt5
from mltrust.evidence._commands import commands
from mltrust.policy import ControlStatus

db = _rt5.db  # the advisory fixture (evilpkg 1.5 is vulnerable)
_gate = _rt5._gate
PIN, VULN, CODE, PICKLE_CODE = _rt5.PIN, _rt5.VULN, _rt5.CODE, _rt5.PICKLE_CODE
COMPLETE = "analysis-complete"
INSTALL = f"pip install {PIN}"
PYTHON = f"python3 -c '{PICKLE_CODE}'"


def _problems(document: dict) -> list[str]:  # type: ignore[type-arg]
    return [p["message"] for p in document["deps"]["problems"]]


# -- 01. GitLab ``include:`` of a local file was never read ----------------------------------
# GitLab merges every local file ``include:`` names into the pipeline; a job there runs as
# one of ``.gitlab-ci.yml``'s own. Expected: FAIL; actual before the fix: PASS.
GITLAB_FORMS = {
    "list-local": "include:\n  - local: ci/jobs.yml\n",
    "string": "include: ci/jobs.yml\n",
    "flow-list": "include: [ 'ci/jobs.yml' ]\n",
    "mapping-local": "include:\n  local: /ci/jobs.yml\n",
    "list-string": "include:\n  - '/ci/jobs.yml'\n  - local: ci/other.yml\n",
    "rules": "include:\n  - local: ci/jobs.yml\n    rules:\n      - if: $CI\n",
}


def _job(line: str) -> str:
    return f"job:\n  script:\n    - {line}\n"


@pytest.mark.parametrize("form", sorted(GITLAB_FORMS))
def test_attack_gitlab_local_include_installs(tmp_path: Path, db: Path, form: str) -> None:
    files = {".gitlab-ci.yml": GITLAB_FORMS[form], "ci/jobs.yml": _job(INSTALL)}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_gitlab_local_include_runs_python(tmp_path: Path, db: Path) -> None:
    job = f'job:\n  script:\n    - "{PYTHON}"\n'
    files = {".gitlab-ci.yml": GITLAB_FORMS["list-local"], "ci/jobs.yml": job}
    _, controls = _gate(tmp_path, db, files)
    assert controls[CODE] is ControlStatus.FAIL


def test_attack_gitlab_nested_include(tmp_path: Path, db: Path) -> None:
    files = {
        ".gitlab-ci.yml": "include: ci/a.yml\n",
        "ci/a.yml": "include:\n  - local: ci/b.yml\n",
        "ci/b.yml": _job(INSTALL),
    }
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "trigger",
    [
        "trigger:\n    include: ci/child.yml\n",
        "trigger:\n    include:\n      - local: ci/child.yml\n",
    ],
    ids=["string", "local"],
)
def test_attack_gitlab_child_pipeline_installs(tmp_path: Path, db: Path, trigger: str) -> None:
    files = {".gitlab-ci.yml": "child:\n  " + trigger, "ci/child.yml": _job(INSTALL)}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "includes",
    ["includes:\n  build: ./tasks/build.yml\n", "includes:\n  build:\n    taskfile: ./tasks\n"],
    ids=["path", "folder"],
)
def test_attack_taskfile_includes_install(tmp_path: Path, db: Path, includes: str) -> None:
    included = f"version: '3'\ntasks:\n  setup:\n    cmds:\n      - {INSTALL}\n"
    files = {"Taskfile.yml": "version: '3'\n" + includes}
    files["tasks/build.yml" if "build.yml" in includes else "tasks/Taskfile.yml"] = included
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "include",
    [
        "include:\n  - remote: https://example.com/ci.yml\n",
        "child:\n  trigger:\n    include:\n      - artifact: gen.yml\n        job: make-it\n",
        "include:\n  - project: group/ci\n    file: /jobs.yml\n",
        "include:\n  - component: gitlab.com/org/comp/build@1.0\n",
        "include: https://example.com/ci.yml\n",
    ],
    ids=["remote", "artifact", "project", "component", "remote-string"],
)
def test_attack_gitlab_remote_include_is_reported(tmp_path: Path, db: Path, include: str) -> None:
    # what a remote include runs cannot be read offline: analysis is incomplete, said so
    document, controls = _gate(tmp_path, db, {".gitlab-ci.yml": include + _job("make")})
    assert any("not read" in m for m in _problems(document)), _problems(document)
    assert controls[VULN] is ControlStatus.FAIL


def test_gitlab_template_include_is_the_vendors_own(tmp_path: Path, db: Path) -> None:
    # GitLab's shipped templates (Security/SAST, Python) are the CI vendor's code, as a GitHub
    # action is: including one does not fail the project, while its own jobs are still read
    text = "include:\n  - template: Security/SAST.gitlab-ci.yml\n"
    document, controls = _gate(tmp_path, db, {".gitlab-ci.yml": text + _job("make")})
    assert not any("not read" in m for m in _problems(document)), _problems(document)
    assert controls[VULN] is not ControlStatus.FAIL
    _, controls = _gate(tmp_path / "b", db, {".gitlab-ci.yml": text + _job(INSTALL)})
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "target",
    ["../outside.yml", "/../outside.yml", "ci/link.yml"],
    ids=["dotdot", "absolute-dotdot", "symlink"],
)
def test_gitlab_include_outside_project_is_not_read(tmp_path: Path, db: Path, target: str) -> None:
    (tmp_path / "outside.yml").write_text(_job(INSTALL))
    files = {".gitlab-ci.yml": f"include:\n  - local: '{target}'\n" + _job("make")}
    root = tmp_path / "p"
    (root / "ci").mkdir(parents=True)
    (root / "ci/link.yml").symlink_to(tmp_path / "outside.yml")
    document, controls = _gate(tmp_path, db, files)
    assert "evilpkg" not in str(document["deps"])
    assert controls[VULN] is not ControlStatus.FAIL


def test_gitlab_include_cycle_ends(tmp_path: Path, db: Path) -> None:
    files = {
        ".gitlab-ci.yml": "include: ci/a.yml\n",
        "ci/a.yml": "include: ci/b.yml\n" + _job("make test"),
        "ci/b.yml": "include: ci/a.yml\n" + _job("make lint"),
    }
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[COMPLETE] is ControlStatus.PASS


def test_gitlab_local_include_project_is_clean(tmp_path: Path, db: Path) -> None:
    files = {
        ".gitlab-ci.yml": "include:\n  - local: ci/test.yml\n  - local: ci/lint.yml\n",
        "ci/test.yml": _job("python -m pytest"),
        "ci/lint.yml": _job("make lint"),
    }
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS


# -- 02. a justfile's ``import`` and ``mod`` were never read ---------------------------------
# just reads the recipes of an imported file (and of a module's file) as its own: ``just
# setup`` runs them. Expected: FAIL; actual before the fix: PASS.
JUST_FORMS = {
    "import": ("import 'tasks.just'\n", "tasks.just"),
    "import-optional": ('import? "ci/tasks.just"\n', "ci/tasks.just"),
    "mod-path": ("mod tasks 'ci/t.just'\n", "ci/t.just"),
    "mod-name-file": ("mod tasks\n", "tasks.just"),
    "mod-name-folder": ("mod? tasks\n", "tasks/justfile"),  # (a justfile by name: read)
    "mod-name-mod-just": ("mod tasks\n", "tasks/mod.just"),
    "mod-path-folder": ("mod tasks 'ci/tasks'\n", "ci/tasks/mod.just"),
}


@pytest.mark.parametrize("form", sorted(JUST_FORMS))
def test_attack_just_import_installs(tmp_path: Path, db: Path, form: str) -> None:
    text, ran = JUST_FORMS[form]
    files = {"justfile": text + "default:\n    echo ok\n", ran: f"setup:\n    {INSTALL}\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_just_import_runs_python(tmp_path: Path, db: Path) -> None:
    files = {"justfile": "import 'tasks.just'\n", "tasks.just": f"setup:\n    {PYTHON}\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[CODE] is ControlStatus.FAIL


def test_just_import_project_is_clean(tmp_path: Path, db: Path) -> None:
    files = {
        "justfile": "import 'just/common.just'\nmod docs\n\ntest:\n    pytest -q\n",
        "just/common.just": "lint:\n    ruff check .\n",
        "docs/justfile": "build:\n    sphinx-build docs out\n",
    }
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS


def test_attack_just_file_option_installs(tmp_path: Path, db: Path) -> None:
    # ``just -f FILE`` / ``just --justfile FILE`` runs that file's recipes
    files = {"ci.sh": "#!/bin/sh\njust --justfile ci/build.just setup\n"}
    files["ci/build.just"] = f"setup:\n    {INSTALL}\n"
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


# -- 03. make variables assigned in an included makefile -------------------------------------
# (was round 5's strict xfail 06)
@pytest.mark.parametrize(
    "makefile",
    [
        "include x.mk\nall:\n\t$(F)\n",
        "-include x.mk\nall:\n\t$(F) -q\n",
        "sinclude x.mk\nall: ; $F\n",
    ],
    ids=["include", "dash-include", "sinclude"],
)
def test_attack_make_variable_from_included_file(tmp_path: Path, db: Path, makefile: str) -> None:
    files = {"Makefile": makefile, "x.mk": f"F = {INSTALL}\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_make_variable_from_nested_include(tmp_path: Path, db: Path) -> None:
    files = {
        "Makefile": "include mk/a.mk\nall:\n\t$(CMD)\n",
        "mk/a.mk": "X := 1\ninclude mk/b.mk\n",
        "mk/b.mk": f"CMD = {INSTALL}\n",
    }
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_make_python_from_included_file(tmp_path: Path, db: Path) -> None:
    files = {"Makefile": "include x.mk\nall:\n\t$(RUN)\n", "x.mk": f"RUN = {PYTHON}\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[CODE] is ControlStatus.FAIL


def test_attack_make_included_recipe_uses_host_variable(tmp_path: Path, db: Path) -> None:
    # the other way round: the host assigns, the included makefile's recipe runs it
    files = {"Makefile": f"F = {INSTALL}\ninclude x.mk\n", "x.mk": "all:\n\t$(F)\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_make_include_cycle_and_outside_are_bounded(tmp_path: Path, db: Path) -> None:
    (tmp_path / "evil.mk").write_text(f"F = {INSTALL}\n")
    files = {
        "Makefile": "include a.mk\ninclude ../evil.mk\nall:\n\t$(F) $(G)\n",
        "a.mk": "G = -q\ninclude Makefile\n",
    }
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is not ControlStatus.FAIL


def test_make_include_project_is_clean(tmp_path: Path, db: Path) -> None:
    files = {
        "Makefile": "include mk/vars.mk\n-include local.mk\ntest:\n\t$(PYTEST) -q\n",
        "mk/vars.mk": "PYTEST ?= python -m pytest\n",
    }
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS


# -- 04. a shell script whose name is nothing but a variable ---------------------------------
# ``bash "$f"`` runs a file no character of the host names: it cannot be read, and that was
# silent. Expected: a finding that the analysis is incomplete; actual before: PASS.
@pytest.mark.parametrize(
    "line",
    ['bash "$f"', "sh $script", '. "${STEP}"', 'source "$(cat ci/which)"'],
    ids=["bash-var", "sh-var", "dot-braced", "source-substitution"],
)
def test_attack_shell_runs_computed_file(tmp_path: Path, db: Path, line: str) -> None:
    document, controls = _gate(tmp_path, db, {"ci.sh": f"#!/bin/sh\n{line}\n"})
    assert controls[CODE] is ControlStatus.FAIL
    assert any("not read" in m or "not analysed" in m for m in _problems(document)) or any(
        "computes" in f["message"] for f in document["code"]["findings"]
    )


def test_attack_loop_over_scripts_installs(tmp_path: Path, db: Path) -> None:
    # ``for f in ci/*.sh; do bash "$f"; done``: the loop's words name the files
    files = {"run.sh": '#!/bin/sh\nfor f in ci/steps/*\ndo\n  bash "$f"\ndone\n'}
    files["ci/steps/a"] = f"{INSTALL}\n"  # a name no reader takes on its own
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_loop_over_scripts_project_is_clean(tmp_path: Path, db: Path) -> None:
    text = '#!/bin/sh\nfor f in ci/*.sh; do bash "$f"; done\n'
    text += 'for s in lint test; do . "ci/$s.sh"; done\n'
    files = {"run.sh": text, "ci/lint.sh": "ruff check .\n", "ci/test.sh": "pytest\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS


def test_shell_sources_known_outside_files_is_clean(tmp_path: Path, db: Path) -> None:
    text = (
        '#!/bin/bash\n. "$HOME/.cargo/env"\nsource "$VIRTUAL_ENV/bin/activate"\n'
        'exec bash "$0" --again\nbash ./run.sh\n'
    )
    files = {"ci.sh": text, "run.sh": "#!/bin/sh\npytest\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS


# -- 05. ``su -l user -c``, ``eval "$(cat FILE)"`` -------------------------------------------
# su takes its options and the user before or after ``-c``; ``eval "$(cat FILE)"`` runs
# FILE as ``. FILE`` does. Expected: FAIL; actual before the fix: PASS (``sudo -u x bash
# -c``, ``sudo -iu x sh -ec`` and ``eval "$(pip install ...)"`` were read already: kept as
# proof).
@pytest.mark.parametrize(
    "line",
    [
        f"su -l builder -c '{INSTALL}'",
        f"su - builder -c '{INSTALL}'",
        f"su builder -lc '{INSTALL}'",
        f"su --command='{INSTALL}' builder",
        f"su --login builder --command '{INSTALL}'",
        f"runuser -l builder -c '{INSTALL}'",
        f"sudo -u builder bash -c '{INSTALL}'",
        f"sudo -iu builder sh -ec '{INSTALL}'",
        f'eval "$({INSTALL})"',
    ],
    ids=[
        "su-l",
        "su-dash",
        "su-lc-cluster",
        "su-command-eq",
        "su-command",
        "runuser-l",
        "sudo-bash-c",
        "sudo-iu",
        "eval-substitution",
    ],
)
def test_attack_user_switch_runs_install(tmp_path: Path, db: Path, line: str) -> None:
    _, controls = _gate(tmp_path, db, {"ci.sh": f"#!/bin/bash\n{line}\n"})
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "line", ['eval "$(cat ci/step)"', 'eval "$(< ci/step)"', "eval `cat ci/step`"]
)
def test_attack_eval_of_a_file_installs(tmp_path: Path, db: Path, line: str) -> None:
    files = {"ci.sh": f"#!/bin/bash\n{line}\n", "ci/step": f"{INSTALL}\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_su_words_are_read() -> None:
    found = commands("shell", "su -l bob -c 'pip install x'\n")
    assert ("pip", "install", "x") in [c.words for c in found]


def test_user_switch_and_eval_project_is_clean(tmp_path: Path, db: Path) -> None:
    text = (
        '#!/bin/bash\nsu -l bob -c "python -m pytest"\neval "$(pyenv init -)"\n'
        'eval "$(ssh-agent -s)"\nsudo -u bob make test\n'
    )
    _, controls = _gate(tmp_path, db, {"ci.sh": text})
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS


# -- 06. devcontainer lifecycle commands were never read --------------------------------------
# VS Code / Codespaces run ``onCreateCommand``, ``postCreateCommand``... of
# ``.devcontainer/devcontainer.json`` (JSON with comments) when the container is made.
# Expected: FAIL; actual before the fix: PASS.
DEVCONTAINER = {
    "string": '{\n  "postCreateCommand": "' + INSTALL + '"\n}\n',
    "array": '{\n  "onCreateCommand": ["pip", "install", "' + PIN + '"]\n}\n',
    "object": (
        '{\n  "updateContentCommand": {\n    "deps": "' + INSTALL + '",\n'
        '    "other": ["echo", "x"]\n  }\n}\n'
    ),
    "comments": (
        '// dev container\n{\n  /* lifecycle */\n  "image": "python:3.12", // base\n'
        '  "postStartCommand": "' + INSTALL + '",\n}\n'
    ),
    "initialize": '{"initializeCommand": "' + INSTALL + '"}',
    "attach": '{"postAttachCommand": "' + INSTALL + '"}',
}


@pytest.mark.parametrize("form", sorted(DEVCONTAINER))
def test_attack_devcontainer_command_installs(tmp_path: Path, db: Path, form: str) -> None:
    files = {".devcontainer/devcontainer.json": DEVCONTAINER[form]}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "rel", [".devcontainer.json", ".devcontainer/gpu/devcontainer.json"], ids=["root", "nested"]
)
def test_attack_devcontainer_other_places(tmp_path: Path, db: Path, rel: str) -> None:
    _, controls = _gate(tmp_path, db, {rel: DEVCONTAINER["string"]})
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_devcontainer_runs_python(tmp_path: Path, db: Path) -> None:
    code = PICKLE_CODE.replace('"', '\\"')
    text = '{"postCreateCommand": ["python3", "-c", "' + code + '"]}'
    _, controls = _gate(tmp_path, db, {".devcontainer/devcontainer.json": text})
    assert controls[CODE] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "text",
    ['{"build": {"dockerfile": "image.def"}}', '{"dockerFile": "image.def"}'],
    ids=["build-dockerfile", "dockerFile"],
)
def test_attack_devcontainer_dockerfile_installs(tmp_path: Path, db: Path, text: str) -> None:
    files = {".devcontainer/devcontainer.json": text}
    files[".devcontainer/image.def"] = f"FROM python:3.12\nRUN {INSTALL}\n"
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_devcontainer_project_is_clean(tmp_path: Path, db: Path) -> None:
    text = (
        "// made by the VS Code wizard\n{\n"
        '  "name": "pip install demo",\n  "image": "mcr.microsoft.com/devcontainers/python:3",\n'
        '  "customizations": {"vscode": {"extensions": ["ms-python.python"]}},\n'
        '  "postCreateCommand": "pip install --user -r requirements.txt",\n'
        '  "postStartCommand": {"server": "make serve", "url": "echo http://x//y"},\n}\n'
    )
    files = {
        ".devcontainer/devcontainer.json": text,
        "requirements.txt": "requests==2.32.3\n",
        "Makefile": "serve:\n\tpython -m http.server\n",
    }
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS
