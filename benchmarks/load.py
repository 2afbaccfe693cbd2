"""Driving load: wrk for the read rows, fresh virtualenvs for `pip install` wall time."""
from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path

from peers import clean_env

# What pip sends for index pages (PEP 691 negotiation).
PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


@dataclass
class WrkResult:
    requests_per_s: float
    p99_ms: float
    requests: int
    errors: int  # socket errors plus non-2xx/3xx answers
    transfer_per_s: str = ""

    @property
    def ok(self) -> bool:
        return self.requests > 0 and self.errors == 0


@dataclass
class WrkSettings:
    threads: int = 2
    connections: int = 32
    duration_s: int = 20
    warmup_s: int = 5
    timeout: str = "30s"


def parse_duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in", output, re.M)
    transfer = re.search(r"^Transfer/sec:\s+(\S+)", output, re.M)
    errors = 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    if not (rps and p99 and total):
        raise ValueError(f"unexpected wrk output:\n{output}")
    return WrkResult(float(rps.group(1)), parse_duration_ms(p99.group(1)), int(total.group(1)), errors,
                     transfer.group(1) if transfer else "")


def wrk(binary: str, url: str, settings: WrkSettings, accept: str | None = None) -> WrkResult:
    """A warm-up run (discarded), then the measured run."""
    headers = ["-H", f"Accept: {accept}"] if accept else []

    def one(seconds: int) -> str:
        argv = [binary, f"-t{settings.threads}", f"-c{settings.connections}", f"-d{seconds}s", "--latency",
                "--timeout", settings.timeout, *headers, url]
        return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 120).stdout

    if settings.warmup_s > 0:
        one(settings.warmup_s)
    return parse_wrk(one(settings.duration_s))


def wrk_background(binary: str, url: str, settings: WrkSettings, seconds: int,
                   accept: str | None = None) -> subprocess.Popen[str]:
    """wrk against `url` for `seconds`, started now and left running: load beside a measured run.
    `parse_wrk(process.communicate()[0])` reads its figures once it has finished."""
    headers = ["-H", f"Accept: {accept}"] if accept else []
    argv = [binary, f"-t{settings.threads}", f"-c{settings.connections}", f"-d{seconds}s", "--latency",
            "--timeout", settings.timeout, *headers, url]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def pip_install_times(index_url: str, requirement: str, workdir: Path, repeats: int = 5,
                      trusted_host: str = "127.0.0.1") -> list[float]:
    """Wall time of `pip install --no-cache-dir` of `requirement` into a fresh virtualenv, `repeats` times.

    The virtualenv (with pip) is created before the clock starts; only the install is timed.
    """
    times = []
    for i in range(repeats):
        target = workdir / f"venv-{i}"
        if target.exists():
            shutil.rmtree(target)
        venv.EnvBuilder(with_pip=True, clear=True).create(target)
        argv = [str(target / "bin" / "python"), "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check",
                "--index-url", index_url, "--trusted-host", trusted_host, requirement]
        started = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=300)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"pip install {requirement} from {index_url} failed:\n{result.stdout}{result.stderr}")
        times.append(elapsed)
        shutil.rmtree(target, ignore_errors=True)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


if __name__ == "__main__":  # wrk against one URL, for a quick look: load.py URL [accept]
    from peers import ensure_wrk

    print(wrk(ensure_wrk(), sys.argv[1], WrkSettings(duration_s=5, warmup_s=1),
              sys.argv[2] if len(sys.argv) > 2 else None))
