#!/usr/bin/env python3
"""Checks template.yaml's HTTP API routes against the routes the functions declare.

    cargo run -q -p local-runner -- --routes > routes.json
    python3 infra/lambda/check_routes.py --routes routes.json

The routes come from each function crate's one declaration (its `OpenApiRouter`, the same one
that builds its router and its OpenAPI document), as the local runner prints them.
For every (method, path) a function crate declares,
the route API Gateway would select (its precedence: literal segments over `{param}` over a
greedy `{proxy+}`, a named method over ANY) must belong to a function built from that crate.
Every template route must also carry at least one declared route, so no route leads only to
the function's 404. Exit status 1 on any finding.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import template_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("--routes", required=True, help="JSON from `local-runner --routes`: {crate: [[METHOD, path], ...]}")
    args = parser.parse_args()
    declared_by_crate = {name: [tuple(route) for route in routes] for name, routes in json.loads(Path(args.routes).read_text()).items()}

    functions = template_model.rust_functions(Path(args.template))
    template_routes = [(method, path, f) for f in functions for method, path in f.routes]
    served_binaries = sorted({f.binary for f in functions if f.routes})
    findings = []
    used = set()
    checked = 0
    for binary in served_binaries:
        declared = declared_by_crate.get(binary, [])
        if not declared:
            findings.append(f"functions/{binary} declares no routes")
        for method, path in declared:
            checked += 1
            chosen = select_route(method, sample_path(path), template_routes)
            if chosen is None:
                findings.append(f"{method} {path} ({binary}) has no route in the template")
                continue
            used.add((chosen[0], chosen[1], chosen[2].logical_id))
            if chosen[2].binary != binary:
                findings.append(f"{method} {path} ({binary}) is routed to {chosen[2].logical_id} ({chosen[2].binary}) by {chosen[0]} {chosen[1]}")
    for method, path, function in template_routes:
        if (method, path, function.logical_id) not in used:
            findings.append(f"template route {method} {path} -> {function.logical_id} carries none of its crate's declared routes")

    for finding in findings:
        print(f"route check: {finding}")
    if findings:
        return 1
    print(f"route check: {checked} declared routes reach the right function through {len(template_routes)} template routes")
    return 0


def sample_path(path: str) -> list[str]:
    """A concrete request path for a declared route (`{id}` becomes a value)."""
    return [("sample" if segment.startswith("{") else segment) for segment in path.strip("/").split("/")]


def select_route(method: str, segments: list[str], routes):
    """The template route API Gateway's HTTP API would pick for this request, or None."""
    candidates = []
    for route_method, route_path, function in routes:
        if route_method not in (method, "ANY"):
            continue
        rank = match(route_path, segments)
        if rank is not None:
            candidates.append(((*rank, route_method == "ANY"), (route_method, route_path, function)))
    if not candidates:
        return None
    candidates.sort(key=lambda candidate: candidate[0])
    return candidates[0][1]


def match(route_path: str, segments: list[str]):
    """(greedy?, count of {param} segments) when `route_path` matches, else None; lower is more specific."""
    pattern = route_path.strip("/").split("/")
    params = 0
    for index, part in enumerate(pattern):
        if part.endswith("+}"):
            # A greedy variable must be last and match at least one segment.
            return (True, params) if index == len(pattern) - 1 and len(segments) > index else None
        if index >= len(segments):
            return None
        if part.startswith("{"):
            params += 1
        elif part != segments[index]:
            return None
    return (False, params) if len(pattern) == len(segments) else None


if __name__ == "__main__":
    sys.exit(main())
