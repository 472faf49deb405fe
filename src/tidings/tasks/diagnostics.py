"""Diagnostic tasks."""

from __future__ import annotations

from taskiq import async_shared_broker

from tidings.diagnostics.service import PROBE_TASK, run_probe


@async_shared_broker.task(task_name=PROBE_TASK)
async def probe(probe_id: str) -> None:
    await run_probe(probe_id)
