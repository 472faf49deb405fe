"""Validated commands that create or change workflows (the GraphQL layer builds them with `parse_command`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from tidings.core.channels import Channel
from tidings.workflows.documents import WorkflowPreferences
from tidings.workflows.errors import FieldError
from tidings.workflows.steps import SLUG_PATTERN, Step, assign_step_ids, unique_step_ids

WorkflowId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=SLUG_PATTERN)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Description = Annotated[str, StringConstraints(max_length=2048)]
Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class ChannelSetting(BaseModel):
    channel: Channel
    enabled: bool


class PreferencesInput(BaseModel):
    read_only: bool = False
    channels: list[ChannelSetting] = Field(default_factory=list)

    @field_validator("channels")
    @classmethod
    def _one_setting_per_channel(cls, channels: list[ChannelSetting]) -> list[ChannelSetting]:
        seen: set[Channel] = set()
        for index, setting in enumerate(channels):
            if setting.channel in seen:
                raise FieldError(f"channel {setting.channel.name} is given twice", path=(index, "channel"))
            seen.add(setting.channel)
        return channels

    def to_document(self) -> WorkflowPreferences:
        return WorkflowPreferences(
            read_only=self.read_only, channels={setting.channel: setting.enabled for setting in self.channels}
        )


def _unique_tags(tags: list[str] | None) -> list[str] | None:
    for index, tag in enumerate(tags or []):
        if tag in (tags or [])[:index]:
            raise FieldError(f"tag {tag!r} is given twice", path=(index,))
    return tags


class CreateWorkflow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow_id: WorkflowId
    name: Name
    description: Description | None = None
    tags: list[Tag] = Field(default_factory=list)
    critical: bool = False
    payload_schema: dict[str, Any] | None = None
    preferences: PreferencesInput = Field(default_factory=PreferencesInput)
    steps: list[Step] = Field(default_factory=list)

    _step_ids = field_validator("steps", mode="before")(assign_step_ids)
    _unique_steps = field_validator("steps")(unique_step_ids)
    _unique_tags = field_validator("tags")(_unique_tags)


# Fields an update may send as null: it clears them. The others can only be replaced.
_NULLABLE = frozenset({"description", "payload_schema"})


class UpdateWorkflow(BaseModel):
    """A partial change: only the fields the client sent (`model_fields_set`) are applied; `steps` replaces all."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Description | None = None
    tags: list[Tag] | None = None
    critical: bool | None = None
    payload_schema: dict[str, Any] | None = None
    preferences: PreferencesInput | None = None
    steps: list[Step] | None = None

    _step_ids = field_validator("steps", mode="before")(assign_step_ids)
    _unique_tags = field_validator("tags")(_unique_tags)

    @model_validator(mode="before")
    @classmethod
    def _required_stay_set(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if value is None and name not in _NULLABLE:
                    raise FieldError(f"{name} cannot be null", path=(name,))
        return data

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: list[Step] | None) -> list[Step] | None:
        return None if steps is None else unique_step_ids(steps)
