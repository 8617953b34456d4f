"""Compatibility: the token buckets, quotas and ``client_group`` live in :mod:`mltrust.state`
(one implementation, in-process and in Redis)."""

from __future__ import annotations

from mltrust.state._base import client_group
from mltrust.state._local import Quota, TokenBuckets

__all__ = ["Quota", "TokenBuckets", "client_group"]
