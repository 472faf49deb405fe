"""The SSRF guard: outbound calls to addresses a tenant chose go only to the public internet.

Webhook and provider addresses come from API clients, so without this a client could make the worker call the
cloud metadata service (169.254.169.254), an admin port on localhost or anything in the private network (Novu
GHSA-pg9q-8v57-hqph). Operators who do want private targets (a relay on the LAN, a dev sink on localhost) set
`TIDINGS_ALLOW_PRIVATE_NETWORK_URLS`.

The check resolves the name and then the HTTP or SMTP client resolves it again when it connects, so a name whose
DNS answer changes in between (DNS rebinding) can slip through; pinning the checked address into the connection
would close that gap. Callers check before every send so a changed answer is at least caught on the next one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SCHEMES = frozenset({"http", "https"})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeUrlError(Exception):
    """The address is not one Tidings may call: wrong scheme, or it resolves to a non-public address.

    The message names the host only, never the path or query, which may carry a token.
    """


class HostResolutionError(Exception):
    """The host name did not resolve (now): DNS may be down, so trying later can help."""


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    # An IPv6 address can smuggle an IPv4 one (::ffff:127.0.0.1, 64:ff9b::7f00:1); judge what it reaches.
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why `address` may not be called, or None when it may."""
    target = _embedded_ipv4(address)
    # Never a meaningful destination, even on a private network.
    if target.is_unspecified:
        return "an unspecified address"
    if target.is_multicast:
        return "a multicast address"
    if allow_private or target.is_global:
        return None
    if target.is_loopback:
        return "a loopback address"
    if target.is_link_local:
        return "a link-local address"
    return "a private or reserved address"


async def resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostResolutionError(f"host {host} does not resolve") from exc
    # Strip an IPv6 zone ("fe80::1%eth0"): ip_address refuses it and the zone does not change the verdict.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def check_public_host(host: str, port: int, *, allow_private: bool) -> None:
    """Raise `UnsafeUrlError` unless every address `host` resolves to may be called."""
    addresses = await resolve(host, port)
    if not addresses:
        raise HostResolutionError(f"host {host} does not resolve")
    for address in addresses:
        reason = refusal(address, allow_private=allow_private)
        if reason is not None:
            # Every address must pass: the client may connect to any of them.
            raise UnsafeUrlError(f"host {host} resolves to {reason}; private network addresses are not allowed")


async def check_public_url(url: str, *, allow_private: bool) -> None:
    """Raise `UnsafeUrlError` unless `url` is http(s) and its host resolves only to addresses that may be called."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise UnsafeUrlError("not a valid URL") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise UnsafeUrlError("only http and https URLs may be called")
    if not host:
        raise UnsafeUrlError("the URL has no host")
    await check_public_host(host, port, allow_private=allow_private)


def origin(url: str) -> str:
    """scheme://host[:port] of `url`: what may be logged or stored of an address whose path can be a secret."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(invalid URL)"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{shown}" + (f":{port}" if port else "")
