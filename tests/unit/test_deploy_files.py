"""Static checks of the deployment files (Dockerfile, docker-compose.yml, Prometheus and Grafana provisioning).

No Docker is needed: the files are parsed and checked for the invariants the stack relies on.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_FILE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA_DATASOURCE_FILE = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_PROVIDER_FILE = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "tidings.yml"
GRAFANA_DASHBOARD_FILE = ROOT / "deploy" / "grafana" / "dashboards" / "tidings.json"

EXPECTED_SERVICES = {"mongo", "redis", "api", "worker", "scheduler", "prometheus", "grafana"}
APP_ROLES = ("api", "worker", "scheduler")

# PromQL functions, aggregation operators and keywords: identifiers in an expression that are not metric names.
PROMQL_NON_METRICS = {
    "abs", "absent", "absent_over_time", "and", "avg", "avg_over_time", "bool", "bottomk", "by", "ceil",
    "changes", "clamp", "clamp_max", "clamp_min", "count", "count_over_time", "count_values", "delta", "deriv",
    "exp", "floor", "group", "group_left", "group_right", "histogram_quantile", "idelta", "ignoring", "increase",
    "irate", "label_replace", "last_over_time", "ln", "log2", "log10", "max", "max_over_time", "min",
    "min_over_time", "offset", "on", "or", "quantile", "quantile_over_time", "rate", "resets", "round", "scalar",
    "sort", "sort_desc", "sqrt", "stddev", "stdvar", "sum", "sum_over_time", "time", "timestamp", "topk",
    "unless", "vector", "without",
}  # fmt: skip
ALLOWED_METRIC = re.compile(r"^(tidings_\w+|process_\w+|up)$")


def _load_yaml(path: Path) -> dict[str, Any]:
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} must be a YAML mapping"
    return data


def _compose() -> dict[str, Any]:
    return _load_yaml(COMPOSE_FILE)


def _services() -> dict[str, dict[str, Any]]:
    services: Any = _compose().get("services")
    assert isinstance(services, dict), "docker-compose.yml has no services mapping"
    for name, service in services.items():
        assert isinstance(service, dict), f"service {name} must be a mapping"
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env: Any = service.get("environment", {})
    if isinstance(env, list):
        pairs = [str(item).partition("=") for item in env]
        return {key: value for key, _, value in pairs}
    assert isinstance(env, dict)
    return {str(key): str(value) for key, value in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps: Any = service.get("depends_on", {})
    if isinstance(deps, list):
        return {str(name): {} for name in deps}
    assert isinstance(deps, dict)
    return {str(name): (spec if isinstance(spec, dict) else {}) for name, spec in deps.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command: Any = service.get("command")
    if isinstance(command, str):
        return command.split()
    assert isinstance(command, list), "command must be a string or a list"
    return [str(part) for part in command]


def _bind_sources(service: dict[str, Any]) -> list[str]:
    sources: list[str] = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source = volume.split(":", 1)[0]
        elif isinstance(volume, dict):
            source = str(volume.get("source", ""))
        else:
            pytest.fail(f"unexpected volume entry {volume!r}")
        if source.startswith("./"):
            sources.append(source)
    return sources


def _dockerfile() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


def _dockerfile_instructions(keyword: str) -> list[str]:
    """Arguments of every `keyword` instruction, with backslash continuations joined."""
    joined = re.sub(r"\\\n", " ", _dockerfile())
    pattern = re.compile(rf"^\s*{keyword}\s+(.+)$", re.IGNORECASE | re.MULTILINE)
    return [match.group(1).strip() for match in pattern.finditer(joined)]


def _dashboard() -> dict[str, Any]:
    data: Any = json.loads(GRAFANA_DASHBOARD_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    pending: list[Any] = list(_dashboard().get("panels", []))
    while pending:
        panel = pending.pop(0)
        assert isinstance(panel, dict)
        panels.append(panel)
        pending.extend(panel.get("panels", []))  # panels nested in collapsed rows
    return panels


def _metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (label matchers, ranges and groupings stripped)."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    stripped = re.sub(r"\{[^}]*\}", " ", stripped)
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped)
    identifiers = re.findall(r"(?<![\w.$])[A-Za-z_:][\w:]*", stripped)
    return {name for name in identifiers if name not in PROMQL_NON_METRICS}


# --------------------------------------------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------------------------------------------


def test_compose_defines_exactly_the_expected_services() -> None:
    assert set(_services()) == EXPECTED_SERVICES


def test_every_service_has_a_healthcheck() -> None:
    for name, service in _services().items():
        healthcheck: Any = service.get("healthcheck")
        assert isinstance(healthcheck, dict), f"{name} has no healthcheck"
        assert not healthcheck.get("disable", False), f"{name} disables its healthcheck"
        test: Any = healthcheck.get("test")
        assert test, f"{name} healthcheck has an empty test"
        if isinstance(test, list):
            assert test[0] in {"CMD", "CMD-SHELL"}, f"{name} healthcheck test must start with CMD or CMD-SHELL"
            assert len(test) > 1, f"{name} healthcheck test has no command"
            assert all(str(part).strip() for part in test), f"{name} healthcheck test has an empty argument"
        else:
            assert isinstance(test, str), f"{name} healthcheck test must be a string or a list"
            assert test.strip(), f"{name} healthcheck test is empty"


def test_mongo_runs_a_replica_set() -> None:
    mongo = _services()["mongo"]
    assert str(mongo["image"]).startswith("mongo:8")
    assert "--replSet" in _command(mongo)
    healthcheck_text = " ".join(str(part) for part in mongo["healthcheck"]["test"])
    assert "rs.initiate" in healthcheck_text, "mongo healthcheck must initiate the replica set"


def test_redis_image() -> None:
    redis = _services()["redis"]
    assert str(redis["image"]).startswith("redis:7")
    assert "redis-cli" in " ".join(str(part) for part in redis["healthcheck"]["test"])


@pytest.mark.parametrize("role", APP_ROLES)
def test_app_roles_are_built_from_the_repo(role: str) -> None:
    service = _services()[role]
    build: Any = service.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    assert context in {".", "./"}, f"{role} must be built from the repository root"
    assert _command(service) == [role]


@pytest.mark.parametrize("role", APP_ROLES)
def test_app_roles_wait_for_healthy_datastores(role: str) -> None:
    deps = _depends_on(_services()[role])
    for datastore in ("mongo", "redis"):
        assert datastore in deps, f"{role} must depend on {datastore}"
        assert deps[datastore].get("condition") == "service_healthy", f"{role} must wait for {datastore} healthy"


def test_depends_on_targets_are_defined_services() -> None:
    services = _services()
    for name, service in services.items():
        for target in _depends_on(service):
            assert target in services, f"{name} depends on undefined service {target}"
            assert target != name, f"{name} depends on itself"


@pytest.mark.parametrize("role", APP_ROLES)
def test_app_roles_environment(role: str) -> None:
    env = _environment(_services()[role])
    assert "replicaSet=" in env.get("TIDINGS_MONGODB_URL", "")
    assert env.get("TIDINGS_REDIS_URL", "").startswith("redis://")
    assert "TIDINGS_SECRET_KEY" in env


def test_app_roles_share_one_image() -> None:
    services = _services()
    images = {services[role].get("image") for role in APP_ROLES}
    assert None not in images, "api, worker and scheduler must name their image"
    assert len(images) == 1, "api, worker and scheduler must use the same image tag"


def test_bind_mounted_host_paths_exist() -> None:
    sources = [source for service in _services().values() for source in _bind_sources(service)]
    assert sources, "expected the Prometheus and Grafana configuration to be bind-mounted"
    for source in sources:
        assert (ROOT / source).exists(), f"bind-mounted path {source} does not exist in the repository"


def test_named_volumes_are_declared() -> None:
    compose = _compose()
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else str(volume.get("source", ""))
            if source and not source.startswith(("./", "../", "/", "~")):
                assert source in declared, f"{name} uses undeclared named volume {source}"
    assert {"mongo-data", "redis-data"} <= declared


# --------------------------------------------------------------------------------------------------------------
# Prometheus and Grafana
# --------------------------------------------------------------------------------------------------------------


def test_prometheus_scrapes_the_api_metrics() -> None:
    config = _load_yaml(PROMETHEUS_FILE)
    jobs: list[dict[str, Any]] = config["scrape_configs"]
    api_jobs = [
        job
        for job in jobs
        if any("api:8000" in target for static in job.get("static_configs", []) for target in static["targets"])
    ]
    assert api_jobs, "no scrape job targets api:8000"
    job = api_jobs[0]
    assert job["job_name"] == "tidings-api"
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_grafana_datasource_and_provider() -> None:
    datasources: list[dict[str, Any]] = _load_yaml(GRAFANA_DATASOURCE_FILE)["datasources"]
    prometheus = [ds for ds in datasources if ds.get("uid") == "prometheus"]
    assert len(prometheus) == 1
    assert prometheus[0]["type"] == "prometheus"
    assert prometheus[0]["url"] == "http://prometheus:9090"
    assert prometheus[0].get("isDefault") is True

    providers: list[dict[str, Any]] = _load_yaml(GRAFANA_PROVIDER_FILE)["providers"]
    paths = {provider["options"]["path"] for provider in providers if provider.get("type", "file") == "file"}
    grafana_mounts = [str(volume) for volume in _services()["grafana"].get("volumes", [])]
    for path in paths:
        assert any(mount.split(":")[1] == path for mount in grafana_mounts), f"{path} is not mounted into grafana"


def test_grafana_dashboard_is_valid() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "tidings-overview"
    assert dashboard["title"] == "Tidings overview"
    panels = _panels()
    assert panels
    ids = [panel["id"] for panel in panels if panel.get("type") != "row"]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_grafana_dashboard_queries_known_metrics() -> None:
    referenced: set[str] = set()
    for panel in _panels():
        if panel.get("type") == "row":
            continue
        targets: list[dict[str, Any]] = panel.get("targets", [])
        assert targets, f"panel {panel.get('title')!r} has no targets"
        for target in targets:
            expr = str(target.get("expr", ""))
            metrics = _metric_names(expr)
            assert metrics, f"panel {panel.get('title')!r} query {expr!r} references no metric"
            for metric in metrics:
                assert ALLOWED_METRIC.match(metric), f"panel {panel.get('title')!r} uses unexpected metric {metric}"
            referenced |= metrics
    assert {
        "tidings_http_requests_total",
        "tidings_http_request_duration_seconds_bucket",
        "process_resident_memory_bytes",
        "up",
    } <= referenced


def test_grafana_panels_use_the_provisioned_datasource() -> None:
    for panel in _panels():
        datasource: Any = panel.get("datasource")
        if isinstance(datasource, dict) and datasource.get("type") == "prometheus":
            assert datasource.get("uid") == "prometheus", f"panel {panel.get('title')!r} uses an unknown datasource"


# --------------------------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_python_313_slim() -> None:
    froms = _dockerfile_instructions("FROM")
    assert sum(1 for image in froms if image.split()[0] == "python:3.13-slim") >= 2


def test_dockerfile_runs_as_non_root() -> None:
    users = _dockerfile_instructions("USER")
    assert users, "Dockerfile has no USER instruction"
    final_user = users[-1].split(":", 1)[0]
    assert final_user not in {"root", "0"}


def test_dockerfile_environment() -> None:
    env_lines = " ".join(_dockerfile_instructions("ENV"))
    assert re.search(r"\bPYTHONSAFEPATH=1\b", env_lines)


def test_dockerfile_healthcheck_and_entrypoint() -> None:
    healthchecks = _dockerfile_instructions("HEALTHCHECK")
    assert healthchecks, "Dockerfile has no HEALTHCHECK"
    assert "NONE" not in healthchecks[-1].upper().split()
    entrypoints = _dockerfile_instructions("ENTRYPOINT")
    assert entrypoints, "Dockerfile has no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["tidings"]


def test_dockerfile_installs_locked_production_dependencies_only() -> None:
    runs = " ".join(_dockerfile_instructions("RUN"))
    assert "uv sync --frozen --no-dev" in runs
    assert "embedded" not in runs, "the production image must not install the embedded extra"
    assert "--all-extras" not in runs
