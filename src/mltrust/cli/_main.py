"""Entry point: a click group whose commands are imported only when used.

Exit codes everywhere: 0 clean/pass, 1 findings/policy failure, 2 usage or processing error.
Errors print one line (and a hint), never a traceback; set ``MLTRUST_DEBUG=1`` for one.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from mltrust import __version__, _logs
from mltrust.errors import Error

__all__ = ["EXIT_CLEAN", "EXIT_ERROR", "EXIT_FINDINGS", "cli", "main"]

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

#: command name -> "module:attribute". Adding a command is one line here plus its module.
COMMANDS: dict[str, str] = {
    "scan": "mltrust.cli._scan:scan",
    "rules": "mltrust.cli._rules:rules",
    "formats": "mltrust.cli._rules:formats",
    # signing and evidence (issue 3)
    "keys": "mltrust.cli._keys:keys",
    "sign": "mltrust.cli._sign:sign",
    "verify": "mltrust.cli._sign:verify",
    "attest": "mltrust.cli._attest:attest",
    "evidence": "mltrust.cli._evidence:evidence",
    # policy gate (issue 4)
    "check": "mltrust.cli._check:check",
    "db": "mltrust.cli._db:db",
    # serving (issue 5)
    "serve": "mltrust.cli._serve:serve",
    "audit": "mltrust.cli._audit:audit",
    # secrets for pipelines (issue 16)
    "vault": "mltrust.cli._vault:vault",
    # robustness and monitoring (issue 6)
    "robustness": "mltrust.cli._robustness:robustness",
    "monitor": "mltrust.cli._monitor:monitor",
    # the main job (issue 7)
    "demo": "mltrust.cli._demo:demo",
    # integrations (issue 18)
    "init": "mltrust.cli._init:init",
    "mlflow": "mltrust.cli._mlflow:mlflow",
    "s3": "mltrust.cli._s3:s3",
    "report": "mltrust.cli._report:report",
    # Kubernetes admission webhook (issue 17)
    "admission": "mltrust.cli._admission:admission",
    # explanations as evidence (issue 19)
    "explain": "mltrust.cli._explain:explain",
}


#: command name -> the one-line summary `mltrust --help` shows, so that listing the commands
#: imports none of them (numpy, torch, starlette… load only for the command that needs them).
#: tests/test_cli_startup.py checks each line against the command's own short help.
SUMMARIES: dict[str, str] = {
    "admission": "Kubernetes admission: verify models before the cluster runs them.",
    "attest": "Create signed attestations (scan, provenance, robustness, explanations,...",
    "audit": "Verify and read the tamper-evident audit log of `mltrust serve`.",
    "check": "Gate a model or project on evidence: scan, signature, ML-BOM, dependencies,...",
    "db": "Manage the offline advisory database used by `mltrust check`.",
    "demo": "Walk a model through its whole secured lifecycle, and replay the attacks...",
    "evidence": "Inspect the evidence store (statements and verdicts).",
    "explain": "Explain a classifier: feature attributions with sanity checks (JSON, HTML,...",
    "formats": "List the file formats the scanner recognises by content.",
    "init": "Scaffold a secure ML project in PATH: training to a safe format, serving...",
    "keys": "Manage signing keys.",
    "mlflow": "Sign, verify and promote model versions in an MLflow registry...",
    "monitor": "Monitor data: drift between data sets or over a stream, and per-request scorers.",
    "report": "Render reports from stored evidence (pull-request comments).",
    "s3": "Push signed model folders to S3-compatible storage and pull them verified.",
    "robustness": "Adversarial robustness of a classifier: attacks, hardening, privacy, poisoning.",
    "rules": "List every rule mltrust can report, with severity, CWE and MITRE ATLAS mapping.",
    "scan": "Scan model files and folders for unsafe content, without executing them.",
    "serve": "Serve models over the Open Inference Protocol, with security built in.",
    "vault": "Environments and secret variables for ML pipelines: encrypted, versioned,...",
    "sign": "Sign a model folder or file: a Sigstore bundle with the OpenSSF model-signing...",
    "verify": "Verify a signed model against a pinned key; exit 0 verified, 1 mismatch, 2...",
}


#: top-level package of an optional dependency -> the extra of pyproject.toml that installs it.
#: A command that needs a missing one ends with "pip install 'mltrust[EXTRA]'", not a traceback.
EXTRA_OF: dict[str, str] = {
    **dict.fromkeys(("numpy", "scipy", "sklearn", "pandas", "joblib"), "ml"),
    **dict.fromkeys(("starlette", "uvicorn", "jwt", "httpx"), "serve"),
    **dict.fromkeys(("cel", "celpy", "common_expression_language", "cyclonedx"), "policy"),
    **dict.fromkeys(("bandit", "jsonschema"), "policy"),
    **dict.fromkeys(("onnx", "onnxruntime"), "onnx"),
    "torch": "torch",
    "h5py": "h5",
    "blake3": "blake3",
    "matplotlib": "plots",
    "mkdocs": "docs",
    "mlflow": "mlflow",
    **dict.fromkeys(("boto3", "botocore", "s3transfer"), "s3"),
    "kfp": "kfp",
    "ray": "ray",
    "optuna": "tuning",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs (fast startup)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            summary = SUMMARIES.get(name)
            if summary is None:  # not in the table: import it to ask (slower, still correct)
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                summary = command.get_short_help_str(limit=formatter.width - 6 - len(name))
            rows.append((name, summary))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return super().get_command(ctx, cmd_name)
        module_name, _, attr = spec.partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{spec} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mltrust")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Print nothing on stdout and only errors on stderr: the exit code (and files written "
    "with -o) are the result.",
)
def cli(verbose: int, quiet: bool) -> None:
    """mltrust: scan, sign, gate and serve machine-learning models on evidence.

    Exit codes: 0 clean or pass, 1 findings or policy failure, 2 usage or processing error.
    """
    if quiet and verbose:
        raise click.UsageError("-q/--quiet and -v/--verbose contradict each other")
    if quiet:
        _QUIET.append(sys.stdout)
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (closed by main)
    # logging's numeric levels: ERROR 40, WARNING 30, INFO 20, DEBUG 10. At the default level
    # the configuration waits until something logs (see mltrust._logs).
    level = 40 if quiet else 30 - 10 * min(verbose, 2)
    _logs.configure(level, now=quiet or verbose > 0)


#: The real standard output while ``--quiet`` points ``sys.stdout`` at the null device.
_QUIET: list[Any] = []


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (``sys.exit`` is the caller's business)."""
    try:
        return _main(argv)
    finally:
        while _QUIET:
            sys.stdout.close()
            sys.stdout = _QUIET.pop()


def _main(argv: list[str] | None) -> int:
    try:
        result: Any = cli.main(args=argv, prog_name="mltrust", standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code)
    except click.ClickException as exc:  # usage errors
        try:
            exc.show()
        except UnicodeEncodeError:  # a non-UTF-8 file name in the message, on a strict stream
            click.echo(f"Error: {printable(exc.format_message())}", err=True)
        return EXIT_ERROR
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_ERROR
    except Error as exc:
        click.echo(f"error: {printable(exc.diagnostics())}", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:  # `mltrust rules | head`: the reader left; no message, no traceback
        _silence_stdout()
        return EXIT_ERROR
    except OSError as exc:  # the OS refused: missing, too long, unreadable, read-only, disk full
        if os.environ.get("MLTRUST_DEBUG"):
            raise
        click.echo(f"error: {describe_os_error(exc)}", err=True)
        return EXIT_ERROR
    except UnicodeError as exc:  # text expected, other bytes found (a file, a name, a variable)
        if os.environ.get("MLTRUST_DEBUG"):
            raise
        click.echo(f"error: not valid UTF-8 text: {printable(str(exc))}", err=True)
        return EXIT_ERROR
    except Exception as exc:
        if os.environ.get("MLTRUST_DEBUG"):
            raise
        top = (exc.name or "").split(".")[0] if isinstance(exc, ModuleNotFoundError) else ""
        if top in EXTRA_OF:
            click.echo(f"error: this command needs {top}, which is not installed", err=True)
            click.echo(f"hint: pip install 'mltrust[{EXTRA_OF[top]}]'", err=True)
            return EXIT_ERROR
        click.echo(f"internal error: {type(exc).__name__}: {printable(str(exc))}", err=True)
        click.echo("hint: rerun with MLTRUST_DEBUG=1 and report the traceback", err=True)
        return EXIT_ERROR
    return int(result or 0)


def describe_os_error(exc: OSError) -> str:
    """One line for an error the operating system reported: the reason, then the path (long
    paths shortened, undecodable bytes escaped)."""
    reason = exc.strerror or str(exc)
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    if not names:
        return reason
    shown = []
    for name in names:
        text = printable(os.fsdecode(name) if isinstance(name, bytes) else str(name))
        shown.append(text if len(text) <= 160 else f"{text[:80]}…{text[-60:]} ({len(text)} chars)")
    return f"{reason}: {' -> '.join(shown)}"


def printable(text: str) -> str:
    """``text`` safe to print on any UTF-8 stream: a file name that is not UTF-8 (lone
    surrogates in Python) is shown with its bytes escaped instead of failing the print."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


#: Generation-0 threshold of the cyclic garbage collector in the ``mltrust`` process. Importing
#: a command and its scanners allocates tens of thousands of long-lived objects (modules,
#: classes, tables); at the default threshold (700) the collector runs some fifty times while
#: they are created and finds nothing to free: several milliseconds of every ``mltrust scan``.
#: Collection stays on, only less frequent: at most this many container objects are allocated
#: between two young collections.
_GC_THRESHOLD = 20_000


def run() -> None:
    """Console-script entry point."""
    import gc

    _, older, oldest = gc.get_threshold()
    gc.set_threshold(_GC_THRESHOLD, older, oldest)
    code = main()
    # The command is done and its output flushed or closed. At exit the interpreter would walk
    # every object this process made (three full collections) to free memory the operating
    # system takes back anyway; frozen objects are skipped. Finalizers of objects still alive
    # at exit are not promised by Python either way.
    gc.freeze()
    sys.exit(code)
