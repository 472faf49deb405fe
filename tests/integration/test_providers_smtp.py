"""The SMTP provider against a real SMTP server (aiosmtpd on 127.0.0.1): content, reuse, reconnects, classification."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from beanie import PydanticObjectId

from tests.integration.test_providers_webhooks import self_signed_certificate
from tidings.app.embedded import free_port
from tidings.core.channels import Channel
from tidings.core.crypto import Cipher
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, Recipient
from tidings.integrations.credentials import encrypt, split_settings
from tidings.integrations.documents import Integration
from tidings.integrations.providers import PROVIDERS
from tidings.tasks.providers import ProviderSender

CIPHER = Cipher("x" * 32)
DROPPER = "dropper@tidings.example.com"  # a sender whose second MAIL on a connection makes the server hang up


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    peer: Any


@dataclass
class Sink:
    """Accepts mail, except for recipients whose local part asks for a failure."""

    received: list[Received] = field(default_factory=list)
    # Messages per connection, keyed by the session itself: an `id()` is reused once a closed session is collected,
    # which made a fresh connection look like one that had sent already (a flaky reconnect test).
    sent_on: weakref.WeakKeyDictionary[Session, int] = field(default_factory=weakref.WeakKeyDictionary)

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's hook names)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == DROPPER and self.sent_on.get(session, 0) >= 1:
            assert server.transport is not None
            server.transport.close()
            return "421 closing"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 <gone@example.com>: no such user"
        if address.startswith("full@"):
            return "452 4.2.2 mailbox full"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if envelope.rcpt_tos[0].startswith("later@"):
            return "451 4.3.0 try again later"
        if envelope.rcpt_tos[0].startswith("spam@"):
            return "554 5.7.1 message rejected as spam"
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, session.peer))
        self.sent_on[session] = self.sent_on.get(session, 0) + 1
        return "250 2.0.0 Ok: queued as TIDINGS1"


class CountingController(Controller):
    """Counts the connections the server accepts (one SMTP instance each)."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.servers: list[SMTP] = []

    def factory(self) -> SMTP:
        server: SMTP = super().factory()  # type: ignore[no-untyped-call]
        self.servers.append(server)
        return server


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[Sink, CountingController]]:
    handler = Sink()
    controller = CountingController(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    controller.servers.clear()  # start() made one connection of its own to see the server up
    try:
        yield handler, controller
    finally:
        controller.stop()


def smtp_integration(cipher: Cipher = CIPHER, **settings: Any) -> Integration:
    spec = PROVIDERS["smtp"]
    model = spec.settings_model.model_validate(
        {"host": "127.0.0.1", "security": "none", "from_email": "noreply@tidings.example.com"} | settings
    )
    config, secrets = split_settings(spec, model)
    integration_id = PydanticObjectId()
    built: Integration = Integration.model_construct(
        id=integration_id,
        environment_id=PydanticObjectId(),
        identifier="smtp",
        name="SMTP",
        channel=Channel.EMAIL,
        provider_id="smtp",
        config=config,
        credentials={name: encrypt(cipher, value, integration_id) for name, value in secrets.items()},
        active=True,
        primary=True,
    )
    return built


def email_message(to: str | None = "ada@example.com", key: str = "job-1", **content: str) -> OutboundMessage:
    return OutboundMessage(
        channel=Channel.EMAIL,
        recipient=Recipient(subscriber_id="ada", email=to),
        content=content or {"subject": "Welcome, Ada", "html": "<p>Hello <b>Ada</b></p>", "text": "Hello Ada"},
        idempotency_key=key,
        metadata={"transactionId": "tx-1", "workflowId": "welcome", "stepId": "email-1"},
    )


async def failure(sender: ProviderSender, integration: Integration, message: OutboundMessage) -> DeliveryError:
    with pytest.raises(DeliveryError) as error:
        await sender.send(integration, message)
    return error.value


async def test_sends_multipart_email_with_headers_and_reuses_one_connection(
    sink: tuple[Sink, CountingController],
) -> None:
    handler, controller = sink
    handler.received.clear()
    controller.servers.clear()
    sender = ProviderSender(CIPHER, allow_private_networks=True)
    integration = smtp_integration(port=controller.port, from_name="Tidings")
    try:
        first = await sender.send(integration, email_message(key="job-1"))
        second = await sender.send(integration, email_message(key="job-2"))
    finally:
        await sender.aclose()

    assert first.provider_message_id == "<job-1@tidings>"
    assert second.provider_message_id == "<job-2@tidings>"
    assert first.detail == {"smtp_response": "250 2.0.0 Ok: queued as TIDINGS1"}
    assert len(controller.servers) == 1
    assert handler.received[0].peer == handler.received[1].peer

    received = handler.received[0]
    assert received.mail_from == "noreply@tidings.example.com"
    assert received.rcpt_tos == ["ada@example.com"]
    message = received.message
    assert message["Subject"] == "Welcome, Ada"
    assert message["From"] == "Tidings <noreply@tidings.example.com>"
    assert message["To"] == "ada@example.com"
    assert message["Message-ID"] == "<job-1@tidings>"
    assert message["X-Tidings-Transaction-Id"] == "tx-1"
    assert message["X-Tidings-Workflow-Id"] == "welcome"
    assert message["X-Tidings-Step-Id"] == "email-1"
    assert message.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part for part in message.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert isinstance(parts["text/plain"], EmailMessage)
    assert isinstance(parts["text/html"], EmailMessage)
    assert parts["text/plain"].get_content().strip() == "Hello Ada"
    assert parts["text/html"].get_content().strip() == "<p>Hello <b>Ada</b></p>"


async def test_text_part_is_derived_from_html_when_missing(sink: tuple[Sink, CountingController]) -> None:
    handler, controller = sink
    handler.received.clear()
    sender = ProviderSender(CIPHER, allow_private_networks=True)
    html = '<html><head><style>p{color:red}</style></head><p>Hi &amp; welcome</p><a href="https://x.example.com/a">Open</a>'
    try:
        await sender.send(
            smtp_integration(port=controller.port),
            email_message(key="a key with spaces", subject="Hi", html=html),
        )
    finally:
        await sender.aclose()
    message = handler.received[-1].message
    text = next(part for part in message.iter_parts() if part.get_content_type() == "text/plain")
    assert isinstance(text, EmailMessage)
    assert text.get_content().split() == ["Hi", "&", "welcome", "Open", "(https://x.example.com/a)"]
    # A key that is not a valid Message-ID part is hashed, still the same on every retry.
    assert message["Message-ID"].endswith("@tidings>")
    assert " " not in message["Message-ID"]
    assert message["From"] == "noreply@tidings.example.com"


async def test_reconnects_when_the_server_closed_an_idle_connection(sink: tuple[Sink, CountingController]) -> None:
    handler, controller = sink
    handler.received.clear()
    controller.servers.clear()
    sender = ProviderSender(CIPHER, allow_private_networks=True)
    integration = smtp_integration(port=controller.port)
    try:
        await sender.send(integration, email_message(key="idle-1"))
        assert controller.loop is not None
        transport = controller.servers[0].transport
        assert transport is not None
        controller.loop.call_soon_threadsafe(transport.close)
        await asyncio.sleep(0.2)
        await sender.send(integration, email_message(key="idle-2"))
    finally:
        await sender.aclose()
    assert [r.message["Message-ID"] for r in handler.received] == ["<idle-1@tidings>", "<idle-2@tidings>"]
    assert len(controller.servers) == 2


async def test_reconnects_when_the_server_hangs_up_on_the_next_command(sink: tuple[Sink, CountingController]) -> None:
    handler, controller = sink
    handler.received.clear()
    controller.servers.clear()
    sender = ProviderSender(CIPHER, allow_private_networks=True)
    integration = smtp_integration(port=controller.port, from_email=DROPPER)
    try:
        await sender.send(integration, email_message(key="drop-1"))
        # The client still believes the connection open; the server closes it on MAIL, before anything is sent.
        await sender.send(integration, email_message(key="drop-2"))
    finally:
        await sender.aclose()
    assert [r.message["Message-ID"] for r in handler.received] == ["<drop-1@tidings>", "<drop-2@tidings>"]
    assert len(controller.servers) == 2
    assert handler.received[0].peer != handler.received[1].peer


@pytest.mark.parametrize(
    ("recipient", "kind", "reply"),
    [
        ("later@example.com", FailureKind.TRANSIENT, "451 4.3.0 try again later"),
        ("full@example.com", FailureKind.TRANSIENT, "452 4.2.2 mailbox full"),
        ("gone@example.com", FailureKind.BAD_ENDPOINT, "550 5.1.1 <gone@example.com>: no such user"),
        ("spam@example.com", FailureKind.PERMANENT, "554 5.7.1 message rejected as spam"),
    ],
)
async def test_server_replies_are_classified(
    sink: tuple[Sink, CountingController], recipient: str, kind: FailureKind, reply: str
) -> None:
    handler, controller = sink
    handler.received.clear()
    controller.servers.clear()
    sender = ProviderSender(CIPHER, allow_private_networks=True)
    integration = smtp_integration(port=controller.port)
    try:
        error = await failure(sender, integration, email_message(to=recipient))
        # The connection survives a refused message (RSET) and serves the next one.
        await sender.send(integration, email_message(key="after-failure"))
    finally:
        await sender.aclose()
    assert error.kind is kind
    assert error.detail["smtp_response"] == reply
    assert "Hello" not in error.message
    assert len(handler.received) == 1
    assert len(controller.servers) == 1


async def test_closed_port_is_transient() -> None:
    sender = ProviderSender(CIPHER, allow_private_networks=True)
    try:
        error = await failure(sender, smtp_integration(port=free_port()), email_message())
    finally:
        await sender.aclose()
    assert error.kind is FailureKind.TRANSIENT


async def test_required_starttls_that_the_server_lacks_is_permanent(sink: tuple[Sink, CountingController]) -> None:
    handler, controller = sink
    handler.received.clear()
    sender = ProviderSender(CIPHER, allow_private_networks=True)
    try:
        error = await failure(sender, smtp_integration(port=controller.port, security="starttls"), email_message())
    finally:
        await sender.aclose()
    assert error.kind is FailureKind.PERMANENT
    assert handler.received == []


async def test_recipient_without_email_is_a_bad_endpoint(sink: tuple[Sink, CountingController]) -> None:
    _, controller = sink
    controller.servers.clear()
    sender = ProviderSender(CIPHER, allow_private_networks=True)
    try:
        missing = await failure(sender, smtp_integration(port=controller.port), email_message(to=None))
        invalid = await failure(sender, smtp_integration(port=controller.port), email_message(to="not an address"))
    finally:
        await sender.aclose()
    assert missing.kind is FailureKind.BAD_ENDPOINT
    assert invalid.kind is FailureKind.BAD_ENDPOINT
    assert controller.servers == []


async def test_loopback_host_is_refused_unless_private_networks_are_allowed(
    sink: tuple[Sink, CountingController],
) -> None:
    _, controller = sink
    controller.servers.clear()
    sender = ProviderSender(CIPHER, allow_private_networks=False)
    try:
        error = await failure(sender, smtp_integration(port=controller.port), email_message())
    finally:
        await sender.aclose()
    assert error.kind is FailureKind.PERMANENT
    assert "loopback" in error.message
    assert controller.servers == []


LOGINS: list[bytes] = []


def _authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    valid = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"mailer", b"s3cret")
    if valid:
        LOGINS.append(auth_data.login)
    return AuthResult(success=valid, handled=False)


@pytest.fixture(scope="module")
def auth_sink() -> Iterator[tuple[Sink, CountingController]]:
    handler = Sink()
    controller = CountingController(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=_authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield handler, controller
    finally:
        controller.stop()


async def test_logs_in_with_the_decrypted_password(auth_sink: tuple[Sink, CountingController]) -> None:
    handler, controller = auth_sink
    sender = ProviderSender(CIPHER, allow_private_networks=True)
    good = smtp_integration(port=controller.port, username="mailer", password="s3cret")
    bad = smtp_integration(port=controller.port, username="mailer", password="wrong")
    try:
        await sender.send(good, email_message(key="authed"))
        error = await failure(sender, bad, email_message())
    finally:
        await sender.aclose()
    assert [r.message["Message-ID"] for r in handler.received] == ["<authed@tidings>"]
    assert LOGINS == [b"mailer"]
    assert error.kind is FailureKind.PERMANENT
    assert error.detail["smtp_response"].startswith("535")
    assert "wrong" not in error.message


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    cert, key = self_signed_certificate(tmp_path_factory.mktemp("smtp-tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_and_starttls_with_a_trusted_certificate(
    tls_context: tuple[ssl.SSLContext, Path], security: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    context, cert = tls_context
    handler = Sink()
    if security == "tls":
        controller = CountingController(handler, hostname="127.0.0.1", port=free_port(), ssl_context=context)
    else:
        controller = CountingController(
            handler, hostname="127.0.0.1", port=free_port(), tls_context=context, require_starttls=True
        )
    controller.start()
    sender = ProviderSender(CIPHER, allow_private_networks=True)
    try:
        integration = smtp_integration(port=controller.port, security=security)
        untrusted = await failure(sender, integration, email_message(key="untrusted"))
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # OpenSSL's default trust store now holds our certificate
        await sender.send(smtp_integration(port=controller.port, security=security), email_message(key="trusted"))
    finally:
        await sender.aclose()
        controller.stop()
    # A certificate that does not verify is configuration, not a hiccup: retrying cannot fix it.
    assert untrusted.kind is FailureKind.PERMANENT
    assert "certificate" in untrusted.message.lower()
    assert [r.message["Message-ID"] for r in handler.received] == ["<trusted@tidings>"]
