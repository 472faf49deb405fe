"""Persistence of workflows: their identity, payload schema, default preferences and ordered steps."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field, SerializationInfo, field_serializer, field_validator
from pymongo import ASCENDING, IndexModel

from tidings.core.channels import Channel
from tidings.core.clock import utcnow
from tidings.workflows.steps import Step

__all__ = ["STORAGE", "Step", "Workflow", "WorkflowPreferences"]

# Serialization context of `Workflow.model_dump` for writing to MongoDB.
STORAGE = {"storage": True}


class WorkflowPreferences(BaseModel):
    """Defaults for subscribers who chose nothing; with `read_only`, subscribers' own choices are ignored."""

    read_only: bool = False
    channels: dict[Channel, bool] = Field(default_factory=dict)  # a missing channel is enabled

    def enabled(self, channel: Channel) -> bool:
        return self.channels.get(channel, True)


class Workflow(Document):
    environment_id: PydanticObjectId
    workflow_id: str
    name: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    critical: bool = False
    payload_schema: dict[str, Any] | None = None
    preferences: WorkflowPreferences = Field(default_factory=WorkflowPreferences)
    steps: list[Step] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @field_validator("payload_schema", mode="before")
    @classmethod
    def _schema_from_text(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_serializer("payload_schema")
    def _schema_as_text(self, value: dict[str, Any] | None, info: SerializationInfo) -> Any:
        """Stored as JSON text: BSON reads an object holding `$ref` and `$id` back as a DBRef, and older MongoDB
        refuses `$`-prefixed keys, yet both are ordinary JSON Schema."""
        return stored_schema(value) if info.context == STORAGE else value

    def to_storage(self) -> dict[str, Any]:
        stored: dict[str, Any] = self.model_dump(by_alias=True, exclude={"id", "revision_id"}, context=STORAGE)
        return stored

    class Settings:
        name = "workflows"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("environment_id", ASCENDING), ("workflow_id", ASCENDING)], unique=True),
            # The listing pages in `_id` order, with or without the tag filter.
            IndexModel([("environment_id", ASCENDING), ("_id", ASCENDING)]),
            IndexModel([("environment_id", ASCENDING), ("tags", ASCENDING), ("_id", ASCENDING)]),
        ]


def stored_schema(schema: dict[str, Any] | None) -> str | None:
    return None if schema is None else json.dumps(schema, separators=(",", ":"))
