"""`POST /oauth2/token` through Authlib (pinned in requirements.txt), an OAuth 2.0 client library
written by others, against the runner the contract step started (issue 9, oauth part).

With the seed clients (infra/local/seed/clients.json, dev-only plain secrets): `client_credentials`
with `client_secret_basic` (mvd) and `client_secret_post` (fns), the RFC 6749 errors Authlib
raises for a wrong secret and for the wrong method, and the token on the agency API when the
document declares it (own agency 200, another agency 404).
"""

import json
from pathlib import Path

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

SEED = Path(__file__).resolve().parents[1] / "local" / "seed" / "clients.json"


def check(base: str) -> list[str]:
    clients = {c["client_id"]: c for c in json.loads(SEED.read_text())["clients"]}
    url = f"{base}/oauth2/token"
    findings = []
    tokens = {}
    for client_id, method in (("mvd", "client_secret_basic"), ("fns", "client_secret_post")):
        client = clients[client_id]
        if client["token_endpoint_auth_method"] != method:
            findings.append(f"oauth: seed client {client_id} is not registered for {method}")
            continue
        session = OAuth2Session(client_id, client["client_secret"], token_endpoint_auth_method=method, scope="agency")
        try:
            token = session.fetch_token(url, grant_type="client_credentials")
        except (OAuthError, requests.RequestException) as error:
            findings.append(f"oauth: Authlib client_credentials with {method} for {client_id} failed: {error}")
            continue
        if token.get("token_type") != "Bearer" or token.get("expires_in") != 600 or token.get("scope") != "agency" or not token.get("expires_at"):
            findings.append(f"oauth: unexpected token answer for {client_id}: { {k: v for k, v in token.items() if k != 'access_token'} }")
        tokens[client_id] = session
    for description, session, expected in (
        ("a wrong secret", OAuth2Session("mvd", "not-the-secret", token_endpoint_auth_method="client_secret_basic"), "invalid_client"),
        ("the right secret by the wrong method", OAuth2Session("mvd", clients["mvd"]["client_secret"], token_endpoint_auth_method="client_secret_post"), "invalid_client"),
        ("a scope the client may not have", OAuth2Session("mvd", clients["mvd"]["client_secret"], token_endpoint_auth_method="client_secret_basic", scope="openid"), "invalid_scope"),
    ):
        try:
            session.fetch_token(url, grant_type="client_credentials")
            findings.append(f"oauth: {description} got a token")
        except OAuthError as error:
            if error.error != expected:
                findings.append(f"oauth: {description}: Authlib raised {error.error!r}, expected {expected!r}")
    document = requests.get(f"{base}/openapi.json", timeout=10).json()
    agency_api = "/v1/agency/{agency_id}/applications" in document["paths"]
    if agency_api and "mvd" in tokens:
        own = tokens["mvd"].get(f"{base}/v1/agency/mvd/applications", timeout=10).status_code
        other = tokens["mvd"].get(f"{base}/v1/agency/fns/applications", timeout=10).status_code
        if (own, other) != (200, 404):
            findings.append(f"oauth: mvd's token on the agency API: own {own}, another agency's {other} (expected 200, 404)")
    print(f"contract: Authlib client_credentials: {len(tokens)}/2 methods issued tokens; 3 refusals checked; agency API {'checked' if agency_api else 'not declared yet'}")
    return findings
