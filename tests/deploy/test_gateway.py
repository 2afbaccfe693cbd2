"""The chart's gateway (templates/gateway.yaml) is the local gateway: the same nginx config as
deploy/local/stack.py renders, but for addresses, paths and logs; nginx accepts it; and, pointed at a running
registry, it sends a large file from S3 exactly as the local one does (send-file, X-Accel-Redirect).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from deploy.local import stack as local_stack
from tests.e2e.test_read_path import make_wheel
from tests.e2e.test_send_file import FILE_HEADERS, upload
from tests.support.servers import free_port_base, wait_until

from .conftest import RELEASE, Rendered

FULLNAME = f"{RELEASE}-registry"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def chart_conf(rendered: Rendered) -> str:
    return rendered.get("ConfigMap", f"{FULLNAME}-gateway")["data"]["nginx.conf"]


def local_conf(var: Path) -> str:
    stack = local_stack.build_stack({"REGISTRY_VAR_DIR": str(var), "S3_ENDPOINT": "http://s3.test:9000",
                                     "MONGODB_URL": "mongodb://mongo.test/registry"})
    return local_stack.render_nginx(stack)


def normalised(conf: str) -> str:
    """Without what differs by design: upstream addresses, the listen address, the user, paths and logs."""
    conf = re.sub(r"(?m)^(\s*server) [^;{]+;$", r"\1 ADDRESS;", conf)
    conf = re.sub(r"(\n\s*server ADDRESS;)+", r"\1", conf)  # two index-api replicas locally, one Service here
    conf = re.sub(r"(?m)^(\s*listen) [^;]+;$", r"\1 LISTEN;", conf)
    conf = re.sub(r"(?m)^user root;$", "", conf)
    conf = conf.replace("/tmp/log/nginx.log", "/dev/stdout").replace("/tmp/log/nginx-error.log", "/dev/stderr")
    conf = re.sub(r"proxy_cache_path \S+ (.*) max_size=\S+ ", r"proxy_cache_path CACHE_DIR \1 max_size=SIZE ", conf)
    return conf.replace("/tmp/nginx", "NGINX_DIR")


def test_the_chart_gateway_is_the_local_gateway(default_render: Rendered) -> None:
    chart = chart_conf(default_render)
    assert normalised(chart) == normalised(local_conf(Path("/tmp")))
    assert "set $send_file_type X-Accel-Redirect;" in chart and "location = /-/send-object" in chart
    assert f"server {FULLNAME}-index-api:80;" in chart
    assert f"server {FULLNAME}-minio:9000;" in chart  # the S3 endpoint index-api signs URLs for


@pytest.mark.parametrize(("endpoint", "server", "scheme"), [
    ("https://s3.example.com", "s3.example.com:443", "https"),
    ("http://minio.storage:9000", "minio.storage:9000", "http"),
])
def test_the_gateway_fetches_from_the_external_s3(render, endpoint: str, server: str, scheme: str) -> None:
    rendered = render({"minio": {"enabled": False}, "external": {"s3Endpoint": endpoint, "mongodbUrl": "mongodb://m/registry",
                       "amqpUrl": "amqp://a", "s3AccessKey": "k", "s3SecretKey": "s"},
                       "mongodb": {"enabled": False}, "rabbitmq": {"enabled": False}})
    conf = chart_conf(rendered)
    assert f"upstream object_store {{\n        server {server};" in conf
    assert f"proxy_pass {scheme}://object_store$object_url;" in conf


def test_without_the_gateway_the_ingress_goes_to_index_api(render) -> None:
    rendered = render({"gateway": {"enabled": False}})
    assert f"{FULLNAME}-gateway" not in rendered.names("Deployment")
    services = {i["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
                for i in rendered.of_kind("Ingress")}
    assert services == {f"{FULLNAME}-index-api", f"{FULLNAME}-upload-api", f"{FULLNAME}-web"}


def test_the_gateway_pod_writes_only_to_tmp_and_its_cache(default_render: Rendered) -> None:
    spec = default_render.deployment("gateway")["spec"]["template"]["spec"]
    [container] = spec["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "/tmp" in mounts and mounts["/etc/registry-gateway"]["readOnly"] is True
    conf = chart_conf(default_render)
    for path in re.findall(r"(?:_path|pid) (/\S+?);", conf):
        assert path.startswith("/tmp/"), path
    assert "-c /etc/registry-gateway/nginx.conf" in container["command"][-1]
    # The object cache: an emptyDir of its own, bounded, with nginx's bound below the volume's.
    [cache_path] = re.findall(r"proxy_cache_path (/\S+) .* max_size=(\S+) ", conf)
    assert cache_path == ("/var/cache/registry-gateway", "9g")
    volume = mounts["/var/cache/registry-gateway"]["name"]
    [cache] = [v for v in spec["volumes"] if v["name"] == volume]
    assert cache["emptyDir"] == {"sizeLimit": "10Gi"}


def test_the_gateway_cache_size_is_a_value(render) -> None:
    rendered = render({"gateway": {"cache": {"maxSize": "90g", "sizeLimit": "100Gi", "slice": "4m"}}})
    conf = chart_conf(rendered)
    assert re.search(r"proxy_cache_path /var/cache/registry-gateway .* max_size=90g ", conf)
    assert "slice 4m;" in conf
    spec = rendered.deployment("gateway")["spec"]["template"]["spec"]
    assert {"name": "cache", "emptyDir": {"sizeLimit": "100Gi"}} in spec["volumes"]


def with_addresses(conf: str, upstreams: dict[str, list[str]], listen: str, nginx_dir: Path) -> str:
    """The chart's config pointed at other servers (no cluster DNS here), in `nginx_dir`."""
    for name, servers in upstreams.items():
        block = "".join(f"        server {s};\n" for s in servers)
        conf = re.sub(rf"(upstream {name} \{{\n)(?:        server [^\n]+\n)+", lambda m, b=block: m.group(1) + b, conf)
    conf = re.sub(r"(?m)^(\s*listen) [^;]+;$", rf"\1 {listen};", conf)
    conf = conf.replace("/var/cache/registry-gateway", str(nginx_dir / "cache"))
    return conf.replace("/tmp/nginx", str(nginx_dir)).replace("/dev/stdout", str(nginx_dir / "access.log"))


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_nginx_accepts_the_chart_gateway_config(default_render: Rendered, tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    conf = with_addresses(chart_conf(default_render), {"index_api": ["127.0.0.1:9"], "upload_api": ["127.0.0.1:9"],
                                                       "web": ["127.0.0.1:9"], "object_store": ["127.0.0.1:9"]},
                          "127.0.0.1:9", tmp_path)
    (tmp_path / "nginx.conf").write_text(conf)
    check = subprocess.run([NGINX, "-t", "-q", "-p", str(tmp_path), "-e", "/dev/stderr", "-c",
                            str(tmp_path / "nginx.conf")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.ConnectionError:
        return False


@pytest.fixture
def chart_gateway(default_render: Rendered, registry_stack, tmp_path: Path) -> Iterator[str]:
    """The chart's gateway, run by this machine's nginx in front of the session's registry."""
    port = free_port_base(range(1))
    (tmp_path / "tmp").mkdir()
    urls = registry_stack.service_urls
    conf = with_addresses(chart_conf(default_render), {
        "index_api": [urlsplit(u).netloc for u in registry_stack.index_replica_urls],
        "upload_api": [urlsplit(urls["upload-api"]).netloc],
        "web": [urlsplit(urls["web"]).netloc],
        "object_store": [urlsplit(registry_stack.env["S3_ENDPOINT"]).netloc],
    }, f"127.0.0.1:{port}", tmp_path)
    (tmp_path / "nginx.conf").write_text(conf)
    user = [] if os.geteuid() != 0 else ["-g", "daemon off; user root;"]
    argv = [NGINX, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(tmp_path / "nginx.conf"),
            *(user or ["-g", "daemon off;"])]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{base}/-/health"), 10, "the chart's gateway",
                   details=lambda: (tmp_path / "error.log").read_text() if (tmp_path / "error.log").exists() else "")
        yield base
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_the_chart_gateway_sends_a_large_file_from_s3(registry_stack, chart_gateway: str, tmp_path: Path) -> None:
    admin = registry_stack.admin
    user = f"chartgw-{uuid.uuid4().hex[:8]}"
    admin("user", "create", "--username", user)
    project = admin("project", "create", "--path", f"{user}/lib", "--visibility", "public")
    admin("member", "add", "--user", user, "--project", project["path"], "--role", "developer")
    token = admin("token", "create", "--user", user, "--scopes", "api")["token"]
    wheel = make_wheel(tmp_path, "sf-big", "1.0.0", payload=os.urandom(2 * 1024 * 1024))
    upload(chart_gateway, project["id"], token, wheel)  # the upload route works through it too
    data = wheel.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    url = f"{chart_gateway}/api/v4/projects/{project['id']}/packages/pypi/files/{sha256}/{wheel.name}"
    correlation_id = uuid.uuid4().hex
    response = requests.get(url, headers={"X-Request-Id": correlation_id}, timeout=60)
    assert response.status_code == 200 and response.content == data
    assert response.headers["ETag"] == f'"{sha256}"'
    assert response.headers["Cache-Control"] == "max-age=31536000, immutable"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{wheel.name}"'
    assert {k.lower() for k in response.headers} <= FILE_HEADERS, response.headers
    ranged = requests.get(url, headers={"Range": "bytes=-10"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == data[-10:]

    def sent_by() -> list[Any]:
        return [r.get("sent_by") for name in ("index-api-1", "index-api-2") for r in registry_stack.read_logs(name)
                if r.get("correlation_id") == correlation_id and r.get("event") == "http_request"]
    assert wait_until(sent_by, 10, "index-api's request line") == ["gateway"]
