"""How each shipped weights file is made: a training run of `zoo.training` and its card.

`python -m zoo.weights build MODEL.TAG` trains the recipe below through the runner (so the run
folder, history and metrics are the usual ones), saves the model's weights into
`zoo/weights/files/MODEL.TAG.weights.h5` and writes the card beside it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

# LeNet-5 unchanged; 30 epochs with random shifts of up to 2 px. On Fashion-MNIST, shifts
# alone beat shifts + left-right flips on the validation split (91.77 % vs 91.40 %), so both
# datasets use shifts. The test split was not used to choose.
LENET_RECIPE = dict(model="lenet5", loss="softmax", epochs=30, batch_size=64,
                    learning_rate=2e-3, validation_split=0.1, seed=0,
                    options={"augment": "shift"})

RECIPES = {
    "lenet5.mnist": {
        "config": {**LENET_RECIPE, "dataset": "mnist"},
        "builder_kwargs": {"num_classes": 10, "input_shape": [28, 28, 1]},
        "data": "MNIST training set (LeCun et al.), 10 % held out for validation (seed 0); "
                "scored on the 10,000 test images",
    },
    "lenet5.fashion_mnist": {
        "config": {**LENET_RECIPE, "dataset": "fashion_mnist"},
        "builder_kwargs": {"num_classes": 10, "input_shape": [28, 28, 1]},
        "data": "Fashion-MNIST training set (Xiao et al. 2017), 10 % held out for validation "
                "(seed 0); scored on the 10,000 test images",
    },
}

RECIPES["lenet_embed.fashion_mnist_cosface"] = {
    # The embedding model of the margin notebooks, pretrained: LeNet trunk -> 3-D embedding
    # -> cosine head, trained with CosFace (m 0.35, s 30). Three dimensions, not two: on a
    # circle ten classes are 36 degrees apart, too close for that margin (cos 0 - 0.35 <
    # cos 36), while on the sphere they can keep about 66 degrees.
    "config": {**LENET_RECIPE, "model": "lenet_embed", "loss": "cosface", "embedding_dim": 3,
               "dataset": "fashion_mnist"},
    "builder_kwargs": {"num_classes": 10, "input_shape": [28, 28, 1], "embedding_dim": 3,
                       "head": "cosine", "head_kwargs": {}},
    "data": "Fashion-MNIST training set (Xiao et al. 2017), 10 % held out for validation "
            "(seed 0); scored on the 10,000 test images",
}

RECIPES["crnn_small.synth_full"] = {
    # Synthetic lines only (no real text): digits, both cases and -.,:/'&()#+ at 48 px, so
    # that whole crops such as number plates keep legible characters; a starting point for
    # fine-tuning on real crops (--init-from crnn_small.synth_full).
    "config": dict(model="crnn_small", dataset="synth_text", epochs=20, train_limit=12800,
                   batch_size=32, learning_rate=2e-3, seed=0,
                   options={"charset": "full", "image_height": 48}),
    "builder_kwargs": {"charset": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "abcdefghijklmnopqrstuvwxyz-.,:/'&()#+",
                       "input_shape": [48, None, 1]},
    "data": "synthetic text lines (zoo.datasets.text.SyntheticText): 4-10 random characters "
            "of the 73-character 'full' set, DejaVu fonts, blur, noise, rotation, texture; "
            "12,800 new lines per epoch, 20 epochs; scored on 2,000 fixed synthetic lines",
}

RECIPES["crnn_small.synth_plates"] = {
    # crnn_small.synth_full continued on a half-and-half mix of plain lines and synthetic
    # number-plate crops (zoo.datasets.synthetic_plates: border, country band, separators,
    # small print, car body around, shear, low resolution, JPEG), so that it reads whole
    # plate crops cut from photos; the charset and height stay those of synth_full.
    "config": dict(model="crnn_small", dataset="synth_text", epochs=12, train_limit=12800,
                   batch_size=32, learning_rate=1e-3, seed=0,
                   init_from="crnn_small.synth_full",
                   options={"charset": "full", "image_height": 48, "plate_fraction": 0.5}),
    "builder_kwargs": RECIPES["crnn_small.synth_full"]["builder_kwargs"],
    "data": "crnn_small.synth_full, then 12 epochs of 12,800 new synthetic samples each, half "
            "plain lines as synth_full's and half synthetic number-plate crops (5-8 capitals "
            "and digits; zoo.datasets.synthetic_plates); scored on 2,000 fixed synthetic "
            "samples of the same mix",
}

RECIPES["repvgg_tiny.cifar10"] = {
    # The detector's backbone (same widths and depths) pretrained on real photos, so that
    # detector runs on small real sets start from features rather than noise
    # (create_model("detector", backbone_weights="repvgg_tiny.cifar10")). Random 2-px shifts
    # and left-right flips; 10 % of the training images held out for validation.
    "config": dict(model="repvgg_tiny", dataset="cifar10", loss="softmax", epochs=15,
                   batch_size=128, learning_rate=2e-3, validation_split=0.1, seed=0,
                   options={"augment": "shift_flip"}),
    "builder_kwargs": {"num_classes": 10, "input_shape": [32, 32, 3]},
    "data": "CIFAR-10 training set (Krizhevsky 2009), 10 % held out for validation (seed 0); "
            "scored on the 10,000 test images",
}

RECIPES["detector.synth_scenes"] = {
    # Step 1 of the detector as real-data runs train it (feature pyramid at strides 8, 16,
    # 32, quality focal score, backbone from repvgg_tiny.cifar10), pretrained on synthetic
    # scenes, so that runs on small real sets start with a neck and head that already find
    # and box objects (--init-from detector.synth_scenes). The score is one objectness
    # logit, so any number of classes can start from it. Chosen on the kangaroo validation
    # split (105 / 26 of the training photos, 160 epochs, seeds 0-1; exploratory, no results
    # file holds these): step-1 AP@.5 0.651 / 0.636 against 0.641 / 0.582 from the CIFAR-10
    # backbone alone. The test photos' numbers are in benchmarks/results/detector.json.
    "config": dict(model="detector", dataset="synth_scenes", loss="eiou", epochs=20,
                   batch_size=32, learning_rate=2e-3, seed=0,
                   options={"strides": "8,16,32", "score_loss": "quality_focal",
                            "backbone_weights": "repvgg_tiny.cifar10"}),
    "stage": "detector",  # the run's detector.keras (step 1), not its crop classifier
    "builder_kwargs": {"num_classes": 5, "input_shape": [128, 128, 3], "stride": [8, 16, 32],
                       "score_loss": "quality_focal"},
    "data": "2,000 synthetic scenes (zoo.datasets.detection.synthetic_scene_set, seed 0: "
            "five shape classes on textured backgrounds, random left-right flips); scored on "
            "500 others (seed 1)",
}

HEADLINE = ("test_accuracy", "test_loss", "test_cer", "test_sequence_accuracy", "map_50",
            "step1_map_50")


def build(name: str, workdir="runs/weights") -> dict:
    """Train the recipe `name`, write its weights and card into `zoo/weights/files/`."""
    import keras

    from zoo.training import TrainConfig, run
    from zoo.weights import FILES, sha256

    if name not in RECIPES:
        raise ValueError(f"no recipe for weights {name!r}; recipes: {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    out = Path(workdir) / name
    started = time.perf_counter()
    metrics = run(TrainConfig(**recipe["config"], out=str(out), resume=True))
    model = keras.saving.load_model(out / f"{recipe.get('stage', 'model')}.keras",
                                    compile=False)
    FILES.mkdir(parents=True, exist_ok=True)
    weights = FILES / f"{name}.weights.h5"
    model.save_weights(weights)
    card = {
        "name": name,
        "model": recipe["config"]["model"],
        "file": weights.name,
        "sha256": sha256(weights),
        "size_bytes": weights.stat().st_size,
        "parameters": model.count_params(),
        "builder_kwargs": recipe["builder_kwargs"],
        "data": recipe["data"],
        "recipe": recipe["config"],
        "command": f"python -m zoo.weights build {name}",
        "metrics": {key: metrics[key] for key in HEADLINE if key in metrics},
        "train_wall_seconds": metrics.get("wall_seconds"),
        "versions": metrics.get("versions"),
        "built_in_seconds": time.perf_counter() - started,
    }
    (FILES / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    if recipe["config"]["dataset"] in CHECKED_DATASETS:
        card = write_check(name)
    return card


# Datasets that a fresh machine cannot load offline (no registry package carries them): their
# weights ship a few test images with the outputs the model gave at build time, so the
# shipped file can be checked anywhere.
CHECKED_DATASETS = ("cifar10",)
CHECK_IMAGES = 16


def write_check(name: str) -> dict:
    """Save the first `CHECK_IMAGES` test images of the recipe's dataset and the shipped
    model's outputs on them as `MODEL.TAG.check.npz`, and name the file in the card."""
    import numpy as np

    from zoo import create_model, datasets
    from zoo.weights import FILES

    recipe = RECIPES[name]
    model_name, tag = name.split(".", 1)
    x, y = datasets.load(recipe["config"]["dataset"], "test", limit=CHECK_IMAGES)
    outputs = create_model(model_name, weights=tag).predict(x, verbose=0)
    path = FILES / f"{name}.check.npz"
    np.savez_compressed(path, x=x, y=y, outputs=np.asarray(outputs, np.float32))
    card = json.loads((FILES / f"{name}.json").read_text())
    card["check"] = path.name
    (FILES / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return card
