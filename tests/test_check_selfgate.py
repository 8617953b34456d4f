"""Issue 20: inline suppression markers, the yaml Loader resolution, and the self gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _check_helpers import subset_db
from mltrust.cli import main
from mltrust.evidence._code_ast import analyse_source

# mltrust: ignore[MLT-CODE-010] AWS's documented example key, a fixture
_KEY_LINE = 'AWS = "AKIAIOSFODNN7EXAMPLE"'


def _code_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, object]:
    db = subset_db(tmp_path / "adv", ("numpy",))
    code = main(
        ["check", str(tmp_path / "p"), "--db", str(db), "--db-max-age", "0", "--no-store",
         "-f", "json", *extra]
    )  # fmt: skip
    out = capsys.readouterr().out
    doc = json.loads(out)
    doc["_exit"] = code
    return doc


def _project(tmp_path: Path, source: str) -> None:
    p = tmp_path / "p"
    p.mkdir()
    (p / "requirements.txt").write_text("numpy==2.1.0\n")
    (p / "app.py").write_text(source)


def _secret_rows(doc: dict[str, object]) -> list[dict[str, object]]:
    code = doc["evidence"]["code"]  # type: ignore[index]
    return [r for r in code["findings"] if r["kind"] == "secret"]  # type: ignore[index]


def test_marker_with_reason_suppresses_only_the_named_rule_on_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _project(
        tmp_path,
        f"{_KEY_LINE}  # mltrust: ignore[MLT-CODE-010] AWS's documented example key\n{_KEY_LINE}\n",
    )
    doc = _code_section(tmp_path, capsys, "--inline-suppressions")
    rows = _secret_rows(doc)
    assert [r["line"] for r in rows] == [2]
    suppressed = doc["evidence"]["code"]["suppressed"]  # type: ignore[index]
    assert [(s["line"], s["reason"]) for s in suppressed] == [(1, "AWS's documented example key")]


def test_marker_on_the_line_above(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _project(tmp_path, f"# mltrust: ignore[MLT-CODE-010] fixture\n{_KEY_LINE}\n")
    assert _secret_rows(_code_section(tmp_path, capsys, "--inline-suppressions")) == []


@pytest.mark.parametrize(
    "marker",
    [
        "# mltrust: ignore[MLT-CODE-010]",  # no reason
        "# mltrust: ignore[] because",  # no rule
        "# mltrust: ignore[MLT-CODE-001] wrong rule",  # names another rule
        "# mltrust: ignore[*] everything",  # wildcards are not a thing
    ],
)
def test_marker_that_does_not_qualify_suppresses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], marker: str
) -> None:
    _project(tmp_path, f"{_KEY_LINE}  {marker}\n")
    doc = _code_section(tmp_path, capsys, "--inline-suppressions")
    assert [r["line"] for r in _secret_rows(doc)] == [1]
    assert doc["_exit"] == 1
    if marker.endswith("]") or "[]" in marker or "[*]" in marker:
        rules = {r["rule_id"] for r in doc["evidence"]["code"]["findings"]}  # type: ignore[index]
        assert "MLT-CODE-015" in rules


def test_profile_can_forbid_inline_suppressions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _project(tmp_path, f"{_KEY_LINE}  # mltrust: ignore[MLT-CODE-010] fixture\n")
    profile = tmp_path / "strict.yaml"
    profile.write_text(
        "name: strict\nextends: default\ncode: {inline_suppressions: true}\ncontrols:\n"
        "  - id: no-inline-suppressions\n    title: No finding is suppressed inline\n"
        "    impact: medium\n    check: size(code.suppressed) == 0\n"
        "    details: \"code.suppressed.map(s, s.path + ' ' + s.rule_id + ' ' + s.reason)\"\n"
    )
    doc = _code_section(tmp_path, capsys, "--profile", str(profile))
    control = next(c for c in doc["controls"] if c["id"] == "no-inline-suppressions")
    assert control["status"] == "fail"
    assert "app.py MLT-CODE-010 fixture" in control["details"][0]


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("import yaml\nyaml.load(s, Loader=yaml.SafeLoader)\n", False),
        ("import yaml\nclass L(yaml.SafeLoader):\n    pass\nyaml.load(s, Loader=L)\n", False),
        ("import yaml\nclass L(yaml.FullLoader):\n    pass\nyaml.load(s, Loader=L)\n", True),
        (
            "import yaml\nC = getattr(yaml, 'CSafeLoader', None)\nL = C or 1\n"
            "yaml.load(s, Loader=L)\n",
            True,
        ),
        (
            "import yaml\nL = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)\n"
            "yaml.load(s, Loader=L)\n",
            False,
        ),
        ("import yaml\nL = yaml.SafeLoader\nL = yaml.UnsafeLoader\nyaml.load(s, Loader=L)\n", True),
        ("import yaml\ndef f(s, loader):\n    return yaml.load(s, Loader=loader)\n", True),
        ("from evil import SafeLoader\nimport yaml\nyaml.load(s, Loader=SafeLoader)\n", True),
        ("from yaml import CSafeLoader\nimport yaml\nyaml.load(s, Loader=CSafeLoader)\n", False),
        ("import yaml\nyaml.load(s)\n", True),
    ],
)
def test_yaml_loader_is_resolved(source: str, flagged: bool) -> None:
    hits = [h for h in analyse_source(source) if h.rule.id == "MLT-CODE-003"]
    assert bool(hits) == flagged, source


def test_own_yaml_helper_is_not_flagged() -> None:
    src = Path(__file__).resolve().parents[1] / "src" / "mltrust" / "advisories" / "_yaml.py"
    assert [h for h in analyse_source(src.read_text()) if h.rule.id == "MLT-CODE-003"] == []


_REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("rel", "content"),
    [
        ("requirements.txt", "jinja2==2.10\n"),  # a vulnerable pin
        # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
        ("deploy.py", 'TOKEN = "ghp_' + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + '"\n'),
        ("serve.py", "import pickle\nfrom flask import request\npickle.loads(request.data)\n"),
    ],
)
def test_repository_policy_fails_a_planted_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rel: str, content: str
) -> None:
    """The repository's own profile and waivers still stop real problems (issue 20)."""
    project = tmp_path / "p"
    project.mkdir()
    (project / "requirements.txt").write_text("numpy==2.1.0\n")
    (project / "app.py").write_text("print('ok')\n")
    db = subset_db(tmp_path / "adv", ("jinja2", "numpy"))
    args = ["check", str(project), "--db", str(db), "--db-max-age", "0", "--no-store",
            "--profile", str(_REPO / "mltrust-policy.yaml"),
            "--waivers", str(_REPO / "mltrust-waivers.yaml")]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().out
    capsys.readouterr()
    (project / rel).write_text(content)
    assert main(args) == 1
