"""GraphQL types of the topics area."""

from __future__ import annotations

from datetime import datetime

import strawberry


@strawberry.type(description="A named group of subscribers; trigger to its `key` to reach them all.")
class Topic:
    key: str
    name: str
    created_at: datetime
    updated_at: datetime


@strawberry.type(description="What adding subscribers to a topic did, per subscriber id.")
class AddTopicSubscribersResult:
    added: list[str]
    already_members: list[str]
    not_found: list[str] = strawberry.field(description="Ids with no subscriber in this environment.")


@strawberry.type(description="What removing subscribers from a topic did, per subscriber id.")
class RemoveTopicSubscribersResult:
    removed: list[str]
    not_members: list[str]
