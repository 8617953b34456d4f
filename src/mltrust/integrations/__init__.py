"""Glue to the tools ML teams already run: project scaffolding, CI and registries.

Public: :func:`scaffold` (``mltrust init``).
"""

from mltrust.integrations._scaffold import ScaffoldResult, scaffold

__all__ = ["ScaffoldResult", "scaffold"]
