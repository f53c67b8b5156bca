#!/usr/bin/env bash
# Start, stop or locate a local moto server (AWS emulator: DynamoDB, S3, SQS, SNS, SES).
#
#   bash infra/moto.sh start   # start on a free loopback port (or reuse a live one), print its URL
#   bash infra/moto.sh url     # print the URL of the running server; exit 1 when none
#   bash infra/moto.sh stop    # stop the server this run dir started
#
# Environment:
#   MOTO_RUN_DIR  where pid/port/log files live (default: <repo>/.run/moto). Give each
#                 concurrent user its own dir; infra/test.sh uses a fresh one per run.
#   MOTO_PYTHON   interpreter that has moto[server] (default: the project venv, else python3).
#   MOTO_PORT     fixed port instead of a free one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${MOTO_RUN_DIR:-$ROOT/.run/moto}"
PID_FILE="$RUN_DIR/moto.pid"
PORT_FILE="$RUN_DIR/moto.port"
LOG_FILE="$RUN_DIR/moto.log"
HOST=127.0.0.1
START_TIMEOUT_SECONDS=60

main() {
  case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) print_url ;;
    *)
      echo "usage: $0 start|stop|url" >&2
      exit 2
      ;;
  esac
}

start() {
  if is_running && answers "$(cat "$PORT_FILE")"; then
    print_url
    return 0
  fi
  mkdir -p "$RUN_DIR"
  rm -f "$PID_FILE" "$PORT_FILE"
  local py _
  py="$(moto_python)"
  # Another process may grab a free port before moto binds it; then try a fresh one.
  for _ in 1 2 3; do
    if launch "$py" "${MOTO_PORT:-$(free_port "$py")}"; then
      print_url
      return 0
    fi
    [[ -n "${MOTO_PORT:-}" ]] && break
  done
  return 1
}

launch() {
  local py="$1" port="$2" pid
  # Otherwise another server on that port would pass the readiness check below.
  if answers "$port"; then
    echo "port $port is already in use" >&2
    return 1
  fi
  # nohup execs python in place, so $! is moto's own pid.
  nohup "$py" -m moto.server -H "$HOST" -p "$port" >"$LOG_FILE" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"
  echo "$port" >"$PORT_FILE"

  local deadline=$((SECONDS + START_TIMEOUT_SECONDS))
  until answers "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "moto exited during start-up on port $port; last lines of $LOG_FILE:" >&2
      tail -n 5 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE" "$PORT_FILE"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "moto did not answer on port $port within ${START_TIMEOUT_SECONDS}s (log: $LOG_FILE)" >&2
      stop >/dev/null
      return 1
    fi
    sleep 0.2
  done
}

stop() {
  if [[ -f "$PID_FILE" ]]; then
    local pid
    pid="$(cat "$PID_FILE")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      # Werkzeug exits promptly on SIGTERM; escalate only if it hangs.
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
  fi
  rm -f "$PID_FILE" "$PORT_FILE"
  echo "moto stopped"
}

print_url() {
  if ! is_running; then
    echo "moto is not running (run dir: $RUN_DIR)" >&2
    return 1
  fi
  echo "http://$HOST:$(cat "$PORT_FILE")"
}

is_running() {
  [[ -f "$PID_FILE" && -f "$PORT_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

# moto's dashboard answers without any AWS signature. (Not /moto-api/data.json: it serializes
# the whole state, slowly, and fails with a 500 once the state holds Lambda functions.)
answers() {
  curl -fsS --max-time 2 -o /dev/null "http://$HOST:$1/moto-api/" 2>/dev/null
}

moto_python() {
  local candidates=()
  [[ -n "${MOTO_PYTHON:-}" ]] && candidates+=("$MOTO_PYTHON")
  [[ -n "${GOSUSLUGI_VENV:-}" ]] && candidates+=("$GOSUSLUGI_VENV/bin/python")
  candidates+=("$HOME/.cache/gosuslugi/venv/bin/python" "$ROOT/.venv/bin/python" python3)
  local py
  for py in "${candidates[@]}"; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import moto.server' 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  echo "no python with moto[server] found; run 'bash infra/test.sh tools' first" >&2
  return 1
}

# The kernel picks an unused port; moto binds it a moment later.
free_port() {
  "$1" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

main "$@"
