"""Dashboards and alert rules (deploy/grafana, deploy/prometheus) against the real servers.

- the rules pass ``promtool check rules`` and their unit tests (``promtool test rules``);
  promtool comes from Debian's ``prometheus`` package (``scripts/ensure_tools.sh``); without
  it these tests skip locally and FAIL under ``CI=true``;
- every dashboard query is valid PromQL (checked by promtool as a recording rule, Grafana's
  variables replaced) and the dashboards are well formed (panels, targets, data source
  variable, unique ids, no overlapping panels) and match their generator;
- every metric a rule or a panel names is exported by a live ``mltrust serve`` or
  ``mltrust vault serve`` (real processes on loopback, scraped after some traffic).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from _net_helpers import free_port, start_serve
from _vault_helpers import Server, init_vault, new_token
from test_serve_support import ROW, add_python_model, iris_data, new_key, plugin_dir

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "mltrust-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "mltrust-rules.test.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))

pytestmark = pytest.mark.timeout(180)


# -- PromQL metric names ---------------------------------------------------------------------
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan", "atan2",
}  # fmt: skip
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords).

    String literals, label matchers ``{...}``, ranges ``[...]`` and grouping label lists are
    removed first; what remains that is an identifier not followed by ``(`` is a metric.
    """
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    assert "__name__" not in text, f"__name__ selectors are not supported: {expr}"
    names: set[str] = set()
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    for m in re.finditer(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?", text):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def test_promql_name_parser():
    expr = (
        'sum by (job, model) (rate(mltrust_requests_total{code=~"5..",x="a{b}"}[5m])) / '
        "on(job) group_left(model) max(mltrust_model_ready offset 5m) > bool 0.1 "
        "or histogram_quantile(0.9, sum by (le) (rate(a_b:c_bucket[$__rate_interval]))) "
        "unless vector(1) and time() - 30 * 86400 < inf"
    )
    assert promql_metric_names(expr) == {
        "mltrust_requests_total",
        "mltrust_model_ready",
        "a_b:c_bucket",
    }
    assert promql_metric_names('up{job="a"} == bool on() group_right vector(0)') == {"up"}


def _rule_exprs() -> list[str]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [r["expr"] for g in doc["groups"] for r in g["rules"]]


def _dashboard_exprs() -> list[str]:
    out = []
    for path in DASHBOARDS:
        doc = json.loads(path.read_text(encoding="utf-8"))
        for panel in doc["panels"]:
            out.extend(t["expr"] for t in panel.get("targets", []))
    return out


def _variable_queries() -> list[str]:
    """The metric selectors inside the dashboards' ``label_values(METRIC, label)`` variables."""
    out = []
    for path in DASHBOARDS:
        doc = json.loads(path.read_text(encoding="utf-8"))
        for var in doc["templating"]["list"]:
            if var["type"] == "query":
                m = re.fullmatch(r"label_values\((.+),\s*\w+\)", var["definition"])
                assert m, var["definition"]
                out.append(m.group(1))
    return out


def _grafana_to_promql(expr: str) -> str:
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__range", "1h")
        .replace("$job", ".*")
        .replace("$model", ".*")
    )


# -- promtool ----------------------------------------------------------------------------------
def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed (scripts/ensure_tools.sh installs Debian's prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI=true requires the rule tests")
        pytest.skip(message)
    return path


def test_rules_pass_promtool_check():
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rule_exprs())} rules found" in result.stdout


def test_rules_unit_tests_pass():
    result = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # every alert is exercised by the unit tests
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text(encoding="utf-8")))
    alerts = {
        r["alert"]
        for g in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
        for r in g["rules"]
    }
    assert alerts <= tested, alerts - tested


def test_a_broken_rule_fails_promtool(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        RULES.read_text(encoding="utf-8").replace(
            "max by (job, model) (mltrust_model_ready) == 0", "max by (job, model (x) == 0", 1
        )
    )
    result = subprocess.run(
        [_promtool(), "check", "rules", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0


def test_dashboard_queries_are_valid_promql(tmp_path):
    queries = [*_dashboard_exprs(), *_variable_queries()]
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"mltrust:dashboard_query_{i}", "expr": _grafana_to_promql(q)}
                    for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- dashboard structure -----------------------------------------------------------------------
def test_dashboards_match_their_generator():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "grafana_dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path):
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["uid"] and doc["title"] and doc["schemaVersion"] >= 36
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "job" in variables
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: dict[tuple[int, int], int] = {}
    panels = [p for p in doc["panels"] if p["type"] != "row"]
    assert len(panels) >= 6
    for panel in doc["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"panel {panel['id']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["id"]
    for panel in panels:
        assert panel["type"] in {"timeseries", "stat", "table"}, panel["type"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["expr"].strip()
            assert 'job=~"$job"' in target["expr"], (panel["title"], target["expr"])
            assert promql_metric_names(target["expr"]), target["expr"]


def test_provisioning_files():
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "mltrust.yml").read_text())
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"].startswith("http")
    dash = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "mltrust.yml").read_text())
    (provider,) = dash["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    assert {p.name for p in DASHBOARDS} == {"mltrust-serve.json", "mltrust-vault.json"}


# -- live servers ------------------------------------------------------------------------------
def _exported(text: str) -> tuple[set[str], set[str]]:
    """(families declared with # TYPE, names that have samples) of an exposition."""
    families, sampled = set(), set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            families.add(name)
            if kind == "histogram":
                families |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif line and not line.startswith("#"):
            sampled.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return families, sampled


@pytest.fixture(scope="module")
def serve_metrics(tmp_path_factory) -> str:
    """/metrics of a real `mltrust serve` after ok, refused, invalid and outlier requests."""
    tmp = tmp_path_factory.mktemp("serve")
    old_key = os.environ.get("MLTRUST_AUDIT_KEY")
    os.environ["MLTRUST_AUDIT_KEY"] = str(tmp / "audit-keys" / "audit.key")
    repo = tmp / "repo"
    folder = add_python_model(
        repo,
        "calc",
        "total",
        inputs=[{"name": "x", "datatype": "FP64", "shape": [-1, 4]}],
        policy={
            "detectors": [{"type": "mahalanobis", "reference": "reference.npy"}],
            "extraction": {"mode": "annotate", "min_samples": 20},
        },
    )
    np.save(folder / "reference.npy", iris_data()[0])
    (repo / "refused").mkdir()
    (repo / "refused" / "model.joblib").write_bytes(b"no settings: refused at admission")
    user = new_key(repo, "alice", [("calc", "infer")])
    admin = new_key(repo, "root", [("*", "admin")])
    port = free_port()
    proc = start_serve(repo, port, "--plugin-path", str(plugin_dir(tmp)))
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as c:
            body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
            assert c.post("/v2/models/calc/infer", json=body, headers=user).status_code == 200
            odd = {**body, "inputs": [{**body["inputs"][0], "data": [7.9, 2.0, 1.0, 2.5]}]}
            assert c.post("/v2/models/calc/infer", json=odd, headers=user).status_code == 200
            assert c.post("/v2/models/calc/infer", json=body).status_code == 401
            bad = {
                "inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]
            }
            assert c.post("/v2/models/calc/infer", json=bad, headers=user).status_code == 422
            assert c.get("/metrics").status_code == 401
            r = c.get("/metrics", headers=admin)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            return r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if old_key is None:
            os.environ.pop("MLTRUST_AUDIT_KEY", None)
        else:
            os.environ["MLTRUST_AUDIT_KEY"] = old_key


@pytest.fixture(scope="module")
def vault_metrics(tmp_path_factory) -> str:
    """/sys/metrics of a real `mltrust vault serve` after an allowed and a refused request."""
    tmp = tmp_path_factory.mktemp("vault")
    state = init_vault(tmp, None)
    admin = new_token(state, None, "*", "admin")
    reader = new_token(state, None, "*", "read")
    srv = Server(state, None)
    try:
        with httpx.Client(base_url=srv.addr, timeout=10) as c:
            ok = c.get("/environments", headers={"Authorization": f"Bearer {admin}"})
            assert ok.status_code == 200
            assert c.get("/environments").status_code == 401
            r = c.get("/sys/metrics", headers={"Authorization": f"Bearer {reader}"})
            assert r.status_code == 403  # metrics need admin on *
            r = c.get("/sys/metrics", headers={"Authorization": f"Bearer {admin}"})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            return r.text
    finally:
        srv.stop()


def test_serve_exports_what_it_counts(serve_metrics):
    text = serve_metrics
    assert 'mltrust_model_ready{model="calc"} 1' in text
    assert 'mltrust_model_ready{model="refused"} 0' in text
    assert re.search(r'mltrust_rejections_total\{model="-",reason="unauthenticated"\} 2\b', text)
    assert re.search(r'mltrust_rejections_total\{model="calc",reason="validation"\} 1\b', text)
    assert re.search(
        r"mltrust_identity_requests_total"
        r'\{identity="key:[0-9a-f]+:alice",model="calc",code="200"\} 2\b',
        text,
    )
    assert re.search(
        r'mltrust_detector_scored_total\{model="calc",detector="mahalanobis"\} 2\b', text
    )
    assert re.search(
        r'mltrust_detector_alerts_total\{model="calc",detector="mahalanobis"\} 1\b', text
    )
    assert "mltrust_audit_chain_ok 1" in text
    # entries before this scrape were committed and verified; the advisory database is absent
    assert re.search(r"mltrust_audit_entries_total [1-9]", text)
    assert "mltrust_advisory_db_present 0" in text


def test_vault_exports_what_it_counts(vault_metrics):
    text = vault_metrics
    assert re.search(
        r'mltrust_vault_requests_total\{route="/environments",method="GET",code="200"\} 1\b', text
    )
    assert re.search(
        r'mltrust_vault_rejections_total\{route="/environments",reason="unauthenticated"\} 1\b',
        text,
    )
    assert "mltrust_vault_sealed 0" in text
    assert "mltrust_audit_chain_ok 1" in text


def test_every_metric_in_rules_and_dashboards_is_exported(serve_metrics, vault_metrics):
    families, sampled = set(), set()
    for text in (serve_metrics, vault_metrics):
        f, s = _exported(text)
        families |= f
        sampled |= s
    used: dict[str, list[str]] = {}
    for expr in [*_rule_exprs(), *_dashboard_exprs(), *_variable_queries()]:
        for name in promql_metric_names(expr):
            used.setdefault(name, []).append(expr)
    assert len(used) >= 15
    missing = {name: exprs[0] for name, exprs in used.items() if name not in families}
    assert not missing, f"not exported by the servers: {missing}"
    # and the traffic above made most of them real series, not only declarations
    unsampled = sorted(n for n in used if n not in sampled)
    # (no advisory database on the test host: its age has no sample)
    assert unsampled == ["mltrust_advisory_db_data_timestamp_seconds"], unsampled


def test_metrics_of_a_model_name_do_not_grow_from_urls(serve_metrics):
    # only served models (and "-"/"unknown") become label values
    labels = set(re.findall(r'model="([^"]*)"', serve_metrics))
    assert labels <= {"calc", "refused", "-", "unknown"}, labels


def _audit_tamper_metrics(tmp_path) -> str:
    """A server whose audit log was rewritten under it reports the chain broken."""
    import sqlite3

    from test_serve_support import make_server

    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path), metrics_public=True)
    try:
        key = new_key(repo, "alice", [("calc", "infer")])
        app.keys.refresh(max_age=0)
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
        assert client.post("/v2/models/calc/infer", json=body, headers=key).status_code == 200
        db = sqlite3.connect(repo / ".mltrust" / "audit.db")
        db.execute("UPDATE audit SET entry = replace(entry, 'alice', 'mallory')")
        db.commit()
        db.close()
        assert client.post("/v2/models/calc/infer", json=body, headers=key).status_code == 503
        return str(client.get("/metrics").text)
    finally:
        client.close()


def test_rewritten_audit_log_shows_in_metrics(tmp_path):
    text = _audit_tamper_metrics(tmp_path)
    assert "mltrust_audit_chain_ok 0" in text
    assert re.search(r"mltrust_audit_verification_failures_total [1-9]", text)
    assert re.search(r"mltrust_audit_append_failures_total [1-9]", text)


def test_advisory_database_age_is_exported(tmp_path, monkeypatch):
    from mltrust.advisories import AdvisoryDB
    from mltrust.serve._metrics import AdvisoryStatus, Metrics

    osv = tmp_path / "osv"
    osv.mkdir()
    (osv / "PYSEC-1.json").write_text(
        json.dumps(
            {
                "id": "PYSEC-1",
                "modified": "2024-01-02T03:04:05Z",
                "affected": [{"package": {"name": "x", "ecosystem": "PyPI"}, "versions": ["1"]}],
            }
        )
    )
    db = tmp_path / "advisories.db"
    AdvisoryDB.import_osv(osv, db)
    text = Metrics(advisories=AdvisoryStatus(db)).render({})
    assert "mltrust_advisory_db_present 1" in text
    assert "mltrust_advisory_db_advisories 1" in text
    assert "mltrust_advisory_db_data_timestamp_seconds 1704164645.0" in text
    db.write_bytes(b"not a database")
    text = Metrics(advisories=AdvisoryStatus(db)).render({})
    assert "mltrust_advisory_db_present 0" in text


def test_vault_metrics_while_sealed_and_public(tmp_path):
    state = init_vault(tmp_path, None)
    admin = new_token(state, None, "*", "admin")
    srv = Server(state, None, "--sealed", "--metrics-public")
    try:
        with httpx.Client(base_url=srv.addr, timeout=10) as c:
            assert (
                c.get("/environments", headers={"Authorization": f"Bearer {admin}"}).status_code
                == 503
            )
            r = c.get("/sys/metrics")  # --metrics-public: no token
            assert r.status_code == 200
            assert "mltrust_vault_sealed 1" in r.text
            assert re.search(
                r'mltrust_vault_rejections_total\{route="/environments",reason="sealed"\} 1\b',
                r.text,
            )
    finally:
        srv.stop()
    srv = Server(state, None, "--sealed")
    try:
        with httpx.Client(base_url=srv.addr, timeout=10) as c:
            assert c.get("/sys/metrics").status_code == 401
            # sealed, the vault cannot check a token's integrity tag (its key is wrapped by
            # the KEK), so no token is accepted: scrape a sealed vault with --metrics-public
            r = c.get("/sys/metrics", headers={"Authorization": f"Bearer {admin}"})
            assert r.status_code == 503
    finally:
        srv.stop()


def test_identity_label_is_capped_against_label_flooding():
    from mltrust.config import DEFAULT_LIMITS
    from mltrust.serve._metrics import Metrics

    m = Metrics()
    for i in range(DEFAULT_LIMITS.max_metric_identities + 50):
        m.observe("calc", 200, 0.01, None, identity=f"jwt:issuer:user-{i}")
    m.observe("calc", 200, 0.01, None, identity="jwt:issuer:user-0")  # known: its own series
    text = m.render({"calc": True})
    series = re.findall(r"^mltrust_identity_requests_total\{identity=\"([^\"]+)\"", text, re.M)
    assert len(series) == DEFAULT_LIMITS.max_metric_identities + 1
    assert 'identity="other",model="calc",code="200"} 50' in text
    assert 'identity="jwt:issuer:user-0",model="calc",code="200"} 2' in text


def test_infinite_and_nan_scores_stay_valid_exposition():
    from mltrust.serve._metrics import Metrics

    m = Metrics()
    m.score("calc", "knn", 1.0, 0.0)  # a zero threshold: infinitely above
    m.score("calc", "knn", float("nan"), 2.0)
    text = m.render({"calc": True})
    assert 'mltrust_detector_score_ratio_sum{model="calc",detector="knn"} +Inf' in text
    assert 'mltrust_detector_score_ratio_bucket{model="calc",detector="knn",le="8.0"} 0' in text
    assert 'mltrust_detector_score_ratio_bucket{model="calc",detector="knn",le="+Inf"} 2' in text
    assert "nan" not in text.lower().replace("# help", "")


def test_live_expositions_pass_promtool_check_metrics(serve_metrics, vault_metrics):
    for text in (serve_metrics, vault_metrics):
        result = subprocess.run(
            [_promtool(), "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
