"""Memory stays flat while a large file is uploaded (SPEC §4 "Size"; issue: under 64 MB of RSS growth in
every service). The whole registry takes a 300 MB wheel through its gateway while each service's resident
memory is sampled; benchmarks/upload_memory.py does the same with 2 GB and reports the figures."""
from __future__ import annotations

from pathlib import Path

from pymongo import MongoClient

from tests.support.memory import MIB, RssSampler, post_file, write_sparse_wheel
from tests.support.servers import RegistryStack
from tests.support.tenants import private_project

SIZE = 300 * 1000 * 1000  # about 18 parts of 16 MiB: enough for a per-part leak or copy to show
LIMIT = 64 * MIB
BACKING = ("nx-27017", "seaweedfs")  # not ours: SeaweedFS stores the bytes, caching as it likes


def test_large_upload_keeps_every_service_flat(registry_stack: RegistryStack, tmp_path: Path) -> None:
    tenant = private_project(registry_stack, "heavy-lifter", "heavy/blobs")
    wheel = write_sparse_wheel(tmp_path, "heavy-blob", "1.0", SIZE)
    services = {name: pid for name, pid in registry_stack.pids().items() if name not in BACKING}
    assert {"upload-api", "metadata-worker", "index-api-1", "index-api-2", "proxy"} <= set(services)

    with RssSampler(services) as sampler:
        status, body, _seconds = post_file(tenant.upload_url, tenant.token, wheel, "heavy-blob", "1.0")

    assert status == 201, body
    growth = sampler.growth()
    assert all(grown < LIMIT for grown in growth.values()), {name: f"{grown / MIB:.1f} MiB"
                                                             for name, grown in growth.items()}
    db = MongoClient(registry_stack.env["MONGODB_URL"]).get_default_database()
    doc = db.distributions.find_one({"project_id": tenant.project["id"], "filename": wheel.name})
    assert doc is not None and (doc["state"], doc["size"]) == ("installable", wheel.stat().st_size)
