#!/usr/bin/env python3
"""The contract step of infra/test.sh: the runner's `/openapi.json` checked from outside.

    python infra/contract/check.py --runner target/debug/local-runner --out .run/test-logs/contract

1. starts the local runner (embedded, throw-away data dir) on a free loopback port;
2. validates `/openapi.json` as OpenAPI 3.1 (openapi-spec-validator) and counts its operations,
   checking each has a 2xx/3xx answer and that every 4xx answer is problem+json with its codes;
3. registers a citizen through the API and the dev outbox, and runs schemathesis against every
   operation with that citizen's token: no 5xx and no answer that violates the document;
4. generates a TypeScript client with openapi-typescript and type-checks a program against it.

Prints one line per figure; exits non-zero on any finding.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
METHODS = ("get", "put", "post", "delete", "patch")
# Operations that end the test citizen's session or need secrets the tester cannot have; each is
# covered by the Rust journeys instead.
EXCLUDED = ["/v1/auth/logout"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runner", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--examples", type=int, default=int(os.environ.get("CONTRACT_MAX_EXAMPLES", "20")))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "BIND_ADDR": f"127.0.0.1:{port}", "DATA_DIR": data_dir, "BACKEND": "embedded", "RUST_LOG": "warn", "CITIZEN_WRITES_PER_MINUTE": "1000000", "CITIZEN_DRAFTS_PER_HOUR": "1000000"}
        env.pop("AWS_ENDPOINT_URL", None)
        log = (out / "runner.log").open("w")
        runner = subprocess.Popen([args.runner], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for(f"{base}/health")
            findings = check(base, out, args.examples)
        finally:
            runner.terminate()
            try:
                runner.wait(timeout=10)
            except subprocess.TimeoutExpired:
                runner.kill()
    for finding in findings:
        print(f"contract: {finding}")
    return 1 if findings else 0


def check(base: str, out: Path, examples: int) -> list[str]:
    findings = []
    document = json.loads(get(f"{base}/openapi.json"))
    (out / "openapi.json").write_text(json.dumps(document, ensure_ascii=False, indent=1))
    from openapi_spec_validator import validate

    validate(document)
    operations = [(method.upper(), path, op) for path, item in document["paths"].items() for method, op in item.items() if method in METHODS]
    print(f"contract: /openapi.json is valid OpenAPI {document['openapi']} with {len(operations)} operations on {len(document['paths'])} paths")
    for method, path, op in operations:
        codes = op.get("responses", {})
        if not any(code.startswith(("2", "3")) for code in codes):
            findings.append(f"{method} {path} documents no success answer")
        # OAuth endpoints answer RFC 6749 §5.2 JSON errors instead of problem+json (SPEC §8).
        error_type = "application/json" if path.startswith("/oauth2/") else "application/problem+json"
        for code, response in codes.items():
            if code.startswith("4") and error_type not in response.get("content", {}):
                findings.append(f"{method} {path} documents {code} without {error_type}")
        if not op.get("operationId"):
            findings.append(f"{method} {path} has no operationId")

    # OAuth (issue 9): Authlib, a client library written by others, gets agency tokens.
    import oauth_clients

    findings += oauth_clients.check(base)
    token = citizen_token(base)
    findings += schemathesis(base, out, token, examples)
    findings += typescript(out)
    return findings


def citizen_token(base: str) -> str:
    email = f"contract-{int(time.time())}@example.ru"
    started = post(f"{base}/v1/auth/register", {"email": email, "password": "Ct9#vQx!mZ2p", "consents": {"terms": True, "personal_data": True}})
    # The code travels through the queue to the notifications consumer: wait for it.
    deadline = time.time() + 30
    while not (items := json.loads(get(f"{base}/dev/outbox?to={urllib.parse.quote(email)}"))["items"]):
        if time.time() > deadline:
            raise SystemExit("contract: no registration code reached the dev outbox in 30 s")
        time.sleep(0.2)
    code = next(word.strip(".,") for word in items[0]["body"].split() if word.strip(".,").isdigit() and len(word.strip(".,")) == 6)
    confirmed = post(f"{base}/v1/auth/register/confirm", {"flow_id": started["flow_id"], "code": code})
    return confirmed["tokens"]["access_token"]


def schemathesis(base: str, out: Path, token: str, examples: int) -> list[str]:
    st = Path(sys.executable).with_name("st")
    report = out / "schemathesis.json"
    command = [
        str(st), "run", str(out / "openapi.json"), "--url", base,
        "--header", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
        "--max-examples", str(examples), "--seed", "20261202", "--workers", "1",
        "--phases", "examples,coverage,fuzzing",
        "--generation-database", "none", "--no-color",
        "--report", "json", "--report-json-path", str(report),
    ]
    for path in EXCLUDED:
        command += ["--exclude-path", path]
    with (out / "schemathesis.log").open("w") as log:
        status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
    summary = summarize(report)
    log_lines = (out / "schemathesis.log").read_text().splitlines()
    cases = next((log_lines[i + 1].strip() for i, line in enumerate(log_lines[:-1]) if line.strip() == "Test cases:"), "?")
    print(f"contract: schemathesis test cases: {cases}; {summary}")
    if status != 0:
        tail = (out / "schemathesis.log").read_text().splitlines()[-40:]
        print("\n".join(tail))
        return [f"schemathesis found failures (exit {status}); see {out / 'schemathesis.log'}"]
    return []


def summarize(report: Path) -> str:
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return "(no JSON report)"
    return json.dumps({key: data[key] for key in data if key in ("operations", "requests", "failures", "errors", "elapsed", "summary", "statistic")}, ensure_ascii=False)[:600]


def typescript(out: Path) -> list[str]:
    build = HERE / "build"
    build.mkdir(exist_ok=True)
    shutil.copy(out / "openapi.json", build / "openapi.json")
    npm = shutil.which("npm")
    if npm is None:
        return ["npm not found: the TypeScript client check needs Node with npm"]
    for step in (["ci", "--no-audit", "--no-fund"], ["run", "generate"], ["run", "typecheck"]):
        done = subprocess.run([npm, *step], cwd=HERE, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-3000:])
            return [f"npm {' '.join(step)} failed"]
    lines = (build / "api.d.ts").read_text().count("\n")
    print(f"contract: openapi-typescript generated {lines} lines of types; client.ts type-checks against them")
    return []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while True:
        try:
            get(url)
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read().decode())


if __name__ == "__main__":
    sys.exit(main())
