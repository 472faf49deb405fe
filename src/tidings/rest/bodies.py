"""Request bodies shared by several areas of the REST API, in Novu's field names (camelCase on the wire)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from tidings.core.validation import validated
from tidings.subscribers.commands import SubscriberFields, UpsertSubscriber


class NovuBody(BaseModel):
    """camelCase on the wire; a field Novu doesn't have is refused rather than silently dropped."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SubscriberProfile(NovuBody):
    """Novu's subscriber fields. An empty string means "not given", as on Novu; `null` clears a field."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    avatar: str | None = None
    locale: str | None = None
    timezone: str | None = None
    data: dict[str, Any] | None = None

    def sent(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set if getattr(self, name) != ""}

    def fields(self, prefix: str = "") -> SubscriberFields:
        return validated(SubscriberFields, self.sent(), prefix=prefix)


class SubscriberPayload(SubscriberProfile):
    """A subscriber named inline (a trigger's `to` or `actor`, a bulk create): upserted on the way."""

    subscriber_id: str

    def upsert(self, prefix: str = "") -> UpsertSubscriber:
        return validated(UpsertSubscriber, self.sent(), prefix=prefix)


class Credentials(NovuBody):
    webhook_url: str | None = None
    channel: str | None = None
    device_tokens: list[str] | None = None
    # Novu's fields for providers without a counterpart here: accepted, not stored.
    alert_uid: str | None = None
    title: str | None = None
    image_url: str | None = None
    state: str | None = None
    external_url: str | None = None


class ChannelSettings(NovuBody):
    """A subscriber's credentials for one Novu provider (the credentials API's body, a trigger subscriber's
    `channels`)."""

    provider_id: str
    integration_identifier: str | None = None
    credentials: Credentials


class TriggerSubscriber(SubscriberPayload):
    """A trigger's inline subscriber: its `channels` are set before the trigger is recorded."""

    channels: list[ChannelSettings] | None = None

    def sent(self) -> dict[str, Any]:
        sent = super().sent()
        sent.pop("channels", None)
        return sent
