"""Every setting a service reads reaches it from the chart, and what reaches it parses.

The environment of each rendered container (ConfigMap, Secret, then its own `env`, as the kubelet
applies them) is fed to the service's real settings class.
"""
from __future__ import annotations

import importlib
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from .conftest import RELEASE, SERVICES, Rendered

FULLNAME = f"{RELEASE}-registry"
SETTINGS_CLASSES = {
    "upload-api": "upload_api.settings:UploadSettings",
    "index-api": "index_api.settings:IndexSettings",
    "metadata-worker": "metadata_worker.settings:WorkerSettings",
    "proxy": "proxy.settings:ProxySettings",
    "web": "registry_web.settings:WebSettings",
}
# Local-only: the port of the `make up` gateway, used to default REGISTRY_EXTERNAL_URL, which the chart sets.
NOT_FOR_KUBERNETES = {"REGISTRY_PORT"}
POD_NAME = "pod-name-from-the-downward-api"


def settings_class(component: str) -> type[BaseSettings]:
    module, _, name = SETTINGS_CLASSES[component].partition(":")
    return getattr(importlib.import_module(module), name)


def env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = cls.model_config.get("env_prefix", "")
    return {(prefix + name).upper() for name in cls.model_fields}


def container_env(rendered: Rendered, component: str) -> dict[str, str]:
    """The environment the kubelet gives the service's container (later sources win, `env` last)."""
    [container] = rendered.deployment(component)["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            env.update(rendered.get("ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            env.update(rendered.secret_data(source["secretRef"]["name"]))
    for variable in container["env"]:
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            assert variable["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            env[variable["name"]] = POD_NAME
    return env


def load_settings(cls: type[BaseSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in env_names(cls):  # nothing from the machine running the tests
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return cls()


@pytest.mark.parametrize("component", SERVICES)
@pytest.mark.parametrize("which", ["default", "external"])
def test_every_setting_reaches_the_service(which: str, component: str, request: pytest.FixtureRequest) -> None:
    rendered: Rendered = request.getfixturevalue(f"{which}_render")
    missing = env_names(settings_class(component)) - NOT_FOR_KUBERNETES - container_env(rendered, component).keys()
    assert not missing, (f"{component} reads {sorted(missing)}, which the chart does not set: add them to "
                         "`config` in deploy/k8s/registry/values.yaml (or to the Secret if they are credentials)")


@pytest.mark.parametrize("component", SERVICES)
@pytest.mark.parametrize("which", ["default", "external"])
def test_the_rendered_environment_parses(which: str, component: str, request: pytest.FixtureRequest,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    rendered: Rendered = request.getfixturevalue(f"{which}_render")
    env = container_env(rendered, component)
    settings = load_settings(settings_class(component), env, monkeypatch)

    deployment = rendered.deployment(component)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert settings.http_host == "0.0.0.0"  # reachable by the kubelet's probes and the Service
    assert settings.http_port == container["ports"][0]["containerPort"]
    assert settings.replica_id == POD_NAME
    assert settings.mongodb_url == env["MONGODB_URL"] and settings.mongodb_database == "registry"
    assert settings.amqp_url == env["AMQP_URL"]
    assert (settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key) == (
        env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"])
    expected_url = "https://pypi.example.com" if which == "external" else "http://pypi.example.com"
    assert settings.registry_external_url == expected_url
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert settings.shutdown_timeout < grace


def test_index_api_finds_the_proxy(default_render: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(settings_class("index-api"), container_env(default_render, "index-api"), monkeypatch)
    service = default_render.get("Service", f"{FULLNAME}-proxy")
    assert settings.proxy_url == f"http://{FULLNAME}-proxy:{service['spec']['ports'][0]['port']}"


def test_upload_limits_reach_upload_api(render: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = render({"config": {"UPLOAD_MAX_FILE_SIZE": 123456789012, "UPLOAD_VERDICT_TIMEOUT": "12.5"},
                       "uploadApi": {"shutdownTimeoutSeconds": 300}})
    settings = load_settings(settings_class("upload-api"), container_env(rendered, "upload-api"), monkeypatch)
    assert settings.upload_max_file_size == 123456789012
    assert settings.upload_verdict_timeout == 12.5
    assert settings.shutdown_timeout == 300
    grace = rendered.deployment("upload-api")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > 300
