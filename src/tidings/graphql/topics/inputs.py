"""GraphQL inputs of the topics area."""

from __future__ import annotations

import strawberry


@strawberry.input
class CreateTopicInput:
    key: str = strawberry.field(description="1 to 128 letters, digits, or _ . : @ -; unique in the environment.")
    name: str


@strawberry.input
class TopicSubscribersInput:
    subscriber_ids: list[str] = strawberry.field(description="Up to the per-call limit (1,000 by default).")
