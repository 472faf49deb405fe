"""Oversized and deeply nested input: bodies over the size limit, operations over the depth, token and alias limits,
JSON nested 10,000 levels, and a giant string in every free-text field of one mutation per area. Each is refused
with a status or an error code (never INTERNAL, never a 5xx), and the server goes on serving."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.security.conftest import Caller, Guarded, admin, session_token
from tests.servers import SECRET_KEY
from tidings.core.crypto import Cipher
from tidings.environments.service import IssuedEnvironment, create_environment

GIANT = "x" * 400_000  # far over every field's limit, under the body limit (so the field's own check answers)
NESTING = 10_000


@pytest.fixture(scope="module")
async def tenant(guarded: Guarded) -> IssuedEnvironment:
    issued = await create_environment(f"limits-{uuid.uuid4().hex[:6]}", cipher=Cipher(SECRET_KEY))
    caller = admin(guarded.client, issued.api_key)
    await caller.data('mutation { createSubscriber(input: {subscriberId: "big"}) { subscriberId } }')
    await caller.data(
        'mutation { createWorkflow(input: {workflowId: "big", name: "Big", steps: [{inApp: {body: "hi"}}]}) '
        "{ workflowId } }"
    )
    await caller.data('mutation { createTopic(input: {key: "big", name: "Big"}) { key } }')
    return issued


async def _still_serving(guarded: Guarded) -> None:
    assert (await guarded.client.get("/healthz")).status_code == 200
    assert (await guarded.client.post("/graphql", json={"query": "{ __typename }"})).json() == {
        "data": {"__typename": "Query"}
    }


def _codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors") or []]


async def test_a_body_over_the_limit_is_413(guarded: Guarded, tenant: IssuedEnvironment) -> None:
    limit = guarded.settings.http_max_body_bytes
    response = await guarded.client.post(
        "/graphql",
        json={
            "query": "mutation($input: SubscriberInput!) { createSubscriber(input: $input) { subscriberId } }",
            "variables": {"input": {"subscriberId": "too-big", "firstName": "x" * (limit + 1)}},
        },
        headers={"Authorization": f"ApiKey {tenant.api_key}"},
    )
    assert response.status_code == 413
    assert response.json() == {"error": f"request body exceeds {limit} bytes"}
    assert await admin(guarded.client, tenant.api_key).codes('{ subscriber(subscriberId: "too-big") { email } }') == [
        "NOT_FOUND"
    ]
    await _still_serving(guarded)


async def test_an_operation_deeper_than_the_limit_is_refused(guarded: Guarded) -> None:
    """The schema's deepest real path has depth 5 (workflows → … → an action's label); the guarded api allows 4."""
    assert guarded.settings.graphql_max_depth == 4
    deep = "{ workflows { edges { node { steps { ... on InAppStep { primaryAction { label } } } } } } }"
    body = (await admin(guarded.client, guarded.alpha.api_key).post(deep)).json()
    assert _codes(body) == ["GRAPHQL_VALIDATION"], body
    assert "depth" in body["errors"][0]["message"]
    shallow = "{ workflows { edges { node { steps { ... on InAppStep { stepId } } } } } }"
    assert _codes((await admin(guarded.client, guarded.alpha.api_key).post(shallow)).json()) == []
    await _still_serving(guarded)


async def test_too_many_tokens_or_aliases_are_refused(guarded: Guarded, tenant: IssuedEnvironment) -> None:
    tokens = guarded.settings.graphql_max_tokens
    many_tokens = "{ " + " ".join(["__typename"] * tokens) + " }"
    body = (await guarded.client.post("/graphql", json={"query": many_tokens})).json()
    assert body["data"] is None
    assert "more than" in body["errors"][0]["message"]
    assert _codes(body) == ["GRAPHQL_VALIDATION"], body
    aliases = " ".join(f"a{i}: __typename" for i in range(guarded.settings.graphql_max_aliases + 1))
    body = (await guarded.client.post("/graphql", json={"query": "{ " + aliases + " }"})).json()
    assert _codes(body) == ["GRAPHQL_VALIDATION"]
    await _still_serving(guarded)


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


async def test_json_nested_ten_thousand_levels_is_refused_cleanly(guarded: Guarded, tenant: IssuedEnvironment) -> None:
    headers = {"Authorization": f"ApiKey {tenant.api_key}", "Content-Type": "application/json"}
    trigger = 'mutation($p: JSON) { trigger(input: {workflowId: "big", to: [{subscriberId: "big"}], payload: $p}) '
    trigger += "{ transactionId } }"
    # In the variables: the request's own JSON is that deep.
    raw = '{"query": ' + json.dumps(trigger) + ', "variables": {"p": ' + _nested(NESTING) + "}}"
    response = await guarded.client.post("/graphql", content=raw, headers=headers)
    assert response.status_code in (400, 413, 200), response.text
    if response.status_code == 200:
        assert _codes(response.json()) in (["VALIDATION"], ["GRAPHQL_VALIDATION"]), response.text
    # As an inline literal in the query text.
    literal = "[" * NESTING + "]" * NESTING
    inline = 'mutation { trigger(input: {workflowId: "big", to: [{subscriberId: "big"}], payload: ' + literal + "}) "
    inline += "{ transactionId } }"
    body = (await admin(guarded.client, tenant.api_key).post(inline)).json()
    assert _codes(body) == ["GRAPHQL_VALIDATION"], body
    # Under the parser's limits but over the trigger's: a payload nested deeper than a template could use.
    deep = (await admin(guarded.client, tenant.api_key).post(trigger, {"p": json.loads(_nested(500))})).json()
    assert _codes(deep) in ([], ["VALIDATION"]), deep
    await _still_serving(guarded)


# One mutation per area, each of its free-text fields giant in turn.
GIANT_CASES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "subscriber",
        "mutation($input: SubscriberInput!) { createSubscriber(input: $input) { subscriberId } }",
        {
            "input": {
                "subscriberId": "giant",
                "email": "g@example.com",
                "phone": "+14155550123",
                "firstName": "g",
                "lastName": "g",
                "avatar": "https://example.com/a.png",
                "locale": "en",
                "timezone": "Europe/Paris",
            }
        },
    ),
    (
        "topic",
        "mutation($input: CreateTopicInput!) { createTopic(input: $input) { key } }",
        {"input": {"key": "giant", "name": "g"}},
    ),
    (
        "workflow",
        "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }",
        {
            "input": {
                "workflowId": "giant",
                "name": "g",
                "description": "g",
                "tags": ["g"],
                "steps": [{"email": {"subject": "g", "body": "g", "layout": None}}],
            }
        },
    ),
    (
        "integration",
        "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { identifier } }",
        {
            "input": {
                "providerId": "smtp",
                "identifier": "giant",
                "name": "g",
                "config": {"host": "smtp.example.com", "fromEmail": "g@example.com", "fromName": "g"},
                "credentials": {"password": "g"},
            }
        },
    ),
    (
        "webhook",
        "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } } }",
        {"input": {"url": "https://example.com/hook", "eventTypes": ["message.sent"], "description": "g"}},
    ),
    (
        "trigger",
        "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId } }",
        {
            "input": {
                "workflowId": "big",
                "to": [{"subscriberId": "big"}],
                "payload": {"text": "g"},
                "actor": "big",
                "tenant": "g",
                "transactionId": "g",
            }
        },
    ),
    (
        "preferences",
        "mutation($s: String!, $w: String) { setSubscriberPreferences(subscriberId: $s, workflowId: $w, "
        "channels: [{channel: EMAIL, enabled: false}]) { subscriberId } }",
        {"s": "big", "w": "big"},
    ),
    (
        "topic-members",
        "mutation($k: String!, $ids: [String!]!) { addTopicSubscribers(key: $k, "
        "input: {subscriberIds: $ids}) { added } }",
        {"k": "big", "ids": ["big"]},
    ),
    (
        "session",
        "mutation($a: String!, $s: String!, $h: String) { inboxSession(applicationIdentifier: $a, "
        "subscriberId: $s, subscriberHash: $h) { token } }",
        {"a": "APP", "s": "big", "h": None},
    ),
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where the strings are in a variables value."""
    if isinstance(value, str):
        return [prefix]
    if isinstance(value, dict):
        return [path for key, item in value.items() for path in _paths(item, (*prefix, key))]
    if isinstance(value, list):
        return [path for index, item in enumerate(value) for path in _paths(item, (*prefix, index))]
    return []


def _replaced(value: Any, path: tuple[Any, ...], new: str) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


@pytest.mark.parametrize(("area", "query", "variables"), GIANT_CASES, ids=[case[0] for case in GIANT_CASES])
async def test_a_giant_string_in_any_free_text_field_is_refused(
    guarded: Guarded, tenant: IssuedEnvironment, area: str, query: str, variables: dict[str, Any]
) -> None:
    caller = admin(guarded.client, tenant.api_key)
    variables = json.loads(
        json.dumps(variables).replace('"APP"', json.dumps(tenant.environment.application_identifier))
    )
    accepted = []
    for path in _paths(variables):
        response = await caller.post(query, _replaced(variables, path, GIANT))
        assert response.status_code == 200, response.text
        body = response.json()
        codes = _codes(body)
        if not codes:
            accepted.append(".".join(map(str, path)))
            continue
        assert codes[0] in ("VALIDATION", "GRAPHQL_VALIDATION", "NOT_FOUND", "FORBIDDEN", "UNAUTHENTICATED"), body
    assert not accepted, f"{area}: a {len(GIANT)}-character string was stored in {accepted}"
    await _still_serving(guarded)


async def test_a_giant_string_in_inbox_arguments_is_refused(guarded: Guarded, tenant: IssuedEnvironment) -> None:
    inbox = Caller(guarded.client, f"Bearer {await session_token(guarded.client, tenant, 'big')}")
    for query, variables in (
        ("mutation($i: ID!) { inboxMarkRead(id: $i) { id } }", {"i": GIANT}),
        ("mutation($t: [String!]) { inboxMarkAllRead(tags: $t) { updated } }", {"t": [GIANT]}),
        ("mutation($t: [String!]) { inboxArchiveAllRead(tags: $t) { updated } }", {"t": ["t"] * 101}),
        ("query($f: [InboxFilterInput!]!) { inboxCounts(filters: $f) { total } }", {"f": [{}, {"tags": [GIANT]}]}),
        (
            "query($f: InboxFilterInput) { inboxNotifications(filter: $f) { edges { cursor } } }",
            {"f": {"tags": [GIANT]}},
        ),
        ("mutation($w: String) { inboxSetPreferences(workflowId: $w, channels: []) { workflowId } }", {"w": GIANT}),
        ("query($a: String) { inboxNotifications(after: $a) { edges { cursor } } }", {"a": GIANT}),
    ):
        response = await inbox.post(query, variables)
        assert response.status_code == 200, response.text
        codes = _codes(response.json())
        assert codes, f"{query} accepted a giant argument"
        assert codes[0] != "INTERNAL", response.text
    await _still_serving(guarded)
