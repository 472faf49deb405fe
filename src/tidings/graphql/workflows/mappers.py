"""Documents → GraphQL types for the workflows area."""

from __future__ import annotations

from typing import Any

from strawberry.scalars import JSON

from tidings.core.channels import Channel
from tidings.graphql.workflows import types
from tidings.workflows import documents, steps


def _json(value: dict[str, Any] | None) -> JSON | None:
    return None if value is None else JSON(value)


def _duration(duration: steps.Duration) -> types.Duration:
    return types.Duration(amount=duration.amount, unit=duration.unit)


def _action(action: steps.StepAction | None) -> types.StepAction | None:
    return None if action is None else types.StepAction(label=action.label, url=action.url)


def step_to_graphql(step: documents.Step) -> types.WorkflowStep:
    step_id, active, conditions = step.step_id, step.active, _json(step.conditions)
    mapped: types.WorkflowStep
    match step:
        case steps.InAppStep():
            mapped = types.InAppStep(
                step_id=step_id,
                active=active,
                conditions=conditions,
                subject=step.subject,
                body=step.body,
                avatar=step.avatar,
                redirect_url=step.redirect_url,
                primary_action=_action(step.primary_action),
                secondary_action=_action(step.secondary_action),
                data=_json(step.data),
            )
        case steps.EmailStep():
            mapped = types.EmailStep(
                step_id=step_id,
                active=active,
                conditions=conditions,
                subject=step.subject,
                body=step.body,
                layout=step.layout,
            )
        case steps.SmsStep():
            mapped = types.SmsStep(step_id=step_id, active=active, conditions=conditions, body=step.body)
        case steps.PushStep():
            mapped = types.PushStep(
                step_id=step_id,
                active=active,
                conditions=conditions,
                title=step.title,
                body=step.body,
                data=_json(step.data),
            )
        case steps.ChatStep():
            mapped = types.ChatStep(step_id=step_id, active=active, conditions=conditions, body=step.body)
        case steps.DelayStep():
            mapped = types.DelayStep(
                step_id=step_id,
                active=active,
                conditions=conditions,
                amount=step.amount,
                unit=step.unit,
                until_path=step.until_path,
            )
        case steps.DigestStep():
            mapped = types.DigestStep(
                step_id=step_id,
                active=active,
                conditions=conditions,
                window=_duration(step.window),
                strategy=step.strategy,
                backoff_window=None if step.backoff_window is None else _duration(step.backoff_window),
                digest_key=step.digest_key,
            )
        case steps.ThrottleStep():
            mapped = types.ThrottleStep(
                step_id=step_id,
                active=active,
                conditions=conditions,
                window=_duration(step.window),
                threshold=step.threshold,
                key=step.key,
            )
    return mapped


def preferences_to_graphql(preferences: documents.WorkflowPreferences) -> types.WorkflowPreferences:
    return types.WorkflowPreferences(
        read_only=preferences.read_only,
        channels=[
            types.WorkflowChannelPreference(channel=channel, enabled=preferences.enabled(channel))
            for channel in Channel
        ],
    )


def workflow_to_graphql(workflow: documents.Workflow) -> types.Workflow:
    return types.Workflow(
        workflow_id=workflow.workflow_id,
        name=workflow.name,
        description=workflow.description,
        tags=list(workflow.tags),
        critical=workflow.critical,
        payload_schema=_json(workflow.payload_schema),
        preferences=preferences_to_graphql(workflow.preferences),
        steps=[step_to_graphql(step) for step in workflow.steps],
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
    )
