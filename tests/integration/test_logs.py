"""Structured logs of real api, worker and scheduler processes: JSON lines, job context, no secrets, no content.

One run, shared by the tests: two workflows triggered at once, whose email step fails transiently once (SMTP 451)
and then sends with a password login, and whose chat step fails permanently (HTTP 400); outbound webhooks report it
all, and a subscriber opens an inbox session with an HMAC. The roles log at DEBUG, the most they ever say.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.api.conftest import GraphQL
from tests.servers import SECRET_KEY, RoleProcess, beanie_database, isolated_settings, role_env
from tests.sinks import HttpSink, SmtpSink, http_sink, parts
from tidings.app.embedded import free_port
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment
from tidings.notifications.documents import Job, Notification, NotificationStatus
from tidings.webhooks.commands import CreateWebhookEndpoint
from tidings.webhooks.documents import WebhookDelivery
from tidings.webhooks.events import WebhookEventType
from tidings.webhooks.service import create_webhook_endpoint

_RUN = uuid.uuid4().hex[:10]
SMTP_PASSWORD = f"smtp-password-{_RUN}"
CHAT_SIGNING_SECRET = f"chat-signing-secret-{_RUN}"
SUBJECT_MARK = f"SUBJECT-MARK-{_RUN}"
BODY_MARK = f"BODY-MARK-{_RUN}"
CHAT_MARK = f"CHAT-MARK-{_RUN}"
PAYLOAD_MARK = f"PAYLOAD-MARK-{_RUN}"
SUBSCRIBERS = ("log-ada", "log-grace")

CREATE_WORKFLOW = "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }"
CREATE_INTEGRATION = "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { identifier } }"
TRIGGER = "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId } }"
SESSION = """mutation($app: String!, $id: String!, $hash: String) {
    inboxSession(applicationIdentifier: $app, subscriberId: $id, subscriberHash: $hash) { token } }"""
FEED = "{ inboxNotifications(first: 5) { edges { node { id } } } }"


@dataclass
class Run:
    outputs: dict[str, str]  # role → everything the process wrote
    environment_id: str
    transactions: list[str]
    jobs: dict[str, Job]  # job id → job
    secrets: dict[str, str]  # what → value that must appear on no line
    smtp: SmtpSink
    chat: HttpSink

    def lines(self, role: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.outputs[role].splitlines() if line.strip()]

    def all_lines(self) -> list[dict[str, Any]]:
        return [line for role in self.outputs for line in self.lines(role)]


def _authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    valid = isinstance(data, LoginPassword) and (data.login, data.password) == (b"mailer", SMTP_PASSWORD.encode())
    return AuthResult(success=valid, handled=False)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    """An SMTP server that wants the password (so the worker really decrypts and uses it)."""
    sink, port = SmtpSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, authenticator=_authenticator, auth_require_tls=False)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def sinks() -> Iterator[tuple[HttpSink, str, str]]:
    """The chat provider's endpoint, and the receiver of outbound webhooks."""
    with http_sink() as (chat, chat_base), http_sink() as (_hooks, hooks_base):
        yield chat, chat_base, hooks_base


def _api(settings: Settings, log: Path) -> tuple[RoleProcess, str]:
    """`tidings api` on a free port, given a minute and a half to answer: the CI machine is shared and busy."""
    port = free_port()
    process = RoleProcess("api", role_env(settings, TIDINGS_PORT=str(port)), log).start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/healthz", timeout=1)
        except httpx.TransportError:
            assert process.process is not None
            if process.process.poll() is not None:
                raise AssertionError(f"api exited:\n{process.output()}") from None
            time.sleep(0.1)
        else:
            return process, base
    process.stop()
    raise AssertionError(f"api did not answer within 90s:\n{process.output()}")


async def _eventually(check: Callable[[], Awaitable[Any]], limit: float, what: str, logs: Callable[[], str]) -> Any:
    deadline = time.monotonic() + limit
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {limit}s\n{logs()}")
        await asyncio.sleep(0.1)
    return value


@pytest.fixture(scope="module")
async def run(
    mongodb_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    smtp: tuple[SmtpSink, int],
    sinks: tuple[HttpSink, str, str],
) -> AsyncIterator[Run]:
    tmp = tmp_path_factory.mktemp("logs")
    settings = isolated_settings(mongodb_url, redis_url, tmp).model_copy(
        update={
            "log_level": "DEBUG",
            "log_format": "json",
            "allow_private_network_urls": True,  # the provider stand-ins listen on loopback
            "scheduler_tick_seconds": 0.1,
            "engine_retry_base_seconds": 0.2,
            "engine_retry_max_seconds": 1.0,
            "mongodb_timeout_ms": 30_000,
        }
    )
    smtp_sink, smtp_port = smtp
    chat, chat_base, hooks_base = sinks
    cipher = Cipher(SECRET_KEY)
    async with beanie_database(settings):
        issued = await create_environment("logs", cipher=cipher)
        environment_id = issued.environment.id
        assert environment_id is not None
        events = [WebhookEventType.MESSAGE_SENT, WebhookEventType.MESSAGE_FAILED, WebhookEventType.WORKFLOW_FAILED]
        endpoint = await create_webhook_endpoint(
            environment_id,
            CreateWebhookEndpoint(url=f"{hooks_base}/tidings", event_types=events),
            cipher,
            allow_private=True,
        )
        api, base = _api(settings, tmp / "api.log")
        processes = {"api": api}
        processes["worker"] = RoleProcess("worker", role_env(settings), tmp / "worker.log").start()
        processes["scheduler"] = RoleProcess("scheduler", role_env(settings), tmp / "scheduler.log").start()

        def logs() -> str:
            return "\n".join(process.output()[-3000:] for process in processes.values())

        try:
            # Started at once, these processes take a minute on a busy two-core machine: wait, so the limits below
            # measure the work, not Python's start-up.
            await asyncio.to_thread(processes["worker"].wait_for_output, "worker consuming", 120)
            await asyncio.to_thread(processes["scheduler"].wait_for_output, "scheduler took leadership", 120)
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                gql = GraphQL(client, issued.api_key)
                smtp_config = {
                    "host": "127.0.0.1",
                    "port": smtp_port,
                    "security": "none",
                    "username": "mailer",
                    "fromEmail": "t@example.com",
                }
                await gql.data(
                    CREATE_INTEGRATION,
                    input={
                        "providerId": "smtp",
                        "name": "Mail",
                        "config": smtp_config,
                        "credentials": {"password": SMTP_PASSWORD},
                    },
                )
                await gql.data(
                    CREATE_INTEGRATION,
                    input={
                        "providerId": "webhook",
                        "name": "Chat",
                        "config": {"url": f"{chat_base}/chat"},
                        "credentials": {"signingSecret": CHAT_SIGNING_SECRET},
                    },
                )
                steps = [
                    {"email": {"subject": SUBJECT_MARK + " {{ payload.note }}", "body": f"<p>{BODY_MARK}</p>"}},
                    {"chat": {"body": CHAT_MARK + " {{ payload.note }}"}},
                ]
                await gql.data(CREATE_WORKFLOW, input={"workflowId": "logged", "name": "Logged", "steps": steps})
                smtp_sink.replies.append("451 4.3.0 Try again later")  # one send is retried
                chat.statuses.extend([400, 400])  # both chat steps fail for good

                async def trigger(subscriber_id: str) -> str:
                    recipient = {"subscriberId": subscriber_id, "email": f"{subscriber_id}@example.com"}
                    to = [{"subscriber": recipient}]
                    result = await gql.data(
                        TRIGGER, input={"workflowId": "logged", "to": to, "payload": {"note": PAYLOAD_MARK}}
                    )
                    transaction_id: str = result["trigger"]["transactionId"]
                    return transaction_id

                transactions = list(await asyncio.gather(*(trigger(one) for one in SUBSCRIBERS)))

                async def finished() -> bool:
                    done = await Notification.find(
                        {"transaction_id": {"$in": transactions}, "status": NotificationStatus.FAILED}
                    ).count()
                    delivered = await WebhookDelivery.find({"status": "succeeded"}).count()
                    return done == len(transactions) and delivered >= 3 * len(transactions)

                await _eventually(finished, 90, "both workflows and their webhooks", logs)
                app = issued.environment.application_identifier
                subscriber_hash = hmac.new(issued.api_key.encode(), SUBSCRIBERS[0].encode(), hashlib.sha256).hexdigest()
                session = await GraphQL(client, None).data(SESSION, app=app, id=SUBSCRIBERS[0], hash=subscriber_hash)
                token = session["inboxSession"]["token"]
                feed = await client.post("/graphql", json={"query": FEED}, headers={"Authorization": f"Bearer {token}"})
                assert "errors" not in feed.json(), feed.text
            jobs = {str(job.id): job for job in await Job.find({"transaction_id": {"$in": transactions}}).to_list()}
        finally:
            for process in (processes.get("scheduler"), processes.get("worker"), processes["api"]):
                if process is not None:
                    process.stop()
        yield Run(
            outputs={role: process.output() for role, process in processes.items()},
            environment_id=str(environment_id),
            transactions=transactions,
            jobs=jobs,
            secrets={
                "SMTP password": SMTP_PASSWORD,
                "chat signing secret": CHAT_SIGNING_SECRET,
                "API key": issued.api_key,
                "webhook endpoint secret": endpoint.secret,
                "TIDINGS_SECRET_KEY": SECRET_KEY,
                "subscriber hash": subscriber_hash,
                "subscriber token": token,
                "email subject": SUBJECT_MARK,
                "email body": BODY_MARK,
                "chat body": CHAT_MARK,
                "payload": PAYLOAD_MARK,
            },
            smtp=smtp_sink,
            chat=chat,
        )


def test_every_line_of_every_role_is_a_json_object(run: Run) -> None:
    for role, output in run.outputs.items():
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) > 5, (role, output)
        for text in lines:
            line = json.loads(text)  # raises on any plain-text line
            assert isinstance(line, dict), text
            assert line["level"] in {"debug", "info", "warning", "error", "critical"}, text
            assert line["timestamp"].endswith("Z"), text
            assert isinstance(line["event"], str), text
            assert line["role"] == role, text
    # uvicorn's and taskiq's own lines come through the same formatter.
    assert any(line["logger"].startswith("uvicorn") for line in run.lines("api"))
    assert any(line["logger"].startswith("taskiq") for line in run.lines("worker"))


def test_lines_logged_while_a_job_runs_name_the_job(run: Run) -> None:
    job_lines = [line for line in run.lines("worker") if "jobId" in line]
    for line in job_lines:
        job = run.jobs[line["jobId"]]
        assert line["transactionId"] == job.transaction_id, line
        assert line["environmentId"] == run.environment_id, line
        assert line["notificationId"] == str(job.notification_id), line
        assert line["step"] == job.step_id, line
    outcomes = {(line["jobId"], line["event"]) for line in job_lines if line["event"].startswith("step ")}
    emails = [job_id for job_id, job in run.jobs.items() if job.step_id == "email"]
    chats = [job_id for job_id, job in run.jobs.items() if job.step_id == "chat"]
    assert len(emails) == len(chats) == len(run.transactions)
    assert all((job_id, "step completed") in outcomes for job_id in emails), outcomes
    assert all((job_id, "step failed") in outcomes for job_id in chats), outcomes
    [retry] = [line for line in job_lines if line["event"] == "step retrying"]
    assert (retry["level"], retry["attempt"], retry["kind"]) == ("warning", 1, "transient"), retry
    failures = [line for line in job_lines if line["event"] == "step failed"]
    assert {(line["level"], line["kind"], line["provider"]) for line in failures} == {
        ("warning", "permanent", "webhook")
    }


def test_fan_out_and_webhook_deliveries_carry_their_context(run: Run) -> None:
    worker = run.lines("worker")
    fanned = {line["transactionId"]: line for line in worker if line["event"] == "trigger fanned out"}
    assert sorted(fanned) == sorted(run.transactions)
    assert {line["environmentId"] for line in fanned.values()} == {run.environment_id}
    delivered = [line for line in worker if line["event"] == "webhook delivered"]
    assert len({line["webhookDeliveryId"] for line in delivered}) >= 3 * len(run.transactions)


def test_no_line_holds_a_secret_or_message_content(run: Run) -> None:
    # The content was rendered and sent, and the secrets were used, by these very processes.
    assert {parts(message)["subject"] for message in run.smtp.messages} == {f"{SUBJECT_MARK} {PAYLOAD_MARK}"}
    assert all(CHAT_MARK in request.body.decode() for request in run.chat.requests)
    for role, output in run.outputs.items():
        leaked = [what for what, value in run.secrets.items() if value in output]
        assert not leaked, f"{role} logged the {leaked}"
