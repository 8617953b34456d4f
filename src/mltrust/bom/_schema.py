"""Validation of BOMs against the official CycloneDX 1.6 JSON schema, offline.

The schema and the two documents it references (SPDX license IDs, JSF signatures) ship inside
cyclonedx-python-lib; references are resolved locally with ``referencing``, never fetched.

``uniqueItems`` is checked in linear time: jsonschema compares unhashable items pairwise
(quadratic: 2,000 model files took minutes), so the keyword is replaced by a check on the
items' canonical JSON (numbers normalised so that ``1`` and ``1.0`` stay equal, ``true`` and
``1`` stay different, as JSON Schema says). Everything else is the stock Draft 7 validator.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
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


def _canonical(value: Any) -> Any:
    """A hashable form of a JSON value under JSON Schema equality."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", float(value) if value != int(value) else int(value))
    if isinstance(value, (list, tuple)):
        return ("array", tuple(_canonical(v) for v in value))
    if isinstance(value, Mapping):
        return ("object", frozenset((str(k), _canonical(v)) for k, v in value.items()))
    return ("other", repr(value))


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Any:
    from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]

    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for item in instance:
        key = _canonical(item)
        if key in seen:
            yield ValidationError(f"{instance!r:.200} has non-unique elements")
            return
        seen.add(key)


@functools.cache
def _validator() -> Any:
    try:
        from jsonschema import Draft7Validator  # type: ignore[import-untyped]
        from jsonschema.validators import extend  # type: ignore[import-untyped]
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
    linear = extend(Draft7Validator, validators={"uniqueItems": _unique_items})
    return linear(root, registry=registry)


def validate_bom(bom: Any) -> None:
    """Raise :class:`InputError` listing the schema violations of a CycloneDX 1.6 document."""
    errors = sorted(_validator().iter_errors(bom), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:20]
        ]
        raise InputError("BOM does not validate against CycloneDX 1.6:\n" + "\n".join(lines))
