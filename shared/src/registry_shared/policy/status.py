"""PEP 792 project status, per project and name."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..errors import ParameterInvalid


class Status(str, Enum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    QUARANTINED = "quarantined"
    DEPRECATED = "deprecated"


@dataclass(frozen=True)
class PackageStatus:
    project_id: int
    name: str  # normalised
    status: Status
    reason: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "reason": self.reason}


def parse_status(body: object) -> tuple[Status, str]:
    """`{"status": ..., "reason": ...}` -> (status, reason); another status is `status is invalid`."""
    if not isinstance(body, dict):
        raise ParameterInvalid("status")
    try:
        status = Status(body.get("status"))
    except ValueError as exc:
        raise ParameterInvalid("status") from exc
    reason = body.get("reason", "")
    if reason is None:
        reason = ""
    if not isinstance(reason, str) or len(reason) > 1000:
        raise ParameterInvalid("reason")
    return status, reason
