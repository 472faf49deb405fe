"""Validated commands that create or change subscribers (the GraphQL and REST layers build these)."""

from __future__ import annotations

import re
import zoneinfo
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from tidings.subscribers.documents import ChatEndpoint, PushEndpoint

_SUBSCRIBER_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
MAX_SUBSCRIBER_ID_LENGTH = 128
SUBSCRIBER_ID = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_SUBSCRIBER_ID_LENGTH, pattern=_SUBSCRIBER_ID_PATTERN)
]
NAME = Annotated[str, StringConstraints(max_length=256)]
INTEGRATION_IDENTIFIER = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# E.164: a plus, a country code and up to fifteen digits.
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
# BCP 47 shape (language, then subtags): en, en-US, pt-BR, zh-Hant-TW.
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_MAX_LOCALE = 35  # the longest tag BCP 47 implementations must accept
_MAX_URL = 2048
MAX_DEVICE_TOKENS = 50
# Endpoints per channel: a person has a few devices and chat accounts, not thousands (each is a document field).
MAX_ENDPOINTS = 20


def is_subscriber_id(value: str) -> bool:
    """The rule of `SUBSCRIBER_ID`, for ids that arrive outside a command (topic members)."""
    return 1 <= len(value) <= MAX_SUBSCRIBER_ID_LENGTH and re.match(_SUBSCRIBER_ID_PATTERN, value) is not None


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _http_url(value: str | None) -> str | None:
    if value is not None and (len(value) > _MAX_URL or not value.startswith(("https://", "http://"))):
        raise ValueError(f"must be an http(s) URL of at most {_MAX_URL} characters")
    return value


class PushEndpointInput(BaseModel):
    integration_identifier: INTEGRATION_IDENTIFIER
    device_tokens: list[Annotated[str, StringConstraints(min_length=1, max_length=4096)]] = Field(
        max_length=MAX_DEVICE_TOKENS
    )

    def to_document(self) -> PushEndpoint:
        return PushEndpoint(**self.model_dump())


class ChatEndpointInput(BaseModel):
    integration_identifier: INTEGRATION_IDENTIFIER
    webhook_url: str | None = None
    channel_id: Annotated[str, StringConstraints(max_length=256)] | None = None

    _check_url = field_validator("webhook_url")(_http_url)

    def to_document(self) -> ChatEndpoint:
        return ChatEndpoint(**self.model_dump())


class SubscriberFields(BaseModel):
    """Profile fields; only those the client sent are applied (`model_fields_set`), `None` clears one."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = None
    phone: str | None = None
    first_name: NAME | None = None
    last_name: NAME | None = None
    avatar: str | None = None
    locale: str | None = None
    timezone: str | None = None
    data: dict[str, Any] | None = None
    push: Annotated[list[PushEndpointInput], Field(max_length=MAX_ENDPOINTS)] | None = None
    chat: Annotated[list[ChatEndpointInput], Field(max_length=MAX_ENDPOINTS)] | None = None

    _check_avatar = field_validator("avatar")(_http_url)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not _PHONE.match(value):
            raise ValueError("must be an E.164 number such as +14155550123")
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > _MAX_LOCALE or not _LOCALE.match(value)):
            raise ValueError(f"must be a BCP 47 language tag such as en or pt-BR, at most {_MAX_LOCALE} characters")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and value not in _timezones():
            raise ValueError(f"{value!r} is not an IANA time zone name such as Europe/Paris")
        return value

    def changes(self) -> dict[str, Any]:
        """The stored form of the fields that were sent."""
        changes: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name in ("push", "chat"):
                value = [endpoint.to_document().model_dump() for endpoint in value or []]
            elif name == "data":
                value = value or {}
            elif name == "email":
                # Search is case-insensitive on this copy; `email` keeps what was sent (its domain normalised).
                changes["email_lower"] = value.lower() if value else None
            changes[name] = value
        return changes


class UpsertSubscriber(SubscriberFields):
    subscriber_id: SUBSCRIBER_ID

    def changes(self) -> dict[str, Any]:
        changes = super().changes()
        changes.pop("subscriber_id", None)
        return changes
