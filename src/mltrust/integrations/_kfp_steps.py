"""What the Kubeflow components run, without the kfp SDK (importable and testable anywhere).

The component functions in :mod:`mltrust.integrations.kfp` are shipped to the cluster by their
source; they import these helpers from the mltrust installed in the container.
"""

from __future__ import annotations

import subprocess
import sys

__all__ = ["UNSET", "verify_command", "verify_verdict"]

#: A version input left at this value is not given (KFP parameters cannot be None).
UNSET = -1


def verify_command(
    model: str,
    public_key: str,
    signature: str,
    name: str,
    version: int = UNSET,
    min_version: int = UNSET,
    *,
    json_output: bool = False,
) -> list[str]:
    """``mltrust verify`` bound to the model the pipeline expects.

    A signature proves only that the key signed *some* model: the command always carries
    ``--name`` and exactly one of ``--version``/``--min-version``, so another model signed by
    the pipeline key, or an older release, fails. Raises ValueError when the binding is missing.
    """
    if not name:
        raise ValueError("the verify step needs the expected model name")
    given = [v for v in (version, min_version) if v != UNSET]
    if len(given) != 1 or given[0] < 0:
        raise ValueError("the verify step needs exactly one of version or min_version (>= 0)")
    args = ["mltrust", "verify", model, "--key", public_key, "--signature", signature,
            "--name", name, "--no-progress"]  # fmt: skip
    args += ["--version", str(version)] if version != UNSET else ["--min-version", str(min_version)]
    if json_output:
        args += ["--format", "json"]
    return args


def verify_verdict(
    model: str,
    public_key: str,
    signature: str,
    name: str,
    version: int = UNSET,
    min_version: int = UNSET,
) -> str:
    """Run the bound verification; ``pass``, ``fail`` or ``error`` (a missing binding)."""
    try:
        args = verify_command(model, public_key, signature, name, version, min_version)
    except ValueError as exc:
        print(f"mltrust verify step: {exc}", file=sys.stderr)
        return "error"
    proc = subprocess.run(args, check=False)
    return {0: "pass", 1: "fail"}.get(proc.returncode, "error")
