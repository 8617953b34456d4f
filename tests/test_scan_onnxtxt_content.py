"""ONNX's own text syntax recognised by content, whatever the file is called.

``onnx.load(path, format="onnxtxt")`` and ``onnx.parser.parse_model`` read a model in ONNX text
syntax from any file: with or without its ``<...>`` header, after any white space and ``#``
comments. The scanner recognises the same text by content (the graph's signature read by our
parser, not a pattern), fails closed on text that opens like a graph but does not parse, and
claims nothing else: a corpus of real text files (the installed packages' scripts, docs and
configs) and hand-written near misses (arrow functions, calls, shell functions) stay unclaimed.
onnx itself is the oracle throughout.
"""

from __future__ import annotations

import os
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from mltrust.findings import Severity
from mltrust.scan._registry import detect
from test_scan_redteam8 import _rules  # the worst severity of each rule a scan reports

_GRAPH = "agraph (float[N] X) => (float[N] Y) {\n  Y = evil.ns.Run(X)\n}\n"
_FUNCTION = "F (a) => (b) {\n  b = Relu(a)\n}\n"


def _oracle(text: str) -> Any:
    """The ModelProto onnx.parser builds from ``text`` (raises ParseError where it builds none)."""
    onnx = pytest.importorskip("onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the onnxtxt format is experimental"
        return onnx.parser.parse_model(text)


def _oracle_parses(text: str) -> bool:
    onnx = pytest.importorskip("onnx")
    try:
        _oracle(text)
    except onnx.parser.ParseError:
        return False
    return True


def _claimed(data: bytes, name: str = "model.txt") -> bool:
    return "onnx-text" in {s.name for s in detect(memoryview(data), name)}


# -- what onnx.parser reads without a header is recognised ----------------------------------

_HEADERLESS = {
    "graph": _GRAPH,
    "leading_white_space": "\n\n \t\v\f\r\n" + _GRAPH,
    "leading_comments": "#!/usr/bin/env onnx\n# a model\n#\n" + _GRAPH,
    "comments_between_tokens": "agraph # name\n ( # inputs\n float[N] X) # out\n=> (float[N] Y)"
    "\n# body\n{ Y = evil.ns.Run(X) }",
    "quoted_graph_name": '"a graph" (float[N] X) => (float[N] Y) { Y = evil.ns.Run(X) }',
    "no_inputs": "g => (float[N] Y) { Y = evil.ns.Run() }",
    "untyped_io_and_value_infos": "g (X) => (Y) <float[2] T> { T = evil.ns.Run(X) Y = Neg(T) }",
    "initializer_in_inputs": "g (float[2] X, float[2] W = {1.0, 2.0}) => (float[2] Y) "
    "{ Y = evil.ns.Run(X, W) }",
    "with_functions": _GRAPH + _FUNCTION + "G (x) => (y) { y = Neg(x) }\n",
    "crlf": _GRAPH.replace("\n", "\r\n"),
    "trailing_comment": _GRAPH + "# end",
    # the parser reads a C string: everything after the first NUL is ignored
    "nul_then_junk": _GRAPH + "\0 this is not ONNX {",
    # padding that a bounded look at the head of the file would not see past
    "long_comment_padding": "# pad\n" * 40_000 + _GRAPH,
    "long_space_inside_the_signature": "agraph" + " " * 300_000 + _GRAPH[len("agraph") :],
    "long_initializer_in_the_signature": "g (float[N] X, float[50000] W = {"
    + ", ".join(["1.5"] * 50_000)
    + "}) => (float[N] Y) { Y = evil.ns.Run(X, W) }",
}


@pytest.mark.parametrize("case", sorted(_HEADERLESS))
def test_onnxtxt_without_header_is_recognised_by_content(case: str) -> None:
    text = _HEADERLESS[case]
    model = _oracle(text)
    assert ("evil.ns", "Run") in {(n.domain, n.op_type) for n in model.graph.node}
    assert _claimed(text.encode())
    rules = _rules(text.encode(), "model.txt")
    assert rules.get("MLT-ONX-005") == Severity.MEDIUM, rules
    assert "MLT-ONX-007" not in rules, rules  # read, not just claimed


def test_onnxtxt_without_header_is_loaded_by_onnx_under_any_name(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    for name in ("model.txt", "model", "model.py", "README.md", "model.json"):
        path = tmp_path / name
        path.write_text(_GRAPH)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = onnx.load(str(path), format="onnxtxt", load_external_data=False)
        assert model.graph.node[0].domain == "evil.ns"
        assert _rules(path.read_bytes(), name).get("MLT-ONX-005") == Severity.MEDIUM, name


def test_onnxtxt_header_with_comments_inside_is_recognised() -> None:
    text = '<# header\n ir_version # version\n: 8, opset_import: ["": 17]>\n' + _GRAPH
    assert _oracle(text).ir_version == 8
    assert _rules(text.encode(), "model.txt").get("MLT-ONX-005") == Severity.MEDIUM


def test_onnxtxt_header_after_long_comment_padding_is_recognised() -> None:
    text = "# pad\n" * 2_000 + '<ir_version: 8, opset_import: ["": 17]>\n' + _GRAPH
    assert _oracle(text).ir_version == 8
    assert _rules(text.encode(), "model.txt").get("MLT-ONX-005") == Severity.MEDIUM


def test_onnx_textproto_after_long_comment_padding_is_recognised(tmp_path: Path) -> None:
    """The protobuf text form (``format="textproto"``) skips the same comments: its sniff
    looked at the first 4 KiB only."""
    onnx = pytest.importorskip("onnx")
    model_text = 'ir_version: 8\ngraph { node { op_type: "Run" domain: "evil.ns" } }\n'
    text = "# pad\n" * 2_000 + model_text
    path = tmp_path / "model.txt"
    path.write_text(text)
    model = onnx.load(str(path), format="textproto", load_external_data=False)
    assert model.graph.node[0].domain == "evil.ns"
    assert _rules(text.encode(), "model.txt").get("MLT-ONX-005") == Severity.MEDIUM


def test_onnxtxt_external_data_without_header_is_reported() -> None:
    text = 'g (float[2] X = ["location": "../../etc/passwd"]) => (float[2] Y) { Y = Neg(X) }'
    assert _oracle(text).graph.initializer[0].external_data[0].value == "../../etc/passwd"
    assert _rules(text.encode(), "weights.cfg").get("MLT-ONX-002") == Severity.HIGH


def test_benign_onnxtxt_without_header_is_quiet() -> None:
    text = (
        "# a small classifier\nagraph (float[N, 4] X, float[4, 2] W) => (float[N, 2] Y) {\n"
        "  T = MatMul(X, W)\n  Y = Softmax <axis = -1> (T)\n}\n"
    )
    _oracle(text)
    assert _claimed(text.encode())
    rules = _rules(text.encode(), "model.txt")
    rules.pop("MLT-CFG-006", None)  # the YAML reader's note on text that is not YAML (low)
    assert rules == {}, rules


# -- what opens like a graph but does not parse fails closed --------------------------------

_BROKEN = {
    "unterminated_body": _GRAPH.rstrip().rstrip("}"),
    "trailing_junk": _GRAPH + "garbage",
    "trailing_semicolon": _GRAPH + ";",
    "non_ascii_operator": "g (float[2] X) => (float[2] Y) { Y = \u00e9vil(X) }",
    "unterminated_string": 'g (float[2] X) => (float[2] Y) { Y = E <s = "x> (X) }',
    "invalid_utf8_after_the_signature": "g (X) => (Y) { Y = evil.ns.Run(X) }",
}


@pytest.mark.parametrize("case", sorted(_BROKEN))
def test_onnxtxt_graph_that_does_not_parse_fails_closed(case: str) -> None:
    """A graph signature (name, inputs, ``=>``, outputs, ``{``) is ONNX text to every reader
    that knows the syntax; a body onnx.parser cannot read either is not a model, but one our
    parser cannot read may be one it reads: medium, not analysed (as for ``.onnxtxt``)."""
    data = _BROKEN[case].encode()
    if case == "invalid_utf8_after_the_signature":
        data += b"\n# \xff\xfe\n"
    else:
        assert not _oracle_parses(_BROKEN[case])
    assert _claimed(data)
    assert _rules(data, "model.txt").get("MLT-ONX-007") == Severity.MEDIUM


# -- nothing else is claimed ----------------------------------------------------------------

_NEAR_MISSES = {
    # JavaScript / TypeScript
    "js_arrow": "const f = (a) => (b) { return a }\n",
    "js_arrow_bare": "(a, b) => { return a + b }\n",
    "js_arrow_call": "items.map((x) => (x * 2))\n",
    "js_arrow_named_then": "f => (x) + 1\n",
    "js_call_with_arrow": "describe('x', () => {\n  it('works', () => { expect(1).toBe(1) })\n})\n",
    "js_iife": "(function () { 'use strict'; })();\n",
    "js_webpack": 'webpackJsonp([1], {0: function(e, t) { e.exports = "x" }})\n',
    "ts_type": "type F = (a: number) => void;\nexport default F;\n",
    "ts_generic_arrow": "export const id = <T>(x: T): T => x;\n",
    "ts_method": "foo(a: number): Promise<void> => { }\n",
    # Python
    "python_call": 'setup(name="x", version="1.0")\n',
    "python_lambda": "f = lambda x: (x)\n",
    "python_comment_banner": "#" * 80 + "\n# a script\n" + "#" * 80 + "\nimport os\n",
    "python_print": "print ( 'hello' )\n",
    # shell, C, Makefile
    "shell_function": "#!/bin/sh\nfoo () {\n  echo hi\n}\nfoo\n",
    "c_function": "int main (int argc) { return 0; }\n",
    "makefile": "all: build\n\nbuild:\n\tcc -o x x.c\n",
    # Markdown, plain text, data
    "markdown": "# Title\n\nSome text (with parentheses) => (an arrow) {braces}.\n",
    "markdown_onnx_doc": "# ONNX text\n\n```\n" + _GRAPH + "```\n",
    "prose": "Note (see below) => results\n",
    "word": "agraph\n",
    "words": "agraph\nbgraph\n",
    "hex_line": "deadbeef" * 20_000 + "\n",
    "csv": "a,b,c\n1,2,3\n",
    "ini": "[section]\nkey = value\n",
    "json": '{"graph": "g (X) => (Y) { }"}\n',
    # near the grammar but not it (onnx.parser rejects each)
    "bom": "\ufeff" + _GRAPH,
    "slash_comment": "// model\n" + _GRAPH,
    "nbsp": "\u00a0" + _GRAPH,
    "no_graph_name": "(float[N] X) => (float[N] Y) { Y = evil.ns.Run(X) }",
    "digit_graph_name": "1g (float[N] X) => (float[N] Y) { Y = evil.ns.Run(X) }",
    "spaced_arrow": "g (float[N] X) = > (float[N] Y) { Y = evil.ns.Run(X) }",
    "nul_first": "\0" + _GRAPH,
    "nul_in_signature": "agraph (float[N] X)\0 => (float[N] Y) { Y = evil.ns.Run(X) }",
    "only_comments": "# a\n# b\n",
    "empty": "",
}


@pytest.mark.parametrize("case", sorted(_NEAR_MISSES))
def test_text_that_is_not_onnx_text_is_not_claimed(case: str) -> None:
    text = _NEAR_MISSES[case]
    assert not _oracle_parses(text)
    assert not _claimed(text.encode("utf-8"))
    assert "MLT-ONX-007" not in _rules(text.encode("utf-8"), "notes.txt")


def test_onnxtxt_detection_costs_little_on_comment_banners() -> None:
    """A file opening with a long ``#`` banner line once took exponential time in the ONNX
    and TensorFlow text sniffers' patterns (a comment run could be split any way)."""
    data = ("#" * 4000 + "\nimport os\n").encode()
    started = time.perf_counter()
    detect(memoryview(data), "script.py")
    assert time.perf_counter() - started < 2.0


_MUTATION_TOKENS = ("(", ")", "=>", "=", ">", "<", "{", "}", ",", " ", "\n", "#c\n", '"q"', "float")
_MUTATION_TOKENS += ("[N]", "X", "\0", ".", ":", "seq(", "1", "-", "\\")


def test_every_mutation_onnx_reads_is_claimed_and_read() -> None:
    """Seeded mutations (inserted tokens, deletions, truncations) of the models above and of
    the near misses: whatever onnx.parser reads, the detector claims and our parser reads; and
    the detector never raises."""
    from mltrust.scan.formats._onnxtxt import parse_model
    from mltrust.scan.formats.onnx import is_onnx_text_syntax

    onnx = pytest.importorskip("onnx")
    rng = random.Random(20261204)
    seeds = [t for t in (*_HEADERLESS.values(), *_NEAR_MISSES.values()) if len(t) < 5000]
    read = 0
    for _ in range(3000):
        text = rng.choice(seeds)
        for _ in range(rng.randint(1, 4)):
            at, roll = rng.randint(0, len(text)), rng.random()
            if roll < 0.4:
                text = text[:at] + rng.choice(_MUTATION_TOKENS) + text[at:]
            elif roll < 0.7:
                text = text[:at] + text[at + rng.randint(1, 5) :]
            else:
                text = text[:at]
        claimed = is_onnx_text_syntax(memoryview(text.encode()))
        try:
            _oracle(text)
        except onnx.parser.ParseError:
            continue
        read += 1
        assert claimed, text
        parse_model(text, 200, 1_000_000)
    assert read >= 50, read


_CORPUS_SUFFIXES = (
    ".js",
    ".mjs",
    ".ts",
    ".py",
    ".pyi",
    ".txt",
    ".md",
    ".rst",
    ".cfg",
    ".ini",
    ".toml",
    ".yaml",
    ".yml",
    ".sh",
    ".html",
    ".css",
    ".c",
    ".cpp",
    ".h",
    ".json",
    ".in",
)
_CORPUS_PER_SUFFIX = 1500
_CORPUS_MAX_BYTES = 1 << 20


def _corpus() -> list[Path]:
    """Up to ``_CORPUS_PER_SUFFIX`` text files of each kind (and dist-info METADATA files) from
    the installed packages, spread over the whole tree, in a deterministic order."""
    roots = [Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    if not roots:
        pytest.skip("no site-packages folder on sys.path")
    by_kind: dict[str, list[Path]] = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                kind = "METADATA" if name == "METADATA" else os.path.splitext(name)[1]
                if kind in _CORPUS_SUFFIXES or kind == "METADATA":
                    by_kind.setdefault(kind, []).append(Path(folder, name))
    picked: list[Path] = []
    for paths in by_kind.values():
        step = max(1, len(paths) // _CORPUS_PER_SUFFIX)
        picked.extend(paths[::step][:_CORPUS_PER_SUFFIX])
    return picked


def test_no_installed_text_file_is_claimed_as_onnx_text() -> None:
    """The installed packages' scripts, type stubs, docs, configs, licences and C sources
    (thousands of files; licences open with ``Copyright (c)``, scripts with calls and arrow
    functions, so the parser runs on some) are neither ONNX text by content nor claimed by the
    ONNX text scanner."""
    from mltrust.scan.formats.onnx import OnnxTextScanner, is_onnx_text_syntax

    started = time.perf_counter()
    scanner = OnnxTextScanner()
    claimed: list[str] = []
    seen = 0
    for path in _corpus():
        try:
            data = path.read_bytes()[:_CORPUS_MAX_BYTES]
        except OSError:
            continue
        seen += 1
        view = memoryview(data)
        if is_onnx_text_syntax(view) or scanner.sniff(view, path.name):
            claimed.append(str(path))
    assert seen >= 3000, seen
    assert claimed == []
    assert time.perf_counter() - started < 20.0
