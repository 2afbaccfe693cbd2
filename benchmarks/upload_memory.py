"""Upload memory and throughput: upload-api against writing the same bytes straight to S3 (not a test).

    .venv/bin/python benchmarks/upload_memory.py [--sizes 1MB,100MB,2GB] [--json out.json]

Starts its own registry (nx-27017, SeaweedFS, the five services and the gateway, exactly as the tests do) in
a temporary directory, then for each size:
- uploads a generated wheel of that size through the gateway (twine's form, streamed with Content-Length,
  no client digests so the client's hashing is not timed), sampling every service's resident memory;
- writes the same file straight to S3 with the minio client in a fresh process (`put_object` of unknown
  length, 16 MiB parts, one at a time, as a plain client would), and reads that process's peak memory.
The wheels are sparse files: a 2 GB one needs a few hundred KB of disk (SeaweedFS stores the bytes).
Timings on a shared 2-core machine move by 10-25 % from run to run; compare ratios from the same run.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.memory import MIB, RssSampler, disk_free, post_file, write_sparse_wheel  # noqa: E402
from tests.support.servers import RegistryStack, start_backing_services  # noqa: E402
from tests.support.tenants import private_project  # noqa: E402

UNITS = {"KB": 1000, "MB": 1000**2, "GB": 1000**3}
PART_SIZE = 16 * MIB  # upload-api's UPLOAD_PART_SIZE default

DIRECT = textwrap.dedent("""\
    import json, sys, time
    from minio import Minio

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024

    endpoint, access, secret, bucket, key, path, part_size = sys.argv[1:]
    client = Minio(endpoint.split("://", 1)[1], access_key=access, secret_key=secret, secure=False)
    before = status("VmRSS:")
    started = time.perf_counter()
    with open(path, "rb") as f:
        client.put_object(bucket, key, f, length=-1, part_size=int(part_size), num_parallel_uploads=1)
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "rss_growth": status("VmHWM:") - before}))
    client.remove_object(bucket, key)
""")


def parse_size(text: str) -> int:
    text = text.strip().upper()
    for unit, factor in UNITS.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def direct_to_s3(env: dict[str, str], path: Path) -> dict[str, float]:
    argv = [sys.executable, "-c", DIRECT, env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"],
            env["S3_BUCKET"], f"bench-direct/{path.name}", str(path), str(PART_SIZE)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=True)
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1MB,100MB,2GB")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="upload-bench-") as tmp:
        work = Path(tmp)
        need = 2 * max(sizes) + 2 * 1024**3  # SeaweedFS keeps the upload and the direct copy at once
        if disk_free(work) < need:
            print(f"not enough free disk under {work}: {need / 1e9:.1f} GB wanted", file=sys.stderr)
            return 1
        backing = start_backing_services(work / "backing")
        stack = RegistryStack(work / "registry" / "var", backing, name="bench")
        try:
            stack.up()
            rows = run(stack, work, sizes)
        finally:
            stack.down()
            backing.stop()
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def run(stack: RegistryStack, work: Path, sizes: list[int]) -> list[dict[str, object]]:
    tenant = private_project(stack, "bench", "bench/blobs")
    services = {name: pid for name, pid in stack.pids().items() if name not in ("nx-27017", "seaweedfs")}
    rows = []
    for number, size in enumerate(sizes, start=1):
        version = f"1.0.{number}"
        wheel = write_sparse_wheel(work, "bench-blob", version, size)
        with RssSampler(services) as sampler:
            status, body, seconds = post_file(tenant.upload_url, tenant.token, wheel, "bench-blob", version)
        if status != 201:
            raise RuntimeError(f"upload of {size} bytes: {status} {body[:300]!r}")
        direct = direct_to_s3(stack.env, wheel)
        size_bytes = wheel.stat().st_size
        rows.append({
            "size": size_bytes, "upload_seconds": seconds, "upload_mb_s": size_bytes / seconds / 1e6,
            "direct_seconds": direct["seconds"], "direct_mb_s": size_bytes / direct["seconds"] / 1e6,
            "direct_rss_growth": direct["rss_growth"], "rss_growth": sampler.growth(), "rss_peak": sampler.peak,
        })
        wheel.unlink()
    return rows


def print_table(rows: list[dict[str, object]]) -> None:
    print("\nupload-api (through the gateway) against minio put_object straight to S3, same bytes, same part size")
    print(f"{'size':>9} | {'upload s':>8} {'MB/s':>7} {'RSS +MiB':>8} {'peak MiB':>8} | "
          f"{'direct s':>8} {'MB/s':>7} {'RSS +MiB':>8} | {'throughput ours/direct':>22}")
    for row in rows:
        growth, peak = row["rss_growth"], row["rss_peak"]
        assert isinstance(growth, dict) and isinstance(peak, dict)
        print(f"{row['size'] / 1e6:>7.0f}MB | {row['upload_seconds']:>8.2f} {row['upload_mb_s']:>7.1f} "
              f"{growth['upload-api'] / MIB:>8.1f} {peak['upload-api'] / MIB:>8.1f} | "
              f"{row['direct_seconds']:>8.2f} {row['direct_mb_s']:>7.1f} {row['direct_rss_growth'] / MIB:>8.1f} | "
              f"{row['upload_mb_s'] / row['direct_mb_s']:>22.2f}")  # type: ignore[operator]
    print("\nRSS growth of every service during each upload (MiB):")
    names = list(rows[0]["rss_growth"]) if rows else []  # type: ignore[arg-type]
    print(f"{'size':>9} | " + " ".join(f"{n:>15}" for n in names))
    for row in rows:
        growth = row["rss_growth"]
        assert isinstance(growth, dict)
        print(f"{row['size'] / 1e6:>7.0f}MB | " + " ".join(f"{growth[n] / MIB:>15.1f}" for n in names))
    print("\n(2 shared cores: the client, nginx, the services and SeaweedFS compete for them.)")


if __name__ == "__main__":
    raise SystemExit(main())
