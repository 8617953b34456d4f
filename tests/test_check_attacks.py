"""Attacks on the release gate itself: a hostile project must not get a pass, crash the
checker, or make it read and echo files outside the project."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from _check_helpers import MALICIOUS_PICKLE
from mltrust.evidence import CollectContext, collect_evidence
from mltrust.evidence._depsources import DependencyFileError, parse_requirements
from mltrust.policy import ControlStatus, VerdictStatus, evaluate, load_profile

PROTO0_PICKLE = b"cposix\nsystem\n(S'touch /tmp/pwned'\ntR."


def _verdict(root: Path, profile: str = "default", **kw: object):  # type: ignore[no-untyped-def]
    bundle = collect_evidence(CollectContext(root, **kw))  # type: ignore[arg-type]
    return bundle, evaluate(bundle.document, load_profile(profile))


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("notes.txt", MALICIOUS_PICKLE),
        ("config.json", MALICIOUS_PICKLE),
        ("README.md", PROTO0_PICKLE),
        ("weights", MALICIOUS_PICKLE),
    ],
)
def test_attack_pickle_disguised_as_text_file(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    bundle, verdict = _verdict(tmp_path)
    assert name in bundle.document["scan"]["not_scanned_files"] + [
        f["path"] for f in bundle.document["scan"]["findings"]
    ]
    assert verdict.status is VerdictStatus.FAIL
    failed = {r.control.id for r in verdict.by_status(ControlStatus.FAIL)}
    assert failed & {"model-scan-clean", "model-scanned"}


def test_attack_requirements_include_outside_project(tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("root:x:0:0:supersecret-line:/root:/bin/bash\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("-r ../outside.txt\njinja2==3.1.4\n")
    bundle, verdict = _verdict(project, advisory_db=tmp_path / "none.db")
    errors = bundle.document["deps"]["errors"]
    assert errors and "outside the project" in errors[0]
    assert "supersecret" not in json.dumps(bundle.document)
    readable = next(r for r in verdict.results if r.control.id == "dependency-files-readable")
    assert readable.status is ControlStatus.FAIL


def test_attack_requirements_include_loop_terminates(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("-r b.txt\nx==1\n")
    (tmp_path / "b.txt").write_text("-r a.txt\ny==1\n")
    with pytest.raises(DependencyFileError, match="nested"):
        parse_requirements(tmp_path / "a.txt", "a.txt")


def test_attack_symlinked_files_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    # mltrust: ignore[MLT-CODE-009] a fake key header outside the project, to test links
    (outside / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").symlink_to(outside / "id_rsa")
    (project / "linked").symlink_to(outside, target_is_directory=True)
    bundle, _ = _verdict(project)
    assert bundle.document["code"]["secrets"] == []
    assert bundle.document["deps"]["present"] is False


def test_attack_deeply_nested_inputs_do_not_crash(tmp_path: Path) -> None:
    (tmp_path / "deep.ipynb").write_text("[" * 200_000 + "]" * 200_000)
    (tmp_path / "deep.py").write_text("x = " + "(" * 5_000 + "1" + ")" * 5_000 + "\n")
    (tmp_path / "README.md").write_text("---\nlicense: " + "[" * 50_000 + "\n---\n")
    bundle, verdict = _verdict(tmp_path)
    assert bundle.errors == ()
    assert sorted(bundle.document["code"]["not_analysed"]) == ["deep.ipynb", "deep.py"]
    assert verdict.status is not VerdictStatus.ERROR


def test_attack_forged_robustness_attestation_is_not_verified(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    forged = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model.safetensors", "digest": {"sha256": "0" * 64}}],
        "predicateType": "https://mltrust.dev/robustness/v1",
        "predicate": {"clean_accuracy": 1.0, "results": [{"eps": 0.3, "robust_accuracy": 1.0}]},
    }
    (tmp_path / ".mltrust").mkdir()
    envelope = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(json.dumps(forged).encode()).decode(),
        "signatures": [{"sig": base64.b64encode(b"not a signature").decode()}],
    }
    (tmp_path / ".mltrust" / "robustness.json").write_text(json.dumps(envelope))
    bundle, verdict = _verdict(tmp_path, "atlas")
    section = bundle.document["robustness"]
    assert not section["present"] and not section["verified"]
    assert section["ignored"][0]["source"] == ".mltrust/robustness.json"
    hardening = next(r for r in verdict.results if r.control.id == "AML.M0003")
    assert hardening.status is ControlStatus.WARN
    assert "no robustness attestation" in hardening.details[0]


def test_signed_robustness_attestation_verifies(tmp_path: Path) -> None:
    attest = pytest.importorskip("mltrust.attest", reason="signing (mltrust.attest) not present")
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    keys = attest.generate_keypair(tmp_path / "k" / "robust", passphrase=None)
    from mltrust.digest import sha256_file

    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model.safetensors", "digest": {"sha256": sha256_file(model)}}],
        "predicateType": "https://mltrust.dev/robustness/v1",
        "predicate": {
            "clean_accuracy": 0.95,
            "threat_model": {"norm": "inf", "domain": {"lower": 0, "upper": 1}, "attack": "pgd"},
            "results": [{"eps": 0.05, "robust_accuracy": 0.7}],
        },
    }
    bundle = attest.sign_statement(statement, attest.load_private_key(keys.private_path))
    (tmp_path / ".mltrust").mkdir()
    (tmp_path / ".mltrust" / "robustness.bundle.json").write_text(json.dumps(bundle))
    evidence, verdict = _verdict(tmp_path, "atlas", keys=(keys.public_path,))
    assert evidence.document["robustness"]["verified"] is True
    assert evidence.document["robustness"]["min_robust_accuracy"] == 0.7
    hardening = next(r for r in verdict.results if r.control.id == "AML.M0003")
    assert hardening.status is ControlStatus.PASS


@pytest.mark.parametrize(
    "payload",
    [b"- " * 200_000 + b"x\n", b"id: X\nd: " + b"[" * 100_000 + b"\n", b"{" * 100_000 + b"\n"],
)
def test_attack_deep_yaml_advisory_cannot_crash_import(tmp_path: Path, payload: bytes) -> None:
    """libyaml's C loader segfaults on such documents; the import must skip them instead."""
    from mltrust.advisories import AdvisoryDB

    src = tmp_path / "osv"
    src.mkdir()
    (src / "evil.yaml").write_bytes(payload)
    (src / "good.yaml").write_bytes(b"id: GOOD-1\naffected: [{package: {name: demo}}]\n")
    stats = AdvisoryDB.import_osv(src, tmp_path / "db.sqlite")
    assert (stats.advisories, stats.skipped) == (1, 1)


def test_attack_deep_yaml_model_card_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("---\nlicense: " + "- " * 100_000 + "mit\n---\n")
    bundle, _ = _verdict(tmp_path)
    assert bundle.errors == ()
    assert bundle.document["licenses"]["present"] is False


def test_attack_billion_laughs_advisory_is_bounded(tmp_path: Path) -> None:
    """Aliases make a tiny YAML document describe 10**9 nodes; nothing may expand them."""
    from mltrust.advisories import AdvisoryDB

    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    bomb = "\n".join(lines)
    doc = (
        f"{bomb}\nid: BOMB-1\nsummary: *a8\npublished: *a8\naliases: *a8\n"
        "severity: [{type: CVSS_V3, score: *a8}]\n"
        "affected:\n- package: {name: demo, ecosystem: *a8}\n  versions: *a8\n"
        "  ranges: [{type: ECOSYSTEM, events: [{introduced: '0'}, {fixed: *a8}, *a8]}]\n"
    )
    src = tmp_path / "osv"
    src.mkdir()
    (src / "bomb.yaml").write_text(doc)
    stats = AdvisoryDB.import_osv(src, tmp_path / "db.sqlite")
    assert stats.advisories == 1
    with AdvisoryDB.open(tmp_path / "db.sqlite") as db:
        (match,) = db.matches("demo", "1.0")  # introduced 0, no usable fix: affected
        assert match.advisory.aliases == ()
        assert match.advisory.severity == "unknown"


# -- inline suppression markers are written by the project under check --------------------------

_PICKLE_APP = "import pickle\n\n\ndef f(d):\n    return pickle.loads(d)"


def _pickle_rows(bundle) -> list[int]:  # type: ignore[no-untyped-def]
    return [
        r["line"] for r in bundle.document["code"]["dangerous"] if r["rule_id"] == "MLT-CODE-001"
    ]


@pytest.mark.parametrize(
    "source",
    [
        # the marker text on the finding's own line, inside a string literal
        _PICKLE_APP + '; s = "# mltrust: ignore[MLT-CODE-001] planted in a string"\n',
        # a docstring line made to look like a comment line above the finding
        'import pickle\n\n\ndef f(d):\n    """\n    # mltrust: ignore[MLT-CODE-001] docstring\n'
        '    """; return pickle.loads(d)\n',
        # an f-string and a bytes literal
        _PICKLE_APP + '; s = f"# mltrust: ignore[MLT-CODE-001] {d}"\n',
        _PICKLE_APP + '; b = b"# mltrust: ignore[MLT-CODE-001] bytes"\n',
    ],
)
def test_attack_marker_inside_string_literal_does_not_suppress(tmp_path: Path, source: str) -> None:
    (tmp_path / "app.py").write_text(source)
    bundle, verdict = _verdict(tmp_path, inline_suppressions=True)
    assert _pickle_rows(bundle), source
    assert bundle.document["code"]["suppressed"] == []
    assert verdict.status is VerdictStatus.FAIL


def test_real_comment_marker_suppresses_when_the_policy_opts_in(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(_PICKLE_APP + "  # mltrust: ignore[MLT-CODE-001] oracle\n")
    bundle, _ = _verdict(tmp_path, inline_suppressions=True)
    assert _pickle_rows(bundle) == []
    assert [s["line"] for s in bundle.document["code"]["suppressed"]] == [5]


def test_attack_project_marker_is_not_honoured_by_default(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        _PICKLE_APP + "  # mltrust: ignore[MLT-CODE-001] trust me\n"
        "# mltrust: ignore[MLT-CODE-001] and me\nx = pickle.load(open('m', 'rb'))\n"
    )
    bundle, verdict = _verdict(tmp_path)
    code = bundle.document["code"]
    assert _pickle_rows(bundle) == [5, 7]
    assert code["inline_suppressions"] is False and code["suppressed"] == []
    ignored = code["suppressions_ignored"]
    assert [(i["line"], i["marker_line"], i["reason"]) for i in ignored] == [
        (5, 5, "trust me"),
        (7, 6, "and me"),
    ]
    assert "not honoured" in ignored[0]["why"]
    assert verdict.status is VerdictStatus.FAIL
    failed = {r.control.id for r in verdict.by_status(ControlStatus.FAIL)}
    assert "no-dangerous-code" in failed


def test_attack_marker_outside_python_is_not_a_marker(tmp_path: Path) -> None:
    # mltrust: ignore[MLT-CODE-010] AWS's documented example key, a fixture
    key = "AKIAIOSFODNN7EXAMPLE"
    (tmp_path / "settings.yaml").write_text(
        f"aws: {key}  # mltrust: ignore[MLT-CODE-010] a YAML comment is not checked as one\n"
    )
    (tmp_path / "README.md").write_text(
        f'```\nAWS = "{key}"  # mltrust: ignore[MLT-CODE-010] doc\n```\n'
    )
    bundle, _ = _verdict(tmp_path, inline_suppressions=True)
    assert sorted(s["path"] for s in bundle.document["code"]["secrets"]) == [
        "README.md",
        "settings.yaml",
    ]


def test_profile_opts_in_to_inline_suppressions(tmp_path: Path) -> None:
    from mltrust.errors import ConfigError
    from mltrust.policy import parse_profile

    assert load_profile("default").inline_suppressions is False
    base = tmp_path / "base.yaml"
    base.write_text("extends: default\ncode: {inline_suppressions: true}\n")
    assert load_profile(base).inline_suppressions is True
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\n")
    assert load_profile(child).inline_suppressions is True  # inherited
    child.write_text("extends: base.yaml\ncode: {inline_suppressions: false}\n")
    assert load_profile(child).inline_suppressions is False
    repo = Path(__file__).resolve().parents[1] / "mltrust-policy.yaml"
    assert load_profile(repo).inline_suppressions is True  # the self gate opts in
    for bad in ({"inline_suppressions": "yes"}, {"suppress": True}, ["inline_suppressions"]):
        with pytest.raises(ConfigError, match="code"):
            parse_profile({"extends": "default", "code": bad})


def test_cli_flag_overrides_the_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mltrust.cli import main

    project = tmp_path / "p"
    project.mkdir()
    (project / "app.py").write_text(_PICKLE_APP + "  # mltrust: ignore[MLT-CODE-001] oracle\n")
    profile = tmp_path / "lax.yaml"
    profile.write_text("extends: default\ncode: {inline_suppressions: true}\n")
    args = ["check", str(project), "--profile", str(profile), "--no-store", "-f", "json"]
    args += ["--db", str(tmp_path / "none.db"), "--db-max-age", "0"]
    main(args)
    honoured = json.loads(capsys.readouterr().out)["evidence"]["code"]
    main([*args, "--no-inline-suppressions"])
    refused = json.loads(capsys.readouterr().out)["evidence"]["code"]
    assert (len(honoured["suppressed"]), len(honoured["suppressions_ignored"])) == (1, 0)
    assert (len(refused["suppressed"]), len(refused["suppressions_ignored"])) == (0, 1)


def test_attack_marker_line_numbers_cannot_be_shifted(tmp_path: Path) -> None:
    """A line separator that str.splitlines() knows and Python does not (form feed, U+2028)
    must not make a trailing marker look like a line of its own that covers the next line, nor
    line up a marker with a secret the secret search numbered differently."""
    (tmp_path / "app.py").write_text(
        'import pickle\ns = "\u2028            "\n'
        "t = 1  # mltrust: ignore[MLT-CODE-001] shifted\n"
        "x = pickle.loads(d)\n",
        encoding="utf-8",
    )
    bundle, _ = _verdict(tmp_path, inline_suppressions=True)
    assert _pickle_rows(bundle) == [4]


def test_attack_marker_cannot_cover_a_secret_numbered_differently(tmp_path: Path) -> None:
    # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
    key = "AKIAIOSFODNN7" + "EXAMPLE"
    (tmp_path / "app.py").write_text(
        f's = "\u2028"\nk = "{key}"\nx = 1  # mltrust: ignore[MLT-CODE-010] other line\n',
        encoding="utf-8",
    )
    bundle, _ = _verdict(tmp_path, inline_suppressions=True)
    assert [s["rule_id"] for s in bundle.document["code"]["secrets"]] == ["MLT-CODE-010"]
