"""Standard Webhooks signatures: what webhooks/signing.py signs, the example receiver
(docs/webhooks_receiver.py) and the library's ``verify`` both accept, and nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
from pathlib import Path

import pytest

from webhooks import signing

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode()
BODY = b'{"type":"segment-entered","data":[]}'
NOW = 1_790_000_000


def _example_receiver():
    path = Path(__file__).resolve().parents[2] / "docs" / "webhooks_receiver.py"
    spec = importlib.util.spec_from_file_location("webhooks_receiver", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RECEIVER = _example_receiver()


def test_signature_is_hmac_sha256_over_id_timestamp_body():
    sig = signing.signature(SECRET, "msg_1", NOW, BODY)
    expected = hmac.new(b"k" * 32, b"msg_1.%d." % NOW + BODY, hashlib.sha256).digest()
    assert sig == "v1," + base64.b64encode(expected).decode()


def test_new_secrets_are_prefixed_random_and_32_bytes():
    a, b = signing.secret_new(), signing.secret_new()
    assert a.startswith("whsec_") and a != b
    assert len(base64.b64decode(a.removeprefix("whsec_"))) == 32


@pytest.mark.parametrize("verify", [signing.verify, RECEIVER.verify], ids=["library", "example"])
def test_both_verifiers_accept_a_signed_request(verify):
    headers = signing.headers([SECRET], "msg_1", NOW, BODY)
    verify(SECRET, headers, BODY, now=NOW + 10)


@pytest.mark.parametrize("verify", [signing.verify, RECEIVER.verify], ids=["library", "example"])
@pytest.mark.parametrize(
    "change",
    ["body", "id", "timestamp", "secret", "stale", "future", "missing"],
)
def test_both_verifiers_refuse_anything_altered(verify, change):
    headers = signing.headers([SECRET], "msg_1", NOW, BODY)
    body, secret, now = BODY, SECRET, NOW
    if change == "body":
        body = BODY.replace(b"entered", b"exited")
    elif change == "id":
        headers["webhook-id"] = "msg_2"
    elif change == "timestamp":
        headers["webhook-timestamp"] = str(NOW + 1)
    elif change == "secret":
        secret = OTHER
    elif change == "stale":
        now = NOW + 301
    elif change == "future":
        now = NOW - 301
    elif change == "missing":
        del headers["webhook-signature"]
    errors = (signing.SignatureInvalid, RECEIVER.InvalidSignature)
    with pytest.raises(errors):
        verify(secret, headers, body, now=now)


def test_during_a_rotation_both_secrets_sign_and_either_verifies():
    headers = signing.headers([OTHER, SECRET], "msg_1", NOW, BODY)
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (SECRET, OTHER):
        signing.verify(secret, headers, BODY, now=NOW)
        RECEIVER.verify(secret, headers, BODY, now=NOW)


def test_the_example_receiver_marks_a_message_seen_only_once_processed():
    import threading
    import urllib.error
    import urllib.request
    from http.server import ThreadingHTTPServer

    processed: list[str] = []

    class Flaky(RECEIVER.Receiver):
        secret = SECRET
        seen: set[str] = set()

        def log_message(self, *args) -> None:
            pass

        def process(self, payload: dict) -> None:
            if not processed:
                processed.append("crashed")
                raise RuntimeError("the database is down")
            processed.append(payload["type"])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    server.handle_error = lambda *args: None  # the crash is expected
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    headers = signing.headers([SECRET], "msg_1", int(__import__("time").time()), BODY)
    try:
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(urllib.request.Request(url, BODY, headers), timeout=5)
        with urllib.request.urlopen(urllib.request.Request(url, BODY, headers), timeout=5) as r:
            assert r.status == 204
    finally:
        server.shutdown()
        server.server_close()
    assert processed == ["crashed", "segment-entered"]
