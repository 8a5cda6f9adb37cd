"""Data-parallel training steps equal one-device steps (tests/data_parallel_probe.py).

One SGD step of five small models — a classification, an angular-margin, an in-batch-mining
(batch-hard triplet), a CTC and a box loss — on two CPU devices against the same step on one
device: TensorFlow's `MirroredStrategy` on the TF job, `keras.distribution.DataParallel` on the
JAX job. The probe runs in its own process, since the two devices must exist before the
backend starts.
"""

from __future__ import annotations

from pathlib import Path

import keras
import pytest
from two_device_probe import run_two_device_probe

PROBE = Path(__file__).resolve().parents[1] / "data_parallel_probe.py"
PER_SAMPLE = ("classification", "margin", "ctc", "boxes")


@pytest.fixture(scope="module")
def report():
    return run_two_device_probe(PROBE)


def test_two_devices_really_split_the_batch(report):
    assert report["backend"] == keras.backend.backend() and report["devices"] == 2


@pytest.mark.parametrize("case", PER_SAMPLE)
def test_per_sample_losses_take_the_one_device_step(report, case):
    """The reduction is right: each replica's mean scaled by 1/R, the gradients summed."""
    row = report["cases"][case]
    assert row["step_size"] > 1e-2  # the step is not trivially zero
    assert row["step_vs_global"] < 1e-5 * max(1.0, row["step_size"])
    assert row["loss_vs_global"] < 1e-5


def test_in_batch_mining_sees_what_the_engine_documents(report):
    """TensorFlow mines within each replica's half of the batch (the step is the mean of the
    two half-batch steps); JAX's DataParallel runs one program over the whole batch."""
    row = report["cases"]["metric"]
    assert row["halves_vs_global"] > 1e-2  # the two answers differ, so the test can tell
    if keras.backend.backend() == "tensorflow":
        assert row["step_vs_halves"] < 1e-5 and row["loss_vs_halves"] < 1e-5
    else:
        assert row["step_vs_global"] < 1e-5 and row["loss_vs_global"] < 1e-5
