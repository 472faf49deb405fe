"""The HTTP-API email providers (SendGrid, Postmark, Resend, Mailgun) against a real local HTTP server.

The server records each request and answers with whatever the test queued (status, JSON body, headers), standing in
for the service's API; the providers are pointed at it through their `base_url`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pydantic
import pytest

from tests.unit import test_status_callbacks as callbacks
from tidings.core.channels import Channel
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, Recipient
from tidings.integrations.email_settings import MailgunSettings, PostmarkSettings, ResendSettings, SendGridSettings
from tidings.tasks.providers.base import Provider
from tidings.tasks.providers.email.mailgun import MailgunProvider
from tidings.tasks.providers.email.postmark import PostmarkProvider
from tidings.tasks.providers.email.resend import ResendProvider
from tidings.tasks.providers.email.sendgrid import SendGridProvider

API_KEY = "key-SECRET-0123456789"
HTML = "<p>Build <b>42</b> passed</p>"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = None  # JSON-encoded when not None
    headers: tuple[tuple[str, str], ...] = ()


class Api(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Request] = []
        self.answers: deque[Answer] = deque()
        self.respond: Callable[[Request], Answer] | None = None  # answers computed from the request

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, status: int = 200, body: Any = None, **headers: str) -> None:
        self.answers.append(Answer(status, body, tuple((k.replace("_", "-"), v) for k, v in headers.items())))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Api

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request("POST", self.path, headers, body)
        self.server.requests.append(request)
        if self.server.respond is not None:
            answer = self.server.respond(request)
        else:
            answer = self.server.answers.popleft() if self.server.answers else Answer()
        payload = b"" if answer.body is None else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def email(
    *,
    to: str | None = "ada@example.com",
    html: str | None = HTML,
    text: str | None = None,
    key: str = "job-1",
    first_name: str | None = "Ada",
    last_name: str | None = "Lovelace",
) -> OutboundMessage:
    content: dict[str, Any] = {"subject": "Build  42\npassed"}
    if html is not None:
        content["html"] = html
    if text is not None:
        content["text"] = text
    return OutboundMessage(
        channel=Channel.EMAIL,
        recipient=Recipient(subscriber_id="ada", email=to, first_name=first_name, last_name=last_name),
        content=content,
        idempotency_key=key,
        metadata={"transactionId": "tx-1", "workflowId": "builds"},
    )


async def send(provider: Provider[Any], settings: Any, message: OutboundMessage) -> Any:
    try:
        return await provider.send(settings, message)
    finally:
        await provider.aclose()


async def failure(provider: Provider[Any], settings: Any, message: OutboundMessage | None = None) -> DeliveryError:
    with pytest.raises(DeliveryError) as error:
        await send(provider, settings, message or email())
    assert API_KEY not in str(error.value)
    assert API_KEY not in repr(error.value.detail)
    return error.value


def sendgrid(api: Api) -> tuple[SendGridProvider, SendGridSettings]:
    settings = SendGridSettings.model_validate(
        {"api_key": API_KEY, "from_email": "alerts@tidings.dev", "from_name": "Tidings", "base_url": api.base}
    )
    return SendGridProvider(identifier="sg", allow_private_networks=True), settings


def postmark(api: Api, **extra: Any) -> tuple[PostmarkProvider, PostmarkSettings]:
    settings = PostmarkSettings.model_validate(
        {"server_token": API_KEY, "from_email": "alerts@tidings.dev", "from_name": "Tidings", "base_url": api.base}
        | extra
    )
    return PostmarkProvider(identifier="pm", allow_private_networks=True), settings


def resend(api: Api) -> tuple[ResendProvider, ResendSettings]:
    settings = ResendSettings.model_validate(
        {"api_key": API_KEY, "from_email": "alerts@tidings.dev", "base_url": api.base}
    )
    return ResendProvider(identifier="rs", allow_private_networks=True), settings


def mailgun(api: Api) -> tuple[MailgunProvider, MailgunSettings]:
    settings = MailgunSettings.model_validate(
        {
            "api_key": API_KEY,
            "domain": "mg.tidings.dev",
            "from_email": "alerts@tidings.dev",
            "from_name": "Tidings Alerts",
            "base_url": api.base,
        }
    )
    return MailgunProvider(identifier="mg", allow_private_networks=True), settings


# --- SendGrid ---------------------------------------------------------------------------------------------------


async def test_sendgrid_posts_mail_send_and_reads_the_message_id_header(api: Api) -> None:
    api.answer(202, X_Message_Id="sg-msg-123")
    result = await send(*sendgrid(api), email())

    assert result.provider_message_id == "sg-msg-123"
    assert result.detail == {"status": 202, "endpoint": api.base}
    (request,) = api.requests
    assert (request.method, request.path) == ("POST", "/v3/mail/send")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "personalizations": [{"to": [{"email": "ada@example.com", "name": "Ada Lovelace"}]}],
        "from": {"email": "alerts@tidings.dev", "name": "Tidings"},
        "subject": "Build 42 passed",
        "content": [{"type": "text/plain", "value": "Build 42 passed\n"}, {"type": "text/html", "value": HTML}],
        "custom_args": {"idempotencyKey": "job-1", "transactionId": "tx-1", "workflowId": "builds"},
    }


async def test_sendgrid_message_ids_of_concurrent_sends_do_not_mix(api: Api) -> None:
    def respond(request: Request) -> Answer:
        # Answer later requests sooner, so the answers cross.
        key = request.json()["custom_args"]["idempotencyKey"]
        time.sleep(0.05 * (5 - int(key.removeprefix("job-"))))
        return Answer(202, headers=(("X-Message-Id", f"id-of-{key}"),))

    api.respond = respond
    provider, settings = sendgrid(api)
    try:
        results = await asyncio.gather(*(provider.send(settings, email(key=f"job-{n}")) for n in range(5)))
        assert [result.provider_message_id for result in results] == [f"id-of-job-{n}" for n in range(5)]
        api.respond = None
        api.answer(202)  # no X-Message-Id: nothing is left over from the sends before
        assert (await provider.send(settings, email())).provider_message_id is None
    finally:
        await provider.aclose()


@pytest.mark.parametrize(
    ("status", "body", "kind", "detail"),
    [
        (429, None, FailureKind.TRANSIENT, {}),
        (503, None, FailureKind.TRANSIENT, {}),
        (
            401,
            {"errors": [{"field": None, "message": "The provided authorization grant is invalid"}]},
            FailureKind.PERMANENT,
            {},
        ),
        (
            400,
            {"errors": [{"field": "subject", "message": "The subject is required."}]},
            FailureKind.PERMANENT,
            {"fields": ["subject"]},
        ),
        (
            400,
            {"errors": [{"field": "personalizations.0.to.0.email", "message": "Does not contain a valid address."}]},
            FailureKind.BAD_ENDPOINT,
            {"fields": ["personalizations.0.to.0.email"], "target": "subscriber"},
        ),
    ],
)
async def test_sendgrid_errors_are_classified(
    api: Api, status: int, body: Any, kind: FailureKind, detail: dict[str, Any]
) -> None:
    if status == 429:
        api.answer(status, body, Retry_After="12")
    else:
        api.answer(status, body)
    error = await failure(*sendgrid(api))
    assert error.kind is kind
    assert error.retry_after == (12.0 if status == 429 else None)
    assert error.detail == {"endpoint": api.base, "status": status, **detail}
    assert "valid address" not in str(error)
    assert "valid address" not in repr(error.detail)


# --- Postmark ---------------------------------------------------------------------------------------------------


async def test_postmark_posts_email_with_the_server_token(api: Api) -> None:
    api.answer(200, {"To": "ada@example.com", "MessageID": "0a129aee-e1cd-480d-b08d-4f48548ff48d", "ErrorCode": 0})
    provider, settings = postmark(api, message_stream="notifications")
    result = await send(provider, settings, email(html=None, text="Build 42 passed"))

    assert result.provider_message_id == "0a129aee-e1cd-480d-b08d-4f48548ff48d"
    assert result.detail == {"status": 200, "endpoint": api.base}
    (request,) = api.requests
    assert (request.method, request.path) == ("POST", "/email")
    assert request.headers["x-postmark-server-token"] == API_KEY
    assert "authorization" not in request.headers
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.json() == {
        "From": "Tidings <alerts@tidings.dev>",
        "To": "Ada Lovelace <ada@example.com>",
        "Subject": "Build 42 passed",
        "TextBody": "Build 42 passed",
        "MessageStream": "notifications",
        "Metadata": {"idempotencyKey": "job-1", "transactionId": "tx-1", "workflowId": "builds"},
    }


async def test_postmark_quotes_display_names_with_punctuation(api: Api) -> None:
    api.answer(200, {"MessageID": "m-1", "ErrorCode": 0})
    await send(*postmark(api), email(first_name="Lovelace,", last_name="Ada"))
    body = api.requests[0].json()
    assert body["To"] == '"Lovelace, Ada" <ada@example.com>'
    assert body["HtmlBody"] == HTML
    assert "MessageStream" not in body


@pytest.mark.parametrize(
    ("status", "body", "kind", "detail"),
    [
        (503, None, FailureKind.TRANSIENT, {}),
        (429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, FailureKind.TRANSIENT, {"error_code": 429}),
        (401, {"ErrorCode": 10, "Message": "Bad or missing API token"}, FailureKind.PERMANENT, {"error_code": 10}),
        (
            422,
            {"ErrorCode": 300, "Message": "Provide either email TextBody or HtmlBody or both."},
            FailureKind.PERMANENT,
            {"error_code": 300},
        ),
        (
            422,
            {"ErrorCode": 300, "Message": "Error parsing 'To': Illegal email address 'ada@example'."},
            FailureKind.BAD_ENDPOINT,
            {"error_code": 300, "target": "subscriber"},
        ),
        (
            422,
            {"ErrorCode": 406, "Message": "You tried to send to recipient(s) that have been marked as inactive."},
            FailureKind.BAD_ENDPOINT,
            {"error_code": 406, "target": "subscriber"},
        ),
    ],
)
async def test_postmark_errors_are_classified(
    api: Api, status: int, body: Any, kind: FailureKind, detail: dict[str, Any]
) -> None:
    api.answer(status, body)
    error = await failure(*postmark(api))
    assert error.kind is kind
    assert error.detail == {"endpoint": api.base, "status": status, **detail}
    assert "inactive" not in repr(error.detail)
    assert "Illegal" not in str(error)


# --- Resend -----------------------------------------------------------------------------------------------------


async def test_resend_posts_emails_with_an_idempotency_key(api: Api) -> None:
    api.answer(200, {"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"})
    result = await send(*resend(api), email(key="job-1", first_name=None, last_name=None, text="Build 42 passed"))

    assert result.provider_message_id == "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"
    (request,) = api.requests
    assert (request.method, request.path) == ("POST", "/emails")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "job-1"
    assert request.json() == {
        "from": "alerts@tidings.dev",
        "to": ["ada@example.com"],
        "subject": "Build 42 passed",
        "text": "Build 42 passed",
        "html": HTML,
        "tags": [
            {"name": "idempotencyKey", "value": "job-1"},
            {"name": "transactionId", "value": "tx-1"},
            {"name": "workflowId", "value": "builds"},
        ],
    }


async def test_resend_sends_the_same_key_on_a_retry_and_hashes_long_keys(api: Api) -> None:
    long_key = "k" * 300
    provider, settings = resend(api)
    try:
        api.answer(503)
        with pytest.raises(DeliveryError):
            await provider.send(settings, email(key=long_key))
        api.answer(200, {"id": "e-1"})
        await provider.send(settings, email(key=long_key))
    finally:
        await provider.aclose()
    first, second = (request.headers["idempotency-key"] for request in api.requests)
    assert first == second
    assert len(first) == 64


@pytest.mark.parametrize(
    ("status", "body", "kind", "detail"),
    [
        (
            429,
            {"statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many requests"},
            FailureKind.TRANSIENT,
            {"error": "rate_limit_exceeded"},
        ),
        (500, None, FailureKind.TRANSIENT, {}),
        (
            409,
            {"statusCode": 409, "name": "concurrent_idempotent_requests", "message": "still in progress"},
            FailureKind.TRANSIENT,
            {"error": "concurrent_idempotent_requests"},
        ),
        (
            409,
            {"statusCode": 409, "name": "invalid_idempotent_request", "message": "different payload"},
            FailureKind.PERMANENT,
            {"error": "invalid_idempotent_request"},
        ),
        (
            401,
            {"statusCode": 401, "name": "missing_api_key", "message": "Missing API key"},
            FailureKind.PERMANENT,
            {"error": "missing_api_key"},
        ),
        (
            422,
            {
                "statusCode": 422,
                "name": "validation_error",
                "message": "Invalid `to` field. The email address needs to follow the `email@example.com` format.",
            },
            FailureKind.BAD_ENDPOINT,
            {"error": "validation_error", "target": "subscriber"},
        ),
    ],
)
async def test_resend_errors_are_classified(
    api: Api, status: int, body: Any, kind: FailureKind, detail: dict[str, Any]
) -> None:
    api.answer(status, body)
    error = await failure(*resend(api))
    assert error.kind is kind
    assert error.detail == {"endpoint": api.base, "status": status, **detail}


# --- Mailgun ----------------------------------------------------------------------------------------------------


async def test_mailgun_posts_a_form_to_the_domain_with_basic_auth(api: Api) -> None:
    api.answer(200, {"id": "<20261129105300.1.ABC@mg.tidings.dev>", "message": "Queued. Thank you."})
    result = await send(*mailgun(api), email())

    assert result.provider_message_id == "<20261129105300.1.ABC@mg.tidings.dev>"
    assert result.detail == {"status": 200, "endpoint": api.base}
    (request,) = api.requests
    assert (request.method, request.path) == ("POST", "/v3/mg.tidings.dev/messages")
    scheme, credentials = request.headers["authorization"].split(" ", 1)
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == f"api:{API_KEY}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {
        "from": ["Tidings Alerts <alerts@tidings.dev>"],
        "to": ["Ada Lovelace <ada@example.com>"],
        "subject": ["Build 42 passed"],
        "text": ["Build 42 passed\n"],
        "html": [HTML],
        "v:idempotencyKey": ["job-1"],
        "v:transactionId": ["tx-1"],
        "v:workflowId": ["builds"],
    }


@pytest.mark.parametrize(
    ("status", "body", "kind", "detail"),
    [
        (429, {"message": "Too many requests"}, FailureKind.TRANSIENT, {}),
        (502, None, FailureKind.TRANSIENT, {}),
        (401, None, FailureKind.PERMANENT, {}),
        (400, {"message": "from parameter is missing"}, FailureKind.PERMANENT, {}),
        (
            400,
            {"message": "to parameter is not a valid address. please check documentation"},
            FailureKind.BAD_ENDPOINT,
            {"target": "subscriber"},
        ),
    ],
)
async def test_mailgun_errors_are_classified(
    api: Api, status: int, body: Any, kind: FailureKind, detail: dict[str, Any]
) -> None:
    api.answer(status, body)
    error = await failure(*mailgun(api))
    assert error.kind is kind
    assert error.detail == {"endpoint": api.base, "status": status, **detail}


# --- Shared behaviour -------------------------------------------------------------------------------------------

PROVIDERS = [sendgrid, postmark, resend, mailgun]


@pytest.mark.parametrize("make", PROVIDERS)
async def test_a_subscriber_without_an_email_fails_permanently_without_a_request(api: Api, make: Any) -> None:
    provider, settings = make(api)
    error = await failure(provider, settings, email(to=None))
    assert error.kind is FailureKind.PERMANENT
    assert "no email address" in str(error)
    assert api.requests == []


@pytest.mark.parametrize("make", PROVIDERS)
@pytest.mark.parametrize("address", ["ada", "ada@example.com, eve@example.com", "Eve <eve@example.com>", "a b@c.d"])
async def test_an_address_that_is_not_one_is_a_bad_endpoint(api: Api, make: Any, address: str) -> None:
    provider, settings = make(api)
    error = await failure(provider, settings, email(to=address))
    assert error.kind is FailureKind.BAD_ENDPOINT
    assert api.requests == []


@pytest.mark.parametrize("make", PROVIDERS)
async def test_content_without_a_body_fails_permanently(api: Api, make: Any) -> None:
    provider, settings = make(api)
    error = await failure(provider, settings, email(html=None, text=None))
    assert error.kind is FailureKind.PERMANENT
    assert api.requests == []


@pytest.mark.parametrize("make", PROVIDERS)
async def test_private_addresses_are_refused_unless_allowed(api: Api, make: Any) -> None:
    provider, settings = make(api)
    guarded = type(provider)(identifier="x", allow_private_networks=False)
    error = await failure(guarded, settings)
    assert error.kind is FailureKind.PERMANENT
    assert api.requests == []
    await provider.aclose()


@pytest.mark.parametrize("make", PROVIDERS)
async def test_a_redirect_is_not_followed(api: Api, make: Any) -> None:
    api.answer(307, Location="http://169.254.169.254/latest")
    error = await failure(*make(api))
    assert error.kind is FailureKind.PERMANENT
    assert len(api.requests) == 1


# --- Settings ---------------------------------------------------------------------------------------------------

type EmailSettings = SendGridSettings | PostmarkSettings | ResendSettings | MailgunSettings

VALID: list[tuple[type[EmailSettings], dict[str, Any], str]] = [
    (SendGridSettings, {"api_key": API_KEY, "from_email": "a@tidings.dev"}, "https://api.sendgrid.com"),
    (PostmarkSettings, {"server_token": API_KEY, "from_email": "a@tidings.dev"}, "https://api.postmarkapp.com"),
    (ResendSettings, {"api_key": API_KEY, "from_email": "a@tidings.dev"}, "https://api.resend.com"),
    (
        MailgunSettings,
        {"api_key": API_KEY, "domain": "MG.tidings.dev", "from_email": "a@tidings.dev"},
        "https://api.mailgun.net",
    ),
]


@pytest.mark.parametrize(("model", "values", "base_url"), VALID)
def test_settings_validate_and_hide_the_secret(
    model: type[EmailSettings], values: dict[str, Any], base_url: str
) -> None:
    settings = model.model_validate(values)
    assert settings.base_url == base_url
    assert settings.timeout_seconds == 10
    assert API_KEY not in repr(settings)
    assert API_KEY not in str(settings)
    with pytest.raises(pydantic.ValidationError):
        model.model_validate(values | {"unknown": 1})
    for required in values:
        with pytest.raises(pydantic.ValidationError):
            model.model_validate({k: v for k, v in values.items() if k != required})
    for bad in ({"from_email": "not-an-email"}, {"base_url": "ftp://x"}, {"timeout_seconds": 0}):
        with pytest.raises(pydantic.ValidationError):
            model.model_validate(values | bad)


def test_mailgun_domain_and_region() -> None:
    values = {"api_key": API_KEY, "from_email": "a@tidings.dev", "base_url": "https://api.eu.mailgun.net"}
    assert MailgunSettings.model_validate(values | {"domain": "MG.Example.com"}).domain == "mg.example.com"
    for domain in ("mg.example.com/../../v4", "localhost", "a b.com", ""):
        with pytest.raises(pydantic.ValidationError):
            MailgunSettings.model_validate(values | {"domain": domain})


def test_postmark_message_stream() -> None:
    values = {"server_token": API_KEY, "from_email": "a@tidings.dev"}
    assert PostmarkSettings.model_validate(values | {"message_stream": "broadcast"}).message_stream == "broadcast"
    with pytest.raises(pydantic.ValidationError):
        PostmarkSettings.model_validate(values | {"message_stream": "a/b"})


# --- Status callbacks: the id of a callback is the id send() returned --------------------------------------------


async def test_status_callbacks_name_the_message_as_send_returned_it(api: Api) -> None:
    api.answer(202, X_Message_Id="sg-msg-123")
    api.answer(200, {"To": "ada@example.com", "MessageID": callbacks.POSTMARK_ID, "ErrorCode": 0})
    api.answer(200, {"id": f"<{callbacks.MAILGUN_ID}>", "message": "Queued. Thank you."})

    provider, settings = sendgrid(api)
    settings = settings.model_copy(update={"event_webhook_public_key": callbacks.SENDGRID_PUBLIC_KEY})
    sent = await send(provider, settings, email())
    webhook = callbacks.sendgrid_callback(
        [callbacks.sendgrid_event("delivered", message_id=str(sent.provider_message_id))]
    )
    (update,) = provider.parse_status_webhook(settings, webhook)
    assert update.provider_message_id == sent.provider_message_id == "sg-msg-123"

    provider_pm, settings_pm = postmark(api, webhook_username="tidings", webhook_password=callbacks.POSTMARK_PASSWORD)
    sent = await send(provider_pm, settings_pm, email())
    record = callbacks.postmark_record("Delivery", message_id=str(sent.provider_message_id))
    webhook = callbacks.postmark_callback(record)
    (update,) = provider_pm.parse_status_webhook(settings_pm, webhook)
    assert update.provider_message_id == sent.provider_message_id == callbacks.POSTMARK_ID

    provider_mg, settings_mg = mailgun(api)
    settings_mg = settings_mg.model_copy(update={"webhook_signing_key": pydantic.SecretStr(callbacks.MAILGUN_KEY)})
    sent = await send(provider_mg, settings_mg, email())
    # Mailgun's callbacks name the message without the angle brackets its send answer has.
    webhook = callbacks.mailgun_callback(callbacks.mailgun_event("delivered", message_id=callbacks.MAILGUN_ID))
    (update,) = provider_mg.parse_status_webhook(settings_mg, webhook)
    assert update.provider_message_id == sent.provider_message_id == f"<{callbacks.MAILGUN_ID}>"
