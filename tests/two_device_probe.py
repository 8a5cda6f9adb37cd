"""Start a probe script on two CPU devices in a fresh process and return its report.

The devices must exist before the backend starts, so a probe cannot run in the test process:
TensorFlow's probes split the CPU into two logical devices themselves; for JAX the caller's
environment gets `--xla_force_host_platform_device_count=2`. A probe prints one line
`REPORT <json>`, which is returned as a dict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras


def run_two_device_probe(probe: Path, *args: str, timeout: int = 600) -> dict:
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    if keras.backend.backend() == "jax":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            " --xla_force_host_platform_device_count=2").strip()
    done = subprocess.run([sys.executable, str(probe), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("REPORT "):])
