"""The webhook and Slack providers and the ProviderSender, against a real local HTTP(S) server recording requests."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from beanie import PydanticObjectId
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tidings.app.embedded import free_port
from tidings.core.channels import Channel
from tidings.core.crypto import Cipher
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, Recipient
from tidings.integrations.credentials import encrypt, split_settings
from tidings.integrations.documents import Integration
from tidings.integrations.providers import PROVIDERS
from tidings.subscribers.documents import ChatEndpoint
from tidings.tasks.providers import ProviderSender

CIPHER = Cipher("x" * 32)
SECRET = "whsec-0123456789abcdef"
SLACK_PATH = "/services/T000/B000/XXXXSECRETTOKEN"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Request] = []

    @property
    def base(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    """Answers by query: `status`, `retry_after`, `text`, `sleep`, `location`; 200 "ok" by default."""

    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse shows in the client port
    server: Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append(
            Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body, self.client_address[1])
        )
        query = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
        if "sleep" in query:
            time.sleep(float(query["sleep"]))
        text = query.get("text", "ok").encode()
        self.send_response(int(query.get("status", "200")))
        if "retry_after" in query:
            self.send_header("Retry-After", query["retry_after"])
        if "location" in query:
            self.send_header("Location", query["location"])
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(server: Recorder) -> Iterator[Recorder]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_server() -> Iterator[Recorder]:
    yield from _serve(Recorder())


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written to `directory`; trusted only where SSL_CERT_FILE names it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return directory / "cert.pem", directory / "key.pem"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def https_server(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    cert, key = certificate
    server = Recorder()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx reads it when the provider creates its client
    yield from _serve(server)


def integration(provider_id: str, identifier: str, cipher: Cipher = CIPHER, **settings: Any) -> Integration:
    spec = PROVIDERS[provider_id]
    config, secrets = split_settings(spec, spec.settings_model.model_validate(settings))
    integration_id = PydanticObjectId()
    built: Integration = Integration.model_construct(
        id=integration_id,
        environment_id=PydanticObjectId(),
        identifier=identifier,
        name=identifier,
        channel=spec.channel,
        provider_id=provider_id,
        config=config,
        credentials={name: encrypt(cipher, value, integration_id) for name, value in secrets.items()},
        active=True,
        primary=False,
    )
    return built


def chat_message(
    body: str = "Build 42 passed", chat: tuple[ChatEndpoint, ...] = (), key: str = "job-1"
) -> OutboundMessage:
    return OutboundMessage(
        channel=Channel.CHAT,
        recipient=Recipient(subscriber_id="ada", chat=chat),
        content={"body": body},
        idempotency_key=key,
        metadata={"transactionId": "tx-1", "workflowId": "builds"},
    )


async def failure(sender: ProviderSender, target: Integration, message: OutboundMessage) -> DeliveryError:
    with pytest.raises(DeliveryError) as error:
        await sender.send(target, message)
    return error.value


@pytest.fixture
async def sender() -> Any:
    provider_sender = ProviderSender(CIPHER, allow_private_networks=True)
    yield provider_sender
    await provider_sender.aclose()


async def test_webhook_posts_signed_json_and_reuses_its_connection(
    http_server: Recorder, sender: ProviderSender
) -> None:
    hook = integration("webhook", "hook", url=f"{http_server.base}/hooks/in?token=abc", signing_secret=SECRET)
    before = int(time.time())
    result = await sender.send(hook, chat_message(key="job-1"))
    await sender.send(hook, chat_message(key="job-2"))

    assert result.provider_message_id is None
    assert result.detail == {"status": 200, "endpoint": http_server.base}
    first, second = http_server.requests
    assert first.method == "POST"
    assert first.path == "/hooks/in?token=abc"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-tidings-idempotency-key"] == "job-1"
    assert json.loads(first.body) == {
        "subscriberId": "ada",
        "channel": "chat",
        "content": {"body": "Build 42 passed"},
        "metadata": {"transactionId": "tx-1", "workflowId": "builds"},
        "idempotencyKey": "job-1",
    }
    fields = dict(part.split("=", 1) for part in first.headers["x-tidings-signature"].split(","))
    timestamp = int(fields["t"])
    assert before <= timestamp <= int(time.time())
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + first.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert first.client_port == second.client_port  # one pooled connection for the integration


async def test_webhook_without_a_secret_is_not_signed(http_server: Recorder, sender: ProviderSender) -> None:
    await sender.send(integration("webhook", "hook", url=f"{http_server.base}/in"), chat_message())
    (request,) = http_server.requests
    assert "x-tidings-signature" not in request.headers
    assert request.headers["x-tidings-idempotency-key"] == "job-1"


@pytest.mark.parametrize(
    ("query", "kind", "retry_after"),
    [
        ("status=429&retry_after=7", FailureKind.TRANSIENT, 7.0),
        ("status=503", FailureKind.TRANSIENT, None),
        ("status=500", FailureKind.TRANSIENT, None),
        ("status=408", FailureKind.TRANSIENT, None),
        ("status=400", FailureKind.PERMANENT, None),
        ("status=401", FailureKind.PERMANENT, None),
        # The integration's own URL being gone is its configuration, not a subscriber's address.
        ("status=410", FailureKind.PERMANENT, None),
    ],
)
async def test_webhook_answers_are_classified(
    http_server: Recorder, sender: ProviderSender, query: str, kind: FailureKind, retry_after: float | None
) -> None:
    hook = integration("webhook", "hook", url=f"{http_server.base}/secret-path/in?{query}&text=Build+42+passed")
    error = await failure(sender, hook, chat_message())
    assert error.kind is kind
    assert error.retry_after == retry_after
    assert error.detail["status"] == int(query.split("&", maxsplit=1)[0].removeprefix("status="))
    assert error.detail["endpoint"] == http_server.base
    # Neither the URL's path (it may hold a token) nor the body the receiver echoed back is kept.
    for text in (error.message, json.dumps(error.detail)):
        assert "secret-path" not in text
        assert "Build 42" not in text


async def test_redirects_are_not_followed(http_server: Recorder, sender: ProviderSender) -> None:
    hook = integration("webhook", "hook", url=f"{http_server.base}/in?status=302&location=/elsewhere")
    error = await failure(sender, hook, chat_message())
    assert error.kind is FailureKind.PERMANENT
    assert "redirect" in error.message
    assert [request.path for request in http_server.requests] == ["/in?status=302&location=/elsewhere"]


async def test_timeout_and_refused_connection_are_transient(http_server: Recorder, sender: ProviderSender) -> None:
    slow = integration("webhook", "slow", url=f"{http_server.base}/in?sleep=2", timeout_seconds=1)
    closed = integration("webhook", "closed", url=f"http://127.0.0.1:{free_port()}/in")
    timed_out = await failure(sender, slow, chat_message())
    refused = await failure(sender, closed, chat_message())
    assert timed_out.kind is FailureKind.TRANSIENT
    assert "timed out" in timed_out.message
    assert refused.kind is FailureKind.TRANSIENT


async def test_private_addresses_are_refused_before_any_request(http_server: Recorder) -> None:
    strict = ProviderSender(CIPHER, allow_private_networks=False)
    subscriber_url = f"{http_server.base}{SLACK_PATH}"
    try:
        hook_error = await failure(strict, integration("webhook", "hook", url=f"{http_server.base}/in"), chat_message())
        slack = integration("slack-webhook", "slack", webhook_url="https://hooks.slack.com/services/T/B/X")
        slack_error = await failure(
            strict,
            slack,
            chat_message(chat=(ChatEndpoint(integration_identifier="slack", webhook_url=subscriber_url),)),
        )
    finally:
        await strict.aclose()
    assert hook_error.kind is FailureKind.PERMANENT
    assert slack_error.kind is FailureKind.PERMANENT
    assert "loopback" in hook_error.message
    assert "XXXXSECRETTOKEN" not in slack_error.message
    assert http_server.requests == []


async def test_slack_posts_to_the_subscribers_url_for_this_integration(
    http_server: Recorder, sender: ProviderSender
) -> None:
    slack = integration("slack-webhook", "slack", webhook_url="https://hooks.slack.com/services/T/B/DEFAULT")
    chat = (
        ChatEndpoint(integration_identifier="other-slack", webhook_url=f"{http_server.base}/other"),
        ChatEndpoint(integration_identifier="slack", webhook_url=f"{http_server.base}{SLACK_PATH}"),
    )
    result = await sender.send(slack, chat_message(chat=chat))
    (request,) = http_server.requests
    assert request.path == SLACK_PATH
    assert json.loads(request.body) == {"text": "Build 42 passed"}
    assert result.detail["endpoint"] == http_server.base
    assert "XXXXSECRETTOKEN" not in json.dumps(result.detail)


async def test_slack_falls_back_to_the_integration_url(https_server: Recorder, sender: ProviderSender) -> None:
    slack = integration("slack-webhook", "slack", webhook_url=f"{https_server.base}{SLACK_PATH}")
    chat = (ChatEndpoint(integration_identifier="other-slack", webhook_url="https://example.com/not-this"),)
    result = await sender.send(slack, chat_message(chat=chat))
    (request,) = https_server.requests
    assert request.path == SLACK_PATH
    assert json.loads(request.body) == {"text": "Build 42 passed"}
    assert result.detail == {"target": "integration", "status": 200, "endpoint": https_server.base}


async def test_slack_gone_subscriber_url_is_a_bad_endpoint(http_server: Recorder, sender: ProviderSender) -> None:
    slack = integration("slack-webhook", "slack", webhook_url="https://hooks.slack.com/services/T/B/DEFAULT")
    url = f"{http_server.base}{SLACK_PATH}?status=410&text=channel_is_archived"
    error = await failure(
        sender, slack, chat_message(chat=(ChatEndpoint(integration_identifier="slack", webhook_url=url),))
    )
    assert error.kind is FailureKind.BAD_ENDPOINT
    assert error.detail == {
        "endpoint": http_server.base,
        "target": "subscriber",
        "integrationIdentifier": "slack",
        "status": 410,
        "error": "channel_is_archived",
    }
    assert "XXXXSECRETTOKEN" not in error.message


async def test_slack_gone_integration_url_is_permanent(https_server: Recorder, sender: ProviderSender) -> None:
    slack = integration(
        "slack-webhook", "slack", webhook_url=f"{https_server.base}{SLACK_PATH}?status=404&text=no_service"
    )
    error = await failure(sender, slack, chat_message())
    assert error.kind is FailureKind.PERMANENT
    assert error.detail["error"] == "no_service"
    assert "XXXXSECRETTOKEN" not in error.message + json.dumps(error.detail)


async def test_slack_message_without_body_is_permanent(http_server: Recorder, sender: ProviderSender) -> None:
    slack = integration("slack-webhook", "slack", webhook_url="https://hooks.slack.com/services/T/B/X")
    chat = (ChatEndpoint(integration_identifier="slack", webhook_url=f"{http_server.base}/in"),)
    error = await failure(sender, slack, chat_message(body="  ", chat=chat))
    assert error.kind is FailureKind.PERMANENT
    assert http_server.requests == []


async def test_sender_refuses_what_it_cannot_send(sender: ProviderSender) -> None:
    in_app = integration("in-app", "inbox")
    unknown = integration("webhook", "hook", url="https://example.com/in").model_copy(update={"provider_id": "fax"})
    other_key = integration(
        "webhook", "hook", cipher=Cipher("y" * 32), url="https://example.com/in", signing_secret=SECRET
    )
    email = integration("webhook", "hook", url="https://example.com/in")
    email_message = OutboundMessage(
        channel=Channel.EMAIL, recipient=Recipient(subscriber_id="ada"), content={}, idempotency_key="k"
    )
    for target, message, words in [
        (in_app, chat_message(), "cannot send"),
        (unknown, chat_message(), "cannot send"),
        (other_key, chat_message(), "do not decrypt"),
        (email, email_message, "not email"),
    ]:
        error = await failure(sender, target, message)
        assert error.kind is FailureKind.PERMANENT
        assert words in error.message
        assert SECRET not in error.message
    assert sender.cached() == 0


async def test_sender_keeps_a_bounded_set_of_provider_instances(http_server: Recorder) -> None:
    bounded = ProviderSender(CIPHER, allow_private_networks=True, max_providers=2)
    hooks = [integration("webhook", f"hook-{n}", url=f"{http_server.base}/in/{n}") for n in range(3)]
    try:
        for hook in hooks:
            await bounded.send(hook, chat_message())
        assert bounded.cached() == 2
        # The oldest was closed and is rebuilt on demand; the others keep their connection.
        await bounded.send(hooks[2], chat_message())
        await bounded.send(hooks[0], chat_message())
        assert bounded.cached() == 2
    finally:
        await bounded.aclose()
    assert bounded.cached() == 0
    paths = [request.path for request in http_server.requests]
    assert paths == ["/in/0", "/in/1", "/in/2", "/in/2", "/in/0"]
    assert http_server.requests[2].client_port == http_server.requests[3].client_port
    assert http_server.requests[0].client_port != http_server.requests[4].client_port
