"""Fixtures shared by every test: real servers, started once per session (tests/support/servers.py).

- `backing_services` (session): nx-27017 and SeaweedFS on free ports, RabbitMQ from AMQP_URL.
- `service_env` (function): environment variables for one test, with its own database, bucket, S3 key
  prefix and exchange.
- `registry_stack` (session): the whole registry through deploy/local/stack.py, behind its gateway.
- `restartable_mongo` (function): an nx-27017 of one test alone, for outages (stop, then start again).

Helpers to import from tests.support.servers: `settings_from_env(UploadSettings, service_env)` builds a
settings object; `clean_pip_env(extra, home=...)` is an environment for pip / twine / uv subprocesses
free of this machine's configuration; `wait_until(check, timeout, what)` polls under a deadline.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import servers
from tests.support.servers import BackingServices, RegistryStack, RestartableMongo


@pytest.fixture(scope="session")
def backing_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackingServices]:
    services = servers.start_backing_services(tmp_path_factory.mktemp("backing"))
    try:
        yield services
    finally:
        services.stop()


@pytest.fixture
def service_env(backing_services: BackingServices, request: pytest.FixtureRequest) -> dict[str, str]:
    return servers.service_env(backing_services, request.node.name)


@pytest.fixture(scope="session")
def registry_stack(backing_services: BackingServices,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryStack]:
    stack = RegistryStack(tmp_path_factory.mktemp("registry") / "var", backing_services)
    try:
        yield stack.up()
    finally:
        stack.down()


@pytest.fixture
def restartable_mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableMongo]:
    """An nx-27017 of this test alone, which it may stop (an outage) and start again on the same port."""
    mongo = RestartableMongo(tmp_path_factory.mktemp("own-mongo")).start()
    try:
        yield mongo
    finally:
        mongo.stop()
