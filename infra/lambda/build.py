#!/usr/bin/env python3
"""Builds every Lambda function of template.yaml (and the hello-world baseline), runs
`sam build`, zips each bootstrap as Lambda receives it and prints the sizes.

    python3 infra/lambda/build.py            # from the repository root, inside the tools venv

Why two steps: `sam build` runs one `cargo lambda build --release --bin X` per binary, one
after the other, so each LTO link has the machine alone while the other core idles. Building
all binaries in ONE cargo invocation first lets cargo link them in parallel; the per-binary
builds SAM then runs find everything fresh and only copy. Both use the same CARGO_TARGET_DIR,
flags and (unified, workspace-wide) features, so nothing is compiled twice.

Outputs: .aws-sam/build/ (sam build; its template.yaml names each function's directory),
.aws-sam/zips/<Function>.zip and
hello-lambda.zip, and .aws-sam/zips/sizes.json. Wall times go to .aws-sam/zips/timings.json.
"""

import argparse
import hashlib
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import template_model  # noqa: E402
from common import cargo_target_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BASELINE_BINARY = "hello-lambda"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("--skip-sam", action="store_true", help="only the cargo build and the zips of target/lambda")
    args = parser.parse_args()

    functions = template_model.rust_functions(Path(args.template))
    binaries = sorted({f.binary for f in functions}) + [BASELINE_BINARY]
    target_dir = cargo_target_dir()
    timings = {}

    started = time.monotonic()
    run(["cargo", "lambda", "build", "--release", *[flag for b in binaries for flag in ("--bin", b)]])
    timings["cargo_lambda_build_seconds"] = round(time.monotonic() - started, 1)

    if not args.skip_sam:
        started = time.monotonic()
        # samconfig.toml turns on beta features (rust-cargolambda) for `sam build`.
        run(["sam", "build", "--template-file", args.template])
        timings["sam_build_seconds"] = round(time.monotonic() - started, 1)

    zips_dir = ROOT / ".aws-sam" / "zips"
    zips_dir.mkdir(parents=True, exist_ok=True)
    code_dirs = {} if args.skip_sam else template_model.built_code_dirs(ROOT / ".aws-sam" / "build")
    rows = []
    for function in functions:
        built = target_dir / "lambda" / function.binary / "bootstrap"
        bootstrap = built if args.skip_sam else code_dirs[function.logical_id] / "bootstrap"
        if not bootstrap.is_file():
            print(f"missing {bootstrap}", file=sys.stderr)
            return 1
        if sha256(bootstrap) != sha256(built):
            # SAM rebuilt the binary differently from the prebuild; the timing claim above would be false.
            print(f"warning: {bootstrap} differs from {built}", file=sys.stderr)
        rows.append(package(function.logical_id, function.binary, bootstrap, zips_dir))
    rows.append(package(BASELINE_BINARY, BASELINE_BINARY, target_dir / "lambda" / BASELINE_BINARY / "bootstrap", zips_dir))

    (zips_dir / "sizes.json").write_text(json.dumps(rows, indent=2) + "\n")
    (zips_dir / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print_table(rows)
    print("build wall time: " + ", ".join(f"{k.removesuffix('_seconds')} {v}s" for k, v in timings.items()))
    return 0


def run(command: list[str]) -> None:
    print("+ " + " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def package(name: str, binary: str, bootstrap: Path, zips_dir: Path) -> dict:
    """Zips `bootstrap` at the archive root, executable, deflated at zlib's default level like
    `sam package`: what Lambda receives and unpacks."""
    archive = zips_dir / f"{name}.zip"
    info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr(info, bootstrap.read_bytes())
    return {
        "function": name,
        "binary": binary,
        "bootstrap": shown(bootstrap),
        "bootstrap_bytes": bootstrap.stat().st_size,
        "zip": shown(archive),
        "zip_bytes": archive.stat().st_size,
        "zip_sha256": sha256(archive),
    }


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def print_table(rows: list[dict]) -> None:
    print()
    print(f"{'function':<26} {'binary':<14} {'bootstrap MiB':>13} {'zip MiB':>8}")
    for row in rows:
        print(f"{row['function']:<26} {row['binary']:<14} {row['bootstrap_bytes'] / 2**20:>13.2f} {row['zip_bytes'] / 2**20:>8.2f}")


if __name__ == "__main__":
    sys.exit(main())
