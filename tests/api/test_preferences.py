"""Preferences over GraphQL: subscriber choices stored globally and per workflow, the effective view with reasons
(workflow default < global < per-workflow, readOnly, critical), bad input, and environment isolation."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import GraphQL

WORKFLOW = """mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }"""
DELETE_WORKFLOW = "mutation($id: String!) { deleteWorkflow(workflowId: $id) }"
SUBSCRIBER = "mutation($id: String!) { createSubscriber(input: {subscriberId: $id}) { subscriberId } }"
SET = """mutation($id: String!, $workflowId: String, $channels: [ChannelChoiceInput!]!) {
    setSubscriberPreferences(subscriberId: $id, workflowId: $workflowId, channels: $channels) {
        subscriberId workflowId channels { channel enabled } } }"""
GLOBAL = (
    "query($id: String!) { subscriberGlobalPreferences(subscriberId: $id) { workflowId channels { channel enabled } } }"
)
EFFECTIVE = """query($id: String!, $workflowId: String) {
    subscriberPreferences(subscriberId: $id, workflowId: $workflowId) {
        workflowId workflowName critical readOnly channels { channel enabled reason } } }"""


async def _workflow(gql: GraphQL, workflow_id: str, **fields: Any) -> None:
    await gql.data(WORKFLOW, input={"workflowId": workflow_id, "name": workflow_id.title(), **fields})


def _channels(effective: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    return {row["channel"]: (row["enabled"], row["reason"]) for row in effective["channels"]}


async def _effective(gql: GraphQL, subscriber_id: str, workflow_id: str) -> dict[str, tuple[bool, str]]:
    rows = (await gql.data(EFFECTIVE, id=subscriber_id, workflowId=workflow_id))["subscriberPreferences"]
    assert [row["workflowId"] for row in rows] == [workflow_id]
    return _channels(rows[0])


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
    rows = (await gql.data(EFFECTIVE, id="pref-3"))["subscriberPreferences"]
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
    assert "private-flow" not in {
        row["workflowId"] for row in (await other.data(EFFECTIVE, id="pref-6"))["subscriberPreferences"]
    }
    assert (await _effective(gql, "pref-6", "private-flow"))["EMAIL"] == (True, "WORKFLOW_DEFAULT")
