"""Topics over GraphQL: lifecycle, memberships at the per-call limit, pagination, and environment isolation."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.conftest import GraphQL
from tidings.topics.documents import TopicSubscription

CREATE = "mutation($key: String!, $name: String!) { createTopic(input: {key: $key, name: $name}) { key name } }"
GET = "query($key: String!) { topic(key: $key) { key name createdAt updatedAt } }"
RENAME = "mutation($key: String!, $name: String!) { renameTopic(key: $key, name: $name) { key name } }"
DELETE = "mutation($key: String!) { deleteTopic(key: $key) }"
LIST = """query($first: Int, $after: String) {
    topics(first: $first, after: $after) { edges { node { key } } pageInfo { hasNextPage endCursor } } }"""
ADD = """mutation($key: String!, $ids: [String!]!) {
    addTopicSubscribers(key: $key, input: {subscriberIds: $ids}) { added alreadyMembers notFound } }"""
REMOVE = """mutation($key: String!, $ids: [String!]!) {
    removeTopicSubscribers(key: $key, input: {subscriberIds: $ids}) { removed notMembers } }"""
MEMBERS = """query($key: String!, $first: Int, $after: String) {
    topicSubscribers(key: $key, first: $first, after: $after) {
        edges { node { subscriberId } } pageInfo { hasNextPage endCursor } } }"""
OF_SUBSCRIBER = """query($id: String!) {
    subscriberTopics(subscriberId: $id, first: 100) { edges { node { key name } } } }"""
BULK = "mutation($input: BulkUpsertSubscribersInput!) { bulkUpsertSubscribers(input: $input) { created } }"
DELETE_SUBSCRIBER = "mutation($id: String!) { deleteSubscriber(subscriberId: $id) }"


async def _subscribers(gql: GraphQL, prefix: str, count: int) -> list[str]:
    ids = [f"{prefix}-{i:04}" for i in range(count)]
    for start in range(0, count, 500):
        await gql.data(BULK, input={"subscribers": [{"subscriberId": one} for one in ids[start : start + 500]]})
    return ids


async def _members(gql: GraphQL, key: str, page_size: int = 100) -> list[str]:
    found: list[str] = []
    after = None
    while True:
        page = (await gql.data(MEMBERS, key=key, first=page_size, after=after))["topicSubscribers"]
        found += [edge["node"]["subscriberId"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def test_create_get_rename_delete(gql: GraphQL) -> None:
    assert (await gql.data(CREATE, key="release-notes", name="Release notes"))["createTopic"] == {
        "key": "release-notes",
        "name": "Release notes",
    }
    renamed = (await gql.data(RENAME, key="release-notes", name="What's new"))["renameTopic"]
    assert renamed == {"key": "release-notes", "name": "What's new"}
    assert (await gql.data(GET, key="release-notes"))["topic"]["name"] == "What's new"
    assert (await gql.data(DELETE, key="release-notes"))["deleteTopic"] is True
    assert (await gql.error(GET, key="release-notes"))["code"] == "NOT_FOUND"
    assert (await gql.error(DELETE, key="release-notes"))["code"] == "NOT_FOUND"
    assert (await gql.error(RENAME, key="release-notes", name="x"))["code"] == "NOT_FOUND"


async def test_bad_topic_input(gql: GraphQL) -> None:
    await gql.data(CREATE, key="dup", name="Dup")
    duplicate = await gql.error(CREATE, key="dup", name="Again")
    assert (duplicate["code"], duplicate["field"]) == ("ALREADY_EXISTS", "input.key")
    bad_key = await gql.error(CREATE, key="no spaces please", name="x")
    assert (bad_key["code"], bad_key["field"]) == ("VALIDATION", "input.key")
    blank = await gql.error(CREATE, key="blank", name="  ")
    assert (blank["code"], blank["field"]) == ("VALIDATION", "input.name")


async def test_add_reports_added_already_and_unknown(gql: GraphQL) -> None:
    await gql.data(CREATE, key="mixed", name="Mixed")
    ids = await _subscribers(gql, "mixed", 3)
    first = (await gql.data(ADD, key="mixed", ids=[ids[0], ids[1], "ghost", ids[0]]))["addTopicSubscribers"]
    assert first == {"added": [ids[0], ids[1]], "alreadyMembers": [], "notFound": ["ghost"]}
    second = (await gql.data(ADD, key="mixed", ids=[ids[1], ids[2]]))["addTopicSubscribers"]
    assert second == {"added": [ids[2]], "alreadyMembers": [ids[1]], "notFound": []}
    assert await _members(gql, "mixed") == ids
    unknown_topic = await gql.error(ADD, key="no-such-topic", ids=[ids[0]])
    assert (unknown_topic["code"], unknown_topic["field"]) == ("NOT_FOUND", "key")


async def test_a_thousand_per_call_pages_back_in_order(gql: GraphQL) -> None:
    await gql.data(CREATE, key="big", name="Big")
    ids = await _subscribers(gql, "big", 1001)
    added = (await gql.data(ADD, key="big", ids=ids[:1000]))["addTopicSubscribers"]
    assert len(added["added"]) == 1000
    too_many = await gql.error(ADD, key="big", ids=ids)
    assert (too_many["code"], too_many["field"]) == ("VALIDATION", "input.subscriberIds")
    assert await _members(gql, "big", page_size=100) == ids[:1000]


async def test_remove_and_subscriber_topics(gql: GraphQL) -> None:
    ids = await _subscribers(gql, "member", 2)
    for key in ("news", "alerts"):
        await gql.data(CREATE, key=key, name=key.title())
        await gql.data(ADD, key=key, ids=ids)
    topics = (await gql.data(OF_SUBSCRIBER, id=ids[0]))["subscriberTopics"]["edges"]
    assert [edge["node"]["key"] for edge in topics] == ["news", "alerts"]
    removed = (await gql.data(REMOVE, key="news", ids=[ids[0], "ghost"]))["removeTopicSubscribers"]
    assert removed == {"removed": [ids[0]], "notMembers": ["ghost"]}
    assert await _members(gql, "news") == [ids[1]]
    topics = (await gql.data(OF_SUBSCRIBER, id=ids[0]))["subscriberTopics"]["edges"]
    assert [edge["node"]["key"] for edge in topics] == ["alerts"]
    assert (await gql.error(OF_SUBSCRIBER, id="ghost"))["code"] == "NOT_FOUND"


async def test_deleting_a_subscriber_or_topic_removes_memberships(gql: GraphQL) -> None:
    ids = await _subscribers(gql, "cascade", 2)
    await gql.data(CREATE, key="cascade", name="Cascade")
    await gql.data(ADD, key="cascade", ids=ids)
    await gql.data(DELETE_SUBSCRIBER, id=ids[0])
    assert await _members(gql, "cascade") == [ids[1]]
    await gql.data(DELETE, key="cascade")
    await gql.data(CREATE, key="cascade", name="Again")
    assert await _members(gql, "cascade") == []  # a new topic with that key starts empty


async def test_list_topics_pages(gql: GraphQL) -> None:
    for i in range(5):
        await gql.data(CREATE, key=f"listed-{i}", name=f"Listed {i}")
    keys: list[str] = []
    after = None
    while True:
        page = (await gql.data(LIST, first=2, after=after))["topics"]
        keys += [edge["node"]["key"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [key for key in keys if key.startswith("listed-")] == [f"listed-{i}" for i in range(5)]
    assert len(keys) == len(set(keys))


async def test_another_environment_can_neither_see_nor_change(gql: GraphQL, other: GraphQL) -> None:
    ids = await _subscribers(gql, "iso", 1)
    await gql.data(CREATE, key="isolated", name="Isolated")
    await gql.data(ADD, key="isolated", ids=ids)
    assert (await other.error(GET, key="isolated"))["code"] == "NOT_FOUND"
    assert (await other.error(MEMBERS, key="isolated"))["code"] == "NOT_FOUND"
    assert (await other.error(ADD, key="isolated", ids=ids))["code"] == "NOT_FOUND"
    assert (await other.error(DELETE, key="isolated"))["code"] == "NOT_FOUND"
    # Beta's own topic cannot take alpha's subscribers: they do not exist in beta.
    await other.data(CREATE, key="isolated", name="Beta's")
    assert (await other.data(ADD, key="isolated", ids=ids))["addTopicSubscribers"]["notFound"] == ids
    assert await _members(gql, "isolated") == ids


async def test_each_subscriber_id_is_checked(gql: GraphQL) -> None:
    await gql.data(CREATE, key="checked", name="Checked")
    for ids, field in (
        ([""], "input.subscriberIds.0"),
        (["fine", "x" * 129], "input.subscriberIds.1"),
        (["fine", "ok", "tab\there"], "input.subscriberIds.2"),
    ):
        for query in (ADD, REMOVE):
            error = await gql.error(query, key="checked", ids=ids)
            assert (error["code"], error["field"]) == ("VALIDATION", field), (query, error)
    assert await _members(gql, "checked") == []


@pytest.mark.parametrize("api_key", [None, "tid_sk_not-a-real-key"])
async def test_every_operation_needs_a_valid_api_key(gql: GraphQL, api_key: str | None) -> None:
    await gql.data(CREATE, key="guarded", name="Guarded")
    caller = GraphQL(gql.client, api_key)
    for query, variables in (
        (CREATE, {"key": "intruder", "name": "x"}),
        (GET, {"key": "guarded"}),
        (LIST, {}),
        (RENAME, {"key": "guarded", "name": "taken"}),
        (DELETE, {"key": "guarded"}),
        (ADD, {"key": "guarded", "ids": ["a"]}),
        (REMOVE, {"key": "guarded", "ids": ["a"]}),
        (MEMBERS, {"key": "guarded"}),
        (OF_SUBSCRIBER, {"id": "a"}),
    ):
        assert (await caller.error(query, **variables))["code"] == "UNAUTHENTICATED", query
    assert (await gql.data(GET, key="guarded"))["topic"]["name"] == "Guarded"
    assert (await gql.error(GET, key="intruder"))["code"] == "NOT_FOUND"
    await gql.data(DELETE, key="guarded")


async def test_another_environment_can_neither_rename_remove_nor_list(gql: GraphQL, other: GraphQL) -> None:
    ids = await _subscribers(gql, "iso2", 2)
    await gql.data(CREATE, key="iso2-topic", name="Alpha's")
    await gql.data(ADD, key="iso2-topic", ids=ids)
    assert (await other.error(RENAME, key="iso2-topic", name="Stolen"))["code"] == "NOT_FOUND"
    assert (await other.error(REMOVE, key="iso2-topic", ids=ids))["code"] == "NOT_FOUND"
    assert (await other.error(OF_SUBSCRIBER, id=ids[0]))["code"] == "NOT_FOUND"
    listed: list[str] = []
    after = None
    while True:
        page = (await other.data(LIST, first=100, after=after))["topics"]
        listed += [edge["node"]["key"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert "iso2-topic" not in listed
    assert (await gql.data(GET, key="iso2-topic"))["topic"]["name"] == "Alpha's"
    assert await _members(gql, "iso2-topic") == ids
    # Beta's subscriber with the same id sees none of alpha's topics.
    await other.data(BULK, input={"subscribers": [{"subscriberId": ids[0]}]})
    assert (await other.data(OF_SUBSCRIBER, id=ids[0]))["subscriberTopics"]["edges"] == []


async def _memberships(**scope: str) -> list[dict[str, object]]:
    cursor = TopicSubscription.get_pymongo_collection().find(scope)
    return [row async for row in cursor]


async def test_adding_while_the_topic_is_deleted_leaves_no_orphan(gql: GraphQL) -> None:
    ids = await _subscribers(gql, "orphan-t", 200)
    for round_number in range(8):
        key = f"orphan-topic-{round_number}"
        await gql.data(CREATE, key=key, name="Doomed")
        added, deleted = await asyncio.gather(gql(ADD, key=key, ids=ids), gql(DELETE, key=key))
        assert deleted["data"]["deleteTopic"] is True
        if added.get("errors"):
            assert added["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert await _memberships(topic_key=key) == []
        # A topic re-created with the key starts empty.
        await gql.data(CREATE, key=key, name="Again")
        assert await _members(gql, key) == []


async def test_adding_while_a_subscriber_is_deleted_leaves_no_orphan(gql: GraphQL) -> None:
    await gql.data(CREATE, key="orphan-members", name="Members")
    for round_number in range(5):
        ids = await _subscribers(gql, f"orphan-s{round_number}", 50)
        await asyncio.gather(
            gql(ADD, key="orphan-members", ids=ids), *(gql(DELETE_SUBSCRIBER, id=one) for one in ids[::5])
        )
        for gone in ids[::5]:
            assert await _memberships(subscriber_id=gone) == []
            await gql.data(BULK, input={"subscribers": [{"subscriberId": gone}]})
            assert (await gql.data(OF_SUBSCRIBER, id=gone))["subscriberTopics"]["edges"] == []
