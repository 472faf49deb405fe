"""Template sandbox escapes through the whole pipeline: a workflow saved over the API, triggered, rendered by a real
worker and sent to a real SMTP server (aiosmtpd). Each attack is refused at save (VALIDATION) or at render (the job
fails with a typed reason, within the render caps), and no secret of the worker (its secret key, database URL, an
environment variable) reaches an email, an in-app message or a job's reason."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.security.conftest import Caller, Guarded, admin, eventually, session_token, start_api
from tests.servers import SECRET_KEY, RoleProcess, role_env
from tests.sinks import SmtpSink, smtp_sink
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment

CANARY = f"canary-{uuid.uuid4().hex}"  # an environment variable of the worker: must never be rendered
ACTIVITY = """query($t: String!) { notifications(where: {transactionId: $t}) { edges { node { status
    jobs { stepType status reason executionDetails { reason detail durationMs } } } } } }"""


@dataclass
class Sandbox:
    caller: Caller
    smtp: SmtpSink
    settings: Settings
    reader_token: str


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    with smtp_sink() as (sink, port):
        yield sink, port


@pytest.fixture(scope="module")
async def sandbox(
    guarded: Guarded, tmp_path_factory: pytest.TempPathFactory, smtp: tuple[SmtpSink, int]
) -> AsyncIterator[Sandbox]:
    """Its own api and worker (private addresses allowed, for the SMTP server on loopback) on the guarded stack's
    database, with a queue of their own: the guarded worker must not take these jobs."""
    tmp = tmp_path_factory.mktemp("sandbox")
    settings = guarded.settings.model_copy(
        update={
            "allow_private_network_urls": True,
            "render_timeout_seconds": 1.0,
            "engine_max_attempts": 1,
            "graphql_max_depth": Settings.model_fields["graphql_max_depth"].default,
            "queue_name": f"{guarded.settings.queue_name}:sandbox",
            "heartbeat_dir": tmp / "run",
        }
    )
    sink, port = smtp
    issued = await create_environment("sandbox", cipher=Cipher(SECRET_KEY))
    api, base = start_api(settings, tmp / "api.log")
    worker = RoleProcess("worker", role_env(settings, SECURITY_CANARY=CANARY), tmp / "worker.log").start()
    try:
        worker.wait_for_output("Listening started", timeout=60)
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            caller = admin(client, issued.api_key)
            await caller.data(
                "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { identifier } }",
                input={
                    "providerId": "smtp",
                    "config": {"host": "127.0.0.1", "port": port, "security": "none", "fromEmail": "t@example.com"},
                },
            )
            await caller.data(
                'mutation { createSubscriber(input: {subscriberId: "reader", email: "reader@example.com"}) '
                "{ subscriberId } }"
            )
            token = await session_token(client, issued, "reader")
            yield Sandbox(caller, sink, settings, token)
    finally:
        worker.stop()
        api.stop()


ESCAPES = {
    "class-mro": "{{ ''.__class__.__mro__ }}",
    "subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler-globals": "{{ cycler.__init__.__globals__ }}",
    "cycler-os-environ": "{{ cycler.__init__.__globals__.os.environ }}",
    "joiner-globals": "{{ joiner.__init__.__globals__ }}",
    "lipsum-globals": "{{ lipsum.__globals__ }}",
    "namespace-globals": "{{ namespace.__init__.__globals__ }}",
    "template-context": "{{ self._TemplateReference__context }}",
    "payload-class": "{{ payload.__class__.__init__.__globals__ }}",
    "attr-filter": "{{ ''|attr('__class__') }}",
    "format-string": "{{ '{0.__class__.__mro__}'.format('') }}",
    "huge-range": "{% for i in range(10**9) %}x{% endfor %}",
    "huge-string": "{{ 'a' * 10**9 }}",
    "huge-number": "{{ 9 ** 999999 }}",
    "recursive-macro": "{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}",
    "output-bomb": "{% for a in range(100000) %}{% for b in range(100000) %}xxxxxxxx{% endfor %}{% endfor %}",
    "time-bomb": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "globals-by-name": "Hi {{ config }}{{ request }}{{ os }}{{ environ }}{{ settings }}",
}
# Undefined names render empty: nothing to refuse, and nothing leaks.
HARMLESS = frozenset({"globals-by-name"})
REFUSALS = ("unsafe", "longer than", "took longer", "template failed", "more than")


def _secrets(settings: Settings) -> list[str]:
    return [CANARY, SECRET_KEY, settings.require_redis_url(), str(settings.mongodb_url), settings.mongodb_database]


@pytest.mark.parametrize("channel", ["email", "inApp"])
@pytest.mark.parametrize("name", sorted(ESCAPES))
async def test_a_sandbox_escape_is_refused_and_leaks_nothing(sandbox: Sandbox, name: str, channel: str) -> None:
    template = ESCAPES[name]
    workflow_id = f"escape-{uuid.uuid4().hex[:8]}"
    step = {"subject": "Escape", "body": template} if channel == "email" else {"body": template}
    saved = (
        await sandbox.caller.post(
            "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }",
            {"input": {"workflowId": workflow_id, "name": name, "steps": [{channel: step}]}},
        )
    ).json()
    if "errors" in saved:
        assert [error["extensions"]["code"] for error in saved["errors"]] == ["VALIDATION"], saved
        return
    transaction_id = f"tx-{uuid.uuid4().hex}"
    sent_before = len(sandbox.smtp.messages)
    await sandbox.caller.data(
        "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId } }",
        input={"workflowId": workflow_id, "to": [{"subscriberId": "reader"}], "transactionId": transaction_id},
    )

    async def finished() -> dict[str, Any] | None:
        edges = (await sandbox.caller.data(ACTIVITY, t=transaction_id))["notifications"]["edges"]
        if not edges or edges[0]["node"]["status"] == "PENDING":
            return None
        job: dict[str, Any] = edges[0]["node"]["jobs"][0]
        return job

    job = await eventually(finished, f"the {name} notification to finish")
    activity = json.dumps(job)
    emails = [message.as_string() for message in sandbox.smtp.messages[sent_before:]]
    messages = await Caller(sandbox.caller.client, f"Bearer {sandbox.reader_token}").data(
        "{ inboxNotifications(first: 100) { edges { node { subject body } } } }"
    )
    for secret in _secrets(sandbox.settings):
        assert secret not in activity
        assert secret not in json.dumps(messages)
        assert all(secret not in email for email in emails)
    if name in HARMLESS:
        assert job["status"] == "COMPLETED", activity
        return
    assert job["status"] == "FAILED", activity
    assert any(refusal in (job["reason"] or "") for refusal in REFUSALS), activity
    assert not emails


async def test_the_escapes_did_not_stop_the_worker(sandbox: Sandbox) -> None:
    """After every attack, an ordinary email still renders and arrives."""
    await sandbox.caller.data(
        "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }",
        input={
            "workflowId": "plain-after",
            "name": "after",
            "steps": [{"email": {"subject": "Still here", "body": "Hello {{ payload.name }}"}}],
        },
    )
    await sandbox.caller.data(
        "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId } }",
        input={"workflowId": "plain-after", "to": [{"subscriberId": "reader"}], "payload": {"name": "Ada"}},
    )

    async def arrived() -> str | None:
        found = [message for message in sandbox.smtp.messages if message["subject"] == "Still here"]
        return found[0].as_string() if found else None

    assert "Hello Ada" in await eventually(arrived, "the plain email")
