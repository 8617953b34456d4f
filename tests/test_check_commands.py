"""One reader of command hosts (``mltrust.evidence._commands``): the code analysis (Python
invocations) and the dependency check (install commands) read the same commands from
Makefiles, tox, nox, CI YAML, Jenkinsfiles, shell scripts, Dockerfiles, package.json and
Procfiles. The attacks are commands that one of the two former readers saw and the other did
not; the differential tests check that both readers see the same commands, and the stream is
compared with what bash and GNU make really run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mltrust.evidence._classify import command_host
from mltrust.evidence._commands import argv, commands
from mltrust.evidence._depsources import read_dependency_file, source_kind
from mltrust.evidence._launchers import launches


def _installs(tmp_path: Path, rel: str, text: str) -> set[tuple[str, int]]:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    kind = source_kind(rel, path)
    assert kind is not None, rel
    parsed = read_dependency_file(path, rel, root=tmp_path, kind=kind)
    return {(d.name, d.line) for d in parsed.deps}


def _python_files(rel: str, text: str) -> set[tuple[str, int]]:
    kind = command_host(rel, text[:512])
    assert kind is not None, rel
    return {(x.value, x.line) for x in launches(kind, text) if x.kind == "file"}


# Each host runs `pip install evilpkg==1.5` and `python tools/build` in a way that one of the
# two former readers did not see: both must now see both, on the same line.
DIVERGENT: dict[str, tuple[str, str, int | None]] = {
    # shlex read `#` inside a word as a comment: the rest of the line was lost to launchers
    "hash-inside-a-word": (
        "scripts/a.sh",
        "echo a#b; pip install evilpkg==1.5 ; python tools/build\n",
        1,
    ),
    # a comment ending in a backslash does not continue: launchers joined the next line to it
    "comment-backslash": (
        "scripts/a.sh",
        "# note \\\npip install evilpkg==1.5; python tools/build\n",
        2,
    ),
    # make runs $(shell ...) while reading the Makefile: the deps reader turned it into a variable
    "make-shell": (
        "Makefile",
        "X := $(shell pip install evilpkg==1.5; python tools/build)\nall:\n\techo $(X)\n",
        1,
    ),
    # Makefile variables: launchers did not expand them (`$(RUN)` is python)
    "make-variable": (
        "Makefile",
        "RUN = python\nPI = pip\nall:\n\t$(PI) install evilpkg==1.5 && $(RUN) tools/build\n",
        4,
    ),
    # sh -c: only the deps reader read the script inside
    "sh-c": ("scripts/a.sh", "bash -c 'pip install evilpkg==1.5 && python tools/build'\n", 1),
    # $(...) inside double quotes: neither reader read it
    "substitution-in-quotes": (
        "scripts/a.sh",
        'echo "$(pip install evilpkg==1.5)" "`python tools/build`"\n',
        1,
    ),
    # Dockerfile CMD/ENTRYPOINT: the deps reader read RUN only
    "dockerfile-cmd": (
        "Dockerfile",
        'FROM x\nCMD ["sh", "-c", "pip install evilpkg==1.5 && python tools/build"]\n',
        2,
    ),
    # an exec-form ENTRYPOINT runs with CMD's words after it
    "entrypoint-and-cmd": (
        "Dockerfile",
        'FROM x\nRUN pip install evilpkg==1.5\nENTRYPOINT ["python"]\nCMD ["tools/build"]\n',
        None,
    ),
    # package.json scripts, .travis.yml: not command hosts for the deps reader
    "package-json": (
        "package.json",
        '{"scripts": {"postinstall": "pip install evilpkg==1.5 && python tools/build"}}\n',
        1,
    ),
    "travis": (".travis.yml", "install:\n  - pip install evilpkg==1.5 && python tools/build\n", 2),
    # a CI key that is not a command key for the deps reader (`args`) and is run by an action
    "ci-other-key": (
        ".github/workflows/ci.yml",
        "jobs:\n  t:\n    steps:\n      - uses: some/action@v1\n        with:\n"
        "          args: pip install evilpkg==1.5 && python tools/build\n",
        6,
    ),
    # tox.toml and Jenkinsfiles: not command hosts for launchers
    "tox-toml": (
        "tox.toml",
        '[env.t]\ncommands = [["pip", "install", "evilpkg==1.5"], ["python", "tools/build"]]\n',
        2,
    ),
    "jenkinsfile": (
        "Jenkinsfile",
        "pipeline {\n  stages {\n    sh 'pip install evilpkg==1.5 && python tools/build'\n  }\n}\n",
        3,
    ),
    # a here-document a shell runs: only the deps reader read its lines (as lines of the file)
    "bash-heredoc": (
        "scripts/a.sh",
        "bash <<EOF\npip install evilpkg==1.5 && python tools/build\nEOF\n",
        2,
    ),
    # BuildKit's `RUN <<EOF`: the here-document is the script; neither reader read it
    "dockerfile-run-heredoc": (
        "Dockerfile",
        "FROM x\nRUN <<EOF\npip install evilpkg==1.5 && python tools/build\nEOF\n",
        3,
    ),
    # tox joins a command line ending in a backslash with the next: the deps reader did not
    "tox-continuation": (
        "tox.ini",
        "[testenv]\ncommands =\n    bash -c \\\n"
        "      'pip install evilpkg==1.5 && python tools/build'\n",
        3,
    ),
    # make reads a `define` body as a canned recipe: the launcher reader skipped it
    "make-define": (
        "Makefile",
        "define SETUP\npip install evilpkg==1.5 && python tools/build\nendef\nall:\n\t$(SETUP)\n",
        2,
    ),
}


@pytest.mark.parametrize("case", sorted(DIVERGENT))
def test_attack_command_seen_by_one_reader_is_seen_by_both(tmp_path: Path, case: str) -> None:
    rel, text, line = DIVERGENT[case]
    if line is None:  # on different lines
        assert "evilpkg" in {name for name, _ in _installs(tmp_path, rel, text)}
        assert "tools/build" in {path for path, _ in _python_files(rel, text)}
        return
    assert ("evilpkg", line) in _installs(tmp_path, rel, text)
    assert ("tools/build", line) in _python_files(rel, text)


# -- differential: both readers consume the same stream ---------------------------------------
HOSTS = {
    "Makefile": "P ?= python3\nall: ; pip install a==1\n\t$(P) tools/x\n",
    "tox.ini": "[testenv]\ncommands =\n    pip install b==1\n    {envpython} tools/x\n",
    "tox.toml": '[env.t]\ncommands = [["pip", "install", "c==1"]]\n',
    "pyproject.toml": '[tool.tox.env.t]\ncommands = [["python", "-m", "pip", "install", "d==1"]]\n',
    "noxfile.py": "def t(session):\n    session.install('e==1')\n    session.run('python', 'x')\n",
    ".github/workflows/ci.yml": "jobs:\n  t:\n    steps:\n      - run: pip install f==1\n",
    ".gitlab-ci.yml": "t:\n  script:\n    - pip install g==1\n    - python x\n",
    "azure-pipelines.yml": "steps:\n- script: uv pip install h==1\n",
    ".circleci/config.yml": "jobs:\n  t:\n    steps:\n      - run: pip install i==1\n",
    "Jenkinsfile": "node {\n  sh 'pip install j==1'\n}\n",
    "scripts/s.sh": "pip install k==1 && python x <<EOF\nprint(1)\nEOF\n",
    "Dockerfile": 'FROM x\nRUN pip install l==1 \\\n  m==1\nENTRYPOINT ["python", "x"]\n',
    ".pre-commit-config.yaml": "repos:\n- repo: local\n  hooks:\n  - id: x\n"
    "    entry: pip install n==1\n",
    "package.json": '{"scripts": {"a": "pip install o==1"}}\n',
    "Procfile": "web: pip install p==1 && python x\n",
}


def _installer(words: tuple[str, ...]) -> bool:
    from mltrust.evidence._depsources import _install_args

    return _install_args(list(words)) is not None


@pytest.mark.parametrize("rel", sorted(HOSTS))
def test_both_readers_see_the_same_commands_of_every_host_kind(tmp_path: Path, rel: str) -> None:
    text = HOSTS[rel]
    kind = command_host(rel, text[:512])
    assert kind is not None
    stream = commands(kind, text)
    install_lines = {c.line for c in stream if _installer(c.words)}
    assert install_lines, rel  # every host above installs something
    # the deps reader reads exactly the installs of the stream
    assert {line for _, line in _installs(tmp_path, rel, text)} == install_lines
    # the launcher reader's Python comes from the same stream
    assert {x.line for x in launches(kind, text)} <= {c.line for c in stream}


# -- the stream against real behaviour --------------------------------------------------------
# bash runs every command that is not found through command_not_found_handle: with an empty
# PATH each simple command of the generated text records its argv, as bash split it.
_PRELUDE = (
    "command_not_found_handle() { local IFS=$'\\x1f'; "
    'printf \'%s\\x1f\\x1e\' "$*" >> "$RECORD"; return 0; }\n'
)
_WORDS = ["tool", "pip", "install", "a==1", "x", "'b c'", '"d e"', "f\\ g", "h#i", "$$HOME"]
_SEPS = [" ", " ", " ; ", " && ", " | ", " \\\n  ", "\n", " # c\n", "\n# c \\\n"]


def _run_recorded(argv: list[str], cwd: Path, env_extra: dict[str, str]) -> list[tuple[str, ...]]:
    record = cwd / "record"
    record.write_text("")
    prelude = cwd / "prelude.sh"
    prelude.write_text(_PRELUDE)
    env = {"PATH": "/nonexistent", "RECORD": str(record), "BASH_ENV": str(prelude), "HOME": "hh"}
    subprocess.run(argv, cwd=cwd, env={**env, **env_extra}, capture_output=True, timeout=20)
    data = record.read_text()
    return [tuple(c.split("\x1f")[:-1]) for c in data.split("\x1e")[:-1]]


def _script(atoms: list[tuple[str, str]]) -> str:
    return "".join(w + s for w, s in atoms).strip()


_atoms = st.lists(
    st.tuples(st.sampled_from(_WORDS), st.sampled_from(_SEPS)), min_size=1, max_size=14
)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_atoms)
def test_shell_commands_are_those_bash_runs(tmp_path: Path, atoms: list[tuple[str, str]]) -> None:
    body = _script(atoms).replace("$$", "$")
    (tmp_path / "s.sh").write_text(body + "\n")
    syntax = subprocess.run(["/bin/bash", "-n", "s.sh"], cwd=tmp_path, capture_output=True)
    assume(syntax.returncode == 0)  # what bash rejects it runs none of: the stream may see more
    ran = _run_recorded(["/bin/bash", "s.sh"], tmp_path, {})
    ours = [tuple(argv(c.words)) for c in commands("shell", body + "\n")]
    ours = [tuple("hh" if w == "$HOME" else w for w in c) for c in ours if c]
    assert sorted(ran) == sorted(ours), body


@pytest.mark.skipif(
    shutil.which("make") is None or shutil.which("bash") is None, reason="no make or bash"
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    _atoms,
    st.sampled_from(["", "@", "-", "@-"]),
    st.sampled_from(["=", ":=", "?=", "+="]),
    st.sampled_from(["pip", "tool x", "'q r'"]),
)
def test_makefile_commands_are_those_make_runs(
    tmp_path: Path, atoms: list[tuple[str, str]], prefix: str, op: str, value: str
) -> None:
    recipe = []
    for word, sep in atoms:
        word = "$(V)" if word == "x" else word
        sep = sep.replace("\n# c \\\n", " ; ").replace("\n", "\n\t")
        recipe.append(word + sep)
    body = "".join(recipe).strip().rstrip("\\").strip()
    makefile = f"V {op} {value}\nall:\n\t{prefix}{body}\n"
    (tmp_path / "Makefile").write_text(makefile)
    syntax = subprocess.run(["/bin/bash", "-n"], input=body.replace("$(V)", "v"), text=True)
    assume(syntax.returncode == 0)
    ran = _run_recorded(
        ["/usr/bin/make", "-s", "-i", "SHELL=/bin/bash", "all"], tmp_path, {"MAKEFLAGS": ""}
    )
    ours = [tuple(argv(c.words)) for c in commands("make", makefile)]
    ours = [tuple("hh" if w == "$HOME" else w for w in c) for c in ours if c]
    assert sorted(ran) == sorted(ours), makefile


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_shell_runs_commands_inside_quotes_and_substitutions(tmp_path: Path) -> None:
    body = "tool \"$(pip install a==1)\" `x y` && /bin/bash -c 'p q' ; eval 'r s'\n"
    (tmp_path / "s.sh").write_text(body)
    ran = set(_run_recorded(["/bin/bash", "s.sh"], tmp_path, {}))
    inner = {("pip", "install", "a==1"), ("x", "y"), ("p", "q"), ("r", "s")}
    assert inner <= ran  # bash runs them all
    assert inner <= {c.words for c in commands("shell", body)}


# -- wrappers, here-documents, make's SHELL and !=, just's shells (red team check3) ----------
_PAYLOAD = "import pickle; pickle.loads(bytes())"

WRAPPED = {
    "nice-n": f'nice -n 5 python3 -c "{_PAYLOAD}"',
    "nice-number": f'nice -10 python3 -c "{_PAYLOAD}"',
    "env-split-string": f"env -S 'python3 -c \"{_PAYLOAD}\"'",
    "env-options": f'env -i -u X -C /tmp A=1 python3 -c "{_PAYLOAD}"',
    "exec-a": f'exec -a worker python3 -c "{_PAYLOAD}"',
    "exec-cl": f'exec -cl python3 -c "{_PAYLOAD}"',
    "time-p": f'time -p python3 -c "{_PAYLOAD}"',
    "timeout-kill-after": f'timeout -k 1 5 python3 -c "{_PAYLOAD}"',
    "ionice": f'ionice -c 2 -n 7 python3 -c "{_PAYLOAD}"',
    "stdbuf": f'stdbuf -o L python3 -c "{_PAYLOAD}"',
    "chrt": f'chrt -f 10 python3 -c "{_PAYLOAD}"',
    "taskset": f'taskset 0x3 python3 -c "{_PAYLOAD}"',
    "sudo-options": f'sudo -E -u bob -g grp python3 -c "{_PAYLOAD}"',
    "doas": f'doas -u bob python3 -c "{_PAYLOAD}"',
    "xvfb-run": f'xvfb-run -a -s "-screen 0 1x1x8" python3 -c "{_PAYLOAD}"',
    "strace": f'strace -f -o log python3 -c "{_PAYLOAD}"',
    "micromamba-run": f'micromamba run -n base python3 -c "{_PAYLOAD}"',
    "conda-run": f'conda run --no-capture-output -p /opt/env python3 -c "{_PAYLOAD}"',
    "docker-run": f'docker run --rm -v "$PWD:/app" -w /app python:3.12 python3 -c "{_PAYLOAD}"',
    "podman-run": f'podman run -it --entrypoint "" img python3 -c "{_PAYLOAD}"',
    "docker-exec": f'docker exec -u 0 box python3 -c "{_PAYLOAD}"',
    "kubectl-exec": f'kubectl exec -n ns pod -c main -- python3 -c "{_PAYLOAD}"',
    "ssh": f'ssh host python3 -c "{_PAYLOAD}"',
    "nested": f'sudo nice -n 1 env X=1 timeout 5 python3 -c "{_PAYLOAD}"',
}


@pytest.mark.parametrize("case", sorted(WRAPPED))
def test_attack_python_behind_a_wrapper_is_read(case: str) -> None:
    found = launches("shell", WRAPPED[case] + "\n")
    assert ("code", _PAYLOAD) in {(x.kind, x.value) for x in found}, found


def test_a_command_that_prints_python_starts_nothing() -> None:
    assert launches("shell", f'echo python3 -c "{_PAYLOAD}"\n') == []
    assert launches("shell", "apt-get install -y python3 python3-pip\n") == []


HEREDOCS = {
    # a line with a trailing space is not the delimiter line
    "trailing-space": ("python3 - <<'pass'\nimport os\npass \nos.system('x')\npass\n", "x"),
    # any word is a delimiter (after quote removal)
    "bang": ("python3 - <<'END!'\nimport os\nos.system('y')\nEND!\n", "y"),
    "quoted-parts": ("python3 - <<\"E\"'F'\\G\nimport os\nos.system('z')\nEFG\n", "z"),
    # <<- strips leading tabs only: a space-indented delimiter does not end the body
    "dash-spaces": ("python3 - <<-EOF\n\timport os\n  EOF\n\tos.system('w')\n\tEOF\n", "w"),
    # a here-string before the here-document is not a here-document
    "here-string": ("cat <<<x; python3 - <<EOF\nimport os\nos.system('v')\nEOF\n", "v"),
}


@pytest.mark.parametrize("case", sorted(HEREDOCS))
def test_attack_heredoc_body_ends_only_at_its_exact_delimiter(case: str) -> None:
    text, mark = HEREDOCS[case]
    codes = [x.value for x in launches("shell", text) if x.kind == "code"]
    assert any(f"os.system('{mark}')" in c for c in codes), codes


_DELIMS = ["EOF", "pass", "END!", "'a b'", "\"E\"'F'", "E\\F", "'X'"]
_BODY = ["tool a", "pass ", " pass", "\tpass", "pass", "END!", "a b", "EF", "\tEOF", "EOF", "X"]


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="bash is not installed")
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(_DELIMS),
    st.sampled_from(["<<", "<<-", "<< ", "<<- "]),
    st.lists(st.sampled_from(_BODY), max_size=6),
)
def test_heredoc_bodies_are_those_bash_reads(
    tmp_path: Path, delim: str, op: str, body: list[str]
) -> None:
    bare = delim.replace("'", "").replace('"', "").replace("\\", "")
    text = f"/bin/bash {op}{delim}\n" + "".join(f"{b} n{k}\n" for k, b in enumerate(body))
    text += f"{bare}\ntool after\n"
    (tmp_path / "s.sh").write_text(text)
    ran = _run_recorded(["/bin/bash", "s.sh"], tmp_path, {})
    ours = [tuple(argv(c.words)) for c in commands("shell", text)]
    ours = [c for c in ours if c and c[0] != "/bin/bash"]
    assert sorted(ran) == sorted(ours), text


@pytest.mark.skipif(
    shutil.which("make") is None or shutil.which("bash") is None, reason="no make or bash"
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.sampled_from(_WORDS), st.sampled_from([" ", " ; ", " && "]))))
def test_makefile_shell_assignments_run_what_make_runs(
    tmp_path: Path, atoms: list[tuple[str, str]]
) -> None:
    script = _script(atoms)
    assume(script and subprocess.run(["/bin/bash", "-n"], input=script, text=True).returncode == 0)
    makefile = f"X != {script}\nall:\n\t@:\n"
    (tmp_path / "Makefile").write_text(makefile)
    ran = _run_recorded(
        ["/usr/bin/make", "-s", "-i", "SHELL=/bin/bash", "all"], tmp_path, {"MAKEFLAGS": ""}
    )
    ours = [tuple(argv(c.words)) for c in commands("make", makefile)]
    ours = [tuple("hh" if w == "$HOME" else w for w in c) for c in ours if c and c != (":",)]
    assert sorted(ran) == sorted(ours), makefile


def test_attack_makefile_shell_assignment_runs_python() -> None:
    text = f'X != python3 -c "{_PAYLOAD}"\nall:\n\techo $(X)\n'
    assert ("code", _PAYLOAD) in {(x.kind, x.value) for x in launches("make", text)}


HOST_SHELLS = {
    "make-SHELL-python": ("make", f"SHELL := python3\n.SHELLFLAGS := -c\nall:\n\t@{_PAYLOAD}\n"),
    "make-SHELL-env-python": ("make", f"SHELL = /usr/bin/env python3\nall:\n\t{_PAYLOAD}\n"),
    "make-target-SHELL": ("make", f"all: SHELL := python3\nall:\n\t{_PAYLOAD}\n"),
    "make-conditional-SHELL": (
        "make",
        f"ifdef CI\nSHELL := python3\nendif\nall:\n\t{_PAYLOAD}\n",
    ),
    "just-shebang": ("lines", f"build:\n    #!/usr/bin/env python3\n    {_PAYLOAD}\n"),
    "just-set-shell": ("lines", f'set shell := ["python3", "-c"]\n\nbuild:\n    {_PAYLOAD}\n'),
}


@pytest.mark.parametrize("case", sorted(HOST_SHELLS))
def test_attack_host_whose_shell_is_python_runs_its_lines_as_python(case: str) -> None:
    kind, text = HOST_SHELLS[case]
    codes = [x.value for x in launches(kind, text) if x.kind == "code"]  # type: ignore[arg-type]
    assert any(_PAYLOAD in c for c in codes), codes


def test_a_host_shell_that_is_another_program_fails_closed() -> None:
    found = launches("make", "SHELL := ./myshell\nall:\n\tpython3 tools/x\n")
    assert [x.kind for x in found] == ["unknown"]
    found = launches("lines", "build:\n    #!/usr/bin/env node\n    python3 tools/x\n")
    assert [x.kind for x in found] == ["unknown"]
    # a POSIX shell, also through env, reads the recipe as shell
    found = launches("make", "SHELL := /usr/bin/env bash\nall:\n\tpython3 tools/x\n")
    assert [(x.kind, x.value) for x in found] == [("file", "tools/x")]


MAKE_VARIABLES = {
    "target-specific": "PKG = evilpkg==2.0\ninstall: PKG = evilpkg==1.5\ninstall:\n"
    "\tpip install $(PKG)\n",
    "conditional": "PKG = evilpkg==1.5\nifeq ($(CI_NEVER_SET),yes)\nPKG = evilpkg==2.0\nendif\n"
    "install:\n\tpip install $(PKG)\n",
    "ifdef-else": "ifdef X\nPKG = evilpkg==2.0\nelse\nPKG = evilpkg==1.5\nendif\n"
    "install:\n\tpip install $(PKG)\n",
}


@pytest.mark.parametrize("case", sorted(MAKE_VARIABLES))
def test_attack_makefile_variable_with_several_values_checks_each(
    tmp_path: Path, case: str
) -> None:
    text = MAKE_VARIABLES[case]
    pins = {c.words for c in commands("make", text)}
    assert ("pip", "install", "evilpkg==1.5") in pins, pins
    assert ("pip", "install", "evilpkg==2.0") in pins, pins
    # the dependency check reads the same stream: both pins reach it
    assert "evilpkg" in {name for name, _ in _installs(tmp_path, "Makefile", text)}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("case", sorted(MAKE_VARIABLES))
@pytest.mark.parametrize("env", [{}, {"CI_NEVER_SET": "yes", "X": "1"}])
def test_makefile_variable_values_include_what_make_runs(
    tmp_path: Path, case: str, env: dict[str, str]
) -> None:
    text = MAKE_VARIABLES[case].replace("pip install", "tool")
    (tmp_path / "Makefile").write_text(text)
    ran = _run_recorded(
        ["/usr/bin/make", "-s", "-i", "SHELL=/bin/bash", "install"],
        tmp_path,
        {"MAKEFLAGS": "", **env},
    )
    assert ran
    assert set(ran) <= {tuple(argv(c.words)) for c in commands("make", text)}
