"""Property tests: the parsers of untrusted project files return or raise their own error
type on any input; they never crash with another exception."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltrust.advisories import is_affected
from mltrust.advisories._db import _rows
from mltrust.errors import InputError
from mltrust.evidence._code import notebook_source
from mltrust.evidence._code_ast import analyse_source
from mltrust.evidence._depsources import DependencyFileError, parse_requirements
from mltrust.evidence._image import parse_image_report
from mltrust.evidence._licenses import read_front_matter, spdx_from_text, to_spdx
from mltrust.evidence._secrets import find_secrets

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=40,
)
osv_like = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=10),
        "affected": st.lists(
            st.fixed_dictionaries(
                {
                    "package": st.fixed_dictionaries({"name": st.text(min_size=1, max_size=8)}),
                    "ranges": json_values,
                    "versions": json_values,
                }
            ),
            max_size=3,
        ),
        "severity": json_values,
        "aliases": json_values,
    }
)


@SETTINGS
@given(text=st.text(max_size=400))
def test_requirements_parser_never_crashes(tmp_path: Path, text: str) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(text, encoding="utf-8")
    try:
        deps = parse_requirements(path, "requirements.txt", root=tmp_path)
    except DependencyFileError:
        return
    assert all(d.source for d in deps)


@SETTINGS
@given(text=st.text(max_size=400))
def test_secret_finder_and_license_text_never_crash(text: str) -> None:
    for hit in find_secrets(text):
        assert hit.line >= 1
    spdx_from_text(text)
    to_spdx(text)
    assert isinstance(read_front_matter("---\n" + text + "\n---\n"), dict)


@SETTINGS
@given(text=st.text(max_size=300))
def test_python_analysis_raises_only_parse_errors(text: str) -> None:
    try:
        list(analyse_source(text))
    except (SyntaxError, ValueError):
        pass


@SETTINGS
@given(doc=json_values)
def test_notebook_and_image_report_parsers(doc: object) -> None:
    try:
        code, cells = notebook_source(json.dumps(doc))
        assert code.count("\n") >= len(cells)
    except ValueError:
        pass
    try:
        parse_image_report(doc)
    except InputError:
        pass


@SETTINGS
@given(doc=st.one_of(json_values, osv_like))
def test_advisory_rows_from_any_document(doc: object) -> None:
    rows = _rows(doc)
    if rows is not None:
        adv, affected = rows
        assert isinstance(adv[0], str)
        for row in affected:
            for events in json.loads(row[3]):
                assert isinstance(events["type"], str)


@SETTINGS
@given(version=st.text(max_size=12), ranges=json_values, versions=st.lists(st.text(max_size=8)))
def test_version_matching_is_total(version: str, ranges: object, versions: list[str]) -> None:
    from mltrust.advisories._db import _clean_ranges

    clean = _clean_ranges(
        [r for r in ranges if isinstance(r, dict)] if isinstance(ranges, list) else []
    )
    assert isinstance(is_affected(version, clean, versions), bool)
