"""Red team round 4 (check4): projects that hold a vulnerable pinned dependency, an install
command, Python that unpickles its input, or a private key, and that ``mltrust check`` passed;
and ordinary projects it failed. Each attack test fails without its fix.

Payloads are built at run time (``PICKLE_CODE``, ``key()``) so this file does not trip the
project's own gate."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import test_check_depattacks as _attacks
from _check_helpers import PEM_KEY
from mltrust.evidence import CollectContext, collect_evidence
from mltrust.policy import ControlStatus, evaluate, load_profile

db = _attacks.db  # the advisory fixture (evilpkg 1.5 is vulnerable)

PIN = "evilpkg==1.5"
VULN = "no-vulnerable-dependencies"
CODE = "no-dangerous-code"
SECRETS = "no-committed-secrets"
#: Python that unpickles its standard input (built here so this file holds no such call).
PICKLE_CODE = "import pickle, sys; pickle." + "loads(sys.stdin.buffer.read())"
PICKLE_LINES = "import pickle, sys\npickle." + "loads(sys.stdin.buffer.read())\n"


def key() -> bytes:
    return PEM_KEY.encode()  # the helpers' fake key (marked there for the self gate)


def _gate(tmp_path: Path, db: Path, files: dict[str, str | bytes]):  # type: ignore[no-untyped-def]
    root = tmp_path / "p"
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    bundle = collect_evidence(CollectContext(root, advisory_db=db))
    verdict = evaluate(bundle.document, load_profile("default"))
    return bundle.document, {r.control.id: r.status for r in verdict.results}


def _flagged(doc) -> set[str]:  # type: ignore[no-untyped-def]
    """The files with a vulnerable or unverifiable dependency."""
    deps = doc["deps"]
    return {r["source"] for r in deps["vulnerabilities"] + deps["unverifiable"]}


# -- 01. a command that prints an install command installs nothing -------------------------
@pytest.mark.parametrize(
    ("rel", "text"),
    [
        ("Makefile", f"help:\n\techo To reproduce run pip install {PIN}\n"),
        ("ci.sh", f"#!/bin/sh\nprintf '%s\\n' run: pip install {PIN}\n"),
        (
            ".github/workflows/ci.yml",
            f"on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n"
            f"      - run: echo then pip install {PIN}\n",
        ),
    ],
    ids=["make-echo", "sh-printf", "gh-echo"],
)
def test_printed_install_command_is_not_an_install(
    tmp_path: Path, db: Path, rel: str, text: str
) -> None:
    doc, controls = _gate(tmp_path, db, {rel: text})
    assert not _flagged(doc)
    assert controls[VULN] is ControlStatus.PASS


def test_install_after_an_echo_is_still_an_install(tmp_path: Path, db: Path) -> None:
    doc, controls = _gate(tmp_path, db, {"ci.sh": f"#!/bin/sh\necho go && pip install {PIN}\n"})
    assert "ci.sh" in _flagged(doc)
    assert controls[VULN] is ControlStatus.FAIL


# -- 02, 07, 08. CI YAML: a step's own shell, entrypoint/command and command/args pairs,
# and a script whose shebang runs Python -----------------------------------------------------
CIRCLE_STEP = (
    "version: 2.1\njobs:\n  build:\n    docker:\n      - image: python:3.12\n    steps:\n"
    "      - run:\n          shell: python3\n          command: |\n"
    "            import pickle, sys\n            pickle." + "loads(sys.stdin.buffer.read())\n"
)
CIRCLE_JOB = (
    "version: 2.1\njobs:\n  build:\n    shell: /usr/bin/python3\n    docker:\n"
    "      - image: python:3.12\n    steps:\n      - run: |\n"
    "          import pickle, sys\n          pickle." + "loads(sys.stdin.buffer.read())\n"
)
GITLAB_SERVICE = (
    'job:\n  services:\n    - name: python:3.12\n      entrypoint: ["python3"]\n'
    f'      command: ["-c", "{PICKLE_CODE}"]\n  script:\n    - echo hi\n'
)
TEKTON_ARGS = (
    "apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: t\nspec:\n  steps:\n"
    '    - name: a\n      image: python:3.12\n      command: ["python3"]\n'
    f'      args: ["-c", "{PICKLE_CODE}"]\n'
)
TEKTON_SCRIPT = (
    "apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: t\nspec:\n  steps:\n"
    "    - name: b\n      image: python:3.12\n      script: |\n"
    "        #!/usr/bin/env python3\n        import pickle, sys\n"
    "        pickle." + "loads(sys.stdin.buffer.read())\n"
)


@pytest.mark.parametrize(
    ("rel", "text"),
    [
        (".circleci/config.yml", CIRCLE_STEP),
        (".circleci/config.yml", CIRCLE_JOB),
        (".gitlab-ci.yml", GITLAB_SERVICE),
        (".tekton/task.yaml", TEKTON_ARGS),
        (".tekton/task.yaml", TEKTON_SCRIPT),
    ],
    ids=["circleci-step-shell", "circleci-job-shell", "gitlab-service", "tekton-args", "shebang"],
)
def test_attack_ci_yaml_python_not_read_as_shell(
    tmp_path: Path, db: Path, rel: str, text: str
) -> None:
    _, controls = _gate(tmp_path, db, {rel: text})
    assert controls[CODE] is ControlStatus.FAIL


def test_attack_ci_yaml_pairs_install(tmp_path: Path, db: Path) -> None:
    text = (
        'job:\n  services:\n    - name: python:3.12\n      entrypoint: ["pip"]\n'
        f'      command: ["install", "{PIN}"]\n  script:\n    - echo hi\n'
    )
    doc, controls = _gate(tmp_path, db, {".gitlab-ci.yml": text})
    assert ".gitlab-ci.yml" in _flagged(doc)
    assert controls[VULN] is ControlStatus.FAIL


def test_circleci_shell_steps_are_clean(tmp_path: Path, db: Path) -> None:
    text = (
        "version: 2.1\njobs:\n  build:\n    shell: /bin/bash -eo pipefail\n    docker:\n"
        "      - image: python:3.12\n    steps:\n      - run:\n          shell: bash\n"
        "          command: python -m pytest -q\n      - run: make test\n"
    )
    _, controls = _gate(tmp_path, db, {".circleci/config.yml": text})
    assert controls[CODE] is ControlStatus.PASS
    assert controls["analysis-complete"] is ControlStatus.PASS


# -- 03, 04. hatch: hatch.toml environments, scripts and overrides ---------------------------
@pytest.mark.parametrize(
    ("rel", "text"),
    [
        ("hatch.toml", f'[envs.default]\ndependencies = ["{PIN}"]\n'),
        ("hatch.toml", f'[envs.default.scripts]\nsetup = "pip install {PIN}"\n'),
        ("hatch.toml", f'[envs.lint.scripts]\nall = ["ruff check", "pip install {PIN}"]\n'),
        (
            "pyproject.toml",
            '[project]\nname = "x"\nversion = "1"\n\n'
            f'[tool.hatch.envs.default.scripts]\nsetup = "pip install {{args}} {PIN}"\n',
        ),
        (
            "pyproject.toml",
            '[project]\nname = "x"\nversion = "1"\n\n[tool.hatch.envs.test.overrides]\n'
            f'matrix.python.dependencies = [{{ value = "{PIN}", if = ["3.12"] }}]\n',
        ),
        (
            "hatch.toml",
            f'[build.targets.wheel.hooks.custom]\ndependencies = ["{PIN}"]\n',
        ),
    ],
    ids=["env-deps", "script", "script-list", "pyproject-script", "override", "build-hook"],
)
def test_attack_hatch_installs(tmp_path: Path, db: Path, rel: str, text: str) -> None:
    doc, controls = _gate(tmp_path, db, {rel: text})
    assert rel in _flagged(doc)
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize("rel", ["hatch.toml", "pyproject.toml"])
def test_attack_hatch_script_runs_python(tmp_path: Path, db: Path, rel: str) -> None:
    table = "envs" if rel == "hatch.toml" else "tool.hatch.envs"
    text = f"[{table}.default.scripts]\nserve = \"python -c '{PICKLE_CODE}'\"\n"
    _, controls = _gate(tmp_path, db, {rel: text})
    assert controls[CODE] is ControlStatus.FAIL


def test_hatch_project_is_clean(tmp_path: Path, db: Path) -> None:
    text = (
        '[envs.default]\ndependencies = ["pytest==8.3.3"]\n\n[envs.default.scripts]\n'
        'test = "pytest {args:tests}"\ncov = ["test --cov", "python -m coverage report"]\n'
    )
    doc, controls = _gate(tmp_path, db, {"hatch.toml": text})
    assert not _flagged(doc) and not doc["deps"]["problems"]
    assert controls[VULN] is ControlStatus.PASS and controls[CODE] is ControlStatus.PASS


# -- 05, 06. make functions: $(call ...) and the text functions, as make expands them --------
@pytest.mark.parametrize(
    "text",
    [
        f"inst = pip install $(1)\nall:\n\t$(call inst,{PIN})\n",
        f"all:\n\t$(subst X,,pXip) install {PIN}\n",
        f"P = pip\nall:\n\t$(firstword $(P) x) install $(word 2,a {PIN})\n",
        f"all:\n\t$(foreach p,{PIN},pip install $(p);)\n",
    ],
    ids=["call", "subst", "firstword-word", "foreach"],
)
def test_attack_make_function_installs(tmp_path: Path, db: Path, text: str) -> None:
    doc, controls = _gate(tmp_path, db, {"Makefile": text})
    assert "Makefile" in _flagged(doc)
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_make_call_runs_python(tmp_path: Path, db: Path) -> None:
    text = f"run = python3 -c $(1)\nall:\n\t$(call run,'{PICKLE_CODE}')\n"
    _, controls = _gate(tmp_path, db, {"Makefile": text})
    assert controls[CODE] is ControlStatus.FAIL


MAKE_FUNCTIONS = (
    "A = a b c\nV = x$(1)y$(2)\nN = 2\n"
    "all:\n"
    "\techo $(call V,1,2) $(call V,q)\n"
    "\techo $(subst b,B,$(A)) $(patsubst %.c,%.o,x.c y.h) $(strip  a   b )\n"
    "\techo $(firstword $(A)) $(lastword $(A)) $(word $(N),$(A)) $(wordlist 2,3,$(A))\n"
    "\techo $(foreach w,$(A),[$(w)]) $(if $(A),yes,no) $(if ,yes,no) $(or ,,z) $(and a,b)\n"
    "\techo $(filter %.c,a.c b.h) $(filter-out %.c,a.c b.h) $(sort c a b a) $(words $(A))\n"
    "\techo $(dir a/b.c c) $(notdir a/b.c) $(suffix a/b.c d) $(basename a/b.c d)\n"
    "\techo $(addprefix p-,$(A)) $(addsuffix .x,$(A)) $(join a b,1 2 3) $(findstring b,abc)\n"
)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_functions_expand_as_gnu_make_expands_them(tmp_path: Path) -> None:
    from mltrust.evidence._commands import commands

    (tmp_path / "Makefile").write_text(MAKE_FUNCTIONS)
    ran = subprocess.run(
        ["make", "-n", "-s", "all"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    ours = [" ".join(c.words) for c in commands("make", MAKE_FUNCTIONS)]
    import shlex

    assert [" ".join(shlex.split(line)) for line in ran] == ours


# -- 20, 21. Compose files and Dockerfiles named for docker build -f -------------------------
@pytest.mark.parametrize(
    "rel", ["Dockerfile-dev", "Dockerfile_gpu", "docker/Dockerfile.cpu", "gpu-Dockerfile"]
)
def test_attack_dockerfile_names(tmp_path: Path, db: Path, rel: str) -> None:
    doc, controls = _gate(tmp_path, db, {rel: f"FROM python:3.12\nRUN pip install {PIN}\n"})
    assert rel in _flagged(doc)
    assert controls[VULN] is ControlStatus.FAIL
    text = f"FROM python:3.12\nRUN python3 -c '{PICKLE_CODE}'\n"
    _, controls = _gate(tmp_path / "code", db, {rel: text})
    assert controls[CODE] is ControlStatus.FAIL


@pytest.mark.parametrize("rel", ["docker-compose.yml", "compose.yaml", "docker-compose.prod.yml"])
def test_attack_compose_service_command(tmp_path: Path, db: Path, rel: str) -> None:
    text = (
        "services:\n  app:\n    image: python:3.12\n"
        f"    command: sh -c 'pip install {PIN} && python3 app.py'\n"
        '  worker:\n    image: python:3.12\n    entrypoint: ["python3"]\n'
        f'    command: ["-c", "{PICKLE_CODE}"]\n'
    )
    doc, controls = _gate(tmp_path, db, {rel: text})
    assert rel in _flagged(doc)
    assert controls[VULN] is ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.FAIL


def test_ordinary_compose_file_is_clean(tmp_path: Path, db: Path) -> None:
    text = (
        "services:\n  db:\n    image: postgres:16\n    environment:\n"
        "      POSTGRES_PASSWORD: example\n  app:\n    build: .\n"
        "    command: gunicorn app:server -b 0.0.0.0:8000\n    ports: ['8000:8000']\n"
    )
    doc, controls = _gate(tmp_path, db, {"docker-compose.yml": text})
    assert not _flagged(doc)
    assert controls[CODE] is ControlStatus.PASS
    assert controls["analysis-complete"] is ControlStatus.PASS


# -- 13, 14. a loader stored in an attribute in one module and called in another -------------
LOADS = "loa" + "ds"
CALLER = (
    "from cfg import cfg\nfrom flask import request\n\n\n"
    "def f():\n    return cfg.loader(request.data)\n"
)


@pytest.mark.parametrize(
    ("cfg", "app"),
    [
        (
            f"import pickle\n\n\nclass C:\n    pass\n\n\ncfg = C()\n"
            f"setattr(cfg, 'loader', pickle.{LOADS})\n",
            CALLER,
        ),
        (
            f"import pickle\n\n\nclass C:\n    pass\n\n\ncfg = C()\n"
            f"object.__setattr__(cfg, 'loader', pickle.{LOADS})\n",
            CALLER,
        ),
        (
            f"from pickle import {LOADS}\n\n\nclass C:\n    loader = {LOADS}\n",
            "from cfg import C\nfrom flask import request\n\n\n"
            "def f():\n    return C().loader(request.data)\n",
        ),
        (
            f"import pickle\n\n\nclass C:\n    if True:\n        loader = pickle.{LOADS}\n",
            "from flask import request\n\n\ndef f(c):\n    return c.loader(request.data)\n",
        ),
    ],
    ids=["setattr", "object-setattr", "class-attribute", "class-attribute-nested"],
)
def test_attack_loader_bound_to_attribute_used_elsewhere(
    tmp_path: Path, db: Path, cfg: str, app: str
) -> None:
    doc, controls = _gate(tmp_path, db, {"cfg.py": cfg, "app.py": app})
    assert controls[CODE] is ControlStatus.FAIL
    lines = {f["path"] for f in doc["code"]["findings"] if f["rule_id"] == "MLT-CODE-001"}
    assert "cfg.py" in lines


def test_class_attribute_of_a_safe_callable_is_clean(tmp_path: Path, db: Path) -> None:
    cfg = "import json\n\n\nclass C:\n    loader = json.loads\n    name = 'x'\n"
    _, controls = _gate(tmp_path, db, {"cfg.py": cfg})
    assert controls[CODE] is ControlStatus.PASS


# -- 15, 16. secrets in compressed content no decoder here reads, and in v7 tar archives -----
def _v7_tar(member: str, data: bytes) -> bytes:
    """A tar whose header has no ustar magic (as V7 tar writes it); tarfile opens it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    raw = bytearray(buf.getvalue())
    raw[257:265] = bytes(8)  # no magic, no version
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    with tarfile.open(fileobj=io.BytesIO(bytes(raw))) as tar:  # the oracle: tarfile reads it
        assert tar.getnames() == [member]
    return bytes(raw)


def test_attack_key_in_gzip_member_of_v7_tar(tmp_path: Path, db: Path) -> None:
    doc, controls = _gate(tmp_path, db, {"data.bin": _v7_tar("k.gz", gzip.compress(key()))})
    assert controls[SECRETS] is ControlStatus.FAIL
    found = {f["path"] for f in doc["code"]["findings"] if f["rule_id"] == "MLT-CODE-009"}
    assert found == {"data.bin:k.gz:k"}


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd is not installed")
@pytest.mark.parametrize("name", ["keys.zst", "keys.bin.part"])
def test_attack_key_in_zstd_stream_is_not_searched_and_fails(
    tmp_path: Path, db: Path, name: str
) -> None:
    packed = subprocess.run(["zstd", "-q", "-c"], input=key() * 20, capture_output=True, check=True)
    _, controls = _gate(tmp_path, db, {name: packed.stdout})
    assert controls[SECRETS] is ControlStatus.FAIL


def test_file_named_like_undecodable_compression_fails_closed(tmp_path: Path, db: Path) -> None:
    _, controls = _gate(tmp_path, db, {"notes.br": b"\x1b\x07\x00\xf8\xa5@\x00"})
    assert controls[SECRETS] is ControlStatus.FAIL


# -- 17, 18. setup.py: bindings rebound without their names, setup() called elsewhere --------
@pytest.mark.parametrize(
    "rebind",
    [
        f'globals()["REQS"] = ["{PIN}"]',
        f'globals().update(REQS=["{PIN}"])',
        f'sys.modules[__name__].REQS = ["{PIN}"]',
        f"exec('REQS = [\"{PIN}\"]')",
        f'vars()["REQS"] = ["{PIN}"]',
    ],
    ids=["globals-item", "globals-update", "sys-modules", "exec", "vars"],
)
def test_attack_setup_py_binding_rebound_unnamed(tmp_path: Path, db: Path, rebind: str) -> None:
    text = (
        "import sys\nfrom setuptools import setup\n\n"
        f'REQS = ["requests==2.32.3"]\n{rebind}\nsetup(name="x", install_requires=REQS)\n'
    )
    doc, controls = _gate(tmp_path, db, {"setup.py": text})
    assert doc["deps"]["problems"] or doc["deps"]["unverifiable"]
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "setup_py",
    [
        'import runpy\n\nrunpy.run_path("build_cfg.py")\n',
        "import build_cfg  # noqa: F401\n",
        'import setuptools\n\ngetattr(setuptools, "se" + "tup")(name="x", install_requires=REQ)\n',
    ],
    ids=["runpy", "import", "getattr"],
)
def test_attack_setup_call_elsewhere_is_not_silence(
    tmp_path: Path, db: Path, setup_py: str
) -> None:
    other = f'from setuptools import setup\n\nsetup(name="x", install_requires=["{PIN}"])\n'
    doc, controls = _gate(tmp_path, db, {"setup.py": setup_py, "build_cfg.py": other})
    assert any(p["source"] == "setup.py" for p in doc["deps"]["problems"])
    assert controls[VULN] is ControlStatus.FAIL


def test_setup_py_with_version_exec_in_its_own_namespace_is_read(tmp_path: Path, db: Path) -> None:
    text = (
        "from setuptools import setup\n\nabout = {}\n"
        'exec(open("x/_version.py").read(), about)\n'
        'setup(name="x", version=about["v"], install_requires=["requests==2.32.3"])\n'
    )
    doc, controls = _gate(tmp_path, db, {"setup.py": text, "x/_version.py": "v = '1'\n"})
    assert not doc["deps"]["problems"] and not doc["deps"]["unverifiable"]
    assert controls[VULN] is ControlStatus.PASS


# -- 09-12. shell: substitutions glued to a word, computed interpreters, brace expansion,
# aliases ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line",
    [
        f"$(printf p)ip install {PIN}",
        f"`printf p`ip install {PIN}",
        f"{{pip,install}} {PIN}",
        f"{{pip,install,{PIN}}}",
        f"shopt -s expand_aliases\nalias inst='pip install'\ninst {PIN}",
    ],
    ids=["substitution", "backquotes", "braces", "braces-all", "alias"],
)
def test_attack_shell_forms_that_install(tmp_path: Path, db: Path, line: str) -> None:
    doc, controls = _gate(tmp_path, db, {"ci.sh": f"#!/bin/bash\n{line}\n"})
    assert "ci.sh" in _flagged(doc)
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "line",
    [
        f"$(printf pyth)on3 -c '{PICKLE_CODE}'",
        f"$(echo python3) -c '{PICKLE_CODE}'",
        f"P=python3\n$P -c '{PICKLE_CODE}'",
        f"`echo python3` -c '{PICKLE_CODE}'",
        f"{{python3,-c,'{PICKLE_CODE}'}}",
        f"alias py=python3\npy -c '{PICKLE_CODE}'",
    ],
    ids=["substitution", "echo", "variable", "backquotes", "braces", "alias"],
)
def test_attack_shell_forms_that_run_python(tmp_path: Path, db: Path, line: str) -> None:
    _, controls = _gate(tmp_path, db, {"ci.sh": f"#!/bin/bash\n{line}\n"})
    assert controls[CODE] is ControlStatus.FAIL


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize(
    "line",
    [
        "$(printf ec)ho a b",
        "`printf ec`ho c",
        "{echo,d,e}",
        "echo f{g,h} {i,j}k {l,m}",
        'echo "$(echo n o)" $(echo p)q',
        "echo '{r,s}' t{u..w} {x..z}",
    ],
)
def test_shell_words_are_what_bash_runs(tmp_path: Path, line: str) -> None:
    from mltrust.evidence._commands import commands

    ran = subprocess.run(
        ["bash", "-c", line + ' | tr "\\n" " "'], capture_output=True, text=True, check=True
    ).stdout.split()
    first = commands("shell", line)[0]
    words = [w for w in first.words[1:] if "$" not in w and "`" not in w]
    # every word we read that the shell does not compute is a word bash printed
    assert set(words) <= set(ran), (first.words, ran)


@pytest.mark.parametrize(
    "text",
    [
        "all:\n\t$(CC) -c main.c -o main.o\n\t$(SHELL) -c 'echo built'\n",
        "install:\n\tinstall -m 755 tool $(DESTDIR)/bin\n\tmkdir -p x; install -d y\n",
    ],
    ids=["cc", "coreutils-install"],
)
def test_ordinary_makefile_is_clean(tmp_path: Path, db: Path, text: str) -> None:
    doc, controls = _gate(tmp_path, db, {"Makefile": text})
    assert not _flagged(doc) and not doc["deps"]["problems"]
    assert controls[CODE] is ControlStatus.PASS
    assert controls["analysis-complete"] is ControlStatus.PASS


# -- 22, 23. files a command host runs as a shell script or reads as a makefile --------------
@pytest.mark.parametrize(
    ("host", "text", "rel"),
    [
        ("Makefile", "all:\n\tbash scripts/setup\n", "scripts/setup"),
        ("ci.sh", "#!/bin/sh\n. ./env.txt\n", "env.txt"),
        ("ci.sh", "#!/bin/sh\nsource tools/steps.inc\n", "tools/steps.inc"),
        ("Makefile", "include rules.inc\n", "rules.inc"),
        ("Makefile", "all:\n\t$(MAKE) -f build.rules\n", "build.rules"),
        (
            ".github/workflows/ci.yml",
            "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: sh ci/steps\n",
            "ci/steps",
        ),
    ],
    ids=["make-bash", "dot", "source", "include", "make-f", "ci-sh"],
)
def test_attack_file_run_by_a_host(
    tmp_path: Path, db: Path, host: str, text: str, rel: str
) -> None:
    body = f"pip install {PIN}\n"
    if rel.endswith((".inc", ".rules")) and host == "Makefile":
        body = f"x:\n\tpip install {PIN}\n"
    doc, controls = _gate(tmp_path, db, {host: text, rel: body})
    assert rel in _flagged(doc)
    assert controls[VULN] is ControlStatus.FAIL
    code = body.replace(f"pip install {PIN}", f"python3 -c '{PICKLE_CODE}'")
    _, controls = _gate(tmp_path / "code", db, {host: text, rel: code})
    assert controls[CODE] is ControlStatus.FAIL


def test_files_outside_the_project_a_host_sources_are_not_findings(
    tmp_path: Path, db: Path
) -> None:
    text = (
        "#!/bin/sh\n. .venv/bin/activate\nsource $HOME/.profile\n. ./missing.sh\n"
        "bash -c 'echo hi'\nbash tools/a.sh\n"
    )
    files = {"ci.sh": text, "tools/a.sh": "#!/bin/sh\n. ../ci.sh\n"}
    doc, controls = _gate(tmp_path, db, files)
    assert not _flagged(doc) and not doc["deps"]["problems"]
    assert controls[CODE] is ControlStatus.PASS
    assert controls["analysis-complete"] is ControlStatus.PASS


# -- 19. just: [script(...)] recipes run by their interpreter ---------------------------------
@pytest.mark.parametrize(
    "head",
    [
        '[script("python3")]\n',
        "[private, script('python3', '-u')]\n",
        "set script-interpreter := ['python3']\n\n[script]\n",
    ],
    ids=["script-attribute", "with-others", "script-interpreter"],
)
def test_attack_just_script_recipe_runs_python(tmp_path: Path, db: Path, head: str) -> None:
    text = head + "serve:\n  " + PICKLE_LINES.replace("\n", "\n  ").rstrip() + "\n"
    _, controls = _gate(tmp_path, db, {"justfile": text})
    assert controls[CODE] is ControlStatus.FAIL


def test_just_script_recipe_in_shell_is_read_as_shell(tmp_path: Path, db: Path) -> None:
    text = f"[script]\nsetup:\n  cd /tmp\n  pip install {PIN}\n\ntest:\n  pytest -q\n"
    doc, controls = _gate(tmp_path, db, {"justfile": text})
    assert "justfile" in _flagged(doc)
    assert controls[CODE] is ControlStatus.PASS


def test_script_run_by_a_host_and_by_its_shebang_is_read_once(tmp_path: Path, db: Path) -> None:
    files = {"Makefile": "all:\n\tsh ./configure\n", "configure": f"#!/bin/sh\npip install {PIN}\n"}
    doc, _ = _gate(tmp_path, db, files)
    rows = [(v["source"], v["line"]) for v in doc["deps"]["vulnerabilities"]]
    assert rows and len(rows) == len(set(rows)) and {s for s, _ in rows} == {"configure"}


# -- variants of the round-4 fixes (found attacking them) -------------------------------------
def test_attack_shell_reading_a_file_on_stdin(tmp_path: Path, db: Path) -> None:
    files = {"Makefile": "all:\n\tbash < scripts/setup\n", "scripts/setup": f"pip install {PIN}\n"}
    doc, controls = _gate(tmp_path, db, files)
    assert "scripts/setup" in _flagged(doc)
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "build", ["docker build -f docker/train.df .", "podman build --file=docker/train.df"]
)
def test_attack_dockerfile_named_by_a_build_command(tmp_path: Path, db: Path, build: str) -> None:
    ci = f"on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: {build}\n"
    dockerfile = f"FROM python:3.12\nRUN pip install {PIN}\n"
    doc, controls = _gate(
        tmp_path, db, {".github/workflows/ci.yml": ci, "docker/train.df": dockerfile}
    )
    assert "docker/train.df" in _flagged(doc)
    assert controls[VULN] is ControlStatus.FAIL
    dockerfile = f"FROM python:3.12\nRUN python3 -c '{PICKLE_CODE}'\n"
    _, controls = _gate(
        tmp_path / "code", db, {".github/workflows/ci.yml": ci, "docker/train.df": dockerfile}
    )
    assert controls[CODE] is ControlStatus.FAIL


def test_attack_circleci_executor_shell(tmp_path: Path, db: Path) -> None:
    text = (
        "version: 2.1\nexecutors:\n  py:\n    docker:\n      - image: python:3.12\n"
        "    shell: python3\njobs:\n  build:\n    executor: py\n    steps:\n      - run: |\n"
        "          " + PICKLE_LINES.replace("\n", "\n          ").rstrip() + "\n"
    )
    _, controls = _gate(tmp_path, db, {".circleci/config.yml": text})
    assert controls[CODE] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "rebind",
    [
        f'builtins.globals()["REQS"] = ["{PIN}"]',
        f'sys._getframe().f_globals["REQS"] = ["{PIN}"]',
        f'importlib.import_module(__name__).REQS = ["{PIN}"]',
    ],
    ids=["builtins-globals", "frame", "import-self"],
)
def test_attack_setup_py_binding_rebound_other_ways(tmp_path: Path, db: Path, rebind: str) -> None:
    text = (
        "import builtins, importlib, sys\nfrom setuptools import setup\n\n"
        f'REQS = ["requests==2.32.3"]\n{rebind}\nsetup(name="x", install_requires=REQS)\n'
    )
    doc, controls = _gate(tmp_path, db, {"setup.py": text})
    assert doc["deps"]["problems"] or doc["deps"]["unverifiable"]
    assert controls[VULN] is ControlStatus.FAIL


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd is not installed")
def test_attack_zstd_behind_a_skippable_frame(tmp_path: Path, db: Path) -> None:
    packed = subprocess.run(["zstd", "-q", "-c"], input=key() * 20, capture_output=True, check=True)
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"meta"
    _, controls = _gate(tmp_path, db, {"keys.part": skippable + packed.stdout})
    assert controls[SECRETS] is ControlStatus.FAIL


def test_attack_heredoc_to_a_computed_interpreter(tmp_path: Path, db: Path) -> None:
    text = "#!/bin/sh\nP=python3\n$P - <<'EOF'\n" + PICKLE_LINES + "EOF\n"
    _, controls = _gate(tmp_path, db, {"ci.sh": text})
    assert controls[CODE] is ControlStatus.FAIL


# -- code rules: skops loads with trusted types ----------------------------------------------
@pytest.mark.parametrize(
    ("call", "flagged"),
    [
        ("sio.load(request.files['f'], trusted=True)", True),
        ("sio.loads(request.data, trusted=['x.Y'])", True),
        ("sio.load(request.files['f'], names)", True),
        ("sio.load(request.files['f'])", False),
        ("sio.load(request.files['f'], trusted=None)", False),
    ],
)
def test_skops_load_with_trusted_types(tmp_path: Path, db: Path, call: str, flagged: bool) -> None:
    source = (
        "import skops.io as sio\nfrom flask import request\n\n\n"
        f"def f(names=None):\n    return {call}\n"
    )
    _, controls = _gate(tmp_path, db, {"app.py": source})
    assert controls[CODE] is (ControlStatus.FAIL if flagged else ControlStatus.PASS)


# -- bounded work in the new readers ----------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("shell", "$(" * 20_000),
        ("shell", "x $(a" * 5_000),
        ("shell", "a " * 200_000 + "{"),
        ("shell", "{a,b}" * 40),
        ("make", "all:\n\techo " + "$(" * 20_000 + "X" + ")" * 20_000 + "\n"),
        ("make", "A = $(A)$(A)\nB = " + "$(A)" * 5_000 + "\nall:\n\techo $(B)\n"),
        ("make", "inst = $(call inst,$(1))\nall:\n\t$(call inst,x)\n"),
    ],
    ids=["unclosed", "nested-unclosed", "blanks", "braces", "nested-refs", "self-ref", "self-call"],
)
def test_hostile_command_text_is_read_in_bounded_time(kind: str, text: str) -> None:
    import time

    from mltrust.evidence._commands import commands

    start = time.monotonic()
    commands(kind, text)  # type: ignore[arg-type]
    assert time.monotonic() - start < 10


def test_long_chain_of_sourced_files_fails_closed_without_crashing(
    tmp_path: Path, db: Path
) -> None:
    files: dict[str, str | bytes] = {"ci.sh": "#!/bin/sh\n. ./s0\n"}
    files.update({f"s{n}": f". ./s{n + 1}\n" for n in range(400)})
    files["s400"] = f"pip install {PIN}\n"
    doc, controls = _gate(tmp_path, db, files)
    assert doc["deps"]["problems"]
    assert controls[VULN] is ControlStatus.FAIL
