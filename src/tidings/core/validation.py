"""Turn Pydantic validation failures of domain commands into our typed `ValidationError` with a field path."""

from __future__ import annotations

from typing import Any

import pydantic

from tidings.core.errors import ValidationError


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def field_path(location: tuple[int | str, ...], prefix: str = "input") -> str:
    """`("channels", 0, "webhook_url")` → `input.channels.0.webhookUrl`, the path a GraphQL client sent."""
    parts = [prefix, *(camel(part) if isinstance(part, str) else str(part) for part in location)]
    return ".".join(part for part in parts if part)


def validated[M: pydantic.BaseModel](model: type[M], data: Any, *, prefix: str = "input") -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValidationError(message, field=field_path(tuple(first["loc"]), prefix)) from None
