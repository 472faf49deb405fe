"""Turning Strawberry inputs into plain data for the domain's Pydantic commands."""

from __future__ import annotations

import dataclasses
from typing import Any

import strawberry


def sent(value: Any) -> Any:
    """Input objects → dicts, leaving out every field the client did not send (UNSET), recursively."""
    if isinstance(value, list):
        return [sent(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # Strawberry inputs are dataclasses
        return {name: sent(item) for name, item in vars(value).items() if item is not strawberry.UNSET}
    return value
