"""The steps of a workflow: one Pydantic model per step type, stored in the workflow and run in order by the engine.

`Step` is a union discriminated on `type`. Each model knows which of its fields are templates (`templates()`), so
the service compiles them all at save time, and which channel it delivers on (`channel`, None for delay, digest and
throttle).
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Self

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from tidings.core.channels import Channel
from tidings.workflows.conditions import check_conditions
from tidings.workflows.errors import FieldError

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
Slug = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=SLUG_PATTERN)]
# Where a delay reads its timestamp: only the trigger's payload carries one.
UntilPath = Annotated[str, StringConstraints(max_length=256, pattern=r"^payload(\.[A-Za-z0-9_-]+)+$")]
# What digest and throttle group by: a value of the trigger or the subscriber.
KeyPath = Annotated[
    str, StringConstraints(max_length=256, pattern=r"^(payload|subscriber|actor|tenant)(\.[A-Za-z0-9_-]+)+$")
]
LayoutId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Text = Annotated[str, StringConstraints(min_length=1)]  # size is capped by `limits.template_bytes` in the service
Label = Annotated[str, StringConstraints(min_length=1, max_length=256)]

MAX_URL = 2048
MAX_DURATION = timedelta(days=366)
_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
# Accepted starts of a redirect or action URL: http(s) or a path on the app. Anything else (javascript:, data:,
# vbscript:) is refused; Novu GHSA-8gr3-5j6f-25gp was `javascript:` XSS. `//host` and `/\host` are not paths:
# browsers read both as a link to another site.
_SAFE_URL_PREFIXES = ("http://", "https://", "/")
_OTHER_SITE_PREFIXES = ("//", "/\\")
# A template that is one variable, optionally through filters without arguments: `{{ payload.url }}`,
# `{{ subscriber.data.link | trim }}`. A literal (`{{ 'javascript:…' }}`) or a filter argument is not one. What such
# a template renders is only known at send time, where the engine checks the URL again and drops an unsafe one.
_ONE_VARIABLE = re.compile(
    r"^\{\{-?\s*[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*"
    r"(?:\s*\|\s*[A-Za-z_][A-Za-z0-9_]*)*\s*-?\}\}$"
)


class TimeUnit(StrEnum):
    SECONDS = "seconds"
    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"


class DigestStrategy(StrEnum):
    REGULAR = "regular"  # collect for `window` after the first event
    BACKOFF = "backoff"  # send the first event at once; digest only when another came within `backoff_window`


def to_timedelta(amount: int, unit: TimeUnit) -> timedelta:
    return timedelta(**{unit.value: amount})


def _check_duration(amount: int, unit: TimeUnit) -> None:
    # Compared in seconds before any timedelta is built: 2147483647 days overflows timedelta.
    if amount * _UNIT_SECONDS[unit.value] > MAX_DURATION.total_seconds():
        raise FieldError(f"must be at most {MAX_DURATION.days} days", path=("amount",))


def safe_url(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_URL:
        raise ValueError(f"must be at most {MAX_URL} characters")
    if _ONE_VARIABLE.match(value):
        return value
    if not value.lower().startswith(_SAFE_URL_PREFIXES) or value.startswith(_OTHER_SITE_PREFIXES):
        raise ValueError(
            "must start with http://, https:// or a single / (a path), before any template; or be one variable "
            "such as {{ payload.url }}"
        )
    return value


def plain_keys(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """MongoDB reads keys starting with `$` as operators (and `$ref` with `$id` as a DBRef): refuse them."""
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if key.startswith("$") or "\x00" in key:
                    raise ValueError(f"key {key!r} may not start with $ or contain NUL")
                pending.append(child)
        elif isinstance(item, list):
            pending.extend(item)
    return value


class Duration(BaseModel):
    amount: int = Field(ge=1)
    unit: TimeUnit

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        _check_duration(self.amount, self.unit)
        return self

    def to_timedelta(self) -> timedelta:
        return to_timedelta(self.amount, self.unit)


class TemplateField(NamedTuple):
    path: tuple[str, ...]  # below the step, snake_case, e.g. ("primary_action", "url")
    source: str
    html: bool  # compiled with autoescape


class StepAction(BaseModel):
    label: Label
    url: str | None = None

    _check_url = field_validator("url")(safe_url)


class StepBase(BaseModel):
    step_id: Slug
    active: bool = True
    conditions: dict[str, Any] | None = None

    channel: ClassVar[Channel | None] = None

    @field_validator("conditions")
    @classmethod
    def _conditions(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            check_conditions(value)
        return value

    def templates(self) -> list[TemplateField]:
        return []


def _texts(*fields: tuple[tuple[str, ...], str | None]) -> list[TemplateField]:
    return [TemplateField(path, source, html=False) for path, source in fields if source is not None]


class InAppStep(StepBase):
    type: Literal["in_app"] = "in_app"
    channel: ClassVar[Channel | None] = Channel.IN_APP
    subject: str | None = None
    body: Text
    avatar: str | None = None
    redirect_url: str | None = None
    primary_action: StepAction | None = None
    secondary_action: StepAction | None = None
    data: dict[str, Any] | None = None

    _check_urls = field_validator("avatar", "redirect_url")(safe_url)
    _check_data = field_validator("data")(plain_keys)

    @model_validator(mode="after")
    def _actions_in_order(self) -> Self:
        if self.secondary_action is not None and self.primary_action is None:
            raise FieldError("a secondary action needs a primary action", path=("secondary_action",))
        return self

    def templates(self) -> list[TemplateField]:
        fields: list[tuple[tuple[str, ...], str | None]] = [
            (("subject",), self.subject),
            (("body",), self.body),
            (("avatar",), self.avatar),
            (("redirect_url",), self.redirect_url),
        ]
        for name, action in (("primary_action", self.primary_action), ("secondary_action", self.secondary_action)):
            if action is not None:
                fields += [((name, "label"), action.label), ((name, "url"), action.url)]
        return _texts(*fields)


class EmailStep(StepBase):
    type: Literal["email"] = "email"
    channel: ClassVar[Channel | None] = Channel.EMAIL
    subject: Text
    body: Text  # HTML
    layout: LayoutId | None = None

    def templates(self) -> list[TemplateField]:
        return [*_texts((("subject",), self.subject)), TemplateField(("body",), self.body, html=True)]


class SmsStep(StepBase):
    type: Literal["sms"] = "sms"
    channel: ClassVar[Channel | None] = Channel.SMS
    body: Text

    def templates(self) -> list[TemplateField]:
        return _texts((("body",), self.body))


class PushStep(StepBase):
    type: Literal["push"] = "push"
    channel: ClassVar[Channel | None] = Channel.PUSH
    title: Text
    body: Text
    data: dict[str, Any] | None = None

    _check_data = field_validator("data")(plain_keys)

    def templates(self) -> list[TemplateField]:
        return _texts((("title",), self.title), (("body",), self.body))


class ChatStep(StepBase):
    type: Literal["chat"] = "chat"
    channel: ClassVar[Channel | None] = Channel.CHAT
    body: Text

    def templates(self) -> list[TemplateField]:
        return _texts((("body",), self.body))


class DelayStep(StepBase):
    """Waits `amount` `unit`s, or until the timestamp found at `until_path` in the payload."""

    type: Literal["delay"] = "delay"
    amount: int | None = Field(default=None, ge=1)
    unit: TimeUnit | None = None
    until_path: UntilPath | None = None

    @model_validator(mode="after")
    def _one_way_to_wait(self) -> Self:
        if self.until_path is not None:
            if self.amount is not None or self.unit is not None:
                raise FieldError("give either amount and unit, or untilPath, not both", path=("until_path",))
        elif self.amount is None:
            raise FieldError("give amount and unit, or untilPath", path=("amount",))
        elif self.unit is None:
            raise FieldError("amount needs a unit", path=("unit",))
        else:
            _check_duration(self.amount, self.unit)
        return self


class DigestStep(StepBase):
    """Collects events per subscriber (and per `digest_key` value) during `window`, then continues once."""

    type: Literal["digest"] = "digest"
    window: Duration
    strategy: DigestStrategy = DigestStrategy.REGULAR
    backoff_window: Duration | None = None
    digest_key: KeyPath | None = None

    @model_validator(mode="after")
    def _backoff_only(self) -> Self:
        if self.backoff_window is not None and self.strategy is not DigestStrategy.BACKOFF:
            raise FieldError("backoffWindow applies only to the backoff strategy", path=("backoff_window",))
        return self


class ThrottleStep(StepBase):
    """Lets at most `threshold` events per subscriber (and per `key` value) through in each `window`."""

    type: Literal["throttle"] = "throttle"
    window: Duration
    threshold: int = Field(ge=1, le=1_000_000)
    key: KeyPath | None = None


Step = Annotated[
    InAppStep | EmailStep | SmsStep | PushStep | ChatStep | DelayStep | DigestStep | ThrottleStep,
    Field(discriminator="type"),
]


def assign_step_ids(steps: Any) -> Any:
    """Give each step sent without a `step_id` one made from its type (`email`, `email-2`…).

    Ids the client sent are kept as they are (that is how an update keeps a step's identity), and generated ones
    never take an id that another step of the list already carries.
    """
    if not isinstance(steps, list):
        return steps
    taken = {step.get("step_id") for step in steps if isinstance(step, dict)}
    assigned: list[Any] = []
    for step in steps:
        if isinstance(step, dict) and step.get("step_id") is None and isinstance(step.get("type"), str):
            base = step["type"].replace("_", "-")
            candidate, number = base, 1
            while candidate in taken:
                number += 1
                candidate = f"{base}-{number}"
            taken.add(candidate)
            assigned.append({**step, "step_id": candidate})
        else:
            assigned.append(step)
    return assigned


def unique_step_ids[S: StepBase](steps: list[S]) -> list[S]:
    seen: dict[str, int] = {}
    for index, step in enumerate(steps):
        if step.step_id in seen:
            raise FieldError(
                f"stepId {step.step_id!r} is already used by step {seen[step.step_id]}", path=(index, "step_id")
            )
        seen[step.step_id] = index
    return steps
