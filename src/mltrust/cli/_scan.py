"""``mltrust scan PATH...``: scan model files and folders."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mltrust.cli._common import (
    Format,
    format_option,
    output_option,
    progress_option,
    ray_executor,
    ray_options,
    stderr_is_terminal,
    stdout_is_terminal,
)
from mltrust.cli._main import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS
from mltrust.config import load_scan_config
from mltrust.findings import Severity
from mltrust.report import OutputFormat, render_scan, write_output
from mltrust.scan import iter_files, scan_paths


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@format_option(Format.TEXT, Format.JSON, Format.SARIF)
@output_option
@click.option(
    "--fail-on",
    type=click.Choice([s.value for s in Severity]),
    default=None,
    help="Exit 1 when a finding at or above this severity exists [default: medium].",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML config (default: mltrust.toml or [tool.mltrust] in pyproject.toml).",
)
@click.option(
    "--digest/--no-digest",
    default=None,
    help="Record each file's SHA-256 in the results (one more pass over the bytes).",
)
@click.option("--all-findings", is_flag=True, help="Show info-level findings in text output.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Worker processes (0: one per CPU). The default scans in this one process.",
)
@progress_option
@ray_options
def scan(
    paths: tuple[Path, ...],
    fmt: str,
    output: str | None,
    fail_on: str | None,
    config_path: Path | None,
    digest: bool | None,
    all_findings: bool,
    jobs: int,
    progress: bool | None,
    ray_address: str | None,
    ray_retries: int,
) -> int:
    """Scan model files and folders for unsafe content, without executing them.

    Formats are recognised by content, not by name. A file whose format is not recognised is
    reported as not scanned. Exit 0 when clean, 1 when a finding reaches --fail-on, 2 on error.
    With --ray the same files are scanned by the same code on a Ray cluster (same report).
    """
    config = load_scan_config(config_path)
    if fail_on is not None:
        config = config.replace(fail_on=Severity(fail_on))
    if digest is not None:
        config = config.replace(digest=digest)
    show_progress = stderr_is_terminal() if progress is None else progress
    workers = jobs or (os.cpu_count() or 1)
    executor = ray_executor(ray_address, ray_retries)
    try:
        if show_progress:
            report = _scan_with_progress(paths, config, workers, executor)
        else:
            report = scan_paths(paths, config, jobs=workers, executor=executor)
    finally:
        if executor is not None:
            executor.close()
    color = output is None and stdout_is_terminal()
    text = render_scan(report, OutputFormat(fmt), color=color, verbose=all_findings)
    write_output(text, output)
    if report.failed:
        return EXIT_FINDINGS
    if report.errored:
        return EXIT_ERROR
    return EXIT_CLEAN


def _scan_with_progress(paths: tuple[Path, ...], config, workers: int, executor):  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    files = [p for p, _ in iter_files(paths)]
    console = Console(stderr=True)
    with Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=len(files))

        def tick(path: str, _result: object) -> None:
            bar.update(task, advance=1, description=Path(path).name[:40])

        return scan_paths(paths, config, on_file=tick, jobs=workers, executor=executor)
