"""Topics: Novu's v2 endpoints (what `@novu/api` calls) and the v1 ones (older SDKs and raw HTTP)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.responses import Response

from tidings.core.errors import AlreadyExistsError, NotFoundError
from tidings.core.pagination import PageRequest
from tidings.rest.bodies import NovuBody
from tidings.rest.http import (
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
from tidings.subscribers.documents import Subscriber
from tidings.subscribers.service import subscribers_by_id
from tidings.topics import service
from tidings.topics.documents import Topic, TopicSubscription


class TopicBody(NovuBody):
    key: str
    name: str | None = None


class RenameBody(NovuBody):
    name: str


class SubscriptionItem(NovuBody):
    subscriber_id: str
    identifier: str | None = None
    name: str | None = None


class SubscriptionsBody(NovuBody):
    """Who to add or remove: `subscriberIds`, or Novu's newer `subscriptions` (ids or `{subscriberId}` objects)."""

    subscriber_ids: list[str] | None = None
    subscriptions: list[str | SubscriptionItem] | None = None
    name: str | None = None
    context: dict[str, Any] | None = None  # Novu's context keys: accepted, not used

    def ids(self) -> list[str]:
        listed = [one if isinstance(one, str) else one.subscriber_id for one in self.subscriptions or []]
        return [*(self.subscriber_ids or []), *listed]


class V1SubscribersBody(NovuBody):
    subscribers: list[str] = Field(min_length=1)


def topic_dto(topic: Topic) -> dict[str, Any]:
    return {
        "_id": str(topic.id),
        "key": topic.key,
        "name": topic.name,
        "createdAt": iso(topic.created_at),
        "updatedAt": iso(topic.updated_at),
    }


def _subscription_dto(topic: Topic, member: TopicSubscription, subscriber: Subscriber | None) -> dict[str, Any]:
    return {
        "_id": str(member.id),
        "identifier": _identifier(topic.key, member.subscriber_id),
        "topic": {"_id": str(topic.id), "key": topic.key, "name": topic.name},
        "subscriber": None
        if subscriber is None
        else {
            "_id": str(subscriber.id),
            "subscriberId": subscriber.subscriber_id,
            "avatar": subscriber.avatar,
            "firstName": subscriber.first_name,
            "lastName": subscriber.last_name,
            "email": subscriber.email,
        },
        "createdAt": iso(member.created_at),
        "updatedAt": iso(member.created_at),
    }


async def create(call: Call) -> Response:
    """`POST /v2/topics`: create, or rename the topic with this key (Novu's upsert); `?failIfExists=true` makes an
    existing key a 409 carrying the topic."""
    body = await call.body(TopicBody)
    if call.query_bool("failIfExists"):
        try:
            topic = await service.create_topic(call.environment_id, body.key, body.name or body.key)
        except AlreadyExistsError as exc:
            existing = await service.get_topic(call.environment_id, body.key)
            return error_response(call.request, 409, exc.message, **topic_dto(existing))
        return ok(topic_dto(topic), 201)
    topic, created = await service.upsert_topic(call.environment_id, body.key, body.name)
    return ok(topic_dto(topic), 201 if created else 200)


async def create_v1(call: Call) -> Response:
    """`POST /v1/topics`: create the topic (an existing key is a 409)."""
    body = await call.body(TopicBody)
    topic = await service.create_topic(call.environment_id, body.key, body.name or body.key)
    return ok({"_id": str(topic.id), "key": topic.key}, 201)


async def retrieve(call: Call) -> Response:
    return ok(topic_dto(await service.get_topic(call.environment_id, call.path("topicKey"))))


async def retrieve_v1(call: Call) -> Response:
    """`GET /v1/topics/{key}`: the topic with the ids of its first 100 subscribers (Novu lists them all)."""
    key = call.path("topicKey")
    topic, members, _, _ = await service.list_topic_memberships(call.environment_id, key, PageRequest(first=MAX_LIMIT))
    environment = str(call.environment_id)
    return ok(
        {
            **topic_dto(topic),
            "_organizationId": environment,
            "_environmentId": environment,
            "subscribers": [member.subscriber_id for member in members.items],
        }
    )


async def search(call: Call) -> Response:
    page = await service.list_topics(call.environment_id, page_request(call))
    total = await service.count_topics(call.environment_id)
    return page_listing([topic_dto(one) for one in page.items], page, total)


async def rename(call: Call) -> Response:
    body = await call.body(RenameBody)
    return ok(topic_dto(await service.rename_topic(call.environment_id, call.path("topicKey"), body.name)))


async def delete(call: Call) -> Response:
    await service.delete_topic(call.environment_id, call.path("topicKey"))
    return ok({"acknowledged": True})


async def subscribe(call: Call) -> Response:
    """`POST /v2/topics/{key}/subscriptions`: the topic is created when missing, as on Novu; unknown subscribers are
    listed in `errors`, and if none could be added the answer is a 400."""
    key = call.path("topicKey")
    ids = (await call.body(SubscriptionsBody)).ids()
    topic, _ = await service.upsert_topic(call.environment_id, key, None)
    change = await service.add_subscribers(call.environment_id, key, ids, call.options.limits)
    return await _membership_answer(call, topic, change.changed + change.unchanged, change.not_found, 201)


async def unsubscribe(call: Call) -> Response:
    """`DELETE /v2/topics/{key}/subscriptions` (with a JSON body, as Novu's SDK sends it)."""
    key = call.path("topicKey")
    ids = (await call.body(SubscriptionsBody)).ids()
    topic = await service.get_topic(call.environment_id, key)
    members = await service.topic_memberships(call.environment_id, key, ids)
    change = await service.remove_subscribers(call.environment_id, key, ids, call.options.limits)
    removed = [member for member in members if member.subscriber_id in change.changed]
    found = await subscribers_by_id(call.environment_id, [member.subscriber_id for member in removed])
    data = [_subscription_dto(topic, member, found.get(member.subscriber_id)) for member in removed]
    errors = [_missing(one, "SUBSCRIPTION_NOT_FOUND") for one in change.not_found]
    return _memberships(call, data, errors, 200)


async def _membership_answer(
    call: Call, topic: Topic, member_ids: list[str], not_found: list[str], status: int
) -> Response:
    members = await service.topic_memberships(call.environment_id, topic.key, member_ids)
    found = await subscribers_by_id(call.environment_id, member_ids)
    data = [_subscription_dto(topic, member, found.get(member.subscriber_id)) for member in members]
    errors = [_missing(one, "SUBSCRIBER_NOT_FOUND") for one in not_found]
    return _memberships(call, data, errors, status)


def _missing(subscriber_id: str, code: str) -> dict[str, str]:
    what = "Subscriber" if code == "SUBSCRIBER_NOT_FOUND" else "Subscription of subscriber"
    return {"subscriberId": subscriber_id, "code": code, "message": f"{what} {subscriber_id!r} could not be found."}


def _memberships(call: Call, data: list[dict[str, Any]], errors: list[dict[str, str]], status: int) -> Response:
    body: dict[str, Any] = {
        "data": data,
        "meta": {"totalCount": len(data) + len(errors), "successful": len(data), "failed": len(errors)},
    }
    if errors:
        body["errors"] = errors
    if errors and not data:
        message = "none of the subscribers could be changed"
        raise RefusedError(400, message, **body)
    return listing(body, status)


async def subscriptions(call: Call) -> Response:
    """`GET /v2/topics/{key}/subscriptions`: its subscribers in the order they joined."""
    key = call.path("topicKey")
    topic, members, found, total = await service.list_topic_memberships(call.environment_id, key, page_request(call))
    data = [
        _subscription_dto(topic, member, found[member.subscriber_id])
        for member in members.items
        if member.subscriber_id in found
    ]
    return page_listing(data, members, total)


async def subscriber_subscriptions(call: Call) -> Response:
    """`GET /v2/subscribers/{id}/subscriptions`: the topics it is in, in the order it joined; `key` keeps one."""
    subscriber, members, topics, total = await service.list_subscriber_memberships(
        call.environment_id, call.path("subscriberId"), page_request(call), call.query("key")
    )
    data = [
        _subscription_dto(topics[member.topic_key], member, subscriber)
        for member in members.items
        if member.topic_key in topics
    ]
    return page_listing(data, members, total)


def _identifier(key: str, subscriber_id: str) -> str:
    """A subscription's identifier, in the format of Novu's default ones."""
    return f"tk={key}:si={subscriber_id}"


async def subscription(call: Call) -> Response:
    """`GET /v2/topics/{key}/subscriptions/{identifier}`, the identifier as lists give it."""
    key, identifier = call.path("topicKey"), call.path("identifier")
    # Another topic's identifier, or one not in this format, names no subscriber of this topic: a 404.
    head = _identifier(key, "")
    subscriber_id = identifier[len(head) :] if identifier.startswith(head) else ""
    member = await service.get_membership(call.environment_id, key, subscriber_id)
    return ok({"id": str(member.id), "identifier": identifier, "preferences": []})


async def add_v1(call: Call) -> Response:
    """`POST /v1/topics/{key}/subscribers`: `{succeeded, failed: {notFound}}`."""
    body = await call.body(V1SubscribersBody)
    change = await service.add_subscribers(
        call.environment_id, call.path("topicKey"), body.subscribers, call.options.limits
    )
    return ok({"succeeded": change.changed + change.unchanged, "failed": {"notFound": change.not_found}})


async def remove_v1(call: Call) -> Response:
    """`POST /v1/topics/{key}/subscribers/removal`: answers 204, as Novu does."""
    body = await call.body(V1SubscribersBody)
    await service.remove_subscribers(call.environment_id, call.path("topicKey"), body.subscribers, call.options.limits)
    return Response(status_code=204)


async def member_v1(call: Call) -> Response:
    """`GET /v1/topics/{key}/subscribers/{subscriberId}`: the membership, 404 if there is none."""
    key, subscriber_id = call.path("topicKey"), call.path("subscriberId")
    topic = await service.get_topic(call.environment_id, key)
    members = await service.topic_memberships(call.environment_id, key, [subscriber_id])
    subscriber = (await subscribers_by_id(call.environment_id, [subscriber_id])).get(subscriber_id)
    if not members or subscriber is None:
        raise NotFoundError(f"subscriber {subscriber_id!r} is not in topic {key!r}", field="subscriberId")
    environment = str(call.environment_id)
    return ok(
        {
            "_organizationId": environment,
            "_environmentId": environment,
            "_subscriberId": str(subscriber.id),
            "_topicId": str(topic.id),
            "topicKey": key,
            "externalSubscriberId": subscriber_id,
        }
    )
