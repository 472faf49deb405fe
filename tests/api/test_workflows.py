"""Workflows over GraphQL: every operation, every step type, bad input with codes and field paths, isolation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import GraphQL
from tests.servers import isolated_settings
from tidings.app.settings import Settings

# Small limits, set through settings, so the tests prove the API enforces the operator's values.
TEMPLATE_BYTES = 2048
SCHEMA_BYTES = 1024
STEPS_MAX = 9
TAGS_MAX = 3


@pytest.fixture(scope="module")
def api_settings(mongodb_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = isolated_settings(mongodb_url, redis_url, tmp_path_factory.mktemp("api"))
    return settings.model_copy(
        update={
            "limit_template_bytes": TEMPLATE_BYTES,
            "limit_payload_schema_bytes": SCHEMA_BYTES,
            "limit_workflow_steps_max": STEPS_MAX,
            "limit_tags_max": TAGS_MAX,
        }
    )


FIELDS = """workflowId name description tags critical payloadSchema
    preferences { readOnly channels { channel enabled } }
    steps {
        __typename
        ... on Step { stepId active conditions }
        ... on InAppStep {
            subject body avatar redirectUrl primaryAction { label url } secondaryAction { label url } data
        }
        ... on EmailStep { emailSubject: subject body layout }
        ... on SmsStep { body }
        ... on PushStep { title body data }
        ... on ChatStep { body }
        ... on DelayStep { amount unit untilPath }
        ... on DigestStep { window { amount unit } strategy backoffWindow { amount unit } digestKey }
        ... on ThrottleStep { window { amount unit } threshold key }
    }
    createdAt updatedAt"""
CREATE = f"mutation($input: CreateWorkflowInput!) {{ createWorkflow(input: $input) {{ {FIELDS} }} }}"
GET = f"query($id: String!) {{ workflow(workflowId: $id) {{ {FIELDS} }} }}"
UPDATE = f"""mutation($id: String!, $input: UpdateWorkflowInput!) {{
    updateWorkflow(workflowId: $id, input: $input) {{ {FIELDS} }} }}"""
DELETE = "mutation($id: String!) { deleteWorkflow(workflowId: $id) }"
LIST = """query($first: Int, $after: String, $tag: String) {
    workflows(first: $first, after: $after, tag: $tag) {
        edges { cursor node { workflowId tags } } pageInfo { hasNextPage endCursor } } }"""

STEPS: list[dict[str, Any]] = [
    {
        "inApp": {
            "subject": "New comment",
            "body": "{{ payload.author }} wrote: {{ payload.text }}",
            "avatar": "https://example.com/a.png",
            "redirectUrl": "/posts/{{ payload.postId }}",
            "primaryAction": {"label": "Reply", "url": "{{ payload.replyUrl }}"},
            "secondaryAction": {"label": "Dismiss"},
            "data": {"postId": 7, "tags": ["x"]},
        }
    },
    {"delay": {"amount": 5, "unit": "MINUTES"}},
    {
        "email": {
            "stepId": "digest-mail",
            "subject": "{{ steps.digest.events | length }} new comments",
            "body": "<p>Hello {{ subscriber.firstName }}</p>",
            "layout": "default",
            "conditions": {"!": {"var": "steps.in-app.seen"}},
        }
    },
    {"sms": {"body": "{{ payload.text }}", "active": False}},
    {"push": {"title": "Comment", "body": "{{ payload.text }}", "data": {"deepLink": "app://posts/7"}}},
    {"chat": {"body": "*{{ payload.author }}* commented"}},
    {
        "digest": {
            "window": {"amount": 1, "unit": "HOURS"},
            "strategy": "BACKOFF",
            "backoffWindow": {"amount": 10, "unit": "MINUTES"},
            "digestKey": "payload.postId",
        }
    },
    {"throttle": {"window": {"amount": 1, "unit": "DAYS"}, "threshold": 3, "key": "payload.postId"}},
    {"delay": {"untilPath": "payload.sendAt"}},
]
PAYLOAD_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://example.com/comment",
    "$ref": "#/$defs/comment",
    "$defs": {"comment": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}},
}
FULL = {
    "workflowId": "new-comment",
    "name": "New comment",
    "description": "Someone commented on your post",
    "tags": ["social", "comments"],
    "critical": True,
    "payloadSchema": PAYLOAD_SCHEMA,
    "preferences": {"readOnly": True, "channels": [{"channel": "SMS", "enabled": False}]},
    "steps": STEPS,
}


HOUR = {"amount": 1, "unit": "HOURS"}


def _minimal(workflow_id: str, **fields: Any) -> dict[str, Any]:
    return {"workflowId": workflow_id, "name": workflow_id.title(), **fields}


async def _ids(gql: GraphQL, tag: str | None = None, page_size: int = 100) -> list[str]:
    """Every workflowId, walking the pages."""
    ids: list[str] = []
    after = None
    while True:
        page = (await gql.data(LIST, first=page_size, after=after, tag=tag))["workflows"]
        ids += [edge["node"]["workflowId"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]


async def test_create_then_get_returns_every_field(gql: GraphQL) -> None:
    created = (await gql.data(CREATE, input=FULL))["createWorkflow"]
    fetched = (await gql.data(GET, id="new-comment"))["workflow"]
    assert created == fetched
    assert fetched["description"] == "Someone commented on your post"
    assert fetched["tags"] == ["social", "comments"]
    assert fetched["critical"] is True
    assert fetched["payloadSchema"] == PAYLOAD_SCHEMA  # `$ref` + `$id` survive storage (not read back as a DBRef)
    assert fetched["preferences"] == {
        "readOnly": True,
        "channels": [
            {"channel": "IN_APP", "enabled": True},
            {"channel": "EMAIL", "enabled": True},
            {"channel": "SMS", "enabled": False},
            {"channel": "PUSH", "enabled": True},
            {"channel": "CHAT", "enabled": True},
        ],
    }
    assert fetched["createdAt"] == fetched["updatedAt"]
    steps = fetched["steps"]
    assert [(step["__typename"], step["stepId"]) for step in steps] == [
        ("InAppStep", "in-app"),
        ("DelayStep", "delay"),
        ("EmailStep", "digest-mail"),
        ("SmsStep", "sms"),
        ("PushStep", "push"),
        ("ChatStep", "chat"),
        ("DigestStep", "digest"),
        ("ThrottleStep", "throttle"),
        ("DelayStep", "delay-2"),
    ]
    assert steps[0] == {
        "__typename": "InAppStep",
        "stepId": "in-app",
        "active": True,
        "conditions": None,
        **STEPS[0]["inApp"],
        "secondaryAction": {"label": "Dismiss", "url": None},
    }
    assert steps[1] | {"untilPath": None} == steps[1]
    assert (steps[1]["amount"], steps[1]["unit"]) == (5, "MINUTES")
    assert steps[2]["emailSubject"] == STEPS[2]["email"]["subject"]
    assert steps[2]["layout"] == "default"
    assert steps[2]["conditions"] == {"!": {"var": "steps.in-app.seen"}}
    assert steps[3]["active"] is False
    assert steps[4]["data"] == {"deepLink": "app://posts/7"}
    assert steps[6]["window"] == {"amount": 1, "unit": "HOURS"}
    assert steps[6]["backoffWindow"] == {"amount": 10, "unit": "MINUTES"}
    assert (steps[6]["strategy"], steps[6]["digestKey"]) == ("BACKOFF", "payload.postId")
    assert (steps[7]["threshold"], steps[7]["key"]) == (3, "payload.postId")
    assert (steps[8]["amount"], steps[8]["unit"], steps[8]["untilPath"]) == (None, None, "payload.sendAt")


async def test_defaults_of_a_minimal_workflow(gql: GraphQL) -> None:
    created = (await gql.data(CREATE, input=_minimal("minimal")))["createWorkflow"]
    assert created["description"] is None
    assert created["tags"] == []
    assert created["critical"] is False
    assert created["payloadSchema"] is None
    assert created["steps"] == []
    assert created["preferences"]["readOnly"] is False
    assert all(channel["enabled"] for channel in created["preferences"]["channels"])


async def test_duplicate_workflow_id_is_already_exists(gql: GraphQL, other: GraphQL) -> None:
    await gql.data(CREATE, input=_minimal("twice"))
    error = await gql.error(CREATE, input=_minimal("twice", name="Second"))
    assert (error["code"], error["field"]) == ("ALREADY_EXISTS", "input.workflowId")
    assert (await gql.data(GET, id="twice"))["workflow"]["name"] == "Twice"
    # The same workflowId is free in another environment.
    assert (await other.data(CREATE, input=_minimal("twice")))["createWorkflow"]["workflowId"] == "twice"


async def test_template_that_does_not_compile_names_step_field_and_line(gql: GraphQL) -> None:
    steps = [
        {"sms": {"body": "fine"}},
        {"chat": {"body": "fine"}},
        {"email": {"subject": "ok", "body": "<p>\n{{ name }}\n{{ 1 + }}</p>"}},
    ]
    error = await gql.error(CREATE, input=_minimal("broken", steps=steps))
    assert (error["code"], error["field"]) == ("VALIDATION", "input.steps.2.body")
    assert error["message"].startswith("line 3: ")
    nested = [{"inApp": {"body": "b", "primaryAction": {"label": "{% if %}", "url": "/x"}}}]
    error = await gql.error(CREATE, input=_minimal("broken", steps=nested))
    assert (error["code"], error["field"]) == ("VALIDATION", "input.steps.0.primaryAction.label")
    assert "line 1" in error["message"]
    assert (await gql.error(GET, id="broken"))["code"] == "NOT_FOUND"


async def test_oversized_values_are_refused(gql: GraphQL) -> None:
    big = "x" * (TEMPLATE_BYTES + 1)
    error = await gql.error(CREATE, input=_minimal("big", steps=[{"push": {"title": big, "body": "b"}}]))
    assert (error["code"], error["field"]) == ("VALIDATION", "input.steps.0.title")
    assert str(TEMPLATE_BYTES) in error["message"]
    data = {"blob": "y" * TEMPLATE_BYTES}
    error = await gql.error(CREATE, input=_minimal("big", steps=[{"inApp": {"body": "b", "data": data}}]))
    assert (error["code"], error["field"]) == ("VALIDATION", "input.steps.0.data")
    error = await gql.error(CREATE, input=_minimal("big", payloadSchema={"description": "z" * SCHEMA_BYTES}))
    assert (error["code"], error["field"]) == ("VALIDATION", "input.payloadSchema")
    too_many_steps = [{"sms": {"body": "b"}}] * (STEPS_MAX + 1)
    error = await gql.error(CREATE, input=_minimal("big", steps=too_many_steps))
    assert (error["code"], error["field"]) == ("VALIDATION", "input.steps")
    error = await gql.error(CREATE, input=_minimal("big", tags=[f"t{i}" for i in range(TAGS_MAX + 1)]))
    assert (error["code"], error["field"]) == ("VALIDATION", "input.tags")
    assert await _ids(gql, tag="t0") == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"workflowId": "Not_A_Slug"}, "input.workflowId"),
        ({"workflowId": "a" * 65}, "input.workflowId"),
        ({"workflowId": "trailing-"}, "input.workflowId"),
        ({"name": ""}, "input.name"),
        ({"tags": ["a", "a"]}, "input.tags.1"),
        ({"payloadSchema": {"type": "objekt"}}, "input.payloadSchema"),
        ({"payloadSchema": {"properties": {"a": {"minLength": -1}}}}, "input.payloadSchema"),
        (
            {"preferences": {"channels": [{"channel": "SMS", "enabled": True}, {"channel": "SMS", "enabled": False}]}},
            "input.preferences.channels.1.channel",
        ),
        ({"steps": [{"sms": {"body": "a", "stepId": "x"}}, {"chat": {"body": "b", "stepId": "x"}}]},
         "input.steps.1.stepId"),
        ({"steps": [{"sms": {"body": "a", "stepId": "Bad Id"}}]}, "input.steps.0.stepId"),
        ({"steps": [{"inApp": {"body": "b", "redirectUrl": "javascript:alert(document.cookie)"}}]},
         "input.steps.0.redirectUrl"),
        (
            {"steps": [{"inApp": {"body": "b", "primaryAction": {"label": "Go", "url": "data:text/html,x"}}}]},
            "input.steps.0.primaryAction.url",
        ),
        ({"steps": [{"sms": {"body": ""}}]}, "input.steps.0.body"),
        ({"steps": [{"sms": {"body": "a"}}, {"sms": {"body": "b", "conditions": {"==": [{"var": "env.x"}, 1]}}}]},
         "input.steps.1.conditions"),
        ({"steps": [{"sms": {"body": "a", "conditions": {"and": [], "or": []}}}]}, "input.steps.0.conditions"),
        ({"steps": [{"delay": {"amount": 0, "unit": "HOURS"}}]}, "input.steps.0.amount"),
        ({"steps": [{"delay": {"amount": 1, "unit": "HOURS", "untilPath": "payload.at"}}]}, "input.steps.0.untilPath"),
        ({"steps": [{"delay": {}}]}, "input.steps.0.amount"),
        ({"steps": [{"digest": {"window": HOUR, "backoffWindow": HOUR}}]}, "input.steps.0.backoffWindow"),
        ({"steps": [{"digest": {"window": {"amount": 0, "unit": "HOURS"}}}]}, "input.steps.0.window.amount"),
        ({"steps": [{"throttle": {"window": HOUR, "threshold": 0}}]}, "input.steps.0.threshold"),
        ({"steps": [{"throttle": {"window": HOUR, "threshold": 2, "key": "password"}}]}, "input.steps.0.key"),
        ({"steps": [{"email": {"subject": "s", "body": "b", "layout": "no/slashes"}}]}, "input.steps.0.layout"),
        # Amounts far past the 366-day cap (a timedelta of 2147483647 days overflows): VALIDATION, not INTERNAL.
        ({"steps": [{"delay": {"amount": 2147483647, "unit": "DAYS"}}]}, "input.steps.0.amount"),
        ({"steps": [{"digest": {"window": {"amount": 2147483647, "unit": "DAYS"}}}]}, "input.steps.0.window.amount"),
        ({"steps": [{"throttle": {"window": {"amount": 2147483647, "unit": "HOURS"}, "threshold": 1}}]},
         "input.steps.0.window.amount"),
        ({"steps": [{"delay": {"amount": 367, "unit": "DAYS"}}]}, "input.steps.0.amount"),
        # A constant in a template is not a variable: it saves as what it renders.
        ({"steps": [{"inApp": {"body": "b", "redirectUrl": "{{ 'javascript:alert(1)' }}"}}]},
         "input.steps.0.redirectUrl"),
        ({"steps": [{"inApp": {"body": "b", "redirectUrl": "{{ payload.a }}{{ payload.b }}"}}]},
         "input.steps.0.redirectUrl"),
        ({"steps": [{"inApp": {"body": "b", "redirectUrl": "{{ payload.url | default('javascript:x') }}"}}]},
         "input.steps.0.redirectUrl"),
        # `//host` and `/\host` lead to another site, whatever follows.
        ({"steps": [{"inApp": {"body": "b", "redirectUrl": "//evil.example"}}]}, "input.steps.0.redirectUrl"),
        ({"steps": [{"inApp": {"body": "b", "avatar": "/\\evil.example/a.png"}}]}, "input.steps.0.avatar"),
        ({"steps": [{"inApp": {"body": "b", "primaryAction": {"label": "Go", "url": "//evil.example/{{ p.x }}"}}}]},
         "input.steps.0.primaryAction.url"),
    ],
)  # fmt: skip
async def test_invalid_input_names_its_field(gql: GraphQL, fields: dict[str, Any], field: str) -> None:
    error = await gql.error(CREATE, input={**_minimal("invalid"), **fields})
    assert (error["code"], error["field"]) == ("VALIDATION", field)


async def test_safe_url_forms_are_kept(gql: GraphQL) -> None:
    urls = ["{{ payload.url }}", "{{ subscriber.data.link | trim }}", "/posts/{{ payload.id }}", "HTTPS://x.io/{{ a }}"]
    steps = [{"inApp": {"body": "b", "redirectUrl": url, "stepId": f"s{index}"}} for index, url in enumerate(urls)]
    created = (await gql.data(CREATE, input=_minimal("safe-urls", steps=steps)))["createWorkflow"]
    assert [step["redirectUrl"] for step in created["steps"]] == urls


async def test_step_input_takes_exactly_one_type(gql: GraphQL) -> None:
    both = [{"sms": {"body": "a"}, "chat": {"body": "b"}}]
    error = await gql.error(CREATE, input=_minimal("one-of", steps=both))
    assert error["code"] == "GRAPHQL_VALIDATION"
    assert (await gql.error(GET, id="one-of"))["code"] == "NOT_FOUND"


async def test_unknown_workflow_is_not_found(gql: GraphQL) -> None:
    for query in (GET, DELETE):
        error = await gql.error(query, id="no-such-workflow")
        assert (error["code"], error["field"]) == ("NOT_FOUND", "workflowId")
    error = await gql.error(UPDATE, id="no-such-workflow", input={"name": "x"})
    assert (error["code"], error["field"]) == ("NOT_FOUND", "workflowId")


async def test_update_changes_only_what_is_sent(gql: GraphQL) -> None:
    before = (await gql.data(CREATE, input={**FULL, "workflowId": "partial"}))["createWorkflow"]
    after = (await gql.data(UPDATE, id="partial", input={"name": "Renamed", "description": None}))["updateWorkflow"]
    assert after["name"] == "Renamed"
    assert after["description"] is None
    assert after["updatedAt"] > before["updatedAt"]
    unchanged = {key: value for key, value in after.items() if key not in ("name", "description", "updatedAt")}
    assert unchanged == {key: before[key] for key in unchanged}
    assert (await gql.data(GET, id="partial"))["workflow"] == after

    changed = (
        await gql.data(
            UPDATE,
            id="partial",
            input={
                "tags": ["billing"],
                "critical": False,
                "payloadSchema": None,
                "preferences": {"readOnly": False, "channels": [{"channel": "EMAIL", "enabled": False}]},
            },
        )
    )["updateWorkflow"]
    assert (changed["tags"], changed["critical"], changed["payloadSchema"]) == (["billing"], False, None)
    assert changed["preferences"]["readOnly"] is False
    assert [c["channel"] for c in changed["preferences"]["channels"] if not c["enabled"]] == ["EMAIL"]
    assert len(changed["steps"]) == len(STEPS)


async def test_update_steps_replaces_them_and_keeps_sent_back_step_ids(gql: GraphQL) -> None:
    created = await gql.data(CREATE, input=_minimal("reorder", steps=[{"email": {"subject": "a", "body": "b"}}]))
    assert [step["stepId"] for step in created["createWorkflow"]["steps"]] == ["email"]
    steps = [
        {"email": {"subject": "new", "body": "new"}},  # a new step: must not take the id sent back below
        {"email": {"stepId": "email", "subject": "a", "body": "b"}},
        {"sms": {"body": "hi"}},
    ]
    updated = (await gql.data(UPDATE, id="reorder", input={"steps": steps}))["updateWorkflow"]
    assert [(step["stepId"], step.get("emailSubject")) for step in updated["steps"]] == [
        ("email-2", "new"),
        ("email", "a"),
        ("sms", None),
    ]
    cleared = (await gql.data(UPDATE, id="reorder", input={"steps": []}))["updateWorkflow"]
    assert cleared["steps"] == []


async def test_invalid_update_changes_nothing(gql: GraphQL) -> None:
    await gql.data(CREATE, input=_minimal("stable", steps=[{"sms": {"body": "ok"}}]))
    for fields, field in [
        ({"name": None}, "input.name"),
        ({"steps": None}, "input.steps"),
        ({"tags": ["a", "b", "c", "d"]}, "input.tags"),
        ({"payloadSchema": {"type": 5}}, "input.payloadSchema"),
        ({"steps": [{"sms": {"body": "ok"}}, {"chat": {"body": "{{ x "}}]}, "input.steps.1.body"),
    ]:
        error = await gql.error(UPDATE, id="stable", input=fields)
        assert (error["code"], error["field"]) == ("VALIDATION", field), fields
    workflow = (await gql.data(GET, id="stable"))["workflow"]
    assert (workflow["name"], workflow["tags"], [step["body"] for step in workflow["steps"]]) == ("Stable", [], ["ok"])


async def test_delete_removes_the_workflow(gql: GraphQL) -> None:
    await gql.data(CREATE, input=_minimal("short-lived"))
    assert (await gql.data(DELETE, id="short-lived"))["deleteWorkflow"] is True
    assert (await gql.error(GET, id="short-lived"))["code"] == "NOT_FOUND"
    assert (await gql.error(DELETE, id="short-lived"))["code"] == "NOT_FOUND"
    assert "short-lived" not in await _ids(gql)
    # The id is free again.
    await gql.data(CREATE, input=_minimal("short-lived"))


async def test_list_pages_in_creation_order_and_filters_by_tag(gql: GraphQL) -> None:
    names = [f"page-{i}" for i in range(7)]
    for index, name in enumerate(names):
        await gql.data(CREATE, input=_minimal(name, tags=["paged", "even" if index % 2 == 0 else "odd"]))
    assert await _ids(gql, tag="paged", page_size=3) == names
    assert await _ids(gql, tag="even", page_size=2) == names[0::2]
    assert await _ids(gql, tag="no-such-tag") == []
    everything = await _ids(gql, page_size=5)
    assert [name for name in everything if name.startswith("page-")] == names
    page = (await gql.data(LIST, first=3, tag="paged"))["workflows"]
    assert page["edges"][0]["node"]["tags"] == ["paged", "even"]
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]


async def test_list_rejects_bad_page_arguments(gql: GraphQL) -> None:
    error = await gql.error(LIST, first=0)
    assert (error["code"], error["field"]) == ("VALIDATION", "first")
    error = await gql.error(LIST, first=101)
    assert (error["code"], error["field"]) == ("VALIDATION", "first")
    error = await gql.error(LIST, after="not-a-cursor")
    assert (error["code"], error["field"]) == ("VALIDATION", "after")


async def test_other_environment_cannot_read_or_change_workflows(gql: GraphQL, other: GraphQL) -> None:
    await gql.data(CREATE, input=_minimal("private", tags=["secret"], steps=[{"sms": {"body": "mine"}}]))
    assert (await other.error(GET, id="private"))["code"] == "NOT_FOUND"
    assert (await other.error(UPDATE, id="private", input={"name": "Stolen"}))["code"] == "NOT_FOUND"
    assert (await other.error(DELETE, id="private"))["code"] == "NOT_FOUND"
    assert await _ids(other, tag="secret") == []
    assert "private" not in await _ids(other)
    workflow = (await gql.data(GET, id="private"))["workflow"]
    assert (workflow["name"], workflow["steps"][0]["body"]) == ("Private", "mine")


async def test_every_operation_needs_an_api_key(gql: GraphQL, anonymous: GraphQL) -> None:
    await gql.data(CREATE, input=_minimal("guarded"))
    wrong = GraphQL(anonymous.client, "tid_sk_not-a-real-key")
    operations: list[tuple[str, dict[str, Any]]] = [
        (GET, {"id": "guarded"}),
        (LIST, {}),
        (CREATE, {"input": _minimal("sneaky")}),
        (UPDATE, {"id": "guarded", "input": {"name": "x"}}),
        (DELETE, {"id": "guarded"}),
    ]
    for caller in (anonymous, wrong):
        for query, variables in operations:
            error = await caller.error(query, **variables)
            assert error["code"] == "UNAUTHENTICATED", (query, error)
    assert (await gql.data(GET, id="guarded"))["workflow"]["name"] == "Guarded"
    assert (await gql.error(GET, id="sneaky"))["code"] == "NOT_FOUND"
