"""Options shared by several commands."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def output_option(f: F) -> F:
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, writable=True, allow_dash=True),
        default=None,
        help="Write results to FILE (atomically, once ready) instead of stdout.",
    )(f)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def ray_options(f: F) -> F:
    """``--ray [ADDRESS|local]`` and ``--ray-retries N`` (scan and sign)."""
    f = click.option(
        "--ray-retries",
        type=click.IntRange(min=0),
        default=3,
        show_default=True,
        help="With --ray: retries of a task whose worker died.",
    )(f)
    return click.option(
        "--ray",
        "ray_address",
        is_flag=False,
        flag_value="local",
        default=None,
        metavar="[ADDRESS|local]",
        help="Run the work on a Ray cluster: `local` (the default when no address is given) "
        "starts one on this machine; `auto` or HOST:PORT joins one. Needs the ray extra.",
    )(f)


def ray_executor(address: str | None, retries: int) -> Any:
    """The executor for ``--ray`` (None without it); close it when done."""
    if address is None:
        return None
    from pathlib import Path

    from mltrust.errors import ConfigError
    from mltrust.executors import ray_executor as make

    if address not in ("local", "auto") and Path(address).exists():
        # `--ray PATH`: the bare flag took the first path as its address.
        raise ConfigError(
            f"--ray {address}: that is a path, not a Ray address",
            hint="put --ray after the paths, or give the address: --ray local",
        )

    return make(address, max_retries=retries)
