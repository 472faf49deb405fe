"""The push providers (FCM HTTP v1, APNs, Expo, Web Push) against real local servers that record requests.

FCM and Expo talk to a plain HTTP/1.1 server, Web Push to the same server behind TLS (subscription endpoints must
be https), APNs to an HTTP/2 server (the `h2` library over TLS with ALPN "h2"). The self-signed certificate is
trusted through SSL_CERT_FILE, which httpx reads when a provider creates its client — no test hook in the code.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import socket
import ssl
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import h2.config
import h2.connection
import h2.events
import http_ece  # type: ignore[import-untyped]
import jwt
import pydantic
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from py_vapid import Vapid02  # type: ignore[import-untyped]

from tidings.core.channels import Channel
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, Recipient, SendResult
from tidings.integrations.push_settings import ApnsSettings, ExpoSettings, FcmSettings, WebPushSettings
from tidings.subscribers.documents import PushEndpoint
from tidings.tasks.providers.base import Provider
from tidings.tasks.providers.push.apns import ApnsProvider
from tidings.tasks.providers.push.expo import ExpoProvider
from tidings.tasks.providers.push.fcm import SCOPE, FcmProvider
from tidings.tasks.providers.push.webpush import WebPushProvider

ACCESS_TOKEN = "ya29.ACCESS-TOKEN-SECRET"
EXPO_TOKEN = "expo-access-token-SECRET"
TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
BUNDLE_ID = "com.example.app"
TITLE = "Your order shipped"
BODY = "Parcel 42 is on its way"
DATA = {"orderId": "42", "count": 3, "nested": {"a": 1}}


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
APNS_KEY = ec.generate_private_key(ec.SECP256R1())
VAPID_KEY = ec.generate_private_key(ec.SECP256R1())


# --- servers ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = field(default_factory=dict)  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


class Script:
    """Scripted answers per path (the next one for each request), else the path's default, else 200 `{}`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.answers: dict[str, deque[Answer]] = {}
        self.defaults: dict[str, Answer] = {}
        self.lock = threading.Lock()

    def answer(self, request: Request) -> Answer:
        with self.lock:
            self.requests.append(request)
            path = request.path.split("?", 1)[0]
            # FCM sends every token to one path, concurrently: its answers are scripted per device token instead.
            if path == FCM_SEND:
                path = f"{path}#{request.json()['message']['token']}"
            queue = self.answers.get(path)
            if queue:
                return queue.popleft()
            return self.defaults.get(path, Answer())

    def queue(self, path: str, *answers: Answer) -> None:
        self.answers.setdefault(path, deque()).extend(answers)

    def to(self, path: str) -> list[Request]:
        return [request for request in self.requests if request.path == path]


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = Script()

    @property
    def base(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        answer = self.server.script.answer(request)
        payload = answer.payload()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        for name, value in answer.headers.items():
            self.send_header(name, value)
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


class H2Server:
    """A minimal HTTP/2 server over TLS (ALPN "h2") answering from a `Script`, like APNs."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.set_alpn_protocols(["h2"])
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.script = Script()
        self.protocols: list[str | None] = []
        self.closed = False

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.listener.getsockname()[1]}"

    def serve(self) -> None:
        while not self.closed:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(raw,), daemon=True).start()

    def _connection(self, raw: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        self.protocols.append(tls.selected_alpn_protocol())
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        tls.sendall(conn.data_to_send())
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        with tls:
            while True:
                try:
                    data = tls.recv(65535)
                except OSError:
                    return
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        headers = {str(name): str(value) for name, value in event.headers or []}
                        streams[event.stream_id or 0] = (headers, bytearray())
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id or 0][1].extend(event.data or b"")
                        conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id or 0)
                    elif isinstance(event, h2.events.StreamEnded):
                        stream_id = event.stream_id or 0
                        headers, body = streams.pop(stream_id)
                        request = Request(headers[":method"], headers[":path"], headers, bytes(body))
                        answer = self.script.answer(request)
                        payload = answer.payload()
                        conn.send_headers(
                            stream_id,
                            [
                                (":status", str(answer.status)),
                                ("content-length", str(len(payload))),
                                *answer.headers.items(),
                            ],
                        )
                        conn.send_data(stream_id, payload, end_stream=True)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        tls.sendall(conn.data_to_send())
                        return
                tls.sendall(conn.data_to_send())

    def close(self) -> None:
        self.closed = True
        self.listener.close()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
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
    (directory / "key.pem").write_text(pem(key))
    return directory / "cert.pem", directory / "key.pem"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server() -> Iterator[Recorder]:
    yield from _serve(Recorder())


@pytest.fixture
def https_server(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    cert, key = certificate
    recorder = Recorder()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    recorder.socket = context.wrap_socket(recorder.socket, server_side=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx reads it when the provider creates its client
    yield from _serve(recorder)


@pytest.fixture
def h2_server(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[H2Server]:
    h2s = H2Server(*certificate)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    thread = threading.Thread(target=h2s.serve, daemon=True)
    thread.start()
    try:
        yield h2s
    finally:
        h2s.close()


# --- helpers ---------------------------------------------------------------------------------------------------


def push(*tokens: str, identifier: str = "push", key: str = "job-1", **content: Any) -> OutboundMessage:
    endpoints = (PushEndpoint(integration_identifier=identifier, device_tokens=list(tokens)),) if tokens else ()
    other = PushEndpoint(integration_identifier="other-app", device_tokens=["not-for-this-integration"])
    return OutboundMessage(
        channel=Channel.PUSH,
        recipient=Recipient(subscriber_id="ada", push=(*endpoints, other)),
        content={"title": TITLE, "body": BODY, "data": DATA, **content},
        idempotency_key=key,
    )


async def failure(provider: Provider[Any], settings: Any, message: OutboundMessage) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await provider.send(settings, message)
    return caught.value


def assert_no_secrets(value: DeliveryError | SendResult, *secrets: str) -> None:
    text = str(value) + json.dumps(value.detail if isinstance(value, DeliveryError) else dict(value.detail))
    for secret in (*secrets, TITLE, BODY):
        assert secret not in text


async def no_tokens_is_permanent(provider: Provider[Any], settings: Any) -> None:
    error = await failure(provider, settings, push())
    assert error.kind is FailureKind.PERMANENT
    assert error.message == "subscriber has no device tokens for integration push"


# --- FCM -------------------------------------------------------------------------------------------------------

FCM_SEND = "/v1/projects/demo-project/messages:send"


def service_account(server: Recorder) -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "demo-project",
            "private_key_id": "abc123",
            "private_key": pem(RSA_KEY),
            "client_email": "tidings@demo-project.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "token_uri": f"{server.base}/token",
        }
    )


@pytest.fixture
def fcm_server(server: Recorder) -> Recorder:
    server.script.defaults["/token"] = Answer(
        body={"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
    )
    return server


@pytest.fixture
async def fcm() -> AsyncIterator[FcmProvider]:
    provider = FcmProvider(identifier="push", allow_private_networks=True)
    yield provider
    await provider.aclose()


def fcm_settings(server: Recorder, **overrides: Any) -> FcmSettings:
    return FcmSettings.model_validate(
        {"service_account": service_account(server), "base_url": server.base, **overrides}
    )


def fcm_answer(server: Recorder, token: str, answer: Answer) -> None:
    server.script.queue(f"{FCM_SEND}#{token}", answer)


def fcm_error(status: int, code: str, error_code: str | None = None, field_name: str | None = None) -> Answer:
    details: list[dict[str, Any]] = []
    if error_code:
        details.append({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code})
    if field_name:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field_name, "description": "Invalid registration token"}],
            }
        )
    return Answer(status, {"error": {"code": status, "message": f"boom {BODY}", "status": code, "details": details}})


async def test_fcm_sends_to_every_token_with_an_oauth_token_from_the_service_account(
    fcm_server: Recorder, fcm: FcmProvider
) -> None:
    fcm_answer(fcm_server, "tok-a", Answer(body={"name": "projects/demo-project/messages/0:111"}))
    fcm_answer(fcm_server, "tok-b", Answer(body={"name": "projects/demo-project/messages/0:222"}))
    settings = fcm_settings(fcm_server)
    result = await fcm.send(settings, push("tok-a", "tok-b"))

    assert result.provider_message_id == "projects/demo-project/messages/0:111"
    assert result.detail == {"sent": 2, "failed": 0, "badDeviceTokens": []}
    (token_request,) = fcm_server.script.to("/token")
    form = {key: values[0] for key, values in parse_qs(token_request.body.decode()).items()}
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        form["assertion"], RSA_KEY.public_key(), algorithms=["RS256"], audience="https://oauth2.googleapis.com/token"
    )
    assert claims["iss"] == "tidings@demo-project.iam.gserviceaccount.com"
    assert claims["scope"] == SCOPE
    sends = fcm_server.script.to(FCM_SEND)
    assert sorted(request.json()["message"]["token"] for request in sends) == ["tok-a", "tok-b"]
    for request in sends:
        assert request.method == "POST"
        assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
        assert request.headers["content-type"] == "application/json; charset=utf-8"
        message = request.json()["message"]
        assert message["notification"] == {"title": TITLE, "body": BODY}
        assert message["data"] == {"orderId": "42", "count": "3", "nested": '{"a": 1}'}

    # The access token is cached: a second send asks for no new one.
    await fcm.send(settings, push("tok-c"))
    assert len(fcm_server.script.to("/token")) == 1


async def test_fcm_reports_unregistered_and_invalid_tokens(fcm_server: Recorder, fcm: FcmProvider) -> None:
    settings = fcm_settings(fcm_server, project_id="demo-project")
    fcm_answer(fcm_server, "gone", fcm_error(404, "NOT_FOUND", "UNREGISTERED"))
    fcm_answer(fcm_server, "fine", Answer(body={"name": "projects/demo-project/messages/0:9"}))
    result = await fcm.send(settings, push("gone", "fine"))
    assert result.provider_message_id == "projects/demo-project/messages/0:9"
    assert result.detail == {"sent": 1, "failed": 1, "badDeviceTokens": ["gone"]}

    fcm_answer(fcm_server, "garbage", fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "message.token"))
    fcm_answer(fcm_server, "gone", fcm_error(404, "NOT_FOUND", "UNREGISTERED"))
    error = await failure(fcm, settings, push("garbage", "gone"))
    assert error.kind is FailureKind.BAD_ENDPOINT
    assert error.detail["badDeviceTokens"] == ["garbage", "gone"]
    assert (error.detail["sent"], error.detail["failed"]) == (0, 2)
    assert_no_secrets(error, ACCESS_TOKEN)

    # INVALID_ARGUMENT about something other than the token blames the message, not the device.
    fcm_answer(fcm_server, "tok", fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "message.data"))
    error = await failure(fcm, settings, push("tok"))
    assert error.kind is FailureKind.PERMANENT
    assert error.detail == {
        "endpoint": fcm_server.base,
        "status": 400,
        "error": "INVALID_ARGUMENT",
        "errorCode": "INVALID_ARGUMENT",
        "sent": 0,
        "failed": 1,
        "badDeviceTokens": [],
    }


async def test_fcm_maps_transient_and_permanent_failures(fcm_server: Recorder, fcm: FcmProvider) -> None:
    settings = fcm_settings(fcm_server)
    fcm_answer(fcm_server, "a", Answer(503, {}, {"Retry-After": "7"}))
    fcm_answer(fcm_server, "b", Answer(503, {}, {"Retry-After": "3"}))
    error = await failure(fcm, settings, push("a", "b"))
    assert error.kind is FailureKind.TRANSIENT
    assert error.retry_after == 7

    # One token delivered: no retry (it would notify that device twice); the failure is only counted.
    fcm_answer(fcm_server, "a", Answer(body={"name": "projects/demo-project/messages/0:1"}))
    fcm_answer(fcm_server, "b", Answer(429))
    result = await fcm.send(settings, push("a", "b"))
    assert result.provider_message_id == "projects/demo-project/messages/0:1"
    assert result.detail == {"sent": 1, "failed": 1, "badDeviceTokens": []}

    fcm_answer(fcm_server, "a", fcm_error(401, "UNAUTHENTICATED"))
    error = await failure(fcm, settings, push("a"))
    assert error.kind is FailureKind.PERMANENT
    assert error.detail["error"] == "UNAUTHENTICATED"
    assert_no_secrets(error, ACCESS_TOKEN)

    await no_tokens_is_permanent(fcm, settings)


async def test_fcm_refused_access_token_is_permanent(server: Recorder, fcm: FcmProvider) -> None:
    server.script.queue("/token", Answer(400, {"error": "invalid_grant", "error_description": "Invalid JWT"}))
    error = await failure(fcm, fcm_settings(server), push("a"))
    assert error.kind is FailureKind.PERMANENT
    assert error.detail == {"endpoint": server.base}
    assert server.script.to(FCM_SEND) == []


async def test_fcm_token_uri_passes_the_ssrf_guard(server: Recorder) -> None:
    guarded = FcmProvider(identifier="push", allow_private_networks=False)
    try:
        error = await failure(guarded, fcm_settings(server), push("a"))
    finally:
        await guarded.aclose()
    assert error.kind is FailureKind.PERMANENT
    assert "private network" in error.message
    assert server.script.requests == []


def test_fcm_settings() -> None:
    info = {
        "project_id": "p",
        "client_email": "x@p.iam.gserviceaccount.com",
        "private_key": pem(RSA_KEY),
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    settings = FcmSettings.model_validate({"service_account": json.dumps(info)})
    assert settings.base_url == "https://fcm.googleapis.com"
    assert settings.timeout_seconds == 10
    assert "PRIVATE KEY" not in repr(settings)
    with pytest.raises(pydantic.ValidationError):
        FcmSettings.model_validate({"service_account": json.dumps(info), "server_key": "legacy"})
    with pytest.raises(pydantic.ValidationError):
        FcmSettings.model_validate({})
    with pytest.raises(pydantic.ValidationError, match="lacks token_uri"):
        FcmSettings.model_validate({"service_account": json.dumps({**info, "token_uri": None})})
    with pytest.raises(pydantic.ValidationError, match="service-account JSON document"):
        FcmSettings.model_validate({"service_account": "not json"})


# --- Expo ------------------------------------------------------------------------------------------------------

EXPO_SEND = "/--/api/v2/push/send"


@pytest.fixture
async def expo() -> AsyncIterator[ExpoProvider]:
    provider = ExpoProvider(identifier="push", allow_private_networks=True)
    yield provider
    await provider.aclose()


def ok(ticket_id: str) -> dict[str, Any]:
    return {"status": "ok", "id": ticket_id}


def ticket_error(code: str, token: str) -> dict[str, Any]:
    return {"status": "error", "message": f'"{token}" is bad', "details": {"error": code, "expoPushToken": token}}


async def test_expo_sends_one_batch_and_reads_each_ticket(server: Recorder, expo: ExpoProvider) -> None:
    settings = ExpoSettings(access_token=pydantic.SecretStr(EXPO_TOKEN), base_url=server.base)
    a, b, c = "ExponentPushToken[aaa]", "ExponentPushToken[bbb]", "ExponentPushToken[ccc]"
    server.script.queue(
        EXPO_SEND,
        Answer(body={"data": [ticket_error("DeviceNotRegistered", a), ok("XXXX-1"), ticket_error("MessageTooBig", c)]}),
    )
    result = await expo.send(settings, push(a, b, c))

    assert result.provider_message_id == "XXXX-1"
    assert result.detail == {"sent": 1, "failed": 2, "badDeviceTokens": [a]}
    (request,) = server.script.requests
    assert (request.method, request.path) == ("POST", EXPO_SEND)
    assert request.headers["authorization"] == f"Bearer {EXPO_TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.json() == [{"to": token, "title": TITLE, "body": BODY, "data": DATA} for token in (a, b, c)]


async def test_expo_maps_failures(server: Recorder, expo: ExpoProvider) -> None:
    settings = ExpoSettings(base_url=server.base)
    server.script.queue(EXPO_SEND, Answer(body={"data": [ticket_error("DeviceNotRegistered", "t")]}))
    error = await failure(expo, settings, push("t"))
    assert error.kind is FailureKind.BAD_ENDPOINT
    assert error.detail["badDeviceTokens"] == ["t"]
    assert error.detail["error"] == "DeviceNotRegistered"

    server.script.queue(
        EXPO_SEND,
        Answer(body={"data": [ticket_error("MessageRateExceeded", "t"), ticket_error("DeviceNotRegistered", "u")]}),
    )
    error = await failure(expo, settings, push("t", "u"))
    assert error.kind is FailureKind.TRANSIENT
    assert error.detail["badDeviceTokens"] == ["u"]

    server.script.queue(EXPO_SEND, Answer(429, {}, {"Retry-After": "5"}))
    error = await failure(expo, settings, push("t"))
    assert (error.kind, error.retry_after) == (FailureKind.TRANSIENT, 5)

    server.script.queue(EXPO_SEND, Answer(400, {"errors": [{"code": "VALIDATION_ERROR", "message": f"bad {BODY}"}]}))
    error = await failure(expo, settings, push("t"))
    assert error.kind is FailureKind.PERMANENT
    assert error.detail["error"] == "VALIDATION_ERROR"
    assert_no_secrets(error)

    # No access token configured: no Authorization header.
    assert "authorization" not in server.script.requests[0].headers
    await no_tokens_is_permanent(expo, settings)


def test_expo_settings() -> None:
    settings = ExpoSettings.model_validate({"access_token": EXPO_TOKEN})
    assert settings.base_url == "https://exp.host"
    assert EXPO_TOKEN not in repr(settings)
    assert ExpoSettings.model_validate({}).access_token is None  # nothing is required
    with pytest.raises(pydantic.ValidationError):
        ExpoSettings.model_validate({"accessKey": "x"})
    with pytest.raises(pydantic.ValidationError):
        ExpoSettings.model_validate({"base_url": "ftp://exp.host"})


# --- Web Push --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Browser:
    """A browser's push subscription: its key pair and auth secret, and the JSON it gives the application."""

    key: ec.EllipticCurvePrivateKey
    auth: bytes
    endpoint: str

    def token(self) -> str:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return json.dumps({"endpoint": self.endpoint, "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}})

    def decrypt(self, body: bytes) -> Any:
        return json.loads(http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"))


def browser(server: Recorder, name: str) -> Browser:
    return Browser(ec.generate_private_key(ec.SECP256R1()), bytes(range(16)), f"{server.base}/push/{name}")


@pytest.fixture
async def webpush() -> AsyncIterator[WebPushProvider]:
    provider = WebPushProvider(identifier="push", allow_private_networks=True)
    yield provider
    await provider.aclose()


def webpush_settings(**overrides: Any) -> WebPushSettings:
    return WebPushSettings.model_validate(
        {
            "vapid_private_key": pem(VAPID_KEY),
            "vapid_subject": "mailto:ops@example.com",
            "ttl_seconds": 600,
            **overrides,
        }
    )


async def test_webpush_encrypts_for_each_subscription_and_signs_with_vapid(
    https_server: Recorder, webpush: WebPushProvider
) -> None:
    one, two = browser(https_server, "one"), browser(https_server, "two")
    https_server.script.queue("/push/one", Answer(201, b"", {"Location": f"{https_server.base}/m/111"}))
    https_server.script.queue("/push/two", Answer(201, b"", {"Location": f"{https_server.base}/m/222"}))
    result = await webpush.send(webpush_settings(), push(one.token(), two.token()))

    assert result.provider_message_id == f"{https_server.base}/m/111"
    assert result.detail == {"sent": 2, "failed": 0, "badDeviceTokens": []}
    vapid_public = VAPID_KEY.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    for sub, request in zip((one, two), sorted(https_server.script.requests, key=lambda r: r.path), strict=True):
        assert (request.method, request.path) == ("POST", f"/push/{sub.endpoint.rsplit('/', 1)[1]}")
        assert request.headers["ttl"] == "600"
        assert request.headers["content-encoding"] == "aes128gcm"
        assert request.headers["content-type"] == "application/octet-stream"
        assert sub.decrypt(request.body) == {"title": TITLE, "body": BODY, "data": DATA}
        scheme, _, params = request.headers["authorization"].partition(" ")
        assert scheme == "vapid"
        parts = dict(part.split("=", 1) for part in params.split(","))
        assert parts["k"] == b64url(vapid_public)
        claims = jwt.decode(parts["t"], VAPID_KEY.public_key(), algorithms=["ES256"], audience=https_server.base)
        assert claims["sub"] == "mailto:ops@example.com"
        assert Vapid02.verify(request.headers["authorization"])


async def test_webpush_maps_failures(https_server: Recorder, webpush: WebPushProvider) -> None:
    settings = webpush_settings()
    gone, fine = browser(https_server, "gone"), browser(https_server, "fine")
    https_server.script.queue("/push/gone", Answer(410))
    https_server.script.queue("/push/fine", Answer(201, b""))
    result = await webpush.send(settings, push(gone.token(), fine.token(), "{not json"))
    assert result.provider_message_id is None  # no Location
    assert result.detail == {"sent": 1, "failed": 2, "badDeviceTokens": [gone.token(), "{not json"]}

    https_server.script.queue("/push/gone", Answer(404))
    error = await failure(webpush, settings, push(gone.token()))
    assert error.kind is FailureKind.BAD_ENDPOINT
    assert error.detail["endpoint"] == https_server.base
    assert "/push/" not in str(error)

    https_server.script.queue("/push/fine", Answer(429, b"", {"Retry-After": "11"}))
    error = await failure(webpush, settings, push(fine.token()))
    assert (error.kind, error.retry_after) == (FailureKind.TRANSIENT, 11)

    https_server.script.queue("/push/fine", Answer(403, b"bad vapid"))
    error = await failure(webpush, settings, push(fine.token()))
    assert error.kind is FailureKind.PERMANENT
    assert error.detail["badDeviceTokens"] == []
    assert_no_secrets(error, pem(VAPID_KEY))

    await no_tokens_is_permanent(webpush, settings)


async def test_webpush_endpoints_pass_the_ssrf_guard(https_server: Recorder) -> None:
    guarded = WebPushProvider(identifier="push", allow_private_networks=False)
    try:
        error = await failure(guarded, webpush_settings(), push(browser(https_server, "x").token()))
    finally:
        await guarded.aclose()
    assert error.kind is FailureKind.PERMANENT
    assert "private network" in error.message
    assert https_server.script.requests == []


def test_webpush_settings() -> None:
    raw = b64url(VAPID_KEY.private_numbers().private_value.to_bytes(32, "big"))
    assert webpush_settings(vapid_private_key=raw).ttl_seconds == 600  # base64url raw, as py-vapid accepts
    settings = webpush_settings()
    assert "PRIVATE" not in repr(settings)
    with pytest.raises(pydantic.ValidationError):
        webpush_settings(gcm_key="x")
    with pytest.raises(pydantic.ValidationError):
        WebPushSettings.model_validate({"vapid_subject": "mailto:ops@example.com"})
    with pytest.raises(pydantic.ValidationError, match="P-256 private key"):
        webpush_settings(vapid_private_key=pem(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(pydantic.ValidationError, match="mailto: or https:"):
        webpush_settings(vapid_subject="ops@example.com")


# --- APNs ------------------------------------------------------------------------------------------------------

DEVICE_A = "a" * 64
DEVICE_B = "b" * 64


@pytest.fixture
async def apns() -> AsyncIterator[ApnsProvider]:
    provider = ApnsProvider(identifier="push", allow_private_networks=True)
    yield provider
    await provider.aclose()


def apns_settings(server: H2Server, **overrides: Any) -> ApnsSettings:
    return ApnsSettings.model_validate(
        {
            "team_id": TEAM_ID,
            "key_id": KEY_ID,
            "private_key": pem(APNS_KEY),
            "bundle_id": BUNDLE_ID,
            "environment": "sandbox",
            "base_url": server.base,
            **overrides,
        }
    )


async def test_apns_posts_over_http2_with_a_provider_token(h2_server: H2Server, apns: ApnsProvider) -> None:
    apns_id = "EC1BF194-B3B2-46B2-8D3C-2A0B8E2F4A11"
    h2_server.script.queue(f"/3/device/{DEVICE_A}", Answer(200, b"", {"apns-id": apns_id}))
    settings = apns_settings(h2_server)
    result = await apns.send(settings, push(DEVICE_A, DEVICE_B))

    assert result.provider_message_id == apns_id
    assert result.detail == {"sent": 2, "failed": 0, "badDeviceTokens": []}
    assert set(h2_server.protocols) == {"h2"}
    requests = sorted(h2_server.script.requests, key=lambda r: r.path)
    assert [unquote(r.path) for r in requests] == [f"/3/device/{DEVICE_A}", f"/3/device/{DEVICE_B}"]
    tokens = set()
    for request in requests:
        assert request.method == "POST"
        headers = request.headers
        assert (headers["apns-topic"], headers["apns-push-type"], headers["apns-priority"]) == (
            BUNDLE_ID,
            "alert",
            "10",
        )
        assert len(headers["apns-id"]) == 36
        scheme, token = headers["authorization"].split(" ", 1)
        assert scheme == "bearer"
        tokens.add(token)
        assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": KEY_ID, "typ": "JWT"}
        claims = jwt.decode(token, APNS_KEY.public_key(), algorithms=["ES256"])
        assert claims["iss"] == TEAM_ID
        assert request.json() == {"aps": {"alert": {"title": TITLE, "body": BODY}}, **DATA}
    assert len(tokens) == 1

    # The JWT is reused; a retry of the same job carries the same apns-id.
    first_ids = {r.path: r.headers["apns-id"] for r in requests}
    await apns.send(settings, push(DEVICE_A, DEVICE_B))
    again = h2_server.script.requests[2:]
    assert {r.headers["authorization"].split(" ", 1)[1] for r in again} == tokens
    assert {r.path: r.headers["apns-id"] for r in again} == first_ids


async def test_apns_maps_failures(h2_server: H2Server, apns: ApnsProvider) -> None:
    settings = apns_settings(h2_server)
    a, b = f"/3/device/{DEVICE_A}", f"/3/device/{DEVICE_B}"
    h2_server.script.queue(a, Answer(410, {"reason": "Unregistered", "timestamp": 1}))
    h2_server.script.queue(b, Answer(400, {"reason": "BadDeviceToken"}))
    error = await failure(apns, settings, push(DEVICE_A, DEVICE_B))
    assert error.kind is FailureKind.BAD_ENDPOINT
    assert sorted(error.detail["badDeviceTokens"]) == [DEVICE_A, DEVICE_B]

    h2_server.script.queue(a, Answer(403, {"reason": "InvalidProviderToken"}))
    error = await failure(apns, settings, push(DEVICE_A))
    assert error.kind is FailureKind.PERMANENT
    assert error.detail["error"] == "InvalidProviderToken"
    assert_no_secrets(error, pem(APNS_KEY))

    h2_server.script.queue(a, Answer(429, {"reason": "TooManyRequests"}))
    h2_server.script.queue(b, Answer(503, {"reason": "ServiceUnavailable"}, {"retry-after": "4"}))
    error = await failure(apns, settings, push(DEVICE_A, DEVICE_B))
    assert (error.kind, error.retry_after) == (FailureKind.TRANSIENT, 4)

    await no_tokens_is_permanent(apns, settings)


def test_apns_settings() -> None:
    base = {"team_id": TEAM_ID, "key_id": KEY_ID, "private_key": pem(APNS_KEY), "bundle_id": BUNDLE_ID}
    settings = ApnsSettings.model_validate(base)
    assert settings.origin == "https://api.push.apple.com"
    assert (
        ApnsSettings.model_validate({**base, "environment": "sandbox"}).origin == "https://api.sandbox.push.apple.com"
    )
    assert "PRIVATE" not in repr(settings)
    with pytest.raises(pydantic.ValidationError):
        ApnsSettings.model_validate({**base, "certificate": "x"})
    with pytest.raises(pydantic.ValidationError):
        ApnsSettings.model_validate({key: value for key, value in base.items() if key != "bundle_id"})
    with pytest.raises(pydantic.ValidationError, match="P-256 private key"):
        ApnsSettings.model_validate({**base, "private_key": "not a key"})
    with pytest.raises(pydantic.ValidationError):
        ApnsSettings.model_validate({**base, "environment": "staging"})
