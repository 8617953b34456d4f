"""Read every array of an NPZ file without pickle, closing the file on every path.

``numpy.load(path)`` opens the file itself and, when the bytes start like a zip but are not one,
raises without closing it (the handle is left to the garbage collector). We open the file here and
hand numpy the open file, so the ``with`` block owns it whatever numpy raises.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from mltrust.errors import InputError


def read_npz_arrays(path: str | Path, what: str = "NPZ file") -> dict[str, Any]:
    """All arrays of ``path`` by name; :class:`InputError` naming ``what`` when unreadable."""
    import numpy as np

    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an NPZ archive")
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable {what} ({exc})") from None
