"""Kubernetes admission: a validating webhook that admits only models whose evidence verifies.

``mltrust admission serve --trusted-key PUB --storage-root DIR`` answers AdmissionReview v1 on
``POST /validate``. For each object the API server sends (CREATE and UPDATE of Pods, pod
workloads, KServe InferenceServices, Seldon SeldonDeployments), it finds the model locations
the object names (:mod:`._kinds`), maps each to a folder under the storage root
(:mod:`._locate`), verifies the folder's signature against the trusted keys with
:func:`mltrust.attest.verify` (every file re-hashed) and, with ``--profile``, evaluates the
evidence collectors (scan included) against that profile, as ``mltrust check`` does.

Decisions, stated once:

- **Fail closed.** Any error (unreadable path, bad signature, malformed object, a kind the
  webhook does not know, an exception) denies, with a one-line reason in the response's
  ``status.message``. The shipped manifests set ``failurePolicy: Fail``, so an unreachable or
  timed-out webhook denies too.
- **Opt-in per namespace.** The ValidatingWebhookConfiguration selects namespaces labelled
  ``mltrust.dev/enforce=true``; in a namespace without the label the API server does not call
  the webhook and objects are admitted unchecked. The review carries no namespace labels, so
  the webhook itself checks every request it receives. Label the namespaces that serve models;
  guard the label with RBAC (whoever may remove it may turn enforcement off).
- **Pods that name no model** are admitted with a warning (they may be sidecars or
  ordinary services in the namespace) unless ``--require-annotation``. InferenceServices and
  SeldonDeployments always carry a model: one without a location the webhook can read
  (a model baked into an image, an ``s3://`` URI) is denied.
- **Dry run** (``--dry-run``) answers ``allowed: true`` and puts what would have been denied in
  the response's ``warnings`` (kubectl prints them), to roll the webhook out safely.
- **TLS.** The API server only calls webhooks over HTTPS: give ``--tls-cert``/``--tls-key``.
  Without them the server listens on loopback only (for a TLS-terminating sidecar or tests).

Not checked: that the bytes a pod later mounts are the bytes verified here (the storage can be
written between admission and pod start; keep the storage writable only by the publishers, and
let ``mltrust serve`` verify again at load); models fetched by the container itself; the
container image. Each review re-hashes the model (no cache), so large models need a
``timeoutSeconds`` that covers hashing them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrust.admission._kinds import ANNOTATION, ModelRef, model_refs
from mltrust.admission._locate import locate
from mltrust.admission._review import AdmissionPolicy, Decision, decide, review

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = [
    "ANNOTATION",
    "AdmissionPolicy",
    "Decision",
    "ModelRef",
    "create_app",
    "decide",
    "locate",
    "model_refs",
    "review",
]


def create_app(policy: AdmissionPolicy, *, concurrency: int = 4) -> Starlette:
    """The Starlette webhook app (imports the ``serve`` extra's Starlette)."""
    from mltrust.admission._app import create_app as make

    return make(policy, concurrency=concurrency)
