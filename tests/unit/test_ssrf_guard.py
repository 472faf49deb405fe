"""The SSRF guard: which addresses outbound calls may reach, and what of a URL may be shown."""

from __future__ import annotations

import ipaddress

import pytest

from tidings.core.net import HostResolutionError, UnsafeUrlError, check_public_url, origin, refusal

REFUSED_UNLESS_ALLOWED = [
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "100.64.0.1",  # carrier-grade NAT
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
    "192.0.2.1",
]
ALWAYS_REFUSED = ["0.0.0.0", "::", "224.0.0.1", "239.255.255.250", "ff02::1", "::ffff:0.0.0.0"]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "172.32.0.1", "192.169.0.1", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED_UNLESS_ALLOWED)
def test_private_loopback_and_link_local_are_refused_unless_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert refusal(ip, allow_private=False) is not None
    assert refusal(ip, allow_private=True) is None


@pytest.mark.parametrize("address", ALWAYS_REFUSED)
def test_unspecified_and_multicast_are_always_refused(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert refusal(ip, allow_private=False) is not None
    assert refusal(ip, allow_private=True) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), allow_private=False) is None


def test_reasons_name_the_kind_of_address() -> None:
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow_private=False) == "a loopback address"
    assert refusal(ipaddress.ip_address("169.254.169.254"), allow_private=False) == "a link-local address"
    assert refusal(ipaddress.ip_address("10.0.0.1"), allow_private=False) == "a private or reserved address"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "https://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://0x7f.0.0.1/",  # the resolver reads hex forms too
        "http://2130706433/",  # 127.0.0.1 as one decimal number
    ],
)
async def test_urls_reaching_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        await check_public_url(url, allow_private=False)


async def test_private_urls_pass_when_allowed() -> None:
    await check_public_url("http://127.0.0.1:9/hook", allow_private=True)
    await check_public_url("http://localhost/hook", allow_private=True)


async def test_public_ip_literals_pass() -> None:
    await check_public_url("https://93.184.215.14/hook?token=x", allow_private=False)
    await check_public_url("https://[2606:4700:4700::1111]/hook", allow_private=False)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://127.0.0.1/", "javascript:alert(1)", "https:///path"]
)
async def test_only_http_urls_with_a_host_are_called(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        await check_public_url(url, allow_private=True)


async def test_refusal_names_the_host_but_not_the_path() -> None:
    with pytest.raises(UnsafeUrlError) as error:
        await check_public_url("http://127.0.0.1/services/T0/B0/SECRET", allow_private=False)
    assert "127.0.0.1" in str(error.value)
    assert "SECRET" not in str(error.value)


async def test_unresolvable_host_is_a_resolution_error() -> None:
    with pytest.raises(HostResolutionError):
        await check_public_url("https://no-such-host.invalid/hook", allow_private=False)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/SECRET", "https://hooks.slack.com"),
        ("http://user:password@example.com:8080/x?token=1", "http://example.com:8080"),
        ("HTTPS://[::1]:8443/x", "https://[::1]:8443"),
        ("http://[not-closed/x", "(invalid URL)"),
    ],
)
def test_origin_keeps_only_scheme_host_and_port(url: str, shown: str) -> None:
    assert origin(url) == shown
