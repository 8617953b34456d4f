"""YAML composition for the config scanner, imported only when a YAML document is scanned.

PyYAML costs about 20 ms to import (its reader compiles a large regular expression), which
every ``mltrust scan`` would otherwise pay at start-up whether or not it meets YAML.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from mltrust.errors import LimitExceeded
from mltrust.findings import Location, Severity
from mltrust.scan._context import ScanContext
from mltrust.scan.formats._rules_keras_config import (
    CFG_MALFORMED,
    CFG_YAML_ALIAS_BOMB,
    CFG_YAML_PYTHON_TAG,
)
from mltrust.scan.formats.config import (
    _PY_TAG,
    _YAML_FALSE,
    _YAML_TRUE,
    _check_document,
    _fallback_yaml,
)


class _ComposeLoader(yaml.SafeLoader):
    """The safe loader, used only to *compose* node graphs (never to construct objects)."""


#: libyaml's composer (fast) recurses on the C stack without a limit, so it only gets documents
#: whose nesting is provably shallow; others go to the pure-Python composer, which raises
#: RecursionError instead of crashing.
_C_LOADER: type | None = getattr(yaml, "CSafeLoader", None)
_MAX_C_FLOW_OPENERS = 2_000_000
_MAX_C_FLOW_DEPTH = 500
_BRACKETS = re.compile(r"[\[\]{}]")
_DEEP_INDENT = re.compile(r"\n[ \t]{1000,}")
_DEEP_COMPACT = re.compile(r"(?:[-?][ \t]+){200,}")


def _shallow(text: str) -> bool:
    """Whether ``text`` certainly nests less deeply than libyaml's C stack can bear.

    Brackets inside quoted strings are counted too: that can only overestimate the depth.
    """
    if text.count("[") + text.count("{") > _MAX_C_FLOW_OPENERS:
        return False
    if _DEEP_INDENT.search(text) is not None or _DEEP_COMPACT.search(text) is not None:
        return False
    depth = 0
    for match in _BRACKETS.finditer(text):
        if match.group() in "[{":
            depth += 1
            if depth > _MAX_C_FLOW_DEPTH:
                return False
        elif depth:
            depth -= 1
    return True


def _compose_all(text: str) -> Iterator[yaml.Node]:
    loader_cls: Any = _C_LOADER if _C_LOADER is not None and _shallow(text) else _ComposeLoader
    loader = loader_cls(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield node
    finally:
        loader.dispose()


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
    before it fails (``load_all`` constructs each document before it parses the next one)."""
    docs: list[yaml.Node] = []
    try:
        docs.extend(_compose_all(text))
    except (yaml.YAMLError, RecursionError):
        return any(_may_carry_code(doc) for doc in docs)
    return True


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


def _to_python(root: yaml.Node, shadows: list[dict[object, object]] | None = None) -> object:
    """Plain values for a composed graph; shared nodes give shared objects, cycles stop.

    A mapping with a repeated key keeps the last value (as PyYAML does); ``shadows`` receives
    the mapping as the *first* values build it, since other readers keep the first or refuse
    the document: both versions are checked.
    """
    made: dict[int, object] = {}

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
        for child in _node_children(node):
            if id(child) not in made:
                made[id(child)] = shell(child)
                stack.append(child)
        if isinstance(node, yaml.MappingNode) and isinstance(obj, dict):
            first: dict[object, object] | None = None
            for k, v in node.value:
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
                for k, v in node.value:
                    key = made[id(k)]
                    try:
                        first.setdefault(key, made[id(v)])
                    except TypeError:
                        continue
        elif isinstance(node, yaml.SequenceNode) and isinstance(obj, list):
            obj.extend(made[id(c)] for c in node.value)
    return made[id(root)]


def scan_yaml(text: str, ctx: ScanContext, loc: Location) -> None:
    docs = 0
    try:
        for node in _compose_all(text):
            docs += 1
            _measure(node, ctx, loc)
            shadows: list[dict[object, object]] = []
            _check_document(_to_python(node, shadows), ctx, loc)
            for shadow in shadows:
                _check_document(shadow, ctx, loc)
    except RecursionError:
        ctx.report(CFG_MALFORMED, "YAML nested too deeply to parse; rest not checked", loc)
        _fallback_yaml(text, ctx, loc)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        offset = getattr(mark, "index", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        ctx.report(
            CFG_MALFORMED,
            f"invalid YAML after {docs} document(s): {problem}; rest checked by text only",
            loc.at(offset if isinstance(offset, int) else None),
            severity=Severity.LOW,
        )
        _fallback_yaml(text, ctx, loc)
