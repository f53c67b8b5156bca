#!/usr/bin/env python3
"""Runs every function of the deployed stack in Lambda mode and checks its answers.

    python3 infra/lambda/check.py --outputs .run/local-stack/outputs.json   # AWS_ENDPOINT_URL = the emulator

Each function's release bootstrap (the one `sam build` packaged) runs as Lambda runs it: a
process polling a Runtime API, here the emulator of `cargo lambda watch --only-lambda-apis`,
with the environment the deployed stack gave the function (read back from the emulator's
Lambda API, so the template's wiring is what is tested) plus `AWS_ENDPOINT_URL`, the one
emulator-only addition. Events come from `events/*.json` through `cargo lambda invoke`, and
from a chain that crosses the functions the way AWS would connect them: an auth Lambda's
event travels through the real events queue into the notifications Lambda, a presigned PUT
into the bucket raises the S3 notification that the uploads Lambda verifies.

Then it measures cold starts: process start to the first answered invocation, three times
per function (median), next to the hello-world `lambda_runtime` function built the same way,
and prints the table (figures, not assertions). Exit status 1 when any check fails.
"""

import argparse
import base64
import hashlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
import template_model  # noqa: E402
from common import cargo_target_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
BASELINE = "hello-lambda"
COLD_SAMPLES = 3
WARM_SAMPLES = 5
INVOKE_TIMEOUT = 60

# A cheap event per function for cold-start and warm timing (answered without side effects).
PROBES = {
    "AuthFunction": "apigw-v2-get-jwks.json",
    "NotificationsFunction": {"Records": []},
    "NotificationsApiFunction": "apigw-v2-get-notification-settings-expired-token.json",
    "OutboxFunction": "schedule.json",
    "ApplicationsFunction": "apigw-v2-get-services.json",
    "DocumentsApiFunction": "apigw-v2-get-documents-unauthenticated.json",
    "DocumentsUploadsFunction": {"Records": []},
    "DocumentsPurgeFunction": "schedule.json",
    # Deliveries (issue 9, deliveries part): a sweep returns at once when no agency takes deliveries.
    "DeliveriesFunction": "schedule.json",
    "DeliveriesApiFunction": "apigw-v2-get-agency-deliveries-unauthenticated.json",
    # OAuth (issue 9): a token request with a wrong secret, answered without side effects.
    "OAuthFunction": "apigw-v2-post-oauth-token.json",
    BASELINE: {"hello": "lambda"},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", default=str(ROOT / ".run" / "local-stack" / "outputs.json"))
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("--build-dir", default=str(ROOT / ".aws-sam" / "build"), help="sam build output (its template.yaml names each function's directory)")
    parser.add_argument("--from-target", action="store_true", help="run <target>/lambda/<binary>/bootstrap (cargo lambda build output) instead of the sam build output")
    parser.add_argument("--baseline", default=None, help="hello-lambda bootstrap (default: <target>/lambda/hello-lambda/bootstrap)")
    parser.add_argument("--report", default=str(ROOT / ".run" / "lambda-report.json"))
    args = parser.parse_args()

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        print("lambda check: AWS_ENDPOINT_URL (the emulator holding the deployed stack) is required", file=sys.stderr)
        return 2
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    aws = boto3.session.Session(region_name=region, aws_access_key_id="test", aws_secret_access_key="test")
    outputs = json.loads(Path(args.outputs).read_text())

    functions = {f.logical_id: f for f in template_model.rust_functions(Path(args.template))}
    missing = sorted(set(functions) - set(PROBES))
    if missing:
        print(f"lambda check: no Lambda-mode check for {', '.join(missing)}; add one to {Path(__file__).name}", file=sys.stderr)
        return 1
    lambda_api = aws.client("lambda", endpoint_url=endpoint)
    code_dirs = {} if args.from_target else template_model.built_code_dirs(Path(args.build_dir))
    specs = {}
    for logical_id in functions:
        name = outputs[f"{logical_id}Name"]
        configuration = lambda_api.get_function_configuration(FunctionName=name)
        env = dict(configuration.get("Environment", {}).get("Variables", {}))
        bootstrap = cargo_target_dir() / "lambda" / functions[logical_id].binary / "bootstrap" if args.from_target else code_dirs[logical_id] / "bootstrap"
        specs[logical_id] = Spec(logical_id, name, functions[logical_id].binary, bootstrap, env, configuration["MemorySize"], region, endpoint)
    baseline = Path(args.baseline) if args.baseline else cargo_target_dir() / "lambda" / BASELINE / "bootstrap"
    specs[BASELINE] = Spec(BASELINE, BASELINE, BASELINE, baseline, {}, 128, region, endpoint)
    for spec in specs.values():
        if not spec.bootstrap.is_file():
            print(f"lambda check: {spec.bootstrap} is missing; run python3 infra/lambda/build.py", file=sys.stderr)
            return 1

    results = Results()
    with tempfile.TemporaryDirectory(prefix="lambda-check-") as scratch:
        # One emulator per function: it routes invocations by binary name, and several
        # functions share a binary (notifications x2, documents x3).
        emulators = {logical_id: Emulator(Path(scratch), logical_id) for logical_id in specs}
        running = {}
        try:
            for emulator in emulators.values():
                emulator.start()
            timings = measure_cold_starts(emulators, specs, Path(scratch))
            for logical_id, spec in specs.items():
                if logical_id != BASELINE:
                    running[logical_id] = LambdaProcess(emulators[logical_id], spec, Path(scratch))
            Checks(emulators, running, specs, aws, endpoint, outputs, results).run_all()
        finally:
            for process in running.values():
                process.stop()
            if results.failed:
                for logical_id, process in running.items():
                    print(f"---- {logical_id} log (last 30 lines) ----\n{process.tail(30)}")
            for emulator in emulators.values():
                emulator.stop()

    print_cold_start_table(timings)
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps({"checks": results.rows, "cold_starts": timings}, indent=2) + "\n")
    print(f"lambda check: {results.passed} passed, {len(results.failed)} failed (report: {args.report})")
    return 1 if results.failed else 0


# ---------------------------------------------------------------------------------------------
# the Runtime API emulator and the function processes
# ---------------------------------------------------------------------------------------------


class Emulator:
    """`cargo lambda watch --only-lambda-apis`: the Runtime API and the invoke endpoint, no build."""

    def __init__(self, scratch: Path, tag: str):
        self.port = free_port()
        self.log_path = scratch / f"emulator-{tag}.log"
        self.process = None

    def start(self) -> None:
        command = ["cargo", "lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1", "--invoke-port", str(self.port)]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"lambda check: the Runtime API emulator did not start:\n{self.tail(20)}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def runtime_api(self, function_name: str) -> str:
        # The emulator queues invocations per function name, which is this path segment.
        return f"http://127.0.0.1:{self.port}/.rt/{function_name}"

    def invoke(self, function_name: str, payload) -> tuple[float, object]:
        """POSTs an invocation and waits for the answer; returns (seconds, decoded payload)."""
        body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/2015-03-31/functions/{function_name}/invocations", data=body, method="POST", headers={"content-type": "application/json"})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=INVOKE_TIMEOUT) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise InvokeError(f"invoke {function_name}: HTTP {error.code} {error.read()[:500]!r}") from None
        elapsed = time.perf_counter() - started
        return elapsed, json.loads(raw) if raw else None

    def invoke_cli(self, function_name: str, data_file: Path) -> object:
        """`cargo lambda invoke --data-file`, the documented way to feed a fixture."""
        command = ["cargo", "lambda", "invoke", function_name, "--invoke-address", "127.0.0.1", "--invoke-port", str(self.port), "--data-file", str(data_file), "--output-format", "json"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=INVOKE_TIMEOUT)
        if done.returncode != 0:
            raise InvokeError(f"cargo lambda invoke {function_name} --data-file {data_file.name}: exit {done.returncode}: {(done.stderr or done.stdout).strip()[:800]}")
        return json.loads(done.stdout) if done.stdout.strip() else None

    def tail(self, lines: int) -> str:
        return tail_file(self.log_path, lines)


class InvokeError(Exception):
    pass


class Spec:
    """How one function runs: its bootstrap and the environment Lambda would give it."""

    def __init__(self, logical_id, name, binary, bootstrap, env, memory, region, endpoint):
        self.logical_id = logical_id
        self.name = name
        # The emulator accepts invocations only for the project's binary names.
        self.binary = binary
        self.bootstrap = bootstrap
        self.env = env
        self.memory = memory
        self.region = region
        self.endpoint = endpoint

    def environment(self, emulator: Emulator) -> dict:
        env = {
            # What the Lambda service sets for a provided.al2023 function.
            "AWS_LAMBDA_RUNTIME_API": emulator.runtime_api(self.binary),
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "LAMBDA_TASK_ROOT": str(self.bootstrap.parent),
            "_HANDLER": "bootstrap",
            "TZ": ":UTC",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            # The only emulator-specific addition: AWS calls go to the emulator.
            "AWS_ENDPOINT_URL": self.endpoint,
        }
        env.update(self.env)
        return env


class LambdaProcess:
    def __init__(self, emulator: Emulator, spec: Spec, scratch: Path, log_name: str | None = None):
        self.spec = spec
        self.emulator = emulator
        self.log_path = scratch / f"{log_name or spec.logical_id}.log"
        self.started = time.perf_counter()
        self.process = subprocess.Popen([str(spec.bootstrap)], cwd=spec.bootstrap.parent, env=spec.environment(emulator), stdout=self.log_path.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def peak_rss_mib(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def tail(self, lines: int) -> str:
        return tail_file(self.log_path, lines)


# ---------------------------------------------------------------------------------------------
# cold starts
# ---------------------------------------------------------------------------------------------


def measure_cold_starts(emulators: dict, specs: dict, scratch: Path) -> list[dict]:
    """Per function: process start -> first answered probe (median of COLD_SAMPLES fresh
    processes), then the median warm probe on the last one. One process at a time, so the
    two cores are not shared between measured functions."""
    rows = []
    order = [BASELINE] + [logical_id for logical_id in specs if logical_id != BASELINE]
    for logical_id in order:
        spec = specs[logical_id]
        emulator = emulators[logical_id]
        probe = load_event(PROBES[logical_id])
        colds, warm, rss = [], [], None
        for sample in range(COLD_SAMPLES):
            process = LambdaProcess(emulator, spec, scratch, f"{logical_id}-cold{sample}")
            try:
                emulator.invoke(spec.binary, probe)
                colds.append(time.perf_counter() - process.started)
                if sample == COLD_SAMPLES - 1:
                    warm = [emulator.invoke(spec.binary, probe)[0] for _ in range(WARM_SAMPLES)]
                    rss = process.peak_rss_mib()
            except InvokeError as error:
                raise SystemExit(f"lambda check: {logical_id} did not answer its probe: {error}\n{process.tail(20)}")
            finally:
                process.stop()
        rows.append({
            "function": logical_id,
            "cold_start_ms": round(statistics.median(colds) * 1000, 1),
            "cold_start_samples_ms": [round(c * 1000, 1) for c in colds],
            "warm_invoke_ms": round(statistics.median(warm) * 1000, 1),
            "peak_rss_mib": round(rss, 1) if rss is not None else None,
            "bootstrap_mib": round(spec.bootstrap.stat().st_size / 2**20, 2),
        })
    baseline = rows[0]["cold_start_ms"]
    for row in rows:
        row["vs_hello"] = round(row["cold_start_ms"] / baseline, 2) if baseline else None
    return rows


def print_cold_start_table(rows: list[dict]) -> None:
    print()
    print("cold start = process start -> first answered invocation (median of 3); warm = median of 5; under cargo lambda's Runtime API emulator")
    print("init ~ cold - warm: start-up work before the first answer (adapters, key ring, catalogue...)")
    print(f"{'function':<26} {'cold ms':>8} {'x hello':>8} {'warm ms':>8} {'init ms':>8} {'peak RSS MiB':>13} {'bootstrap MiB':>14}")
    for row in rows:
        init = row["cold_start_ms"] - row["warm_invoke_ms"]
        print(f"{row['function']:<26} {row['cold_start_ms']:>8.1f} {row['vs_hello']:>8.2f} {row['warm_invoke_ms']:>8.1f} {init:>8.1f} {row['peak_rss_mib'] or 0:>13.1f} {row['bootstrap_mib']:>14.2f}")


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------


class Results:
    def __init__(self):
        self.rows = []
        self.failed = []
        self.passed = 0

    def record(self, function: str, description: str, error: str | None, seconds: float):
        self.rows.append({"function": function, "check": description, "ok": error is None, "error": error, "seconds": round(seconds, 3)})
        if error is None:
            self.passed += 1
            print(f"  ok    {function:<26} {description} ({seconds * 1000:.0f} ms)")
        else:
            self.failed.append(description)
            print(f"  FAIL  {function:<26} {description}: {error}")


class CheckFailed(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Checks:
    def __init__(self, emulators, running, specs, aws, endpoint, outputs, results):
        self.emulators = emulators
        self.running = running
        self.specs = specs
        self.sqs = aws.client("sqs", endpoint_url=endpoint)
        self.s3 = aws.client("s3", endpoint_url=endpoint)
        self.outputs = outputs
        self.results = results

    def check(self, function: str, description: str, body) -> bool:
        started = time.perf_counter()
        try:
            body()
            error = None
        except (CheckFailed, InvokeError, KeyError, ValueError, TypeError) as failure:
            error = f"{type(failure).__name__}: {failure}" if not isinstance(failure, CheckFailed) else str(failure)
        self.results.record(function, description, error, time.perf_counter() - started)
        return error is None

    def fixture(self, logical_id: str, name: str):
        return self.emulators[logical_id].invoke_cli(self.specs[logical_id].binary, EVENTS / name)

    def call(self, logical_id: str, event):
        return self.emulators[logical_id].invoke(self.specs[logical_id].binary, event)[1]

    def run_all(self) -> None:
        print("Lambda-mode checks (fixtures through `cargo lambda invoke`, chains through the emulator's queues and bucket):")
        for logical_id, spec in self.specs.items():
            if logical_id != BASELINE:
                self.check(logical_id, f"its environment ({environment_size(spec.env)} bytes) fits Lambda's 4 KB limit", lambda spec=spec: environment_fits(spec.env))
        self.check("AuthFunction", "GET /.well-known/jwks.json publishes the configured key ring", self.auth_jwks)
        for http_function in ("AuthFunction", "NotificationsApiFunction", "ApplicationsFunction", "DocumentsApiFunction"):
            self.check(http_function, "GET /health answers {status: ok}; GET /openapi.json its own OpenAPI 3.1 document (SPEC §2)", lambda f=http_function: self.health_and_document(f))
        self.check("AuthFunction", "POST /v1/auth/register (fixture) answers 202 or a problem", self.auth_register_fixture)
        self.check("NotificationsFunction", "SQS batch of two one-time codes: no batchItemFailures", lambda: expect_failures(self.fixture("NotificationsFunction", "sqs-events-otp.json"), []))
        self.check("NotificationsFunction", "SQS batch with a malformed event: only it is reported", lambda: expect_failures(self.fixture("NotificationsFunction", "sqs-events-malformed.json"), ["0e93d4b8-7c2a-45f1-b6e0-8a1f3c5d7e92"]))
        self.check("NotificationsApiFunction", "GET /v1/me/notification-settings with a foreign token: 401 problem+json", lambda: expect_problem(self.fixture("NotificationsApiFunction", "apigw-v2-get-notification-settings-expired-token.json"), 401))
        self.check("OutboxFunction", "scheduled event: sweep answers {relayed: n}", self.outbox_sweep)
        self.check("ApplicationsFunction", "GET /v1/services lists the catalogue", self.applications_services)
        self.check("DocumentsApiFunction", "GET /v1/documents without a token: 401 problem+json", lambda: expect_problem(self.fixture("DocumentsApiFunction", "apigw-v2-get-documents-unauthenticated.json"), 401))
        self.check("DocumentsUploadsFunction", "SQS batch with S3 test event + unknown object: no batchItemFailures", lambda: expect_failures(self.fixture("DocumentsUploadsFunction", "sqs-s3-notification.json"), []))
        self.check("DocumentsUploadsFunction", "SQS batch with a malformed notification: only it is reported", lambda: expect_failures(self.fixture("DocumentsUploadsFunction", "sqs-s3-notification-malformed.json"), ["5d7f1a3c-9e2b-4c68-b0d4-6a8e2f1c3b57"]))
        self.check("DocumentsPurgeFunction", "scheduled event: purge answers its report", self.purge)
        # Deliveries (issue 9, deliveries part).
        self.check("DeliveriesFunction", "scheduled event: a sweep over the agencies with a delivery_url answers its report", self.deliveries_sweep)
        self.check("DeliveriesApiFunction", "GET /health and GET /openapi.json (SPEC §2)", lambda: self.health_and_document("DeliveriesApiFunction"))
        self.check("DeliveriesApiFunction", "GET /v1/agency/mvd/deliveries without a token: 401 problem+json", lambda: expect_problem(self.fixture("DeliveriesApiFunction", "apigw-v2-get-agency-deliveries-unauthenticated.json"), 401))
        # OAuth (issue 9, oauth part)
        self.check("OAuthFunction", "GET /health answers {status: ok}; GET /openapi.json its own OpenAPI 3.1 document (SPEC §2)", lambda: self.health_and_document("OAuthFunction"))
        self.check("OAuthFunction", "POST /oauth2/token with a wrong Basic secret (fixture): 401 invalid_client, WWW-Authenticate: Basic, no-store", self.oauth_wrong_secret)
        self.check("OAuthFunction", "POST /oauth2/token as a seed agency (client_secret_basic, from CLIENTS_JSON): 200 Bearer token, scope agency", self.oauth_agency_token)
        Chain(self).run()

    def auth_jwks(self):
        response = self.fixture("AuthFunction", "apigw-v2-get-jwks.json")
        body = expect_status(response, 200)
        configured = [k["kid"] for k in json.loads(self.specs["AuthFunction"].env["JWT_SIGNING_KEYS"])["keys"]]
        published = [k.get("kid") for k in body.get("keys", [])]
        expect(published == configured, f"published kids {published}, configured {configured}")
        expect(all(k.get("kty") == "OKP" and k.get("crv") == "Ed25519" for k in body["keys"]), f"keys are not Ed25519 JWKs: {body}")

    def health_and_document(self, logical_id: str):
        health = expect_status(self.fixture(logical_id, "apigw-v2-get-health.json"), 200)
        expect(health == {"status": "ok"}, f"health answered {health}")
        document = expect_status(self.fixture(logical_id, "apigw-v2-get-openapi.json"), 200)
        expect(str(document.get("openapi", "")).startswith("3.1") and len(document.get("paths", {})) > 2, f"not an OpenAPI 3.1 document with routes: {str(document)[:300]}")

    def auth_register_fixture(self):
        response = self.fixture("AuthFunction", "apigw-v2-post-register.json")
        status = response.get("statusCode")
        if status == 202:
            body = json.loads(response["body"])
            expect(bool(body.get("flow_id")) and body.get("channel") == "sms", f"202 without flow_id/channel: {body}")
        else:
            expect_problem(response, status)

    def outbox_sweep(self):
        response = self.fixture("OutboxFunction", "schedule.json")
        expect(isinstance(response, dict) and isinstance(response.get("relayed"), int) and response["relayed"] >= 0, f"unexpected answer {response}")

    def applications_services(self):
        body = expect_status(self.fixture("ApplicationsFunction", "apigw-v2-get-services.json"), 200)
        items = body.get("items") if isinstance(body, dict) else None
        expect(isinstance(items, list), f"no items list: {str(body)[:300]}")

    def oauth_wrong_secret(self):
        response = self.fixture("OAuthFunction", "apigw-v2-post-oauth-token.json")
        body = expect_status(response, 401)
        headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
        expect(body.get("error") == "invalid_client" and "error_description" in body, f"not an RFC 6749 error: {body}")
        expect(headers.get("www-authenticate", "").startswith("Basic"), f"no Basic challenge: {headers}")
        expect(headers.get("cache-control") == "no-store" and headers.get("pragma") == "no-cache", f"cacheable: {headers}")

    def oauth_agency_token(self):
        seed = json.loads((ROOT / "infra" / "local" / "seed" / "clients.json").read_text())
        mvd = next(c for c in seed["clients"] if c["client_id"] == "mvd")
        event = json.loads((EVENTS / "apigw-v2-post-oauth-token.json").read_text())
        event["headers"]["authorization"] = "Basic " + base64.b64encode(f"mvd:{mvd['client_secret']}".encode()).decode()
        body = expect_status(self.call("OAuthFunction", event), 200)
        expect(body.get("token_type") == "Bearer" and body.get("expires_in") == 600 and body.get("scope") == "agency", f"unexpected token answer: {str(body)[:300]}")
        expect(str(body.get("access_token", "")).count(".") == 2, "access_token is not a JWT")

    def deliveries_sweep(self):
        response = self.fixture("DeliveriesFunction", "schedule.json")
        registry = json.loads(self.specs["DeliveriesFunction"].env.get("AGENCIES_JSON", '{"agencies": []}'))
        receiving = sum(1 for a in registry.get("agencies", []) if a.get("delivery_url"))
        expect(isinstance(response, dict) and response.get("agencies") == receiving and response.get("errors") == 0, f"unexpected answer {response} ({receiving} agencies take deliveries)")

    def purge(self):
        response = self.fixture("DocumentsPurgeFunction", "schedule.json")
        expect(isinstance(response, dict), f"unexpected answer {response}")


class Chain:
    """One citizen across the functions, connected through the emulator as AWS connects them."""

    def __init__(self, checks: Checks):
        self.c = checks
        self.phone = "+79" + "".join(random.choice("0123456789") for _ in range(9))
        self.ip = f"203.0.113.{random.randint(1, 254)}"
        self.template = json.loads((EVENTS / "apigw-v2-post-register.json").read_text())
        self.access_token = None

    def run(self) -> None:
        state = {}
        steps = [
            ("AuthFunction", "chain: register a random phone -> 202", lambda: state.update(flow=self.register())),
            ("NotificationsFunction", "chain: its auth.otp_issued event, from the real events queue, is delivered", lambda: state.update(code=self.deliver_code(state["flow"]))),
            ("AuthFunction", "chain: confirm with that code -> 201 with tokens", lambda: self.confirm(state["flow"], state["code"])),
            ("NotificationsApiFunction", "chain: GET /v1/me/notification-settings with the token -> 200", lambda: expect_status(self.http("NotificationsApiFunction", "GET", "/v1/me/notification-settings", "GET /v1/me/notification-settings"), 200)),
            ("ApplicationsFunction", "chain: GET /v1/applications with the token -> 200", lambda: expect_status(self.http("ApplicationsFunction", "GET", "/v1/applications", "ANY /v1/applications"), 200)),
            ("DocumentsApiFunction", "chain: POST /v1/documents -> 201 with a presigned PUT; the PUT lands in the bucket", lambda: state.update(doc=self.upload())),
            ("DocumentsUploadsFunction", "chain: the bucket's notification, from the real uploads queue, verifies it", lambda: self.verify(state["doc"])),
            ("DocumentsApiFunction", "chain: GET /v1/documents/{id} -> available with the upload's SHA-256", lambda: self.available(state["doc"])),
        ]
        broken = None
        for function, description, body in steps:
            if broken:
                # Every later step needs the earlier ones' results; report them, do not run them.
                self.c.results.record(function, description, f"not run: the chain broke at '{broken}'", 0.0)
            elif not self.c.check(function, description, body):
                broken = description

    # --- events ------------------------------------------------------------------------------

    def http(self, logical_id, method, path, route_key, body=None, query=""):
        event = json.loads(json.dumps(self.template))
        event["routeKey"] = route_key
        event["rawPath"] = path
        event["rawQueryString"] = query
        event["requestContext"]["http"]["method"] = method
        event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["sourceIp"] = self.ip
        event["requestContext"]["routeKey"] = route_key
        event["requestContext"]["requestId"] = base64.b64encode(os.urandom(10)).decode()
        event["requestContext"]["timeEpoch"] = int(time.time() * 1000)
        event["headers"]["x-forwarded-for"] = self.ip
        event["headers"].pop("x-request-id", None)
        event.pop("pathParameters", None)
        if body is None:
            event.pop("body", None)
            event["headers"].pop("content-type", None)
            event["headers"].pop("content-length", None)
        else:
            event["body"] = json.dumps(body, ensure_ascii=False)
            event["headers"]["content-length"] = str(len(event["body"].encode()))
        if self.access_token:
            event["headers"]["authorization"] = f"Bearer {self.access_token}"
        return self.c.call(logical_id, event)

    def register(self) -> str:
        response = self.http("AuthFunction", "POST", "/v1/auth/register", "POST /v1/auth/{proxy+}", {"phone": self.phone, "password": "Lunokhod-Tr@kt0r-7", "consents": {"terms": True, "personal_data": True}})
        return expect_status(response, 202)["flow_id"]

    def deliver_code(self, flow_id: str) -> str:
        queue_url = self.c.outputs["EventsQueueUrl"]
        message = receive_matching(self.c.sqs, queue_url, lambda body: body.get("type") == "auth.otp_issued" and body.get("data", {}).get("destination", {}).get("to") == self.phone)
        expect_failures(self.c.call("NotificationsFunction", sqs_event(self.c.sqs, queue_url, [message])), [])
        # Lambda's poller deletes the records the function did not report.
        self.c.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return json.loads(message["Body"])["data"]["code"]

    def confirm(self, flow_id: str, code: str) -> None:
        body = expect_status(self.http("AuthFunction", "POST", "/v1/auth/register/confirm", "POST /v1/auth/{proxy+}", {"flow_id": flow_id, "code": code}), 201)
        self.access_token = body["tokens"]["access_token"]

    def upload(self) -> dict:
        content = minimal_pdf("Lambda mode")
        slot = expect_status(self.http("DocumentsApiFunction", "POST", "/v1/documents", "ANY /v1/documents", {"type": "other", "purpose": "vault", "file_name": "lambda-mode.pdf", "content_type": "application/pdf", "size_bytes": len(content)}), 201)
        upload = slot["upload"]
        request = urllib.request.Request(upload["url"], data=content, method=upload.get("method", "PUT"), headers=upload.get("headers", {}))
        with urllib.request.urlopen(request, timeout=30) as response:
            expect(200 <= response.status < 300, f"PUT to the presigned URL: HTTP {response.status}")
        return {"id": slot["document_id"], "sha256": hashlib.sha256(content).hexdigest()}

    def verify(self, doc: dict) -> None:
        queue_url = self.c.outputs["UploadsQueueUrl"]
        message = receive_matching(self.c.sqs, queue_url, lambda body: any(doc["id"] in r.get("s3", {}).get("object", {}).get("key", "") for r in body.get("Records", [])))
        expect_failures(self.c.call("DocumentsUploadsFunction", sqs_event(self.c.sqs, queue_url, [message])), [])
        self.c.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def available(self, doc: dict) -> None:
        body = expect_status(self.http("DocumentsApiFunction", "GET", f"/v1/documents/{doc['id']}", "ANY /v1/documents/{proxy+}"), 200)
        expect(body.get("status") == "available", f"status {body.get('status')}: {body}")
        expect(body.get("sha256") in (None, doc["sha256"]), f"sha256 {body.get('sha256')} != {doc['sha256']}")


def receive_matching(sqs, queue_url: str, wanted, timeout: float = 20.0) -> dict:
    """The first message whose JSON body satisfies `wanted`; others become visible again at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=30, MessageSystemAttributeNames=["All"]).get("Messages", [])
        found = None
        for message in batch:
            try:
                matches = found is None and wanted(json.loads(message["Body"]))
            except ValueError:
                matches = False
            if matches:
                found = message
            else:
                sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        if found:
            return found
    # A consumer killed during a long poll (an e2e runner, say) can hold a message hidden for its visibility timeout.
    raise CheckFailed(f"no matching message on {queue_url.rsplit('/', 1)[-1]} within {timeout:.0f}s (is another consumer polling it?)")


def sqs_event(sqs, queue_url: str, messages: list) -> dict:
    """The event Lambda's SQS poller would build from received messages."""
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": arn.split(":")[3],
            }
            for m in messages
        ]
    }


# Lambda refuses a function whose variables (names and values, UTF-8) exceed 4 KB in total;
# the emulator does not check it.
LAMBDA_ENVIRONMENT_LIMIT = 4096


def environment_size(env: dict) -> int:
    return sum(len(k.encode()) + len(str(v).encode()) for k, v in env.items())


def environment_fits(env: dict) -> None:
    size = environment_size(env)
    largest = sorted(env, key=lambda k: len(str(env[k]).encode()), reverse=True)[:2]
    expect(size <= LAMBDA_ENVIRONMENT_LIMIT, f"{size} bytes (largest: {', '.join(largest)})")


def expect_status(response, status: int):
    expect(isinstance(response, dict) and "statusCode" in response, f"not an API Gateway v2 response: {str(response)[:300]}")
    body = decode_body(response)
    expect(response["statusCode"] == status, f"HTTP {response['statusCode']} (expected {status}): {str(body)[:400]}")
    return body


def expect_problem(response, status: int, code: str | None = None) -> None:
    body = expect_status(response, status)
    content_type = {k.lower(): v for k, v in response.get("headers", {}).items()}.get("content-type", "")
    expect(content_type.startswith("application/problem+json"), f"content-type {content_type!r}")
    expect(isinstance(body, dict) and body.get("status") == status and isinstance(body.get("code"), str), f"not a problem document: {body}")
    if code:
        expect(body["code"] == code, f"problem code {body['code']!r}, expected {code!r}")


def expect_failures(response, message_ids: list) -> None:
    expect(isinstance(response, dict) and "batchItemFailures" in response, f"not an SQS batch response: {response}")
    reported = sorted(f["itemIdentifier"] for f in response["batchItemFailures"])
    expect(reported == sorted(message_ids), f"batchItemFailures {reported}, expected {sorted(message_ids)}")


def decode_body(response: dict):
    raw = response.get("body") or ""
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8", "replace")
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw


def load_event(probe):
    return json.loads((EVENTS / probe).read_text()) if isinstance(probe, str) else probe


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF 1.4 with a correct cross-reference table (passes the upload sniffing)."""
    content = f"BT /F1 14 Tf 72 720 Td ({text}) Tj ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for index, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{index} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def tail_file(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
