"""``mltrust evidence list|show|export``: read the evidence store."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mltrust.cli._common import Format, format_option, output_option
from mltrust.cli._main import EXIT_CLEAN
from mltrust.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


def _store_option(f: F) -> F:
    out: F = click.option(
        "--store",
        "store_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Evidence store [default: .mltrust/evidence.db in the current folder].",
    )(f)
    return out


def _open(store_path: Path | None):  # type: ignore[no-untyped-def]
    from mltrust.store import EvidenceStore

    path = store_path or EvidenceStore.default_path(Path.cwd())
    if not path.exists():
        raise InputError(f"no evidence store at {path}", hint="pass --store FILE")
    return EvidenceStore.open(path)


@click.group()
def evidence() -> None:
    """Inspect the evidence store (statements and verdicts)."""


@evidence.command("list")
@click.option("--subject", default=None, help="Only records about this subject digest.")
@click.option("--type", "ptype", default=None, help="Only statements of this predicate type.")
@format_option(Format.TEXT, Format.JSON)
@_store_option
def list_(subject: str | None, ptype: str | None, fmt: str, store_path: Path | None) -> int:
    """List records, oldest first."""
    with _open(store_path) as store:
        rows: list[Any] = list(store.statements(subject_digest=subject, predicate_type=ptype))
        if ptype is None:
            rows += store.verdicts(subject_digest=subject)
    if fmt == "json":
        click.echo(json.dumps([_summary(r.to_dict()) for r in rows], indent=2))
        return EXIT_CLEAN
    for r in rows:
        d = r.to_dict()
        what = d.get("predicate_type") or f"verdict {d.get('verdict')} ({d.get('profile')})"
        signer = d.get("signer")
        click.echo(
            f"{d['id'][:16]}  {d['kind']:<9}  {d['subject_digest'][:16]}  {d['created_at']}  "
            f"{what}" + (f"  signed:{signer[:12]}" if signer else "")
        )
    if not rows:
        click.echo("no records", err=True)
    return EXIT_CLEAN


list_.name = "list"


def _summary(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in ("statement", "envelope", "document")}


@evidence.command("show")
@click.argument("record_id")
@_store_option
def show(record_id: str, store_path: Path | None) -> int:
    """Print one record (by id or unique prefix) as JSON."""
    with _open(store_path) as store:
        record = store.get(record_id)
    click.echo(json.dumps(record.to_dict(), indent=2, sort_keys=True))
    return EXIT_CLEAN


@evidence.command("export")
@format_option(Format.JSON, Format.JSONL)
@output_option
@_store_option
def export(fmt: str, output: str | None, store_path: Path | None) -> int:
    """Export every record (statements, then verdicts)."""
    from mltrust.report import write_output

    with _open(store_path) as store:
        records = [r.to_dict() for r in store.records()]
    if fmt == "jsonl":
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    else:
        text = json.dumps(records, indent=2, sort_keys=True) + "\n"
    write_output(text, output)
    return EXIT_CLEAN
