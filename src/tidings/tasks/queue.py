"""The task queue as domain code sees it (`tidings.core.queue.TaskQueue`), backed by the broker."""

from __future__ import annotations

from taskiq import AsyncBroker

import tidings.tasks.registry  # noqa: F401  (the producer must know every task by name)


class BrokerTaskQueue:
    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker

    async def enqueue(self, task_name: str, *args: str) -> None:
        task = self.broker.find_task(task_name)
        if task is None:
            raise LookupError(f"no task named {task_name!r} is registered")
        await task.kicker().with_broker(self.broker).kiq(*args)
