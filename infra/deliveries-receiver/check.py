#!/usr/bin/env python3
"""Deliveries made by the real local runner, verified by a receiver written with the Python
`standardwebhooks` library (SPEC §4.5).

    python3 infra/deliveries-receiver/check.py --runner target/debug/local-runner

Starts an HTTP receiver on a free loopback port that answers 500 to the first attempt of every
webhook-id and 200 afterwards, starts the runner with the seed registry in which one agency
(`mfc`) delivers to that receiver, then, as a citizen would over HTTP: registers (code from the
dev outbox), submits two applications to the agency and posts a message. Checks that every
request verifies, that each delivery arrives again with the same webhook-id after the 500, that
the bodies are {"type", "timestamp", "data"} (byte-identical on retry). Prints "N passed, N failed".
"""

import argparse
import base64
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

ROOT = Path(__file__).resolve().parents[2]
AGENCY = "mfc"
SERVICE = "mfc-appointment"
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


class Received:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (webhook_id, verified, answered, body)


def receiver(received: Received) -> ThreadingHTTPServer:
    webhook = Webhook(SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                webhook.verify(body, headers)
                verified = headers.get("content-type") == "application/json"
            except WebhookVerificationError:
                verified = False
            webhook_id = headers.get("webhook-id", "")
            with received.lock:
                seen = any(r[0] == webhook_id for r in received.requests)
                status = 200 if seen else 500
                received.requests.append((webhook_id, verified, status, body))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def wait(condition, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runner", required=True)
    args = parser.parse_args()

    received = Received()
    server = receiver(received)
    registry = json.loads((ROOT / "infra/local/seed/agencies.json").read_text())
    for agency in registry["agencies"]:
        if agency["id"] == AGENCY:
            agency["delivery_url"] = f"http://127.0.0.1:{server.server_address[1]}/deliveries?k=v"
            agency["delivery_secrets"] = [SECRET]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    passed, failed = 0, 0
    with tempfile.TemporaryDirectory(prefix="deliveries-receiver-") as data_dir:
        env = dict(os.environ, BIND_ADDR=f"127.0.0.1:{port}", DATA_DIR=data_dir, AGENCIES_JSON=json.dumps(registry), DELIVERY_RETRY_SCHEDULE="1s,1s,1s", BACKEND="embedded", RUST_LOG="warn")
        env.pop("AWS_ENDPOINT_URL", None)
        runner = subprocess.Popen([args.runner], env=env, stdout=subprocess.DEVNULL, stderr=open(Path(data_dir) / "runner.log", "w"))
        try:
            wait(lambda: _up(base), 60, "the runner")
            ids = journey(base)
            # Every staged delivery: a 500 first, then the same webhook-id again, answered 200.
            wait(lambda: sum(1 for r in received.requests if r[2] == 200) >= ids, 60, f"{ids} deliveries")
            results = {
                "every request verifies with the standardwebhooks library": lambda: all(r[1] for r in received.requests),
                "each webhook-id answered 500 first arrives again (the same id) and is delivered once": lambda: all(
                    [r[2] for r in received.requests if r[0] == wid][:2] == [500, 200] for wid in {r[0] for r in received.requests}
                ),
                "bodies are {type, timestamp, data} and retries are byte-identical": lambda: all(
                    set(json.loads(r[3])) == {"type", "timestamp", "data"} and len({x[3] for x in received.requests if x[0] == r[0]}) == 1 for r in received.requests
                ),
                "application.submitted and application.message arrive": lambda: {json.loads(r[3])["type"] for r in received.requests} >= {"application.submitted", "application.message"},
            }
            for name, check in results.items():
                ok = bool(check())
                passed, failed = passed + ok, failed + (not ok)
                print(f"{'ok  ' if ok else 'FAIL'} {name}")
        finally:
            runner.terminate()
            runner.wait(timeout=20)
            if failed:
                print((Path(data_dir) / "runner.log").read_text()[-3000:])
    server.shutdown()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def _up(base):
    try:
        return call(base, "GET", "/health")[0] == 200
    except OSError:
        return False


def journey(base) -> int:
    """A citizen over HTTP: register, two applications to the agency, one message. Returns how many deliveries that stages."""
    phone = "+79" + "".join(random.choice("0123456789") for _ in range(9))
    status, flow = call(base, "POST", "/v1/auth/register", {"phone": phone, "password": "Zx!9vQ#m2Lp$", "consents": {"terms": True, "personal_data": True}})
    assert status == 202, (status, flow)
    code = None

    def has_code():
        nonlocal code
        items = call(base, "GET", f"/dev/outbox?to={urllib.parse.quote(phone)}")[1]["items"]
        found = [re.search(r"\b(\d{6})\b", i["body"]) for i in items]
        code = next((m.group(1) for m in found if m), None)
        return code is not None

    wait(has_code, 30, "the one-time code")
    status, confirmed = call(base, "POST", "/v1/auth/register/confirm", {"flow_id": flow["flow_id"], "code": code})
    assert status == 201, (status, confirmed)
    token = confirmed["tokens"]["access_token"]
    form = call(base, "GET", f"/v1/services/{SERVICE}")[1]["form_example"]
    first = None
    for _ in range(2):
        status, draft = call(base, "POST", "/v1/applications", {"service_code": SERVICE, "form": form}, token)
        assert status == 201, (status, draft)
        status, submitted = call(base, "POST", f"/v1/applications/{draft['application_id']}/submit", None, token)
        assert status in (200, 202), (status, submitted)
        first = first or draft["application_id"]
    status, message = call(base, "POST", f"/v1/applications/{first}/messages", {"text": "Прошу ускорить рассмотрение."}, token)
    assert status in (200, 201), (status, message)
    return 3


if __name__ == "__main__":
    sys.exit(main())
