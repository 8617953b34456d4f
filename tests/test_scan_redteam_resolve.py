"""Red-team findings (rtresolve): where ``may_resolve`` says "cannot resolve" but the loading
process's import resolves the pair, or runs code anyway.

``may_resolve`` excuses an unknown import in pickle.load's reading of a joblib object array's
pickle (see test_scan_redteam6.py for how the memo shift is built). Each attack compares the
static answer with what a real import does, or builds a whole file where pickle.load runs a
harmless payload (a marker file) while the scan must report it medium or worse.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan._pickle._resolve import may_resolve

joblib = pytest.importorskip("joblib")
np = pytest.importorskip("numpy")


from test_scan_redteam6 import _object_array_dump, _u  # noqa: E402  the same file builders


def _memo_shift_file(tmp_path: Path, module: str, args: tuple[str, str]) -> Path:
    """joblib.load imports _codecs:encode (allowlisted); pickle.load imports ``module``:encode
    at the same opcode (outer memo 0 overwritten with ``module``) and calls it with ``args``."""
    outer = _object_array_dump(tmp_path)
    build = outer.index(b"ub\x80\x05") + 1
    overwrite = _u(module) + b"q\x000" + _u(args[0]) + _u(args[1]) + b"\x86q\x020"
    inner = (
        b"\x80\x04" + _u("_codecs") + b"\x94" + _u("x") + b"\x94" + _u("a") + _u("latin1")
        + b"\x86\x94000" + b"h\x00" + _u("encode") + b"\x93h\x02R."
    )  # fmt: skip
    path = tmp_path / "model.pkl"
    path.write_bytes(outer[:build] + overwrite + b"b" + inner + b".")
    return path


def _worst(path: Path) -> Severity | None:
    findings = scan_bytes(path.read_bytes(), path.name).findings
    return max((f.severity for f in findings), default=None)


def test_excused_import_of_existing_module_runs_its_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import that "cannot resolve" because the module lacks the name still imports the
    module: its top-level code runs before the getattr fails. Installed modules do things when
    imported (``numpy.f2py.__main__`` runs f2py's main on the loader's argv,
    ``gevent.monkey.__main__`` runs ``sys.argv[1]`` as a script, ``antigravity`` starts a
    browser); here a module on the loader's path writes the marker when imported.

    Expected: medium+ finding. Actual: may_resolve("mlt_sidefx", "encode") is False (the
    source binds no ``encode``), so pickle.load's import is excused: scan clean.
    """
    marker = tmp_path / "marker"
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "mlt_sidefx.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    path = _memo_shift_file(tmp_path, "mlt_sidefx", ("/dev/null", "unused"))
    env = dict(os.environ, PYTHONPATH=str(lib))
    subprocess.run(
        [sys.executable, "-c", "import pickle,sys; pickle.load(open(sys.argv[1],'rb'))", path],
        check=False, capture_output=True, timeout=180, env=env,
    )  # fmt: skip
    assert marker.exists()  # pickle.load imported the module (then failed on the name)
    monkeypatch.syspath_prepend(str(lib))
    may_resolve.cache_clear()
    try:
        worst = _worst(path)
    finally:
        may_resolve.cache_clear()
    assert worst is not None and worst >= Severity.MEDIUM, worst


def test_namespace_subpackage_of_a_regular_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder without ``__init__.py`` inside a regular package is an implicit namespace
    subpackage (``flask/sansio``, ``opentelemetry/sdk/metrics/...``, ``google/cloud/...``):
    the walk gave up on its modules ("a plain module has no submodules"), so every pair in
    them read as "cannot resolve" (flask.sansio.scaffold:defaultdict resolves)."""
    (tmp_path / "mlt_nspkg").mkdir()
    (tmp_path / "mlt_nspkg" / "__init__.py").write_text("")
    (tmp_path / "mlt_nspkg" / "sub").mkdir()
    (tmp_path / "mlt_nspkg" / "sub" / "mod.py").write_text("hidden = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    may_resolve.cache_clear()
    decided = may_resolve("mlt_nspkg.sub.mod", "hidden")
    assert hasattr(importlib.import_module("mlt_nspkg.sub.mod"), "hidden")
    assert decided


def test_resolution_imports_nothing_through_meta_path_finders() -> None:
    """``importlib.util.find_spec("distutils")`` asks setuptools' DistutilsMetaFinder
    (distutils-precedence.pth), which imports ``setuptools._distutils``, i.e. runs setuptools'
    package code in the scanning process and puts setuptools/_vendor on sys.path (after which
    more pairs "resolve": answers then depend on what an earlier file named)."""
    code = (
        "import sys\n"
        "from mltrust.scan._pickle._resolve import may_resolve\n"
        "finders = [type(f).__name__ for f in sys.meta_path]\n"
        "before = set(sys.modules)\n"
        "may_resolve('distutils', 'nothing_here')\n"
        "print('DistutilsMetaFinder' in finders, sorted(set(sys.modules) - before)[:5])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    if not out.startswith("True"):
        pytest.skip("no setuptools distutils hack in this environment")
    assert out.strip() == "True []", out


@pytest.mark.parametrize("module", ["__main__", "__mp_main__"])
def test_main_module_is_the_loaders_script(module: str) -> None:
    """``__main__`` in the loading process is the victim's script (which defines or imports
    whatever it likes: ``from datetime import time``...), not the scanner's: never "cannot
    resolve" from this process's namespace."""
    assert may_resolve(module, "mlt_not_in_the_scanner_main")


def test_not_identifier_module_name_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``__import__("mlt-dash")`` imports a file ``mlt-dash.py``: the import system does not
    require identifiers, so such a pair was decided "cannot resolve" without a look."""
    (tmp_path / "mlt-dash.py").write_text("hidden = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    may_resolve.cache_clear()
    decided = may_resolve("mlt-dash", "hidden")
    assert hasattr(importlib.import_module("mlt-dash"), "hidden")
    assert decided


def test_module_subclass_in_sys_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """A package may replace its module by an object whose class hooks attribute access
    (``torch._VF``, ``pygments.lexers``, ``torch.backends.*``): the instance dict read as a
    namespace misses the class's ``__getattr__``."""
    import types

    class _Lazy(types.ModuleType):
        def __getattr__(self, attr: str) -> object:
            return len

    monkeypatch.setitem(sys.modules, "mlt_lazy_subclass", _Lazy("mlt_lazy_subclass"))
    may_resolve.cache_clear()
    assert getattr(sys.modules["mlt_lazy_subclass"], "hidden") is len
    assert may_resolve("mlt_lazy_subclass", "hidden")


def test_module_next_to_the_file_on_the_loaders_path(tmp_path: Path) -> None:
    """The loading process's sys.path starts with its script's folder or its working
    directory (``python -c``, a notebook): a model folder that ships ``mlt_sidefx.py`` beside
    ``model.pkl`` (a Hub repository) puts it on the loader's path, not on the scanner's. Same
    for folders other imports add (setuptools adds setuptools/_vendor: more_itertools.more
    resolves after ``import setuptools``). may_resolve says "not found", the import is
    excused, and pickle.load runs the module's code.

    Expected: medium+ finding. Was: clean. Fixed for the scanned file's own folder (a module
    found there counts as resolving); a loader started in some other folder that holds the
    module is still not known to the scanner.
    """
    marker = tmp_path / "marker"
    lib = tmp_path / "repo"
    lib.mkdir()
    (lib / "mlt_sidefx2.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    path = _memo_shift_file(lib, "mlt_sidefx2", ("/dev/null", "unused"))
    subprocess.run(
        [sys.executable, "-c", "import pickle,sys; pickle.load(open(sys.argv[1],'rb'))", path],
        check=False, capture_output=True, timeout=180, cwd=lib,
    )  # fmt: skip
    assert marker.exists()  # pickle.load imported the module from its working directory
    may_resolve.cache_clear()
    import mltrust

    report = mltrust.scan(path)  # scanned where it lies: its folder is known
    worst = max((f.severity for f in report.findings), default=None)
    assert worst is not None and worst >= Severity.MEDIUM, worst


def test_six_moves_are_served_by_six_importer() -> None:
    """six's meta-path importer (installed by ``import six``, which pandas' dateutil does)
    serves ``six.moves.*`` modules found in no folder: they resolve (six.moves:range), while
    it leaves other names to the path finder (a real dump's NumpyArrayWrapper:dtype)."""
    six = pytest.importorskip("six")
    may_resolve.cache_clear()
    assert hasattr(importlib.import_module(f"{six.__name__}.moves"), "range")
    assert may_resolve(f"{six.__name__}.moves", "range")
    assert may_resolve(f"{six.__name__}.moves.urllib", "parse")
    assert not may_resolve("NumpyArrayWrapper", "dtype")


def test_path_separators_in_module_name_read_no_other_file(tmp_path: Path) -> None:
    """Guards the not-identifier change above: ``joblib./<dir>`` joined to joblib's folder
    names ``<dir>/__init__.py`` anywhere on the scanning machine, whose source would be read
    (a file the pickle chooses making the answer). No finder finds such a module (a folder
    listing holds no "/")."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("def __getattr__(name):\n    return len\n")
    module = f"joblib.{tmp_path / 'pkg'}"
    may_resolve.cache_clear()
    with pytest.raises(ImportError):
        importlib.import_module(module)
    assert not may_resolve(module, "anything")


@pytest.mark.parametrize(
    ("shipped", "found"),
    [
        ("mlt_beside.py", True),
        ("mlt_beside/__init__.py", True),
        ("mlt_beside.cpython-311-x86_64-linux-gnu.so", True),
        ("mlt_beside_not.py", False),
        ("other.py", False),
    ],
)
def test_module_shipped_beside_the_scanned_file(tmp_path: Path, shipped: str, found: bool) -> None:
    from mltrust.scan._pickle._resolve import found_beside

    (tmp_path / shipped).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / shipped).write_text("")
    model = tmp_path / "model.pkl"
    assert found_beside(str(model), "mlt_beside.sub") is found
    assert not found_beside(str(model), "../etc")
