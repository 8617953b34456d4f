"""Windowed (streaming) drift: fixed-size windows of a CSV/Parquet stream or the audit log.

CSV files are read in chunks (``pandas.read_csv(chunksize=window)``), Parquet files by record
batches (needs pyarrow), so memory stays at one window whatever the file size.

The serving gateway's audit log (SQLite, table ``audit``, one canonical-JSON ``entry`` per
request) records the raw request tensors only when the gateway runs with ``log_inputs``
enabled (``entry["inputs"] = {tensor name: nested list}``); otherwise it holds only a digest of
the inputs, and drift cannot be computed from it — :func:`iter_audit_windows` then raises
:class:`~mltrust.errors.InputError` saying so. Only single-tensor, 2-D numeric inputs are used.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mltrust.errors import ConfigError, InputError
from mltrust.monitor._drift import DriftReport, detect_drift

__all__ = ["WindowDrift", "iter_audit_windows", "iter_table_windows", "stream_drift"]


@dataclass(frozen=True, slots=True)
class WindowDrift:
    index: int
    first_row: int
    rows: int
    report: DriftReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.index,
            "first_row": self.first_row,
            "rows": self.rows,
            **self.report.to_dict(),
        }


def iter_table_windows(
    path: str | Path, window: int, *, columns: Sequence[str] | None = None
) -> Iterator[Any]:
    """DataFrames of ``window`` rows (the last may be shorter) from a CSV or Parquet file."""
    import pandas as pd

    if window < 2:
        raise ConfigError("window must be at least 2 rows")
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"stream file {str(p)!r} not found")
    if p.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq  # type: ignore[import-not-found,import-untyped,unused-ignore]
        except ImportError:
            raise ConfigError(
                f"{p}: reading Parquet needs pyarrow", hint="pip install pyarrow"
            ) from None
        for batch in pq.ParquetFile(p).iter_batches(batch_size=window, columns=columns):
            yield batch.to_pandas()
        return
    try:
        reader = pd.read_csv(p, chunksize=window, usecols=list(columns) if columns else None)
        yield from reader
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read stream ({exc})") from None


def _rows_from_entry(entry: dict[str, Any]) -> np.ndarray | None:
    inputs = entry.get("inputs")
    if not isinstance(inputs, dict) or len(inputs) != 1:
        return None
    try:
        arr = np.asarray(next(iter(inputs.values())), dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or not np.all(np.isfinite(arr)):
        return None
    return arr


def iter_audit_windows(
    db_path: str | Path, window: int, *, model: str | None = None, table: str = "audit"
) -> Iterator[np.ndarray]:
    """Windows of ``window`` input rows recorded in the gateway's audit log (read-only)."""
    if window < 2:
        raise ConfigError("window must be at least 2 rows")
    if not table.isidentifier():
        raise ConfigError(f"bad table name {table!r}")
    p = Path(db_path)
    if not p.is_file():
        raise ConfigError(f"audit log {str(p)!r} not found")
    try:
        db = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"{p}: cannot open audit log ({exc})") from None
    buf: list[np.ndarray] = []
    have = 0
    seen_inputs = False
    width: int | None = None
    try:
        cursor = db.execute(f"SELECT entry FROM {table} ORDER BY seq")  # noqa: S608 - checked
        for (text,) in cursor:
            try:
                entry = json.loads(text)
            except (TypeError, ValueError):
                continue
            if not isinstance(entry, dict):
                continue
            if model is not None and entry.get("model") != model:
                continue
            rows = _rows_from_entry(entry)
            if rows is None:
                continue
            if width is None:
                width = rows.shape[1]
            if rows.shape[1] != width:
                continue
            seen_inputs = True
            buf.append(rows)
            have += rows.shape[0]
            while have >= window:
                block = np.vstack(buf)
                yield block[:window]
                rest = block[window:]
                buf = [rest] if rest.size else []
                have = rest.shape[0]
    except sqlite3.Error as exc:
        raise InputError(f"{p}: cannot read audit log ({exc})") from None
    finally:
        db.close()
    if not seen_inputs:
        raise InputError(
            f"{p}: the audit log records no raw inputs",
            hint="run the gateway with log_inputs enabled, or monitor a CSV stream instead",
        )
    if have >= 2:
        yield np.vstack(buf)


def stream_drift(reference: Any, windows: Iterator[Any], **options: Any) -> Iterator[WindowDrift]:
    """Run :func:`detect_drift` of each window against ``reference``."""
    start = 0
    for i, win in enumerate(windows):
        n = len(win)
        if n < 2:
            break
        if isinstance(win, np.ndarray) and hasattr(reference, "columns"):
            if win.shape[1] != len(reference.columns):
                raise InputError("stream rows do not match the reference's columns")
            names = [str(c) for c in reference.columns]
            report = detect_drift(reference.to_numpy(dtype=np.float64), win, names=names, **options)
        else:
            report = detect_drift(reference, win, **options)
        yield WindowDrift(i, start, n, report)
        start += n
