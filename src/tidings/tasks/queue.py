"""The task queue as domain code sees it (`tidings.core.queue.TaskQueue`), backed by the broker."""

from __future__ import annotations

from redis.exceptions import RedisError
from taskiq import AsyncBroker
from taskiq.exceptions import SendTaskError

import tidings.tasks.registry  # noqa: F401  (the producer must know every task by name)
from tidings.core.queue import QueueUnavailableError


class BrokerTaskQueue:
    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker

    async def enqueue(self, task_name: str, *args: str) -> None:
        task = self.broker.find_task(task_name)
        if task is None:
            raise LookupError(f"no task named {task_name!r} is registered")
        try:
            await task.kicker().with_broker(self.broker).kiq(*args)
        except (SendTaskError, RedisError, OSError) as exc:  # taskiq wraps the broker's own error
            raise QueueUnavailableError(f"the task queue is unavailable ({type(exc).__name__})") from exc
