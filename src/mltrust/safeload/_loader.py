"""Scan, then deserialise the same bytes with an allowlist-enforcing unpickler."""

from __future__ import annotations

import io
import lzma
import os
import pickle
import types
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any

from mltrust.config import ScanConfig
from mltrust.errors import ConfigError, InputError, LimitExceeded, UnsafeModelError
from mltrust.findings import Finding, Severity
from mltrust.scan._pickle._allowlist import Check
from mltrust.scan._pickle._policy import canonical, judge_global

__all__ = ["RestrictedUnpickler", "load", "load_joblib", "load_torch"]

Source = str | os.PathLike[str] | bytes | bytearray | memoryview

_ZIP_MAGIC = b"PK\x03\x04"
#: The first pickle of a legacy (non-zip) ``torch.save`` file is this integer.
_LEGACY_TORCH_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
#: The magic pickle is a few dozen bytes in any protocol; a longer first pickle is not it.
_MAGIC_PICKLE_WINDOW = 256


class _NoGlobals(pickle.Unpickler):
    """Reads a pickle of constants only: any import or persistent id raises."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError("globals are not read here")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not read here")


def _is_legacy_torch(data: bytes) -> bool:
    """Whether the first pickle is torch's legacy magic number, read the way ``torch.load``
    reads it (``pickle.load``), so every integer encoding (LONG1, protocol 0 text, a FRAME)
    is recognised."""
    try:
        first = _NoGlobals(io.BytesIO(data[:_MAGIC_PICKLE_WINDOW])).load()
    except Exception:  # noqa: BLE001 - not a constant pickle: not a legacy torch file
        return False
    return type(first) is int and first == _LEGACY_TORCH_MAGIC_NUMBER


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose ``find_class`` admits only allowlisted targets.

    The allowlist is the scanner's (:func:`mltrust.scan._pickle.judge_global`) plus
    ``config.allow_globals``. Anything else raises :class:`UnsafeModelError` before it is
    imported. Persistent IDs are refused (plain pickles have none).
    """

    def __init__(self, file: IO[bytes], *, config: ScanConfig | None = None) -> None:
        super().__init__(file)
        self._config = config or ScanConfig()

    def find_class(self, module: str, name: str) -> Any:
        return _checked_find_class(super().find_class, module, name, self._config)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeModelError("refused to load: the pickle uses persistent IDs")


def _checked_find_class(
    base: Callable[[str, str], Any], module: str, name: str, config: ScanConfig
) -> Any:
    if name == "getattr" and module in ("builtins", "__builtin__"):
        return _guarded_getattr(config)
    verdict = judge_global(module, name, config)
    if not verdict.allowed:
        raise UnsafeModelError(f"refused to import {module}.{name}: {verdict.reason}")
    entry = verdict.entry
    if entry is not None and entry.check is Check.EXTERNAL_FILE:
        raise UnsafeModelError(
            f"refused to import {module}.{name}: it loads an array from another file named in "
            "the pickle (legacy joblib); re-save the model with a current joblib"
        )
    if canonical(module, name) == ("pyarrow.lib", "_restore_array"):
        return _validated_arrow_restore(base(module, name))
    if entry is not None and entry.check is Check.NESTED_BYTES:
        # The nested deserialiser runs with this same allowlist, not with the library's
        # unrestricted loader.
        if canonical(module, name) == ("torch.storage", "_load_from_bytes"):
            return _nested_torch_loader(config)
        raise UnsafeModelError(f"refused to import {module}.{name}: a nested deserialiser")
    return base(module, name)


def _validated_arrow_restore(restore: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """pyarrow rebuilds arrays from pickled buffers without checking them; validate fully so
    that a crafted offset buffer is an error now instead of an out-of-bounds read later."""

    def restore_array(data: Any) -> Any:
        array = restore(data)
        try:
            array.validate(full=True)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid and friends
            raise UnsafeModelError(f"refused to load: invalid pyarrow array data: {exc}") from None
        return array

    return restore_array


def _nested_torch_loader(config: ScanConfig) -> Callable[[bytes], Any]:
    """``torch.storage._load_from_bytes`` with the restricted unpickler (same result)."""

    def load_from_bytes(b: bytes) -> Any:
        import torch

        if type(b) is not bytes:
            raise UnsafeModelError("refused to load: nested torch bytes are not bytes")
        # mltrust: ignore[MLT-CODE-002] pickle_module is the allowlist unpickler, after a scan
        return torch.load(
            io.BytesIO(b), weights_only=False, pickle_module=_torch_pickle_module(config)
        )

    return load_from_bytes


def _guarded_getattr(config: ScanConfig) -> Callable[..., Any]:
    """``getattr`` as the unpickler may use it: only ``getattr(AllowlistedClass, "name")`` where
    ``module:Class.name`` is itself allowlisted — the same rule the scanner applies (pickle
    reduces methods such as ``zoneinfo.ZoneInfo._unpickle`` this way)."""

    def guarded(obj: Any, attr: Any, *default: Any) -> Any:
        if default or type(attr) is not str or not isinstance(obj, type):
            raise UnsafeModelError("refused to load: getattr on a non-class or computed name")
        module = getattr(obj, "__module__", "")
        qualname = f"{obj.__qualname__}.{attr}"
        owner = judge_global(module, obj.__qualname__, config)
        reached = judge_global(module, qualname, config)
        if not (owner.allowed and reached.allowed):
            raise UnsafeModelError(f"refused to load: getattr reaches {module}.{qualname}")
        return getattr(obj, attr)

    return guarded


def _read(source: Source, config: ScanConfig) -> tuple[bytes, str]:
    limit = config.limits.max_file_bytes
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = "<bytes>"
    elif isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        try:
            with open(name, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > limit:
                    raise LimitExceeded(f"{name} is larger than max_file_bytes={limit}")
                data = fh.read(size + 1)
        except OSError as exc:
            raise ConfigError(f"cannot read {name}: {exc.strerror or exc}") from None
    else:
        raise ConfigError(f"cannot load from a {type(source).__name__}; pass a path or bytes")
    if len(data) > limit:
        raise LimitExceeded(f"{name} is larger than max_file_bytes={limit}")
    return data, name


def _scan_or_raise(data: bytes, name: str, fail_on: Severity, config: ScanConfig) -> None:
    from mltrust.scan._engine import scan_bytes

    result = scan_bytes(data, os.path.basename(name) or "<bytes>", config)
    bad: tuple[Finding, ...] = tuple(f for f in result.findings if f.severity >= fail_on)
    if bad:
        worst = max(bad, key=lambda f: f.severity.rank)
        raise UnsafeModelError(
            f"refused to load {name}: {len(bad)} finding(s) at or above {fail_on.value}; "
            f"worst: [{worst.rule_id}] {worst.message}",
            findings=bad,
        )
    if not result.formats:
        raise UnsafeModelError(
            f"refused to load {name}: its format was not recognised, so it was not scanned",
            findings=tuple(result.findings),
        )


def _decompress(data: bytes, config: ScanConfig) -> bytes:
    """Undo joblib's whole-file compression with the scanner's own decoders (the same
    detection by content, so what is loaded is what was scanned)."""
    from mltrust.scan.formats.compressed import new_decoder, sniff_compression

    limit = config.limits.max_member_bytes
    kind = sniff_compression(data[:65536])
    if kind is None:
        return data
    try:
        d: Any = new_decoder(kind)
    except LookupError:
        raise ConfigError(
            f"loading {kind}-compressed joblib data needs the {kind} package"
        ) from None
    try:
        out = d.decompress(data, limit + 1)
    except (zlib.error, OSError, lzma.LZMAError, EOFError, RuntimeError, ValueError) as exc:
        raise InputError(f"compressed joblib data is corrupt: {exc}") from None
    if len(out) > limit:
        raise LimitExceeded(f"decompressed model exceeds max_member_bytes={limit}")
    return bytes(out)


def _kind(data: bytes) -> str:
    if data[:6] == b"\x93NUMPY":
        return "numpy"
    if data[:4] == _ZIP_MAGIC:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return "torch"
        if names and all(n.endswith(".npy") for n in names):
            return "numpy"
        return "torch"
    if _is_legacy_torch(data):
        return "torch"
    from mltrust.scan.formats.compressed import sniff_compression

    # Whole-file compression as the scanner recognises it (one detector: it also knows lz4,
    # which joblib finds by content whatever the file's name), or joblib's old "ZF" zlib file.
    if sniff_compression(data[:65536]) is not None or data[:2] == b"ZF":
        return "joblib"
    if b"NumpyArrayWrapper" in data or b"NDArrayWrapper" in data:
        return "joblib"
    return "pickle"


def load(
    source: Source,
    *,
    fail_on: Severity = Severity.MEDIUM,
    config: ScanConfig | None = None,
) -> Any:
    """Read ``source`` once, scan it, and deserialise the same bytes safely.

    Detects PyTorch checkpoints (zip or legacy) and joblib dumps (plain or compressed) by
    content and dispatches to :func:`load_torch` / :func:`load_joblib`; anything else is loaded
    as a plain pickle with :class:`RestrictedUnpickler`. Raises :class:`UnsafeModelError` when
    the scan finds anything at or above ``fail_on`` or the unpickler meets a non-allowlisted
    import.
    """
    config = config or ScanConfig()
    data, name = _read(source, config)
    kind = _kind(data)
    if kind == "torch":
        return _load_torch_bytes(data, name, fail_on=fail_on, config=config, map_location="cpu")
    if kind == "joblib":
        return _load_joblib_bytes(data, name, fail_on=fail_on, config=config)
    if kind == "numpy":
        return _load_numpy_bytes(data, name, fail_on=fail_on, config=config)
    _scan_or_raise(data, name, fail_on, config)
    try:
        return RestrictedUnpickler(io.BytesIO(data), config=config).load()
    except UnsafeModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the real loader is an input error
        raise InputError(f"cannot unpickle {name}: {type(exc).__name__}: {exc}") from None


def _load_numpy_bytes(data: bytes, name: str, *, fail_on: Severity, config: ScanConfig) -> Any:
    """NumPy ``.npy``/``.npz``: scanned, then loaded with ``allow_pickle=False``."""
    import numpy as np

    _scan_or_raise(data, name, fail_on, config)
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return {key: loaded[key] for key in loaded.files}
        return loaded
    except ValueError as exc:
        raise UnsafeModelError(f"refused to load {name}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any failure of the real loader is an input error
        raise InputError(f"cannot load {name}: {type(exc).__name__}: {exc}") from None


def load_joblib(
    source: Source,
    *,
    fail_on: Severity = Severity.MEDIUM,
    config: ScanConfig | None = None,
) -> Any:
    """Like :func:`load` for a joblib dump (arrays, whole-file compression) from bytes in memory."""
    config = config or ScanConfig()
    data, name = _read(source, config)
    return _load_joblib_bytes(data, name, fail_on=fail_on, config=config)


def _load_joblib_bytes(data: bytes, name: str, *, fail_on: Severity, config: ScanConfig) -> Any:
    try:
        from joblib.numpy_pickle import NumpyUnpickler
    except ImportError:
        raise ConfigError("loading joblib files needs joblib: pip install joblib") from None
    _scan_or_raise(data, name, fail_on, config)
    raw = _decompress(data, config)
    if raw[:2] == b"ZF":
        raise InputError(f"{name} is a legacy (joblib < 0.10) file, not supported by load")

    class _Restricted(NumpyUnpickler):  # type: ignore[misc]
        def find_class(self, module: str, qualname: str) -> Any:
            return _checked_find_class(super().find_class, module, qualname, config)

        def persistent_load(self, pid: Any) -> Any:
            raise UnsafeModelError("refused to load: the pickle uses persistent IDs")

    unpickler = _Restricted("", io.BytesIO(raw), True, mmap_mode=None)
    try:
        obj = unpickler.load()
    except UnsafeModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the real loader is an input error
        raise InputError(f"cannot load joblib data {name}: {type(exc).__name__}: {exc}") from None
    if getattr(unpickler, "compat_mode", False):
        raise InputError(f"{name} uses legacy joblib array files, not supported by load")
    return obj


def load_torch(
    source: Source,
    *,
    map_location: Any = "cpu",
    fail_on: Severity = Severity.MEDIUM,
    config: ScanConfig | None = None,
) -> Any:
    """Scan a PyTorch checkpoint, then ``torch.load`` the same bytes with ``weights_only=True``."""
    config = config or ScanConfig()
    data, name = _read(source, config)
    return _load_torch_bytes(data, name, fail_on=fail_on, config=config, map_location=map_location)


def _torch_pickle_module(config: ScanConfig) -> Any:
    """A ``pickle_module`` for ``torch.load`` whose unpickler is :class:`RestrictedUnpickler`:
    torch's own reader (zip or legacy, persistent ids, storages) with the scanner's allowlist
    deciding every import, so whole-module checkpoints load exactly as ``torch.load`` would load
    them, and nothing outside the allowlist is imported."""

    class _TorchUnpickler(pickle.Unpickler):
        # No persistent_load method: torch assigns its own to the instance (storages), and a
        # method here would shadow it; without one a persistent id raises UnpicklingError.
        def __init__(self, file: IO[bytes], **kwargs: Any) -> None:
            # torch passes pickle_load_args (encoding for Python 2 checkpoints) through.
            options = {k: v for k, v in kwargs.items() if k in ("encoding", "errors")}
            super().__init__(file, **options)

        def find_class(self, module: str, name: str) -> Any:
            return _checked_find_class(super().find_class, module, name, config)

    def _load_one(file: IO[bytes], **kwargs: Any) -> Any:
        return _TorchUnpickler(file, **kwargs).load()

    return types.SimpleNamespace(
        __name__="mltrust.safeload.restricted_pickle",
        Unpickler=_TorchUnpickler,
        load=_load_one,
        UnpicklingError=pickle.UnpicklingError,
    )


def _is_torchscript(data: bytes) -> bool:
    if data[:4] != _ZIP_MAGIC:
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in names)


def _load_torch_bytes(
    data: bytes, name: str, *, fail_on: Severity, config: ScanConfig, map_location: Any
) -> Any:
    try:
        import torch
    except ImportError:
        raise ConfigError("loading PyTorch checkpoints needs torch: pip install torch") from None
    _scan_or_raise(data, name, fail_on, config)
    try:
        if _is_torchscript(data):
            # torch.load would hand a TorchScript archive to torch.jit.load (which runs its
            # code); with weights_only it refuses instead.
            return torch.load(io.BytesIO(data), weights_only=True, map_location=map_location)
        # mltrust: ignore[MLT-CODE-002] pickle_module is the allowlist unpickler, after a scan
        return torch.load(
            io.BytesIO(data),
            weights_only=False,
            pickle_module=_torch_pickle_module(config),
            map_location=map_location,
        )
    except UnsafeModelError:
        raise
    except pickle.UnpicklingError as exc:
        raise UnsafeModelError(f"torch refused to load {name}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any failure of the real loader is an input error
        raise InputError(f"cannot load {name}: {type(exc).__name__}: {exc}") from None
