"""Tiled inference: a detector trained at N px run over an image many times larger.

Letterboxing a 2,000-px aerial tile into a 128-px input shrinks a 40-px tree to 2 px, below
anything the network can see. `detect_tiled` keeps the native resolution instead: it cuts
the image into overlapping tiles of the network's input size, detects in each, moves the
boxes back into image coordinates, and merges them:

1. tile origins along each axis: 0, s, 2s, ... with s = tile − overlap, the last one flush
   with the far edge (`tile_origins`); an image smaller than a tile is padded, not resized;
2. a box that touches a tile edge lying inside the image (within `edge_margin` px) is cut
   off by that edge, and the neighbouring tile, which overlaps it, sees the object whole:
   such boxes are dropped (unless the object could not fit in the overlap anyway);
3. the rest go through NMS across tiles (the pipeline's IoU threshold; per class for a
   one-step detector), so an object seen whole by two tiles counts once.

This is the slicing-aided inference of Akyon et al., "Slicing Aided Hyper Inference and
Fine-tuning for Small Object Detection" (SAHI), ICIP 2022, with greedy NMS as the merge.
"""

from __future__ import annotations

import numpy as np

from zoo.boxes import nms

LETTERBOX_FILL = 0.5  # the grey the loaders letterbox with


def tile_origins(length: int, tile: int, overlap: int) -> list:
    """Start offsets of tiles of size `tile` covering [0, length) with at least `overlap`
    pixels shared by neighbours; the last tile ends at `length` (one tile at 0 if the
    image is no longer than a tile)."""
    length, tile, overlap = int(length), int(tile), int(overlap)
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"need tile >= 1 and 0 <= overlap < tile; got tile {tile}, "
                         f"overlap {overlap}")
    if length <= tile:
        return [0]
    step = tile - overlap
    origins = list(range(0, length - tile, step))
    return origins + [length - tile]


def _tile(image, y0, x0, height, width):
    """The (height, width) window of `image` at (y0, x0), padded with the letterbox grey."""
    part = image[y0:y0 + height, x0:x0 + width]
    if part.shape[:2] == (height, width):
        return part
    padded = np.full((height, width, image.shape[2]), LETTERBOX_FILL, image.dtype)
    padded[:part.shape[0], :part.shape[1]] = part
    return padded


def detect_tiled(pipeline, image, overlap=None, edge_margin=2.0, batch_size=8) -> tuple:
    """Detections of `pipeline` over one large image, tile by tile (see the module docstring).

    Args:
        pipeline: a `TwoStepDetector` (or anything with `image_shape`, `nms_iou`,
            `max_detections`, `one_step`, `class_agnostic_nms` and `detect(images)`); its
            input size is the tile size.
        image: float32 (H, W, 3) in [0, 1], at the resolution the detector was trained for.
        overlap: pixels shared by neighbouring tiles. Defaults to None (a quarter of the
            tile side).
        edge_margin: a box within this many pixels of an inner tile edge counts as cut.
            Defaults to 2.0.
        batch_size: tiles per `detect` call. Defaults to 8.

    Returns:
        (boxes float32 (k, 4) xyxy in image pixels, scores (k,), classes int32 (k,)), best
        first, at most `pipeline.max_detections` per tile in all.
    """
    image = np.asarray(image, np.float32)
    if image.ndim != 3:
        raise ValueError(f"image must be (H, W, C), got shape {image.shape}")
    tile_h, tile_w = pipeline.image_shape
    overlap = min(tile_h, tile_w) // 4 if overlap is None else int(overlap)
    height, width = image.shape[:2]
    origins = [(y0, x0) for y0 in tile_origins(height, tile_h, overlap)
               for x0 in tile_origins(width, tile_w, overlap)]
    boxes, scores, classes = [], [], []
    for start in range(0, len(origins), batch_size):
        chunk = origins[start:start + batch_size]
        tiles = np.stack([_tile(image, y0, x0, tile_h, tile_w) for y0, x0 in chunk])
        for (y0, x0), (b, s, c) in zip(chunk, pipeline.detect(tiles)):
            keep = _whole(b, y0, x0, tile_h, tile_w, height, width, overlap, edge_margin)
            boxes.append(b[keep] + np.asarray([x0, y0, x0, y0], np.float32))
            scores.append(s[keep])
            classes.append(c[keep])
    boxes = np.clip(np.concatenate(boxes).reshape(-1, 4), 0.0,
                    np.asarray([width, height, width, height], np.float32))
    scores, classes = np.concatenate(scores), np.concatenate(classes).astype(np.int32)
    per_class = None if pipeline.class_agnostic_nms or not pipeline.one_step else classes
    order = nms(boxes, scores, pipeline.nms_iou, pipeline.max_detections * len(origins),
                per_class)
    return boxes[order].astype(np.float32), scores[order], classes[order]


def _whole(boxes, y0, x0, tile_h, tile_w, height, width, overlap, margin):
    """Boxes (in tile pixels) not cut by an inner tile edge: an edge inside the image, where
    the neighbouring tile sees further. A box too large for the overlap is kept anyway (no
    tile can see it whole)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    cut = np.zeros(len(boxes), bool)
    too_big = ((boxes[:, 2] - boxes[:, 0]) > overlap - 2 * margin) | (
        (boxes[:, 3] - boxes[:, 1]) > overlap - 2 * margin)
    if x0 > 0:
        cut |= boxes[:, 0] <= margin
    if y0 > 0:
        cut |= boxes[:, 1] <= margin
    if x0 + tile_w < width:
        cut |= boxes[:, 2] >= tile_w - margin
    if y0 + tile_h < height:
        cut |= boxes[:, 3] >= tile_h - margin
    return ~cut | too_big
