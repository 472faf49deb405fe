"""Workflow commands: step union, generated step ids, cross-field rules, and errors at the client's field path."""

from __future__ import annotations

from typing import Any

import pytest

from tidings.core.channels import Channel
from tidings.core.errors import ValidationError
from tidings.workflows.commands import CreateWorkflow, UpdateWorkflow
from tidings.workflows.errors import parse_command
from tidings.workflows.payload_schema import check_payload_schema
from tidings.workflows.steps import DelayStep, DigestStrategy, EmailStep, InAppStep, TimeUnit


def _create(*steps: dict[str, Any], **fields: Any) -> CreateWorkflow:
    return parse_command(CreateWorkflow, {"workflow_id": "welcome", "name": "Welcome", "steps": list(steps), **fields})


def _error(*steps: dict[str, Any], **fields: Any) -> ValidationError:
    with pytest.raises(ValidationError) as error:
        _create(*steps, **fields)
    return error.value


EMAIL = {"type": "email", "subject": "Hi", "body": "<p>Hi</p>"}
SMS = {"type": "sms", "body": "Hi"}


def test_steps_are_parsed_by_type() -> None:
    command = _create(
        {"type": "in_app", "body": "b", "redirect_url": "/inbox"},
        EMAIL,
        {"type": "delay", "amount": 2, "unit": "hours"},
        {"type": "digest", "window": {"amount": 5, "unit": "minutes"}, "strategy": "backoff",
         "backoff_window": {"amount": 1, "unit": "minutes"}, "digest_key": "payload.postId"},
    )  # fmt: skip
    in_app, email, delay, digest = command.steps
    assert isinstance(in_app, InAppStep)
    assert in_app.channel is Channel.IN_APP
    assert isinstance(email, EmailStep)
    assert email.channel is Channel.EMAIL
    assert isinstance(delay, DelayStep)
    assert delay.channel is None
    assert delay.unit is TimeUnit.HOURS
    assert digest.type == "digest"
    assert digest.strategy is DigestStrategy.BACKOFF


def test_missing_step_ids_are_made_from_the_type() -> None:
    command = _create(EMAIL, {"type": "in_app", "body": "b"}, EMAIL, SMS, EMAIL)
    assert [step.step_id for step in command.steps] == ["email", "in-app", "email-2", "sms", "email-3"]


def test_sent_step_ids_are_kept_and_never_reused() -> None:
    command = _create(EMAIL, {**EMAIL, "step_id": "email"}, {**EMAIL, "step_id": "email-2"})
    assert [step.step_id for step in command.steps] == ["email-3", "email", "email-2"]


def test_duplicate_step_id_names_the_second_one() -> None:
    error = _error({**SMS, "step_id": "first"}, EMAIL, {**SMS, "step_id": "first"})
    assert error.field == "input.steps.2.stepId"
    assert "already used by step 0" in error.message


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({**EMAIL, "step_id": "Not A Slug"}, "input.steps.0.stepId"),
        ({"type": "email", "body": "x"}, "input.steps.0.subject"),
        ({"type": "in_app", "body": "b", "redirect_url": "javascript:alert(1)"}, "input.steps.0.redirectUrl"),
        ({"type": "in_app", "body": "b", "avatar": "data:image/png;base64,AAAA"}, "input.steps.0.avatar"),
        ({"type": "in_app", "body": "b", "primary_action": {"label": "Go", "url": "JavaScript:x"}},
         "input.steps.0.primaryAction.url"),
        ({"type": "in_app", "body": "b", "secondary_action": {"label": "No"}}, "input.steps.0.secondaryAction"),
        ({**EMAIL, "layout": "../etc"}, "input.steps.0.layout"),
        ({**SMS, "conditions": {"nope": [1]}}, "input.steps.0.conditions"),
        ({"type": "push", "title": "t", "body": "b", "data": {"a": [{"$ref": "x", "$id": 1}]}}, "input.steps.0.data"),
        ({"type": "delay"}, "input.steps.0.amount"),
        ({"type": "delay", "amount": 0, "unit": "hours"}, "input.steps.0.amount"),
        ({"type": "delay", "amount": 3}, "input.steps.0.unit"),
        ({"type": "delay", "amount": 3, "unit": "days", "until_path": "payload.at"}, "input.steps.0.untilPath"),
        ({"type": "delay", "until_path": "subscriber.birthday"}, "input.steps.0.untilPath"),
        ({"type": "delay", "amount": 400, "unit": "days"}, "input.steps.0.amount"),
        ({"type": "delay", "amount": 2147483647, "unit": "days"}, "input.steps.0.amount"),
        ({"type": "delay", "amount": 10**30, "unit": "seconds"}, "input.steps.0.amount"),
        ({"type": "digest", "window": {"amount": 2147483647, "unit": "days"}}, "input.steps.0.window.amount"),
        ({"type": "throttle", "window": {"amount": 2147483647, "unit": "minutes"}, "threshold": 1},
         "input.steps.0.window.amount"),
        ({"type": "digest", "window": {"amount": 1, "unit": "weeks"}}, "input.steps.0.window.unit"),
        ({"type": "digest", "window": {"amount": 1, "unit": "hours"}, "backoff_window": {"amount": 1, "unit": "hours"}},
         "input.steps.0.backoffWindow"),
        ({"type": "digest", "window": {"amount": 1, "unit": "hours"}, "digest_key": "secret.x"},
         "input.steps.0.digestKey"),
        ({"type": "throttle", "window": {"amount": 1, "unit": "hours"}, "threshold": 0}, "input.steps.0.threshold"),
        ({"type": "throttle", "window": {"amount": 1, "unit": "hours"}, "threshold": 1, "key": "payload"},
         "input.steps.0.key"),
    ],
)  # fmt: skip
def test_invalid_step_names_its_field(step: dict[str, Any], field: str) -> None:
    assert _error(step).field == field


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a",
        "http://x",
        "/inbox/1",
        "HTTPS://EXAMPLE.COM",
        "/posts/{{ payload.id }}",
        "https://example.com/{{ payload.path }}",
        "{{ payload.url }}",
        "{{payload.links[0]}}",
        "{{- subscriber.data.home | trim -}}",
    ],
)
def test_safe_urls_are_accepted(url: str) -> None:
    _create({"type": "in_app", "body": "b", "redirect_url": url, "primary_action": {"label": "Go", "url": url}})


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " javascript:x",
        "vbscript:x",
        "ftp://x",
        "example.com",
        "//evil.example",
        "//evil.example/{{ payload.x }}",
        "/\\evil.example",
        "{{ 'javascript:alert(1)' }}",
        "{{ payload.url | default('javascript:alert(1)') }}",
        "{{ payload.scheme }}:alert(1)",
        "{{ payload.a }}{{ payload.b }}",
        "{% if 1 %}javascript:x{% endif %}",
        "{{ payload.url ~ 'x' }}",
    ],
)
def test_unsafe_urls_are_refused(url: str) -> None:
    assert _error({"type": "in_app", "body": "b", "redirect_url": url}).field == "input.steps.0.redirectUrl"


def test_workflow_fields_are_validated() -> None:
    assert _error(workflow_id="Bad_Id").field == "input.workflowId"
    assert _error(workflow_id="a" * 65).field == "input.workflowId"
    assert _error(name="   ").field == "input.name"
    assert _error(tags=["a", "b", "a"]).field == "input.tags.2"
    assert _error(
        preferences={"channels": [{"channel": "sms", "enabled": False}, {"channel": "sms", "enabled": True}]}
    ).field == ("input.preferences.channels.1.channel")


def test_preferences_become_a_channel_map() -> None:
    command = _create(preferences={"read_only": True, "channels": [{"channel": "email", "enabled": False}]})
    preferences = command.preferences.to_document()
    assert preferences.read_only is True
    assert preferences.channels == {Channel.EMAIL: False}
    assert preferences.enabled(Channel.EMAIL) is False
    assert preferences.enabled(Channel.SMS) is True


def test_update_knows_what_was_sent_and_refuses_null_for_required_fields() -> None:
    update = parse_command(UpdateWorkflow, {"description": None, "steps": [SMS]})
    assert update.model_fields_set == {"description", "steps"}
    assert update.steps is not None
    assert update.steps[0].step_id == "sms"
    for name, field in [("name", "input.name"), ("steps", "input.steps"), ("critical", "input.critical")]:
        with pytest.raises(ValidationError) as error:
            parse_command(UpdateWorkflow, {name: None})
        assert error.value.field == field


def test_payload_schema_must_be_valid_json_schema() -> None:
    check_payload_schema(
        {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}, max_bytes=1000
    )
    with pytest.raises(ValidationError) as error:
        check_payload_schema({"type": "objekt"}, max_bytes=1000)
    assert error.value.field == "input.payloadSchema"
    assert "'objekt' is not valid under any of the given schemas" in error.value.message


def test_payload_schema_size_is_capped() -> None:
    schema = {"description": "x" * 2000}
    check_payload_schema(schema, max_bytes=2100)
    with pytest.raises(ValidationError) as error:
        check_payload_schema(schema, max_bytes=2000)
    assert error.value.field == "input.payloadSchema"
    assert "limit of 2000" in error.value.message
