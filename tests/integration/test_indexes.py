"""Every lookup the API does is served by the index declared for it (Novu #7430 was 74 s `jobs` scans).

The query planner of the running server is asked for each hot query's plan: no collection scan is allowed, and the
index scanned must be the one meant for that query, so a scan of a broader index (`environment_id` alone, say)
followed by a filter over the whole environment does not pass for "indexed".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from tidings.app.settings import Settings
from tidings.integrations.documents import IDENTIFIER_INDEX, PRIMARY_INDEX

ENV = ObjectId()
AFTER = ObjectId()
ENV_ID = "environment_id_1__id_1"
INBOX_EVENTS = "environment_id_1_subscriber_id_1_seq_1"
INBOX_VISIBLE = "environment_id_1_subscriber_id_1_archived_1_snoozed_1"
NOW = datetime.now(UTC)

# (collection, filter, sort, hint the service sends, index the plan must scan): the shapes the services query with.
type Case = tuple[str, dict[str, Any], dict[str, int] | None, str | None, str]
CASES: list[Case] = [
    ("environments", {"api_keys.hash": "0" * 64}, None, None, "api_keys.hash_1"),
    ("environments", {"name": "development"}, None, None, "name_1"),
    ("subscribers", {"environment_id": ENV, "subscriber_id": "ada"}, None, None, "environment_id_1_subscriber_id_1"),
    (
        "subscribers",
        {"environment_id": ENV, "subscriber_id": {"$in": ["a", "b"]}},
        None,
        None,
        "environment_id_1_subscriber_id_1",
    ),
    # Is the record read earlier still there (and not one re-created with its id)?
    ("subscribers", {"environment_id": ENV, "_id": {"$in": [AFTER]}}, None, None, ENV_ID),
    ("subscribers", {"environment_id": ENV, "_id": AFTER}, None, None, ENV_ID),
    ("workflows", {"environment_id": ENV, "_id": AFTER}, None, None, ENV_ID),
    # Memberships just written, dropped again when their topic or subscriber went meanwhile.
    (
        "topic_subscriptions",
        {"environment_id": ENV, "topic_key": "news", "_id": {"$in": [AFTER]}},
        None,
        None,
        "environment_id_1_topic_key_1__id_1",
    ),
    ("subscribers", {"environment_id": ENV, "_id": {"$gt": AFTER}}, {"_id": 1}, None, ENV_ID),
    ("topics", {"environment_id": ENV, "key": "news"}, None, None, "environment_id_1_key_1"),
    # Erasure: triggers that name the subscriber as actor or in a topic's `exclude`.
    ("triggers", {"environment_id": ENV, "actor": "ada"}, None, None, "environment_id_1_actor_1"),
    ("triggers", {"environment_id": ENV, "to.exclude": "ada"}, None, None, "environment_id_1_to.exclude_1"),
    ("topics", {"environment_id": ENV, "key": {"$in": ["news"]}}, None, None, "environment_id_1_key_1"),
    ("topics", {"environment_id": ENV, "_id": {"$gt": AFTER}}, {"_id": 1}, None, ENV_ID),
    (
        "topic_subscriptions",
        {"environment_id": ENV, "topic_key": "news", "_id": {"$gt": AFTER}},
        {"_id": 1},
        None,
        "environment_id_1_topic_key_1__id_1",
    ),
    (
        "topic_subscriptions",
        {"environment_id": ENV, "subscriber_id": "ada", "_id": {"$gt": AFTER}},
        {"_id": 1},
        None,
        "environment_id_1_subscriber_id_1__id_1",
    ),
    (
        "topic_subscriptions",
        {"environment_id": ENV, "topic_key": "news", "subscriber_id": {"$in": ["a"]}},
        None,
        None,
        "environment_id_1_topic_key_1_subscriber_id_1",
    ),
    ("workflows", {"environment_id": ENV, "workflow_id": "digest"}, None, None, "environment_id_1_workflow_id_1"),
    ("workflows", {"environment_id": ENV, "tags": "billing"}, None, None, "environment_id_1_tags_1__id_1"),
    ("workflows", {"environment_id": ENV, "_id": {"$gt": AFTER}}, {"_id": 1}, None, ENV_ID),
    ("integrations", {"environment_id": ENV, "identifier": "smtp"}, None, None, IDENTIFIER_INDEX),
    # Free identifiers: `smtp` and every `smtp-…`, as a range (a `^` regex is a collection scan on SecantusDB).
    (
        "integrations",
        {"environment_id": ENV, "identifier": {"$gte": "smtp", "$lt": "smtp."}},
        None,
        None,
        IDENTIFIER_INDEX,
    ),
    ("integrations", {"environment_id": ENV, "channel": "email", "primary": True}, None, None, PRIMARY_INDEX),
    (
        "integrations",
        {"environment_id": ENV, "channel": "email", "active": True, "primary": False},
        {"_id": 1},
        None,
        "environment_id_1_channel_1_active_1_primary_1__id_1",
    ),
    (
        "integrations",
        {"environment_id": ENV, "channel": "email", "_id": {"$gt": AFTER}},
        {"_id": 1},
        None,
        "environment_id_1_channel_1__id_1",
    ),
    ("integrations", {"environment_id": ENV, "_id": {"$gt": AFTER}}, {"_id": 1}, None, ENV_ID),
    (
        "subscriber_preferences",
        {"environment_id": ENV, "subscriber_id": "ada", "workflow_id": None},
        None,
        None,
        "environment_id_1_subscriber_id_1_workflow_id_1",
    ),
    (
        "subscriber_preferences",
        {"environment_id": ENV, "subscriber_id": "ada", "workflow_id": {"$in": [None, "digest"]}},
        None,
        None,
        "environment_id_1_subscriber_id_1_workflow_id_1",
    ),
    # Deleting a workflow deletes its choices (the filter of that `delete_many`).
    (
        "subscriber_preferences",
        {"environment_id": ENV, "workflow_id": "digest"},
        None,
        None,
        "environment_id_1_workflow_id_1",
    ),
    # The inbox: the newest event, events after a cursor, a redelivery's "received" event, the feed and its counts.
    ("inbox_events", {"environment_id": ENV, "subscriber_id": "ada"}, {"seq": -1}, None, INBOX_EVENTS),
    (
        "inbox_events",
        {"environment_id": ENV, "subscriber_id": "ada", "seq": {"$gt": 5}},
        {"seq": 1},
        None,
        INBOX_EVENTS,
    ),
    ("inbox_events", {"message_id": AFTER, "type": "received"}, None, None, "one_received_event_per_message"),
    # The default feed (not archived, not snoozed) newest first, its unread and unseen counts, one by id, the
    # scheduler's ended snoozes.
    (
        "inbox_messages",
        {"environment_id": ENV, "subscriber_id": "ada", "archived": False, "snoozed": False, "_id": {"$lt": AFTER}},
        {"_id": -1},
        None,
        f"{INBOX_VISIBLE}__id_-1",
    ),
    *(
        (
            "inbox_messages",
            {"environment_id": ENV, "subscriber_id": "ada", "archived": False, "snoozed": False, flag: False},
            None,
            None,
            f"{INBOX_VISIBLE}_{flag}_1",
        )
        for flag in ("read", "seen")
    ),
    (
        "inbox_messages",
        {"_id": AFTER, "environment_id": ENV, "subscriber_id": "ada"},
        None,
        None,
        "environment_id_1_subscriber_id_1__id_-1",
    ),
    ("inbox_messages", {"snoozed": True, "snoozed_until": {"$lte": NOW}}, None, None, "snoozed_1_snoozed_until_1"),
    # Status callbacks find the job by the provider's message id; outbound webhooks find subscribed endpoints and
    # due deliveries.
    ("jobs", {"environment_id": ENV, "sent_message_id": "<id@mg>"}, None, None, "environment_id_1_sent_message_id_1"),
    (
        "webhook_endpoints",
        {"environment_id": ENV, "event_types": "message.sent", "active": True},
        None,
        None,
        "environment_id_1_event_types_1_active_1",
    ),
    (
        "webhook_deliveries",
        {"status": "pending", "next_attempt_at": {"$lte": NOW}},
        None,
        None,
        "status_1_next_attempt_at_1",
    ),
    # The retention sweep (engine.retention): the oldest expiries of each collection, and execution details due.
    *(
        (collection, {"expires_at": {"$lte": NOW}}, {"expires_at": 1}, None, "expires_at_1")
        for collection in (
            "inbox_messages",
            "inbox_events",
            "notifications",
            "triggers",
            "webhook_deliveries",
            "digests",
            "jobs",
        )
    ),
    ("jobs", {"details_expire_at": {"$lte": NOW}}, {"details_expire_at": 1}, None, "details_expire_at_1"),
    # eraseSubscriber: the subscriber's notifications page by page, their jobs, whether a trigger had other
    # recipients, and the rest of what is theirs.
    (
        "notifications",
        {"environment_id": ENV, "subscriber_id": "ada"},
        {"_id": 1},
        None,
        "environment_id_1_subscriber_id_1__id_1",
    ),
    ("jobs", {"notification_id": {"$in": [AFTER]}}, None, None, "notification_id_1_step_index_1"),
    ("notifications", {"trigger_id": AFTER}, None, None, "trigger_id_1_subscriber_id_1"),
    *(
        (collection, {"environment_id": ENV, "subscriber_id": "ada"}, None, None, "environment_id_1_subscriber_id_1")
        for collection in ("digests", "throttle_windows")
    ),
    (
        "inbox_events",
        {"environment_id": ENV, "subscriber_id": "ada"},
        None,
        None,
        INBOX_EVENTS,
    ),
    (
        "subscriber_preferences",
        {"environment_id": ENV, "subscriber_id": "ada"},
        None,
        None,
        "environment_id_1_subscriber_id_1_workflow_id_1",
    ),
    # Search pages through two ranges, each with a hint to its index (see subscribers.service.list_subscribers).
    *(
        (
            "subscribers",
            {"environment_id": ENV, field: {"$gte": "ada", "$lt": "adb"}, "_id": {"$gt": AFTER}},
            {"_id": 1},
            f"environment_id_1_{field}_1",
            f"environment_id_1_{field}_1",
        )
        for field in ("subscriber_id", "email_lower")
    ),
]


def _scans(plan: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(stage, index name) of every stage of a winning plan."""
    scans = [(plan.get("stage", ""), plan.get("indexName"))]
    for key in ("inputStage", "outerStage", "innerStage"):
        if key in plan:
            scans += _scans(plan[key])
    for child in plan.get("inputStages", []):
        scans += _scans(child)
    return scans


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case[0]}:{','.join(case[1])}")
async def test_hot_query_uses_its_index(
    database: AsyncMongoClient[dict[str, Any]], settings: Settings, case: Case
) -> None:
    collection, query, sort, hint, expected = case
    command: dict[str, Any] = {"find": collection, "filter": query}
    if sort:
        command["sort"] = sort
    if hint:
        command["hint"] = hint
    explained = await database[settings.mongodb_database].command("explain", command, verbosity="queryPlanner")
    scans = _scans(explained["queryPlanner"]["winningPlan"])
    assert "COLLSCAN" not in [stage for stage, _ in scans], scans
    assert [name for stage, name in scans if stage == "IXSCAN"] == [expected], scans
