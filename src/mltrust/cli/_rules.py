"""``mltrust rules`` and ``mltrust formats``: what mltrust checks and recognises."""

from __future__ import annotations

import json

import click

from mltrust.cli._common import Format, format_option
from mltrust.findings import all_rules


@click.command()
@format_option(Format.TEXT, Format.JSON, Format.MARKDOWN)
def rules(fmt: str) -> int:
    """List every rule mltrust can report, with severity, CWE and MITRE ATLAS mapping."""
    registry = all_rules()
    if fmt == "json":
        data = [
            {
                "id": r.id,
                "name": r.name,
                "severity": r.default_severity.value,
                "cwe": f"CWE-{r.cwe}" if r.cwe else None,
                "atlas": list(r.atlas),
                "summary": r.summary,
                "remediation": r.remediation,
            }
            for r in registry
        ]
        click.echo(json.dumps(data, indent=2))
    elif fmt == "markdown":
        click.echo("| rule | name | severity | CWE | ATLAS | summary |")
        click.echo("|---|---|---|---|---|---|")
        for r in registry:
            cwe = f"CWE-{r.cwe}" if r.cwe else ""
            click.echo(
                f"| {r.id} | {r.name} | {r.default_severity.value} | {cwe} | "
                f"{', '.join(r.atlas)} | {r.summary} |"
            )
    else:
        for r in registry:
            cwe = f" CWE-{r.cwe}" if r.cwe else ""
            atlas = f" [{', '.join(r.atlas)}]" if r.atlas else ""
            click.echo(f"{r.id:<14} {r.default_severity.value:<8} {r.name}{cwe}{atlas}")
            click.echo(f"{'':<14} {r.summary}")
    return 0


@click.command()
def formats() -> int:
    """List the file formats the scanner recognises by content."""
    from mltrust.scan import all_scanners

    for s in all_scanners():
        click.echo(f"{s.name:<14} {s.description}")
    return 0
