"""Helpers the Lambda scripts (build.py, check.py) share; no third-party imports."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cargo_target_dir() -> Path:
    """Where cargo puts the builds: $CARGO_TARGET_DIR, else what `cargo metadata` says."""
    configured = os.environ.get("CARGO_TARGET_DIR")
    if configured:
        return Path(configured)
    metadata = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"], cwd=ROOT, check=True, capture_output=True, text=True)
    return Path(json.loads(metadata.stdout)["target_directory"])
