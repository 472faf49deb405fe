"""Domain functions for workflows: create, change, delete, read and list, always within one environment."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from tidings.core.clock import utcnow
from tidings.core.errors import AlreadyExistsError, NotFoundError, ValidationError
from tidings.core.limits import Limits
from tidings.core.pagination import Page, PageRequest, paginate
from tidings.core.validation import camel
from tidings.preferences.documents import SubscriberPreference
from tidings.rendering.environment import TemplateError, compile_template
from tidings.workflows.commands import CreateWorkflow, UpdateWorkflow
from tidings.workflows.documents import Step, Workflow, stored_schema
from tidings.workflows.payload_schema import check_payload_schema
from tidings.workflows.steps import InAppStep, PushStep


def _check_tags(tags: Sequence[str], limits: Limits) -> None:
    if len(tags) > limits.tags_max:
        raise ValidationError(f"at most {limits.tags_max} tags", field="input.tags")


def _check_steps(steps: Sequence[Step], limits: Limits) -> None:
    """Refuse more steps than allowed and any template that is too large or does not compile, naming its field."""
    if len(steps) > limits.workflow_steps_max:
        raise ValidationError(f"at most {limits.workflow_steps_max} steps", field="input.steps")
    for index, step in enumerate(steps):
        # Data travels with the rendered message, so it shares the template cap.
        data = step.data if isinstance(step, InAppStep | PushStep) else None
        if data is not None and len(json.dumps(data).encode()) > limits.template_bytes:
            raise ValidationError(
                f"data is larger than {limits.template_bytes} bytes", field=f"input.steps.{index}.data"
            )
        for template in step.templates():
            try:
                compile_template(template.source, max_bytes=limits.template_bytes, autoescape=template.html)
            except TemplateError as exc:
                field = ".".join(["input.steps", str(index), *(camel(part) for part in template.path)])
                raise ValidationError(str(exc), field=field) from None


def _filter(environment_id: PydanticObjectId, workflow_id: str) -> dict[str, Any]:
    return {"environment_id": environment_id, "workflow_id": workflow_id}


async def create_workflow(environment_id: PydanticObjectId, command: CreateWorkflow, limits: Limits) -> Workflow:
    _check_tags(command.tags, limits)
    if command.payload_schema is not None:
        check_payload_schema(command.payload_schema, max_bytes=limits.payload_schema_bytes)
    _check_steps(command.steps, limits)
    now = utcnow()
    workflow = Workflow(
        environment_id=environment_id,
        workflow_id=command.workflow_id,
        name=command.name,
        description=command.description,
        tags=command.tags,
        critical=command.critical,
        payload_schema=command.payload_schema,
        preferences=command.preferences.to_document(),
        steps=command.steps,
        created_at=now,
        updated_at=now,
    )
    try:
        # Written through the driver, not `insert()`: Beanie's encoder skips the schema's storage serializer.
        result = await Workflow.get_pymongo_collection().insert_one(workflow.to_storage())
    except DuplicateKeyError:
        raise AlreadyExistsError(f"workflow {command.workflow_id!r} already exists", field="input.workflowId") from None
    workflow.id = result.inserted_id
    return workflow


async def update_workflow(
    environment_id: PydanticObjectId, workflow_id: str, command: UpdateWorkflow, limits: Limits
) -> Workflow:
    """Apply the fields the client sent in one atomic update; `steps`, when sent, replaces every step."""
    changes: dict[str, Any] = {}
    for name in command.model_fields_set:
        value = getattr(command, name)
        if name == "tags":
            _check_tags(value, limits)
        elif name == "payload_schema" and value is not None:
            check_payload_schema(value, max_bytes=limits.payload_schema_bytes)
            value = stored_schema(value)
        elif name == "steps":
            _check_steps(value, limits)
            value = [step.model_dump(mode="json") for step in value]
        elif name == "preferences":
            value = value.to_document().model_dump(mode="json")
        changes[name] = value
    changes["updated_at"] = utcnow()
    raw = await Workflow.get_pymongo_collection().find_one_and_update(
        _filter(environment_id, workflow_id), {"$set": changes}, return_document=ReturnDocument.AFTER
    )
    if raw is None:
        raise NotFoundError(f"no workflow {workflow_id!r}", field="workflowId")
    workflow: Workflow = Workflow.model_validate(raw)
    return workflow


async def delete_workflow(environment_id: PydanticObjectId, workflow_id: str) -> None:
    result = await Workflow.get_pymongo_collection().delete_one(_filter(environment_id, workflow_id))
    if result.deleted_count == 0:
        raise NotFoundError(f"no workflow {workflow_id!r}", field="workflowId")
    # Subscribers' choices for it go too: a new workflow with the same id starts from its own defaults.
    await SubscriberPreference.get_pymongo_collection().delete_many(
        {"environment_id": environment_id, "workflow_id": workflow_id}
    )


async def get_workflow(environment_id: PydanticObjectId, workflow_id: str) -> Workflow:
    workflow = await Workflow.find_one(_filter(environment_id, workflow_id))
    if workflow is None:
        raise NotFoundError(f"no workflow {workflow_id!r}", field="workflowId")
    return workflow


async def workflows_by_key(environment_id: PydanticObjectId, keys: Sequence[str]) -> dict[str, Workflow]:
    """The workflows these keys name, a key being a workflow's identifier or its database id (Novu's clients send
    the `_id` its answers carry); an identifier wins where a key is both."""
    ids = [ObjectId(key) for key in keys if ObjectId.is_valid(key)]
    query = {"environment_id": environment_id, "$or": [{"workflow_id": {"$in": list(keys)}}, {"_id": {"$in": ids}}]}
    found = await Workflow.find(query).to_list()
    by_identifier = {workflow.workflow_id: workflow for workflow in found}
    by_id = {str(workflow.id): workflow for workflow in found}
    return {key: workflow for key in keys if (workflow := by_identifier.get(key) or by_id.get(key)) is not None}


async def list_workflows(
    environment_id: PydanticObjectId, request: PageRequest, *, tag: str | None = None
) -> Page[Workflow]:
    query: dict[str, Any] = {"environment_id": environment_id}
    if tag is not None:
        query["tags"] = tag
    return await paginate(Workflow.find(query), request)
