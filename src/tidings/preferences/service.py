"""Domain functions for preferences: store subscriber choices, and compute what applies, with the reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from tidings.core.channels import Channel
from tidings.core.clock import utcnow
from tidings.core.errors import NotFoundError, UnavailableError, ValidationError
from tidings.core.limits import Limits
from tidings.core.pagination import Page, PageRequest, encode_cursor, paginate
from tidings.preferences.documents import SubscriberPreference, applied_choices
from tidings.preferences.merge import Decision, merge_channel
from tidings.subscribers.documents import Subscriber
from tidings.subscribers.service import UPSERT_ATTEMPTS, get_subscriber
from tidings.workflows.documents import Workflow
from tidings.workflows.service import get_workflow, workflows_by_key

# Workflows read per round trip while reading them all.
_WORKFLOWS_PER_READ = 100


@dataclass(frozen=True, slots=True)
class EffectivePreference:
    workflow: Workflow
    channels: dict[Channel, Decision]
    enabled: bool = True  # False: the subscriber turned this workflow off as a whole


async def _upsert_choices(key: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    collection = SubscriberPreference.get_pymongo_collection()
    for _ in range(UPSERT_ATTEMPTS):
        try:
            raw: dict[str, Any] | None = await collection.find_one_and_update(
                key, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            continue  # MongoDB: a parallel upsert inserted the row first; the retry updates it
        if raw is not None:
            return raw
        # SecantusDB answers some parallel upserts with nothing; the retry updates the row.
    raise UnavailableError("these preferences changed too often to record; try again")


async def set_subscriber_preference(
    environment_id: PydanticObjectId,
    subscriber_id: str,
    workflow_id: str | None,
    channels: Mapping[Channel, bool | None],
    enabled: bool | None = None,
) -> SubscriberPreference:
    """Record the subscriber's choice per channel (`None` forgets a choice); `workflow_id=None` is the global row.
    `enabled=False` turns everything there off while keeping the choices (see `applied_choices`), `True` applies them
    again; turning a channel on without saying `enabled` turns it back on too, or the choice would do nothing.

    Choices on `readOnly` workflows are kept but do not apply, nor do choices turning off a channel that a
    `critical` workflow enables; the effective view says why.
    """
    subscriber = await get_subscriber(environment_id, subscriber_id)
    workflow = None if workflow_id is None else await get_workflow(environment_id, workflow_id)
    raw = await _upsert_choices(_row_key(environment_id, subscriber_id, workflow_id), _choice_update(channels, enabled))
    await _drop_orphans(environment_id, subscriber, [(workflow, "workflowId")])
    stored: SubscriberPreference = SubscriberPreference.model_validate(raw)
    return stored


async def _drop_orphans(
    environment_id: PydanticObjectId, subscriber: Subscriber, written: Sequence[tuple[Workflow | None, str]]
) -> None:
    """`delete_subscriber` and `delete_workflow` remove the choices after the record: a row written after that
    would outlive them (and be inherited by a record re-created with the same id), so check again and drop it.
    `written`: each row's workflow (None for the global row) and the field that names it in an error."""
    collection = SubscriberPreference.get_pymongo_collection()

    def rows(of: Sequence[tuple[Workflow | None, str]]) -> dict[str, Any]:
        named = [workflow.workflow_id if workflow else None for workflow, _ in of]
        return _row_key(environment_id, subscriber.subscriber_id, None) | {"workflow_id": {"$in": named}}

    if await Subscriber.find_one({"environment_id": environment_id, "_id": subscriber.id}) is None:
        await collection.delete_many(rows(written))
        raise NotFoundError(f"subscriber {subscriber.subscriber_id!r} not found", field="subscriberId")
    ids = [workflow.id for workflow, _ in written if workflow is not None]
    if not ids:
        return
    remaining = {
        row["_id"]
        async for row in Workflow.get_pymongo_collection().find(
            {"environment_id": environment_id, "_id": {"$in": ids}}, {"_id": 1}
        )
    }
    gone = [(workflow, field) for workflow, field in written if workflow is not None and workflow.id not in remaining]
    if gone:
        await collection.delete_many(rows(gone))
        workflow, field = gone[0]
        assert workflow is not None
        raise NotFoundError(f"no workflow {workflow.workflow_id!r}", field=field)


def _row_key(environment_id: PydanticObjectId, subscriber_id: str, workflow_id: str | None) -> dict[str, Any]:
    return {"environment_id": environment_id, "subscriber_id": subscriber_id, "workflow_id": workflow_id}


def _choice_update(channels: Mapping[Channel, bool | None], enabled: bool | None) -> dict[str, Any]:
    chosen = {f"channels.{channel.value}": value for channel, value in channels.items() if value is not None}
    forgotten = {f"channels.{channel.value}": "" for channel, value in channels.items() if value is None}
    if enabled is None and any(value is True for value in channels.values()):
        enabled = True
    update: dict[str, Any] = {"$set": {**chosen, "updated_at": utcnow()}}
    if enabled is not None:
        update["$set"]["enabled"] = enabled
    if forgotten:
        update["$unset"] = forgotten
    return update


async def get_global_preference(environment_id: PydanticObjectId, subscriber_id: str) -> SubscriberPreference:
    await get_subscriber(environment_id, subscriber_id)
    found = await SubscriberPreference.find_one(
        {"environment_id": environment_id, "subscriber_id": subscriber_id, "workflow_id": None}
    )
    return found or SubscriberPreference(environment_id=environment_id, subscriber_id=subscriber_id)


def effective_channels(
    workflow: Workflow, subscriber_global: Mapping[Channel, bool], subscriber_workflow: Mapping[Channel, bool]
) -> dict[Channel, Decision]:
    return {
        channel: merge_channel(
            default=workflow.preferences.channels.get(channel, True),
            read_only=workflow.preferences.read_only,
            critical=workflow.critical,
            subscriber_global=subscriber_global.get(channel),
            subscriber_workflow=subscriber_workflow.get(channel),
        )
        for channel in Channel
    }


async def effective_preferences(
    environment_id: PydanticObjectId, subscriber_id: str, request: PageRequest, workflow_id: str | None = None
) -> Page[EffectivePreference]:
    """A page of the environment's workflows in `_id` order (or just `workflow_id`), each channel decided with its
    reason. Only the subscriber's choices for the workflows of the page are read."""
    await get_subscriber(environment_id, subscriber_id)
    if workflow_id is None:
        workflows = await paginate(Workflow.find({"environment_id": environment_id}), request)
    else:
        workflow = await get_workflow(environment_id, workflow_id)
        assert workflow.id is not None  # loaded from the database
        shown = [workflow] if request.after is None or workflow.id > request.after else []
        workflows = Page(items=shown, cursors=[encode_cursor(workflow.id) for _ in shown], has_next_page=False)
    return Page(
        items=await _effective(environment_id, subscriber_id, workflows.items),
        cursors=workflows.cursors,
        has_next_page=workflows.has_next_page,
    )


async def every_effective_preference(environment_id: PydanticObjectId, subscriber_id: str) -> list[EffectivePreference]:
    """What applies for every workflow of the environment, in creation order (Novu's preference lists are not
    paged), read a page of workflows at a time."""
    await get_subscriber(environment_id, subscriber_id)
    found: list[EffectivePreference] = []
    request = PageRequest(first=_WORKFLOWS_PER_READ)
    while True:
        workflows = await paginate(Workflow.find({"environment_id": environment_id}), request)
        found += await _effective(environment_id, subscriber_id, workflows.items)
        if not workflows.has_next_page or not workflows.items:
            return found
        request = PageRequest(first=_WORKFLOWS_PER_READ, after=workflows.items[-1].id)


async def _effective(
    environment_id: PydanticObjectId, subscriber_id: str, workflows: Sequence[Workflow]
) -> list[EffectivePreference]:
    """What applies to the subscriber for each of these workflows; only its choices for them are read."""
    rows = await SubscriberPreference.find(
        {
            "environment_id": environment_id,
            "subscriber_id": subscriber_id,
            "workflow_id": {"$in": [None, *(workflow.workflow_id for workflow in workflows)]},
        }
    ).to_list()
    by_workflow = {row.workflow_id: row for row in rows}
    answers = []
    for workflow in workflows:
        row = by_workflow.get(workflow.workflow_id)
        chosen_globally, chosen_here = applied_choices(by_workflow.get(None), row)
        answers.append(
            EffectivePreference(
                workflow=workflow,
                channels=effective_channels(workflow, chosen_globally, chosen_here),
                enabled=row.enabled if row else True,
            )
        )
    return answers


async def set_workflow_preferences(
    environment_id: PydanticObjectId,
    subscriber_id: str,
    choices: Sequence[tuple[str, Mapping[Channel, bool | None]]],
    limits: Limits,
    *,
    enabled: bool | None = None,
    field: str = "preferences",
) -> list[EffectivePreference]:
    """Several workflows' choices at once (at most `limits.bulk_preferences_max`; each named by its identifier or its
    database id, as Novu's clients do), `enabled` as in
    `set_subscriber_preference`: the workflows are looked up first, so an unknown one records nothing; then each is
    recorded, and what applies to each is returned in the order sent. A few round trips plus one per workflow, not
    `set_subscriber_preference`'s several each."""
    if not 1 <= len(choices) <= limits.bulk_preferences_max:
        raise ValidationError(f"send 1 to {limits.bulk_preferences_max} workflows' preferences", field=field)
    subscriber = await get_subscriber(environment_id, subscriber_id)
    wanted = [key for key, _ in choices]
    found = await workflows_by_key(environment_id, wanted)
    for index, key in enumerate(wanted):
        if key not in found:
            raise NotFoundError(f"no workflow {key!r}", field=f"{field}.{index}.workflowId")
    for key, channels in choices:
        row = _row_key(environment_id, subscriber_id, found[key].workflow_id)
        await _upsert_choices(row, _choice_update(channels, enabled))
    await _drop_orphans(
        environment_id, subscriber, [(found[key], f"{field}.{index}.workflowId") for index, key in enumerate(wanted)]
    )
    return await _effective(environment_id, subscriber_id, [found[key] for key in wanted])
