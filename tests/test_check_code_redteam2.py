"""Second red-team round on the code rules (rt-findings/check/01_code_rules_bypass.sh): names
re-exported by another module of the project, dangerous modules handed on as values, private
twins and subclasses of the deserialisers, flags given as truthy constants or ``**kwargs``,
PyYAML loaders used directly or patched through chains, and code run from strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltrust.evidence._code_ast import CodeHit, analyse_project, analyse_source


def _rules(source: str) -> set[str]:
    return {h.rule.id for h in analyse_source(source)}


def _project(files: dict[str, str]) -> dict[str, list[CodeHit]]:
    """Hits of each file of a project analysed together (every ``.py`` file importable)."""
    items = list(files.items())
    out: dict[str, list[CodeHit]] = {}
    results = analyse_project([(rel, text, rel.endswith(".py")) for rel, text in items])
    for (rel, _), result in zip(items, results, strict=True):
        assert not isinstance(result, Exception), (rel, result)
        out[rel] = result
    return out


# -- 0. re-exports across the project's own modules ----------------------------------------
@pytest.mark.parametrize(
    ("files", "main"),
    [
        (  # the reproducer: a package-less folder imported by its path from the root
            {
                "app/helpers.py": "from pickle import loads as load\n",
                "app/z_main.py": "import sys\nfrom app.helpers import load\n"
                "load(sys.stdin.buffer.read())\n",
            },
            "app/z_main.py",
        ),
        (  # the script's own folder on sys.path
            {
                "app/helpers.py": "from pickle import loads as load\n",
                "app/main.py": "from helpers import load\nload(d)\n",
            },
            "app/main.py",
        ),
        (  # a relative import inside a package
            {
                "pkg/__init__.py": "",
                "pkg/helpers.py": "import pickle\nload = pickle.loads\n",
                "pkg/main.py": "from .helpers import load\nload(d)\n",
            },
            "pkg/main.py",
        ),
        (  # from . import module, then its attribute
            {
                "pkg/__init__.py": "",
                "pkg/helpers.py": "import pickle\nload = pickle.loads\n",
                "pkg/main.py": "from . import helpers\nhelpers.load(d)\n",
            },
            "pkg/main.py",
        ),
        (  # a re-export of a re-export
            {
                "a.py": "from pickle import loads as l1\n",
                "b.py": "from a import l1 as l2\n",
                "c.py": "from b import l2\nl2(d)\n",
            },
            "c.py",
        ),
        (  # the module itself re-exported
            {
                "helpers.py": "import pickle as p\n",
                "main.py": "import helpers\nhelpers.p.loads(d)\n",
            },
            "main.py",
        ),
        (  # a star import re-exported
            {
                "helpers.py": "from pickle import *\n",
                "main.py": "from helpers import loads\nloads(d)\n",
            },
            "main.py",
        ),
        (  # a class attribute
            {
                "helpers.py": "import pickle\nclass C:\n    f = pickle.loads\n",
                "main.py": "from helpers import C\nC.f(d)\n",
            },
            "main.py",
        ),
        (  # an unrestricted unpickler subclass defined elsewhere
            {
                "helpers.py": "import pickle\nclass P(pickle.Unpickler):\n    pass\n",
                "main.py": "from helpers import P\nP(fh).load()\n",
            },
            "main.py",
        ),
        (  # src layout: imported without the src/ prefix
            {
                "src/lib/__init__.py": "",
                "src/lib/io.py": "import torch\nread = torch.load\n",
                "tools/run.py": "from lib.io import read\nread(path)\n",
            },
            "tools/run.py",
        ),
        (  # imported by a constant string
            {
                "helpers.py": "import yaml\nload = yaml.unsafe_load\n",
                "main.py": "import importlib\nimportlib.import_module('helpers').load(s)\n",
            },
            "main.py",
        ),
    ],
)
def test_attack_reexport_in_another_module_is_flagged(files: dict[str, str], main: str) -> None:
    assert _project(files)[main], files


def test_reexport_cycle_ends_and_flags_nothing() -> None:
    hits = _project({"a.py": "from b import x as y\n", "b.py": "from a import y as x\nx(d)\n"})
    assert hits == {"a.py": [], "b.py": []}


def test_reexport_of_harmless_names_is_not_flagged() -> None:
    hits = _project(
        {
            "helpers.py": "import json\nload = json.loads\n",
            "main.py": "from helpers import load\nload(d)\n",
        }
    )
    assert hits["main.py"] == []


def test_attack_reexport_is_flagged_by_the_collector(tmp_path: Path) -> None:
    from mltrust.evidence import CollectContext
    from mltrust.evidence._code import CodeCollector

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "helpers.py").write_text("from pickle import loads as load\n")
    (tmp_path / "app" / "z_main.py").write_text(
        "import sys\nfrom app.helpers import load\nload(sys.stdin.buffer.read())\n"
    )
    section = CodeCollector().collect(CollectContext(tmp_path)).section
    rows = [(r["path"], r["line"], r["rule_id"]) for r in section["dangerous"]]
    assert ("app/z_main.py", 3, "MLT-CODE-001") in rows


# -- 1-3. a dangerous module handed on as a value ----------------------------------------------
@pytest.mark.parametrize(
    ("source", "rule"),
    [
        (
            "import pickle, sys\ndef run(m, d):\n    return m.loads(d)\nrun(pickle, d)\n",
            "MLT-CODE-001",
        ),
        ("import pickle\nm = [pickle]\nm[0].loads(d)\n", "MLT-CODE-001"),
        ("import pickle\nmatch pickle:\n    case m:\n        m.loads(d)\n", "MLT-CODE-001"),
        (
            "import pickle\nmatch x:\n    case _:\n        m = 1\n"
            "match pickle:\n    case m:\n        pass\n",
            "MLT-CODE-001",
        ),
        ("import pickle\nfor m in [pickle]:\n    m.loads(d)\n", "MLT-CODE-001"),
        ("import pickle\nfor m in (pickle,):\n    m.loads(d)\n", "MLT-CODE-001"),
        ("import pickle\n[m.loads(d) for m in (pickle,)]\n", "MLT-CODE-001"),
        (
            "import pickle, contextlib\n"
            "with contextlib.nullcontext(pickle) as m:\n    m.loads(d)\n",
            "MLT-CODE-001",
        ),
        ("import pickle\ndef f():\n    return pickle\n", "MLT-CODE-001"),
        (
            "import pickle\nclass C:\n    def __init__(self):\n        self.m = pickle\n",
            "MLT-CODE-001",
        ),
        ("import pickle\nREGISTRY['m'] = pickle\n", "MLT-CODE-001"),
        ("import pickle\nsetattr(obj, name, pickle)\n", "MLT-CODE-001"),
        ("import pickle\nd = {'m': pickle}\n", "MLT-CODE-001"),
        ("import dill\nuse(dill)\n", "MLT-CODE-001"),
        ("import marshal\nuse(codec=marshal)\n", "MLT-CODE-001"),
        ("import cloudpickle as cp\nuse(cp)\n", "MLT-CODE-001"),
        ("import _pickle\nuse(_pickle)\n", "MLT-CODE-001"),
        ("import shelve\nuse(shelve)\n", "MLT-CODE-001"),
        ("import builtins\nuse(builtins)\n", "MLT-CODE-013"),
        ("import yaml\nuse(yaml)\n", "MLT-CODE-003"),
        (
            "import pickle\ndef isinstance(m, d):\n    return m.loads(d)\nisinstance(pickle, d)\n",
            "MLT-CODE-001",
        ),
    ],
)
def test_attack_dangerous_module_handed_on_is_flagged(source: str, rule: str) -> None:
    assert rule in _rules(source), source


def test_attack_match_capture_binds_the_subject() -> None:
    source = "import pickle\nmatch pickle:\n    case m:\n        m.loads(d)\n"
    assert 4 in {h.line for h in analyse_source(source) if h.rule.id == "MLT-CODE-001"}


def test_attack_setattr_with_constant_name_is_followed() -> None:
    source = "import pickle\nsetattr(obj, 'm', pickle)\nobj.m.loads(d)\n"
    assert 3 in {h.line for h in analyse_source(source) if h.rule.id == "MLT-CODE-001"}


# -- 4-5. private twins, __call__, subclasses ---------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "import pickle\npickle.loads.__call__(d)\n",
        "import pickle\npickle._loads(d)\n",
        "import pickle\npickle._load(fh)\n",
        "import pickle\npickle._Unpickler(fh).load()\n",
        "import pickle\npickle.Unpickler.load(u)\n",
        "import _pickle\n_pickle.Unpickler(fh).load()\n",
        "import dill\ndill._dill.loads(d)\n",
        "import pickle\nclass P(pickle.Unpickler):\n    pass\nP(fh).load()\n",
        "import pickle\nclass P(pickle.Unpickler):\n    pass\n"
        "class Q(P):\n    pass\nQ(fh).load()\n",
        "import pickle\nclass P(pickle._Unpickler):\n    def persistent_load(self, pid):\n"
        "        return pid\nP(fh).load()\n",
        "import pickle\nclass P(pickle.Unpickler):\n    pass\nmake(P)\n",
    ],
)
def test_attack_pickle_twin_or_subclass_is_flagged(source: str) -> None:
    assert "MLT-CODE-001" in _rules(source), source


@pytest.mark.parametrize(
    "source",
    [
        # the documented restriction: find_class decides every import
        "import pickle\nclass R(pickle.Unpickler):\n    def find_class(self, module, name):\n"
        "        raise pickle.UnpicklingError(name)\nR(fh).load()\n",
        "import pickle\nclass R(pickle.Unpickler):\n    def __init__(self, f):\n"
        "        pickle.Unpickler.__init__(self, f)\n    def find_class(self, m, n):\n"
        "        return pickle.Unpickler.find_class(self, m, n)\n",
        "import pickle\npickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)\n",
        "import pickle\ntry:\n    x = 1\nexcept (pickle.UnpicklingError, ValueError):\n    pass\n",
        "import pickle\nisinstance(x, pickle.Unpickler)\n",
        "import dill\ndill.settings['recurse'] = True\n",
    ],
)
def test_restricted_unpickler_and_harmless_pickle_names_are_not_flagged(source: str) -> None:
    assert _rules(source) == set(), source


# -- 6. operator getters --------------------------------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "import pickle, operator\noperator.methodcaller('loads', d)(pickle)\n",
        "import pickle, operator\noperator.attrgetter('loads')(pickle)(d)\n",
        "import pickle\nobject.__getattribute__(pickle, 'loads')(d)\n",
        "import pickle, inspect\ninspect.getattr_static(pickle, 'loads')(d)\n",
        "import pickle, operator\nf = operator.attrgetter('loads')(pickle)\nf(d)\n",
    ],
)
def test_attack_operator_getter_of_pickle_is_flagged(source: str) -> None:
    assert "MLT-CODE-001" in _rules(source), source


def test_attack_methodcaller_is_judged_as_the_call() -> None:
    source = "import pickle, operator\noperator.methodcaller('loads', d)(pickle)\n"
    messages = [h.message for h in analyse_source(source)]
    assert any("pickle.loads() (through operator.methodcaller)" in m for m in messages)


# -- 7, 10. flags: truthy constants, positions, **kwargs -----------------------------------
@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("import numpy as np\nnp.load(p, allow_pickle=1)\n", "MLT-CODE-004"),
        ("import numpy as np\nnp.load(p, **{'allow_pickle': True})\n", "MLT-CODE-004"),
        ("import numpy as np\nnp.load(p, **options)\n", "MLT-CODE-004"),
        ("import numpy as np\nnp.load(p, None, True)\n", "MLT-CODE-004"),
        ("import numpy as np\nnp.load(p, allow_pickle=flag)\n", "MLT-CODE-004"),
        ("import numpy as np\nnp.load(*args)\n", "MLT-CODE-004"),
        ("import numpy\nnumpy.lib.format.read_array(fh, True)\n", "MLT-CODE-004"),
        ("import keras\nkeras.models.load_model(p, safe_mode=0)\n", "MLT-CODE-007"),
        ("import keras\nkeras.models.load_model(p, None, True, False)\n", "MLT-CODE-007"),
        ("import keras\nkeras.models.load_model(p, **kw)\n", "MLT-CODE-007"),
        (
            "from tensorflow import keras\nkeras.models.load_model(p, safe_mode=mode)\n",
            "MLT-CODE-007",
        ),
        (
            "from transformers import AutoModel\n"
            "AutoModel.from_pretrained(p, trust_remote_code=1)\n",
            "MLT-CODE-006",
        ),
        (
            "from transformers import AutoModel\nAutoModel.from_pretrained(p, **kw)\n",
            "MLT-CODE-006",
        ),
        (
            "from transformers import pipeline\npipeline('x', trust_remote_code=opt.trust)\n",
            "MLT-CODE-006",
        ),
        ("kwargs = {'trust_remote_code': 1}\n", "MLT-CODE-006"),
        ("import torch\ntorch.load(p, weights_only=0)\n", "MLT-CODE-002"),
        ("import torch\ntorch.load(p, **kw)\n", "MLT-CODE-002"),
        ("import torch\ntorch.serialization.load(p)\n", "MLT-CODE-002"),
    ],
)
def test_attack_flag_truthiness_and_kwargs_are_flagged(source: str, rule: str) -> None:
    assert rule in _rules(source), source


@pytest.mark.parametrize(
    "source",
    [
        "import numpy as np\nnp.load(p)\n",
        "import numpy as np\nnp.load(p, allow_pickle=False)\n",
        "import numpy as np\nnp.load(p, allow_pickle=0)\n",
        "import numpy as np\nnp.load(p, **{'mmap_mode': 'r'})\n",
        "import keras\nkeras.models.load_model(p)\n",
        "import keras\nkeras.models.load_model(p, compile=False)\n",
        "from transformers import AutoModel\nAutoModel.from_pretrained(p)\n",
        "from transformers import AutoModel\n"
        "AutoModel.from_pretrained(p, trust_remote_code=False)\n",
        "import torch\ntorch.load(p, weights_only=True)\n",
        "import torch\ntorch.load(p, weights_only=1)\n",
        "import torch\ntorch.serialization.load(p, weights_only=True)\n",
        "def f(**kw):\n    return g(**kw)\n",
    ],
)
def test_flags_proven_safe_are_not_flagged(source: str) -> None:
    assert _rules(source) == set(), source


@pytest.mark.parametrize(
    "source",
    [
        "import pandas as pd\npd.io.pickle.read_pickle(p)\n",
        "import pandas\npandas.read_pickle(p)\n",
        "from pandas.io.pickle import read_pickle\nread_pickle(p)\n",
        "import joblib\njoblib.numpy_pickle.load(p)\n",
        "import dill\ndill.load_session(p)\n",
        "import cloudpickle\ncloudpickle.loads(d)\n",
        "import shelve\nshelve.Shelf(store)\n",
        "import jsonpickle\njsonpickle.loads(s)\n",
    ],
)
def test_attack_alternate_entry_point_is_flagged(source: str) -> None:
    assert "MLT-CODE-001" in _rules(source), source


# -- 8. yaml loaders used directly, yaml patched through chains -----------------------------
@pytest.mark.parametrize(
    "source",
    [
        "import yaml\nyaml.UnsafeLoader(s).get_single_data()\n",
        "import yaml\nyaml.Loader(s).get_single_data()\n",
        "from yaml.loader import FullLoader\nFullLoader(s).get_single_data()\n",
        "import yaml\nyaml.constructor.UnsafeConstructor().construct_document(n)\n",
        "import yaml\nclass L(yaml.Loader):\n    pass\nL(s).get_single_data()\n",
        "import yaml\nuse(loader=yaml.UnsafeLoader)\n",
    ],
)
def test_attack_yaml_unsafe_loader_used_directly_is_flagged(source: str) -> None:
    assert "MLT-CODE-003" in _rules(source), source


@pytest.mark.parametrize(
    "source",
    [
        "import yaml\nyaml.SafeLoader(s).get_single_data()\n",
        "import yaml\nclass L(yaml.SafeLoader):\n    pass\nL(s).get_single_data()\n",
        "import yaml\nyaml.add_representer(C, f, Dumper=yaml.Dumper)\n",
        "import yaml\nyaml.dump(d, Dumper=yaml.Dumper)\n",
    ],
)
def test_safe_yaml_loader_used_directly_is_not_flagged(source: str) -> None:
    assert _rules(source) == set(), source


@pytest.mark.parametrize(
    "source",
    [
        "import yaml\nvars(yaml).update(SafeLoader=yaml.UnsafeLoader)\n",
        "import yaml\nyaml.__dict__.update({'SafeLoader': yaml.UnsafeLoader})\n",
        "import yaml\nac = yaml.SafeLoader.add_constructor\nac('!x', f)\n",
        "import yaml\nyaml.SafeLoader.yaml_constructors.update({'!x': f})\n",
        "import yaml\nvars(yaml)['SafeLoader'] = yaml.UnsafeLoader\n",
        "import yaml\nobject.__setattr__(yaml, 'SafeLoader', yaml.UnsafeLoader)\n",
        "import yaml\nyaml.__setattr__('SafeLoader', yaml.UnsafeLoader)\n",
        "import sys\nsys.modules['yaml'] = fake\n",
        "import yaml, operator\noperator.setitem(vars(yaml), 'SafeLoader', yaml.UnsafeLoader)\n",
    ],
)
def test_attack_yaml_mutation_through_chain_is_flagged(source: str) -> None:
    hits = [h for h in analyse_source(source) if h.rule.id == "MLT-CODE-003"]
    assert any("changed at run time" in h.message for h in hits), source


def test_attack_yaml_update_makes_safe_loader_unsafe_in_the_same_file() -> None:
    source = (
        "import yaml, sys\nvars(yaml).update(SafeLoader=yaml.UnsafeLoader)\n"
        "print(yaml.load(sys.argv[1], Loader=yaml.SafeLoader))\n"
    )
    assert 3 in {h.line for h in analyse_source(source) if h.rule.id == "MLT-CODE-003"}


# -- 9. code run from strings, and other runners of code ------------------------------------
@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ('exec("import pickle, sys\\npickle.loads(sys.stdin.buffer.read())")\n', "MLT-CODE-001"),
        ("exec('exec(\"import pickle; pickle.loads(d)\")')\n", "MLT-CODE-001"),
        ("import pickle\nexec('pickle.loads(d)')\n", "MLT-CODE-001"),
        ("exec(b'import yaml; yaml.unsafe_load(s)')\n", "MLT-CODE-003"),
        ("c = compile('import pickle\\npickle.loads(d)', 'x', 'exec')\n", "MLT-CODE-001"),
        (
            "import timeit\ntimeit.timeit('pickle.loads(d)', setup='import pickle')\n",
            "MLT-CODE-001",
        ),
        ("eval('__import__(\"pickle\").loads(d)')\n", "MLT-CODE-001"),
        ("exec('import pickle as p')\np.loads(d)\n", "MLT-CODE-001"),
    ],
)
def test_attack_exec_of_constant_code_is_analysed(source: str, rule: str) -> None:
    assert rule in _rules(source), source


def test_code_in_a_string_is_reported_as_such() -> None:
    hits = list(analyse_source('exec("import pickle\\npickle.loads(d)")\n'))
    assert [(h.line, h.rule.id) for h in hits] == [(1, "MLT-CODE-001")]
    assert "in code given as a string" in hits[0].message


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("import timeit, sys\ntimeit.timeit(sys.argv[1], number=1)\n", "MLT-CODE-005"),
        ("import timeit\ntimeit.timeit(stmt)\n", "MLT-CODE-013"),
        ("import timeit\ntimeit.Timer('pass', setup).timeit()\n", "MLT-CODE-013"),
        ("import code\ncode.InteractiveInterpreter().runsource(text)\n", "MLT-CODE-013"),
        ("import code\ni = code.InteractiveConsole()\ni.push(line)\n", "MLT-CODE-013"),
        (
            "import code\nclass I(code.InteractiveInterpreter):\n    pass\nI().runsource(text)\n",
            "MLT-CODE-013",
        ),
        ("import code\ncode.interact()\n", "MLT-CODE-013"),
        ("import pdb\npdb.run(cmd)\n", "MLT-CODE-013"),
        ("import pdb\npdb.Pdb().runeval(expr)\n", "MLT-CODE-013"),
        ("import cProfile\ncProfile.run(cmd)\n", "MLT-CODE-013"),
        ("import runpy\nrunpy.run_path(p)\n", "MLT-CODE-013"),
        ("import runpy\nrunpy.run_module(name)\n", "MLT-CODE-013"),
        ("import types\ntypes.FunctionType(code, {})()\n", "MLT-CODE-013"),
        (
            "import types, sys\ntypes.FunctionType(compile(sys.argv[1], 'x', 'exec'), {})()\n",
            "MLT-CODE-005",
        ),
        ("c = compile(text, 'x', 'exec')\n", "MLT-CODE-013"),
        ("import functools\nfunctools.partial(compile, mode='exec')\n", "MLT-CODE-013"),
    ],
)
def test_attack_code_runner_of_non_literal_is_flagged(source: str, rule: str) -> None:
    assert rule in _rules(source), source


@pytest.mark.parametrize(
    "source",
    [
        "exec('x = 1')\n",
        "eval('1 + 1')\n",
        "import re\nre.compile(pattern)\n",
        "model.compile(optimizer=opt)\n",
        "import timeit\ntimeit.timeit(lambda: work(), number=3)\n",
        "import timeit\ndef work():\n    pass\ntimeit.timeit(work, number=3)\n",
        "import timeit\nclass B:\n    def run(self):\n        pass\n"
        "    def go(self):\n        timeit.timeit(self.run)\n",
        "import runpy\nrunpy.run_module('mypkg.cli', run_name='__main__')\n",
        "import pdb\npdb.run('x = 1')\n",
        "import subprocess\nsubprocess.run(['ls'])\n",
    ],
)
def test_literal_or_callable_code_is_not_flagged(source: str) -> None:
    assert _rules(source) == set(), source


# -- the rule for receivers the table cannot resolve ---------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "import json\njson.loads(d)\n",
        "def f(m, d):\n    return m.loads(d)\n",
        "def f(obj):\n    return obj.load()\n",
        "def f(pickle):\n    out.write(pickle)\n",
        "import pickle\nif m is pickle:\n    pass\n",
        "import pickle\nprint(pickle.HIGHEST_PROTOCOL)\n",
    ],
)
def test_unknown_receiver_and_harmless_uses_are_not_flagged(source: str) -> None:
    """``?.loads`` on a receiver the table cannot resolve is not a finding: a dangerous module
    can only get there through a hand-off, and the hand-off is the finding."""
    assert _rules(source) == set(), source
