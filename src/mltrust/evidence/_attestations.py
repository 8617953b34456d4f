"""Evidence that ``check`` did not collect itself: statements stored next to the subject.

Decision (issue 11, item 2): a statement found on disk counts **only** when it is signed by a
key the user passed with ``--key`` and is about this subject (its subject digest is the
subject's root digest or the SHA-256 of one of its files). Signatures are checked by
:func:`mltrust.attest.verify_bundle_bytes` (the one DSSE verifier); this module never judges a
signature itself. Everything else, a bare statement, an envelope with a bad or unknown
signature, a statement about another subject, an unreadable or oversized file, is ignored and
reported with its reason, so a hand-edited JSON cannot change a verdict.

Where statements are looked for: every ``.mltrust/*.json`` and ``.mltrust/attestations/*.json``
in the subject, beside the project root or beside a model inside it (``mltrust attest`` writes
the latter beside the model it signs). Statements are Sigstore bundles (``dsseEnvelope``) or
bare DSSE envelopes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import Error
from mltrust.evidence.interface import CollectContext
from mltrust.files import read_bounded
from mltrust.findings import Finding, Location

__all__ = ["TrustedEvidence", "has_candidates", "is_evidence_file", "trusted_statements"]

_FOLDERS = (".mltrust", ".mltrust/attestations")
_EVIDENCE_FILE = re.compile(r"(?:^|/)\.mltrust/(?:attestations/)?[^/]+$")


@dataclass(frozen=True, slots=True)
class TrustedEvidence:
    """Statements of one predicate type that verified, and every candidate that did not."""

    #: ``(source, statement, key fingerprint)`` for each verified statement.
    verified: tuple[tuple[str, Mapping[str, Any], str], ...] = ()
    #: ``{"source": rel, "reason": text}`` for each ignored candidate.
    ignored: tuple[Mapping[str, str], ...] = field(default_factory=tuple)

    def claimed_only(self) -> TrustedEvidence:
        """These results without the candidates every collector sees alike (unreadable files,
        documents that are not statements): the robustness collector reports those once, and
        each other collector reports only the candidates that claimed its predicate type."""

        def generic(item: Mapping[str, str]) -> bool:
            reason = item.get("reason", "")
            return reason == "not an in-toto statement" or reason.startswith("unreadable:")

        return TrustedEvidence(self.verified, tuple(i for i in self.ignored if not generic(i)))

    def ignored_findings(self) -> tuple[Finding, ...]:
        """One MLT-EVD-001 finding per ignored candidate, with its reason."""
        from mltrust.evidence import _rules

        return tuple(
            Finding.of(
                _rules.EVIDENCE_IGNORED, f"evidence ignored: {i['reason']}", Location(i["source"])
            )
            for i in self.ignored
        )


def is_evidence_file(rel: str) -> bool:
    """Whether ``rel`` is where evidence statements are looked for (each one is read and
    verified, or reported as ignored)."""
    return rel.endswith(".json") and _EVIDENCE_FILE.search(rel) is not None


def _candidates(ctx: CollectContext) -> list[tuple[str, Path]]:
    """Every ``.mltrust/*.json`` and ``.mltrust/attestations/*.json`` in the subject (beside
    the project root or beside any model inside it), from the one walk."""
    if ctx.is_file:
        out: list[tuple[str, Path]] = []
        for folder in _FOLDERS:
            base = ctx.root / folder
            if base.is_dir() and not base.is_symlink():
                out.extend((f"{folder}/{p.name}", p) for p in sorted(base.glob("*.json")))
        return out
    return [(rel, path) for rel, path in ctx.files() if is_evidence_file(rel)]


def has_candidates(ctx: CollectContext) -> bool:
    """Whether any evidence file lies in the subject (to verify or to report)."""
    return bool(_candidates(ctx))


def _claimed_type(doc: Any) -> str | None:
    """The predicate type a document claims, read without trusting it (for reporting)."""
    if not isinstance(doc, Mapping):
        return None
    if "predicateType" in doc:
        value = doc.get("predicateType")
        return value if isinstance(value, str) else None
    envelope = doc.get("dsseEnvelope", doc)
    if isinstance(envelope, Mapping) and isinstance(envelope.get("payload"), str):
        try:
            inner = json.loads(base64.b64decode(envelope["payload"], validate=True))
        except (binascii.Error, ValueError, RecursionError):
            return None
        if isinstance(inner, Mapping) and isinstance(inner.get("predicateType"), str):
            return str(inner["predicateType"])
    return None


def _subject_digests(ctx: CollectContext) -> set[str]:
    digests = {ctx.sha256(rel, p) for rel, p in ctx.files()}
    root = ctx.shared.get("_manifest_root")
    if root is None:
        try:
            from mltrust.attest import model_manifest

            root = model_manifest(ctx.path).root_digest
        except (ImportError, Error):
            root = ""
        ctx.shared["_manifest_root"] = root
    if root:
        digests.add(str(root))
    return digests


def trusted_statements(ctx: CollectContext, predicate_type: str) -> TrustedEvidence:
    """Verified statements of ``predicate_type`` about ``ctx``'s subject, and ignored ones."""
    verified: list[tuple[str, Mapping[str, Any], str]] = []
    ignored: list[Mapping[str, str]] = []
    here: set[str] | None = None
    for rel, path in _candidates(ctx):
        try:
            data = read_bounded(
                path, DEFAULT_LIMITS.max_attestation_file_bytes, what="evidence file"
            )
            doc = json.loads(data)
        except (Error, ValueError, RecursionError) as exc:
            ignored.append({"source": rel, "reason": f"unreadable: {exc}"})
            continue
        claimed = _claimed_type(doc)
        if claimed != predicate_type:
            if claimed is None:
                ignored.append({"source": rel, "reason": "not an in-toto statement"})
            continue
        if not isinstance(doc, Mapping) or "predicateType" in doc:
            ignored.append({"source": rel, "reason": "not signed (a bare statement)"})
            continue
        if not ctx.keys:
            ignored.append({"source": rel, "reason": "no trusted key given (--key)"})
            continue
        bundle = doc if "dsseEnvelope" in doc else _as_bundle(doc)
        try:
            from mltrust.attest import load_public_key, verify_bundle_bytes

            keys = [load_public_key(k) for k in ctx.keys]
            statement, fp = verify_bundle_bytes(json.dumps(bundle).encode(), keys)
        except ImportError:
            ignored.append({"source": rel, "reason": "signature verification is not installed"})
            continue
        except Error as exc:
            ignored.append({"source": rel, "reason": f"not signed by a trusted key: {exc}"})
            continue
        if statement.get("predicateType") != predicate_type:
            ignored.append({"source": rel, "reason": "signed predicate type differs"})
            continue
        if here is None:
            here = _subject_digests(ctx)
        subjects = statement.get("subject")
        claimed_digests = {
            s.get("digest", {}).get("sha256")
            for s in (subjects if isinstance(subjects, list) else [])
            if isinstance(s, Mapping) and isinstance(s.get("digest"), Mapping)
        }
        if not claimed_digests & here:
            ignored.append({"source": rel, "reason": "signed, but about another subject"})
            continue
        verified.append((rel, statement, fp))
    return TrustedEvidence(tuple(verified), tuple(ignored))


def _as_bundle(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """A bare DSSE envelope wrapped as a public-key Sigstore bundle (no key material: the
    verifier only ever uses the pinned keys)."""
    from mltrust.attest import BUNDLE_MEDIA_TYPE

    return {"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": {}, "dsseEnvelope": envelope}
