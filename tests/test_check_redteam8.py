"""Red team round 8 (rtcheck7): files a command host includes or runs that ``mltrust check``
reads since round 7, in forms those readers did not take, so that a project installed a
vulnerable pinned package (or ran Python that unpickles its input) while
``no-vulnerable-dependencies`` (or ``no-dangerous-code``) passed. Each attack test failed
before its fix (expected FAIL of the control, actual PASS); each benign test shows that an
ordinary project using the same feature is not flagged.

Files are written by the tests (``_gate`` of round 5); payloads are built at run time
(``PICKLE_CODE``) so this file does not trip the project's own gate."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

import test_check_redteam7 as _rt7
from mltrust.policy import ControlStatus

db = _rt7.db  # the advisory fixture (evilpkg 1.5 is vulnerable)
_gate, _job = _rt7._gate, _rt7._job
PIN, VULN, CODE, PICKLE_CODE = _rt7.PIN, _rt7.VULN, _rt7.CODE, _rt7.PICKLE_CODE
COMPLETE, INSTALL, PYTHON = _rt7.COMPLETE, _rt7.INSTALL, _rt7.PYTHON


def _recipe(line: str) -> str:
    return f"b:\n\t{line}\n"


def _task(line: str) -> str:
    return f"version: '3'\ntasks:\n  s:\n    cmds:\n      - {line}\n"


# -- 01. an included file named from the project root, with a decoy beside the includer -----
# GitLab's ``local:`` include and make's ``include`` name files from the project root (make:
# its working folder), and ``bash ci/step`` runs from where CI runs, the root; the readers
# tried the including file's folder first and stopped at the first file found, so a harmless
# ``ci/ci/b.yml`` hid the ``ci/b.yml`` that runs. Expected: FAIL; actual before: PASS.
NESTED = {
    "gitlab": {
        ".gitlab-ci.yml": "include: ci/a.yml\n",
        "ci/a.yml": "include: ci/b.yml\n",
        "ci/ci/b.yml": _job("make"),
        "ci/b.yml": _job(INSTALL),
    },
    "make": {
        "Makefile": "include mk/a.inc\nall:\n\techo\n",
        "mk/a.inc": "include mk/b.inc\n",
        "mk/mk/b.inc": _recipe("echo"),
        "mk/b.inc": _recipe(INSTALL),
    },
    "shell": {"ci/run.sh": "#!/bin/sh\nbash ci/step\n", "ci/ci/step": "echo\n", "ci/step": INSTALL},
}


@pytest.mark.parametrize("host", sorted(NESTED))
def test_attack_root_relative_include_behind_decoy(tmp_path: Path, db: Path, host: str) -> None:
    _, controls = _gate(tmp_path, db, NESTED[host])
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_root_relative_make_include_runs_python(tmp_path: Path, db: Path) -> None:
    files = dict(NESTED["make"], **{"mk/b.inc": _recipe(PYTHON)})
    _, controls = _gate(tmp_path, db, files)
    assert controls[CODE] is ControlStatus.FAIL


# -- 02. GitLab's ``**`` in a local include matches files in subfolders ----------------------
# ``local: 'ci/**.yml'`` (and ``ci/**/*.yml``) includes every .yml below ci/, at any depth;
# the matcher read ``**`` as ``*`` within one folder. Expected: FAIL; actual before: PASS.
@pytest.mark.parametrize("pattern", ["ci/**.yml", "/ci/**/*.yml"], ids=["star-star", "globstar"])
def test_attack_gitlab_recursive_include(tmp_path: Path, db: Path, pattern: str) -> None:
    files = {".gitlab-ci.yml": f"include:\n  - local: '{pattern}'\n", "ci/sub/jobs.yml": ""}
    files["ci/sub/jobs.yml"] = _job(INSTALL)
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL
    files["ci/sub/jobs.yml"] = f'job:\n  script:\n    - "{PYTHON}"\n'
    _, controls = _gate(tmp_path / "code", db, files)
    assert controls[CODE] is ControlStatus.FAIL


# -- 03. ``include:`` brought in by a YAML merge key -----------------------------------------
# GitLab loads CI YAML with merge keys: ``<<: *base`` at the top merges the anchored
# mapping's ``include:`` into the pipeline; the reader looked for an ``include`` key only.
# Expected: FAIL; actual before: PASS.
@pytest.mark.parametrize(
    "text",
    [".base: &b\n  include: ci/jobs.yml\n<<: *b\n", ".b: &b\n  include: [ci/jobs.yml]\n<<: [*b]\n"],
    ids=["mapping", "list"],
)
def test_attack_gitlab_include_by_merge_key(tmp_path: Path, db: Path, text: str) -> None:
    files = {".gitlab-ci.yml": text, "ci/jobs.yml": _job(INSTALL)}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


# -- 04. a CI script given as a tagged YAML scalar -------------------------------------------
# ``- !!binary cGlw...`` is the string ``pip install ...`` to a YAML loader (base64), and a
# scalar with a local tag (``!x pip install ...``) is its text: the reader read only scalars
# tagged as plain strings. Expected: FAIL; actual before: PASS (the control was skipped:
# no dependency at all).
@pytest.mark.parametrize("tag", ["binary", "local"])
def test_attack_tagged_yaml_script(tmp_path: Path, db: Path, tag: str) -> None:
    encoded = base64.b64encode(INSTALL.encode()).decode()
    line = f"!!binary {encoded}" if tag == "binary" else f"!shell {INSTALL}"
    _, controls = _gate(tmp_path, db, {".gitlab-ci.yml": _job(line)})
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_tagged_yaml_include(tmp_path: Path, db: Path) -> None:
    # the name an include gives is such a scalar too
    encoded = base64.b64encode(b"ci/jobs.yml").decode()
    files = {".gitlab-ci.yml": f"include:\n  - local: !!binary {encoded}\n"}
    files["ci/jobs.yml"] = _job(INSTALL)
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


# -- 05. make: ``include $(wildcard ...)``, ``$(eval ...)`` of a variable, ``make -sf FILE`` --
# ``$(wildcard mk/*.inc)`` is the files the pattern names (the reader made it an unknown
# value and included nothing); ``$(eval $(X))`` makes X's text part of the makefile (only
# ``define`` bodies were read); ``-sf FILE`` is ``-s -f FILE`` (only ``-f`` alone was read).
# Expected: FAIL; actual before: PASS.
MAKE = {
    "wildcard": {"Makefile": "include $(wildcard mk/*.inc)\nall:\n\techo\n", "mk/a.inc": ""},
    "eval-variable": {"Makefile": f"X = b: ; {INSTALL}\n$(eval $(X))\nall:\n\techo\n"},
    "eval-call": {
        "Makefile": "R = $(1): ; pip install $(2)\n$(eval $(call R,b,evilpkg==1.5))\n",
    },
    "option-cluster": {"ci.sh": "#!/bin/sh\nmake -sf ci/build b\n", "ci/build": ""},
}


@pytest.mark.parametrize("form", sorted(MAKE))
def test_attack_make_forms(tmp_path: Path, db: Path, form: str) -> None:
    files = dict(MAKE[form])
    for rel in files:
        if not files[rel]:
            files[rel] = _recipe(INSTALL)
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_make_wildcard_include_runs_python(tmp_path: Path, db: Path) -> None:
    files = {"Makefile": MAKE["wildcard"]["Makefile"], "mk/a.inc": _recipe(PYTHON)}
    _, controls = _gate(tmp_path, db, files)
    assert controls[CODE] is ControlStatus.FAIL


def test_attack_make_wildcard_include_variables(tmp_path: Path, db: Path) -> None:
    # the variables of the makefiles a pattern includes are the host's too
    files = {"Makefile": "include $(wildcard mk/*.inc)\nall:\n\t$(F)\n", "mk/v.inc": ""}
    files["mk/v.inc"] = f"F = {INSTALL}\n"
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL
    files["mk/v.inc"] = f"F = {PYTHON}\n"
    _, controls = _gate(tmp_path / "code", db, files)
    assert controls[CODE] is ControlStatus.FAIL


def test_make_wildcard_and_eval_project_is_clean(tmp_path: Path, db: Path) -> None:
    files = {
        "Makefile": (
            "-include $(wildcard mk/*.mk)\nSRC := $(wildcard src/*.py)\n"
            "$(eval VERSION := 1.0)\ntest:\n\tpython -m pytest $(SRC)\n"
        ),
        "mk/lint.mk": "lint:\n\truff check .\n",
    }
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS


# -- 06. a file of another kind by name run as a shell script --------------------------------
# ``. ./setup.cfg``: setup.cfg is read on its own as a setup.cfg (its install_requires), so
# the runner skipped it as read already; bash runs its lines (``[x]`` fails, the install
# runs; configparser reads the install line as a key). Expected: FAIL; actual before: PASS.
def test_attack_polyglot_run_as_shell(tmp_path: Path, db: Path) -> None:
    files = {"ci.sh": "#!/bin/sh\n. ./setup.cfg\n", "setup.cfg": f"[x]\n{INSTALL}\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_file_read_once_whatever_kind(tmp_path: Path, db: Path) -> None:
    # a file run as a shell script first and read as a makefile next was read once, as the
    # shell reads it: an open quote there hides the assignment make reads
    text = "x = '\nF = {}\ny = '\nb:\n\t$(F)\n"
    files = {"ci.sh": "#!/bin/sh\nbash ci/x\nmake -f ci/x b\n", "ci/x": text.format(INSTALL)}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL
    files["ci/x"] = text.format(PYTHON.replace("'", '"'))
    _, controls = _gate(tmp_path / "code", db, files)
    assert controls[CODE] is ControlStatus.FAIL


# -- 07. a shell script with a suffix, run by its path ---------------------------------------
# ``./ci/boot.run`` runs a file whose shebang is ``#!/bin/sh``; the code analysis reads any
# file with a shell shebang, the dependency check only those without a suffix. Expected:
# FAIL; actual before: PASS.
def test_attack_shell_shebang_with_suffix(tmp_path: Path, db: Path) -> None:
    files = {"ci.sh": "#!/bin/bash\n./ci/boot.run\n", "ci/boot.run": f"#!/bin/sh\n{INSTALL}\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


# -- 08. Taskfiles: ``Taskfile.dist.yml`` and templated include paths -------------------------
# task reads ``Taskfile.dist.yml`` (root or an included folder) like ``Taskfile.yml``, and an
# include path may hold a template (``./tasks/{{OS}}.yml``); neither was read, silently.
# Expected: FAIL; actual before: PASS.
TASKS = {
    "dist-root": {"Taskfile.dist.yml": _task(INSTALL)},
    "dist-included": {
        "Taskfile.yml": "version: '3'\nincludes:\n  b: ./tasks\n",
        "tasks/Taskfile.dist.yml": _task(INSTALL),
    },
    "template": {
        "Taskfile.yml": "version: '3'\nincludes:\n  b: ./tasks/{{OS}}.yml\n",
        "tasks/linux.yml": _task(INSTALL),
    },
}


@pytest.mark.parametrize("form", sorted(TASKS))
def test_attack_taskfile_forms(tmp_path: Path, db: Path, form: str) -> None:
    _, controls = _gate(tmp_path, db, TASKS[form])
    assert controls[VULN] is ControlStatus.FAIL


# -- 09. a dev container file that a JSON parser refuses but VS Code reads --------------------
# VS Code's JSONC parser is lenient (a raw tab inside a string is an error it reads past);
# json.loads refused the file and the fallback read its lines as shell, where the command is
# one quoted word. Expected: FAIL; actual before: PASS.
def test_attack_devcontainer_lenient_json(tmp_path: Path, db: Path) -> None:
    text = '{"postCreateCommand": "' + INSTALL + '\t"}'
    _, controls = _gate(tmp_path, db, {".devcontainer/devcontainer.json": text})
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_json_that_does_not_parse_fails_closed(tmp_path: Path, db: Path) -> None:
    text = "{'postCreateCommand': '" + INSTALL + "',}"  # not JSON at all
    _, controls = _gate(tmp_path, db, {".devcontainer/devcontainer.json": text})
    assert controls[VULN] is ControlStatus.FAIL


# -- 10. justfile ``import`` with a triple-quoted path or CRLF line ends ----------------------
# just takes ``'''...'''``/``"""..."""`` strings and CRLF files; the directive pattern did not.
# Expected: FAIL; actual before: PASS.
@pytest.mark.parametrize(
    "text",
    ["import '''ci/t.just'''\n", 'import """ci/t.just"""\n', "import 'ci/t.just'\r\n"],
    ids=["single-triple", "double-triple", "crlf"],
)
def test_attack_just_import_forms(tmp_path: Path, db: Path, text: str) -> None:
    files = {"justfile": text, "ci/t.just": f"setup:\n    {INSTALL}\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


# -- 11. ``docker compose -f FILE`` -----------------------------------------------------------
# Compose runs the services of the file ``-f`` names, whatever its name; only files named
# like compose files were read. Expected: FAIL; actual before: PASS.
@pytest.mark.parametrize("program", ["docker compose", "docker-compose", "podman compose"])
def test_attack_compose_file_option(tmp_path: Path, db: Path, program: str) -> None:
    files = {"ci.sh": f"#!/bin/sh\n{program} -f deploy/stack.yml up\n"}
    files["deploy/stack.yml"] = f"services:\n  a:\n    command: {INSTALL}\n"
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


# -- 12. a shell running the text of a file without naming it as its script ------------------
# ``bash -c "$(cat FILE)"``, ``source <(cat FILE)`` and ``cat FILE | sh`` run FILE's text as
# ``. FILE`` does (only ``eval "$(cat FILE)"`` was read). Expected: FAIL; actual: PASS.
@pytest.mark.parametrize(
    "line",
    ['bash -c "$(cat ci/step)"', "source <(cat ci/step)", "cat ci/step | sh"],
    ids=["c-substitution", "process-substitution", "pipe"],
)
def test_attack_shell_runs_text_of_file(tmp_path: Path, db: Path, line: str) -> None:
    files = {"ci.sh": f"#!/bin/bash\n{line}\n", "ci/step": f"{INSTALL}\n"}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


# -- 13. ``MAKEFILES=FILE make`` and a Compose service's image ---------------------------------
# make reads the makefiles named in ``MAKEFILES`` first; Compose builds a service's image
# from ``build: {context, dockerfile}`` and runs the service another file's service
# ``extends:``. Expected: FAIL; actual before: PASS
# (``dockerfile_inline`` was read already: kept as proof).
BUILDS = {
    "makefiles-variable": {"ci.sh": "#!/bin/sh\nMAKEFILES=mk/a.inc make all\n", "mk/a.inc": ""},
    "compose-dockerfile": {
        "docker-compose.yml": (
            "services:\n  a:\n    build:\n      context: ./img\n      dockerfile: app.def\n"
        ),
        "img/app.def": f"FROM python:3.12\nRUN {INSTALL}\n",
    },
    "compose-extends": {
        "docker-compose.yml": (
            "services:\n  a:\n    extends:\n      file: common/base.yml\n      service: b\n"
        ),
        "common/base.yml": f"services:\n  b:\n    image: python\n    command: {INSTALL}\n",
    },
    "compose-inline": {
        "compose.yaml": (
            "services:\n  a:\n    build:\n      dockerfile_inline: |\n"
            f"        FROM python:3.12\n        RUN {INSTALL}\n"
        ),
    },
}


@pytest.mark.parametrize("form", sorted(BUILDS))
def test_attack_build_inputs(tmp_path: Path, db: Path, form: str) -> None:
    files = {k: v or _recipe(INSTALL) for k, v in BUILDS[form].items()}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


# -- 15. a host's settings apply to the recipes of the files it includes, and back ------------
# just merges an imported file into the justfile: ``set shell := ["python3", "-c"]`` in
# either one makes python3 run every recipe line of both; make runs an included makefile's
# recipes with the host's ``SHELL``. Each file was read with its own settings only.
# Expected: FAIL; actual before: PASS.
SETTINGS = {
    "just-host-shell": {
        "justfile": "set shell := ['python3', '-c']\nimport 'ci/t.just'\n",
        "ci/t.just": f"s:\n    {PICKLE_CODE}\n",
    },
    "just-imported-shell": {
        "justfile": f"import 'ci/set.just'\ns:\n    {PICKLE_CODE}\n",
        "ci/set.just": "set shell := ['python3', '-c']\n",
    },
    "make-host-shell": {
        "Makefile": "SHELL = python3\ninclude x.mk\n",
        "x.mk": f"b:\n\t{PICKLE_CODE}\n",
    },
}


@pytest.mark.parametrize("form", sorted(SETTINGS))
def test_attack_settings_of_including_file(tmp_path: Path, db: Path, form: str) -> None:
    _, controls = _gate(tmp_path, db, SETTINGS[form])
    assert controls[CODE] is ControlStatus.FAIL


# -- 16. GitLab include inputs, dev container Features -----------------------------------------
# An include's ``inputs:`` are substituted into the included file (``$[[ inputs.cmd ]]`` in a
# script), but the whole ``include:`` value was skipped as file names; a local dev container
# Feature's ``devcontainer-feature.json`` has lifecycle commands of its own, and the file was
# not a command host. Expected: FAIL; actual before: PASS.
INCLUDED_JOB = "spec:\n  inputs:\n    cmd:\n---\njob:\n  script:\n    - $[[ inputs.cmd ]]\n"


def test_attack_gitlab_include_inputs(tmp_path: Path, db: Path) -> None:
    text = "include:\n  - local: ci/job.yml\n    inputs:\n      cmd: {}\n"
    files = {".gitlab-ci.yml": text.format(INSTALL), "ci/job.yml": INCLUDED_JOB}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL
    files[".gitlab-ci.yml"] = text.format(f'"{PYTHON}"')
    _, controls = _gate(tmp_path / "code", db, files)
    assert controls[CODE] is ControlStatus.FAIL


def test_attack_devcontainer_feature_command(tmp_path: Path, db: Path) -> None:
    feature = '{"id": "f", "version": "1.0.0", "postCreateCommand": "' + INSTALL + '"}'
    files = {".devcontainer/f/devcontainer-feature.json": feature}
    files[".devcontainer/devcontainer.json"] = '{"image": "python", "features": {"./f": {}}}'
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


# -- 14. a written script, make -I (gaps of this round, fixed in round 9) --------------------
# A script the host writes and then runs (``echo ... > gen.sh; bash gen.sh``) was not a file
# of the project: the reader did not follow what a command writes, and a missing file was
# taken as one outside the project (``source .venv/bin/activate``). ``make -I DIR`` adds a
# folder make searches for ``include``d names; the readers looked beside the host and at the
# root only. Expected: FAIL; actual before: PASS (variants: test_check_redteam9.py).
def test_attack_generated_script_runs(tmp_path: Path, db: Path) -> None:
    text = f"#!/bin/sh\necho '{INSTALL}' > gen.sh\nbash gen.sh\n"
    _, controls = _gate(tmp_path, db, {"ci.sh": text})
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_make_include_dir_option(tmp_path: Path, db: Path) -> None:
    files = {"ci.sh": "#!/bin/sh\nmake -I mk all\n", "Makefile": "include a.inc\nall:\n\techo\n"}
    files["mk/a.inc"] = _recipe(INSTALL)
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


# -- ordinary projects using the forms above are not flagged ---------------------------------
def test_included_and_run_files_project_is_clean(tmp_path: Path, db: Path) -> None:
    files = {
        ".gitlab-ci.yml": "include:\n  - local: '/ci/**.yml'\n",
        "ci/a/test.yml": _job("python -m pytest"),
        "ci/lint.yml": ".s: &s\n  - ruff check .\nlint:\n  script:\n    - !reference [.s]\n",
        "ci.sh": (
            "#!/bin/bash\ncat requirements.txt | sort\nsource <(kubectl completion bash)\n"
            "docker compose -f deploy/stack.yml up -d\nmake -sf mk/build.mk all\n"
        ),
        "requirements.txt": "requests==2.32.3\n",
        "deploy/stack.yml": "services:\n  web:\n    image: nginx\n    build:\n      context: .\n",
        "mk/build.mk": "all:\n\tpython -m build\n",
        "tools/x.run": "#!/bin/sh\necho ok\n",
        "Taskfile.yml": "version: '3'\nincludes:\n  os: ./tasks/Taskfile_{{OS}}.yml\n",
        "tasks/Taskfile_linux.yml": _task("python -m pytest"),
        ".devcontainer/devcontainer.json": '{"postCreateCommand": "make test\\t"}',
    }
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS
