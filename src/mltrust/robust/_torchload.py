"""PyTorch models for the robustness commands: TorchScript, ``torch.export`` programs, and
state dicts with a named architecture — every one scanned before it is deserialised.

The file is read once; those bytes are scanned by mltrust's scanner (the safe loader's
``_scan_or_raise``: anything at ``medium`` or above, or an unrecognised format, refuses the
load), and the *same bytes* are then handed to the matching loader:

* **TorchScript** (``torch.jit.save``; a zip with ``<top>/code/`` members):
  ``torch.jit.load`` — TorchScript is interpreted by torch, not by Python's ``pickle``, and the
  scanner checks its ``code/`` sources for calls into Python internals, the OS or processes;
* **torch.export** programs (``torch.export.save``; a zip with ``<top>/archive_format`` and
  ``<top>/models/``): ``torch.export.load(...).module()`` — export it with a dynamic batch
  dimension (``dynamic_shapes``), since the attacks feed batches of any size;
* anything else goes through :func:`mltrust.safeload.load` (a plain ``state_dict`` loads with
  ``weights_only=True``). A state dict is only weights: ``arch="package.module:Class"`` names
  the architecture, which is imported from the *environment* (never from the file), built with
  ``arch_kwargs`` and given the weights with ``load_state_dict(strict=True)``. A checkpoint dict
  holding the weights under ``state_dict`` / ``model_state_dict`` / ``model`` works too.

Not checked: what the named architecture's code does (it is the user's own code, chosen on
the command line), and TorchScript operators that read files by name (``aten::from_file``) are
left to the scanner's code checks.
"""

from __future__ import annotations

import importlib
import io
import sys
import zipfile
from collections.abc import Mapping
from typing import Any

from mltrust.errors import ConfigError, InputError

__all__ = ["load_model", "torch_archive_kind"]

_WEIGHT_KEYS = ("state_dict", "model_state_dict", "model")


def torch_archive_kind(data: bytes) -> str:
    """``torchscript``, ``export`` or ``other`` for the bytes of a model file."""
    if data[:4] != b"PK\x03\x04":
        return "other"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return "other"
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    if len(tops) != 1:
        return "other"
    top = next(iter(tops))
    if f"{top}/archive_format" in names and any(n.startswith(f"{top}/models/") for n in names):
        return "export"
    if any(n.startswith(f"{top}/code/") for n in names) and f"{top}/data.pkl" in names:
        return "torchscript"
    return "other"


def _architecture(arch: str, kwargs: Mapping[str, Any] | None) -> Any:
    module_name, sep, attr = arch.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"--arch takes package.module:Class, not {arch!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"--arch: cannot import {module_name!r} ({exc})") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"--arch: {module_name!r} has no {attr!r}") from None
    if not callable(obj):
        raise ConfigError(f"--arch: {arch!r} is not a class or factory")
    try:
        return obj(**dict(kwargs or {}))
    except TypeError as exc:
        raise ConfigError(f"--arch: cannot build {arch!r}: {exc}") from None


def _weights(obj: Any) -> Mapping[str, Any] | None:
    import torch

    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        for key in _WEIGHT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and _weights(inner) is not None:
                return inner
    return None


def load_model(
    path: str, *, arch: str | None = None, arch_kwargs: Mapping[str, Any] | None = None
) -> Any:
    """Load a model file for attack (see the module docstring); sklearn files pass through."""
    from mltrust import safeload
    from mltrust.config import ScanConfig
    from mltrust.findings import Severity
    from mltrust.safeload._loader import _read, _scan_or_raise

    config = ScanConfig()
    data, name = _read(path, config)
    kind = torch_archive_kind(data)
    if kind != "other":
        try:
            import torch
        except ImportError:
            raise ConfigError(f"{name}: loading PyTorch models needs torch") from None
        _scan_or_raise(data, name, Severity.MEDIUM, config)
        try:
            if kind == "torchscript":
                return torch.jit.load(  # type: ignore[no-untyped-call]
                    io.BytesIO(data), map_location="cpu"
                )
            return torch.export.load(io.BytesIO(data)).module()
        except Exception as exc:  # noqa: BLE001 - any failure of the real loader is an input error
            raise InputError(f"cannot load {name}: {type(exc).__name__}: {exc}") from None
    obj = safeload.load(data)
    if arch is None:
        if _is_state_dict(obj):
            raise ConfigError(
                f"{name} holds only weights (a state dict), no model",
                hint="name its architecture: --arch package.module:Class "
                "(or save the model with torch.jit.save / torch.export.save)",
            )
        return obj
    weights = _weights(obj) if _torch_available() else None
    if weights is None:
        raise InputError(f"{name}: --arch given, but the file holds no state dict of tensors")
    module = _architecture(arch, arch_kwargs)
    try:
        module.load_state_dict(weights, strict=True)
    except (RuntimeError, AttributeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{name} does not fit --arch {arch}: {first}") from None
    module.eval()
    return module


def _torch_available() -> bool:
    """Whether OBJ could hold tensors: only once torch is imported (by the loader that built
    it). Importing torch just to ask cost seconds on every scikit-learn model."""
    return "torch" in sys.modules


def _is_state_dict(obj: Any) -> bool:
    return _torch_available() and _weights(obj) is not None
