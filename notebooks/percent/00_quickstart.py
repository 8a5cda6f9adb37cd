# %% [markdown]
# # Quickstart: LeNet-5 on Fashion-MNIST
#
# **Description:** train the classic LeNet-5 with softmax cross-entropy through LossLab's
# training entry point, read its learning curves and confusion matrix, then save, reload
# and use the model.<br>
# **Accelerator:** none needed (a few minutes on 2 CPU cores for the full run; seconds in SMOKE mode).
#
# Everything LossLab does later — margin losses, metric learning, probes that watch the
# weights move — is compared against this baseline, so it is worth knowing well.

# %% [markdown]
# ## Parameters
#
# `SMOKE = True` trains on a tiny subset for one epoch: that is how CI runs every notebook.
# Set it to `False` for the real run.

# %% tags=["parameters"]
SMOKE = False
EPOCHS = 1 if SMOKE else 10
TRAIN_LIMIT = 2000 if SMOKE else None   # None: the full 54,000-image training split
TEST_LIMIT = 500 if SMOKE else None
SEED = 0

# %% [markdown]
# ## Setup
#
# On Colab the first cell installs LossLab (and `tensorflow-datasets` fetches the data, since
# Colab is online). Locally, `make setup` has already installed it into `.venv`.

# %%
import subprocess
import sys

import zipfile
from pathlib import Path

REPO_URL = "https://github.com/losslab/losslab"  # your fork; or upload losslab.zip instead

if "google.colab" in sys.modules:  # pragma: no cover - only on Colab
    if Path("losslab.zip").exists():
        zipfile.ZipFile("losslab.zip").extractall(".")
    elif not Path("losslab").is_dir():
        clone = subprocess.run(["git", "clone", "-q", REPO_URL, "losslab"],
                               capture_output=True, text=True)
        if clone.returncode != 0:
            raise RuntimeError(f"could not clone {REPO_URL}: {clone.stderr.strip()}. Set "
                               f"REPO_URL to your fork, or upload the repository as "
                               f"losslab.zip next to this notebook.")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "losslab"], check=True)
    sys.path.insert(0, "losslab")

# %%
import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

import zoo
from zoo import datasets, train
from zoo.runtime import describe_runtime

print(describe_runtime())
print("models:", zoo.list_models())

# %% [markdown]
# ## The data
#
# `zoo.datasets.load` returns float32 images in [0, 1], shaped (N, 28, 28, 1), with integer
# labels. Offline it reads Debian's copy of Fashion-MNIST; online, tensorflow-datasets. The
# validation split is carved out of the official training set with a fixed seed, so the test
# set is never touched while we tune.

# %%
train_split = datasets.load("fashion_mnist", "train", validation_split=0.1, seed=SEED)
test_split = datasets.load("fashion_mnist", "test")
print(train_split.x.shape, test_split.x.shape)

fig, axes = plt.subplots(2, 8, figsize=(12, 3.5))
for ax, image, label in zip(axes.ravel(), train_split.x, train_split.y):
    ax.imshow(image[..., 0], cmap="gray")
    ax.set_title(train_split.class_names[label], fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## The model
#
# LeNet-5 (LeCun et al., 1998): two 5×5 convolutions, each followed by 2×2 average pooling,
# then fully connected layers of 120 and 84 units. With "same" padding in the first
# convolution it has 61,706 parameters for 10 classes. The model outputs *logits*; the
# softmax lives inside the loss, where it can be computed stably.

# %%
model = zoo.create_model("lenet5", num_classes=10)
model.summary()

# %% [markdown]
# ## Training
#
# `zoo.train.run` is the same function as `python -m zoo.train`: it seeds everything, trains
# with Adam and a cosine-decayed learning rate, keeps a backup of the last finished epoch (so
# an interrupted run resumes with `resume=True`), and writes a run folder.

# %%
config = train.TrainConfig(model="lenet5", dataset="fashion_mnist", loss="softmax",
                           epochs=EPOCHS, seed=SEED, out="runs/quickstart",
                           train_limit=TRAIN_LIMIT, test_limit=TEST_LIMIT)
metrics = train.run(config)
print(f"test accuracy: {metrics['test_accuracy']:.4f}")
print(sorted(os.listdir(config.out)))

# %% [markdown]
# ## Reading the curves
#
# A validation loss that turns upward while the training loss keeps falling is the mark of
# over-fitting; with 61k parameters and 54k images LeNet-5 barely over-fits in 10 epochs.

# %%
display(Image(filename=str(Path(config.out) / "curves.png")))

# %% [markdown]
# ## The confusion matrix
#
# Rows are true classes, columns predictions, each row normalised. Fashion-MNIST's hard
# cases are the upper-body garments: *Shirt* is confused with *T-shirt/top*, *Pullover* and
# *Coat* — classes that differ in details LeNet's 5×5 filters on 28×28 images barely see.

# %%
display(Image(filename=str(Path(config.out) / "confusion_matrix.png")))
per_class = metrics["per_class_accuracy"]
print("hardest classes:", sorted(per_class, key=per_class.get)[:3])

# %% [markdown]
# ## Save, reload, predict
#
# The run folder holds `model.keras`. Reloading needs no custom objects (`safe_mode=True`
# is the default). The model outputs logits: `argmax` is the predicted class and a softmax
# turns them into probabilities.

# %%
reloaded = keras.saving.load_model(Path(config.out) / "model.keras", safe_mode=True)
logits = reloaded.predict(test_split.x[:8], verbose=0)
probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
for label, p in zip(test_split.y[:8], probabilities):
    print(f"true {test_split.class_names[label]:12s} predicted "
          f"{test_split.class_names[p.argmax()]:12s} ({p.max():.2f})")

# %% [markdown]
# ## Conclusion
#
# LeNet-5 with softmax cross-entropy is the baseline of every later notebook. The benchmark
# `benchmarks/lenet_baseline.py` runs this recipe on MNIST and Fashion-MNIST over three seeds;
# the README quotes its numbers. Next: `02_margin_losses.ipynb` replaces the softmax with
# losses that enforce a margin between classes.
