"""Documents → GraphQL types for the topics area."""

from __future__ import annotations

from tidings.graphql.topics.types import Topic
from tidings.topics import documents


def topic_to_graphql(topic: documents.Topic) -> Topic:
    return Topic(key=topic.key, name=topic.name, created_at=topic.created_at, updated_at=topic.updated_at)
