"""``mltrust audit verify|tail|export``: check and read the serving audit log."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import click

from mltrust.cli._common import output_option
from mltrust.cli._main import EXIT_CLEAN, EXIT_FINDINGS
from mltrust.errors import InputError

__all__ = ["audit"]


def _locate(target: Path) -> tuple[Path, Path | None]:
    """(database, secret file or None) for a repository folder or a database path."""
    if target.is_dir():
        db = target / ".mltrust" / "audit.db"
        secret = target / ".mltrust" / "secret"
    else:
        db = target
        secret = target.parent / "secret"
    if not db.is_file():
        raise InputError(f"{db}: no audit log here")
    return db, secret if secret.is_file() else None


@click.group()
def audit() -> None:
    """Verify and read the tamper-evident audit log of `mltrust serve`."""


@audit.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--secret-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Server secret for the head MAC [default: next to the log].",
)
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def verify(target: Path, secret_file: Path | None, fmt: str) -> int:
    """Check every link of the hash chain and the recorded head (REPO or audit.db).

    Exit 0 when intact, 1 when an entry was edited, deleted, inserted or reordered or the tail
    was cut, 2 on error.
    """
    from mltrust.serve._audit import verify_chain

    db, default_secret = _locate(target)
    secret_path = secret_file or default_secret
    report = verify_chain(db, secret=secret_path.read_bytes() if secret_path else None)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        state = "intact" if report.ok else "TAMPERED"
        head = report.head_seq if report.head_seq is not None else "none"
        click.echo(
            f"{db}: {state}: {report.entries} entries, last seq {report.last_seq}, head {head}"
        )
        for p in report.problems:
            click.echo(f"  {p}")
        if secret_path is None:
            click.echo("  note: no secret: head record MAC not checked", err=True)
    return EXIT_CLEAN if report.ok else EXIT_FINDINGS


@audit.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("-n", "--lines", default=20, show_default=True, type=click.IntRange(1))
def tail(target: Path, lines: int) -> int:
    """Print the last entries as JSON lines."""
    import sqlite3

    db, _ = _locate(target)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT entry, entry_hash FROM audit ORDER BY seq DESC LIMIT ?", (lines,)
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{db}: not an audit log: {exc}") from None
    finally:
        conn.close()
    for entry, digest in reversed(rows):
        doc = json.loads(entry)
        doc["entry_hash"] = digest
        click.echo(json.dumps(doc, sort_keys=True))
    return EXIT_CLEAN


@audit.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("-f", "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@output_option
def export(target: Path, fmt: str, output: str | None) -> int:
    """Export every entry (JSON lines, or CSV of the common fields)."""
    from mltrust.report import write_output
    from mltrust.serve._audit import iter_entries

    db, _ = _locate(target)
    buf = io.StringIO()
    fields = [
        "seq",
        "ts",
        "identity",
        "method",
        "path",
        "model",
        "version",
        "status",
        "decision",
        "reason",
        "latency_ms",
        "request_id",
        "input_sha256",
        "entry_hash",
    ]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for _seq, text, _prev, digest in iter_entries(db):
        doc = json.loads(text)
        doc["entry_hash"] = digest
        if writer is not None:
            writer.writerow(doc)
        else:
            buf.write(json.dumps(doc, sort_keys=True) + "\n")
    write_output(buf.getvalue(), output)
    return EXIT_CLEAN
