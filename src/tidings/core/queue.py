"""The port through which domain code asks for background work; the app wires it to the task broker.

Domain packages depend on this protocol only, never on Taskiq, and pass ids, never documents (DESIGN §3).
"""

from __future__ import annotations

from typing import Protocol

from tidings.core.errors import UnavailableError


class QueueUnavailableError(UnavailableError):
    """The broker did not take the task (Redis down or unreachable)."""


class TaskQueue(Protocol):
    async def enqueue(self, task_name: str, *args: str) -> None:
        """Queue the task; returns once the broker accepted it, raises `QueueUnavailableError` if it did not."""
        ...
