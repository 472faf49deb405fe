"""Memory per idle inbox websocket in the api, beside the plain websocket floor (issue 8).

For each N (default 1,000 and 5,000) and each run, a fresh api (no worker, no scheduler: nothing else allocates)
and a fresh floor server (bench/floors/websocket.py) are started. Then, for each of the two servers:
a few warm-up clients connect first (the first subscription pays for lazy imports and caches, not per connection),
the N inbox sessions are opened (their HTTP requests are not part of a websocket's cost), the server's RSS is read
(VmRSS of /proc/PID/status), N clients connect and subscribe (`inboxEvents` over graphql-transport-ws for the api,
`/ws/{channel}` for the floor) and stay idle, and after a short settle the RSS is read again.
Per connection = (after - before) / N, in KiB; median and p99 over runs. Each run starts fresh processes because
memory freed by an earlier run's clients would be reused and hide the cost. `ratio` = ours / floor (how many times
the floor's memory one connection costs).

The clients live in `--client-processes` child processes (bench/inbox_load.py), not in the measuring process.

    uv run python -m bench.memory [--sizes 1000 5000] [--runs 3] [--smoke]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.harness import Servers, arguments, machine, measure_with_clients, servers, stack
from bench.inbox_load import ClientPool
from bench.realtime import floor_server, open_files_limit
from bench.stats import summary

WARM_UP_CLIENTS = 10
SETTLE_SECONDS = 2.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def growth(pid: int, n: int, connect: Callable[[], Awaitable[None]]) -> tuple[float, int]:
    """KiB per connection that `connect` (n clients) adds to the process, and the RSS before, in KiB."""
    await asyncio.sleep(SETTLE_SECONDS)
    before = rss_kib(pid)
    await connect()
    await asyncio.sleep(SETTLE_SECONDS)
    return (rss_kib(pid) - before) / n, before


async def api_run(found: Servers, workdir: Path, pool: ClientPool, n: int) -> tuple[float, int, int]:
    """One fresh api: KiB per idle subscribed websocket, the RSS before (KiB), and the api's open-files limit."""
    async with stack(found, workdir, workers=0, scheduler=False) as tidings:
        pid = tidings.pid("api")
        limit = open_files_limit(pid)
        if limit < n + 100:
            raise RuntimeError(f"the api may open {limit} files, fewer than {n} websockets need")
        run_id = uuid.uuid4().hex[:6]
        app, key = tidings.application_identifier, tidings.api_key
        await pool.sessions(tidings.base, app, key, [f"mw-{run_id}-{i}" for i in range(WARM_UP_CLIENTS)])
        await pool.connect_inbox(tidings.base)
        ids = [f"m-{run_id}-{i}" for i in range(n)]
        await pool.sessions(tidings.base, app, key, ids, first_index=WARM_UP_CLIENTS)
        per_connection, before = await growth(pid, n, lambda: pool.connect_inbox(tidings.base))
        await pool.close_sockets()
    return per_connection, before, limit


async def floor_run(found: Servers, workdir: Path, pool: ClientPool, n: int) -> tuple[float, int]:
    with floor_server(found.redis_url, workdir / "floor-websocket.log") as (process, base):
        run_id = uuid.uuid4().hex[:6]
        await pool.open_floor(base, [f"floor:mw-{run_id}-{i}" for i in range(WARM_UP_CLIENTS)])
        channels = [f"floor:m-{run_id}-{i}" for i in range(n)]
        result = await growth(process.pid, n, lambda: pool.open_floor(base, channels, WARM_UP_CLIENTS))
        await pool.close_sockets()
    return result


def figure(ours: list[float], floor: list[float], before: list[int]) -> dict[str, Any]:
    result: dict[str, Any] = {"unit": "KiB/connection", **summary(ours), "runs": ours}
    result["floor"] = {"unit": "KiB/connection", **summary(floor), "runs": floor}
    result["ratio"] = result["median"] / result["floor"]["median"] if result["floor"]["median"] > 0 else None
    result["api_rss_before_mib"] = round(statistics.median(before) / 1024, 1)
    return result


async def measure(options: Any, pool: ClientPool) -> tuple[dict[str, Any], dict[str, Any]]:
    figures: dict[str, Any] = {}
    with servers(options.workdir) as found:
        described = await machine(found)
        described["client_processes"] = options.client_processes
        for n in options.sizes:
            ours: list[float] = []
            floor: list[float] = []
            before: list[int] = []
            for run in range(options.runs):
                started = time.monotonic()
                per_connection, rss_before, limit = await api_run(found, options.workdir, pool, n)
                ours.append(per_connection)
                before.append(rss_before)
                described["api_open_files_limit"] = limit
                floor.append((await floor_run(found, options.workdir, pool, n))[0])
                elapsed = time.monotonic() - started
                print(
                    f"N={n} run {run + 1} ({elapsed:.0f}s): api {ours[-1]:.1f} KiB, floor {floor[-1]:.1f} KiB",
                    file=sys.stderr,
                )
            figures[f"kib_per_idle_websocket_n{n}"] = figure(ours, floor, before)
    return described, figures


async def main() -> None:
    parser = arguments(__doc__ or "")
    parser.set_defaults(runs=3)  # each run starts a fresh api
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000], help="idle websockets per run")
    parser.add_argument("--client-processes", type=int, default=2, help="processes holding the websockets")
    options = parser.parse_args()
    if options.smoke:
        options.sizes, options.runs = [20], 1
    await measure_with_clients("memory", options, measure)


if __name__ == "__main__":
    asyncio.run(main())
