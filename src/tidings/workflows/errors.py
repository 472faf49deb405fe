"""Validation failures of workflow commands, reported at the path the GraphQL client sent.

Steps arrive as a one-of input (`steps: [{email: {...}}]`) and are validated as a Pydantic union tagged by `type`;
the tag is not part of what the client wrote under that step, so errors name `input.steps.2.subject`.
"""

from __future__ import annotations

import pydantic

from tidings.core.errors import ValidationError
from tidings.core.validation import field_path


class FieldError(ValueError):
    """Raised by a validator whose rule spans several fields, to point at the one to fix (relative `path`)."""

    def __init__(self, message: str, *, path: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.path = path


def command_error(exc: pydantic.ValidationError, *, prefix: str = "input") -> ValidationError:
    first = exc.errors()[0]
    location = list(first["loc"])
    if len(location) >= 3 and location[0] == "steps" and isinstance(location[1], int):
        del location[2]  # the union tag, e.g. "email"
    message = str(first["msg"]).removeprefix("Value error, ")
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        location.extend(cause.path)
        message = str(cause)
    return ValidationError(message, field=field_path(tuple(location), prefix))


def parse_command[M: pydantic.BaseModel](model: type[M], data: object) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise command_error(exc) from None
