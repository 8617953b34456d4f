"""Signed model folders in S3-compatible object storage (AWS S3, MinIO, Ceph, ...): push and pull.

    mltrust s3 push models/iris s3://models/iris/3 --key keys/release.pub
    mltrust s3 pull s3://models/iris/3 ./iris --key keys/release.pub

The storage is reached through boto3 with its usual configuration: credentials from the
``AWS_*`` environment variables, ``AWS_PROFILE``/``--profile`` or the shared config files, and
``--endpoint-url`` (or ``AWS_ENDPOINT_URL_S3``) for a server that is not AWS.

Decisions:

- **Only what verifies is pushed.** :func:`push` verifies the folder against the pinned key
  first (the one verifier, :func:`mltrust.attest.verify`) and uploads exactly what that proved:
  the signed files, ``model.sig`` and the attestation bundles that verified. Anything else in
  the folder (``.git``, the local evidence store) stays local. A folder that is unsigned or does
  not verify is refused unless ``allow_unsigned``, which uploads every regular file as found (a
  link or special file is refused: S3 has no links). A non-empty destination prefix is refused
  unless ``replace``, which deletes the objects the new folder does not have, so an old file
  cannot linger as an "extra" that would break (or, unsigned, pollute) the next pull.
- **What is uploaded is what verified.** Files are opened below a descriptor of the folder,
  one component at a time without following links (:func:`mltrust.files.open_under`), and
  hashed as they are uploaded; a digest that differs from the verified one (or a
  ``model.sig``/attestation no longer signed by the key) aborts the push, deletes what it
  uploaded under the prefix and raises :class:`VerificationError`.
- **The bucket is hostile.** Anyone who can write it may add, change or rename objects, so
  :func:`pull` trusts nothing it lists: every key is checked as a relative path (no ``..``,
  ``.``, empty or absolute components, no backslash, drive letter or control character) and
  the set of keys must map to distinct files on a case-insensitive, Unicode-normalising file
  system (``A.bin``/``a.bin``, ``x``/``x/y`` are refused). Such a key fails the pull
  (exit 1) before anything is downloaded.
- **Nothing the signature does not cover is downloaded.** ``model.sig`` is fetched first, by
  name (at most ``max_bundle_bytes``), and opened with the pinned keys; only then is the prefix
  listed, accepting at most the signed files, the attestation bundles and a few folder markers
  (a longer listing, or a listing page larger than that many entries can be, is refused before
  it is parsed, so a hostile listing cannot fill memory). Every other object must be a
  signed file with exactly its signed size, or one of mltrust's attestation bundles. An extra
  object, a missing one or a size that differs fails the pull with the list of differences.
  Each download stops one byte past the size it should have, whatever the server announced.
- **Verify, scan, then move into place.** Objects land in a private staging folder beside the
  destination (same file system); the whole folder is verified by
  :func:`mltrust.attest.verify` (every digest, name and version, the attestations present) and
  scanned; only then is it renamed to the destination in one step. On any failure the staging
  folder is removed and nothing exists at the destination. The destination must not exist
  beforehand (a concurrent creator of an *empty* folder there loses it to the rename; anything
  else makes the rename fail).
- **Bounded in time.** The whole pull has a wall-clock budget (``timeout``) and each object a
  minimum rate after a grace period; a blocked read is cut by shutting its socket down, and in
  the main thread (the CLI) SIGALRM interrupts anything else (a trickled listing or header).
- **Rollback memory is written last.** With ``state`` the version is checked before the scan
  but recorded only after the rename, so a refused pull cannot make a good version a rollback.
- Staging folders of killed pulls (no live pull holds their lock) are removed by the next pull
  into the same destination.
- The scan uses the operator's configuration (found from the current folder, as for
  ``mltrust scan``), never an ``mltrust.toml`` that arrived with the model.
- Errors: content that does not verify raises :class:`~mltrust.errors.VerificationError`
  (exit 1), findings :class:`~mltrust.errors.UnsafeModelError` (exit 1); credentials, a missing
  bucket, an unreachable endpoint, a bad URI or destination are setup errors (exit 2).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import stat
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrust.config import DEFAULT_LIMITS, Limits
from mltrust.errors import ConfigError, InputError, LimitExceeded, VerificationError

__all__ = [
    "PullResult",
    "PushResult",
    "S3Location",
    "parse_s3_uri",
    "pull",
    "push",
    "unsafe_key_reason",
]

SIGNATURE_NAME = "model.sig"
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]")
_DRIVE = re.compile(r"[A-Za-z]:")
#: Bytes of one object name (S3's own limit) and of one path component (NAME_MAX): facts of
#: the store and the file system, not bounds we choose, so not in :class:`~mltrust.config.Limits`.
_S3_KEY_BYTES = 1024
_NAME_MAX_BYTES = 255
_CHUNK = 1 << 20
#: Default wall-clock budget of a whole pull (listing, downloads, verification, scan).
DEFAULT_PULL_TIMEOUT_S = 3600.0
#: Default slowest throughput accepted per object, bytes per second, after a grace period.
DEFAULT_MIN_BYTES_PER_S = 64 * 1024
_OBJECT_GRACE_S = 60.0
#: Age below which a staging folder is never removed by another pull (it may be just made).
_STALE_STAGING_S = 60.0
#: Objects tolerated in a pull's listing beyond the signed files, ``model.sig`` and the
#: attestation bundles (zero-byte folder markers some tools create).
_LISTING_SLACK = 16

#: A key file, or a loaded public key object (:func:`mltrust.attest.load_public_key`).
KeySpec = str | Path | Any


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    #: Object key prefix without a trailing slash; empty for the bucket's root.
    prefix: str

    @property
    def key_prefix(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def key(self, rel: str) -> str:
        return self.key_prefix + rel

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True, slots=True)
class PushResult:
    location: S3Location
    #: Relative names uploaded, in upload order (``model.sig`` last).
    objects: tuple[str, ...]
    bytes: int
    #: The root digest that verified, or None for an unsigned push (``allow_unsigned``).
    root_digest: str | None
    #: Objects deleted from the prefix (``replace``).
    deleted: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PullResult:
    location: S3Location
    dest: Path
    #: What verification proved (:class:`mltrust.attest.VerifiedModel`).
    verified: Any
    objects: int
    bytes: int
    scanned: bool


def parse_s3_uri(uri: str) -> S3Location:
    """``s3://BUCKET[/PREFIX]`` → :class:`S3Location`; the prefix must be a safe relative path."""
    if not uri.startswith("s3://"):
        raise ConfigError(f"{uri!r} is not an S3 URI; expected s3://BUCKET/PREFIX")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise ConfigError(f"{uri!r}: {bucket!r} is not a bucket name")
    prefix = prefix.rstrip("/")
    if prefix:
        reason = unsafe_key_reason(prefix)
        if reason:
            raise ConfigError(f"{uri!r}: the prefix has {reason}")
    return S3Location(bucket, prefix)


def unsafe_key_reason(rel: str) -> str | None:
    """Why ``rel`` (an object key below the prefix) cannot be a file below a folder, or None.

    The rule is the same for push and pull, so a folder that pushes is one that pulls.
    """
    if not rel:
        return "an empty name"
    if len(rel.encode("utf-8", "surrogatepass")) > _S3_KEY_BYTES:
        return f"a name longer than {_S3_KEY_BYTES} bytes"
    if "\\" in rel:
        return "a backslash (a path separator on Windows)"
    if any(ord(c) < 32 or ord(c) == 127 for c in rel):
        return "a control character"
    if rel.startswith("/"):
        return "an absolute path"
    if _DRIVE.match(rel):
        return "a drive letter"
    for part in rel.split("/"):
        if part in ("", ".", ".."):
            return f"a {part!r} path component" if part else "an empty path component ('//')"
        if len(part.encode("utf-8", "surrogatepass")) > _NAME_MAX_BYTES:
            return f"a path component longer than {_NAME_MAX_BYTES} bytes"
    return None


def _name_problems(rels: Iterable[str]) -> list[str]:
    """Unsafe names, and names that collide on a case-insensitive or normalising file system
    (or where one name is a file and a folder above another)."""
    problems: list[str] = []
    folded: dict[str, str] = {}
    for rel in rels:
        reason = unsafe_key_reason(rel)
        if reason:
            problems.append(f"unsafe object name {rel!r}: {reason}")
            continue
        key = unicodedata.normalize("NFC", rel).casefold()
        other = folded.setdefault(key, rel)
        if other != rel:
            problems.append(f"object names {other!r} and {rel!r} name the same file")
    for key, rel in folded.items():
        parts = key.split("/")
        for i in range(1, len(parts)):
            above = "/".join(parts[:i])
            if above in folded:
                problems.append(f"object {rel!r} is below {folded[above]!r}, which is a file")
                break
    return problems


# -- boto3 ------------------------------------------------------------------------------------


def _client(endpoint_url: str | None, profile: str | None, region: str | None) -> Any:
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError:
        raise ConfigError(
            "the S3 integration needs boto3", hint="pip install 'mltrust[s3]'"
        ) from None
    if endpoint_url is not None and not re.match(r"https?://", endpoint_url):
        raise ConfigError(f"--endpoint-url {endpoint_url!r} must start with http:// or https://")
    try:
        session = boto3.session.Session(profile_name=profile)
        custom = (
            endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        config = Config(
            # S3-compatible servers (MinIO, Ceph) address buckets in the path, not the host name.
            s3={"addressing_style": "path"} if custom else {},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        )
        return session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region or session.region_name or "us-east-1",
            config=config,
        )
    except BotoCoreError as exc:
        raise ConfigError(f"cannot set up the S3 client: {exc}") from None


def _s3_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _setup_error(exc: BaseException, what: str) -> Exception:
    """A boto3 failure as mltrust's error: credentials are misuse, the rest unusable input."""
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return ConfigError(
            f"{what}: no usable AWS credentials",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE / --profile",
        )
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code, message = err.get("Code", "?"), err.get("Message", "")
        return InputError(f"{what}: {code} {message}".strip())
    text = str(exc).strip().splitlines()
    return InputError(f"{what}: {text[0][:300] if text else type(exc).__name__}")


#: Bytes of listing XML allowed per object the caller accepts (a 1 KiB key, XML-escaped up to
#: 5 times, and the entry's other fields), plus a fixed allowance for the envelope.
_LISTING_BYTES_PER_OBJECT = 8 * 1024
_LISTING_BYTES_BASE = 64 * 1024


def _list(
    client: Any,
    loc: S3Location,
    max_objects: int,
    *,
    too_many: type[Exception] = LimitExceeded,
    budget: _Budget | None = None,
) -> list[tuple[str, int]]:
    """``(key, size)`` of every object under the prefix, at most ``max_objects``; one more
    raises ``too_many``. Pages are asked for at most ``max_objects + 1`` entries, and a page
    whose XML is larger than that many entries can be is refused before botocore parses it
    (a hostile server ignores the page size it was asked for)."""
    out: list[tuple[str, int]] = []
    empty = 0
    limit = _LISTING_BYTES_BASE + (max_objects + 1) * _LISTING_BYTES_PER_OBJECT

    def cap_page(response_dict: Any = None, **_: Any) -> None:
        body = (response_dict or {}).get("body")
        if isinstance(body, (bytes, bytearray)) and len(body) > limit:
            raise too_many(f"{loc}: a listing page of {len(body)} bytes is more than the "
                           f"{max_objects} objects expected can take; not pulled")  # fmt: skip

    event = "before-parse.s3.ListObjectsV2"
    client.meta.events.register(event, cap_page, unique_id="mltrust-listing-cap")
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=loc.bucket,
            Prefix=loc.key_prefix,
            PaginationConfig={"PageSize": min(1000, max_objects + 1)},
        )
        for page in pages:
            if budget is not None:
                budget.check()
            contents = page.get("Contents") or []
            empty = 0 if contents else empty + 1
            if empty > DEFAULT_LIMITS.max_s3_empty_pages:
                raise InputError(f"{loc}: the server keeps returning empty listing pages")
            for obj in contents:
                key, size = obj.get("Key"), obj.get("Size")
                if not isinstance(key, str) or type(size) is not int or size < 0:
                    raise InputError(f"{loc}: malformed listing entry {obj!r:.200}")
                out.append((key, size))
                if len(out) > max_objects:
                    raise too_many(f"{loc} holds more than {max_objects} objects; not pulled")
    except _s3_errors() as exc:
        raise _setup_error(exc, f"cannot list {loc}") from None
    finally:
        client.meta.events.unregister(event, unique_id="mltrust-listing-cap")
    return out


def _relative(loc: S3Location, listing: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Object names relative to the prefix → size. Zero-byte "folder" markers are skipped;
    an object named like a folder with content, or one outside the prefix, is a problem."""
    rels: dict[str, int] = {}
    problems: list[str] = []
    for key, size in listing:
        if not key.startswith(loc.key_prefix):
            problems.append(f"the server listed {key!r}, which is outside the prefix")
            continue
        rel = key[len(loc.key_prefix) :]
        if (rel == "" or rel.endswith("/")) and size == 0:
            continue  # a folder marker some tools create; it holds nothing
        if rel in rels:
            problems.append(f"the server listed {key!r} twice")
            continue
        rels[rel] = size
    problems += _name_problems(rels)
    if problems:
        raise VerificationError(
            f"{loc} holds objects that cannot be pulled safely ({len(problems)})",
            differences=problems,
        )
    return rels


class _Budget:
    """The pull's wall-clock deadline, and a per-object one from a minimum throughput.

    Checked between requests and between reads (:meth:`check`); a read that blocks is cut
    by :meth:`watch`, which shuts the response's socket down when the object's time is up
    (a server that trickles a byte just inside botocore's read timeout never ends a read).
    """

    def __init__(self, loc: S3Location, timeout: float, min_rate: int) -> None:
        self.loc = loc
        self.timeout = timeout
        self.min_rate = min_rate
        self.end = time.monotonic() + timeout
        self.expired = False

    def left(self) -> float:
        return self.end - time.monotonic()

    def error(self, what: str = "") -> LimitExceeded:
        detail = f" ({what})" if what else ""
        return LimitExceeded(
            f"{self.loc}: the pull did not finish within {self.timeout:g} s{detail}; "
            "nothing was pulled",
            hint="a slow or hostile server; raise --timeout for a very large model",
        )

    def check(self, what: str = "") -> None:
        if self.expired or self.left() <= 0:
            self.expired = True
            raise self.error(what)

    def for_object(self, size: int) -> float:
        """Seconds one object of ``size`` bytes may take: a grace period plus its bytes at
        the minimum rate, never past the pull's deadline."""
        return min(self.left(), _OBJECT_GRACE_S + size / self.min_rate)

    @contextlib.contextmanager
    def watch(self, body: Any, seconds: float) -> Iterator[list[bool]]:
        """Shut ``body``'s connection down after ``seconds``; yields ``[fired]``."""
        fired = [False]

        def cut() -> None:
            fired[0] = True
            sock = _socket_of(body)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(max(seconds, 0.0), cut)
        timer.daemon = True
        timer.start()
        try:
            yield fired
        finally:
            timer.cancel()


def _socket_of(body: Any) -> Any:
    """The socket under a botocore streaming body (urllib3 response), or None."""
    raw = getattr(body, "_raw_stream", None)
    conn = getattr(raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    if sock is None:
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock


class _DeadlinePassed(BaseException):
    """Raised by the SIGALRM handler; turned into :class:`LimitExceeded` by its context."""


@contextlib.contextmanager
def _hard_deadline(budget: _Budget) -> Iterator[None]:
    """Interrupt anything (a trickled header, listing or scan) at the deadline with SIGALRM,
    where that is possible without disturbing anyone: in the main thread, when no other
    handler is installed. Elsewhere the cooperative checks and :meth:`_Budget.watch` remain."""
    usable = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )
    if not usable:
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        budget.expired = True
        # Not an Exception: botocore retries a request on any Exception raised under it.
        raise _DeadlinePassed

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, max(budget.left(), 0.001))
        yield
    except _DeadlinePassed:
        raise budget.error() from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Missing(InputError):
    """The object does not exist."""


def _download(
    client: Any,
    loc: S3Location,
    rel: str,
    dest: Path,
    size: int,
    budget: _Budget,
    *,
    at_most: bool = False,
) -> int:
    """Fetch one object into a new file ``dest``: exactly ``size`` bytes, or with ``at_most``
    (an object fetched by name, not yet listed) up to ``size`` bytes; fail otherwise."""
    from botocore.exceptions import ClientError

    budget.check(f"before {rel}")
    try:
        resp = client.get_object(Bucket=loc.bucket, Key=loc.key(rel))
    except _s3_errors() as exc:
        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in (
            "NoSuchKey",
            "404",
        ):
            raise _Missing(f"{loc}: no object {rel}") from None
        raise _setup_error(exc, f"cannot download {loc.key(rel)}") from None
    body = resp["Body"]
    total = 0
    fired = [False]
    try:
        announced = resp.get("ContentLength")
        if type(announced) is int and (announced > size if at_most else announced != size):
            expected = f"at most {size}" if at_most else f"the expected {size}"
            raise VerificationError(f"{rel}: the server sends {announced} bytes, not {expected}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(dest, flags | getattr(os, "O_CLOEXEC", 0), 0o666)
        with os.fdopen(fd, "wb") as fh, budget.watch(body, budget.for_object(size)) as fired:
            while True:
                chunk = body.read(min(_CHUNK, size + 1 - total))
                if fired[0]:
                    raise budget.error(f"{rel} arrives slower than {budget.min_rate} bytes/s")
                if not chunk:
                    break
                total += len(chunk)
                if total > size:
                    raise VerificationError(f"{rel}: more than the expected {size} bytes")
                fh.write(chunk)
                budget.check(f"while downloading {rel}")
    except _s3_errors() as exc:
        if fired[0]:
            raise budget.error(f"{rel} arrives slower than {budget.min_rate} bytes/s") from None
        raise _setup_error(exc, f"cannot download {loc.key(rel)}") from None
    except OSError as exc:
        if fired[0]:
            raise budget.error(f"{rel} arrives slower than {budget.min_rate} bytes/s") from None
        raise InputError(f"cannot write {dest}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(Exception):
            body.close()
    if fired[0]:
        raise budget.error(f"{rel} arrives slower than {budget.min_rate} bytes/s")
    if total != size and not at_most:
        raise VerificationError(f"{rel}: {total} bytes received, not the expected {size}")
    return total


# -- keys -------------------------------------------------------------------------------------


def _public_keys(
    key: KeySpec | Sequence[KeySpec], *, private_ok: bool = False, passphrase: bytes | None = None
) -> list[Any]:
    """Pinned public keys; with ``private_ok`` (push) a private key stands for its public half."""
    from mltrust.attest import load_private_key, load_public_key

    items = [key] if isinstance(key, (str, Path)) or not isinstance(key, Sequence) else list(key)
    if not items:
        raise ConfigError("no key given: a pinned public key is needed")
    out = []
    for item in items:
        if not isinstance(item, (str, Path)):
            out.append(item)  # a loaded key object; the verifier checks its type
            continue
        try:
            out.append(load_public_key(item))
        except InputError as exc:
            if not private_ok or "is a private key" not in str(exc):
                raise
            out.append(load_private_key(item, passphrase).public_key())
    return out


# -- push -------------------------------------------------------------------------------------


def _unsigned_files(root: Path, limits: Limits) -> list[str]:
    from mltrust.files import walk

    listing = walk(root, max_files=limits.max_model_files)
    if listing.skipped or listing.truncated:
        shown = "; ".join(f"{s.rel}: {s.detail}" for s in listing.skipped[:5])
        raise InputError(f"{root}: cannot push every entry ({shown})")
    return [e.rel for e in listing.files]


class _HashingReader:
    """A read-only, non-seekable file object that hashes what it hands out (so a retried part
    is re-sent from s3transfer's buffer, never re-read and re-hashed) and stops one byte past
    ``limit``."""

    def __init__(self, fh: Any, digest: Any, limit: int | None) -> None:
        self._fh = fh
        self._digest = digest
        self._limit = limit
        self.count = 0
        self.kept: list[bytes] | None = None

    def read(self, size: int = -1) -> bytes:
        if self._limit is not None:
            room = self._limit + 1 - self.count
            size = room if size is None or size < 0 else min(size, room)
            if size <= 0:
                return b""
        data: bytes = self._fh.read(size)
        self.count += len(data)
        if self._digest is not None:
            self._digest.update(data)
        if self.kept is not None:
            self.kept.append(data)
        return data


def _upload(
    client: Any,
    loc: S3Location,
    root: Path,
    root_fd: int,
    rel: str,
    expected: _Expected | None,
    lim: Limits,
) -> int:
    """Upload ``rel`` opened below ``root_fd``; check the bytes sent against ``expected``."""
    from mltrust.attest._manifest import StreamDigest
    from mltrust.attest._verify import verify_bundle_bytes
    from mltrust.files import open_under

    shown = str(root / rel)
    try:
        fd = open_under(root_fd, rel, display=shown)
    except InputError as exc:
        if expected is None:
            raise
        raise VerificationError(
            f"{root} changed after it was verified; nothing pushed", differences=[str(exc)]
        ) from None
    digest = None
    limit = None
    if expected is not None and expected.digest is not None:
        digest = StreamDigest(expected.algorithm, expected.shard_size)
    elif expected is not None:
        limit = lim.max_bundle_bytes
    try:
        with os.fdopen(fd, "rb") as fh:
            reader = _HashingReader(fh, digest, limit)
            if limit is not None:
                reader.kept = []
            client.upload_fileobj(reader, loc.bucket, loc.key(rel))
    except _s3_errors() as exc:
        raise _setup_error(exc, f"cannot upload {rel} to {loc}") from None
    except OSError as exc:
        raise InputError(f"cannot read {shown}: {exc.strerror or exc}") from None
    changed = f"{rel} changed after it was verified; the push was undone"
    if digest is not None and expected is not None:
        import hmac

        if not hmac.compare_digest(digest.hexdigest(), str(expected.digest)):
            raise VerificationError(changed, differences=[f"digest differs: {rel}"])
    elif expected is not None and reader.kept is not None:
        if reader.count > lim.max_bundle_bytes:
            raise VerificationError(changed, differences=[f"too large: {rel}"])
        try:
            verify_bundle_bytes(b"".join(reader.kept), list(expected.bundle_keys))
        except (InputError, VerificationError) as exc:
            raise VerificationError(changed, differences=[f"{rel}: {exc}"]) from None
    return reader.count


def _delete(client: Any, loc: S3Location, keys: Sequence[str], *, quiet: bool = False) -> None:
    """Delete ``keys``; with ``quiet`` (undoing a failed push) failures are not raised."""
    for i in range(0, len(keys), 1000):
        batch = keys[i : i + 1000]
        try:
            resp = client.delete_objects(
                Bucket=loc.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
        except _s3_errors() as exc:
            if quiet:
                continue
            raise _setup_error(exc, f"cannot delete old objects under {loc}") from None
        if resp.get("Errors") and not quiet:
            first = resp["Errors"][0]
            raise InputError(f"cannot delete {first.get('Key')!r} under {loc}: {first}")


def push(
    folder: str | Path,
    uri: str,
    *,
    key: KeySpec | Sequence[KeySpec] | None = None,
    passphrase: bytes | None = None,
    allow_unsigned: bool = False,
    replace: bool = False,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    limits: Limits | None = None,
) -> PushResult:
    """Upload a signed model folder (its signed files, ``model.sig``, its attestations) to
    ``s3://BUCKET/PREFIX`` after verifying it against ``key``.

    Raises :class:`VerificationError` when the folder does not verify (and ``allow_unsigned``
    is not set), :class:`ConfigError` when the prefix already holds objects and ``replace``
    is not set.
    """
    from mltrust.attest import verify
    from mltrust.attest._verify import attestation_files
    from mltrust.files import open_folder

    lim = limits or Limits()
    root = Path(folder)
    loc = parse_s3_uri(uri)
    if not root.is_dir() or root.is_symlink():
        raise ConfigError(f"{root} is not a model folder")
    if key is None and not allow_unsigned:
        raise ConfigError(
            "push needs --key to verify the folder first",
            hint="or --allow-unsigned to push a folder that is not signed",
        )
    # Every file is later opened below this descriptor, component by component, never
    # through a link: a folder swapped for a link after verification is refused.
    root_fd = open_folder(root)
    try:
        return _push(root, root_fd, loc, key, passphrase, allow_unsigned, replace,
                     (endpoint_url, profile, region), lim, verify, attestation_files)  # fmt: skip
    finally:
        os.close(root_fd)


@dataclass(frozen=True, slots=True)
class _Expected:
    """What an uploaded file must hash to (a signed file), or the keys its content must be a
    bundle signed by (``model.sig``, attestations); None for an unsigned push."""

    digest: str | None = None
    algorithm: str = "sha256"
    shard_size: int | None = None
    bundle_keys: tuple[Any, ...] = ()


def _push(
    root: Path,
    root_fd: int,
    loc: S3Location,
    key: KeySpec | Sequence[KeySpec] | None,
    passphrase: bytes | None,
    allow_unsigned: bool,
    replace: bool,
    client_args: tuple[str | None, str | None, str | None],
    lim: Limits,
    verify: Any,
    attestation_files: Any,
) -> PushResult:
    root_digest: str | None = None
    rels: list[str]
    expected: dict[str, _Expected] = {}
    try:
        if key is None:
            raise VerificationError("no key given")
        if not os.path.lexists(root / SIGNATURE_NAME):
            raise VerificationError(
                f"{root} is not signed (no {SIGNATURE_NAME})",
                hint="sign it with `mltrust sign`, or pass --allow-unsigned",
            )
        from mltrust.attest import PinnedKeys

        keys = _public_keys(key, private_ok=True, passphrase=passphrase)
        verified = verify(
            root,
            trust=PinnedKeys(*keys),
            attestations=bool(attestation_files(root)),
            limits=lim,
        )
        root_digest = verified.root_digest
        atts = [a.path.relative_to(root).as_posix() for a in verified.attestations]
        rels = [*sorted(verified.files), *sorted(atts), SIGNATURE_NAME]
        for rel, digest in verified.files.items():
            expected[rel] = _Expected(digest, verified.hash_algorithm, verified.shard_size)
        for rel in [*atts, SIGNATURE_NAME]:
            expected[rel] = _Expected(bundle_keys=tuple(keys))
    except VerificationError:
        if not allow_unsigned:
            raise
        rels = _unsigned_files(root, lim)
    problems = _name_problems(rels)
    if problems:
        raise InputError(
            f"{root} has names that cannot be stored and pulled safely ({len(problems)})",
            hint="; ".join(problems[:5]),
        )
    client = _client(*client_args)
    existing = [k for k, _ in _list(client, loc, lim.max_model_files + 100)]
    if existing and not replace:
        raise ConfigError(
            f"{loc} already holds {len(existing)} object(s)",
            hint="pass --replace to overwrite it (objects the folder does not have are deleted)",
        )
    total = 0
    uploaded: list[str] = []
    try:
        for rel in rels:
            uploaded.append(loc.key(rel))
            total += _upload(client, loc, root, root_fd, rel, expected.get(rel), lim)
    except BaseException:
        _delete(client, loc, uploaded, quiet=True)
        raise
    wanted = {loc.key(r) for r in rels}
    stale = sorted(k for k in existing if k not in wanted)
    _delete(client, loc, stale)
    return PushResult(
        loc,
        tuple(rels),
        total,
        root_digest,
        tuple(k[len(loc.key_prefix) :] for k in stale),
    )


# -- pull -------------------------------------------------------------------------------------


def _signed_sizes(bundle: Path, keys: Sequence[Any], limits: Limits) -> dict[str, int]:
    """The signed file names and sizes from a bundle that verifies under one of ``keys``."""
    from mltrust.attest._verify import trusted_manifest_from_bundle

    first: VerificationError | None = None
    for k in keys:
        try:
            manifest = trusted_manifest_from_bundle(bundle, k, limits=limits)
        except VerificationError as exc:
            first = first or exc
            continue
        return {f.name: f.size for f in manifest.files}
    raise first or ConfigError("no public key given")


def _attestation_names() -> frozenset[str]:
    from mltrust.attest._manifest import ATTESTATION_KINDS
    from mltrust.attest._verify import ATTESTATION_DIR

    return frozenset(f"{ATTESTATION_DIR}/{kind}.bundle.json" for kind in ATTESTATION_KINDS)


def _plan(
    loc: S3Location, objects: dict[str, int], signed: dict[str, int], limits: Limits
) -> list[str]:
    """Check the listing against the signed manifest before downloading; the names to fetch."""
    attestations = _attestation_names()
    differences: list[str] = []
    for rel, size in sorted(objects.items()):
        if rel == SIGNATURE_NAME:
            continue
        if rel in signed:
            if size != signed[rel]:
                differences.append(f"size differs: {rel} ({size} bytes, signed {signed[rel]})")
        elif rel in attestations:
            if size > limits.max_bundle_bytes:
                differences.append(f"attestation too large: {rel} ({size} bytes)")
        else:
            differences.append(f"not covered by the signature: {rel}")
    differences += [f"missing: {rel}" for rel in sorted(signed) if rel not in objects]
    if differences:
        raise VerificationError(
            f"{loc} does not match its signature ({len(differences)} difference"
            f"{'s' if len(differences) != 1 else ''})",
            differences=differences,
        )
    return sorted(r for r in objects if r != SIGNATURE_NAME)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def pull(
    uri: str,
    dest: str | Path,
    *,
    trust: KeySpec | Sequence[KeySpec],
    name: str | None = None,
    version: int | None = None,
    min_version: int | None = None,
    state: str | Path | None = None,
    scan: bool = True,
    require_attestations: bool = False,
    max_object_bytes: int | None = None,
    timeout: float = DEFAULT_PULL_TIMEOUT_S,
    min_rate: int = DEFAULT_MIN_BYTES_PER_S,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    limits: Limits | None = None,
) -> PullResult:
    """Download ``s3://BUCKET/PREFIX`` into ``dest`` only if it verifies against ``trust``
    (pinned public keys) and scans clean; on any failure nothing is left at ``dest``.

    ``name``, ``version``, ``min_version`` and ``state`` (rollback memory, needs ``name``) bind
    the signed identity as in :func:`mltrust.attest.verify`; the state records the version
    only once the model is in place. ``max_object_bytes`` (default:
    ``Limits.max_file_bytes``) bounds each signed file. ``timeout`` (seconds) bounds the whole
    pull and ``min_rate`` (bytes per second, after a grace period) each object; either one
    exceeded raises :class:`LimitExceeded`. The signature does not name the attestations
    made after it, so one deleted from the bucket is not noticed unless
    ``require_attestations``, which fails a pull that brings none.
    """
    from mltrust.attest import PinnedKeys, verify
    from mltrust.attest._verify import check_rollback
    from mltrust.integrations._common import scan_clean

    lim = limits or Limits()
    cap = lim.max_file_bytes if max_object_bytes is None else max_object_bytes
    if cap <= 0:
        raise ConfigError("the object size cap must be positive")
    if not timeout > 0 or min_rate <= 0:
        raise ConfigError("the pull timeout and the minimum rate must be positive")
    if state is not None and name is None:
        raise ConfigError(
            "rollback protection (state) needs the expected model name",
            hint="pass --name NAME: versions are remembered per expected name",
        )
    loc = parse_s3_uri(uri)
    target = Path(dest).absolute()
    if os.path.lexists(target):
        raise ConfigError(f"{target} already exists; pull into a new folder")
    if not target.parent.is_dir():
        raise ConfigError(f"{target.parent} is not a folder")
    keys = _public_keys(trust)
    state_path = Path(state).absolute() if state is not None else None
    budget = _Budget(loc, timeout, min_rate)
    client = _client(endpoint_url, profile, region)
    _remove_stale_staging(target)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.pull-", dir=target.parent))
    except OSError as exc:
        raise ConfigError(f"cannot write in {target.parent}: {exc.strerror or exc}") from None
    moved = False
    lock_fd = -1
    try:
        lock_fd = _lock_staging(staging)
        with _hard_deadline(budget):
            # model.sig is fetched by name, before anything is listed: the listing is then
            # bounded by what the signature covers, not by what the bucket holds.
            total = _fetch_signature(client, loc, staging, lim, budget)
            signed = _signed_sizes(staging / SIGNATURE_NAME, keys, lim)
            too_big = sorted(r for r, size in signed.items() if size > cap)
            if too_big:
                raise LimitExceeded(
                    f"{loc}: {too_big[0]} is {signed[too_big[0]]} bytes, over the {cap}-byte cap"
                )
            attestations = _attestation_names()
            room = len(signed) + len(attestations) + 1 + _LISTING_SLACK
            try:
                listing = _list(client, loc, room, too_many=VerificationError, budget=budget)
            except VerificationError as exc:
                raise VerificationError(
                    f"{loc} holds more objects than its signature covers; not pulled",
                    differences=[str(exc)],
                ) from None
            objects = _relative(loc, listing)
            if objects.get(SIGNATURE_NAME) != (staging / SIGNATURE_NAME).stat().st_size:
                raise VerificationError(f"{loc}/{SIGNATURE_NAME} changed while it was pulled")
            for rel in _plan(loc, objects, signed, lim):
                total += _download(client, loc, rel, staging / rel, objects[rel], budget)
            budget.check("before verification")
            verified = verify(
                staging,
                trust=PinnedKeys(*keys),
                attestations=require_attestations or any(r in attestations for r in objects),
                name=name,
                version=version,
                min_version=min_version,
                limits=lim,
            )
            if state_path is not None and name is not None:
                check_rollback(state_path, verified, name, update=False, limits=lim)
            if scan:
                scan_clean(staging)
            budget.check("before moving the model into place")
            try:
                os.chmod(staging, 0o777 & ~_umask())
                os.rename(staging, target)
                moved = True
            except OSError as exc:
                raise ConfigError(
                    f"cannot move the model to {target}: {exc.strerror or exc}"
                ) from None
            if state_path is not None and name is not None:
                # Recorded only now that the model is in place: a refused pull (findings, a
                # failed move, a timeout) never advances the rollback memory.
                check_rollback(state_path, verified, name, update=True, limits=lim)
    except BaseException:
        shutil.rmtree(target if moved else staging, ignore_errors=True)
        raise
    finally:
        if lock_fd >= 0:
            os.close(lock_fd)
    return PullResult(loc, target, _replace_path(verified, target), len(objects), total, scan)


def _fetch_signature(
    client: Any, loc: S3Location, staging: Path, lim: Limits, budget: _Budget
) -> int:
    """Download ``model.sig`` by name (at most ``max_bundle_bytes``); a missing one is an
    unsigned prefix, or an empty one (then nothing else is listed)."""
    try:
        return _download(client, loc, SIGNATURE_NAME, staging / SIGNATURE_NAME,
                         lim.max_bundle_bytes, budget, at_most=True)  # fmt: skip
    except VerificationError as exc:
        if "bytes" in str(exc):
            raise VerificationError(
                f"{loc}/{SIGNATURE_NAME} is more than {lim.max_bundle_bytes} bytes, "
                "more than a signature"
            ) from None
        raise
    except _Missing:
        try:
            empty = not _list(client, loc, 1, budget=budget)
        except LimitExceeded:
            empty = False
        if empty:
            raise InputError(f"{loc} holds no objects") from None
        raise VerificationError(f"{loc} is not signed (no {SIGNATURE_NAME})") from None


def _lock_staging(staging: Path) -> int:
    """Hold an exclusive lock on the staging folder while the pull runs (released when the
    process ends, however it ends), so a later pull can tell a live one from a killed one."""
    fd = os.open(staging, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _remove_stale_staging(target: Path) -> None:
    """Remove staging folders (``.<dest>.pull-*``) that an earlier pull into the same
    destination left when it was killed (SIGTERM, SIGKILL, a crash): they hold unverified
    downloads. A folder is removed only when it is this user's, older than a minute and no
    live pull holds its lock."""
    prefix = f".{target.name}.pull-"
    try:
        entries = [e for e in os.scandir(target.parent) if e.name.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
            if (
                not stat.S_ISDIR(st.st_mode)
                or st.st_uid != os.getuid()
                or time.time() - st.st_mtime < _STALE_STAGING_S
            ):
                continue
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
                         | os.O_NOFOLLOW | os.O_CLOEXEC)  # fmt: skip
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live pull
        else:
            shutil.rmtree(entry.path, ignore_errors=True)
        finally:
            os.close(fd)


def _replace_path(verified: Any, target: Path) -> Any:
    """The verification result with paths pointing at the final folder, not the staging one."""
    import dataclasses

    sig = target / SIGNATURE_NAME
    atts = tuple(
        dataclasses.replace(a, path=target / a.path.relative_to(verified.path))
        for a in verified.attestations
    )
    return dataclasses.replace(verified, path=target, signature_path=sig, attestations=atts)
