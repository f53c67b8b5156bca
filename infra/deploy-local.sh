#!/usr/bin/env bash
# Deploy template.yaml onto a local AWS emulator: the one command.
#
#   bash infra/deploy-local.sh             # build, start moto (or use $AWS_ENDPOINT_URL), deploy, print outputs
#   bash infra/deploy-local.sh --no-build  # reuse the last build (.aws-sam)
#   bash infra/deploy-local.sh --serve     # then run the local runner against the stack (Ctrl-C stops it)
#
# What it does: installs the pinned tools (infra/test.sh tools), builds every function
# (infra/lambda/build.py: one release `cargo lambda build`, then `sam build`, zips), starts a
# moto server under .run/moto unless AWS_ENDPOINT_URL names a running emulator (moto or
# LocalStack), and runs infra/deploy-local.py: SAM -> CloudFormation (aws-sam-translator),
# code zips uploaded to the emulator's S3, stack created, outputs written to
# .run/local-stack/outputs.json and the runner's environment to .run/local-stack/runner.env.
# The emulator runs no Lambdas and has no API Gateway v2: the local runner serves the API with
# BACKEND=aws and polls the stack's queues (--serve starts it).
#
# Environment: AWS_ENDPOINT_URL (an emulator already running), STACK_NAME (gosuslugi-local),
# BIND_ADDR (runner address, 127.0.0.1:3000). moto keeps its state in memory: it stays up
# after this script; stop it with `bash infra/moto.sh stop`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

build=1
serve=0
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --serve) serve=1 ;;
    -h | --help)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *)
      echo "unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

echo "checking the pinned tools (the first run installs them into a venv: a few minutes)"
bash "$ROOT/infra/test.sh" tools >/dev/null || {
  echo "installing the pinned tools failed; run 'bash infra/test.sh tools' to see why" >&2
  exit 1
}
# shellcheck source=infra/lib.sh
source "$ROOT/infra/lib.sh"
use_tool_dirs
# Only the emulator is ever addressed; never a real account.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"
export AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0

if ((build)); then
  "$VENV/bin/python" infra/lambda/build.py
fi

if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
  AWS_ENDPOINT_URL="$(MOTO_RUN_DIR="$ROOT/.run/moto" bash infra/moto.sh start)"
  echo "moto at $AWS_ENDPOINT_URL (stop: bash infra/moto.sh stop)"
fi
export AWS_ENDPOINT_URL

bind="${BIND_ADDR:-127.0.0.1:3000}"
"$VENV/bin/python" infra/deploy-local.py \
  --stack-name "${STACK_NAME:-gosuslugi-local}" \
  --out "$ROOT/.run/local-stack" \
  --api-url "http://$bind"

if ((serve)); then
  set -a
  # shellcheck disable=SC1091
  . "$ROOT/.run/local-stack/runner.env"
  set +a
  export BIND_ADDR="$bind"
  exec cargo run -p local-runner
fi
echo
echo "run the system against it:"
echo "  set -a; . .run/local-stack/runner.env; set +a; cargo run -p local-runner"
echo "  E2E_STACK_OUTPUTS=$ROOT/.run/local-stack/outputs.json AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL cargo nextest run -p e2e"
echo "  AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL $VENV/bin/python infra/lambda/check.py"
