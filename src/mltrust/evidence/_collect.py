"""Running the collectors over a subject and assembling the policy's evidence document."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mltrust.errors import Error
from mltrust.evidence._registry import all_collectors
from mltrust.evidence.interface import STATEMENT_TYPE, CollectContext, Collected, Collector
from mltrust.findings import Finding

__all__ = ["EvidenceBundle", "collect_evidence", "subject_of"]

log = logging.getLogger("mltrust.evidence")

#: ``sign(statement) -> DSSE envelope``; supplied by the caller when a signing key is given.
Signer = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def subject_of(ctx: CollectContext) -> dict[str, Any]:
    """The in-toto subject: the root digest of :func:`mltrust.attest.model_manifest` (the same
    digest signatures and attestations name), else the file's SHA-256, or for a folder the
    SHA-256 of ``<sha256>  <relative path>`` lines (sorted), which binds names and contents."""
    files = ctx.files()
    try:
        from mltrust.attest import model_manifest

        manifest = model_manifest(ctx.path)
        return {
            "name": manifest.name or ctx.path.resolve().name,
            "digest": {"sha256": manifest.root_digest},
        }
    except ImportError:
        log.debug("mltrust.attest unavailable; subject digest computed from the file list")
    except Error as exc:
        log.debug("manifest of %s failed (%s); subject digest from the file list", ctx.path, exc)
    if ctx.is_file:
        rel, path = files[0]
        digest = ctx.sha256(rel, path)
        return {"name": ctx.path.name, "digest": {"sha256": digest}}
    h = hashlib.sha256()
    for rel, path in files:
        h.update(f"{ctx.sha256(rel, path)}  {rel}\n".encode())
    return {"name": ctx.path.resolve().name, "digest": {"sha256": h.hexdigest()}}


@dataclass(frozen=True, slots=True)
class EvidenceBundle:
    """Everything collected about one subject."""

    subject: Mapping[str, Any]
    collected: tuple[Collected, ...]
    #: ``{"collector": name, "message": text}`` for each collector that failed.
    errors: tuple[Mapping[str, str], ...]
    document: Mapping[str, Any]
    envelopes: tuple[Mapping[str, Any] | None, ...] = ()
    seconds: float = 0.0

    @property
    def subject_digest(self) -> str:
        return f"sha256:{self.subject['digest']['sha256']}"

    @property
    def findings(self) -> list[Finding]:
        return [f for c in self.collected for f in c.findings]

    def statements(self) -> list[dict[str, Any]]:
        """One in-toto Statement v1 per collector that ran."""
        return [
            {
                "_type": STATEMENT_TYPE,
                "subject": [dict(self.subject)],
                "predicateType": c.predicate_type,
                "predicate": c.predicate,
            }
            for c in self.collected
        ]


def collect_evidence(
    ctx: CollectContext,
    collectors: Sequence[Collector] | None = None,
    *,
    signer: Signer | None = None,
) -> EvidenceBundle:
    """Run every collector that applies to ``ctx`` and build the evidence document.

    A collector that does not apply contributes its ``absent()`` section. One that fails
    unexpectedly contributes its ``absent()`` section plus an entry in ``errors`` (the policy
    turns that into an error verdict: fail closed).
    """
    started = time.perf_counter()
    chosen = tuple(collectors) if collectors is not None else all_collectors()
    collected: list[Collected] = []
    errors: list[dict[str, str]] = []
    document: dict[str, Any] = {}
    for collector in chosen:
        section: Mapping[str, Any]
        try:
            if collector.applies(ctx):
                result = collector.collect(ctx)
                collected.append(result)
                section = result.section
            else:
                section = collector.absent()
        except Error:
            raise
        except Exception as exc:  # fail closed: recorded and turned into an error verdict
            log.exception("collector %s failed", collector.name)
            errors.append({"collector": collector.name, "message": f"{type(exc).__name__}: {exc}"})
            section = collector.absent()
        document[collector.name] = dict(section)
        ctx.shared.setdefault(collector.name, section)
    subject = subject_of(ctx)
    document["subject"] = {
        "name": subject["name"],
        "digest": f"sha256:{subject['digest']['sha256']}",
        "kind": "file" if ctx.is_file else "folder",
        "files": len(ctx.files()),
        "not_evaluated": ctx.not_evaluated(),
        # Content analysis did not examine: what nothing vouches for fails `analysis-complete`;
        # pruned content git says is untracked is recorded (a stricter profile may fail it).
        "unanalysed": ctx.unanalysed(),
        "unanalysed_untracked": ctx.untracked_unanalysed(),
        "git_index": ctx.tracked() is not None,
        # Git metadata present but not trusted as the repository's own (why), or "".
        "git_index_ignored": ctx.git_index_ignored(),
    }
    document["errors"] = errors
    bundle = EvidenceBundle(
        subject, tuple(collected), tuple(errors), document, seconds=time.perf_counter() - started
    )
    if signer is not None:
        envelopes = tuple(signer(s) for s in bundle.statements())
        bundle = EvidenceBundle(
            subject, bundle.collected, bundle.errors, document, envelopes, bundle.seconds
        )
    return bundle
