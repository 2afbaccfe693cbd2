#!/usr/bin/env python3
"""Run the whole registry on one machine, without containers (stdlib only).

    python deploy/local/stack.py up       start what is not running, wait until everything is ready
    python deploy/local/stack.py down     stop what `up` started (by recorded process ids), nothing else
    python deploy/local/stack.py status   one line per process; exit 0 only if all run
    python deploy/local/stack.py env      the settings the services get, as KEY=VALUE lines (--json)

The caller's environment passes through to every service. Launcher settings (environment):
  REGISTRY_VAR_DIR   data, logs, pid files (default <repo>/var)
  REGISTRY_VENV      the virtualenv with the services and tools (default <repo>/.venv)
  REGISTRY_PORT      the gateway (default 8080); the services listen on the next six ports, or on
                     STACK_UPLOAD_PORT, STACK_INDEX1_PORT, STACK_INDEX2_PORT, STACK_PROXY_PORT, STACK_WORKER_PORT,
                     STACK_WEB_PORT
  MONGODB_URL        if set, that server is used; else nx-27017 runs on STACK_MONGO_PORT (27017)
  S3_ENDPOINT        if set, that server is used; else SeaweedFS runs with S3 on STACK_S3_PORT (8333) and
                     master/volume/filer on STACK_WEED_PORT_BASE (19333) +0/+1/+2; each also +10000 for gRPC
  AMQP_URL           RabbitMQ (default amqp://guest:guest@127.0.0.1:5672/); started if local and silent
  STACK_REPLICA_PREFIX  prepended to every REPLICA_ID (keeps two stacks on one broker apart)
  STACK_READY_TIMEOUT   seconds `up` waits for readiness (60)
  STACK_STOP_TIMEOUT    seconds `down` waits after SIGTERM before SIGKILL (30; SeaweedFS needs ~16)
  STACK_LISTEN_HOST     the gateway's listen address (127.0.0.1)
  GATEWAY_CACHE_MAX_SIZE  bound of the gateway's disk cache of large downloads, var/nginx/cache (1g)
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
ROUTES = REPO / "deploy" / "k8s" / "routes.json"
NGINX_TEMPLATE = REPO / "deploy" / "k8s" / "gateway" / "nginx.conf.tmpl"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
STORES = ("nx-27017", "seaweedfs")  # started first, stopped last


@dataclass
class Proc:
    """One process the stack owns."""

    name: str
    argv: list[str]
    marker: str  # a word of its command line, so a recycled pid is never taken for ours
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None  # answers TCP once started
    ready_url: str | None = None  # answers 200 once ready
    any_answer_is_ready: bool = False  # S3 answers its root with some status as soon as it serves
    backend: str | None = None  # the routes.json backend it serves, for the gateway's upstreams


@dataclass
class Stack:
    env: dict[str, str]
    var: Path
    venv: Path
    procs: list[Proc]
    base_url: str
    amqp_url: str
    # Processes this invocation started. Right after exec a process's /proc cmdline can read empty,
    # so these are watched through their handles rather than through their pid files.
    children: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.var / "log"

    @property
    def run_dir(self) -> Path:
        return self.var / "run"

    def pid_file(self, proc: Proc) -> Path:
        return self.run_dir / f"{proc.name}.pid"

    def log_file(self, proc: Proc) -> Path:
        return self.log_dir / f"{proc.name}.log"

    @property
    def gateway(self) -> Proc:
        return next(p for p in self.procs if p.name == "nginx")


# -- configuration -------------------------------------------------------------------------------------
def _port(env: dict[str, str], name: str, default: int) -> int:
    value = env.get(name) or str(default)
    if not value.isdigit():
        sys.exit(f"stack: {name} must be a port number, not {value!r}")
    return int(value)


def build_stack(env: dict[str, str]) -> Stack:
    var = Path(env.get("REGISTRY_VAR_DIR") or REPO / "var").resolve()
    venv = Path(env.get("REGISTRY_VENV") or REPO / ".venv").resolve()
    gateway = _port(env, "REGISTRY_PORT", 8080)
    ports = {
        "upload": _port(env, "STACK_UPLOAD_PORT", gateway + 1),
        "index1": _port(env, "STACK_INDEX1_PORT", gateway + 2),
        "index2": _port(env, "STACK_INDEX2_PORT", gateway + 3),
        "proxy": _port(env, "STACK_PROXY_PORT", gateway + 4),
        "worker": _port(env, "STACK_WORKER_PORT", gateway + 5),
        "web": _port(env, "STACK_WEB_PORT", gateway + 6),
    }
    base_url = f"http://127.0.0.1:{gateway}"
    bin_dir = venv / "bin"
    procs: list[Proc] = []

    common = {
        "REGISTRY_PORT": str(gateway),
        "REGISTRY_EXTERNAL_URL": env.get("REGISTRY_EXTERNAL_URL") or base_url,
        "AMQP_URL": env.get("AMQP_URL") or DEFAULT_AMQP_URL,
        "PROXY_URL": f"http://127.0.0.1:{ports['proxy']}",
        "PYTHONUNBUFFERED": "1",  # log lines reach var/log as they are written
    }
    if env.get("MONGODB_URL"):
        common["MONGODB_URL"] = env["MONGODB_URL"]
    else:
        mongo_port = _port(env, "STACK_MONGO_PORT", 27017)
        common["MONGODB_URL"] = f"mongodb://127.0.0.1:{mongo_port}/registry"
        procs.append(Proc("nx-27017", nx_argv(bin_dir / "python", var / "mongo", mongo_port),
                          marker="nx_27017", port=mongo_port))
    if env.get("S3_ENDPOINT"):
        common["S3_ENDPOINT"] = env["S3_ENDPOINT"]
    else:
        s3_port = _port(env, "STACK_S3_PORT", 8333)
        base = _port(env, "STACK_WEED_PORT_BASE", 19333)
        common["S3_ENDPOINT"] = f"http://127.0.0.1:{s3_port}"
        procs.append(Proc("seaweedfs", weed_argv(bin_dir / "weed", var / "s3", s3_port, base), marker="weed",
                          env=WEED_ENV, port=s3_port, ready_url=f"http://127.0.0.1:{s3_port}/",
                          any_answer_is_ready=True))

    services = [  # (process, module, port, REPLICA_ID, backend), in start order
        ("metadata-worker", "metadata_worker", ports["worker"], "metadata-worker-1", None),
        ("upload-api", "upload_api", ports["upload"], "upload-api-1", "upload-api"),
        ("index-api-1", "index_api", ports["index1"], "index-api-1", "index-api"),
        ("index-api-2", "index_api", ports["index2"], "index-api-2", "index-api"),
        ("proxy", "proxy", ports["proxy"], "proxy-1", None),
        ("web", "registry_web", ports["web"], "web-1", "web"),
    ]
    prefix = env.get("STACK_REPLICA_PREFIX", "")
    for name, module, port, replica, backend in services:
        service_env = {"HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(port), "REPLICA_ID": prefix + replica}
        procs.append(Proc(name, [str(bin_dir / "python"), "-m", module], marker=module, env=service_env,
                          port=port, ready_url=f"http://127.0.0.1:{port}/-/ready", backend=backend))

    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin") or "nginx"
    procs.append(Proc("nginx", [nginx, "-p", str(var / "nginx"), "-e", str(var / "log" / "nginx-error.log"),
                                "-c", str(var / "nginx" / "nginx.conf"), "-g", "daemon off;"],
                      marker="nginx", port=gateway, ready_url=f"{base_url}/-/health"))
    full_env = {**env, **common}
    for proc in procs:
        proc.env = {**full_env, **proc.env}
    return Stack(env=full_env, var=var, venv=venv, procs=procs, base_url=base_url, amqp_url=common["AMQP_URL"])


# nx-27017 logs every command at INFO, twice (stderr and its --log-file). Run its main() with the root
# logger already at WARNING: its own basicConfig is then a no-op, and its log file is /dev/null.
NX_MAIN = ("import logging, sys; logging.basicConfig(level=logging.WARNING, "
           "format='%(asctime)s %(name)s %(levelname)s %(message)s'); "
           "sys.argv[0] = 'nx-27017'; from nx_27017.nx_27017 import main; sys.exit(main())")


def nx_argv(python: Path, data_dir: Path, port: int) -> list[str]:
    """nx-27017 (MongoDB wire protocol on SQLite), one database file per MongoDB database."""
    return [str(python), "-c", NX_MAIN, "--data-dir", str(data_dir), "--host", "127.0.0.1", "-p", str(port),
            "--log-file", os.devnull, "--pid-file", str(data_dir / "nx-27017.pid")]


# Each bucket is a SeaweedFS collection with volumes of its own, grown 7 at a time by default: grow one.
WEED_ENV = {"WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}


def weed_argv(weed: Path, data_dir: Path, s3_port: int, base: int) -> list[str]:
    """SeaweedFS in one process: master, volume, filer and S3. Each also listens on its port + 10000
    (gRPC). Iceberg and Lance endpoints are off, so two stacks on one machine do not collide.
    Run it with WEED_ENV in its environment."""
    return [
        str(weed), "server", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={base}", f"-volume.port={base + 1}", f"-filer.port={base + 2}",
        "-s3", f"-s3.port={s3_port}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.telemetry=false", "-volume.preStopSeconds=0",
        # Each bucket is a collection with volumes of its own: size volumes small and let their count
        # follow free disk, or a few buckets exhaust the default of 8 ("No writable volumes").
        "-volume.max=0", "-master.volumeSizeLimitMB=64",
    ]


# -- the gateway config --------------------------------------------------------------------------------
# The gateway's disk cache of large downloads (var/nginx/cache): its bound (nginx size syntax), and the
# slice it fetches and keeps objects in.
DEFAULT_CACHE_MAX_SIZE = "1g"
CACHE_SLICE = "1m"
def render_nginx(stack: Stack) -> str:
    """var/nginx/nginx.conf from the template and the route table."""
    by_backend: dict[str, list[int | None]] = {}
    for proc in stack.procs:
        if proc.backend:
            by_backend.setdefault(proc.backend, []).append(proc.port)
    routes = json.loads(ROUTES.read_text())["routes"]
    upstreams, locations = [], []
    for backend in sorted({r["backend"] for r in routes}):
        if backend not in by_backend:
            sys.exit(f"stack: routes.json names backend {backend!r}, which the stack does not run")
        servers = "".join(f"        server 127.0.0.1:{port};\n" for port in by_backend[backend])
        upstreams.append(f"    upstream {backend.replace('-', '_')} {{\n{servers}        keepalive 32;\n    }}")
    # The S3 endpoint the services sign URLs for: the gateway's send-file location fetches from it.
    object_store = urlsplit(stack.env["S3_ENDPOINT"])
    store_port = object_store.port or (443 if object_store.scheme == "https" else 80)
    upstreams.append(f"    upstream object_store {{\n        server {object_store.hostname}:{store_port};\n"
                     "        keepalive 32;\n    }")
    for route in routes:
        match = f"~ {route['regex']}" if "regex" in route else route["prefix"]
        timeout = route.get("timeout_seconds", 60)
        send_file = "            set $send_file_type X-Accel-Redirect;\n" if route.get("send_file") else ""
        locations.append(
            f"        location {match} {{  # {route['name']}\n"
            f"{send_file}"
            f"            proxy_pass http://{route['backend'].replace('-', '_')};\n"
            f"            proxy_send_timeout {timeout}s;\n"
            f"            proxy_read_timeout {timeout}s;\n"
            f"        }}"
        )
    nginx_dir = stack.var / "nginx"
    values = {
        "user": "user root;" if os.geteuid() == 0 else "",  # workers must reach the temp dirs under var/
        "nginx_dir": str(nginx_dir),
        "log_dir": str(stack.log_dir),
        "listen": f"{stack.env.get('STACK_LISTEN_HOST', '127.0.0.1')}:{stack.env['REGISTRY_PORT']}",
        "upstreams": "\n".join(upstreams),
        "locations": "\n\n".join(locations),
        "object_store": f"{object_store.scheme or 'http'}://object_store",
        "cache_dir": str(nginx_dir / "cache"),
        "cache_max_size": stack.env.get("GATEWAY_CACHE_MAX_SIZE") or DEFAULT_CACHE_MAX_SIZE,
        "cache_slice": CACHE_SLICE,
    }
    text = NGINX_TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        sys.exit(f"stack: {NGINX_TEMPLATE} has a placeholder stack.py does not know")
    return text


def write_nginx_conf(stack: Stack) -> bool:
    """Render and check var/nginx/nginx.conf. True if its text changed."""
    nginx_dir = stack.var / "nginx"
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (nginx_dir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    (nginx_dir / "cache").mkdir(parents=True, exist_ok=True)
    conf = nginx_dir / "nginx.conf"
    text = render_nginx(stack)
    changed = not conf.exists() or conf.read_text() != text
    if changed:
        conf.write_text(text)
    argv = stack.gateway.argv
    check = subprocess.run([*argv[:argv.index("-g")], "-t", "-q"], capture_output=True, text=True)
    if check.returncode != 0:
        sys.exit(f"stack: nginx rejects {conf}:\n{check.stderr}")
    return changed


# -- processes -----------------------------------------------------------------------------------------
def running_pid(stack: Stack, proc: Proc) -> int | None:
    """The pid recorded for `proc` if that process still runs and is ours; None otherwise."""
    try:
        pid = int(stack.pid_file(proc).read_text().split()[0])
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return None
    state = stat.rsplit(")", 1)[1].split()[0]
    return pid if state not in ("Z", "X") and proc.marker in cmdline else None


def start(stack: Stack, proc: Proc) -> bool:
    """Start `proc` unless it already runs. True if it was started now."""
    if running_pid(stack, proc):
        return False
    if not Path(proc.argv[0]).exists():
        sys.exit(f"stack: {proc.argv[0]} is missing (run `make up`, which installs it)")
    with open(stack.log_file(proc), "ab") as log:
        child = subprocess.Popen(proc.argv, env=proc.env, cwd=stack.var, stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stack.pid_file(proc).write_text(f"{child.pid}\n")
    stack.children[proc.name] = child
    return True


def is_running(stack: Stack, proc: Proc) -> bool:
    child = stack.children.get(proc.name)
    return child.poll() is None if child else running_pid(stack, proc) is not None


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# Local addresses only: never through an http_proxy from the environment.
LOCAL_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url: str) -> int | None:
    try:
        with LOCAL_HTTP.open(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def is_ready(proc: Proc) -> bool:
    if proc.ready_url is None:
        return proc.port is None or port_open("127.0.0.1", proc.port)
    status = http_status(proc.ready_url)
    return status is not None if proc.any_answer_is_ready else status == 200


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(stack: Stack, procs: list[Proc], deadline: float) -> None:
    """Poll until every proc is ready; exit 1 with the log tail of the first that dies or stays unready."""
    pending = list(procs)
    while pending:
        for proc in list(pending):
            if not is_running(stack, proc):
                fail(stack, proc, "exited")
            if is_ready(proc):
                pending.remove(proc)
        if pending and time.monotonic() > deadline:
            fail(stack, pending[0], "is not ready in time")
        if pending:
            time.sleep(0.2)


def fail(stack: Stack, proc: Proc, what: str) -> None:
    where = proc.ready_url or f"port {proc.port}"
    print(f"stack: {proc.name} {what} ({where}). Last lines of {stack.log_file(proc)}:\n"
          f"{tail(stack.log_file(proc))}\n\nstack: `make down` stops what did start.", file=sys.stderr)
    sys.exit(1)


def ensure_rabbitmq(amqp_url: str, deadline: float) -> None:
    parts = urlsplit(amqp_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    if port_open(host, port):
        return
    if host not in ("127.0.0.1", "localhost"):
        sys.exit(f"stack: RabbitMQ at {host}:{port} does not answer")
    server = shutil.which("rabbitmq-server") or shutil.which("rabbitmq-server", path="/usr/sbin")
    if not server:
        sys.exit("stack: RabbitMQ does not answer on 127.0.0.1:5672 and is not installed "
                 "(apt-get install -y rabbitmq-server)")
    print("stack: starting RabbitMQ (rabbitmq-server -detached); `down` leaves it running")
    subprocess.run([server, "-detached"], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not port_open(host, port):
        if time.monotonic() > deadline:
            sys.exit("stack: RabbitMQ did not start; see /var/log/rabbitmq/")
        time.sleep(0.5)


# -- commands ------------------------------------------------------------------------------------------
def up(stack: Stack) -> None:
    for sub in ("log", "run", "mongo", "s3"):
        (stack.var / sub).mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + float(stack.env.get("STACK_READY_TIMEOUT", "60"))
    stores = [p for p in stack.procs if p.name in STORES]
    services = [p for p in stack.procs if p not in stores and p is not stack.gateway]
    started = [p.name for p in stores if start(stack, p)]
    ensure_rabbitmq(stack.amqp_url, deadline)
    wait_ready(stack, stores, deadline)
    started += [p.name for p in services if start(stack, p)]
    if write_nginx_conf(stack) and (pid := running_pid(stack, stack.gateway)):
        os.kill(pid, signal.SIGHUP)  # nginx reloads its config without dropping connections
        print("stack: gateway config changed; nginx reloaded")
    started += ["nginx"] if start(stack, stack.gateway) else []
    wait_ready(stack, stack.procs, deadline)
    print(f"stack: started {', '.join(started)}" if started else "stack: everything was already running")
    print(usage(stack))


def usage(stack: Stack) -> str:
    admin = stack.venv / "bin" / "registry-admin"
    project_url = f"{stack.base_url}/api/v4/projects/acme%2Fapi/packages/pypi"
    netloc = urlsplit(stack.base_url).netloc
    same_settings = "" if settings_env(stack) == settings_env(build_stack({})) else (
        "  # this stack's settings differ from the defaults; give registry-admin the same ones first:\n"
        f"  set -a; . <({sys.executable} {Path(__file__).resolve()} env); set +a\n")
    return f"""
The registry is up at {stack.base_url}   (logs: {stack.log_dir}/<name>.log; stop: make down)
The web interface:    {stack.base_url}/   (sign in at {stack.base_url}/-/sign_in with a personal access token)

{same_settings}  {admin} user create --username alice
  {admin} group create --path acme --visibility private
  {admin} project create --path acme/api --visibility private
  {admin} member add --user alice --project acme/api --role developer
  {admin} token create --user alice --scopes api        # -> {{"id": ..., "token": "glpat-..."}}

  TWINE_USERNAME=__token__ TWINE_PASSWORD=<token> {stack.venv}/bin/twine upload \\
      --repository-url {project_url} dist/*
  pip install --index-url http://__token__:<token>@{netloc}/api/v4/projects/acme%2Fapi/packages/pypi/simple \\
      <package>
"""


def down(stack: Stack) -> None:
    """Stop in reverse start order: the gateway and services first, the stores last."""
    timeout = float(stack.env.get("STACK_STOP_TIMEOUT", "30"))  # SeaweedFS's filer takes ~16 s
    stores = [p for p in reversed(stack.procs) if p.name in STORES]
    front = [p for p in reversed(stack.procs) if p.name not in STORES]
    for group in (front, stores):
        pids = {p.name: pid for p in group if (pid := running_pid(stack, p))}
        for pid in pids.values():
            signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for name, pid in pids.items():
            if alive(pid):
                print(f"stack: {name} ignored SIGTERM for {timeout:.0f} s; killing it")
                signal_group(pid, signal.SIGKILL)
        while any(alive(pid) for pid in pids.values()) and time.monotonic() < deadline + 5:
            time.sleep(0.1)
        for proc in group:
            stack.pid_file(proc).unlink(missing_ok=True)
        if pids:
            print(f"stack: stopped {', '.join(pids)}")


def signal_group(pid: int, sig: signal.Signals) -> None:
    # Each process leads its own session (start_new_session), so its group is exactly its tree.
    try:
        os.killpg(pid, sig) if os.getpgid(pid) == pid else os.kill(pid, sig)
    except ProcessLookupError:
        pass


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def status(stack: Stack) -> int:
    all_up = True
    for proc in stack.procs:
        pid = running_pid(stack, proc)
        ready = "ready" if pid and is_ready(proc) else "not ready"
        all_up &= bool(pid)
        print(f"{proc.name:16} {'pid ' + str(pid) if pid else 'stopped':12} {ready:10} "
              f"{proc.ready_url or f'port {proc.port}'}")
    return 0 if all_up else 3


def settings_env(stack: Stack) -> dict[str, str]:
    """What registry-admin and other clients need to reach the same servers as the services."""
    keys = ("REGISTRY_PORT", "REGISTRY_EXTERNAL_URL", "MONGODB_URL", "AMQP_URL", "AMQP_EXCHANGE",
            "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET", "S3_PREFIX", "PROXY_URL")
    return {k: stack.env[k] for k in keys if k in stack.env}


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] not in ("up", "down", "status", "env"):
        print(__doc__, file=sys.stderr)
        return 2
    command = argv[0]
    env = dict(os.environ)
    if command == "down":
        # Whatever `up` started, even if MONGODB_URL or S3_ENDPOINT has been set since.
        env = {k: v for k, v in env.items() if k not in ("MONGODB_URL", "S3_ENDPOINT")}
    stack = build_stack(env)
    if command == "up":
        up(stack)
    elif command == "down":
        down(stack)
    elif command == "status":
        return status(stack)
    elif "--json" in argv:
        print(json.dumps(settings_env(stack), indent=2))
    else:
        print("\n".join(f"{k}={v}" for k, v in settings_env(stack).items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
