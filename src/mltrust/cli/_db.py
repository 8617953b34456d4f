"""``mltrust db``: the offline advisory database (OSV JSON/YAML imported into SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mltrust.cli._main import EXIT_CLEAN

__all__ = ["db"]


@click.group()
def db() -> None:
    """Manage the offline advisory database used by `mltrust check`."""


@db.command("import")
@click.argument("source")
@click.option(
    "--db",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Database file to (re)create [default: $MLTRUST_ADVISORY_DB or the user data folder].",
)
def import_(source: str, target: Path | None) -> int:
    """Import a folder or zip of OSV advisories (JSON or YAML), for example a snapshot of the
    PyPA advisory database, or download the OSV PyPI zip from an http(s) URL given here
    (https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip); this is an explicit
    network call, to that URL only. The previous database is replaced atomically, and kept
    when the import yields no advisory (exit 2)."""
    import tempfile

    from mltrust.advisories import AdvisoryDB, default_db_path, download
    from mltrust.errors import ConfigError

    dest = target or default_db_path()
    if source.startswith(("http://", "https://")):
        with tempfile.TemporaryDirectory(prefix="mltrust-osv-") as tmp:
            fetched = download(source, Path(tmp) / "osv.zip")
            stats = AdvisoryDB.import_osv(fetched, dest)
    else:
        if not Path(source).exists():
            raise ConfigError(f"no such file or folder: {source}")
        stats = AdvisoryDB.import_osv(Path(source), dest)
    click.echo(
        f"imported {stats.advisories} advisories ({stats.affected} affected packages) from "
        f"{stats.files} files into {dest} in {stats.seconds:.2f}s"
        + (f"; skipped {stats.skipped}" if stats.skipped else "")
        + (f"; {stats.withdrawn} withdrawn not imported" if stats.withdrawn else ""),
    )
    return EXIT_CLEAN


@db.command("info")
@click.option(
    "--db",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Database file [default: $MLTRUST_ADVISORY_DB or the user data folder].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(target: Path | None, as_json: bool) -> int:
    """Show where the advisory database is, when it was imported and what it holds."""
    from mltrust.advisories import AdvisoryDB

    with AdvisoryDB.open(target) as database:
        data = database.info()
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            click.echo(f"{key:12} {value}")
    return EXIT_CLEAN
