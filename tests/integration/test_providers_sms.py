"""The SMS providers (Twilio, Vonage, SMS webhook) against a real local HTTP server that records requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pydantic
import pytest

from tests.unit import test_status_callbacks as callbacks
from tidings.core.channels import Channel
from tidings.engine.delivery import (
    DeliveryError,
    DeliveryStatus,
    FailureKind,
    InboundWebhook,
    OutboundMessage,
    Recipient,
)
from tidings.integrations.sms_settings import SmsWebhookSettings, TwilioSettings, VonageSettings
from tidings.tasks.providers.base import HttpProvider
from tidings.tasks.providers.sms.twilio import TwilioProvider
from tidings.tasks.providers.sms.vonage import VonageProvider
from tidings.tasks.providers.sms.webhook import SmsWebhookProvider

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
SERVICE_SID = "MG" + "fedcba9876543210" * 2
AUTH_TOKEN = "twilio-auth-token-SECRET"
VONAGE_SECRET = "vonage-api-SECRET"
SIGNING_SECRET = "whsec-sms-SECRET"
PHONE = "+447700900123"
BODY = "Your code is 123456"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode(), keep_blank_values=True, strict_parsing=True)
        assert all(len(values) == 1 for values in parsed.values())
        return {key: values[0] for key, values in parsed.items()}


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = field(default_factory=dict)  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)


class Recorder(ThreadingHTTPServer):
    """Records every request and answers with the next scripted `Answer` (200 `{}` when none is left)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Request] = []
        self.answers: deque[Answer] = deque()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append(Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        answer = self.server.answers.popleft() if self.server.answers else Answer()
        payload = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Recorder]:
    recorder = Recorder()
    thread = threading.Thread(target=recorder.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        recorder.shutdown()
        recorder.server_close()


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioProvider]:
    provider = TwilioProvider(identifier="twilio", allow_private_networks=True)
    yield provider
    await provider.aclose()


@pytest.fixture
async def vonage() -> AsyncIterator[VonageProvider]:
    provider = VonageProvider(identifier="vonage", allow_private_networks=True)
    yield provider
    await provider.aclose()


@pytest.fixture
async def webhook() -> AsyncIterator[SmsWebhookProvider]:
    provider = SmsWebhookProvider(identifier="sms-hook", allow_private_networks=True)
    yield provider
    await provider.aclose()


def sms(phone: str | None = PHONE, body: Any = BODY, key: str = "job-1") -> OutboundMessage:
    return OutboundMessage(
        channel=Channel.SMS,
        recipient=Recipient(subscriber_id="ada", phone=phone),
        content={"body": body},
        idempotency_key=key,
        metadata={"transactionId": "tx-1", "workflowId": "login"},
    )


def twilio_settings(server: Recorder, **overrides: Any) -> TwilioSettings:
    values: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": "+15005550006",
        "base_url": server.base,
    }
    return TwilioSettings.model_validate({**values, **overrides})


def vonage_settings(server: Recorder, **overrides: Any) -> VonageSettings:
    values: dict[str, Any] = {
        "api_key": "abc123",
        "api_secret": VONAGE_SECRET,
        "from_number": "Tidings",
        "base_url": server.base,
    }
    return VonageSettings.model_validate({**values, **overrides})


def webhook_settings(server: Recorder, **overrides: Any) -> SmsWebhookSettings:
    return SmsWebhookSettings.model_validate({"url": f"{server.base}/gateway/sms", **overrides})


async def failure(provider: HttpProvider[Any], settings: Any, message: OutboundMessage) -> DeliveryError:
    with pytest.raises(DeliveryError) as error:
        await provider.send(settings, message)
    return error.value


def assert_private(error: DeliveryError, *secrets: str) -> None:
    """Neither the message nor the detail quotes the body, the phone number or a secret."""
    for text in (error.message, json.dumps(error.detail)):
        for value in (BODY, PHONE, PHONE.removeprefix("+"), *secrets):
            assert value not in text


def twilio_message(sid: str = "SM0123456789abcdef0123456789abcdef") -> dict[str, Any]:
    return {"sid": sid, "status": "queued", "to": PHONE, "body": BODY, "num_segments": "1", "error_code": None}


# Twilio


async def test_twilio_posts_the_message_resource(server: Recorder, twilio: TwilioProvider) -> None:
    server.answers.append(Answer(201, twilio_message()))
    result = await twilio.send(twilio_settings(server), sms(phone="+44 7700-900 123"))

    (request,) = server.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert (
        request.headers["authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    )
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {"To": PHONE, "From": "+15005550006", "Body": BODY}
    assert result.provider_message_id == "SM0123456789abcdef0123456789abcdef"
    assert result.detail == {"status": 201, "endpoint": server.base, "twilio_status": "queued"}


async def test_twilio_sends_through_a_messaging_service(server: Recorder, twilio: TwilioProvider) -> None:
    server.answers.append(Answer(201, {**twilio_message(), "status": "accepted"}))
    settings = twilio_settings(server, from_number=None, messaging_service_sid=SERVICE_SID)
    result = await twilio.send(settings, sms(phone="0044 (7700) 900.123"))
    (request,) = server.requests
    assert request.form() == {"To": PHONE, "MessagingServiceSid": SERVICE_SID, "Body": BODY}
    assert result.detail["twilio_status"] == "accepted"


@pytest.mark.parametrize(
    ("answer", "kind", "code"),
    [
        (Answer(400, {"code": 21211, "message": f"The 'To' number {PHONE} is not a valid phone number."}),
         FailureKind.BAD_ENDPOINT, 21211),
        (Answer(400, {"code": 21614, "message": f"'To' number {PHONE} is not a valid mobile number"}),
         FailureKind.BAD_ENDPOINT, 21614),
        (Answer(401, {"code": 20003, "message": "Authenticate", "status": 401}), FailureKind.PERMANENT, 20003),
        (Answer(400, {"code": 21617, "message": f"The concatenated message body exceeds 1600: {BODY}"}),
         FailureKind.PERMANENT, 21617),
        (Answer(429, {"code": 20429, "message": "Too Many Requests"}, {"Retry-After": "7"}),
         FailureKind.TRANSIENT, 20429),
        (Answer(503, b"<html>Service Unavailable</html>"), FailureKind.TRANSIENT, None),
    ],
)  # fmt: skip
async def test_twilio_errors_are_classified(
    server: Recorder, twilio: TwilioProvider, answer: Answer, kind: FailureKind, code: int | None
) -> None:
    server.answers.append(answer)
    error = await failure(twilio, twilio_settings(server), sms())
    assert error.kind is kind
    assert error.retry_after == (7.0 if answer.status == 429 else None)
    expected: dict[str, Any] = {"endpoint": server.base, "status": answer.status}
    if code is not None:
        expected["error"] = code
    assert error.detail == expected
    assert_private(error, AUTH_TOKEN)


# Vonage


def vonage_answer(*statuses: str, count: str | None = None) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for n, status in enumerate(statuses):
        if status == "0":
            messages.append({"to": PHONE.removeprefix("+"), "message-id": f"0A000000123ABCD{n}", "status": "0",
                             "remaining-balance": "3.14", "message-price": "0.0333", "network": "23410"})  # fmt: skip
        else:
            messages.append({"status": status, "error-text": f"Problem with {PHONE.removeprefix('+')}"})
    return {"message-count": count or str(len(statuses)), "messages": messages}


async def test_vonage_posts_to_the_sms_api(server: Recorder, vonage: VonageProvider) -> None:
    server.answers.append(Answer(200, vonage_answer("0")))
    result = await vonage.send(vonage_settings(server), sms())

    (request,) = server.requests
    assert request.method == "POST"
    assert request.path == "/sms/json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in request.headers
    assert request.form() == {
        "api_key": "abc123",
        "api_secret": VONAGE_SECRET,
        "from": "Tidings",
        "to": "447700900123",
        "text": BODY,
        "type": "text",
        "client-ref": "job-1",
    }
    assert result.provider_message_id == "0A000000123ABCD0"
    assert result.detail == {"status": 200, "endpoint": server.base}


async def test_vonage_unicode_and_long_keys(server: Recorder, vonage: VonageProvider) -> None:
    server.answers.append(Answer(200, vonage_answer("0", "0")))
    key = "k" * 80
    result = await vonage.send(vonage_settings(server), sms(body="Grüße 👋 — 你好", key=key))
    form = server.requests[0].form()
    assert form["type"] == "unicode"
    assert form["text"] == "Grüße 👋 — 你好"
    assert form["client-ref"] == hashlib.sha256(key.encode()).hexdigest()[:40]
    assert result.provider_message_id == "0A000000123ABCD0"
    assert result.detail == {"status": 200, "endpoint": server.base, "parts": 2}


async def test_vonage_reads_a_truncated_answer_of_a_long_message(server: Recorder, vonage: VonageProvider) -> None:
    server.answers.append(Answer(200, vonage_answer(*["0"] * 40)))
    result = await vonage.send(vonage_settings(server), sms(body="x" * 6000))
    assert result.provider_message_id == "0A000000123ABCD0"
    assert result.detail["parts"] == 40


@pytest.mark.parametrize(
    ("statuses", "kind", "code"),
    [
        (("1",), FailureKind.TRANSIENT, 1),  # throttled
        (("5",), FailureKind.TRANSIENT, 5),  # internal error
        (("2",), FailureKind.PERMANENT, 2),  # missing parameters
        (("3",), FailureKind.PERMANENT, 3),  # invalid parameters
        (("4",), FailureKind.PERMANENT, 4),  # invalid credentials
        (("9",), FailureKind.PERMANENT, 9),  # out of credit
        (("6",), FailureKind.BAD_ENDPOINT, 6),  # invalid message: unrecognised number prefix
        (("7",), FailureKind.BAD_ENDPOINT, 7),  # number barred
        (("33",), FailureKind.BAD_ENDPOINT, 33),  # number de-activated
        (("0", "1"), FailureKind.TRANSIENT, 1),  # a later part refused
    ],
)
async def test_vonage_statuses_in_a_200_answer_are_classified(
    server: Recorder, vonage: VonageProvider, statuses: tuple[str, ...], kind: FailureKind, code: int
) -> None:
    server.answers.append(Answer(200, vonage_answer(*statuses)))
    error = await failure(vonage, vonage_settings(server), sms())
    assert error.kind is kind
    assert error.detail == {"endpoint": server.base, "status": 200, "error": code}
    assert_private(error, VONAGE_SECRET)


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (Answer(500, b"oops"), FailureKind.TRANSIENT),
        (Answer(429, b"", {"Retry-After": "3"}), FailureKind.TRANSIENT),
        (Answer(401, {"error-text": "Bad Credentials"}), FailureKind.PERMANENT),
        (Answer(200, b"<html>not json</html>"), FailureKind.PERMANENT),  # nothing says whether it was accepted
    ],
)
async def test_vonage_http_answers_are_classified(
    server: Recorder, vonage: VonageProvider, answer: Answer, kind: FailureKind
) -> None:
    server.answers.append(answer)
    error = await failure(vonage, vonage_settings(server), sms())
    assert error.kind is kind
    assert error.detail["status"] == answer.status
    assert error.retry_after == (3.0 if answer.status == 429 else None)
    assert_private(error, VONAGE_SECRET)


# SMS webhook


async def test_sms_webhook_posts_signed_json(server: Recorder, webhook: SmsWebhookProvider) -> None:
    server.answers.append(Answer(202, {"messageId": "gw-42"}))
    before = int(time.time())
    result = await webhook.send(webhook_settings(server, signing_secret=SIGNING_SECRET), sms())

    (request,) = server.requests
    assert request.method == "POST"
    assert request.path == "/gateway/sms"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-tidings-idempotency-key"] == "job-1"
    assert json.loads(request.body) == {
        "to": PHONE,
        "body": BODY,
        "subscriberId": "ada",
        "transactionId": "tx-1",
        "idempotencyKey": "job-1",
        "metadata": {"transactionId": "tx-1", "workflowId": "login"},
    }
    fields = dict(part.split("=", 1) for part in request.headers["x-tidings-signature"].split(","))
    timestamp = int(fields["t"])
    assert before <= timestamp <= int(time.time())
    expected = hmac.new(SIGNING_SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert result.provider_message_id == "gw-42"
    assert result.detail == {"status": 202, "endpoint": server.base}


async def test_sms_webhook_unsigned_and_without_an_id(server: Recorder, webhook: SmsWebhookProvider) -> None:
    server.answers.append(Answer(200, b"ok"))
    result = await webhook.send(webhook_settings(server), sms())
    (request,) = server.requests
    assert "x-tidings-signature" not in request.headers
    assert result.provider_message_id is None


@pytest.mark.parametrize(
    ("answer", "kind", "retry_after"),
    [
        (Answer(503, b"", {"Retry-After": "12"}), FailureKind.TRANSIENT, 12.0),
        (Answer(400, {"error": BODY}), FailureKind.PERMANENT, None),
        (Answer(401, b""), FailureKind.PERMANENT, None),
    ],
)
async def test_sms_webhook_answers_are_classified(
    server: Recorder, webhook: SmsWebhookProvider, answer: Answer, kind: FailureKind, retry_after: float | None
) -> None:
    server.answers.append(answer)
    error = await failure(webhook, webhook_settings(server, signing_secret=SIGNING_SECRET), sms())
    assert error.kind is kind
    assert error.retry_after == retry_after
    assert error.detail == {"endpoint": server.base, "status": answer.status}
    assert_private(error, SIGNING_SECRET, "/gateway")


# What all three share


@pytest.fixture
async def providers(server: Recorder) -> AsyncIterator[list[tuple[HttpProvider[Any], Any]]]:
    built: list[tuple[HttpProvider[Any], Any]] = [
        (TwilioProvider(identifier="t", allow_private_networks=True), twilio_settings(server)),
        (VonageProvider(identifier="v", allow_private_networks=True), vonage_settings(server)),
        (SmsWebhookProvider(identifier="w", allow_private_networks=True), webhook_settings(server)),
    ]
    yield built
    for provider, _ in built:
        await provider.aclose()


@pytest.mark.parametrize(
    ("message", "kind", "words"),
    [
        (sms(phone=None), FailureKind.PERMANENT, "no phone number"),
        (sms(phone="  "), FailureKind.PERMANENT, "no phone number"),
        (sms(phone="07700 900123"), FailureKind.BAD_ENDPOINT, "E.164"),
        (sms(phone="+44 7700 900123 ext 5"), FailureKind.BAD_ENDPOINT, "E.164"),
        (sms(phone="+1234"), FailureKind.BAD_ENDPOINT, "E.164"),
        (sms(body="  "), FailureKind.PERMANENT, "no body"),
        (sms(body=None), FailureKind.PERMANENT, "no body"),
    ],
)
async def test_unusable_recipient_or_content_fails_before_any_request(
    server: Recorder,
    providers: list[tuple[HttpProvider[Any], Any]],
    message: OutboundMessage,
    kind: FailureKind,
    words: str,
) -> None:
    for provider, settings in providers:
        error = await failure(provider, settings, message)
        assert error.kind is kind
        assert words in error.message
    assert server.requests == []


async def test_private_addresses_are_refused(server: Recorder) -> None:
    strict: list[tuple[HttpProvider[Any], Any]] = [
        (TwilioProvider(identifier="t", allow_private_networks=False), twilio_settings(server)),
        (VonageProvider(identifier="v", allow_private_networks=False), vonage_settings(server)),
        (SmsWebhookProvider(identifier="w", allow_private_networks=False), webhook_settings(server)),
    ]
    for provider, settings in strict:
        try:
            error = await failure(provider, settings, sms())
        finally:
            await provider.aclose()
        assert error.kind is FailureKind.PERMANENT
        assert "loopback" in error.message
    assert server.requests == []


# Settings


def test_settings_defaults_and_secrets() -> None:
    twilio = TwilioSettings.model_validate(
        {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": "Acme"}
    )
    vonage = VonageSettings.model_validate(
        {"api_key": "abc", "api_secret": VONAGE_SECRET, "from_number": "447700900001"}
    )
    hook = SmsWebhookSettings.model_validate({"url": "https://sms.example.com/in", "signing_secret": SIGNING_SECRET})
    assert twilio.base_url == "https://api.twilio.com"
    assert vonage.base_url == "https://rest.nexmo.com"
    assert twilio.timeout_seconds == vonage.timeout_seconds == hook.timeout_seconds == 10
    for settings, secret in [(twilio, AUTH_TOKEN), (vonage, VONAGE_SECRET), (hook, SIGNING_SECRET)]:
        assert secret not in repr(settings)
        assert secret not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("model", "values"),
    [
        # unknown key
        (TwilioSettings, {"account_sid": ACCOUNT_SID, "auth_token": "t", "from_number": "+1500", "region": "ie1"}),
        (VonageSettings, {"api_key": "k", "api_secret": "s", "from_number": "Acme", "apiSecret": "s"}),
        (SmsWebhookSettings, {"url": "https://sms.example.com/in", "secret": "s"}),
        # missing required
        (TwilioSettings, {"account_sid": ACCOUNT_SID, "from_number": "+15005550006"}),
        (TwilioSettings, {"account_sid": ACCOUNT_SID, "auth_token": "t"}),  # neither From nor a Messaging Service
        (VonageSettings, {"api_key": "k", "api_secret": "s"}),
        (SmsWebhookSettings, {}),
        # bad values
        (TwilioSettings, {"account_sid": "AC123", "auth_token": "t", "from_number": "+15005550006"}),
        (TwilioSettings, {"account_sid": ACCOUNT_SID, "auth_token": "t", "messaging_service_sid": "MG1"}),
        (TwilioSettings, {"account_sid": ACCOUNT_SID, "auth_token": "", "from_number": "+15005550006"}),
        (VonageSettings, {"api_key": "k", "api_secret": "s", "from_number": "Acme", "base_url": "ftp://x"}),
        (VonageSettings, {"api_key": "k", "api_secret": "s", "from_number": "Acme", "timeout_seconds": 0}),
        (SmsWebhookSettings, {"url": "javascript:alert(1)"}),
    ],
)
def test_settings_refuse_unknown_missing_and_bad_values(
    model: type[pydantic.BaseModel], values: dict[str, Any]
) -> None:
    with pytest.raises(pydantic.ValidationError):
        model.model_validate(values)


# Status callbacks: the id of a callback is the id send() returned


async def test_twilio_sends_the_status_callback_url_and_its_callbacks_name_the_sent_message(
    server: Recorder, twilio: TwilioProvider
) -> None:
    server.answers.append(Answer(201, twilio_message()))
    settings = twilio_settings(server, status_callback_url=callbacks.CALLBACK_URL)
    result = await twilio.send(settings, sms())

    (request,) = server.requests
    assert request.form() == {
        "To": PHONE,
        "From": "+15005550006",
        "Body": BODY,
        "StatusCallback": callbacks.CALLBACK_URL,
    }
    webhook = callbacks.twilio_callback("undelivered", ErrorCode="30005")
    (update,) = twilio.parse_status_webhook(settings, webhook)
    assert update.provider_message_id == result.provider_message_id == callbacks.TWILIO_SID
    assert (update.status, update.hard, update.reason) == (DeliveryStatus.FAILED, True, "30005")


async def test_vonage_receipts_name_the_sent_message(server: Recorder, vonage: VonageProvider) -> None:
    server.answers.append(Answer(200, vonage_answer("0")))
    settings = vonage_settings(server, dlr_token=callbacks.DLR_TOKEN)
    result = await vonage.send(settings, sms())

    body = json.dumps(callbacks.vonage_receipt("delivered")).encode()
    webhook = InboundWebhook({}, body, f"{callbacks.CALLBACK_URL}?token={callbacks.DLR_TOKEN}")
    (update,) = vonage.parse_status_webhook(settings, webhook)
    assert update.provider_message_id == result.provider_message_id == callbacks.VONAGE_ID
    assert update.status is DeliveryStatus.DELIVERED
