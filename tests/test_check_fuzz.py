"""Property tests for the readers added to `mltrust check`: any bytes in a dependency file, a
git index or a notebook give dependencies and problems, ``None`` or a finding; never a crash."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltrust.evidence._code import notebook_cells
from mltrust.evidence._depsources import decode_text, dependency_kind, read_dependency_file
from mltrust.evidence._gitindex import parse_index
from mltrust.evidence._secrets import find_secrets

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
NAMES = [
    "requirements.txt",
    "pyproject.toml",
    "Pipfile",
    "Pipfile.lock",
    "setup.cfg",
    "uv.lock",
    "environment.yml",
]


@SETTINGS
@given(data=st.binary(max_size=600), name=st.sampled_from(NAMES))
def test_any_bytes_in_a_dependency_file_give_deps_or_problems(
    tmp_path: Path, data: bytes, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert dependency_kind(name) is not None
    parsed = read_dependency_file(path, name, root=tmp_path)
    assert all(p.source for p in parsed.problems)
    assert all(d.source for d in parsed.deps)


@SETTINGS
@given(data=st.binary(max_size=400))
def test_any_bytes_decode_and_search_without_crash(data: bytes) -> None:
    text = decode_text(data)
    for hit in find_secrets(text, env_file=True):
        assert hit.line >= 1


@SETTINGS
@given(data=st.binary(max_size=300), head=st.sampled_from([b"", b"DIRC\x00\x00\x00\x02"]))
def test_any_git_index_bytes_give_paths_or_none(data: bytes, head: bytes) -> None:
    result = parse_index(head + data)
    assert result is None or isinstance(result, frozenset)


@SETTINGS
@given(text=st.text(max_size=300))
def test_any_notebook_text_gives_cells_or_value_error(text: str) -> None:
    try:
        cells = notebook_cells(text)
    except ValueError:
        return
    assert all(isinstance(i, int) and isinstance(t, str) for i, t in cells)


HOSTS = [
    ("tox.ini", None),
    ("tox.toml", None),
    ("noxfile.py", None),
    (".pre-commit-config.yaml", None),
    ("pixi.toml", None),
    ("Makefile", None),
    ("run.sh", None),
    (".gitlab-ci.yml", None),
    ("Jenkinsfile", None),
    ("tool.py", "script"),
]
_FRAGMENTS = [
    "pip install ",
    "python -m pip install ",
    "uv add ",
    "bash -c '",
    "`",
    "'",
    '"',
    "\\\n",
    "\n",
    "\t",
    " ",
    "-r ",
    "-c ",
    "-e ",
    "evilpkg==1.5",
    "$(X)",
    "${{ a }}",
    "{[base]deps}",
    "[testenv]\n",
    "deps =\n  ",
    "commands =\n  ",
    "# /// script\n",
    "# dependencies = [\n",
    "# ///\n",
    "session.install(",
    ")",
    "run: ",
    "script:\n  - ",
    "[pypi-dependencies]\n",
    "x = ",
    "additional_dependencies: [",
    "]",
    "repos:\n- hooks:\n  - ",
    "X = pip\n",
    "$(X) ",
    "py3: ",
    "{env:V}",
    "..",
    "/",
    "#",
    ";",
    "&&",
]


@SETTINGS
@given(
    parts=st.lists(st.sampled_from(_FRAGMENTS), max_size=40),
    host=st.sampled_from(HOSTS),
)
def test_any_text_in_a_declaration_outside_the_manifests_gives_rows_not_crashes(
    tmp_path: Path, parts: list[str], host: tuple[str, str | None]
) -> None:
    name, kind = host
    path = tmp_path / name
    path.write_text("".join(parts))
    assert kind is not None or dependency_kind(name) is not None
    parsed = read_dependency_file(path, name, root=tmp_path, kind=kind)
    assert all(p.source for p in parsed.problems)
    assert all(d.source for d in parsed.deps)
    assert all(u.source for u in parsed.unverifiable)
