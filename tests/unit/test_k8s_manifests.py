"""The Kubernetes manifests (deploy/k8s): rendered with `kubectl kustomize`, validated against the Kubernetes API
schemas, and checked for what the roles rely on — probes, resources, credentials only by Secret reference, budgets,
autoscalers and Services that point at real pods, environment variables that are real settings, and grace periods
longer than the roles' own drains.

kubectl is required (Debian: `apt-get install kubernetes-client`; `.ci/run` installs it): without it the tests fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tidings.app.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OPERATIONS = ROOT / "docs" / "operations.md"
TREES = {"base": K8S / "base", "production": K8S / "overlays" / "production"}
# The kubectl this was written with. The kinds used are GA since 1.23 (HPA autoscaling/v2; PDB policy/v1 since 1.21).
KUBERNETES_VERSION = "1.32.0"
ROLES = ("api", "worker", "scheduler")
SECRET_NAME = "tidings-secrets"
CONNECTIONS = {"TIDINGS_MONGODB_URL", "TIDINGS_REDIS_URL"}
SECRET_SETTINGS = CONNECTIONS | {"TIDINGS_SECRET_KEY"}
# What each role refuses to start without (app/cli.py); the scheduler decrypts nothing.
ROLE_SECRETS = {"api": SECRET_SETTINGS, "worker": SECRET_SETTINGS, "scheduler": CONNECTIONS}
EXPECTED_KINDS = {
    ("ConfigMap", 1),
    ("Deployment", 3),
    ("HorizontalPodAutoscaler", 2),
    ("PodDisruptionBudget", 3),
    ("Service", 2),
    ("ServiceAccount", 1),
}

Doc = dict[str, Any]


@cache
def _render(tree: str) -> tuple[Doc, ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is not on PATH: the manifests are rendered with `kubectl kustomize`. Install it "
            "(Debian: `apt-get install kubernetes-client`; .ci/run does this).",
            pytrace=False,
        )
    result = subprocess.run(
        [kubectl, "kustomize", str(TREES[tree])], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {TREES[tree]} failed:\n{result.stderr}"
    docs = tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)
    assert docs, f"kubectl kustomize {TREES[tree]} rendered nothing"
    return docs


@dataclass(frozen=True)
class Rendered:
    tree: str
    docs: tuple[Doc, ...]

    def of_kind(self, kind: str) -> list[Doc]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def deployment(self, role: str) -> Doc:
        found = [
            doc
            for doc in self.of_kind("Deployment")
            if doc["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == role
        ]
        assert len(found) == 1, f"{self.tree}: expected one Deployment for the {role} role, found {len(found)}"
        return found[0]

    def container(self, role: str) -> Doc:
        containers: list[Doc] = self.deployment(role)["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1, f"{self.tree}: the {role} pod should run one container"
        return containers[0]

    def config(self) -> dict[str, str]:
        (config_map,) = self.of_kind("ConfigMap")
        data: dict[str, str] = config_map.get("data", {})
        return data

    def settings(self) -> Settings:
        """The Settings a pod loads from the ConfigMap (secrets aside), read the way the roles read them."""
        with pytest.MonkeyPatch.context() as patch:
            for name in [name for name in os.environ if name.startswith(ENV_PREFIX)]:
                patch.delenv(name)
            for name, value in self.config().items():
                patch.setenv(name, value)
            return Settings(_env_file=None)


@pytest.fixture(scope="module", params=list(TREES))
def rendered(request: pytest.FixtureRequest) -> Rendered:
    tree: str = request.param
    return Rendered(tree, _render(tree))


def _name(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def _selects(selector: dict[str, str], deployment: Doc) -> bool:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


_UNITS = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30}


def _quantity(value: object) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(value))
    assert match, f"unexpected quantity {value!r}"
    assert match.group(2) in _UNITS, f"unexpected unit in {value!r}"
    return float(match.group(1)) * _UNITS[match.group(2)]


def _env_names(container: Doc) -> set[str]:
    return {entry["name"] for entry in container.get("env", [])}


# --------------------------------------------------------------------------------------------------------------
# Both trees
# --------------------------------------------------------------------------------------------------------------


def test_every_document_is_valid_for_kubernetes(rendered: Rendered) -> None:
    errors = []
    for doc in rendered.docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{_name(doc)}: {'.'.join(str(part) for part in exc.path)}: {exc.message}")
    assert not errors, "\n".join(errors)
    kinds = {(kind, len(rendered.of_kind(kind))) for kind in {doc["kind"] for doc in rendered.docs}}
    assert kinds == EXPECTED_KINDS


def test_each_role_runs_the_same_image_with_its_role_argument(rendered: Rendered) -> None:
    images = set()
    for role in ROLES:
        container = rendered.container(role)
        assert container["args"] == [role]
        assert "command" not in container, "the image's entrypoint is `tidings`; the role is its argument"
        images.add(container["image"])
    assert len(images) == 1, images


def test_every_container_has_probes(rendered: Rendered) -> None:
    port = rendered.settings().port
    api = rendered.container("api")
    ports = {entry["name"]: entry["containerPort"] for entry in api["ports"]}
    expected = {"startupProbe": "/healthz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}
    for probe, path in expected.items():
        check = api[probe]["httpGet"]
        assert check["path"] == path, probe
        assert ports.get(check["port"], check["port"]) == port, f"{probe} does not reach TIDINGS_PORT {port}"
    for role in ("worker", "scheduler"):
        container = rendered.container(role)
        for probe in ("startupProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"] == ["tidings", "healthcheck", role], f"{role} {probe}"
            # Each check starts a Python process: Kubernetes' 1 s default would kill healthy pods on a busy node.
            assert container[probe]["timeoutSeconds"] >= 5, f"{role} {probe}"


def test_liveness_tolerates_a_missed_heartbeat(rendered: Rendered) -> None:
    interval = rendered.settings().heartbeat_interval_seconds
    for role in ("worker", "scheduler"):
        probe = rendered.container(role)["livenessProbe"]
        assert probe["periodSeconds"] * probe["failureThreshold"] > 3 * interval, role


def test_every_container_has_bounded_resources(rendered: Rendered) -> None:
    for role in ROLES:
        resources = rendered.container(role)["resources"]
        for resource in ("cpu", "memory"):
            request = _quantity(resources["requests"][resource])
            limit = _quantity(resources["limits"][resource])
            assert 0 < request <= limit, f"{rendered.tree} {role} {resource}: request {request} > limit {limit}"


def test_credentials_come_from_the_secret_by_reference(rendered: Rendered) -> None:
    assert not rendered.of_kind("Secret"), "the Secret is created by the operator, never shipped with values"
    assert not SECRET_SETTINGS & set(rendered.config()), "credentials must not be in the ConfigMap"
    text = yaml.safe_dump_all(rendered.docs)
    assert not re.search(r"(mongodb(\+srv)?|rediss?)://", text), "a connection URL is embedded in the manifests"
    for role in ROLES:
        container = rendered.container(role)
        by_name = {entry["name"]: entry for entry in container.get("env", [])}
        assert ROLE_SECRETS[role] <= set(by_name), f"{role} lacks {ROLE_SECRETS[role] - set(by_name)}"
        for name in SECRET_SETTINGS & set(by_name):
            assert "value" not in by_name[name], f"{role} sets {name} inline"
            reference = by_name[name]["valueFrom"]["secretKeyRef"]
            assert reference == {"name": SECRET_NAME, "key": name}, f"{role} {name}: {reference}"
        assert SECRET_SETTINGS & set(by_name) == ROLE_SECRETS[role], f"{role} gets secrets it does not need"


def test_every_environment_variable_is_a_setting(rendered: Rendered) -> None:
    names = set(rendered.config())
    for role in ROLES:
        container = rendered.container(role)
        names |= _env_names(container)
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] == rendered.of_kind("ConfigMap")[0]["metadata"]["name"]
    unknown = sorted(
        name
        for name in names
        if not (name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :].lower() in Settings.model_fields)
    )
    assert not unknown, f"not Tidings settings: {unknown}"
    rendered.settings()  # and every ConfigMap value is valid for its setting


def test_pods_run_unprivileged_on_a_read_only_root(rendered: Rendered) -> None:
    heartbeat_dir = PurePosixPath(rendered.settings().heartbeat_dir.as_posix())
    for role in ROLES:
        pod = rendered.deployment(role)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, role
        assert pod["securityContext"]["runAsUser"] != 0, role
        assert pod["automountServiceAccountToken"] is False, role
        container = rendered.container(role)
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, role
        assert context["readOnlyRootFilesystem"] is True, role
        assert context.get("privileged", False) is False, role
        assert context["capabilities"]["drop"] == ["ALL"], role
        assert not context["capabilities"].get("add"), role
        # The heartbeat file (worker, scheduler) and temporary files need a writable directory: an emptyDir.
        empty_dirs = {volume["name"] for volume in pod.get("volumes", []) if "emptyDir" in volume}
        writable = [
            PurePosixPath(mount["mountPath"])
            for mount in container.get("volumeMounts", [])
            if mount["name"] in empty_dirs and not mount.get("readOnly", False)
        ]
        assert any(heartbeat_dir.is_relative_to(path) for path in writable), f"{role}: {heartbeat_dir} read-only"


def test_grace_periods_outlast_the_roles_own_drains(rendered: Rendered) -> None:
    settings = rendered.settings()
    for role in ROLES:
        # `shutdown_grace_seconds` settings of this role (`worker_…`) or of every role, as they are added.
        drains = [
            float(getattr(settings, field))
            for field in Settings.model_fields
            if field.endswith("shutdown_grace_seconds")
            and field.removesuffix("shutdown_grace_seconds") in ("", f"{role}_")
        ]
        if role == "worker":
            assert drains, "TIDINGS_WORKER_SHUTDOWN_GRACE_SECONDS is gone: update this test"
        pre_stop = rendered.container(role).get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        sleep = float(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0.0
        grace = rendered.deployment(role)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        needed = sleep + max(drains, default=0.0)
        assert grace > needed, f"{rendered.tree} {role}: terminationGracePeriodSeconds {grace} <= {needed}"


def test_budgets_select_the_pods_of_one_deployment(rendered: Rendered) -> None:
    deployments = rendered.of_kind("Deployment")
    covered = set()
    for budget in rendered.of_kind("PodDisruptionBudget"):
        selector = budget["spec"]["selector"]["matchLabels"]
        matching = [doc for doc in deployments if _selects(selector, doc)]
        assert len(matching) == 1, f"{_name(budget)} selects {len(matching)} Deployments"
        (deployment,) = matching
        covered.add(deployment["metadata"]["name"])
        spec = budget["spec"]
        # A budget that never allows an eviction blocks every node drain.
        if "minAvailable" in spec:
            assert spec["minAvailable"] < deployment["spec"]["replicas"], _name(budget)
        else:
            assert spec["maxUnavailable"] >= 1, _name(budget)
    assert covered == {doc["metadata"]["name"] for doc in deployments}


def test_autoscalers_scale_the_api_and_worker_deployments_on_cpu(rendered: Rendered) -> None:
    deployments = {doc["metadata"]["name"]: doc for doc in rendered.of_kind("Deployment")}
    scaled = set()
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment"), _name(hpa)
        assert target["name"] in deployments, f"{_name(hpa)} targets a missing Deployment {target['name']}"
        deployment = deployments[target["name"]]
        scaled.add(deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])
        spec = hpa["spec"]
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"], _name(hpa)
        assert deployment["spec"]["replicas"] == spec["minReplicas"], f"{_name(hpa)}: replicas differ from minimum"
        assert {metric["resource"]["name"] for metric in spec["metrics"] if metric["type"] == "Resource"} == {"cpu"}
    assert scaled == {"api", "worker"}, "the scheduler is leader-elected: more replicas do not add throughput"


def test_services_reach_named_container_ports(rendered: Rendered) -> None:
    settings = rendered.settings()
    by_name = {doc["metadata"]["name"]: doc for doc in rendered.of_kind("Service")}
    assert set(by_name) == {"tidings-api", "tidings-worker-metrics"}
    expected = {
        "tidings-api": ("api", settings.port),
        "tidings-worker-metrics": ("worker", settings.worker_metrics_port),
    }
    assert by_name["tidings-worker-metrics"]["spec"]["clusterIP"] == "None", "one address per worker to scrape"
    for name, (role, port) in expected.items():
        service = by_name[name]
        assert _selects(service["spec"]["selector"], rendered.deployment(role)), name
        for other in ROLES:
            if other != role:
                assert not _selects(service["spec"]["selector"], rendered.deployment(other)), f"{name} -> {other}"
        container_ports = {entry["name"]: entry["containerPort"] for entry in rendered.container(role)["ports"]}
        (service_port,) = service["spec"]["ports"]
        assert container_ports[service_port["targetPort"]] == port, name


def test_every_role_is_annotated_for_scraping(rendered: Rendered) -> None:
    settings = rendered.settings()
    # The worker and scheduler serve metrics at TIDINGS_HOST: on loopback no scraper could reach them.
    assert settings.host == "0.0.0.0"
    ports = {"api": settings.port, "worker": settings.worker_metrics_port, "scheduler": settings.scheduler_metrics_port}
    for role, port in ports.items():
        annotations = rendered.deployment(role)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", role
        assert annotations["prometheus.io/path"] == "/metrics", role
        assert int(annotations["prometheus.io/port"]) == port, role
        assert port in {entry["containerPort"] for entry in rendered.container(role)["ports"]}, role


# --------------------------------------------------------------------------------------------------------------
# The production overlay against the base
# --------------------------------------------------------------------------------------------------------------


def test_production_runs_more_and_bigger_pods() -> None:
    base, production = Rendered("base", _render("base")), Rendered("production", _render("production"))
    assert production.deployment("scheduler")["spec"]["replicas"] >= 2, "a standby scheduler takes over the lock"
    for role in ROLES:
        assert production.deployment(role)["spec"]["replicas"] >= base.deployment(role)["spec"]["replicas"], role
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                bigger = _quantity(production.container(role)["resources"][bound][resource])
                assert bigger >= _quantity(base.container(role)["resources"][bound][resource]), (role, bound)
    hpas = {doc["metadata"]["name"]: doc["spec"] for doc in base.of_kind("HorizontalPodAutoscaler")}
    for hpa in production.of_kind("HorizontalPodAutoscaler"):
        assert hpa["spec"]["maxReplicas"] > hpas[hpa["metadata"]["name"]]["maxReplicas"], _name(hpa)


def test_production_is_pinned_namespaced_and_closed() -> None:
    production = Rendered("production", _render("production"))
    settings = production.settings()
    assert settings.graphql_introspection is False
    assert settings.graphql_ide is False
    image = production.container("api")["image"]
    repository, _, tag = image.rpartition(":")
    assert "/" in repository, f"{image}: production pulls from a registry"
    assert re.fullmatch(r"v?\d+(\.\d+)*([-+.][\w.]+)?", tag), f"{image}: pin a release tag"
    assert {doc["metadata"].get("namespace") for doc in production.docs} == {"tidings"}


def test_operations_guide_shows_how_to_create_the_secret_and_apply() -> None:
    guide = OPERATIONS.read_text(encoding="utf-8")
    command = re.search(rf"kubectl create secret generic {SECRET_NAME}(?:[^\n]*\\\n)*[^\n]*", guide)
    assert command, f"docs/operations.md must show `kubectl create secret generic {SECRET_NAME} …`"
    for name in SECRET_SETTINGS:
        assert f"--from-literal={name}=" in command.group(0), name
    assert "kubectl apply -k deploy/k8s/overlays/production" in guide


def test_operations_guide_manifests_are_valid() -> None:
    """The Ingress and KEDA examples of the guide: Kubernetes kinds validate, the KEDA one scales the worker."""
    blocks = re.findall(r"```yaml\n(.*?)```", OPERATIONS.read_text(encoding="utf-8"), flags=re.DOTALL)
    docs = [yaml.safe_load(textwrap.dedent(block)) for block in blocks]
    kinds = {doc["kind"]: doc for doc in docs if isinstance(doc, dict) and "kind" in doc}
    assert {"Ingress", "ScaledObject"} <= set(kinds)
    kubernetes_validate.validate(kinds["Ingress"], KUBERNETES_VERSION, strict=True)
    backends = {path["backend"]["service"]["name"] for path in kinds["Ingress"]["spec"]["rules"][0]["http"]["paths"]}
    assert backends == {"tidings-api"}
    scaled = kinds["ScaledObject"]["spec"]
    assert (
        scaled["scaleTargetRef"]["name"] == Rendered("base", _render("base")).deployment("worker")["metadata"]["name"]
    )
    queries = [trigger["metadata"]["query"] for trigger in scaled["triggers"] if trigger["type"] == "prometheus"]
    assert queries
    assert "tidings_queue_lag" in queries[0]
