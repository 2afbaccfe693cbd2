"""Real servers for the tests: an nx-27017 and a SeaweedFS of the session, the whole registry through
deploy/local/stack.py, and clean environments for the clients (pip, twine, uv) run as subprocesses.

Everything here waits by polling a condition under a deadline, never by sleeping a fixed time.
"""
from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(os.environ.get("REGISTRY_VENV") or REPO / ".venv") / "bin"
STACK_SCRIPT = REPO / "deploy" / "local" / "stack.py"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
# Test servers take ports from here: below the kernel's ephemeral range (32768+), clear of `make up`'s
# defaults (8080-8085, 8333, 18333, 19333-19335, 27017, 29333-29335). SeaweedFS's gRPC ports are +10000.
PORT_RANGE = (20000, 27000)

T = TypeVar("T")


def _load_launcher() -> Any:
    """deploy/local/stack.py as a module: the tests start SeaweedFS with exactly its flags."""
    spec = importlib.util.spec_from_file_location("registry_local_stack", STACK_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


launcher = _load_launcher()


# -- waiting and ports ---------------------------------------------------------------------------------
def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1,
               details: Callable[[], str] = lambda: "") -> T:
    """Poll `check` until it returns something truthy; raise TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s. {details()}".rstrip())
        time.sleep(interval)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port_base(offsets: Iterable[int], port_range: tuple[int, int] = PORT_RANGE) -> int:
    """A base port such that base + each offset is free on 127.0.0.1 (checked by binding)."""
    offsets = list(offsets)
    for _ in range(200):
        base = random.randrange(*port_range)
        if all(port_free(base + offset) for offset in offsets):
            return base
    raise RuntimeError(f"no free ports at offsets {offsets} in {port_range}")


def unique_suffix() -> str:
    return uuid.uuid4().hex[:12]


# -- processes -----------------------------------------------------------------------------------------
@dataclass
class ServerProcess:
    """A server started for the session, its output in a log file next to its data."""

    name: str
    process: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> ServerProcess:
        workdir.mkdir(parents=True, exist_ok=True)
        log = workdir / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(argv, cwd=workdir, env={**os.environ, **(env or {})},
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        return cls(name, process, log)

    def check_running(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)


# -- MongoDB-wire, S3 and RabbitMQ for the session ----------------------------------------------------
@dataclass
class BackingServices:
    mongodb_url: str  # no database: each test appends its own
    amqp_url: str
    s3_endpoint: str
    s3_access_key: str = "registry-tests"
    s3_secret_key: str = "registry-tests-secret"
    processes: list[ServerProcess] = field(default_factory=list)

    def stop(self) -> None:
        for server in reversed(self.processes):
            # Throwaway data: SeaweedFS's graceful stop waits ~16 s for its filer, a kill does not.
            server.stop(signal.SIGKILL if server.name == "seaweedfs" else signal.SIGTERM)


def s3_round_trip(endpoint: str) -> bool:
    """True once SeaweedFS stores and returns an object (anonymous requests: no IAM is configured)."""
    bucket = f"{endpoint}/readiness-probe"
    try:
        for method, url, body in (("PUT", bucket, None), ("PUT", f"{bucket}/probe", b"ok"),
                                  ("GET", f"{bucket}/probe", None), ("DELETE", f"{bucket}/probe", None)):
            request = urllib.request.Request(url, data=body, method=method)
            with launcher.LOCAL_HTTP.open(request, timeout=5) as response:
                if method == "GET" and response.read() != b"ok":
                    return False
        return True
    except OSError:
        return False


def start_backing_services(workdir: Path) -> BackingServices:
    """nx-27017 and SeaweedFS on free ports under `workdir`; RabbitMQ from AMQP_URL (started if local)."""
    amqp_url = os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL
    launcher.ensure_rabbitmq(amqp_url, time.monotonic() + 60)
    mongo_port = free_port_base([0])
    for sub in ("mongo", "s3"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    nx = ServerProcess.start("nx-27017", launcher.nx_argv(VENV_BIN / "python", workdir / "mongo", mongo_port), workdir)
    services = BackingServices(f"mongodb://127.0.0.1:{mongo_port}", amqp_url, "", processes=[nx])
    try:
        base = free_port_base([0, 1, 2, 3, 10000, 10001, 10002, 10003], (20000, 22000))
        s3_port = base + 3
        weed = ServerProcess.start("seaweedfs", launcher.weed_argv(VENV_BIN / "weed", workdir / "s3", s3_port, base),
                                   workdir, env=launcher.WEED_ENV)
        services.processes.append(weed)
        services.s3_endpoint = f"http://127.0.0.1:{s3_port}"
        wait_until(lambda: nx.check_running() or launcher.port_open("127.0.0.1", mongo_port), 30,
                   "nx-27017 accepting connections", details=nx.tail)
        wait_until(lambda: weed.check_running() or s3_round_trip(services.s3_endpoint), 60,
                   "SeaweedFS storing objects", interval=0.25, details=weed.tail)
    except BaseException:
        services.stop()
        raise
    return services


class RestartableMongo:
    """An nx-27017 of one test alone, on a port of its own, that the test may stop (as an outage) and start
    again on the same port and data: the session's server is shared, so it is never the one stopped."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port_base([0])
        self.url = f"mongodb://127.0.0.1:{self.port}"
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.process: ServerProcess | None = None

    def start(self) -> RestartableMongo:
        argv = launcher.nx_argv(VENV_BIN / "python", self.workdir / "data", self.port)
        server = self.process = ServerProcess.start("nx-27017", argv, self.workdir)
        wait_until(lambda: server.check_running() or launcher.port_open("127.0.0.1", self.port), 30,
                   "nx-27017 accepting connections", details=server.tail)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def service_env(backing: BackingServices, name: str = "") -> dict[str, str]:
    """Settings (environment variables) for one test: its own database, exchange, replica id and S3 key
    prefix, in a bucket every test shares."""
    suffix = f"{name[:20]}-{unique_suffix()}".strip("-").lower()
    suffix = "".join(c if c.isalnum() or c == "-" else "-" for c in suffix)
    return {
        "MONGODB_URL": f"{backing.mongodb_url}/test_{suffix.replace('-', '_')}",
        "AMQP_URL": backing.amqp_url,
        "AMQP_EXCHANGE": f"test-{suffix}",
        "S3_ENDPOINT": backing.s3_endpoint,
        "S3_ACCESS_KEY": backing.s3_access_key,
        "S3_SECRET_KEY": backing.s3_secret_key,
        # One bucket for all tests (SeaweedFS gives every bucket volumes of its own); the key prefix
        # keeps tests apart.
        "S3_BUCKET": "registry-tests",
        "S3_PREFIX": f"{suffix}/",
        "REPLICA_ID": f"test-{suffix}",
    }


def settings_from_env(settings_class: type[T], env: dict[str, str], **overrides: Any) -> T:
    """A settings object (e.g. UploadSettings) from a `service_env` dict; keyword overrides win."""
    return settings_class(**{**{key.lower(): value for key, value in env.items()}, **overrides})


@asynccontextmanager
async def app_clients(create_app: Callable[[Any], web.Application], settings: BaseSettings,
                      **server: Any) -> AsyncIterator[Callable[..., Awaitable[TestClient]]]:
    """A factory of started test clients, each of `create_app(settings)` with keyword overrides of the
    settings; every client it made is closed on exit. `server`: TestServer keywords (e.g. host)."""
    clients: list[TestClient] = []

    async def make(**overrides: Any) -> TestClient:
        client = TestClient(TestServer(create_app(settings.model_copy(update=overrides)), **server))
        await client.start_server()
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            await client.close()


# -- the whole registry --------------------------------------------------------------------------------
class RegistryStack:
    """The registry run by deploy/local/stack.py (gateway, five services, two index-api replicas) against
    the session's backing services. `env` is what registry-admin and other clients need."""

    def __init__(self, var_dir: Path, backing: BackingServices, name: str = "stack") -> None:
        port = free_port_base(range(7))
        names = service_env(backing, name)
        inherited = {k: v for k, v in os.environ.items()
                     if not k.startswith("STACK_") and k not in ("REGISTRY_EXTERNAL_URL", "REGISTRY_VAR_DIR")}
        self.env = {
            **inherited, **names,
            "REGISTRY_VAR_DIR": str(var_dir),
            "REGISTRY_VENV": str(VENV_BIN.parent),
            "REGISTRY_PORT": str(port),
            "STACK_REPLICA_PREFIX": f"{names['REPLICA_ID']}-",
            # Test receivers of webhooks listen on 127.0.0.1 (SPEC §10 refuses local URLs by default).
            "WEBHOOK_ALLOW_LOCAL_NETWORK": "true",
            # Download counts reach the documents within a fraction of a second.
            "DOWNLOAD_FLUSH_INTERVAL": "0.2",
        }
        # stack.py names every process. A bucket of its own and no key prefix, as with `make up`.
        del self.env["REPLICA_ID"], self.env["S3_PREFIX"]
        self.env["S3_BUCKET"] = names["REPLICA_ID"][:63]
        self.var_dir = var_dir
        self.log_dir = var_dir / "log"
        self.base_url = f"http://127.0.0.1:{port}"
        self.service_urls = {
            "upload-api": f"http://127.0.0.1:{port + 1}",
            "index-api-1": f"http://127.0.0.1:{port + 2}",
            "index-api-2": f"http://127.0.0.1:{port + 3}",
            "proxy": f"http://127.0.0.1:{port + 4}",
            "metadata-worker": f"http://127.0.0.1:{port + 5}",
            "web": f"http://127.0.0.1:{port + 6}",
        }
        self.index_replica_urls = [self.service_urls["index-api-1"], self.service_urls["index-api-2"]]

    def run(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`stack.py <command>`; raises with its output if it fails."""
        result = subprocess.run([sys.executable, str(STACK_SCRIPT), command], env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"stack.py {command} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def up(self) -> RegistryStack:
        self.run("up")
        return self

    def down(self) -> None:
        self.run("down")

    def pids(self) -> dict[str, int]:
        """The recorded process ids, by process name."""
        return {path.stem: int(path.read_text()) for path in sorted((self.var_dir / "run").glob("*.pid"))}

    def admin(self, *args: str) -> dict[str, Any]:
        """Run `registry-admin *args` against this stack; its JSON answer, or RuntimeError with stderr."""
        result = subprocess.run([str(VENV_BIN / "registry-admin"), *args], env=self.env, capture_output=True,
                                text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"registry-admin {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
        return json.loads(result.stdout)

    def read_logs(self, name: str) -> list[dict[str, Any]]:
        """The JSON lines of var/log/<name>.log (lines that are not JSON objects, e.g. a traceback a
        crashing interpreter printed, are skipped)."""
        path = self.log_dir / f"{name}.log"
        records = []
        for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records


# -- clients -------------------------------------------------------------------------------------------
def clean_pip_env(extra: dict[str, str] | None = None, home: Path | None = None) -> dict[str, str]:
    """The environment for pip, twine and uv subprocesses, free of this machine's configuration:
    no pip config file (PIP_CONFIG_FILE=/dev/null loads none at all), no PIP_*/UV_*/TWINE_* variables,
    no NETRC; with `home`, HOME points there, so a test's own .pypirc and .netrc are the only ones read."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "TWINE_")) and k not in ("NETRC", "XDG_CONFIG_HOME")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               UV_NO_CONFIG="1")
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(home)
    env.update(extra or {})
    return env
