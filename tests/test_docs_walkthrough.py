"""Every shell command shown in README.md and docs/**/*.md runs as written (issue 14).

Each page with commands is one test: its fenced ``console``, ``sh``, ``bash`` and ``shell``
blocks run in order, in ONE bash process (so ``cd``, ``export`` and ``VAR=$(...)`` carry from
one command to the next), in a fresh, empty folder, with ``HOME`` a fresh folder beside it,
the ``mltrust`` of the Python running the tests first on ``PATH`` and ``PYTHONPATH`` set to
this checkout's ``src``. Every command must exit with the code the page states.

How a page states what runs and what it returns:

* ``sh``/``bash``/``shell`` blocks: every line that is not blank or a ``#`` comment is a
  command (a line ending in ``\\`` continues on the next); each must exit 0.
* ``console`` blocks: a command is a ``$ `` line that opens the block, follows another
  command, or follows a ``# exit code N`` line; what comes after it, up to the next
  ``# exit code N`` line, is its output and is not run (so a transcript that itself prints
  ``$ ...`` lines, like ``mltrust demo``, stays output). ``# exit code N`` after a command's
  output is the code it must exit with; without one it must exit 0.
* A command ending in ``&`` runs in the background; when it names ``--port N`` the next
  command starts once 127.0.0.1:N accepts connections. Background processes are stopped when
  the page ends.
* A fence without a language must not hold commands (label it ``sh`` or ``console``): a
  command cannot escape this test by losing its label.

Markers: HTML comments (invisible on the site) on the lines just above a fence:

* ``<!-- docs-test: skip REASON -->``: the block is not run. Only for what cannot run in an
  empty folder without the network: remote endpoints, a server in the foreground or one of
  yours (Redis, PostgreSQL, MLflow, a Ray cluster), installing packages, ``make`` targets of
  the repository checkout, another shell, a transcript of a purpose-built test server. Every
  skip is listed in ``EXPECTED_SKIPS`` below, so adding one is a visible change to this file,
  and ``test_skips_are_declared_and_counted`` prints them all.
* ``<!-- docs-test: fixture NAME ... -->``: before the block runs, the test creates each named
  fixture (``FIXTURES`` below) in the current folder; a fixture that fails fails the page.
  Only for inputs that no documented command makes: a poisoned model, the advisory database
  snapshot, an Optuna study, what someone with write access to a bucket puts in it, and
  "your MinIO server" (moto's S3 server on 127.0.0.1:9000, stopped with the page).

Servers the pages start listen on fixed loopback ports (vault 8200, S3 9000, probes 18443),
as the pages show them; another process on one of those ports makes that page fail.

``mltrust demo --keep --workdir ws`` (the workspace the command pages run in) is run once per
session and restored for each later page from a copy taken right after it ran, at the same
absolute path (the audit log's anchors are named after it): the command is deterministic, and
running it nine times would cost a minute.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "docs").glob("*/*.md")])
SHELL_LANGS = {"console", "sh", "bash", "shell"}
FENCE = re.compile(r"^```([\w+-]*)\s*$")
MARKER = re.compile(r"^<!--\s*docs-test:\s*([\w-]+)\s*(.*?)\s*-->\s*$")
EXIT = re.compile(r"^# exit code (\d+)\s*$")
PORT = re.compile(r"--port[ =](\d+)")
MEMOIZED = {"mltrust demo --keep --workdir ws": "ws"}
PAGE_TIMEOUT = 240

# (page, start of the reason): every block the walkthrough does not run.
EXPECTED_SKIPS: list[tuple[str, str]] = [
    ("README.md", "run in the repository checkout"),
    ("README.md", "servers in the foreground"),
    ("docs/getting-started.md", "run in the repository checkout"),
    ("docs/getting-started.md", "installs packages from PyPI"),
    ("docs/getting-started.md", "zsh and fish lines"),
    ("docs/probes.md", "network: remote endpoints"),
    ("docs/probes.md", "transcript: a deliberately open test server"),
    *[("docs/shared-state.md", "a server in the foreground")] * 2,
    *[("docs/supply-chain.md", "runs in the repository checkout")] * 2,
]


@dataclass
class Command:
    text: str
    line: int
    expected: int = 0


@dataclass
class Block:
    page: str
    line: int
    lang: str
    commands: list[Command]
    skip: str | None = None
    fixtures: list[str] = field(default_factory=list)


def _rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else page.name


def _logical_lines(body: list[tuple[int, str]]) -> list[Command]:
    commands: list[Command] = []
    pending: list[str] = []
    start = 0
    for lineno, line in body:
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            start = lineno
        pending.append(line)
        if not line.rstrip().endswith("\\"):
            commands.append(Command("\n".join(pending), start))
            pending = []
    if pending:
        commands.append(Command("\n".join(pending), start))
    return commands


def _console_commands(body: list[tuple[int, str]]) -> list[Command]:
    commands: list[Command] = []
    state = "start"  # start | command | output | exit
    it = iter(body)
    for lineno, line in it:
        exit_code = EXIT.match(line)
        if line.startswith("$ ") and state in ("start", "command", "exit"):
            parts = [line[2:]]
            while parts[-1].rstrip().endswith("\\"):
                try:
                    parts.append(next(it)[1])
                except StopIteration:
                    break
            commands.append(Command("\n".join(parts), lineno))
            state = "command"
        elif exit_code and commands:
            commands[-1].expected = int(exit_code.group(1))
            state = "exit"
        else:
            state = "output"
    return commands


def parse(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        lang, start = fence.group(1), i
        body: list[tuple[int, str]] = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append((i + 1, lines[i]))
            i += 1
        i += 1
        markers: list[tuple[str, str]] = []
        j = start - 1
        while j >= 0 and (lines[j].strip() == "" or MARKER.match(lines[j])):
            marker = MARKER.match(lines[j])
            if marker:
                markers.append((marker.group(1), marker.group(2)))
            j -= 1
        if lang == "console":
            commands = _console_commands(body)
        elif lang in SHELL_LANGS:
            commands = _logical_lines(body)
        else:
            commands = []
        block = Block(_rel(page), start + 1, lang, commands)
        for kind, arg in markers:
            if kind == "skip":
                block.skip = arg
            elif kind == "fixture":
                block.fixtures += arg.split()
            else:
                raise AssertionError(f"{block.page}:{block.line}: unknown docs-test marker {kind}")
        blocks.append(block)
    return blocks


def _all_blocks() -> list[Block]:
    return [b for page in PAGES for b in parse(page)]


def _runnable_pages() -> list[str]:
    return [
        _rel(p)
        for p in PAGES
        if any(b.lang in SHELL_LANGS and b.commands and not b.skip for b in parse(p))
    ]


# ---------------------------------------------------------------------------------- fixtures


def _advisory_snapshot() -> Path | None:
    env = os.environ.get("MLTRUST_TEST_ADVISORY_DB")
    for candidate in [Path(env)] if env else [ROOT.parent / "shared" / "data" / "pypa-advisory-db"]:
        if (candidate / "vulns").is_dir():
            return candidate
    return None


def _fixture_advisory_db(where: Path) -> None:
    """``advisory-db/``: a checkout of github.com/pypa/advisory-database (offline snapshot)."""
    snap = _advisory_snapshot()
    if snap is None:
        raise SystemExit("advisory snapshot missing: set MLTRUST_TEST_ADVISORY_DB")
    (where / "advisory-db").symlink_to(snap)


def _fixture_evil_joblib(where: Path) -> None:
    """``evil.joblib``: a joblib file whose pickle runs ``touch /tmp/pwned`` when loaded."""
    sys.path.insert(0, str(ROOT / "src"))
    from mltrust.cli._demo import _malicious_joblib

    (where / "evil.joblib").write_bytes(_malicious_joblib(["touch", "/tmp/pwned"]))


def _fixture_vulnerable_project(where: Path) -> None:
    """``project/``: a pinned vulnerable dependency and code that unpickles a file."""
    project = where / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("jinja2==2.10\nrequests\n")
    (project / "train.py").write_text(
        "import pickle\n\nwith open('model.pkl', 'rb') as fh:\n    model = pickle.load(fh)\n"
    )


#: What docs/commands/s3.md calls "your MinIO server": moto's S3 server on loopback.
S3_PORT = 9000
S3_CREDENTIALS = {"aws_access_key_id": "minioadmin", "aws_secret_access_key": "minioadmin"}


def _s3() -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{S3_PORT}",
        region_name="us-east-1",
        **S3_CREDENTIALS,
    )


def _fixture_s3_server(where: Path) -> None:
    """An S3 server on 127.0.0.1:9000 (moto) with a bucket ``models``; it runs in the page's
    process group and is stopped with the page."""
    try:
        socket.create_connection(("127.0.0.1", S3_PORT), timeout=1).close()
    except OSError:
        pass
    else:
        raise SystemExit(f"127.0.0.1:{S3_PORT} is taken: another S3 server is running")
    server = (
        "import time; from moto.server import ThreadedMotoServer; "
        f"ThreadedMotoServer(ip_address='127.0.0.1', port={S3_PORT}, verbose=False).start(); "
        "time.sleep(600)"
    )
    subprocess.Popen(
        [sys.executable, "-c", server],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", S3_PORT), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    _s3().create_bucket(Bucket="models")


def _fixture_model_folder(where: Path) -> None:
    """``models/iris``: a small model folder (NumPy weights, a config, a tokenizer file)."""
    import numpy as np

    model = where / "models" / "iris"
    (model / "tokenizer").mkdir(parents=True)
    np.save(model / "weights.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    (model / "config.json").write_text('{"hidden": 4}\n')
    (model / "tokenizer" / "vocab.txt").write_text("setosa\nversicolor\nvirginica\n")


def _fixture_s3_git_hook(where: Path) -> None:
    """Someone with write access to the bucket adds a git hook beside the pushed model."""
    _s3().put_object(Bucket="models", Key="iris/3/.git/hooks/post-checkout", Body=b"#!/bin/sh")


def _fixture_s3_unsafe_names(where: Path) -> None:
    """The hook goes; objects named to leave the destination, or to collide by case, come."""
    s3 = _s3()
    s3.delete_object(Bucket="models", Key="iris/3/.git/hooks/post-checkout")
    s3.put_object(Bucket="models", Key="iris/3/../../etc/cron.d/job", Body=b"* * * * *")
    s3.put_object(Bucket="models", Key="iris/3/Config.json", Body=b"{}")


def _fixture_study_db(where: Path) -> None:
    """``study.db``: an Optuna study ``rf-search`` (SQLite) of a random-forest search."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="rf-search",
        storage=f"sqlite:///{where / 'study.db'}",
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )

    def objective(trial: Any) -> float:
        depth = trial.suggest_int("max_depth", 2, 8)
        trees = trial.suggest_int("n_estimators", 10, 200, log=True)
        return 0.9 + depth * 0.005 - abs(trees - 100) * 0.0001

    study.optimize(objective, n_trials=8)


def _fixture_team_yaml(where: Path) -> None:
    """``team.yaml``: the profile shown in docs/tuning.md, copied out of the page."""
    text = (ROOT / "docs" / "tuning.md").read_text(encoding="utf-8")
    (profile,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "name: team" in b]
    (where / "team.yaml").write_text(profile, encoding="utf-8")


FIXTURES = {
    "study.db": _fixture_study_db,
    "team.yaml": _fixture_team_yaml,
    "advisory-db": _fixture_advisory_db,
    "evil.joblib": _fixture_evil_joblib,
    "project": _fixture_vulnerable_project,
    "s3-server": _fixture_s3_server,
    "models/iris": _fixture_model_folder,
    "s3-git-hook": _fixture_s3_git_hook,
    "s3-unsafe-names": _fixture_s3_unsafe_names,
}


# ---------------------------------------------------------------------------------- runner


def _script(blocks: list[Block], logs: Path, cache: Path) -> tuple[str, list[Command]]:
    """One bash script for a page; command N writes its output to logs/N.log, its code to N.rc."""
    out = [
        "exec </dev/null",
        "trap 'kill $(jobs -p) 2>/dev/null' EXIT",
        # up to 120 s: a server's start-up (imports, a key derivation) on a loaded CI host
        # took more than 30 s once; a server that never listens fails the next command
        "__docs_wait_port() { for _ in $(seq 1200); do "
        '(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; '
        'echo "docs-test: port $1 never accepted connections" >&2; }',
    ]
    run: list[Command] = []
    for block in blocks:
        if block.skip or block.lang not in SHELL_LANGS:
            continue
        for name in block.fixtures:
            assert name in FIXTURES, f"{block.page}:{block.line}: unknown fixture {name}"
            n = len(run)
            run.append(Command(f"(fixture {name})", block.line))
            out.append(
                f'{sys.executable} {__file__} --fixture {name} > "{logs}/{n}.log" 2>&1; '
                f'echo $? > "{logs}/{n}.rc"'
            )
        for cmd in block.commands:
            n = len(run)
            run.append(cmd)
            log, rc = logs / f"{n}.log", logs / f"{n}.rc"
            memo = MEMOIZED.get(cmd.text.split("#")[0].strip())
            if memo:
                saved = cache / memo
                out.append(
                    f'if [ -d "{saved}" ] && [ "$PWD" = "$(cat "{cache}/cwd")" ]; then '
                    f'cp -a "{saved}" {memo}; cp "{cache}/rc" "{rc}"; echo memoized > "{log}"; '
                    f'else {{ {cmd.text}\n}} > "{log}" 2>&1; echo $? > "{rc}"; '
                    f'cp -a {memo} "{saved}"; cp "{rc}" "{cache}/rc"; pwd > "{cache}/cwd"; fi'
                )
                continue
            out.append(f'{{ {cmd.text}\n}} > "{log}" 2>&1; echo $? > "{rc}"')
            if cmd.text.rstrip().endswith("&"):
                port = PORT.search(cmd.text)
                if port:
                    out.append(f"__docs_wait_port {port.group(1)}")
    return "\n".join(out) + "\n", run


@pytest.fixture(scope="module")
def docs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("docs-walk")
    (root / "cache").mkdir()
    return root


def _run_page(page: str, blocks: list[Block], docs_root: Path) -> list[str]:
    """Run a page's blocks as the module docstring says; one message per command that did not
    exit as the page states."""
    work, home, logs = docs_root / "work", docs_root / "home", docs_root / "logs"
    for folder in (work, home, logs):  # the same absolute paths for every page, emptied
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    script, commands = _script(blocks, logs, docs_root / "cache")
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT / "src"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "COLUMNS": "100",
        "TMPDIR": str(docs_root),
    }
    if "MLTRUST_TEST_ADVISORY_DB" in os.environ:
        env["MLTRUST_TEST_ADVISORY_DB"] = os.environ["MLTRUST_TEST_ADVISORY_DB"]
    proc = subprocess.Popen(
        ["bash", "-c", script], cwd=work, env=env, start_new_session=True, text=True
    )
    try:
        proc.wait(timeout=PAGE_TIMEOUT)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # background servers the page started
        except ProcessLookupError:
            pass
        proc.wait()
    failures = []
    for n, cmd in enumerate(commands):
        rc_file = logs / f"{n}.rc"
        got = int(rc_file.read_text()) if rc_file.is_file() else None
        if got != cmd.expected:
            log = logs / f"{n}.log"
            output = log.read_text(errors="replace")[-1500:] if log.is_file() else ""
            failures.append(
                f"{page}:{cmd.line}: `{cmd.text}` exited {got}, the page says {cmd.expected}\n"
                f"{output}"
            )
    return failures


@pytest.mark.parametrize("page", _runnable_pages())
def test_page_runs_as_written(page: str, docs_root: Path) -> None:
    blocks = parse(ROOT / page)
    if _advisory_snapshot() is None and any("advisory-db" in b.fixtures for b in blocks):
        pytest.skip(
            "PyPA advisory snapshot not found (set MLTRUST_TEST_ADVISORY_DB or provide "
            "../shared/data/pypa-advisory-db)"
        )
    failures = _run_page(page, blocks, docs_root)
    assert not failures, "\n\n".join(failures)


def test_the_runner_reports_every_wrong_exit_code(tmp_path: Path) -> None:
    """A page whose commands disagree with it fails, command by command; state carries over."""
    page = tmp_path / "page.md"
    page.write_text(
        "```sh\n"
        "export GREETING=hello && mkdir sub && cd sub\n"
        'test "$GREETING" = hello && test "$(basename "$PWD")" = sub\n'
        "false  # a documented command that fails\n"
        "```\n\n"
        "<!-- docs-test: skip not run -->\n```sh\nfalse\n```\n\n"
        "```console\n$ sh -c 'exit 3'\n# exit code 3\n$ true\n# exit code 1\n```\n",
        encoding="utf-8",
    )
    (tmp_path / "cache").mkdir()
    failures = _run_page("page.md", parse(page), tmp_path)
    assert [f.split("`")[1] for f in failures] == [
        "false  # a documented command that fails",
        "true",
    ], failures


def test_skips_are_declared_and_counted() -> None:
    skipped = [(b.page, b.line, b.skip or "") for b in _all_blocks() if b.skip is not None]
    for page, line, reason in skipped:
        print(f"docs-test skip: {page}:{line}: {reason}")
    print(f"docs-test: {len(skipped)} block(s) skipped")
    assert all(reason for _, _, reason in skipped), "a skip marker must give its reason"
    found = Counter(
        next(
            ((p, start) for p, start in EXPECTED_SKIPS if p == page and reason.startswith(start)),
            (page, reason),
        )
        for page, _, reason in skipped
    )
    assert found == Counter(EXPECTED_SKIPS), f"skips changed: {sorted(found.items())}"


def test_unlabelled_blocks_hold_no_commands() -> None:
    """A fence without a language is not run, so it must not show a command."""
    bad = [
        f"{b.page}:{b.line}"
        for page in PAGES
        for b in parse(page)
        if b.lang == ""
        and any(
            ln.startswith(("$ ", "mltrust ", "python ", "make ", "pip "))
            for ln in _block_text(page, b.line)
        )
    ]
    assert not bad, f"label these blocks sh or console: {bad}"


def _block_text(page: Path, line: int) -> list[str]:
    lines = page.read_text(encoding="utf-8").splitlines()
    body = []
    for text in lines[line:]:
        if text.startswith("```"):
            break
        body.append(text.strip())
    return body


def test_the_parser_reads_the_conventions() -> None:
    """Commands, output and exit codes are told apart as the docstring says."""
    body = [
        "$ mltrust demo",
        "$ mltrust scan x   (printed by the demo, not run)",
        "# exit code 0",
        "$ a \\",
        "    --b",
        "$ c &",
        "out",
        "# exit code 1",
    ]
    got = _console_commands(list(enumerate(body, 1)))
    # "$ mltrust demo" opens the block and "$ mltrust scan" follows a command: both commands;
    # the demo's own "$ ..." lines only stay output when they follow output, as on demo.md.
    assert [(c.text, c.expected) for c in got] == [
        ("mltrust demo", 0),
        ("mltrust scan x   (printed by the demo, not run)", 0),
        ("a \\\n    --b", 0),
        ("c &", 1),
    ]
    transcript = ["$ mltrust demo", "banner", "$ mltrust scan x", "# exit code 0"]
    assert [c.text for c in _console_commands(list(enumerate(transcript, 1)))] == ["mltrust demo"]
    sh = ["# comment", "", "a b  # trailing", "c \\", "  d"]
    assert [c.text for c in _logical_lines(list(enumerate(sh, 1)))] == [
        "a b  # trailing",
        "c \\\n  d",
    ]


if __name__ == "__main__" and sys.argv[1:2] == ["--fixture"]:
    FIXTURES[sys.argv[2]](Path.cwd())
