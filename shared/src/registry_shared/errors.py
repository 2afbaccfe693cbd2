"""Typed domain errors. One middleware turns them into GitLab-style JSON bodies."""
from __future__ import annotations


class DomainError(Exception):
    """An error with an HTTP status and the body GitLab would send."""

    status = 400
    headers: dict[str, str] | None = None  # extra response headers some errors must carry

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message())
        self.message = message or self.default_message()

    def default_message(self) -> str:
        return "400 Bad request"

    def body(self) -> dict[str, str]:
        return {"message": self.message}


class BadRequest(DomainError):
    """400 with GitLab's `400 Bad request - <reason>` wording."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"400 Bad request - {reason}")


class ValidationFailed(DomainError):
    """400 `Validation failed: ...` as GitLab's model validations answer."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Validation failed: {reason}")


class UploadRejected(DomainError):
    """400 with a bare message (`File is too large`, digest mismatch, invalid distribution)."""


class ParameterMissing(DomainError):
    def __init__(self, param: str) -> None:
        self.param = param
        super().__init__(f"{param} is missing")

    def body(self) -> dict[str, str]:
        return {"error": self.message}


class ParameterInvalid(DomainError):
    def __init__(self, param: str) -> None:
        self.param = param
        super().__init__(f"{param} is invalid")

    def body(self) -> dict[str, str]:
        return {"error": self.message}


class Unauthorized(DomainError):
    status = 401

    def default_message(self) -> str:
        return "401 Unauthorized"


class Forbidden(DomainError):
    status = 403

    def default_message(self) -> str:
        return "403 Forbidden"


class NotFound(DomainError):
    status = 404

    def default_message(self) -> str:
        return "404 Not Found"


class PackageNotFound(NotFound):
    def default_message(self) -> str:
        return "404 Package Not Found"


class ServiceUnavailable(DomainError):
    status = 503

    def default_message(self) -> str:
        return "503 Service Unavailable"


class PayloadTooLarge(UploadRejected):
    def default_message(self) -> str:
        return "File is too large"
