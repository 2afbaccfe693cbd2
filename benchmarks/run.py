#!/usr/bin/env python3
"""`make bench`: this registry against devpi-server and pypiserver, same machine, same run, same load.

    .venv/bin/python benchmarks/run.py [--duration S] [--warmup S] [--pip-repeats N] [--servers ...]

Follows /work/shared/BENCHMARKS.md: a generated corpus (200 small projects with a wheel and an sdist
each, one project with 300 versions, one 20 MiB wheel) is uploaded to each server with one `twine upload`
per group of files; then `wrk` (2 threads, 32 connections, 20 s after a 5 s warm-up) requests the root
index, a small page, the 300-version page, a 10 KB wheel and the 20 MiB wheel, each with pip's Accept
header and without; then `pip install` of one small package into a fresh virtualenv (median of 5).
nginx serving copies of the same pages and files from disk is the ceiling of the read rows.
Prints one table; ratios come from this run only. Everything it starts is stopped at the end, also on
Ctrl-C or an error. Not part of CI.

Settings (flags win over environment): BENCH_DURATION (20), BENCH_WARMUP (5), BENCH_PIP_REPEATS (5),
BENCH_CONNECTIONS (32), BENCH_THREADS (2), BENCH_TARGETS (all; `upload`: the upload row only),
BENCH_PORT_BASE (18000: ours on +80..+86 with nx-27017 on +17,
SeaweedFS S3 on +433 and +500..+502; pypiserver +90, devpi +91, static nginx +92), BENCH_DIR (.bench),
BENCH_WEB_LOAD (off).

The web interface (ours only): the `web package page` row is wrk against the small package's page of the
web interface (anonymous). With --web-load (BENCH_WEB_LOAD=1), every pip read row of ours is measured
again while a second wrk keeps that web page busy at the same time: rows `... + web load`, to compare with
the quiet rows of the same run (SPEC §11: reading the interface never slows the pip read path).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus as corpus_mod  # noqa: E402
from load import (  # noqa: E402
    PIP_ACCEPT,
    WrkResult,
    WrkSettings,
    median,
    parse_wrk,
    pip_install_times,
    wrk,
    wrk_background,
)
from peers import (  # noqa: E402
    BENCH_DIR,
    Devpi,
    OurRegistry,
    PyPIServer,
    Server,
    StaticNginx,
    ensure_wrk,
    file_url,
    http_get,
    log,
    tree_cpu_ms,
    twine_upload,
)

from tests.support.servers import port_free, wait_until  # noqa: E402  (peers put the repo on sys.path)

OURS, DEVPI, PYPISERVER, NGINX = "ours", "devpi", "pypiserver", "nginx-static"
PEERS = (DEVPI, PYPISERVER, NGINX)  # ratio columns: ours/peer for each one in the run


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=env_int("BENCH_DURATION", 20), help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=env_int("BENCH_WARMUP", 5), help="warm-up seconds per target")
    parser.add_argument("--connections", type=int, default=env_int("BENCH_CONNECTIONS", 32))
    parser.add_argument("--threads", type=int, default=env_int("BENCH_THREADS", 2))
    parser.add_argument("--rounds", type=int, default=env_int("BENCH_ROUNDS", 1),
                        help="wrk runs per target and server; the table shows medians")
    parser.add_argument("--pip-repeats", type=int, default=env_int("BENCH_PIP_REPEATS", 5))
    parser.add_argument("--port-base", type=int, default=None,
                        help="first port (default BENCH_PORT_BASE, else the first free one from 18000)")
    parser.add_argument("--servers", default=os.environ.get("BENCH_SERVERS", f"{OURS},{DEVPI},{PYPISERVER}"),
                        help="comma-separated subset of ours,devpi,pypiserver (default: all)")
    parser.add_argument("--no-static", action="store_true", help="skip the static nginx ceiling")
    parser.add_argument("--targets", choices=("all", "upload"), default=os.environ.get("BENCH_TARGETS", "all"),
                        help="'upload': only the twine upload row (no reads, pip install or static ceiling)")
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""),
                        help="comma-separated read targets to measure, e.g. '10 KB wheel,20 MiB wheel' (default: "
                             f"all of {', '.join(READ_TARGETS)}); with it, no pip install row")
    parser.add_argument("--upload-clients", type=int, default=env_int("BENCH_UPLOAD_CLIENTS", 1),
                        help="concurrent `twine upload` processes, each with its share of every group (default 1)")
    parser.add_argument("--web-load", action="store_true", default=os.environ.get("BENCH_WEB_LOAD", "") == "1",
                        help="measure ours' pip read rows again while the web interface is under load")
    parser.add_argument("--policy", action="store_true", default=os.environ.get("BENCH_POLICY") == "1",
                        help="also measure each read row of ours with a supply-chain policy on the benchmarked "
                             "project (a 72 h cooldown and 1,000 blocked rules matching nothing in the corpus), "
                             "right after the row without it: rows marked [policy]")
    parser.add_argument("--keep", action="store_true", help="leave the servers running at the end (for profiling)")
    parser.add_argument("--stop", action="store_true", help="stop what a --keep run left running, then exit")
    parser.add_argument("--json", type=Path, help="also write the results here (default .bench/results.json)")
    args = parser.parse_args(argv)
    args.only = [t.strip() for t in args.only.split(",") if t.strip()]
    if unknown := set(args.only) - {*READ_TARGETS, WEB_PAGE}:
        parser.error(f"--only: unknown target(s) {sorted(unknown)}; choose from {[*READ_TARGETS, WEB_PAGE]}")
    args.port_base_explicit = args.port_base is not None or "BENCH_PORT_BASE" in os.environ
    if args.port_base is None:
        args.port_base = env_int("BENCH_PORT_BASE", 18000)
    return args


# Offsets from the port base of everything a run listens on: ours (gateway and six services, nx-27017,
# SeaweedFS's S3, master, volume and filer, each of those with its gRPC port +10000), the peers, nginx.
PORT_OFFSETS = (*range(80, 87), 90, 91, 92, 17, 433, 10433, 500, 501, 502, 10500, 10501, 10502)


def pick_port_base(preferred: int, explicit: bool) -> int | None:
    """`preferred` if all its ports are free (or a `--keep` run of it is still up), else, unless the base was
    given explicitly, the next base 100 ports on that is free: another stack on this machine is left alone."""
    if (BENCH_DIR / "kept.json").exists():
        return preferred
    for base in range(preferred, preferred + (1 if explicit else 2000), 100):
        if all(port_free(base + offset) for offset in PORT_OFFSETS):
            return base
    return None


class Interrupted(BaseException):
    pass


def _on_signal(signum: int, _frame: object) -> None:
    raise Interrupted(f"signal {signum}")


# -- the steps -----------------------------------------------------------------------------------------
def upload_corpus(server: Server, corpus: corpus_mod.Corpus, clients: int = 1) -> dict[str, float]:
    """Per group, `clients` concurrent `twine upload`s, each of every `clients`-th file (one when 1); wall
    seconds per group and in total."""
    user, password = server.credentials()
    times = {}
    small_files, cpu_ms = 0, dict.fromkeys(server.process_pids(), 0.0)
    for group, files in corpus.groups.items():
        shares = [files[i::clients] for i in range(clients) if files[i::clients]]
        before = _cpu_snapshot(server)
        started = time.perf_counter()
        with ThreadPoolExecutor(len(shares)) as pool:
            list(pool.map(lambda share: twine_upload(share, server.upload_url(), user, password), shares))
        times[group] = time.perf_counter() - started
        if group != "big":  # where the time goes for the small files, most uploads
            small_files += len(files)
            for name, used in _cpu_snapshot(server).items():
                cpu_ms[name] = cpu_ms.get(name, 0.0) + used - before.get(name, used)
        log(f"{server.name}: uploaded {len(files)} files ({group}) in {times[group]:.1f} s, {len(shares)} client(s)")
    times["total"] = sum(times.values())
    if small_files:
        log(f"{server.name}: CPU per small file uploaded (ms): " + ", ".join(
            f"{name} {used / small_files:.1f}" for name, used in sorted(cpu_ms.items(), key=lambda kv: -kv[1])))
    return times


def _cpu_snapshot(server: Server) -> dict[str, float]:
    """CPU used so far (ms) by the server's processes, the broker (ours only; the machine's RabbitMQ) and
    the twine processes that finished (this process's waited-for children)."""
    used = server.cpu_ms_by_process()
    if isinstance(server, OurRegistry):
        broker = subprocess.run(["pgrep", "-o", "-x", "beam.smp"], capture_output=True, text=True).stdout.split()
        if broker:
            used["rabbitmq"] = tree_cpu_ms(int(broker[0]))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    used["twine"] = (children.ru_utime + children.ru_stime) * 1000
    return used


def check_listed(server: Server, corpus: corpus_mod.Corpus) -> None:
    """Every server must list what was uploaded before it is read from (ours may answer 202 and index later)."""
    many = len(corpus.groups["many"])

    def complete() -> bool:
        status, body, _ = http_get(server.page_url(corpus_mod.MANY_NAME), {"Accept": "text/html"})
        return status == 200 and body.count(b"<a ") >= many

    wait_until(complete, 120, f"{server.name} listing {many} files of {corpus_mod.MANY_NAME}", interval=0.5)


READ_TARGETS = ("root index", "small page", "300-version page", "10 KB wheel", "20 MiB wheel")


def targets(server: Server, corpus: corpus_mod.Corpus) -> dict[str, str]:
    small, big = corpus.small_wheel.name, corpus.big_wheel.name
    if isinstance(server, StaticNginx):
        files = {"10 KB wheel": f"{server.base}/files/{small}", "20 MiB wheel": f"{server.base}/files/{big}"}
    else:
        files = {"10 KB wheel": file_url(server.page_url(corpus.small_name), small),
                 "20 MiB wheel": file_url(server.page_url(corpus_mod.BIG_NAME), big)}
    return {
        "root index": server.index_url(),
        "small page": server.page_url(corpus.small_name),
        "300-version page": server.page_url(corpus_mod.MANY_NAME),
        **files,
    }


def static_pages(ours: OurRegistry, corpus: corpus_mod.Corpus) -> dict[str, bytes]:
    """Our HTML pages, to be served as files by the static nginx."""
    pages = {}
    for path, url in (("simple", ours.index_url()), (f"simple/{corpus.small_name}", ours.page_url(corpus.small_name)),
                      (f"simple/{corpus_mod.MANY_NAME}", ours.page_url(corpus_mod.MANY_NAME))):
        status, body, _ = http_get(url, {"Accept": "text/html"})
        if status != 200:
            raise RuntimeError(f"GET {url} -> {status}")
        pages[path] = body
    return pages


WEB_PAGE = "web package page"


def web_rows(wrk_bin: str, ours: OurRegistry, corpus: corpus_mod.Corpus, settings: WrkSettings,
             targets_of_ours: dict[str, str], with_load: bool) -> list[dict]:
    """The web interface's package page (ours only); with `with_load`, ours' pip read rows again, each while
    a second wrk keeps that page busy for the whole of it (warm-up included)."""
    page = ours.web_package_url(corpus.small_name)
    status, body, _ = http_get(page)
    if status != 200 or corpus.small_name.encode() not in body:
        raise RuntimeError(f"GET {page} -> {status}")
    quiet = wrk(wrk_bin, page, settings)
    log(f"{WEB_PAGE:24} {OURS:12} {quiet.requests_per_s:10.1f} req/s  p99 {quiet.p99_ms:8.1f} ms")
    rows = [{"target": WEB_PAGE, "servers": {OURS: combine([quiet])}}]
    if not with_load:
        return rows
    for target, url in targets_of_ours.items():
        background = wrk_background(wrk_bin, page, settings, settings.warmup_s + settings.duration_s + 1)
        try:
            measured = wrk(wrk_bin, url, settings, PIP_ACCEPT)
        finally:
            web = parse_wrk(background.communicate(timeout=settings.warmup_s + settings.duration_s + 120)[0])
        label = f"{target} (pip) + web load"
        log(f"{label:24} {OURS:12} {measured.requests_per_s:10.1f} req/s  p99 {measured.p99_ms:8.1f} ms; "
            f"web page meanwhile {web.requests_per_s:.1f} req/s")
        rows.append({"target": label, "servers": {OURS: combine([measured])},
                     "web_meanwhile": {"requests_per_s": web.requests_per_s, "p99_ms": web.p99_ms,
                                       "errors": web.errors}})
    return rows


def combine(runs: list[WrkResult]) -> dict:
    """The median request rate and p99 of repeated runs, errors summed."""
    return {"requests_per_s": median([r.requests_per_s for r in runs]), "p99_ms": median([r.p99_ms for r in runs]),
            "requests": sum(r.requests for r in runs), "errors": sum(r.errors for r in runs), "runs": len(runs)}


# -- the table -----------------------------------------------------------------------------------------
def fmt_rate(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"


def fmt_ratio(ours: float | None, peer: float | None) -> str:
    if not ours or not peer:
        return "-"
    return f"{ours / peer:.2f}x"


def server_row(label: str, servers: list[str], cells: Callable[[str], list[str] | None],
               value: Callable[[str], float | None], higher_is_better: bool = True) -> list[str]:
    """`label`, two cells per server ("-" where it has none), then ours/peer from `value` (above 1: ours wins)."""
    row = [label]
    for name in servers:
        row += cells(name) or ["-", "-"]
    for peer in (p for p in PEERS if p in servers):
        ours, theirs = value(OURS), value(peer)
        row.append(fmt_ratio(ours, theirs) if higher_is_better else fmt_ratio(theirs, ours))
    return row


def render_table(results: dict, servers: list[str], settings: WrkSettings) -> str:
    header = ["target"]
    for name in servers:
        header += [f"{name} rate", "p99"]
    header += [f"ours/{p}" for p in PEERS if p in servers]
    rows: list[list[str]] = [header]
    for read in results["reads"]:
        by_server = read["servers"]

        def read_cells(name: str, by_server: dict = by_server) -> list[str] | None:
            r = by_server.get(name)
            if r is None:
                return None
            flag = "" if r["errors"] == 0 else f" ({r['errors']} err)"
            return [fmt_rate(r["requests_per_s"], "req/s") + flag, f"{r['p99_ms']:.1f} ms"]

        rows.append(server_row(read["target"], servers, read_cells,
                               lambda n, by_server=by_server: by_server.get(n, {}).get("requests_per_s")))
    upload = results.get("upload", {})
    if upload:
        seconds, files, clients = upload["seconds"], upload["files"], upload.get("clients", 1)
        rows.append(server_row(
            f"upload ({files} files, twine{f' x{clients}' if clients > 1 else ''})", servers,
            lambda n: [fmt_rate(files / seconds[n], "files/s"), f"{seconds[n]:.1f} s wall"] if seconds.get(n) else None,
            lambda n: files / seconds[n] if seconds.get(n) else None))
    pip = results.get("pip_install", {})
    if pip:
        medians, times = pip["median_s"], pip["times_s"]
        rows.append(server_row(
            f"pip install (median of {pip['repeats']})", servers,
            lambda n: [f"{medians[n]:.2f} s", f"max {max(times[n]):.2f} s"] if medians.get(n) else None,
            medians.get, higher_is_better=False))
    rss = results.get("rss_mib", {})
    if rss:
        rows.append(server_row("RSS after the run", servers,
                               lambda n: [f"{rss[n]:.0f} MiB", ""] if n in rss else None,
                               lambda n: None))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, r in enumerate(rows):
        cells = zip(r, widths, strict=True)
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [
        f"wrk -t{settings.threads} -c{settings.connections} -d{settings.duration_s}s --latency --timeout "
        f"{settings.timeout}, after a {settings.warmup_s} s warm-up, one target and server at a time"
        + (f", median of {results['rounds']} rounds" if results.get("rounds", 1) > 1 else "")
        + "; '(pip)' rows send pip's Accept header (PEP 691: ours and devpi answer JSON), the others none (HTML).",
        f"The load generator shares the machine's {os.cpu_count()} cores with the servers: figures are lower "
        "bounds, and only ratios from the same run compare.",
        "ours: gateway nginx -> 2 index-api replicas (public project, anonymous reads, as for the peers); pages "
        "from each replica's in-process cache; files looked up in MongoDB once per change of the scope, their bytes "
        "from a per-replica LRU of recently downloaded files (128 MiB), else streamed from SeaweedFS; files of "
        "INDEX_SEND_FILE_MIN_SIZE (1 MiB) and more are sent by the gateway straight from SeaweedFS (X-Accel-Redirect). "
        "nginx-static: the same pages and files from disk (the ceiling).",
        f"'{WEB_PAGE}': ours only (the web interface's page of the small package, anonymous, rendered by the web "
        "service on each request from its page cache, which index.changed keeps true); '+ web load' rows: ours' "
        "pip rows measured while a second wrk (same settings) loads that web page at the same time; compare them "
        "with the quiet '(pip)' rows above.",
        "Every server logs every request, as it would in production (ours: the gateway's access log and one JSON "
        "line per request from index-api; devpi and pypiserver: one line each).",
        "Ratios above 1 mean ours is faster (pip install: peer time / our time). devpi checks the password with "
        "argon2 on every upload (~110-130 ms per file); ours answers each upload once the metadata-worker has "
        "indexed the file (201).",
    ]
    if rss:
        detail = results.get("rss_ours_detail", {})
        if detail:
            notes.append("ours RSS by process: " + ", ".join(f"{k} {v:.0f}" for k, v in detail.items()) + " MiB.")
    return "\n".join(lines) + "\n\n" + "\n".join(f"* {n}" for n in notes)


# -- main ----------------------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.stop:
        return stop_kept()
    settings = WrkSettings(threads=args.threads, connections=args.connections, duration_s=args.duration,
                           warmup_s=args.warmup)
    base = pick_port_base(args.port_base, explicit=args.port_base_explicit)
    if base is None:
        log(f"ports from {args.port_base} on are in use; choose another BENCH_PORT_BASE")
        return 2
    ports = {OURS: base + 80, PYPISERVER: base + 90, DEVPI: base + 91, NGINX: base + 92}
    ours_extra = {"mongo": base + 17, "s3": base + 433, "weed": base + 500}
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    wrk_bin = ensure_wrk()
    started = time.perf_counter()
    corpus = corpus_mod.generate(BENCH_DIR / "corpus")
    log(f"corpus: {len(corpus.files)} files, {sum(f.stat().st_size for f in corpus.files) / 2**20:.1f} MiB "
        f"in {time.perf_counter() - started:.1f} s")

    ours = OurRegistry(OURS, ports[OURS], BENCH_DIR / "run-ours", ours_extra["mongo"], ours_extra["s3"],
                       ours_extra["weed"])
    candidates: dict[str, Server] = {
        OURS: ours,
        DEVPI: Devpi(DEVPI, ports[DEVPI], BENCH_DIR / "run-devpi"),
        PYPISERVER: PyPIServer(PYPISERVER, ports[PYPISERVER], BENCH_DIR / "run-pypiserver"),
    }
    wanted = {name.strip() for name in args.servers.split(",") if name.strip()}
    if OURS not in wanted or not wanted <= set(candidates):
        log(f"--servers must name ours and any of {DEVPI}, {PYPISERVER}")
        return 2
    servers = {name: server for name, server in candidates.items() if name in wanted}
    upload_only = args.targets == "upload"
    static = None if args.no_static or upload_only else StaticNginx(NGINX, ports[NGINX], BENCH_DIR / "run-static")
    results: dict = {"settings": asdict(settings), "rounds": args.rounds, "reads": []}
    try:
        for server in servers.values():
            log(f"starting {server.name} on {server.base}")
            server.start()
        seconds = {}
        for name, server in servers.items():
            seconds[name] = upload_corpus(server, corpus, args.upload_clients)["total"]
            check_listed(server, corpus)
        results["upload"] = {"files": len(corpus.files), "seconds": seconds, "clients": args.upload_clients}
        if upload_only:
            table = render_table(results, list(servers), settings)
            print(table)
            (args.json or BENCH_DIR / "results.json").write_text(json.dumps({**results, "table": table}, indent=2))
            return 0
        if static is not None:
            static.start_with(static_pages(ours, corpus), corpus.files)
            servers[NGINX] = static
        urls = {name: targets(server, corpus) for name, server in servers.items()}
        names = list(servers)
        for target in [t for t in urls[OURS] if not args.only or t in args.only]:
            for accept in (None, PIP_ACCEPT):
                label = f"{target} (pip)" if accept else target
                runs: dict[str, list[WrkResult]] = {name: [] for name in names}
                with_policy: list[WrkResult] = []
                for round_no in range(args.rounds):
                    # Rotate who goes first, so a noisy neighbour does not always hit the same server.
                    shift = (len(results["reads"]) + round_no) % len(names)
                    for name in names[shift:] + names[:shift]:
                        result = wrk(wrk_bin, urls[name][target], settings, accept)
                        runs[name].append(result)
                        log(f"{label:24} {name:12} {result.requests_per_s:10.1f} req/s  p99 {result.p99_ms:8.1f} ms"
                            + (f"  {result.errors} errors" if result.errors else ""))
                    if args.policy:  # right after ours without it, in every round
                        with_policy.append(policy_run(ours, label, urls[OURS][target], wrk_bin, settings, accept))
                results["reads"].append({"target": label, "servers": {n: combine(r) for n, r in runs.items()}})
                if with_policy:
                    results["reads"].append({"target": f"{label} [policy]", "servers": {OURS: combine(with_policy)}})
        if not args.only or WEB_PAGE in args.only:
            chosen = {t: u for t, u in urls[OURS].items() if not args.only or t in args.only}
            results["reads"] += web_rows(wrk_bin, ours, corpus, settings, chosen, args.web_load)
        pip_times = {}
        for name, server in servers.items():
            if name == NGINX or args.only:
                continue
            index = server.index_url()
            pip_times[name] = pip_install_times(index, corpus.small_name, BENCH_DIR / "pip", args.pip_repeats)
            log(f"pip install from {name}: {', '.join(f'{t:.2f}' for t in pip_times[name])} s")
        if pip_times:
            results["pip_install"] = {"repeats": args.pip_repeats, "times_s": pip_times,
                                      "median_s": {n: median(t) for n, t in pip_times.items()}}
        results["rss_mib"] = {name: server.rss_mib() for name, server in servers.items()}
        results["rss_ours_detail"] = ours.rss_by_process()
        table = render_table(results, list(servers), settings)
        results["table"] = table
        out = args.json or BENCH_DIR / "results.json"
        out.write_text(json.dumps(results, indent=2))
        print(table)
        log(f"done in {time.perf_counter() - started:.0f} s; results in {out}")
        return 0
    except (KeyboardInterrupt, Interrupted):
        log("interrupted: stopping what was started")
        return 130
    finally:
        if args.keep:
            log("--keep: servers left running; stop them with benchmarks/run.py --stop")
            peer_pids = [p.popen.pid for s in servers.values() if s is not ours for p in s.processes]
            (BENCH_DIR / "kept.json").write_text(json.dumps({"env": ours.env, "pids": peer_pids}))
        else:
            stop_all([*servers.values(), *([static] if static and NGINX not in servers else [])])


def bench_policy() -> str:
    """SPEC §9 policy of the [policy] rows: a cooldown (upstream files only, so the corpus stays listed) and
    1,000 blocked rules (990 exact names, 10 wildcards) that none of the corpus's names match."""
    blocked = [{"name": f"blocked-pkg-{i}", "versions": "*" if i % 2 else f">={i % 7},<{i % 7 + 1}",
                "reason": f"MAL-BENCH-{i}"} for i in range(990)]
    blocked += [{"name": f"evil-{i}-*", "versions": "*", "reason": f"MAL-BENCH-W{i}"} for i in range(10)]
    return json.dumps({"cooldown_hours": 72, "blocked": blocked})


def policy_run(ours: OurRegistry, label: str, url: str, wrk_bin: str, settings: WrkSettings,
               accept: str | None) -> WrkResult:
    """One wrk run of ours with the bench policy set (registry-admin returns once every replica applies it),
    right after the same run without it; the policy is removed again afterwards."""
    ours.admin("policy", "set", "--project", "bench/registry", "--json", bench_policy())
    try:
        result = wrk(wrk_bin, url, settings, accept)
    finally:
        ours.admin("policy", "set", "--project", "bench/registry", "--json", "{}")
    log(f"{label + ' [policy]':24} {OURS:12} {result.requests_per_s:10.1f} req/s  p99 {result.p99_ms:8.1f} ms"
        + (f"  {result.errors} errors" if result.errors else ""))
    return result


def stop_all(servers: list[Server]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave half of them running
    for server in servers:
        try:
            server.stop()
        except Exception as exc:  # noqa: BLE001 - stop the others whatever one did
            log(f"stopping {server.name}: {exc}")
    signal.signal(signal.SIGINT, signal.default_int_handler)


def stop_kept() -> int:
    """Stop what a `--keep` run left: our stack by its launcher, the peers by their recorded process ids."""
    kept_file = BENCH_DIR / "kept.json"
    if not kept_file.exists():
        log("nothing was kept")
        return 0
    kept = json.loads(kept_file.read_text())
    ours = OurRegistry(OURS, int(kept["env"]["REGISTRY_PORT"]), BENCH_DIR / "run-ours", 0, 0, 0)
    ours.env = kept["env"]
    ours.started = True
    ours.stop()
    for pid in kept["pids"]:
        try:
            if os.getpgid(pid) == pid:  # each peer leads its own session
                os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    kept_file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
