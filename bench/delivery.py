"""Delivery throughput (issue 8): emails per second through a worker to a local SMTP sink, and chat messages per
second through the `webhook` chat provider to a local HTTP sink, each beside a floor measured in the same run.

Setup: a real api, worker(s) and scheduler (bench.harness) with an SMTP integration (security "none") pointing at an
SMTP sink process and a `webhook` integration pointing at an HTTP sink process (bench.sinks: separate processes that
record when each recipient's message arrived). M subscribers with emails are upserted in bulk; an email-only and a
chat-only workflow exist.

One measurement: the sink is reset, every subscriber is triggered with bulkTrigger (events of up to
`trigger_recipients_max` recipients, up to `bulk_trigger_max` events a request), and the rate is M divided by the
time from the first trigger request sent to the last message received by the sink. Each message's latency is its
arrival minus that first send: latency under a full queue, not of a lone message.

Floors, against the same sink processes right after each measurement:
- email: bench.floors.smtp, prebuilt messages of the mean size Tidings sent, one reused connection per worker
  (Tidings' SMTP provider holds one connection per integration and sends on it under a lock, so one at a time);
- chat: a plain httpx.AsyncClient POSTing bodies of the same size with as many requests in flight as the workers
  run tasks at once (workers x worker_max_async_tasks, capped by httpx's pool of 100 per client).

`--profile` samples the first worker with py-spy during the first email measurement (bench/results/
delivery-worker.raw) and prints the costliest frames.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from bench import harness
from bench.floors import smtp as smtp_floor
from bench.profile import sampled, self_frames, top_frames
from bench.sinks import SinkProcess, Status, sink_process
from bench.stats import ratio, summary

CREATE_INTEGRATION = "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { identifier } }"

EMAIL_TARGET = 300.0
HTTPX_POOL = 100  # httpx.AsyncClient's default max_connections: one provider instance never has more in flight
WARM_UP = 10


@dataclass(frozen=True)
class Options:
    emails: int
    messages: int
    runs: int
    workers: int
    max_async_tasks: int | None
    profile: bool
    smoke: bool


@dataclass
class Measured:
    """One run of one path: its rate and every message's latency (ms)."""

    rate: float
    latencies: list[float]
    mean_size: int
    costs: dict[str, float]


def subscriber_id(index: int) -> str:
    return f"sub-{index:06d}"


def email_of(index: int) -> str:
    return f"{subscriber_id(index)}@example.com"


async def prepare(stack: harness.Stack, client: httpx.AsyncClient, smtp_port: int, hook_url: str, count: int) -> None:
    """The two integrations, the two workflows and `count` subscribers with emails."""
    smtp_config = {"host": "127.0.0.1", "port": smtp_port, "security": "none", "fromEmail": "t@example.com"}
    await stack.graphql(client, CREATE_INTEGRATION, input={"providerId": "smtp", "name": "Sink", "config": smtp_config})
    hook = {"providerId": "webhook", "name": "Hook", "config": {"url": hook_url}}
    await stack.graphql(client, CREATE_INTEGRATION, input={**hook, "credentials": {"signingSecret": "whsec-bench"}})
    steps: dict[str, dict[str, Any]] = {
        "mail": {"email": {"subject": "Hello {{ subscriber.subscriberId }}", "body": "<p>{{ payload.note }}</p>"}},
        "chat": {"chat": {"body": "Build {{ payload.note }} passed"}},
    }
    for workflow_id, step in steps.items():
        await stack.graphql(
            client, harness.CREATE_WORKFLOW, input={"workflowId": workflow_id, "name": workflow_id, "steps": [step]}
        )
    await stack.upsert_subscribers(
        client, [{"subscriberId": subscriber_id(i), "email": email_of(i)} for i in range(count)]
    )


async def trigger_all(stack: harness.Stack, client: httpx.AsyncClient, workflow_id: str, count: int, tag: str) -> float:
    """Triggers `workflow_id` for subscribers 0..count-1 in as few requests as the limits allow; the wall-clock time
    at which the first request was sent."""
    per_event = stack.settings.limit_trigger_recipients_max
    events = [
        {
            "workflowId": workflow_id,
            "to": [{"subscriberId": subscriber_id(i)} for i in range(start, min(count, start + per_event))],
            "payload": {"note": tag},
            "transactionId": f"{tag}-{start}",
        }
        for start in range(0, count, per_event)
    ]
    started = time.time()
    for batch in itertools.batched(events, stack.settings.limit_bulk_trigger_max, strict=False):
        await stack.graphql(client, harness.BULK_TRIGGER, input={"events": list(batch)})
    return started


def delivered(status: Status, keys: Sequence[str], started: float, costs: dict[str, float]) -> Measured:
    """Rate and latencies of one measurement; raises if a recipient's message is missing."""
    missing = [key for key in keys if key not in status.at]
    if missing or status.count != len(keys):
        raise AssertionError(f"{status.count} received for {len(keys)} recipients; missing e.g. {missing[:3]}")
    arrivals = [status.at[key] for key in keys]
    elapsed = max(arrivals) - started
    latencies = [1000 * (at - started) for at in arrivals]
    return Measured(len(keys) / elapsed, latencies, status.size // len(keys), costs)


async def through_tidings(
    stack: harness.Stack,
    client: httpx.AsyncClient,
    sink: SinkProcess,
    *,
    workflow_id: str,
    keys: Sequence[str],
    tag: str,
    accounting: Accounting,
) -> Measured:
    await sink.reset(client)
    before = await accounting.snapshot()
    started = await trigger_all(stack, client, workflow_id, len(keys), tag)
    try:
        status = await sink.wait_for(client, len(keys), stall=60.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from None
    costs = Accounting.per_message(before, await accounting.snapshot(), len(keys))
    measured = delivered(status, keys, started, costs)
    print(f"{tag}: {measured.rate:.1f}/s, per message {costs}", flush=True)
    return measured


async def smtp_floor_rate(
    client: httpx.AsyncClient, sink: SinkProcess, count: int, size: int, connections: int
) -> float:
    await sink.reset(client)
    seconds = await smtp_floor.send_loop("127.0.0.1", sink.port, count, size, connections)
    status = await sink.status(client)
    if status.count != count:
        raise AssertionError(f"the SMTP floor delivered {status.count} of {count}")
    return count / seconds


def chat_body(index: int, size: int) -> bytes:
    """A JSON body naming its recipient as the webhook provider's does, padded to `size` bytes."""
    document = {"subscriberId": f"floor-{index}", "channel": "chat", "content": {"body": ""}}
    bare = len(json.dumps(document, separators=(",", ":")))
    document["content"] = {"body": "x" * max(0, size - bare)}
    return json.dumps(document, separators=(",", ":")).encode()


async def http_floor_rate(
    client: httpx.AsyncClient, sink: SinkProcess, count: int, size: int, concurrency: int
) -> float:
    async with httpx.AsyncClient(timeout=30) as poster:

        async def post_all(indices: range) -> None:
            shared = iter(indices)  # each request in flight takes the next index

            async def post_next() -> None:
                for index in shared:
                    answer = await poster.post(sink.url + "/hook", content=chat_body(index, size))
                    answer.raise_for_status()

            await asyncio.gather(*(post_next() for _ in range(concurrency)))

        # Opens the pool's connections before the clock starts, as the worker's warm-up round did for Tidings.
        await post_all(range(count, count + concurrency))
        await sink.reset(client)
        started = time.perf_counter()
        await post_all(range(count))
        seconds = time.perf_counter() - started
    status = await sink.status(client)
    if status.count != count:
        raise AssertionError(f"the HTTP floor delivered {status.count} of {count}")
    return count / seconds


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc); 0 when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _port(url: str) -> str:
    return url.rpartition(":")[2].split("/")[0]


def _server_pids(found: harness.Servers) -> dict[str, int]:
    """The embedded servers' processes, found by program and port in their command line (valkey rewrites its own
    to "valkey-server HOST:PORT"); servers given by URL may be elsewhere and are left out."""
    wanted = {"mongodb": ("secantus", _port(found.mongodb_url)), "redis": ("valkey", _port(found.redis_url))}
    pids: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        try:
            text = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        for name, (program, port) in wanted.items():
            if program in text and (f"--port {port} " in text or f":{port} " in text):
                pids[name] = int(entry.name)
    return pids


@dataclass
class Accounting:
    """Where one measurement's work went: CPU seconds of each process and MongoDB operations, per message."""

    pids: dict[str, int]
    mongo: AsyncMongoClient[dict[str, Any]]

    async def snapshot(self) -> dict[str, float]:
        cpu = {f"cpu_{role}": _cpu_seconds(pid) for role, pid in self.pids.items()}
        try:
            status = await self.mongo.admin.command("serverStatus")
        except (PyMongoError, OSError):
            # The server may have closed this idle connection during a long run: the counters are a bonus, the
            # measurement goes on without them (a missing key is left out of the per-message costs).
            return cpu
        return {**{f"mongo_{name}": float(value) for name, value in status.get("opcounters", {}).items()}, **cpu}

    @staticmethod
    def per_message(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
        # CPU in ms per message; MongoDB operations per message (server-wide: the scheduler's polling is in it).
        scale = {"cpu": 1000.0, "mongo": 1.0}
        return {
            key: round(scale[key.partition("_")[0]] * (after[key] - before[key]) / count, 3)
            for key in after
            if key in before
        }


def rate_figure(unit: str, runs: list[float], floor_runs: list[float], **extra: Any) -> dict[str, Any]:
    figure: dict[str, Any] = {"unit": unit, **summary(runs), "runs": runs}
    figure["floor"] = {"unit": unit, **summary(floor_runs), "runs": floor_runs}
    figure["ratio"] = ratio(figure["median"], figure["floor"]["median"])
    return {**figure, **extra}


def latency_figure(measured: list[Measured]) -> dict[str, Any]:
    pooled = [latency for run in measured for latency in run.latencies]
    per_run = [summary(run.latencies)["median"] for run in measured]
    return {"unit": "ms", **summary(pooled), "runs": per_run, "note": "from the first trigger sent, queue full"}


def profiled(options: Options, stack: harness.Stack, run: int) -> AbstractContextManager[None]:
    if not options.profile or run > 0:
        return nullcontext()
    return sampled(stack.pid("worker"), harness.RESULTS / "delivery-worker.raw")


def print_profile() -> dict[str, Any]:
    raw = harness.RESULTS / "delivery-worker.raw"
    found = {"inclusive": top_frames(raw, 25), "self": self_frames(raw, 25)}
    for kind, frames in found.items():
        print(f"worker profile, {kind} (% of samples):", flush=True)
        for frame, share in frames:
            print(f"  {share:5.1f}  {frame}", flush=True)
    return found


async def warm_up(stack: harness.Stack, client: httpx.AsyncClient, smtp: SinkProcess, hook: SinkProcess) -> None:
    """One small round of each path: the worker's first tasks import, connect and fill caches; not measured."""
    count = WARM_UP
    for sink, workflow_id in ((smtp, "mail"), (hook, "chat")):
        await sink.reset(client)
        await trigger_all(stack, client, workflow_id, count, f"warm-{workflow_id}")
        try:
            await sink.wait_for(client, count, stall=120.0)  # the worker may still be starting
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{stack.logs()}") from None


@dataclass
class Bench:
    """What one measurement needs: the running system, both sinks and the accounting of its processes."""

    options: Options
    stack: harness.Stack
    client: httpx.AsyncClient
    smtp: SinkProcess
    hook: SinkProcess
    accounting: Accounting

    @property
    def concurrency(self) -> int:
        """Sends the workers have in flight at most: their tasks, capped by each provider's HTTP pool."""
        return self.options.workers * min(self.stack.settings.worker_max_async_tasks, HTTPX_POOL)


@dataclass
class Run:
    mail: Measured
    mail_floor: float
    chat: Measured
    chat_floor: float


async def one_run(bench: Bench, run: int) -> Run:
    options, stack, client = bench.options, bench.stack, bench.client
    emails = [email_of(i) for i in range(options.emails)]
    chats = [subscriber_id(i) for i in range(options.messages)]
    with profiled(options, stack, run):
        mail = await through_tidings(
            stack, client, bench.smtp, workflow_id="mail", keys=emails, tag=f"mail-{run}", accounting=bench.accounting
        )
    mail_floor = await smtp_floor_rate(client, bench.smtp, options.emails, mail.mean_size, options.workers)
    chat = await through_tidings(
        stack, client, bench.hook, workflow_id="chat", keys=chats, tag=f"chat-{run}", accounting=bench.accounting
    )
    chat_floor = await http_floor_rate(client, bench.hook, options.messages, chat.mean_size, bench.concurrency)
    print(
        f"run {run}: {mail.rate:.0f} emails/s (floor {mail_floor:.0f}), "
        f"{chat.rate:.0f} chat msgs/s (floor {chat_floor:.0f})",
        flush=True,
    )
    return Run(mail, mail_floor, chat, chat_floor)


def mean_costs(measured: list[Measured]) -> dict[str, float]:
    return {key: round(sum(m.costs[key] for m in measured) / len(measured), 3) for key in measured[0].costs}


def figures_of(bench: Bench, runs: list[Run]) -> dict[str, Any]:
    options = bench.options
    settings = {"workers": options.workers, "worker_max_async_tasks": bench.stack.settings.worker_max_async_tasks}
    email_rates = [run.mail.rate for run in runs]
    mails, chats = [run.mail for run in runs], [run.chat for run in runs]
    return {
        "email_per_second": rate_figure(
            "emails/s",
            email_rates,
            [run.mail_floor for run in runs],
            target=f">= {EMAIL_TARGET:.0f} emails/s",
            met=summary(email_rates)["median"] >= EMAIL_TARGET,
            count=options.emails,
            settings=settings,
            floor_method=f"aiosmtplib, {options.workers} reused connection(s), sequential sends on each",
            per_email=mean_costs(mails),
        ),
        "email_latency_ms": latency_figure(mails),
        "chat_per_second": rate_figure(
            "msgs/s",
            [run.chat.rate for run in runs],
            [run.chat_floor for run in runs],
            count=options.messages,
            settings=settings,
            floor_method=f"httpx.AsyncClient, {bench.concurrency} requests in flight",
            per_message=mean_costs(chats),
        ),
        "chat_latency_ms": latency_figure(chats),
    }


async def measure(options: Options, workdir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    overrides: dict[str, Any] = {"worker_metrics_port": 0, "scheduler_metrics_port": 0}
    if options.max_async_tasks is not None:
        overrides["worker_max_async_tasks"] = options.max_async_tasks
    with (
        harness.servers(workdir) as found,
        sink_process("smtp", workdir / "smtp-sink.log") as smtp,
        sink_process("http", workdir / "http-sink.log") as hook,
    ):
        machine = await harness.machine(found)
        async with (
            harness.stack(found, workdir, workers=options.workers, overrides=overrides) as stack,
            httpx.AsyncClient(timeout=120) as client,
            AsyncMongoClient[dict[str, Any]](found.mongodb_url) as mongo,
        ):
            await smtp.ready(client)
            await hook.ready(client)
            await prepare(stack, client, smtp.port, hook.url + "/hook", max(options.emails, options.messages))
            await warm_up(stack, client, smtp, hook)
            pids = {process.role + str(index): process.pid for index, process in enumerate(stack.processes)}
            pids |= {**_server_pids(found), "smtp_sink": smtp.process.pid, "http_sink": hook.process.pid}
            bench = Bench(options, stack, client, smtp, hook, Accounting(pids, mongo))
            runs = [await one_run(bench, run) for run in range(options.runs)]
    figures = figures_of(bench, runs)
    if options.profile:
        figures["email_per_second"]["worker_profile"] = print_profile()
    return machine, figures


def parse(argv: Sequence[str] | None = None) -> tuple[Options, argparse.Namespace]:
    parser = harness.arguments(__doc__.splitlines()[0] if __doc__ else "delivery")
    parser.add_argument("--emails", type=int, default=2000, help="emails per measurement (default 2000)")
    parser.add_argument("--messages", type=int, default=2000, help="chat messages per measurement (default 2000)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--max-async-tasks", type=int, default=None, help="worker_max_async_tasks (default: as set)")
    parser.add_argument("--profile", action="store_true", help="py-spy the worker during the first email run")
    args = parser.parse_args(argv)
    small: Callable[[int], int] = (lambda n: min(n, 10)) if args.smoke else (lambda n: n)
    options = Options(
        emails=small(args.emails),
        messages=small(args.messages),
        runs=1 if args.smoke else args.runs,
        workers=args.workers,
        max_async_tasks=args.max_async_tasks,
        profile=args.profile,
        smoke=args.smoke,
    )
    return options, args


def main() -> None:
    options, args = parse()
    args.workdir.mkdir(parents=True, exist_ok=True)
    machine, figures = asyncio.run(measure(options, args.workdir))
    harness.record("delivery", machine, figures, args.output, options.smoke)


if __name__ == "__main__":
    main()
