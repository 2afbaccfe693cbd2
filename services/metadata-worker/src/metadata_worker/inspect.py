"""Archive inspection moved to `registry_shared.inspection` (upload-api inspects in the streaming pass);
re-exported here for the worker until it imports from there."""
from registry_shared.inspection import (
    BOMB_MIN_SIZE,
    BOMB_RATIO,
    MAX_MEMBERS,
    MAX_METADATA_SIZE,
    STREAM_CHUNK,
    ArchiveFormat,
    Expected,
    GunzipReader,
    Inspection,
    InvalidDistribution,
    archive_format,
    check_member_path,
    check_metadata,
    check_zip_members,
    inspect_sdist_tar,
    inspect_sdist_zip,
    inspect_wheel,
    single_top_level,
)
from registry_shared.inspection.rules import content_errors as _content_errors
from registry_shared.inspection.rules import show as _show

__all__ = [
    "BOMB_MIN_SIZE", "BOMB_RATIO", "MAX_MEMBERS", "MAX_METADATA_SIZE", "STREAM_CHUNK", "ArchiveFormat", "Expected",
    "GunzipReader", "Inspection", "InvalidDistribution", "_content_errors", "_show", "archive_format",
    "check_member_path", "check_metadata", "check_zip_members", "inspect_sdist_tar", "inspect_sdist_zip",
    "inspect_wheel", "single_top_level",
]
