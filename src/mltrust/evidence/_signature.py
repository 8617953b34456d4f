"""Collector: verify the subject's signature with :func:`mltrust.attest.verify`."""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path
from typing import Any

from mltrust.errors import Error, VerificationError
from mltrust.evidence.interface import CollectContext, Collected, Collector

__all__ = ["SignatureCollector"]

log = logging.getLogger("mltrust.evidence")

PREDICATE_TYPE = "https://mltrust.dev/signature-verification/v1"


def _attest() -> Any | None:
    try:
        return importlib.import_module("mltrust.attest")
    except ModuleNotFoundError as exc:
        if exc.name not in ("mltrust.attest",):
            raise
        return None


def _signature_path(attest: Any | None, path: Path) -> Path:
    if attest is not None and hasattr(attest, "default_signature_path"):
        return Path(attest.default_signature_path(path))
    return path / "model.sig" if path.is_dir() else path.with_name(path.name + ".sig")


class SignatureCollector(Collector):
    name = "signature"
    predicate_type = PREDICATE_TYPE

    def absent(self) -> dict[str, Any]:
        return {
            "present": False,
            "status": "absent",
            "verified": False,
            "key_fingerprint": "",
            "signed_at": "",
            "root_digest": "",
            "differences": [],
            "message": "not checked",
        }

    def collect(self, ctx: CollectContext) -> Collected:
        started = time.perf_counter()
        attest = _attest()
        sig = _signature_path(attest, ctx.path)
        section = self.absent()
        section["present"] = sig.is_file()
        if attest is None or not hasattr(attest, "verify"):
            section["status"] = "unavailable"
            section["message"] = "signature verification (mltrust.attest) is not installed"
        elif not sig.is_file():
            section["status"] = "absent"
            section["message"] = f"no signature at {sig.name}"
        elif not ctx.keys:
            section["status"] = "no-key"
            section["message"] = "a signature exists but no trusted key was given (--key)"
        else:
            section.update(self._verify(attest, ctx.path, sig, ctx.keys))
        predicate = {k: v for k, v in section.items() if k != "present"}
        predicate["signature"] = sig.name
        return Collected(
            self.name, self.predicate_type, predicate, section, (), time.perf_counter() - started
        )

    @staticmethod
    def _verify(attest: Any, path: Path, sig: Path, keys: tuple[Path, ...]) -> dict[str, Any]:
        differences: list[str] = []
        messages: list[str] = []
        for key in keys:
            try:
                verified = attest.verify(path, trust=attest.PinnedKeys(key), signature=sig)
            except VerificationError as exc:
                differences.extend(exc.differences)
                messages.append(f"{key.name}: {exc}")
                continue
            except Error as exc:
                messages.append(f"{key.name}: {exc}")
                continue
            signed_at = getattr(verified, "signed_at", "")
            return {
                "status": "pass",
                "verified": True,
                "key_fingerprint": str(getattr(verified, "key_fingerprint", "") or ""),
                "signed_at": str(
                    signed_at.isoformat() if hasattr(signed_at, "isoformat") else signed_at or ""
                ),
                "root_digest": str(getattr(verified, "root_digest", "") or ""),
                "differences": [],
                "message": f"verified with {key.name}",
            }
        return {
            "status": "fail",
            "verified": False,
            "differences": sorted(set(differences)),
            "message": "; ".join(messages) or "no trusted key verified the signature",
        }
