"""Commands that create and change integrations, as the domain accepts them from the API."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_IDENTIFIER_LENGTH = 64
MAX_NAME_LENGTH = 64
MAX_PRIORITY = 1000
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _slug(value: str) -> str:
    if not 1 <= len(value) <= MAX_IDENTIFIER_LENGTH or not _SLUG.match(value):
        raise ValueError(
            f"must be 1 to {MAX_IDENTIFIER_LENGTH} lowercase letters, digits and single hyphens (e.g. smtp-2)"
        )
    return value


type Identifier = Annotated[str, AfterValidator(_slug)]
type Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH)]


class CreateIntegration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_id: str = Field(max_length=64)
    identifier: Identifier | None = None
    name: Name | None = None
    # Raw client objects in camelCase; the provider's settings model validates them (see `credentials.py`).
    config: dict[str, Any] | None = None
    credentials: dict[str, Any] | None = None
    active: bool = True
    # None: primary when the channel has no active primary yet. True: take over. False: never.
    primary: bool | None = None
    priority: int = Field(0, ge=0, le=MAX_PRIORITY)


class UpdateIntegration(BaseModel):
    """A partial update: only the fields in `model_fields_set` change, and none of them may be null."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    # Replaces every non-secret setting (omitted ones return to their defaults).
    config: dict[str, Any] | None = None
    # Merged into the stored secrets; a key whose value is null removes that secret.
    credentials: dict[str, Any] | None = None
    active: bool | None = None
    primary: bool | None = None
    priority: int | None = Field(None, ge=0, le=MAX_PRIORITY)

    @field_validator("name", "config", "credentials", "active", "primary", "priority", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value
