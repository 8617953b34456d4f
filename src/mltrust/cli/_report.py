"""`mltrust report pr`: a pull-request comment comparing base and head evidence."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click

from mltrust.cli._main import EXIT_CLEAN, EXIT_FINDINGS
from mltrust.errors import ConfigError

__all__ = ["report"]


@click.group()
def report() -> None:
    """Render reports from stored evidence (pull-request comments)."""


@report.command("pr")
@click.argument("base", type=click.Path(path_type=Path))
@click.argument("head", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the Markdown here.")
@click.option("--charts", type=click.Path(path_type=Path), help="Also write PNG charts here.")
@click.option("--title", default="mltrust", show_default=True, help="Heading of the comment.")
@click.option(
    "--request-review",
    "team",
    help="When the change needs review (head fails or adds a high finding), request a review "
    "from this user or ORG/TEAM with the GitHub CLI (gh), on --pr.",
)
@click.option("--pr", "number", type=click.IntRange(min=1), help="Pull-request number for gh.")
def pr(
    base: Path,
    head: Path,
    output: Path | None,
    charts: Path | None,
    title: str,
    team: str | None,
    number: int | None,
) -> int:
    """Compare two `mltrust check --format json` reports (BASE and HEAD) as a PR comment.

    Exit 0 when the head needs no review, 1 when it does (it fails, or adds a finding at high
    or above), 2 on error.
    """
    from mltrust.report._pr import compare_reports, load_report, render_pr_markdown, write_charts
    from mltrust.store._atomic import atomic_write_bytes

    if team is not None and number is None:
        raise ConfigError("--request-review needs --pr NUMBER")
    diff = compare_reports(load_report(base), load_report(head))
    text = render_pr_markdown(diff, title=title)
    if output is not None:
        atomic_write_bytes(output, text.encode("utf-8"))
    else:
        click.echo(text, nl=False)
    if charts is not None:
        for path in write_charts(diff, charts):
            click.echo(f"chart: {path}", err=True)
    if team is not None and diff.needs_review:
        gh = shutil.which("gh")
        if gh is None:
            raise ConfigError("--request-review needs the GitHub CLI (gh) on PATH")
        proc = subprocess.run(
            [gh, "pr", "edit", str(number), "--add-reviewer", team],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise ConfigError(f"gh could not request a review: {proc.stderr.strip()[:300]}")
        click.echo(f"review requested from {team} on #{number}", err=True)
    return EXIT_FINDINGS if diff.needs_review else EXIT_CLEAN
