"""Options that many commands share are one option each: the same name, spelling and help.

``-f/--format`` comes from :func:`mltrust.cli._common.format_option` (choices from one enum) and
``--progress/--no-progress`` from ``progress_option``; a command that declares its own copy
drifts (a different default, no help text, ``--out`` beside ``-o``), which the first release's
review found. These tests walk every command and subcommand.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

from mltrust.cli._common import Format
from mltrust.cli._main import COMMANDS, cli


def _commands() -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(cli)

    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            sub = click.Context(command)
            for name in command.list_commands(sub):
                child = command.get_command(sub, name)
                assert child is not None
                yield from walk(child, f"{path} {name}")

    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        yield from walk(command, name)


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option)]


def test_every_format_option_is_the_shared_one() -> None:
    seen = 0
    for path, command in _commands():
        for opt in _options(command):
            if "--format" not in opt.opts:
                continue
            seen += 1
            assert opt.opts == ["-f", "--format"] and opt.name == "fmt", path
            assert opt.help == "Output format." and opt.show_default, path
            assert isinstance(opt.type, click.Choice), path
            assert set(opt.type.choices) <= {f.value for f in Format}, path
            assert opt.default in opt.type.choices, path
    assert seen >= 20


def test_every_progress_option_is_the_shared_one() -> None:
    seen = 0
    for path, command in _commands():
        for opt in _options(command):
            if "--progress" in opt.opts:
                seen += 1
                assert opt.secondary_opts == ["--no-progress"] and opt.default is None, path
                assert opt.help and "terminal" in opt.help, path
    assert seen >= 4


def test_no_command_spells_an_option_two_ways() -> None:
    for path, command in _commands():
        spelled = [o for opt in _options(command) for o in opt.opts + opt.secondary_opts]
        assert not {"--out", "--output"} <= set(spelled), f"{path}: --out beside --output"
        assert len(spelled) == len(set(spelled)), f"{path}: {spelled}"


def test_every_option_has_help_text() -> None:
    missing = [
        f"{path} {opt.opts[-1]}"
        for path, command in _commands()
        for opt in _options(command)
        if not opt.hidden and not (opt.help or "").strip() and opt.name != "help"
    ]
    assert missing == []
