"""Red-team findings (issue 11) on the code rules: other ways to run code or unpickle data --
torch.hub, multiprocessing connections, importlib/zipimport/imp loaders of a file, doctest
runners, pickling key-value stores, sandbox-escape gadgets (``__subclasses__``, ``__globals__``,
frame globals, ``__code__`` replacement), ``ctypes.pythonapi`` and low-level process spawning.
Each attack must be a finding of the named rule; the benign neighbours must stay clean."""

from __future__ import annotations

import pytest

from mltrust.evidence._code_ast import analyse_source

PICKLE, TORCH, REMOTE, DYNAMIC = "MLT-CODE-001", "MLT-CODE-002", "MLT-CODE-006", "MLT-CODE-013"
INTERNALS, SPAWN = "MLT-CODE-017", "MLT-CODE-018"


def _rules(source: str) -> set[str]:
    return {h.rule.id for h in analyse_source(source)}


ATTACKS = {
    # -- torch.hub: downloads a repository and runs its hubconf.py, or unpickles a checkpoint
    "torch_hub_load_runs_hubconf": ("import torch\ntorch.hub.load(repo, 'm')\n", REMOTE),
    "torch_hub_load_imported_as": ("from torch.hub import load as L\nL('a/b', 'm')\n", REMOTE),
    "torch_hub_load_literal_repo": ("import torch\ntorch.hub.load('a/b', 'm')\n", REMOTE),
    "torch_hub_list_runs_hubconf": ("import torch.hub as h\nh.list('a/b')\n", REMOTE),
    "torch_hub_state_dict_from_url_unpickles": (
        "import torch\ntorch.hub.load_state_dict_from_url(u)\n",
        TORCH,
    ),
    "torch_model_zoo_load_url_unpickles": (
        "from torch.utils import model_zoo\nmodel_zoo.load_url(u)\n",
        TORCH,
    ),
    "torch_package_importer_getattr": (
        "import torch\ngetattr(torch.package, 'PackageImporter')(p)\n",
        PICKLE,
    ),
    # -- multiprocessing connections unpickle what the peer sends
    "mp_client_recv": (
        "from multiprocessing.connection import Client\nc = Client(addr)\nc.recv()\n",
        PICKLE,
    ),
    "mp_client_recv_chained": (
        "import multiprocessing.connection as mc\nmc.Client(addr).recv()\n",
        PICKLE,
    ),
    "mp_client_recv_with": (
        "from multiprocessing.connection import Client\nwith Client(addr) as c:\n    c.recv()\n",
        PICKLE,
    ),
    "mp_listener_accept_recv": (
        "from multiprocessing.connection import Listener\n"
        "l = Listener(addr)\nconn = l.accept()\nconn.recv()\n",
        PICKLE,
    ),
    "mp_listener_accept_recv_chained": (
        "from multiprocessing import connection\nconnection.Listener(a).accept().recv()\n",
        PICKLE,
    ),
    "mp_connection_from_fd_recv": (
        "import multiprocessing.connection as mc\nmc.Connection(fd).recv()\n",
        PICKLE,
    ),
    "mp_forking_pickler_loads": (
        "from multiprocessing.reduction import ForkingPickler\nForkingPickler.loads(b)\n",
        PICKLE,
    ),
    # -- modules loaded from a file chosen at run time
    "importlib_spec_from_file_location": (
        "import importlib.util\ns = importlib.util.spec_from_file_location('m', p)\n"
        "m = importlib.util.module_from_spec(s)\ns.loader.exec_module(m)\n",
        DYNAMIC,
    ),
    "importlib_source_file_loader": (
        "from importlib.machinery import SourceFileLoader\n"
        "SourceFileLoader('m', p).load_module()\n",
        DYNAMIC,
    ),
    "importlib_sourceless_loader_literal": (
        "import importlib.machinery as im\nim.SourcelessFileLoader('m', 'x.pyc').exec_module(m)\n",
        DYNAMIC,
    ),
    "zipimporter_load_module": (
        "import zipimport\nzipimport.zipimporter(p).load_module('m')\n",
        DYNAMIC,
    ),
    "imp_load_source": ("import imp\nimp.load_source('m', p)\n", DYNAMIC),
    "imp_load_compiled": ("import imp\nimp.load_compiled('m', 'a.pyc')\n", DYNAMIC),
    "pkgutil_get_importer": (
        "import pkgutil\npkgutil.get_importer(p).find_spec('m').loader.exec_module(m)\n",
        DYNAMIC,
    ),
    # -- doctest runs the examples of a string as code
    "doctest_run_docstring_examples": (
        "import doctest\ndoctest.run_docstring_examples(s, {})\n",
        DYNAMIC,
    ),
    "doctest_run_docstring_examples_literal_payload": (
        "import doctest\n"
        "doctest.run_docstring_examples('>>> import pickle; pickle.loads(b)', {})\n",
        PICKLE,
    ),
    "doctest_testfile": ("import doctest\ndoctest.testfile(p)\n", DYNAMIC),
    "doctest_runner_run": (
        "import doctest\nt = doctest.DocTestParser().get_doctest(s, {}, 'n', None, 0)\n"
        "doctest.DocTestRunner().run(t)\n",
        DYNAMIC,
    ),
    "doctest_debug_src": ("import doctest\ndoctest.debug_src(s)\n", DYNAMIC),
    "doctest_get_doctest_literal_payload": (
        "import doctest\nt = doctest.DocTestParser().get_doctest("
        "'>>> import os; os.posix_spawn(p, a, e)', {}, 'n', None, 0)\n",
        SPAWN,
    ),
    # -- pickling key-value stores
    "sqlitedict_default_decode": ("from sqlitedict import SqliteDict\nSqliteDict(p)\n", PICKLE),
    "sqlitedict_open": ("import sqlitedict\nsqlitedict.open(p)\n", PICKLE),
    "diskcache_cache": ("import diskcache\ndiskcache.Cache(p).get(k)\n", PICKLE),
    "diskcache_fanout_aliased": (
        "from diskcache import FanoutCache as FC\nFC(p)\n",
        PICKLE,
    ),
    "diskcache_pickling_disk": (
        "import diskcache\ndiskcache.Cache(p, disk=diskcache.Disk)\n",
        PICKLE,
    ),
    "klepto_file_archive": (
        "from klepto.archives import file_archive\nfile_archive(p).load()\n",
        PICKLE,
    ),
    # -- sandbox-escape gadgets
    "subclasses_of_tuple_base": ("x = ().__class__.__base__.__subclasses__()\n", INTERNALS),
    "object_subclasses": ("object.__subclasses__()\n", INTERNALS),
    "subclasses_by_getattr": ("getattr(object, '__subclasses__')()\n", INTERNALS),
    "function_globals": ("f.__globals__['os']\n", INTERNALS),
    "function_builtins": ("f.__builtins__['eval']\n", INTERNALS),
    "code_replacement": ("f.__code__ = g.__code__\n", INTERNALS),
    "code_replacement_setattr": ("setattr(f, '__code__', c)\n", INTERNALS),
    "generator_frame_globals": ("g.gi_frame.f_globals['x']\n", INTERNALS),
    "caller_frame_globals": ("import sys\nsys._getframe(1).f_globals\n", INTERNALS),
    # -- the C API and low-level process spawning
    "ctypes_pythonapi_run_string": (
        "import ctypes\nctypes.pythonapi.PyRun_SimpleString(b'x')\n",
        DYNAMIC,
    ),
    "ctypes_pythonapi_from_import": (
        "from ctypes import pythonapi as api\napi.PyObject_SetAttr(a, b, c)\n",
        INTERNALS,
    ),
    "ctypes_pydll_of_the_interpreter": (
        "import ctypes\nctypes.pydll.LoadLibrary(None).PyRun_SimpleString(b'x')\n",
        INTERNALS,
    ),
    "posixsubprocess_fork_exec": (
        "import _posixsubprocess\n_posixsubprocess.fork_exec(a)\n",
        SPAWN,
    ),
    "posix_system": ("import posix\nposix.system(c)\n", SPAWN),
    "nt_system": ("from nt import system\nsystem(c)\n", SPAWN),
    "winapi_create_process": ("import _winapi\n_winapi.CreateProcess(a, c)\n", SPAWN),
    "os_posix_spawn": ("import os\nos.posix_spawn(p, a, e)\n", SPAWN),
    "os_posix_spawnp_getattr": ("import os\ngetattr(os, 'posix_spawnp')(p, a, e)\n", SPAWN),
    "pty_spawn": ("import pty\npty.spawn(['sh'])\n", SPAWN),
    "posix_spawn_handed_to_a_thread": (
        "import os, threading\nthreading.Thread(target=os.posix_spawn, args=a).start()\n",
        SPAWN,
    ),
    "torch_hub_load_handed_to_map": ("import torch\nlist(map(torch.hub.load, repos))\n", REMOTE),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_a_finding(name: str) -> None:
    source, rule = ATTACKS[name]
    assert rule in _rules(source), (name, [h.message for h in analyse_source(source)])


BENIGN = {
    "json_loads": "import json\njson.loads(s)\n",
    "torch_load_weights_only": "import torch\ntorch.load(p, weights_only=True)\n",
    "state_dict_from_url_weights_only": (
        "import torch\ntorch.hub.load_state_dict_from_url(u, weights_only=True)\n"
    ),
    "torch_jit_load": "import torch\ntorch.jit.load(p)\n",
    "numpy_load_default": "import numpy as np\nnp.load(p)\n",
    "import_module_literal": "import importlib\nimportlib.import_module('json')\n",
    "doctest_parser_only_splits_text": (
        "import doctest\ndoctest.DocTestParser().get_examples(text)\n"
    ),
    "mp_queue": "import multiprocessing as mp\nq = mp.Queue()\nq.put(1)\n",
    "mp_recv_bytes": ("from multiprocessing.connection import Client\nClient(addr).recv_bytes()\n"),
    "socket_recv": "import socket\ns = socket.socket()\ns.recv(10)\n",
    "sqlitedict_json_decode": (
        "import json\nfrom sqlitedict import SqliteDict\n"
        "SqliteDict(p, encode=json.dumps, decode=json.loads)\n"
    ),
    "diskcache_json_disk": ("import diskcache\ndiskcache.Cache(p, disk=diskcache.JSONDisk)\n"),
    "class_name": "x.__class__.__name__\n",
    "code_introspection": "n = f.__code__.co_varnames\n",
    "coroutine_frame_introspection": "line = coro.cr_frame.f_lineno\n",
    "ctypes_cdll_system": (
        "import ctypes, ctypes.util\nctypes.CDLL(ctypes.util.find_library('c'))\n"
    ),
    "subprocess_list": "import subprocess\nsubprocess.run(['ls'])\n",
    "doctest_testmod": "import doctest\ndoctest.testmod()\n",
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_neighbour_is_clean(name: str) -> None:
    source = BENIGN[name]
    assert _rules(source) == set(), [h.message for h in analyse_source(source)]


def test_literal_file_loaded_as_a_module_names_the_file() -> None:
    """A constant path is a hit that names the file it runs: `check` drops it and analyses the
    file when it is one of the project's, and keeps it (fail closed) when it is not."""
    source = (
        "import importlib.util\ns = importlib.util.spec_from_file_location('m', 'plugins/m.py')\n"
    )
    (hit,) = analyse_source(source)
    assert hit.rule.id == DYNAMIC and hit.runs == "plugins/m.py"


def test_file_loader_path_named_like_a_uri_is_dynamic_not_content() -> None:
    """A module loaded from a path is code chosen at run time (MLT-CODE-013); the path is not
    content that is evaluated (MLT-CODE-005), whatever its variable is called."""
    source = "import importlib.util\nimportlib.util.spec_from_file_location('m', model_path)\n"
    assert _rules(source) == {DYNAMIC}


def test_listener_bound_by_with_then_accept_recv() -> None:
    source = (
        "from multiprocessing.connection import Listener\n"
        "with Listener(addr, authkey=k) as listener:\n"
        "    with listener.accept() as conn:\n"
        "        msg = conn.recv()\n"
    )
    hits = [h for h in analyse_source(source) if h.rule.id == PICKLE]
    assert [h.line for h in hits] == [4]


def test_client_reexported_by_a_project_module_recv() -> None:
    from mltrust.evidence._code_ast import analyse_project

    files = [
        ("app/net.py", "from multiprocessing.connection import Client as connect\n", True),
        ("app/main.py", "from app.net import connect\nconnect(addr).recv()\n", True),
    ]
    results = analyse_project(files)
    main = results[1]
    assert not isinstance(main, Exception)
    assert PICKLE in {h.rule.id for h in main}


def test_sqlitedict_decode_given_by_kwargs_is_not_proven() -> None:
    """``**options`` may not hold ``decode``: the default (pickle) is assumed."""
    assert PICKLE in _rules("from sqlitedict import SqliteDict\nSqliteDict(p, **options)\n")


def test_sqlitedict_decode_pickle_loads_is_a_finding() -> None:
    source = (
        "import pickle\nfrom sqlitedict import SqliteDict\nSqliteDict(p, decode=pickle.loads)\n"
    )
    assert PICKLE in _rules(source)
