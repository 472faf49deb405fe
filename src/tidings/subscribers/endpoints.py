"""A subscriber's push and chat endpoints changed one integration at a time (what Novu's credentials API does),
without touching the endpoints of other integrations."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

from beanie import PydanticObjectId
from pymongo import ReturnDocument

from tidings.core.clock import utcnow
from tidings.core.errors import UnavailableError, ValidationError
from tidings.subscribers.commands import MAX_DEVICE_TOKENS, MAX_ENDPOINTS, ChatEndpointInput, PushEndpointInput
from tidings.subscribers.documents import Subscriber
from tidings.subscribers.service import UPSERT_ATTEMPTS, apply_update, get_subscriber

type EndpointKind = Literal["push", "chat"]


async def put_endpoint(
    environment_id: PydanticObjectId,
    subscriber_id: str,
    endpoint: PushEndpointInput | ChatEndpointInput,
    *,
    add_tokens: bool = False,
) -> Subscriber:
    """Set the subscriber's endpoint for the endpoint's integration; with `add_tokens` a push endpoint's device
    tokens are added to the ones it has instead of replacing them."""
    kind: EndpointKind = "push" if isinstance(endpoint, PushEndpointInput) else "chat"
    new = endpoint.to_document().model_dump()
    for _ in range(UPSERT_ATTEMPTS):
        subscriber = await get_subscriber(environment_id, subscriber_id)
        current: list[dict[str, Any]] = [one.model_dump() for one in getattr(subscriber, kind)]
        same = [one for one in current if one["integration_identifier"] == new["integration_identifier"]]
        if add_tokens and kind == "push" and same:
            new["device_tokens"] = list(dict.fromkeys([*same[0]["device_tokens"], *new["device_tokens"]]))
            if len(new["device_tokens"]) > MAX_DEVICE_TOKENS:
                raise ValidationError(
                    f"an endpoint holds at most {MAX_DEVICE_TOKENS} device tokens", field="credentials.deviceTokens"
                )
        kept = [one for one in current if one["integration_identifier"] != new["integration_identifier"]]
        if len(kept) >= MAX_ENDPOINTS:
            raise ValidationError(f"a subscriber has at most {MAX_ENDPOINTS} {kind} endpoints", field="providerId")
        # Written only if nothing changed the subscriber since it was read; otherwise read again.
        raw = await Subscriber.get_pymongo_collection().find_one_and_update(
            {"_id": subscriber.id, "updated_at": subscriber.updated_at},
            {"$set": {kind: [*kept, new], "updated_at": utcnow()}},
            return_document=ReturnDocument.AFTER,
        )
        if raw is not None:
            updated: Subscriber = Subscriber.model_validate(raw)
            return updated
    raise UnavailableError(f"subscriber {subscriber_id!r} changed too often to update; try again")


async def remove_endpoints(
    environment_id: PydanticObjectId, subscriber_id: str, kind: EndpointKind, integrations: Collection[str]
) -> Subscriber:
    """Drop the subscriber's endpoints of these integrations (by identifier)."""
    dropped = {kind: {"integration_identifier": {"$in": list(integrations)}}}
    return await apply_update(environment_id, subscriber_id, {"$pull": dropped, "$set": {"updated_at": utcnow()}})
