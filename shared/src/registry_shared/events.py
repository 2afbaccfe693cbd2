"""Every event the services exchange, one pydantic model each. Additive changes only.

An event travels as a persistent AMQP message: body = the model's JSON, `type` = its kind,
`message_id` unique, `correlation_id` = the upload request's correlation id.
"""
from __future__ import annotations

import base64
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator

from .domain.text import printable
from .records.files import FileState, StoredFile


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    kind: ClassVar[str]


class FormMetadata(BaseModel):
    """The metadata fields an uploader sent in the form (used where the distribution has none)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    name: str
    version: str
    filetype: str | None = None
    pyversion: str | None = None
    metadata_version: str | None = None
    summary: str | None = None
    description: str | None = None
    description_content_type: str | None = None
    keywords: str | None = None
    author_email: str | None = None
    requires_python: str | None = None


def _from_base64(value: object) -> object:
    return base64.b64decode(value, validate=True) if isinstance(value, str) else value


# Bytes that travel as base64 in JSON (and are bytes in Python, either way).
Base64Payload = Annotated[bytes, BeforeValidator(_from_base64),
                          PlainSerializer(lambda data: base64.b64encode(data).decode("ascii"), return_type=str,
                                          when_used="json")]


class DistributionStored(Event):
    """upload-api stored a file's bytes in S3 and reserved its name; the worker should inspect it."""

    kind: ClassVar[str] = "distribution.stored"
    file_id: int
    project_id: int
    filename: str
    object_key: str
    size: int
    sha256: str
    md5: str
    blake2_256: str
    form: FormMetadata
    uploader: dict[str, object] = Field(default_factory=dict)
    reply_to: str = ""  # the upload-api replica waiting for the verdict
    upload_id: str = ""
    # upload-api inspected the bytes as they streamed and found them sound (DESIGN.md "Upload", step 2);
    # with `core_metadata` (base64 in JSON; absent when too large for a message) the worker reads nothing
    # back from S3.
    inspected: bool = False
    core_metadata: Base64Payload | None = None
    ip_address: str = ""  # the uploader's, for the audit record
    # The reservation's names as upload-api wrote them: on a first delivery the worker builds the file record
    # from the message and reads nothing before indexing (empty: an older publisher; the worker reads it).
    name: str = ""  # PEP 503 normalised
    display_name: str = ""
    version: str = ""
    canonical_version: str = ""
    file_kind: str = ""  # `bdist_wheel` | `sdist`
    # The uploading replica's own queue: the replicas' answers to this file's `index.changed` go there, and
    # that replica waits for them (registry_shared.replicas.AnswerBook). Empty: the worker waits for them.
    answers_to: str = ""

    def reservation(self, correlation_id: str | None) -> StoredFile | None:
        """The stored file this message announces, as upload-api reserved and stored it (`processing`: its
        bytes are in S3, whether or not the document says so yet); None when the message does not carry the
        names (the document must be read)."""
        if not (self.name and self.canonical_version):
            return None
        return StoredFile(
            id=self.file_id, project_id=self.project_id, filename=self.filename, state=FileState.PROCESSING,
            upload_id=self.upload_id, object_key=self.object_key, kind=self.file_kind, name=self.name,
            display_name=self.display_name, version=self.version, canonical_version=self.canonical_version,
            size=self.size, sha256=self.sha256, md5=self.md5, blake2_256=self.blake2_256,
            uploader=dict(self.uploader), correlation_id=correlation_id)


class DistributionIndexed(Event):
    """The worker accepted the file; it is installable and every index page lists it."""

    kind: ClassVar[str] = "distribution.indexed"
    file_id: int
    project_id: int
    filename: str
    upload_id: str = ""
    # For the audit record (package_published): who, from where, which release.
    package_id: int | None = None
    name: str = ""
    version: str = ""
    uploader: dict[str, object] = Field(default_factory=dict)
    ip_address: str = ""
    # The file's `index.changed` (its message id) and the replicas whose `index.applied` answers the
    # uploading replica awaits before its 201; none when the worker awaited them itself.
    applied_id: str = ""
    awaited: tuple[str, ...] = ()


class DistributionRejected(Event):
    """The worker refused the file; its object and reservation are gone."""

    kind: ClassVar[str] = "distribution.rejected"
    file_id: int
    project_id: int
    filename: str
    reason: str
    upload_id: str = ""
    # For the audit record (package_rejected).
    name: str = ""
    version: str = ""
    uploader: dict[str, object] = Field(default_factory=dict)
    ip_address: str = ""

    @field_validator("reason")
    @classmethod
    def _printable_reason(cls, reason: str) -> str:
        # The reason quotes archive member names, which may hold lone surrogates (undecodable bytes); no
        # JSON encoder accepts those, and a verdict that cannot be sent leaves the client with a 202.
        return printable(reason)


class Scope(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["project", "group"]
    id: int


class IndexChanged(Event):
    """Simple documents of these scopes changed: drop cached copies. Empty `names` = the whole scope."""

    kind: ClassVar[str] = "index.changed"
    scopes: list[Scope]
    names: list[str] = Field(default_factory=list)


class IndexApplied(Event):
    """An index-api replica dropped what an `index.changed` named (sent to the announcer's own queue,
    not through the exchange; `message_id` is the `index.changed` message's)."""

    kind: ClassVar[str] = "index.applied"
    message_id: str
    replica: str


class HooksChanged(Event):
    """A scope's webhooks were created or deleted: the metadata-worker drops its cached hooks (awaited, so a
    hook receives the events of everything done once its POST returned)."""

    kind: ClassVar[str] = "hooks.changed"
    scope: str  # `project:<id>` | `group:<id>`


class ReplicaJoined(Event):
    """A replica that answers announcements (`replicas.AWAITED_ROLES`) registered its first heartbeat: those
    who keep a view of the live replicas (`replicas.ReplicaView`) wait for it from now on."""

    kind: ClassVar[str] = "replica.joined"
    replica: str
    role: str


class ReplicaLeft(Event):
    """A replica removed its heartbeat as it stopped: no longer waited for."""

    kind: ClassVar[str] = "replica.left"
    replica: str
    role: str


class TokenRevoked(Event):
    """A credential stopped being valid (revoked, expired by hand, job finished): drop cached lookups."""

    kind: ClassVar[str] = "token.revoked"
    token_kind: Literal["personal", "deploy", "job"]
    token_id: int
    # For the audit record (token_revoked): the token's owner (a user, or a deploy token's project or
    # group), who revoked it, from where.
    user_id: int | None = None
    project_id: int | None = None
    group_id: int | None = None
    actor: dict[str, object] = Field(default_factory=dict)
    ip_address: str = ""


class AccessChanged(Event):
    """Membership, visibility or settings changed: drop cached access decisions."""

    kind: ClassVar[str] = "access.changed"
    project_ids: list[int] = Field(default_factory=list)
    group_ids: list[int] = Field(default_factory=list)


class FileDeleted(Event):
    """A file was removed from the index; its objects may now be deleted."""

    kind: ClassVar[str] = "file.deleted"
    file_id: int
    project_id: int
    object_keys: list[str]


class PolicyChanged(Event):
    """A supply-chain policy (SPEC §9) was replaced: replicas drop their cached policies and pages. Also the
    audit record's source (`actor` = `Principal.log_fields()`, or `{"principal": "admin_cli"}`)."""

    kind: ClassVar[str] = "policy.changed"
    scope_type: Literal["instance", "group", "project"]
    scope_id: int | None = None  # None for the instance
    actor: dict[str, object] = Field(default_factory=dict)
    ip_address: str = ""
    policy: dict[str, object] = Field(default_factory=dict)  # the new document, every field


class PackageStatusChanged(Event):
    """A PEP 792 status was set on a project's name (SPEC §9): replicas drop cached statuses and pages."""

    kind: ClassVar[str] = "package.status_changed"
    project_id: int
    name: str  # normalised
    status: Literal["active", "archived", "quarantined", "deprecated"]
    reason: str = ""
    actor: dict[str, object] = Field(default_factory=dict)
    ip_address: str = ""


# -- governance (SPEC §10): facts the audit consumer records, with who did it (`actor` =
# Principal.log_fields(), ids and kinds only) and from where (`ip_address`).

class PackageYanked(Event):
    """Every file of a release now carries PEP 592's yank, with `reason` (empty: none given)."""

    kind: ClassVar[str] = "package.yanked"
    project_id: int
    package_id: int
    name: str
    version: str
    reason: str = ""
    actor: dict[str, object] = Field(default_factory=dict)
    ip_address: str = ""


class PackageUnyanked(Event):
    kind: ClassVar[str] = "package.unyanked"
    project_id: int
    package_id: int
    name: str
    version: str
    actor: dict[str, object] = Field(default_factory=dict)
    ip_address: str = ""


class PackageDeleted(Event):
    """A release (`whole_package`) or some of its files were deleted (E13, or the cleanup policy)."""

    kind: ClassVar[str] = "package.deleted"
    project_id: int
    package_id: int
    name: str
    version: str
    filenames: list[str]
    whole_package: bool
    actor: dict[str, object] = Field(default_factory=dict)
    ip_address: str = ""


class ProtectionRuleChanged(Event):
    """A package protection rule was created, updated or deleted; `rule` is its state after (before, when
    deleted). Replicas drop cached rules."""

    kind: ClassVar[str] = "protection_rule.changed"
    project_id: int
    rule_id: int
    action: Literal["created", "updated", "deleted"]
    rule: dict[str, object] = Field(default_factory=dict)
    actor: dict[str, object] = Field(default_factory=dict)
    ip_address: str = ""


class TokenCreated(Event):
    kind: ClassVar[str] = "token.created"
    token_kind: Literal["personal", "deploy", "job"]
    token_id: int
    name: str = ""
    scopes: list[str] = Field(default_factory=list)
    user_id: int | None = None
    project_id: int | None = None
    group_id: int | None = None
    actor: dict[str, object] = Field(default_factory=dict)
    ip_address: str = ""


class AuditRecorded(Event):
    """The audit consumer wrote a record (its fields, JSON-ready); the webhook consumer delivers it."""

    kind: ClassVar[str] = "audit.recorded"
    record: dict[str, object]
    scopes: list[str] = Field(default_factory=list)  # "project:<id>", "group:<id>": whose hooks get it


class WebhookDelivery(Event):
    """One audit record for one hook: the webhook consumer POSTs it, retried with backoff."""

    kind: ClassVar[str] = "webhook.delivery"
    hook_id: int
    record: dict[str, object]


class DownloadCount(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    file_id: int
    project_id: int
    package_id: int | None = None
    count: int
    last_at: float  # epoch seconds of the last download counted


class DownloadsCounted(Event):
    """index-api counted downloads since its last report (batched in process)."""

    kind: ClassVar[str] = "downloads.counted"
    counts: list[DownloadCount]


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (DistributionStored, DistributionIndexed, DistributionRejected, IndexChanged, IndexApplied,
                TokenRevoked, AccessChanged, FileDeleted, PackageYanked, PackageUnyanked, PackageDeleted,
                ProtectionRuleChanged, TokenCreated, PolicyChanged, PackageStatusChanged, AuditRecorded,
                WebhookDelivery, DownloadsCounted, ReplicaJoined, ReplicaLeft, HooksChanged)
}


def parse_event(kind: str | None, body: bytes) -> Event:
    """Decode a message body by its `type`; raises ValueError for an unknown kind or invalid body."""
    cls = EVENT_TYPES.get(kind or "")
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}")
    return cls.model_validate_json(body)
