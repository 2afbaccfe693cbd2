"""Table tests for the pure domain rules in registry_shared.domain."""
from __future__ import annotations

import pytest

from registry_shared.domain.filenames import DistKind, check_filename_matches, parse_filename
from registry_shared.domain.ids import parse_id
from registry_shared.domain.metadata import merge_metadata, parse_core_metadata
from registry_shared.domain.names import is_valid_name, normalize_name
from registry_shared.domain.truncation import LIMITS, truncate, truncate_fields
from registry_shared.domain.versions import canonical_version, is_valid_version
from registry_shared.errors import UploadRejected


@pytest.mark.parametrize(
    ("version", "valid"),
    [
        ("1.0", True), ("1.2.3", True), ("v1.0", True), ("1!2.0", True), ("1.0a1", True), ("1.0.rc.1", True),
        ("1.0-preview2", True), ("1.0-45", True), ("1.0.post1", True), ("1.0-r2", True), ("1.0.dev3", True),
        ("1.0+local.7", True), ("1.0RC1", True), ("2.0.0-beta", True),
        ("1.2.3-45-abcdefgh", False), ("", False), ("abc", False), ("1.0 ", False), ("1..0", False),
        ("1.0+", False), ("1.0\n", False), ("x1.0", False),
    ],
)
def test_gitlab_version_regex(version: str, valid: bool) -> None:
    assert is_valid_version(version) is valid


@pytest.mark.parametrize(("a", "b"), [("1.0", "1.0.0"), ("1.0.0", "1"), ("v1.0", "1.0"), ("1.0RC1", "1.0rc1")])
def test_canonical_versions_match(a: str, b: str) -> None:
    assert canonical_version(a) == canonical_version(b)


def test_canonical_versions_differ() -> None:
    assert canonical_version("1.0") != canonical_version("1.0.1")


@pytest.mark.parametrize(
    ("name", "valid"),
    [("a", True), ("my-package", True), ("My.Package_2", True), ("9lives", True),
     ("-lead", False), ("trail-", False), ("sp ace", False), ("ünicode", False), ("", False), ("a/b", False)],
)
def test_name_validation(name: str, valid: bool) -> None:
    assert is_valid_name(name) is valid


@pytest.mark.parametrize(("raw", "normal"), [("My.Package", "my-package"), ("my_package", "my-package"),
                                               ("my....package", "my-package"), ("A-_.B", "a-b")])
def test_normalize_name(raw: str, normal: str) -> None:
    assert normalize_name(raw) == normal


@pytest.mark.parametrize(
    ("filename", "kind", "name", "version"),
    [("my_pkg-1.0-py3-none-any.whl", DistKind.WHEEL, "my-pkg", "1"),
     ("my-pkg-1.0.0.tar.gz", DistKind.SDIST, "my-pkg", "1"),
     ("My.Pkg-2.0rc1.zip", DistKind.SDIST, "my-pkg", "2rc1")],
)
def test_parse_filename(filename: str, kind: DistKind, name: str, version: str) -> None:
    parsed = parse_filename(filename)
    assert (parsed.kind, parsed.name, parsed.version) == (kind, name, version)


@pytest.mark.parametrize(
    ("filename", "needle"),
    [("pkg-1.0.exe", "wheel (.whl) or an sdist"), ("../pkg-1.0.tar.gz", "path separators"),
     ("a\\pkg-1.0.tar.gz", "path separators"), ("pkg-1.0\x00.tar.gz", "control characters"),
     ("pkg.whl", "Invalid file name"), ("nodash.tar.gz", "Invalid file name"),
     ("", "Invalid file name: the content part has no file name")],
)
def test_parse_filename_rejects(filename: str, needle: str) -> None:
    with pytest.raises(UploadRejected) as info:
        parse_filename(filename)
    assert needle in info.value.message


def test_filename_must_agree_with_form() -> None:
    parsed = parse_filename("my_pkg-1.0-py3-none-any.whl")
    check_filename_matches(parsed, "My.Pkg", "1.0.0")
    with pytest.raises(UploadRejected, match="name in the file name"):
        check_filename_matches(parsed, "other", "1.0")
    with pytest.raises(UploadRejected, match="version in the file name"):
        check_filename_matches(parsed, "my-pkg", "1.1")


@pytest.mark.parametrize("field", sorted(LIMITS))
def test_truncation_limits(field: str) -> None:
    limit = LIMITS[field]
    exact = "x" * limit
    over = "y" * (limit + 1)
    out = truncate_fields({field: exact, "other": over})
    assert out[field] == exact
    assert out["other"] == over
    truncated = truncate_fields({field: over})[field]
    assert truncated == "y" * (limit - 3) + "..."
    assert len(truncated) == limit


def test_description_4001_characters() -> None:
    text = "d" * 4001
    assert truncate(text, LIMITS["description"]) == "d" * 3997 + "..."


def test_parse_core_metadata_with_body_description() -> None:
    data = (b"Metadata-Version: 2.1\nName: Demo\nVersion: 1.0\nSummary: A demo\nRequires-Python: >=3.8\n"
            b"Requires-Dist: requests>=2\nRequires-Dist: idna\nKeywords: a,b\n"
            b"Description-Content-Type: text/markdown\n\n# Title\nbody\n")
    parsed = parse_core_metadata(data)
    assert parsed["name"] == "Demo"
    assert parsed["requires_python"] == ">=3.8"
    assert parsed["requires_dist"] == ["requests>=2", "idna"]
    assert parsed["description"] == "# Title\nbody\n"


def test_parse_core_metadata_1_0_header_description() -> None:
    data = b"Metadata-Version: 1.0\nName: old\nVersion: 0.1\nDescription: first line\n        second line\n"
    parsed = parse_core_metadata(data)
    assert parsed["description"] == "first line\nsecond line"


def test_merge_prefers_distribution_and_truncates() -> None:
    merged = merge_metadata({"summary": "from file", "requires_dist": ["x"]},
                            {"summary": "from form", "description": "z" * 5000, "keywords": "k"})
    assert merged["summary"] == "from file"
    assert merged["keywords"] == "k"
    assert merged["description"] == "z" * 3997 + "..."
    assert merged["requires_dist"] == ["x"]


@pytest.mark.parametrize(("text", "expected"), [
    ("1", 1), ("42", 42), (str(2**63 - 1), 2**63 - 1), (str(2**63), None), ("9" * 40, None),
    ("", None), ("-1", None), ("1.0", None), ("\u00b2", None), ("\u0661", None), ("acme", None)])
def test_numeric_ids(text: str, expected: int | None) -> None:
    assert parse_id(text) == expected
