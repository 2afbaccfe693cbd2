"""Maintainers' forms on a package page. Each action is one small handler in ACTIONS: the page renders a
form for each (`template` names its partial), the route `POST <package page>/<name>` runs it once the
CSRF middleware has checked the session's token. Yank/unyank and the package status (SPEC §9, §10) are
added here as their use cases land in shared/."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from multidict import MultiDictProxy

from registry_shared.domain.access import Principal

from .service import WebCatalog

Form = MultiDictProxy[Any]
Run = Callable[[WebCatalog, Principal, str, int, Form, str | None], Awaitable[str]]


@dataclass(frozen=True)
class Action:
    label: str
    run: Run  # (catalog, visitor, project path, package id, form, correlation id) -> where to go next
    danger: bool = False
    confirm: str = ""


async def delete_version(catalog: WebCatalog, principal: Principal, path: str, package_id: int, _form: Form,
                         correlation_id: str | None) -> str:
    await catalog.delete_version(principal, path, package_id, correlation_id)
    return f"/{path}/-/packages?notice=deleted"


ACTIONS: dict[str, Action] = {
    "delete": Action("Delete this version", delete_version, danger=True,
                     confirm="Deleting removes every file of this version from the index at once."),
}
