"""Red-team bypasses of the code rules: aliases of dangerous callables and fake safe yaml
loaders. Each source is resolved through the module's symbol table, never by its text."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltrust.evidence._code_ast import analyse_source


def _rules(source: str) -> set[str]:
    return {h.rule.id for h in analyse_source(source)}


def _flagged(source: str, rule: str) -> bool:
    return rule in _rules(source)


@pytest.mark.parametrize(
    "source",
    [
        "import pickle\ngetattr(pickle, 'loads')(d)\n",
        "import pickle\nf = getattr(pickle, 'loads')\nf(d)\n",
        "import builtins\nimport pickle\nbuiltins.getattr(pickle, 'load')(fh)\n",
    ],
)
def test_attack_getattr_alias_of_pickle_loads_is_flagged(source: str) -> None:
    assert _flagged(source, "MLT-CODE-001"), source


@pytest.mark.parametrize(
    "source",
    [
        "import pickle\nname = input()\ngetattr(pickle, name)(d)\n",
        "import pickle\ndef f(name):\n    return getattr(pickle, name)\n",
        "import dill as d\nfn = getattr(d, attr, None)\n",
        "import pickle\nvars(pickle)[key](d)\n",
        "import marshal\nmarshal.__dict__[key](d)\n",
        "import pickle\nvars(pickle).get(key)(d)\n",
        "import pickle\npickle.__dict__.get(key)(d)\n",
    ],
)
def test_attack_dynamic_attribute_of_pickle_is_flagged(source: str) -> None:
    hits = [h for h in analyse_source(source) if h.rule.id == "MLT-CODE-001"]
    assert hits and "dynamic" in hits[0].message, source


@pytest.mark.parametrize(
    "source",
    [
        "__import__('pickle').loads(d)\n",
        "import importlib\nimportlib.import_module('pickle').loads(d)\n",
        "import importlib as il\nm = il.import_module('cloudpickle')\nm.load(fh)\n",
        "from importlib import import_module\nimport_module('dill').loads(d)\n",
        "import sys\nsys.modules['pickle'].loads(d)\n",
        "m = __import__('pickle')\nU = m.Unpickler\nU(fh).load()\n",
    ],
)
def test_attack_import_by_string_of_pickle_is_flagged(source: str) -> None:
    assert _flagged(source, "MLT-CODE-001"), source


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("name = input()\n__import__(name)\n", "MLT-CODE-013"),
        ("import importlib\nimportlib.import_module(mod).loads(d)\n", "MLT-CODE-001"),
        ("__import__(mod).eval(s)\n", "MLT-CODE-013"),
        ("import pkgutil\npkgutil.resolve_name(spec)(d)\n", "MLT-CODE-013"),
        ("import pickle\npickle.__getattribute__(name)(d)\n", "MLT-CODE-001"),
    ],
)
def test_attack_dynamic_import_is_flagged(source: str, rule: str) -> None:
    hits = [h for h in analyse_source(source) if h.rule.id == rule]
    assert hits and "dynamic" in hits[0].message, source


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("import pickle\nL = pickle.loads\nL(d)\n", "MLT-CODE-001"),
        ("import pickle\nU = pickle.Unpickler\nU(fh).load()\n", "MLT-CODE-001"),
        ("from pickle import *\nloads(d)\n", "MLT-CODE-001"),
        ("import pickle\nA = pickle\nB = A.loads\nB(d)\n", "MLT-CODE-001"),
        (
            "import pickle\nclass C:\n    def __init__(self):\n        self.f = pickle.loads\n"
            "    def g(self, d):\n        return self.f(d)\n",
            "MLT-CODE-001",
        ),
        ("import pickle, json\nL = json.loads if fast else pickle.loads\nL(d)\n", "MLT-CODE-001"),
        ("import pickle\nL, J = pickle.loads, 1\nL(d)\n", "MLT-CODE-001"),
        ("E = eval\nE(s)\n", "MLT-CODE-013"),
        ("import pickle\nglobals()['pickle'].loads(d)\n", "MLT-CODE-001"),
        ("globals()['__builtins__'].eval(s)\n", "MLT-CODE-013"),
        ("import pickle\nclass C:\n    f = pickle.loads\nC.f(d)\n", "MLT-CODE-001"),
        (
            "import pickle\nclass C:\n    f = staticmethod(pickle.loads)\n"
            "    def g(self, d):\n        return self.f(d)\n",
            "MLT-CODE-001",
        ),
        ("import pickle\ndef f(d, load=pickle.loads):\n    return load(d)\n", "MLT-CODE-001"),
        ("import builtins\nbuiltins.__dict__['eval'](s)\n", "MLT-CODE-013"),
        ("import builtins\nvars(builtins)['eval'](s)\n", "MLT-CODE-013"),
        ("__builtins__['exec'](s)\n", "MLT-CODE-013"),
        ("import builtins as b\ngetattr(b, 'eval')(s)\n", "MLT-CODE-013"),
        ("import pickle\npickle.__getattribute__('loads')(d)\n", "MLT-CODE-001"),
        ("import importlib\nimportlib.__import__('pickle').loads(d)\n", "MLT-CODE-001"),
        ("import pkgutil\npkgutil.resolve_name('pickle:loads')(d)\n", "MLT-CODE-001"),
        ("import builtins\nb = builtins.__dict__\nb['eval'](s)\n", "MLT-CODE-013"),
        ("import builtins\nv = vars(builtins)\nv['exec'](s)\n", "MLT-CODE-013"),
        ("import sys\nsys.modules.get('pickle').loads(d)\n", "MLT-CODE-001"),
        ("import builtins\nvars(builtins).get('eval')(s)\n", "MLT-CODE-013"),
        ("import builtins\nbuiltins.__dict__.get('exec')(s)\n", "MLT-CODE-013"),
        ("import pickle\np = [pickle][0]\np.loads(d)\n", "MLT-CODE-001"),
    ],
)
def test_attack_alias_of_a_dangerous_callable_is_flagged(source: str, rule: str) -> None:
    assert _flagged(source, rule), source


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        (
            "import functools, torch\nL = functools.partial(torch.load, map_location='cpu')\n",
            "MLT-CODE-002",
        ),
        (
            "from functools import partial\nimport pickle\nP = partial(pickle.loads)\n",
            "MLT-CODE-001",
        ),
        ("import functools\nE = functools.partial(eval)\n", "MLT-CODE-013"),
        ("import pickle\nitems = list(map(pickle.loads, blobs))\n", "MLT-CODE-001"),
        ("import pickle\nitems = list(map(getattr(pickle, 'loads'), blobs))\n", "MLT-CODE-001"),
        ("import torch\ndef loader():\n    return torch.load\n", "MLT-CODE-002"),
        ("import pickle\nDataLoader(ds, collate_fn=pickle.loads)\n", "MLT-CODE-001"),
    ],
)
def test_attack_dangerous_callable_handed_on_is_flagged(source: str, rule: str) -> None:
    assert _flagged(source, rule), source


@pytest.mark.parametrize(
    "source",
    [
        "import functools, torch\nL = functools.partial(torch.load, weights_only=True)\nL(f)\n",
        "import json\nL = json.loads\nL(d)\n",
        "import pickle\nclass Safe(pickle.Unpickler):\n    pass\n",
        "import pickle\ndef f(u: pickle.Unpickler) -> None:\n    pass\n",
        "import pickle\nif fn is pickle.loads:\n    pass\n",
        "import pickle\ntry:\n    x = 1\nexcept pickle.UnpicklingError:\n    pass\n",
        "import importlib\ncls = getattr(importlib.import_module(name), attr)\n",
        "import torch\nx = getattr(torch, dtype_name)\n",
        "import pickle\npickle.dumps(obj)\n",
        "eval('1 + 1')\n",
        "model.eval()\n",
    ],
)
def test_resolution_keeps_precision(source: str) -> None:
    assert _rules(source) == set(), source


@pytest.mark.parametrize(
    "source",
    [
        # a local class named like a safe loader
        "import yaml\nclass SafeLoader(yaml.UnsafeLoader):\n    pass\n"
        "yaml.load(s, Loader=SafeLoader)\n",
        "import yaml\nfrom yaml import SafeLoader\nclass SafeLoader(yaml.Loader):\n    pass\n"
        "yaml.load(s, Loader=SafeLoader)\n",
        # the module attribute rebound
        "import yaml\nyaml.SafeLoader = yaml.UnsafeLoader\nyaml.load(s, Loader=yaml.SafeLoader)\n",
        "import yaml\nsetattr(yaml, 'SafeLoader', yaml.UnsafeLoader)\n"
        "yaml.load(s, Loader=yaml.SafeLoader)\n",
        "import yaml\nsetattr(yaml, name, yaml.UnsafeLoader)\n"
        "yaml.load(s, Loader=yaml.SafeLoader)\n",
        # constructors added to a safe loader, a subclass of one, or through yaml.add_constructor
        "import yaml\nclass L(yaml.SafeLoader):\n    pass\n"
        "L.add_constructor('tag:yaml.org,2002:python/object/apply', "
        "yaml.UnsafeLoader.construct_python_object_apply)\nyaml.load(s, Loader=L)\n",
        "import yaml\nclass L(yaml.SafeLoader):\n    pass\n"
        "L.add_multi_constructor('tag:yaml.org,2002:python/', f)\nyaml.load(s, Loader=L)\n",
        "import yaml\nclass L(yaml.SafeLoader):\n    pass\n"
        "yaml.add_constructor('!x', f, Loader=L)\nyaml.load(s, Loader=L)\n",
        "import yaml\nyaml.SafeLoader.add_constructor('!x', f)\n"
        "yaml.load(s, Loader=yaml.SafeLoader)\n",
        "import yaml\nyaml.SafeLoader.yaml_constructors['!x'] = f\n"
        "yaml.load(s, Loader=yaml.SafeLoader)\n",
        # a class body that does more than nothing
        "import yaml\nclass L(yaml.SafeLoader):\n    def construct_mapping(self, n, deep=False):\n"
        "        return f(n)\nyaml.load(s, Loader=L)\n",
    ],
)
def test_attack_fake_safe_yaml_loader_is_flagged(source: str) -> None:
    assert _flagged(source, "MLT-CODE-003"), source


@pytest.mark.parametrize(
    "source",
    [
        "import yaml\nyaml.load(s, Loader=yaml.SafeLoader)\n",
        "import yaml as y\ny.load(s, Loader=y.CSafeLoader)\n",
        "from yaml import BaseLoader, load\nload(s, Loader=BaseLoader)\n",
        "import yaml\nyaml.load(s, Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader))\n",
        "import yaml\nclass L(yaml.SafeLoader):\n    '''Only composes.'''\n"
        "yaml.load(s, Loader=L)\n",
        "import yaml\ntry:\n    C = yaml.CSafeLoader\nexcept AttributeError:\n    C = None\n"
        "yaml.load(s, Loader=C or yaml.SafeLoader)\n",
    ],
)
def test_real_safe_yaml_loader_is_not_flagged(source: str) -> None:
    assert not _flagged(source, "MLT-CODE-003"), source


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("from pickle import loads as l\nl(d)\n", "MLT-CODE-001"),
        ("import pickle as p\np.loads(d)\n", "MLT-CODE-001"),
        ("import torch as t\nt.load(f)\n", "MLT-CODE-002"),
        ("from torch import load\nload(f)\n", "MLT-CODE-002"),
        ("import yaml as y\ny.unsafe_load(s)\n", "MLT-CODE-003"),
        ("pickle = lazy_import('pickle')\npickle.loads(d)\n", "MLT-CODE-001"),
        ("def f(torch, p):\n    return torch.load(p)\n", "MLT-CODE-002"),
        ("import yaml\nyaml.load(s, Loader=getattr(yaml, 'Loader'))\n", "MLT-CODE-003"),
        ("import yaml\nyaml.load(s, Loader=getattr(yaml, name))\n", "MLT-CODE-003"),
        (
            "import yaml\nyaml.load(s, Loader=getattr(yaml, 'CSafeLoader', yaml.UnsafeLoader))\n",
            "MLT-CODE-003",
        ),
        (
            "import yaml\nL = make_loader()\nL = yaml.SafeLoader\nyaml.load(s, Loader=L)\n",
            "MLT-CODE-003",
        ),
    ],
)
def test_forms_flagged_before_resolution_stay_flagged(source: str, rule: str) -> None:
    """Import aliases, textual names of unknown values and non-safe getattr Loaders were
    already findings; the symbol table must keep them."""
    assert _flagged(source, rule), source


@pytest.mark.parametrize(
    "source",
    [
        "import yaml\nyaml.SafeLoader = yaml.UnsafeLoader\n",
        "import yaml as y\ny.SafeLoader.add_constructor('!x', f)\n",
        "import yaml\nyaml.add_constructor('!x', f, Loader=yaml.SafeLoader)\n",
        "import yaml\nyaml.SafeConstructor.add_multi_constructor('tag:yaml.org,2002:python/', f)\n",
        "import yaml\nsetattr(yaml, 'CSafeLoader', yaml.UnsafeLoader)\n",
        "from yaml import loader\nloader.SafeLoader.yaml_constructors['!x'] = f\n",
    ],
)
def test_attack_yaml_safe_loader_patched_for_other_modules_is_flagged(source: str) -> None:
    """Patching PyYAML in one module makes ``Loader=yaml.SafeLoader`` unsafe in all others,
    which look clean on their own: the patch itself is the finding."""
    hits = [h for h in analyse_source(source) if h.rule.id == "MLT-CODE-003"]
    assert hits and "changed at run time" in hits[0].message, source


def test_yaml_constructor_for_the_unsafe_loaders_only_is_not_a_patch_finding() -> None:
    source = "import yaml\nyaml.add_constructor('!x', f)\nclass L(yaml.SafeLoader):\n    pass\n"
    source += "L.add_constructor('!y', g)\n"
    assert _rules(source) == set()


def test_attack_web_of_assignments_is_not_analysed_rather_than_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its budget the symbol table gives up: the file is reported as not analysed (and
    fails the gate), never judged on a half-built table."""
    from mltrust.evidence import CollectContext, _code_ast
    from mltrust.evidence._code import CodeCollector

    monkeypatch.setattr(
        _code_ast, "DEFAULT_LIMITS", _code_ast.DEFAULT_LIMITS.replace(max_symbol_steps=1)
    )
    lines = ["import pickle", "class C:", "    def f(self, d):"]
    lines += [f"        self.a{i} = self.a{i + 1}" for i in range(300)]
    lines += ["        self.a300 = pickle.loads", "        return self.a0(d)"]
    (tmp_path / "web.py").write_text("\n".join(lines) + "\n")
    section = CodeCollector().collect(CollectContext(tmp_path)).section
    assert section["not_analysed"] == ["web.py"]
    (row,) = [r for r in section["findings"] if r["rule_id"] == "MLT-CODE-012"]
    assert "too many" in row["message"]
