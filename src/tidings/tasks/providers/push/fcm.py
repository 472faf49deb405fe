"""The Firebase Cloud Messaging HTTP v1 provider (`fcm`).

`POST {base_url}/v1/projects/{project_id}/messages:send` with `Authorization: Bearer <OAuth2 access token>` and
`{"message": {"token", "notification": {"title", "body"}, "data": {str: str}}}`, one request per device token.
The access token comes from the service account (google-auth, scope firebase.messaging) at the JSON's `token_uri`,
which the SSRF guard checks first; it is cached until google-auth deems it near expiry. FCM answers 200
`{"name": "projects/…/messages/…"}` (the provider message id) or a Google API error
`{"error": {"status", "details": [{"errorCode"}, {"fieldViolations"}]}}`: UNREGISTERED, or INVALID_ARGUMENT about
`message.token`, condemn the token; only those codes are kept, never the error message.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import google.auth.exceptions
from google.auth.transport.requests import Request
from google.oauth2.service_account import Credentials

from tidings.core.net import HostResolutionError, UnsafeUrlError, check_public_url, origin
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.push_settings import FcmSettings, service_account_info
from tidings.tasks.providers.base import HttpAnswer
from tidings.tasks.providers.errors import refused_address
from tidings.tasks.providers.push import PushProvider, bad_token, push_content, send_each

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TOKEN_FIELD = "message.token"  # noqa: S105 (a field name, not a password)
_CODE = re.compile(r"^[A-Z_]{1,64}$")
_NAME = re.compile(r"^projects/[^\s]{1,256}$")


class _TimedRequest(Request):
    """google-auth's requests transport with our timeout and without following redirects."""

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__()
        self.session.max_redirects = 0
        self._timeout_seconds = timeout_seconds

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        return super().__call__(  # type: ignore[no-untyped-call]
            url, method=method, body=body, headers=headers, timeout=self._timeout_seconds, **kwargs
        )


def _error(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError:
        return {}
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) else {}


class FcmProvider(PushProvider[FcmSettings]):
    service = "FCM"

    def __init__(self, *, identifier: str, allow_private_networks: bool) -> None:
        super().__init__(identifier=identifier, allow_private_networks=allow_private_networks)
        self._credentials: tuple[str, Credentials] | None = None
        self._refresh_lock = asyncio.Lock()

    async def access_token(self, settings: FcmSettings) -> str:
        info = service_account_info(settings.service_account)
        fingerprint = hashlib.sha256(settings.service_account.get_secret_value().encode()).hexdigest()
        async with self._refresh_lock:
            if self._credentials is None or self._credentials[0] != fingerprint:
                try:
                    credentials = Credentials.from_service_account_info(info, scopes=[SCOPE])  # type: ignore[no-untyped-call]
                except (ValueError, TypeError):
                    raise DeliveryError(
                        "FCM service account key could not be loaded", kind=FailureKind.PERMANENT
                    ) from None
                self._credentials = (fingerprint, credentials)
            credentials = self._credentials[1]
            if not credentials.valid or not credentials.token:
                await self._refresh(credentials, info["token_uri"], settings.timeout_seconds)
            token = credentials.token
            if not isinstance(token, str):
                raise DeliveryError("FCM token endpoint gave no access token", kind=FailureKind.PERMANENT)
            return token

    async def _refresh(self, credentials: Credentials, token_uri: str, timeout_seconds: float) -> None:
        detail = {"endpoint": origin(token_uri)}
        try:
            await check_public_url(token_uri, allow_private=self.allow_private_networks)
        except (UnsafeUrlError, HostResolutionError) as exc:
            raise refused_address(exc, detail) from None
        request = _TimedRequest(timeout_seconds)
        try:
            await asyncio.to_thread(credentials.refresh, request)
        # Messages may quote the token endpoint's answer; keep only the kind of failure.
        except google.auth.exceptions.RefreshError as exc:
            kind = FailureKind.TRANSIENT if exc.retryable else FailureKind.PERMANENT
            raise DeliveryError(f"FCM access token refused by {detail['endpoint']}", kind=kind, detail=detail) from None
        except google.auth.exceptions.TransportError:
            raise DeliveryError(
                f"FCM access token: {detail['endpoint']} could not be reached",
                kind=FailureKind.TRANSIENT,
                detail=detail,
            ) from None
        finally:
            request.session.close()

    async def send(self, settings: FcmSettings, message: OutboundMessage) -> SendResult:
        tokens = self.device_tokens(message)
        content = push_content(message)
        project = settings.project_id or service_account_info(settings.service_account)["project_id"]
        url = f"{settings.base_url.rstrip('/')}/v1/projects/{quote(project, safe='')}/messages:send"
        access_token = await self.access_token(settings)
        headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json; charset=utf-8"}
        notification = {key: value for key, value in (("title", content.title), ("body", content.body)) if value}

        async def send_one(token: str) -> str | None:
            fcm_message: dict[str, Any] = {"token": token, "notification": notification}
            if content.data:
                fcm_message["data"] = content.string_data()
            body = json.dumps({"message": fcm_message}, ensure_ascii=False).encode()
            try:
                answer = await self.post(
                    url, body, headers, timeout_seconds=settings.timeout_seconds, subscriber_endpoint=False
                )
            except DeliveryError as error:
                if error.detail.get("errorCode") == "UNREGISTERED":
                    raise bad_token(error, "unregistered") from None
                if error.detail.get("error") == "INVALID_ARGUMENT" and error.detail.get("field") == TOKEN_FIELD:
                    raise bad_token(error, "not a valid FCM registration token") from None
                raise
            try:
                name = json.loads(answer.text).get("name")
            except (ValueError, AttributeError):
                return None
            return name if isinstance(name, str) and _NAME.match(name) else None

        return await send_each(self.service, tokens, send_one)

    def error_detail(self, answer: HttpAnswer) -> Mapping[str, Any]:
        error = _error(answer.text)
        detail: dict[str, Any] = {}
        status = error.get("status")
        if isinstance(status, str) and _CODE.match(status):
            detail["error"] = status
        details = error.get("details")
        for item in details if isinstance(details, list) else []:
            if not isinstance(item, dict):
                continue
            code = item.get("errorCode")
            if isinstance(code, str) and _CODE.match(code):
                detail["errorCode"] = code
            violations = item.get("fieldViolations")
            for violation in violations if isinstance(violations, list) else []:
                if isinstance(violation, dict) and violation.get("field") == TOKEN_FIELD:
                    detail["field"] = TOKEN_FIELD
        # FCM's answer to a malformed token may name it only in its message; keep the fact, not the text.
        text = error.get("message")
        if status == "INVALID_ARGUMENT" and isinstance(text, str) and "registration token" in text.lower():
            detail["field"] = TOKEN_FIELD
        return detail
