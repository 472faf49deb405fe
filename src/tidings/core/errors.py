"""The one exception tree of Tidings.

Domain code raises these for expected failures; the GraphQL layer maps each to an error with a stable ``code``
extension and, where one applies, the offending ``field`` path. Anything else is an internal error and is masked.

    TidingsError
    ├── NotFoundError          NOT_FOUND
    ├── AlreadyExistsError     ALREADY_EXISTS
    ├── ValidationError        VALIDATION
    ├── UnauthenticatedError   UNAUTHENTICATED
    ├── ForbiddenError         FORBIDDEN
    ├── UnavailableError       UNAVAILABLE   (a dependency such as MongoDB or Redis is down)
    └── RateLimitedError       RATE_LIMITED  (an environment's rate limit; `retry_after` whole seconds)
"""

from __future__ import annotations


class TidingsError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFoundError(TidingsError):
    code = "NOT_FOUND"


class AlreadyExistsError(TidingsError):
    code = "ALREADY_EXISTS"


class ValidationError(TidingsError):
    code = "VALIDATION"


class UnauthenticatedError(TidingsError):
    code = "UNAUTHENTICATED"


class ForbiddenError(TidingsError):
    code = "FORBIDDEN"


class UnavailableError(TidingsError):
    code = "UNAVAILABLE"


class RateLimitedError(TidingsError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after
