# %% [markdown]
# # A lightweight detector: the IoU family of box losses, EIoU, and RepVGG fusion
#
# **Description:** draw the box-regression losses of the IoU family (IoU, GIoU, DIoU, CIoU,
# EIoU, Focal-EIoU, SIoU, and Smooth L1 for comparison) as functions of a shifted or
# stretched box, with their gradients; replay the toy regression of the DIoU and EIoU papers
# to see which losses move boxes onto their targets fastest and why; fold a RepVGG block's
# three branches into one 3×3 convolution and check that nothing changes; then train the
# two-step detector of `zoo.models.detector` with EIoU on synthetic scenes, evaluate it, and check
# that its fused form finds the same boxes; finally train it on real photos (kangaroos) and on
# an aerial tile scanned window by window (NEON tree crowns), and look at its hits and misses.<br>
# **Accelerator:** none needed (about 22 minutes on 2 CPU cores for the full run, nearly all of
# it training the three detectors, the part a GPU would shorten; about a minute in SMOKE
# mode).
#
# A detector has to say *where* an object is, and the loss that teaches it the box decides
# how fast and how well it learns that. Detection is scored by IoU, so IoU itself is the
# natural loss — except that it is flat, with zero gradient, as soon as the predicted box
# misses the target. Each member of the IoU family adds a term that still says which way to
# go; this notebook looks at what each term measures and what it does to gradient descent.
# The second theme is the network: RepVGG trains with three branches per block and runs with
# one convolution, for free.

# %% [markdown]
# ## Parameters
#
# `SMOKE = True` runs the toy regression on a few hundred box pairs and trains the detector
# on 32 scenes for one epoch: that is how CI runs every notebook. Set it to `False` for the
# real run.

# %% tags=["parameters"]
SMOKE = False
SEED = 0
REGRESSION_POINTS = 4 if SMOKE else 200   # anchor centres; each gets 7×7 shapes × 7 targets
REGRESSION_STEPS = 40 if SMOKE else 200   # gradient-descent iterations of the toy regression
REGRESSION_STEP_SIZE = 0.2                # peak step η, cosine-decayed to 0
TIMING_BATCH = 8 if SMOKE else 32         # images per call when timing RepVGG
TIMING_REPS = 3 if SMOKE else 7
TRAIN_SCENES = 32 if SMOKE else 2000      # synthetic training scenes (128×128)
TEST_SCENES = 16 if SMOKE else 500
EPOCHS = 1 if SMOKE else 6                # step 1, the dense detector
CLASSIFIER_EPOCHS = 1 if SMOKE else 8     # step 2, the crop classifier
# SMOKE trains a step or two: shallower networks and no XLA, since compiling would cost
# more than the training itself (see Setup; restart the kernel after changing SMOKE)
DETECTOR_KWARGS = {"depths": (1, 1, 1, 1), "head_depth": 1} if SMOKE else {}
CLASSIFIER_KWARGS = {"depths": (1, 1, 1)} if SMOKE else {}
JIT_COMPILE = not SMOKE
BATCH_SIZE = 32
BOX_LOSS = "eiou"
OUT = "runs/detector_eiou_repvgg"
# Real photos (the last section): a Pascal VOC folder of kangaroo photos, and NEON aerial tiles
KANGAROO_DIR = None                       # None: look for kangaroo/ near the repository
REAL_EPOCHS = 1 if SMOKE else 80          # step 1 on the kangaroo photos (the benchmark's)
NEON_EPOCHS = 1 if SMOKE else 60          # step 1 on NEON tiles (the benchmark trains 200)
REAL_BACKBONE = "repvgg_tiny.cifar10"     # the shipped CIFAR-10 backbone; None: random
REAL_KWARGS = {"head_depth": 1} if SMOKE else {}  # the backbone's depths are the weights'

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
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if not JIT_COMPILE:
    # Without XLA, TensorFlow 2.21's oneDNN gradient of a 1×1 stride-2 convolution can crash
    # (zoo/training/tasks/detection.py explains); switching oneDNN off, before TensorFlow loads, avoids it.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display
from keras import ops

from losses import boxes
from zoo.models import repvgg
from zoo.datasets.detection import synthetic_scene_set
from zoo.evaluation.detection import (match_detections, plot_detection_gallery,
                                      plot_pr_curves)
from zoo.training.tasks.detection import (evaluate_pipeline, load_detection_data,
                                          train_two_step)
from zoo.runtime import describe_runtime

out = Path(OUT)
out.mkdir(parents=True, exist_ok=True)
keras.utils.set_random_seed(SEED)
print(describe_runtime())

# %% [markdown]
# ## The IoU family on two boxes
#
# Write $A$ for the predicted box, $B$ for the target, $C$ for the smallest box enclosing
# both (width $C_w$, height $C_h$, diagonal $c$), $\rho$ for the distance between the centres
# of $A$ and $B$, and $w, h$ for widths and heights. Every loss of the family is $1 - \mathrm{IoU}$
# plus a penalty that is 0 when the boxes coincide:
#
# | loss | penalty added to $1 - \mathrm{IoU}$ | what it measures |
# |---|---|---|
# | IoU (UnitBox, 2016) | — | overlap only |
# | GIoU (Rezatofighi et al., 2019) | $\lvert C \setminus (A \cup B)\rvert / \lvert C\rvert$ | empty part of the enclosing box |
# | DIoU (Zheng et al., 2020) | $\rho^2 / c^2$ | distance between the centres |
# | CIoU (Zheng et al., 2020) | $\rho^2 / c^2 + \alpha v$, $v = \tfrac{4}{\pi^2}(\arctan\tfrac{w_B}{h_B} - \arctan\tfrac{w_A}{h_A})^2$ | centres + aspect ratio |
# | EIoU (Zhang et al., 2021) | $\rho^2/c^2 + (w_A - w_B)^2/C_w^2 + (h_A - h_B)^2/C_h^2$ | centres + width + height |
# | SIoU (Gevorgyan, 2022) | $(\Delta + \Omega)/2$ | angle-aware distance + shape |
#
# CIoU's weight $\alpha = v / ((1 - \mathrm{IoU}) + v)$ is held constant in the gradient
# (stop-gradient), as in the paper's code. Focal-EIoU multiplies EIoU by
# $\mathrm{IoU}^{\gamma}$ (also held constant, $\gamma = 0.5$), so boxes that already overlap
# well count more. Smooth L1 on the four corner coordinates is the pre-IoU baseline: not
# scale-invariant, its values are in the units of the coordinates.
#
# All of them live in `losses.boxes`, as classes (`EIoULoss(box_format="cxcywh")`, for
# `model.compile`) and as functions returning one loss per box; the functions are what we need
# here. First the property that every loss must have: identical boxes cost nothing.

# %%
LOSSES = {
    "IoU": boxes.iou_loss,
    "GIoU": boxes.giou_loss,
    "DIoU": boxes.diou_loss,
    "CIoU": boxes.ciou_loss,
    "EIoU": boxes.eiou_loss,
    "Focal-EIoU": boxes.focal_eiou_loss,
    "SIoU": boxes.siou_loss,
    "Smooth L1": boxes.smooth_l1_loss,
}
COLORS = dict(zip(LOSSES, plt.get_cmap("tab10").colors))


def loss_values(name, target, predicted):
    # One loss per box, boxes as (x_centre, y_centre, width, height).
    target = np.broadcast_to(np.asarray(target, np.float32), np.shape(predicted))
    fn = LOSSES[name]
    return ops.convert_to_numpy(fn(target, np.asarray(predicted, np.float32),
                                   box_format="cxcywh"))


rng = np.random.default_rng(SEED)
random_boxes = np.concatenate([rng.uniform(-5, 5, (64, 2)), rng.uniform(0.2, 4, (64, 2))], 1)
for name in LOSSES:
    worst = np.abs(loss_values(name, random_boxes, random_boxes)).max()
    print(f"{name:<11} largest loss over 64 pairs of identical boxes: {worst:.1e}")
    assert worst < 1e-5, name

# %% [markdown]
# ### Loss against a shift and a stretch
#
# The target is a 2×1 box centred at the origin. Left: the same box moved sideways by
# $\Delta x$ (the boxes stop overlapping at $|\Delta x| = 2$, shaded). Right: a concentric box
# whose width is multiplied by $s$. Smooth L1 ($\beta = 1$) uses the right-hand axis.

# %%
TARGET = np.array([0.0, 0.0, 2.0, 1.0], np.float32)            # cx, cy, w, h
shifts = np.linspace(-5, 5, 401)
stretches = np.geomspace(1 / 4, 4, 401)
shifted = np.stack([shifts, 0 * shifts, 2 + 0 * shifts, 1 + 0 * shifts], 1)
stretched = np.stack([0 * stretches, 0 * stretches, 2 * stretches, 1 + 0 * stretches], 1)
curves = {name: (loss_values(name, TARGET, shifted), loss_values(name, TARGET, stretched))
          for name in LOSSES}

# What the formulas say, checked: a pure shift of a same-sized box leaves the width, height
# and aspect ratio right, so CIoU and EIoU reduce to DIoU; a concentric stretch keeps one
# box inside the other (C = A ∪ B) and the centres together, so GIoU and DIoU reduce to IoU.
for name in ("CIoU", "EIoU"):
    assert np.allclose(curves[name][0], curves["DIoU"][0], atol=1e-5), name
for name in ("GIoU", "DIoU"):
    assert np.allclose(curves[name][1], curves["IoU"][1], atol=1e-5), name

fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
for ax, x, which, label in ((axes[0], shifts, 0, "horizontal shift Δx (target width 2)"),
                            (axes[1], stretches, 1, "width factor s (concentric)")):
    twin = ax.twinx()
    for name, values in curves.items():
        if name == "Smooth L1":
            twin.plot(x, values[which], "--", color="gray", label=name)
        else:
            # curves that coincide (checked above) are drawn dotted over the one they match
            style = ":" if name in (("CIoU", "EIoU"), ("GIoU", "DIoU"))[which] else "-"
            ax.plot(x, values[which], style, lw=2 if style == ":" else 1.5,
                    color=COLORS[name], label=name)
    ax.set(xlabel=label, ylabel="loss (IoU family)")
    twin.set_ylabel("Smooth L1 (gray, dashed)")
    ax.grid(alpha=0.3)
axes[0].axvspan(-5, -2, color="gray", alpha=0.1)
axes[0].axvspan(2, 5, color="gray", alpha=0.1)
axes[1].set_xscale("log", base=2)
axes[1].set_xticks([1 / 4, 1 / 2, 1, 2, 4], ["1/4", "1/2", "1", "2", "4"])
handles = [plt.Line2D([], [], color=COLORS[name], label=name) for name in LOSSES
           if name != "Smooth L1"]
handles.append(plt.Rectangle((0, 0), 1, 1, color="gray", alpha=0.1, label="no overlap"))
axes[1].legend(handles=handles, fontsize="small", loc="upper center", ncol=2)
fig.suptitle("Box losses for a 2×1 target: shifted copy (left), stretched width (right)")
fig.tight_layout()
fig.savefig(out / "losses_shift_stretch.png", dpi=110)
plt.show()


# %% [markdown]
# Left, the shift. IoU loss climbs to 1 and stays there once the boxes separate: every
# position beyond $|\Delta x| = 2$ is equally bad, so there is nothing to descend. GIoU keeps
# growing (towards 2) because the enclosing box keeps filling with empty space. DIoU, CIoU
# and EIoU are one curve here (dotted over solid): a same-sized box has the right width,
# height and aspect ratio, so only $\rho^2/c^2$ is left, and it keeps growing too. SIoU
# follows DIoU near the target and flattens further out, where its distance cost saturates.
# Focal-EIoU is the odd one: its weight
# $\mathrm{IoU}^{0.5}$ is 0 without overlap, so the loss *falls* back to 0 as the boxes
# separate — it is built to refine boxes that already overlap, not to find them.
#
# Right, the stretch. A concentric box of the same height has $\rho = 0$ and lies inside or
# around the target, so GIoU and DIoU say exactly what IoU says. Only CIoU (through the
# aspect ratio), EIoU (through $(w_A - w_B)^2/C_w^2$; Focal-EIoU is it, scaled down by
# $\mathrm{IoU}^{0.5}$) and SIoU (through its shape cost) add anything for the wrong width.
# CIoU's addition is barely visible: $\alpha = v / ((1 - \mathrm{IoU}) + v)$ is small while
# $1 - \mathrm{IoU}$ dominates (at $s = 4$, $\alpha v \approx 0.003$, against 0.56 for EIoU's
# width term). Smooth L1 (gray) is V-shaped in $\Delta x$ and in $w$: it knows
# nothing about overlap, and its scale depends on the size of the box.

# %% [markdown]
# ### Gradients where IoU is zero
#
# A loss drives training through its gradient. The next cell differentiates every loss with
# respect to the four numbers of the predicted box (the gradient helper works with the
# TensorFlow and the JAX backend, like `tests/gradients.py`) and plots its norm along the
# same horizontal shift.

# %%
def gradient_of(total_loss):
    # (x, target) -> d total_loss(x, target) / d x, compiled, with the active backend.
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def gradient(x, target):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = total_loss(x, target)
            return tape.gradient(value, x)

        return lambda x, target: gradient(tf.constant(x, tf.float32),
                                          tf.constant(target, tf.float32)).numpy()
    if backend == "jax":
        import jax

        gradient = jax.jit(jax.grad(total_loss))
        return lambda x, target: np.asarray(gradient(jax.numpy.asarray(x, "float32"),
                                                     jax.numpy.asarray(target, "float32")))
    raise NotImplementedError(f"this notebook's gradient helper has no {backend} branch")


# Summed over the boxes: the loss of box i depends on box i only, so the gradient of the sum
# with respect to box i is the gradient of its own loss.
GRADIENTS = {name: gradient_of(lambda x, target, fn=fn: ops.sum(fn(target, x,
                                                                   box_format="cxcywh")))
             for name, fn in LOSSES.items()}


def box_gradients(name, target, predicted):
    # d loss_i / d predicted_i for every box i, boxes as (cx, cy, w, h).
    predicted = np.asarray(predicted, np.float32)
    target = np.array(np.broadcast_to(np.asarray(target, np.float32), predicted.shape))
    return GRADIENTS[name](predicted, target)


norms = {name: np.linalg.norm(box_gradients(name, TARGET, shifted), axis=1) for name in LOSSES}
disjoint = np.abs(shifts) >= 2.5
print("gradient norm at Δx = 3 (disjoint boxes):")
for name in LOSSES:
    print(f"  {name:<11} {norms[name][np.argmin(np.abs(shifts - 3))]:.4f}")
# IoU (and Focal-EIoU, through its IoU^γ weight) give nothing to follow when the boxes are
# apart; the penalised losses do.
assert np.all(norms["IoU"][disjoint] == 0) and np.all(norms["Focal-EIoU"][disjoint] == 0)
for name in ("GIoU", "DIoU", "CIoU", "EIoU", "SIoU"):
    assert np.all(norms[name][disjoint] > 1e-3), name

fig, ax = plt.subplots(figsize=(8.5, 4.2))
for name, values in norms.items():
    ax.plot(shifts, values, "--" if name == "Smooth L1" else "-", color=COLORS[name],
            label=name)
ax.axvspan(-5, -2, color="gray", alpha=0.1)
ax.axvspan(2, 5, color="gray", alpha=0.1)
ax.set(xlabel="horizontal shift Δx (no overlap in the shaded parts)",
       ylabel="‖∂loss / ∂(cx, cy, w, h)‖", yscale="symlog",
       title="Gradient norm of each loss along the shift")
ax.set_yscale("symlog", linthresh=1e-2)
ax.grid(alpha=0.3)
ax.legend(fontsize="small", ncol=2)
fig.tight_layout()
fig.savefig(out / "gradient_norms.png", dpi=110)
plt.show()

# %% [markdown]
# Where the boxes are apart, IoU's gradient is exactly 0 — a detector whose initial box
# misses the object gets no signal from it — and so is Focal-EIoU's. GIoU, DIoU, CIoU, EIoU
# and SIoU keep a gradient, but it fades with the distance: DIoU's $\rho^2/c^2$ and GIoU's
# empty-area term both saturate as the boxes move apart (towards 1), so their slope goes to 0
# far away. Smooth L1's gradient never fades — the other side of not being scale-invariant.
#
# ### Loss surfaces in two dimensions
#
# Top row: the predicted box is the target's size, moved by $(\Delta x, \Delta y)$. Bottom
# row: it is concentric, with its width and height multiplied by $2^{a}$ and $2^{b}$. Colours
# are the loss (same scale in every panel); arrows show the direction of steepest descent
# (in $(\log w, \log h)$ below), and are missing where the gradient is 0.

# %%
SURFACE_LOSSES = ("IoU", "GIoU", "DIoU", "CIoU", "EIoU")
grid = np.linspace(-4, 4, 81 if SMOKE else 161)
gx, gy = np.meshgrid(grid, grid)
shift_grid = np.stack([gx, gy, 2 + 0 * gx, 1 + 0 * gx], -1).reshape(-1, 4)
log_grid = np.linspace(-2, 2, gx.shape[0])
la, lb = np.meshgrid(log_grid, log_grid)
scale_grid = np.stack([0 * la, 0 * la, 2 * 2.0**la, 2.0**lb], -1).reshape(-1, 4)
arrows = slice(None, None, max(1, gx.shape[0] // 12))
apart = ((np.abs(gx) > 2.01) | (np.abs(gy) > 1.01)).ravel()  # shifted copies that miss the target
off_course = {}   # mean angle between the descent direction and the straight line to the target

fig, axes = plt.subplots(2, len(SURFACE_LOSSES), figsize=(3.3 * len(SURFACE_LOSSES), 7.2),
                         sharex="row", sharey="row", layout="constrained")
levels = np.linspace(0, 2, 21)
for column, name in enumerate(SURFACE_LOSSES):
    for row, (points, x, y) in enumerate(((shift_grid, gx, gy), (scale_grid, la, lb))):
        ax = axes[row, column]
        values = loss_values(name, TARGET, points).reshape(x.shape)
        filled = ax.contourf(x, y, values, levels=levels, cmap="viridis", extend="max")
        ax.contour(x, y, values, levels=levels[::2], colors="white", linewidths=0.4)
        g = box_gradients(name, TARGET, points).reshape(x.shape + (4,))
        if row == 0:
            u, v = -g[..., 0], -g[..., 1]
            descent, to_target = np.stack([u, v], -1).reshape(-1, 2), -points[:, :2]
            moving = apart & (np.hypot(*descent.T) > 1e-6)
            cosine = (descent * to_target).sum(1) / (np.hypot(*descent.T)
                                                     * np.hypot(*to_target.T) + 1e-12)
            if moving.any():
                off_course[name] = np.degrees(np.arccos(np.clip(cosine[moving], -1, 1))).mean()
        else:  # d/d(log w) = w · d/dw
            u, v = -g[..., 2] * points[:, 2].reshape(x.shape), -g[..., 3] * points[:, 3].reshape(
                x.shape)
        length = np.hypot(u, v)
        keep = length > 1e-6
        u = np.where(keep, u / np.where(keep, length, 1), np.nan)
        v = np.where(keep, v / np.where(keep, length, 1), np.nan)
        ax.quiver(x[arrows, arrows], y[arrows, arrows], u[arrows, arrows], v[arrows, arrows],
                  color="white", scale=25, width=0.006)
        ax.plot(0, 0, "r+", ms=10)
        if row == 0:
            ax.set_title(name)
axes[0, 0].set_ylabel("shifted copy: Δy")
axes[1, 0].set_ylabel("concentric: log₂ height factor")
for ax in axes[0]:
    ax.set_xlabel("Δx")
for ax in axes[1]:
    ax.set_xlabel("log₂ width factor")
fig.colorbar(filled, ax=axes, shrink=0.6, label="loss")
fig.suptitle("Loss surfaces around a 2×1 target (red +): shifted copies (top), "
             "rescaled concentric boxes (bottom)")
fig.savefig(out / "loss_surfaces.png", dpi=110)
plt.show()
print("shifted copies without overlap: mean angle between the descent direction and the "
      "straight line to the target")
for name, angle in off_course.items():
    print(f"  {name:<5} {angle:5.1f}°")

# %% [markdown]
# Top row: IoU is a plateau with a hole — outside the $4 \times 2$ window where the boxes
# overlap there are no arrows at all (and IoU has no angle to print). GIoU slopes
# everywhere, but its contours are star-shaped: the loss falls fastest towards the row and
# the column of the target, where the enclosing box is thinnest, so its descent leaves the
# straight line to the target — by about 30° on average over the positions without overlap.
# DIoU's contours are closed curves around the target, and its descent stays closer to the
# straight line (about 15°), which is the DIoU paper's point. CIoU and EIoU are identical to
# DIoU on this row, as shown above.
#
# Bottom row: for a concentric box ($\rho = 0$) DIoU is IoU. GIoU is IoU too when one box
# contains the other (both factors above 1, or both below), and adds the empty corners of
# the enclosing box when one box is the wider and the other the taller (top-left and
# bottom-right). CIoU differs from IoU only off the diagonal, and only slightly: along the
# diagonal $a = b$ the box keeps the target's aspect ratio, $v = 0$. EIoU's terms in $w$ and
# $h$ steepen the surface in every direction, including along the diagonal.
#
# ### Where CIoU's aspect-ratio term is blind
#
# $v$ depends on $w/h$ only. Two consequences follow from the formula, and the EIoU paper
# builds its case on them: by Euler's theorem for a function of $w/h$,
# $w\,\partial v/\partial w + h\,\partial v/\partial h = 0$ — the term's gradient never says
# "grow" or "shrink" — and so $\partial v/\partial w$ and $\partial v/\partial h$ always have
# opposite signs: it can widen a box only by making it lower. A box with the right shape at
# the wrong size gets no help from it at all. EIoU's $(w_A - w_B)^2/C_w^2$ and
# $(h_A - h_B)^2/C_h^2$ pull width and height towards their targets independently. The cell
# checks both properties on random boxes, through the gradient of CIoU minus DIoU (which is
# $\alpha\nabla v$, $\alpha$ being held constant), and then looks at a half-size copy of the
# target.

# %%
rng = np.random.default_rng(SEED + 1)
targets = np.concatenate([rng.uniform(-1, 1, (256, 2)), rng.uniform(0.5, 3, (256, 2))], 1)
predicted = np.concatenate([rng.uniform(-1, 1, (256, 2)), rng.uniform(0.5, 3, (256, 2))], 1)
aspect = box_gradients("CIoU", targets, predicted) - box_gradients("DIoU", targets, predicted)
w, h, g_w, g_h = predicted[:, 2], predicted[:, 3], aspect[:, 2], aspect[:, 3]
print(f"max |w·∂(αv)/∂w + h·∂(αv)/∂h| = {np.abs(w * g_w + h * g_h).max():.1e} "
      f"(largest |∂(αv)/∂w| {np.abs(g_w).max():.2f})")
print(f"∂(αv)/∂w · ∂(αv)/∂h <= 0 for {np.mean(g_w * g_h <= 1e-9):.0%} of the pairs")
assert np.abs(w * g_w + h * g_h).max() < 1e-4
assert np.all(g_w * g_h <= 1e-9)

half = np.array([[0.0, 0.0, 1.0, 0.5]], np.float32)     # the 2×1 target at half size
print("\nconcentric half-size copy of the target (right shape, wrong size):")
print(f"{'loss':<8}{'value':>8}{'∂/∂w':>9}{'∂/∂h':>9}")
for name in ("IoU", "DIoU", "CIoU", "EIoU"):
    value = loss_values(name, TARGET, half)[0]
    gradient = box_gradients(name, TARGET, half)[0]
    print(f"{name:<8}{value:>8.4f}{gradient[2]:>9.4f}{gradient[3]:>9.4f}")
assert np.allclose(box_gradients("CIoU", TARGET, half), box_gradients("DIoU", TARGET, half),
                   atol=1e-6)


# %% [markdown]
# For the half-size box, CIoU's gradient *is* DIoU's, which here is IoU's: the aspect term
# contributes nothing, and only the overlap pulls the box up to size. EIoU adds its width and
# height terms on top and pushes three times harder, in both directions at once.
#
# ## Why, and when, EIoU converges faster: the toy regression
#
# The DIoU paper (Zheng et al., 2020) compares box losses without any network: boxes
# themselves are the parameters, moved by gradient descent onto fixed targets. We follow its
# setup at a smaller scale: 7 targets of area 1 at $(10, 10)$ with aspect ratios
# $1{:}4, 1{:}3, 1{:}2, 1{:}1, 2{:}1, 3{:}1, 4{:}1$; anchors centred at random points of the
# disc of radius 3 around them, with 7 scales (area $0.5$ to $2$) × the same 7 aspect ratios;
# every anchor is regressed onto every target (the paper uses 5,000 points, 1,715,000 pairs;
# full mode here uses 200 points, 68,600 pairs). Many anchors start without any overlap.
#
# Each box $(c_x, c_y, w, h)$ takes plain gradient-descent steps
# $b \leftarrow b - \eta_t \nabla_b L$ for $T$ iterations. The paper scales a constant step by
# $(2 - \mathrm{IoU})$; we decay the step instead, $\eta_t = \eta \cdot \tfrac12(1 + \cos(\pi t / T))$,
# because the IoU losses have kinks where box edges cross, so their gradient does not vanish
# at the target and a constant step leaves every loss oscillating around it. The same step
# sizes for every loss: how far a loss moves a box is part of what is compared. We record the
# mean IoU, the mean regression error $\sum_i |b_i - b_i^{gt}|$ over the four numbers, and,
# on the anchors that already have their target's aspect ratio (one in seven), the size error
# $|w - w^{gt}| + |h - h^{gt}|$ — the case where CIoU's aspect term is blind.

# %%
def regression_problem(points, seed=SEED):
    # (start boxes, target boxes, same aspect ratio?) as cxcywh arrays, DIoU-paper layout.
    ratios = np.array([1 / 4, 1 / 3, 1 / 2, 1, 2, 3, 4])
    scales = np.array([0.5, 0.67, 0.75, 1, 1.33, 1.5, 2])
    targets = np.stack([np.full(7, 10.0), np.full(7, 10.0), np.sqrt(ratios),
                        1 / np.sqrt(ratios)], 1)
    rng = np.random.default_rng(seed)
    radius, angle = 3 * np.sqrt(rng.uniform(size=points)), rng.uniform(0, 2 * np.pi, points)
    centres = 10 + np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)
    widths = np.sqrt(scales[:, None] * ratios[None, :]).ravel()
    heights = np.sqrt(scales[:, None] / ratios[None, :]).ravel()
    anchors = np.concatenate([np.repeat(centres, 49, 0),
                              np.tile(np.stack([widths, heights], 1), (points, 1))], 1)
    start = np.repeat(anchors, 7, 0).astype(np.float32)
    target = np.tile(targets, (len(anchors), 1)).astype(np.float32)
    same_aspect = np.isclose(start[:, 2] / start[:, 3], target[:, 2] / target[:, 3])
    return start, target, same_aspect


def regress(name, start, target, same_aspect, steps, step_size):
    b = start.copy()
    record = {"iou": [], "error": [], "size_error": []}
    for t in range(steps + 1):
        iou = ops.convert_to_numpy(boxes.elementwise_box_iou(b, target, box_format="cxcywh"))
        record["iou"].append(iou.mean())
        record["error"].append(np.abs(b - target).sum(1).mean())
        record["size_error"].append(np.abs(b - target)[same_aspect, 2:].sum(1).mean())
        if t < steps:
            step = step_size * 0.5 * (1 + np.cos(np.pi * t / steps))
            b = b - step * box_gradients(name, target, b)
    return {key: np.asarray(values) for key, values in record.items()}


REGRESSION_LOSSES = ("IoU", "GIoU", "DIoU", "CIoU", "EIoU", "SIoU", "Smooth L1")
start, target, same_aspect = regression_problem(REGRESSION_POINTS)
start_iou = ops.convert_to_numpy(boxes.elementwise_box_iou(start, target, box_format="cxcywh"))
print(f"{np.mean(start_iou == 0):.0%} of the pairs start without any overlap")
started = time.perf_counter()
regression = {name: regress(name, start, target, same_aspect, REGRESSION_STEPS,
                            REGRESSION_STEP_SIZE)
              for name in REGRESSION_LOSSES}
print(f"{len(start):,} box pairs, {REGRESSION_STEPS} steps, "
      f"{time.perf_counter() - started:.1f} s for {len(REGRESSION_LOSSES)} losses")
assert all(np.isfinite(r["error"]).all() for r in regression.values())

marks = sorted({REGRESSION_STEPS // 10, REGRESSION_STEPS // 4, REGRESSION_STEPS // 2,
                REGRESSION_STEPS})
print(f"\n{'loss':<11}" + "".join(f"{'IoU@' + str(t):>9}" for t in marks)
      + "".join(f"{'err@' + str(t):>9}" for t in marks) + f"{'size err@' + str(marks[0]):>13}")
for name, r in regression.items():
    print(f"{name:<11}" + "".join(f"{r['iou'][t]:>9.3f}" for t in marks)
          + "".join(f"{r['error'][t]:>9.3f}" for t in marks)
          + f"{r['size_error'][marks[0]]:>13.3f}")

fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
panels = (("iou", "mean IoU", "linear"), ("error", "mean Σ|b − b_gt|", "log"),
          ("size_error", "|Δw| + |Δh|, anchors with the target's aspect ratio", "log"))
steps = np.arange(REGRESSION_STEPS + 1)
for ax, (key, label, scale) in zip(axes, panels):
    for name, r in regression.items():
        ax.plot(steps, r[key], "--" if name == "Smooth L1" else "-", color=COLORS[name],
                label=name)
    ax.set(xlabel="iteration", title=label, yscale=scale)
    if scale == "log":  # Smooth L1 goes far lower; keep the IoU family readable
        lowest = min(r[key].min() for name, r in regression.items() if name != "Smooth L1")
        ax.set_ylim(bottom=max(lowest / 3, 1e-6))
    ax.grid(alpha=0.3)
axes[0].legend(fontsize="small")
fig.suptitle(f"Toy regression: {len(start):,} anchor/target pairs, gradient descent on "
             "(cx, cy, w, h)")
fig.tight_layout()
fig.savefig(out / "toy_regression.png", dpi=110)
plt.show()


# %% [markdown]
# What the curves show, in the full run (68,600 pairs, 85 % of them without overlap at the
# start; SMOKE mode uses 1,372 pairs and 40 steps, too few to read much into):
#
# - **IoU** barely moves (final mean IoU 0.12): the pairs that start apart never get a
#   gradient. Every penalised loss closes most of the gap.
# - **EIoU ends best of the family** on both measures: mean IoU 0.967 (CIoU 0.961, GIoU
#   0.951, DIoU 0.916) and regression error 0.062 (CIoU 0.086, GIoU 0.135, DIoU 0.222).
#   Against CIoU, its regression error is lower at every iteration — although CIoU's mean
#   IoU is the higher of the two until about iteration 130.
# - **The right panel is where EIoU's design shows.** For anchors that have the right aspect
#   ratio but the wrong size, EIoU's size error drops from the first iterations (0.29 after
#   20 steps, against 0.51 for DIoU and CIoU) and ends near $10^{-4}$, while GIoU, DIoU and
#   CIoU end near $2 \cdot 10^{-2}$. On this subset **CIoU is DIoU**, curve on curve: the aspect term
#   gives them nothing, exactly as the analysis above predicts, and only the overlap term
#   fixes their size.
# - **GIoU leads early**: it has the highest mean IoU of the family until about iteration 80
#   and the lowest error from about iteration 15 to 80. Most pairs start apart, and there
#   GIoU's gradient is several times larger than DIoU's, CIoU's or EIoU's
#   (0.45 against 0.12 at $\Delta x = 3$ in the gradient figure): with the same step size it
#   covers more ground early. It also gets to an overlap by growing the box — its size error
#   on the right *rises* first — which it must undo later. So "EIoU converges faster" holds
#   against CIoU and DIoU here, and against everything for the final accuracy, but not for
#   the first iterations against GIoU; with another step-size rule (the papers' $(2 - \mathrm{IoU})$
#   scaling, or per-loss tuning) the early ranking can change.
# - **SIoU** is the slowest of the penalised losses with this step size: its distance cost
#   saturates ($1 - e^{-\gamma\rho}$), so far boxes get a weak pull.
# - **Smooth L1** beats the whole family on this toy (its curves run off the bottom of the
#   log panels): every box has the same scale, area about 1, so a loss on raw coordinates is
#   perfectly tuned to it. Its weakness shows on real data, where boxes of 12 and 48 pixels
#   should not be weighted by their pixel errors — the reason detectors moved to
#   scale-invariant IoU losses in the first place.
#
# The EIoU paper's argument — CIoU's $v$ fixes the aspect ratio but not the size, EIoU
# regresses width and height directly — is borne out where it applies: boxes of the right
# shape and the wrong size. On the mean over all pairs the gain over CIoU is modest.

# %% [markdown]
# ## RepVGG: three branches for training, one convolution for inference
#
# A RepVGG block (Ding et al., 2021) trains as three parallel branches, each followed by
# batch normalisation, summed, then ReLU:
# $$y = \mathrm{ReLU}\big(\mathrm{BN}_3(W_3 * x) + \mathrm{BN}_1(W_1 * x) + \mathrm{BN}_{id}(x)\big).$$
# The 1×1 and identity branches make the block behave like a residual block while training
# (easy gradient flow); the identity only exists when the block keeps the shape. At
# inference every operation before the ReLU is linear, so it folds into one 3×3 convolution.
# With BN in inference mode, $\mathrm{BN}(z) = \tfrac{\gamma}{\sigma} z + (\beta - \tfrac{\gamma\mu}{\sigma})$,
# $\sigma = \sqrt{\mathrm{var} + \epsilon}$, and
# $$W' = \tfrac{\gamma_3}{\sigma_3} W_3 + \mathrm{pad}\big(\tfrac{\gamma_1}{\sigma_1} W_1\big) + \tfrac{\gamma_{id}}{\sigma_{id}} I,\qquad b' = \textstyle\sum_{\text{branches}} \big(\beta - \tfrac{\gamma\mu}{\sigma}\big),$$
# where pad() puts the 1×1 kernel at the centre of a 3×3 kernel and $I$ is the 3×3 kernel
# with 1 at the centre for input channel $i$ = output channel $i$. (Keras kernels are
# (kh, kw, in, out), so the identity goes at `[1, 1, i, i]`.)
#
# `zoo.models.repvgg.RepVGGBlock` computes $W', b'$ in `fused_kernel_and_bias()`, and
# `repvgg.reparameterize(model)` replaces every block of a functional model by the fused
# convolution and its ReLU. The cell builds one block, gives its BN layers non-trivial
# statistics (fresh BN layers are the identity, which would make the check too easy), folds
# it by the formula above in NumPy, and compares with LossLab and with the outputs.

# %%
def randomize_batchnorm(model, seed):
    # Non-trivial γ, β, moving mean and variance for every BN layer (as after training).
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                               rng.normal(0, 0.1, n), rng.uniform(0.5, 1.5, n)])


CHANNELS = 8
inputs = keras.Input((16, 16, CHANNELS))
block = repvgg.RepVGGBlock(CHANNELS, name="block")
block_model = keras.Model(inputs, block(inputs))
randomize_batchnorm(block_model, SEED)


def folded(bn):
    # (scale, shift) of a BN layer in inference mode: BN(z) = scale·z + shift.
    gamma, beta, mean, variance = (np.asarray(w, np.float64) for w in bn.get_weights())
    scale = gamma / np.sqrt(variance + bn.epsilon)
    return scale, beta - mean * scale


branches = {}
scale, shift = folded(block.bn3x3)
branches["3×3 conv + BN"] = np.asarray(block.conv3x3.kernel, np.float64) * scale
bias = shift
scale, shift = folded(block.bn1x1)
branches["1×1 conv + BN"] = np.zeros_like(branches["3×3 conv + BN"])
branches["1×1 conv + BN"][1, 1] = np.asarray(block.conv1x1.kernel, np.float64)[0, 0] * scale
bias = bias + shift
scale, shift = folded(block.bn_identity)
branches["identity + BN"] = np.zeros_like(branches["3×3 conv + BN"])
branches["identity + BN"][1, 1, np.arange(CHANNELS), np.arange(CHANNELS)] = scale
bias = bias + shift
kernel = sum(branches.values())

ours, ours_bias = block.fused_kernel_and_bias()
print("LossLab's fused kernel vs the NumPy fold: max |Δ| =",
      f"{max(np.abs(ours - kernel).max(), np.abs(ours_bias - bias).max()):.1e}")
assert np.abs(ours - kernel).max() < 1e-5 and np.abs(ours_bias - bias).max() < 1e-5

x = np.random.default_rng(SEED).normal(size=(4, 16, 16, CHANNELS)).astype("float32")
fused_block = repvgg.reparameterize(block_model)
difference = np.abs(ops.convert_to_numpy(block_model(x, training=False))
                    - ops.convert_to_numpy(fused_block(x))).max()
print(f"training form (inference mode) vs fused block: max |Δ| = {difference:.1e}")
assert difference < 1e-4
print("layers after fusion:", [type(layer).__name__ for layer in fused_block.layers])

fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
limit = np.abs(kernel[:, :, 0, 0]).max()
panels = list(branches.items()) + [("fused 3×3 kernel", kernel)]
for ax, (title, k) in zip(axes, panels):
    ax.imshow(k[:, :, 0, 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
    for (i, j), value in np.ndenumerate(k[:, :, 0, 0]):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=9)
    ax.set(title=title, xticks=[], yticks=[])
for ax, sign in zip(axes[:3], ("+", "+", "=")):
    ax.text(1.13, 0.5, sign, transform=ax.transAxes, fontsize=20, va="center")
fig.suptitle("One RepVGG block, input channel 0 → output channel 0: the three BN-scaled "
             "branches and their sum")
fig.tight_layout()
fig.savefig(out / "repvgg_fusion.png", dpi=110)
plt.show()

# %% [markdown]
# The difference between the two forms is at the level of float32 rounding: fusion is exact
# algebra, not an approximation. It holds in *inference* mode only — during training BN
# normalises with the batch statistics, which are not constants.
#
# What fusion buys is a plain stack of 3×3 convolutions and ReLUs: fewer layers, fewer
# parameters, no branch to wait for, less memory traffic. The detector's backbone
# (`repvgg_backbone` with the detector's widths 16-32-64-128 and depths 1-2-2-2, stride-2
# blocks included) on 128×128 images: parameter counts, the same exactness check, and the
# median time of a forward pass over a few repetitions, both forms timed in the same run.
# Seven blocks of randomised BN statistics make the activations grow to about 100, so the
# exactness check is relative here: float32 rounding grows with the size of the numbers.

# %%
backbone = repvgg.repvgg_backbone((128, 128, 3), widths=(16, 32, 64, 128), depths=(1, 2, 2, 2))
randomize_batchnorm(backbone, SEED + 2)
fused_backbone = repvgg.reparameterize(backbone)
images = np.random.default_rng(SEED).uniform(size=(TIMING_BATCH, 128, 128, 3)).astype("float32")
reference = ops.convert_to_numpy(backbone(images, training=False))
difference = np.abs(reference - ops.convert_to_numpy(fused_backbone(images))).max()
relative = difference / np.abs(reference).max()
print(f"backbone: max |Δ| = {difference:.1e} on outputs of size up to "
      f"{np.abs(reference).max():.1f}, i.e. {relative:.1e} of the largest output")
assert relative < 1e-5  # float32 rounding grows with the size of the activations


def median_seconds(model, images, reps):
    model.predict_on_batch(images)  # compile once, outside the timing
    seconds = []
    for _ in range(reps):
        started = time.perf_counter()
        model.predict_on_batch(images)
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds))


timings = {}
for rep in range(3):  # alternate the two models so that a busy machine hurts both alike
    for name, model in (("training form", backbone), ("fused", fused_backbone)):
        timings.setdefault(name, []).append(median_seconds(model, images, TIMING_REPS))
print(f"\n{'form':<15}{'parameters':>12}{'ms / batch of ' + str(TIMING_BATCH):>20}")
for name, model in (("training form", backbone), ("fused", fused_backbone)):
    print(f"{name:<15}{model.count_params():>12,}{1000 * min(timings[name]):>20.1f}")
print(f"fused / training-form time: {min(timings['fused']) / min(timings['training form']):.2f}")

# %% [markdown]
# The fused backbone has 11 % fewer parameters (the 1×1 kernels and the BN layers are folded
# away; the training form's count includes BN's moving statistics), and it ran in about two
# thirds of the time in our full run: 19 ms against 28 ms for a batch of 32 images. Take the
# timing with care: on our shared 2-core machine, repeated measurements of the ratio ranged
# from 0.65 to above 1 while other jobs were running, which is why the two forms are timed in
# alternation and the best of three medians is kept (and SMOKE mode, which runs TensorFlow
# without oneDNN, is not comparable). The paper reports its speed-ups on GPUs, where a plain
# stack of 3×3 convolutions is what the hardware runs best.
#
# ## The detector
#
# `zoo.models.detector` is a small two-step detector built from these pieces:
#
# 1. **Step 1**, `DenseDetector`: a RepVGG backbone, a one-level neck at stride 8 and a dense
#    anchor-free head (FCOS-style). Every cell of the 16×16 grid predicts an objectness logit
#    and four distances to the box edges. Cells near an object's centre are its positives;
#    the loss is a sigmoid focal loss on objectness plus the **box loss** — EIoU here — on the
#    positives. Targets are built inside the model's `compute_loss`, in `keras.ops`.
# 2. **Step 2**, a small RepVGG crop classifier: every box kept after NMS is cut out
#    (with some context) and classified into the 5 shape classes or "background".
#
# `train_two_step` trains both (step 1 on random horizontal flips of the scenes, step 2 on
# jittered ground-truth crops plus background crops) and returns the assembled
# `TwoStepDetector`. Both compile with XLA (`jit_compile=True`): besides speed, it avoids a
# crash of TensorFlow 2.21's oneDNN kernel for the gradient of the RepVGG stem's 1×1
# stride-2 convolution on CPU (see `zoo/training/tasks/detection.py`). For the same reason this
# notebook does not turn on TensorFlow's op determinism, which would make Keras drop XLA.
# (SMOKE mode trains without XLA, with oneDNN switched off instead: for one or two steps,
# compiling would take longer than training.)
#
# The data are seeded synthetic scenes (`synthetic_scene_set`): 128×128 images with 1–6
# filled shapes (circle, square, triangle, diamond, cross) of 12–48 pixels on textured
# backgrounds; training scenes come from seed 0, test scenes from seed 1. The full run
# (2,000 scenes, 6 epochs of step 1, 8 of step 2) is the budget at which this detector
# reaches AP@.5 of about 0.9; training takes about 5–8 minutes on 2 CPU cores.

# %%
train_set = synthetic_scene_set(TRAIN_SCENES, seed=0)
test_set = synthetic_scene_set(TEST_SCENES, seed=1)
print(f"train {train_set.images.shape}, {int(train_set.num_objects.sum())} objects; "
      f"test {test_set.images.shape}, {int(test_set.num_objects.sum())} objects; "
      f"classes {train_set.class_names}")

started = time.perf_counter()
pipeline, histories = train_two_step(train_set, box_loss=BOX_LOSS, epochs=EPOCHS,
                                     classifier_epochs=CLASSIFIER_EPOCHS,
                                     batch_size=BATCH_SIZE, seed=SEED, verbose=0,
                                     jit_compile=JIT_COMPILE,
                                     detector_kwargs=DETECTOR_KWARGS,
                                     classifier_kwargs=CLASSIFIER_KWARGS)
print(f"trained both steps in {time.perf_counter() - started:.0f} s")
print("detector parameters:", f"{pipeline.detector.count_params():,}",
      "· classifier parameters:", f"{pipeline.classifier.count_params():,}")

history = histories["detector"].history
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
epochs = np.arange(1, len(history["loss"]) + 1)
for key in ("loss", "objectness_loss", "box_loss"):
    axes[0].plot(epochs, history[key], marker="o", ms=3, label=key)
axes[0].set(xlabel="epoch", title=f"step 1 training losses (box loss: {BOX_LOSS})")
classifier_history = histories["classifier"].history
axes[1].plot(np.arange(1, len(classifier_history["accuracy"]) + 1),
             classifier_history["accuracy"], marker="o", ms=3, color="black")
axes[1].set(xlabel="epoch", title="step 2 crop classifier: training accuracy")
for ax in axes:
    ax.grid(alpha=0.3)
axes[0].legend(fontsize="small")
fig.tight_layout()
fig.savefig(out / "training.png", dpi=110)
plt.show()

# %% [markdown]
# ### Evaluation
#
# `evaluate_pipeline` runs the whole pipeline on the test scenes and scores it with
# `zoo.evaluation.detection.evaluate_detections`: COCO mAP (AP averaged over IoU thresholds 0.50 to
# 0.95, through pycocotools), AP@.5 and AP@.75, and precision, recall and F1 at IoU 0.5 at
# the confidence threshold that maximises F1. It also scores step 1 alone, class-agnostic
# ("is there an object here?"), which separates localisation errors from classification
# errors.

# %%
evaluation = evaluate_pipeline(pipeline, test_set)
result = evaluation["result"]
print(f"{len(test_set)} test scenes, {result['num_ground_truth']} objects, "
      f"{result['num_predictions']} detections")
print(f"mAP@[.5:.95] {result['map']:.3f}   AP@.5 {result['map_50']:.3f}   "
      f"AP@.75 {result['map_75']:.3f}")
print(f"best F1 {result['f1']:.3f} (precision {result['precision']:.3f}, recall "
      f"{result['recall']:.3f}) at score >= {result['score_threshold']:.3f}")
print(f"step 1 alone, class-agnostic: AP@.5 {evaluation['step1_map_50']:.3f}, "
      f"mAP {evaluation['step1_map']:.3f}")
print("per class AP@.5:", {name: round(v["ap_50"], 3) for name, v in result["per_class"].items()})

title = f"detector · synthetic scenes · {BOX_LOSS}"
display(Image(filename=str(plot_pr_curves(result, out / "pr_curves.png", title))))

threshold = result["score_threshold"] if np.isfinite(result["score_threshold"]) else 0.5
shown = min(8, len(test_set))
gallery = plot_detection_gallery(test_set.images[:shown], test_set.subset(range(shown)),
                                 evaluation["detections"][:shown], test_set.class_names,
                                 out / "detections.png", score_threshold=threshold,
                                 title=f"{title}: true boxes (green), detections with score "
                                       f">= {threshold:.2f} (red)")
display(Image(filename=str(gallery)))

# %% [markdown]
# In SMOKE mode the detector has seen 32 scenes once and finds next to nothing; the numbers
# mean something only in the full run. There, expect AP@.5 around 0.93 (`benchmarks/detector.py`
# measured 0.935 ± 0.005 over 3 seeds with this recipe) and a clearly lower mAP@[.5:.95]: boxes are found, but the strict
# IoU thresholds (0.85–0.95) are hard to meet on objects of 12–48 pixels predicted from a
# stride-8 grid. The step-1 AP tells how much of the remaining error is localisation: when
# it is close to the pipeline's AP, the crop classifier is rarely wrong. The PR curves show
# the same per class (thin lines), with the pooled curve in black; the gallery shows the
# detections at the best-F1 threshold.
#
# ### The fused pipeline finds the same boxes
#
# `pipeline.fused()` folds every RepVGG block of both networks. Its step-1 outputs must
# match the training form's, and so must the evaluation.

# %%
fused = pipeline.fused()
batch = test_set.images[:8]
fused_step1, step1 = fused.step1(batch), pipeline.step1(batch)
scores_difference = np.abs(np.asarray(fused_step1["scores"]) - np.asarray(step1["scores"])).max()
# box edges are s·exp(raw) away from the cell: compare them relative to their size
box_sizes = np.maximum(np.abs(np.asarray(step1["boxes"])), 1.0)
boxes_difference = (np.abs(np.asarray(fused_step1["boxes"]) - np.asarray(step1["boxes"]))
                    / box_sizes).max()
print(f"step 1, fused vs training form: max |Δ logit| = {scores_difference:.1e}, "
      f"max relative |Δ box| = {boxes_difference:.1e}")
fused_evaluation = evaluate_pipeline(fused, test_set)
fused_result = fused_evaluation["result"]
step1_seconds = {"training form": median_seconds(pipeline.detector, batch, TIMING_REPS),
                 "fused": median_seconds(fused.detector, batch, TIMING_REPS)}
print(f"{'pipeline':<16}{'mAP':>8}{'AP@.5':>8}{'F1':>8}{'step-1 ms / batch of 8':>25}")
for name, e in (("training form", evaluation), ("fused", fused_evaluation)):
    print(f"{name:<16}{e['result']['map']:>8.4f}{e['result']['map_50']:>8.4f}"
          f"{e['result']['f1']:>8.4f}{1000 * step1_seconds[name]:>25.1f}")
assert scores_difference < 1e-3 and boxes_difference < 1e-4
assert abs(fused_result["map_50"] - result["map_50"]) < 0.005
assert abs(fused_result["map"] - result["map"]) < 0.005

pipeline.save(out / "pipeline")
fused.save(out / "pipeline_fused")
print("saved", out / "pipeline", "and", out / "pipeline_fused")

# %% [markdown]
# The fused pipeline gives the same AP (the tolerance is for rounding: a logit that moves by
# $10^{-6}$ can swap two detections of nearly equal score), from plain 3×3 convolutions and
# ReLUs that load in any Keras without LossLab. The last column times the step-1 network in
# both forms; its neck and output convolutions are not RepVGG blocks, so fusion changes a
# smaller share of it than of the bare backbone. End to end, NMS and the crops (NumPy) are
# not touched by fusion at all.
#
# ## On real photos
#
# Synthetic scenes are the easy case: few textures, crisp edges, objects of known sizes. The
# same detector on real images, in two settings the benchmark (`benchmarks/detector.py`)
# measures over three seeds:
#
# - **kangaroo**: 164 photos of kangaroos (Pascal VOC; github.com/experiencor/kangaroo), one
#   class, one to a few animals of any size per photo, split 80/20 by a seeded permutation.
#   The photos are letterboxed into the 128-px input and augmented (`BoxAugmenter`: flips,
#   zoom, crops). Step 1 starts from the RepVGG backbone shipped as `repvgg_tiny.cifar10`
#   (pretrained on CIFAR-10 photos) and predicts from three strides (8, 16, 32), since a
#   kangaroo can fill the frame.
# - **NEON tree crowns**: aerial tiles of 400 to 2,500 px with trees of 25–45 px. Letterboxed
#   whole into 256 px a crown would shrink to a few pixels, so the detector trains on random
#   256-px windows at native resolution and `evaluate_pipeline` runs it tile by tile over the
#   test tile, merging the boxes of overlapping tiles with NMS.
#
# With `KANGAROO_DIR = None` the notebook looks for the photos next to the repository (or
# clones them on Colab); the NEON tiles come out of the `deepforest` wheel on PyPI, which
# `zoo.datasets.neon_trees` downloads (a few MB) and checks by SHA-256.

# %%
def find_kangaroo():
    candidates = [KANGAROO_DIR] if KANGAROO_DIR else [
        "../shared/datasets/kangaroo", "../../shared/datasets/kangaroo", "kangaroo"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "annots").is_dir():
            return Path(candidate)
    if "google.colab" in sys.modules:  # pragma: no cover
        subprocess.run(["git", "clone", "-q", "--depth", "1",
                        "https://github.com/experiencor/kangaroo", "kangaroo"], check=True)
        return Path("kangaroo")
    return None


def per_image_outcome(detections, test_set, threshold, iou=0.5):
    """(found, missed, false) per image at a score threshold, by the matching the metrics use
    (`match_detections`: greedily by score, IoU >= iou, detections on difficult boxes
    ignored): true positives, true boxes left unmatched, false positives."""
    kept = [tuple(np.asarray(a)[np.asarray(scores) >= threshold] for a in (boxes_, scores, cls))
            for boxes_, scores, cls in detections]
    matches = match_detections(kept, test_set, len(test_set.class_names), iou)
    counted = (test_set.classes >= 0) & ~test_set.difficult
    outcomes = []
    for i, true_boxes in enumerate(counted.sum(axis=1)):
        hits = matches["true_positive"][matches["image"] == i]
        outcomes.append((int(hits.sum()), int(true_boxes - hits.sum()), int((~hits).sum())))
    return outcomes


kangaroo_dir = find_kangaroo()
if kangaroo_dir is None:
    print("no kangaroo photos found: set KANGAROO_DIR to a Pascal VOC folder")
else:
    k_train, k_test, k_info = load_detection_data(f"voc:{kangaroo_dir}")
    print(k_info["split"])
    started = time.perf_counter()
    k_pipeline, _ = train_two_step(
        k_train, box_loss=BOX_LOSS, epochs=REAL_EPOCHS, classifier_epochs=CLASSIFIER_EPOCHS,
        batch_size=BATCH_SIZE, seed=SEED, verbose=0, jit_compile=JIT_COMPILE,
        augment=k_info["augment"],
        detector_kwargs={**REAL_KWARGS, "backbone_weights": REAL_BACKBONE,
                         "stride": (8, 16, 32)},
        classifier_kwargs=CLASSIFIER_KWARGS)
    print(f"trained both steps in {time.perf_counter() - started:.0f} s")
    k_evaluation = evaluate_pipeline(k_pipeline, k_test)
    k_result = k_evaluation["result"]
    print(f"{len(k_test)} test photos, {k_result['num_ground_truth']} kangaroos")
    print(f"two-step: AP@.5 {k_result['map_50']:.3f}, mAP {k_result['map']:.3f}, best F1 "
          f"{k_result['f1']:.3f} (precision {k_result['precision']:.3f}, recall "
          f"{k_result['recall']:.3f})")
    print(f"step 1 alone: AP@.5 {k_evaluation['step1_map_50']:.3f}, mAP "
          f"{k_evaluation['step1_map']:.3f}")

# %% [markdown]
# Where it succeeds and where it fails: the test photos ordered by their outcome at the
# best-F1 threshold — first those where every kangaroo is found with no false alarm, last
# those with the most misses and false alarms.

# %%
if kangaroo_dir is not None:
    k_threshold = (k_result["score_threshold"] if np.isfinite(k_result["score_threshold"])
                   else 0.5)
    outcomes = per_image_outcome(k_evaluation["detections"], k_test, k_threshold)
    order = sorted(range(len(k_test)), key=lambda i: (outcomes[i][1] + outcomes[i][2], i))
    hits = [i for i in order if outcomes[i][1] == 0 and outcomes[i][2] == 0][:4]
    misses = [i for i in order[::-1] if outcomes[i][1] + outcomes[i][2] > 0][:4]
    print(f"at score >= {k_threshold:.2f}: {sum(o[1] == 0 and o[2] == 0 for o in outcomes)} "
          f"of {len(k_test)} photos exactly right; "
          f"{sum(o[1] for o in outcomes)} kangaroos missed, "
          f"{sum(o[2] for o in outcomes)} false alarms in all")
    for name, chosen in (("hits", hits), ("misses", misses)):
        if not chosen:
            print(f"no {name} to show")
            continue
        path = plot_detection_gallery(
            k_test.images[chosen], k_test.subset(chosen),
            [k_evaluation["detections"][i] for i in chosen], k_test.class_names,
            out / f"kangaroo_{name}.png", score_threshold=k_threshold,
            title=f"kangaroo, {name}: true boxes (green), detections >= {k_threshold:.2f} (red)")
        display(Image(filename=str(path)))

# %% [markdown]
# ### Trees in a large aerial tile
#
# The NEON test tile holds 279 trees. The detector below trains on 256-px windows of the three
# training tiles (rotated and mirrored) for fewer epochs than the benchmark, and runs over
# the test tile in overlapping windows; `untiled_map_50` is the same detector on the whole
# tile letterboxed into its input, where the crowns become specks.

# %%
n_train, n_test, n_info = load_detection_data("neon_trees")
print(n_info["split"])
started = time.perf_counter()
n_pipeline, _ = train_two_step(
    n_train, box_loss=BOX_LOSS, epochs=NEON_EPOCHS, classifier_epochs=CLASSIFIER_EPOCHS,
    batch_size=16, seed=SEED, verbose=0, jit_compile=JIT_COMPILE,
    detector_kwargs={**REAL_KWARGS, "backbone_weights": REAL_BACKBONE, "tile_size": 256},
    classifier_kwargs=CLASSIFIER_KWARGS)
print(f"trained both steps in {time.perf_counter() - started:.0f} s")
n_evaluation = evaluate_pipeline(n_pipeline, n_test)
n_result = n_evaluation["result"]
print(f"tiled: AP@.5 {n_result['map_50']:.3f} (step 1 alone "
      f"{n_evaluation['step1_map_50']:.3f}), best F1 {n_result['f1']:.3f}; whole tile "
      f"letterboxed: AP@.5 {n_evaluation['untiled_map_50']:.3f}")
n_threshold = n_result["score_threshold"] if np.isfinite(n_result["score_threshold"]) else 0.5
h, w = (int(v) for v in n_test.original_sizes[0][:2])
path = plot_detection_gallery([n_test.images[0, :h, :w]], n_test,
                              n_evaluation["detections"], n_test.class_names,
                              out / "neon_tiled.png", score_threshold=n_threshold, columns=1,
                              panel_inches=9, labels=False,
                              title=f"NEON test tile, tiled: true crowns (green), detections "
                                    f">= {n_threshold:.2f} (red)")
display(Image(filename=str(path)))

# %% [markdown]
# ### What the benchmark measured
#
# One seed and a short budget say little on 33 photos and one tile; the benchmark trains
# each setting with three seeds. Its table, read from `benchmarks/results/detector.json`:

# %%
def find_results():
    for candidate in ("benchmarks/results", "../benchmarks/results",
                      "losslab/benchmarks/results"):
        if (Path(candidate) / "detector.json").exists():
            return Path(candidate) / "detector.json"
    return None


stored = find_results()
if stored is None:
    print("benchmarks/results/detector.json not found: run benchmarks/detector.py")
else:
    import json

    bench = json.loads(stored.read_text())
    print(f"{'setting':<52}{'two-step AP@.5':>18}{'step 1 alone':>16}")
    for key, label in (("voc", "kangaroo, random weights, stride 8"),
                       ("voc_pretrained", "kangaroo, CIFAR-10 backbone, stride 8"),
                       ("voc_pretrained_pyramid", "kangaroo, CIFAR-10 backbone, strides 8-32")):
        if key in bench:
            row = bench[key]["table"]["eiou"]
            print(f"{label:<52}{row['map_50']['mean']:>10.3f} ± {row['map_50']['std']:.3f}"
                  f"{row['step1_map_50']['mean']:>9.3f} ± {row['step1_map_50']['std']:.3f}")
    for key, label in (("neon", "NEON tiled, random weights"),
                       ("neon_pretrained", "NEON tiled, CIFAR-10 backbone")):
        if key in bench:
            runs = bench[key]["runs"]
            two = np.array([r["map_50"] for r in runs])
            one = np.array([r["step1_map_50"] for r in runs])
            print(f"{label:<52}{two.mean():>10.3f} ± {two.std(ddof=1):.3f}"
                  f"{one.mean():>9.3f} ± {one.std(ddof=1):.3f}")

# %% [markdown]
# Real photos are where this detector is weakest, and the galleries show why. It gets single
# kangaroos standing clear on grass, with loose boxes. It fails where animals crowd or
# overlap: a mob of seven gets one box around all of them, two kangaroos side by side get one
# box spanning both, and in a photo with people, logs and rocks step 1 fires on the
# background too. In this one-seed run the AP@.5 (0.37) is near the best seeds of the
# benchmark, which averages 0.28 ± 0.17 over three: on 33 test photos one seed moves the
# number a lot. The CIFAR-10 backbone is what lifts step 1 (from 0.20 to above 0.3 in the
# benchmark): 131 training photos are too few to learn photo features from scratch. Step 2
# does not earn its cost on these one-class sets. Here it changes no ranking (two-step and
# step 1 alone score the same); in the benchmark it lowers the AP, because its crop
# classifier, trained on true crops and random background, passes step 1's false alarms.
#
# On the NEON tile the road stays empty and most detections sit on crowns. They are smaller
# than the annotated crowns, though, and come in clusters of overlapping boxes on one tree,
# while many crowns get none. Tiling is what makes detection possible at all: the whole tile
# letterboxed into the input scores 0.
#
# ## Conclusion
#
# - Among the IoU losses, only those with a penalty term give a gradient when the predicted
#   box misses the target; IoU and Focal-EIoU give none. The penalties differ in what they
#   see: GIoU the empty part of the enclosing box, DIoU the distance between the centres,
#   CIoU the centres plus the aspect ratio, EIoU the centres plus the width and the height.
# - CIoU's aspect-ratio term has no component along "grow" or "shrink" (checked above:
#   $w\,\partial v/\partial w + h\,\partial v/\partial h = 0$), so a box with the right shape
#   and the wrong size gets no help from it. EIoU's width and height terms do help: in the
#   toy regression EIoU fixes such boxes' size far faster than any other IoU loss, stays
#   ahead of CIoU on the regression error throughout, and ends best of the family on both
#   error and IoU. It is not the fastest everywhere: in the first iterations GIoU, whose
#   gradient is larger far from the target, is ahead. On a toy with boxes of a single scale,
#   plain Smooth L1 beats them all — the IoU family earns its place on real data, where box
#   sizes vary.
# - RepVGG's re-parameterisation is exact (float32 rounding) in inference mode: the trained
#   three-branch network becomes a plain 3×3-conv stack with fewer parameters, faster on our
#   CPU (the benchmark: step-1 network ×1.66 images/s, pipeline ×1.17, same AP), and the detector's fused pipeline gives the same AP.
# - The two-step detector, trained with EIoU on synthetic scenes (`train_two_step`),
#   reaches AP@.5 0.935 ± 0.005 at the full budget (3 seeds, `benchmarks/detector.py`). In
#   that detector the box loss barely matters: GIoU, CIoU, IoU and EIoU end within 0.005
#   AP@.5 of each other, EIoU the lowest, so the toy's advantage for EIoU does not carry
#   over to these scenes at this budget. `evaluate_pipeline`, `plot_pr_curves` and `plot_detection_gallery` give the
#   numbers and figures above.
# - On real photos the same detector is far weaker: AP@.5 about 0.3 on kangaroos and 0.16 on
#   the NEON tile in the benchmark, crowded or overlapping objects merged into one box, and a
#   crop classifier that does not remove false alarms. The pretrained backbone and tiled
#   inference are what help today.
#
# From the command line, `python -m zoo.train --model detector --dataset synth_scenes
# --loss eiou --epochs 6` trains the same detector and writes the pipeline, its fused
# form, the metrics, the PR curves and the gallery into a run folder; `--loss ciou` (or
# giou, diou, siou, smoothl1, focal-eiou) swaps the box loss for a comparison.
