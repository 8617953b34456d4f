"""Every bound on untrusted input lives in :class:`mltrust.config.Limits`, and a user's
``[scan.limits]`` reaches the scanners.

The first test keeps the rule: no module but ``config.py`` defines a module- or class-level name
starting with ``MAX_`` or ``_MAX_`` (a new bound goes into ``Limits``; a format fact or a
presentation cap gets a name that does not read as a limit). The others lower a limit that moved
into ``Limits`` and check that a crafted input, which passes with the defaults, is then reported.
"""

from __future__ import annotations

import ast
import io
import pickle
import tarfile
from pathlib import Path

import pytest

import mltrust
from mltrust.config import (
    DEFAULT_LIMITS,
    SCAN_TABLE_LIMITS,
    Limits,
    ScanConfig,
    load_scan_config,
    scan_config_from_table,
)
from mltrust.errors import ConfigError
from mltrust.scan._engine import scan_bytes
from mltrust.scan._rules import LIMIT_EXHAUSTED

_PACKAGE = Path(mltrust.__file__).resolve().parent


def _bound_names(tree: ast.Module) -> list[tuple[int, str]]:
    """``(line, name)`` of every module- and class-level name that reads as a bound."""
    out: list[tuple[int, str]] = []

    def targets(node: ast.stmt) -> list[ast.expr]:
        if isinstance(node, ast.Assign):
            return list(node.targets)
        if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            return [node.target]
        return []

    def names(target: ast.expr) -> list[str]:
        if isinstance(target, ast.Name):
            return [target.id]
        if isinstance(target, (ast.Tuple, ast.List)):
            return [n for elt in target.elts for n in names(elt)]
        return []

    def scan(body: list[ast.stmt]) -> None:
        for node in body:
            for target in targets(node):
                for name in names(target):
                    if name.startswith(("MAX_", "_MAX_")):
                        out.append((node.lineno, name))
            if isinstance(node, ast.ClassDef):
                scan(node.body)
            elif isinstance(node, (ast.If, ast.Try)):  # ``if TYPE_CHECKING:``, try/except imports
                scan(node.body)
                scan(node.orelse)
                for handler in getattr(node, "handlers", []):
                    scan(handler.body)

    scan(tree.body)
    return out


def test_no_bound_outside_limits() -> None:
    modules = sorted(_PACKAGE.rglob("*.py"))
    assert len(modules) > 100  # the walk found the package
    offenders = [
        f"{path.relative_to(_PACKAGE)}:{line}: {name}"
        for path in modules
        if path != _PACKAGE / "config.py"
        for line, name in _bound_names(ast.parse(path.read_text("utf-8")))
    ]
    assert offenders == [], (
        "bounds on untrusted input belong in mltrust.config.Limits (a format fact or a "
        "presentation cap: rename it so it does not start with MAX_):\n" + "\n".join(offenders)
    )


def test_the_rule_sees_module_and_class_level_bounds() -> None:
    tree = ast.parse(
        "_MAX_A = 1\nMAX_B: int = 2\nclass C:\n    _MAX_C = 3\n"
        "if True:\n    _MAX_D = 4\ndef f():\n    _MAX_LOCAL = 5\n_SHOWN = 6\n"
    )
    assert [name for _, name in _bound_names(tree)] == ["_MAX_A", "MAX_B", "_MAX_C", "_MAX_D"]


def test_scan_limits_table_sets_moved_fields_and_rejects_unknown_or_zero() -> None:
    config = scan_config_from_table({"limits": {"max_tar_link_hops": 3, "max_pickle_memo": 10}})
    assert config.limits.max_tar_link_hops == 3
    assert config.limits.max_pickle_memo == 10
    assert config.limits.max_archive_depth == Limits().max_archive_depth
    with pytest.raises(ConfigError, match="unknown limit"):
        scan_config_from_table({"limits": {"max_tar_links": 3}})
    with pytest.raises(ConfigError, match="must be positive"):
        scan_config_from_table({"limits": {"max_tar_link_hops": 0}})
    with pytest.raises(ConfigError, match="must be a number"):
        scan_config_from_table({"limits": {"max_pickle_memo": "10"}})
    assert Limits() == DEFAULT_LIMITS


def test_mltrust_toml_scan_limits_reach_the_config(tmp_path: Path) -> None:
    toml = tmp_path / "mltrust.toml"
    toml.write_text("[scan.limits]\nmax_pickle_memo = 1000\nmax_zip_raw_crc_bytes = 4096\n")
    limits = load_scan_config(toml).limits
    assert (limits.max_pickle_memo, limits.max_zip_raw_crc_bytes) == (1000, 4096)
    toml.write_text("[scan.limits]\nmax_memo = 1000\n")
    with pytest.raises(ConfigError, match="unknown limit"):
        load_scan_config(toml)


def _link_chain_tar() -> bytes:
    """A folder reached through four symbolic links, and a file written through them."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        folder = tarfile.TarInfo("d")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, target in (("l4", "d"), ("l3", "l4"), ("l2", "l3"), ("l1", "l2")):
            link = tarfile.TarInfo(name)
            link.type = tarfile.SYMTYPE
            link.linkname = target
            tar.addfile(link)
        body = b"just text\n"
        info = tarfile.TarInfo("l1/notes.txt")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def _link_messages(config: ScanConfig) -> list[str]:
    result = scan_bytes(_link_chain_tar(), "bundle.tar", config)
    return [f.message for f in result.findings if "links (a loop)" in f.message]


def test_user_set_tar_link_hops_takes_effect() -> None:
    # Four hops: well inside Linux's 40 (the default), a loop once the user allows two.
    assert _link_messages(ScanConfig()) == []
    low = ScanConfig(limits=Limits(max_tar_link_hops=2))
    messages = _link_messages(low)
    assert messages
    assert all("more than 2 links" in m for m in messages)


def _memoizing_pickle(entries: int) -> bytes:
    """A protocol-4 pickle that memoizes one list ``entries`` times (a memo that big)."""
    return b"\x80\x04]" + b"\x94" * entries + b"."


def test_user_set_pickle_memo_takes_effect() -> None:
    data = _memoizing_pickle(70_000)  # past the 65536 opcodes between memo checks
    # mltrust: ignore[MLT-CODE-001] the real unpickler as oracle, on bytes the test built
    assert pickle.loads(data) == []  # a valid pickle
    default = scan_bytes(data, "model.pkl")
    assert [f for f in default.findings if f.rule_id == LIMIT_EXHAUSTED.id] == []
    low = scan_bytes(data, "model.pkl", ScanConfig(limits=Limits(max_pickle_memo=1000)))
    limited = [f for f in low.findings if f.rule_id == LIMIT_EXHAUSTED.id]
    assert limited, [f.message for f in low.findings]
    assert "memo" in limited[0].message


def test_scan_limits_table_refuses_bounds_a_scan_does_not_read() -> None:
    # a bound set in [scan.limits] that no scan reads would be a silent no-op: refused instead
    for name in ("max_git_index_bytes", "max_bundle_bytes", "max_jinja_values"):
        with pytest.raises(ConfigError, match=name):
            scan_config_from_table({"limits": {name: 10}})
    assert "max_tar_link_hops" in SCAN_TABLE_LIMITS
    assert "max_profile_bytes" not in SCAN_TABLE_LIMITS


def test_limits_init_takes_every_field_by_name_and_nothing_else() -> None:
    """``Limits`` writes its own ``__init__`` (start-up cost, issue 10): it must accept every field
    by keyword, refuse an unknown name or a positional value, stay frozen and validated, and
    compare, hash and pickle by its values as the generated methods did."""
    import dataclasses

    names = [f.name for f in dataclasses.fields(Limits)]
    values = {name: getattr(DEFAULT_LIMITS, name) + 1 for name in names}
    limits = Limits(**values)
    assert all(getattr(limits, name) == values[name] for name in names)
    assert limits == Limits(**values) and hash(limits) == hash(Limits(**values))
    assert limits != DEFAULT_LIMITS
    assert Limits(max_entries=DEFAULT_LIMITS.max_entries + 1) != DEFAULT_LIMITS
    assert Limits(max_entries=DEFAULT_LIMITS.max_entries) == DEFAULT_LIMITS
    # mltrust: ignore[MLT-CODE-001] round trip of a config this test pickled itself
    assert pickle.loads(pickle.dumps(ScanConfig(limits=limits))).limits == limits
    with pytest.raises(TypeError, match="max_entires"):
        Limits(max_entires=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Limits(1)  # type: ignore[misc]
    with pytest.raises(ConfigError, match="max_entries"):
        Limits(max_entries=-1)
    with pytest.raises(ConfigError, match="max_entries"):
        Limits(max_entries="many")  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_entries = 1  # type: ignore[misc]
    assert dataclasses.replace(limits, max_entries=3).max_entries == 3
    import inspect

    params = inspect.signature(Limits).parameters  # what help() and docs/api.md show
    assert list(params) == names
    assert all(p.kind is p.KEYWORD_ONLY for p in params.values())
    assert [p.default for p in params.values()] == [getattr(DEFAULT_LIMITS, n) for n in names]
