"""One error root: every exception mltrust raises on purpose derives from ``mltrust.errors.Error``.

The CLI catches ``Error`` once and prints a one-line cause; an intentional error outside the root
would surface as an internal error with a traceback. The check walks every class that derives
from ``Exception`` in the package and that is public (no leading underscore) — private ones are
control flow inside one module and never leave it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import mltrust
from mltrust.errors import Error


def _public_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(mltrust.__path__, "mltrust."):
        if info.name.endswith(".__main__"):  # importing it runs the command line
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Exception)
                and obj.__module__ == info.name
                and not name.startswith("_")
            ):
                found[f"{info.name}.{name}"] = obj
    return found


def test_every_public_exception_is_under_the_root() -> None:
    found = _public_exceptions()
    assert {"mltrust.errors.AuthError", "mltrust.serve._codec.ProtocolError"} <= set(found)
    assert sorted(n for n, cls in found.items() if not issubclass(cls, Error)) == []


def test_value_errors_stay_value_errors() -> None:
    """Protocol, validation and dependency-file errors are still ``ValueError``s for callers that
    caught them that way before they joined the root."""
    from mltrust.evidence._depsources import DependencyFileError
    from mltrust.serve._codec import ProtocolError
    from mltrust.serve._validation import ValidationFailed

    for cls in (DependencyFileError, ProtocolError, ValidationFailed):
        assert issubclass(cls, ValueError) and issubclass(cls, Error)
    assert ValidationFailed("out of range", "x < 0").detail == "x < 0"
