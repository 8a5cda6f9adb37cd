"""Detector benchmark, the peer: keras-hub's RetinaNet beside LossLab's detector, same data.

    pip install -r requirements-bench.txt          # keras-hub (benchmark only)
    python -m benchmarks.detector_peer [--voc ../shared/datasets/kangaroo] [--epochs 80]
        [--seeds 0 1 2] [--image-size 128] [--results-dir benchmarks/results]
    python -m benchmarks.detector_peer --neon      # NEON tree tiles: 256-px tiles, 200 epochs

What a Keras user would pick instead of LossLab's detector, trained here on the same split,
at the same input size, with the same augmentation, epochs, batch, optimizer and schedule,
and scored by the same COCOeval code:

- `losslab`: the two-step detector (`benchmarks.detector.one_run`: step 1 with EIoU, the
  crop classifier), from random weights and from the `repvgg_tiny.cifar10` backbone;
- `retinanet`: `keras_hub.models.RetinaNetObjectDetector` built from a config, no preset
  download: a ResNet encoder of basic blocks (stem 64, stages 64/64/128/256 with 2 blocks
  each; keras-hub requires the first stage to be 64 wide), FPN levels P3-P5, heads of two
  256-wide convolutions (keras-hub fixes their width), its default anchors, label encoder,
  focal and smooth-L1 losses; random weights (keras-hub has no CIFAR-10 start for it).
  Its decoder is set to LossLab's pipeline settings: score >= 0.05, NMS IoU 0.5, 100
  detections per image.

Both: `BoxAugmenter()` batches of `DetectionBatches`, Adam with cosine decay from
`--learning-rate`, gradient clipping 10. Data: a Pascal VOC folder split as
`benchmarks/detector.py`'s voc part splits it (80/20, seed 0). Per (row, seed): AP@.5, mAP,
best F1, seconds per training epoch, and test images per second (the whole test set in
batches of 32, NMS included, median of 3 passes after a warm-up), all in one process, so the
speeds compare as ratios. Resumable: a finished (row, seed) cell stored with the same
settings is kept. Writes results/detector_peer.json, .md and .png.

`--neon`: the NEON tree tiles of `benchmarks/detector.py`'s neon part instead (three tiles
for training, the 279-tree tile for testing). Both detectors train on the same random
`--image-size` windows (`RandomTiles`: native resolution, rotated and mirrored; batch 16,
200 epochs by default, as the neon part) and detect tile by tile over the test tile
(`detect_tiled`: overlapping windows, boxes cut by an inner edge dropped, NMS across
tiles), COCOeval counting up to `TILED_MAX_DETECTIONS` per image. Test speed is test tiles
(whole images) per second. Writes results/detector_peer_neon.*.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from zoo import quiet  # noqa: E402

quiet.silence_tensorflow()

import keras  # noqa: E402

from benchmarks.common import (RESULTS, difference, environment, format_mean_std,  # noqa: E402
                               mean_std, write_json, write_text)

NAME = "detector_peer"
NEON_NAME = "detector_peer_neon"
# --neon's defaults: the neon part of benchmarks/detector.py (detector.md)
NEON_DEFAULTS = {"epochs": 200, "batch_size": 16, "image_size": 256}
VOC_DEFAULTS = {"epochs": 80, "batch_size": 32, "image_size": 128}
DEFAULT_VOC = REPO.parent / "shared" / "datasets" / "kangaroo"
PEER_PACKAGE = "keras-hub"
ROWS = ("losslab_random", "losslab_pretrained", "retinanet")
LABELS = {"losslab_random": "LossLab two-step, random weights",
          "losslab_pretrained": "LossLab two-step, backbone repvgg_tiny.cifar10",
          "retinanet": "keras-hub RetinaNet (ResNet encoder, FPN), random weights"}
SHORT = {"losslab_random": "LossLab, random", "losslab_pretrained": "LossLab, CIFAR-10 backbone",
         "retinanet": "keras-hub RetinaNet,\nrandom"}
METRICS = ("map_50", "map", "f1")
# the Python pipeline's defaults (TwoStepDetector), given to the peer's decoder too
SCORE_THRESHOLD, NMS_IOU, MAX_DETECTIONS = 0.05, 0.5, 100
RESNET = {"input_conv_filters": [64], "input_conv_kernel_sizes": [7],
          "stackwise_num_filters": [64, 64, 128, 256], "stackwise_num_blocks": [2, 2, 2, 2],
          "stackwise_num_strides": [1, 2, 2, 2], "block_type": "basic_block"}


def peer_available():
    """(True, version) when keras-hub imports, else (False, why)."""
    try:
        import keras_hub  # noqa: F401
        from importlib.metadata import version
    except ImportError as error:
        return False, f"{error}; pip install -r requirements-bench.txt"
    return True, version(PEER_PACKAGE)


def build_retinanet(image_size, num_classes, seed, tiny=False):
    import keras_hub

    keras.utils.set_random_seed(seed)
    resnet = dict(RESNET)
    if tiny:
        resnet.update(stackwise_num_blocks=[1, 1, 1, 1])
    encoder = keras_hub.models.ResNetBackbone(**resnet, image_shape=(image_size, image_size, 3))
    backbone = keras_hub.models.RetinaNetBackbone(image_encoder=encoder, min_level=3,
                                                  max_level=5, use_p5=False,
                                                  image_shape=(image_size, image_size, 3))
    model = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, num_classes=num_classes, bounding_box_format="xyxy",
        pre_logits_num_conv_layers=1 if tiny else 2)
    model.prediction_decoder = keras_hub.layers.NonMaxSuppression(
        bounding_box_format="xyxy", from_logits=True, iou_threshold=NMS_IOU,
        confidence_threshold=SCORE_THRESHOLD, max_detections=MAX_DETECTIONS)
    return model


def retinanet_targets(boxes, classes):
    """`DetectionBatches` target_fn: keras-hub's {"boxes", "labels"}, -1 labels = padding."""
    return {"boxes": np.asarray(boxes, np.float32), "labels": np.asarray(classes, np.float32)}


def decoded_detections(decoded) -> list:
    """keras-hub's padded decoder output -> per image (boxes (k, 4), scores (k,), classes (k,)),
    the form `zoo.evaluation.detection.evaluate_detections` scores."""
    out = []
    for boxes, scores, labels, count in zip(decoded["boxes"], decoded["confidence"],
                                            decoded["labels"], decoded["num_detections"]):
        count = int(count)
        out.append((np.asarray(boxes[:count], np.float32),
                    np.asarray(scores[:count], np.float32),
                    np.asarray(labels[:count], np.int32)))
    return out


def retinanet_detect(model, images, batch_size=32) -> list:
    """Detections of the peer, decoded eagerly batch by batch (keras-hub's NMS needs a known
    batch size, which `predict`'s traced graph does not give it)."""
    out = []
    for start in range(0, len(images), batch_size):
        x = keras.ops.convert_to_tensor(np.asarray(images[start:start + batch_size],
                                                   np.float32))
        decoded = model.decode_predictions(model(x, training=False), x)
        out += decoded_detections({k: keras.ops.convert_to_numpy(v)
                                   for k, v in decoded.items()})
    return out


class TiledPeer:
    """The peer in the form `detect_tiled` takes a detector: its input side is the tile, its
    NMS the one its decoder applies within a tile, and across tiles the same."""

    one_step = True
    class_agnostic_nms = True

    def __init__(self, model, tile_size):
        self.model, self.image_shape = model, (tile_size, tile_size)
        self.nms_iou, self.max_detections = NMS_IOU, MAX_DETECTIONS

    def detect(self, images) -> list:
        return retinanet_detect(self.model, images)


def images_per_second(detect, images, repeats=3) -> float:
    detect(images)  # warm-up: tracing
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        detect(images)
        seconds.append(time.perf_counter() - started)
    return float(len(images) / np.median(seconds))


def run_retinanet(train_set, test_set, augment, seed, args) -> dict:
    from benchmarks.detector import EpochSeconds
    from zoo.datasets.detection import DetectionBatches
    from zoo.datasets.detection_tiles import RandomTiles
    from zoo.evaluation.detection import evaluate_detections
    from zoo.training.optimizers import make_optimizer
    from zoo.training.tasks.detection import TILED_MAX_DETECTIONS, tiled_detections

    model = build_retinanet(args.image_size, len(train_set.class_names), seed, args.tiny)
    if args.neon:
        batches = RandomTiles(train_set, args.image_size, batch_size=args.batch_size,
                              target_fn=retinanet_targets, seed=seed)
    else:
        batches = DetectionBatches(train_set, args.batch_size, shuffle=True, augment=augment,
                                   target_fn=retinanet_targets, seed=seed)
    model.compile(optimizer=make_optimizer(args.learning_rate, args.epochs * len(batches),
                                           global_clipnorm=10.0))
    timer = EpochSeconds()
    # keras.Model.fit: keras-hub's own fit accepts arrays and tf.data only, not a PyDataset
    keras.Model.fit(model, batches, epochs=args.epochs, callbacks=[timer], verbose=0)
    if args.neon:
        peer = TiledPeer(model, args.image_size)
        detections = tiled_detections(peer, test_set)
        result = evaluate_detections(detections, test_set, test_set.class_names,
                                     max_detections=TILED_MAX_DETECTIONS)
        speed = images_per_second(lambda _: tiled_detections(peer, test_set), test_set.images)
    else:
        detections = retinanet_detect(model, test_set.images)
        result = evaluate_detections(detections, test_set, test_set.class_names)
        speed = images_per_second(lambda x: retinanet_detect(model, x), test_set.images)
    return {"seed": seed, **{k: float(result[k]) for k in METRICS},
            "epoch_seconds": timer.seconds, "images_per_second": speed,
            "parameters": int(model.count_params())}


def run_losslab(train_set, test_set, augment, seed, args, backbone_weights) -> dict:
    from benchmarks.detector import Classifiers, one_run

    bench_args = argparse.Namespace(curve_images=0, batch_size=args.batch_size,
                                    learning_rate=args.learning_rate, tiny=args.tiny,
                                    classifier_epochs=args.classifier_epochs)
    if args.neon:
        row, pipeline = neon_run(train_set, test_set, seed, args, bench_args, backbone_weights)
    else:
        row, pipeline = one_run(train_set, test_set, "eiou", seed, args.epochs, bench_args,
                                Classifiers(bench_args), "voc", augment=augment,
                                backbone_weights=backbone_weights)
    return {"seed": seed, **{k: row[k] for k in METRICS},
            "step1_map_50": row["step1_map_50"], "epoch_seconds": row["epoch_seconds"],
            "images_per_second": images_per_second(
                lambda x: pipeline_detections(pipeline, test_set, args.neon), test_set.images),
            "parameters": int(pipeline.detector.count_params()
                              + pipeline.classifier.count_params())}


def pipeline_detections(pipeline, test_set, tiled):
    from zoo.training.tasks.detection import tiled_detections

    if tiled:
        return tiled_detections(pipeline, test_set)
    return pipeline.predict(test_set.images, batch_size=32)


def neon_run(train_set, test_set, seed, args, bench_args, backbone_weights):
    """LossLab's two-step detector on NEON tiles as `benchmarks/detector.py`'s neon part
    trains it (without its hard-negative variant): (row, pipeline)."""
    from benchmarks.detector import Classifiers, tiled_two_step
    from zoo.training.tasks.detection import evaluate_pipeline

    _, pipeline, _, epoch_seconds, _ = tiled_two_step(
        train_set, seed, bench_args, Classifiers(bench_args), "eiou", args.epochs,
        args.batch_size, args.image_size, backbone_weights)
    evaluation = evaluate_pipeline(pipeline, test_set, tiled=True)
    result = evaluation["result"]
    return ({**{k: float(result[k]) for k in METRICS},
             "step1_map_50": evaluation["step1_map_50"], "epoch_seconds": epoch_seconds},
            pipeline)


def summary(rows) -> dict:
    out = {key: mean_std([r[key] for r in rows])
           for key in (*METRICS, "images_per_second")}
    steady = [s for r in rows for s in r["epoch_seconds"][1:]] or \
        [s for r in rows for s in r["epoch_seconds"]]
    out["median_epoch_seconds"] = float(np.median(steady))
    out["parameters"] = rows[0]["parameters"]
    if "step1_map_50" in rows[0]:
        out["step1_map_50"] = mean_std([r["step1_map_50"] for r in rows])
    return out


def markdown(results) -> str:
    s = results["settings"]
    neon = results.get("data") == "neon"
    out = ["# Detector beside a peer: keras-hub RetinaNet on the same data", "",
           f"{results['split'].rstrip('.')}. "
           + (f"Trained on {s['image_size']}-px windows at native resolution and detected "
              f"tile by tile over the test tile (up to {results['max_detections']} detections "
              f"counted), "
              if neon else f"Letterboxed to {s['image_size']} px, ")
           + f"{s['epochs']} epochs of "
           f"{results['augmentation']} batches of {s['batch_size']}, Adam {s['learning_rate']} "
           f"with cosine decay, seeds {s['seeds']}; one process on "
           f"{results['environment']['cpu_count']} CPUs. Peer: {results['peer']}.", ""]
    if not results.get("available", True):
        return "\n".join(out + [f"Peer not run: {results['why']}", ""])
    out += ["| detector | AP@.5 | step-1 AP@.5 | mAP | F1 | parameters | s / epoch | "
            "test images / s |", "|---|---|---|---|---|---|---|---|"]
    for key in ROWS:
        row = results["rows"].get(key)
        if not row or not row.get("runs"):
            continue
        m = row["summary"]
        step1 = format_mean_std(m["step1_map_50"]) if "step1_map_50" in m else "–"
        out.append(f"| {LABELS[key]} | {format_mean_std(m['map_50'])} | {step1} | {format_mean_std(m['map'])} | "
                   f"{format_mean_std(m['f1'])} | {m['parameters']:,} | {m['median_epoch_seconds']:.1f} | "
                   f"{m['images_per_second']['mean']:.3g} |")
    rows = results["rows"]
    if all(rows.get(k, {}).get("runs") for k in ("losslab_random", "retinanet")):
        ours, peer = rows["losslab_random"]["summary"], rows["retinanet"]["summary"]
        out += ["", "Same start (random weights), AP@.5 minus the peer's, ± its standard "
                "error over seeds:"]
        for label, stat in (("two-step", ours["map_50"]), ("step 1 alone", ours["step1_map_50"])):
            d, se = difference(stat, peer["map_50"])
            verdict = ("ahead by more than 2 standard errors" if d > 2 * se else
                       "a tie within noise" if d >= -2 * se else "behind")
            out.append(f"- LossLab {label}: {d:+.3f} ± {se:.3f}, {verdict}.")
        out += ["", f"Speed at test: LossLab x"
                f"{ours['images_per_second']['mean'] / peer['images_per_second']['mean']:.2f} "
                f"the peer's images/s, training x"
                f"{peer['median_epoch_seconds'] / ours['median_epoch_seconds']:.1f} faster per "
                f"epoch, with {peer['parameters'] / ours['parameters']:.0f}x fewer parameters."]
    return "\n".join(out + [""])


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = []  # (label, mean, std, colour)
    for key, colour in zip(ROWS, ("C0", "C2", "C1")):
        row = results["rows"].get(key, {})
        if not row.get("runs"):
            continue
        m = row["summary"]
        name = SHORT[key]
        bars.append((f"{name}\ntwo-step" if "step1_map_50" in m else name,
                     m["map_50"]["mean"], m["map_50"]["std"], colour))
        if "step1_map_50" in m:
            bars.append((f"{name}\nstep 1 alone", m["step1_map_50"]["mean"],
                         m["step1_map_50"]["std"], colour))
    if not bars:
        return
    fig, ax = plt.subplots(figsize=(7, 0.7 * len(bars) + 1.2))
    labels, means, stds, colours = zip(*bars)
    ax.barh(range(len(bars)), means, xerr=stds, color=colours, capsize=4)
    ax.set_yticks(range(len(bars)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="test AP@.5 (mean ± σ over seeds)",
           xlim=(0, max(0.1, max(m + s for m, s in zip(means, stds)) * 1.1)),
           title=f"{'NEON trees, tiled' if results.get('data') == 'neon' else 'kangaroo'}, "
                 f"{results['settings']['epochs']} epochs, same data and schedule")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voc", default=str(DEFAULT_VOC), help="a Pascal VOC folder")
    parser.add_argument("--neon", action="store_true",
                        help="the NEON tree tiles, tiled, instead of --voc")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"default {VOC_DEFAULTS['epochs']} ({NEON_DEFAULTS['epochs']} "
                             f"with --neon)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"default {VOC_DEFAULTS['batch_size']} "
                             f"({NEON_DEFAULTS['batch_size']} with --neon)")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--classifier-epochs", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=None,
                        help=f"input side, the tile side with --neon (default "
                             f"{VOC_DEFAULTS['image_size']}, {NEON_DEFAULTS['image_size']} "
                             f"with --neon)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--tiny", action="store_true", help="small models: smoke tests only")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for key, value in (NEON_DEFAULTS if args.neon else VOC_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    name = NEON_NAME if args.neon else NAME
    if args.image_size % 32:
        parser.error(f"--image-size must be a multiple of 32, got {args.image_size}")

    from zoo.training.tasks.detection import load_detection_data

    available, version = peer_available()
    settings = {"epochs": args.epochs, "batch_size": args.batch_size,
                "learning_rate": args.learning_rate, "image_size": args.image_size,
                "classifier_epochs": args.classifier_epochs, "tiny": args.tiny,
                "seeds": list(args.seeds)}
    path = args.results_dir / f"{name}.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    same = {k: v for k, v in settings.items() if k != "seeds"}
    kept = stored.get("rows", {}) if {k: v for k, v in stored.get("settings", {}).items()
                                      if k != "seeds"} == same else {}
    if args.neon:
        train_set, test_set, info = load_detection_data("neon_trees", tiles=True)
        augmentation = f"RandomTiles(tile_size={args.image_size}, dihedral=True)"
    else:
        train_set, test_set, info = load_detection_data(
            f"voc:{args.voc}", image_size=(args.image_size, args.image_size))
        augmentation = repr(info["augment"])
    results = {"environment": environment(), "settings": settings, "split": info["split"],
               "data": "neon" if args.neon else "voc",
               "augmentation": augmentation, "available": available,
               "peer": (f"{PEER_PACKAGE} {version}, RetinaNetObjectDetector" if available
                        else "not installed"),
               "rows": {}}
    if args.neon:
        from zoo.training.tasks.detection import TILED_MAX_DETECTIONS

        results["max_detections"] = TILED_MAX_DETECTIONS
    if not available:  # nothing to set beside LossLab's rows, which detector.json holds
        results["why"] = version
        print(f"peer not run: {version}", flush=True)
    for key in args.rows if available else ():
        done = {r["seed"]: r for r in kept.get(key, {}).get("runs", [])}
        runs = []
        for seed in args.seeds:
            if seed in done:
                runs.append(done[seed])
                continue
            print(f"--- {key}, seed {seed}", flush=True)
            started = time.perf_counter()
            if key == "retinanet":
                row = run_retinanet(train_set, test_set, info.get("augment"), seed, args)
            else:
                row = run_losslab(train_set, test_set, info.get("augment"), seed, args,
                                  "repvgg_tiny.cifar10" if key == "losslab_pretrained"
                                  else None)
            row["seconds"] = time.perf_counter() - started
            print(f"    AP@.5 {row['map_50']:.4f}  mAP {row['map']:.4f}  F1 {row['f1']:.4f}  "
                  f"{row['images_per_second']:.3g} images/s  ({row['seconds']:.0f} s)",
                  flush=True)
            runs.append(row)
            results["rows"][key] = {"runs": runs, "summary": summary(runs)}
            write_json(name, results, args.results_dir)  # after every cell: resumable
        results["rows"][key] = {"runs": runs, "summary": summary(runs)}
    write_json(name, results, args.results_dir)
    text = markdown(results)
    write_text(f"{name}.md", text, args.results_dir)
    plot(results, args.results_dir / f"{name}.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
