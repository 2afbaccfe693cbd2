"""Distribution filenames: what kind of file, and whether its name and version agree with the form."""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion

from ..errors import UploadRejected
from .names import normalize_name
from .versions import canonical_version


class DistKind(str, Enum):
    WHEEL = "bdist_wheel"
    SDIST = "sdist"


SDIST_SUFFIXES = (".tar.gz", ".zip")
_FORBIDDEN_RE = re.compile(r"[/\\\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ParsedFilename:
    kind: DistKind
    name: str  # normalised
    version: str  # canonical
    archive: str  # "zip" or "tar.gz"


def parse_filename(filename: str) -> ParsedFilename:
    """Parse a wheel or sdist filename, or raise 400 `Invalid file name: <why>`."""
    if not filename:
        raise UploadRejected("Invalid file name: the content part has no file name")
    if _FORBIDDEN_RE.search(filename) or filename in (".", ".."):
        raise UploadRejected("Invalid file name: it must not contain path separators or control characters")
    lower = filename.lower()
    try:
        if lower.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return ParsedFilename(DistKind.WHEEL, normalize_name(name), canonical_version(str(version)), "zip")
        if lower.endswith(SDIST_SUFFIXES):
            # packaging only accepts .tar.gz and .zip sdists; other suffixes are refused above.
            name, version = parse_sdist_filename(filename)
            archive = "zip" if lower.endswith(".zip") else "tar.gz"
            return ParsedFilename(DistKind.SDIST, normalize_name(name), canonical_version(str(version)), archive)
    except (InvalidWheelFilename, InvalidSdistFilename) as exc:
        raise UploadRejected(f"Invalid file name: {exc}") from exc
    raise UploadRejected("Invalid file name: a distribution must be a wheel (.whl) or an sdist (.tar.gz, .zip)")


def check_filename_matches(parsed: ParsedFilename, name: str, version: str) -> None:
    """Raise 400 when the filename's name or version disagrees with the form's."""
    if parsed.name != normalize_name(name):
        raise UploadRejected(
            f"Invalid file name: the name in the file name ({parsed.name}) does not match the package name ({name})"
        )
    if parsed.version != canonical_version(version):
        raise UploadRejected(
            f"Invalid file name: the version in the file name ({parsed.version}) "
            f"does not match the package version ({version})"
        )


def version_of(filename: str) -> str:
    """The version a distribution's filename names, or "" (legacy formats, unparsable names)."""
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return ""
    return ""
