"""Compliance probes of a live inference endpoint (``mltrust check --target URL``).

Each control sends a few requests to the Open Inference Protocol (v2 / KServe) paths of the
endpoint the user named -- and to nothing else: no redirect is followed, no other host is
contacted -- and records what it saw as evidence:

==========================  =====================================================================
``tls``                     https, a handshake at TLS 1.2 or newer, TLS 1.0/1.1 refused, and the
                            certificate verified (system CAs or ``--cacert``)
``auth-inference``          ``POST /v2/models/NAME/infer`` without / with a bogus credential is
                            refused (401/403)
``auth-metadata``           server metadata, model metadata and readiness, repository index
                            without credentials are refused
``management-auth``         ``/v2/repository/models/NAME/load|unload`` without credentials are
                            refused or absent (a random model name: nothing is ever unloaded)
``input-validation``        malformed tensors get 4xx, never 2xx or 5xx
``error-leaks``             no stack trace, exception name or software version in any error
                            body or header, no ``Server``/``X-Powered-By`` version
``rate-limit``              a burst of identical requests is answered 429 before its end
``extraction-throttled``    a burst of distinct, random in-range queries is answered 429
==========================  =====================================================================

Results are ``pass``, ``fail`` or not applicable (``skip``: e.g. the endpoint needs credentials
the user did not give, so validation cannot be reached); the verdict and every report format
are those of ``mltrust check`` (:mod:`mltrust.report`). Unreachable targets, credentials the
endpoint refuses, and bad options are setup errors (:class:`mltrust.errors.ConfigError`, exit 2).
"""

from __future__ import annotations

from mltrust.probe._controls import CONTROLS, ProbeOptions, probe_report, run_probes

__all__ = ["CONTROLS", "ProbeOptions", "probe_report", "run_probes"]
