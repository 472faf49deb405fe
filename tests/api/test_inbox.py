"""The subscriber-facing inbox over real HTTP and real websockets against a real `tidings api` process: sessions
and HMAC, what a subscriber token can and cannot reach, the feed with its filters and counts, every state change,
the subscriber's own preferences, and the live stream (replay with `after`, live events, counts, presence)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets
from beanie import PydanticObjectId
from redis.asyncio import Redis

from tests.api.conftest import GraphQL
from tests.inbox_client import Socket
from tidings.app.settings import Settings
from tidings.environments.service import IssuedEnvironment
from tidings.inbox.documents import Action
from tidings.inbox.service import NewMessage, deliver_in_app

SESSION = """mutation($app: String!, $id: String!, $hash: String) {
    inboxSession(applicationIdentifier: $app, subscriberId: $id, subscriberHash: $hash) {
        token expiresAt subscriberId seq counts { total unread unseen } } }"""
FIELDS = """id workflowId transactionId subject body avatar redirectUrl data tags createdAt
    isRead readAt isSeen seenAt isArchived archivedAt isSnoozed snoozedUntil
    primaryAction { label url isCompleted completedAt } secondaryAction { label url isCompleted completedAt }"""
FEED = f"""query($filter: InboxFilterInput, $first: Int, $after: String) {{
    inboxNotifications(filter: $filter, first: $first, after: $after) {{
        edges {{ cursor node {{ {FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
COUNTS = "query($filters: [InboxFilterInput!]!) { inboxCounts(filters: $filters) { total unread unseen } }"
ONE = "mutation($id: ID!) {{ {name}(id: $id) {{ id isRead isSeen isArchived isSnoozed snoozedUntil }} }}"
ACTION = """mutation($id: ID!, $action: InboxActionKind!) {{ {name}(id: $id, action: $action) {{
    primaryAction {{ isCompleted completedAt }} secondaryAction {{ isCompleted }} }} }}"""


@dataclass(frozen=True)
class Inbox:
    """GraphQL as one subscriber, with its session token."""

    client: httpx.AsyncClient
    token: str
    environment_id: PydanticObjectId
    subscriber_id: str

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        body = await self(query, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def error(self, query: str, **variables: Any) -> dict[str, Any]:
        body = await self(query, **variables)
        assert body.get("errors"), body
        error: dict[str, Any] = body["errors"][0]
        return {"code": error["extensions"]["code"], "field": error["extensions"].get("field"), **error}


class RedisPublisher:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def publish(self, channel: str, message: str) -> None:
        await self.redis.publish(channel, message)


@pytest.fixture(scope="module")
async def publisher(api_settings: Settings) -> AsyncIterator[RedisPublisher]:
    redis = Redis.from_url(api_settings.require_redis_url())
    yield RedisPublisher(redis)
    await redis.aclose()


@pytest.fixture(scope="module")
def alpha(environments: tuple[IssuedEnvironment, IssuedEnvironment]) -> IssuedEnvironment:
    return environments[0]


async def _session(anonymous: GraphQL, env: IssuedEnvironment, subscriber_id: str) -> dict[str, Any]:
    data = await anonymous.data(SESSION, app=env.environment.application_identifier, id=subscriber_id)
    session: dict[str, Any] = data["inboxSession"]
    return session


async def _inbox(client: httpx.AsyncClient, anonymous: GraphQL, env: IssuedEnvironment, subscriber_id: str) -> Inbox:
    session = await _session(anonymous, env, subscriber_id)
    assert env.environment.id is not None
    return Inbox(client, session["token"], env.environment.id, subscriber_id)


async def _deliver(
    inbox: Inbox, publisher: RedisPublisher, *, subject: str = "Hi", tags: list[str] | None = None, **extra: Any
) -> str:
    """An in-app message through the engine's own delivery function (what a worker's in_app step calls)."""
    message, created = await deliver_in_app(
        NewMessage(
            environment_id=inbox.environment_id,
            subscriber_id=inbox.subscriber_id,
            notification_id=PydanticObjectId(),
            transaction_id=uuid.uuid4().hex,
            workflow_id="comment-added",
            step_id="in-app",
            subject=subject,
            body=f"body of {subject}",
            tags=tags or [],
            **extra,
        ),
        publisher,
    )
    assert created
    return str(message.id)


def _subscriber() -> str:
    return f"sub-{uuid.uuid4().hex[:8]}"


# Sessions and what a token reaches -------------------------------------------------------------------------------


async def test_session_without_hmac_gives_a_token_and_counts(
    anonymous: GraphQL, alpha: IssuedEnvironment, client: httpx.AsyncClient, publisher: RedisPublisher
) -> None:
    subscriber_id = _subscriber()
    first = await _session(anonymous, alpha, subscriber_id)
    assert first["subscriberId"] == subscriber_id
    assert first["seq"] == 0
    assert first["counts"] == {"total": 0, "unread": 0, "unseen": 0}
    expires = datetime.fromisoformat(first["expiresAt"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    inbox = Inbox(client, first["token"], alpha.environment.id, subscriber_id)  # type: ignore[arg-type]
    await _deliver(inbox, publisher)
    again = await _session(anonymous, alpha, subscriber_id)
    assert again["seq"] == 1
    assert again["counts"] == {"total": 1, "unread": 1, "unseen": 1}


async def test_session_refuses_unknown_application_and_bad_hmac(
    anonymous: GraphQL, gql: GraphQL, alpha: IssuedEnvironment
) -> None:
    app = alpha.environment.application_identifier
    unknown = await anonymous.error(SESSION, app="nope", id="x")
    assert (unknown["code"], unknown["field"]) == ("UNAUTHENTICATED", "applicationIdentifier")
    good_hash = hmac.new(alpha.api_key.encode(), b"hmac-user", hashlib.sha256).hexdigest()
    wrong = await anonymous.error(SESSION, app=app, id="hmac-user", hash="0" * 64)
    assert (wrong["code"], wrong["field"]) == ("FORBIDDEN", "subscriberHash")
    # Another subscriber's valid hash does not open this one's inbox.
    other_hash = hmac.new(alpha.api_key.encode(), b"someone-else", hashlib.sha256).hexdigest()
    assert (await anonymous.error(SESSION, app=app, id="hmac-user", hash=other_hash))["code"] == "FORBIDDEN"
    required = await gql.data("mutation { setInboxHmacRequired(required: true) { inboxHmacRequired } }")
    assert required["setInboxHmacRequired"]["inboxHmacRequired"] is True
    try:
        missing = await anonymous.error(SESSION, app=app, id="hmac-user")
        assert (missing["code"], missing["field"]) == ("UNAUTHENTICATED", "subscriberHash")
        ok = await anonymous.data(SESSION, app=app, id="hmac-user", hash=good_hash)
        assert ok["inboxSession"]["subscriberId"] == "hmac-user"
        assert (await anonymous.data(SESSION, app=app, id="hmac-user", hash=good_hash.upper()))["inboxSession"]
    finally:
        await gql.data("mutation { setInboxHmacRequired(required: false) { inboxHmacRequired } }")


async def test_hmac_keeps_working_through_a_key_rotation(anonymous: GraphQL, client: httpx.AsyncClient) -> None:
    from tests.servers import SECRET_KEY  # noqa: PLC0415
    from tidings.core.crypto import Cipher  # noqa: PLC0415
    from tidings.environments.service import create_environment  # noqa: PLC0415

    env = await create_environment(f"rotating-{uuid.uuid4().hex[:6]}", cipher=Cipher(SECRET_KEY))
    admin = GraphQL(client, env.api_key)
    await admin.data("mutation { setInboxHmacRequired(required: true) { inboxHmacRequired } }")
    rotated = await admin.data("mutation { rotateApiKey(overlapSeconds: 60) { apiKey } }")
    new_key = rotated["rotateApiKey"]["apiKey"]
    app = env.environment.application_identifier
    for key in (env.api_key, new_key):
        digest = hmac.new(key.encode(), b"rotor", hashlib.sha256).hexdigest()
        assert (await anonymous.data(SESSION, app=app, id="rotor", hash=digest))["inboxSession"]["token"]
    await GraphQL(client, new_key).data("mutation { rotateApiKey(overlapSeconds: 0) { apiKey } }")
    old = hmac.new(env.api_key.encode(), b"rotor", hashlib.sha256).hexdigest()
    assert (await anonymous.error(SESSION, app=app, id="rotor", hash=old))["code"] == "FORBIDDEN"


async def test_a_token_reaches_only_its_own_subscriber_and_no_admin_field(
    anonymous: GraphQL,
    alpha: IssuedEnvironment,
    environments: tuple[IssuedEnvironment, IssuedEnvironment],
    client: httpx.AsyncClient,
    publisher: RedisPublisher,
) -> None:
    mine = await _inbox(client, anonymous, alpha, _subscriber())
    theirs = await _inbox(client, anonymous, alpha, _subscriber())
    their_message = await _deliver(theirs, publisher, subject="private")
    # Same subscriber id in the other environment: a different inbox.
    twin = await _inbox(client, anonymous, environments[1], mine.subscriber_id)
    await _deliver(twin, publisher, subject="twin")

    assert (await mine.data(FEED))["inboxNotifications"]["edges"] == []
    for name in ("inboxMarkRead", "inboxMarkUnread", "inboxArchive", "inboxUnarchive", "inboxUnsnooze", "inboxDelete"):
        query = ONE.format(name=name) if name != "inboxDelete" else "mutation($id: ID!) { inboxDelete(id: $id) }"
        error = await mine.error(query, id=their_message)
        assert (error["code"], error["field"]) == ("NOT_FOUND", "id"), name
    assert (await mine.data("mutation($ids: [ID!]!) { inboxMarkSeen(ids: $ids) { updated } }", ids=[their_message]))[
        "inboxMarkSeen"
    ]["updated"] == 0
    assert (await mine.data("mutation { inboxMarkAllRead { updated } }"))["inboxMarkAllRead"]["updated"] == 0
    untouched = (await theirs.data(FEED))["inboxNotifications"]["edges"][0]["node"]
    assert (untouched["isRead"], untouched["isSeen"], untouched["isArchived"]) == (False, False, False)

    for admin_query in (
        "{ subscribers { edges { node { subscriberId } } } }",
        "{ currentEnvironment { name applicationIdentifier } }",
        "{ workflows { edges { node { workflowId } } } }",
        'mutation { deleteSubscriber(subscriberId: "x") }',
    ):
        assert (await mine.error(admin_query))["code"] == "UNAUTHENTICATED", admin_query
    # The other way round: an API key is not a subscriber token.
    admin = GraphQL(client, alpha.api_key)
    assert (await admin.error(FEED))["code"] == "UNAUTHENTICATED"
    forged = Inbox(client, mine.token[:-2] + ("AA" if not mine.token.endswith("AA") else "BB"), mine.environment_id, "")
    assert (await forged.error(FEED))["code"] == "UNAUTHENTICATED"


async def test_an_expired_token_is_refused(anonymous: GraphQL, client: httpx.AsyncClient) -> None:
    from tests.servers import SECRET_KEY  # noqa: PLC0415
    from tidings.core.tokens import Signer  # noqa: PLC0415
    from tidings.inbox.sessions import SESSION_SIGNING_CONTEXT  # noqa: PLC0415

    signer = Signer(SECRET_KEY, purpose=SESSION_SIGNING_CONTEXT)
    stale = signer.sign({"e": str(PydanticObjectId()), "s": "late", "x": int(datetime.now(UTC).timestamp()) - 1})
    error = await Inbox(client, stale, PydanticObjectId(), "late").error(FEED)
    assert error["code"] == "UNAUTHENTICATED"
    assert "expired" in error["message"]


# Feed, filters, counts ------------------------------------------------------------------------------------------


async def test_feed_pages_newest_first_and_validates_page_size(
    anonymous: GraphQL, alpha: IssuedEnvironment, client: httpx.AsyncClient, publisher: RedisPublisher
) -> None:
    inbox = await _inbox(client, anonymous, alpha, _subscriber())
    ids = [await _deliver(inbox, publisher, subject=f"n{i}") for i in range(25)]
    first = (await inbox.data(FEED))["inboxNotifications"]
    assert [edge["node"]["id"] for edge in first["edges"]] == ids[::-1][:20]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (await inbox.data(FEED, after=first["pageInfo"]["endCursor"]))["inboxNotifications"]
    assert [edge["node"]["id"] for edge in rest["edges"]] == ids[::-1][20:]
    assert rest["pageInfo"]["hasNextPage"] is False
    too_many = await inbox.error(FEED, first=101)
    assert (too_many["code"], too_many["field"]) == ("VALIDATION", "first")
    assert len((await inbox.data(FEED, first=100))["inboxNotifications"]["edges"]) == 25


async def test_filters_and_counts(
    anonymous: GraphQL, alpha: IssuedEnvironment, client: httpx.AsyncClient, publisher: RedisPublisher
) -> None:
    inbox = await _inbox(client, anonymous, alpha, _subscriber())
    a = await _deliver(inbox, publisher, subject="a", tags=["billing"])
    b = await _deliver(inbox, publisher, subject="b", tags=["social"])
    c = await _deliver(inbox, publisher, subject="c", tags=["social", "billing"])
    d = await _deliver(inbox, publisher, subject="d")
    e = await _deliver(inbox, publisher, subject="e")
    await inbox.data(ONE.format(name="inboxMarkRead"), id=a)
    await inbox.data("mutation($ids: [ID!]!) { inboxMarkSeen(ids: $ids) { updated } }", ids=[b])
    await inbox.data(ONE.format(name="inboxArchive"), id=c)
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await inbox.data(
        "mutation($id: ID!, $until: DateTime!) { inboxSnooze(id: $id, until: $until) { id } }", id=d, until=until
    )

    async def subjects(**inbox_filter: Any) -> list[str]:
        edges = (await inbox.data(FEED, filter=inbox_filter))["inboxNotifications"]["edges"]
        return [edge["node"]["subject"] for edge in edges]

    assert await subjects() == ["e", "b", "a"]  # archived c and snoozed d hidden by default
    assert await subjects(read=True) == ["a"]
    assert await subjects(read=False) == ["e", "b"]
    assert await subjects(seen=True) == ["b", "a"]
    assert await subjects(archived=True) == ["c"]
    assert await subjects(snoozed=True) == ["d"]
    assert await subjects(archived=None, snoozed=None) == ["e", "d", "c", "b", "a"]
    assert await subjects(tags=["billing"], archived=None) == ["c", "a"]
    edges = (await inbox.data(FEED, filter={"archived": None, "snoozed": None}))["inboxNotifications"]["edges"]
    created = {edge["node"]["subject"]: edge["node"]["createdAt"] for edge in edges}
    assert await subjects(createdAfter=created["c"], archived=None, snoozed=None) == ["e", "d", "c"]
    assert await subjects(createdBefore=created["c"], archived=None) == ["b", "a"]

    counts = (
        await inbox.data(
            COUNTS,
            filters=[{}, {"archived": None, "snoozed": None}, {"tags": ["social"], "archived": None}, {"read": True}],
        )
    )["inboxCounts"]
    assert counts == [
        {"total": 3, "unread": 2, "unseen": 1},
        {"total": 5, "unread": 4, "unseen": 3},
        {"total": 2, "unread": 2, "unseen": 1},
        {"total": 1, "unread": 0, "unseen": 0},
    ]
    bad = await inbox.error(COUNTS, filters=[{}] * 11)
    assert (bad["code"], bad["field"]) == ("VALIDATION", "filters")
    assert e


async def test_every_state_change(
    anonymous: GraphQL, alpha: IssuedEnvironment, client: httpx.AsyncClient, publisher: RedisPublisher
) -> None:
    inbox = await _inbox(client, anonymous, alpha, _subscriber())
    message = await _deliver(
        inbox,
        publisher,
        primary_action=Action(label="Accept", url="https://example.com/accept"),
        secondary_action=Action(label="Decline"),
    )
    plain = await _deliver(inbox, publisher, subject="plain")

    async def change(name: str) -> dict[str, Any]:
        data = await inbox.data(ONE.format(name=name), id=message)
        result: dict[str, Any] = data[name]
        return result

    read = await change("inboxMarkRead")
    assert (read["isRead"], read["isSeen"]) == (True, True)
    assert (await change("inboxMarkRead"))["isRead"] is True  # idempotent
    unread = await change("inboxMarkUnread")
    assert (unread["isRead"], unread["isSeen"]) == (False, True)
    assert (await change("inboxArchive"))["isArchived"] is True
    assert (await change("inboxUnarchive"))["isArchived"] is False

    snooze = "mutation($id: ID!, $until: DateTime!) { inboxSnooze(id: $id, until: $until) { isSnoozed snoozedUntil } }"
    until = datetime.now(UTC) + timedelta(days=1)
    snoozed = (await inbox.data(snooze, id=message, until=until.isoformat()))["inboxSnooze"]
    assert snoozed["isSnoozed"] is True
    assert abs(datetime.fromisoformat(snoozed["snoozedUntil"]) - until) < timedelta(seconds=1)
    for bad_until in (datetime.now(UTC) - timedelta(minutes=1), datetime.now(UTC) + timedelta(days=91)):
        error = await inbox.error(snooze, id=message, until=bad_until.isoformat())
        assert (error["code"], error["field"]) == ("VALIDATION", "until")
    assert (await change("inboxUnsnooze"))["isSnoozed"] is False

    done = (await inbox.data(ACTION.format(name="inboxCompleteAction"), id=message, action="PRIMARY"))[
        "inboxCompleteAction"
    ]
    assert done["primaryAction"]["isCompleted"] is True
    assert done["primaryAction"]["completedAt"] is not None
    assert done["secondaryAction"]["isCompleted"] is False
    reverted = (await inbox.data(ACTION.format(name="inboxRevertAction"), id=message, action="PRIMARY"))[
        "inboxRevertAction"
    ]
    assert reverted["primaryAction"]["isCompleted"] is False
    no_action = await inbox.error(ACTION.format(name="inboxCompleteAction"), id=plain, action="SECONDARY")
    assert (no_action["code"], no_action["field"]) == ("VALIDATION", "action")

    deleted = await inbox.data("mutation($id: ID!) { inboxDelete(id: $id) }", id=plain)
    assert deleted["inboxDelete"] == plain
    again = await inbox.error("mutation($id: ID!) { inboxDelete(id: $id) }", id=plain)
    assert (again["code"], again["field"]) == ("NOT_FOUND", "id")
    malformed = await inbox.error(ONE.format(name="inboxMarkRead"), id="not-an-id")
    assert malformed["code"] == "NOT_FOUND"


async def test_bulk_changes(
    anonymous: GraphQL, alpha: IssuedEnvironment, client: httpx.AsyncClient, publisher: RedisPublisher
) -> None:
    inbox = await _inbox(client, anonymous, alpha, _subscriber())
    billing = [await _deliver(inbox, publisher, subject=f"bill{i}", tags=["billing"]) for i in range(3)]
    others = [await _deliver(inbox, publisher, subject=f"other{i}") for i in range(2)]
    seen = await inbox.data("mutation($ids: [ID!]!) { inboxMarkSeen(ids: $ids) { updated } }", ids=others)
    assert seen["inboxMarkSeen"]["updated"] == 2
    tagged = await inbox.data('mutation { inboxMarkAllRead(tags: ["billing"]) { updated } }')
    assert tagged["inboxMarkAllRead"]["updated"] == 3
    counts = (await inbox.data(COUNTS, filters=[{}]))["inboxCounts"][0]
    assert counts == {"total": 5, "unread": 2, "unseen": 0}
    archived = await inbox.data("mutation { inboxArchiveAllRead { updated } }")
    assert archived["inboxArchiveAllRead"]["updated"] == 3
    assert (await inbox.data(COUNTS, filters=[{}, {"archived": True}]))["inboxCounts"] == [
        {"total": 2, "unread": 2, "unseen": 0},
        {"total": 3, "unread": 0, "unseen": 0},
    ]
    assert (await inbox.data("mutation { inboxMarkAllRead { updated } }"))["inboxMarkAllRead"]["updated"] == 2
    too_many = await inbox.error("mutation($ids: [ID!]!) { inboxMarkSeen(ids: $ids) { updated } }", ids=billing * 40)
    assert (too_many["code"], too_many["field"]) == ("VALIDATION", "ids")


async def test_own_preferences(
    anonymous: GraphQL, gql: GraphQL, alpha: IssuedEnvironment, client: httpx.AsyncClient
) -> None:
    workflow = "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }"
    suffix = uuid.uuid4().hex[:6]
    await gql.data(workflow, input={"workflowId": f"open-{suffix}", "name": "Open"})
    await gql.data(
        workflow, input={"workflowId": f"locked-{suffix}", "name": "Locked", "preferences": {"readOnly": True}}
    )
    await gql.data(workflow, input={"workflowId": f"alarm-{suffix}", "name": "Alarm", "critical": True})
    inbox = await _inbox(client, anonymous, alpha, _subscriber())
    set_preferences = """mutation($workflowId: String, $channels: [ChannelChoiceInput!]!) {
        inboxSetPreferences(workflowId: $workflowId, channels: $channels) {
            workflowId channels { channel enabled } } }"""
    off = [{"channel": "EMAIL", "enabled": False}]
    stored = (await inbox.data(set_preferences, workflowId=f"open-{suffix}", channels=off))["inboxSetPreferences"]
    assert stored["channels"] == [{"channel": "EMAIL", "enabled": False}]
    assert (await inbox.data(set_preferences, channels=[{"channel": "SMS", "enabled": False}]))["inboxSetPreferences"]
    locked = await inbox.error(set_preferences, workflowId=f"locked-{suffix}", channels=off)
    assert (locked["code"], locked["field"]) == ("FORBIDDEN", "workflowId")
    critical = await inbox.error(set_preferences, workflowId=f"alarm-{suffix}", channels=off)
    assert (critical["code"], critical["field"]) == ("FORBIDDEN", "channels")
    unknown = await inbox.error(set_preferences, workflowId="nope", channels=off)
    assert (unknown["code"], unknown["field"]) == ("NOT_FOUND", "workflowId")

    effective = (
        """{ inboxPreferences(first: 100) { edges { node { workflowId channels { channel enabled reason } } } } }"""
    )
    rows = {
        edge["node"]["workflowId"]: edge["node"] for edge in (await inbox.data(effective))["inboxPreferences"]["edges"]
    }
    email = {row["channel"]: row for row in rows[f"open-{suffix}"]["channels"]}["EMAIL"]
    assert email["enabled"] is False
    sms = {row["channel"]: row for row in rows[f"alarm-{suffix}"]["channels"]}["SMS"]
    assert sms["enabled"] is True  # critical wins over the global "SMS off"
    # What the subscriber changed is what the admin API sees.
    admin = await gql.data(
        "query($id: String!) { subscriberGlobalPreferences(subscriberId: $id) { channels { channel enabled } } }",
        id=inbox.subscriber_id,
    )
    assert admin["subscriberGlobalPreferences"]["channels"] == [{"channel": "SMS", "enabled": False}]


# The live stream ------------------------------------------------------------------------------------------------


async def _closed_with(base: str, payload: dict[str, Any] | None) -> int | None:
    socket = await Socket.open(base, payload)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(socket.connection.recv(), 10)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_websocket_refuses_missing_expired_and_invalid_tokens(api: tuple[Any, str]) -> None:
    from tests.servers import SECRET_KEY  # noqa: PLC0415
    from tidings.core.tokens import Signer  # noqa: PLC0415
    from tidings.inbox.sessions import SESSION_SIGNING_CONTEXT  # noqa: PLC0415

    base = api[1]
    assert await _closed_with(base, None) == 4401
    expired = Signer(SECRET_KEY, purpose=SESSION_SIGNING_CONTEXT).sign({"e": str(PydanticObjectId()), "s": "x", "x": 1})
    assert await _closed_with(base, {"token": expired}) == 4401
    assert await _closed_with(base, {"token": "v1.garbage.sig"}) == 4403
    forged = Signer("another-secret-key-0123456789abcdef0123", purpose=SESSION_SIGNING_CONTEXT).sign(
        {"e": str(PydanticObjectId()), "s": "x", "x": 2_000_000_000}
    )
    assert await _closed_with(base, {"token": forged}) == 4403
    # Only graphql-transport-ws is spoken.
    url = base.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-ws")]) as legacy:
        with pytest.raises(websockets.ConnectionClosed) as refused:
            await legacy.recv()
    assert refused.value.rcvd is not None
    assert refused.value.rcvd.code == 4406


async def test_live_events_updates_and_counts(
    api: tuple[Any, str],
    anonymous: GraphQL,
    alpha: IssuedEnvironment,
    client: httpx.AsyncClient,
    publisher: RedisPublisher,
) -> None:
    inbox = await _inbox(client, anonymous, alpha, _subscriber())
    socket = await Socket.open(api[1], {"token": inbox.token})
    await socket.subscribe()
    first_counts = await socket.next()
    assert first_counts["__typename"] == "CountsChanged"
    assert first_counts["counts"] == {"total": 0, "unread": 0, "unseen": 0}
    message = await _deliver(inbox, publisher, subject="live one")
    received = await socket.next()
    assert received["__typename"] == "NotificationReceived"
    assert received["notification"] == {"id": message, "subject": "live one", "isRead": False}
    assert received["seq"] == 1
    counts = await socket.next()
    assert counts["__typename"] == "CountsChanged"
    assert counts["counts"] == {"total": 1, "unread": 1, "unseen": 1}
    # A read from "another device" (HTTP) reaches this client.
    await inbox.data(ONE.format(name="inboxMarkRead"), id=message)
    updated = await socket.next()
    assert updated["__typename"] == "NotificationUpdated"
    assert (updated["notificationId"], updated["notification"]["isRead"], updated["seq"]) == (message, True, 2)
    assert (await socket.next())["counts"] == {"total": 1, "unread": 0, "unseen": 0}
    await inbox.data("mutation($id: ID!) { inboxDelete(id: $id) }", id=message)
    deleted = await socket.next()
    assert (deleted["__typename"], deleted["deleted"], deleted["notification"]) == ("NotificationUpdated", True, None)
    assert (await socket.next())["counts"] == {"total": 0, "unread": 0, "unseen": 0}
    await socket.close()
    metrics = (await client.get("/metrics")).text
    sent = {
        line.split('type="')[1].split('"')[0]: float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("tidings_inbox_events_sent_total{")
    }
    assert sent["NotificationReceived"] >= 1
    assert sent["NotificationUpdated"] >= 2
    assert sent["CountsChanged"] >= 4


async def test_resume_after_a_dropped_connection_gets_exactly_the_missed_events(
    api: tuple[Any, str],
    anonymous: GraphQL,
    alpha: IssuedEnvironment,
    client: httpx.AsyncClient,
    publisher: RedisPublisher,
) -> None:
    inbox = await _inbox(client, anonymous, alpha, _subscriber())
    socket = await Socket.open(api[1], {"token": inbox.token})
    await socket.subscribe()
    await socket.until("CountsChanged")
    await _deliver(inbox, publisher, subject="before")
    before = await socket.until("NotificationReceived")
    await socket.until("CountsChanged")
    await socket.close()  # the client drops

    missed = [await _deliver(inbox, publisher, subject=f"missed {i}") for i in range(3)]
    resumed = await Socket.open(api[1], {"token": inbox.token})
    await resumed.subscribe(after=before["cursor"])
    replayed = [await resumed.next() for _ in range(3)]
    assert [event["__typename"] for event in replayed] == ["NotificationReceived"] * 3
    assert [event["notification"]["id"] for event in replayed] == missed
    assert [event["seq"] for event in replayed] == [before["seq"] + 1, before["seq"] + 2, before["seq"] + 3]
    assert (await resumed.next())["counts"] == {"total": 4, "unread": 4, "unseen": 4}
    live = await _deliver(inbox, publisher, subject="live after replay")
    after_replay = await resumed.next()
    assert after_replay["notification"]["id"] == live
    assert after_replay["seq"] == before["seq"] + 4
    await resumed.close()


async def test_no_gap_and_no_duplicate_when_notifications_arrive_during_the_replay(
    api: tuple[Any, str],
    anonymous: GraphQL,
    alpha: IssuedEnvironment,
    client: httpx.AsyncClient,
    publisher: RedisPublisher,
) -> None:
    inbox = await _inbox(client, anonymous, alpha, _subscriber())
    backlog = [await _deliver(inbox, publisher, subject=f"old {i}") for i in range(30)]

    async def keep_delivering() -> list[str]:
        return [await _deliver(inbox, publisher, subject=f"new {i}") for i in range(20)]

    socket = await Socket.open(api[1], {"token": inbox.token})
    writer = asyncio.create_task(keep_delivering())
    await socket.subscribe(after="0")
    fresh = await writer
    seen: list[str] = []
    while len(seen) < 50:
        event = await socket.next()
        if event["__typename"] == "NotificationReceived":
            seen.append(event["notification"]["id"])
    assert seen == backlog + fresh
    await socket.close()


async def test_presence_follows_websocket_connections(
    api: tuple[Any, str], anonymous: GraphQL, gql: GraphQL, alpha: IssuedEnvironment, client: httpx.AsyncClient
) -> None:
    inbox = await _inbox(client, anonymous, alpha, _subscriber())
    query = "query($id: String!) { subscriber(subscriberId: $id) { isOnline lastOnlineAt } }"
    offline = (await gql.data(query, id=inbox.subscriber_id))["subscriber"]
    assert offline == {"isOnline": False, "lastOnlineAt": None}
    sockets = [await Socket.open(api[1], {"token": inbox.token}) for _ in range(2)]
    for socket in sockets:
        await socket.acked()
    online = (await gql.data(query, id=inbox.subscriber_id))["subscriber"]
    assert online["isOnline"] is True
    connected_at = datetime.fromisoformat(online["lastOnlineAt"])
    await sockets[0].close()
    await asyncio.sleep(0.3)
    assert (await gql.data(query, id=inbox.subscriber_id))["subscriber"]["isOnline"] is True  # one still open
    await sockets[1].close()
    for _ in range(50):
        now = (await gql.data(query, id=inbox.subscriber_id))["subscriber"]
        if not now["isOnline"]:
            break
        await asyncio.sleep(0.1)
    assert now["isOnline"] is False
    assert datetime.fromisoformat(now["lastOnlineAt"]) >= connected_at


async def test_a_snooze_that_ran_out_brings_the_message_back_live(
    api: tuple[Any, str],
    anonymous: GraphQL,
    alpha: IssuedEnvironment,
    client: httpx.AsyncClient,
    publisher: RedisPublisher,
) -> None:
    from tidings.inbox.state import wake_snoozed  # noqa: PLC0415

    inbox = await _inbox(client, anonymous, alpha, _subscriber())
    message = await _deliver(inbox, publisher, subject="later")
    until = datetime.now(UTC) + timedelta(hours=2)
    snooze = "mutation($id: ID!, $until: DateTime!) { inboxSnooze(id: $id, until: $until) { isSnoozed } }"
    assert (await inbox.data(snooze, id=message, until=until.isoformat()))["inboxSnooze"]["isSnoozed"] is True
    assert (await inbox.data(COUNTS, filters=[{}]))["inboxCounts"][0]["total"] == 0
    socket = await Socket.open(api[1], {"token": inbox.token})
    await socket.subscribe()
    await socket.until("CountsChanged")
    # What the scheduler does every tick, run at a time after the snooze ended.
    assert await wake_snoozed(publisher, 100, now=until + timedelta(seconds=1)) >= 1
    woken = await socket.until("NotificationUpdated")
    assert woken["notificationId"] == message
    assert (await socket.until("CountsChanged"))["counts"]["total"] == 1
    node = (await inbox.data(FEED))["inboxNotifications"]["edges"][0]["node"]
    assert (node["id"], node["isSnoozed"], node["snoozedUntil"]) == (message, False, None)
    await socket.close()


async def test_a_websocket_may_run_only_so_many_subscriptions(
    api: tuple[Any, str], anonymous: GraphQL, alpha: IssuedEnvironment, client: httpx.AsyncClient
) -> None:
    inbox = await _inbox(client, anonymous, alpha, _subscriber())
    socket = await Socket.open(api[1], {"token": inbox.token})
    await socket.acked()
    subscribe = "subscription { inboxEvents { __typename } }"
    for number in range(6):  # TIDINGS_INBOX_MAX_SUBSCRIPTIONS_PER_CONNECTION defaults to 5
        await socket.connection.send(
            json.dumps({"id": str(number), "type": "subscribe", "payload": {"query": subscribe}})
        )
    refused = None
    for _ in range(20):
        message = json.loads(await asyncio.wait_for(socket.connection.recv(), 10))
        if message["type"] == "error":
            refused = message
            break
    assert refused is not None
    assert refused["id"] == "5"
    assert "limit" in refused["payload"][0]["message"].lower()
    await socket.close()
