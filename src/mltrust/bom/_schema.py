"""Validation of BOMs against the official CycloneDX 1.6 JSON schema, offline.

The schema and the two documents it references (SPDX license IDs, JSF signatures) ship inside
cyclonedx-python-lib; references are resolved locally with ``referencing``, never fetched.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from mltrust.errors import ConfigError, InputError

__all__ = ["schema_folder", "validate_bom"]

_FILES = {
    "bom-1.6.SNAPSHOT.schema.json": "http://cyclonedx.org/schema/bom-1.6.schema.json",
    "spdx.SNAPSHOT.schema.json": "http://cyclonedx.org/schema/spdx.schema.json",
    "jsf-0.82.SNAPSHOT.schema.json": "http://cyclonedx.org/schema/jsf-0.82.schema.json",
}


def schema_folder() -> Path:
    """The folder of JSON schemas shipped with cyclonedx-python-lib."""
    try:
        import cyclonedx.schema._res as res
    except ImportError:
        raise ConfigError(
            "cyclonedx-python-lib is not installed", hint="pip install 'mltrust[policy]'"
        ) from None
    return Path(next(iter(res.__path__)))


@functools.cache
def _validator() -> Any:
    try:
        from jsonschema import Draft7Validator  # type: ignore[import-untyped]
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT7
    except ImportError:
        raise ConfigError(
            "validating BOMs needs jsonschema", hint="pip install 'mltrust[policy]'"
        ) from None

    folder = schema_folder()
    resources = []
    for fname, uri in _FILES.items():
        contents = json.loads((folder / fname).read_text(encoding="utf-8"))
        resource = Resource.from_contents(contents, default_specification=DRAFT7)
        resources.append((uri, resource))
        # The bom schema refers to its neighbours by relative file name.
        resources.append((f"http://cyclonedx.org/schema/{fname}", resource))
    registry: Registry[Any] = Registry().with_resources(resources)
    root = json.loads((folder / "bom-1.6.SNAPSHOT.schema.json").read_text(encoding="utf-8"))
    return Draft7Validator(root, registry=registry)


def validate_bom(bom: Any) -> None:
    """Raise :class:`InputError` listing the schema violations of a CycloneDX 1.6 document."""
    errors = sorted(_validator().iter_errors(bom), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:20]
        ]
        raise InputError("BOM does not validate against CycloneDX 1.6:\n" + "\n".join(lines))
