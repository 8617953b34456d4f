"""The table of precompiled dataclass methods (mltrust._precompiled): current, and exact."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import types
from pathlib import Path

import pytest

from mltrust import _precompiled
from mltrust._precompiled_table import TABLE

ROOT = Path(__file__).resolve().parent.parent


def _shape(code: types.CodeType) -> tuple[object, ...]:
    """What a code object does, without where it was written (file, lines, qualified name)."""
    consts = tuple(_shape(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return (
        code.co_name,
        code.co_code,
        consts,
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_flags,
        code.co_stacksize,
    )


def _compiled_as_dataclasses_does(text: str) -> types.CodeType:
    # mltrust: ignore[MLT-CODE-013] the table's own keys: dataclasses' method texts
    module = compile(text, "<string>", "exec", dont_inherit=True)
    (code,) = [c for c in module.co_consts if isinstance(c, types.CodeType)]
    return code


def test_every_entry_is_the_compilation_of_its_key() -> None:
    assert len(TABLE) > 50
    for text, code in TABLE.items():
        assert _shape(code) == _shape(_compiled_as_dataclasses_does(text)), text[:200]


def test_a_changed_text_misses_the_table() -> None:
    text = next(iter(TABLE))
    assert text + " " not in TABLE and text.replace("self", "this") not in TABLE


def test_the_table_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_precompiled.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_short_scan_compiles_no_dataclass_text(tmp_path: Path) -> None:
    import pickle

    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps({"w": [0.5] * 8}, protocol=4))
    code = (
        "from mltrust.cli._main import main\n"
        "from mltrust import _precompiled\n"
        f"main(['scan', {str(model)!r}])\n"
        "print('misses', len(_precompiled.misses))\n"
        "from mltrust.findings import Location\n"
        "print('from', Location.__init__.__code__.co_filename)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "misses 0" in proc.stdout, proc.stdout + proc.stderr
    assert "_precompiled_table.py" in proc.stdout  # the method came from the table


def _install_and_define(**kwargs: object) -> type:
    """A class not in the table, made while the shim is installed (the miss path)."""
    _precompiled.install()
    assert vars(dataclasses).get("exec") is not None
    namespace: dict[str, object] = {"__name__": "probe_module"}
    # No `from __future__ import annotations` in this source: annotations are objects.
    source = "class Probe:\n    size: int\n    label: str = 'x'\n"
    # mltrust: ignore[MLT-CODE-005] a fixed class body written by this test
    exec(compile(source, "<probe>", "exec", dont_inherit=True), namespace)
    cls = namespace["Probe"]
    assert isinstance(cls, type)
    return dataclasses.dataclass(**kwargs)(cls)  # type: ignore[call-overload,no-any-return]


@pytest.mark.parametrize("kwargs", [{}, {"frozen": True}, {"frozen": True, "slots": True}])
def test_a_class_outside_the_table_gets_what_dataclasses_gives(kwargs: dict[str, bool]) -> None:
    before = len(_precompiled.misses)
    cls = _install_and_define(**kwargs)
    assert len(_precompiled.misses) > before  # compiled, not found
    # compiled without this test module's __future__ flags: the annotation is the type itself
    assert cls.__init__.__annotations__["size"] is int  # type: ignore[misc]
    one, two = cls(3), cls(3)
    assert one == two and repr(one) == "Probe(size=3, label='x')"
    if kwargs.get("frozen"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            one.size = 4  # type: ignore[attr-defined]
        assert hash(one) == hash(two)


def test_a_table_class_matches_a_plain_dataclass() -> None:
    """Location's methods came from the table: they behave as plain dataclass ones would."""
    from mltrust.findings import Location

    assert "Location(" in repr(Location(path="a"))
    assert Location(path="a") == Location(path="a") and Location(path="a") != Location(path="b")
    assert hash(Location(path="a")) == hash(Location(path="a"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        Location(path="a").path = "b"  # type: ignore[misc]
    init = Location.__init__
    assert init.__qualname__ == "Location.__init__"
    assert init.__module__ == "mltrust.findings"
