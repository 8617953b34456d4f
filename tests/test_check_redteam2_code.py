"""Red-team round 2 on ``mltrust check``'s code analysis: code Python runs that the gate did
not read. Committed bytecode and extension modules, PEP 263 coding cookies (in sources and in
requirements files), shebangs GNU ``env -S`` splits, IPython magics that run Python, and
Python source inside zip archives on ``sys.path``. Each attack test fails without its fix."""

from __future__ import annotations

import importlib.util
import io
import os
import py_compile
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from _check_helpers import notebook
from mltrust.evidence import CollectContext, collect_evidence
from mltrust.evidence._classify import code_kind, python_shebang
from mltrust.evidence._code import notebook_source
from mltrust.evidence._depsources import DependencyFileError
from mltrust.policy import ControlStatus, evaluate, load_profile

pytest.importorskip("bandit", reason="bandit (the policy extra) is not installed")

UNSAFE = "import pickle\n\n\ndef run(d):\n    return pickle.loads(d)\n"


def _check(root: Path):  # type: ignore[no-untyped-def]
    bundle = collect_evidence(CollectContext(root))
    verdict = evaluate(bundle.document, load_profile("default"))
    return bundle.document, {r.control.id: r.status for r in verdict.results}


def _git(root: Path, *args: str) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b"}
    env |= {"GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}
    subprocess.run([git, *args], cwd=root, check=True, capture_output=True, env=env)


def _dangerous(doc: dict) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(f["path"], f["rule_id"]) for f in doc["code"]["dangerous"]}


def _compile(src: Path, target: Path, mode: py_compile.PycInvalidationMode) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    py_compile.compile(str(src), cfile=str(target), invalidation_mode=mode, doraise=True)


# 03: bytecode and native extension modules -------------------------------------------------


def test_attack_pyc_shadow_committed_unchecked_hash_pyc(tmp_path: Path) -> None:
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "helper.py").write_text(UNSAFE)
    app = tmp_path / "proj" / "app"
    app.mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "helper.py").write_text("def run(d):\n    return d\n")
    cached = Path(importlib.util.cache_from_source(str(app / "helper.py")))
    _compile(evil / "helper.py", cached, py_compile.PycInvalidationMode.UNCHECKED_HASH)
    _compile(evil / "helper.py", app / "loader.pyc", py_compile.PycInvalidationMode.TIMESTAMP)
    _git(app.parent, "init", "-q")
    _git(app.parent, "add", "-A")
    _git(app.parent, "commit", "-qm", "x")  # an index counts once HEAD exists
    doc, controls = _check(app.parent)
    rel = cached.relative_to(app.parent).as_posix()
    assert {rel, "app/loader.pyc"} <= set(doc["code"]["not_analysed"])
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


def test_attack_pyc_shadow_sourceless_pyc_without_git(tmp_path: Path) -> None:
    src = tmp_path / "evil.py"
    src.write_text(UNSAFE)
    proj = tmp_path / "proj"
    _compile(src, proj / "loader.pyc", py_compile.PycInvalidationMode.CHECKED_HASH)
    (proj / "main.py").write_text("import loader\n")
    doc, controls = _check(proj)
    assert doc["code"]["not_analysed"] == ["loader.pyc"]
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


@pytest.mark.parametrize("name", ["fast.cpython-311-x86_64-linux-gnu.so", "fast.abi3.so", "w.pyd"])
def test_attack_pyc_shadow_native_extension_module(tmp_path: Path, name: str) -> None:
    (tmp_path / "main.py").write_text("import fast\n")
    (tmp_path / name).write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 64)
    doc, controls = _check(tmp_path)
    assert doc["code"]["not_analysed"] == [name]
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


def test_attack_pyc_shadow_untracked_unchecked_hash_pyc_in_git_checkout(tmp_path: Path) -> None:
    (tmp_path / "evil.py").write_text(UNSAFE)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "helper.py").write_text("def run(d):\n    return d\n")
    cached = Path(importlib.util.cache_from_source(str(proj / "helper.py")))
    _compile(tmp_path / "evil.py", cached, py_compile.PycInvalidationMode.UNCHECKED_HASH)
    _git(proj, "init", "-q")
    _git(proj, "add", "helper.py")
    _git(proj, "commit", "-qm", "x")  # an index counts once HEAD exists
    doc, controls = _check(proj)
    rel = cached.relative_to(proj).as_posix()
    assert rel in [u["path"] for u in doc["subject"]["unanalysed"]]
    assert controls["analysis-complete"] is ControlStatus.FAIL


def test_attack_pyc_shadow_bytecode_cache_without_git_index(tmp_path: Path) -> None:
    # Timestamp pycs are checked only against the source's mtime and size, which an archive
    # (tar keeps mtimes) can forge: without a git index, bytecode is unanalysed content.
    (tmp_path / "evil.py").write_text(UNSAFE)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "helper.py").write_text("def run(d):\n    return d\n")
    cached = Path(importlib.util.cache_from_source(str(proj / "helper.py")))
    _compile(tmp_path / "evil.py", cached, py_compile.PycInvalidationMode.TIMESTAMP)
    doc, controls = _check(proj)
    assert [u["path"] for u in doc["subject"]["unanalysed"]] == ["__pycache__/"]
    assert controls["analysis-complete"] is ControlStatus.FAIL


def test_untracked_timestamp_cache_in_git_checkout_passes(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("def run(d):\n    return d\n")
    py_compile.compile(str(tmp_path / "helper.py"), doraise=True)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "helper.py")
    _git(tmp_path, "commit", "-qm", "x")  # an index counts once HEAD exists
    doc, controls = _check(tmp_path)
    assert doc["subject"]["unanalysed"] == []
    assert controls["analysis-complete"] is ControlStatus.PASS
    assert controls["no-dangerous-code"] is ControlStatus.PASS


# 06 / 16: PEP 263 coding cookies ------------------------------------------------------------

COOKIE_ATTACKS = {
    "utf-7": b"# coding: utf-7\nimport sys\n# note +AAo-import pickle+ADs- pickle.loads(b'')\n",
    "unicode_escape": b"# coding: unicode_escape\n# note \\nimport pickle; pickle.loads(b'')\n",
    "raw_unicode_escape": b"# -*- coding: raw_unicode_escape -*-\n# \\u000aeval(input())\n",
}


@pytest.mark.parametrize("codec", sorted(COOKIE_ATTACKS))
def test_attack_coding_cookie_python_source(tmp_path: Path, codec: str) -> None:
    data = COOKIE_ATTACKS[codec]
    (tmp_path / "a.py").write_bytes(data)
    # CPython really runs code the UTF-8 reading shows as a comment
    # mltrust: ignore[MLT-CODE-013] planted attack, compiled (never run) to prove CPython reads it
    names = compile(data, "a.py", "exec").co_names
    assert "pickle" in names or "eval" in names
    doc, controls = _check(tmp_path)
    assert doc["code"]["not_analysed"] == ["a.py"]
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


def test_coding_cookie_latin1_is_decoded_as_cpython_does(tmp_path: Path) -> None:
    data = "# -*- coding: latin-1 -*-\nimport pickle\nname = 'café'\npickle.loads(b'')\n"
    from mltrust.evidence._classify import python_source_text

    raw = data.encode("latin-1")
    assert python_source_text(raw) == data
    (tmp_path / "a.py").write_bytes(raw)
    doc, _ = _check(tmp_path)
    assert doc["code"]["not_analysed"] == []
    assert ("a.py", "MLT-CODE-001") in _dangerous(doc)


@pytest.mark.parametrize(
    "data",
    [
        b"x = 1\n",
        b"\xef\xbb\xbfx = 'caf\xc3\xa9'\n",
        b"#!/usr/bin/env python\n# vim: set fileencoding=iso-8859-15 :\nx = '\xa4'\n",
        b"\n# coding=ascii\nx = 1\n",
    ],
)
def test_python_source_text_matches_tokenize(data: bytes) -> None:
    import tokenize

    from mltrust.evidence._classify import python_source_text

    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    expected = data.decode(encoding)
    assert python_source_text(data) == expected


def test_attack_requirements_coding_cookie(tmp_path: Path) -> None:
    raw = b"# -*- coding: utf-7 -*-\n# docs build pins +AAo-jinja2+AD0APQ-2.10\n"
    (tmp_path / "requirements.txt").write_bytes(raw)
    from mltrust.evidence._depsources import decode_requirements

    with pytest.raises(DependencyFileError, match="utf-7"):
        decode_requirements(raw)
    doc, controls = _check(tmp_path)
    assert any("utf-7" in e for e in map(str, doc["deps"]["errors"]))
    assert controls["dependency-files-readable"] is ControlStatus.FAIL


@pytest.mark.parametrize(
    "raw",
    [
        b"requests==2.0\n",
        b"# coding: latin-1\nrequests==2.0  # caf\xe9\n",
        b"\n# -*- coding: cp1252 -*-\nnumpy\n",
        "\ufeffnumpy\n".encode("utf-32"),
        "\ufeffnumpy\n".encode("utf-16-le"),
        b"  # coding: utf-7\nnumpy\n",  # pip ignores a cookie on a line not starting with '#'
    ],
)
def test_decode_requirements_matches_pip(raw: bytes) -> None:
    from mltrust.evidence._depsources import decode_requirements

    req_file = pytest.importorskip("pip._internal.req.req_file")
    assert decode_requirements(raw) == req_file._decode_req_file(raw, "requirements.txt")


# 04: shebangs -------------------------------------------------------------------------------

SHEBANGS = [
    '#!/usr/bin/env -S "python3"',
    "#!/usr/bin/env -S 'python3' -u",
    "#!/usr/bin/env --split-string=python3",
    "#!/usr/bin/env -S python3\\_-u",
    "#!/usr/bin/env python3.13t",
    "#!/usr/bin/env ipython",
    "#!/usr/bin/env -iS python3",
    "#!/usr/bin/env -S A=1 pypy3 -u",
    "#!/usr/bin/env -S poetry run python",
    "#!/usr/bin/python2.7",
]


@pytest.mark.parametrize("line", SHEBANGS)
def test_attack_shebang_miss_runs_python(tmp_path: Path, line: str) -> None:
    assert python_shebang(line)
    (tmp_path / "tool").write_text(line + "\n" + UNSAFE)
    doc, controls = _check(tmp_path)
    assert ("tool", "MLT-CODE-001") in _dangerous(doc)
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


@pytest.mark.skipif(shutil.which("env") is None, reason="no env")
def test_env_split_string_really_runs_python(tmp_path: Path) -> None:
    if subprocess.run(["env", "-S", "true"], capture_output=True).returncode != 0:
        pytest.skip("env has no -S")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    script = tmp_path / "s"
    script.write_text("#!/usr/bin/env -S python3\\_-u\nprint('ran as python')\n")
    script.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}"}
    out = subprocess.run([str(script)], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "ran as python"


def test_attack_shebang_miss_unknown_interpreter_with_python_body(tmp_path: Path) -> None:
    # a shell polyglot that re-executes itself with Python, or any wrapper we do not know
    body = "#!/bin/sh\n''''exec python3 \"$0\" \"$@\" #'''\n" + UNSAFE
    (tmp_path / "polyglot").write_text(body)
    (tmp_path / "wrapped").write_text("#!/opt/tools/bin/mypy-runner\n" + UNSAFE)
    doc, _ = _check(tmp_path)
    assert {("polyglot", "MLT-CODE-001"), ("wrapped", "MLT-CODE-001")} <= _dangerous(doc)


@pytest.mark.parametrize(
    "text",
    [
        "#!/bin/bash\nset -euo pipefail\necho hello\n",
        "#!/usr/bin/env node\nconsole.log('x');\n",
        '#!/usr/bin/perl\nprint "hi\\n";\n',
    ],
)
def test_shell_scripts_are_not_python(text: str) -> None:
    assert code_kind("run", text) is None


# 05: notebook magics --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    [
        "import pickle\n%time model = pickle.loads(blob)\n",
        "import pickle\n%prun -q -s cumtime pickle.loads(blob)\n",
        "import pickle\n%timeit -n 10 -r3 pickle.loads(blob)\n",
        "import pickle\nmodel = %time pickle.loads(blob)\n",
        "import pickle\nif True:\n    %time pickle.loads(blob)\n",
        "%%time\nimport pickle\npickle.loads(blob)\n",
        "%%capture out\nimport pickle\npickle.loads(blob)\n",
        "%%mymagic --flag\nimport pickle\npickle.loads(blob)\n",
    ],
)
def test_attack_notebook_line_magic(tmp_path: Path, cell: str) -> None:
    (tmp_path / "train.ipynb").write_text(notebook([cell]))
    doc, controls = _check(tmp_path)
    assert ("train.ipynb", "MLT-CODE-001") in _dangerous(doc)
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


def test_notebook_shell_magics_stay_blank() -> None:
    cells = ["%%bash\nls -l | wc\n", "!pip install x\n%pip list\n", "\n%%sh\nrm -rf build\n"]
    code, where = notebook_source(notebook(cells))
    assert code.strip() == ""
    assert len(code.splitlines()) == len(where)


def test_notebook_magics_match_ipython() -> None:
    """IPython's own transformer as the oracle: the line magic and argument string it hands
    ``run_line_magic`` are the ones mltrust reads, and the statement analysed is that argument
    less the magic's options."""
    from mltrust.evidence._code import _line_as_python

    transformer = pytest.importorskip("IPython.core.inputtransformer2").TransformerManager()
    for line, name, args, statement in [
        ("%time x = f(1)", "time", "x = f(1)", "x = f(1)"),
        ("%prun -q eval(s)", "prun", "-q eval(s)", "eval(s)"),
        ("%timeit -n 10 -r3 f()", "timeit", "-n 10 -r3 f()", "f()"),
    ]:
        assert f"run_line_magic({name!r}, {args!r})" in transformer.transform_cell(line + "\n")
        assert _line_as_python(line) == statement


# 10: zip archives on sys.path -------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


@pytest.mark.parametrize("name", ["vendor/plugins.zip", "lib/x.egg", "app.pyz", "v/plugins.dat"])
def test_attack_zip_on_syspath(tmp_path: Path, name: str) -> None:
    _zip(tmp_path / name, {"pkg/__init__.py": b"", "evil.py": UNSAFE.encode(), "d.txt": b"x"})
    (tmp_path / "main.py").write_text(f"import sys\nsys.path.insert(0, {name!r})\nimport evil\n")
    doc, controls = _check(tmp_path)
    assert (f"{name}:evil.py", "MLT-CODE-001") in _dangerous(doc)
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


def test_attack_zip_on_syspath_bytecode_member_and_bad_archive(tmp_path: Path) -> None:
    _zip(tmp_path / "vendor" / "plugins.zip", {"evil.pyc": b"\xa7\r\r\n" + b"\x00" * 12})
    (tmp_path / "broken.whl").write_bytes(b"PK\x03\x04 not really a zip")
    doc, controls = _check(tmp_path)
    assert {"vendor/plugins.zip:evil.pyc", "broken.whl"} <= set(doc["code"]["not_analysed"])
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


def test_attack_zip_on_syspath_coding_cookie_member(tmp_path: Path) -> None:
    _zip(tmp_path / "p.zip", {"a.py": COOKIE_ATTACKS["utf-7"]})
    doc, controls = _check(tmp_path)
    assert doc["code"]["not_analysed"] == ["p.zip:a.py"]
    assert controls["no-dangerous-code"] is ControlStatus.FAIL


def test_data_zip_without_python_passes(tmp_path: Path) -> None:
    _zip(tmp_path / "data.zip", {"train.csv": b"a,b\n1,2\n"})
    (tmp_path / "main.py").write_text("print('ok')\n")
    doc, controls = _check(tmp_path)
    assert doc["code"]["not_analysed"] == []
    assert controls["no-dangerous-code"] is ControlStatus.PASS
