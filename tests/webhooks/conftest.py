"""Webhook test fixtures: a local receiver (a threaded HTTP server recording every request and
answering with the statuses a test queues), loopback allowed only where a test asks for it,
endpoints made through the service, and segments that produce transitions."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from activity.services import Actor
from segments.membership import segment_build
from segments.services import segment_create
from webhooks.models import Endpoint
from webhooks.services import EndpointData, endpoint_create

ACTOR = Actor.system("tests")
OSLO = {
    "type": "group",
    "match": "all",
    "children": [{"type": "attribute", "field": "city", "operator": "is", "value": "oslo"}],
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    answers: deque = field(default_factory=deque)  # (status, body) for the next requests
    default: tuple[int, bytes] = (200, b"ok")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def answer(self, *statuses: int | tuple[int, bytes]) -> None:
        for s in statuses:
            self.answers.append(s if isinstance(s, tuple) else (s, b""))

    def items(self) -> list[dict]:
        return [item for r in self.requests for item in r.json["data"]]


def _start(receiver_factory) -> Receiver:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with lock:
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                status, reply = receiver.answers.popleft() if receiver.answers else receiver.default
            self.send_response(status)
            if status in (301, 302, 307, 308):
                self.send_header("Location", f"http://127.0.0.1:{receiver.port}/elsewhere")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST  # noqa: N815 - a followed redirect would arrive as GET

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # senders post 16 at once; the default 5 would refuse some

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = receiver_factory(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


@pytest.fixture
def receiver():
    r = _start(Receiver)
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def canary():
    """A server that must never be reached: the SSRF tests point at it."""
    r = _start(Receiver)
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def loopback(settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    return settings


@pytest.fixture(autouse=True)
def quiet_actors(monkeypatch):
    """Messages the code sends (on commit, in transactional tests) go to a list, not Redis."""
    from segments.tasks import build_segment, ensure_segment_indexes, evaluate_pending
    from webhooks.tasks import relay_transitions, send_audience, send_webhooks, sweep_webhooks

    sent: list[tuple[str, tuple, dict]] = []
    for actor in (
        relay_transitions,
        send_webhooks,
        sweep_webhooks,
        send_audience,
        build_segment,
        evaluate_pending,
        ensure_segment_indexes,
    ):

        def send(*args, _name=actor.actor_name, **kwargs):
            sent.append((_name, args, kwargs))

        def send_with_options(*, args=(), kwargs=None, _name=actor.actor_name, **options):
            sent.append((_name, tuple(args), {**(kwargs or {}), **options}))

        monkeypatch.setattr(actor, "send", send)
        monkeypatch.setattr(actor, "send_with_options", send_with_options)
    return sent


def make_endpoint(url: str, **kwargs) -> tuple[Endpoint, str]:
    data = EndpointData(
        url=url,
        events=kwargs.pop("events", None) or ["segment-entered", "segment-exited"],
        **kwargs,
    )
    return endpoint_create(data=data, actor=ACTOR)


def oslo_segment(name: str = "Oslo"):
    segment = segment_create(name=name, rules=OSLO, actor=ACTOR, tz="UTC")
    return segment


def build(segment) -> None:
    segment_build(segment.pk)
