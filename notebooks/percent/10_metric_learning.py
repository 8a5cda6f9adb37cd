# %% [markdown]
# # Metric learning: pairs, triplets, proxies, miners, a memory, and retrieval of unseen classes
#
# **Description:** what the metric losses of LossLab compare (pairs, triplets, proxies), drawn
# on a handful of 2-D points; what each miner picks from a batch; why a cross-batch memory
# (XBM) gives a pair loss more negatives than the batch holds; and how the losses are judged:
# retrieval of images from classes the model never trained on (MAP@R, precision@1), as
# `benchmarks/retrieval.py` measures over three seeds.<br>
# **Accelerator:** none needed (about 5 minutes on 2 CPU cores for the full run).<br>
# **Data:** Fashion-MNIST (fetched by `python -m zoo.datasets fetch fashion_mnist`, or through
# tensorflow-datasets on Colab).

# %% [markdown]
# ## Parameters
#
# `SMOKE = True` trains on 2,000 images for one epoch (how CI runs every notebook). Set it to
# `False` for the real run.

# %% tags=["parameters"]
SMOKE = False
SEED = 0
EPOCHS = 1 if SMOKE else 4
TRAIN_LIMIT = 2000 if SMOKE else None   # images of the seen classes used for training
EMBEDDING_DIM = 64
LOSSES = ["softmax", "multi_similarity", "xbm"]   # recipes: losses.list_recipes()

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
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import ops

import losses
from callbacks.retrieval import nearest_neighbours, retrieval_metrics
from losses import mining
from losses.distances import pairwise_distances
from zoo import datasets, embedding_model
from zoo.datasets.samplers import PKBatches
from zoo.training import TrainConfig
from zoo.training.tasks import classification

keras.utils.set_random_seed(SEED)
np.set_printoptions(precision=3, suppress=True)
if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    devices = [d.device_type for d in tf.config.list_physical_devices()]
else:
    import jax

    devices = [d.platform.upper() for d in jax.devices()]
print(f"Keras {keras.__version__}, backend {keras.backend.backend()}, devices {devices}, "
      f"GPU: {'yes' if 'GPU' in devices else 'no (the CPU run takes about 5 minutes)'}")

# %% [markdown]
# ## A batch of nine points in the plane
#
# Three classes, three points each. Every metric loss starts from the same two matrices: the
# distances between the samples of the batch (or their cosine similarities) and which pairs
# share a class. A **positive pair** (a, p) has y_a = y_p and a ≠ p; a **negative pair**
# (a, n) has y_a ≠ y_n. `losses.mining` turns labels into those masks.

# %%
points = np.array([[0.0, 1.0], [0.4, 1.3], [1.4, 1.6],      # class 0 (one far member)
                   [1.0, 0.0], [1.2, 0.4], [0.6, 0.9],      # class 1 (one intruder near 0)
                   [-1.0, -0.6], [-0.7, -1.0], [-1.2, -1.1]],  # class 2
                  dtype="float32")
labels = np.repeat([0, 1, 2], 3)
d = ops.convert_to_numpy(pairwise_distances(points))
positives = ops.convert_to_numpy(mining.positive_mask(labels))
negatives = ops.convert_to_numpy(mining.negative_mask(labels))
print("distances:\n", d)
print("positive pairs per anchor:", positives.sum(1), " negative pairs:", negatives.sum(1))

COLORS = np.array(["tab:blue", "tab:orange", "tab:green"])


def draw_batch(ax, title):
    ax.scatter(points[:, 0], points[:, 1], c=COLORS[labels], s=60, zorder=3)
    for i, (x, y) in enumerate(points):
        ax.annotate(str(i), (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")
    ax.set_xlim(-1.6, 1.9)
    ax.set_ylim(-1.5, 2.0)


def line(ax, i, j, color, style="-", width=1.2):
    ax.plot(*zip(points[i], points[j]), color=color, ls=style, lw=width, zorder=2)


# %% [markdown]
# ## What the loss families compare
#
# - **pairs** (contrastive, Multi-Similarity, Circle, SupCon …): every positive pair is
#   pulled together, every negative pair pushed apart (beyond a margin);
# - **triplets** (triplet loss): for an anchor a, a positive p and a negative n,
#   d(a, p) + margin < d(a, n);
# - **proxies** (ProxyNCA, Proxy-Anchor, normalized softmax …): one learned vector per
#   class, held by the model's head; each sample is compared with the proxies, not with the
#   other samples, so the loss needs no particular batch. Here the proxies are the class
#   means, normalised, as a trained head's proxies come to be.

# %%
anchor = 5  # the class-1 point that sits near class 0
fig, axes = plt.subplots(1, 3, figsize=(13, 4.3))
draw_batch(axes[0], f"pairs of anchor {anchor}: green pull, red push")
for k in range(len(points)):
    if positives[anchor, k]:
        line(axes[0], anchor, k, "green")
    elif negatives[anchor, k]:
        line(axes[0], anchor, k, "red", ":")
positive, negative, valid = (ops.convert_to_numpy(v) for v in mining.batch_hard(d, labels))
draw_batch(axes[1], f"the batch-hard triplet of anchor {anchor}")
line(axes[1], anchor, positive[anchor], "green", width=2)
line(axes[1], anchor, negative[anchor], "red", ":", width=2)
axes[1].text(-1.5, 1.75, f"d(a,p) = {d[anchor, positive[anchor]]:.2f}\n"
             f"d(a,n) = {d[anchor, negative[anchor]]:.2f}", fontsize=9, va="top")
means = np.stack([points[labels == c].mean(0) for c in range(3)])
proxies = means / np.linalg.norm(means, axis=1, keepdims=True)
draw_batch(axes[2], "proxies (one per class) on the unit circle")
axes[2].add_patch(plt.Circle((0, 0), 1.0, fill=False, color="0.7", ls="--"))
axes[2].scatter(proxies[:, 0], proxies[:, 1], marker="*", s=300, c=COLORS, edgecolors="k",
                zorder=4)
for k, proxy in enumerate(proxies):
    axes[2].plot(*zip(points[anchor], proxy), color="green" if k == labels[anchor] else "red",
                 ls="-" if k == labels[anchor] else ":", zorder=2)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What each miner picks
#
# Using all pairs or triplets spends most of the gradient on easy ones. A **miner** selects
# the informative ones. LossLab's miners return fixed-shape masks (so they compile under XLA
# and `jax.jit`); each panel shows what one selects for the whole batch:
#
# - **batch hard** (Hermans et al. 2017): per anchor its farthest positive and nearest negative;
# - **semi-hard** (FaceNet): per positive pair the nearest negative that is still farther
#   than the positive;
# - **triplet margin miner**, "semihard" (pytorch-metric-learning's): triplets with
#   0 < d(a, n) − d(a, p) ≤ margin;
# - **Multi-Similarity mining**: negatives more similar than the anchor's least similar
#   positive (− ε), positives less similar than its most similar negative (+ ε);
# - **distance-weighted** (Wu et al. 2017): every negative, weighted by the inverse density
#   of its distance on the sphere, so far and near negatives are both drawn (line width =
#   weight).

# %%
unit = points / np.linalg.norm(points, axis=1, keepdims=True)
similarity = unit @ unit.T
semi_index, semi_valid, _ = (ops.convert_to_numpy(v)
                             for v in mining.semi_hard_negatives(d, labels))
margin_mask = ops.convert_to_numpy(mining.triplet_margin_mask(d, labels, 0.5, "semihard"))
ms_positive, ms_negative = (ops.convert_to_numpy(v)
                            for v in mining.multi_similarity_pairs(similarity, labels, 0.1))
weights = ops.convert_to_numpy(mining.distance_weighted_weights(
    ops.convert_to_numpy(pairwise_distances(unit)), labels, dim=2, cutoff=0.5,
    nonzero_loss_cutoff=1.9))

fig, axes = plt.subplots(1, 5, figsize=(21, 4.3))
draw_batch(axes[0], "batch hard: per anchor, 1 positive + 1 negative")
for a in range(len(points)):
    if valid[a]:
        line(axes[0], a, positive[a], "green")
        line(axes[0], a, negative[a], "red", ":")
draw_batch(axes[1], "semi-hard negatives of positive pairs")
for a, p in zip(*np.nonzero(semi_valid)):
    line(axes[1], a, semi_index[a, p], "red", ":")
draw_batch(axes[2], f"margin miner (semihard, m=0.5): {int(margin_mask.sum())} triplets")
for a, p, n in zip(*np.nonzero(margin_mask)):
    line(axes[2], a, n, "red", ":")
draw_batch(axes[3], f"Multi-Similarity: {int(ms_positive.sum())} pos, "
           f"{int(ms_negative.sum())} neg pairs")
for a, k in zip(*np.nonzero(ms_positive)):
    line(axes[3], a, k, "green")
for a, k in zip(*np.nonzero(ms_negative)):
    line(axes[3], a, k, "red", ":")
draw_batch(axes[4], "distance-weighted negatives of anchor 0")
for k in np.nonzero(weights[0])[0]:
    line(axes[4], 0, k, "red", "-", width=0.5 + 6 * weights[0, k])
fig.tight_layout()
plt.show()
print(f"anchor 0's negative weights: {weights[0]}  (they sum to {weights[0].sum():.2f})")

# %% [markdown]
# ## A cross-batch memory
#
# A batch of 64 images holds few negatives of each kind. XBM (Wang et al. 2020) keeps the
# embeddings and labels of the last M samples in the model (the `xbm` head), and the loss
# compares each anchor with the batch **and** the memory. Memory entries are stored values:
# they carry no gradient. Here the same nine points are the batch and a memory of twelve
# earlier points is added: the anchor gains positives and negatives, and the loss changes.

# %%
rng = np.random.default_rng(SEED)
memory = (means[np.repeat([0, 1, 2], 4)] + rng.normal(0, 0.25, (12, 2))).astype("float32")
memory_labels = np.repeat([0, 1, 2], 4).astype("int32")
inputs = {"embedding": points, "memory_embedding": memory, "memory_labels": memory_labels,
          "memory_valid": np.ones(12, bool)}
for inner in (losses.ContrastiveLoss(margin=1.0), losses.MultiSimilarityLoss(),
              losses.TripletLoss(margin=0.3)):
    xbm = losses.CrossBatchMemoryLoss(inner)
    empty = {**inputs, "memory_valid": np.zeros(12, bool)}
    print(f"{type(inner).__name__:20s} batch only {float(xbm(labels, empty)):.4f}   "
          f"batch + memory {float(xbm(labels, inputs)):.4f}")

fig, ax = plt.subplots(figsize=(4.5, 4.3))
draw_batch(ax, f"anchor {anchor}: the batch and a memory (crosses)")
ax.scatter(memory[:, 0], memory[:, 1], c=COLORS[memory_labels], marker="x", s=50)
for k in range(12):
    style = ("green", "-") if memory_labels[k] == labels[anchor] else ("red", ":")
    ax.plot(*zip(points[anchor], memory[k]), color=style[0], ls=style[1], lw=0.7)
plt.show()

# %% [markdown]
# ## Retrieval of classes the model never saw
#
# Metric learning is judged by retrieval, not by accuracy: a good embedding places images of
# the same class near each other even for classes it was not trained on. The open-set
# protocol: train on Fashion-MNIST's first five classes (T-shirt, trouser, pullover, dress,
# coat), then let every test image of the other five (sandal, shirt, sneaker, bag, ankle boot)
# search all the others by cosine similarity.
#
# - **precision@1**: the nearest neighbour has the query's class;
# - **MAP@R** (Musgrave et al. 2020): with R the number of other images of the query's class,
#   the mean over the first R neighbours of the precision at each correct one; it rewards
#   putting *all* same-class images first, not only one.

# %%
SEEN = (0, 1, 2, 3, 4)
train_split = datasets.load("fashion_mnist", "train")
test_split = datasets.load("fashion_mnist", "test")
seen = np.isin(train_split.y, SEEN)
x_train, y_train = train_split.x[seen][:TRAIN_LIMIT], train_split.y[seen][:TRAIN_LIMIT]
unseen = ~np.isin(test_split.y, SEEN)
x_query, y_query = test_split.x[unseen], test_split.y[unseen]
print(f"train: {len(y_train)} images of classes {SEEN}; queries: {len(y_query)} images of "
      f"{sorted(set(y_query.tolist()))}")


def train_embedding(name):
    """lenet_embed with the recipe's head and loss, as benchmarks/retrieval.py trains it."""
    keras.utils.set_random_seed(SEED)
    config = TrainConfig(model="lenet_embed", loss=name, seed=SEED, epochs=EPOCHS,
                         batch_size=64, learning_rate=2e-3, embedding_dim=EMBEDDING_DIM)
    if losses.get_recipe(name).balanced_batches:   # in-batch mining: P×K batches
        data, kwargs = PKBatches(x_train, y_train, classes_per_batch=5, samples_per_class=12,
                                 seed=SEED), {}
        steps = len(data)
    else:
        data, kwargs = x_train, dict(y=y_train, batch_size=64, shuffle=True)
        steps = int(np.ceil(len(y_train) / 64))
    model = classification.build_model(config, len(SEEN), x_train.shape[1:])
    classification.compile_model(model, config, len(SEEN), steps)
    model.fit(data, epochs=EPOCHS, verbose=2, **kwargs)
    return embedding_model(model).predict(x_query, batch_size=512, verbose=0)


embeddings, scores = {}, {}
for name in LOSSES:
    print(f"--- {name}: {losses.get_recipe(name).summary}")
    embeddings[name] = train_embedding(name)
    scores[name] = retrieval_metrics(embeddings[name], y_query, ks=(1,))
    print(f"    MAP@R {100 * scores[name]['map_at_r']:.2f} %   "
          f"precision@1 {100 * scores[name]['precision_at_1']:.2f} %")

# %% [markdown]
# ## What the nearest neighbours look like
#
# Five queries of the unseen classes and their five nearest images, for each loss; a red
# frame marks a neighbour of another class.

# %%
queries = np.concatenate([np.nonzero(y_query == c)[0][:1] for c in sorted(set(y_query))])
fig, axes = plt.subplots(len(LOSSES) * len(queries), 6,
                         figsize=(6 * 1.1, len(LOSSES) * len(queries) * 1.15))
for li, name in enumerate(LOSSES):
    neighbours = ops.convert_to_numpy(nearest_neighbours(
        embeddings[name][queries], embeddings[name], k=6))[:, 1:]  # the query itself first
    for qi, q in enumerate(queries):
        row = axes[li * len(queries) + qi]
        row[0].imshow(x_query[q].squeeze(), cmap="gray")
        row[0].set_ylabel(name if qi == 0 else "", fontsize=8)
        for j, n in enumerate(neighbours[qi]):
            row[j + 1].imshow(x_query[n].squeeze(), cmap="gray")
            if y_query[n] != y_query[q]:
                for spine in row[j + 1].spines.values():
                    spine.set_edgecolor("red")
                    spine.set_linewidth(3)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
fig.suptitle("query | its 5 nearest neighbours (red: another class)", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The benchmark's table
#
# One seed and a few epochs say little: `benchmarks/retrieval.py` trains every loss at the
# same budget over three seeds, on Fashion-MNIST and CIFAR-10 with the same protocol, and
# reports each loss's MAP@R gain over softmax with its standard error. Its committed results:

# %%
results = Path(losses.__file__).resolve().parents[1] / "benchmarks" / "results" / "retrieval.md"
if results.exists():
    from IPython.display import Markdown, display

    display(Markdown(results.read_text()))
else:
    print("run python benchmarks/retrieval.py to make benchmarks/results/retrieval.md")
