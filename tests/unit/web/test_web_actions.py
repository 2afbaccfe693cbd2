"""The maintainer's forms (registry_web.actions): each runs the shared use case the API runs, with the API's
permission and the audit facts (actor, address, correlation id); fakes of our own ports only."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from multidict import MultiDict, MultiDictProxy

from registry_shared.domain.access import AccessFacts, Principal, PrincipalKind, Role, Visibility
from registry_shared.errors import Forbidden, NotFound, ParameterInvalid
from registry_shared.events import Event, IndexChanged, PackageStatusChanged, PackageYanked, Scope
from registry_shared.governance.protection import ProtectionRule
from registry_shared.governance.service import Governance
from registry_shared.governance.yank import YankService
from registry_shared.policy.status import PackageStatus
from registry_shared.policy_management import PolicyManagement
from registry_shared.records.packages import PackageRecord
from registry_web.access import WebAccess, WebCaches
from registry_web.actions import ACTIONS
from registry_web.service import UseCases, WebCatalog, Who

PROJECT = {"_id": 10, "path": "pub/lib", "visibility": "public", "ancestor_ids": [1]}
PACKAGE = PackageRecord(id=5, project_id=10, name="my-lib", version="2.0", display_name="My_Lib")
MAINTAINER = Principal(kind=PrincipalKind.USER, user_id=8, scopes=frozenset({"api"}), credential_id=80)
DEVELOPER = Principal(kind=PrincipalKind.USER, user_id=9, scopes=frozenset({"api"}), credential_id=90)
ROLES = {8: Role.MAINTAINER, 9: Role.DEVELOPER}


class FakeCatalog:
    async def find_by_path(self, kind: str, path: str) -> dict[str, Any] | None:
        return PROJECT if kind == "project" and path == PROJECT["path"] else None

    async def find_package(self, project_id: int, package_id: int) -> dict[str, Any] | None:
        return PACKAGE.to_doc() if (project_id, package_id) == (10, 5) else None


class FakeFacts:
    async def for_project(self, principal: Principal, project: dict[str, Any]) -> AccessFacts:
        return AccessFacts(visibility=Visibility.PUBLIC, role=ROLES.get(principal.user_id or 0, Role.NONE))


class Publisher:
    def __init__(self) -> None:
        self.events: list[tuple[Event, str | None]] = []

    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None:
        self.events.append((event, correlation_id))


class Store:
    """The yank's, the protection rules' and the statuses' store at once."""

    def __init__(self, rules: list[ProtectionRule] | None = None) -> None:
        self.yanked: list[bool | str] = []
        self.statuses: list[PackageStatus] = []
        self._rules = rules or []

    async def find_package(self, project_id: int, package_id: int) -> PackageRecord | None:
        return PACKAGE if (project_id, package_id) == (10, 5) else None

    async def set_yanked(self, package: PackageRecord, yanked: bool | str) -> int:
        self.yanked.append(yanked)
        return 2

    async def rules(self, project_id: int) -> list[ProtectionRule]:
        return self._rules

    async def set_status(self, status: PackageStatus) -> None:
        self.statuses.append(status)


class Pages:
    async def rebuild_scopes(self, project: dict[str, Any], names: Sequence[str]) -> list[Scope]:
        return [Scope(kind="project", id=10), Scope(kind="group", id=1)]


class Deletion:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def delete_package(self, project: dict[str, Any], package_id: int, correlation_id: str | None, *,
                             actor: dict[str, object] | None = None, ip_address: str = "") -> None:
        self.calls.append({"package_id": package_id, "correlation_id": correlation_id, "actor": actor,
                           "ip_address": ip_address})


def catalog(rules: list[ProtectionRule] | None = None) -> tuple[WebCatalog, Store, Publisher, Deletion]:
    store, publisher, deletion = Store(rules), Publisher(), Deletion()
    dropped: list[int] = []
    uses = UseCases(deletion=deletion, governance=Governance(store, publisher, allow_local_hooks=False),  # type: ignore[arg-type]
                    yank=YankService(store, Pages(), publisher),
                    policy=PolicyManagement(store, publisher, on_changed=lambda: dropped.append(1)),  # type: ignore[arg-type]
                    book=None)  # type: ignore[arg-type]  # the forms read no policy
    access = WebAccess(FakeCatalog(), None, FakeFacts(), WebCaches(ttl=5))  # type: ignore[arg-type]
    return WebCatalog(FakeCatalog(), access, uses, "https://registry.example"), store, publisher, deletion  # type: ignore[arg-type]


def form(**fields: str) -> MultiDictProxy[Any]:
    return MultiDictProxy(MultiDict(fields))


def who(principal: Principal = MAINTAINER) -> Who:
    return Who(principal, "203.0.113.9", "corr-1")


async def test_yank_from_the_form_runs_the_yank_use_case_with_the_audit_facts() -> None:
    web, store, publisher, _ = catalog()
    web.access.caches.pages.put(10, 5, "my-lib", object())
    location = await ACTIONS["yank"].run(web, who(), "pub/lib", 5, form(reason="  broken <build>  ", csrf_token="x"))
    assert location == "/pub/lib/-/packages/5?notice=yanked"
    assert store.yanked == ["broken <build>"]
    kinds = [type(event) for event, _ in publisher.events]
    assert kinds == [IndexChanged, PackageYanked]
    yanked = publisher.events[1][0]
    assert isinstance(yanked, PackageYanked)
    assert (yanked.actor, yanked.ip_address, yanked.reason) == (MAINTAINER.log_fields(), "203.0.113.9",
                                                                 "broken <build>")
    assert {cid for _, cid in publisher.events} == {"corr-1"}
    assert web.access.caches.pages.get(10, 5) is None  # this replica's own page went at once


async def test_an_empty_reason_yanks_with_true_and_unyank_clears_it() -> None:
    web, store, _publisher, _ = catalog()
    await ACTIONS["yank"].run(web, who(), "pub/lib", 5, form(reason="   "))
    assert await ACTIONS["unyank"].run(web, who(), "pub/lib", 5, form()) == "/pub/lib/-/packages/5?notice=unyanked"
    assert store.yanked == [True, False]


async def test_status_from_the_form_sets_the_name_s_status_in_this_project() -> None:
    web, store, publisher, _ = catalog()
    location = await ACTIONS["status"].run(web, who(), "pub/lib", 5, form(status="quarantined", reason="MAL-1"))
    assert location == "/pub/lib/-/packages/5?notice=status"
    assert [(s.project_id, s.name, s.status.value, s.reason) for s in store.statuses] == [
        (10, "my-lib", "quarantined", "MAL-1")]
    [(event, correlation_id)] = publisher.events
    assert isinstance(event, PackageStatusChanged) and correlation_id == "corr-1"
    assert (event.actor, event.ip_address) == (MAINTAINER.log_fields(), "203.0.113.9")


@pytest.mark.parametrize("fields", [{"status": "gone"}, {}, {"status": "archived", "reason": "x" * 1001}])
async def test_a_bad_status_form_is_a_400(fields: dict[str, str]) -> None:
    web, store, _publisher, _ = catalog()
    with pytest.raises(ParameterInvalid):
        await ACTIONS["status"].run(web, who(), "pub/lib", 5, form(**fields))
    assert store.statuses == []


@pytest.mark.parametrize("action", ["yank", "unyank", "status", "delete"])
async def test_a_developer_s_forged_form_is_refused_before_any_use_case(action: str) -> None:
    web, store, publisher, deletion = catalog()
    with pytest.raises(Forbidden):
        await ACTIONS[action].run(web, who(DEVELOPER), "pub/lib", 5, form(status="quarantined"))
    assert (store.yanked, store.statuses, publisher.events, deletion.calls) == ([], [], [], [])


async def test_an_unknown_package_is_a_404() -> None:
    web, _store, _publisher, _ = catalog()
    for action in ("yank", "status"):
        with pytest.raises(NotFound):
            await ACTIONS[action].run(web, who(), "pub/lib", 6, form(status="archived"))


async def test_delete_is_audited_and_protection_rules_refuse_a_maintainer_below_their_level() -> None:
    web, _store, _publisher, deletion = catalog()
    assert await ACTIONS["delete"].run(web, who(), "pub/lib", 5, form()) == "/pub/lib/-/packages?notice=deleted"
    assert deletion.calls == [{"package_id": 5, "correlation_id": "corr-1", "actor": MAINTAINER.log_fields(),
                               "ip_address": "203.0.113.9"}]
    rule = ProtectionRule(id=1, project_id=10, package_name_pattern="my_*", minimum_access_level_for_delete="owner")
    web, _store, _publisher, deletion = catalog([rule])
    with pytest.raises(Forbidden, match="Package protected"):
        await ACTIONS["delete"].run(web, who(), "pub/lib", 5, form())
    assert deletion.calls == []
