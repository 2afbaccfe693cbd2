"""The Helm chart in deploy/k8s/registry, rendered by Helm's engine and checked object by object.

Rendering needs no cluster: `lookup` answers nothing, so generated passwords differ per render; the tests
compare values within one render, never across renders.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import helm_python as helm
import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from .conftest import CHART, NAMESPACE, RELEASE, ROUTES, SERVICES, Rendered

FULLNAME = f"{RELEASE}-registry"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest with schemas here.
KUBE_VERSIONS = ("1.30.0", latest_version())
DEPENDENCIES = ("mongodb", "rabbitmq", "minio")


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# ---- the chart as a whole ------------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("which", ["default", "external"])
def test_every_object_is_valid_kubernetes(which: str, kube_version: str, request: pytest.FixtureRequest) -> None:
    rendered: Rendered = request.getfixturevalue(f"{which}_render")
    assert rendered.objects
    errors = []
    for obj in rendered.objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            # strict: an unknown field (a typo, a field in the wrong place) is an error too
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{name}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{name}: no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {kube_version}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("which", ["default", "external"])
def test_helm_lint_finds_no_warning(which: str, external_values: dict[str, Any]) -> None:
    values = external_values if which == "external" else None
    report = helm.lint(str(CHART), values, strict=True, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


def test_object_names_are_unique_per_kind(default_render: Rendered) -> None:
    seen = [(o["kind"], o["metadata"]["name"]) for o in default_render.objects]
    assert len(seen) == len(set(seen))


def test_no_image_floats(default_render: Rendered) -> None:
    for _workload, spec in default_render.pod_specs():
        for container in containers(spec):
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag, f"{image}: no tag"
            assert tag not in ("latest", ""), f"{image}: floating tag"


# ---- the five services ---------------------------------------------------------------------------


def test_a_deployment_and_service_per_service(default_render: Rendered) -> None:
    assert default_render.names("Deployment") == {f"{FULLNAME}-{c}" for c in SERVICES} | {f"{FULLNAME}-gateway"}
    for component, (_key, module) in SERVICES.items():
        deployment = default_render.deployment(component)
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"].split("/")[-1].startswith(f"{component}:")
        assert container["command"] == ["python", "-m", module]
        service = default_render.get("Service", f"{FULLNAME}-{component}")
        assert selects(service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])
        assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_every_workload_container_has_probes_and_limits(default_render: Rendered) -> None:
    for workload, spec in default_render.pod_specs():
        kind, name = workload["kind"], workload["metadata"]["name"]
        for container in containers(spec):
            limits = container.get("resources", {}).get("limits", {})
            requests = container.get("resources", {}).get("requests", {})
            assert {"cpu", "memory"} <= limits.keys(), f"{kind}/{name} {container['name']}: limits"
            assert {"cpu", "memory"} <= requests.keys(), f"{kind}/{name} {container['name']}: requests"
        if kind == "Job":
            continue  # runs to completion: nothing to probe
        for container in spec["containers"]:
            assert "livenessProbe" in container, f"{kind}/{name} {container['name']}: no liveness probe"
            assert "readinessProbe" in container, f"{kind}/{name} {container['name']}: no readiness probe"


def test_service_probes_use_the_services_endpoints(default_render: Rendered) -> None:
    for component in SERVICES:
        [container] = default_render.deployment(component)["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/-/health", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
        assert container["startupProbe"]["httpGet"] == {"path": "/-/health", "port": "http"}
        assert [p["name"] for p in container["ports"]] == ["http"]


@pytest.mark.parametrize("which", ["default", "external"])
def test_every_container_runs_non_root_on_a_read_only_filesystem(which: str, request: pytest.FixtureRequest) -> None:
    rendered: Rendered = request.getfixturevalue(f"{which}_render")
    for workload, spec in rendered.pod_specs():
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] > 0, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec.get("automountServiceAccountToken") is False, where
        for container in containers(spec):
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, f"{where} {container['name']}"
            assert context["readOnlyRootFilesystem"] is True, f"{where} {container['name']}"
            assert context["allowPrivilegeEscalation"] is False, f"{where} {container['name']}"
            assert context["capabilities"] == {"drop": ["ALL"]}, f"{where} {container['name']}"
            assert "privileged" not in context or context["privileged"] is False


def test_services_get_an_empty_dir_for_tmp(default_render: Rendered) -> None:
    for component in SERVICES:
        spec = default_render.deployment(component)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        [container] = spec["containers"]
        [tmp] = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert "emptyDir" in volumes[tmp["name"]]


def test_every_deployment_has_one_disruption_budget(default_render: Rendered) -> None:
    budgets = default_render.of_kind("PodDisruptionBudget")
    for workload_kind in ("Deployment", "StatefulSet"):
        for workload in default_render.of_kind(workload_kind):
            labels = workload["spec"]["template"]["metadata"]["labels"]
            matching = [b for b in budgets if selects(b["spec"]["selector"]["matchLabels"], labels)]
            assert len(matching) == 1, f"{workload_kind}/{workload['metadata']['name']}: {len(matching)} PDBs"
            spec = matching[0]["spec"]
            # maxUnavailable >= 1 (or a minAvailable below the replica count) lets a node drain proceed
            assert spec.get("maxUnavailable", 0) >= 1 or "minAvailable" in spec


def test_index_api_proxy_and_web_scale_on_cpu(default_render: Rendered) -> None:
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in default_render.of_kind("HorizontalPodAutoscaler")}
    assert set(hpas) == {f"{FULLNAME}-index-api", f"{FULLNAME}-proxy", f"{FULLNAME}-web"}
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        [metric] = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        # The HPA owns the replica count: a Deployment that also sets it is reset on every upgrade.
        assert "replicas" not in default_render.get("Deployment", name)["spec"]


def test_the_worker_scales_by_replicas(render: Callable[..., Rendered]) -> None:
    rendered = render({"metadataWorker": {"replicas": 5}})
    assert rendered.deployment("metadata-worker")["spec"]["replicas"] == 5
    assert f"{FULLNAME}-metadata-worker" not in {
        h["spec"]["scaleTargetRef"]["name"] for h in rendered.of_kind("HorizontalPodAutoscaler")}


def test_upload_api_autoscaling_can_be_switched_on(render: Callable[..., Rendered]) -> None:
    rendered = render({"uploadApi": {"autoscaling": {"enabled": True}}})
    assert f"{FULLNAME}-upload-api" in rendered.names("HorizontalPodAutoscaler")
    assert "replicas" not in rendered.deployment("upload-api")["spec"]


def test_graceful_shutdown_gets_its_time(default_render: Rendered) -> None:
    for component in SERVICES:
        spec = default_render.deployment(component)["spec"]["template"]["spec"]
        [container] = spec["containers"]
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep"
        pre_stop = float(command[1])
        assert pre_stop >= 1
        env = {e["name"]: e.get("value") for e in container["env"]}
        shutdown = float(env["SHUTDOWN_TIMEOUT"])
        # The preStop sleep and the drain both count against the grace period; SIGKILL must not cut in.
        assert spec["terminationGracePeriodSeconds"] > pre_stop + shutdown, component


def test_replicas_are_named_after_their_pod(default_render: Rendered) -> None:
    for component in SERVICES:
        [container] = default_render.deployment(component)["spec"]["template"]["spec"]["containers"]
        [replica] = [e for e in container["env"] if e["name"] == "REPLICA_ID"]
        assert replica["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_a_config_change_rolls_the_pods(render: Callable[..., Rendered], default_render: Rendered) -> None:
    changed = render({"config": {"LOG_LEVEL": "debug"}})

    def checksum(rendered: Rendered) -> str:
        return rendered.deployment("index-api")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum(changed) != checksum(default_render)


# ---- the Ingress and routes.json -----------------------------------------------------------------


def ingress_routes(rendered: Rendered) -> list[dict[str, Any]]:
    """The rendered Ingresses as routes.json-like entries, in the order they were emitted."""
    routes = []
    for ingress in rendered.of_kind("Ingress"):
        [rule] = ingress["spec"]["rules"]
        [path] = rule["http"]["paths"]
        annotations = ingress["metadata"]["annotations"]
        route = {
            "name": ingress["metadata"]["labels"]["app.kubernetes.io/route"],
            "service": path["backend"]["service"]["name"],
            "port": path["backend"]["service"]["port"],
            "timeout_seconds": int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]),
            "send_timeout_seconds": int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]),
            "host": rule["host"],
        }
        if path["pathType"] == "ImplementationSpecific":
            assert annotations.get("nginx.ingress.kubernetes.io/use-regex") == "true"
            route["regex"] = path["path"]
        else:
            assert path["pathType"] == "Prefix"
            route["prefix"] = path["path"]
        routes.append(route)
    return routes


def test_ingress_is_routes_json(default_render: Rendered, routes: list[dict[str, Any]]) -> None:
    rendered = ingress_routes(default_render)
    # the gateway tries every regex route before any prefix route; the Ingresses come in that order
    expected_order = [r for r in routes if "regex" in r] + [r for r in routes if "regex" not in r]
    assert len(rendered) == len(routes)
    for got, want in zip(rendered, expected_order, strict=True):
        assert got["name"] == want["name"]
        assert got.get("regex") == want.get("regex")
        assert got.get("prefix") == want.get("prefix")
        # send_file routes go through the chart's gateway (nginx, which proxies them to the backend)
        assert got["service"] == f"{FULLNAME}-{'gateway' if want.get('send_file') else want['backend']}"
        assert got["port"] == {"name": "http"}
        assert got["timeout_seconds"] == got["send_timeout_seconds"] == want.get("timeout_seconds", 60)
        assert got["host"] == default_render.values["ingress"]["host"]


def gateway_backend(routes: list[dict[str, Any]], path: str) -> str | None:
    """nginx as the local gateway is configured: regex locations in order, else the longest prefix."""
    for route in routes:
        if "regex" in route and re.search(route["regex"], path):
            return route["backend"]
    prefixes = [r for r in routes if "prefix" in r and path.startswith(r["prefix"])]
    return max(prefixes, key=lambda r: len(r["prefix"]))["backend"] if prefixes else None


def ingress_backend(rendered: Rendered, path: str) -> str | None:
    """ingress-nginx with use-regex on the host: every path is a case-insensitive regex anchored at the
    start, tried longest path first (its documented ordering)."""
    locations = sorted(ingress_routes(rendered), key=lambda r: len(r.get("regex") or r["prefix"]), reverse=True)
    for route in locations:
        pattern = route.get("regex") or "^" + re.escape(route["prefix"])
        if not pattern.startswith("^"):
            pattern = "^" + pattern
        if re.search(pattern, path, re.IGNORECASE):
            service = route["service"].removeprefix(f"{FULLNAME}-")
            # the gateway routes as the table says (its locations are rendered from it: test_gateway.py)
            return gateway_backend(json.loads(ROUTES.read_text())["routes"], path) if service == "gateway" else service
    return None


@pytest.mark.parametrize("path", [
    "/api/v4/projects/3/packages/pypi",
    "/api/v4/projects/3/packages/pypi/",
    "/api/v4/projects/acme/api/packages/pypi",  # group%2Fproject arrives decoded
    "/api/v4/projects/acme/sub/api/packages/pypi/",
    "/api/v4/projects/3/packages/pypi/simple",
    "/api/v4/projects/3/packages/pypi/simple/my-package/",
    "/api/v4/projects/3/packages/pypi/files/0a1b/my_package-1.0-py3-none-any.whl",
    "/api/v4/projects/3/packages/pypi/files/0a1b/my_package-1.0-py3-none-any.whl.metadata",
    "/api/v4/groups/acme/-/packages/pypi/simple/my-package/",
    "/api/v4/projects/3/packages/pypi/packages/pypi",
    "/api/v4/version",
    "/-/health",
    "/metrics",
    "/",
])
def test_ingress_routes_like_the_gateway(default_render: Rendered, routes: list[dict[str, Any]], path: str) -> None:
    assert ingress_backend(default_render, path) == gateway_backend(routes, path)


def test_the_upload_path_reaches_upload_api(default_render: Rendered) -> None:
    # a guard on the table above: it must exercise both backends
    assert ingress_backend(default_render, "/api/v4/projects/3/packages/pypi") == "upload-api"
    assert ingress_backend(default_render, "/api/v4/projects/3/packages/pypi/simple/x/") == "index-api"


def test_ingress_streams_uploads_without_a_size_limit(default_render: Rendered) -> None:
    for ingress in default_render.of_kind("Ingress"):
        annotations = ingress["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
        assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
        assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


def test_ingress_tls_and_external_url(render: Callable[..., Rendered]) -> None:
    rendered = render({"ingress": {"host": "pypi.corp.test", "tls": {"secretName": "pypi-tls"}}})
    for ingress in rendered.of_kind("Ingress"):
        assert ingress["spec"]["tls"] == [{"hosts": ["pypi.corp.test"], "secretName": "pypi-tls"}]
    assert rendered.config()["REGISTRY_EXTERNAL_URL"] == "https://pypi.corp.test"
    explicit = render({"externalURL": "https://packages.corp.test/"})
    assert explicit.config()["REGISTRY_EXTERNAL_URL"] == "https://packages.corp.test"


def test_ingress_can_be_left_out(render: Callable[..., Rendered]) -> None:
    assert not render({"ingress": {"enabled": False}}).of_kind("Ingress")


# ---- settings: ConfigMap and Secrets -------------------------------------------------------------


def secret_names_used(rendered: Rendered) -> set[str]:
    names = set()
    for _workload, spec in rendered.pod_specs():
        for container in containers(spec):
            names |= {s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s}
            names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", [])
                      if "secretKeyRef" in e.get("valueFrom", {})}
        names |= {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
    return names


def test_every_referenced_secret_and_config_map_is_rendered(default_render: Rendered) -> None:
    assert secret_names_used(default_render) <= default_render.names("Secret")
    for _workload, spec in default_render.pod_specs():
        for container in containers(spec):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in default_render.names("ConfigMap")
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in default_render.secret_data(ref["name"]), ref


def test_credentials_live_in_the_secret_not_the_config_map(default_render: Rendered) -> None:
    secret = default_render.secret_data(FULLNAME)
    assert set(secret) == {"MONGODB_URL", "AMQP_URL", "S3_ACCESS_KEY", "S3_SECRET_KEY"}
    config = default_render.config()
    assert not set(secret) & set(config)
    for value in config.values():
        assert not re.search(r"://[^/@\s]+:[^/@\s]+@", value), f"credentials in the ConfigMap: {value}"


def test_in_chart_dependencies_are_wired_with_one_set_of_passwords(default_render: Rendered) -> None:
    secret = default_render.secret_data(FULLNAME)
    deps = default_render.secret_data(f"{FULLNAME}-dependencies")
    values = default_render.values

    mongodb = urlsplit(secret["MONGODB_URL"])
    assert (mongodb.username, mongodb.password) == (deps["mongodb-username"], deps["mongodb-password"])
    assert mongodb.path == f"/{values['mongodb']['auth']['database']}"
    assert f"replicaSet={values['mongodb']['replicaSetName']}" in mongodb.query
    hosts = mongodb.netloc.split("@", 1)[1].split(",")
    statefulset = default_render.get("StatefulSet", f"{FULLNAME}-mongodb")
    assert len(hosts) == statefulset["spec"]["replicas"] == values["mongodb"]["replicas"]
    for ordinal, host in enumerate(hosts):
        assert host == (f"{FULLNAME}-mongodb-{ordinal}.{statefulset['spec']['serviceName']}"
                        f".{NAMESPACE}.svc.cluster.local:27017")

    amqp = urlsplit(secret["AMQP_URL"])
    assert (amqp.username, amqp.password) == (deps["rabbitmq-username"], deps["rabbitmq-password"])
    assert (amqp.hostname, amqp.port) == (f"{FULLNAME}-rabbitmq", 5672)
    assert f"{FULLNAME}-rabbitmq" in default_render.names("Service")

    assert (secret["S3_ACCESS_KEY"], secret["S3_SECRET_KEY"]) == (deps["minio-root-user"], deps["minio-root-password"])
    assert default_render.config()["S3_ENDPOINT"] == f"http://{FULLNAME}-minio:9000"
    assert len(deps["minio-root-password"]) >= 32 and len(deps["mongodb-keyfile"]) >= 32


def test_given_passwords_are_used(render: Callable[..., Rendered]) -> None:
    rendered = render({"mongodb": {"auth": {"password": "p@ss:w/rd"}}, "rabbitmq": {"auth": {"password": "r-pass"}}})
    secret = rendered.secret_data(FULLNAME)
    assert urlsplit(secret["MONGODB_URL"]).password == "p%40ss%3Aw%2Frd"  # escaped inside the URL
    assert urlsplit(secret["AMQP_URL"]).password == "r-pass"
    assert rendered.secret_data(f"{FULLNAME}-dependencies")["mongodb-password"] == "p@ss:w/rd"


def test_config_values_keep_their_digits(render: Callable[..., Rendered]) -> None:
    # YAML reads an unquoted 5000000000 as a float; rendered naively it would become "5e+09"
    rendered = render({"config": {"UPLOAD_MAX_FILE_SIZE": 5000000000, "WORKER_PREFETCH": 8, "AUTH_CACHE_TTL": 2.5}})
    config = rendered.config()
    assert config["UPLOAD_MAX_FILE_SIZE"] == "5000000000"
    assert config["WORKER_PREFETCH"] == "8"
    assert config["AUTH_CACHE_TTL"] == "2.5"


def test_computed_settings_cannot_be_overridden(render: Callable[..., Rendered]) -> None:
    with pytest.raises(helm.HelmError, match="config.S3_ENDPOINT is computed"):
        render({"config": {"S3_ENDPOINT": "http://elsewhere:9000"}})


# ---- external dependencies -----------------------------------------------------------------------


def test_external_values_deploy_no_dependencies(external_render: Rendered) -> None:
    assert not external_render.of_kind("StatefulSet")
    assert not external_render.of_kind("Job")
    assert not external_render.of_kind("PersistentVolumeClaim")
    assert f"{FULLNAME}-dependencies" not in external_render.names("Secret")
    for dependency in DEPENDENCIES:
        assert not [o for o in external_render.objects
                    if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == dependency]
    assert external_render.names("Deployment") == {f"{FULLNAME}-{c}" for c in SERVICES} | {f"{FULLNAME}-gateway"}


def test_external_values_point_at_the_external_servers(external_render: Rendered,
                                                       external_values: dict[str, Any]) -> None:
    external = external_values["external"]
    secret = external_render.secret_data(FULLNAME)
    assert secret == {
        "MONGODB_URL": external["mongodbUrl"],
        "AMQP_URL": external["amqpUrl"],
        "S3_ACCESS_KEY": external["s3AccessKey"],
        "S3_SECRET_KEY": external["s3SecretKey"],
    }
    assert external_render.config()["S3_ENDPOINT"] == external["s3Endpoint"]
    for component in SERVICES:
        [container] = external_render.deployment(component)["spec"]["template"]["spec"]["containers"]
        assert {"secretRef": {"name": FULLNAME}} in container["envFrom"]


def test_an_existing_secret_replaces_the_chart_s(render: Callable[..., Rendered],
                                                 external_values: dict[str, Any]) -> None:
    values = {**external_values, "external": {"s3Endpoint": "https://s3.corp.test"},
              "secrets": {"existingSecret": "registry-credentials"}}
    rendered = render(values)
    assert not rendered.of_kind("Secret")
    for component in SERVICES:
        [container] = rendered.deployment(component)["spec"]["template"]["spec"]["containers"]
        assert {"secretRef": {"name": "registry-credentials"}} in container["envFrom"]
    assert rendered.config()["S3_ENDPOINT"] == "https://s3.corp.test"


def test_an_existing_secret_is_refused_with_in_chart_dependencies(render: Callable[..., Rendered]) -> None:
    with pytest.raises(helm.HelmError, match="existingSecret is for external dependencies only"):
        render({"secrets": {"existingSecret": "registry-credentials"}})


@pytest.mark.parametrize(("dependency", "missing"), [
    ("mongodb", r"external\.mongodbUrl is required"),
    ("rabbitmq", r"external\.amqpUrl is required"),
    ("minio", r"external\.s3(Endpoint|AccessKey) is required"),
])
def test_an_external_dependency_needs_its_address(render: Callable[..., Rendered], dependency: str,
                                                  missing: str) -> None:
    with pytest.raises(helm.HelmError, match=missing):
        render({dependency: {"enabled": False}})


def test_dependencies_can_be_mixed(render: Callable[..., Rendered]) -> None:
    rendered = render({"minio": {"enabled": False},
                       "external": {"s3Endpoint": "https://s3.corp.test", "s3AccessKey": "a", "s3SecretKey": "b"}})
    assert rendered.names("StatefulSet") == {f"{FULLNAME}-mongodb", f"{FULLNAME}-rabbitmq"}
    assert rendered.config()["S3_ENDPOINT"] == "https://s3.corp.test"
    assert rendered.secret_data(FULLNAME)["S3_SECRET_KEY"] == "b"
    assert "minio-root-password" not in rendered.secret_data(f"{FULLNAME}-dependencies")


# ---- in-chart dependencies -----------------------------------------------------------------------


def test_in_chart_dependencies_are_stateful_sets_with_storage(default_render: Rendered) -> None:
    assert default_render.names("StatefulSet") == {f"{FULLNAME}-{d}" for d in DEPENDENCIES}
    for statefulset in default_render.of_kind("StatefulSet"):
        [claim] = statefulset["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["resources"]["requests"]["storage"]
        assert statefulset["spec"]["serviceName"] in default_render.names("Service")


def test_mongodb_is_a_replica_set_initiated_by_a_job(default_render: Rendered) -> None:
    statefulset = default_render.get("StatefulSet", f"{FULLNAME}-mongodb")
    [mongod] = statefulset["spec"]["template"]["spec"]["containers"]
    assert "--replSet=rs0" in mongod["args"] and "--keyFile=/keyfile/keyfile" in mongod["args"]
    [job] = default_render.of_kind("Job")
    [init] = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in init["env"]}
    secret = default_render.secret_data(FULLNAME)
    assert env["RS_MEMBERS"] == secret["MONGODB_URL"].split("@", 1)[1].split("/", 1)[0]
    assert env["RS_NAME"] == "rs0"
    script = default_render.get("ConfigMap", f"{FULLNAME}-mongodb-init")["data"]["init-replica-set.js"]
    assert "replSetInitiate" in script and "createUser" in script and "updateUser" in script
    # a new Job per revision: a Job's pod template cannot be changed in place on upgrade
    assert job["metadata"]["name"].endswith("-init-1")
