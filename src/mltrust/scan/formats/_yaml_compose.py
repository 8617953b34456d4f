"""YAML composition for the config scanner, imported only when a YAML document is scanned.

PyYAML costs about 20 ms to import (its reader compiles a large regular expression), which
every ``mltrust scan`` would otherwise pay at start-up whether or not it meets YAML.

Which reader is the oracle
--------------------------
The loaders that run code from YAML - ``yaml.load``/``unsafe_load`` with the default loaders,
OmegaConf, Hydra, NeMo - read it with PyYAML's *pure-Python* reader, scanner and composer, so
what that reader composes is what this scanner must check. libyaml (``CSafeLoader``) is about
five times faster and is used as a fast path only where it is known to read the same graph.
Known divergences (red-team findings):

* U+FEFF: libyaml skips a byte-order mark at the start of *any* line, the pure-Python reader
  only at the start of the stream; ``\\ufeff#: !!python/object/apply:os.system [...]`` is a
  comment to libyaml and a key with a Python-tagged value to ``unsafe_load``.
* A tab after ``key:`` is accepted by libyaml and refused by the pure-Python scanner (libyaml
  then reads a superset, which only adds checks).

So: text without U+FEFF that libyaml composes is taken from libyaml. Text with U+FEFF is
composed by both, both graphs are checked, and a difference between them is reported
(medium, "YAML readers disagree"). When libyaml fails, the pure-Python composer retries (it
is the oracle; its error, not libyaml's, decides). Deeply nested text, which libyaml's C
stack cannot bear, goes to the pure-Python composer only.

The pure-Python composer costs about 5 us per byte, so it is refused text larger than
``max_yaml_pure_text`` (a finding: not parsed, fail closed), it checks the scan's deadline
every few thousand lines and nodes, and one composition is shared by the sniff and the scan
of the same text (:func:`compose`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from mltrust._lazy import lazy_pattern
from mltrust.config import DEFAULT_LIMITS, Limits
from mltrust.errors import LimitExceeded
from mltrust.findings import Location, Severity
from mltrust.scan import _rules
from mltrust.scan._context import ScanContext
from mltrust.scan.formats._config_scan import (
    _PY_TAG,
    _YAML_FALSE,
    _YAML_TRUE,
    _check_document,
    _fallback_yaml,
    has_code_hint,
)
from mltrust.scan.formats._rules_keras_config import (
    CFG_MALFORMED,
    CFG_YAML_ALIAS_BOMB,
    CFG_YAML_PYTHON_TAG,
)

#: Characters libyaml and the pure-Python reader are known to read differently.
_DIVERGENT = "\ufeff"
_TICK_EVERY = 2048


class _ComposeLoader(yaml.SafeLoader):
    """The safe loader, used only to *compose* node graphs (never to construct objects).

    ``tick`` (the scan's deadline check) is called every :data:`_TICK_EVERY` line breaks or
    nodes: one plain scalar of a million lines is a single node, so lines are counted too.
    """

    def __init__(self, stream: str, tick: Callable[[], None] | None = None) -> None:
        self._tick = tick
        self._ticks = 0
        super().__init__(stream)

    def _count(self) -> None:
        self._ticks += 1
        if self._tick is not None and self._ticks % _TICK_EVERY == 0:
            self._tick()

    def scan_line_break(self) -> str:
        self._count()
        return super().scan_line_break()  # type: ignore[no-untyped-call,no-any-return]

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._count()
        return super().compose_node(parent, index)


#: libyaml's composer (fast) recurses on the C stack without a limit, so it only gets documents
#: whose nesting is provably shallow; others go to the pure-Python composer, which raises
#: RecursionError instead of crashing.
_C_LOADER: type | None = getattr(yaml, "CSafeLoader", None)


_brackets = lazy_pattern(r"[\[\]{}]")


_deep_indent = lazy_pattern(r"\n[ \t]{1000,}")


_deep_compact = lazy_pattern(r"(?:[-?][ \t]+){200,}")


def _shallow(text: str, limits: Limits) -> bool:
    """Whether ``text`` certainly nests less deeply than libyaml's C stack can bear.

    Brackets inside quoted strings are counted too: that can only overestimate the depth.
    """
    if text.count("[") + text.count("{") > limits.max_yaml_c_flow_openers:
        return False
    if _deep_indent().search(text) is not None or _deep_compact().search(text) is not None:
        return False
    depth = 0
    most = limits.max_yaml_c_flow_depth
    for match in _brackets().finditer(text):
        if match.group() in "[{":
            depth += 1
            if depth > most:
                return False
        elif depth:
            depth -= 1
    return True


@dataclass
class View:
    """What one reader composed: the documents it read and the error that stopped it."""

    reader: str
    docs: list[yaml.Node]
    error: BaseException | None = None


def _read(loader_cls: Any, text: str, tick: Callable[[], None] | None) -> View:
    reader = "PyYAML" if loader_cls is _ComposeLoader else "libyaml"
    docs: list[yaml.Node] = []
    try:
        loader = loader_cls(text, tick) if loader_cls is _ComposeLoader else loader_cls(text)
    except yaml.YAMLError as exc:  # the pure-Python reader checks the characters up front
        return View(reader, docs, exc)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                docs.append(node)
    except (yaml.YAMLError, RecursionError) as exc:
        return View(reader, docs, exc)
    finally:
        loader.dispose()
    return View(reader, docs)


def _read_pure(text: str, tick: Callable[[], None] | None, why: str, most: int) -> View:
    if len(text) > most:
        return View(
            "PyYAML",
            [],
            LimitExceeded(
                f"YAML of {len(text)} characters needs PyYAML's pure-Python reader ({why}), "
                f"which is refused text over {most} characters; not parsed"
            ),
        )
    return _read(_ComposeLoader, text, tick)


_cache_lock = threading.Lock()
_cache: tuple[str, tuple[int, int, int], list[View]] | None = None


def compose(
    text: str, tick: Callable[[], None] | None = None, limits: Limits = DEFAULT_LIMITS
) -> list[View]:
    """The documents of ``text`` as the loaders read them: the oracle's view first, then
    libyaml's where the two may differ (see the module docstring).

    The last result is kept, so that the sniff and the scan of the same text compose it once.
    ``tick`` may raise (the scan's deadline); nothing is kept then.
    """
    global _cache
    most = limits.max_yaml_pure_text
    bounds = (most, limits.max_yaml_c_flow_openers, limits.max_yaml_c_flow_depth)
    with _cache_lock:
        if _cache is not None and _cache[0] == text and _cache[1] == bounds:
            return _cache[2]
    if _C_LOADER is None:
        views = [_read_pure(text, tick, "libyaml is not installed", most)]
    elif not _shallow(text, limits):
        views = [_read_pure(text, tick, "nested too deeply for libyaml", most)]
    else:
        fast = _read(_C_LOADER, text, tick)
        divergent = _DIVERGENT in text
        if fast.error is None and not divergent:
            views = [fast]
        elif not divergent and len(text) > most:
            views = [fast]  # no known divergence: libyaml's error is the pure reader's too
        else:
            why = "U+FEFF inside the text" if divergent else "libyaml failed"
            views = [_read_pure(text, tick, why, most), fast]
    with _cache_lock:
        _cache = (text, bounds, views)
    return views


def _forget() -> None:
    """Drop the kept composition (another thread's loses nothing but time)."""
    global _cache
    with _cache_lock:
        _cache = None


_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "timestamp")
)


def _may_carry_code(root: yaml.Node) -> bool:
    """Whether a composed document holds a mapping or a tag beyond plain scalars and lists."""
    stack = [root]
    seen = 0
    while stack and seen < 100_000:
        node = stack.pop()
        seen += 1
        if isinstance(node, yaml.MappingNode) or node.tag not in _PLAIN_TAGS:
            return True
        stack.extend(_node_children(node))
    return bool(stack)


def composes(text: str) -> bool:
    """Whether a YAML loader reads ``text``, or reads a document of it that could carry code
    before it fails (``load_all`` constructs each document before it parses the next one).

    Any reader counts (PyYAML's pure-Python one, libyaml where it differs), and text too large
    to be read by the pure-Python reader counts as read: what cannot be told is claimed.
    """
    for view in compose(text):
        if view.error is None or isinstance(view.error, LimitExceeded):
            return True
        if any(_may_carry_code(doc) for doc in view.docs):
            return True
    return False


_NO_CHILDREN: list[yaml.Node] = []


def _node_children(node: yaml.Node) -> list[yaml.Node]:
    cls = node.__class__
    if cls is yaml.ScalarNode:
        return _NO_CHILDREN
    if cls is yaml.SequenceNode:
        return node.value  # type: ignore[no-any-return]
    if cls is yaml.MappingNode:
        return [n for pair in node.value for n in pair]
    return _NO_CHILDREN


def _measure(root: yaml.Node, ctx: ScanContext, loc: Location) -> bool:
    """Report Python tags and alias bombs in a composed graph; False if the graph is a bomb."""
    limits = ctx.config.limits
    # Post-order over distinct nodes: expanded size of every node, cycles detected on the path.
    size: dict[int, int] = {}
    on_path: set[int] = set()
    tags: dict[str, int] = {}
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    recursive = False
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1
            for child in _node_children(node):
                total += size.get(id(child), 1)
                if total > 1 << 62:
                    total = 1 << 62
            size[key] = total
            continue
        if key in size:
            continue
        if key in on_path:
            recursive = True
            continue
        distinct += 1
        if distinct % 4096 == 0:
            ctx.check_deadline()
        if distinct > limits.max_entries:
            raise LimitExceeded(f"YAML document has more than {limits.max_entries} nodes")
        tag = node.tag or ""
        if tag.startswith(_PY_TAG) or (tag.startswith("!") and "python/" in tag):
            tags[tag] = tags.get(tag, 0) + 1
        on_path.add(key)
        stack.append((node, True))
        for child in reversed(_node_children(node)):
            cid = id(child)
            if cid in on_path:
                recursive = True
            elif cid not in size:
                stack.append((child, False))
    for tag, count in sorted(tags.items()):
        short = tag.replace("tag:yaml.org,2002:", "!!")
        ctx.report(
            CFG_YAML_PYTHON_TAG,
            f"YAML tag {short} ({count}x) constructs Python objects / calls functions when read "
            "with an unsafe loader",
            loc.at(detail=short[:200]),
        )
    expanded = size.get(id(root), 1)
    bomb = expanded > 1_000_000 and expanded > 10 * distinct
    if bomb:
        ctx.report(
            CFG_YAML_ALIAS_BOMB,
            f"YAML aliases expand {distinct} distinct nodes to about {expanded} nodes "
            "(billion laughs)",
            loc,
        )
    if recursive:
        ctx.report(
            CFG_YAML_ALIAS_BOMB,
            "YAML document is recursive (an alias refers to its own ancestor): naive "
            "traversal never ends",
            loc,
            severity=Severity.MEDIUM,
        )
    return not bomb


def _scalar(node: yaml.ScalarNode) -> object:
    value = str(node.value)
    tag = node.tag
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        low = value.lower()
        return True if low in _YAML_TRUE else False if low in _YAML_FALSE else value
    if tag == "tag:yaml.org,2002:int":
        try:
            return int(value.replace("_", ""), 0) if len(value) < 64 else value
        except ValueError:
            return value
    if tag == "tag:yaml.org,2002:float":
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return value
    return value


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _key_of(node: yaml.Node) -> object:
    """How a constructor tells keys apart: scalar keys by value, others by identity."""
    if isinstance(node, yaml.ScalarNode):
        value = _scalar(node)
        try:
            hash(value)
        except TypeError:
            return ("node", id(node))
        return value
    return ("node", id(node))


class _Merger:
    """Effective key/value pairs of mappings with YAML merge keys (``<<: *base``).

    The same result as PyYAML's ``SafeConstructor.flatten_mapping`` followed by its
    ``construct_mapping`` (OmegaConf and Hydra use both): the merged mappings (themselves
    flattened first) come before the explicit pairs, so explicit keys win; in a list of
    mappings (``<<: [*a, *b]``) the earlier one wins. Unlike PyYAML, keys a later pair
    overrides are dropped here instead of copied: PyYAML's flattening doubles a list at every
    level of ``<<: [*x, *x]`` (a merge-key bomb), this stays linear in distinct keys and charges
    every pair it produces to ``budget`` (``max_entries``).
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.memo: dict[int, list[tuple[yaml.Node, yaml.Node]]] = {}

    def pairs(self, node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
        value: list[tuple[yaml.Node, yaml.Node]] = node.value
        if not any(k.tag == _MERGE_TAG for k, _ in value):
            return value
        done = self.memo.get(id(node))
        if done is not None:
            return done
        self.memo[id(node)] = [p for p in value if p[0].tag != _MERGE_TAG]  # cycles stop here
        merged: dict[object, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in value:
            if k.tag != _MERGE_TAG:
                continue
            sources = (
                [v]
                if isinstance(v, yaml.MappingNode)
                else (list(v.value) if isinstance(v, yaml.SequenceNode) else [])
            )
            for source in reversed(sources):
                if isinstance(source, yaml.MappingNode):
                    for pair in self.pairs(source):
                        merged[_key_of(pair[0])] = pair  # later wins, as construct_mapping
        explicit = [p for p in value if p[0].tag != _MERGE_TAG]
        for k, _ in explicit:
            merged.pop(_key_of(k), None)
        out = [*merged.values(), *explicit]
        self.budget -= len(out)
        if self.budget < 0:
            raise LimitExceeded("YAML merge keys (<<) expand to more pairs than max_entries")
        self.memo[id(node)] = out
        return out


def _to_python(
    root: yaml.Node,
    shadows: list[dict[object, object]] | None = None,
    *,
    max_pairs: int = 1_000_000,
) -> object:
    """Plain values for a composed graph; shared nodes give shared objects, cycles stop.

    Merge keys are applied as PyYAML applies them (:class:`_Merger`). A mapping with a
    repeated key keeps the last value (as PyYAML does); ``shadows`` receives the mapping as
    the *first* values build it, since other readers keep the first or refuse the document:
    both versions are checked.
    """
    made: dict[int, object] = {}
    merger = _Merger(max_pairs)

    def shell(node: yaml.Node) -> object:
        if isinstance(node, yaml.MappingNode):
            return {}
        if isinstance(node, yaml.SequenceNode):
            return []
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        return None

    made[id(root)] = shell(root)
    stack = [root]
    while stack:
        node = stack.pop()
        obj = made[id(node)]
        pairs = merger.pairs(node) if isinstance(node, yaml.MappingNode) else None
        children = [n for p in pairs for n in p] if pairs is not None else _node_children(node)
        for child in children:
            if id(child) not in made:
                made[id(child)] = shell(child)
                stack.append(child)
        if pairs is not None and isinstance(obj, dict):
            first: dict[object, object] | None = None
            for k, v in pairs:
                key = made[id(k)]
                try:
                    hash(key)
                except TypeError:
                    key = f"<{type(key).__name__} key>"
                if key in obj and first is None and shadows is not None and len(shadows) < 4096:
                    first = {}
                    shadows.append(first)
                obj[key] = made[id(v)]
            if first is not None:
                for k, v in pairs:
                    key = made[id(k)]
                    try:
                        first.setdefault(key, made[id(v)])
                    except TypeError:
                        continue
        elif isinstance(node, yaml.SequenceNode) and isinstance(obj, list):
            obj.extend(made[id(c)] for c in node.value)
    return made[id(root)]


def _doc_count(view: View) -> str:
    n = len(view.docs)
    size = _graph_size(view.docs)
    error = f" then an error ({_problem(view.error)})" if view.error else ""
    return f"{n} document(s) of {size} nodes{error}"


def _problem(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    return str(problem)


def _graph_size(docs: list[yaml.Node], limit: int = 1_000_000) -> int:
    """Distinct nodes in ``docs`` (up to ``limit``): a cheap sign that two readers differ."""
    seen: set[int] = set()
    stack = list(docs)
    while stack and len(seen) < limit:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(_node_children(node))
    return len(seen)


def scan_yaml(text: str, ctx: ScanContext, loc: Location) -> None:
    """Check every document of ``text`` as each reader that may differ composes it."""
    views = compose(text, ctx.check_deadline, ctx.limits)
    _forget()  # the scan is the last reader: do not keep a large graph alive after it
    max_pairs = ctx.config.limits.max_entries
    for view in views:
        for node in view.docs:
            _measure(node, ctx, loc)
            shadows: list[dict[object, object]] = []
            _check_document(_to_python(node, shadows, max_pairs=max_pairs), ctx, loc)
            for shadow in shadows:
                _check_document(shadow, ctx, loc)
    oracle = views[0]
    if len(views) > 1:
        other = views[1]
        if (
            (oracle.error is None) != (other.error is None)
            or len(oracle.docs) != len(other.docs)
            or _graph_size(oracle.docs) != _graph_size(other.docs)
        ):
            ctx.report(
                CFG_MALFORMED,
                f"YAML readers disagree: {oracle.reader} (OmegaConf, Hydra, yaml.load) reads "
                f"{_doc_count(oracle)}, {other.reader} reads {_doc_count(other)}; both were "
                "checked",
                loc,
                severity=Severity.MEDIUM,
            )
    error = oracle.error
    if error is None:
        return
    if isinstance(error, LimitExceeded):
        ctx.report(_rules.LIMIT_EXHAUSTED, str(error), loc, severity=Severity.HIGH)
    elif isinstance(error, RecursionError):
        ctx.report(CFG_MALFORMED, "YAML nested too deeply to parse; rest not checked", loc)
    else:
        mark = getattr(error, "problem_mark", None)
        offset = getattr(mark, "index", None)
        hinted = has_code_hint(text)
        ctx.report(
            CFG_MALFORMED,
            f"invalid YAML after {len(oracle.docs)} document(s): {_problem(error)}; rest "
            "checked by text only",
            loc.at(offset if isinstance(offset, int) else None),
            severity=Severity.MEDIUM if hinted else Severity.LOW,
        )
    _fallback_yaml(text, ctx, loc)
