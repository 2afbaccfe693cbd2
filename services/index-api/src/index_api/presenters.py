"""The Packages API's JSON (E10-E12), shaped as GitLab's package and package-file entities, and GitLab's
pagination headers. Pure functions of stored documents."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from registry_shared.domain.metadata import STORED_FIELDS
from registry_shared.records.files import StoredFile
from registry_shared.records.packages import PackageRecord

from .listing import PageRequest, as_datetime, total_pages


def iso_time(value: object) -> str | None:
    """GitLab's timestamps: ISO 8601 in UTC with milliseconds and `Z`."""
    if value is None:
        return None
    moment = as_datetime(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def package_json(package: PackageRecord, project: Mapping[str, Any], base_url: str,
                 deletable: bool) -> dict[str, Any]:
    """One package as GitLab lists it (`project_id`/`project_path` as its group lists add them)."""
    links = {"web_path": f"/{project['path']}/-/packages/{package.id}"}
    if deletable:
        links["delete_api_path"] = f"{base_url}/api/v4/projects/{project['_id']}/packages/{package.id}"
    return {
        "id": package.id,
        "name": package.shown_name,
        "version": package.shown_version,
        "package_type": "pypi",
        "status": "default",
        "_links": links,
        "created_at": iso_time(package.created_at),
        "last_downloaded_at": iso_time(package.last_downloaded_at),
        "downloads": package.downloads,
        "yanked": bool(package.yanked),
        "yanked_reason": package.yanked if isinstance(package.yanked, str) else None,
        "project_id": int(project["_id"]),
        "project_path": project["path"],
        "tags": [],
    }


def package_detail_json(package: PackageRecord, project: Mapping[str, Any], base_url: str, deletable: bool,
                        files: Sequence[StoredFile], versions: Iterable[PackageRecord]) -> dict[str, Any]:
    """E11: the package, its other versions (as GitLab shows them), and `pypi_metadata` (beyond GitLab)."""
    return {
        **package_json(package, project, base_url, deletable),
        "versions": [{"id": v.id, "version": v.shown_version, "created_at": iso_time(v.created_at), "tags": []}
                     for v in versions if v.id != package.id],
        "pypi_metadata": pypi_metadata(files),
    }


def pypi_metadata(files: Sequence[StoredFile]) -> dict[str, Any]:
    """The stored metadata of the package's most recent file (every file carries its own copy, taken from
    the distribution itself). `required_python` is GitLab's GraphQL name for `requires_python`."""
    latest = max(files, key=lambda f: f.id, default=None)
    data: dict[str, Any] = {field: getattr(latest, field) if latest else None for field in STORED_FIELDS}
    data["required_python"] = data["requires_python"]
    data["requires_dist"] = list(latest.requires_dist) if latest else []
    return data


def package_file_json(file: StoredFile) -> dict[str, Any]:
    """E12: GitLab's package-file entity. No SHA-1 is computed, as PyPI computes none."""
    return {
        "id": file.id,
        "package_id": file.package_id,
        "created_at": iso_time(file.created_at),
        "file_name": file.filename,
        "size": file.size,
        "file_md5": file.md5 or None,
        "file_sha1": None,
        "file_sha256": file.sha256 or None,
        "downloads": file.downloads,
        "last_downloaded_at": iso_time(file.last_downloaded_at),
    }


def pagination_headers(url: str, params: Mapping[str, str], page: PageRequest, total: int) -> dict[str, str]:
    """X-Total, X-Total-Pages, X-Page, X-Per-Page, X-Next-Page, X-Prev-Page and Link, as GitLab sends them.

    `url` is the external URL of the request's path; `params` its query, kept in order in the links.
    """
    pages = total_pages(total, page.per_page)
    following = page.number + 1 if page.number < pages else None
    previous = page.number - 1 if 1 < page.number <= pages else None  # none once out of range

    def href(number: int) -> str:
        query = {**params, "page": str(number), "per_page": str(page.per_page)}
        return f"{url}?{urlencode(query)}"

    links = [(previous, "prev"), (following, "next"), (1, "first"), (pages, "last")]
    return {
        "X-Total": str(total),
        "X-Total-Pages": str(pages),
        "X-Page": str(page.number),
        "X-Per-Page": str(page.per_page),
        "X-Next-Page": str(following or ""),
        "X-Prev-Page": str(previous or ""),
        "Link": ", ".join(f'<{href(n)}>; rel="{rel}"' for n, rel in links if n is not None),
    }
