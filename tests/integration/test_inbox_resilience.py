"""The realtime inbox through a Redis restart: the API process's hub reconnects and resubscribes on its own, and a
client that stayed connected gets what was written while Redis was down (its doorbell was lost) and what follows."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from beanie import PydanticObjectId
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.api.conftest import GraphQL
from tests.inbox_client import Socket
from tests.servers import SECRET_KEY, api_process, beanie_database, isolated_settings
from tidings.app.embedded import valkey
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment
from tidings.inbox.documents import InboxMessage
from tidings.inbox.service import NewMessage, deliver_in_app

SESSION = """mutation($app: String!, $id: String!) {
    inboxSession(applicationIdentifier: $app, subscriberId: $id) { token } }"""


class Publisher:
    def __init__(self, url: str) -> None:
        self.url = url

    async def publish(self, channel: str, message: str) -> None:
        redis = Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            await redis.publish(channel, message)
        finally:
            await redis.aclose()


async def test_a_connected_client_gets_through_a_redis_restart(mongodb_url: str, tmp_path: Path) -> None:
    redis = valkey(data_dir=None, log_path=tmp_path / "valkey.log")
    redis.start()
    settings = isolated_settings(mongodb_url, redis.url, tmp_path).model_copy(update={"redis_timeout_seconds": 1.0})
    publisher = Publisher(redis.url)
    async with beanie_database(settings):
        issued = await create_environment("hub-outage", cipher=Cipher(SECRET_KEY))
        assert issued.environment.id is not None
        api, base = api_process(settings, tmp_path / "api.log")
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                app = issued.environment.application_identifier
                token = (await GraphQL(client, None).data(SESSION, app=app, id="ada"))["inboxSession"]["token"]
            socket = await Socket.open(base, {"token": token})
            await socket.subscribe()
            await socket.until("CountsChanged")

            async def deliver(subject: str) -> str:
                new = NewMessage(
                    environment_id=issued.environment.id,  # type: ignore[arg-type]
                    subscriber_id="ada",
                    notification_id=PydanticObjectId(),
                    transaction_id=uuid.uuid4().hex,
                    workflow_id="w",
                    step_id="in-app",
                    subject=subject,
                    body=subject,
                )
                try:
                    message, _ = await deliver_in_app(new, publisher)
                except (RedisError, OSError):
                    # Redis is down: the message and its event are in MongoDB, only the doorbell was lost.
                    message = await _written(new.notification_id)
                return str(message.id)

            redis.stop()
            during = await deliver("during the outage")
            redis.start()  # the same port, empty
            received = await socket.until("NotificationReceived", wait=60)
            assert received["notification"]["id"] == during
            after = await deliver("after the outage")
            assert (await socket.until("NotificationReceived", wait=30))["notification"]["id"] == after
            await socket.close()
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                metrics = (await client.get("/metrics")).text
            reconnects = [
                line for line in metrics.splitlines() if line.startswith("tidings_inbox_hub_reconnects_total ")
            ]
            assert reconnects, metrics[-2000:]
            assert float(reconnects[0].split()[-1]) >= 1
        finally:
            api.stop()
            redis.stop()


async def _written(notification_id: PydanticObjectId) -> InboxMessage:
    message = await InboxMessage.find_one({"notification_id": notification_id})
    assert message is not None
    return message
