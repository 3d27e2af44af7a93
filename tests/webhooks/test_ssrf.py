"""SSRF: every blocked address and spelling is refused when an endpoint is saved and again
when a delivery connects (DNS re-resolved, the connected address checked). A canary server on
loopback stands in for an internal service: it must never see a request."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from tests.webhooks.conftest import ACTOR
from webhooks import http, ssrf
from webhooks.services import EndpointData, WebhookInvalid, endpoint_create

BLOCKED_ADDRESSES = [
    "127.0.0.1",
    "127.255.255.254",
    "::1",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "fc00::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "fe80::1",
    "0.0.0.0",  # noqa: S104 - refused, not bound
    "::",
    "100.100.100.200",  # carrier-grade NAT, Alibaba metadata
    "224.0.0.1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "::127.0.0.1",  # IPv4-compatible
    "240.0.0.1",  # reserved
    "192.0.0.192",  # Oracle Cloud metadata (public to ipaddress before Python 3.12.4)
    "168.63.129.16",  # Azure platform endpoint
    "::ffff:192.0.0.192",
    "198.18.0.1",
    "2001:db8::1",
]

# Host spellings of loopback the resolver accepts (inet_aton forms).
LOOPBACK_SPELLINGS = ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1", "127.0.1", "0"]


@pytest.mark.parametrize("address", BLOCKED_ADDRESSES)
def test_blocked_addresses_have_a_reason(address):
    assert ssrf.address_allowed(ipaddress.ip_address(address)) != ""


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_are_allowed(address):
    assert ssrf.address_allowed(ipaddress.ip_address(address)) == ""


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
def test_numeric_spellings_are_read_as_inet_aton_reads_them(spelling):
    ip = ssrf.literal_address(spelling)
    assert ip is not None and (ip.is_loopback or ip.is_unspecified)


def _urls(port: int) -> list[str]:
    hosts = [f"[{a}]" if ":" in a else a for a in BLOCKED_ADDRESSES] + LOOPBACK_SPELLINGS
    return [f"http://{h}:{port}/hook" for h in hosts] + [f"http://localhost:{port}/hook"]


@pytest.mark.django_db
def test_save_refuses_every_blocked_url_and_the_canary_sees_nothing(canary):
    for url in _urls(canary.port):
        with pytest.raises(WebhookInvalid) as refused:
            endpoint_create(data=EndpointData(url=url, events=["segment-entered"]), actor=ACTOR)
        assert refused.value.field == "url", url
        assert "may not go there" in str(refused.value), url
    assert canary.requests == []


@pytest.mark.parametrize(
    "url,message",
    [
        ("ftp://example.com/", "http:// or https://"),
        ("https://user:pw@example.com/", "Credentials"),
        ("https:///nohost", "no host"),
        ("http://example.com:99999/", "not valid"),
    ],
)
def test_malformed_urls_are_refused_with_a_reason(url, message):
    with pytest.raises(ssrf.AddressRefused, match=message):
        ssrf.url_check(url)


def test_connection_time_refuses_every_blocked_url_and_the_canary_sees_nothing(canary):
    """As if saved before the rules existed or changed since: the client checks again."""
    for url in _urls(canary.port):
        response = http.post(url, b"{}", {})
        assert response.status_code is None, url
        assert response.error.startswith("Refused"), url
    assert canary.requests == []


def test_dns_rebinding_is_caught_at_connection_time(canary, monkeypatch):
    """The name resolved to a public address when saved; by delivery time it says loopback."""
    real = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    response = http.post(f"http://rebind.example:{canary.port}/hook", b"{}", {})
    assert response.status_code is None and "127.0.0.1" in response.error
    assert canary.requests == []


def test_a_name_with_one_private_answer_is_refused_as_a_whole(monkeypatch):
    def mixed(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", mixed)
    with pytest.raises(ssrf.AddressRefused, match="10.0.0.5"):
        ssrf.url_check("https://mixed.example/")


def test_the_connected_address_is_checked_too(canary, monkeypatch, loopback):
    """Even if resolution were fooled, the peer we actually reached is checked."""
    loopback.WEBHOOKS_ALLOW_LOOPBACK = True
    monkeypatch.setattr(http, "address_allowed", lambda ip: "a loopback address")
    response = http.post(canary.url, b"{}", {})
    assert response.status_code is None and "connected to 127.0.0.1" in response.error
    assert canary.requests == []


def test_the_loopback_setting_lets_loopback_through_and_nothing_else(loopback, canary):
    assert ssrf.address_allowed(ipaddress.ip_address("127.0.0.1")) == ""
    assert ssrf.address_allowed(ipaddress.ip_address("::ffff:127.0.0.1")) == ""
    for other in ("10.0.0.1", "169.254.169.254", "192.168.0.1", "fc00::1", "0.0.0.0"):  # noqa: S104
        assert ssrf.address_allowed(ipaddress.ip_address(other)) != "", other
    assert http.post(canary.url, b"{}", {}).status_code == 200
