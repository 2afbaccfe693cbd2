"""The Packages API's JSON (E10-E12), shaped as GitLab's package and package-file entities, and GitLab's
pagination headers. Pure functions of stored documents."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from registry_shared.domain.metadata import STORED_FIELDS

from .listing import PageRequest, as_datetime, total_pages


def iso_time(value: object) -> str | None:
    """GitLab's timestamps: ISO 8601 in UTC with milliseconds and `Z`."""
    if value is None:
        return None
    moment = as_datetime(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def package_json(package: Mapping[str, Any], project: Mapping[str, Any], base_url: str,
                 deletable: bool) -> dict[str, Any]:
    """One package as GitLab lists it (`project_id`/`project_path` as its group lists add them)."""
    links = {"web_path": f"/{project['path']}/-/packages/{package['_id']}"}
    if deletable:
        links["delete_api_path"] = f"{base_url}/api/v4/projects/{project['_id']}/packages/{package['_id']}"
    return {
        "id": int(package["_id"]),
        "name": package.get("display_name") or package["name"],
        "version": package.get("display_version") or package["version"],
        "package_type": "pypi",
        "status": "default",
        "_links": links,
        "created_at": iso_time(package.get("created_at")),
        "last_downloaded_at": None,
        "project_id": int(project["_id"]),
        "project_path": project["path"],
        "tags": [],
    }


def package_detail_json(package: Mapping[str, Any], project: Mapping[str, Any], base_url: str, deletable: bool,
                        files: Sequence[Mapping[str, Any]],
                        versions: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """E11: the package, its other versions (as GitLab shows them), and `pypi_metadata` (beyond GitLab)."""
    return {
        **package_json(package, project, base_url, deletable),
        "versions": [{"id": int(v["_id"]), "version": v.get("display_version") or v["version"],
                      "created_at": iso_time(v.get("created_at")), "tags": []}
                     for v in versions if v["_id"] != package["_id"]],
        "pypi_metadata": pypi_metadata(files),
    }


def pypi_metadata(files: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The stored metadata of the package's most recent file (every file carries its own copy, taken from
    the distribution itself). `required_python` is GitLab's GraphQL name for `requires_python`."""
    latest = max(files, key=lambda f: int(f["_id"]), default={})
    data: dict[str, Any] = {field: latest.get(field) for field in STORED_FIELDS}
    data["required_python"] = data["requires_python"]
    data["requires_dist"] = list(latest.get("requires_dist") or [])
    return data


def package_file_json(file: Mapping[str, Any]) -> dict[str, Any]:
    """E12: GitLab's package-file entity. No SHA-1 is computed, as PyPI computes none."""
    return {
        "id": int(file["_id"]),
        "package_id": int(file["package_id"]),
        "created_at": iso_time(file.get("created_at")),
        "file_name": file["filename"],
        "size": int(file.get("size") or 0),
        "file_md5": file.get("md5"),
        "file_sha1": None,
        "file_sha256": file.get("sha256"),
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
