"""zoo.training.tasks.text: the CTC text-recognition run behind `python -m zoo.train --model crnn_small
--dataset synth_text --loss ctc`, on tiny synthetic sets and a fixture folder of crops.

References written here: a NumPy best-path decoder and a memoised edit distance (other
formulations than the ones under test), hand-counted CTC frame needs and split sizes.
"""

from __future__ import annotations

import csv
import json
import re

import keras
import numpy as np
import pytest
from PIL import Image

from zoo import train
from zoo.evaluation import plots
from zoo.training import resolve
from zoo.training.tasks import text as text_train
from zoo.charset import Charset
from zoo.models.crnn import charset_of
from zoo.datasets import text as T
from text_references import reference_edit_distance

TINY = dict(model="crnn_small", dataset="synth_text", loss="ctc", epochs=2, batch_size=8,
            train_limit=16, test_limit=12, validation_split=0.5, verbose=0)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Cached synthetic sets go to a temporary folder, not the user's cache."""
    monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def reference_greedy_texts(logits, characters):
    texts = []
    for frames in np.asarray(logits):
        path = frames.argmax(-1)
        ids = [k for j, k in enumerate(path) if k != 0 and (j == 0 or k != path[j - 1])]
        texts.append("".join(characters[k - 1] for k in ids))
    return texts


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------- the synthetic run

@pytest.mark.slow
def test_tiny_synthetic_run_writes_every_file_and_sane_metrics(tmp_path):
    import tensorflow as tf

    metrics = train.run(train.TrainConfig(out=str(tmp_path), **TINY))
    for name in ("model.keras", "history.csv", "metrics.json", "curves.png", "gallery.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "recognizer" / "saved_model.pb").exists()
    assert not (tmp_path / "backup").exists()
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["test_cer"] == metrics["test_cer"]

    rows = read_rows(tmp_path / "history.csv")
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert {"loss", "cer", "sequence_accuracy", "ctc_infeasible", "val_loss", "val_cer",
            "val_sequence_accuracy"} <= set(rows[0])
    assert all(float(row["ctc_infeasible"]) == 0 for row in rows)  # 31 frames >= 21 needed

    # the test metrics, recomputed from the saved model with references written here
    model = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert charset_of(model) == Charset()  # the default 36 characters
    assert model.count_params() == stored["parameters"] == 526_245
    test = T.synthetic_text_set(12, seed=(0, text_train.TEST_STREAM))
    logits = model.predict(test.x, verbose=0)
    read = reference_greedy_texts(logits, Charset().characters)
    edits = sum(reference_edit_distance(t, r) for t, r in zip(test.texts, read))
    assert stored["test_cer"] == pytest.approx(edits / sum(len(t) for t in test.texts))
    assert stored["test_sequence_accuracy"] == pytest.approx(
        np.mean([t == r for t, r in zip(test.texts, read)]))
    # Keras's in-graph metrics (keras.ops decoder and edit distance) agree
    assert stored["test_in_graph_metrics"]["cer"] == pytest.approx(stored["test_cer"], abs=1e-6)
    assert 0 <= stored["test_cer_beam"] and 0 <= stored["test_sequence_accuracy_beam"] <= 1
    assert stored["beam_width"] == text_train.BEAM_WIDTH
    assert stored["decoding"]["beam"]["decode_ms_per_line"] > 0
    assert np.isfinite(stored["test_loss"]) and stored["test_loss"] > 0

    data = stored["data"]
    assert (data["train_lines_per_epoch"], data["train_lines_total"]) == (16, 32)
    assert (data["validation_lines"], data["test_lines"]) == (8, 12)
    assert (data["width"], data["frames"], data["test_infeasible"]) == (128, 31, 0)
    assert stored["train_samples_per_second"] > 0 and stored["wall_seconds"] > 0
    assert stored["seed"] == 0 and stored["config"]["loss"] == "ctc"
    assert {"keras", "numpy", "python", "backend"} <= set(stored["versions"])

    reloaded = tf.saved_model.load(str(tmp_path / "recognizer"))  # keep it referenced
    served = reloaded.serve(tf.constant(test.x))
    assert [t.decode() for t in served["text"].numpy()] == read

    again = train.run(train.TrainConfig(out=str(tmp_path), resume=True, **TINY))
    assert again == stored  # complete: nothing to resume, the stored metrics come back


def test_synthetic_splits_never_share_lines():
    config = train.TrainConfig(seed=3, out="unused", **{**TINY, "test_limit": 8})
    data = text_train.synthetic_data(config)
    seeds = data.info["seeds"]
    assert len({tuple(s) for s in seeds.values()}) == 3
    assert data.train.seed == (3, text_train.TRAIN_STREAM)
    train_images = np.concatenate([data.train[i][0] for i in range(len(data.train))])
    assert len(train_images) == 32  # 2 epochs x 16 new lines
    assert len({im.tobytes() for im in train_images}) == 32  # every epoch gets new lines
    for split in (data.validation, data.test):
        for image in split.x:
            assert not np.any(np.all(train_images == image, axis=(1, 2, 3)))
    for image in data.validation.x:
        assert not np.any(np.all(data.test.x == image, axis=(1, 2, 3)))


class RecordingStream(text_train.SyntheticTextStream):
    """Records the stream batch behind every batch that fit asks for, once recording."""

    recording = False

    def __getitem__(self, index):
        if self.recording:
            self.requested.append((self.start_batch + index) % len(self))
        return super().__getitem__(index)


class StartRecording(keras.callbacks.Callback):
    def __init__(self, stream):
        super().__init__()
        self.stream = stream

    def on_train_begin(self, logs=None):
        self.stream.requested, self.stream.recording = [], True


def _fit_stream(initial_epoch):
    stream = RecordingStream(8, epochs=3, batch_size=4, seed=(0, 0))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 128, 1)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(10)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(stream, epochs=3, initial_epoch=initial_epoch,
              steps_per_epoch=stream.steps_per_epoch, shuffle=False, verbose=0,
              callbacks=[text_train.StreamPosition(stream), StartRecording(stream)])
    return stream.requested


def test_stream_reads_new_batches_every_epoch_and_resumes_in_place():
    # 3 epochs x 2 batches: epoch e reads stream batches 2e, 2e + 1
    assert _fit_stream(initial_epoch=0)[:6] == [0, 1, 2, 3, 4, 5]
    # a fit resumed at epoch 1 (what BackupAndRestore does) continues at batch 2, not 0
    assert _fit_stream(initial_epoch=1)[:4] == [2, 3, 4, 5]


# ---------------------------------------------------------------- a folder of crops

def write_folder(root, texts, width=96):
    root.mkdir(parents=True, exist_ok=True)
    rows = ["filename,text"]
    for i, text in enumerate(texts):
        image = T.render_text_line(text, augment=False, width=width)
        name = f"crop_{i:02d}.png"
        Image.fromarray(image[:, : 24 + 10 * len(text)]).save(root / name)  # varied widths
        rows.append(f"{name},{text}")
    (root / "lines.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


FOLDER_TEXTS = ("AB12", "b7c", "C3", "1a2b", "XY", "9z", "ab", "Q1", "7", "Zz9", "k2", "AA")


@pytest.mark.slow
def test_folder_dataset_from_the_command_line(tmp_path, capsys):
    root = write_folder(tmp_path / "crops", FOLDER_TEXTS)
    out = tmp_path / "run"
    code = train.main(["--model", "crnn_small", "--dataset", f"folder:{root},lines.csv",
                       "--loss", "ctc", "--epochs", "1", "--batch-size", "4",
                       "--validation-split", "0.2", "--out", str(out)])
    assert code == 0
    assert "test CER" in capsys.readouterr().out
    for name in ("model.keras", "history.csv", "metrics.json", "curves.png", "gallery.png"):
        assert (out / name).stat().st_size > 0, name
    stored = json.loads((out / "metrics.json").read_text())
    # uppercase labels: the charset comes from the labels (sorted), not the default
    expected = "".join(sorted(set("".join(FOLDER_TEXTS))))
    assert stored["charset"] == expected
    assert charset_of(keras.saving.load_model(out / "model.keras")) == Charset(expected)
    # 12 crops: round(0.1 * 12) = 1 test, round(0.2 * 12) = 2 validation, 9 training
    data = stored["data"]
    assert (data["crops"], data["test_lines"], data["validation_lines"],
            data["train_lines"]) == (12, 1, 2, 9)
    # 32-px crops scaled to the real-crop height (48), padded to the widest, rounded up to 16
    widest = max(24 + 10 * len(t) for t in FOLDER_TEXTS) * text_train.REAL_IMAGE_HEIGHT // 32
    assert data["height"] == 48 and data["width"] == 16 * -(-widest // 16)
    assert len(read_rows(out / "history.csv")) == 1


def test_folder_splits_partition_the_crops(tmp_path):
    root = write_folder(tmp_path / "crops", [t.lower() for t in FOLDER_TEXTS])
    config = train.TrainConfig(out="unused", **{**TINY, "dataset": f"folder:{root}"})
    data = text_train.folder_data(config, root, "lines.csv")
    assert data.charset == Charset()  # lowercase labels: the default charset covers them
    texts = [data.train.texts, data.validation.texts, data.test.texts]
    assert [len(t) for t in texts] == [5, 6, 1]  # validation_split 0.5 of 12, 10 % test
    assert sorted(sum(map(list, texts), [])) == sorted(t.lower() for t in FOLDER_TEXTS)
    again = text_train.folder_data(config, root, "lines.csv")
    assert again.test.texts == data.test.texts  # seeded
    other = text_train.folder_data(train.TrainConfig(**{**vars(config), "seed": 1}), root,
                                   "lines.csv")
    assert (other.train.texts, other.test.texts) != (data.train.texts, data.test.texts)
    with pytest.raises(ValueError, match="too few"):
        text_train.folder_data(train.TrainConfig(**{**vars(config), "validation_split": 0.95}),
                               root, "lines.csv")


def test_a_test_dataset_is_the_test_split_of_real_data(tmp_path):
    train_root = write_folder(tmp_path / "mine", [t.lower() for t in FOLDER_TEXTS])
    test_root = write_folder(tmp_path / "held_out", ["ab1", "c2", "zz"])
    config = train.TrainConfig(out="unused", test_dataset=f"folder:{test_root},lines.csv",
                               **{**TINY, "dataset": f"folder:{train_root},lines.csv"})
    data = text_train.load_text_data(config)
    # no test lines of its own: round(0.5 * 12) = 6 validation, the other 6 train
    assert (len(data.train), len(data.validation)) == (6, 6)
    assert sorted(data.train.texts + data.validation.texts) == sorted(
        t.lower() for t in FOLDER_TEXTS)
    assert data.test.texts == ("ab1", "c2", "zz")
    assert data.info["test_source"] == config.test_dataset
    # without it, 10 % of the same folder is held out as before
    alone = text_train.load_text_data(train.TrainConfig(
        out="unused", **{**TINY, "dataset": f"folder:{train_root},lines.csv"}))
    assert (len(alone.train), len(alone.validation), len(alone.test)) == (5, 6, 1)


def test_augmented_lines_train_on_real_crops_only(tmp_path, capsys):
    root = write_folder(tmp_path / "crops", FOLDER_TEXTS)
    out = tmp_path / "run"
    assert train.main(["--model", "crnn_small", "--dataset", f"folder:{root},lines.csv",
                       "--epochs", "2", "--batch-size", "4", "--augment-lines",
                       "--out", str(out)]) == 0
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["config"]["options"]["augment_lines"] is True
    assert len(read_rows(out / "history.csv")) == 2
    assert train.main(["--model", "crnn_small", "--augment-lines", "--out",
                       str(tmp_path / "no")]) == 2
    assert "synth_text draws new" in capsys.readouterr().err


def test_dataset_names_and_default_run_folder(tmp_path):
    assert text_train.parse_text_dataset("synth_text") == ("synth_text", None, None)
    kind, root, labels = text_train.parse_text_dataset("folder:/data/a,b,labels.csv")
    assert (kind, str(root), labels) == ("folder", "/data/a,b", "labels.csv")
    assert text_train.parse_text_dataset("folder:/data/x")[2] == "auto"
    kind, root, labels = text_train.parse_text_dataset("boxes:/data/plates,eu")
    assert (kind, str(root), labels) == ("boxes", "/data/plates,eu", None)
    for bad in ("folder:", "mnist", "folder:,labels.csv", "boxes:", "boxes: "):
        with pytest.raises(ValueError, match="folder|boxes|unknown text dataset"):
            text_train.parse_text_dataset(bad)
    config = train.parse_args(["--model", "crnn", "--dataset", "folder:/data/crops"])
    assert resolve(config)[0].out == "runs/crnn-folder-crops-ctc"  # no path, no ':' in it
    config.out = "mine"
    assert resolve(config)[0].out == "mine"
    config = train.parse_args(["--model", "crnn", "--dataset", "boxes:/data/plates-eu/"])
    assert resolve(config)[0].out == "runs/crnn-boxes-plates-eu-ctc"


# ---------------------------------------------------------------- line height

def test_image_height_option_reaches_every_split():
    config = train.parse_args(["--model", "crnn_small", "--image-height", "48"])
    assert config.options == {"image_height": 48}
    config = train.TrainConfig(out="unused", options={"image_height": 48},
                               **{**TINY, "train_limit": 8, "test_limit": 3})
    data = text_train.load_text_data(config)
    # 48 px high and 4 x 48 = 192 wide (the 32 x 128 lines' aspect ratio): T = 47 frames
    assert data.train[0][0].shape == (8, 48, 192, 1)
    assert data.validation.x.shape == (4, 48, 192, 1) and data.test.x.shape == (3, 48, 192, 1)
    assert (data.info["height"], data.width, data.info["frames"]) == (48, 192, 47)
    default = text_train.load_text_data(train.TrainConfig(out="unused", **TINY))
    assert (default.info["height"], default.width, default.test.x.shape[1]) == (32, 128, 32)


def test_image_height_builds_the_model_for_it(tmp_path):
    config = resolve(train.TrainConfig(out=str(tmp_path), options={"image_height": 64},
                                       **{**TINY, "train_limit": 8, "test_limit": 2,
                                          "validation_split": 0.0}))[0]
    prepared = text_train.TextTask().prepare(config)
    assert prepared.model.input_shape == (None, 64, None, 1)
    assert prepared.model.count_params() == 526_245  # the same weights at any height
    logits = prepared.model(prepared.data.test.x)
    assert tuple(logits.shape) == (2, 63, 37)         # 256 // 4 - 1 frames


@pytest.mark.parametrize("height", ["40", "16", "0"])
def test_unsupported_heights_are_refused_in_one_line(height, capsys):
    code = train.main(["--model", "crnn_small", "--image-height", height, "--epochs", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "image_height" in err and "multiple of 16" in err and "Traceback" not in err


# ---------------------------------------------------------------- text boxes in images

def write_photos(root, texts, height=24):
    """Grey photos with one rendered text line pasted at a known place each, and their
    OpenALPR-style NAME.txt (`file x y w h TEXT`, tab-separated)."""
    root.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(texts):
        line = T.render_text_line(text, augment=False, height=height,
                                  width=12 + 12 * len(text))
        photo = np.full((80, 160), 90, np.uint8)
        x, y = 10 + 3 * i, 20 + 2 * i
        photo[y:y + line.shape[0], x:x + line.shape[1]] = line
        Image.fromarray(photo).save(root / f"car{i:02d}.jpg", quality=95)
        (root / f"car{i:02d}.txt").write_text(
            f"car{i:02d}.jpg\t{x}\t{y}\t{line.shape[1]}\t{line.shape[0]}\t{text}\n")
    return root


def test_boxes_split_like_a_folder_of_the_same_lines(tmp_path):
    texts = [t.lower() for t in FOLDER_TEXTS]
    root = write_photos(tmp_path / "photos", texts)
    config = train.TrainConfig(out="unused", **{**TINY, "dataset": f"boxes:{root}"})
    data = text_train.load_text_data(config)
    assert data.charset == Charset()  # lowercase labels: the default charset covers them
    assert [len(data.train), len(data.validation), len(data.test)] == [5, 6, 1]
    # the same 12 texts in the same order as crops in a folder: the same split
    folder = write_folder(tmp_path / "crops", texts)
    crops = text_train.folder_data(config, folder, "lines.csv")
    for split in ("train", "validation", "test"):
        assert getattr(data, split).texts == getattr(crops, split).texts
    assert sorted(data.train.names + data.validation.names + data.test.names) == \
        [f"car{i:02d}.txt:1" for i in range(12)]
    assert data.info["source"] == str(root) and data.info["crops"] == 12
    # real crops default to 48 px (chosen on real plates), synthetic lines to 32
    assert data.train.x.shape[1] == text_train.REAL_IMAGE_HEIGHT == 48
    assert data.width % 16 == 0 and data.info["height"] == 48
    # upper-case labels: the charset of the labels, as for a folder
    upper = write_photos(tmp_path / "upper", FOLDER_TEXTS)
    config = train.TrainConfig(out="unused", **{**TINY, "dataset": f"boxes:{upper}"})
    assert text_train.load_text_data(config).charset == Charset.from_texts(FOLDER_TEXTS)


def test_bad_boxes_end_in_one_line(tmp_path, capsys):
    root = write_photos(tmp_path / "photos", ["ab", "cd"])
    (root / "car01.txt").write_text("car01.jpg 10 20 30\n")
    code = train.main(["--model", "crnn_small", "--dataset", f"boxes:{root}",
                       "--out", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(root / "car01.txt") in err[0] and "line 1" in err[0]
    assert not (tmp_path / "run").exists()
    assert train.main(["--model", "crnn_small", "--dataset", f"boxes:{tmp_path}/nope"]) == 2
    assert f"{tmp_path}/nope" in capsys.readouterr().err


@pytest.mark.slow
def test_boxes_dataset_at_48_px_from_the_command_line(tmp_path, capsys):
    root = write_photos(tmp_path / "photos", FOLDER_TEXTS)
    out = tmp_path / "run"
    code = train.main(["--model", "crnn_small", "--dataset", f"boxes:{root}", "--loss", "ctc",
                       "--image-height", "48", "--epochs", "1", "--batch-size", "4",
                       "--validation-split", "0.2", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    stored = json.loads((out / "metrics.json").read_text())
    data = stored["data"]
    assert (data["crops"], data["test_lines"], data["validation_lines"],
            data["train_lines"]) == (12, 1, 2, 9)
    assert data["height"] == 48 and data["frames"] == data["width"] // 4 - 1
    assert stored["charset"] == "".join(sorted(set("".join(FOLDER_TEXTS))))
    model = keras.saving.load_model(out / "model.keras")
    assert model.input_shape == (None, 48, None, 1)
    assert stored["config"]["options"]["image_height"] == 48


def test_infeasible_labels_are_counted_by_hand():
    labels = np.array([[1, 1, 2, -1],    # 3 ids + 1 repeat: needs 4 frames
                       [1, 2, 3, -1],    # needs 3
                       [5, -1, -1, -1]])  # needs 1
    assert text_train.infeasible_count(labels, 4) == 0
    assert text_train.infeasible_count(labels, 3) == 1
    assert text_train.infeasible_count(labels, 2) == 2
    assert text_train.infeasible_count(labels[:0], 2) == 0


# ---------------------------------------------------------------- refusals

def test_non_ctc_losses_and_unknown_datasets_are_refused(capsys, tmp_path):
    assert resolve(train.parse_args(["--model", "crnn_small"]))[0].loss == "ctc"
    code = train.main(["--model", "crnn_small", "--dataset", "synth_text", "--loss", "softmax"])
    assert code == 2
    assert "unknown loss 'softmax' for text model 'crnn_small'; known: ctc" in \
        capsys.readouterr().err
    assert train.main(["--model", "crnn", "--dataset", "mnist", "--loss", "ctc"]) == 2
    assert "unknown text dataset 'mnist'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown loss 'arcface' for text model"):
        train.run(train.TrainConfig(model="crnn_small", dataset="synth_text", loss="arcface",
                                    out=str(tmp_path)))
    assert not any(tmp_path.iterdir())  # refused before anything was written
    with pytest.raises(ValueError, match="unknown loss 'ctc' for classification model"):
        train.run(train.TrainConfig(model="lenet5", loss="ctc", dataset="synth_text"))
    with pytest.raises(SystemExit):
        train.main(["--help"])
    help_text = capsys.readouterr().out
    assert "synth_text, folder:PATH" in help_text and "boxes:PATH" in help_text
    assert "--image-height" in help_text


def test_gallery_shows_the_mistakes_first_then_the_first_lines(tmp_path):
    truths = [f"t{i}" for i in range(30)]
    predictions = list(truths)
    for i in (3, 17, 25):
        predictions[i] = "x"
    chosen = plots.gallery_indices(truths, predictions, size=6)
    assert chosen == [0, 1, 2, 3, 17, 25]  # the 3 mistakes (half of 6), then lines 0, 1, 2
    assert plots.gallery_indices(truths[:4], predictions[:4], size=10) == [0, 1, 2, 3]
    images = np.random.default_rng(0).uniform(size=(30, 32, 64, 1))
    path = plots.plot_text_gallery(images, truths, predictions, tmp_path / "g.png", size=6)
    assert path.stat().st_size > 0


def test_synthetic_lines_mixed_into_real_crops(tmp_path, capsys):
    root = write_folder(tmp_path / "crops", FOLDER_TEXTS)
    out = tmp_path / "run"
    assert train.main(["--model", "crnn_small", "--dataset", f"folder:{root},lines.csv",
                       "--epochs", "1", "--batch-size", "4", "--synthetic-share", "0.5",
                       "--invert-lines", "0.5", "--out", str(out)]) == 0
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["config"]["options"]["synthetic_share"] == 0.5
    assert stored["config"]["options"]["invert_lines"] == 0.5
    assert len(read_rows(out / "history.csv")) == 1
    refused = {"synth_text is all synthetic": ["--synthetic-share", "0.5"],
               r"synthetic_share must be in \[0, 0.9\]": ["--dataset", f"folder:{root},lines.csv",
                                                          "--synthetic-share", "0.95"],
               "plate_fraction applies to synthetic lines": [
                   "--dataset", f"folder:{root},lines.csv", "--plate-fraction", "0.5"],
               "invert_lines inverts real crops": ["--invert-lines", "0.2"],
               r"invert_lines must be in \[0, 1\]": ["--dataset", f"folder:{root},lines.csv",
                                                    "--invert-lines", "1.5"]}
    for message, extra in refused.items():
        assert train.main(["--model", "crnn_small", *extra, "--out",
                           str(tmp_path / "no")]) == 2
        assert re.search(message, capsys.readouterr().err), message


class _PolarityModel:
    """Reads a line confidently as "ab" when it is bright (mean > 0.5), as a hesitant "c"
    otherwise: a reader trained on dark text on a light ground."""

    def predict(self, x, batch_size=None, verbose=0):
        confident = np.log(np.array([[0.02, 0.96, 0.01, 0.01], [0.96, 0.02, 0.01, 0.01],
                                     [0.02, 0.01, 0.96, 0.01]]))
        hesitant = np.log(np.array([[0.3, 0.1, 0.1, 0.5]] * 3))
        return np.stack([confident if line.mean() > 0.5 else hesitant
                         for line in np.asarray(x)]).astype("float32")


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_either_polarity_keeps_the_likelier_read_line_by_line(strategy):
    charset = Charset("abc")
    lines = np.stack([np.full((4, 6, 1), 0.9), np.full((4, 6, 1), 0.1)]).astype("float32")
    upright, _ = text_train.read_lines(_PolarityModel(), lines, charset, strategy)
    assert upright == ["ab", "c"]
    either, _ = text_train.read_lines(_PolarityModel(), lines, charset, strategy,
                                      polarity="either")
    assert either == ["ab", "ab"]  # the dark line is read inverted, the light one as given
    from zoo.models.crnn import recognize

    assert recognize(_PolarityModel(), lines, strategy, charset=charset) == upright
    assert recognize(_PolarityModel(), lines, strategy, charset=charset,
                     polarity="either") == either
    with pytest.raises(ValueError, match="polarity"):
        text_train.read_lines(_PolarityModel(), lines, charset, polarity="inverted")
    with pytest.raises(ValueError, match="needs the images"):
        text_train.read_lines(None, None, charset, logits=np.zeros((1, 3, 4)), polarity="either")
    # logits already computed are not predicted again: only the missing polarity is
    model = _CountingPolarityModel()
    logits = _PolarityModel().predict(lines)
    given, _ = text_train.read_lines(model, lines, charset, strategy, logits=logits,
                                     polarity="either")
    assert given == either and model.lines_predicted == len(lines)
    inverted = _PolarityModel().predict(1.0 - lines)
    given, _ = text_train.read_lines(model, None, charset, strategy, logits=logits,
                                     inverted_logits=inverted, polarity="either")
    assert given == either and model.lines_predicted == len(lines)


class _CountingPolarityModel(_PolarityModel):
    lines_predicted = 0

    def predict(self, x, batch_size=None, verbose=0):
        self.lines_predicted += len(x)
        return super().predict(x, batch_size, verbose)
