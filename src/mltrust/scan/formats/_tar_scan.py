"""The tar scanner's work (:meth:`mltrust.scan.formats.tar.TarScanner.scan`), imported only
when a tar is scanned. See :mod:`mltrust.scan.formats.tar` for what is reported and why."""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mltrust._lazy import lazy_pattern
from mltrust.errors import InputError
from mltrust.scan import _archive_rules as R
from mltrust.scan.formats.pytorch import TarMember, scan_legacy_tar
from mltrust.scan.formats.tar import _BLOCK, _frombuf, _nti, _old_sparse
from mltrust.scan.formats.zip import is_traversal

if TYPE_CHECKING:
    from mltrust.config import Limits
    from mltrust.findings import Location, Rule
    from mltrust.scan._context import ScanContext

__all__ = ["scan_tar"]

# tarfile.REGULAR_TYPES and SUPPORTED_TYPES: data follows a header only for the regular types
# and for types tarfile does not know; after any other header the next block is a header.
_REGULAR = (b"0", b"\x00", b"7", b"S")
_SUPPORTED = frozenset((b"0", b"\x00", b"1", b"2", b"5", b"6", b"7", b"3", b"4", b"L", b"K", b"S"))
_META = (b"L", b"K", b"x", b"g", b"X")


@functools.cache
def _sparse_00() -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    return (
        re.compile(rb"\d+ GNU.sparse.offset=(\d+)\n"),
        re.compile(rb"\d+ GNU.sparse.numbytes=(\d+)\n"),
    )


_SPECIAL = {b"3": "character device", b"4": "block device", b"6": "FIFO"}
# Names are decoded as tarfile decodes them (UTF-8, undecodable bytes kept as surrogates), so
# two different byte names never become one; reports show them with U+FFFD.
_ENCODING = ("utf-8", "surrogateescape")


def _shown(name: str) -> str:
    """A member name for reports: undecodable bytes as U+FFFD."""
    return name.encode(*_ENCODING).decode("utf-8", "replace")


_pax_record = lazy_pattern(rb"(\d+) ([^=]+)=")


def _pax_records(payload: bytes) -> dict[str, str]:
    """The records of a pax header, parsed as ``TarInfo._proc_pax`` parses them.

    ``"%d %s=%s\n"`` records are read until one does not match (tarfile ignores the rest);
    a zero length, on which tarfile fails, is an error.
    """
    records: dict[str, str] = {}
    pos = 0
    while True:
        match = _pax_record().match(payload, pos)
        if match is None:
            break
        length = int(match.group(1))
        if length == 0:
            raise InputError("malformed pax extended header length")
        value = payload[match.end(2) + 1 : match.start(1) + length - 1]
        records[match.group(2).decode(*_ENCODING)] = value.decode(*_ENCODING)
        pos += length
    return records


def _cstr(field: bytes) -> str:
    return field.split(b"\x00", 1)[0].decode(*_ENCODING)


def _link_escapes(name: str, target: str, symbolic: bool) -> bool:
    if not target:
        return False
    if target.startswith("/") or (is_traversal(target) and not symbolic):
        return True
    base = posixpath.dirname(name) if symbolic else ""
    joined = posixpath.normpath(posixpath.join(base, target))
    return joined == ".." or joined.startswith("../") or joined.startswith("/")


def _blocks(count: int) -> int:
    """``count`` rounded up to whole blocks, exactly as ``TarInfo._block`` does."""
    blocks, remainder = divmod(count, _BLOCK)
    if remainder:
        blocks += 1
    return blocks * _BLOCK


def _kind(typeflag: bytes) -> str:
    names = {b"1": "hard link", b"2": "symbolic link", b"5": "directory"}
    return names.get(typeflag) or _SPECIAL.get(typeflag) or f"member of type {typeflag!r}"


# A meta header waiting for its member: type, padded payload, the pax records tarfile holds for it.
_Meta = tuple[bytes, bytes, dict[str, str] | None]


@dataclass(eq=False, repr=False)  # never compared or printed: no generated == or repr
class _Member:
    """One member as :mod:`tarfile` reads it (the oracle: ``torch.load`` of a legacy tar)."""

    type: bytes
    name: str
    link: str
    size: int  # bytes extractfile() returns
    data_start: int  # TarInfo.offset_data
    next_header: int  # TarFile.offset after this member
    sparse: list[tuple[int, int]] | None = None
    hidden_size: int = 0  # size field of a member tarfile reads no data for
    problem: str = ""  # tarfile fails on (or hangs in) this member: not scanned


def _member(
    block: bytes,
    start: int,
    data: memoryview,
    global_pax: dict[str, str],
    chain: list[_Meta],
    limits: Limits,
) -> _Member:
    """Mirror ``TarInfo.frombuf`` + ``_proc_member`` (+ the pax/GNU headers in ``chain``).

    The meta headers are applied innermost first, as tarfile's recursion does: the header that
    comes first in the archive has the last word. Sparse members (old GNU ``S`` and the pax
    GNU.sparse 0.0, 0.1 and 1.0 forms, in ``x`` and in global ``g`` headers alike) get their
    map, from which :func:`_sparse_views` rebuilds the bytes tarfile's readers return. Whatever
    tarfile would raise on becomes ``problem``.
    """
    t = block[156:157]
    hsize = _nti(block[124:136])
    name = _cstr(block[0:100])
    if t == b"\x00" and name.endswith("/"):
        t = b"5"  # old V7 directory: tarfile reads no data after it
    m = _Member(t, name, _cstr(block[157:257]), hsize, start, start)
    fpos = start
    if t == b"S":
        m.sparse = _old_sparse(block[386:482], 4, keep_zero=True)
        extended = bool(block[482])
        m.size = _nti(block[483:495])
        while extended:
            ext = bytes(data[fpos : fpos + _BLOCK])
            if len(ext) < _BLOCK:
                m.problem = "GNU sparse extension header is truncated"
                break
            try:
                m.sparse += _old_sparse(ext, 21, keep_zero=False)
            except InputError:
                m.problem = "GNU sparse extension header is invalid (tarfile stops there)"
                break
            extended = bool(ext[504])
            fpos += _BLOCK
        m.data_start = fpos
        m.next_header = fpos + _blocks(hsize)
    elif t in _REGULAR or t not in _SUPPORTED:
        m.next_header = start + _blocks(hsize)
    else:
        m.hidden_size = hsize
    if t == b"5":
        m.name = m.name.rstrip("/")
    prefix = _cstr(block[345:500])
    if prefix and t not in (b"L", b"K", b"S"):
        m.name = prefix + "/" + m.name
    try:
        if t != b"S":
            _apply_pax(m, global_pax)
            if m.type == b"5":
                m.name = m.name.rstrip("/")  # _proc_builtin, after the ustar prefix is joined
        for kind, payload, pax in reversed(chain):
            if kind == b"L":
                m.name = _cstr(payload)
                if m.type == b"5":
                    m.name = m.name.removesuffix("/")
            elif kind == b"K":
                m.link = _cstr(payload)
            elif pax is None:
                raise InputError("malformed pax extended header length")
            else:
                fpos = _pax_level(m, payload, pax, data, fpos, limits, extended=kind != b"g")
    except (InputError, ValueError) as exc:
        m.problem = f"tarfile cannot read this member ({exc})"
    if m.hidden_size or (m.type not in _REGULAR and m.type in _SUPPORTED):
        # A pax size on such a member: tarfile ignores it, GNU tar and libarchive skip it.
        m.hidden_size = max(m.hidden_size, m.size)
    if m.size < 0:
        m.problem = "negative member size"
    return m


def _apply_pax(m: _Member, pax: dict[str, str]) -> None:
    for key, value in pax.items():  # in order: the last of path / GNU.sparse.name wins
        if key == "GNU.sparse.name":
            m.name = value
        elif key in ("GNU.sparse.size", "GNU.sparse.realsize"):
            m.size = int(value)
        elif key == "path":
            m.name = value.rstrip("/")
        elif key == "linkpath":
            m.link = value
        elif key == "size":
            try:
                m.size = int(value)
            except ValueError:
                m.size = 0


def _pax_level(
    m: _Member,
    payload: bytes,
    pax: dict[str, str],
    data: memoryview,
    fpos: int,
    limits: Limits,
    *,
    extended: bool,
) -> int:
    """One pax header on its member (``TarInfo._proc_pax``); returns the read position.

    ``pax`` is what tarfile holds for that header: for an ``x`` header the global records as
    they were when it was read plus its own, for a global ``g`` header the global records
    themselves. Both kinds give the member their GNU sparse map (the 0.0 form from this
    header's own records); only an ``x`` header sets its other fields and its size.
    """
    numbers: list[int] = []
    if "GNU.sparse.map" in pax:
        numbers = [int(x) for x in pax["GNU.sparse.map"].split(",")]
        m.sparse = list(zip(numbers[::2], numbers[1::2], strict=False))
    elif "GNU.sparse.size" in pax:
        offsets = [int(x.group(1)) for x in _sparse_00()[0].finditer(payload)]
        numbytes = [int(x.group(1)) for x in _sparse_00()[1].finditer(payload)]
        m.sparse = list(zip(offsets, numbytes, strict=False))
    elif pax.get("GNU.sparse.major") == "1" and pax.get("GNU.sparse.minor") == "0":
        buf = bytes(data[fpos : fpos + _BLOCK])
        fpos += _BLOCK
        head, buf = buf.split(b"\n", 1)
        fields = int(head)
        if fields > limits.max_tar_sparse_entries:
            raise InputError(f"{fields} sparse map entries")
        while len(numbers) < fields * 2:
            if b"\n" not in buf:
                buf += bytes(data[fpos : fpos + _BLOCK])
                fpos += _BLOCK
            number, buf = buf.split(b"\n", 1)
            numbers.append(int(number))
        m.data_start = fpos
        m.sparse = list(zip(numbers[::2], numbers[1::2], strict=False))
    if not extended:
        return fpos
    _apply_pax(m, pax)
    if "size" in pax:
        m.next_header = m.data_start
        if m.type in _REGULAR or m.type not in _SUPPORTED:
            m.next_header += _blocks(m.size)
    return fpos


# tarfile.copyfileobj's block (TarFile.copybufsize is None): makefile() copies a run in blocks
# of this size and fails at the first short one, after writing the blocks before it.
_COPY_BUFSIZE = 16 * 1024


def _extractfile_view(data: memoryview, m: _Member, limits: Limits) -> tuple[bytes, str]:
    """The bytes ``tarfile``'s ``_FileInFile`` (``extractfile``) returns for a sparse member.

    Its map and read loop are mirrored step by step (holes read as zeros, data taken in order
    from ``offset_data``, each position from the first run holding it searched from the last run
    used), so a map tarfile would loop on forever is reported, not followed. Returns the bytes
    and, where reading fails, why (the bytes are then those read before the failure).
    """
    size = m.size
    table: list[tuple[bool, int, int, int]] = []
    lastpos = 0
    realpos = m.data_start
    for offset, length in m.sparse or []:
        if offset > lastpos:
            table.append((False, lastpos, offset, 0))
        table.append((True, offset, offset + length, realpos))
        realpos += length
        lastpos = offset + length
    if lastpos < size:
        table.append((False, lastpos, size, 0))
    out = bytearray()
    position = 0
    index = 0
    budget = limits.max_tar_sparse_steps
    while position < size:
        tried = 0
        while True:
            has_data, lo, hi, real = table[index] if table else (False, 0, 0, 0)
            if lo <= position < hi:
                break
            index = (index + 1) % max(len(table), 1)
            tried += 1
            if tried > len(table):
                return bytes(out), "extractfile() would never finish reading it"
            budget -= 1
            if budget < 0:
                return bytes(out), "its sparse map takes too many steps to follow as extractfile()"
        length = min(size - position, hi - position)
        if has_data:
            at = real + (position - lo)
            if at < 0 or at + length > len(data):
                return bytes(out), "extractfile() fails: its data runs past the end of the archive"
            out += data[at : at + length]
        else:
            out += bytes(length)
        position += length
    return bytes(out), ""


def _makefile_view(data: memoryview, m: _Member, limit: int) -> tuple[bytes, str]:
    """The file ``TarFile.makefile`` (``extract``/``extractall``) writes for a sparse member.

    The stored data is read as one stream from ``offset_data``; each run is written at its
    offset in map order (later runs over earlier ones, gaps as zeros), then the file is cut or
    extended to the member's size. A negative run length copies ``length % 16 KiB`` bytes, as
    ``copyfileobj`` does. Where writing fails (a negative offset, data past the end of the
    archive) the file keeps what was written so far: returned with why.
    """
    out = bytearray()
    src = m.data_start
    for offset, length in m.sparse or []:
        if offset < 0:
            return bytes(out), "extractall() fails on a negative offset, leaving a partial file"
        count = length if length >= 0 else length % _COPY_BUFSIZE
        if offset + count > limit:
            return bytes(out), "extractall() writes beyond max_decompressed_in_memory"
        avail = max(len(data) - src, 0)
        failed = count > avail
        if failed:
            count = min(avail // _COPY_BUFSIZE, count // _COPY_BUFSIZE) * _COPY_BUFSIZE
        if offset > len(out):
            out += bytes(offset - len(out))
        out[offset : offset + count] = data[src : src + count]
        src += count
        if failed:
            return bytes(out), (
                "extractall() fails: its data runs past the end of the archive, leaving a "
                "partial file"
            )
    if len(out) > m.size:
        del out[m.size :]
    else:
        out += bytes(m.size - len(out))
    return bytes(out), ""


@dataclass(eq=False, repr=False)  # state, never compared or printed: no generated == or repr
class _SparseViews:
    """The contents tarfile's readers give for one sparse member."""

    contents: dict[str, bytes]  # reader -> what it gives (first reader of each distinct content)
    odd: str = ""  # why the map is not one every reader rebuilds alike
    errors: list[str] | None = None  # readers that fail part-way (their partial bytes kept)
    failed: str = ""  # why nothing was rebuilt


def _sparse_views(data: memoryview, m: _Member, limits: Limits) -> _SparseViews:
    """Every distinct content a real reader produces for the sparse member ``m``.

    ``extractfile`` and ``extractall`` agree on a map of non-negative runs in increasing,
    non-overlapping order inside the member's size (what GNU tar writes); for any other map
    they can differ (and GNU tar's own extraction may differ again), so ``odd`` says why.
    """
    size = m.size
    limit = int(limits.max_decompressed_in_memory)
    if size > limit:
        return _SparseViews(
            {}, failed=f"{size} bytes once expanded, above max_decompressed_in_memory"
        )
    blockinfo = m.sparse or []
    if len(blockinfo) > limits.max_tar_sparse_entries:
        return _SparseViews({}, failed=f"{len(blockinfo)} sparse map entries")
    odd = ""
    end = 0
    for offset, length in blockinfo:
        if offset < 0 or length < 0:
            odd = "its sparse map has negative numbers"
            break
        if not length:
            continue
        if offset < end:
            odd = odd or "its sparse map has overlapping or out-of-order runs"
        if offset + length > size:
            odd = odd or "its sparse map has runs beyond the member's size"
        end = max(end, offset + length)
    views = _SparseViews({})
    errors: list[str] = []
    for reader, (content, error) in (
        ("extractfile", _extractfile_view(data, m, limits)),
        ("extractall", _makefile_view(data, m, limit)),
    ):
        if error:
            errors.append(error)
        if content not in views.contents.values():
            views.contents[reader] = content
    views.odd = odd
    views.errors = errors
    return views


@dataclass(frozen=True, eq=False, repr=False)  # never compared or printed: no generated == or repr
class _Issue:
    """Something :func:`_walk` reports about the archive itself, at offset ``at``."""

    rule: Rule
    message: str
    at: int


@dataclass(frozen=True, eq=False, repr=False)  # never compared or printed: no generated == or repr
class _End:
    """Where the walk stopped: at an end-of-archive block (``marker``) or at ``pos``."""

    pos: int
    marker: bool


def _walk(data: memoryview, limits: Limits) -> Iterator[_Member | _Issue | _End]:
    """The members tarfile's ``getmembers()`` returns, in order, with issues found on the way.

    Meta headers (GNU ``L``/``K``, pax ``x``/``X``/``g``) are applied to the member they precede;
    the walk ends with one :class:`_End` where tarfile stops: at an all-zero block, at a block it
    rejects as a header (reported: tarfile silently ignores the rest), or at the end of data.
    """
    size = len(data)
    max_meta = limits.max_tar_meta_bytes
    pos = 0
    chain: list[_Meta] = []  # meta headers waiting for their member, in order
    chain_start = 0
    global_pax: dict[str, str] = {}
    while pos + _BLOCK <= size:
        block = bytes(data[pos : pos + _BLOCK])
        if not any(block):
            yield _End(pos, marker=True)
            return
        try:
            _frombuf(block)
        except InputError as exc:
            yield _Issue(
                R.ARC_BAD_CRC,
                f"tar header at offset {pos} is invalid ({exc}); Python's tarfile stops reading "
                "the archive there, other readers may not",
                pos,
            )
            yield _End(size, marker=False)
            return
        if not chain:
            chain_start = pos
        typeflag = block[156:157]
        hsize = _nti(block[124:136])
        start = pos + _BLOCK
        if typeflag in _META:
            # tarfile reads the whole padded payload of a meta header, then the next header.
            pos = start + _blocks(hsize)
            if pos < start:
                yield _Issue(R.ARC_TRUNCATED, f"tar header declares {hsize} bytes", start)
                yield _End(size, marker=False)
                return
            if start + hsize > size:
                yield _Issue(
                    R.ARC_TRUNCATED, f"tar header payload of {hsize} bytes runs past the end", start
                )
            if hsize > max_meta:
                yield _Issue(
                    R.ARC_NOT_SCANNED,
                    f"tar {typeflag!r} header of {hsize} bytes; only its first {max_meta} bytes "
                    "were read",
                    start,
                )
            # The padded payload, as tarfile reads it (its pax parser sees the padding).
            payload = bytes(data[start : min(pos, size, start + max_meta)])
            # tarfile updates its global records when it reads a ``g`` header (each later
            # ``x`` header starts from a copy of them) and still runs the ``g`` header's sparse
            # processing on the member that follows it.
            # A header tarfile fails on makes its member unreadable (``None``).
            pax: dict[str, str] | None = {}
            if typeflag in (b"g", b"x", b"X"):
                try:
                    records = _pax_records(payload)
                except InputError:
                    pax = None
                else:
                    if typeflag == b"g":
                        global_pax.update(records)
                        pax = global_pax
                    else:
                        pax = {**global_pax, **records}
            chain.append((typeflag, payload, pax))
            continue
        m = _member(block, start, data, global_pax, chain, limits)
        chain = []
        yield m
        pos = m.next_header
        if pos <= chain_start:
            yield _Issue(
                R.ARC_TRUNCATED,
                f"a negative size sends tarfile back to offset {pos}: it reads the same headers "
                "forever",
                chain_start,
            )
            yield _End(size, marker=False)
            return
    yield _End(pos, marker=False)


class _Node:
    """A folder or symbolic link of the simulated extraction (regular files need none)."""

    __slots__ = ("children", "link")

    def __init__(self, link: tuple[str, str] | None = None) -> None:
        self.children: dict[str, _Node] = {}
        self.link = link  # (target, member name) of a symbolic link; None for a folder


# Where a path lands: the existing nodes from the root, then names below them that no link of
# the archive lies under (only ".." can change those).
_Landing = tuple[list[_Node], list[str]]


class _Extraction:
    """The symbolic links ``TarFile.extractall`` (default filter) has created so far.

    Paths are resolved component by component as the OS resolves them while tarfile writes each
    member (``os.path.join(dest, name)``, parents created, files opened through any link), so a
    link is followed from the folder it was really created in. A resolution either lands inside
    the destination or says how it leaves it; a chain of links longer than Linux follows is a
    loop, and all resolutions of one archive share a step budget (fail closed once spent).
    """

    def __init__(self, size: int, limits: Limits) -> None:
        self.root = _Node()
        self.placed: dict[_Node, list[_Node]] = {}  # link node -> the folder it lies in
        self.archived: dict[str, _Member] = {}  # normalised name -> last member of that name
        self.flagged: set[str] = set()
        # Names cost at most a few steps per archive byte; what links add is bounded separately.
        self.budget = limits.max_tar_resolve_steps + 4 * size
        # Linux gives up resolving a path after 40 symbolic links (MAXSYMLINKS); more is a loop.
        self.max_hops = limits.max_tar_link_hops
        self.spent = False

    def resolve(
        self, path: str, base: list[_Node] | None = None, *, follow_last: bool = True
    ) -> _Landing | str:
        if path.startswith("/"):
            return "is an absolute path"
        parts = path.split("/")
        while parts and parts[-1] == "":
            parts.pop()  # tarfile strips trailing slashes
        if parts and parts[-1] in (".", ".."):
            follow_last = True
        stack = parts[::-1]
        nodes = list(base) if base else [self.root]
        below: list[str] = []
        hops = 0
        while stack:
            self.budget -= 1
            if self.budget < 0:
                return "could not be resolved (the archive's links take too many steps)"
            part = stack.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if below:
                    below.pop()
                elif len(nodes) > 1:
                    nodes.pop()
                else:
                    return "climbs out of the folder"
                continue
            child = None if below else nodes[-1].children.get(part)
            if child is None:
                below.append(part)
                continue
            if child.link is None or (not stack and not follow_last):
                nodes.append(child)
                continue
            hops += 1
            if hops > self.max_hops:
                return f"passes through more than {self.max_hops} links (a loop)"
            target, name = child.link
            if target.startswith("/"):
                return f"passes through the link {name!r} to an absolute path"
            if target.count("/") >= self.budget:
                return "could not be resolved (the archive's links take too many steps)"
            stack.extend(reversed(target.split("/")))
        return nodes, below

    @staticmethod
    def _folders(where: _Landing, count: int) -> list[_Node]:
        """The folders of ``where`` with the first ``count`` names below them created."""
        nodes, below = where
        nodes = list(nodes)
        for part in below[:count]:
            nodes.append(nodes[-1].children.setdefault(part, _Node()))
        return nodes

    def _place(self, folder: list[_Node], last: str, target: str, name: str) -> None:
        """Create the symbolic link ``last`` in ``folder``.

        tarfile unlinks what is there first: a file or link is replaced, a folder stays (it
        cannot be unlinked).
        """
        node = folder[-1].children.get(last)
        if node is not None and node.link is None:
            return
        node = folder[-1].children[last] = _Node((target, name))
        self.placed[node] = folder

    def _symlink_copied(self, m: _Member) -> str | None:
        """The target of the symbolic link a hard link ``m`` is extracted as, if any.

        ``os.link`` fails on a directory or a dangling link; tarfile then extracts the earlier
        member named by the hard link again, at the hard link's place: a symbolic link member
        becomes a copy of itself in another folder.
        """
        for _ in range(self.max_hops):
            if m.type != b"1":
                break
            linked = self.archived.get(posixpath.normpath(m.link))
            if linked is None:
                return None
            m = linked
        return m.link if m.type == b"2" else None

    def extract(self, m: _Member) -> Iterator[tuple[Rule, str]]:
        """Findings about writing ``m`` where it lands; remembers the folders and links it
        creates (parents with ``os.makedirs``, which follows links, then the member itself)."""
        if self.spent:
            return
        target = m.link if m.type == b"2" else None
        if m.type == b"1":
            target = self._symlink_copied(m)
        where = self.resolve(m.name, follow_last=target is None and m.type != b"2")
        if isinstance(where, str):
            yield R.ARC_TRAVERSAL, f"member {m.name!r} {where} when extracted (through links)"
        else:
            parent, _, last = m.name.rstrip("/").rpartition("/")
            up = self.resolve(parent)  # lands too: it is a prefix of the path that landed
            folder = self._folders(up, len(up[1])) if not isinstance(up, str) else [self.root]
            if last not in ("", ".", ".."):
                if m.type == b"5":
                    folder[-1].children.setdefault(last, _Node())
                elif target is not None:
                    self._place(folder, last, target, m.name)
            if target is not None:
                landing = self.resolve(target, folder)
                if isinstance(landing, str):
                    self.flagged.add(m.name)
                    yield R.ARC_LINK_ESCAPE, f"link to {target!r} {landing} (through links)"
            if m.type == b"1":
                landing = self.resolve(m.link)
                if isinstance(landing, str):
                    yield R.ARC_LINK_ESCAPE, f"hard link to {m.link!r} {landing} (through links)"
        self.archived[posixpath.normpath(m.name)] = m
        if self.budget < 0:
            self.spent = True
            yield (
                R.ARC_TRAVERSAL,
                (
                    "the archive's links take too many steps to resolve; paths from this member on "
                    "were not checked against them"
                ),
            )

    def leftover(self) -> Iterator[tuple[str, str]]:
        """``(member, why)`` for the links that point outside once every member is written."""
        for node, folder in self.placed.items():
            if self.spent or node.link is None:
                return
            target, name = node.link
            landing = self.resolve(target, folder)
            self.spent = self.budget < 0
            if self.spent:
                yield name, "the archive's links take too many steps to resolve"
            elif isinstance(landing, str) and name not in self.flagged:
                self.flagged.add(name)
                yield name, f"link to {target!r} {landing} once the archive is extracted"


def _as_tar_member(m: _Member, data: memoryview, ctx: ScanContext) -> TarMember:
    """``m`` for the legacy torch decision (its data is read only if torch would read it)."""
    if m.type == b"1" or m.type == b"2":
        return TarMember(m.name, "hard" if m.type == b"1" else "sym", m.link, lambda: None)
    if m.problem or (m.type in _SUPPORTED and m.type not in _REGULAR):
        return TarMember(m.name, "other", m.link, lambda: None)

    def read() -> memoryview | bytes | None:
        if m.sparse is None:
            return data[m.data_start : min(m.data_start + m.size, len(data))]
        if m.size > int(ctx.limits.max_decompressed_in_memory):
            return None
        if len(m.sparse) > ctx.limits.max_tar_sparse_entries:
            return None
        content, error = _extractfile_view(data, m, ctx.limits)  # torch reads through extractfile()
        return None if error else content

    return TarMember(m.name, "file", m.link, read)


def scan_tar(data: memoryview, ctx: ScanContext, loc: Location) -> None:
    """Scan the tar archive ``data`` (the work of :meth:`TarScanner.scan`)."""
    listed: list[_Member] = []  # every member, as tarfile lists them
    _scan_members(data, ctx, loc, listed)
    # The oldest torch.save format is decided the way torch.load decides it (tarfile
    # stops quietly at a bad header after the first, so the members before it count).
    scan_legacy_tar([_as_tar_member(m, data, ctx) for m in listed], ctx, loc)


def _scan_members(data: memoryview, ctx: ScanContext, loc: Location, listed: list[_Member]) -> None:
    size = len(data)
    members = 0
    max_members = int(ctx.limits.max_archive_members)
    seen: set[str] = set()
    tree = _Extraction(size, ctx.limits)
    end = _End(size, marker=False)
    for m in _walk(data, ctx.limits):
        if isinstance(m, _End):
            end = m
            break
        if isinstance(m, _Issue):
            ctx.report(m.rule, m.message, loc.at(m.at))
            continue
        members += 1
        if members > max_members:
            ctx.report(
                R.ARC_MEMBER_COUNT,
                f"more than {max_members} members (max_archive_members); the rest not scanned",
                loc.at(m.data_start - _BLOCK),
            )
            return
        ctx.check_deadline()
        listed.append(m)
        name = m.name
        mloc = loc.member(_shown(name))
        if m.problem:
            ctx.report(R.ARC_NOT_SCANNED, f"{m.problem}; member not scanned", mloc)
        if m.hidden_size:
            # tarfile reads the bytes that follow as the next headers (other tar readers skip
            # them): what is hidden there is scanned below, as tarfile sees it.
            ctx.report(
                R.ARC_READERS_DISAGREE,
                f"{_kind(m.type)} declares {m.hidden_size} bytes of data; Python's tarfile "
                "reads those bytes as the next members, other tar readers skip them",
                mloc,
            )
        reported = set()
        if is_traversal(name):
            ctx.report(R.ARC_TRAVERSAL, f"member name {name!r} escapes the folder", mloc)
            reported.add(R.ARC_TRAVERSAL.id)
        typeflag = m.type
        if typeflag in (b"1", b"2"):
            symbolic = typeflag == b"2"
            kind = "symbolic" if symbolic else "hard"
            if _link_escapes(name, m.link, symbolic):
                ctx.report(R.ARC_LINK_ESCAPE, f"{kind} link to {m.link!r} points outside", mloc)
                reported.add(R.ARC_LINK_ESCAPE.id)
                tree.flagged.add(name)
        for rule, message in tree.extract(m):
            if rule.id not in reported:
                reported.add(rule.id)
                ctx.report(rule, message, mloc)
        if typeflag in (b"1", b"2"):
            continue
        if typeflag in _SPECIAL:
            ctx.report(R.ARC_SPECIAL_FILE, f"member is a {_SPECIAL[typeflag]}", mloc)
            continue
        if typeflag == b"5":
            continue
        if typeflag not in _REGULAR:
            ctx.report(
                R.ARC_SPECIAL_FILE,
                f"member has unknown type {typeflag!r}; its data was sniffed",
                mloc,
            )
        if name in seen:
            ctx.report(
                R.ARC_DUPLICATE,
                f"member name {name!r} appears more than once (tarfile reads the last)",
                mloc,
            )
        seen.add(name)
        if m.problem:
            continue
        lo, hi = m.data_start, m.data_start + m.size
        if m.sparse is None and hi > size:
            ctx.report(
                R.ARC_TRUNCATED,
                f"tar member of {m.size} bytes runs past the end of the archive",
                loc.at(lo),
            )
            hi = size
        if m.sparse is not None:
            _scan_sparse(data, m, ctx, loc)
        elif hi > lo:
            ctx.scan_nested(data[lo:hi], mloc, _shown(name))
    for name, why in tree.leftover():
        ctx.report(R.ARC_LINK_ESCAPE, why, loc.member(_shown(name)))
    pos, ended = end.pos, end.marker
    ctx.facts.setdefault("tar_members", members)
    if not ended and pos < size:
        ctx.report(R.ARC_TRUNCATED, "tar archive ends inside a header block", loc.at(pos))
    if not ended and pos >= size and members:
        # No end-of-archive marker: tolerated by tarfile, still worth saying.
        ctx.facts.setdefault("tar_unterminated", True)
    if ended:
        rest = data[pos:]
        nonzero = next((i for i in range(0, len(rest), 4096) if any(rest[i : i + 4096])), -1)
        if nonzero >= 0:
            off = pos + nonzero
            ctx.report(
                R.ARC_HIDDEN_DATA,
                f"data follows the end-of-archive marker at offset {off}",
                loc.at(off),
            )
            ctx.scan_nested(data[off:], loc.member(f"[after-tar@{off}]"), "trailing")


def _scan_sparse(data: memoryview, m: _Member, ctx: ScanContext, loc: Location) -> None:
    """Scan every distinct content tarfile's readers give for a sparse member.

    ``extractfile`` (torch's legacy loader) and ``extractall`` rebuild a sparse member
    differently when its map is irregular: each content is scanned, and a map not every
    reader rebuilds alike is a high finding of its own, whatever the contents hold.
    """
    shown = _shown(m.name)
    mloc = loc.member(shown)
    # Holes cost nothing in the archive: the expanded size is charged like decompressed
    # output (a LimitExceeded stops the scan with a finding).
    ctx.charge_decompressed(max(m.size, 0))
    views = _sparse_views(data, m, ctx.limits)
    if views.failed:
        ctx.report(R.ARC_NOT_SCANNED, f"sparse member: {views.failed}; not scanned", mloc)
        return
    if len(views.contents) > 1:
        ctx.report(
            R.ARC_READERS_DISAGREE,
            "sparse member: Python's tarfile gives different bytes to extractfile() and to "
            f"extract()/extractall() ({views.odd or 'its map is irregular'}); each was scanned",
            mloc,
        )
    elif views.odd:
        ctx.report(
            R.ARC_READERS_DISAGREE,
            f"sparse member: {views.odd}; tar readers may rebuild it differently (scanned as "
            "Python's tarfile rebuilds it)",
            mloc,
        )
    for error in views.errors or ():
        ctx.report(
            R.ARC_TRUNCATED, f"sparse member: {error}; the bytes before it were scanned", mloc
        )
    for i, (reader, content) in enumerate(views.contents.items()):
        if not content:
            continue
        if i:
            ctx.charge_decompressed(len(content))
            ctx.scan_nested(content, loc.member(f"{shown}[{reader}]"), shown)
        else:
            ctx.scan_nested(content, mloc, shown)
