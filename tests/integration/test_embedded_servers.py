"""The embedded servers' URLs carry the client options they need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from tidings.app.embedded import secantus


class _Sent(CommandListener):
    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: CommandStartedEvent) -> None:
        self.commands.append(dict(event.command))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


async def test_writes_to_the_embedded_mongodb_are_not_retryable_writes(tmp_path: Path) -> None:
    """SecantusDB's bookkeeping of retryable writes made each write slower the more had been written (a 12-fold
    slowdown after 10,000 writes, docs/benchmarks.md): a client of the embedded server must not ask for it."""
    server = secantus(data_dir=None, log_path=tmp_path / "secantusdb.log")
    server.start()
    sent = _Sent()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server.url, event_listeners=[sent])
    try:
        collection = client.probe.writes
        await collection.insert_one({"_id": 1, "n": 0})
        await collection.update_one({"_id": 1}, {"$inc": {"n": 1}})
        assert await collection.find_one({"_id": 1}) == {"_id": 1, "n": 1}
    finally:
        await client.close()
        server.stop()
    writes = [command for command in sent.commands if "insert" in command or "update" in command]
    assert len(writes) == 2
    assert all("txnNumber" not in command for command in writes), writes
