"""The SMTP floor: a plain aiosmtplib loop sending prebuilt messages of a given size to the same sink Tidings uses.

Each connection is opened before the clock starts and reused for every message, and sends on one connection are
sequential (MAIL, RCPT, DATA, as Tidings' SMTP provider does under its per-integration lock); `connections` > 1
splits the messages over that many connections sending at once. Nothing is rendered or recorded: what is left is
the cost of the protocol through one Python client.
"""

from __future__ import annotations

import asyncio
import time
from email import policy
from email.message import EmailMessage

import aiosmtplib

SENDER = "floor@example.com"


def recipient(index: int) -> str:
    return f"floor-{index}@example.com"


def message(size: int) -> bytes:
    """An RFC 5322 message of about `size` bytes (the mean size Tidings sent), padded in its text body."""
    email = EmailMessage(policy=policy.SMTP)
    email["Subject"] = "floor"
    email["From"] = SENDER
    email["To"] = recipient(0)
    email.set_content("x")
    padding = max(1, size - len(email.as_bytes()))
    lines = "\n".join("x" * 76 for _ in range(padding // 77 + 1))[:padding]
    email.set_content(lines or "x")
    return email.as_bytes()


async def _open(host: str, port: int) -> aiosmtplib.SMTP:
    smtp = aiosmtplib.SMTP(hostname=host, port=port, use_tls=False, start_tls=False, timeout=30)
    await smtp.connect()
    return smtp


async def _send_all(smtp: aiosmtplib.SMTP, raw: bytes, indices: range) -> None:
    for index in indices:
        await smtp.sendmail(SENDER, [recipient(index)], raw)


async def send_loop(host: str, port: int, count: int, size: int, connections: int = 1) -> float:
    """Seconds to send `count` messages of about `size` bytes over `connections` reused connections."""
    raw = message(size)
    opened = [await _open(host, port) for _ in range(connections)]
    try:
        started = time.perf_counter()
        await asyncio.gather(
            *(_send_all(smtp, raw, range(first, count, connections)) for first, smtp in enumerate(opened))
        )
        return time.perf_counter() - started
    finally:
        for smtp in opened:
            await smtp.quit()
