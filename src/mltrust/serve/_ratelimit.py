"""Compatibility: the in-process token buckets and quotas live in :mod:`mltrust.state`."""

from __future__ import annotations

from mltrust.state._local import Quota, TokenBuckets

__all__ = ["Quota", "TokenBuckets"]
