"""`zoo.train --distribute`: refused where it cannot work, and a run on two CPU devices
(mirrored on TensorFlow, data-parallel on JAX) trains exactly as one device does
(tests/distributed_run_probe.py, in its own process)."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest
from two_device_probe import run_two_device_probe

from zoo import train
from zoo.training import resolve
from zoo.training.cli import parse_args

PROBE = Path(__file__).resolve().parents[2] / "distributed_run_probe.py"


ENGINE = {"tensorflow": "mirrored", "jax": "data-parallel"}[keras.backend.backend()]
OTHER = {"tensorflow": "data-parallel", "jax": "mirrored"}[keras.backend.backend()]


def test_the_command_line_sets_the_engine():
    assert parse_args(["--distribute", ENGINE]).distribute == ENGINE
    with pytest.raises(SystemExit):
        parse_args(["--distribute", "multiworker"])


def test_an_engine_of_another_backend_is_refused_with_the_right_one_named():
    backend = keras.backend.backend()
    with pytest.raises(train.ConfigError, match=f"needs the .* backend, this is {backend}; "
                                                f"use --distribute {ENGINE}"):
        train.TrainConfig(distribute=OTHER).validate()
    with pytest.raises(train.ConfigError, match="distribute must be one of"):
        train.TrainConfig(distribute="horovod").validate()


def test_the_detector_is_refused():
    with pytest.raises(train.ConfigError, match="--distribute does not apply to detection"):
        resolve(train.TrainConfig(model="detector", distribute=ENGINE))


@pytest.mark.tensorflow
def test_the_memory_queue_is_refused_under_mirrored():
    with pytest.raises(train.ConfigError, match="each overwrite"):
        resolve(train.TrainConfig(model="lenet_embed", loss="xbm", distribute="mirrored"))


def test_a_run_on_two_devices_trains_as_one_device_does(tmp_path):
    report = run_two_device_probe(PROBE, str(tmp_path), timeout=900)
    assert report["one"]["distribution"] == {"strategy": None, "replicas": 1}
    assert report["two"]["distribution"] == {"strategy": ENGINE, "replicas": 2}
    assert report["largest_weight"] > 0.05
    assert report["largest_weight_difference"] < 1e-5
    assert abs(report["one"]["test_loss"] - report["two"]["test_loss"]) < 1e-5
