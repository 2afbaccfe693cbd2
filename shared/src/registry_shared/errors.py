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

    def reason_phrase(self) -> str | None:
        """What the upload route puts in the status line instead of the standard phrase (None: keep it).
        twine, pdm and hatch print the status line, not the body, so the reason must be there (SPEC §4)."""
        return None


class BadRequest(DomainError):
    """400 written as GitLab's `bad_request!` writes it: `400 Bad request - <reason>` (SPEC §4)."""

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason or self.default_reason()
        super().__init__(f"400 Bad request - {self.reason}")

    def default_reason(self) -> str:
        return "malformed request"

    def reason_phrase(self) -> str | None:
        return self.reason


class ValidationFailed(BadRequest):
    """`Validation failed: ...`, as GitLab's model validations answer (`Version is invalid`, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Validation failed: {reason}")


class UploadRejected(BadRequest):
    """A refused upload (`File is too large`, digest mismatch, `Invalid distribution file: ...`)."""


class ParameterError(DomainError):
    """A malformed parameter, as Grape's validation answers it: `{"error": "<param> is <problem>"}`."""

    problem = "invalid"

    def __init__(self, param: str) -> None:
        self.param = param
        super().__init__(f"{param} is {self.problem}")

    def body(self) -> dict[str, str]:
        return {"error": self.message}

    def reason_phrase(self) -> str | None:
        return self.message


class ParameterMissing(ParameterError):
    problem = "missing"


class ParameterInvalid(ParameterError):
    problem = "invalid"


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
    """A dependency failed; the request was fine and may be retried (clients honour Retry-After)."""

    status = 503
    headers = {"Retry-After": "5"}

    def default_message(self) -> str:
        return "503 Service Unavailable"


class PayloadTooLarge(UploadRejected):
    def default_reason(self) -> str:
        return "File is too large"


class Unprocessable(DomainError):
    """422, as GitLab's model validations answer a conflict (`Package name pattern has already been taken`)."""

    status = 422


class ErrorParameter(DomainError):
    """A 400 whose body is Grape's `{"error": "..."}` with a free text (`url is blocked: ...`)."""

    def body(self) -> dict[str, str]:
        return {"error": self.message}
