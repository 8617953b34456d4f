"""Write the Grafana dashboards of deploy/grafana/dashboards/ (run after editing this file).

    python scripts/grafana_dashboards.py          # rewrite the JSON files
    python scripts/grafana_dashboards.py --check  # exit 1 when the files differ from this

The dashboards are generated so that every panel follows the same conventions: the Prometheus
data source is the ``${datasource}`` variable (pick yours when importing), every query filters
on ``job=~"$job"``, ids are unique, and the grid positions do not overlap.
tests/test_observability.py checks the files against this script and every metric the queries
name against what a live ``mltrust serve`` and ``mltrust vault serve`` export.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


class _Board:
    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self._y = 0
        self._x = 0
        self._row_h = 0
        self._id = 0

    def _next_id(self) -> int:
        self._id += 1
        return self._id

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": self._next_id(),
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_h
            self._x = 0
            self._row_h = 0

    def panel(
        self,
        title: str,
        targets: list[tuple[str, str]],
        *,
        kind: str = "timeseries",
        unit: str = "short",
        w: int = 12,
        h: int = 8,
        description: str = "",
        thresholds: list[tuple[float | None, str]] | None = None,
        instant: bool = False,
    ) -> None:
        if self._x + w > 24:
            self._newline()
        steps = [{"color": c, "value": v} for v, c in (thresholds or [(None, "green")])]
        panel: dict[str, Any] = {
            "type": kind,
            "id": self._next_id(),
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": {"h": h, "w": w, "x": self._x, "y": self._y},
            "fieldConfig": {
                "defaults": {
                    "unit": unit,
                    "thresholds": {"mode": "absolute", "steps": steps},
                },
                "overrides": [],
            },
            "options": {},
            "targets": [
                {
                    "datasource": DS,
                    "refId": chr(ord("A") + i),
                    "expr": expr,
                    "legendFormat": legend,
                    **({"instant": True, "range": False} if instant else {}),
                }
                for i, (expr, legend) in enumerate(targets)
            ],
        }
        if kind == "timeseries":
            panel["options"] = {"legend": {"displayMode": "table", "placement": "right"}}
        self.panels.append(panel)
        self._x += w
        self._row_h = max(self._row_h, h)


def _templating(extra: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "list": [
            {
                "name": "datasource",
                "label": "Prometheus",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
            },
            *extra,
        ]
    }


def _query_var(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {},
        "hide": 0,
        "sort": 1,
    }


def _dashboard(uid: str, title: str, board: _Board, variables: list[dict[str, Any]]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "tags": ["mltrust"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "",
        "graphTooltip": 1,
        "annotations": {"list": []},
        "links": [],
        "templating": _templating(variables),
        "panels": board.panels,
    }


def serve_dashboard() -> dict[str, Any]:
    sel = 'job=~"$job", model=~"$model"'
    b = _Board()
    b.row("Traffic")
    b.panel(
        "Requests by model and status",
        [
            (
                f"sum by (model, code) (rate(mltrust_requests_total{{{sel}}}[{RATE}]))",
                "{{model}} {{code}}",
            )
        ],
        unit="reqps",
    )
    b.panel(
        "Requests by identity (top 10)",
        [
            (
                f"topk(10, sum by (identity) "
                f"(rate(mltrust_identity_requests_total{{{sel}}}[{RATE}])))",
                "{{identity}}",
            )
        ],
        unit="reqps",
        description="Authenticated requests only; identities beyond the first 1000 are 'other'.",
    )
    b.panel(
        "Latency percentiles",
        [
            (
                f"histogram_quantile({q}, sum by (le, model) "
                f"(rate(mltrust_request_seconds_bucket{{{sel}}}[{RATE}])))",
                f"p{int(q * 100)} {{{{model}}}}",
            )
            for q in (0.5, 0.95, 0.99)
        ],
        unit="s",
    )
    b.panel(
        "Server errors (5xx share)",
        [
            (
                f'sum(rate(mltrust_requests_total{{{sel}, code=~"5.."}}[{RATE}])) '
                f"/ sum(rate(mltrust_requests_total{{{sel}}}[{RATE}]))",
                "5xx",
            )
        ],
        unit="percentunit",
        thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
    )
    b.row("Denials")
    b.panel(
        "Denials by reason",
        [(f"sum by (reason) (rate(mltrust_rejections_total{{{sel}}}[{RATE}]))", "{{reason}}")],
        unit="reqps",
        w=24,
    )
    groups = [
        ("Authentication", "unauthenticated|auth failures|forbidden"),
        ("Rate limit and quota", "rate limit|quota exhausted"),
        (
            "Input validation",
            "validation|protocol|malformed json|json nested too deeply|data nested too deeply"
            "|unknown output|detector",
        ),
        ("Extraction", "extraction"),
        ("Admission (model not ready)", "model not ready"),
    ]
    for title, reasons in groups:
        b.panel(
            title,
            [
                (
                    f"sum by (model) (increase(mltrust_rejections_total"
                    f'{{{sel}, reason=~"{reasons}"}}[$__range]))',
                    "{{model}}",
                )
            ],
            kind="stat",
            w=24 // 5 if title != "Admission (model not ready)" else 24 - 4 * (24 // 5),
            h=5,
            description=f"Refusals in the time range (reasons: {reasons.replace('|', ', ')}).",
            instant=True,
        )
    b.panel(
        "Models refused at admission",
        [('mltrust_model_ready{job=~"$job", model=~"$model"} == 0', "{{model}}")],
        kind="table",
        w=12,
        description="A model that did not pass admission; GET /v2/admin/models has the reason.",
        instant=True,
    )
    b.panel(
        "Extraction and campaign alerts",
        [
            (
                f"sum by (model, detector) (increase(mltrust_detector_alerts_total{{{sel}, "
                f'detector=~"extraction|campaign"}}[$__range]))',
                "{{model}} {{detector}}",
            )
        ],
        kind="stat",
        w=12,
        thresholds=[(None, "green"), (1, "red")],
        instant=True,
    )
    b.row("Drift and outliers")
    b.panel(
        "Share of requests above the detector threshold",
        [
            (
                f"sum by (model, detector) (rate(mltrust_detector_alerts_total{{{sel}, "
                f'detector!~"extraction|campaign"}}[{RATE}])) / sum by (model, detector) '
                f"(rate(mltrust_detector_scored_total{{{sel}}}[{RATE}]))",
                "{{model}} {{detector}}",
            )
        ],
        unit="percentunit",
        thresholds=[(None, "green"), (0.1, "red")],
        description="About the configured false-alarm rate while inputs look like the "
        "reference data; the drift alert fires above 10%.",
    )
    b.panel(
        "Detector score / threshold (p50, p95)",
        [
            (
                f"histogram_quantile({q}, sum by (le, model, detector) "
                f"(rate(mltrust_detector_score_ratio_bucket{{{sel}}}[{RATE}])))",
                f"p{int(q * 100)} {{{{model}}}} {{{{detector}}}}",
            )
            for q in (0.5, 0.95)
        ],
        thresholds=[(None, "green"), (1, "red")],
        description="Above 1: the request's score crossed the detector's calibrated threshold.",
    )
    b.panel(
        "Calibrated thresholds",
        [
            (
                f"max by (model, detector) (mltrust_detector_threshold{{{sel}}})",
                "{{model}} {{detector}}",
            )
        ],
        kind="table",
        w=24,
        h=6,
        instant=True,
    )
    b.row("Audit chain and advisories")
    _audit_panels(b)
    b.panel(
        "Advisory data age",
        [
            (
                "(time() - max by (instance) "
                '(mltrust_advisory_db_data_timestamp_seconds{job=~"$job"})) / 86400',
                "{{instance}}",
            )
        ],
        kind="stat",
        unit="d",
        w=6,
        h=5,
        thresholds=[(None, "green"), (30, "red")],
        instant=True,
    )
    b.panel(
        "Advisory database present",
        [('min by (instance) (mltrust_advisory_db_present{job=~"$job"})', "{{instance}}")],
        kind="stat",
        w=6,
        h=5,
        thresholds=[(None, "red"), (1, "green")],
        instant=True,
    )
    b.panel(
        "Advisories",
        [('max by (instance) (mltrust_advisory_db_advisories{job=~"$job"})', "{{instance}}")],
        kind="stat",
        w=6,
        h=5,
        instant=True,
    )
    return _dashboard(
        "mltrust-serve",
        "mltrust serve",
        b,
        [
            _query_var("job", "Job", "label_values(mltrust_requests_total, job)"),
            _query_var("model", "Model", 'label_values(mltrust_model_ready{job=~"$job"}, model)'),
        ],
    )


def _audit_panels(b: _Board) -> None:
    job = 'job=~"$job"'
    b.panel(
        "Audit chain verified",
        [(f"min by (instance) (mltrust_audit_chain_ok{{{job}}})", "{{instance}}")],
        kind="stat",
        w=6,
        h=5,
        thresholds=[(None, "red"), (1, "green")],
        description="0: a commit found the chain no longer extends its signed anchor.",
        instant=True,
    )
    b.panel(
        "Since last verification",
        [
            (
                f"time() - max by (instance) "
                f"(mltrust_audit_last_verified_timestamp_seconds{{{job}}})",
                "{{instance}}",
            )
        ],
        kind="stat",
        unit="s",
        w=6,
        h=5,
        description="Every commit re-verifies the chain from its anchor; idle servers age here.",
        instant=True,
    )
    b.panel(
        "Audit entries",
        [
            (
                f"sum by (instance) (rate(mltrust_audit_entries_total{{{job}}}[{RATE}]))",
                "{{instance}}",
            )
        ],
        unit="ops",
        w=6,
        h=5,
    )
    b.panel(
        "Audit failures",
        [
            (
                f"sum by (instance) "
                f"(increase(mltrust_audit_append_failures_total{{{job}}}[$__range]))",
                "append {{instance}}",
            ),
            (
                f"sum by (instance) "
                f"(increase(mltrust_audit_verification_failures_total{{{job}}}[$__range]))",
                "verification {{instance}}",
            ),
        ],
        kind="stat",
        w=6,
        h=5,
        thresholds=[(None, "green"), (1, "red")],
        instant=True,
    )


def vault_dashboard() -> dict[str, Any]:
    sel = 'job=~"$job"'
    b = _Board()
    b.row("Traffic")
    b.panel(
        "Requests by route and status",
        [
            (
                f"sum by (route, method, code) "
                f"(rate(mltrust_vault_requests_total{{{sel}}}[{RATE}]))",
                "{{method}} {{route}} {{code}}",
            )
        ],
        unit="reqps",
    )
    b.panel(
        "Latency percentiles",
        [
            (
                f"histogram_quantile({q}, sum by (le) "
                f"(rate(mltrust_vault_request_seconds_bucket{{{sel}}}[{RATE}])))",
                f"p{int(q * 100)}",
            )
            for q in (0.5, 0.95, 0.99)
        ],
        unit="s",
    )
    b.row("Denials")
    b.panel(
        "Denials by reason",
        [
            (
                f"sum by (reason) (rate(mltrust_vault_rejections_total{{{sel}}}[{RATE}]))",
                "{{reason}}",
            )
        ],
        unit="reqps",
    )
    b.panel(
        "Sealed",
        [(f"max by (instance) (mltrust_vault_sealed{{{sel}}})", "{{instance}}")],
        kind="stat",
        thresholds=[(None, "green"), (1, "red")],
        instant=True,
    )
    b.row("Audit chain")
    _audit_panels(b)
    return _dashboard(
        "mltrust-vault",
        "mltrust vault",
        b,
        [_query_var("job", "Job", "label_values(mltrust_vault_requests_total, job)")],
    )


DASHBOARDS = {"mltrust-serve.json": serve_dashboard, "mltrust-vault.json": vault_dashboard}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name in DASHBOARDS:
        text = render(name)
        path = OUT / name
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)} (run python scripts/grafana_dashboards.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
