"""Which addresses a webhook may reach. A URL is checked when an endpoint is saved and again
at connection time (webhooks/http.py resolves the name itself, refuses the request if any
answer is blocked and connects to the vetted address), because DNS can change in between.

Only globally routable unicast addresses are allowed. That covers loopback, private,
link-local (cloud metadata at 169.254.169.254), carrier-grade NAT (100.64/10, another
metadata range), unique-local fc00::/7, multicast, reserved and unspecified addresses.
IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo)
are judged by the IPv4 address inside. Host names spelled as numbers ("2130706433",
"0x7f000001", "0177.0.0.1", "127.1") are read the way inet_aton reads them, which is how the
resolver would connect to them.

WEBHOOKS_ALLOW_LOOPBACK (development and tests only) lets loopback addresses through, and
nothing else that is blocked.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

# Checked before the ipaddress property that can let an address through (is_global), whose
# special ranges change between Python versions: before 3.12.4 only 192.0.0.0/29 of
# 192.0.0.0/24 counted as private, so Oracle Cloud's metadata service at 192.0.0.192 passed.
DENIED_NETWORKS = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "168.63.129.16/32",  # Azure's platform endpoint (metadata, DNS, health), public space
        "::/128",
        "::1/128",
        "100::/64",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
]


class AddressRefused(Exception):
    """A URL or address a webhook may not reach; the message says why, for the member."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in NAT64 or ip in NAT64_LOCAL or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_loopback(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)):
        return inner.is_loopback
    return ip.is_loopback


def blocked_reason(ip: IPAddress) -> str:
    """Why ``ip`` may not be reached ("" when it may)."""
    if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)):
        reason = blocked_reason(inner)
        return f"{reason} (inside {ip})" if reason else ""
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private network address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    # Each check above only blocks (their texts are the clearer reasons); the deny list is
    # consulted before the one that can allow, whatever this Python calls "global".
    if any(ip in network for network in DENIED_NETWORKS if network.version == ip.version):
        return "an address that is not on the public internet"
    if ip.is_reserved or not ip.is_global:
        return "an address that is not on the public internet"
    return ""


def address_allowed(ip: IPAddress) -> str:
    """ "" when a webhook may connect to ``ip``, else the reason it may not."""
    reason = blocked_reason(ip)
    if reason and settings.WEBHOOKS_ALLOW_LOOPBACK and is_loopback(ip):
        return ""
    return reason


def literal_address(host: str) -> IPAddress | None:
    """``host`` read as an IP address in any spelling the resolver accepts, else None."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if "%" in text:  # a zone index: fe80::1%eth0
        try:
            return ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return None
    # inet_aton takes decimal, octal and hex parts and short forms (127.1), as getaddrinfo
    # does; a host name made only of such parts is an address, whatever it looks like.
    if text and all(part and _numeric(part) for part in text.rstrip(".").split(".")):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text.rstrip(".")))
        except OSError:
            return None
    return None


def _numeric(part: str) -> bool:
    lowered = part.lower()
    if lowered.startswith("0x"):
        return all(c in "0123456789abcdef" for c in lowered[2:])
    return lowered.isdigit()


def url_parts(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a webhook URL, or AddressRefused with the reason."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise AddressRefused(f"The URL is not valid: {exc}.") from exc
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("The URL must start with http:// or https://.")
    if not parts.hostname:
        raise AddressRefused("The URL has no host name.")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused(
            "Credentials in the URL are not supported; receivers check the webhook signature."
        )
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, each checked; AddressRefused if any is blocked
    (a name answering with one public and one private address is refused as a whole)."""
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise AddressRefused(f"The host name “{host}” could not be resolved.") from exc
        addresses = []
        for info in infos:
            ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
            if ip not in addresses:
                addresses.append(ip)
    if not addresses:
        raise AddressRefused(f"The host name “{host}” has no address.")
    for ip in addresses:
        if reason := address_allowed(ip):
            raise AddressRefused(f"“{host}” points to {ip}, {reason}: webhooks may not go there.")
    return addresses


# RFC 3986 sub-delimiters and the characters paths and queries may hold as they are; "%"
# keeps escapes already there.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def ascii_url(url: str) -> str:
    """``url`` with a non-ASCII (or space) path, query and fragment percent-encoded as UTF-8:
    http.client sends the request line as ASCII and would raise on "/café"."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url  # url_parts says why
    return urlunsplit(
        (
            parts.scheme,
            parts.netloc,
            quote(parts.path, safe=_PATH_SAFE),
            quote(parts.query, safe=_QUERY_SAFE),
            quote(parts.fragment, safe=_QUERY_SAFE),
        )
    )


def url_check(url: str) -> None:
    """The save-time check: a valid http(s) URL whose host resolves only to allowed
    addresses."""
    _, host, port = url_parts(url)
    resolve(host, port)
