"""`zoo.train --distribute`: refused where it cannot work, and a mirrored run on two CPU
devices trains exactly as one device does (tests/mirrored_run_probe.py, own process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zoo import train
from zoo.training import resolve
from zoo.training.cli import parse_args

PROBE = Path(__file__).resolve().parents[2] / "mirrored_run_probe.py"


def test_the_command_line_sets_the_engine():
    assert parse_args(["--distribute", "mirrored"]).distribute == "mirrored"
    with pytest.raises(SystemExit):
        parse_args(["--distribute", "multiworker"])


def test_an_engine_of_another_backend_is_refused_with_the_right_one_named():
    with pytest.raises(train.ConfigError, match="needs the jax backend.*use --distribute "
                                                "mirrored"):
        train.TrainConfig(distribute="data-parallel").validate()
    with pytest.raises(train.ConfigError, match="distribute must be one of"):
        train.TrainConfig(distribute="horovod").validate()


def test_the_detector_and_the_memory_queue_are_refused():
    with pytest.raises(train.ConfigError, match="--distribute does not apply to detection"):
        resolve(train.TrainConfig(model="detector", distribute="mirrored"))
    with pytest.raises(train.ConfigError, match="each overwrite"):
        resolve(train.TrainConfig(model="lenet_embed", loss="xbm", distribute="mirrored"))


@pytest.mark.slow
def test_a_mirrored_run_on_two_devices_trains_as_one_device_does(tmp_path):
    done = subprocess.run([sys.executable, str(PROBE), str(tmp_path)], capture_output=True,
                          text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT "):])
    assert report["one"]["distribution"] == {"strategy": None, "replicas": 1}
    assert report["two"]["distribution"] == {"strategy": "mirrored", "replicas": 2}
    assert report["largest_weight"] > 0.05
    assert report["largest_weight_difference"] < 1e-5
    assert abs(report["one"]["test_loss"] - report["two"]["test_loss"]) < 1e-5
