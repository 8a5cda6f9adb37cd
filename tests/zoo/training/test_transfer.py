"""`--init-from` and `--freeze-backbone`: weights copied layer by layer where shapes agree,
a frozen backbone that really does not move, and refusals in one line."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest

import zoo
from zoo import train
from zoo.charset import Charset
from zoo.training import ConfigError, TrainConfig, run
from zoo.training.transfer import head_layers, transfer_weights

SMALL = dict(dataset="fashion_mnist", train_limit=256, test_limit=64, batch_size=64,
             validation_split=0.05, verbose=0)


def test_weights_move_where_shapes_agree_and_nowhere_else():
    source = zoo.create_model("lenet5", num_classes=10)
    target = zoo.create_model("lenet5", num_classes=4)  # another number of classes
    fresh_output = [w.copy() for w in target.layers[-1].get_weights()]
    report = transfer_weights(source, target)
    named = {layer.name: layer for layer in target.layers if layer.weights}
    output = target.layers[-1].name
    assert set(report["copied"]) == set(named) - {output}
    assert "shapes differ" in report["kept"][output]
    for name in report["copied"]:
        for ours, theirs in zip(named[name].get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    for ours, before in zip(target.layers[-1].get_weights(), fresh_output):
        np.testing.assert_array_equal(ours, before)  # the new head keeps its initialisation
    assert head_layers(target, report) == [output]


def test_a_text_model_with_another_charset_keeps_its_trunk():
    source = zoo.create_model("crnn_small")  # 36 characters
    target = zoo.create_model("crnn_small", charset=Charset("0123456789"))
    report = transfer_weights(source, target)
    assert len(report["kept"]) == 1  # only the per-frame output layer starts fresh
    (kept, why), = report["kept"].items()
    assert "shapes differ" in why and kept not in report["copied"]
    assert {"conv1", "bilstm1"} <= set(report["copied"])


def epochs_in(path):
    with open(path, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_init_from_a_run_then_train_the_head_first(tmp_path):
    run(TrainConfig(model="lenet5", epochs=1, out=str(tmp_path / "source"), **SMALL))
    source = keras.saving.load_model(tmp_path / "source" / "model.keras")
    metrics = run(TrainConfig(model="lenet5", epochs=2, out=str(tmp_path / "tuned"),
                              init_from=str(tmp_path / "source"), freeze_backbone=1, **SMALL))
    assert metrics["init"]["kept"] == {} and "c1" in metrics["init"]["copied"]
    output = metrics["frozen_backbone"]["head"]
    assert output == [source.layers[-1].name]
    after_head = keras.saving.load_model(tmp_path / "tuned" / "model_head.keras")
    final = keras.saving.load_model(tmp_path / "tuned" / "model.keras")
    for layer in source.layers:
        if not layer.weights:
            continue
        frozen = after_head.get_layer(layer.name).get_weights()[0]
        if layer.name in output:  # trained in epoch 1
            assert not np.array_equal(frozen, layer.get_weights()[0])
        else:  # untouched in epoch 1, trained in epoch 2
            np.testing.assert_array_equal(frozen, layer.get_weights()[0])
            assert not np.array_equal(final.get_layer(layer.name).get_weights()[0], frozen)
    assert epochs_in(tmp_path / "tuned" / "history.csv") == [0, 1]


def test_bad_init_and_freeze_are_refused(tmp_path, capsys):
    assert train.main(["--model", "lenet5", "--init-from", str(tmp_path / "nothing.keras"),
                       "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing.keras: no such file" in err[0]
    assert train.main(["--model", "lenet5", "--init-from", str(tmp_path),
                       "--out", str(tmp_path / "run")]) == 2
    assert "holds no model.keras" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="freeze_backbone must be"):
        run(TrainConfig(model="lenet5", epochs=2, freeze_backbone=2, out=str(tmp_path / "x")))
