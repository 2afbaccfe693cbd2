"""Rendering the Helm chart with Helm's own engine (helm-python-sdk embeds Helm's Go SDK; no cluster).

`render(values)` returns the chart's objects as dicts; `Rendered` indexes them by kind and name.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm  # helm-python-sdk (tests/deploy/requirements.txt)
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "k8s" / "registry"
EXTERNAL_VALUES = CHART / "values-external.yaml"
ROUTES = REPO / "deploy" / "k8s" / "routes.json"
RELEASE = "pypi"
NAMESPACE = "registry"
# The five services: component name (routes.json backend), values key, `python -m` module.
SERVICES = {
    "upload-api": ("uploadApi", "upload_api"),
    "index-api": ("indexApi", "index_api"),
    "metadata-worker": ("metadataWorker", "metadata_worker"),
    "proxy": ("proxy", "proxy"),
    "web": ("web", "registry_web"),
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


@dataclass
class Rendered:
    objects: list[dict[str, Any]]
    values: dict[str, Any]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {o["metadata"]["name"] for o in self.of_kind(kind)}

    def deployment(self, component: str) -> dict[str, Any]:
        return self.get("Deployment", f"{RELEASE}-registry-{component}")

    def config(self) -> dict[str, str]:
        return self.get("ConfigMap", f"{RELEASE}-registry-config")["data"]

    def secret_data(self, name: str) -> dict[str, str]:
        secret = self.get("Secret", name)
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    def pod_specs(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(workload, pod spec) of every Deployment, StatefulSet and Job."""
        for kind in WORKLOAD_KINDS:
            for workload in self.of_kind(kind):
                yield workload, workload["spec"]["template"]["spec"]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_values_file(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


@pytest.fixture(scope="session")
def chart() -> Iterator[Any]:
    with helm.Chart.load(str(CHART)) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart: Any) -> Callable[..., Rendered]:
    """Render the chart as `helm template` would, with `values` over the chart's defaults."""

    def _render(values: dict[str, Any] | None = None) -> Rendered:
        values = values or {}
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        objects = []
        for path, text in sorted(manifests.items()):
            if not path.endswith((".yaml", ".yml")):
                continue
            for document in yaml.safe_load_all(text):
                if document:
                    assert "kind" in document, f"{path}: a document without kind"
                    objects.append(document)
        return Rendered(objects, chart.merge_values(values))

    return _render


@pytest.fixture(scope="session")
def default_render(render: Callable[..., Rendered]) -> Rendered:
    return render()


@pytest.fixture(scope="session")
def external_values() -> dict[str, Any]:
    return load_values_file(EXTERNAL_VALUES)


@pytest.fixture(scope="session")
def external_render(render: Callable[..., Rendered], external_values: dict[str, Any]) -> Rendered:
    return render(external_values)


@pytest.fixture(scope="session")
def routes() -> list[dict[str, Any]]:
    return json.loads(ROUTES.read_text())["routes"]
