"""The Packages API's list rules (E10, E12), as pure functions: parameters, filters, order, pages.

Parameters are checked as GitLab's API checks them, before the route runs; a bad value is 400
`{"error": "<param> is invalid"}`. Only PyPI packages exist here, so a filter on another package type
or status matches nothing rather than failing.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from registry_shared.domain.names import normalize_name
from registry_shared.domain.versions import canonical_version
from registry_shared.errors import ParameterInvalid
from registry_shared.pages import version_key
from registry_shared.records.packages import PackageRecord

T = TypeVar("T")

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
# GitLab's package types; all but `pypi` are valid filters that match nothing here.
PACKAGE_TYPES = frozenset({"cargo", "composer", "conan", "debian", "generic", "golang", "helm", "maven",
                           "ml_model", "npm", "nuget", "pypi", "rpm", "rubygems", "terraform_module"})
STATUSES = frozenset({"default", "deprecated", "error", "hidden", "pending_destruction", "processing"})
ORDER_BY = {"project": ("created_at", "name", "version", "type"),
            "group": ("created_at", "name", "version", "type", "project_path")}
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PageRequest:
    number: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page


@dataclass(frozen=True)
class ListQuery:
    page: PageRequest
    order_by: str = "created_at"
    descending: bool = False
    package_type: str | None = None
    package_name: str | None = None
    package_version: str | None = None
    status: str | None = None
    exclude_subgroups: bool = False

    @property
    def can_match(self) -> bool:
        """False when a type or status filter excludes every PyPI package of default status."""
        return self.package_type in (None, "pypi") and self.status in (None, "default")

    def matches(self, package: PackageRecord) -> bool:
        if self.package_name is not None and not name_matches(package, self.package_name):
            return False
        if self.package_version is not None:
            return canonical_version(self.package_version) == canonical_version(package.shown_version)
        return True


def parse_page(params: Mapping[str, str]) -> PageRequest:
    """`page` (>= 1) and `per_page` (>= 1, at most 100 as GitLab caps it)."""
    number = _positive_int(params, "page", 1)
    per_page = _positive_int(params, "per_page", DEFAULT_PER_PAGE)
    return PageRequest(number, min(per_page, MAX_PER_PAGE))


def parse_list_query(params: Mapping[str, str], kind: str) -> ListQuery:
    """E10's parameters for a project (`kind="project"`) or group list."""
    order_by = params.get("order_by", "created_at")
    if order_by not in ORDER_BY[kind]:
        raise ParameterInvalid("order_by")
    sort = params.get("sort", "asc")
    if sort not in ("asc", "desc"):
        raise ParameterInvalid("sort")
    package_type = params.get("package_type") or None
    if package_type is not None and package_type not in PACKAGE_TYPES:
        raise ParameterInvalid("package_type")
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise ParameterInvalid("status")
    exclude = params.get("exclude_subgroups", "false").lower()
    if exclude not in BOOLEANS:
        raise ParameterInvalid("exclude_subgroups")
    return ListQuery(page=parse_page(params), order_by=order_by, descending=sort == "desc",
                     package_type=package_type, package_name=params.get("package_name") or None,
                     package_version=params.get("package_version") or None, status=status,
                     exclude_subgroups=kind == "group" and BOOLEANS[exclude])


def _positive_int(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ParameterInvalid(name)
    return int(raw)


def name_matches(package: PackageRecord, needle: str) -> bool:
    """GitLab's fuzzy name filter (a substring, any case), also across `-`, `_` and `.` spellings."""
    return needle.lower() in package.shown_name.lower() or normalize_name(needle) in package.name


def sort_packages(packages: Sequence[PackageRecord], query: ListQuery,
                  project_paths: Mapping[int, str] | None = None) -> list[PackageRecord]:
    """In `order_by` order, ties by id; `version` follows PEP 440, not the text."""
    paths = project_paths or {}

    def key(p: PackageRecord) -> tuple[Any, int]:
        if query.order_by == "name":
            field: Any = p.shown_name.lower()
        elif query.order_by == "version":
            field = version_key(p.shown_version)
        elif query.order_by == "project_path":
            field = paths.get(p.project_id, "").lower()
        elif query.order_by == "type":
            field = "pypi"
        else:
            field = as_datetime(p.created_at)
        return field, p.id

    return sorted(packages, key=key, reverse=query.descending)


def paginate(items: Sequence[T], page: PageRequest) -> list[T]:
    return list(items[page.offset:page.offset + page.per_page])


def total_pages(total: int, per_page: int) -> int:
    """At least 1, as GitLab reports an empty list."""
    return max(1, math.ceil(total / per_page))


def as_datetime(value: object) -> datetime:
    """A stored time as an aware datetime (nx-27017 hands back `$set` datetimes as ISO strings)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return _EPOCH
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return _EPOCH

