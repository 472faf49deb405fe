"""Trigger throughput: single GraphQL `trigger`, `bulkTrigger`, and a topic trigger fanned out to every member.

`uv run python -m bench.trigger` (add `--smoke` for a tiny run). Three figures, each over `--runs` runs:

- `trigger`: requests per second accepted by the api (answer received), `--concurrency` requests in flight from
  one client process, each to one existing subscriber of an in-app workflow; with the per-request latency.
  Only the api runs during this phase, so the figure is the api's, not shared with a worker's CPU.
- `bulkTrigger`: events per second, in calls of `--batch` events (the default per-call limit), 4 calls in flight.
- topic fan-out: one trigger to a topic of `--topic-size` subscribers with the worker running: the fan-out's writes
  (one notification and one first job per member, bulk-written in pages) as documents per second until the trigger
  is marked processed, beside the floor — plain pymongo `insert_many` of as many copies of those same documents into
  collections with the same indexes on the same server; and the time until every in-app message is stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bench.harness import (
    BULK_TRIGGER,
    CREATE_WORKFLOW,
    RESULTS,
    TRIGGER,
    Servers,
    Stack,
    arguments,
    machine,
    record,
    servers,
    stack,
)
from bench.profile import sampled, self_by_package, self_frames, top_frames
from bench.stats import ratio, summary
from tidings.inbox.events import CHANNEL_PREFIX, parse_doorbell

IN_APP = {"workflowId": "bench-in-app", "name": "Bench in-app", "steps": [{"inApp": {"body": "{{ payload.n }}"}}]}
CREATE_TOPIC = "mutation($input: CreateTopicInput!) { createTopic(input: $input) { key } }"
ADD_TO_TOPIC = """mutation($key: String!, $input: TopicSubscribersInput!) {
  addTopicSubscribers(key: $key, input: $input) { added } }"""

type Database = AsyncDatabase[dict[str, Any]]


async def _create_subscribers(stack: Stack, client: httpx.AsyncClient, prefix: str, count: int) -> list[str]:
    ids = [f"{prefix}-{index}" for index in range(count)]
    await stack.upsert_subscribers(client, [{"subscriberId": one} for one in ids])
    return ids


async def _paced(count: int, concurrency: int, send: Callable[[int], Awaitable[None]]) -> tuple[float, list[float]]:
    """Runs `send(i)` for i < count with `concurrency` in flight; returns the wall time and each call's ms."""
    latencies: list[float] = []
    next_index = iter(range(count))

    async def lane() -> None:
        for index in next_index:
            sent = time.perf_counter()
            await send(index)
            latencies.append((time.perf_counter() - sent) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies


def _figure(unit: str, rates: list[float], latencies: list[float] | None = None) -> dict[str, Any]:
    figure: dict[str, Any] = {"unit": unit, **summary(rates), "runs": [round(rate, 1) for rate in rates]}
    if latencies:
        figure["latencyMs"] = summary(latencies)
    return figure


async def measure_trigger(
    stack: Stack, subscribers: list[str], count: int, concurrency: int, *, rest: bool = False
) -> tuple[float, list[float]]:
    """Single triggers, `concurrency` in flight: GraphQL's `trigger`, or with `rest` the Novu-compatible
    `POST /v1/events/trigger`."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def send(index: int) -> None:
            subscriber_id = subscribers[index % len(subscribers)]
            if rest:
                await _rest_trigger(
                    stack, client, {"name": IN_APP["workflowId"], "to": subscriber_id, "payload": {"n": index}}
                )
                return
            event = {"workflowId": IN_APP["workflowId"], "to": [{"subscriberId": subscriber_id}]}
            await stack.graphql(client, TRIGGER, input={**event, "payload": {"n": index}})

        elapsed, latencies = await _paced(count, concurrency, send)
    return count / elapsed, latencies


async def _rest_trigger(stack: Stack, client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post(
        stack.base + "/v1/events/trigger", json=body, headers={"Authorization": f"ApiKey {stack.api_key}"}
    )
    if response.status_code != 201 or response.json()["data"]["status"] != "processed":
        raise RuntimeError(f"{response.status_code}: {response.text}")


async def measure_bulk(stack: Stack, subscribers: list[str], count: int, batch: int) -> tuple[float, list[float]]:
    async with httpx.AsyncClient(timeout=120) as client:

        async def send(call: int) -> None:
            events = [
                {
                    "workflowId": IN_APP["workflowId"],
                    "to": [{"subscriberId": subscribers[(call * batch + i) % len(subscribers)]}],
                }
                for i in range(batch)
            ]
            await stack.graphql(client, BULK_TRIGGER, input={"events": events})

        calls = max(1, count // batch)
        elapsed, latencies = await _paced(calls, 4, send)
    return calls * batch / elapsed, latencies


async def _wait_for(check: Callable[[], Awaitable[bool]], limit: float, what: str) -> float:
    start = time.perf_counter()
    while not await check():
        if time.perf_counter() - start > limit:
            raise RuntimeError(f"{what} did not happen within {limit:g}s")
        await asyncio.sleep(0.1)
    return time.perf_counter()


async def measure_topic(stack: Stack, database: Database, topic: str, size: int) -> tuple[float, float, str]:
    """One topic trigger: (fan-out documents written per second, seconds until all in-app messages, transactionId).

    "Stored" is seen on Redis, not by counting in MongoDB: the in-app step rings each member's doorbell after it
    stored the message, and counting 10,000 documents on SecantusDB is a scan (≈ 150 ms) — polled, it took most of
    the server the benchmark measures. MongoDB is counted once, at the end, to prove none was lost or doubled.
    """
    before = await database.inbox_messages.count_documents({})
    async with announced_messages(stack.settings.require_redis_url(), size) as all_announced:
        async with httpx.AsyncClient(timeout=60) as client:
            start = time.perf_counter()
            data = await stack.graphql(
                client, TRIGGER, input={"workflowId": IN_APP["workflowId"], "to": [{"topicKey": topic}]}
            )
        transaction = data["trigger"]["transactionId"]

        written: list[int] = []

        async def processed() -> bool:
            found = await database.triggers.find_one({"transaction_id": transaction, "status": "processed"})
            if found is not None:
                written.append(found["notification_count"])  # the fan-out counted them: no second count here
            return found is not None

        fanned_out = await _wait_for(processed, 600, "the fan-out")
        if written != [size]:
            raise RuntimeError(f"the fan-out wrote {written[0]} notifications for {size} members")
        try:
            await asyncio.wait_for(all_announced.wait(), 1800)
        except TimeoutError:
            raise RuntimeError("not every in-app message was stored within 1,800 s") from None
        delivered = time.perf_counter()
    # Counted after the clock stopped: on SecantusDB each count reads the whole collection.
    jobs = await database.jobs.count_documents({"transaction_id": transaction})
    stored = await database.inbox_messages.count_documents({}) - before
    if jobs < size or stored != size:
        raise RuntimeError(f"{jobs} jobs and {stored} in-app messages were stored for {size} members")
    return 2 * size / (fanned_out - start), delivered - start, transaction


@asynccontextmanager
async def announced_messages(redis_url: str, size: int) -> AsyncIterator[asyncio.Event]:
    """An event set once `size` distinct subscribers' doorbells announced a new message; listening when entered."""
    redis = Redis.from_url(redis_url)
    pubsub = redis.pubsub()
    await pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
    while (await pubsub.get_message(timeout=5)) is None:
        pass  # the subscription's confirmation: from here on no doorbell is missed
    done = asyncio.Event()
    channels: set[bytes] = set()

    async def listen() -> None:
        async for item in pubsub.listen():
            if item["type"] == "pmessage" and parse_doorbell(item["data"]).message is not None:
                channels.add(item["channel"])
                if len(channels) >= size:
                    done.set()
                    return

    listener = asyncio.create_task(listen())
    try:
        yield done
    finally:
        listener.cancel()
        with suppress(asyncio.CancelledError):
            await listener
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await redis.aclose()


async def insert_many_floor(database: Database, transaction: str, size: int) -> float:
    """Documents per second for plain `insert_many` of copies of this fan-out's own notification and job documents,
    into scratch collections carrying the same indexes."""
    rates = []
    for source in ("notifications", "jobs"):
        sample = await database[source].find_one({"transaction_id": transaction})
        assert sample is not None
        scratch = database[f"floor_{source}_{ObjectId()}"]
        for name, spec in (await database[source].index_information()).items():
            if name != "_id_":
                options = {
                    k: v
                    for k, v in spec.items()
                    if k in ("unique", "sparse", "partialFilterExpression", "expireAfterSeconds")
                }
                await scratch.create_index(spec["key"], name=name, **options)
        copies = []
        for index in range(size):
            copy = dict(sample, _id=ObjectId(), subscriber_id=f"floor-{index}")
            if "notification_id" in copy:
                copy["notification_id"] = ObjectId()
            copies.append(copy)
        start = time.perf_counter()
        await scratch.insert_many(copies)
        rates.append(size / (time.perf_counter() - start))
        await scratch.drop()
    # Two collections written in turn: their combined rate is the harmonic combination.
    return 2 / sum(1 / rate for rate in rates)


async def run(args: Any) -> None:
    workdir: Path = args.workdir
    runs = 1 if args.smoke else args.runs
    count, bulk_events, topic_size = (20, 200, 50) if args.smoke else (args.triggers, args.bulk_events, args.topic_size)
    with servers(workdir) as found:
        described = await machine(found)
        figures = await _api_figures(found, workdir, runs, (count, bulk_events), args) if count or bulk_events else {}
        if topic_size:
            topic_runs = 1 if args.smoke else args.topic_runs
            figures["topic"] = await _topic_figures(
                found, workdir, topic_runs, topic_size, args.workers, profile=args.profile
            )
        record("trigger", described, figures, args.output, args.smoke)


async def _api_figures(found: Servers, workdir: Path, runs: int, sizes: tuple[int, int], args: Any) -> dict[str, Any]:
    count, bulk = sizes
    figures: dict[str, Any] = {}
    async with stack(found, workdir, workers=0, scheduler=False) as api_only:
        async with httpx.AsyncClient(timeout=60) as client:
            await api_only.graphql(client, CREATE_WORKFLOW, input=IN_APP)
            subscribers = await _create_subscribers(api_only, client, "t", 100)
        if count:
            await measure_trigger(api_only, subscribers, min(count, 50), args.concurrency)  # warm-up
            with _profiled(args.profile, api_only.pid("api"), "trigger-api"):
                rates, latencies = await _repeat(
                    runs, lambda: measure_trigger(api_only, subscribers, count, args.concurrency)
                )
            figures["trigger"] = _figure("requests/s", rates, latencies) | {"concurrency": args.concurrency}
            figures["trigger"] |= {"target": "≥ 300/s", "met": figures["trigger"]["median"] >= 300}
            rates, latencies = await _repeat(
                runs, lambda: measure_trigger(api_only, subscribers, count, args.concurrency, rest=True)
            )
            figures["restTrigger"] = _figure("requests/s", rates, latencies) | {"concurrency": args.concurrency}
        if bulk:
            rates, latencies = await _repeat(runs, lambda: measure_bulk(api_only, subscribers, bulk, args.batch))
            figures["bulkTrigger"] = _figure("events/s", rates, latencies) | {"batch": args.batch}
    return figures


async def _repeat(
    runs: int, measure: Callable[[], Awaitable[tuple[float, list[float]]]]
) -> tuple[list[float], list[float]]:
    """Each run's rate, and every run's latencies together."""
    rates: list[float] = []
    latencies: list[float] = []
    for _ in range(runs):
        rate, samples = await measure()
        rates.append(rate)
        latencies += samples
    return rates, latencies


async def _topic_figures(
    found: Servers, workdir: Path, runs: int, size: int, workers: int, *, profile: bool
) -> dict[str, Any]:
    async with stack(found, workdir, workers=workers) as full:
        async with httpx.AsyncClient(timeout=120) as client:
            await full.graphql(client, CREATE_WORKFLOW, input=IN_APP)
            members = await _create_subscribers(full, client, "m", size)
            await full.graphql(client, CREATE_TOPIC, input={"key": "everyone", "name": "Everyone"})
            for start in range(0, size, 1000):
                await full.graphql(
                    client, ADD_TO_TOPIC, key="everyone", input={"subscriberIds": members[start : start + 1000]}
                )
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(found.mongodb_url)
        try:
            database = mongo[full.settings.mongodb_database]
            write_rates, floors, seconds = [], [], []
            for index in range(runs):
                with _profiled(profile and index == 0, full.pid("worker"), "topic-worker"):
                    rate, until_stored, transaction = await measure_topic(full, database, "everyone", size)
                write_rates.append(rate)
                seconds.append(until_stored)
                floors.append(await insert_many_floor(database, transaction, size))
        finally:
            await mongo.close()
    writes = _figure("documents/s", write_rates)
    floor = _figure("documents/s", floors)
    factor = ratio(writes["median"], floor["median"])
    return {
        "size": size,
        "workers": workers,
        "fanOutWrites": writes
        | {"floor": floor, "ratio": round(factor, 2), "target": "within 2x of insert_many", "met": factor <= 2},
        "untilAllStored": {
            "unit": "s",
            **summary(seconds),
            "runs": [round(s, 2) for s in seconds],
            "messagesPerSecond": round(size / summary(seconds)["median"], 1),
        },
    }


@contextmanager
def _profiled(enabled: bool, pid: int, name: str) -> Iterator[None]:
    """With `--profile`, py-spy samples `pid` into bench/results/NAME.raw and the top frames are printed."""
    if not enabled:
        yield
        return
    raw = RESULTS / f"{name}.raw"
    with sampled(pid, raw):
        yield
    print(f"--- {name}: self time by package", *self_by_package(raw), sep="\n")
    print(f"--- {name}: self time by function", *self_frames(raw, 20), sep="\n")
    print(f"--- {name}: inclusive", *top_frames(raw, 60), sep="\n")


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument(
        "--triggers",
        type=int,
        default=2000,
        help="single triggers per run (default 2,000; 0 with --bulk-events 0 skips both)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="trigger requests in flight (default 16)")
    parser.add_argument("--bulk-events", type=int, default=5000, help="bulkTrigger events per run (default 5,000)")
    parser.add_argument("--batch", type=int, default=100, help="events per bulkTrigger call (default 100, the limit)")
    parser.add_argument("--topic-size", type=int, default=10_000, help="topic members (default 10,000; 0 skips)")
    parser.add_argument("--profile", action="store_true", help="py-spy the api (triggers) and worker (fan-out)")
    parser.add_argument("--topic-runs", type=int, default=3, help="topic fan-outs measured (default 3)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes for the topic fan-out (default 1)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
