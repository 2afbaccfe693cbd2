"""The servers under test, each started on loopback from a fresh data directory under `.bench/`:

- `OurRegistry`: this registry through deploy/local/stack.py (gateway, two index-api replicas, upload-api,
  metadata-worker, nx-27017, SeaweedFS), with a var dir, ports, AMQP exchange and replica names of its
  own, so a developer's `make up` on the same machine is not touched;
- `PyPIServer`: pypiserver with waitress (`--server auto`) and the listing cache (watchdog 2.2.1);
- `Devpi`: devpi-server, a user and a non-mirroring index created with devpi-client;
- `StaticNginx`: nginx serving copies of the same pages and files from disk: the ceiling of the read rows.

Peers are installed into their own virtualenvs under `.bench/` with pinned versions (BENCHMARKS.md).
Every process is started in a session of its own and stopped by its process id.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.support.servers import wait_until  # noqa: E402  (the test suite's polling helper)

BENCH_DIR = Path(os.environ.get("BENCH_DIR") or REPO / ".bench").resolve()
MAIN_VENV = Path(os.environ.get("REGISTRY_VENV") or REPO / ".venv").resolve()
STACK_SCRIPT = REPO / "deploy" / "local" / "stack.py"

# Pinned peers (BENCHMARKS.md). pypiserver 2.4.2's `cache` extra pins watchdog 6.0.0, whose file-open
# events drop the listing cache on every request (pypiserver issue #502): install watchdog 2.2.1 instead
# of the extra; pypiserver enables its cache whenever watchdog imports.
PEER_VENVS = {
    "pypiserver": ["pypiserver[passlib]==2.4.2", "waitress==3.0.2", "watchdog==2.2.1"],
    "devpi": ["devpi-server==6.20.3", "devpi-client==7.3.0"],
}
BENCH_USER, BENCH_PASSWORD = "bench", "bench-password-1"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """pip/twine/uv without this machine's configuration (extra indexes, find-links, stored passwords)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "TWINE_")) and k.lower() not in ("http_proxy", "https_proxy")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", UV_NO_CONFIG="1",
               PYTHONDONTWRITEBYTECODE="1")
    env.update(extra or {})
    return env


# -- small process and HTTP helpers --------------------------------------------------------------------
def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with NO_PROXY.open(request, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)
    except OSError:
        return 0, b"", {}


def _tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants, KiB."""
    total = 0
    for current in _tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def tree_cpu_ms(pid: int) -> float:
    """CPU time (user + system) used so far by a process and its living descendants, ms."""
    ticks = 0
    for current in _tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    @classmethod
    def start(cls, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Process:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     env=env or clean_env(), cwd=cwd, start_new_session=True)
        return cls(name, popen, log_path)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check(self) -> bool:
        if not self.alive():
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")
        return True

    def stop(self, timeout: float = 15) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)  # its own session: exactly its process tree
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout)
        except ProcessLookupError:
            pass


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 600, check: bool = True,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env=env or clean_env(), capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited {result.returncode}:\n{result.stdout[-3000:]}"
                           f"{result.stderr[-3000:]}")
    return result


def ensure_peer_venv(name: str) -> Path:
    """`.bench/<name>/` with the pinned peer packages (installed once; re-checked by a stamp file)."""
    venv = BENCH_DIR / name
    stamp = venv / ".bench-installed"
    wanted = "\n".join(PEER_VENVS[name])
    if stamp.exists() and stamp.read_text() == wanted:
        return venv
    log(f"installing {', '.join(PEER_VENVS[name])} into {venv}")
    if not (venv / "bin" / "python").exists():
        run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *PEER_VENVS[name]], timeout=900)
    stamp.write_text(wanted)
    return venv


def twine_upload(files: list[Path], repository_url: str, username: str, password: str) -> float:
    """One `twine upload` of `files`; its wall time in seconds."""
    argv = [str(MAIN_VENV / "bin" / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
            "--repository-url", repository_url, "-u", username, "-p", password, *map(str, files)]
    started = time.perf_counter()
    run(argv, timeout=3600)
    return time.perf_counter() - started


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None and data.strip():
            self.hrefs.append((data.strip(), self._href))
            self._href = None


def file_url(page_url: str, filename: str) -> str:
    """The absolute URL of `filename` on a simple HTML page (fragment dropped)."""
    status, body, _ = http_get(page_url, {"Accept": "text/html"})
    if status != 200:
        raise RuntimeError(f"GET {page_url} -> {status}")
    parser = _Links()
    parser.feed(body.decode())
    for text, href in parser.hrefs:
        if text == filename:
            return urljoin(page_url, href).split("#", 1)[0]
    raise RuntimeError(f"{filename} is not on {page_url}")


# -- the servers ---------------------------------------------------------------------------------------
@dataclass
class Server:
    """What the load and upload steps need from every server."""

    name: str
    port: int
    workdir: Path
    processes: list[Process] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def simple_root(self) -> str:
        """Where the simple index is, without the trailing slash."""
        return f"{self.base}/simple"

    def index_url(self) -> str:
        return f"{self.simple_root()}/"

    def page_url(self, name: str) -> str:
        return f"{self.simple_root()}/{name}/"

    def upload_url(self) -> str: raise NotImplementedError

    def credentials(self) -> tuple[str, str]:
        return BENCH_USER, BENCH_PASSWORD

    def start(self) -> None: raise NotImplementedError

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def pids(self) -> list[int]:
        return [p.popen.pid for p in self.processes if p.alive()]

    def process_pids(self) -> dict[str, int]:
        return {p.name: p.popen.pid for p in self.processes if p.alive()}

    def cpu_ms_by_process(self) -> dict[str, float]:
        """CPU used so far by each of the server's processes (with its descendants), ms."""
        return {name: tree_cpu_ms(pid) for name, pid in self.process_pids().items()}

    def rss_mib(self) -> float:
        return sum(tree_rss_kib(pid) for pid in self.pids()) / 1024

    def fresh_workdir(self) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)


class PyPIServer(Server):
    def start(self) -> None:
        venv = ensure_peer_venv("pypiserver")
        self.fresh_workdir()
        packages = self.workdir / "packages"
        packages.mkdir()
        htpasswd = self.workdir / "htpasswd"
        run([str(venv / "bin" / "python"), "-c",
             "import sys; from passlib.apache import HtpasswdFile as H; h = H(sys.argv[1], new=True); "
             "h.set_password(sys.argv[2], sys.argv[3]); h.save()", str(htpasswd), BENCH_USER, BENCH_PASSWORD])
        argv = [str(venv / "bin" / "pypi-server"), "run", "--host", "127.0.0.1", "--port", str(self.port),
                "--server", "auto", "--passwords", str(htpasswd), "--authenticate", "update", str(packages)]
        self.processes.append(Process.start("pypiserver", argv, self.workdir / "pypiserver.log"))
        wait_until(lambda: self.processes[0].check() and http_get(f"{self.base}/simple/")[0] == 200, 60,
                 "pypiserver answering")
        # `--server auto` does not log its choice; waitress names itself in every response.
        server = http_get(f"{self.base}/simple/")[2].get("Server", "")
        if "waitress" not in server.lower():
            raise RuntimeError(f"pypiserver runs on {server!r}, not waitress: its figures would measure stalls")

    def upload_url(self) -> str:
        return f"{self.base}/"


class Devpi(Server):
    INDEX = f"{BENCH_USER}/dev"

    def start(self) -> None:
        venv = ensure_peer_venv("devpi")
        self.fresh_workdir()
        serverdir, clientdir = self.workdir / "server", self.workdir / "client"
        env = clean_env({"DEVPI_SERVERDIR": str(serverdir)})
        # No root/pypi mirror: a name the index lacks is never looked up on pypi.org.
        run([str(venv / "bin" / "devpi-init"), "--serverdir", str(serverdir), "--no-root-pypi"], env=env)
        argv = [str(venv / "bin" / "devpi-server"), "--serverdir", str(serverdir), "--host", "127.0.0.1",
                "--port", str(self.port)]
        self.processes.append(Process.start("devpi-server", argv, self.workdir / "devpi-server.log", env=env))
        wait_until(lambda: self.processes[0].check() and http_get(f"{self.base}/+api")[0] == 200, 120,
                 "devpi-server answering")
        devpi = [str(venv / "bin" / "devpi"), "--clientdir", str(clientdir)]
        run([*devpi, "use", self.base])
        run([*devpi, "user", "-c", BENCH_USER, f"password={BENCH_PASSWORD}"])
        run([*devpi, "login", BENCH_USER, "--password", BENCH_PASSWORD])
        run([*devpi, "index", "-c", "dev", "bases=", "volatile=False"])

    def simple_root(self) -> str:
        return f"{self.base}/{self.INDEX}/+simple"

    def upload_url(self) -> str:
        return f"{self.base}/{self.INDEX}/"


class OurRegistry(Server):
    """deploy/local/stack.py with everything of its own: var dir, ports, exchange, replica names."""

    def __init__(self, name: str, port: int, workdir: Path, mongo_port: int, s3_port: int, weed_base: int) -> None:
        super().__init__(name, port, workdir)
        self.env = clean_env({
            "REGISTRY_VAR_DIR": str(workdir / "var"),
            "REGISTRY_VENV": str(MAIN_VENV),
            "REGISTRY_PORT": str(port),
            "STACK_MONGO_PORT": str(mongo_port),
            "STACK_S3_PORT": str(s3_port),
            "STACK_WEED_PORT_BASE": str(weed_base),
            # Named after the port: two runs on one broker (another BENCH_DIR, or a --keep stack left
            # running) must not consume each other's messages from one shared work queue.
            "STACK_REPLICA_PREFIX": f"bench{port}-",
            "AMQP_EXCHANGE": f"bench{port}-registry",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "info"),
        })
        for key in ("MONGODB_URL", "S3_ENDPOINT", "REGISTRY_EXTERNAL_URL", "S3_BUCKET", "S3_PREFIX"):
            self.env.pop(key, None)
        self.project_id = 0
        self.token = ""
        self.started = False

    def stack(self, *args: str, timeout: float = 180) -> str:
        return run([sys.executable, str(STACK_SCRIPT), *args], env=self.env, timeout=timeout).stdout

    def admin(self, *args: str) -> dict:
        return json.loads(run([str(MAIN_VENV / "bin" / "registry-admin"), *args], env=self.env).stdout)

    def start(self) -> None:
        var = self.workdir / "var"
        if (var / "run").exists():
            self.stack("down")  # a previous run's stack, interrupted before it stopped
        self.fresh_workdir()
        self.started = True
        self.stack("up")
        # registry-admin reaches the same servers as the services with the settings the stack derived.
        self.env.update(json.loads(self.stack("env", "--json")))
        self.admin("user", "create", "--username", BENCH_USER)
        self.admin("group", "create", "--path", "bench", "--visibility", "public")
        self.project_id = self.admin("project", "create", "--path", "bench/registry", "--visibility", "public")["id"]
        self.admin("member", "add", "--user", BENCH_USER, "--project", "bench/registry", "--role", "maintainer")
        self.token = self.admin("token", "create", "--user", BENCH_USER, "--scopes", "api")["token"]

    def stop(self) -> None:
        if self.started:
            self.stack("down")
            self.started = False

    def root(self) -> str:
        return f"{self.base}/api/v4/projects/{self.project_id}/packages/pypi"

    def simple_root(self) -> str:
        return f"{self.root()}/simple"

    def upload_url(self) -> str:
        return self.root()

    def credentials(self) -> tuple[str, str]:
        return "__token__", self.token

    def web_package_url(self, name: str) -> str:
        """The web interface's page of the latest version of `name` (services/web, as a visitor sees it)."""
        status, body, _ = http_get(f"{self.root().rsplit('/pypi', 1)[0]}?package_name={name}&order_by=version"
                                   "&sort=desc", {"Accept": "application/json"})
        if status != 200:
            raise RuntimeError(f"listing {name}: {status}")
        package = json.loads(body)[0]
        return f"{self.base}/bench/registry/-/packages/{package['id']}"

    def process_pids(self) -> dict[str, int]:
        pids = {}
        for path in sorted((self.workdir / "var" / "run").glob("*.pid")):
            try:
                pids[path.stem] = int(path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return pids

    def pids(self) -> list[int]:
        return list(self.process_pids().values())

    def rss_by_process(self) -> dict[str, float]:
        return {name: tree_rss_kib(pid) / 1024 for name, pid in self.process_pids().items()}


class StaticNginx(Server):
    """The ceiling: nginx serving copies of our HTML pages and the corpus files from disk."""

    def start_with(self, pages: dict[str, bytes], files: list[Path]) -> None:
        self.fresh_workdir()
        root = self.workdir / "root"
        for path, body in pages.items():
            target = root / path.strip("/") / "index.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        (root / "files").mkdir(parents=True, exist_ok=True)
        for f in files:
            os.link(f, root / "files" / f.name) if _same_fs(f, root) else shutil.copy(f, root / "files" / f.name)
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        conf = self.workdir / "nginx.conf"
        conf.write_text(f"""{user}
worker_processes 2;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    etag on;
    types {{ text/html html; }}
    default_type application/octet-stream;
    client_body_temp_path {self.workdir}/tmp/client_body;
    proxy_temp_path {self.workdir}/tmp/proxy;
    fastcgi_temp_path {self.workdir}/tmp/fastcgi;
    uwsgi_temp_path {self.workdir}/tmp/uwsgi;
    scgi_temp_path {self.workdir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        root {root};
        index index.html;
    }}
}}
""")
        nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin") or "nginx"
        argv = [nginx, "-p", str(self.workdir), "-c", str(conf), "-g", "daemon off;"]
        self.processes.append(Process.start("nginx-static", argv, self.workdir / "nginx.log"))
        wait_until(lambda: self.processes[0].check() and http_get(f"{self.base}/simple/")[0] == 200, 30,
                 "static nginx answering")


def _same_fs(a: Path, b: Path) -> bool:
    b.mkdir(parents=True, exist_ok=True)
    return a.stat().st_dev == b.stat().st_dev


def ensure_wrk() -> str:
    """wrk from Debian's package, installed when missing (needs root)."""
    found = shutil.which("wrk") or shutil.which("wrk", path="/usr/bin:/usr/local/bin")
    if found:
        return found
    log("wrk is missing: apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, check=True)
    found = shutil.which("wrk") or shutil.which("wrk", path="/usr/bin")
    if not found:
        raise RuntimeError("wrk could not be installed (apt-get install -y wrk)")
    return found


def netloc(url: str) -> str:
    return urlsplit(url).netloc


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
