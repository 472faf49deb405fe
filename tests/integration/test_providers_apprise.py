"""The Apprise provider against a real local HTTP server receiving Apprise's generic json://, form:// and xml://."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pydantic
import pytest
from apprise import Apprise

from tidings.core.channels import Channel
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, Recipient
from tidings.integrations.apprise_settings import AppriseSettings
from tidings.tasks.providers.chat.apprise import AppriseProvider, _targets

PASSWORD = "s3cret-pass-0123"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Request] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    """Answers by path: `/status/<code>`, `/sleep/<seconds>`, `/redirect`; 200 by default."""

    protocol_version = "HTTP/1.1"
    server: Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append(Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        status = 200
        if parts[0] == "status":
            status = int(parts[1])
        elif parts[0] == "sleep":
            time.sleep(float(parts[1]))
        elif parts[0] == "redirect":
            status = 302
        self.send_response(status)
        if status == 302:
            self.send_header("Location", f"http://{self.server.host}/elsewhere")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

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


def _message(content: dict[str, Any] | None = None, metadata: dict[str, str] | None = None) -> OutboundMessage:
    return OutboundMessage(
        channel=Channel.CHAT,
        recipient=Recipient(subscriber_id="sub-1"),
        content=content if content is not None else {"title": "Deploy", "body": "Build 42 is live ✓"},
        idempotency_key="job-1",
        metadata=metadata or {},
    )


async def _send(
    settings: AppriseSettings, message: OutboundMessage | None = None, *, allow_private: bool = True
) -> Any:
    provider = AppriseProvider(identifier="apprise-1", allow_private_networks=allow_private)
    try:
        return await provider.send(settings, message or _message())
    finally:
        await provider.aclose()


async def test_json_notification_is_posted_as_apprise_documents_it(server: Recorder) -> None:
    settings = AppriseSettings(urls=f"json://bot:{PASSWORD}@{server.host}/hooks/a")  # type: ignore[arg-type]

    result = await _send(settings)

    assert result.provider_message_id is None
    assert result.detail == {"schemes": ["json"], "services": 1}
    assert PASSWORD not in repr(result.detail)
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/hooks/a"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"bot:{PASSWORD}".encode()).decode()
    assert json.loads(request.body) == {
        "version": "1.0",
        "title": "Deploy",
        "message": "Build 42 is live ✓",
        "attachments": [],
        "type": "info",
    }


async def test_every_url_is_notified_json_form_and_xml(server: Recorder) -> None:
    settings = AppriseSettings.model_validate(
        {"urls": [f"json://{server.host}/j", f"form://{server.host}/f", f"xml://{server.host}/x"]}
    )

    result = await _send(settings)

    assert result.detail == {"schemes": ["json", "form", "xml"], "services": 3}
    by_path = {request.path: request for request in server.requests}
    assert set(by_path) == {"/j", "/f", "/x"}
    form = by_path["/f"]
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"
    fields = {key: values[0] for key, values in parse_qs(form.body.decode()).items()}
    assert fields == {"version": "1.0", "title": "Deploy", "message": "Build 42 is live ✓", "type": "info"}
    xml = by_path["/x"]
    assert xml.headers["content-type"].startswith("application/xml") or "xml" in xml.headers["content-type"]
    text = xml.body.decode()
    assert "<Subject>Deploy</Subject>" in text
    assert "<Message>Build 42 is live ✓</Message>" in text
    assert "<MessageType>info</MessageType>" in text


async def test_title_falls_back_to_subject_then_the_title_template(server: Recorder) -> None:
    settings = AppriseSettings.model_validate(
        {"urls": f"json://{server.host}/t", "title_template": "Workflow $workflowId ($unknown)"}
    )

    await _send(settings, _message({"subject": "From subject", "body": "b"}))
    await _send(settings, _message({"body": "b"}, metadata={"workflowId": "welcome"}))

    titles = [json.loads(request.body)["title"] for request in server.requests]
    assert titles == ["From subject", "Workflow welcome ($unknown)"]


async def test_a_failing_server_is_transient_and_names_no_url(server: Recorder) -> None:
    settings = AppriseSettings(urls=f"json://bot:{PASSWORD}@{server.host}/status/500")  # type: ignore[arg-type]

    with pytest.raises(DeliveryError) as caught:
        await _send(settings)

    assert caught.value.kind is FailureKind.TRANSIENT
    assert caught.value.detail == {
        "schemes": ["json"],
        "status": "failure",
        "services": 1,
        "succeeded": 0,
        "failed": 1,
        "timedOut": 0,
    }
    assert PASSWORD not in caught.value.message
    assert server.host not in caught.value.message
    assert len(server.requests) == 1


async def test_one_failing_url_of_two_fails_the_send(server: Recorder) -> None:
    settings = AppriseSettings.model_validate({"urls": f"json://{server.host}/ok, json://{server.host}/status/503"})

    with pytest.raises(DeliveryError) as caught:
        await _send(settings)

    assert caught.value.kind is FailureKind.TRANSIENT
    assert caught.value.detail["succeeded"] == 1
    assert caught.value.detail["failed"] == 1


async def test_redirects_are_not_followed_even_when_the_url_asks(server: Recorder) -> None:
    settings = AppriseSettings(urls=f"json://{server.host}/redirect?redirect=yes")  # type: ignore[arg-type]

    with pytest.raises(DeliveryError) as caught:
        await _send(settings)

    assert caught.value.kind is FailureKind.TRANSIENT
    assert [request.path for request in server.requests] == ["/redirect"]  # never /elsewhere


async def test_a_slow_server_times_out_transient(server: Recorder) -> None:
    settings = AppriseSettings(urls=f"json://{server.host}/sleep/3", timeout_seconds=1)  # type: ignore[arg-type]

    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await _send(settings)

    assert caught.value.kind is FailureKind.TRANSIENT
    assert time.monotonic() - started < 1 + 2.5  # the integration's timeout plus the grace, not the server's 3 s


async def test_private_addresses_are_refused_unless_allowed(server: Recorder) -> None:
    settings = AppriseSettings(urls=f"json://{server.host}/private")  # type: ignore[arg-type]

    with pytest.raises(DeliveryError) as caught:
        await _send(settings, allow_private=False)

    assert caught.value.kind is FailureKind.PERMANENT
    assert "loopback" in caught.value.message
    assert caught.value.detail == {"schemes": ["json"], "url": 1}
    assert server.requests == []
    await _send(settings, allow_private=True)
    assert len(server.requests) == 1


async def test_an_smtp_server_on_a_private_address_is_refused() -> None:
    settings = AppriseSettings(urls=f"mailtos://user:{PASSWORD}@example.com?smtp=10.1.2.3")  # type: ignore[arg-type]

    with pytest.raises(DeliveryError) as caught:
        await _send(settings, allow_private=False)

    assert caught.value.kind is FailureKind.PERMANENT
    assert "private" in caught.value.message
    assert PASSWORD not in caught.value.message


def test_only_hosts_the_url_chose_are_checked() -> None:
    def targets(url: str) -> list[tuple[str, int]]:
        plugin = Apprise.instantiate(url)
        assert plugin is not None
        return _targets(plugin)

    assert targets("json://10.0.0.5:8080/x") == [("10.0.0.5", 8080)]
    assert targets("xmls://[::1]/x") == [("::1", 443)]
    assert targets("mailto://u:p@gmail.com") == [("smtp.gmail.com", 587)]
    # Fixed public APIs: the "host" of these URLs is a token, not an address.
    assert targets("tgram://123456789:ABCdefghijklmnopqrstuvwxyz12345/12315544/") == []
    assert targets("discord://1234/abcd") == []


async def test_a_message_without_a_body_is_permanent(server: Recorder) -> None:
    settings = AppriseSettings(urls=f"json://{server.host}/x")  # type: ignore[arg-type]

    with pytest.raises(DeliveryError) as caught:
        await _send(settings, _message({"title": "only a title"}))

    assert caught.value.kind is FailureKind.PERMANENT
    assert server.requests == []


def test_settings_accept_apprise_urls_and_hide_them() -> None:
    settings = AppriseSettings.model_validate(
        {
            "urls": f"json://bot:{PASSWORD}@hooks.example.com/a tgram://123456789:ABCdefghijklmnopqrstuvwxyz12345/1",
            "title_template": "Tidings",
            "timeout_seconds": 5,
        }
    )

    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)
    assert settings.timeout_seconds == 5


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"urls": "not a url"}, "Apprise URL 1 is not a valid Apprise URL"),
        ({"urls": "json://ok.example.com/ https://example.com/"}, "Apprise URL 2 is not a valid Apprise URL"),
        ({"urls": ""}, "must hold 1 to 20 Apprise URLs"),
        ({"urls": " ".join(f"json://h{i}.example.com/" for i in range(21))}, "must hold 1 to 20 Apprise URLs"),
        ({"urls": "syslog://"}, "notifies the server itself"),
        ({"urls": "json://h.example.com/?keyfile=/etc/passwd"}, "names a local file"),
        ({"urls": "json://h.example.com/", "colour": "red"}, "Extra inputs are not permitted"),
        ({"title_template": "x"}, "Field required"),
        ({"urls": "json://h.example.com/", "timeout_seconds": 0}, "greater than or equal to 1"),
    ],
)
def test_settings_refuse_bad_input(settings: dict[str, Any], error: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        AppriseSettings.model_validate(settings)

    messages = [entry["msg"] for entry in caught.value.errors()]
    assert any(error in message for message in messages), messages
    assert all(PASSWORD not in message for message in messages)
