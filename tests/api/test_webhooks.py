"""Webhook endpoints over GraphQL: lifecycle, the secret shown once, deliveries, bad input, environment isolation."""

from __future__ import annotations

from typing import Any

import pytest
from beanie import PydanticObjectId

from tests.api.conftest import GraphQL
from tests.servers import SECRET_KEY
from tidings.core.crypto import Cipher
from tidings.webhooks.documents import WebhookEndpoint
from tidings.webhooks.service import MAX_ENDPOINTS_PER_ENVIRONMENT, sealed_owner

ENDPOINT_FIELDS = "id url description eventTypes active createdAt updatedAt"
CREATE = f"""mutation($input: CreateWebhookEndpointInput!) {{
    createWebhookEndpoint(input: $input) {{ secret endpoint {{ {ENDPOINT_FIELDS} }} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: UpdateWebhookEndpointInput!) {{
    updateWebhookEndpoint(id: $id, input: $input) {{ {ENDPOINT_FIELDS} }} }}"""
DELETE = "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }"
ROTATE = "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret endpoint { id } } }"
GET = f"query($id: ID!) {{ webhookEndpoint(id: $id) {{ {ENDPOINT_FIELDS} }} }}"
LIST = """query($first: Int, $after: String) {
    webhookEndpoints(first: $first, after: $after) { edges { node { id url } } pageInfo { hasNextPage endCursor } } }"""
TEST = """mutation($id: ID!) { sendTestWebhook(endpointId: $id) {
    id endpointId eventId eventType payload status attempts { at statusCode error durationMs } nextAttemptAt createdAt
} }"""
DELIVERIES = """query($id: ID!, $status: WebhookDeliveryStatus, $first: Int, $after: String) {
    webhookDeliveries(endpointId: $id, status: $status, first: $first, after: $after) {
        edges { node { id eventType status attempts { statusCode } } } pageInfo { hasNextPage endCursor } } }"""


async def _create(gql: GraphQL, url: str = "https://hooks.example.com/tidings", **extra: Any) -> dict[str, Any]:
    created: dict[str, Any] = (await gql.data(CREATE, input={"url": url, "eventTypes": ["message.sent"], **extra}))[
        "createWebhookEndpoint"
    ]
    return created


async def test_create_shows_the_secret_once_and_stores_it_sealed(gql: GraphQL) -> None:
    created = await _create(gql, description="CRM sync", eventTypes=["message.sent", "workflow.failed", "message.sent"])
    endpoint = created["endpoint"]
    assert endpoint["url"] == "https://hooks.example.com/tidings"
    assert endpoint["description"] == "CRM sync"
    assert endpoint["eventTypes"] == ["message.sent", "workflow.failed"]
    assert endpoint["active"] is True
    assert created["secret"].startswith("whsec_")
    fetched = (await gql.data(GET, id=endpoint["id"]))["webhookEndpoint"]
    assert fetched == endpoint
    fields = (await gql.data('{ __type(name: "WebhookEndpoint") { fields { name } } }'))["__type"]["fields"]
    assert "secret" not in [field["name"] for field in fields]
    stored = await WebhookEndpoint.get(PydanticObjectId(endpoint["id"]))
    assert stored is not None
    assert created["secret"] not in stored.secret
    assert Cipher(SECRET_KEY).decrypt(stored.secret, owner=sealed_owner(stored.id)) == created["secret"]  # type: ignore[arg-type]


async def test_update_changes_only_what_was_sent(gql: GraphQL) -> None:
    endpoint = (await _create(gql, description="first"))["endpoint"]
    updated = (await gql.data(UPDATE, id=endpoint["id"], input={"eventTypes": ["message.read"], "active": False}))[
        "updateWebhookEndpoint"
    ]
    assert updated["eventTypes"] == ["message.read"]
    assert updated["active"] is False
    assert updated["url"] == endpoint["url"]
    assert updated["description"] == "first"
    assert updated["updatedAt"] >= endpoint["updatedAt"]
    cleared = (await gql.data(UPDATE, id=endpoint["id"], input={"description": None, "url": "https://b.example.com/"}))[
        "updateWebhookEndpoint"
    ]
    assert (cleared["description"], cleared["url"], cleared["active"]) == (None, "https://b.example.com/", False)
    assert (await gql.data(GET, id=endpoint["id"]))["webhookEndpoint"] == cleared


async def test_rotate_issues_a_new_secret(gql: GraphQL) -> None:
    created = await _create(gql)
    rotated = (await gql.data(ROTATE, id=created["endpoint"]["id"]))["rotateWebhookSecret"]
    assert rotated["endpoint"]["id"] == created["endpoint"]["id"]
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]
    stored = await WebhookEndpoint.get(PydanticObjectId(created["endpoint"]["id"]))
    assert stored is not None
    assert stored.id is not None
    assert Cipher(SECRET_KEY).decrypt(stored.secret, owner=sealed_owner(stored.id)) == rotated["secret"]


async def test_delete_then_not_found(gql: GraphQL) -> None:
    endpoint_id = (await _create(gql))["endpoint"]["id"]
    assert (await gql.data(DELETE, id=endpoint_id))["deleteWebhookEndpoint"] is True
    for operation in (GET, DELETE, ROTATE, TEST, DELIVERIES):
        assert (await gql.error(operation, id=endpoint_id))["code"] == "NOT_FOUND"
    assert (await gql.error(UPDATE, id=endpoint_id, input={"active": True}))["code"] == "NOT_FOUND"
    assert (await gql.error(GET, id="not-an-id"))["code"] == "NOT_FOUND"


async def test_send_test_webhook_records_a_pending_delivery(gql: GraphQL) -> None:
    endpoint_id = (await _create(gql))["endpoint"]["id"]
    delivery = (await gql.data(TEST, id=endpoint_id))["sendTestWebhook"]
    assert delivery["endpointId"] == endpoint_id
    assert delivery["eventType"] == "webhook.test"
    assert delivery["eventId"].startswith("evt_")
    assert delivery["payload"]["endpointId"] == endpoint_id
    assert delivery["status"] == "PENDING"
    assert delivery["attempts"] == []
    second = (await gql.data(TEST, id=endpoint_id))["sendTestWebhook"]
    listed = (await gql.data(DELIVERIES, id=endpoint_id))["webhookDeliveries"]
    assert [edge["node"]["id"] for edge in listed["edges"]] == [second["id"], delivery["id"]]  # newest first
    page = (await gql.data(DELIVERIES, id=endpoint_id, first=1))["webhookDeliveries"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await gql.data(DELIVERIES, id=endpoint_id, first=1, after=page["pageInfo"]["endCursor"])
    assert [edge["node"]["id"] for edge in rest["webhookDeliveries"]["edges"]] == [delivery["id"]]
    assert (await gql.data(DELIVERIES, id=endpoint_id, status="PENDING"))["webhookDeliveries"]["edges"]
    assert (await gql.data(DELIVERIES, id=endpoint_id, status="SUCCEEDED"))["webhookDeliveries"]["edges"] == []


async def test_endpoints_are_listed_in_pages(gql: GraphQL) -> None:
    ids: list[str] = []
    after = None
    while True:
        page = (await gql.data(LIST, first=2, after=after))["webhookEndpoints"]
        ids += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(ids) == len(set(ids)) >= 3
    assert ids == sorted(ids)
    assert (await gql.error(LIST, first=0))["field"] == "first"
    assert (await gql.error(LIST, after="garbage"))["field"] == "after"


@pytest.mark.parametrize(
    ("input", "field"),
    [
        ({"url": "http://hooks.example.com/", "eventTypes": ["message.sent"]}, "input.url"),
        ({"url": "ftp://hooks.example.com/", "eventTypes": ["message.sent"]}, "input.url"),
        ({"url": "https://127.0.0.1/hook", "eventTypes": ["message.sent"]}, "input.url"),
        ({"url": "https://169.254.169.254/latest", "eventTypes": ["message.sent"]}, "input.url"),
        ({"url": "https:///nohost", "eventTypes": ["message.sent"]}, "input.url"),
        ({"url": "https://x.example.com/" + "a" * 2048, "eventTypes": ["message.sent"]}, "input.url"),
        ({"url": "https://x.example.com/", "eventTypes": []}, "input.eventTypes"),
        ({"url": "https://x.example.com/", "eventTypes": ["message.sent", "nope"]}, "input.eventTypes.1"),
        ({"url": "https://x.example.com/", "eventTypes": ["webhook.test"]}, "input.eventTypes.0"),
        (
            {"url": "https://x.example.com/", "eventTypes": ["message.sent"], "description": "d" * 257},
            "input.description",
        ),
    ],
)
async def test_create_rejects_bad_input(gql: GraphQL, input: dict[str, Any], field: str) -> None:
    error = await gql.error(CREATE, input=input)
    assert error["code"] == "VALIDATION", error
    assert error["field"] == field


async def test_create_without_url_is_a_graphql_validation_error(gql: GraphQL) -> None:
    error = await gql.error(CREATE, input={"eventTypes": ["message.sent"]})
    assert (error["code"], error["field"]) == ("GRAPHQL_VALIDATION", "input.url")


async def test_update_rejects_bad_input(gql: GraphQL) -> None:
    endpoint_id = (await _create(gql))["endpoint"]["id"]
    for input, field in (
        ({"url": "http://a.example.com/"}, "input.url"),
        ({"url": None}, "input.url"),
        ({"eventTypes": None}, "input.eventTypes"),
        ({"eventTypes": ["message.sent", "x"]}, "input.eventTypes.1"),
        ({"active": None}, "input.active"),
    ):
        error = await gql.error(UPDATE, id=endpoint_id, input=input)
        assert (error["code"], error["field"]) == ("VALIDATION", field), input


async def test_endpoints_per_environment_are_capped(other: GraphQL) -> None:
    created = [(await _create(other))["endpoint"]["id"] for _ in range(MAX_ENDPOINTS_PER_ENVIRONMENT)]
    error = await other.error(CREATE, input={"url": "https://x.example.com/", "eventTypes": ["message.sent"]})
    assert (error["code"], error["field"]) == ("VALIDATION", "input")
    for endpoint_id in created:
        await other.data(DELETE, id=endpoint_id)


async def test_another_environment_cannot_see_or_change_an_endpoint(gql: GraphQL, other: GraphQL) -> None:
    endpoint = (await _create(gql))["endpoint"]
    await gql.data(TEST, id=endpoint["id"])
    for operation in (GET, DELETE, ROTATE, TEST, DELIVERIES):
        error = await other.error(operation, id=endpoint["id"])
        assert error["code"] == "NOT_FOUND"
        assert endpoint["url"] not in str(error)
    assert (await other.error(UPDATE, id=endpoint["id"], input={"active": False}))["code"] == "NOT_FOUND"
    listed = (await other.data(LIST, first=100))["webhookEndpoints"]["edges"]
    assert endpoint["id"] not in [edge["node"]["id"] for edge in listed]
    assert (await gql.data(GET, id=endpoint["id"]))["webhookEndpoint"] == endpoint


@pytest.mark.parametrize("operation", [LIST, GET])
async def test_without_api_key_is_unauthenticated(anonymous: GraphQL, operation: str) -> None:
    assert (await anonymous.error(operation, id="x"))["code"] == "UNAUTHENTICATED"
