# %% [markdown]
# # Back-propagation by hand, and watching the weights move
#
# **Description:** derive the gradients of every LeNet layer on paper, check a plain-NumPy
# implementation of them against Keras, replay the first SGD steps by hand next to Keras's
# optimizer, then train with LossLab's probes: `WeightTrace` (how far each layer moves) and
# `MarginMonitor` (how well a 2-D embedding separates the classes).<br>
# **Accelerator:** none needed (a few minutes on 2 CPU cores for the full run; seconds in SMOKE mode).
#
# A loss function only ever acts on a network through its gradient. Before comparing losses
# (the later notebooks do), it pays to know exactly what that gradient is, to have an
# independent way to compute it, and to have instruments that show what it does to the
# weights and to the embedding while training runs.

# %% [markdown]
# ## Parameters
#
# `SMOKE = True` runs everything on a few hundred images for one epoch: that is how CI runs
# every notebook. Set it to `False` for the real run.

# %% tags=["parameters"]
SMOKE = False
DATASET = "fashion_mnist"       # or "mnist"
SEED = 0
CHECK_BATCH = 8 if SMOKE else 32          # images in the gradient check
MANUAL_STEPS = 5 if SMOKE else 20         # K SGD steps replayed by hand and by Keras
MANUAL_BATCH = 32
MANUAL_LEARNING_RATE = 0.05
TRACE_EPOCHS = 1 if SMOKE else 6
TRACE_LIMIT = 512 if SMOKE else 20000     # training images for the WeightTrace run
TRACE_EVERY = 2 if SMOKE else 10          # one WeightTrace record every N optimizer steps
MARGIN_EPOCHS = 1 if SMOKE else 10
MARGIN_LIMIT = 512 if SMOKE else 20000    # training images for the MarginMonitor run
PROBE_SIZE = 256 if SMOKE else 2000       # validation images the margins are measured on
VAL_LIMIT = 256 if SMOKE else None        # validation images for the validation metrics
OUT = "runs/backprop_and_traces"

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
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

import callbacks
import zoo
from zoo import datasets
from zoo.reference import backprop as bp
from zoo.runtime import describe_runtime

out = Path(OUT)
out.mkdir(parents=True, exist_ok=True)
keras.utils.set_random_seed(SEED)
print(describe_runtime())

# %% [markdown]
# ## The data
#
# Everything here trains on the training split and measures on the validation split, both
# carved from the official training set with a fixed seed. The test split is never loaded:
# numbers watched while deciding things (which loss, which learning rate) must not be test
# numbers.

# %%
common = dict(validation_split=0.1, seed=SEED)
train_split = datasets.load(DATASET, "train", **common)
validation_split = datasets.load(DATASET, "validation", **common)
x_train, y_train = train_split
x_val, y_val = validation_split.x[:VAL_LIMIT], validation_split.y[:VAL_LIMIT]
print("train", x_train.shape, "validation", x_val.shape)


# %% [markdown]
# ## Back-propagation through LeNet, derived by hand
#
# Write a layer as $z = f(a; W)$ followed by an activation $a' = \varphi(z)$, and call
# $\delta = \partial L / \partial z$ the *error signal* of the layer. Back-propagation is the
# chain rule applied in reverse layer order; each layer needs only two rules: how $\delta$
# gives the gradient of its parameters, and how it gives the $\delta$ of the layer below. All
# losses here are means over a batch of $N$ samples.
#
# ### Softmax cross-entropy: the first $\delta$
#
# With logits $z_n \in \mathbb{R}^K$, $p_{nk} = e^{z_{nk}} / \sum_j e^{z_{nj}}$ and one-hot
# targets $t_n$,
#
# $$L = -\frac{1}{N}\sum_n \sum_k t_{nk}\log p_{nk}
#     = \frac{1}{N}\sum_n \Big(\log\sum_j e^{z_{nj}} - \sum_k t_{nk} z_{nk}\Big)
#     \quad(\textstyle\sum_k t_{nk} = 1).$$
#
# Differentiating, $\partial \log\sum_j e^{z_{nj}} / \partial z_{nk} = p_{nk}$, so
#
# $$\delta^{\text{out}}_{nk} = \frac{\partial L}{\partial z_{nk}} = \frac{p_{nk} - t_{nk}}{N}.$$
#
# This is why the softmax belongs inside the loss: the composite has a gradient that is a
# plain difference, bounded in $[-1/N, 1/N]$, while $\log p$ alone would blow up as
# $p \to 0$.
#
# ### Dense layer
#
# $z_{nj} = b_j + \sum_i a_{ni} W_{ij}$, i.e. $z = aW + b$. Each $W_{ij}$ touches $z_{nj}$ for
# every sample with coefficient $a_{ni}$, and each $a_{ni}$ touches every $z_{nj}$ with
# coefficient $W_{ij}$:
#
# $$\frac{\partial L}{\partial W} = a^\top \delta, \qquad
#   \frac{\partial L}{\partial b_j} = \sum_n \delta_{nj}, \qquad
#   \frac{\partial L}{\partial a} = \delta W^\top .$$
#
# The error signal of the layer below multiplies by the derivative of its activation,
# element-wise: $\delta^{\text{below}} = (\delta W^\top) \odot \varphi'(z^{\text{below}})$,
# with $\mathrm{relu}'(z) = [z > 0]$, $\tanh' = 1 - a^2$, $\sigma' = a(1 - a)$.
#
# ### Convolution, in index form
#
# A Keras `Conv2D` (stride 1) is a cross-correlation of the zero-padded input $\tilde{x}$ with
# a kernel $w$ of shape $(k_h, k_w, C, F)$:
#
# $$z_{n,i,j,f} = b_f + \sum_{a<k_h}\sum_{b<k_w}\sum_{c} \tilde{x}_{n,\,i+a,\,j+b,\,c}\; w_{a,b,c,f}.$$
#
# The weight $w_{a,b,c,f}$ is shared by every output position $(i, j)$, so its gradient sums
# over all of them; the bias likewise:
#
# $$\frac{\partial L}{\partial w_{a,b,c,f}} = \sum_{n,i,j} \tilde{x}_{n,\,i+a,\,j+b,\,c}\;\delta_{n,i,j,f},
#   \qquad \frac{\partial L}{\partial b_f} = \sum_{n,i,j} \delta_{n,i,j,f}.$$
#
# An input cell $\tilde{x}_{n,p,q,c}$ feeds output $(i, j) = (p-a, q-b)$ through weight
# $w_{a,b,c,f}$, for every kernel offset that stays inside the output:
#
# $$\frac{\partial L}{\partial \tilde{x}_{n,p,q,c}} = \sum_{a,b,f} \delta_{n,\,p-a,\,q-b,\,f}\; w_{a,b,c,f}
#   = \sum_{a,b,f} \hat{\delta}_{n,\,p+a,\,q+b,\,f}\; w_{k_h-1-a,\,k_w-1-b,\,c,\,f},$$
#
# where $\hat\delta$ is $\delta$ zero-padded by $k-1$ on every side: the input's error signal
# is a "full" correlation of the output's with the kernel rotated by 180°. The gradient with
# respect to the unpadded input $x$ is that array cropped by the padding. Both gradients are
# themselves convolutions, which is why a backward pass costs about twice a forward one.
#
# ### Pooling: upsampling the error signal
#
# Average pooling over $p \times p$ windows with stride $p$,
# $y_{n,i,j,c} = \frac{1}{p^2}\sum_{u,v<p} x_{n,\,pi+u,\,pj+v,\,c}$, touches every input cell
# once with weight $1/p^2$, so the error signal is upsampled by copying and divided:
#
# $$\frac{\partial L}{\partial x_{n,h,v,c}} = \frac{1}{p^2}\,\delta_{n,\lfloor h/p\rfloor,\lfloor v/p\rfloor,c}.$$
#
# Max pooling is, piecewise, the identity on the winning cell of each window, so the whole
# $\delta$ of a window goes to its arg-max $(u^*, v^*)$ and nothing to the other cells:
#
# $$\frac{\partial L}{\partial x_{n,\,pi+u,\,pj+v,\,c}} = \delta_{n,i,j,c}\,[(u,v) = (u^*,v^*)_{n,i,j,c}].$$
#
# On a tie TensorFlow's CPU kernel picks the first maximum in row-major order; so does the
# reference. Cells that "valid" pooling crops get zero gradient; `Flatten` only reshapes.
#
# ### One SGD step
#
# $W \leftarrow W - \eta\, \partial L / \partial W$ for every variable. `zoo.reference.backprop`
# implements each rule above, in plain NumPy, straight from these formulas:
# `bp.gradients(model, x, y)` walks a Keras model's layers with the model's own weights, and
# `bp.sgd_step(model, x, y, learning_rate)` returns the weights after one step.

# %% [markdown]
# ## Checking the reference against Keras
#
# Two independent computations of the same gradient — automatic differentiation in the
# framework and the hand-written rules above — should agree to float32 round-off. A wrong
# index, a kernel not rotated or a max-pool gradient sent to the wrong cell gives relative
# errors of order 1 instead. We check LeNet-5 with both kinds of pooling, so that both
# upsampling rules are exercised, and run the NumPy side twice: in float32, like Keras, and in
# float64, where its own round-off vanishes and what remains is Keras's.

# %%
def keras_gradients(model, x, y):
    # ∂L/∂W for every trainable variable, by the backend's automatic differentiation.
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    variables = model.trainable_variables
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss_fn(y, model(x, training=True))
        grads = tape.gradient(value, variables)
    elif keras.backend.backend() == "jax":
        import jax

        fixed = [v.value for v in model.non_trainable_variables]

        def loss_of(trainable):
            logits, _ = model.stateless_call(trainable, fixed, x, training=True)
            return loss_fn(y, logits)

        value, grads = jax.value_and_grad(loss_of)([v.value for v in variables])
    else:
        raise NotImplementedError(f"this cell supports TensorFlow and JAX, not "
                                  f"{keras.backend.backend()}")
    return {v.path: keras.ops.convert_to_numpy(g) for v, g in zip(variables, grads)}, float(value)


def relative_error(ours, reference):
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    return float(np.linalg.norm(ours - reference) / max(np.linalg.norm(reference), 1e-30))


x_check, y_check = x_train[:CHECK_BATCH], y_train[:CHECK_BATCH]
errors = {}
for pooling in ("avg", "max"):
    model = zoo.create_model("lenet5", num_classes=10, pooling=pooling)
    theirs, their_loss = keras_gradients(model, x_check, y_check)
    for dtype in ("float32", "float64"):
        ours, our_loss = bp.gradients(model, x_check, y_check, dtype=dtype)
        errors[pooling, dtype] = {path: relative_error(ours[path], theirs[path])
                                  for path in theirs}
    print(f"{pooling} pooling: loss NumPy {our_loss:.6f}, Keras {their_loss:.6f}")

columns = list(errors)
print(f"\n{'variable':<15}{'shape':>15}" + "".join(f"{p + ' ' + d:>14}" for p, d in columns))
for v in model.trainable_variables:
    print(f"{v.path:<15}{str(tuple(v.shape)):>15}"
          + "".join(f"{errors[c][v.path]:>14.1e}" for c in columns))
worst64 = max(max(errors[c].values()) for c in columns if c[1] == "float64")
worst32 = max(max(errors[c].values()) for c in columns if c[1] == "float32")
print(f"\nworst ‖g_numpy − g_keras‖ / ‖g_keras‖: {worst32:.1e} (NumPy in float32), "
      f"{worst64:.1e} (NumPy in float64)")
assert worst64 < 1e-4, "the NumPy reference and Keras disagree"

# %% [markdown]
# Every variable agrees to round-off, for both pooling rules: the derivation holds, layer by
# layer. Two effects make some float32 errors larger than the $10^{-7}$ of a single
# operation, and both are worth recognising:
#
# - *Cancellation.* A bias gradient of a convolution sums $\delta$ over every pixel of every
#   image, terms of both signs that largely cancel, so float32 round-off in the sum is large
#   relative to the small result. That error is in Keras's float32 sum as much as in NumPy's,
#   so it shows in the float64 columns too (around $10^{-5}$ for `c1/bias` with average
#   pooling and a larger `CHECK_BATCH`).
# - *Near-ties in max pooling.* The max is not differentiable where two cells of a window
#   are equal. When two cells differ by less than float32 round-off, NumPy and TensorFlow may
#   each compute a different winner, and that window's whole $\delta$ goes to a different
#   cell. With a larger `CHECK_BATCH` this happens to one window in tens of thousands and
#   lifts the error of `c1/kernel` to about $10^{-4}$ in the float32 column — and not in the
#   float64 column, which shows it is round-off deciding a tie, not a wrong rule.

# %% [markdown]
# ## Manual updates and framework updates, step by step
#
# Agreeing on one gradient is not yet agreeing on training. Here the same LeNet-5 takes
# $K$ SGD steps on the same batches twice: once with `bp.sgd_step`, feeding each step's
# NumPy weights into the next, and once with `model.fit` and `keras.optimizers.SGD` on a copy
# of the model, with a `WeightTrace(every_n_batches=1)` recording $\lVert W_s - W_{s-1}\rVert$
# per layer after every step. If the hand-written maths and the framework do the same thing,
# the two families of curves lie on top of each other.

# %%
keras.utils.set_random_seed(SEED)
manual_model = zoo.create_model("lenet5", num_classes=10)
framework_model = keras.models.clone_model(manual_model)
framework_model.set_weights(manual_model.get_weights())
x_steps = x_train[: MANUAL_STEPS * MANUAL_BATCH]
y_steps = y_train[: MANUAL_STEPS * MANUAL_BATCH]

# By hand: W ← W − η ∂L/∂W with the NumPy gradients, written back into manual_model.
layer_names = list(dict.fromkeys(v.path.rsplit("/", 1)[0]
                                 for v in manual_model.trainable_variables))
manual_updates = np.zeros((MANUAL_STEPS, len(layer_names)))
for step in range(MANUAL_STEPS):
    batch = slice(step * MANUAL_BATCH, (step + 1) * MANUAL_BATCH)
    new = bp.sgd_step(manual_model, x_steps[batch], y_steps[batch],
                      learning_rate=MANUAL_LEARNING_RATE)
    for v in manual_model.trainable_variables:
        old = keras.ops.convert_to_numpy(v).astype(np.float64)
        layer = layer_names.index(v.path.rsplit("/", 1)[0])
        manual_updates[step, layer] += np.sum((new[v.path] - old) ** 2)
        v.assign(new[v.path])
manual_updates = np.sqrt(manual_updates)

# By the framework: compiled SGD, the same batches in the same order.
framework_model.compile(optimizer=keras.optimizers.SGD(MANUAL_LEARNING_RATE),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
step_trace = callbacks.WeightTrace(every_n_batches=1, track=0)
framework_model.fit(x_steps, y_steps, batch_size=MANUAL_BATCH, epochs=1, shuffle=False,
                    callbacks=[step_trace], verbose=0)
per_layer = callbacks.aggregate_by_layer(step_trace)
assert per_layer["layers"].tolist() == layer_names
framework_updates = per_layer["update"][1:]  # record 0 is the starting point (NaN)

fig, ax = plt.subplots(figsize=(8, 4.5))
steps = np.arange(1, MANUAL_STEPS + 1)
for i, name in enumerate(layer_names):
    line, = ax.plot(steps, framework_updates[:, i], lw=2, alpha=0.6, label=f"{name} (Keras)")
    ax.plot(steps, manual_updates[:, i], "x", color=line.get_color(), ms=7,
            label=f"{name} (NumPy)")
ax.set(yscale="log", xlabel="SGD step", ylabel="‖ΔW‖ per layer",
       title=f"first {MANUAL_STEPS} SGD steps: NumPy reference (×) vs Keras SGD (lines)")
ax.grid(alpha=0.3)
ax.legend(fontsize="small", ncol=2)
fig.tight_layout()
fig.savefig(out / "manual_vs_keras_updates.png", dpi=110)
plt.show()

step_gap = np.abs(manual_updates - framework_updates) / framework_updates
final_gap = max(relative_error(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
                for a, b in zip(manual_model.trainable_variables,
                                framework_model.trainable_variables))
print(f"largest relative gap between the curves: {step_gap.max():.2e}")
print(f"relative gap between the final weights:  {final_gap:.2e}")

# %% [markdown]
# The crosses sit on the lines for every layer and every step: the hand-derived update *is*
# what Keras applies. The float32 differences creep up only slowly and stay around
# $10^{-6}$ over these steps; they would jump only if the two runs put a pre-activation on
# different sides of a ReLU kink, which a few ulps almost never do. Note also the spread between layers: the step size $\eta$ is the same for
# everyone, yet $\lVert\Delta W\rVert = \eta\lVert\partial L/\partial W\rVert$ differs by up to an
# order of magnitude between layers and from one batch to the next: with plain SGD the step
# of a layer is its gradient, which depends on the layer's size, on the signal reaching it
# and on the batch.
#
# ## Watching a real training run with `WeightTrace`
#
# Now LeNet-5 trains the usual way (Adam) with a `WeightTrace` that records one optimizer
# step in every `TRACE_EVERY` (10). Two design points of the callback matter for real runs:
#
# - *Cost.* Overriding `on_train_batch_end` makes Keras give up asynchronous dispatch, so the
#   trace only installs a batch hook when `every_n_batches` is set, and only pulls a handful
#   of floats per variable to the host per record (`benchmarks/callback_overhead.py`
#   measures the overhead).
# - *Memory.* Past `max_records` (1000 by default) the trace halves its resolution, keeping a
#   uniform grid of steps, so a long run cannot fill the memory.
#
# The epoch summaries land in `logs`, hence in History and in the CSV log placed after it.

# %%
keras.utils.set_random_seed(SEED)
model = zoo.create_model("lenet5", num_classes=10)
model.compile(optimizer=keras.optimizers.Adam(1e-3),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
trace = callbacks.WeightTrace(every_n_batches=TRACE_EVERY, track=3, seed=SEED)
history = model.fit(
    x_train[:TRACE_LIMIT], y_train[:TRACE_LIMIT], batch_size=64, epochs=TRACE_EPOCHS,
    validation_data=(x_val, y_val),
    callbacks=[trace, keras.callbacks.CSVLogger(str(out / "trace_history.csv"))],
    verbose=2)
trace.save(out / "weight_trace.npz")
print({k: round(v[-1], 5) for k, v in history.history.items() if k.startswith("weights/")})

# %% [markdown]
# The update per layer, then the *relative* update $\lVert\Delta W\rVert / \lVert W\rVert$ as a
# heatmap. Adam divides each parameter's step by a running estimate of its gradient's size,
# so every parameter moves by up to about the learning rate, whatever the size of its
# gradient: the update of a layer then grows like the square root of its number of
# parameters, and the order of the
# curves is the order of the layer sizes (`f5` with 48k parameters on top, `c1` with 156 at
# the bottom) — unlike the SGD steps above, where it followed the gradients. A common rule of
# thumb (CS231n) puts a healthy relative update per step around $10^{-3}$: much smaller and
# the layer is not learning, much larger and it is being thrown around. Here it starts near
# $10^{-2}$ in the first steps and settles between $10^{-3}$ and $10^{-2.5}$.

# %%
display(Image(filename=str(callbacks.plot_weight_updates(
    trace, out / "weight_updates.png", title="LeNet-5 · Adam · update per layer"))))
display(Image(filename=str(callbacks.plot_update_heatmap(
    trace, out / "weight_update_heatmap.png", title="LeNet-5 · Adam · relative update"))))

# %% [markdown]
# A few individual weights, followed for the whole run (`track=3` samples three per
# variable). Biases start at zero and drift; kernels move a short distance from their
# Glorot initialisation — learning is a small, collective move of many weights. A line that
# stays perfectly flat is a weight whose gradient is exactly zero, usually because the ReLU
# unit it belongs to no longer fires on any sample (a "dead" unit).

# %%
display(Image(filename=str(callbacks.plot_weight_trajectories(
    trace, out / "weight_trajectories.png"))))

# %% [markdown]
# ## Watching margins with `MarginMonitor`
#
# The weights say *how much* the network changes, not whether the change helps. For that,
# `MarginMonitor` looks at the embedding itself: once per epoch it embeds a fixed probe set
# (here: validation images, never the test split) through the layer named `"embedding"` and
# computes how compact each class is (`intra`), how far the class centroids are apart
# (`inter_mean`, `inter_min`), their ratio, the Fisher ratio (between-class over within-class
# scatter) and Mahalanobis distances between centroids.
#
# `lenet_embed` with `embedding_dim=2` squeezes LeNet's features through a 2-D embedding
# before the softmax head, so the embedding can be drawn as it is.

# %%
keras.utils.set_random_seed(SEED)
embed_model = zoo.create_model("lenet_embed", num_classes=10, embedding_dim=2)
embed_model.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
monitor = callbacks.MarginMonitor(probe=(x_val[:PROBE_SIZE], y_val[:PROBE_SIZE]),
                                  probe_source="validation", snapshots=True, seed=SEED)
margin_history = embed_model.fit(
    x_train[:MARGIN_LIMIT], y_train[:MARGIN_LIMIT], batch_size=64, epochs=MARGIN_EPOCHS,
    validation_data=(x_val, y_val),
    callbacks=[monitor, keras.callbacks.CSVLogger(str(out / "margin_history.csv"))],
    verbose=2)
print("keys in History:", [k for k in margin_history.history if k.startswith("margin/")])

# %%
display(Image(filename=str(callbacks.plot_margin_metrics(
    monitor, out / "margins.png", title="lenet_embed (2-D) · softmax · validation probe"))))

# %% [markdown]
# Read the two kinds of metric separately. `intra`, `inter_mean` and `inter_min` are lengths
# in embedding space: they all grow several-fold over the run, together, because a softmax
# head lowers its loss just by making the features longer. The scale-free ones — the
# intra/inter ratio, the Fisher ratio, the Mahalanobis distances — barely move after the
# first epochs: the classes are not getting much *better separated*, only bigger.
#
# The snapshots show why. With a plain softmax head each class stretches into a spoke from
# the origin: cross-entropy only asks each class to win on *direction*, so samples fly
# outwards along their spoke. On Fashion-MNIST the easy classes (trousers, sandals, bags)
# reach far out, while the look-alike upper-body garments (T-shirt, pullover, coat, shirt)
# stay crowded near the centre with no gap between them. That picture — separation by
# angle, no compactness, no margin — is what margin losses (CosFace, ArcFace) and centre
# losses are designed to change.

# %%
display(Image(filename=str(callbacks.plot_embedding_snapshots(
    monitor, out / "embedding_snapshots.png", max_panels=8))))

# %% [markdown]
# ## Conclusion
#
# - The gradients of LeNet's layers follow from the chain rule in a few lines each: the
#   softmax cross-entropy error $(p - t)/N$, $a^\top\delta$ for dense layers, a correlation
#   with the rotated kernel for convolutions, copy-and-divide or route-to-the-max for pooling.
# - A plain-NumPy implementation of those rules matches Keras's automatic differentiation to
#   float32 round-off, and $K$ hand-made SGD steps retrace Keras's SGD step by step.
# - `WeightTrace` and `MarginMonitor` make training observable: per-layer updates and
#   norms, and class separation of a validation probe, written into History and the CSV
#   log; `benchmarks/callback_overhead.py` measures what they cost. From the command line
#   the same probes are
#   `python -m zoo.train --trace-weights 10 --monitor-margins --model lenet_embed`.
#
# Next: `02_margin_losses.ipynb` replaces the softmax head with cosine heads and margin
# losses, and uses `MarginMonitor`'s angular metrics to show the margin they buy.
