"""The error hierarchy of mltrust.

One root, :class:`Error`, that the command line catches once. Rejected untrusted input
(:class:`InputError`, :class:`VerificationError`) is kept apart from misuse
(:class:`ConfigError`); anything else escaping is a bug.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigError",
    "Error",
    "InputError",
    "LimitExceeded",
    "UnsafeModelError",
    "VerificationError",
]


class Error(Exception):
    """Root of every error mltrust raises on purpose."""

    #: A short hint printed after the one-line cause by the CLI.
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    def diagnostics(self) -> str:
        """A human-readable explanation: the cause, then a hint when one is known."""
        text = str(self)
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class InputError(Error):
    """Untrusted input (a file, a request, a bundle) was malformed or hostile and rejected."""


class LimitExceeded(InputError):
    """Processing input would exceed a configured resource limit (bytes, depth, count, time)."""


class VerificationError(Error):
    """A signature, digest or attestation did not verify.

    ``differences`` lists what did not match, one human-readable line each.
    """

    def __init__(
        self, message: str, *, differences: list[str] | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.differences: list[str] = list(differences or [])

    def diagnostics(self) -> str:
        text = super().diagnostics()
        if self.differences:
            text += "\n" + "\n".join(f"  {d}" for d in self.differences)
        return text


class UnsafeModelError(Error):
    """A model was refused by the safe loader because its scan found unsafe content.

    ``findings`` holds the :class:`mltrust.findings.Finding` objects that caused it.
    """

    def __init__(self, message: str, *, findings: tuple[object, ...] = ()) -> None:
        super().__init__(message, hint="run `mltrust scan` on the file for the full report")
        self.findings = findings


class ConfigError(Error):
    """mltrust was configured or called incorrectly (bad option, bad config file)."""


class AuthError(Error):
    """A caller was not authenticated or not allowed (HTTP 401/403 at the gateway and the vault).

    ``reason`` is the short cause the audit log records.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
