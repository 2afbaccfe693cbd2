"""Maintainers' forms on a package page. Each action is one small handler in ACTIONS: the page renders a
form for each (`template` names its partial under templates/actions/, `shown` says whether this page
offers it), the route `POST <package page>/<name>` runs it once the CSRF middleware has checked the
session's token. Each calls the same use case, with the same permission and audit facts, as the API
endpoint it mirrors (service.py)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from multidict import MultiDictProxy

from registry_shared.errors import ParameterInvalid
from registry_shared.policy.status import Status, parse_status

from .service import PackageView, WebCatalog, Who

Form = MultiDictProxy[Any]
Run = Callable[[WebCatalog, Who, str, int, Form], Awaitable[str]]
MAX_REASON = 1000


@dataclass(frozen=True)
class Action:
    label: str
    run: Run  # (catalog, who acts, project path, package id, form) -> where to go next
    template: str = "button.html"
    shown: Callable[[PackageView], bool] = lambda _view: True
    danger: bool = False
    confirm: str = ""


def _text(form: Form, name: str) -> str:
    """A free-text field: a string of at most MAX_REASON characters, else `<name> is invalid` (400)."""
    value = form.get(name, "")
    if not isinstance(value, str) or len(value) > MAX_REASON:
        raise ParameterInvalid(name)
    return value.strip()


def _page(path: str, package_id: int, notice: str) -> str:
    return f"/{path}/-/packages/{package_id}?notice={notice}"


async def delete_version(catalog: WebCatalog, who: Who, path: str, package_id: int, _form: Form) -> str:
    await catalog.delete_version(who, path, package_id)
    return f"/{path}/-/packages?notice=deleted"


async def yank(catalog: WebCatalog, who: Who, path: str, package_id: int, form: Form) -> str:
    await catalog.yank(who, path, package_id, _text(form, "reason") or None)
    return _page(path, package_id, "yanked")


async def unyank(catalog: WebCatalog, who: Who, path: str, package_id: int, _form: Form) -> str:
    await catalog.unyank(who, path, package_id)
    return _page(path, package_id, "unyanked")


async def set_status(catalog: WebCatalog, who: Who, path: str, package_id: int, form: Form) -> str:
    status, reason = parse_status({"status": form.get("status"), "reason": _text(form, "reason")})
    await catalog.set_status(who, path, package_id, status, reason)
    return _page(path, package_id, "status")


ACTIONS: dict[str, Action] = {
    "yank": Action("Yank this version", yank, template="yank.html", shown=lambda view: not view.yanked),
    "unyank": Action("Un-yank this version", unyank, shown=lambda view: view.yanked,
                     confirm="Installers will choose this version again."),
    "status": Action("Set status", set_status, template="status.html"),
    "delete": Action("Delete this version", delete_version, danger=True,
                     confirm="Deleting removes every file of this version from the index at once."),
}
STATUSES = [s.value for s in Status]
