"""Subscribers over GraphQL: every operation, bad input with codes and field paths, and environment isolation."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.api.conftest import GraphQL

FIELDS = """subscriberId email phone firstName lastName avatar locale timezone data
    push { integrationIdentifier deviceTokens } chat { integrationIdentifier webhookUrl channelId }
    isOnline lastOnlineAt createdAt updatedAt"""
CREATE = f"mutation($input: SubscriberInput!) {{ createSubscriber(input: $input) {{ {FIELDS} }} }}"
UPSERT = (
    f"mutation($input: SubscriberInput!) {{ upsertSubscriber(input: $input) {{ created subscriber {{ {FIELDS} }} }} }}"
)
GET = f"query($id: String!) {{ subscriber(subscriberId: $id) {{ {FIELDS} }} }}"
UPDATE = f"""mutation($id: String!, $input: SubscriberFieldsInput!) {{
    updateSubscriber(subscriberId: $id, input: $input) {{ {FIELDS} }} }}"""
DELETE = "mutation($id: String!) { deleteSubscriber(subscriberId: $id) }"
BULK = "mutation($input: BulkUpsertSubscribersInput!) { bulkUpsertSubscribers(input: $input) { created updated } }"
LIST = """query($first: Int, $after: String, $search: String) {
    subscribers(first: $first, after: $after, search: $search) {
        edges { cursor node { subscriberId email } } pageInfo { hasNextPage endCursor } } }"""

FULL = {
    "subscriberId": "ada",
    "email": "ada@example.com",
    "phone": "+14155550123",
    "firstName": "Ada",
    "lastName": "Lovelace",
    "avatar": "https://example.com/ada.png",
    "locale": "en-GB",
    "timezone": "Europe/London",
    "data": {"plan": "pro", "seats": 3, "nested": {"ok": True}},
    "push": [{"integrationIdentifier": "fcm", "deviceTokens": ["token-1", "token-2"]}],
    "chat": [{"integrationIdentifier": "slack", "webhookUrl": "https://hooks.example.com/x", "channelId": None}],
}


async def _ids(gql: GraphQL, search: str | None = None, page_size: int = 100) -> list[str]:
    """Every subscriberId, walking the pages."""
    ids: list[str] = []
    after = None
    while True:
        page = (await gql.data(LIST, first=page_size, after=after, search=search))["subscribers"]
        ids += [edge["node"]["subscriberId"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]


async def test_create_then_get_returns_every_field(gql: GraphQL) -> None:
    created = (await gql.data(CREATE, input=FULL))["createSubscriber"]
    fetched = (await gql.data(GET, id="ada"))["subscriber"]
    assert created == fetched
    for key, value in FULL.items():
        assert fetched[key] == value, key
    assert fetched["isOnline"] is False
    assert fetched["lastOnlineAt"] is None


async def test_create_twice_is_already_exists(gql: GraphQL) -> None:
    await gql.data(CREATE, input={"subscriberId": "twice"})
    error = await gql.error(CREATE, input={"subscriberId": "twice", "email": "x@example.com"})
    assert (error["code"], error["field"]) == ("ALREADY_EXISTS", "input.subscriberId")
    assert (await gql.data(GET, id="twice"))["subscriber"]["email"] is None  # the first is untouched


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not-an-email"}, "input.email"),
        ({"phone": "0155 555"}, "input.phone"),
        ({"timezone": "Mars/Olympus_Mons"}, "input.timezone"),
        ({"locale": "english please"}, "input.locale"),
        ({"avatar": "javascript:alert(1)"}, "input.avatar"),
        ({"subscriberId": ""}, "input.subscriberId"),
        ({"subscriberId": "x" * 129}, "input.subscriberId"),
        ({"firstName": "x" * 257}, "input.firstName"),
        ({"data": {"$where": "1"}}, "input.data"),
        ({"data": {"blob": "x" * 20_000}}, "input.data"),
        ({"chat": [{"integrationIdentifier": "slack", "webhookUrl": "ftp://x"}]}, "input.chat.0.webhookUrl"),
        ({"push": [{"integrationIdentifier": "fcm", "deviceTokens": [""]}]}, "input.push.0.deviceTokens.0"),
    ],
)
async def test_invalid_fields_are_refused_with_their_path(gql: GraphQL, fields: dict[str, object], field: str) -> None:
    subscriber = {"subscriberId": "invalid-one", **fields}
    error = await gql.error(CREATE, input=subscriber)
    assert (error["code"], error["field"]) == ("VALIDATION", field), error
    assert (await gql.error(GET, id="invalid-one"))["code"] == "NOT_FOUND"  # nothing was written


async def test_upsert_creates_then_changes_only_what_is_sent(gql: GraphQL) -> None:
    first = await gql.data(UPSERT, input={"subscriberId": "grace", "email": "g@example.com", "locale": "en"})
    assert first["upsertSubscriber"]["created"] is True
    second = await gql.data(UPSERT, input={"subscriberId": "grace", "firstName": "Grace", "locale": None})
    result = second["upsertSubscriber"]
    assert result["created"] is False
    assert result["subscriber"]["email"] == "g@example.com"  # not sent: kept
    assert result["subscriber"]["firstName"] == "Grace"
    assert result["subscriber"]["locale"] is None  # sent as null: cleared
    assert result["subscriber"]["createdAt"] == first["upsertSubscriber"]["subscriber"]["createdAt"]


async def test_update_changes_some_fields_and_unknown_is_not_found(gql: GraphQL) -> None:
    await gql.data(CREATE, input={"subscriberId": "linus", "email": "l@example.com", "data": {"a": 1}})
    updated = await gql.data(UPDATE, id="linus", input={"data": {"b": 2}, "timezone": "America/New_York"})
    assert updated["updateSubscriber"]["email"] == "l@example.com"
    assert updated["updateSubscriber"]["data"] == {"b": 2}
    assert updated["updateSubscriber"]["timezone"] == "America/New_York"
    error = await gql.error(UPDATE, id="nobody", input={"email": "n@example.com"})
    assert (error["code"], error["field"]) == ("NOT_FOUND", "subscriberId")
    bad = await gql.error(UPDATE, id="linus", input={"timezone": "Nowhere/Land"})
    assert (bad["code"], bad["field"]) == ("VALIDATION", "input.timezone")


async def test_bulk_upsert_reports_created_and_updated(gql: GraphQL) -> None:
    first = await gql.data(BULK, input={"subscribers": [{"subscriberId": f"bulk-{i}"} for i in range(3)]})
    assert first["bulkUpsertSubscribers"] == {"created": ["bulk-0", "bulk-1", "bulk-2"], "updated": []}
    items = [{"subscriberId": "bulk-1", "email": "b1@example.com"}, {"subscriberId": "bulk-3"}]
    second = await gql.data(BULK, input={"subscribers": items})
    assert second["bulkUpsertSubscribers"] == {"created": ["bulk-3"], "updated": ["bulk-1"]}
    assert (await gql.data(GET, id="bulk-1"))["subscriber"]["email"] == "b1@example.com"


async def test_bulk_upsert_of_500_works_and_501_is_refused(gql: GraphQL) -> None:
    many = [{"subscriberId": f"many-{i:03}"} for i in range(500)]
    assert len((await gql.data(BULK, input={"subscribers": many}))["bulkUpsertSubscribers"]["created"]) == 500
    error = await gql.error(BULK, input={"subscribers": [*many, {"subscriberId": "many-500"}]})
    assert (error["code"], error["field"]) == ("VALIDATION", "input.subscribers")
    assert len(await _ids(gql, search="many-")) == 500


async def test_bulk_upsert_with_one_bad_item_writes_nothing(gql: GraphQL) -> None:
    items = [{"subscriberId": "atomic-0"}, {"subscriberId": "atomic-1"}, {"subscriberId": "atomic-2", "email": "no"}]
    error = await gql.error(BULK, input={"subscribers": items})
    assert (error["code"], error["field"]) == ("VALIDATION", "input.subscribers.2.email")
    duplicate = await gql.error(BULK, input={"subscribers": [{"subscriberId": "same"}, {"subscriberId": "same"}]})
    assert (duplicate["code"], duplicate["field"]) == ("VALIDATION", "input.subscribers.1.subscriberId")
    assert await _ids(gql, search="atomic-") == []
    assert await _ids(gql, search="same") == []


async def test_list_pages_through_everything_once(gql: GraphQL) -> None:
    await gql.data(BULK, input={"subscribers": [{"subscriberId": f"page-{i}"} for i in range(7)]})
    walked = await _ids(gql, search="page-", page_size=3)
    assert walked == [f"page-{i}" for i in range(7)]
    first = (await gql.data(LIST, first=3, search="page-"))["subscribers"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert [edge["cursor"] for edge in first["edges"]][-1] == first["pageInfo"]["endCursor"]


async def test_search_matches_id_or_email_prefix(gql: GraphQL) -> None:
    await gql.data(CREATE, input={"subscriberId": "search-me", "email": "findme@example.org"})
    assert await _ids(gql, search="search-") == ["search-me"]
    assert await _ids(gql, search="findme@") == ["search-me"]
    assert await _ids(gql, search=".*") == []  # a prefix, never a pattern


@pytest.mark.parametrize(
    ("variables", "field"),
    [({"first": 0}, "first"), ({"first": 101}, "first"), ({"after": "bm90LWEtY3Vyc29y"}, "after")],
)
async def test_bad_page_arguments(gql: GraphQL, variables: dict[str, object], field: str) -> None:
    error = await gql.error(LIST, **variables)
    assert (error["code"], error["field"]) == ("VALIDATION", field)


async def test_delete_removes_and_then_is_not_found(gql: GraphQL) -> None:
    await gql.data(CREATE, input={"subscriberId": "gone"})
    assert (await gql.data(DELETE, id="gone"))["deleteSubscriber"] is True
    assert (await gql.error(GET, id="gone"))["code"] == "NOT_FOUND"
    assert (await gql.error(DELETE, id="gone"))["code"] == "NOT_FOUND"


async def test_another_environment_can_neither_see_nor_change(gql: GraphQL, other: GraphQL) -> None:
    await gql.data(CREATE, input={"subscriberId": "private", "email": "p@example.com"})
    assert (await other.error(GET, id="private"))["code"] == "NOT_FOUND"
    assert (await other.error(UPDATE, id="private", input={"email": "x@example.com"}))["code"] == "NOT_FOUND"
    assert (await other.error(DELETE, id="private"))["code"] == "NOT_FOUND"
    assert "private" not in await _ids(other)
    # The same subscriberId in the other environment is a different subscriber.
    upserted = await other.data(UPSERT, input={"subscriberId": "private", "email": "beta@example.com"})
    assert upserted["upsertSubscriber"]["created"] is True
    assert (await gql.data(GET, id="private"))["subscriber"]["email"] == "p@example.com"


async def test_without_api_key_nothing_is_reachable(anonymous: GraphQL) -> None:
    assert (await anonymous.error(GET, id="ada"))["code"] == "UNAUTHENTICATED"
    assert (await anonymous.error(CREATE, input={"subscriberId": "intruder"}))["code"] == "UNAUTHENTICATED"


async def test_parallel_upserts_of_a_new_subscriber_all_succeed_and_one_creates(gql: GraphQL) -> None:
    for round_number in range(5):
        subscriber_id = f"racer-{round_number}"
        results = await asyncio.gather(
            *(gql(UPSERT, input={"subscriberId": subscriber_id, "firstName": f"n{i}"}) for i in range(10))
        )
        assert [body.get("errors") for body in results] == [None] * 10
        assert sum(body["data"]["upsertSubscriber"]["created"] for body in results) == 1
        assert await _ids(gql, search=subscriber_id) == [subscriber_id]


async def test_parallel_bulk_upserts_of_new_subscribers_all_succeed_and_each_is_created_once(gql: GraphQL) -> None:
    for round_number in range(5):
        ids = [f"bulk-racer-{round_number}-{index}" for index in range(20)]
        results = await asyncio.gather(
            *(gql(BULK, input={"subscribers": [{"subscriberId": one} for one in ids]}) for _ in range(8))
        )
        assert [body.get("errors") for body in results] == [None] * 8
        created = [one for body in results for one in body["data"]["bulkUpsertSubscribers"]["created"]]
        assert sorted(created) == sorted(ids)
        for body in results:
            answer = body["data"]["bulkUpsertSubscribers"]
            assert sorted(answer["created"] + answer["updated"]) == sorted(ids)


async def test_bulk_upsert_counts_before_it_validates(gql: GraphQL) -> None:
    """Over the cap, the count is the error even when an item is also invalid: items are not validated first."""
    items = [{"subscriberId": "", "email": "no"}, *({"subscriberId": f"cap-{i}"} for i in range(500))]
    error = await gql.error(BULK, input={"subscribers": items})
    assert (error["code"], error["field"]) == ("VALIDATION", "input.subscribers")
    empty = await gql.error(BULK, input={"subscribers": []})
    assert (empty["code"], empty["field"]) == ("VALIDATION", "input.subscribers")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"push": [{"integrationIdentifier": f"fcm-{i}", "deviceTokens": ["t"]} for i in range(21)]}, "input.push"),
        ({"chat": [{"integrationIdentifier": f"slack-{i}", "channelId": "c"} for i in range(21)]}, "input.chat"),
        ({"push": [{"integrationIdentifier": "fcm", "deviceTokens": ["t"] * 51}]}, "input.push.0.deviceTokens"),
        ({"push": [{"integrationIdentifier": "fcm", "deviceTokens": ["t" * 4097]}]}, "input.push.0.deviceTokens.0"),
        ({"push": [{"integrationIdentifier": "f" * 65, "deviceTokens": []}]}, "input.push.0.integrationIdentifier"),
        ({"chat": [{"integrationIdentifier": "slack", "channelId": "c" * 257}]}, "input.chat.0.channelId"),
        ({"chat": [{"integrationIdentifier": "slack", "webhookUrl": "https://x/" + "a" * 2048}]},
         "input.chat.0.webhookUrl"),
        ({"locale": "en" + "-abcdefgh" * 10}, "input.locale"),
    ],
)  # fmt: skip
async def test_endpoint_lists_and_strings_are_capped(gql: GraphQL, fields: dict[str, object], field: str) -> None:
    error = await gql.error(UPSERT, input={"subscriberId": "capped", **fields})
    assert (error["code"], error["field"]) == ("VALIDATION", field), error
    twenty = [{"integrationIdentifier": f"fcm-{i}", "deviceTokens": ["t"] * 50} for i in range(20)]
    stored = await gql.data(UPSERT, input={"subscriberId": "at-the-cap", "push": twenty})
    assert len(stored["upsertSubscriber"]["subscriber"]["push"]) == 20


async def test_search_by_email_ignores_case_and_keeps_the_address(gql: GraphQL) -> None:
    await gql.data(CREATE, input={"subscriberId": "mixed-case", "email": "Mixed.Case@Example.COM"})
    stored = (await gql.data(GET, id="mixed-case"))["subscriber"]["email"]
    assert stored.startswith("Mixed.Case@")  # as given (email-validator lowercases only the domain)
    for search in ("mixed.case@", "MIXED.CASE@EXAMPLE", "Mixed.Case@example.com"):
        assert await _ids(gql, search=search) == ["mixed-case"], search
    await gql.data(UPDATE, id="mixed-case", input={"email": "Other@Example.com"})
    assert await _ids(gql, search="mixed.case@") == []
    assert await _ids(gql, search="other@") == ["mixed-case"]
    await gql.data(BULK, input={"subscribers": [{"subscriberId": "bulk-case", "email": "Bulk.Case@example.com"}]})
    assert await _ids(gql, search="BULK.CASE") == ["bulk-case"]


async def test_search_at_the_edges_of_unicode(gql: GraphQL) -> None:
    top = "\U0010ffff"
    await gql.data(CREATE, input={"subscriberId": f"edge{top}"})
    await gql.data(CREATE, input={"subscriberId": f"edge{top}{top}x"})
    assert await _ids(gql, search=top) == []
    assert await _ids(gql, search=f"edge{top}") == [f"edge{top}", f"edge{top}{top}x"]
    assert await _ids(gql, search=f"edge{top}{top}") == [f"edge{top}{top}x"]
    assert await _ids(gql, search="\ud7ff") == []  # the next code point is a surrogate, which UTF-8 cannot hold
    too_long = await gql.error(LIST, search="s" * 257)
    assert (too_long["code"], too_long["field"]) == ("VALIDATION", "search")
    # A lone surrogate is valid JSON (`"\ud800"`) but no string MongoDB can store; sent as ASCII escapes.
    body = json.dumps({"query": LIST, "variables": {"search": "\ud800"}}).encode()
    headers = {"Authorization": f"ApiKey {gql.api_key}", "Content-Type": "application/json"}
    [error] = (await gql.client.post("/graphql", content=body, headers=headers)).json()["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("VALIDATION", "search")
    body = json.dumps({"query": CREATE, "variables": {"input": {"subscriberId": "lone\udfff"}}}).encode()
    [error] = (await gql.client.post("/graphql", content=body, headers=headers)).json()["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("VALIDATION", "input.subscriberId")


@pytest.mark.parametrize("api_key", [None, "tid_sk_not-a-real-key"])
async def test_every_operation_needs_a_valid_api_key(gql: GraphQL, api_key: str | None) -> None:
    caller = GraphQL(gql.client, api_key)
    for query, variables in (
        (GET, {"id": "ada"}),
        (LIST, {}),
        (CREATE, {"input": {"subscriberId": "intruder"}}),
        (UPSERT, {"input": {"subscriberId": "intruder"}}),
        (BULK, {"input": {"subscribers": [{"subscriberId": "intruder"}]}}),
        (UPDATE, {"id": "ada", "input": {"email": "x@example.com"}}),
        (DELETE, {"id": "ada"}),
    ):
        assert (await caller.error(query, **variables))["code"] == "UNAUTHENTICATED"
    assert await _ids(gql, search="intruder") == []


async def test_bulk_upsert_and_topics_stay_in_their_environment(gql: GraphQL, other: GraphQL) -> None:
    await gql.data(CREATE, input={"subscriberId": "shared-id", "email": "alpha@example.com"})
    result = await other.data(BULK, input={"subscribers": [{"subscriberId": "shared-id", "email": "beta@example.com"}]})
    assert result["bulkUpsertSubscribers"] == {"created": ["shared-id"], "updated": []}
    assert (await gql.data(GET, id="shared-id"))["subscriber"]["email"] == "alpha@example.com"
    assert (await other.data(GET, id="shared-id"))["subscriber"]["email"] == "beta@example.com"
    topics = "query($id: String!) { subscriberTopics(subscriberId: $id) { edges { node { key } } } }"
    await gql.data('mutation { createTopic(input: {key: "alpha-only", name: "A"}) { key } }')
    await gql.data(
        'mutation { addTopicSubscribers(key: "alpha-only", input: {subscriberIds: ["shared-id", "private"]}) '
        "{ added } }"
    )
    assert (await other.data(topics, id="shared-id"))["subscriberTopics"]["edges"] == []
    await gql.data(CREATE, input={"subscriberId": "alpha-only-subscriber"})
    assert (await other.error(topics, id="alpha-only-subscriber"))["code"] == "NOT_FOUND"
