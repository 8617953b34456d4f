"""``mltrust audit verify|tail|export|checkpoint export``: check and read the serving audit log."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import click

from mltrust.cli._common import Format, format_option, output_option
from mltrust.cli._main import EXIT_CLEAN, EXIT_FINDINGS
from mltrust.errors import ConfigError, InputError

__all__ = ["audit"]


def _locate_any(target: str) -> Path | str:
    """A ``postgresql://`` audit log as it is, else :func:`_locate` of the path."""
    from mltrust.store._postgres import is_postgres_url

    return target if is_postgres_url(target) else _locate(Path(target))


def _locate(target: Path) -> Path:
    """The audit database of a repository folder, or the database path itself."""
    db = target / ".mltrust" / "audit.db" if target.is_dir() else target
    if not db.is_file():
        raise InputError(f"{db}: no audit log here")
    return db


def _key_and_anchor(db: Path | str, key_file: Path | None, anchor: Path | None) -> tuple[Any, Path]:
    from mltrust.store._audit import default_anchor_path, default_key_path, load_audit_key

    key_path = key_file or default_key_path()
    if not key_path.is_file():
        raise ConfigError(
            f"no audit key at {key_path}: pass --key (the server's audit key, or its public key)"
        )
    key = load_audit_key(key_path)
    if anchor is None:
        # the server keeps the anchor next to its private key; with a public key copied
        # elsewhere, name the anchor (or verify against a checkpoint with --no-anchor)
        anchor = default_anchor_path(
            key_path if key.private is not None else default_key_path(), db
        )
    return key, anchor


def _read_checkpoint(path: Path) -> Any:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a checkpoint file: {exc}") from None
    if not isinstance(doc, dict) or "anchor" not in doc:
        raise InputError(f"{path}: not a checkpoint file (no 'anchor')")
    return doc["anchor"]


_key_option = click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Audit key (private: entry MACs checked too; public: anchor and checkpoints only) "
    "[default: $MLTRUST_AUDIT_KEY or ~/.config/mltrust/audit.key].",
)
_anchor_option = click.option(
    "--anchor",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The log's signed anchor [default: where the server keeps it, next to the key].",
)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: strings that would start a formula get a ``'``.

    Client-controlled strings (identities, request ids, paths, reasons) reach this file; a
    leading ``=``/``+``/``-``/``@``/tab/CR would make Excel or LibreOffice evaluate them (OWASP
    "CSV injection"). Numbers are written as they are.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


@click.group()
def audit() -> None:
    """Verify and read the tamper-evident audit log of `mltrust serve`."""


@audit.command()
@click.argument("target", metavar="REPO|DB|URL")
@_key_option
@_anchor_option
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A checkpoint exported earlier (`audit checkpoint export`) and kept elsewhere.",
)
@click.option(
    "--no-anchor",
    is_flag=True,
    help="Do not read the anchor (verifying on another host against --checkpoint).",
)
@format_option(Format.TEXT, Format.JSON)
def verify(
    target: str,
    key_file: Path | None,
    anchor: Path | None,
    checkpoint: Path | None,
    no_anchor: bool,
    fmt: str,
) -> int:
    """Check every link and entry MAC, the signed anchor and an optional checkpoint.

    Exit 0 when intact, 1 when an entry was edited, forged, deleted, inserted or reordered, the
    tail was cut or the anchor is missing, 2 on error.
    """
    from mltrust.store._audit import verify_chain
    from mltrust.store._postgres import redact_url

    db = _locate_any(target)
    if no_anchor and checkpoint is None:
        raise ConfigError("--no-anchor needs --checkpoint: nothing else proves the log complete")
    key, anchor_path = _key_and_anchor(db, key_file, anchor)
    report = verify_chain(
        db,
        key=key,
        anchor=None if no_anchor else anchor_path,
        checkpoint=_read_checkpoint(checkpoint) if checkpoint else None,
    )
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        state = "intact" if report.ok else "TAMPERED"
        head = report.anchor_seq if report.anchor_seq is not None else "none"
        where = redact_url(db) if isinstance(db, str) else db
        click.echo(
            f"{where}: {state}: {report.entries} entries, last seq {report.last_seq}, anchor {head}"
            + (f", checkpoint {report.checkpoint_seq}" if report.checkpoint_seq is not None else "")
        )
        for p in report.problems:
            click.echo(f"  {p}")
        if not report.macs_checked:
            click.echo("  note: public key only: entry MACs not checked", err=True)
    return EXIT_CLEAN if report.ok else EXIT_FINDINGS


@audit.group()
def checkpoint() -> None:
    """Export the signed head of a verified log, to keep outside this host."""


@checkpoint.command("export")
@click.argument("target", metavar="REPO|DB|URL")
@_key_option
@_anchor_option
@output_option
def checkpoint_export_cmd(
    target: str, key_file: Path | None, anchor: Path | None, output: str | None
) -> int:
    """Write the verified anchor (seq, hash, signature) as a checkpoint file.

    Keep it where whoever can write the server's folders cannot (a ticket, WORM storage, another
    host); `audit verify --checkpoint FILE` later proves the log still holds that head.
    """
    from mltrust.report import write_output
    from mltrust.store._audit import checkpoint_export
    from mltrust.store._postgres import redact_url

    db = _locate_any(target)
    key, anchor_path = _key_and_anchor(db, key_file, anchor)
    signed = checkpoint_export(db, key=key, anchor=anchor_path)
    where = redact_url(db) if isinstance(db, str) else str(db.resolve())
    doc = {"anchor": signed, "log": where, "public_key": key.public_pem()}
    write_output(json.dumps(doc, indent=2, sort_keys=True) + "\n", output)
    click.echo(f"checkpoint at seq {signed['seq']} of {where}", err=True)
    return EXIT_CLEAN


@audit.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-n", "--lines", default=20, show_default=True, type=click.IntRange(1), help="Entries to show."
)
def tail(target: Path, lines: int) -> int:
    """Print the last entries as JSON lines."""
    import sqlite3

    db = _locate(target)
    conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
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
@format_option(Format.JSONL, Format.CSV)
@output_option
def export(target: Path, fmt: str, output: str | None) -> int:
    """Export every entry (JSON lines, or CSV of the common fields)."""
    from mltrust.report import write_output
    from mltrust.store._audit import iter_entries

    db = _locate(target)
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
            writer.writerow({k: _cell(doc.get(k)) for k in fields})
        else:
            buf.write(json.dumps(doc, sort_keys=True) + "\n")
    write_output(buf.getvalue(), output)
    return EXIT_CLEAN
