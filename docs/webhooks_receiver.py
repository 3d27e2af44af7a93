"""A minimal Workbench webhook receiver, standard library only.

    WEBHOOK_SECRET=whsec_... python docs/webhooks_receiver.py 8000

It verifies each request the Standard Webhooks way and de-duplicates on ``webhook-id``:

1. Read ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` from the headers and
   the raw body (verify the bytes received, before parsing the JSON).
2. Refuse timestamps more than 5 minutes from now (replayed old requests).
3. Compute base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), where key is the base64
   decoding of the secret after its "whsec_" prefix.
4. ``webhook-signature`` holds one or more space-separated "v1,<signature>" values (two
   during a secret rotation): accept the request if any equals yours, compared in constant
   time.
5. Answer 2xx quickly. Workbench retries anything else (and timeouts after 15 s) with
   exponential backoff for up to 3 days; 410 Gone tells it to stop sending (the endpoint
   is disabled).

Delivery is at least once: the same ``webhook-id`` may arrive more than once (a retry after a
lost answer, a replay); process it once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 5 * 60


class InvalidSignature(Exception):
    pass


def verify(secret: str, headers, body: bytes, now: float | None = None) -> None:
    """Raise InvalidSignature unless the request was signed with ``secret``."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise InvalidSignature("missing webhook headers")
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise InvalidSignature("bad timestamp") from exc
    if abs((time.time() if now is None else now) - sent_at) > TOLERANCE_SECONDS:
        raise InvalidSignature("timestamp too old or too far ahead")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{sent_at}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    if not any(hmac.compare_digest(expected, s) for s in signatures.split()):
        raise InvalidSignature("no signature matches")


class Receiver(BaseHTTPRequestHandler):
    secret = os.environ.get("WEBHOOK_SECRET", "")
    seen: set[str] = set()  # use a database table with a unique key in a real receiver

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            verify(self.secret, self.headers, body)
        except InvalidSignature as exc:
            self.send_response(401)
            self.end_headers()
            self.wfile.write(str(exc).encode())
            return
        msg_id = self.headers["webhook-id"]
        if msg_id not in self.seen:
            self.process(json.loads(body))
            # Only now: a crash above sends no 2xx, and the retry must be processed again.
            self.seen.add(msg_id)
        self.send_response(204)
        self.end_headers()

    def process(self, payload: dict) -> None:
        """Your work goes here; raise to have Workbench send the message again."""
        for item in payload["data"]:
            print(payload["type"], json.dumps(item), flush=True)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()
