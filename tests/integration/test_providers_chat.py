"""The Discord, Teams, Telegram and Slack Web API providers, against a real local HTTP(S) server recording requests."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pydantic
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tidings.core.channels import Channel
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, Recipient
from tidings.integrations.chat_settings import DiscordSettings, SlackApiSettings, TeamsSettings, TelegramSettings
from tidings.subscribers.documents import ChatEndpoint
from tidings.tasks.providers.base import Provider
from tidings.tasks.providers.chat.discord import DiscordProvider, json_field
from tidings.tasks.providers.chat.slack_api import SlackApiProvider
from tidings.tasks.providers.chat.teams import TeamsProvider
from tidings.tasks.providers.chat.telegram import TelegramProvider

BOT_TOKEN = "123456789:AAE-secretTOKENsecretTOKEN_0123456789"
SLACK_TOKEN = "xoxb-1111-2222-SECRETslacktoken"
HOOK_PATH = "/api/webhooks/1234/SECRETHOOKTOKEN"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=dict)  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)


class Recorder(ThreadingHTTPServer):
    """Records every POST and answers with the queued `answers` in order (200 `{}` when none is left)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Request] = []
        self.answers: deque[Answer] = deque()

    @property
    def base(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.server.requests.append(Request("POST", self.path, headers, body))
        answer = self.server.answers.popleft() if self.server.answers else Answer()
        payload = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

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


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
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


@pytest.fixture
def https_server(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """For the integration-level webhook URLs, which must be https; the provider's client trusts its certificate."""
    cert, key = certificate
    server = Recorder()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    yield from _serve(server)


@pytest.fixture
async def providers() -> AsyncIterator[list[Provider[Any]]]:
    """Providers made by a test (through `make`) are closed after it."""
    made: list[Provider[Any]] = []
    yield made
    for provider in made:
        await provider.aclose()


def make[P: Provider[Any]](made: list[Provider[Any]], cls: type[P], identifier: str = "chat") -> P:
    provider = cls(identifier=identifier, allow_private_networks=True)
    made.append(provider)
    return provider


def chat_message(body: str = "Build 42 passed", chat: tuple[ChatEndpoint, ...] = ()) -> OutboundMessage:
    return OutboundMessage(
        channel=Channel.CHAT,
        recipient=Recipient(subscriber_id="ada", chat=chat),
        content={"body": body},
        idempotency_key="job-1",
        metadata={"transactionId": "tx-1"},
    )


def endpoint(
    identifier: str = "chat", *, webhook_url: str | None = None, channel_id: str | None = None
) -> ChatEndpoint:
    return ChatEndpoint(integration_identifier=identifier, webhook_url=webhook_url, channel_id=channel_id)


async def failure(provider: Provider[Any], settings: Any, message: OutboundMessage) -> DeliveryError:
    with pytest.raises(DeliveryError) as error:
        await provider.send(settings, message)
    return error.value


def assert_no_secret(error: DeliveryError, *secrets: str) -> None:
    text = error.message + json.dumps(error.detail)
    for secret in (*secrets, "Build 42"):
        assert secret not in text


# --- Discord ---------------------------------------------------------------------------------------------------


async def test_discord_posts_content_to_the_subscribers_webhook_and_returns_the_message_id(
    http_server: Recorder, providers: list[Provider[Any]]
) -> None:
    discord = make(providers, DiscordProvider)
    http_server.answers.append(Answer(200, {"id": "1100000000000000001", "channel_id": "9", "content": "x"}))
    chat = (
        endpoint("other", webhook_url=f"{http_server.base}/other"),
        endpoint(webhook_url=f"{http_server.base}{HOOK_PATH}?thread_id=77"),
    )
    result = await discord.send(DiscordSettings(), chat_message(chat=chat))

    (request,) = http_server.requests
    assert request.method == "POST"
    assert request.path == f"{HOOK_PATH}?thread_id=77&wait=true"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert request.json() == {"content": "Build 42 passed", "allowed_mentions": {"parse": ["users", "roles"]}}
    assert result.provider_message_id == "1100000000000000001"
    assert result.detail == {
        "target": "subscriber",
        "integrationIdentifier": "chat",
        "status": 200,
        "endpoint": http_server.base,
    }


async def test_discord_falls_back_to_the_integration_webhook(
    https_server: Recorder, providers: list[Provider[Any]]
) -> None:
    # The id comes after a long echoed content: the answer is cut at 4 KiB and still yields it.
    echoed = {"type": 0, "content": "é" * 1000, "id": "42", "author": {"id": "7"}, "pad": "x" * 5000}
    https_server.answers.append(Answer(200, json.dumps(echoed, ensure_ascii=False).encode()))
    settings = DiscordSettings(webhook_url=pydantic.SecretStr(f"{https_server.base}{HOOK_PATH}"))
    result = await make(providers, DiscordProvider).send(
        settings, chat_message(chat=(endpoint("other", webhook_url="https://example.com/x"),))
    )
    (request,) = https_server.requests
    assert request.path == f"{HOOK_PATH}?wait=true"
    assert result.provider_message_id == "42"
    assert result.detail["target"] == "integration"


@pytest.mark.parametrize(
    ("answer", "kind", "retry_after"),
    [
        (
            Answer(429, {"message": "You are being rate limited.", "retry_after": 2.5}, {"Retry-After": "3"}),
            FailureKind.TRANSIENT,
            3.0,
        ),
        (Answer(503, b"upstream"), FailureKind.TRANSIENT, None),
        (Answer(400, {"code": 50006, "message": "Cannot send an empty message"}), FailureKind.PERMANENT, None),
        (Answer(404, {"code": 10015, "message": "Unknown Webhook"}), FailureKind.BAD_ENDPOINT, None),
        (Answer(401, {"code": 50027, "message": "Invalid Webhook Token"}), FailureKind.BAD_ENDPOINT, None),
    ],
)
async def test_discord_answers_for_a_subscribers_webhook_are_classified(
    http_server: Recorder, providers: list[Provider[Any]], answer: Answer, kind: FailureKind, retry_after: float | None
) -> None:
    http_server.answers.append(answer)
    chat = (endpoint(webhook_url=f"{http_server.base}{HOOK_PATH}"),)
    error = await failure(make(providers, DiscordProvider), DiscordSettings(), chat_message(chat=chat))
    assert error.kind is kind
    assert error.retry_after == retry_after
    assert error.detail["status"] == answer.status
    assert error.detail["endpoint"] == http_server.base
    if isinstance(answer.body, dict) and "code" in answer.body:
        assert error.detail["code"] == answer.body["code"]
    assert_no_secret(error, "SECRETHOOKTOKEN", "Unknown Webhook")


async def test_discord_unknown_integration_webhook_is_permanent(
    https_server: Recorder, providers: list[Provider[Any]]
) -> None:
    https_server.answers.append(Answer(404, {"code": 10015, "message": "Unknown Webhook"}))
    settings = DiscordSettings(webhook_url=pydantic.SecretStr(f"{https_server.base}{HOOK_PATH}"))
    error = await failure(make(providers, DiscordProvider), settings, chat_message())
    assert error.kind is FailureKind.PERMANENT
    assert error.detail == {"endpoint": https_server.base, "target": "integration", "status": 404, "code": 10015}


async def test_discord_refuses_a_missing_webhook_and_oversized_content(
    http_server: Recorder, providers: list[Provider[Any]]
) -> None:
    discord = make(providers, DiscordProvider)
    missing = await failure(discord, DiscordSettings(), chat_message())
    chat = (endpoint(webhook_url=f"{http_server.base}{HOOK_PATH}"),)
    too_long = await failure(discord, DiscordSettings(), chat_message(body="x" * 2001, chat=chat))
    blank = await failure(discord, DiscordSettings(), chat_message(body=" ", chat=chat))
    assert (missing.kind, too_long.kind, blank.kind) == (FailureKind.PERMANENT,) * 3
    assert "no Discord webhook" in missing.message
    assert "2000" in too_long.message
    assert http_server.requests == []


# --- Microsoft Teams -------------------------------------------------------------------------------------------


async def test_teams_posts_an_adaptive_card(http_server: Recorder, providers: list[Provider[Any]]) -> None:
    http_server.answers.append(Answer(202, b""))  # Workflows webhooks accept with an empty 202
    chat = (endpoint(webhook_url=f"{http_server.base}/workflows/abc/triggers/manual/paths/invoke?sig=SECRETSIG"),)
    result = await make(providers, TeamsProvider).send(TeamsSettings(), chat_message(chat=chat))

    (request,) = http_server.requests
    assert request.method == "POST"
    assert request.path == "/workflows/abc/triggers/manual/paths/invoke?sig=SECRETSIG"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.2",
                    "body": [{"type": "TextBlock", "text": "Build 42 passed", "wrap": True}],
                },
            }
        ],
    }
    assert result.provider_message_id is None
    assert result.detail == {
        "target": "subscriber",
        "integrationIdentifier": "chat",
        "endpoint": http_server.base,
        "status": 202,
    }


async def test_teams_integration_webhook_and_classic_answer(
    https_server: Recorder, providers: list[Provider[Any]]
) -> None:
    https_server.answers.append(Answer(200, b"1"))  # classic connectors answer "1"
    settings = TeamsSettings(webhook_url=pydantic.SecretStr(f"{https_server.base}/webhookb2/SECRETHOOK"))
    result = await make(providers, TeamsProvider).send(settings, chat_message())
    assert [request.path for request in https_server.requests] == ["/webhookb2/SECRETHOOK"]
    assert result.detail == {"target": "integration", "endpoint": https_server.base, "status": 200}


def teams_refusal(status: int) -> bytes:
    text = f"Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error {status}"
    return f"{text} with ContextId tcid=0".encode()


@pytest.mark.parametrize(
    ("answer", "kind", "retry_after"),
    [
        (Answer(429, b"", {"Retry-After": "12"}), FailureKind.TRANSIENT, 12.0),
        (Answer(502, b""), FailureKind.TRANSIENT, None),
        (Answer(400, b"Bad payload: Build 42 passed"), FailureKind.PERMANENT, None),
        (Answer(404, b""), FailureKind.BAD_ENDPOINT, None),
        # Classic connectors answer 200 and say in the body that Teams refused the message.
        (
            Answer(
                200,
                teams_refusal(429),
            ),
            FailureKind.TRANSIENT,
            None,
        ),
        (
            Answer(
                200,
                teams_refusal(400),
            ),
            FailureKind.PERMANENT,
            None,
        ),
    ],
)
async def test_teams_answers_are_classified(
    http_server: Recorder, providers: list[Provider[Any]], answer: Answer, kind: FailureKind, retry_after: float | None
) -> None:
    http_server.answers.append(answer)
    chat = (endpoint(webhook_url=f"{http_server.base}/webhookb2/SECRETHOOK"),)
    error = await failure(make(providers, TeamsProvider), TeamsSettings(), chat_message(chat=chat))
    assert error.kind is kind
    assert error.retry_after == retry_after
    assert error.detail["endpoint"] == http_server.base
    assert_no_secret(error, "SECRETHOOK", "ContextId")


# --- Telegram --------------------------------------------------------------------------------------------------


def telegram_settings(server: Recorder, **extra: Any) -> TelegramSettings:
    return TelegramSettings.model_validate({"bot_token": BOT_TOKEN, "base_url": server.base, **extra})


async def test_telegram_sends_to_the_subscribers_chat(http_server: Recorder, providers: list[Provider[Any]]) -> None:
    http_server.answers.append(
        Answer(200, {"ok": True, "result": {"message_id": 5678, "chat": {"id": 99}, "text": "Build 42 passed"}})
    )
    chat = (endpoint("other", channel_id="1"), endpoint(channel_id="-1001234567890"))
    result = await make(providers, TelegramProvider).send(
        telegram_settings(http_server, default_chat_id="@news"), chat_message(chat=chat)
    )
    (request,) = http_server.requests
    assert request.method == "POST"
    assert request.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"chat_id": "-1001234567890", "text": "Build 42 passed"}
    assert result.provider_message_id == "5678"
    assert result.detail == {
        "target": "subscriber",
        "integrationIdentifier": "chat",
        "status": 200,
        "endpoint": http_server.base,
    }
    assert BOT_TOKEN not in json.dumps(result.detail)


async def test_telegram_falls_back_to_the_default_chat(http_server: Recorder, providers: list[Provider[Any]]) -> None:
    http_server.answers.append(Answer(200, {"ok": True, "result": {"message_id": 7}}))
    result = await make(providers, TelegramProvider).send(
        telegram_settings(http_server, default_chat_id="@news"), chat_message()
    )
    assert http_server.requests[0].json()["chat_id"] == "@news"
    assert result.provider_message_id == "7"
    assert result.detail["target"] == "integration"


def telegram_error(code: int, description: str, **parameters: Any) -> Answer:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Answer(code, body)


@pytest.mark.parametrize(
    ("answer", "kind", "retry_after", "reason"),
    [
        (
            telegram_error(429, "Too Many Requests: retry after 35", retry_after=35),
            FailureKind.TRANSIENT,
            35.0,
            "too_many_requests",
        ),
        (telegram_error(502, "Bad Gateway"), FailureKind.TRANSIENT, None, None),
        (telegram_error(403, "Forbidden: bot was blocked by the user"), FailureKind.BAD_ENDPOINT, None, "bot_blocked"),
        (telegram_error(400, "Bad Request: chat not found"), FailureKind.BAD_ENDPOINT, None, "chat_not_found"),
        (
            telegram_error(400, "Bad Request: can't parse entities: Build 42"),
            FailureKind.PERMANENT,
            None,
            "cannot_parse_entities",
        ),
        (telegram_error(401, "Unauthorized"), FailureKind.PERMANENT, None, "unauthorized"),
    ],
)
async def test_telegram_answers_for_a_subscribers_chat_are_classified(
    http_server: Recorder,
    providers: list[Provider[Any]],
    *,
    answer: Answer,
    kind: FailureKind,
    retry_after: float | None,
    reason: str | None,
) -> None:
    http_server.answers.append(answer)
    error = await failure(
        make(providers, TelegramProvider),
        telegram_settings(http_server),
        chat_message(chat=(endpoint(channel_id="42"),)),
    )
    assert error.kind is kind
    assert error.retry_after == retry_after
    assert error.detail["status"] == answer.status
    assert error.detail["errorCode"] == answer.status
    assert error.detail.get("reason") == reason
    assert "retryAfter" not in error.detail
    assert error.detail["endpoint"] == http_server.base
    assert_no_secret(error, BOT_TOKEN, "AAE-secret", "Forbidden", "Bad Request")


async def test_telegram_default_chat_not_found_is_permanent(
    http_server: Recorder, providers: list[Provider[Any]]
) -> None:
    http_server.answers.append(telegram_error(400, "Bad Request: chat not found"))
    error = await failure(
        make(providers, TelegramProvider), telegram_settings(http_server, default_chat_id="-100"), chat_message()
    )
    assert error.kind is FailureKind.PERMANENT
    assert error.detail["reason"] == "chat_not_found"


async def test_telegram_without_a_chat_is_permanent(http_server: Recorder, providers: list[Provider[Any]]) -> None:
    error = await failure(make(providers, TelegramProvider), telegram_settings(http_server), chat_message())
    assert error.kind is FailureKind.PERMANENT
    assert "no Telegram chat" in error.message
    assert http_server.requests == []


# --- Slack Web API ---------------------------------------------------------------------------------------------


def slack_settings(server: Recorder, **extra: Any) -> SlackApiSettings:
    return SlackApiSettings.model_validate({"bot_token": SLACK_TOKEN, "base_url": f"{server.base}/", **extra})


async def test_slack_api_posts_with_the_bot_token(http_server: Recorder, providers: list[Provider[Any]]) -> None:
    http_server.answers.append(
        Answer(200, {"ok": True, "channel": "C024BE91L", "ts": "1503435956.000247", "message": {"text": "Build 42"}})
    )
    chat = (endpoint(channel_id="C024BE91L"),)
    result = await make(providers, SlackApiProvider).send(
        slack_settings(http_server, default_channel="#general"), chat_message(chat=chat)
    )
    (request,) = http_server.requests
    assert request.method == "POST"
    assert request.path == "/api/chat.postMessage"
    assert request.headers["authorization"] == f"Bearer {SLACK_TOKEN}"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.json() == {"channel": "C024BE91L", "text": "Build 42 passed"}
    assert result.provider_message_id == "1503435956.000247"
    assert result.detail == {
        "target": "subscriber",
        "integrationIdentifier": "chat",
        "endpoint": http_server.base,
        "status": 200,
    }


async def test_slack_api_falls_back_to_the_default_channel(
    http_server: Recorder, providers: list[Provider[Any]]
) -> None:
    http_server.answers.append(Answer(200, {"ok": True, "ts": "1.2"}))
    result = await make(providers, SlackApiProvider).send(
        slack_settings(http_server, default_channel="#general"), chat_message()
    )
    assert http_server.requests[0].json()["channel"] == "#general"
    assert result.provider_message_id == "1.2"
    assert result.detail["target"] == "integration"


@pytest.mark.parametrize(
    ("answer", "kind", "retry_after", "error_code"),
    [
        (Answer(200, {"ok": False, "error": "channel_not_found"}), FailureKind.BAD_ENDPOINT, None, "channel_not_found"),
        (Answer(200, {"ok": False, "error": "is_archived"}), FailureKind.BAD_ENDPOINT, None, "is_archived"),
        (Answer(200, {"ok": False, "error": "not_in_channel"}), FailureKind.BAD_ENDPOINT, None, "not_in_channel"),
        (Answer(200, {"ok": False, "error": "ratelimited"}), FailureKind.TRANSIENT, None, "ratelimited"),
        (Answer(200, {"ok": False, "error": "invalid_auth"}), FailureKind.PERMANENT, None, "invalid_auth"),
        (Answer(200, {"ok": False, "error": "Build 42 passed"}), FailureKind.PERMANENT, None, None),
        (
            Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}),
            FailureKind.TRANSIENT,
            30.0,
            "ratelimited",
        ),
        (Answer(503, b"down"), FailureKind.TRANSIENT, None, None),
        (Answer(400, {"ok": False, "error": "invalid_json"}), FailureKind.PERMANENT, None, "invalid_json"),
    ],
)
async def test_slack_api_answers_for_a_subscribers_channel_are_classified(
    http_server: Recorder,
    providers: list[Provider[Any]],
    *,
    answer: Answer,
    kind: FailureKind,
    retry_after: float | None,
    error_code: str | None,
) -> None:
    http_server.answers.append(answer)
    error = await failure(
        make(providers, SlackApiProvider), slack_settings(http_server), chat_message(chat=(endpoint(channel_id="C1"),))
    )
    assert error.kind is kind
    assert error.retry_after == retry_after
    assert error.detail["status"] == answer.status
    assert error.detail.get("error") == error_code
    assert error.detail["endpoint"] == http_server.base
    assert_no_secret(error, SLACK_TOKEN, "SECRETslack")


async def test_slack_api_default_channel_not_found_is_permanent(
    http_server: Recorder, providers: list[Provider[Any]]
) -> None:
    http_server.answers.append(Answer(200, {"ok": False, "error": "channel_not_found"}))
    error = await failure(
        make(providers, SlackApiProvider), slack_settings(http_server, default_channel="C0123456789"), chat_message()
    )
    assert error.kind is FailureKind.PERMANENT
    assert error.detail["error"] == "channel_not_found"


async def test_slack_api_without_a_channel_is_permanent(http_server: Recorder, providers: list[Provider[Any]]) -> None:
    error = await failure(make(providers, SlackApiProvider), slack_settings(http_server), chat_message())
    assert error.kind is FailureKind.PERMANENT
    assert "no Slack channel" in error.message
    assert http_server.requests == []


# --- SSRF, settings and helpers ----------------------------------------------------------------------------------


async def test_private_addresses_are_refused_before_any_request(http_server: Recorder) -> None:
    strict = [
        cls(identifier="chat", allow_private_networks=False)
        for cls in (DiscordProvider, TeamsProvider, TelegramProvider, SlackApiProvider)
    ]
    hook = (endpoint(webhook_url=f"{http_server.base}{HOOK_PATH}", channel_id="C1"),)
    settings: list[Any] = [
        DiscordSettings(),
        TeamsSettings(),
        telegram_settings(http_server),
        slack_settings(http_server),
    ]
    try:
        for provider, config in zip(strict, settings, strict=True):
            error = await failure(provider, config, chat_message(chat=hook))
            assert error.kind is FailureKind.PERMANENT
            assert "loopback" in error.message
            assert_no_secret(error, "SECRETHOOKTOKEN", BOT_TOKEN, SLACK_TOKEN)
    finally:
        for provider in strict:
            await provider.aclose()
    assert http_server.requests == []


@pytest.mark.parametrize(
    ("model", "valid", "required", "secret"),
    [
        (DiscordSettings, {"webhook_url": "https://discord.com/api/webhooks/1/SECRETVALUE"}, None, "webhook_url"),
        (TeamsSettings, {"webhook_url": "https://x.webhook.office.com/webhookb2/SECRETVALUE"}, None, "webhook_url"),
        (
            TelegramSettings,
            {"bot_token": "123:SECRETVALUE-abcdefghijklmnop", "default_chat_id": "-100"},
            "bot_token",
            "bot_token",
        ),
        (SlackApiSettings, {"bot_token": "xoxb-SECRETVALUE", "default_channel": "C024BE91L"}, "bot_token", "bot_token"),
    ],
)
def test_settings_models(
    model: type[pydantic.BaseModel], valid: dict[str, Any], required: str | None, secret: str
) -> None:
    settings = model.model_validate(valid)
    assert settings.model_dump()["timeout_seconds"] == 10
    assert "SECRETVALUE" not in repr(settings) + str(settings)
    with pytest.raises(pydantic.ValidationError):
        model.model_validate({**valid, "unknown": 1})
    if required is not None:
        with pytest.raises(pydantic.ValidationError):
            model.model_validate({key: value for key, value in valid.items() if key != required})
    with pytest.raises(pydantic.ValidationError):
        model.model_validate({**valid, "timeout_seconds": 0})


def test_settings_refuse_malformed_values() -> None:
    cases: list[tuple[type[pydantic.BaseModel], dict[str, Any]]] = [
        (DiscordSettings, {"webhook_url": "http://discord.com/api/webhooks/1/x"}),  # not https
        (TeamsSettings, {"webhook_url": "not a url"}),
        (TelegramSettings, {"bot_token": "123:abc/../../x"}),
        (TelegramSettings, {"bot_token": "123:abcdefghijklmnopqrstuvwxyz", "default_chat_id": "x y"}),
        (TelegramSettings, {"bot_token": "123:abcdefghijklmnopqrstuvwxyz", "base_url": "ftp://api.telegram.org"}),
        (SlackApiSettings, {"bot_token": "xoxb-with space"}),
        (SlackApiSettings, {"bot_token": "xoxb-1", "default_channel": "no spaces allowed"}),
    ]
    for model, data in cases:
        with pytest.raises(pydantic.ValidationError) as error:
            model.model_validate(data)
        # The message (what the API shows, see tidings.core.validation) does not echo a malformed token.
        assert "abc/../../x" not in str([item["msg"] for item in error.value.errors()])
    assert (
        TelegramSettings.model_validate({"bot_token": "1:abcdefghijklmnopqrstuvwxyz"}).base_url
        == "https://api.telegram.org"
    )
    assert (
        SlackApiSettings.model_validate({"bot_token": "x", "base_url": "https://slack.com/"}).base_url
        == "https://slack.com"
    )


def test_json_field_reads_a_truncated_answer() -> None:
    document = json.dumps({"ok": True, "result": {"message_id": 9, "chat": {"id": 3}, "text": "x" * 50}})
    assert json_field(document, ("result", "message_id")) == 9
    assert json_field(document[:60], ("result", "message_id")) == 9
    assert json_field(document[:60], ("result", "text")) is None  # cut inside the value
    assert json_field('{"author": {"id": "1"}, "id": "2", "content": "unterminated', ("id",)) == "2"
    assert json_field('[{"id": "1"}]', ("id",)) is None
    assert json_field("not json", ("id",)) is None
