"""The task broker: taskiq-redis streams with acknowledgement, reclaiming deliveries of dead workers.

Only job ids travel through the queue; MongoDB holds the state (DESIGN §4).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

CONSUMER_GROUP = "tidings-workers"
_RETRY_SECONDS = 1.0

logger = logging.getLogger(__name__)

type Entry = tuple[bytes, dict[bytes, bytes] | None]
type StreamReply = list[tuple[bytes, list[Entry]]] | None
type AutoclaimReply = tuple[bytes, list[Entry], list[bytes]]


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    redis_url: str
    queue_name: str
    maxlen: int
    idle_timeout_seconds: float
    reclaim_interval_seconds: float
    socket_timeout_seconds: float


class ReclaimingStreamBroker(RedisStreamBroker):
    """RedisStreamBroker whose reclaim of abandoned deliveries also runs while the stream is idle.

    Upstream `listen` only calls XAUTOCLAIM after XREADGROUP returned new messages, so the task of a worker killed
    mid-run waits for unrelated new work before anyone retries it. Here every worker claims, at most once per
    `reclaim_interval`, the deliveries that no consumer acknowledged for `idle_timeout`. XAUTOCLAIM is atomic and
    resets the idle time of what it claims, so two workers never claim the same delivery in one round and the
    upstream lock around it is not needed.
    """

    def __init__(self, config: BrokerConfig) -> None:
        super().__init__(
            config.redis_url,
            queue_name=config.queue_name,
            consumer_group_name=CONSUMER_GROUP,
            # "0": a consumer group created after tasks were queued still sees them ("$" would skip them).
            consumer_id="0",
            maxlen=config.maxlen,
            approximate=True,
            idle_timeout=int(config.idle_timeout_seconds * 1000),
            xread_block=int(min(config.reclaim_interval_seconds, 2.0) * 1000),
            socket_timeout=config.socket_timeout_seconds + 5.0,
            socket_connect_timeout=config.socket_timeout_seconds,
        )
        self.reclaim_interval = config.reclaim_interval_seconds

    def _ackable(self, stream: str | bytes, msg_id: bytes, fields: dict[bytes, bytes] | None) -> AckableMessage | None:
        if not fields:  # trimmed by maxlen while pending: nothing left to run
            return None
        name = stream.decode() if isinstance(stream, bytes) else stream
        ack = self._ack_generator(id=msg_id.decode(), queue_name=name)

        async def ack_unless_cancelled() -> None:
            # Taskiq treats a task cancelled at shutdown as finished and acknowledges it; the work did not happen,
            # so leave the delivery pending for another worker to reclaim.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                logger.warning("not acknowledging %s: its task was cancelled", msg_id.decode())
                return
            await ack()

        return AckableMessage(data=fields[b"data"], ack=ack_unless_cancelled)

    async def forget_consumer(self) -> None:
        """Remove this worker's consumer from the group if it holds no pending delivery (keeps the group small)."""
        async with Redis(connection_pool=self.connection_pool) as redis:
            pending = await redis.xpending_range(
                self.queue_name, self.consumer_group_name, "-", "+", 1, consumername=self.consumer_name
            )
            if not pending:
                await redis.xgroup_delconsumer(self.queue_name, self.consumer_group_name, self.consumer_name)

    async def listen(self) -> AsyncGenerator[AckableMessage]:
        streams = [self.queue_name, *self.additional_streams]
        next_reclaim = 0.0
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                try:
                    fetched: StreamReply = await redis.xreadgroup(  # type: ignore[assignment]
                        self.consumer_group_name,
                        self.consumer_name,
                        {self.queue_name: ">", **self.additional_streams},  # type: ignore[dict-item]
                        block=self.block,
                        count=self.count,
                    )
                except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
                    # Redis is restarting: wait instead of letting the receiver spin on immediate failures.
                    logger.warning("task stream unreachable, retrying in %gs: %s", _RETRY_SECONDS, exc)
                    await asyncio.sleep(_RETRY_SECONDS)
                    continue
                except redis_errors.ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    # Redis came back without its data: the stream and the group must be declared again.
                    await self._declare_consumer_group()
                    continue
                for stream, messages in fetched or []:
                    for msg_id, fields in messages:
                        if message := self._ackable(stream, msg_id, fields):
                            yield message
                if time.monotonic() < next_reclaim:
                    continue
                next_reclaim = time.monotonic() + self.reclaim_interval
                for name in streams:
                    reply: AutoclaimReply = await redis.xautoclaim(  # type: ignore[assignment]
                        name,
                        self.consumer_group_name,
                        self.consumer_name,
                        min_idle_time=self.idle_timeout,
                        count=self.unacknowledged_batch_size,
                    )
                    for msg_id, fields in reply[1]:
                        if message := self._ackable(name, msg_id, fields):
                            yield message


def build_broker(config: BrokerConfig) -> ReclaimingStreamBroker:
    return ReclaimingStreamBroker(config)
