"""From what an object names (a path, a ``file://`` or ``pvc://`` URI) to a folder under the
storage root, refusing every way out of it.

* ``mltrust.dev/model-path: team/model`` -> ``ROOT/team/model``.
* ``file:///team/model`` -> ``ROOT/team/model`` (the path is read relative to the root: the
  webhook sees the cluster's model storage mounted at ``--storage-root``).
* An absolute path (annotation or ``file://``) that already lies under the root, as written
  or after resolving the root's links, is taken as it is: ``/models/team/model`` with
  ``--storage-root /models`` is ``ROOT/team/model``, not ``ROOT/models/team/model``. Either
  reading stays inside the root and is verified, so the choice gives a writer nothing.
* ``pvc://CLAIM/team/model`` -> ``ROOT/CLAIM/team/model`` (mount each claim the webhook
  checks at ``ROOT/CLAIM``).
* Every other scheme (``s3://``, ``gs://``, ``https://``, ``hf://``, ``oci://``...) is refused:
  the webhook does not download models, and a location it cannot check is not admitted.

Refused: an empty path, ``..`` anywhere, NUL or other
control characters, a percent-escape or a query/fragment in a URI, a path whose real location
(after resolving every symbolic link) is outside the root, a final component that is a
symbolic link, and a path that does not exist.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from mltrust.admission._kinds import ModelRef
from mltrust.errors import InputError

__all__ = ["locate"]


def _relative(text: str, where: str, bases: tuple[str, ...]) -> PurePosixPath:
    if not text or any(ord(c) < 0x20 or c == "\x7f" for c in text):
        raise InputError(f"{where}: empty path or control character")
    if "\\" in text:
        raise InputError(f"{where}: backslash in path {text!r}")
    path = PurePosixPath(text)
    if ".." in path.parts:
        raise InputError(f"{where}: '..' in path {text!r}")
    if path.is_absolute():
        for base in bases:
            if path.is_relative_to(base):
                path = path.relative_to(base)
                break
        else:
            path = path.relative_to("/")
    parts = [p for p in path.parts if p != "."]
    if not parts:
        raise InputError(f"{where}: path {text!r} names the storage root itself")
    return PurePosixPath(*parts)


def _from_uri(uri: str, where: str, bases: tuple[str, ...]) -> PurePosixPath:
    if any(c in uri for c in "%?#"):
        raise InputError(f"{where}: escapes, queries and fragments are not accepted: {uri!r}")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InputError(f"{where}: file URI with a host: {uri!r}")
        return _relative(parts.path, where, bases)
    if scheme == "pvc":
        if not parts.netloc:
            raise InputError(f"{where}: pvc URI without a claim name: {uri!r}")
        return _relative(f"{parts.netloc}/{parts.path.lstrip('/')}".rstrip("/"), where, ())
    shown = f"{scheme}://" if scheme else "a plain path"
    raise InputError(
        f"{where}: {shown} locations are not checked by mltrust; denied "
        "(use file:// or pvc:// storage the webhook can read)"
    )


def locate(ref: ModelRef, root: Path) -> Path:
    """The model folder or file ``ref`` names, inside ``root``; :class:`InputError` if not."""
    real_root = os.path.realpath(root)
    bases = (real_root, os.path.normpath(os.path.abspath(root)))
    if ref.form == "path":
        rel = _relative(ref.value, ref.where, bases)
    else:
        rel = _from_uri(ref.value, ref.where, bases)
    candidate = Path(real_root, *rel.parts)
    if candidate.is_symlink():
        raise InputError(f"{ref.where}: {rel} is a symbolic link; refused")
    real = os.path.realpath(candidate)
    if os.path.commonpath([real_root, real]) != real_root:
        raise InputError(f"{ref.where}: {rel} leads outside the storage root; refused")
    if not os.path.exists(real):
        raise InputError(f"{ref.where}: no model at {rel} under the storage root")
    return Path(real)
