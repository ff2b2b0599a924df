"""The Prometheus and Grafana files (infra/prometheus, infra/grafana), checked for real.

promtool validates the config and the rules and runs the rule unit tests (CI installs it: .ci/run),
the dashboard is valid JSON on the provisioned datasource, and every metric a rule or a panel
reads is one a real worker exports.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterable, Iterator

import pytest
import yaml

from fseflow.tests.services import flow_through_one_worker

INFRA = Path(__file__).resolve().parents[2] / "infra"
PROMETHEUS = INFRA / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
DASHBOARD = INFRA / "grafana" / "dashboards" / "fseflow.json"
DATASOURCES = INFRA / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

#: a PromQL identifier (metric names may hold colons: recording rules)
IDENTIFIER = re.compile(r"(?<![A-Za-z0-9_:\"])[A-Za-z_:][A-Za-z0-9_:]*")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool not found: install Debian's `prometheus` package "
                    "(apt-get install --no-install-recommends prometheus; .ci/run does it)")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS.parent.parent)


# --- metric names referenced by rules and panels, and exported by a worker ---------------------------

def rules(paths: Iterable[Path] = RULE_FILES) -> list[dict[str, Any]]:
    return [r for p in paths for g in yaml.safe_load(p.read_text("utf-8"))["groups"] for r in g["rules"]]


def panel_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p.get("targets", []) if t.get("expr")]


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dashboard["panels"]:
        yield p
        yield from p.get("panels", [])   # panels of a collapsed row


def referenced_metrics(exprs: Iterable[str], recorded: set[str]) -> set[str]:
    """Names of the `fseflow_*` series the expressions read; recording-rule outputs left out."""
    out = set()
    for expr in exprs:
        expr = re.sub(r'"[^"]*"', '""', expr)      # label values are not names
        for name in IDENTIFIER.findall(expr):
            if name.startswith("fseflow_") and name not in recorded:
                out.add(name)
    return out


def exported_metrics(exposition: str) -> set[str]:
    """Series names a /metrics page offers: each family from its `# TYPE` line (present even before
    a labelled metric's first sample), expanded to `_bucket/_count/_sum` for histograms, plus the
    names of the samples themselves."""
    out = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            out.add(name)
            if kind.strip() == "histogram":
                out.update(name + s for s in HISTOGRAM_SUFFIXES)
            elif kind.strip() == "summary":
                out.update(name + s for s in ("_count", "_sum"))
        elif line and not line.startswith("#"):
            out.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return out


def missing_metrics(referenced: set[str], exported: set[str]) -> list[str]:
    return sorted(referenced - exported)


# --- promtool ------------------------------------------------------------------------------------------

def test_prometheus_config_is_valid() -> None:
    r = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 rule files found" in r.stdout + r.stderr   # rule_files resolves to rules/*.yml


def test_rules_are_valid() -> None:
    assert RULE_FILES
    r = promtool("check", "rules", *map(str, RULE_FILES))
    assert r.returncode == 0, r.stdout + r.stderr


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    r = promtool("test", "rules", *map(str, RULE_TESTS))
    assert r.returncode == 0, r.stdout + r.stderr


def test_burn_rate_alerts_use_the_workbook_windows() -> None:
    alerts = {r["alert"]: r for r in rules() if "alert" in r}
    for slo in ("Latency", "Payment"):
        fast, slow = alerts[f"Fseflow{slo}SLOFastBurn"], alerts[f"Fseflow{slo}SLOSlowBurn"]
        assert "14.4" in fast["expr"] and "rate1h" in fast["expr"] and "rate5m" in fast["expr"]
        assert fast["labels"]["severity"] == "page"
        assert "6 *" in slow["expr"] and "rate6h" in slow["expr"] and "rate30m" in slow["expr"]
        assert slow["labels"]["severity"] == "ticket"


# --- Grafana -------------------------------------------------------------------------------------------

def test_dashboard_uses_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    assert dashboard["schemaVersion"] >= 36
    uids = {d["uid"] for d in yaml.safe_load(DATASOURCES.read_text("utf-8"))["datasources"]}
    bad = []
    for p in panels(dashboard):
        if p["type"] == "row":
            continue
        refs = [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]
        if not p.get("targets") or any(not isinstance(r, dict) or r.get("uid") not in uids for r in refs):
            bad.append(p["title"])
    assert not bad, f"panels without a target on datasource {uids}: {bad}"
    heatmaps = [p for p in panels(dashboard) if p["type"] == "heatmap"]
    assert len(heatmaps) == 4 and all(t["format"] == "heatmap" for p in heatmaps for t in p["targets"])


def test_reference_extraction() -> None:
    exprs = ['histogram_quantile(0.9, sum by (le) (rate(fseflow_a_seconds_bucket{le="fseflow_x"}[5m])))',
             "fseflow:slo:ratio > 1 and fseflow_b_total"]
    assert referenced_metrics(exprs, {"fseflow:slo:ratio"}) == {"fseflow_a_seconds_bucket", "fseflow_b_total"}
    text = "# HELP fseflow_h x\n# TYPE fseflow_h histogram\n# TYPE fseflow_c_total counter\n"
    assert exported_metrics(text) >= {"fseflow_h_bucket", "fseflow_h_count", "fseflow_c_total"}
    assert missing_metrics({"fseflow_h_sum", "fseflow_nope"}, exported_metrics(text)) == ["fseflow_nope"]


# --- scrape vs references ------------------------------------------------------------------------------

@pytest.mark.slow
def test_every_referenced_metric_is_exported(tmp_path: Path, fresh_db: str, kafka_bootstrap: str) -> None:
    exposition, _, _ = flow_through_one_worker(tmp_path, fresh_db, kafka_bootstrap, invoices=200, seed=11,
                                               population=3_000)

    all_rules = rules()
    recorded = {r["record"] for r in all_rules if "record" in r}
    exprs = [str(r["expr"]) for r in all_rules] + panel_exprs(json.loads(DASHBOARD.read_text("utf-8")))
    referenced = referenced_metrics(exprs, recorded)
    exported = exported_metrics(exposition)
    assert len(referenced) >= 10, sorted(referenced)
    missing = missing_metrics(referenced, exported)
    assert not missing, f"referenced by a rule or a panel but not exported by a worker: {missing}"
    # and the recording rules the dashboard reads are defined
    dash_recorded = {n for e in panel_exprs(json.loads(DASHBOARD.read_text("utf-8")))
                     for n in IDENTIFIER.findall(e) if n.startswith("fseflow:")}
    assert dash_recorded <= recorded, sorted(dash_recorded - recorded)
