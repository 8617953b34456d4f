"""``python -m mltrust``."""

from mltrust.cli._main import run

run()
