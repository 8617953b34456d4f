"""Every command given bad input: missing paths, paths over the OS limits, file names that are not
UTF-8, unreadable files, output targets that cannot be written, garbage key/TLS/config files,
invalid numbers and conflicting options.

Each case must end in one line of error and exit 2 (never a traceback, an "internal error" or
another exit code), and must leave no output file behind. Commands run in-process through
:func:`mltrust.cli._main.main`, the same path the console script takes.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mltrust.cli._main import EXIT_CLEAN, EXIT_ERROR, main

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False

#: name -> argv; placeholders: {ws} the workspace, {long} a 5000-character path, {comp} a path
#: with a 300-character component, {nonutf8} a file whose name is not UTF-8, {bad} a file of
#: garbage, {dir} an existing folder, {under} a path below a regular file (ENOTDIR).
CASES: dict[str, list[str]] = {
    # scan
    "scan-missing": ["scan", "{ws}/missing.pkl"],
    "scan-long-path": ["scan", "{long}"],
    "scan-long-component": ["scan", "{comp}"],
    "scan-output-is-a-folder": ["scan", "{ws}/model", "-o", "{dir}"],
    "scan-output-below-a-file": ["scan", "{ws}/model", "-o", "{under}"],
    "scan-output-long": ["scan", "{ws}/model", "-o", "{comp}"],
    "scan-garbage-config": ["scan", "{ws}/model", "--config", "{bad}"],
    "scan-negative-jobs": ["scan", "{ws}/model", "--jobs", "-3"],
    # keys, sign, verify
    "keys-out-long": ["keys", "generate", "--out", "{long}"],
    "keys-out-long-component": ["keys", "generate", "--out", "{comp}"],
    "keys-out-below-a-file": ["keys", "generate", "--out", "{under}"],
    "sign-missing": ["sign", "{ws}/missing", "--key", "{ws}/k.key"],
    "sign-long-path": ["sign", "{long}", "--key", "{ws}/k.key"],
    "sign-non-utf8-name": ["sign", "{nonutf8}", "--key", "{ws}/k.key"],
    "sign-garbage-key": ["sign", "{ws}/model", "--key", "{bad}"],
    "sign-key-long-component": ["sign", "{ws}/model", "--key", "{comp}"],
    "sign-output-below-a-file": ["sign", "{ws}/model", "--key", "{ws}/k.key", "-o", "{under}"],
    "sign-negative-version": ["sign", "{ws}/model", "--key", "{ws}/k.key", "--version", "-1"],
    "sign-negative-shard": ["sign", "{ws}/model", "--key", "{ws}/k.key", "--shard-size", "-5"],
    "sign-zero-shard": ["sign", "{ws}/model", "--key", "{ws}/k.key", "--shard-size", "0"],
    "sign-garbage-reuse": ["sign", "{ws}/model", "--key", "{ws}/k.key", "--reuse", "{bad}"],
    "verify-missing": ["verify", "{ws}/missing", "--key", "{ws}/k.pub"],
    "verify-long-path": ["verify", "{long}", "--key", "{ws}/k.pub"],
    "verify-non-utf8-name": ["verify", "{nonutf8}", "--key", "{ws}/k.pub"],
    "verify-garbage-key": ["verify", "{ws}/model", "--key", "{bad}"],
    "verify-garbage-signature": [
        "verify", "{ws}/model", "--key", "{ws}/k.pub", "--signature", "{bad}",
    ],
    "verify-garbage-trusted-root": [
        "verify", "{ws}/model", "--key", "{ws}/k.pub", "--trusted-root", "{bad}",
    ],
    "verify-negative-max-age": ["verify", "{ws}/model", "--key", "{ws}/k.pub", "--max-age", "-5d"],
    "verify-no-trust": ["verify", "{ws}/model"],
    # check, attest, evidence
    "check-long-path": ["check", "{long}"],
    "check-garbage-key": ["check", "{ws}/model", "--key", "{bad}", "--no-store"],
    "check-garbage-waivers": ["check", "{ws}/model", "--waivers", "{bad}", "--no-store"],
    "check-garbage-db": ["check", "{ws}/model", "--db", "{bad}", "--no-store"],
    "check-store-and-no-store": ["check", "{ws}/model", "--store", "{ws}/s.db", "--no-store"],
    "check-zero-jobs": ["check", "{ws}/model", "--jobs", "0"],
    "check-unknown-profile": ["check", "{ws}/model", "--profile", "no-such-profile", "--no-store"],
    "check-output-below-a-file": ["check", "{ws}/model", "--no-store", "-o", "{under}"],
    "attest-garbage-key": ["attest", "scan", "{ws}/model", "--key", "{bad}", "--no-store"],
    "attest-missing": ["attest", "scan", "{ws}/missing", "--key", "{ws}/k.key", "--no-store"],
    "attest-store-and-no-store": [
        "attest", "scan", "{ws}/model", "--key", "{ws}/k.key", "--store", "{ws}/s.db", "--no-store",
    ],
    "evidence-garbage-store": ["evidence", "list", "--store", "{bad}"],
    "evidence-export-below-a-file": ["evidence", "export", "--store", "{ws}/s.db", "-o", "{under}"],
    # audit, db, report, init
    "audit-verify-missing": ["audit", "verify", "{ws}/missing"],
    "audit-verify-garbage": ["audit", "verify", "{bad}"],
    "audit-export-garbage": ["audit", "export", "{bad}"],
    "audit-tail-negative": ["audit", "tail", "{bad}", "--lines", "-1"],
    "db-import-missing": ["db", "import", "{ws}/missing"],
    "db-import-garbage": ["db", "import", "{bad}"],
    "db-info-garbage": ["db", "info", "--db", "{bad}"],
    "report-pr-garbage": ["report", "pr", "{bad}", "{bad}"],
    "init-long-path": ["init", "{long}"],
    "init-below-a-file": ["init", "{under}"],
    # robustness, monitor (rejected before any data is read: no numpy work needed)
    "robustness-negative-eps": ["robustness", "run", "{bad}", "--data", "{bad}", "--eps", "-1"],
    "robustness-missing-data": ["robustness", "run", "{ws}/missing", "--data", "{ws}/missing"],
    "harden-zero-eps": [
        "robustness", "harden", "{bad}", "--data", "{bad}", "--eps", "0", "--save", "{ws}/out.pkl",
    ],
    "privacy-data-and-train": [
        "robustness", "privacy", "{bad}", "--data", "sklearn:iris", "--train", "{bad}",
    ],
    "poisoning-negative-rate": [
        "robustness", "poisoning", "--data", "{bad}", "--max-suspect-rate", "-5",
    ],
    "monitor-negative-far": [
        "monitor", "calibrate", "--reference", "{bad}", "--save", "{ws}/s.json", "--far", "-5",
    ],
    "monitor-missing-reference": [
        "monitor", "calibrate", "--reference", "{ws}/missing.csv", "--save", "{ws}/s.json",
    ],
    "monitor-negative-alpha": [
        "monitor", "drift", "--reference", "{bad}", "--current", "{bad}", "--alpha", "-1",
    ],
    "monitor-garbage-scorer": ["monitor", "score", "--scorer", "{bad}", "--data", "{bad}"],
    "monitor-zero-window": ["monitor", "stream", "--reference", "{bad}", "--window", "0"],
    # servers: refused before anything listens
    "serve-garbage-tls": [
        "serve", "run", "{ws}/repo", "--allow-unsigned", "--port", "0",
        "--ssl-certfile", "{bad}", "--ssl-keyfile", "{bad}",
    ],
    "serve-half-tls": ["serve", "run", "{ws}/repo", "--allow-unsigned", "--ssl-certfile", "{bad}"],
    "serve-negative-port": ["serve", "run", "{ws}/repo", "--allow-unsigned", "--port", "-1"],
    "serve-negative-identity-rps": [
        "serve", "run", "{ws}/repo", "--allow-unsigned", "--identity-rps", "-5",
    ],
    "serve-zero-identity-burst": [
        "serve", "run", "{ws}/repo", "--allow-unsigned", "--identity-burst", "0",
    ],
    "serve-negative-auth-failure-rps": [
        "serve", "run", "{ws}/repo", "--allow-unsigned", "--auth-failure-rps", "-5",
    ],
    "serve-zero-workers": ["serve", "run", "{ws}/repo", "--allow-unsigned", "--workers", "0"],
    "serve-garbage-jwks": ["serve", "run", "{ws}/repo", "--allow-unsigned", "--jwks", "{bad}"],
    "serve-keys-missing-repo": ["serve", "keys", "list", "--repo", "{ws}/missing"],
    "vault-garbage-tls": [
        "vault", "serve", "--state", "{ws}/vs", "--ssl-certfile", "{bad}", "--ssl-keyfile", "{bad}",
    ],
    "vault-negative-auth-failure-rps": [
        "vault", "serve", "--state", "{ws}/vs", "--auth-failure-rps", "-5",
    ],
    "vault-zero-max-versions": ["vault", "serve", "--state", "{ws}/vs", "--max-versions", "0"],
    "vault-garbage-kek": ["vault", "init", "--state", "{ws}/vs", "--kek-file", "{bad}"],
    "vault-restore-garbage": ["vault", "restore", "--state", "{ws}/vs", "{bad}"],
    "admission-garbage-tls": [
        "admission", "serve", "--trusted-key", "{ws}/k.pub", "--port", "0",
        "--tls-cert", "{bad}", "--tls-key", "{bad}",
    ],
    "admission-garbage-key": ["admission", "serve", "--trusted-key", "{bad}", "--port", "0"],
    "admission-zero-concurrency": [
        "admission", "serve", "--trusted-key", "{ws}/k.pub", "--concurrency", "0",
    ],
    # the command line itself
    "unknown-command": ["no-such-command"],
    "unknown-format": ["rules", "--format", "nope"],
    "scan-no-path": ["scan"],
}  # fmt: skip


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    ws = tmp_path_factory.mktemp("bad-input")
    mp = pytest.MonkeyPatch()
    # mltrust: ignore[MLT-CODE-014] throwaway passphrase of the key the test generates
    mp.setenv("MLTRUST_PASSPHRASE", "bad-input-test")
    mp.setenv("XDG_CONFIG_HOME", str(ws / "xdg"))
    mp.chdir(ws)
    (ws / "model").mkdir()
    (ws / "model" / "w.bin").write_bytes(b"\x00" * 256)
    (ws / "repo").mkdir()
    (ws / "folder").mkdir()
    (ws / "bad.pem").write_bytes(b"\x00garbage\xff not PEM, JSON, YAML or SQLite\n" * 4)
    (ws / os.fsdecode(b"bad\xff\xfe.pkl")).write_bytes(b"\x80\x04K\x01.")
    assert main(["keys", "generate", "--out", str(ws / "k")]) == EXIT_CLEAN
    yield ws
    mp.undo()


def _argv(template: list[str], ws: Path) -> list[str]:
    values = {
        "ws": str(ws),
        "long": str(ws / ("a" * 5000)),
        "comp": str(ws / ("b" * 300)),
        "nonutf8": os.fsdecode(os.fsencode(str(ws)) + b"/bad\xff\xfe.pkl"),
        "bad": str(ws / "bad.pem"),
        "dir": str(ws / "folder"),
        "under": str(ws / "bad.pem" / "out"),
    }
    return [arg.format(**values) for arg in template]


def _tree(ws: Path) -> set[str]:
    return {
        os.fsdecode(os.path.join(d, n))
        for d, dirs, files in os.walk(os.fsencode(ws))
        for n in (*dirs, *files)
        if b"/xdg" not in d and not n.startswith(b"xdg")
    }


def _assert_clean_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    assert "internal error" not in err, err
    assert code == EXIT_ERROR, f"exit {code}\n{out[-500:]}\n{err[-500:]}"
    assert err.strip(), "no message on stderr"
    return err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(
    case: str, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree(workspace)
    _assert_clean_error(_argv(CASES[case], workspace), capsys)
    assert _tree(workspace) == before, "a partial output was left behind"


@pytest.mark.skipif(ROOT, reason="root reads and writes regardless of permissions")
@pytest.mark.parametrize(
    "argv",
    [
        ["scan", "{ws}/locked/w.bin"],
        ["sign", "{ws}/locked", "--key", "{ws}/k.key", "-o", "{ws}/locked.sig"],
        ["check", "{ws}/locked", "--no-store"],
        ["scan", "{ws}/model", "-o", "{ws}/readonly/out.json"],
        ["keys", "generate", "--out", "{ws}/readonly/k2"],
    ],
    ids=["scan-unreadable", "sign-unreadable", "check-unreadable", "scan-ro-out", "keys-ro-out"],
)
def test_unreadable_and_read_only(
    argv: list[str], workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked, readonly = workspace / "locked", workspace / "readonly"
    locked.mkdir(exist_ok=True)
    (locked / "w.bin").write_bytes(b"\x80\x04K\x01.")
    readonly.mkdir(exist_ok=True)
    (locked / "w.bin").chmod(0)
    readonly.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        before = _tree(workspace)
        _assert_clean_error(_argv(argv, workspace), capsys)
        assert _tree(workspace) == before
    finally:
        (locked / "w.bin").chmod(0o600)
        readonly.chmod(0o700)


def test_keys_generate_without_a_passphrase_or_terminal(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLTRUST_PASSPHRASE")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal
    before = _tree(workspace)
    err = _assert_clean_error(["keys", "generate", "--out", str(workspace / "nt")], capsys)
    assert "MLTRUST_PASSPHRASE" in err and "aborted" not in err
    assert _tree(workspace) == before


def test_a_port_in_use_is_refused_before_the_server_starts(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not "server started", then uvicorn's exit 3: one line and exit 2 (serve and vault)."""
    import socket

    monkeypatch.setenv("MLTRUST_VAULT_PASSPHRASE", "bad-input-test")
    assert main(["vault", "init", "--state", str(workspace / "vault"), "--kdf-cost", "14"]) == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for argv in (
            ["serve", "run", str(workspace / "repo"), "--allow-unsigned", "--port", port],
            ["vault", "serve", "--state", str(workspace / "vault"), "--port", port],
        ):
            err = _assert_clean_error(argv, capsys)
            assert f"cannot bind 127.0.0.1:{port}" in err
            assert "server started" not in err


def test_os_errors_are_described_in_one_short_line() -> None:
    from mltrust.cli._main import describe_os_error

    exc = OSError(36, "File name too long", "/x/" + "a" * 5000)
    text = describe_os_error(exc)
    assert text.startswith("File name too long: /x/aaa")
    assert len(text) < 250 and "5003 chars" in text
    exc = FileNotFoundError(2, "No such file or directory", os.fsdecode(b"/t/bad\xff"))
    assert describe_os_error(exc) == "No such file or directory: /t/bad\\udcff"


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux /proc")
def test_a_file_that_fails_to_read_even_for_root(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """/proc/self/mem fails every read at offset 0 (EIO), whoever runs the test: `scan` reports
    it as unreadable (a finding, exit 1), `check` stops with one line (exit 2)."""
    from mltrust.cli._main import EXIT_FINDINGS

    assert main(["scan", "/proc/self/mem"]) == EXIT_FINDINGS
    out, err = capsys.readouterr()
    assert "1 unreadable" in out and "Traceback" not in out + err
    err = _assert_clean_error(["check", "/proc/self/mem", "--no-store"], capsys)
    assert "cannot read /proc/self/mem" in err


def test_a_closed_pipe_ends_quietly() -> None:
    """`mltrust rules | head -1`: the reader has left; no BrokenPipeError traceback."""
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: the first write fails with EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mltrust", "rules"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode != 0
