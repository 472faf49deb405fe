"""Mixed demo traffic against a running Tidings, so every row of the dashboard has something to show.

Starts its own SMTP sink (aiosmtpd, a dev dependency) that defers or refuses some mail, points an SMTP integration
at it, and for `--minutes`: triggers in-app + email and in-app-only workflows (single and bulk), repeats some
transactionIds, sends some invalid payloads and a bad GraphQL document, while websocket inbox clients stay
subscribed. Needs TIDINGS_ALLOW_PRIVATE_NETWORK_URLS=true on the api and worker (the sink is on loopback).

    uv run python deploy/grafana/traffic.py --api http://127.0.0.1:8000 --api-key "$(cat .tidings/dev-api-key)"
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import time
from typing import Any

import httpx
import websockets
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tidings.app.embedded import free_port

SUBSCRIBERS = [f"preview-{index}" for index in range(4)]
WORKFLOWS: dict[str, dict[str, Any]] = {
    "preview-alert": {
        "steps": [{"inApp": {"body": "alert {{ payload.n }}"}}, {"email": {"subject": "s", "body": "b"}}]
    },
    "preview-ping": {"steps": [{"inApp": {"body": "ping {{ payload.n }}"}}]},
    "preview-typed": {
        "steps": [{"inApp": {"body": "{{ payload.amount }}"}}],
        "payloadSchema": {"type": "object", "required": ["amount"]},
    },
}
SUBSCRIBE = "subscription { inboxEvents { __typename } }"


class FlakyRelay:
    """Accepts mail, but defers every 7th message (retried) and refuses every 19th (a failed job)."""

    def __init__(self) -> None:
        self.count = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's hook)
        number = next(self.count)
        if number % 19 == 0:
            return "550 5.1.1 No such user"
        if number % 7 == 0:
            return "451 4.3.0 Try again later"
        return "250 Message accepted"


class Api:
    def __init__(self, client: httpx.AsyncClient, api_key: str) -> None:
        self.client, self.api_key = client, api_key

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"ApiKey {self.api_key}"}
        response = await self.client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        body: dict[str, Any] = response.json()
        return body


async def inbox_client(base: str, api: Api, application: str, subscriber: str, stop: asyncio.Event) -> None:
    digest = hmac.new(api.api_key.encode(), subscriber.encode(), hashlib.sha256).hexdigest()
    session = await api(
        "mutation($a: String!, $s: String!, $h: String) { inboxSession(applicationIdentifier: $a, subscriberId: $s, "
        "subscriberHash: $h) { token } }",
        a=application,
        s=subscriber,
        h=digest,
    )
    token = session["data"]["inboxSession"]["token"]
    url = base.replace("http", "ws", 1) + "/graphql"
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        await socket.recv()
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
        while not stop.is_set():
            try:
                message = json.loads(await asyncio.wait_for(socket.recv(), 1))
            except TimeoutError:
                continue
            if message["type"] == "ping":
                await socket.send(json.dumps({"type": "pong"}))


async def drive(base: str, api_key: str, seconds: float, smtp_port: int) -> None:
    trigger = "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId } }"
    bulk = "mutation($input: BulkTriggerInput!) { bulkTrigger(input: $input) { transactionId } }"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        api = Api(client, api_key)
        run = f"{int(time.time())}"
        config = {"host": "127.0.0.1", "port": smtp_port, "security": "none", "fromEmail": "preview@example.com"}
        created = await api(
            "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { identifier } }",
            input={"providerId": "smtp", "name": f"Preview sink {run}", "config": config},
        )
        assert "errors" not in created, created
        for workflow_id, fields in WORKFLOWS.items():  # already there on a second run: the error is fine
            await api(
                "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }",
                input={"workflowId": workflow_id, "name": workflow_id, **fields},
            )
        application = (await api("{ currentEnvironment { applicationIdentifier } }"))["data"]["currentEnvironment"]
        stop = asyncio.Event()
        sockets = [
            asyncio.create_task(inbox_client(base, api, application["applicationIdentifier"], subscriber, stop))
            for subscriber in SUBSCRIBERS[:3]
        ]
        deadline = time.monotonic() + seconds
        for n in itertools.count():
            if time.monotonic() > deadline:
                break
            to = {"subscriber": {"subscriberId": SUBSCRIBERS[n % 4], "email": f"{SUBSCRIBERS[n % 4]}@example.com"}}
            transaction = f"{run}-{n - 1 if n % 10 == 0 else n}"  # every 10th repeats the last: a duplicate
            await api(
                trigger,
                input={"workflowId": "preview-alert", "to": [to], "payload": {"n": n}, "transactionId": transaction},
            )
            if n % 3 == 0:
                events = [
                    {"workflowId": "preview-ping", "to": [{"subscriberId": s}], "payload": {"n": n}}
                    for s in SUBSCRIBERS
                ]
                await api(bulk, input={"events": events})
            if n % 8 == 0:
                await api(trigger, input={"workflowId": "preview-typed", "to": [{"subscriberId": "x"}], "payload": {}})
            if n % 25 == 0:
                await api("{ notAField }")
            await asyncio.sleep(0.4 + 0.3 * ((n // 40) % 2))  # bursts and lulls, so the lines move
        stop.set()
        await asyncio.gather(*sockets)


def main() -> None:
    parser = argparse.ArgumentParser(description="Mixed demo traffic for the dashboard preview.")
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()
    port = free_port()
    relay = Controller(FlakyRelay(), hostname="127.0.0.1", port=port)
    relay.start()
    try:
        asyncio.run(drive(args.api.rstrip("/"), args.api_key, args.minutes * 60, port))
    finally:
        relay.stop()


if __name__ == "__main__":
    main()
