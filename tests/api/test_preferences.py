"""Preferences over GraphQL: subscriber choices stored globally and per workflow, the effective view with reasons
(workflow default < global < per-workflow, readOnly, critical), bad input, and environment isolation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.api.conftest import GraphQL
from tidings.preferences.documents import SubscriberPreference

WORKFLOW = """mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }"""
DELETE_WORKFLOW = "mutation($id: String!) { deleteWorkflow(workflowId: $id) }"
DELETE_SUBSCRIBER = "mutation($id: String!) { deleteSubscriber(subscriberId: $id) }"
SUBSCRIBER = "mutation($id: String!) { createSubscriber(input: {subscriberId: $id}) { subscriberId } }"
SET = """mutation($id: String!, $workflowId: String, $channels: [ChannelChoiceInput!]!) {
    setSubscriberPreferences(subscriberId: $id, workflowId: $workflowId, channels: $channels) {
        subscriberId workflowId channels { channel enabled } } }"""
GLOBAL = (
    "query($id: String!) { subscriberGlobalPreferences(subscriberId: $id) { workflowId channels { channel enabled } } }"
)
PAUSE = """mutation($id: String!, $workflowId: String, $enabled: Boolean) {
    setSubscriberPreferences(subscriberId: $id, workflowId: $workflowId, channels: [], enabled: $enabled) {
        enabled channels { channel enabled } } }"""
GLOBAL_ENABLED = "query($id: String!) { subscriberGlobalPreferences(subscriberId: $id) { enabled } }"
EFFECTIVE = """query($id: String!, $workflowId: String, $first: Int, $after: String) {
    subscriberPreferences(subscriberId: $id, workflowId: $workflowId, first: $first, after: $after) {
        edges { cursor node { workflowId workflowName critical readOnly channels { channel enabled reason } } }
        pageInfo { hasNextPage endCursor } } }"""


async def _workflow(gql: GraphQL, workflow_id: str, **fields: Any) -> None:
    await gql.data(WORKFLOW, input={"workflowId": workflow_id, "name": workflow_id.title(), **fields})


def _channels(effective: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    return {row["channel"]: (row["enabled"], row["reason"]) for row in effective["channels"]}


async def _all(gql: GraphQL, subscriber_id: str, page_size: int = 100) -> list[dict[str, Any]]:
    """Every workflow's effective preferences, walking the pages."""
    rows: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await gql.data(EFFECTIVE, id=subscriber_id, first=page_size, after=after))["subscriberPreferences"]
        rows += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return rows
        after = page["pageInfo"]["endCursor"]


async def _effective(gql: GraphQL, subscriber_id: str, workflow_id: str) -> dict[str, tuple[bool, str]]:
    page = (await gql.data(EFFECTIVE, id=subscriber_id, workflowId=workflow_id))["subscriberPreferences"]
    assert [edge["node"]["workflowId"] for edge in page["edges"]] == [workflow_id]
    assert page["pageInfo"]["hasNextPage"] is False
    return _channels(page["edges"][0]["node"])


async def test_the_merge_order_over_the_api(gql: GraphQL) -> None:
    await gql.data(SUBSCRIBER, id="pref-1")
    await _workflow(gql, "digest", preferences={"channels": [{"channel": "SMS", "enabled": False}]})
    before = await _effective(gql, "pref-1", "digest")
    assert before["EMAIL"] == (True, "WORKFLOW_DEFAULT")
    assert before["SMS"] == (False, "WORKFLOW_DEFAULT")

    await gql.data(
        SET, id="pref-1", channels=[{"channel": "EMAIL", "enabled": False}, {"channel": "SMS", "enabled": True}]
    )
    after_global = await _effective(gql, "pref-1", "digest")
    assert after_global["EMAIL"] == (False, "SUBSCRIBER_GLOBAL")
    assert after_global["SMS"] == (True, "SUBSCRIBER_GLOBAL")

    await gql.data(SET, id="pref-1", workflowId="digest", channels=[{"channel": "EMAIL", "enabled": True}])
    after_workflow = await _effective(gql, "pref-1", "digest")
    assert after_workflow["EMAIL"] == (True, "SUBSCRIBER_WORKFLOW")
    assert after_workflow["SMS"] == (True, "SUBSCRIBER_GLOBAL")

    # Forgetting the per-workflow choice falls back to the global one.
    await gql.data(SET, id="pref-1", workflowId="digest", channels=[{"channel": "EMAIL", "enabled": None}])
    assert (await _effective(gql, "pref-1", "digest"))["EMAIL"] == (False, "SUBSCRIBER_GLOBAL")
    stored = (await gql.data(GLOBAL, id="pref-1"))["subscriberGlobalPreferences"]
    assert stored["workflowId"] is None
    assert {row["channel"]: row["enabled"] for row in stored["channels"]} == {"EMAIL": False, "SMS": True}


async def test_read_only_and_critical_workflows_override_subscribers(gql: GraphQL) -> None:
    await gql.data(SUBSCRIBER, id="pref-2")
    await _workflow(gql, "security-alert", critical=True)
    await _workflow(
        gql, "legal-notice", preferences={"readOnly": True, "channels": [{"channel": "PUSH", "enabled": False}]}
    )
    off = [{"channel": channel, "enabled": False} for channel in ("IN_APP", "EMAIL", "SMS", "PUSH", "CHAT")]
    await gql.data(SET, id="pref-2", channels=off)
    await gql.data(SET, id="pref-2", workflowId="security-alert", channels=off)
    critical = await _effective(gql, "pref-2", "security-alert")
    assert set(critical.values()) == {(True, "CRITICAL")}
    read_only = await _effective(gql, "pref-2", "legal-notice")
    assert read_only["EMAIL"] == (True, "READ_ONLY")
    assert read_only["PUSH"] == (False, "READ_ONLY")


async def test_every_workflow_is_listed_with_its_flags(gql: GraphQL) -> None:
    await gql.data(SUBSCRIBER, id="pref-3")
    await _workflow(gql, "listed-a")
    await _workflow(gql, "listed-b", critical=True)
    rows = await _all(gql, "pref-3")
    by_id = {row["workflowId"]: row for row in rows}
    assert {"listed-a", "listed-b"} <= set(by_id)
    assert by_id["listed-b"]["critical"] is True
    assert by_id["listed-a"]["workflowName"] == "Listed-A"
    assert all(len(row["channels"]) == 5 for row in rows)


async def test_deleting_a_workflow_forgets_the_choices_for_it(gql: GraphQL) -> None:
    await gql.data(SUBSCRIBER, id="pref-4")
    await _workflow(gql, "recreated")
    await gql.data(SET, id="pref-4", workflowId="recreated", channels=[{"channel": "CHAT", "enabled": False}])
    await gql.data(DELETE_WORKFLOW, id="recreated")
    await _workflow(gql, "recreated")
    assert (await _effective(gql, "pref-4", "recreated"))["CHAT"] == (True, "WORKFLOW_DEFAULT")


async def test_unknown_subscriber_or_workflow(gql: GraphQL) -> None:
    await gql.data(SUBSCRIBER, id="pref-5")
    choice = [{"channel": "EMAIL", "enabled": False}]
    nobody = await gql.error(SET, id="nobody", channels=choice)
    assert (nobody["code"], nobody["field"]) == ("NOT_FOUND", "subscriberId")
    no_workflow = await gql.error(SET, id="pref-5", workflowId="nope", channels=choice)
    assert (no_workflow["code"], no_workflow["field"]) == ("NOT_FOUND", "workflowId")
    assert (await gql.error(EFFECTIVE, id="nobody"))["code"] == "NOT_FOUND"
    assert (await gql.error(GLOBAL, id="nobody"))["code"] == "NOT_FOUND"
    bad = await gql(SET, id="pref-5", channels=[{"channel": "FAX", "enabled": True}])
    assert bad["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION"


async def test_another_environment_can_neither_see_nor_change(gql: GraphQL, other: GraphQL) -> None:
    await gql.data(SUBSCRIBER, id="pref-6")
    await _workflow(gql, "private-flow")
    choice = [{"channel": "EMAIL", "enabled": False}]
    assert (await other.error(SET, id="pref-6", channels=choice))["code"] == "NOT_FOUND"
    assert (await other.error(EFFECTIVE, id="pref-6"))["code"] == "NOT_FOUND"
    await other.data(SUBSCRIBER, id="pref-6")
    assert (await other.error(SET, id="pref-6", workflowId="private-flow", channels=choice))["code"] == "NOT_FOUND"
    assert "private-flow" not in {row["workflowId"] for row in await _all(other, "pref-6")}
    assert (await _effective(gql, "pref-6", "private-flow"))["EMAIL"] == (True, "WORKFLOW_DEFAULT")


async def test_a_critical_workflow_keeps_what_it_enables_but_a_subscriber_may_switch_on_what_it_disables(
    gql: GraphQL,
) -> None:
    await gql.data(SUBSCRIBER, id="pref-7")
    await _workflow(gql, "outage", critical=True, preferences={"channels": [{"channel": "SMS", "enabled": False}]})
    assert (await _effective(gql, "pref-7", "outage"))["SMS"] == (False, "WORKFLOW_DEFAULT")
    choices = [{"channel": "SMS", "enabled": True}, {"channel": "EMAIL", "enabled": False}]
    await gql.data(SET, id="pref-7", workflowId="outage", channels=choices)
    effective = await _effective(gql, "pref-7", "outage")
    assert effective["SMS"] == (True, "SUBSCRIBER_WORKFLOW")
    assert effective["EMAIL"] == (True, "CRITICAL")


async def test_workflows_page_in_creation_order(gql: GraphQL) -> None:
    await gql.data(SUBSCRIBER, id="pref-8")
    for index in range(5):
        await _workflow(gql, f"paged-{index}")
    await gql.data(SET, id="pref-8", workflowId="paged-3", channels=[{"channel": "PUSH", "enabled": False}])
    walked = [row for row in await _all(gql, "pref-8", page_size=2) if row["workflowId"].startswith("paged-")]
    assert [row["workflowId"] for row in walked] == [f"paged-{index}" for index in range(5)]
    assert _channels(walked[3])["PUSH"] == (False, "SUBSCRIBER_WORKFLOW")
    first = (await gql.data(EFFECTIVE, id="pref-8", first=2))["subscriberPreferences"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["edges"][-1]["cursor"] == first["pageInfo"]["endCursor"]
    # One workflow is a page of one; after its own cursor, an empty page.
    one = (await gql.data(EFFECTIVE, id="pref-8", workflowId="paged-2"))["subscriberPreferences"]
    after_it = await gql.data(EFFECTIVE, id="pref-8", workflowId="paged-2", after=one["pageInfo"]["endCursor"])
    assert after_it["subscriberPreferences"]["edges"] == []
    for variables, field in (({"first": 0}, "first"), ({"first": 101}, "first"), ({"after": "bm9wZQ"}, "after")):
        error = await gql.error(EFFECTIVE, id="pref-8", **variables)
        assert (error["code"], error["field"]) == ("VALIDATION", field)


@pytest.mark.parametrize("api_key", [None, "tid_sk_not-a-real-key"])
async def test_every_operation_needs_a_valid_api_key(gql: GraphQL, api_key: str | None) -> None:
    await gql.data(SUBSCRIBER, id=f"pref-key-{api_key is None}")
    caller = GraphQL(gql.client, api_key)
    subscriber_id = f"pref-key-{api_key is None}"
    for query, variables in (
        (SET, {"id": subscriber_id, "channels": [{"channel": "EMAIL", "enabled": False}]}),
        (GLOBAL, {"id": subscriber_id}),
        (EFFECTIVE, {"id": subscriber_id}),
    ):
        assert (await caller.error(query, **variables))["code"] == "UNAUTHENTICATED"
    assert (await gql.data(GLOBAL, id=subscriber_id))["subscriberGlobalPreferences"]["channels"] == []


async def test_global_choices_stay_in_their_environment(gql: GraphQL, other: GraphQL) -> None:
    await gql.data(SUBSCRIBER, id="pref-9")
    await gql.data(SET, id="pref-9", channels=[{"channel": "SMS", "enabled": False}])
    assert (await other.error(GLOBAL, id="pref-9"))["code"] == "NOT_FOUND"
    await other.data(SUBSCRIBER, id="pref-9")
    assert (await other.data(GLOBAL, id="pref-9"))["subscriberGlobalPreferences"]["channels"] == []
    await other.data(SET, id="pref-9", channels=[{"channel": "SMS", "enabled": True}])
    mine = (await gql.data(GLOBAL, id="pref-9"))["subscriberGlobalPreferences"]["channels"]
    assert mine == [{"channel": "SMS", "enabled": False}]


async def test_parallel_choices_for_a_new_row_all_succeed(gql: GraphQL) -> None:
    await gql.data(SUBSCRIBER, id="pref-10")
    await _workflow(gql, "parallel")
    for workflow_id in (None, "parallel"):
        results = await asyncio.gather(
            *(
                gql(SET, id="pref-10", workflowId=workflow_id, channels=[{"channel": channel, "enabled": False}])
                for channel in ("IN_APP", "EMAIL", "SMS", "PUSH", "CHAT") * 2
            )
        )
        assert [body.get("errors") for body in results] == [None] * 10
        rows = SubscriberPreference.find({"subscriber_id": "pref-10", "workflow_id": workflow_id})
        assert len(await rows.to_list()) == 1
    assert set((await _effective(gql, "pref-10", "parallel")).values()) == {(False, "SUBSCRIBER_WORKFLOW")}


async def test_choices_made_while_the_subscriber_is_deleted_leave_no_orphan(gql: GraphQL) -> None:
    await _workflow(gql, "orphan-flow")
    for round_number in range(10):
        subscriber_id = f"pref-orphan-{round_number}"
        await gql.data(SUBSCRIBER, id=subscriber_id)
        choice = [{"channel": "EMAIL", "enabled": False}]
        await asyncio.gather(
            gql(SET, id=subscriber_id, channels=choice),
            gql(SET, id=subscriber_id, workflowId="orphan-flow", channels=choice),
            gql(DELETE_SUBSCRIBER, id=subscriber_id),
        )
        assert await SubscriberPreference.find({"subscriber_id": subscriber_id}).to_list() == []
        # Re-created with the same id, the subscriber starts with no choices.
        await gql.data(SUBSCRIBER, id=subscriber_id)
        assert (await gql.data(GLOBAL, id=subscriber_id))["subscriberGlobalPreferences"]["channels"] == []


async def test_turning_a_workflow_or_everything_off_keeps_the_channel_choices(gql: GraphQL) -> None:
    await gql.data(SUBSCRIBER, id="pref-pause")
    await _workflow(gql, "pausable")
    email_off = [{"channel": "EMAIL", "enabled": False}]
    await gql.data(SET, id="pref-pause", workflowId="pausable", channels=email_off)
    paused = (await gql.data(PAUSE, id="pref-pause", workflowId="pausable", enabled=False))["setSubscriberPreferences"]
    assert (paused["enabled"], paused["channels"]) == (False, email_off)
    assert set((await _effective(gql, "pref-pause", "pausable")).values()) == {(False, "SUBSCRIBER_WORKFLOW")}

    await gql.data(PAUSE, id="pref-pause", workflowId="pausable", enabled=True)
    resumed = await _effective(gql, "pref-pause", "pausable")
    assert resumed["EMAIL"] == (False, "SUBSCRIBER_WORKFLOW")
    assert resumed["IN_APP"] == (True, "WORKFLOW_DEFAULT")

    # Off globally is Novu's switch for everything: the workflow's own choices are set aside too.
    await gql.data(SET, id="pref-pause", workflowId="pausable", channels=[{"channel": "PUSH", "enabled": True}])
    await gql.data(PAUSE, id="pref-pause", workflowId=None, enabled=False)
    assert set((await _effective(gql, "pref-pause", "pausable")).values()) == {(False, "SUBSCRIBER_GLOBAL")}
    stored = await gql.data(GLOBAL_ENABLED, id="pref-pause")
    assert stored["subscriberGlobalPreferences"]["enabled"] is False

    # Turning a channel on without `enabled` turns the row back on, or the choice would do nothing.
    await gql.data(SET, id="pref-pause", workflowId=None, channels=[{"channel": "SMS", "enabled": True}])
    assert (await gql.data(GLOBAL_ENABLED, id="pref-pause"))["subscriberGlobalPreferences"]["enabled"] is True
    assert (await _effective(gql, "pref-pause", "pausable"))["PUSH"] == (True, "SUBSCRIBER_WORKFLOW")
