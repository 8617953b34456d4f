"""Committed secrets: private keys, well-known token formats, high-entropy assignments and
hard-coded passwords.

Precision comes first (a gate that cries wolf is switched off): a token format must be
specific (a vendor prefix or a checksum-like shape), a generic assignment must name a secret
word *and* carry a random-looking value, and a hard-coded password must be a quoted literal
(or a ``KEY=value`` line of an env file) that is not a placeholder."""

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
    ("Stripe secret key", re.compile(r"\b[rs]k_live_[0-9a-zA-Z]{24,99}\b")),
    (
        "OpenAI API key",
        re.compile(r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}"),
    ),
    ("Anthropic API key", re.compile(r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,}")),
    ("PyPI upload token", re.compile(r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}")),
    ("npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("SendGrid API key", re.compile(r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b")),
    ("Azure storage account key", re.compile(r"AccountKey=[A-Za-z0-9+/]{86}==")),
    ("Google service-account key", re.compile(r'"private_key_id"\s*:\s*"[0-9a-f]{40}"')),
    ("Mailchimp API key", re.compile(r"\b[0-9a-f]{32}-us[0-9]{1,2}\b")),
    ("Telegram bot token", re.compile(r"\b[0-9]{8,10}:AA[0-9A-Za-z_-]{33}\b")),
    ("Discord bot token", re.compile(r"\b[MN][A-Za-z0-9]{23}\.[\w-]{6}\.[\w-]{27,38}\b")),
    ("Square token", re.compile(r"\bsq0(?:atp|csp)-[0-9A-Za-z_-]{22,43}\b")),
    ("Databricks token", re.compile(r"\bdapi[a-f0-9]{32}(?:-\d)?\b")),
    ("Twilio key", re.compile(r"\b(?:AC|SK)[a-f0-9]{32}\b")),
    ("Shopify token", re.compile(r"\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}\b")),
    ("DigitalOcean token", re.compile(r"\bdo[opr]_v1_[a-f0-9]{64}\b")),
    ("Replicate token", re.compile(r"\br8_[A-Za-z0-9]{37}\b")),
    ("Groq API key", re.compile(r"\bgsk_[A-Za-z0-9]{52}\b")),
    (
        "JSON Web Token",
        re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,}"),
    ),
)
#: A password inside a URL: ``scheme://user:password@host``.
_URL_PASSWORD = re.compile(
    r"\b[a-z][a-z0-9+.-]{1,20}://[^/\s:@'\"]{1,64}:([^/\s:@'\"]{6,128})@[\w.-]+"
)
#: A quoted literal assigned to a name (code, YAML, JSON, TOML). Names are bounded (here and
#: in :data:`_ASSIGN`) so that a long run of word characters costs linear time, not quadratic.
_QUOTED = re.compile(
    r"""(?x)
    ([A-Za-z_][\w.-]{0,127})["']?\s*(?::|=|:=|=>)\s*(?:[bfru]{0,2})(["'])([^"'\s]{8,128})\2"""
)
#: ``NAME=value`` in an env file or an ``export`` line.
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*([^\s#'\"]{8,128})\s*$")
_PASSWORD_WORDS = frozenset({"password", "passwd", "pwd", "passphrase", "secret"})
_ASSIGN = re.compile(
    r"""(?ix)
    ([\w.-]{0,64}(?:token|secret|passw(?:or)?d|pwd|api[_-]?key|private[_-]?key|access[_-]?key
        |auth[_-]?key|client[_-]?secret|credential)[\w.-]{0,64})
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


def _password_like(value: str) -> bool:
    """A literal that could be a real password: not a placeholder, not a reference, mixed."""
    low = value.lower()
    if any(p in low for p in _PLACEHOLDERS) or low in ("password", "passwd", "secret"):
        return False
    if value.startswith(("$", "%", "@", "/", ".", "http")) or value.endswith((")", "]")):
        return False
    classes = sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
            any(not c.isalnum() for c in value),
        )
    )
    return classes >= 2 and len(set(value)) >= 5


def _password_name(name: str) -> bool:
    parts = [p.lower() for p in _NAME_PARTS.findall(name)]
    return bool(parts) and parts[-1] in _PASSWORD_WORDS


#: A line can only hold a secret the rules below find if it contains one of these: a PEM
#: header, a URL or a secret word (every name rule needs one), case-insensitively, or the
#: fixed part of a token format. Lines without any are not examined: searching megabytes of
#: text costs a few ``str.find`` passes instead of every rule on every line.
_TRIGGER_WORDS = (
    "-----begin",
    "://",
    "token",
    "secret",
    "passw",
    "passphrase",
    "pwd",
    "key",
    "credential",
    "auth",
)
_TRIGGER_LITERALS = (
    "AKIA",
    "ASIA",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
    "AIza",
    "hf_",
    "k_live_",
    "T3BlbkFJ",
    "sk-ant-",
    "pypi-",
    "npm_",
    "glpat-",
    "SG.",
    "-us",
    ":AA",
    "sq0",
    "dapi",
    "AC",
    "SK",
    "shp",
    "_v1_",
    "r8_",
    "gsk_",
    "eyJ",
)
#: The one token format without a fixed part (Discord bot tokens).
_TRIGGER_PATTERN = re.compile(r"[MN][A-Za-z0-9]{23}\.")
#: Longest window of one line searched at a time; longer lines are searched in windows that
#: overlap by :data:`_WINDOW_OVERLAP` characters (longer than any secret the rules match).
_WINDOW = 10_000
_WINDOW_OVERLAP = 1_024


def _trigger_positions(text: str) -> list[int]:
    found: list[int] = []
    for haystack, needles in ((text.lower(), _TRIGGER_WORDS), (text, _TRIGGER_LITERALS)):
        for needle in needles:
            at = haystack.find(needle)
            while at >= 0:
                found.append(at)
                at = haystack.find(needle, at + 1)
    found.extend(m.start() for m in _TRIGGER_PATTERN.finditer(text))
    return found


def find_secrets(text: str, *, env_file: bool = False) -> Iterator[SecretHit]:
    """Secrets in ``text``; messages never contain the full secret. ``env_file``: the text
    is a ``.env``-style file, whose unquoted ``NAME=value`` lines are assignments too.

    Lines are numbered as :meth:`str.splitlines` numbers them. Only lines with a trigger
    (see :data:`_TRIGGER_WORDS`) are examined; a line longer than :data:`_WINDOW` characters
    is searched in overlapping windows (a secret at its end is found, once)."""
    import bisect
    import itertools

    positions = _trigger_positions(text)
    if not positions:
        return
    ends = list(itertools.accumulate(map(len, text.splitlines(keepends=True))))
    lines = text.splitlines()
    numbers = sorted({bisect.bisect_right(ends, at) for at in positions})
    step = _WINDOW - _WINDOW_OVERLAP
    for index in numbers:
        if index >= len(lines):
            continue
        line = lines[index]
        seen: set[tuple[str, str]] = set()
        for start in range(0, max(len(line) - _WINDOW_OVERLAP, 1), step):
            for hit in _line_hits(index + 1, line[start : start + _WINDOW], env_file):
                if (hit.rule.id, hit.message) not in seen:
                    seen.add((hit.rule.id, hit.message))
                    yield hit


def _line_hits(number: int, line: str, env_file: bool) -> Iterator[SecretHit]:
    """The secrets of one line (or one window of a long line)."""
    m = _PEM.search(line)
    if m:
        yield SecretHit(_rules.CODE_PRIVATE_KEY, number, f"PEM private key ({m.group(0)})")
        return
    found = False
    for label, pattern in _TOKENS:
        t = pattern.search(line)
        if t:
            found = True
            yield SecretHit(_rules.CODE_TOKEN, number, f"{label} {redact(t.group(0))}")
    if found:
        return
    u = _URL_PASSWORD.search(line)
    if u and _password_like(u.group(1)) and "{" not in u.group(0):
        yield SecretHit(_rules.CODE_PASSWORD, number, f"password in a URL: {redact(u.group(1))}")
        return
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
            found = True
    if found:
        return
    password = None
    for q in _QUOTED.finditer(line):
        if _password_name(q.group(1)) and _password_like(q.group(3)):
            password = (q.group(1), q.group(3))
            break
    if password is None and (env_file or line.lstrip().startswith("export ")):
        e = _ENV_LINE.match(line)
        if e and _password_name(e.group(1)) and _password_like(e.group(2)):
            password = (e.group(1), e.group(2))
    if password is not None:
        yield SecretHit(
            _rules.CODE_PASSWORD,
            number,
            f"hard-coded password assigned to {password[0]!r}: {redact(password[1])}",
        )
        return
