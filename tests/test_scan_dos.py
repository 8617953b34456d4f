"""Slow-pickle DoS: pickles crafted to make the static analysis super-linear.

The analysis walks a graph of symbolic values that a pickle can make deep and heavily shared
(DUP, memo GET, MARK stacks, nested BUILD, dtypes sharing one dtype at every level). Every walk
is memoised by node identity or charged to one budget per analysis; the budget's visit counter
(``PickleSummary.visits``) is what these tests measure, so they do not depend on timing except
for a few generous wall bounds on pickles the old analysis never finished.
"""

from __future__ import annotations

import time

import pytest

from _adversarial_pickles import (
    GENERATORS,
    LOADER,
    PROTO,
    TUPLE1,
    dtype_fanout,
)
from mltrust.config import ScanConfig
from mltrust.findings import Location, Severity
from mltrust.scan import scan_bytes
from mltrust.scan._context import ScanContext
from mltrust.scan._pickle import PickleSummary, scan_pickle_stream
from mltrust.scan._pickle import _rules as R

BUDGET_MESSAGE = "analysis budget exhausted"


def analyse(data: bytes, deadline: float | None = None) -> tuple[PickleSummary, ScanContext]:
    ctx = ScanContext(config=ScanConfig(), deadline=deadline)
    summary = scan_pickle_stream(memoryview(data), ctx, Location("model.pkl"))
    return summary, ctx


def budget_findings(ctx: ScanContext) -> list[str]:
    return [f.message for f in ctx.findings if BUDGET_MESSAGE in f.message]


#: Generators whose analysis must be linear, with a small and a 4x larger size.
LINEAR = {
    "shared_tower": 300,
    "shared_tower_mark": 300,
    "shared_tower_untracked": 300,
    "redteam_mark_variant": 300,
    "call_tower": 300,
    "wide_args": 2000,
    "describe_tower": 300,
    "deep_nesting": 2000,
    "build_chain": 500,
    "dtype_fanout": 16,
    "nested_payload": 2000,
}


@pytest.mark.parametrize("name", sorted(LINEAR))
def test_value_graph_walks_grow_linearly_with_the_pickle(name: str) -> None:
    n = LINEAR[name]
    small = GENERATORS[name](n)
    large = GENERATORS[name](4 * n)
    s_small, ctx_small = analyse(small)
    s_large, ctx_large = analyse(large)
    # Four times the input costs at most about four times the visits, and a few per byte.
    assert s_large.visits <= 4.5 * s_small.visits + 1000, (s_small.visits, s_large.visits)
    assert s_large.visits <= 16 * len(large) + 1000
    assert not budget_findings(ctx_small) and not budget_findings(ctx_large)


def test_dup_tower_opened_under_a_mark_is_described_in_bounded_time() -> None:
    """The red team's MARK-opened variant: the parse error's message wrote the whole tower."""
    data = GENERATORS["redteam_mark_variant"](2000)
    started = time.monotonic()
    worst = scan_bytes(data, "model.pkl").findings
    assert time.monotonic() - started < 5
    messages = [f.message for f in worst if "APPEND to" in f.message]
    assert messages and all(len(m) < 300 for m in messages)


def test_dup_tower_in_a_parse_error_message_is_cut_short() -> None:
    data = GENERATORS["describe_tower"](5000)
    started = time.monotonic()
    _, ctx = analyse(data)
    assert time.monotonic() - started < 5
    (message,) = [f.message for f in ctx.findings if "REDUCE on a non-callable" in f.message]
    assert "(((...;" in message and len(message) < 300


def test_dtype_fields_sharing_one_dtype_at_every_level_are_walked_once() -> None:
    """16 levels of 64 fields sharing the level below: 64**16 paths, a few thousand nodes."""
    data = dtype_fanout(64)
    summary, ctx = analyse(data)
    assert summary.complete
    assert summary.visits < 16 * len(data)
    assert not budget_findings(ctx)


def test_rebuilding_a_large_dtype_again_and_again_exhausts_the_budget_unsafe() -> None:
    """Each BUILD of the top dtype walks its whole structure: quadratic, so it is cut off."""
    data = GENERATORS["dtype_rebuild"](200_000)
    summary, ctx = analyse(data)
    assert not summary.complete
    (finding,) = [f for f in ctx.findings if BUDGET_MESSAGE in f.message]
    assert finding.severity is Severity.HIGH
    assert "treated as unsafe" in finding.message
    # The counter stopped at the budget: base plus two per byte, plus the last charge.
    assert summary.visits <= 500_000 + 2 * len(data) + 50_000
    result = scan_bytes(data, "model.pkl")
    assert any(f.severity is Severity.HIGH and BUDGET_MESSAGE in f.message for f in result.findings)


def test_build_from_one_large_shared_state_is_constant_time_per_build() -> None:
    """100k BUILDs from the same 4096-key dict (the old special-key check read every key)."""
    data = GENERATORS["build_chain"](100_000)
    started = time.monotonic()
    summary, _ = analyse(data)
    assert summary.complete
    assert time.monotonic() - started < 10


def test_same_embedded_pickle_loaded_many_times_is_scanned_once() -> None:
    data = GENERATORS["nested_payload"](20_000)
    _, ctx = analyse(data)
    nested = [f for f in ctx.findings if f.rule_id == R.NESTED_PICKLE.id]
    assert len(nested) == 1


def test_deadline_is_checked_inside_the_value_walks() -> None:
    """Fewer opcodes than the opcode loop's deadline check period, many walk visits."""
    data = GENERATORS["shared_tower_mark"](8000)
    summary, ctx = analyse(data, deadline=time.monotonic() - 1)
    assert summary.opcodes < 65536 and not summary.complete
    assert any("time limit" in f.message for f in ctx.findings)


def test_loader_nested_deeper_than_the_old_walk_depth_is_still_followed() -> None:
    """A restricted loader 40 tuples deep in a list: the old walk stopped at depth 32."""
    data = PROTO + b"]" + LOADER + TUPLE1 * 40 + b"a."
    _, ctx = analyse(data)
    assert any(f.rule_id == R.CALLABLE_FLOW.id for f in ctx.findings)


def test_one_wide_argument_tuple_passed_to_many_calls_is_walked_once() -> None:
    """10k-item arguments (memo GET) to 20k calls: the old per-call argument walk took minutes."""
    data = GENERATORS["wide_args"](20_000)
    started = time.monotonic()
    summary, _ = analyse(data)
    assert summary.complete
    assert time.monotonic() - started < 10
    assert summary.visits <= 2 * len(data)
