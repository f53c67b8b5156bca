# Shared by infra/test.sh and infra/deploy-local.sh; sourced, not run. Expects ROOT (the
# repository root).

# Where the pinned tools and the build live: sets VENV (exported as GOSUSLUGI_VENV, its bin
# first on PATH) and, when unset and a user cache exists, exports CARGO_TARGET_DIR there, so
# every script and every run shares one venv and one target directory.
use_tool_dirs() {
  if [[ -n "${GOSUSLUGI_VENV:-}" ]]; then
    VENV="$GOSUSLUGI_VENV"
  elif [[ -d "$HOME/.cache" ]]; then
    VENV="$HOME/.cache/gosuslugi/venv"
  else
    VENV="$ROOT/.venv"
  fi
  export GOSUSLUGI_VENV="$VENV" PATH="$VENV/bin:$PATH"
  if [[ -z "${CARGO_TARGET_DIR:-}" && -d "$HOME/.cache" ]]; then
    export CARGO_TARGET_DIR="$HOME/.cache/gosuslugi/target"
  fi
}
