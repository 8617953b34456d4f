"""Committed secrets: private keys, well-known token formats, high-entropy assignments."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from mltrust.evidence import _rules
from mltrust.findings import Rule

__all__ = ["SecretHit", "find_secrets", "redact", "shannon_entropy"]

_PEM = re.compile(r"-----BEGIN ((?:RSA|EC|DSA|OPENSSH|ENCRYPTED|PGP) )?PRIVATE KEY( BLOCK)?-----")
_TOKENS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("AWS access key ID", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b")),
    ("GitHub fine-grained token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,250}")),
    ("Slack webhook", re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/\w+")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{34,64}\b")),
)
_ASSIGN = re.compile(
    r"""(?ix)
    ([\w.-]*(?:token|secret|passw(?:or)?d|pwd|api[_-]?key|private[_-]?key|access[_-]?key
        |auth[_-]?key|client[_-]?secret|credential)[\w.-]*)
    ["']?\s*(?::|=|:=)\s*["']?
    ([A-Za-z0-9+/=_\-.~]{16,256})
    """
)
_PLACEHOLDERS = (
    "xxxx",
    "changeme",
    "example",
    "placeholder",
    "your",
    "dummy",
    "redacted",
    "<",
    "${",
    "{{",
    "*****",
)
#: Bits per character above which an assigned value looks random (hex ~3.7-4, base64 ~5-6).
ENTROPY_THRESHOLD = 3.5


@dataclass(frozen=True, slots=True)
class SecretHit:
    rule: Rule
    line: int
    message: str


_SECRET_WORDS = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "apikey",
        "key",
        "credential",
        "credentials",
        "auth",
    }
)
_NAME_PARTS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def _secret_name(name: str) -> bool:
    """Whether a component of ``name`` (snake, kebab, dotted or camel case) is a secret word:
    ``api_token`` and ``clientSecret`` are, ``tokenizer_name`` is not."""
    parts = [p.lower() for p in _NAME_PARTS.findall(name)]
    return any(p in _SECRET_WORDS for p in parts)


def shannon_entropy(text: str) -> float:
    if not text:
        return 0.0
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def redact(secret: str) -> str:
    """The first four characters and the length: enough to find it, useless to abuse."""
    return f"{secret[:4]}…({len(secret)} chars)"


def find_secrets(text: str) -> Iterator[SecretHit]:
    """Secrets in ``text``; messages never contain the full secret."""
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > 10_000:
            line = line[:10_000]
        m = _PEM.search(line)
        if m:
            yield SecretHit(_rules.CODE_PRIVATE_KEY, number, f"PEM private key ({m.group(0)})")
            continue
        found = False
        for label, pattern in _TOKENS:
            t = pattern.search(line)
            if t:
                found = True
                yield SecretHit(_rules.CODE_TOKEN, number, f"{label} {redact(t.group(0))}")
        if found:
            continue
        for a in _ASSIGN.finditer(line):
            name, value = a.group(1), a.group(2)
            low = value.lower()
            if any(p in low for p in _PLACEHOLDERS) or len(set(value)) < 8:
                continue
            if not _secret_name(name) or not any(c.isdigit() for c in value):
                continue
            if shannon_entropy(value) >= ENTROPY_THRESHOLD and len(value) >= 20:
                yield SecretHit(
                    _rules.CODE_HIGH_ENTROPY,
                    number,
                    f"high-entropy value assigned to {name!r}: {redact(value)}",
                )
