"""The Grafana dashboard's PromQL against a real Prometheus scraping real api, worker and scheduler processes.

Every expr in deploy/grafana/dashboards/tidings.json, with Grafana's variables substituted by preview.py's own
function, must evaluate (invalid PromQL fails), and the core panels must show the traffic driven here. The preview
renderer then draws the dashboard from the same Prometheus.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import GraphQL
from tests.integration.test_metrics import (
    ACTIVITY,
    BULK_TRIGGER,
    TRIGGER,
    metric_settings,
    prepare_workflows,
    wait_until_served,
)
from tests.servers import SECRET_KEY, RoleProcess, beanie_database, role_env
from tests.sinks import SmtpSink, smtp_sink
from tidings.app.embedded import free_port
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment

ROOT = Path(__file__).resolve().parents[2]
PREVIEW = ROOT / "deploy" / "grafana" / "preview.py"
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "tidings.json").read_text())
PROMETHEUS = "/usr/bin/prometheus"
SCRAPE_SECONDS = 1.0
STEP_SECONDS = 5.0  # a panel's $__interval: $__rate_interval becomes 6s, at least four scrapes
# Panels that the traffic below must move: a query that stopped matching the metrics it names fails here.
CORE_PANELS = {
    "Triggers by outcome",
    "Jobs by step type and outcome",
    "Trigger to delivery, p95 by channel",
    "GraphQL operations",
    "Task stream",
}


def _load_preview() -> Any:
    spec = importlib.util.spec_from_file_location("dashboard_preview", PREVIEW)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


preview = _load_preview()


def substituted(expr: str) -> str:
    text: str = preview.substitute(
        expr,
        interval=STEP_SECONDS,
        scrape_interval=SCRAPE_SECONDS,
        range_seconds=300,
        variables=preview.dashboard_variables(DASHBOARD),
    )
    return text


def panels() -> list[dict[str, Any]]:
    nested = [inner for panel in DASHBOARD["panels"] for inner in panel.get("panels", [])]
    return [panel for panel in DASHBOARD["panels"] + nested if panel.get("targets")]


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            response = await client.get(path, params=params)
        body: dict[str, Any] = response.json()
        return body

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@dataclass
class Stack:
    prometheus: Prometheus
    started: float
    processes: list[RoleProcess]

    def logs(self) -> str:
        return "\n".join([*(process.output()[-2000:] for process in self.processes), self.prometheus.output()])


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    if not Path(PROMETHEUS).exists():
        pytest.fail(f"{PROMETHEUS} is missing: apt-get install prometheus", pytrace=False)
    return PROMETHEUS


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[SmtpSink, int]]:
    with smtp_sink() as (smtp, port):
        yield smtp, port


def _start_prometheus(binary: str, tmp: Path, targets: dict[str, int]) -> Prometheus:
    scrape_configs = [
        {"job_name": f"tidings-{role}", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
        for role, port in targets.items()
    ]
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": scrape_configs}
    (tmp / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()  # never 9090: another Prometheus (or a packaged service) may have it
    log = tmp / "prometheus.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Prometheus(f"http://127.0.0.1:{port}", process, log)


async def _finished(gql: GraphQL, transactions: list[str]) -> None:
    deadline = time.monotonic() + 60
    for transaction in transactions:
        while True:
            edges = (await gql.data(ACTIVITY, t=transaction))["notifications"]["edges"]
            if edges and all(edge["node"]["status"] in ("COMPLETED", "FAILED") for edge in edges):
                break
            assert time.monotonic() < deadline, f"{transaction} did not finish within 60s: {edges}"
            await asyncio.sleep(0.1)


async def _warm_up(gql: GraphQL, prometheus: Prometheus) -> None:
    """One trigger, seen by Prometheus before the traffic: a series' first sample is no increase, so rates over
    counters born in a burst between two scrapes would stay empty."""
    to = {"subscriber": {"subscriberId": "d", "email": "d@example.com"}}
    await gql.data(TRIGGER, input={"workflowId": "metered", "to": [to], "transactionId": "warm-up"})
    await _finished(gql, ["warm-up"])
    born = [
        'tidings_triggers_total{outcome="accepted"}',
        'tidings_jobs_total{step_type="email", outcome="completed"}',
        'tidings_delivery_latency_seconds_count{channel="email"}',
        'tidings_graphql_operations_total{field="trigger"}',
    ]
    deadline = time.monotonic() + 30
    for series in born:
        while not (await prometheus.get("/api/v1/query", query=series))["data"]["result"]:
            assert time.monotonic() < deadline, f"Prometheus did not scrape {series} within 30s:\n{prometheus.output()}"
            await asyncio.sleep(0.2)


async def _drive_traffic(gql: GraphQL, smtp: SmtpSink) -> None:
    """Accepted, duplicate and refused triggers; in-app and email deliveries, one retried and one failed."""
    smtp.replies.extend(["451 4.3.0 Try again later", "550 5.1.1 No such user"])
    to = {"subscriber": {"subscriberId": "d", "email": "d@example.com"}}
    for index in range(3):
        await gql.data(TRIGGER, input={"workflowId": "metered", "to": [to], "transactionId": f"metered-{index}"})
    await gql.data(TRIGGER, input={"workflowId": "metered", "to": [to], "transactionId": "metered-0"})
    bulk = [{"workflowId": "ping", "to": [{"subscriberId": "d"}], "transactionId": f"ping-{i}"} for i in range(5)]
    await gql.data(BULK_TRIGGER, input={"events": bulk})
    assert (await gql.error(TRIGGER, input={"workflowId": "typed", "to": [{"subscriberId": "d"}]}))["code"]
    assert (await gql.error("{ madeUpField }"))["code"] == "GRAPHQL_VALIDATION"
    await _finished(gql, [*(f"metered-{i}" for i in range(3)), *(f"ping-{i}" for i in range(5))])


@pytest.fixture(scope="module")
async def stack(
    mongodb_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    sink: tuple[SmtpSink, int],
    prometheus_binary: str,
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("dashboard")
    settings = metric_settings(mongodb_url, redis_url, tmp)
    smtp, smtp_port = sink
    async with beanie_database(settings):
        issued = await create_environment("dashboard", cipher=Cipher(SECRET_KEY))
        api_port = free_port()
        api = RoleProcess("api", role_env(settings, TIDINGS_PORT=str(api_port)), tmp / "api.log").start()
        worker = RoleProcess("worker", role_env(settings), tmp / "worker.log").start()
        scheduler = RoleProcess("scheduler", role_env(settings), tmp / "scheduler.log").start()
        roles = {"api": api_port, "worker": settings.worker_metrics_port, "scheduler": settings.scheduler_metrics_port}
        prometheus = _start_prometheus(prometheus_binary, tmp, roles)
        stack = Stack(prometheus, time.time(), [api, worker, scheduler])
        try:
            for role, process in zip(roles, (api, worker, scheduler), strict=True):
                await wait_until_served(f"http://127.0.0.1:{roles[role]}/metrics", process.output)
            await wait_until_served(f"{prometheus.url}/-/ready", prometheus.output)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as client:
                gql = GraphQL(client, issued.api_key)
                await prepare_workflows(gql, smtp_port)
                await _warm_up(gql, prometheus)
                await _drive_traffic(gql, smtp)
            yield stack
        finally:
            prometheus.process.terminate()
            prometheus.process.wait(15)
            for process in (scheduler, worker, api):
                process.stop()


def _peak(result: list[dict[str, Any]]) -> float:
    values = [float(value) for series in result for _, value in series["values"]]
    return max((value for value in values if math.isfinite(value)), default=0.0)


async def test_every_dashboard_expr_is_valid_promql(stack: Stack) -> None:
    exprs = [(panel["title"], target["expr"]) for panel in panels() for target in panel["targets"]]
    assert len(exprs) >= 30
    failures = []
    for title, expr in exprs:
        body = await stack.prometheus.get("/api/v1/query", query=substituted(expr))
        if body["status"] != "success":
            failures.append(f"{title}: {expr}: {body.get('error')}")
    assert not failures, "\n".join(failures)


async def test_core_panels_show_the_traffic(stack: Stack) -> None:
    core = {panel["title"]: panel["targets"] for panel in panels() if panel["title"] in CORE_PANELS}
    assert set(core) == CORE_PANELS
    # The api samples the queue every 5 s and Prometheus scrapes every second: wait for both, not a fixed time.
    deadline = time.monotonic() + 60
    while True:
        missing = []
        for title, targets in core.items():
            peaks = []
            for target in targets:
                body = await stack.prometheus.get(
                    "/api/v1/query_range",
                    query=substituted(target["expr"]),
                    start=stack.started,
                    end=time.time(),
                    step=SCRAPE_SECONDS,
                )
                assert body["status"] == "success", body
                peaks.append(_peak(body["data"]["result"]))
            if max(peaks) <= 0:
                missing.append(title)
        if not missing:
            return
        assert time.monotonic() < deadline, f"no data within 60s for {missing}:\n{stack.logs()}"
        await asyncio.sleep(1)


async def test_trigger_counts_reach_prometheus_by_outcome(stack: Stack) -> None:
    query = "sum by (outcome) (tidings_triggers_total)"
    deadline = time.monotonic() + 30
    while True:
        body = await stack.prometheus.get("/api/v1/query", query=query)
        counts = {series["metric"]["outcome"]: float(series["value"][1]) for series in body["data"]["result"]}
        if counts == {"accepted": 9.0, "duplicate": 1.0, "rejected": 1.0}:
            return
        assert time.monotonic() < deadline, f"{counts}:\n{stack.logs()}"
        await asyncio.sleep(0.5)


async def test_preview_draws_the_dashboard_into_a_png(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "preview.png"
    command = [sys.executable, str(PREVIEW), "--prometheus", stack.prometheus.url, "--out", str(out)]
    command += ["--range", "2m", "--scrape-interval", "1s", "--html", str(tmp_path / "preview.html")]
    done = await asyncio.to_thread(subprocess.run, command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 1600, width
    assert height >= 2000, height  # every row of panels, not the first screen
    assert len(png) > 50_000
    page = (tmp_path / "preview.html").read_text()
    assert "not a Grafana screenshot" in page
    assert page.count("<polyline") >= 10  # charts drawn from data, not "No data" boxes
