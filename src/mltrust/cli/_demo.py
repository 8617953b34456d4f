"""``mltrust demo``: a model's whole secured lifecycle, and the attacks mltrust stops.

Every step runs the real ``mltrust`` command line (shown as ``$ mltrust ...``) or a real HTTP
request against a real ``mltrust serve`` process on 127.0.0.1, inside a temporary workspace.
Each step states what it expects; the demo exits 1 if any outcome differs from the claim.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.panel import Panel

from mltrust.cli._main import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS
from mltrust.errors import ConfigError

#: Passphrase protecting the demo's signing key (a real deployment reads it from a secret store).
# mltrust: ignore[MLT-CODE-014] the demo's public passphrase, printed in its own output
_DEMO_PASSPHRASE = "demo-passphrase-not-for-production"  # noqa: S105 - public by design
#: Stands for the git commit of the training code (the demo trains in-process).
_DEMO_COMMIT = hashlib.sha1(b"mltrust demo training code", usedforsecurity=False).hexdigest()


@dataclass
class _Outcome:
    claim: str
    ok: bool
    detail: str = ""


@dataclass
class _Demo:
    root: Path
    console: Console
    verbose: bool
    outcomes: list[_Outcome] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # ---- paths -----------------------------------------------------------------------------
    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def model_dir(self) -> Path:
        return self.repo / "iris"

    @property
    def model_file(self) -> Path:
        return self.model_dir / "model.joblib"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def canary(self) -> Path:
        return self.root / "PWNED-if-this-exists.txt"

    # ---- output ----------------------------------------------------------------------------
    def step(self, number: int, title: str, why: str) -> None:
        self.console.print()
        self.console.print(
            Panel(
                f"[bold]{title}[/]\n[dim]{why}[/]",
                title=f"step {number}",
                title_align="left",
                border_style="cyan",
            )
        )

    def expect(self, claim: str, ok: bool, detail: str = "") -> bool:
        self.outcomes.append(_Outcome(claim, ok, detail))
        mark = "[bold green]✔[/]" if ok else "[bold red]✘[/]"
        self.console.print(f"  {mark} {claim}" + (f" [dim]({detail})[/]" if detail else ""))
        return ok

    def mltrust(
        self, *args: str, expect: int | None = None, claim: str = "", show: int = 12
    ) -> subprocess.CompletedProcess[str]:
        """Run ``mltrust ARGS`` in the workspace, show the command and the head of its output."""
        shown = " ".join(shlex.quote(_relative(a, self.root)) for a in args)
        self.console.print(f"[bold]$ mltrust {shown}[/]")
        env = {**os.environ, **self.env, "COLUMNS": "110", "NO_COLOR": "1"}
        proc = subprocess.run(
            [sys.executable, "-m", "mltrust", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        limit = len(lines) if self.verbose else show
        for line in lines[:limit]:
            self.console.out("    " + _relative(line, self.root), highlight=False)
        if len(lines) > limit:
            self.console.print(f"    [dim]… {len(lines) - limit} more lines[/]")
        if expect is not None:
            self.expect(
                claim or f"exit code {expect}", proc.returncode == expect, f"exit {proc.returncode}"
            )
        return proc

    # ---- HTTP ------------------------------------------------------------------------------
    def start_server(self, trusted_key: Path, port: int) -> subprocess.Popen[bytes]:
        log = open(self.root / f"serve-{port}.log", "wb")  # noqa: SIM115 - closed at stop
        cmd = [
            sys.executable,
            "-m",
            "mltrust",
            "serve",
            str(self.repo),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--trusted-key",
            str(trusted_key),
        ]
        self.console.print(
            f"[bold]$ mltrust serve repo --port {port} "
            f"--trusted-key {_relative(str(trusted_key), self.root)}[/] "
            "[dim](in the background)[/]"
        )
        proc = subprocess.Popen(
            cmd, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        self.servers.append(proc)
        return proc

    def stop_servers(self) -> None:
        for proc in self.servers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.servers.clear()


def _relative(text: str, root: Path) -> str:
    return text.replace(str(root) + os.sep, "").replace(str(root), ".")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(client: Any, base: str, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if client.get(f"{base}/v2/health/live").status_code == 200:
                return True
        time.sleep(0.2)
    return False


def _malicious_joblib(command: Sequence[str]) -> bytes:
    """The classic attack: a joblib/pickle file whose ``__reduce__`` runs a command on load.

    Built from pickle opcodes, as an attacker would: ``subprocess.call(command)`` at load time,
    then an ordinary-looking payload so a careless loader sees nothing wrong.
    """
    payload = pickle.dumps(list(command), protocol=2)[2:-1]  # the list, without PROTO/STOP
    return (
        b"\x80\x02"  # PROTO 2
        b"csubprocess\ncall\n"  # GLOBAL subprocess.call
        + payload
        + b"\x85R"  # TUPLE1, REDUCE: subprocess.call([...]) runs here
        b"0"  # POP the result
        b"}q\x00."  # EMPTY_DICT, BINPUT, STOP: the "model"
    )


def _train(demo: _Demo) -> dict[str, Any]:
    import joblib
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    data = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, stratify=data.target, random_state=0
    )
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    demo.model_dir.mkdir(parents=True)
    joblib.dump(model, demo.model_file)
    data_dir = demo.root / "data"
    data_dir.mkdir()
    table = np.column_stack([data.data, data.target])
    header = ",".join(
        [*(n.replace(" (cm)", "").replace(" ", "_") for n in data.feature_names), "label"]
    )
    np.savetxt(data_dir / "iris.csv", table, delimiter=",", header=header, comments="", fmt="%g")
    settings = {
        "name": "iris",
        "version": "1",
        "runtime": "sklearn",
        "uri": "model.joblib",
        "inputs": [
            {
                "name": "input-0",
                "datatype": "FP64",
                "shape": [-1, 4],
                "min": [float(v) for v in x_train.min(axis=0)],
                "max": [float(v) for v in x_train.max(axis=0)],
            }
        ],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}],
        "policy": {
            "rate_limit": {
                "identity_rps": 5,
                "identity_burst": 10,
                "model_rps": 1000,
                "model_burst": 2000,
            },
            "range_margin": 0.25,
            "timeout_s": 5,
        },
    }
    (demo.model_dir / "mltrust-model.json").write_text(json.dumps(settings, indent=2) + "\n")
    return {"accuracy": accuracy, "x_test": x_test[:3].tolist()}


def _run(demo: _Demo) -> None:
    import httpx

    key = demo.keys / "demo"
    pub = demo.keys / "demo.pub"
    demo.env["MLTRUST_PASSPHRASE"] = _DEMO_PASSPHRASE
    # The audit key (and its anchors) live outside the server's state folder, as in production,
    # but inside the demo workspace so the demo leaves nothing in the user's config folder.
    demo.env["MLTRUST_AUDIT_KEY"] = str(demo.root / "secrets" / "audit.key")

    # 1 ---------------------------------------------------------------------------------------
    demo.step(
        1,
        "Train a model",
        "A scikit-learn LogisticRegression on the iris data set bundled with scikit-learn, "
        "saved with joblib — the format most tabular models ship in, and a pickle.",
    )
    trained = _train(demo)
    demo.expect(
        f"model trained, test accuracy {trained['accuracy']:.3f}", trained["accuracy"] > 0.8
    )
    demo.console.print(
        f"  saved {_relative(str(demo.model_file), demo.root)} and "
        "repo/iris/mltrust-model.json (input schema with value ranges)"
    )

    # 2 ---------------------------------------------------------------------------------------
    demo.step(
        2,
        "Build evidence: scan, sign, attest, check",
        "The scanner reads the pickle opcodes without executing them; the signature binds "
        "file names and contents to your key; provenance records the data and parameters; "
        "the policy gate evaluates all of it.",
    )
    demo.mltrust(
        "scan",
        str(demo.model_file),
        expect=EXIT_CLEAN,
        claim="the freshly trained model scans clean",
    )
    demo.keys.mkdir()
    demo.mltrust(
        "keys",
        "generate",
        "--out",
        str(key),
        expect=EXIT_CLEAN,
        claim="a signing key pair is generated (private key encrypted)",
    )
    demo.mltrust(
        "sign",
        str(demo.model_dir),
        "--key",
        f"{key}.key",
        "--name",
        "iris",
        "--version",
        "1",
        expect=EXIT_CLEAN,
        claim="the model folder is signed",
    )
    demo.mltrust(
        "verify",
        str(demo.model_dir),
        "--key",
        str(pub),
        expect=EXIT_CLEAN,
        claim="the signature verifies against the pinned public key",
    )
    demo.mltrust(
        "attest",
        "provenance",
        str(demo.model_dir),
        "--key",
        f"{key}.key",
        "--dataset",
        str(demo.root / "data" / "iris.csv"),
        "--code-commit",
        _DEMO_COMMIT,
        "--param",
        "max_iter=1000",
        "--param",
        "model=LogisticRegression",
        expect=EXIT_CLEAN,
        claim="training provenance is attested (SLSA v1)",
    )
    demo.mltrust(
        "attest",
        "scan",
        str(demo.model_dir),
        "--key",
        f"{key}.key",
        expect=EXIT_CLEAN,
        claim="the scan result is attested",
    )
    bom = demo.root / "iris.cdx.json"
    demo.mltrust(
        "check",
        str(demo.model_dir),
        "--key",
        str(pub),
        "--profile",
        "default",
        "--bom-output",
        str(bom),
        expect=EXIT_CLEAN,
        claim="the policy gate passes",
        show=30,
    )
    demo.expect(
        "a CycloneDX 1.6 ML-BOM names the model as a machine-learning-model component",
        bom.is_file() and "machine-learning-model" in bom.read_text(),
    )

    # 3 ---------------------------------------------------------------------------------------
    demo.step(
        3,
        "Serve it behind the gateway",
        "mltrust serve admits a model only if it scans clean and its signature verifies "
        "against a trusted key; every request needs a key, and lands in a hash-chained "
        "audit log before the client gets its answer.",
    )
    created = demo.mltrust(
        "serve",
        "keys",
        "create",
        "--repo",
        str(demo.repo),
        "--name",
        "demo-client",
        "--model",
        "iris",
        "--role",
        "infer",
        expect=EXIT_CLEAN,
        claim="an API key is created (shown once)",
    )
    api_key = next((w for w in created.stdout.split() if w.startswith("mlt_")), "")
    demo.expect("the API key was printed", bool(api_key))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    demo.start_server(pub, port)
    with httpx.Client(timeout=10.0) as client:
        up = _wait_ready(client, base)
        demo.expect("the server is live on 127.0.0.1", up)
        headers = {"Authorization": f"Bearer {api_key}"}
        ready = client.get(f"{base}/v2/models/iris/ready", headers=headers)
        demo.expect(
            "the signed, clean model is admitted (ready 200)",
            ready.status_code == 200,
            f"HTTP {ready.status_code}",
        )
        body = {
            "inputs": [
                {"name": "input-0", "shape": [3, 4], "datatype": "FP64", "data": trained["x_test"]}
            ]
        }
        headers = {"Authorization": f"Bearer {api_key}"}
        reply = client.post(f"{base}/v2/models/iris/infer", json=body, headers=headers)
        demo.console.print(
            f"  POST /v2/models/iris/infer → {reply.status_code} {reply.text[:160]}",
            highlight=False,
            markup=False,
        )
        demo.expect(
            "a valid, authenticated inference call succeeds",
            reply.status_code == 200,
            f"HTTP {reply.status_code}",
        )

        # 5 (HTTP part, while the good server runs) --------------------------------------------
        demo.step(
            4,
            "Abuse of the endpoint is refused",
            "No key, too many queries (model extraction needs many), or inputs outside "
            "what the model was trained on: each gets a fixed, terse error.",
        )
        anon = client.post(f"{base}/v2/models/iris/infer", json=body)
        demo.expect(
            "a request without a key is refused (401)",
            anon.status_code == 401,
            f"HTTP {anon.status_code} {anon.text.strip()}",
        )
        weird = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [1, 4],
                    "datatype": "FP64",
                    "data": [[50.0, -3.0, 1.0, 900.0]],
                }
            ]
        }
        bad = client.post(f"{base}/v2/models/iris/infer", json=weird, headers=headers)
        demo.expect(
            "an out-of-range input is rejected before inference (422)",
            bad.status_code == 422,
            f"HTTP {bad.status_code}",
        )
        codes = [
            client.post(f"{base}/v2/models/iris/infer", json=body, headers=headers).status_code
            for _ in range(30)
        ]
        limited = [c for c in codes if c == 429]
        demo.expect(
            "a burst of 30 queries hits the rate limit (429)",
            bool(limited),
            f"{len(limited)} of 30 refused",
        )
    demo.stop_servers()
    demo.mltrust(
        "audit",
        "tail",
        str(demo.repo),
        "-n",
        "3",
        expect=EXIT_CLEAN,
        claim="the audit log shows who asked what",
        show=8,
    )
    demo.mltrust(
        "audit", "verify", str(demo.repo), expect=EXIT_CLEAN, claim="the audit hash chain verifies"
    )

    # 4 ---------------------------------------------------------------------------------------
    demo.step(
        5,
        "The classic attack: a poisoned joblib file",
        "An attacker with write access to the artifact store swaps in a joblib file whose "
        "__reduce__ runs a shell command when loaded. Scanning, signature verification "
        "and the server's admission each refuse it; the command never runs.",
    )
    original = demo.root / "model.joblib.orig"
    shutil.copy2(demo.model_file, original)
    demo.model_file.write_bytes(
        _malicious_joblib([sys.executable, "-c", f"open({str(demo.canary)!r}, 'w').write('pwned')"])
    )
    demo.mltrust(
        "scan",
        str(demo.model_file),
        expect=EXIT_FINDINGS,
        claim="the scanner flags the payload (exit 1)",
    )
    demo.mltrust(
        "verify",
        str(demo.model_dir),
        "--key",
        str(pub),
        expect=EXIT_FINDINGS,
        claim="signature verification names the modified file (exit 1)",
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    demo.start_server(pub, port)
    with httpx.Client(timeout=10.0) as client:
        demo.expect("the server still starts", _wait_ready(client, base))
        ready = client.get(f"{base}/v2/models/iris/ready", headers=headers)
        demo.expect(
            "admission refuses the swapped model (ready 503)",
            ready.status_code == 503,
            f"HTTP {ready.status_code}",
        )
        reply = client.post(f"{base}/v2/models/iris/infer", json=body, headers=headers)
        demo.expect(
            "inference on the refused model is not served",
            reply.status_code in (404, 503),
            f"HTTP {reply.status_code}",
        )
    demo.stop_servers()
    demo.expect("the attacker's command never ran (no canary file)", not demo.canary.exists())

    # 5 ---------------------------------------------------------------------------------------
    demo.step(
        6,
        "A quieter tamper: one character",
        "With the model restored, an attacker loosens the serving policy instead — one "
        "character in the settings file, which is signed with the model.",
    )
    shutil.copy2(original, demo.model_file)
    demo.mltrust(
        "verify",
        str(demo.model_dir),
        "--key",
        str(pub),
        expect=EXIT_CLEAN,
        claim="the restored model verifies again",
    )
    settings = demo.model_dir / "mltrust-model.json"
    text = settings.read_text()
    settings.write_text(text.replace('"range_margin": 0.25', '"range_margin": 9.25'))
    demo.mltrust(
        "verify",
        str(demo.model_dir),
        "--key",
        str(pub),
        expect=EXIT_FINDINGS,
        claim="a one-character change to the serving policy is caught",
    )
    settings.write_text(text)


@click.command()
@click.option("--keep", is_flag=True, help="Leave the workspace in place to explore.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Use this (new or empty) folder as the workspace [default: a temp folder].",
)
@click.option("--verbose", "show_all", is_flag=True, help="Show every line of command output.")
def demo(keep: bool, workdir: Path | None, show_all: bool) -> int:
    """Walk a model through its whole secured lifecycle, and replay the attacks mltrust stops.

    Trains a scikit-learn model, scans, signs and attests it, gates it with `mltrust check`,
    serves it behind an API key, then replays a poisoned-joblib swap, a tampered file, an
    unauthenticated request, a query burst and an out-of-range input. Exits 1 if any step's
    outcome differs from what it claims.
    """
    try:
        import httpx  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"the demo needs the 'ml' and 'serve' extras ({exc.name} missing)",
            hint="pip install 'mltrust[all]'",
        ) from None
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)
    with _workspace(workdir, keep) as root:
        state = _Demo(root=root, console=console, verbose=show_all)
        console.print(
            Panel(
                "[bold]mltrust demo[/]: a model from training to a served endpoint, "
                "and the attacks stopped along the way.\n"
                f"workspace: {root}",
                border_style="green",
            )
        )
        try:
            _run(state)
        finally:
            state.stop_servers()
        failed = [o for o in state.outcomes if not o.ok]
        console.print()
        if failed:
            console.print(
                f"[bold red]{len(failed)} of {len(state.outcomes)} checks did not "
                "turn out as claimed:[/]"
            )
            for o in failed:
                console.print(f"  ✘ {o.claim} ({o.detail})")
        else:
            console.print(f"[bold green]All {len(state.outcomes)} checks turned out as claimed.[/]")
        _where(console, root, keep)
        return EXIT_FINDINGS if failed else EXIT_CLEAN


def _where(console: Console, root: Path, keep: bool) -> None:
    if keep:
        console.print(
            Panel(
                f"workspace kept at {root}\n"
                "  repo/iris/                 the signed model, settings, signature (model.sig)\n"
                "  repo/iris/.mltrust/        attestations (provenance, scan)\n"
                "  repo/.mltrust/             API keys (hashed) and the audit log of the server\n"
                "  .mltrust/evidence.db       the evidence store\n"
                "  keys/demo.key, demo.pub    the signing key pair\n"
                "  iris.cdx.json              the CycloneDX ML-BOM",
                title="where everything lives",
                border_style="green",
            )
        )
    console.print(
        "next: `mltrust scan YOUR_MODELS/`, `mltrust check YOUR_PROJECT/`, "
        "`mltrust robustness MODEL --data sklearn:digits --attack pgd --eps 0.1`; "
        "`mltrust demo --keep` to explore the workspace."
    )


@contextlib.contextmanager
def _workspace(workdir: Path | None, keep: bool) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        if any(workdir.iterdir()):
            raise ConfigError(f"workspace {workdir} is not empty")
        yield workdir.resolve()
        return
    root = Path(tempfile.mkdtemp(prefix="mltrust-demo-"))
    try:
        yield root
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


__all__ = ["EXIT_ERROR", "demo"]
