"""`mltrust init`: scaffold a secure ML project (or complete an existing one)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["init"]


@click.command("init")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--name", "project", help="Project name [default: the folder's name].")
@click.option("--model", default="model", show_default=True, help="Name of the model.")
@click.option(
    "--license", "license_id", default="apache-2.0", show_default=True, help="SPDX license id."
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask; use the options and defaults (CI).")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(
    path: Path, project: str | None, model: str, license_id: str, yes: bool, force: bool
) -> None:
    """Scaffold a secure ML project in PATH: training to a safe format, serving settings, a
    policy profile, CI workflow, pre-commit hooks, a .gitignore that keeps keys and .env files
    out, and a Makefile with scan/sign/check/serve targets.

    Existing files are kept (reported) unless --force. On a terminal, asks for the names unless
    --yes.
    """
    from mltrust.integrations import scaffold

    if not yes and sys.stdin.isatty():
        project = click.prompt("Project name", default=project or path.resolve().name)
        model = click.prompt("Model name", default=model)
        license_id = click.prompt("License (SPDX id)", default=license_id)

    def report(rel: str, written: bool) -> None:
        mark = "wrote" if written else "kept "
        click.echo(f"  {mark} {rel}", err=True)

    result = scaffold(
        path, project=project, model=model, license_id=license_id, force=force, on_file=report
    )
    click.echo(
        f"{len(result.written)} files written, {len(result.kept)} kept in {result.root}. "
        "Next: make train && make keys && make sign && make check"
    )
