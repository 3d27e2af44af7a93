"""The one HTTP client webhooks use: resolve the host ourselves, refuse blocked addresses
(webhooks/ssrf.py), connect to the vetted address (so a second DNS answer cannot swap it),
check the connected peer, then POST with the original Host header (and SNI and certificate
check for https). No redirects are followed, no proxy is used, the whole exchange has a
deadline and at most WEBHOOKS_MAX_RESPONSE_BYTES of the response body are read."""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from webhooks.ssrf import AddressRefused, address_allowed, ascii_url, resolve, url_parts

USER_AGENT = "Workbench-Webhooks/1"


@dataclass
class Response:
    status_code: int | None  # None: no HTTP answer (refused, timeout, connection error)
    body: bytes
    latency_ms: int
    error: str = ""

    def __post_init__(self) -> None:
        # PostgreSQL text refuses NUL; an error message (BadStatusLine) can quote one.
        self.error = self.error.replace("\x00", "\ufffd")

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def snippet(self) -> str:
        # errors="replace" keeps NUL, which PostgreSQL text refuses.
        return self.body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTPConnection over a socket we already connected (and vetted)."""

    def __init__(self, host: str, port: int, sock: socket.socket, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.sock = sock

    def connect(self) -> None:  # never reconnect by name
        raise http.client.NotConnected("the pinned socket is gone")


def _connect(addresses, port: int, deadline: float) -> socket.socket:
    last: Exception | None = None
    for ip in addresses:
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            sock.connect((str(ip), port))
            peer = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
            if reason := address_allowed(peer):
                raise AddressRefused(f"connected to {peer}, {reason}")
            return sock
        except AddressRefused:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError("no address to connect to")


def post(
    url: str, body: bytes, headers: dict[str, str], *, timeout: float | None = None
) -> Response:
    """POST ``body`` to ``url``. Never raises for network trouble: the Response says what
    happened (status_code None and an error when there was no HTTP answer)."""
    timeout = settings.WEBHOOKS_TIMEOUT_SECONDS if timeout is None else timeout
    limit = settings.WEBHOOKS_MAX_RESPONSE_BYTES
    started = time.monotonic()
    deadline = started + timeout

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        scheme, host, port = url_parts(url)
        addresses = resolve(host, port)
        sock = _connect(addresses, port, deadline)
    except AddressRefused as exc:
        return Response(None, b"", elapsed(), f"Refused: {exc}")
    except OSError as exc:
        return Response(None, b"", elapsed(), f"Connection failed: {exc}")
    except Exception as exc:  # never raise: the caller must record an outcome
        return Response(None, b"", elapsed(), f"Request failed: {exc.__class__.__name__}: {exc}")
    # The socket timeout bounds each recv, not the request: a receiver dripping a byte at a
    # time would hold the worker for ever. At the deadline the timer shuts the socket down,
    # which ends any read in progress.
    expired = threading.Event()
    current = [sock]

    def expire() -> None:
        expired.set()
        # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would drop its SSL
        # object under the reading thread. OSError: the request ended meanwhile.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(current[0], socket.SHUT_RDWR)

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
    timer.daemon = True
    timer.start()

    def timed_out() -> Response:
        return Response(None, b"", elapsed(), f"Timed out after {timeout:g} s")

    try:
        if scheme == "https":
            context = ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=host)
            current[0] = sock
        connection = _PinnedConnection(host, port, sock, timeout)
        connection.putrequest("POST", _path(url), skip_accept_encoding=True)
        for name, value in {
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "User-Agent": USER_AGENT,
            **headers,
        }.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        response = connection.getresponse()
        chunks, read = [], 0
        # getresponse may already have closed the connection's socket (Connection: close);
        # each read below is still bounded by the timeout set above, the whole by the timer.
        while read < limit:
            if time.monotonic() > deadline:
                raise TimeoutError
            chunk = response.read(min(16_384, limit - read))
            if not chunk:
                break
            chunks.append(chunk)
            read += len(chunk)
        status = response.status
        connection.close()
        if expired.is_set():  # the end of the body may be the timer's shutdown
            return timed_out()
        return Response(status, b"".join(chunks), elapsed())
    except TimeoutError:
        sock.close()
        return timed_out()
    except (OSError, http.client.HTTPException) as exc:
        sock.close()
        if expired.is_set():
            return timed_out()
        return Response(None, b"", elapsed(), f"Request failed: {exc.__class__.__name__}: {exc}")
    except Exception as exc:  # never raise: the caller must record an outcome
        sock.close()
        return Response(None, b"", elapsed(), f"Request failed: {exc.__class__.__name__}: {exc}")
    finally:
        timer.cancel()


def _path(url: str) -> str:
    # Already ASCII for URLs saved since ascii_url; older ones are encoded here.
    parts = urlsplit(ascii_url(url.strip()))
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
