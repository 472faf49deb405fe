"""What every provider is, and the shared base of the providers that POST to an HTTP endpoint.

One provider instance serves one integration (the `ProviderSender` keeps them), so it may hold that integration's
connections between sends. Settings arrive decrypted with every send rather than at construction, because an
integration's settings can change while its instance lives.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from tidings.core.net import HostResolutionError, UnsafeUrlError, check_public_url, origin
from tidings.engine.delivery import (
    DeliveryError,
    FailureKind,
    InboundWebhook,
    OutboundMessage,
    SendResult,
    StatusCallbacksUnsupportedError,
    StatusUpdate,
)
from tidings.integrations.providers import ProviderSettings
from tidings.tasks.providers.errors import http_failure_kind, refused_address, retry_after_seconds

USER_AGENT = "Tidings"
# Enough for an error code such as Slack's "channel_not_found"; a hostile endpoint cannot make us buffer more.
MAX_RESPONSE_BYTES = 4096


class Provider[S: ProviderSettings](ABC):
    def __init__(self, *, identifier: str, allow_private_networks: bool) -> None:
        self.identifier = identifier  # the integration's identifier, e.g. to find a subscriber's chat endpoint
        self.allow_private_networks = allow_private_networks

    @abstractmethod
    async def send(self, settings: S, message: OutboundMessage) -> SendResult:
        """Deliver once, or raise `DeliveryError`; never let a secret or the message body into its message."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections; the instance is not used again."""

    def parse_status_webhook(self, settings: S, webhook: InboundWebhook) -> list[StatusUpdate]:
        """The status events of a callback the provider sent to `POST /webhooks/providers/{integrationId}`, after
        checking its signature or credentials (`WebhookRejectedError` when they don't verify). Never trust a field
        of an unverified callback."""
        raise StatusCallbacksUnsupportedError(f"{type(self).__name__} reads no status callbacks")


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    text: str  # at most MAX_RESPONSE_BYTES of the body, decoded leniently
    # Case-insensitive; some services name the message only in a header (SendGrid X-Message-Id, APNs apns-id).
    headers: Mapping[str, str] = field(default_factory=dict)


class HttpProvider[S: ProviderSettings](Provider[S]):
    """POSTs to addresses checked by the SSRF guard, over one pooled client, never following redirects."""

    service: ClassVar[str]  # how messages name the receiver, e.g. "webhook"
    http2: ClassVar[bool] = False  # APNs speaks HTTP/2 only

    def __init__(self, *, identifier: str, allow_private_networks: bool) -> None:
        super().__init__(identifier=identifier, allow_private_networks=allow_private_networks)
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # A redirect would take the request to an address the guard never saw.
            self._client = httpx.AsyncClient(
                follow_redirects=False, http2=self.http2, headers={"User-Agent": USER_AGENT}
            )
        return self._client

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        timeout_seconds: float,
        subscriber_endpoint: bool,
        detail: Mapping[str, Any] | None = None,
    ) -> HttpAnswer:
        """The 2xx answer, or `DeliveryError`; errors name only the endpoint's scheme and host."""
        where = origin(url)
        detail = {"endpoint": where, **(detail or {})}
        try:
            await check_public_url(url, allow_private=self.allow_private_networks)
        except (UnsafeUrlError, HostResolutionError) as exc:
            raise refused_address(exc, detail) from None
        try:
            async with self._http().stream(
                "POST", url, content=body, headers=dict(headers), timeout=timeout_seconds
            ) as response:
                answer = HttpAnswer(response.status_code, await _prefix(response), response.headers)
                retry_after = retry_after_seconds(response.headers.get("retry-after"))
        # `from None`: httpx errors can quote the URL, and for Slack the URL is the credential.
        except httpx.TimeoutException:
            raise DeliveryError(
                f"{self.service} at {where} timed out", kind=FailureKind.TRANSIENT, detail=detail
            ) from None
        except httpx.InvalidURL:
            raise DeliveryError(f"{self.service} URL is not valid", kind=FailureKind.PERMANENT, detail=detail) from None
        except httpx.TransportError as exc:
            raise DeliveryError(
                f"{self.service} at {where} could not be reached ({type(exc).__name__})",
                kind=FailureKind.TRANSIENT,
                detail=detail,
            ) from None
        if 200 <= answer.status < 300:
            return answer
        kind = http_failure_kind(answer.status, subscriber_endpoint=subscriber_endpoint)
        if 300 <= answer.status < 400:
            message = f"{self.service} at {where} answered {answer.status}, a redirect, which is not followed"
        else:
            message = f"{self.service} at {where} answered {answer.status}"
        raise DeliveryError(
            message,
            kind=kind,
            retry_after=retry_after if kind is FailureKind.TRANSIENT else None,
            detail={**detail, "status": answer.status, **self.error_detail(answer)},
        )

    def error_detail(self, answer: HttpAnswer) -> Mapping[str, Any]:
        """What of a failed answer is safe to store; by default nothing (it may echo the message back)."""
        return {}

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


async def _prefix(response: httpx.Response) -> str:
    received = bytearray()
    async for chunk in response.aiter_bytes():
        received += chunk
        if len(received) >= MAX_RESPONSE_BYTES:
            break
    return bytes(received[:MAX_RESPONSE_BYTES]).decode("utf-8", errors="replace")
