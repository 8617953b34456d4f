"""Whether ``module:name`` could resolve where the scan runs, decided without importing.

Used in one place: pickle.load's reading of a joblib object array's pickle, where the outer
stream's memo values stand in for the array pickle's own. Every real dump then "imports" pairs
such as ``NumpyArrayWrapper:dtype`` or ``collections:datetime``, which fail at load time; an
attacker who shifts the memo on purpose picks a pair that resolves (``uu:encode``, red team
rtscan6). The difference is whether the loading process can import the module and finds the
name in it; this module answers that for the environment of the scan, statically:

* a module this process has already imported is judged by its namespace, read as a dict
  (numpy is imported for this when a pair names it: the only module imported here, and never
  one the file chooses); an object of another type than a plain module in ``sys.modules``
  (a subclass whose class hooks attribute access, ``torch._VF``) resolves everything;
* any other module is located with the path finder (``PathFinder``: it searches ``sys.path``
  and runs no module code; ``importlib.util.find_spec`` asks every meta-path finder, and
  setuptools' distutils shim imports setuptools to answer), then by walking the package
  folders on disk for submodules, implicit namespace subpackages included;
* a module found but not imported yet resolves: pickle.load imports it, running its code,
  before the ``getattr`` that would fail (an installed ``__main__`` module, a script), red
  team rtresolve; only joblib's own modules, which every joblib file imports first, are read:
* their source is parsed with :mod:`ast` and the names its top level binds are collected
  (definitions, assignments, imports, also inside top-level ``if``/``try``/``with`` blocks).

So in practice "cannot resolve" means: the module is not found (its import fails before any
code of it runs), or this process imported it and its namespace lacks the name.
``__main__`` is the loader's own script and always resolves.

Anything this cannot decide counts as resolving (fail closed): a built-in, frozen or compiled
module, a source that does not parse or is too large, a module ``__getattr__``, a star import,
or top-level code that calls ``globals``/``setattr``/``vars``/``exec`` or touches ``__dict__``.
The answer is about the scanning machine; a loader with other packages installed, or another
``sys.path`` (its working directory, a folder shipped beside the model), may resolve more,
which is why only this one reading, whose pairs are memo artefacts in every real file, uses it
(NOT FIXED, red team rtresolve: a module beside the file on the loader's path).
"""

from __future__ import annotations

import ast
import functools
import importlib.machinery
import os
import sys
import types

from mltrust.config import DEFAULT_LIMITS
from mltrust.files import loader_folder

__all__ = ["found_beside", "may_resolve"]

#: Modules whose PEP 562 ``__getattr__`` returns only submodules (lazily imported) or raises
#: for removed aliases: numpy 2's (``linalg``, ``fft``, ``char``... and the expired names).
_HOOK_ONLY_SUBMODULES = frozenset({"numpy"})
#: Calls in top-level code that bind names this reading cannot see.
_DYNAMIC_CALLS = frozenset({"globals", "setattr", "vars", "exec", "locals"})
#: Meta-path finders that answer from sys.path or the interpreter, running no package code.
_PLAIN_FINDERS = frozenset(
    {
        importlib.machinery.BuiltinImporter,
        importlib.machinery.FrozenImporter,
        importlib.machinery.PathFinder,
    }
)
#: Top-level names setuptools' DistutilsMetaFinder (distutils-precedence.pth) serves by
#: importing setuptools: never asked, counted as resolving.
_MAYBE_SERVED = frozenset({"distutils", "pip"})
#: Other meta-path finders known to serve no module the path finder would not find, except
#: the names in _MAYBE_SERVED (see _plain_finder_serves for the ones not listed).
_KNOWN_FINDERS = frozenset(
    {
        ("_distutils_hack", "DistutilsMetaFinder"),
        ("_pytest.assertion.rewrite", "AssertionRewritingHook"),
    }
)
#: Modules whose namespace is the running program's: the loader's differs from the scanner's.
_PER_PROCESS = frozenset({"__main__", "__mp_main__"})
#: Modules every joblib file's outer stream imports (allowlisted) before its object arrays.
_IMPORTED_BY_JOBLIB_FILES = frozenset({"joblib", "joblib.numpy_pickle"})


@functools.lru_cache(maxsize=1024)
def may_resolve(module: str, name: str) -> bool:
    """False only when ``module`` cannot be found here, or importing it runs no code a file
    could choose (imported already, or joblib's own) and it binds no ``name``."""
    parts = module.split(".")
    if not all(parts):
        return False  # __import__ refuses an empty name or part
    if any(os.sep in p or (os.altsep and os.altsep in p) for p in parts):
        # Never in a folder's listing, so no finder finds it; joined to a package folder it
        # would name any file on this machine ("joblib./tmp/x" -> /tmp/x/__init__.py).
        return False
    # Not-identifier spellings import too (a file "my-mod.py" on the path; an attribute set
    # by setattr): they are decided like any other (red team rtresolve).
    first = name.split(".", 1)[0]
    if module in _PER_PROCESS:
        return True  # the loading process's own script, not this one's
    if parts[0] == "numpy" and "numpy" not in sys.modules:
        _import_numpy()
    loaded = sys.modules.get(module)
    if loaded is not None:
        if type(loaded) is not types.ModuleType:
            return True  # a module subclass or object put in sys.modules: hooks on its class
        # Already imported by this process: its namespace is the answer, read as a dict (no
        # attribute hook runs). A module-level __getattr__ may add names, so such a module
        # resolves everything, except the reviewed ones whose hook only hands out submodules
        # or raises (calling a module object fails).
        namespace = vars(loaded)
        if first in namespace:
            return True
        return "__getattr__" in namespace and module not in _HOOK_ONLY_SUBMODULES
    top = parts[0]
    if top in sys.builtin_module_names:
        return True
    if top in _MAYBE_SERVED or not _plain_finder_serves(module):
        return True  # a finder that runs package code to answer (or serves names unseen)
    try:
        # The path finder only: importlib.util.find_spec asks every meta-path finder, and
        # some import packages to answer (setuptools' DistutilsMetaFinder, red team
        # rtresolve). Searching sys.path runs no module code.
        spec = importlib.machinery.PathFinder.find_spec(top)
    except (ImportError, ValueError):
        return True
    if spec is None:
        return False
    origin: str | None = spec.origin
    if not _inert(top):
        return True  # found: pickle.load imports it, running its code, before any getattr
    folders = list(spec.submodule_search_locations or [])
    for i, part in enumerate(parts[1:], start=2):
        if not folders:
            return False  # a plain module has no submodules
        origin = _find_submodule(folders, part)
        if origin is None:
            return False
        if not _inert(".".join(parts[:i])):
            return True  # found and imported by the loader: its code runs
        if os.path.isdir(origin):
            # Implicit namespace subpackage (a folder without __init__.py inside a package,
            # flask/sansio): its modules are found in it (red team rtresolve).
            folders, origin = [origin], None
        elif os.path.basename(origin) == "__init__.py":
            folders = [os.path.dirname(origin)]
        else:
            folders = []
    if not origin or not origin.endswith(".py"):
        return True  # compiled, frozen or namespace: cannot read what it binds
    return _source_binds(origin, first)


def _plain_finder_serves(module: str) -> bool:
    """Whether ``module`` is left to the path finder by the finders of this process.

    Only six's importer is known to serve virtual modules (``six.moves...``) the path finder
    does not see. Other meta-path finders (editable installs, import hooks of whatever the
    host application imported) are NOT taken as serving every name: a process that imported
    one of a hundred libraries would then report every real object-array dump (the full test
    suite did). The residual risk, named: a module that only such a finder serves, whose
    import has side effects, is judged as missing here."""
    return all(_plain_finder(f, module) for f in sys.meta_path if _is_six(f))


def _is_six(finder: object) -> bool:
    kind = finder if isinstance(finder, type) else type(finder)
    return kind.__name__ == "_SixMetaPathImporter"


def _plain_finder(finder: object, module: str) -> bool:
    """Whether ``finder`` serves ``module`` only if the path finder finds it."""
    kind = finder if isinstance(finder, type) else type(finder)
    if kind in _PLAIN_FINDERS:
        return True
    if kind.__name__ == "_SixMetaPathImporter":
        # six (and its vendored copies) serves the virtual ``<six>.moves...`` modules only
        prefix = getattr(finder, "name", None)
        return isinstance(prefix, str) and not module.startswith(prefix + ".")
    # setuptools' shim serves only _MAYBE_SERVED (and test.* submodules of the stdlib);
    # pytest's assertion rewriter serves the files the path finder finds, rewritten.
    return (kind.__module__, kind.__qualname__) in _KNOWN_FINDERS


def _inert(module: str) -> bool:
    """Whether the loader's import of ``module`` runs no code a file could choose: modules
    this process has imported (importing them here did nothing harmful), and joblib's own,
    which the outer stream of every joblib file imports first (NumpyArrayWrapper)."""
    return module in sys.modules or module in _IMPORTED_BY_JOBLIB_FILES


def _import_numpy() -> None:
    """numpy itself, never a module the file names: every file on this path holds numpy
    arrays, and numpy's namespace lives in compiled modules no source reading can list (the
    shifted pairs of real dumps are numpy modules with the pickle's own names, numpy:Counter)."""
    try:
        importlib.import_module("numpy")
    except ImportError:
        pass


def _find_submodule(folders: list[str], part: str) -> str | None:
    for folder in folders:
        package = os.path.join(folder, part, "__init__.py")
        if os.path.isfile(package):
            return package
        plain = os.path.join(folder, part + ".py")
        if os.path.isfile(plain):
            return plain
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        if any(e.startswith(part + ".") and e.endswith((".so", ".pyd")) for e in entries):
            return os.path.join(folder, part + ".so")  # compiled: decided as resolving
        if os.path.isdir(os.path.join(folder, part)):
            return os.path.join(folder, part)  # namespace package: resolving
    return None


def _source_binds(path: str, name: str) -> bool:
    try:
        if os.path.getsize(path) > DEFAULT_LIMITS.max_resolve_source_bytes:
            return True
        with open(path, encoding="utf-8", errors="replace") as fh:
            source = fh.read()
        tree = ast.parse(source)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return True
    return name in _top_level_names(tree.body)


class _Dynamic(Exception):
    """The module binds names this reading cannot list: any name may resolve."""


def _top_level_names(body: list[ast.stmt]) -> set[str]:
    try:
        return _bound(body)
    except _Dynamic:
        return _Everything()


def _bound(body: list[ast.stmt]) -> set[str]:
    """Every name the module's top-level code binds: definitions, imports, and every name
    stored outside a function or class body (assignments, ``for``/``with`` targets, walrus,
    ``except ... as``, ``match`` captures), in any block. Raises :class:`_Dynamic` for what
    binds names unseen: a star import, a module ``__getattr__`` (defined or assigned, as
    lazy-loader does), ``global`` in a function, or a call to globals/setattr/vars/exec."""
    names: set[str] = set()
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if any(isinstance(n, (ast.Global, ast.Nonlocal)) for n in ast.walk(node)):
                raise _Dynamic
            stack.extend(node.decorator_list)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    raise _Dynamic
                names.add(alias.asname or alias.name.split(".", 1)[0])
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in _DYNAMIC_CALLS:
                raise _Dynamic
        elif isinstance(node, ast.Attribute) and node.attr == "__dict__":
            raise _Dynamic
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (isinstance(node, ast.ExceptHandler) and node.name) or (
            isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name
        ):
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
        stack.extend(ast.iter_child_nodes(node))
    if "__getattr__" in names:
        raise _Dynamic
    return names


class _Everything(set[str]):
    def __contains__(self, item: object) -> bool:
        return True


def found_beside(path: str, module: str) -> bool:
    """Whether the folder of ``path`` (the scanned file) holds ``module``'s top-level module or
    package. A loader started in that folder, or a script next to the file, has the folder
    first on ``sys.path`` (a Hub repository ships ``model.pkl`` and its ``.py`` files
    together), so such a module resolves for the loader whatever the scanner's own path
    holds (red team rtresolve). An unreadable folder counts as holding it."""
    top = module.split(".", 1)[0]
    if not top or top in (".", "..") or "/" in top or "\\" in top or "\x00" in top:
        return False
    folder = loader_folder(path) if path else os.getcwd()
    try:
        names = os.listdir(folder)
    except OSError:
        return True
    return any(
        name == top
        or name in (top + ".py", top + ".pyc", top + ".pth")
        or (name.startswith(top + ".") and name.endswith((".so", ".pyd")))
        for name in names
    )
