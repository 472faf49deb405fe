"""The SMTP provider (`smtp`): one connection per integration, kept open between sends.

A new connection costs a TCP (and TLS) handshake, EHLO and AUTH; reusing one is several times faster (DESIGN §8).
The lock keeps concurrent sends from interleaving their commands on the shared connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from html import unescape
from html.parser import HTMLParser

import aiosmtplib

from tidings.core.net import HostResolutionError, UnsafeUrlError, check_public_host
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.providers import SmtpSettings
from tidings.tasks.providers.base import Provider
from tidings.tasks.providers.errors import refused_address, smtp_failure_kind, smtp_reply

# RFC 5322 dot-atom text: what a Message-ID's left part may hold without quoting.
_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
# Long enough for any sensible key, short enough that the header is never folded.
_MAX_MESSAGE_ID_KEY = 64
_METADATA_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")
_MAX_HEADER_VALUE = 256
_QUIT_TIMEOUT_SECONDS = 2.0


def message_id(idempotency_key: str) -> str:
    """`<key@tidings>`: the same on every retry, so receivers and our records can tie them together."""
    if len(idempotency_key) <= _MAX_MESSAGE_ID_KEY and _DOT_ATOM.match(idempotency_key):
        local = idempotency_key
    else:
        local = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{local}@tidings>"


def metadata_header(key: str) -> str:
    """`transactionId` → `X-Tidings-Transaction-Id`."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key).split()
    return "X-Tidings-" + "-".join(word.capitalize() for word in words)


class _TextOfHtml(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            self._links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")
        elif tag == "a" and self._links:
            href = self._links.pop()
            # Keep where a link goes: in the plain part it is the only way to follow it.
            if href and href.startswith(("http://", "https://", "mailto:")):
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def plain_text(html: str) -> str:
    """A readable plain version of an HTML body, for clients and filters that want the text part."""
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in unescape("".join(parser.parts)).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def _one_line(value: str) -> str:
    return " ".join(value.split())[:_MAX_HEADER_VALUE]


def build_email(settings: SmtpSettings, message: OutboundMessage, to: str) -> EmailMessage:
    content = message.content
    html = content.get("html") if isinstance(content.get("html"), str) else None
    text = content.get("text") if isinstance(content.get("text"), str) else None
    if not html and not text:
        raise DeliveryError("email content has neither html nor text", kind=FailureKind.PERMANENT)
    email = EmailMessage(policy=policy.SMTP)
    subject = content.get("subject")
    email["Subject"] = " ".join(subject.split()) if isinstance(subject, str) else ""
    email["From"] = Address(display_name=settings.from_name or "", addr_spec=settings.from_email)
    try:
        email["To"] = Address(addr_spec=to)
    except (ValueError, IndexError):
        raise DeliveryError(
            "the subscriber's email address is not valid",
            kind=FailureKind.BAD_ENDPOINT,
            detail={"target": "subscriber"},
        ) from None
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = message_id(message.idempotency_key)
    for key, value in message.metadata.items():
        if _METADATA_KEY.match(key) and isinstance(value, str):
            email[metadata_header(key)] = _one_line(value)
    email.set_content(text or plain_text(html or ""))
    if html:
        email.add_alternative(html, subtype="html")
    return email


def _refused_session(settings: SmtpSettings, error: Exception) -> DeliveryError:
    return DeliveryError(
        f"SMTP server {settings.host}:{settings.port} refused the session: {error}",
        kind=FailureKind.PERMANENT,
        detail={"host": settings.host},
    )


class SmtpProvider(Provider[SmtpSettings]):
    def __init__(self, *, identifier: str, allow_private_networks: bool) -> None:
        super().__init__(identifier=identifier, allow_private_networks=allow_private_networks)
        self._lock = asyncio.Lock()
        self._smtp: aiosmtplib.SMTP | None = None
        self._connected_with: SmtpSettings | None = None

    async def send(self, settings: SmtpSettings, message: OutboundMessage) -> SendResult:
        to = message.recipient.email
        if not to:
            raise DeliveryError(
                "the subscriber has no email address", kind=FailureKind.BAD_ENDPOINT, detail={"target": "subscriber"}
            )
        email = build_email(settings, message, to)
        utf8 = not (settings.from_email.isascii() and to.isascii())
        raw = email.as_bytes(policy=policy.SMTPUTF8 if utf8 else policy.SMTP)
        async with self._lock:
            reply = await self._deliver(settings, to, raw, utf8=utf8)
        return SendResult(provider_message_id=str(email["Message-ID"]), detail={"smtp_response": reply})

    async def _deliver(self, settings: SmtpSettings, to: str, raw: bytes, *, utf8: bool) -> str:
        recipient_stage = False
        try:
            smtp, fresh = await self._connection(settings)
            options = ["SMTPUTF8"] if utf8 else []
            try:
                await smtp.mail(settings.from_email, options=options, encoding="utf-8" if utf8 else "ascii")
            except aiosmtplib.SMTPServerDisconnected:
                # The server closed an idle connection before we noticed. Nothing was handed over yet, so one
                # fresh attempt cannot send twice; a drop later in the transaction is left to the engine's retry.
                if fresh:
                    raise
                smtp, _ = await self._connection(settings)
                await smtp.mail(settings.from_email, options=options, encoding="utf-8" if utf8 else "ascii")
            if utf8 and not smtp.supports_extension("smtputf8"):
                raise aiosmtplib.SMTPNotSupported("the server does not accept non-ASCII addresses (SMTPUTF8)")
            recipient_stage = True
            await smtp.rcpt(to, encoding="utf-8" if utf8 else "ascii")
            recipient_stage = False
            response = await smtp.data(raw)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset()
            reply = smtp_reply(exc.code, exc.message)
            kind = smtp_failure_kind(exc.code, exc.message, recipient_stage=recipient_stage)
            detail: dict[str, str] = {"smtp_response": reply}
            if kind is FailureKind.BAD_ENDPOINT:
                detail["target"] = "subscriber"
            raise DeliveryError(f"SMTP server {settings.host} answered {reply}", kind=kind, detail=detail) from None
        except (UnsafeUrlError, HostResolutionError) as exc:
            raise refused_address(exc, {"host": settings.host}) from None
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPConnectError) as exc:
            self._drop()
            if isinstance(exc.__cause__, ssl.SSLError):
                # The TLS handshake failed (e.g. the certificate does not verify): retrying will not fix it.
                raise _refused_session(settings, exc.__cause__) from None
            raise DeliveryError(
                f"SMTP server {settings.host}:{settings.port} unavailable ({type(exc).__name__})",
                kind=FailureKind.TRANSIENT,
                detail={"host": settings.host},
            ) from None
        except (aiosmtplib.SMTPException, ssl.SSLError, ValueError) as exc:
            # Configuration the server cannot work with: no STARTTLS, a certificate that does not verify, an
            # address aiosmtplib refuses to send.
            self._drop()
            raise _refused_session(settings, exc) from None
        except OSError as exc:
            self._drop()
            raise DeliveryError(
                f"SMTP server {settings.host}:{settings.port} unavailable ({type(exc).__name__})",
                kind=FailureKind.TRANSIENT,
                detail={"host": settings.host},
            ) from None
        except BaseException:
            # Cancelled mid-transaction: the connection's state is unknown, so it is not reused.
            self._drop()
            raise
        return smtp_reply(response.code, response.message)

    async def _connection(self, settings: SmtpSettings) -> tuple[aiosmtplib.SMTP, bool]:
        """The open connection for these settings, and whether it was just opened."""
        if self._smtp is not None and self._smtp.is_connected and self._connected_with == settings:
            return self._smtp, False
        await self._disconnect()
        await check_public_host(settings.host, settings.port, allow_private=self.allow_private_networks)
        smtp = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            use_tls=settings.security == "tls",
            # True, not None: a server that does not offer STARTTLS fails instead of silently sending in clear.
            start_tls=settings.security == "starttls",
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            timeout=settings.timeout_seconds,
        )
        await smtp.connect()
        self._smtp, self._connected_with = smtp, settings
        return smtp, True

    async def _reset(self) -> None:
        # After a refused command the server still holds the envelope; RSET clears it for the next send.
        if self._smtp is None or not self._smtp.is_connected:
            return
        try:
            await self._smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp, self._connected_with = None, None

    async def _disconnect(self) -> None:
        smtp = self._smtp
        self._smtp, self._connected_with = None, None
        if smtp is None or not smtp.is_connected:
            return
        try:
            await smtp.quit(timeout=_QUIT_TIMEOUT_SECONDS)
        except (aiosmtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()

    async def aclose(self) -> None:
        async with self._lock:
            await self._disconnect()
