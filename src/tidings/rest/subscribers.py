"""Subscribers: Novu's v2 endpoints (what `@novu/api` calls) and the v1 ones (older SDKs and raw HTTP)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field, StrictBool
from starlette.requests import Request
from starlette.responses import Response

from tidings.core.errors import AlreadyExistsError
from tidings.core.pagination import COUNT_CAP
from tidings.inbox.presence import online_among
from tidings.rest.bodies import NovuBody, SubscriberPayload, SubscriberProfile
from tidings.rest.http import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Call,
    RefusedError,
    error_response,
    iso,
    listing,
    ok,
    page_listing,
    page_request,
)
from tidings.rest.providers import channel_settings
from tidings.subscribers import service
from tidings.subscribers.documents import Subscriber


class BulkBody(NovuBody):
    subscribers: list[SubscriberPayload] = Field(min_length=1)


def subscriber_dto(subscriber: Subscriber, online: bool) -> dict[str, Any]:
    """Novu's SubscriberResponseDto. Tidings has no organisations: `_organizationId` is the environment's id."""
    environment = str(subscriber.environment_id)
    return {
        "_id": str(subscriber.id),
        "subscriberId": subscriber.subscriber_id,
        "_organizationId": environment,
        "_environmentId": environment,
        "firstName": subscriber.first_name,
        "lastName": subscriber.last_name,
        "email": subscriber.email,
        "phone": subscriber.phone,
        "avatar": subscriber.avatar,
        "locale": subscriber.locale,
        "timezone": subscriber.timezone,
        "data": subscriber.data,
        "isOnline": online,
        "lastOnlineAt": iso(subscriber.last_online_at) if subscriber.last_online_at else None,
        "deleted": False,
        "createdAt": iso(subscriber.created_at),
        "updatedAt": iso(subscriber.updated_at),
    }


async def subscriber_dtos(call: Call, subscribers: Sequence[Subscriber]) -> list[dict[str, Any]]:
    online = await online_among(call.redis, call.environment_id, subscribers)
    return [subscriber_dto(one, one.subscriber_id in online) for one in subscribers]


async def _dto(call: Call, subscriber: Subscriber) -> dict[str, Any]:
    [dto] = await subscriber_dtos(call, [subscriber])
    return dto


async def subscriber_answer(call: Call, subscriber: Subscriber) -> dict[str, Any]:
    """A single subscriber's answer: the DTO with its push and chat endpoints as `channels`."""
    return {**await _dto(call, subscriber), "channels": await channel_settings(call.environment_id, subscriber)}


async def create(call: Call) -> Response:
    """`POST /v2/subscribers` and `POST /v1/subscribers`: create, or update the one with this subscriberId (Novu's
    upsert); with `?failIfExists=true` an existing one is a 409 carrying it."""
    body = await call.body(SubscriberPayload)
    command = body.upsert()
    limits = call.options.limits
    if call.query_bool("failIfExists"):
        try:
            created = await service.create_subscriber(call.environment_id, command, limits)
        except AlreadyExistsError as exc:
            existing = await service.get_subscriber(call.environment_id, command.subscriber_id)
            return _conflict(call.request, exc, await _dto(call, existing))
        return ok(await _dto(call, created), 201)
    subscriber, _ = await service.upsert_subscriber(call.environment_id, command, limits)
    return ok(await _dto(call, subscriber), 201)


def _conflict(request: Request, exc: AlreadyExistsError, existing: dict[str, Any]) -> Response:
    # Novu's SDK reads a 409 of this call as the subscriber that exists.
    return error_response(request, 409, exc.message, **existing)


async def retrieve(call: Call) -> Response:
    subscriber = await service.get_subscriber(call.environment_id, call.path("subscriberId"))
    return ok(await subscriber_answer(call, subscriber))


async def patch(call: Call) -> Response:
    """`PATCH /v2/subscribers/{id}` and `PUT /v1/subscribers/{id}`: the fields sent; `null` clears one."""
    fields = (await call.body(SubscriberProfile)).fields()
    subscriber_id = call.path("subscriberId")
    updated = await service.update_subscriber(call.environment_id, subscriber_id, fields, call.options.limits)
    return ok(await subscriber_answer(call, updated))


async def delete(call: Call) -> Response:
    """The subscriber, its topic memberships and its preferences (GraphQL's `eraseSubscriber` also erases its
    messages and notifications)."""
    await service.delete_subscriber(call.environment_id, call.path("subscriberId"))
    return ok({"acknowledged": True, "status": "deleted"})


async def search(call: Call) -> Response:
    """`GET /v2/subscribers`: pages of `limit` in creation order, `after` the `next` of the page before;
    `subscriberId` or `email` narrows to those starting with it."""
    term = call.query("subscriberId") or call.query("email")
    for unsupported in ("name", "phone"):
        if call.query(unsupported) is not None:
            message = f"{unsupported} is not supported (docs/novu-compat.md)"
            raise RefusedError(422, message, errors={unsupported: {"messages": [message]}})
    page = await service.list_subscribers(call.environment_id, page_request(call), term)
    total = await service.count_subscribers(call.environment_id, term)
    return page_listing(await subscriber_dtos(call, page.items), page, total)


async def list_v1(call: Call) -> Response:
    """`GET /v1/subscribers?page=&limit=`: Novu's numbered pages (from 0), `{page, pageSize, totalCount, hasMore,
    data}`; numbered pages reach the first `COUNT_CAP` subscribers."""
    size = call.query_int("limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    number = call.query_int("page", 0, minimum=0, maximum=COUNT_CAP)
    found, more = await service.subscribers_at(call.environment_id, number, size)
    total = await service.count_subscribers(call.environment_id)
    return listing(
        {
            "page": number,
            "pageSize": size,
            "totalCount": total.count,
            "hasMore": more,
            "data": await subscriber_dtos(call, found),
        }
    )


class OnlineBody(NovuBody):
    is_online: StrictBool


async def online_status(call: Call) -> Response:
    """`PATCH /v1/subscribers/{id}/online-status`: the backend marks the subscriber online or offline."""
    body = await call.body(OnlineBody)
    subscriber = await service.set_online(call.environment_id, call.path("subscriberId"), body.is_online)
    return ok(await subscriber_answer(call, subscriber))


async def create_bulk(call: Call) -> Response:
    """`POST /v1/subscribers/bulk`: every item is checked first, and nothing is written if one is refused (Novu
    lists refused items in `failed` and writes the rest)."""
    body = await call.body(BulkBody)
    service.check_bulk_size(len(body.subscribers), call.options.limits)
    commands = [one.upsert(f"subscribers.{index}") for index, one in enumerate(body.subscribers)]
    result = await service.bulk_upsert_subscribers(call.environment_id, commands, call.options.limits)
    return ok(
        {
            "created": [{"subscriberId": one} for one in result.created],
            "updated": [{"subscriberId": one} for one in result.updated],
            "failed": [],
        },
        201,
    )
