# %% [markdown]
# # Transfer: a pretrained CRNN reads real number plates, then learns them
#
# **Description:** load the CRNN that LossLab ships pretrained on synthetic text and plates,
# read real photos of European number plates with it, fine-tune it on a few dozen labelled
# photos, and compare it with training from scratch and with a widely used OCR model
# (PP-OCRv4 through `rapidocr-onnxruntime`), as `benchmarks/transfer.py` does over three
# seeds.<br>
# **Accelerator:** none needed (about 10 minutes on 2 CPU cores for the full run).<br>
# **Data:** the OpenALPR benchmark's European plates (108 photos, one plate box and its text
# each, `file x y w h TEXT`): `PLATES_DIR` below, or cloned from GitHub on Colab. Without it
# the notebook makes a small stand-in set of synthetic plate photos, so that it always runs;
# its numbers then say nothing about real plates.

# %% [markdown]
# ## Parameters
#
# `SMOKE = True` fine-tunes for one epoch (how CI runs every notebook). Set it to `False` for
# the real run.

# %% tags=["parameters"]
SMOKE = False
SEED = 0
WEIGHTS = "synth_plates"        # zoo.list_weights("crnn_small")
PLATES_DIR = None               # a folder of NAME.jpg + NAME.txt; None: look for plates-eu
EPOCHS = 1 if SMOKE else 40
BATCH_SIZE = 16
LEARNING_RATE = 1e-3
OUT = "runs/transfer_notebook"

# %% [markdown]
# ## Setup
#
# On Colab the first cell installs LossLab. Locally, `make setup` has already installed it
# into `.venv`.

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
import re
import shutil
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

import zoo
from zoo import weights
from zoo.charset import CHARSETS, Charset
from zoo.datasets.synthetic_plates import random_plate_text, render_plate
from zoo.datasets.text import dejavu_fonts, load_text_boxes, read_text_boxes
from zoo.evaluation.text import character_error_rate, sequence_accuracy
from zoo.models.crnn import charset_of
from zoo.runtime import describe_runtime
from zoo.training import TrainConfig, run
from zoo.training.tasks.text import read_lines

out = Path(OUT)
out.mkdir(parents=True, exist_ok=True)
print(describe_runtime())
print("crnn_small weights:", zoo.list_weights("crnn_small"))


# %% [markdown]
# ## The photos
#
# A plate annotation is one line per text box, `file x y w h TEXT`, next to each photo. The
# recogniser never sees the photo: the loader cuts the box out with a margin of 10 % of its
# height, turns it grey and scales it to the model's line height (48 px here).

# %%
def find_plates():
    candidates = [PLATES_DIR] if PLATES_DIR else [
        "../shared/datasets/plates-eu", "../../shared/datasets/plates-eu",
        "benchmarks-openalpr/endtoend/eu"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir() and any(Path(candidate).glob("*.txt")):
            return Path(candidate), True
    if "google.colab" in sys.modules:  # pragma: no cover
        subprocess.run(["git", "clone", "-q", "--depth", "1",
                        "https://github.com/openalpr/benchmarks", "benchmarks-openalpr"],
                       check=True)
        return Path("benchmarks-openalpr/endtoend/eu"), True
    return make_stand_in(out / "stand_in_plates"), False


def make_stand_in(folder, count=60):
    # synthetic plates pasted into grey "photos" with their annotations: only so that the
    # notebook runs where no real plates are at hand
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    upper = Charset(CHARSETS["upper"])
    for i in range(count):
        text, groups = random_plate_text(rng, upper)
        crop = render_plate(groups, rng, dejavu_fonts(), 48, 192)
        photo = np.full((160, 320), rng.integers(40, 200), np.uint8)
        x, y = int(rng.integers(10, 110)), int(rng.integers(10, 100))
        photo[y:y + 48, x:x + 192] = crop
        Image.fromarray(photo).convert("RGB").save(folder / f"p{i:03d}.jpg")
        (folder / f"p{i:03d}.txt").write_text(f"p{i:03d}.jpg\t{x}\t{y}\t192\t48\t{text}\n")
    return folder


plates, real = find_plates()
boxes = read_text_boxes(plates)
print(f"{len(boxes)} plates in {plates} ({'real photos' if real else 'synthetic stand-in'})")
fig, axes = plt.subplots(1, 3, figsize=(14, 3.2))
for ax, box in zip(axes, boxes[:3]):
    ax.imshow(Image.open(box.image))
    ax.add_patch(plt.Rectangle((box.x, box.y), box.w, box.h, fill=False, color="lime", lw=2))
    ax.set_title(box.text)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## A fixed split
#
# The benchmark scores on 22 of the 108 photos, chosen once by a seeded permutation and
# stored in `benchmarks/splits/plates_eu.json`; the notebook uses the same split when it has
# those photos (so its numbers are comparable), and a seeded 80/20 split of any other folder.
# Fine-tuning never sees the test photos.

# %%
names = sorted(p.stem for p in plates.glob("*.txt"))
stored = Path("benchmarks/splits/plates_eu.json")
if real and stored.exists() and set(json.loads(stored.read_text())["test"]) <= set(names):
    split = json.loads(stored.read_text())
else:
    order = np.random.default_rng(SEED).permutation(len(names))
    n_test = int(np.ceil(0.2 * len(names)))
    split = {"test": [names[i] for i in order[:n_test]],
             "train": [names[i] for i in order[n_test:]]}
folders = {}
for part in ("train", "test"):
    folders[part] = out / "plates" / part
    shutil.rmtree(folders[part], ignore_errors=True)
    folders[part].mkdir(parents=True)
    for name in split[part]:
        for suffix in (".jpg", ".txt"):
            shutil.copy(plates / f"{name}{suffix}", folders[part])
print({part: len(split[part]) for part in ("train", "test")})

# %% [markdown]
# ## The pretrained model, as shipped
#
# `zoo.create_model(name, weights=TAG)` builds the model with the card's arguments (charset,
# line height) and loads the file after checking its SHA-256; the card says how it was made
# and what it measured.

# %%
card = weights.card(f"crnn_small.{WEIGHTS}")
print(card["data"])
print("command:", card["command"])
print("synthetic test metrics:", card["metrics"])
pretrained = zoo.create_model("crnn_small", weights=WEIGHTS)
charset = charset_of(pretrained)
print(f"{pretrained.count_params():,} parameters, {len(charset)} characters, "
      f"input {pretrained.input_shape}")


# %% [markdown]
# ## Reading the test plates without fine-tuning
#
# Every reader is scored the same way: its output upper-cased and reduced to `0-9A-Z` (the
# annotations hold no separators), then the character error rate
# $\mathrm{CER} = \sum_i \mathrm{edits}(t_i, r_i) / \sum_i |t_i|$ and the share of plates
# read exactly.

# %%
def normalise(text):
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def score(truths, reads):
    truths, reads = [normalise(t) for t in truths], [normalise(r) for r in reads]
    return character_error_rate(truths, reads), sequence_accuracy(truths, reads)


test = load_text_boxes(folders["test"], charset=charset, height=48)
before, _ = read_lines(pretrained, test.x, charset)
cer, exact = score(test.texts, before)
print(f"pretrained, no fine-tuning: CER {cer:.3f}, {exact:.0%} of the plates exact")


def gallery(reads, title, count=12):
    fig, axes = plt.subplots(count // 3, 3, figsize=(12, 1.3 * count // 3))
    for ax, image, truth, read in zip(axes.ravel(), test.x, test.texts, reads):
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
        ok = normalise(read) == truth
        ax.set_title(f"{normalise(read) or '∅'}" + ("" if ok else f"  (truth {truth})"),
                     color="black" if ok else "tab:red", fontsize=9)
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


gallery(before, f"{WEIGHTS}, no fine-tuning: CER {cer:.3f}")


# %% [markdown]
# ## Fine-tuning on the training photos
#
# `--init-from crnn_small.synth_plates` copies every layer whose shape matches (all of them:
# the charset is kept with `--charset full`), then training continues on the real crops with
# Adam and a cosine schedule, each crop perturbed anew every epoch (`--augment-lines`: a
# little shear, rotation, scale, shift, contrast, blur and noise), since a few dozen crops
# are otherwise memorised within a few epochs. `test_dataset` names the held-out photos: they are the run's
# test split, and all the training photos train or validate. The same run from random
# weights is the baseline.

# %%
def fine_tune(init_from, name):
    return run(TrainConfig(model="crnn_small", dataset=f"boxes:{folders['train']}",
                           test_dataset=f"boxes:{folders['test']}", epochs=EPOCHS,
                           batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE, seed=SEED,
                           validation_split=0.1, init_from=init_from, out=str(out / name),
                           options={"charset": "full", "image_height": 48,
                                    "augment_lines": True}, verbose=0))


tuned_metrics = fine_tune(f"crnn_small.{WEIGHTS}", "fine_tuned")
scratch_metrics = fine_tune(None, "scratch")
import keras

tuned = keras.saving.load_model(out / "fine_tuned" / "model.keras")
scratch = keras.saving.load_model(out / "scratch" / "model.keras")
after, _ = read_lines(tuned, test.x, charset)
from_scratch, _ = read_lines(scratch, test.x, charset)
rows = {"pretrained, no fine-tuning": score(test.texts, before),
        "trained from scratch": score(test.texts, from_scratch),
        "pretrained + fine-tuned": score(test.texts, after)}
for name, (cer, exact) in rows.items():
    print(f"{name:28s} CER {cer:.3f}   exact {exact:.0%}")
gallery(after, f"fine-tuned: CER {rows['pretrained + fine-tuned'][0]:.3f}")

# %% [markdown]
# ## Reading both polarities
#
# Number plates come dark on light and light on dark. `read_lines(..., polarity="either")`
# (and `zoo.models.crnn.recognize(..., polarity="either")`) reads every crop twice, as
# given and inverted ($1 - x$), and keeps the read of the higher CTC log-probability: for
# greedy decoding that of the best path, $\sum_t \max_k \log y_t^k$. It costs a second
# forward pass.

# %%
either, _ = read_lines(tuned, test.x, charset, polarity="either")
cer, exact = score(test.texts, either)
print(f"{'fine-tuned, either polarity':28s} CER {cer:.3f}   exact {exact:.0%}")
for truth, upright, both in zip(test.texts, after, either):
    if normalise(upright) != normalise(both):
        print(f"  {truth}: as given {normalise(upright) or '∅'}, either {normalise(both) or '∅'}")

# %% [markdown]
# ## The benchmark's table
#
# `benchmarks/transfer.py` runs the same comparison over three seeds, with the peer on the
# same crops; its committed results:

# %%
# the repository root is the working folder, its parent (notebooks/), or losslab/ on Colab
results = next((root / "benchmarks/results/transfer.md" for root in
                (Path("."), Path(".."), Path("losslab"))
                if (root / "benchmarks/results/transfer.md").exists()), None)
if results is not None:
    from IPython.display import Markdown, display

    display(Markdown(results.read_text()))
else:
    print("run python benchmarks/transfer.py to make benchmarks/results/transfer.md")

# %% [markdown]
# ## Conclusion
#
# - **Synthetic data that looks like the target is the first lever.** A CRNN trained on clean
#   synthetic lines reads whole plate crops almost entirely wrong: the border, the country
#   band, the separators and the car around the plate are new to it. Drawing those into the
#   synthetic data (`--plate-fraction`) is what lets the shipped model read real plates
#   before it has seen one.
# - **Fine-tuning on a few dozen real crops closes most of the rest**, and training the same
#   network from scratch on them does not: sixty-odd plates are far too few to learn to read
#   from nothing. The benchmark gives both with their spread over seeds.
# - **A peer trained on millions of real text lines** (PP-OCRv4) is the bar; the benchmark
#   states where the fine-tuned model stands against it on the same crops and scoring.
# - **Polarity is part of the data.** Every training plate here is dark on light; fine-tuned
#   on them alone, the model misreads the same held-out crops inverted about five times as
#   often as upright. `--invert-lines P` serves a share P of the real crops inverted each
#   epoch; the benchmark's recipe uses 40 %, chosen by cross-validation on the training
#   photos (`benchmarks/results/transfer_recipe.md`).
# - **Read both polarities.** Reading each crop as given and inverted and keeping the likelier
#   read lowered the cross-validated CER from 4.2 % to 3.0 % (stage 5 of the recipe) and the
#   benchmark's fine-tuned CER on the test photos from 5.2 % to 3.0 %, now under the peer's
#   6.5 %.
# - **Labels are data too.** A few plates-eu annotations write the letter O where a Slovak
#   plate can only hold the digit 0. The benchmark trains on those labels corrected (a rule
#   on the plate's form, chosen by the same cross-validation) and still scores the target on
#   the test labels as published, with the corrected score beside it as a diagnostic.
