"""Tenant isolation, swept over the whole schema: environment beta (its API key, and tokens of its subscribers) and
a neighbouring subscriber of alpha call every root field on alpha's objects; every call is refused (NOT_FOUND,
UNAUTHENTICATED, FORBIDDEN) or answers only about the caller's own data, alpha's marker strings never appear in any
answer, and alpha's records read back exactly as before.

The list of root fields comes from the schema at test time: an operation added without a case here fails
`test_every_root_field_has_a_case`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.inbox_client import Socket
from tests.security.conftest import Caller, Guarded, admin, eventually, session_token, subscriber_hash
from tidings.graphql.schema import build_schema

# In alpha's configuration (names, descriptions, URLs): never in an answer to beta or to beta's subscribers.
MARK = f"alpha-config-{uuid.uuid4().hex[:10]}"
# In one alpha subscriber's own data and messages: never in an answer to anyone else, in alpha or beta.
PRIVATE = f"alpha-private-{uuid.uuid4().hex[:10]}"
SUFFIX = uuid.uuid4().hex[:6]
SUB = f"victim-{SUFFIX}"
NEIGHBOUR = f"neighbour-{SUFFIX}"
TOPIC = f"victim-topic-{SUFFIX}"
INTEG = f"victim-integ-{SUFFIX}"
WF = f"victim-wf-{SUFFIX}"
TX = f"victim-tx-{SUFFIX}"
BETA_WF = f"beta-wf-{SUFFIX}"

SUBSCRIBER_FIELDS = "subscriberId email firstName lastName data createdAt updatedAt"


@dataclass
class World:
    """Alpha's objects (ids the attacks aim at) and the callers."""

    ids: dict[str, str] = field(default_factory=dict)
    callers: dict[str, Caller] = field(default_factory=dict)
    snapshot: str = ""
    inbox_snapshot: str = ""


SNAPSHOT = f"""query($sub: String!, $topic: String!, $integ: String!, $wf: String!, $hook: ID!, $notif: ID!) {{
  currentEnvironment {{ id name applicationIdentifier inboxHmacRequired apiKeys {{ hint createdAt expiresAt }} }}
  subscriber(subscriberId: $sub) {{ {SUBSCRIBER_FIELDS} }}
  subscribers {{ edges {{ node {{ subscriberId email }} }} }}
  topic(key: $topic) {{ key name createdAt updatedAt }}
  topics {{ edges {{ node {{ key name }} }} }}
  topicSubscribers(key: $topic) {{ edges {{ node {{ subscriberId }} }} }}
  subscriberTopics(subscriberId: $sub) {{ edges {{ node {{ key }} }} }}
  integration(identifier: $integ) {{ identifier name config credentialKeys active primary priority updatedAt }}
  integrations {{ edges {{ node {{ identifier }} }} }}
  workflow(workflowId: $wf) {{ workflowId name description tags updatedAt
    steps {{ ... on InAppStep {{ stepId subject body }} }} }}
  workflows {{ edges {{ node {{ workflowId }} }} }}
  subscriberGlobalPreferences(subscriberId: $sub) {{ channels {{ channel enabled }} }}
  subscriberPreferences(subscriberId: $sub) {{
    edges {{ node {{ workflowId channels {{ channel enabled reason }} }} }} }}
  notification(id: $notif) {{ id transactionId status jobs {{ id status }} }}
  webhookEndpoint(id: $hook) {{ id url description eventTypes active updatedAt }}
  webhookEndpoints {{ edges {{ node {{ id }} }} }}
  webhookDeliveries(endpointId: $hook) {{ edges {{ node {{ id eventType }} }} }}
}}"""
INBOX_SNAPSHOT = """{ inboxNotifications(filter: {archived: null, snoozed: null}) { edges { node {
    id subject body isRead isSeen isArchived isSnoozed
    primaryAction { label isCompleted } secondaryAction { label isCompleted } } } }
  inboxCounts(filters: [{}]) { total unread unseen }
  inboxPreferences { edges { node { workflowId channels { channel enabled reason } } } } }"""


async def _build_alpha(guarded: Guarded, world: World) -> None:
    client = guarded.client
    alpha = admin(client, guarded.alpha.api_key)
    await alpha.data("mutation { setInboxHmacRequired(required: true) { inboxHmacRequired } }")
    for subscriber_id in (SUB, NEIGHBOUR):
        await alpha.data(
            "mutation($input: SubscriberInput!) { createSubscriber(input: $input) { subscriberId } }",
            input={
                "subscriberId": subscriber_id,
                "email": f"{PRIVATE}@example.com",
                "firstName": PRIVATE,
                "data": {"note": PRIVATE},
            },
        )
    await alpha.data(
        "mutation($key: String!, $name: String!) { createTopic(input: {key: $key, name: $name}) { key } }",
        key=TOPIC,
        name=MARK,
    )
    await alpha.data(
        "mutation($key: String!, $ids: [String!]!) { addTopicSubscribers(key: $key, input: {subscriberIds: $ids}) "
        "{ added } }",
        key=TOPIC,
        ids=[SUB],
    )
    await alpha.data(
        "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { identifier } }",
        input={
            "providerId": "webhook",
            "identifier": INTEG,
            "name": MARK,
            "config": {"url": f"https://chat.example.com/{MARK}"},
            "credentials": {"signingSecret": MARK},
        },
    )
    await alpha.data(
        "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }",
        input={
            "workflowId": WF,
            "name": MARK,
            "description": MARK,
            "steps": [
                {
                    "inApp": {
                        "subject": "For {{ payload.note }}",
                        "body": "Hello {{ payload.note }}",
                        "primaryAction": {"label": "Open", "url": "https://example.com/open"},
                        "secondaryAction": {"label": "Later"},
                    }
                }
            ],
        },
    )
    hook = await alpha.data(
        "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } } }",
        input={"url": f"https://hooks.example.com/{MARK}", "eventTypes": ["workflow.failed"], "description": MARK},
    )
    world.ids["hook"] = hook["createWebhookEndpoint"]["endpoint"]["id"]
    delivery = await alpha.data("mutation($id: ID!) { sendTestWebhook(endpointId: $id) { id } }", id=world.ids["hook"])
    world.ids["delivery"] = delivery["sendTestWebhook"]["id"]
    await alpha.data(
        "mutation($id: String!) { setSubscriberPreferences(subscriberId: $id, channels: [{channel: EMAIL, "
        "enabled: false}]) { subscriberId } }",
        id=SUB,
    )
    await alpha.data(
        "mutation($id: String!, $wf: String!) { setSubscriberPreferences(subscriberId: $id, workflowId: $wf, "
        "channels: [{channel: SMS, enabled: false}]) { subscriberId } }",
        id=SUB,
        wf=WF,
    )
    probe = await alpha.data("mutation { probeWorkers { id } }")
    world.ids["probe"] = probe["probeWorkers"]["id"]
    await alpha.data(
        "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId } }",
        input={"workflowId": WF, "to": [{"subscriberId": SUB}], "payload": {"note": PRIVATE}, "transactionId": TX},
    )
    mine = Caller(client, f"Bearer {await session_token(client, guarded.alpha, SUB)}")

    async def message() -> str | None:
        edges = (await mine.data("{ inboxNotifications { edges { node { id } } } }"))["inboxNotifications"]["edges"]
        return str(edges[0]["node"]["id"]) if edges else None

    world.ids["message"] = await eventually(message, "alpha's in-app message")

    async def completed() -> str | None:
        found = await alpha.data(
            "query($t: String!) { notifications(where: {transactionId: $t}) { edges { node { id status } } } }", t=TX
        )
        nodes = [edge["node"] for edge in found["notifications"]["edges"]]
        return str(nodes[0]["id"]) if nodes and nodes[0]["status"] == "COMPLETED" else None

    world.ids["notification"] = await eventually(completed, "alpha's notification to complete")
    world.callers["alpha"] = alpha
    world.callers["alpha_sub"] = mine


async def _build_beta(guarded: Guarded, world: World) -> None:
    """Beta has a subscriber with alpha's subscriber id (its "twin") and a message of its own."""
    client = guarded.client
    beta = admin(client, guarded.beta.api_key)
    await beta.data(
        "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }",
        input={"workflowId": BETA_WF, "name": "beta's", "steps": [{"inApp": {"body": "beta says hi"}}]},
    )
    twin = Caller(client, f"Bearer {await session_token(client, guarded.beta, SUB)}")  # creates the twin
    await beta.data(
        "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId } }",
        input={"workflowId": BETA_WF, "to": [{"subscriberId": SUB}]},
    )

    async def message() -> str | None:
        edges = (await twin.data("{ inboxNotifications { edges { node { id } } } }"))["inboxNotifications"]["edges"]
        return str(edges[0]["node"]["id"]) if edges else None

    world.ids["beta_message"] = await eventually(message, "beta's in-app message")
    world.callers["beta"] = beta
    world.callers["twin"] = twin
    world.callers["neighbour"] = Caller(client, f"Bearer {await session_token(client, guarded.alpha, NEIGHBOUR)}")
    world.callers["anonymous"] = Caller(client, None)


@pytest.fixture(scope="module")
async def world(guarded: Guarded) -> World:
    world = World()
    await _build_alpha(guarded, world)
    await _build_beta(guarded, world)
    world.ids["alpha_app"] = guarded.alpha.environment.application_identifier
    world.snapshot, world.inbox_snapshot = await _snapshots(world)
    # The markers are where the sweep looks for them.
    assert MARK in world.snapshot
    assert PRIVATE in world.snapshot
    assert PRIVATE in world.inbox_snapshot
    return world


async def _snapshots(world: World) -> tuple[str, str]:
    ids = world.ids
    data = await world.callers["alpha"].data(
        SNAPSHOT,
        sub=SUB,
        topic=TOPIC,
        integ=INTEG,
        wf=WF,
        hook=ids["hook"],
        notif=ids["notification"],
    )
    inbox = await world.callers["alpha_sub"].data(INBOX_SNAPSHOT)
    return json.dumps(data, sort_keys=True), json.dumps(inbox, sort_keys=True)


# The table ------------------------------------------------------------------------------------------------------

type Check = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Case:
    field: str
    query: str
    variables: Callable[[dict[str, str]], dict[str, Any]] = lambda ids: {}
    expect: str | Check = "NOT_FOUND"  # an error code, or a check of `data` for calls that act on the caller's own
    caller: str = "beta"


def _no_edges(path: str) -> Check:
    return lambda data: data[path]["edges"] == []


def _is(path: str, key: str, value: Any) -> Check:
    return lambda data: data[path][key] == value


def _anything(data: dict[str, Any]) -> bool:
    return True  # what matters is checked for every case: no alpha marker, alpha unchanged


SNOOZE_UNTIL = (datetime.now(UTC) + timedelta(days=1)).isoformat()

# Reads and writes aimed at alpha's objects come first; creates with alpha's identifiers come last (they succeed in
# beta, which must not find or touch alpha's records).
ADMIN_CASES: tuple[Case, ...] = (
    Case(
        "currentEnvironment",
        "{ currentEnvironment { id name applicationIdentifier } }",
        expect=lambda d: d["currentEnvironment"]["name"] == "beta",
    ),
    Case(
        "subscriber",
        f"query($s: String!) {{ subscriber(subscriberId: $s) {{ {SUBSCRIBER_FIELDS} }} }}",
        lambda ids: {"s": NEIGHBOUR},
    ),
    Case(
        "subscribers",
        "query($s: String) { subscribers(search: $s) { edges { node { subscriberId email } } } }",
        lambda ids: {"s": "victim"},
        expect=lambda d: [e["node"]["subscriberId"] for e in d["subscribers"]["edges"]] == [SUB],
    ),  # the twin only: beta's own subscriber with the same id, without alpha's email
    Case("topic", "query($k: String!) { topic(key: $k) { key name } }", lambda ids: {"k": TOPIC}),
    Case("topics", "{ topics { edges { node { key name } } } }", expect=_no_edges("topics")),
    Case(
        "topicSubscribers",
        "query($k: String!) { topicSubscribers(key: $k) { edges { node { subscriberId } } } }",
        lambda ids: {"k": TOPIC},
    ),
    Case(
        "subscriberTopics",
        "query($s: String!) { subscriberTopics(subscriberId: $s) { edges { node { key } } } }",
        lambda ids: {"s": SUB},
        expect=_no_edges("subscriberTopics"),
    ),
    Case(
        "integration",
        "query($i: String!) { integration(identifier: $i) { identifier name config } }",
        lambda ids: {"i": INTEG},
    ),
    Case(
        "integrations",
        "{ integrations { edges { node { identifier name config } } } }",
        expect=lambda d: INTEG not in json.dumps(d),
    ),
    Case("workflow", "query($w: String!) { workflow(workflowId: $w) { workflowId name } }", lambda ids: {"w": WF}),
    Case(
        "workflows",
        "{ workflows { edges { node { workflowId name } } } }",
        expect=lambda d: [e["node"]["workflowId"] for e in d["workflows"]["edges"]] == [BETA_WF],
    ),
    Case(
        "subscriberPreferences",
        "query($s: String!, $w: String) { subscriberPreferences(subscriberId: $s, workflowId: $w) "
        "{ edges { node { workflowId workflowName } } } }",
        lambda ids: {"s": SUB, "w": WF},
    ),
    Case(
        "subscriberGlobalPreferences",
        "query($s: String!) { subscriberGlobalPreferences(subscriberId: $s) { channels { channel enabled } } }",
        lambda ids: {"s": SUB},
        expect=lambda d: d["subscriberGlobalPreferences"]["channels"] == [],
    ),
    Case("workerProbe", "query($i: ID!) { workerProbe(id: $i) { id status } }", lambda ids: {"i": ids["probe"]}),
    Case(
        "notifications",
        "query($t: String) { notifications(where: {transactionId: $t}) { edges { node { id workflowId } } } }",
        lambda ids: {"t": TX},
        expect=_no_edges("notifications"),
    ),
    Case(
        "notification",
        "query($i: ID!) { notification(id: $i) { id workflowId } }",
        lambda ids: {"i": ids["notification"]},
    ),
    Case(
        "webhookEndpoint",
        "query($i: ID!) { webhookEndpoint(id: $i) { id url description } }",
        lambda ids: {"i": ids["hook"]},
    ),
    Case(
        "webhookEndpoints",
        "{ webhookEndpoints { edges { node { id url description } } } }",
        expect=_no_edges("webhookEndpoints"),
    ),
    Case(
        "webhookDeliveries",
        "query($i: ID!) { webhookDeliveries(endpointId: $i) { edges { node { id payload } } } }",
        lambda ids: {"i": ids["hook"]},
    ),
    # Mutations on alpha's objects.
    Case(
        "updateSubscriber",
        'mutation($s: String!) { updateSubscriber(subscriberId: $s, input: {firstName: "pwned"}) { firstName } }',
        lambda ids: {"s": NEIGHBOUR},
    ),
    Case(
        "deleteSubscriber", "mutation($s: String!) { deleteSubscriber(subscriberId: $s) }", lambda ids: {"s": NEIGHBOUR}
    ),
    Case(
        "eraseSubscriber",
        "mutation($s: String!) { eraseSubscriber(subscriberId: $s) { __typename } }",
        lambda ids: {"s": NEIGHBOUR},
    ),
    Case(
        "renameTopic",
        'mutation($k: String!) { renameTopic(key: $k, name: "pwned") { name } }',
        lambda ids: {"k": TOPIC},
    ),
    Case(
        "addTopicSubscribers",
        "mutation($k: String!, $s: [String!]!) { addTopicSubscribers(key: $k, input: {subscriberIds: $s}) { added } }",
        lambda ids: {"k": TOPIC, "s": [SUB]},
    ),
    Case(
        "removeTopicSubscribers",
        "mutation($k: String!, $s: [String!]!) { removeTopicSubscribers(key: $k, input: {subscriberIds: $s}) "
        "{ removed } }",
        lambda ids: {"k": TOPIC, "s": [SUB]},
    ),
    Case("deleteTopic", "mutation($k: String!) { deleteTopic(key: $k) }", lambda ids: {"k": TOPIC}),
    Case(
        "updateIntegration",
        'mutation($i: String!) { updateIntegration(identifier: $i, input: {name: "pwned"}) { name config } }',
        lambda ids: {"i": INTEG},
    ),
    Case(
        "testIntegration",
        'mutation($i: String!) { testIntegration(identifier: $i, subscriberId: "x") { success message detail } }',
        lambda ids: {"i": INTEG},
    ),
    Case("deleteIntegration", "mutation($i: String!) { deleteIntegration(identifier: $i) }", lambda ids: {"i": INTEG}),
    Case(
        "updateWorkflow",
        'mutation($w: String!) { updateWorkflow(workflowId: $w, input: {name: "pwned"}) { name } }',
        lambda ids: {"w": WF},
    ),
    Case("deleteWorkflow", "mutation($w: String!) { deleteWorkflow(workflowId: $w) }", lambda ids: {"w": WF}),
    Case(
        "setSubscriberPreferences",
        "mutation($s: String!, $w: String) { setSubscriberPreferences(subscriberId: $s, workflowId: $w, "
        "channels: [{channel: IN_APP, enabled: false}]) { subscriberId } }",
        lambda ids: {"s": SUB, "w": WF},
    ),
    Case(
        "trigger",
        "mutation($w: String!, $s: String!) { trigger(input: {workflowId: $w, to: [{subscriberId: $s}]}) "
        "{ transactionId } }",
        lambda ids: {"w": WF, "s": SUB},
    ),
    Case(
        "bulkTrigger",
        "mutation($w: String!, $s: String!) { bulkTrigger(input: {events: [{workflowId: $w, "
        "to: [{subscriberId: $s}]}]}) { transactionId } }",
        lambda ids: {"w": WF, "s": SUB},
    ),
    Case(
        "cancelTrigger",
        "mutation($t: String!) { cancelTrigger(transactionId: $t) { canceledJobs } }",
        lambda ids: {"t": TX},
    ),
    Case(
        "updateWebhookEndpoint",
        "mutation($i: ID!) { updateWebhookEndpoint(id: $i, input: {active: false}) { id url } }",
        lambda ids: {"i": ids["hook"]},
    ),
    Case(
        "rotateWebhookSecret",
        "mutation($i: ID!) { rotateWebhookSecret(id: $i) { secret } }",
        lambda ids: {"i": ids["hook"]},
    ),
    Case(
        "sendTestWebhook",
        "mutation($i: ID!) { sendTestWebhook(endpointId: $i) { id } }",
        lambda ids: {"i": ids["hook"]},
    ),
    Case(
        "deleteWebhookEndpoint", "mutation($i: ID!) { deleteWebhookEndpoint(id: $i) }", lambda ids: {"i": ids["hook"]}
    ),
    # A session for alpha's subscriber with an HMAC made from beta's key.
    Case(
        "inboxSession",
        "mutation($a: String!, $s: String!, $h: String) { inboxSession(applicationIdentifier: $a, "
        "subscriberId: $s, subscriberHash: $h) { token } }",
        lambda ids: {"a": ids["alpha_app"], "s": SUB, "h": ids["beta_hash"]},
        expect="FORBIDDEN",
        caller="anonymous",
    ),
    # Calls that act on beta's own environment: they must not reach alpha's.
    Case(
        "rotateApiKey",
        "mutation { rotateApiKey(overlapSeconds: 3600) { environment { name } } }",
        expect=lambda d: d["rotateApiKey"]["environment"]["name"] == "beta",
    ),
    Case(
        "setInboxHmacRequired",
        "mutation { setInboxHmacRequired(required: false) { name inboxHmacRequired } }",
        expect=lambda d: d["setInboxHmacRequired"] == {"name": "beta", "inboxHmacRequired": False},
    ),
    Case(
        "setRetention",
        "mutation { setRetention(input: {messagesDays: 30}) { name } }",
        expect=lambda d: d["setRetention"]["name"] == "beta",
    ),
    Case("probeWorkers", "mutation { probeWorkers { id } }", expect=_anything),
    Case(
        "createSubscriber",
        "mutation($s: String!) { createSubscriber(input: {subscriberId: $s}) { subscriberId email } }",
        lambda ids: {"s": NEIGHBOUR},
        expect=lambda d: d["createSubscriber"]["email"] is None,
    ),
    Case(
        "upsertSubscriber",
        "mutation($s: String!) { upsertSubscriber(input: {subscriberId: $s}) { created subscriber { email data } } }",
        lambda ids: {"s": SUB},
        expect=lambda d: d["upsertSubscriber"]["subscriber"]["email"] is None,
    ),
    Case(
        "bulkUpsertSubscribers",
        "mutation($s: String!) { bulkUpsertSubscribers(input: {subscribers: [{subscriberId: $s}]}) "
        "{ created updated } }",
        lambda ids: {"s": SUB},
        expect=_is("bulkUpsertSubscribers", "updated", [SUB]),
    ),
    Case(
        "createTopic",
        'mutation($k: String!) { createTopic(input: {key: $k, name: "beta\'s"}) { key } }',
        lambda ids: {"k": TOPIC},
        expect=_is("createTopic", "key", TOPIC),
    ),
    Case(
        "createIntegration",
        'mutation($i: String!) { createIntegration(input: {providerId: "in-app", identifier: $i}) { identifier } }',
        lambda ids: {"i": INTEG},
        expect=_is("createIntegration", "identifier", INTEG),
    ),
    Case(
        "createWorkflow",
        'mutation($w: String!) { createWorkflow(input: {workflowId: $w, name: "beta\'s"}) { workflowId } }',
        lambda ids: {"w": WF},
        expect=_is("createWorkflow", "workflowId", WF),
    ),
    Case(
        "createWebhookEndpoint",
        'mutation { createWebhookEndpoint(input: {url: "https://beta.example.com/h", eventTypes: '
        '["message.sent"]}) { endpoint { url } } }',
        expect=_anything,
    ),
)

# Every inbox operation, aimed at a message that is not the caller's.
INBOX_CASES: tuple[Case, ...] = (
    Case(
        "inboxNotifications",
        "{ inboxNotifications(filter: {archived: null, snoozed: null}) { edges { node { id subject body } } } }",
        expect=_anything,
    ),
    Case(
        "inboxCounts", "{ inboxCounts(filters: [{archived: null, snoozed: null}]) { total unread } }", expect=_anything
    ),
    Case("inboxPreferences", "{ inboxPreferences { edges { node { workflowId workflowName } } } }", expect=_anything),
    *(
        Case(name, f"mutation($i: ID!) {{ {name}(id: $i) {{ id subject body }} }}", lambda ids: {"i": ids["target"]})
        for name in ("inboxMarkRead", "inboxMarkUnread", "inboxArchive", "inboxUnarchive", "inboxUnsnooze")
    ),
    Case(
        "inboxSnooze",
        "mutation($i: ID!, $u: DateTime!) { inboxSnooze(id: $i, until: $u) { id } }",
        lambda ids: {"i": ids["target"], "u": SNOOZE_UNTIL},
    ),
    *(
        Case(
            name,
            f"mutation($i: ID!) {{ {name}(id: $i, action: PRIMARY) {{ id body }} }}",
            lambda ids: {"i": ids["target"]},
        )
        for name in ("inboxCompleteAction", "inboxRevertAction")
    ),
    Case(
        "inboxMarkSeen",
        "mutation($i: ID!) { inboxMarkSeen(ids: [$i]) { updated } }",
        lambda ids: {"i": ids["target"]},
        expect=_is("inboxMarkSeen", "updated", 0),
    ),
    Case("inboxMarkAllRead", "mutation { inboxMarkAllRead { updated } }", expect=_anything),
    Case("inboxArchiveAllRead", "mutation { inboxArchiveAllRead { updated } }", expect=_anything),
    Case(
        "inboxSetPreferences",
        "mutation($w: String) { inboxSetPreferences(workflowId: $w, channels: [{channel: IN_APP, enabled: false}]) "
        "{ workflowId } }",
        lambda ids: {"w": ids["target_workflow"]},
    ),
    Case("inboxDelete", "mutation($i: ID!) { inboxDelete(id: $i) }", lambda ids: {"i": ids["target"]}),
)
# Live over the websocket: `test_the_live_stream_carries_only_the_callers_events`.
WEBSOCKET_FIELDS = frozenset({"inboxEvents"})


def _root_fields() -> set[str]:
    schema = build_schema()._schema
    roots = (schema.query_type, schema.mutation_type, schema.subscription_type)
    return {name for root in roots if root is not None for name in root.fields}


def test_every_root_field_has_a_case() -> None:
    covered = {case.field for case in ADMIN_CASES} | {case.field for case in INBOX_CASES} | WEBSOCKET_FIELDS
    missing = _root_fields() - covered
    assert not missing, f"root fields with no cross-tenant case in {__name__}: {sorted(missing)}"
    assert not covered - _root_fields(), "cases for fields the schema no longer has"


async def _attack(world: World, case: Case, ids: dict[str, str], caller: str | None = None) -> None:
    caller = caller or case.caller
    response = await world.callers[caller].post(case.query, case.variables(ids))
    assert response.status_code == 200, response.text
    assert PRIVATE not in response.text, f"{case.field} leaked alpha's subscriber's data: {response.text}"
    if caller != "neighbour":  # alpha's workflow names are for alpha's subscribers to see
        assert MARK not in response.text, f"{case.field} leaked alpha's data: {response.text}"
    body = response.json()
    if isinstance(case.expect, str):
        codes = [error["extensions"]["code"] for error in body.get("errors", [])]
        assert codes == [case.expect], f"{case.field}: {response.text}"
        assert body.get("data") is None, f"{case.field}: {response.text}"
    else:
        assert "errors" not in body, f"{case.field}: {response.text}"
        assert case.expect(body["data"]), f"{case.field}: {response.text}"


@pytest.mark.parametrize("case", INBOX_CASES, ids=lambda case: case.field)
@pytest.mark.parametrize("attacker", ["twin", "neighbour", "admin-key"])
async def test_a_subscriber_token_reaches_no_other_inbox(
    world: World, guarded: Guarded, case: Case, attacker: str
) -> None:
    """`twin`: beta's subscriber with alpha's subscriber id; `neighbour`: another subscriber of alpha; `admin-key`:
    beta's API key, which is no subscriber token at all."""
    ids = {**world.ids, "target": world.ids["message"], "target_workflow": WF}
    if attacker == "admin-key":
        await _attack(world, Case(case.field, case.query, case.variables, "UNAUTHENTICATED"), ids, "beta")
    elif attacker == "neighbour" and case.field == "inboxSetPreferences":
        # The workflow is the neighbour's environment's, so this one is allowed: it records the neighbour's own choice.
        neighbour_case = Case(case.field, case.query, case.variables, _anything)
        await _attack(world, neighbour_case, ids, attacker)
    else:
        await _attack(world, case, ids, attacker)


@pytest.mark.parametrize("case", INBOX_CASES, ids=lambda case: case.field)
async def test_an_alpha_token_reaches_nothing_of_its_twin_in_beta(world: World, case: Case) -> None:
    """The other direction: alpha's subscriber against beta's message addressed to the same subscriber id."""
    if not isinstance(case.expect, str):
        return  # bulk and feed calls act on the caller's own inbox (alpha's, which the last test compares)
    ids = {**world.ids, "target": world.ids["beta_message"], "target_workflow": BETA_WF}
    response = await world.callers["alpha_sub"].post(case.query, case.variables(ids))
    assert "beta says hi" not in response.text
    assert [error["extensions"]["code"] for error in response.json()["errors"]] == [case.expect], response.text


@pytest.mark.parametrize("case", ADMIN_CASES, ids=lambda case: case.field)
async def test_beta_cannot_reach_alphas_objects(world: World, guarded: Guarded, case: Case) -> None:
    ids = {**world.ids, "beta_hash": subscriber_hash(guarded.beta.api_key, SUB)}
    await _attack(world, case, ids)


async def test_the_live_stream_carries_only_the_callers_events(world: World, guarded: Guarded) -> None:
    """The twin replays its stream from the start: its own message and counts, nothing of alpha's subscriber."""
    token = world.callers["twin"].authorization
    assert token is not None
    socket = await Socket.open(guarded.base, {"token": token.removeprefix("Bearer ")})
    try:
        await socket.subscribe(after="0")
        seen: list[dict[str, Any]] = []
        while True:
            event = await socket.next()
            assert MARK not in json.dumps(event)
            assert PRIVATE not in json.dumps(event)
            seen.append(event)
            if event["__typename"] == "CountsChanged":
                break
        received = [event["notification"]["id"] for event in seen if event["__typename"] == "NotificationReceived"]
        assert world.ids["message"] not in received
        assert world.ids["beta_message"] in received
    finally:
        await socket.close()


async def test_alpha_is_unchanged_after_the_sweep(world: World) -> None:
    """Runs last in this module: every record of alpha reads back exactly as before the attacks."""
    snapshot, inbox_snapshot = await _snapshots(world)
    assert snapshot == world.snapshot
    assert inbox_snapshot == world.inbox_snapshot
