"""Every lookup the API does is served by an index declared on its document (Novu #7430 was 74 s `jobs` scans).

The query planner of the running server is asked for each hot query's plan: no collection scan is allowed.
"""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from tidings.app.settings import Settings

ENV = ObjectId()
AFTER = ObjectId()

# (collection, filter, sort): the shapes the services query with.
HOT_QUERIES: list[tuple[str, dict[str, Any], dict[str, int] | None]] = [
    ("environments", {"api_keys.hash": "0" * 64}, None),
    ("environments", {"name": "development"}, None),
    ("subscribers", {"environment_id": ENV, "subscriber_id": "ada"}, None),
    ("subscribers", {"environment_id": ENV, "subscriber_id": {"$in": ["a", "b"]}}, None),
    ("subscribers", {"environment_id": ENV, "_id": {"$gt": AFTER}}, {"_id": 1}),
    ("subscribers", {"environment_id": ENV, "email": {"$gte": "ada", "$lt": "adb"}}, None),
    ("subscribers", {"environment_id": ENV, "subscriber_id": {"$gte": "ada", "$lt": "adb"}}, None),
    ("topics", {"environment_id": ENV, "key": "news"}, None),
    ("topics", {"environment_id": ENV, "_id": {"$gt": AFTER}}, {"_id": 1}),
    ("topic_subscriptions", {"environment_id": ENV, "topic_key": "news", "_id": {"$gt": AFTER}}, {"_id": 1}),
    ("topic_subscriptions", {"environment_id": ENV, "subscriber_id": "ada", "_id": {"$gt": AFTER}}, {"_id": 1}),
    ("topic_subscriptions", {"environment_id": ENV, "topic_key": "news", "subscriber_id": {"$in": ["a"]}}, None),
    ("workflows", {"environment_id": ENV, "workflow_id": "comment-added"}, None),
    ("workflows", {"environment_id": ENV, "tags": "billing"}, None),
    ("workflows", {"environment_id": ENV, "_id": {"$gt": AFTER}}, {"_id": 1}),
    ("integrations", {"environment_id": ENV, "identifier": "smtp"}, None),
    ("integrations", {"environment_id": ENV, "channel": "email", "primary": True}, None),
    ("integrations", {"environment_id": ENV, "_id": {"$gt": AFTER}}, {"_id": 1}),
    ("subscriber_preferences", {"environment_id": ENV, "subscriber_id": "ada"}, None),
    ("subscriber_preferences", {"environment_id": ENV, "subscriber_id": "ada", "workflow_id": None}, None),
]


def _stages(plan: dict[str, Any]) -> list[str]:
    stages = [plan.get("stage", "")]
    for key in ("inputStage", "outerStage", "innerStage"):
        if key in plan:
            stages += _stages(plan[key])
    for child in plan.get("inputStages", []):
        stages += _stages(child)
    return stages


# Search pages through two ranges, each with a hint to its index (see subscribers.service.list_subscribers).
SEARCH_QUERIES: list[tuple[str, dict[str, Any], dict[str, int] | None, str | None]] = [
    (
        "subscribers",
        {"environment_id": ENV, field: {"$gte": "ada", "$lt": "adb"}, "_id": {"$gt": AFTER}},
        {"_id": 1},
        f"environment_id_1_{field}_1",
    )
    for field in ("subscriber_id", "email")
]


type Case = tuple[str, dict[str, Any], dict[str, int] | None, str | None]
CASES: list[Case] = [(*row, None) for row in HOT_QUERIES] + SEARCH_QUERIES


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case[0]}:{','.join(case[1])}")
async def test_hot_query_uses_an_index(
    database: AsyncMongoClient[dict[str, Any]], settings: Settings, case: Case
) -> None:
    collection, query, sort, hint = case
    command: dict[str, Any] = {"find": collection, "filter": query}
    if sort:
        command["sort"] = sort
    if hint:
        command["hint"] = hint
    explained = await database[settings.mongodb_database].command("explain", command, verbosity="queryPlanner")
    stages = _stages(explained["queryPlanner"]["winningPlan"])
    assert "COLLSCAN" not in stages, stages
    assert "IXSCAN" in stages, stages
