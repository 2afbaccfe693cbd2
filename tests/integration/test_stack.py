"""The local launcher (deploy/local/stack.py) and the gateway: what `make up` / `make down` promise."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.servers import RegistryStack, launcher, wait_until

pytestmark = pytest.mark.stack


def correlated(stack: RegistryStack, service: str, correlation_id: str) -> list[dict]:
    return [line for line in stack.read_logs(service) if line.get("correlation_id") == correlation_id]


def test_every_process_is_ready(registry_stack: RegistryStack) -> None:
    for name, url in registry_stack.service_urls.items():
        response = requests.get(f"{url}/-/ready", timeout=10)
        assert response.status_code == 200, (name, response.text)
    assert requests.get(f"{registry_stack.base_url}/-/health", timeout=10).status_code == 200


def test_gateway_sends_reads_to_index_api(registry_stack: RegistryStack) -> None:
    correlation_id = uuid.uuid4().hex
    response = requests.get(f"{registry_stack.base_url}/api/v4/projects/999999/packages/pypi/simple",
                            headers={"X-Request-Id": correlation_id}, timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")  # the app's error, not nginx's page
    assert "message" in response.json()
    assert response.headers["X-Request-Id"] == correlation_id
    wait_until(lambda: correlated(registry_stack, "index-api-1", correlation_id)
               or correlated(registry_stack, "index-api-2", correlation_id), 10, "index-api logging the request")
    assert not correlated(registry_stack, "upload-api", correlation_id)


@pytest.mark.parametrize("project", ["999999", "no-such%2Fproject"])
def test_gateway_sends_uploads_to_upload_api(registry_stack: RegistryStack, project: str) -> None:
    # An encoded path reaches nginx decoded (`no-such/project`): the upload route must still match.
    correlation_id = uuid.uuid4().hex
    response = requests.post(f"{registry_stack.base_url}/api/v4/projects/{project}/packages/pypi",
                             files={"content": ("x-1.0.tar.gz", b"x")}, data={":action": "file_upload"},
                             headers={"X-Request-Id": correlation_id}, timeout=30)
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    assert response.status_code in (400, 401, 404), response.text
    lines = wait_until(lambda: correlated(registry_stack, "upload-api", correlation_id), 10,
                       "upload-api logging the request")
    assert lines[0]["method"] == "POST"


def test_gateway_generates_a_correlation_id_and_logs_json(registry_stack: RegistryStack) -> None:
    response = requests.get(f"{registry_stack.base_url}/api/v4/projects/1/packages/pypi/simple", timeout=10)
    correlation_id = response.headers["X-Request-Id"]
    assert len(correlation_id) == 32
    lines = wait_until(lambda: correlated(registry_stack, "nginx", correlation_id), 10, "the gateway's access log")
    assert lines[0]["service"] == "gateway" and lines[0]["status"] == response.status_code


def test_paths_outside_the_api_reach_the_web_interface(registry_stack: RegistryStack) -> None:
    correlation_id = uuid.uuid4().hex
    response = requests.get(f"{registry_stack.base_url}/no/such/thing", headers={"X-Request-Id": correlation_id},
                            timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html") and "<h1>Page not found</h1>" in response.text
    wait_until(lambda: correlated(registry_stack, "web", correlation_id), 10, "web logging the request")
    home = requests.get(f"{registry_stack.base_url}/", timeout=10)
    assert home.status_code == 200 and "<h1>Packages you can read</h1>" in home.text


@pytest.mark.parametrize("path", ["/-/ready", "/metrics"])
def test_the_services_probes_and_metrics_stay_off_the_gateway(registry_stack: RegistryStack, path: str) -> None:
    response = requests.get(f"{registry_stack.base_url}{path}", timeout=10)
    assert response.status_code == 404
    assert response.json() == {"message": "404 Not Found"}


def test_up_again_changes_nothing(registry_stack: RegistryStack) -> None:
    before = registry_stack.pids()
    conf = registry_stack.var_dir / "nginx" / "nginx.conf"
    conf_before = conf.stat().st_mtime_ns
    result = registry_stack.run("up")
    assert "already running" in result.stdout
    assert registry_stack.pids() == before
    assert conf.stat().st_mtime_ns == conf_before
    status = registry_stack.run("status")
    assert "not ready" not in status.stdout and "stopped" not in status.stdout, status.stdout


def test_down_stops_every_process_and_keeps_the_data(backing_services, tmp_path: Path) -> None:
    stack = RegistryStack(tmp_path / "var", backing_services, name="short-lived").up()
    pids = stack.pids()
    assert set(pids) == {"upload-api", "index-api-1", "index-api-2", "proxy", "metadata-worker", "web", "nginx"}
    stack.down()
    assert not list((stack.var_dir / "run").glob("*.pid"))
    for name, pid in pids.items():
        assert not launcher.alive(pid), name
    assert (stack.log_dir / "upload-api.log").exists()  # logs (and data) stay
    stack.down()  # twice is harmless


def test_a_service_that_cannot_start_fails_up_with_its_log(backing_services, tmp_path: Path) -> None:
    stack = RegistryStack(tmp_path / "var", backing_services, name="broken")
    stack.env.update(MONGODB_URL="mongodb://127.0.0.1:1/unreachable?serverSelectionTimeoutMS=200",
                     STACK_READY_TIMEOUT="8")
    try:
        with pytest.raises(RuntimeError) as failed:
            stack.up()
        assert "is not ready in time" in str(failed.value) or "exited" in str(failed.value)
        assert "Last lines of" in str(failed.value)
    finally:
        stack.down()
    assert os.listdir(stack.var_dir / "run") == []
