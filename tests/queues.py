"""A TaskQueue that records what was queued, for domain code run without a worker."""

from __future__ import annotations

from tidings.core.queue import QueueUnavailableError


class RecordingQueue:
    def __init__(self, *, down: bool = False) -> None:
        self.tasks: list[tuple[str, ...]] = []
        self.down = down

    async def enqueue(self, task_name: str, *args: str) -> None:
        if self.down:
            raise QueueUnavailableError("down")
        self.tasks.append((task_name, *args))
