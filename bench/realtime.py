"""Realtime inbox delivery to N connected websocket subscribers, beside a plain websocket floor (issue 8).

For each N (default 100, 1,000 and 5,000 subscribers), N inbox clients and N floor clients stay connected while
notifications are offered at a fixed rate (`--rate`, in ticks of 10 ms) and every client records what it received.
Measured per run: delivered/s = notifications received by all clients ÷ (last receive - first send), and latency
per notification (p50, p99 pooled over runs). A notification that never arrives, or arrives twice, fails the run.

Two Tidings paths:
- end-to-end: each tick is one GraphQL `trigger` of an in-app-only workflow addressing that tick's subscribers
  (round-robin over the N) → worker → MongoDB → Redis doorbell → api hub → websocket. Latency = receive - the moment
  the trigger request was sent. Its throughput is bounded by the worker(s) (`--workers`).
- fan-out: the doorbell the in-app step rings, published at the offered rate: the messages and their log events are
  written first by `deliver_in_app` itself (outside the clock, its doorbell captured instead of sent), then the
  captured doorbells (same channel, same payload) are published → api hub → the stream reads the log → websocket.
  Latency = receive - publish. A doorbell makes the stream read everything logged, so the events go out in rounds
  of at most one per subscriber, each round drained before the next is written (delivered/s is over the rounds'
  publish-to-last-receive windows). This is the like-for-like comparison with the floor.
Floor: bench/floors/websocket.py under uvicorn (as the api runs), one shared Redis pub/sub connection, the same
clients, the same N, the same rounds and publish pacing, in the same run; ratio = floor delivered/s ÷ ours.

Clients: `--client-processes` child processes (default 2) hold the websockets (see bench/inbox_load.py); this
process only triggers, publishes and keeps time, so it is not starved by thousands of sockets. `--profile` samples
the api with py-spy during the first run at the N nearest 1,000: bench/results/realtime-api.raw (fan-out) and
realtime-api-end-to-end.raw, and prints their top frames.

    uv run python -m bench.realtime [--sizes 100 1000 5000] [--rate 2000] [--seconds 2] [--runs 5] [--profile]
        [--end-to-end-seconds S] [--workers 1] [--client-processes 2] [--smoke]

Offered load per run: fan-out and floor max(N, rate x seconds) notifications, end-to-end rate x end-to-end-seconds
(lower it when the worker can't drain rate x seconds within the 180 s a run waits).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from beanie import PydanticObjectId
from redis.asyncio import Redis

from bench.harness import (
    CREATE_WORKFLOW,
    RESULTS,
    TRIGGER,
    Stack,
    arguments,
    machine,
    measure_with_clients,
    servers,
    stack,
)
from bench.inbox_load import ClientPool, Record
from bench.profile import sampled, self_frames, top_frames
from bench.stats import percentile, ratio, summary
from tidings.app.embedded import free_port
from tidings.app.resources import open_database
from tidings.environments.service import environment_by_application_identifier
from tidings.inbox.service import NewMessage, deliver_in_app

TICK = 0.010
WORKFLOW = "bench-inbox"
TARGET_N = 1000
TARGET_RATE = 2000.0
TARGET_P99_MS = 100.0
TARGET_RATIO = 4.0
TARGET = "≥ 2,000 notifications/s delivered with p99 < 100 ms at 1,000 subscribers, within 4x of the websocket floor"
_PREPARE_CONCURRENCY = 64


@dataclass
class Measurement:
    """One run of one path: how many arrived over which window, and each one's latency in ms."""

    delivered: int = 0
    window: float = 0.0
    sent_window: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.delivered / self.window if self.window else 0.0

    @property
    def offered_per_second(self) -> float:
        return self.delivered / self.sent_window if self.sent_window else 0.0

    def add(self, other: Measurement) -> None:
        self.delivered += other.delivered
        self.window += other.window
        self.sent_window += other.sent_window
        self.latencies += other.latencies


@dataclass
class Bench:
    """Everything a run needs: the stack, its environment, a Redis client to publish with, the clients."""

    tidings: Stack
    environment_id: PydanticObjectId
    redis: Redis
    pool: ClientPool
    floor_base: str
    http: httpx.AsyncClient
    timeout: float


class _Captured:
    """A Publisher that keeps the doorbell `deliver_in_app` rings instead of sending it."""

    def __init__(self) -> None:
        self.doorbells: list[tuple[str, str]] = []

    async def publish(self, channel: str, message: str) -> None:
        self.doorbells.append((channel, message))


# Pacing and checking --------------------------------------------------------------------------------------------


def tick_sizes(count: int, rate: float) -> list[int]:
    """How many of `count` items go out in each 10 ms tick at `rate`/s (fractions carried over, not rounded away)."""
    sizes: list[int] = []
    done = 0
    tick = 0
    while done < count:
        due = min(count, int((tick + 1) * rate * TICK))
        sizes.append(due - done)
        done = due
        tick += 1
    return sizes


async def paced(rate: float, count: int) -> AsyncIterator[tuple[int, int]]:
    """(start, size) of each tick's slice of `count` items, yielded on the tick's due time."""
    start = time.monotonic()
    offset = 0
    for tick, size in enumerate(tick_sizes(count, rate)):
        delay = start + tick * TICK - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if size:
            yield offset, size
        offset += size


def matched(expected: dict[tuple[int, str], float], records: Sequence[Record], what: str) -> Measurement:
    """Latencies of the expected (client, tag) pairs; raises if one is missing or came twice."""
    seen: set[tuple[int, str]] = set()
    latencies: list[float] = []
    for index, tag, at in records:
        key = (index, tag)
        if key not in expected or key in seen:
            raise RuntimeError(f"{what}: unexpected or duplicate delivery {key}")
        seen.add(key)
        latencies.append((at - expected[key]) * 1000)
    missing = expected.keys() - seen
    if missing:
        raise RuntimeError(f"{what}: {len(missing)} of {len(expected)} not delivered, e.g. {sorted(missing)[:3]}")
    first_sent = min(expected.values())
    return Measurement(
        delivered=len(records),
        window=max(at for _, _, at in records) - first_sent,
        sent_window=max(expected.values()) - first_sent + TICK,
        latencies=latencies,
    )


async def collected(bench: Bench, expected: dict[tuple[int, str], float], what: str) -> Measurement:
    per_child = [0] * bench.pool.size
    for index, _ in expected:
        per_child[bench.pool.child_of(index)] += 1
    return matched(expected, await bench.pool.collect(per_child, bench.timeout), what)


async def publish_paced(redis: Redis, items: Sequence[tuple[int, str, str, str]], rate: float) -> dict[Any, float]:
    """Publishes (client, tag, channel, message) items at `rate`, one pipeline per tick; (client, tag) → send time."""
    sent: dict[Any, float] = {}
    async for offset, size in paced(rate, len(items)):
        chunk = items[offset : offset + size]
        pipeline = redis.pipeline(transaction=False)
        for _, _, channel, message in chunk:
            pipeline.publish(channel, message)
        at = time.monotonic()
        await pipeline.execute()
        sent.update({(index, tag): at for index, tag, _, _ in chunk})
    return sent


def rounds(events: int, n: int) -> list[range]:
    """The clients addressed by each fan-out round: at most one event per client per round, round-robin."""
    return [range(start, min(start + n, events)) for start in range(0, events, n)]


# The three measurements -----------------------------------------------------------------------------------------


async def fanout_run(bench: Bench, subscriber_ids: Sequence[str], events: int, rate: float) -> Measurement:
    total = Measurement()
    n = len(subscriber_ids)
    for number, span in enumerate(rounds(events, n)):
        tag = f"b-{uuid.uuid4().hex[:8]}-{number}"
        items = await prepared(bench, [(j % n, subscriber_ids[j % n]) for j in span], tag)
        sent = await publish_paced(bench.redis, items, rate)
        total.add(await collected(bench, sent, "fan-out"))
    return total


async def prepared(bench: Bench, clients: Sequence[tuple[int, str]], tag: str) -> list[tuple[int, str, str, str]]:
    """Each client's message and log event written as the in-app step writes them; their doorbells, unsent."""
    limit = asyncio.Semaphore(_PREPARE_CONCURRENCY)

    async def one(index: int, subscriber_id: str) -> tuple[int, str, str, str]:
        captured = _Captured()
        new = NewMessage(
            environment_id=bench.environment_id,
            subscriber_id=subscriber_id,
            notification_id=PydanticObjectId(),
            transaction_id=uuid.uuid4().hex,
            workflow_id=WORKFLOW,
            step_id="inbox",
            subject="Bench",
            body=tag,
        )
        async with limit:
            await deliver_in_app(new, captured)
        [(channel, message)] = captured.doorbells
        return index, tag, channel, message

    return list(await asyncio.gather(*(one(index, subscriber_id) for index, subscriber_id in clients)))


async def floor_run(bench: Bench, channels: Sequence[str], events: int, rate: float) -> Measurement:
    total = Measurement()
    n = len(channels)
    for number, span in enumerate(rounds(events, n)):
        tag = f"f-{uuid.uuid4().hex[:8]}-{number}"
        items = [(j % n, tag, channels[j % n], tag) for j in span]
        sent = await publish_paced(bench.redis, items, rate)
        total.add(await collected(bench, sent, "floor"))
    return total


async def end_to_end_run(bench: Bench, subscriber_ids: Sequence[str], events: int, rate: float) -> Measurement:
    n = len(subscriber_ids)
    prefix = f"a-{uuid.uuid4().hex[:8]}"
    sent: dict[tuple[int, str], float] = {}
    requests: list[asyncio.Task[None]] = []

    async def trigger(clients: list[int], tag: str) -> None:
        to = [{"subscriberId": subscriber_ids[index]} for index in clients]
        sent.update({(index, tag): time.monotonic() for index in clients})
        payload = {"tag": tag}
        await bench.tidings.graphql(bench.http, TRIGGER, input={"workflowId": WORKFLOW, "to": to, "payload": payload})

    async for offset, size in paced(rate, events):
        if size > n:
            raise ValueError(f"--rate {rate} puts {size} notifications in a 10 ms tick, more than the {n} subscribers")
        clients = [(offset + k) % n for k in range(size)]
        requests.append(asyncio.create_task(trigger(clients, f"{prefix}-{offset}")))
    await asyncio.gather(*requests)
    return await collected(bench, sent, "end-to-end")


# Summaries ------------------------------------------------------------------------------------------------------


def rate_figure(runs: Sequence[Measurement], floor: Sequence[Measurement] | None, met: bool | None) -> dict[str, Any]:
    values = [run.per_second for run in runs]
    figure: dict[str, Any] = {"unit": "notifications/s", **summary(values), "runs": values}
    figure["offered"] = statistics.median(run.offered_per_second for run in runs)
    if floor is not None:
        floor_values = [run.per_second for run in floor]
        figure["floor"] = {"unit": "notifications/s", **summary(floor_values), "runs": floor_values}
        figure["ratio"] = ratio(figure["median"], figure["floor"]["median"])
    if met is not None:
        figure |= {"target": TARGET, "met": met}
    return figure


def latency_figure(runs: Sequence[Measurement], floor: Sequence[Measurement] | None) -> dict[str, Any]:
    """Median and p99 over every notification of every run; `runs` holds each run's p99. The ratio is ours ÷ the
    floor's (how many times slower), on the median and, as `ratio_p99`, on the p99."""

    def shape(measurements: Sequence[Measurement]) -> dict[str, Any]:
        pooled = [latency for run in measurements for latency in run.latencies]
        per_run = [percentile(run.latencies, 0.99) for run in measurements]
        return {"unit": "ms", **summary(pooled), "runs": per_run}

    figure = shape(runs)
    if floor is not None:
        figure["floor"] = shape(floor)
        figure["ratio"] = figure["median"] / figure["floor"]["median"]
        figure["ratio_p99"] = figure["p99"] / figure["floor"]["p99"]
    return figure


def size_figures(n: int, results: dict[str, list[Measurement]], rate: float) -> dict[str, Any]:
    at_target = n == TARGET_N and rate >= TARGET_RATE
    fanout, floor, e2e = results["fanout"], results["floor"], results["end_to_end"]
    fanout_rate, e2e_rate = rate_figure(fanout, floor, None), rate_figure(e2e, None, None)
    fanout_latency, e2e_latency = latency_figure(fanout, floor), latency_figure(e2e, None)
    if at_target:
        fanout_rate |= {
            "target": TARGET,
            "met": fanout_rate["median"] >= TARGET_RATE
            and fanout_latency["p99"] < TARGET_P99_MS
            and fanout_rate["ratio"] <= TARGET_RATIO,
        }
        e2e_rate |= {
            "target": TARGET + " (no floor for this path)",
            "met": e2e_rate["median"] >= TARGET_RATE and e2e_latency["p99"] < TARGET_P99_MS,
        }
    return {
        f"fanout_delivered_n{n}": fanout_rate,
        f"fanout_latency_n{n}": fanout_latency,
        f"end_to_end_delivered_n{n}": e2e_rate,
        f"end_to_end_latency_n{n}": e2e_latency,
    }


# Processes and setup --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def floor_server(redis_url: str, log_path: Path) -> Any:
    port = free_port()
    argv = [sys.executable, "-m", "bench.floors.websocket", "--port", str(port), "--redis-url", redis_url]
    with log_path.open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_listening(port, process, log_path)
            yield process, f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_listening(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    import socket  # noqa: PLC0415 (only here)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the floor server exited:\n{log_path.read_text()[-3000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the floor server did not listen within 60s:\n{log_path.read_text()[-3000:]}")


def open_files_limit(pid: int) -> int:
    """The soft limit on open files of a process, from /proc/PID/limits: each websocket is a descriptor."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise RuntimeError(f"no open-files limit for {pid}")


async def create_workflow(tidings: Stack, http: httpx.AsyncClient) -> None:
    steps = [{"inApp": {"stepId": "inbox", "subject": "Bench", "body": "{{ payload.tag }}"}}]
    await tidings.graphql(http, CREATE_WORKFLOW, input={"workflowId": WORKFLOW, "name": WORKFLOW, "steps": steps})


async def environment_id(tidings: Stack) -> PydanticObjectId:
    environment = await environment_by_application_identifier(tidings.application_identifier)
    assert environment is not None
    assert environment.id is not None
    return environment.id


# The benchmark --------------------------------------------------------------------------------------------------


async def measure_size(bench: Bench, n: int, options: Any, profile: bool) -> dict[str, Any]:
    tidings = bench.tidings
    run_id = uuid.uuid4().hex[:6]
    subscriber_ids = [f"rt-{run_id}-{i}" for i in range(n)]
    channels = [f"floor:{run_id}:{i}" for i in range(n)]
    started = time.monotonic()
    await bench.pool.sessions(tidings.base, tidings.application_identifier, tidings.api_key, subscriber_ids)
    sessions = time.monotonic() - started
    await bench.pool.connect_inbox(tidings.base)
    await bench.pool.open_floor(bench.floor_base, channels)
    elapsed = time.monotonic() - started
    print(f"N={n}: sessions {sessions:.1f}s, {2 * n} clients connected {elapsed:.1f}s", file=sys.stderr, flush=True)
    await warm_up(bench, subscriber_ids, channels)
    events = max(n, round(options.rate * options.seconds))
    e2e_seconds = options.seconds if options.end_to_end_seconds is None else options.end_to_end_seconds
    e2e_events = max(1, round(options.rate * e2e_seconds))
    results: dict[str, list[Measurement]] = {"fanout": [], "floor": [], "end_to_end": []}
    for run in range(options.runs):
        profiled = profile and run == 0
        with profiling(tidings.pid("api"), RESULTS / "realtime-api.raw", profiled):
            results["fanout"].append(await fanout_run(bench, subscriber_ids, events, options.rate))
        results["floor"].append(await floor_run(bench, channels, events, options.rate))
        print(f"N={n} run {run + 1} ({time.monotonic() - started:.1f}s): " + progress(results), file=sys.stderr)
        with profiling(tidings.pid("api"), RESULTS / "realtime-api-end-to-end.raw", profiled):
            results["end_to_end"].append(await end_to_end_run(bench, subscriber_ids, e2e_events, options.rate))
        print(f"N={n} run {run + 1} ({time.monotonic() - started:.1f}s): " + progress(results), file=sys.stderr)
    await bench.pool.close_sockets()
    return size_figures(n, results, options.rate)


async def warm_up(bench: Bench, subscriber_ids: Sequence[str], channels: Sequence[str]) -> None:
    """A few notifications down every path, not measured: the stack returns before its worker consumes (it may
    still be importing), and the first calls of each path pay for lazy imports and caches."""
    timeout, bench.timeout = bench.timeout, max(bench.timeout, 180.0)
    try:
        events = min(len(subscriber_ids), 10)
        await end_to_end_run(bench, subscriber_ids, events, 100.0)
        await fanout_run(bench, subscriber_ids, events, 100.0)
        await floor_run(bench, channels, events, 100.0)
    finally:
        bench.timeout = timeout


def progress(results: dict[str, list[Measurement]]) -> str:
    return ", ".join(
        f"{name} {runs[-1].per_second:.0f}/s p99 {percentile(runs[-1].latencies, 0.99):.1f} ms"
        for name, runs in results.items()
        if runs
    )


@contextlib.contextmanager
def profiling(pid: int, raw_path: Path, enabled: bool) -> Any:
    if not enabled:
        yield
        return
    with sampled(pid, raw_path):
        yield
    print(f"--- {raw_path.name}: inclusive", file=sys.stderr)
    for frame, share in top_frames(raw_path, 25):
        print(f"{share:5.1f}% {frame}", file=sys.stderr)
    print(f"--- {raw_path.name}: self", file=sys.stderr)
    for frame, share in self_frames(raw_path, 15):
        print(f"{share:5.1f}% {frame}", file=sys.stderr)


async def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000], help="subscribers connected")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="notifications offered per second")
    parser.add_argument("--seconds", type=float, default=2.0, help="offered load per run and path (at least N)")
    parser.add_argument(
        "--end-to-end-seconds", type=float, default=None, help="offered load of the end-to-end path (default --seconds)"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (the end-to-end path)")
    parser.add_argument("--client-processes", type=int, default=2, help="processes holding the websockets")
    parser.add_argument("--profile", action="store_true", help="py-spy the api during the first run near N=1,000")
    options = parser.parse_args()
    if options.smoke:
        options.sizes, options.runs, options.rate, options.seconds = [5], 1, 200.0, 0.1
        options.end_to_end_seconds = None
    await measure_with_clients("realtime", options, measure)


async def measure(options: Any, pool: ClientPool) -> tuple[dict[str, Any], dict[str, Any]]:
    figures: dict[str, Any] = {}
    with servers(options.workdir) as found:
        described = await machine(found)
        started = time.monotonic()
        async with (
            stack(found, options.workdir, workers=options.workers) as tidings,
            open_database(tidings.settings),
            httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=200)) as http,
        ):
            print(f"stack up in {time.monotonic() - started:.1f}s", file=sys.stderr, flush=True)
            described["api_open_files_limit"] = open_files_limit(tidings.pid("api"))
            described |= {"client_processes": options.client_processes, "workers": options.workers}
            await create_workflow(tidings, http)
            redis = Redis.from_url(found.redis_url)
            try:
                with floor_server(found.redis_url, options.workdir / "floor-websocket.log") as (_, floor_base):
                    timeout = 30.0 if options.smoke else 180.0
                    bench = Bench(tidings, await environment_id(tidings), redis, pool, floor_base, http, timeout)
                    nearest = min(options.sizes, key=lambda size: abs(size - TARGET_N))
                    for n in options.sizes:
                        figures |= await measure_size(bench, n, options, options.profile and n == nearest)
            finally:
                await redis.aclose()
    return described, figures


if __name__ == "__main__":
    asyncio.run(main())
