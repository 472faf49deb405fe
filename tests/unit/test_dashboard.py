"""The Grafana dashboard and the code's metrics cannot drift apart.

Every module of Tidings is imported, so every metric it defines is registered; then each `tidings_*` name in a PromQL
expression of the dashboard must be one of them, and each of them must be on the dashboard.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

import tidings

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards" / "tidings.json"
# The series a metric family exports besides its own name (counters, histograms).
_SERIES_SUFFIX = re.compile(r"_(total|created|bucket|count|sum)$")
_METRIC = re.compile(r"\btidings_[a-z0-9_]+")


def registered() -> set[str]:
    for module in pkgutil.walk_packages(tidings.__path__, "tidings."):
        if module.name != "tidings.__main__":  # it runs the command line
            importlib.import_module(module.name)
    return {family.name for family in REGISTRY.collect() if family.name.startswith("tidings_")}


def family_of(series: str) -> str:
    return _SERIES_SUFFIX.sub("", series)


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [inner for panel in panels for inner in [panel, *_panels(panel.get("panels", []))]]


def on_dashboard() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [
        str(target.get("expr", "")) for panel in _panels(dashboard["panels"]) for target in panel.get("targets", [])
    ]
    return {family_of(name) for expr in exprs for name in _METRIC.findall(expr)}


def test_the_registry_holds_the_metrics_of_every_role() -> None:
    """A guard on the guard: were the import walk to miss modules, the comparisons below would prove little."""
    assert {
        "tidings_triggers",
        "tidings_jobs",
        "tidings_delivery_latency_seconds",
        "tidings_graphql_operations",
        "tidings_queue_oldest_due_seconds",
        "tidings_inbox_connections",
        "tidings_http_requests",
    } <= registered()


def test_every_metric_on_the_dashboard_is_one_the_code_registers() -> None:
    unknown = on_dashboard() - registered()
    assert not unknown, f"the dashboard queries metrics no code defines: {sorted(unknown)}"


def test_every_registered_metric_is_on_the_dashboard() -> None:
    missing = registered() - on_dashboard()
    assert not missing, f"metrics missing from deploy/grafana/dashboards/tidings.json: {sorted(missing)}"


def test_suffixes_name_series_of_one_family() -> None:
    assert family_of("tidings_jobs_total") == "tidings_jobs"
    assert family_of("tidings_step_duration_seconds_bucket") == "tidings_step_duration_seconds"
    assert family_of("tidings_queue_lag") == "tidings_queue_lag"
