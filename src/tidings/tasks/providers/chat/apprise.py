"""The Apprise provider (`apprise`): one message to every Apprise URL of the integration.

Apprise does its own I/O with blocking clients, so `notify()` runs in a worker thread (`asyncio.to_thread`) under
`asyncio.wait_for`. When the wait times out the send is reported TRANSIENT, but the thread cannot be stopped: it
runs on until Apprise's own socket timeouts (clamped here to the integration's `timeoutSeconds`) end it, and the
notification may still arrive, so a retry can deliver it twice. Apprise has no idempotency key to prevent that.

Apprise reports only success or failure per service, with no reason a program can act on, so a failure is
TRANSIENT and the engine's bounded retries apply; a retry notifies every URL again, including those that
succeeded. What is kept of a send is the URLs' schemes and counts, never the URLs (they hold the credentials).

SSRF: before each send every service's target host is resolved with the guard of `tidings.core.net` and refused
when private, loopback or link-local (unless the deployment allows private networks): the URL's host for
self-hosted services (`json://`, `gotify://`, `ntfy://host`, `mailto://…?smtp=`), the endpoint for Azure ACS.
Services with a fixed public API (`tgram://`, `discord://`) have no host to check. HTTP redirects are turned off
for every service (`redirect=yes` in a URL is overridden); anything else a plugin does on its own (its DNS lookups,
protocols other than HTTP) is Apprise's behaviour, and the guard's resolve-then-connect gap applies as for webhooks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from string import Template
from typing import Any

from apprise import Apprise, AppriseAsset
from apprise.common import PersistentStoreMode
from apprise.plugins.base import NotifyBase

from tidings.core.net import HostResolutionError, UnsafeUrlError, check_public_host
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.apprise_settings import AppriseSettings, scheme, split_urls
from tidings.tasks.providers.base import Provider
from tidings.tasks.providers.errors import refused_address

# Apprise's DEBUG lines carry full request URLs and payloads (credentials, message bodies): keep them out of the logs
# even when the application logs at DEBUG, unless an operator set Apprise's level on purpose.
_APPRISE_LOG = logging.getLogger("apprise")
if _APPRISE_LOG.level == logging.NOTSET:
    _APPRISE_LOG.setLevel(logging.WARNING)

# Beyond the integration's timeout, the time Apprise gets to notice its own deadline before we stop waiting.
GRACE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool
    status: str  # Apprise's overall status: success, failure, partial, timeout
    services: int
    succeeded: int
    failed: int
    timed_out: int


def _asset(timeout_seconds: float) -> AppriseAsset:
    return AppriseAsset(
        storage_mode=PersistentStoreMode.MEMORY,  # nothing on the worker's disk
        service_timeout=timeout_seconds,
        allow_templates=False,
        secure_logging=True,  # Apprise masks passwords and tokens in what it logs
        http_redirects=False,
    )


def _targets(plugin: NotifyBase) -> list[tuple[str, int]]:
    """The hosts (and ports) a plugin will connect to that the URL chose; none for a fixed public service."""
    secure = bool(getattr(plugin, "secure", False))
    port = getattr(plugin, "port", None)
    default_port = int(port) if isinstance(port, int) else (443 if secure else 80)
    hosts: list[tuple[str, int]] = []
    smtp_host = getattr(plugin, "smtp_host", None)
    host = getattr(plugin, "host", None)
    if isinstance(smtp_host, str) and smtp_host:
        hosts.append((smtp_host, default_port))  # mailto://: the SMTP server, given or derived from the domain
    elif "host" in (getattr(plugin, "template_tokens", None) or {}) and isinstance(host, str) and host:
        hosts.append((host, default_port))
    endpoint = getattr(plugin, "endpoint", None)
    if isinstance(endpoint, str) and endpoint:
        hosts.append((endpoint, 443))  # Azure Communication Services
    return [(name.strip("[]"), number) for name, number in hosts]


def _notify(notifier: Apprise, title: str, body: str, timeout_seconds: float) -> _Outcome:
    # Runs in a worker thread: only a summary crosses back, and Apprise's result (with its logs) is released here.
    with notifier.notify(body=body, title=title, interpret_escapes=False, timeout=timeout_seconds) as result:
        return _Outcome(
            ok=bool(result),
            status=result.status.name.lower(),
            services=len(result),
            succeeded=result.success_count,
            failed=result.failed_count,
            timed_out=result.timeout_count,
        )


def _title(settings: AppriseSettings, message: OutboundMessage) -> str:
    for key in ("title", "subject"):
        value = message.content.get(key)
        if isinstance(value, str) and value.strip():
            return value
    if settings.title_template:
        return Template(settings.title_template).safe_substitute(message.metadata)
    return ""


class AppriseProvider(Provider[AppriseSettings]):
    service = "Apprise"

    async def send(self, settings: AppriseSettings, message: OutboundMessage) -> SendResult:
        body = message.content.get("body")
        if not isinstance(body, str) or not body.strip():
            raise DeliveryError("chat content has no body", kind=FailureKind.PERMANENT)
        urls = split_urls(settings.urls.get_secret_value())
        detail: dict[str, Any] = {"schemes": [scheme(url) for url in urls]}
        timeout = float(settings.timeout_seconds)
        asset = _asset(timeout)
        notifier = Apprise(asset=asset)
        for position, url in enumerate(urls, start=1):
            plugin = Apprise.instantiate(url, asset=asset)
            if plugin is None:
                # Validated when saved, so a plugin that became unavailable (e.g. a missing optional library).
                raise DeliveryError(
                    f"Apprise URL {position} ({scheme(url)}://) cannot be loaded",
                    kind=FailureKind.PERMANENT,
                    detail=detail,
                )
            plugin.redirects = False  # a redirect would take the request to an address the guard never saw
            # A URL's own rto=/cto= may not outlast the integration's timeout (the thread would run on).
            plugin.socket_connect_timeout = min(float(plugin.socket_connect_timeout), timeout)
            plugin.socket_read_timeout = min(float(plugin.socket_read_timeout), timeout)
            for host, port in _targets(plugin):
                try:
                    await check_public_host(host, port, allow_private=self.allow_private_networks)
                except (UnsafeUrlError, HostResolutionError) as exc:
                    raise refused_address(exc, {**detail, "url": position}) from None
            notifier.add(plugin)
        title = _title(settings, message)
        try:
            outcome = await asyncio.wait_for(
                asyncio.to_thread(_notify, notifier, title, body, timeout), timeout=timeout + GRACE_SECONDS
            )
        except TimeoutError:
            # The thread goes on until Apprise's socket timeouts end it; the message may still arrive.
            raise DeliveryError(
                f"{self.service} did not finish within {settings.timeout_seconds}s",
                kind=FailureKind.TRANSIENT,
                detail=detail,
            ) from None
        except Exception as exc:  # a plugin bug; its message may quote the URL, so only the type is kept
            raise DeliveryError(
                f"{self.service} failed ({type(exc).__name__})", kind=FailureKind.TRANSIENT, detail=detail
            ) from None
        counts = {
            "services": outcome.services,
            "succeeded": outcome.succeeded,
            "failed": outcome.failed,
            "timedOut": outcome.timed_out,
        }
        if not outcome.ok:
            raise DeliveryError(
                f"{self.service} could not notify {outcome.services - outcome.succeeded} of {outcome.services} "
                f"services ({outcome.status})",
                kind=FailureKind.TRANSIENT,
                detail={**detail, "status": outcome.status, **counts},
            )
        return SendResult(provider_message_id=None, detail={**detail, "services": outcome.services})

    async def aclose(self) -> None:
        """Nothing to release: each send builds its own Apprise instance."""
