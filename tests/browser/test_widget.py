"""The <tidings-inbox> widget in a real browser (Debian's chromium through Playwright) against real processes.

One `tidings api` (demo page on) and one `tidings worker` serve the module; each test uses its own subscriber and a
fresh browser context. Notifications are triggered through the admin API and reach the page over the websocket.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.api.conftest import GraphQL
from tests.servers import SECRET_KEY, RoleProcess, api_process, beanie_database, isolated_settings, role_env
from tidings.app.embedded import free_port
from tidings.app.settings import Settings, env_name
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WORKFLOW = "widget-news"
CREATE_WORKFLOW = "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }"
TRIGGER = "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId } }"
SESSION = """mutation($a: String!, $s: String!) {
    inboxSession(applicationIdentifier: $a, subscriberId: $s) { token } }"""
FEED = """query { inboxNotifications(first: 100) { edges { node {
    id body subject redirectUrl isRead primaryAction { url isCompleted } } } } }"""
# Playwright's CSS engine pierces open shadow roots: these reach inside the widget.
ITEMS = "tidings-inbox [data-part=item]"
BADGE = "tidings-inbox [data-part=badge]"
STATUS = "tidings-inbox [data-part=status]"
BELL = "tidings-inbox [data-part=bell]"


@dataclass
class Stack:
    base: str
    admin: GraphQL
    application_identifier: str
    api_key: str
    settings: Settings
    processes: list[RoleProcess]
    tmp: Path

    def logs(self) -> str:
        return "\n".join(process.output()[-3000:] for process in self.processes)


def _start_api(settings: Settings, log_path: Path, port: int, **extra: str) -> RoleProcess:
    """`tidings api` on a port chosen by the caller, so a setting may name it (a CORS origin on that port)."""
    env = role_env(settings, **{env_name("port"): str(port), **extra})
    process = RoleProcess("api", env, log_path).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            assert process.process is not None
            if process.process.poll() is not None:
                raise AssertionError(f"api exited:\n{process.output()}") from None
            time.sleep(0.05)
    process.stop()
    raise AssertionError(f"api did not answer within 30s:\n{process.output()}")


@pytest.fixture(scope="module")
async def stack(mongodb_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("widget")
    settings = isolated_settings(mongodb_url, redis_url, tmp).model_copy(
        update={"demo_page": True, "mongodb_timeout_ms": 30_000}
    )
    async with beanie_database(settings):
        issued = await create_environment("widget", cipher=Cipher(SECRET_KEY))
        api, base = api_process(settings, tmp / "api.log")
        worker = RoleProcess("worker", role_env(settings), tmp / "worker.log").start()
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                admin = GraphQL(client, issued.api_key)
                step = {
                    "subject": "{{ payload.subject }}",
                    "body": "{{ payload.body }}",
                    "redirectUrl": "{{ payload.url }}",
                    "primaryAction": {"label": "Open", "url": "{{ payload.url }}"},
                }
                await admin.data(
                    CREATE_WORKFLOW, input={"workflowId": WORKFLOW, "name": "News", "steps": [{"inApp": step}]}
                )
                yield Stack(
                    base,
                    admin,
                    issued.environment.application_identifier,
                    issued.api_key,
                    settings,
                    [api, worker],
                    tmp,
                )
        finally:
            for process in (worker, api):
                process.stop()


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium", pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        expect.set_options(timeout=20_000)  # a notification crosses api, queue, worker and Redis on a busy machine
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    opened = await context.new_page()
    opened.set_default_timeout(20_000)
    yield opened
    await context.close()


def _demo_url(base: str, stack: Stack, subscriber_id: str, **extra: str) -> str:
    query = {"applicationIdentifier": stack.application_identifier, "subscriberId": subscriber_id, **extra}
    return f"{base}/demo/inbox?{urllib.parse.urlencode(query)}"


async def _open_inbox(page: Page, stack: Stack, subscriber_id: str, **extra: str) -> None:
    await page.goto(_demo_url(stack.base, stack, subscriber_id, **extra))
    await expect(page.locator(STATUS)).to_have_text("live")


async def _trigger(stack: Stack, subscriber_id: str, **payload: str) -> None:
    await stack.admin.data(
        TRIGGER,
        input={"workflowId": WORKFLOW, "to": [{"subscriber": {"subscriberId": subscriber_id}}], "payload": payload},
    )


async def _inbox(stack: Stack, subscriber_id: str) -> list[dict[str, Any]]:
    """The subscriber's notifications as the inbox API (not the page) reports them."""
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as client:
        session = await client.post(
            "/graphql", json={"query": SESSION, "variables": {"a": stack.application_identifier, "s": subscriber_id}}
        )
        assert "errors" not in session.json(), session.json()
        token = session.json()["data"]["inboxSession"]["token"]
        feed = await client.post("/graphql", json={"query": FEED}, headers={"Authorization": f"Bearer {token}"})
        assert "errors" not in feed.json(), feed.json()
        return [edge["node"] for edge in feed.json()["data"]["inboxNotifications"]["edges"]]


async def _until_stored(stack: Stack, subscriber_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while len(nodes := await _inbox(stack, subscriber_id)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} notifications were not stored within 20s\n{stack.logs()}")
        await asyncio.sleep(0.1)
    return nodes


async def _collect_widget_events(page: Page) -> None:
    await page.evaluate(
        """() => {
            window.widgetEvents = [];
            document.addEventListener("tidings:notification", (e) => widgetEvents.push(e.detail.notification.id));
            window.notReloaded = true;
        }"""
    )


async def test_notification_appears_live_and_mark_read_reaches_the_server(stack: Stack, page: Page) -> None:
    subscriber = "ada"
    digest = hmac.new(stack.api_key.encode(), subscriber.encode(), hashlib.sha256).hexdigest()
    await _open_inbox(page, stack, subscriber, subscriberHash=digest)
    assert await page.locator("#subscriberHash").input_value() == digest  # the form was filled from the query
    await _collect_widget_events(page)
    await expect(page.locator(BADGE)).to_be_hidden()

    await _trigger(stack, subscriber, subject="Hello", body="Your report is ready", url="https://example.com/r/1")

    items = page.locator(ITEMS)
    await expect(items).to_have_count(1)
    badge = page.locator(BADGE)
    await expect(badge).to_be_visible()
    await expect(badge).to_have_text("1")
    assert await page.evaluate("window.notReloaded") is True
    notification_id = await items.first.get_attribute("data-id")
    assert await page.evaluate("window.widgetEvents") == [notification_id]

    await page.locator(BELL).click()
    item = page.locator(f'{ITEMS}[data-id="{notification_id}"]')
    await expect(item.locator("[data-part=subject]")).to_have_text("Hello")
    await expect(item.locator("[data-part=body]")).to_have_text("Your report is ready")
    await expect(item).to_have_attribute("data-read", "false")
    await item.locator("[data-part=mark-read]").click()

    await expect(item).to_have_attribute("data-read", "true")
    await expect(badge).to_be_hidden()
    [stored] = await _inbox(stack, subscriber)
    assert (stored["id"], stored["isRead"]) == (notification_id, True)


async def test_markup_and_javascript_urls_stay_inert(stack: Stack, page: Page) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    subscriber = "mallory"
    await _open_inbox(page, stack, subscriber)
    body = "<img src=x onerror=alert(1)>"
    subject = "<script>alert(2)</script>"
    await _trigger(stack, subscriber, subject=subject, body=body, url="javascript:alert(1)")

    item = page.locator(ITEMS)
    await expect(item).to_have_count(1)
    await page.locator(BELL).click()
    await expect(item.locator("[data-part=body]")).to_have_text(body)
    await expect(item.locator("[data-part=subject]")).to_have_text(subject)
    counts = await page.evaluate(
        """() => { const root = document.querySelector("tidings-inbox").shadowRoot;
                   return [root.querySelectorAll("img").length, root.querySelectorAll("script").length]; }"""
    )
    assert counts == [0, 0]
    url = page.url
    await item.locator("[data-part=action-primary]").click()  # completes the action; nothing to follow
    await expect(item.locator("[data-part=action-primary]")).to_be_disabled()
    await item.locator("[data-part=body]").click()  # marks it read; nothing to follow
    await expect(item).to_have_attribute("data-read", "true")
    await page.wait_for_timeout(300)
    assert page.url == url
    assert dialogs == []
    [stored] = await _inbox(stack, subscriber)
    assert stored["body"] == body
    assert stored["redirectUrl"] is None  # the engine dropped the unsafe rendered URL as well
    assert stored["primaryAction"] == {"url": None, "isCompleted": True}


async def test_missed_events_are_replayed_once_after_going_back_online(stack: Stack, page: Page) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    subscriber = "grace"
    await _open_inbox(page, stack, subscriber)
    await _collect_widget_events(page)
    assert len(sockets) == 1

    await page.context.set_offline(True)
    await expect(page.locator(STATUS)).to_have_text("offline")  # the widget closed its socket
    for number in (1, 2):
        await _trigger(stack, subscriber, subject=f"Missed {number}", body="while offline", url="https://example.com")
    stored = await _until_stored(stack, subscriber, 2)
    feed_requests: list[str] = []
    page.on("request", lambda request: feed_requests.append(request.post_data or ""))
    await page.context.set_offline(False)

    await expect(page.locator(STATUS)).to_have_text("live")
    items = page.locator(ITEMS)
    await expect(items).to_have_count(2)
    await expect(page.locator(BADGE)).to_have_text("2")
    shown = [str(await item.get_attribute("data-id")) for item in await items.all()]
    assert sorted(shown) == sorted(node["id"] for node in stored)  # each once
    assert sorted(await page.evaluate("window.widgetEvents")) == sorted(shown)  # both came over the socket
    assert not [body for body in feed_requests if "inboxNotifications" in body]  # resumed, not reloaded
    assert len(sockets) == 2
    assert await page.evaluate("window.notReloaded") is True


async def test_widget_on_another_origin_uses_cors(stack: Stack, browser: Browser) -> None:
    """The page at http://localhost:P embeds the widget, whose API is http://127.0.0.1:P: another origin."""
    port = free_port()
    origin = f"http://localhost:{port}"
    api = _start_api(
        stack.settings, stack.tmp / "api-cors.log", port, **{env_name("cors_origins"): json.dumps([origin])}
    )
    try:
        context = await browser.new_context()
        page = await context.new_page()
        page.set_default_timeout(20_000)
        api_url = f"http://127.0.0.1:{port}"
        await page.goto(_demo_url(origin, stack, "linus", apiUrl=api_url))
        await expect(page.locator(STATUS)).to_have_text("live")
        await _trigger(stack, "linus", subject="Cross", body="origin", url="https://example.com")
        await expect(page.locator(ITEMS)).to_have_count(1)
        await context.close()
        async with httpx.AsyncClient(timeout=10) as client:
            preflight = await client.options(
                f"{api_url}/graphql",
                headers={
                    "Origin": "https://elsewhere.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type",
                },
            )
            granted = await client.options(
                f"{api_url}/graphql",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
                },
            )
            answer = await client.post(
                f"{api_url}/graphql", json={"query": "{ __typename }"}, headers={"Origin": origin}
            )
        assert "access-control-allow-origin" not in preflight.headers  # an origin not listed gets no CORS grant
        assert granted.status_code == 200
        assert granted.headers["access-control-allow-origin"] == origin
        assert "idempotency-key" in granted.headers["access-control-allow-headers"].lower()
        exposed = answer.headers["access-control-expose-headers"].lower()
        assert "retry-after" in exposed
        assert "idempotency-replayed" in exposed
    finally:
        api.stop()


async def test_script_is_served_for_any_origin_and_demo_page_only_when_enabled(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        script = await client.get(f"{stack.base}/widget/tidings-inbox.js")
        assert script.status_code == 200
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert script.headers["cache-control"] == "public, max-age=300"
        assert script.headers["access-control-allow-origin"] == "*"
        assert 'customElements.define("tidings-inbox"' in script.text
        cached = await client.get(
            f"{stack.base}/widget/tidings-inbox.js", headers={"If-None-Match": script.headers["etag"]}
        )
        assert cached.status_code == 304
        demo = await client.get(f"{stack.base}/demo/inbox")
        assert demo.status_code == 200
        assert demo.headers["content-type"] == "text/html; charset=utf-8"
        assert '<script src="/widget/tidings-inbox.js">' in demo.text

    settings = stack.settings.model_copy(update={"demo_page": False})
    port = free_port()
    api = _start_api(settings, stack.tmp / "api-no-demo.log", port)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(f"http://127.0.0.1:{port}/demo/inbox")).status_code == 404
            assert (await client.get(f"http://127.0.0.1:{port}/widget/tidings-inbox.js")).status_code == 200
    finally:
        api.stop()
