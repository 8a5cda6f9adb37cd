"""Synthetic number-plate crops: text lines that look like a plate cut out of a photo.

A CRNN trained only on clean rendered lines (`zoo.datasets.text.render_text_line`) reads
real plate crops almost entirely wrong: a crop holds a border, a country band, separators,
small print and a strip of car around the characters, at low resolution and under JPEG.
`render_plate` draws those, so that the synthetic data looks like what the `boxes:` loader
cuts from a photo; the label is the characters only, as in plate annotations (`RK755AJ`
for a plate showing "RK·755AJ" and a country code "SK").

One crop (all levels are grey values in [0, 1]; every draw is from `rng`):

1. text: 5-8 upper-case letters and digits (those of the charset), most often in a
   letters-digits-letters pattern (`random_plate_text`), split into 1-3 groups;
2. characters: a bold sans face (DejaVu Sans / Sans Mono, bold 3 times in 4) squeezed
   horizontally to 55-90 % of its width, as plate typefaces are condensed; groups separated
   by a gap, a dash or a small emblem (an oval with a dot), none of which is labelled;
3. panel: a light panel (0.6-1.0) 1.3-1.7 × the character height, dark characters
   (0.0-0.35) — or, one plate in five, the reverse: light characters on a dark panel, as
   on some older and some commercial plates — a border in the characters' shade (3 plates
   in 4), a dark band on the left with one or two small
   light letters and a ring of dots (the EU band, 2 plates in 3), a line of small print
   under the characters (1 plate in 4);
4. surroundings: a margin of car body (any level, smooth texture) of 5-25 % of the panel
   height on each side, as an annotated box cut with a 10 % margin gives;
5. pose and camera: rotation ±4°, horizontal shear ±0.2, the crop scaled down to 12-56 px
   high and back (resolution), JPEG quality 30-95 (half the crops), Gaussian blur, a
   global contrast and brightness change, pixel noise;
6. like a real crop: resized to the line height keeping the aspect ratio, squeezed only
   if wider than the line, padded on the right by repeating the last column.
"""

from __future__ import annotations

import numpy as np

from zoo.charset import Charset

PLATE_LENGTHS = (5, 8)
INVERTED_SHARE = 0.2  # plates drawn light on dark


def plate_alphabet(charset: Charset) -> tuple:
    """(letters, digits) of `charset` that a plate can hold: upper-case A-Z and 0-9."""
    letters = "".join(c for c in charset.characters if "A" <= c <= "Z")
    digits = "".join(c for c in charset.characters if "0" <= c <= "9")
    if not letters and not digits:
        raise ValueError(f"synthetic plates need upper-case letters or digits in the charset; "
                         f"{charset!r} has neither (use --charset upper or full)")
    return letters, digits


def random_plate_text(rng, charset: Charset, min_length=PLATE_LENGTHS[0],
                      max_length=PLATE_LENGTHS[1]):
    """A plate string and its groups, e.g. ("RK755AJ", ["RK", "755AJ"]).

    Two plates in three follow a letters-digits-letters pattern (1-3, 2-4, 0-3); the rest
    are uniform over letters and digits. The length is kept within
    [min_length, max_length] ∩ [5, 8].
    """
    letters, digits = plate_alphabet(charset)
    low = max(int(min_length), 1)
    high = max(min(int(max_length), PLATE_LENGTHS[1]), low)
    low = max(low, min(PLATE_LENGTHS[0], high))
    pool = letters + digits

    def pick(alphabet, n):
        alphabet = alphabet or pool
        return "".join(alphabet[k] for k in rng.integers(len(alphabet), size=n))

    if rng.random() < 2 / 3:
        parts = [pick(letters, int(rng.integers(1, 4))), pick(digits, int(rng.integers(2, 5))),
                 pick(letters, int(rng.integers(0, 4)))]
        text = "".join(parts)
        while len(text) < low:
            parts[-1] += pick(letters, 1)
            text = "".join(parts)
        if len(text) > high:
            text = text[:high]
        cuts = np.cumsum([len(p) for p in parts])[:-1]
    else:
        text = pick(pool, int(rng.integers(low, high + 1)))
        cuts = np.sort(rng.choice(np.arange(1, len(text)), size=min(int(rng.integers(0, 3)),
                                  len(text) - 1), replace=False)) if len(text) > 1 else []
    # first cut only, most of the time (plates show one or two separators)
    cuts = [int(c) for c in cuts if 0 < c < len(text)]
    if len(cuts) > 1 and rng.random() < 0.5:
        cuts = cuts[:1]
    bounds = [0, *cuts, len(text)]
    groups = [text[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    return text, groups


def _plate_font(rng, fonts):
    sans = [f for f in fonts if "Serif" not in f.name and "Oblique" not in f.name]
    bold = [f for f in sans if "Bold" in f.name]
    choices = bold if bold and rng.random() < 0.75 else (sans or list(fonts))
    return choices[int(rng.integers(len(choices)))]


def _smooth_texture(rng, shape, scale):
    from PIL import Image

    h, w = shape
    noise = rng.normal(0.0, scale, size=(max(h // 8, 2), max(w // 8, 2))).astype(np.float32)
    return np.asarray(Image.fromarray(noise).resize((w, h), Image.BILINEAR))


def _draw_characters(groups, rng, font_path, size):
    """Ink mask (float32, 1 = ink) of the groups with separators, cropped to the ink
    horizontally and to the capital height vertically, then condensed."""
    from PIL import Image, ImageDraw

    from zoo.datasets.text import _font

    font = _font(str(font_path), size)
    cap_top, cap_bottom = font.getbbox("H")[1], font.getbbox("H")[3]
    cap = cap_bottom - cap_top
    separator = int(rng.integers(0, 3))  # 0 gap, 1 dash, 2 emblem
    gap = int(cap * rng.uniform(0.15, 0.45))
    widths = [font.getbbox(g)[2] - font.getbbox(g)[0] for g in groups]
    total = sum(widths) + gap * 2 * (len(groups) - 1) + 2
    canvas = Image.new("L", (total + 4, cap + 4), 0)
    draw = ImageDraw.Draw(canvas)
    x = 2
    for k, (group, width) in enumerate(zip(groups, widths)):
        draw.text((x - font.getbbox(group)[0], 2 - cap_top), group, fill=255, font=font)
        x += width
        if k < len(groups) - 1:
            middle, centre_y = x + gap, 2 + cap // 2
            if separator == 1:
                half = max(gap // 2, 2)
                draw.rectangle((middle - half, centre_y - cap // 14, middle + half,
                                centre_y + cap // 14), fill=255)
            elif separator == 2:
                rx, ry = max(gap // 2, 2), cap // 3
                draw.ellipse((middle - rx, centre_y - ry, middle + rx, centre_y + ry),
                             outline=255, width=max(cap // 25, 1))
                draw.ellipse((middle - rx // 3, centre_y - rx // 3, middle + rx // 3,
                              centre_y + rx // 3), fill=255)
            x += 2 * gap
    mask = np.asarray(canvas, np.float32) / 255.0
    condensed = max(int(mask.shape[1] * rng.uniform(0.55, 0.9)), 1)
    return np.asarray(Image.fromarray(mask).resize((condensed, mask.shape[0]),
                                                   Image.BILINEAR)), cap


def _small_print(rng, fonts, size, width):
    """A line of small print (random capitals and spaces) as an ink mask `width` wide."""
    from PIL import Image, ImageDraw

    from zoo.datasets.text import _font

    font = _font(str(fonts[int(rng.integers(len(fonts)))]), max(size, 6))
    words = ["".join(chr(65 + int(k)) for k in rng.integers(26, size=int(rng.integers(3, 9))))
             for _ in range(int(rng.integers(2, 5)))]
    text = " ".join(words)
    box = font.getbbox(text)
    canvas = Image.new("L", (box[2] - box[0] + 2, box[3] - box[1] + 2), 0)
    ImageDraw.Draw(canvas).text((1 - box[0], 1 - box[1]), text, fill=255, font=font)
    mask = np.asarray(canvas.resize((max(int(width * rng.uniform(0.5, 0.95)), 1),
                                     canvas.height), Image.BILINEAR), np.float32) / 255.0
    return mask


def _ink(panel, mask, top, left, level):
    """Paint `mask` (1 = ink) into `panel` at (top, left) in grey `level`, in place."""
    region = panel[top:top + mask.shape[0], left:left + mask.shape[1]]
    m = mask[:region.shape[0], :region.shape[1]]
    region[:] = region * (1 - m) + level * m


def render_plate(groups, rng, fonts, height, width) -> np.ndarray:
    """One synthetic plate crop (see the module docstring) as uint8 (height, width).

    Args:
        groups: the plate's character groups, e.g. ["RK", "755AJ"].
        rng: a `numpy.random.Generator`.
        fonts: .ttf paths to choose from (sans faces preferred, bold most often).
        height: output height in pixels.
        width: output width; wider crops are squeezed to it, narrower ones padded on the
            right by repeating their last column.
    """
    import io

    from PIL import Image, ImageDraw, ImageFilter

    from zoo.datasets.text import _font, line_from_image

    size = 96  # font size of the drawing; the crop is scaled down to its final size later
    ink_mask, cap = _draw_characters(groups, rng, _plate_font(rng, fonts), size)
    panel_level = float(rng.uniform(0.6, 1.0))
    ink_level = float(rng.uniform(0.0, min(0.35, panel_level - 0.3)))
    inverted = rng.random() < INVERTED_SHARE
    if inverted:  # light characters on a dark panel
        panel_level, ink_level = 1.0 - panel_level, 1.0 - ink_level

    panel_h = int(cap * rng.uniform(1.3, 1.7))
    print_mask = None
    if rng.random() < 0.25:
        print_mask = _small_print(rng, fonts, int(cap * rng.uniform(0.12, 0.2)),
                                  ink_mask.shape[1])
        panel_h = max(panel_h, cap + print_mask.shape[0] + cap // 6)
    band_w = int(panel_h * rng.uniform(0.28, 0.38)) if rng.random() < 2 / 3 else 0
    side = int(cap * rng.uniform(0.08, 0.3))
    panel_w = band_w + side + ink_mask.shape[1] + side
    panel = np.full((panel_h, panel_w), panel_level, np.float32)
    panel += _smooth_texture(rng, panel.shape, float(rng.uniform(0.0, 0.06)))

    top = int((panel_h - cap - (print_mask.shape[0] + cap // 10 if print_mask is not None
                                else 0)) * rng.uniform(0.3, 0.7))
    x0 = band_w + side
    _ink(panel, ink_mask, top, x0, ink_level)
    if print_mask is not None:
        y = min(top + ink_mask.shape[0] + cap // 10, panel_h - print_mask.shape[0])
        x = x0 + int((ink_mask.shape[1] - print_mask.shape[1]) * rng.uniform(0, 1))
        _ink(panel, print_mask, y, x, ink_level)
    if band_w:
        band_level = float(rng.uniform(0.1, 0.5))
        light = min(band_level + float(rng.uniform(0.35, 0.8)), 1.0)
        band = Image.fromarray(np.full((panel_h, band_w), band_level, np.float32))
        draw = ImageDraw.Draw(band)
        code = "".join(chr(65 + int(k)) for k in rng.integers(26, size=int(rng.integers(1, 3))))
        font = _font(str(fonts[0]), max(int(band_w * 0.45), 6))
        box = font.getbbox(code)
        draw.text(((band_w - (box[2] - box[0])) / 2 - box[0], panel_h * 0.92 - box[3]), code,
                  fill=light, font=font)
        cx, cy, r = band_w / 2, panel_h * 0.3, band_w * 0.3
        for angle in np.linspace(0, 2 * np.pi, 12, endpoint=False):
            px, py, d = cx + r * np.cos(angle), cy + r * np.sin(angle), max(band_w / 22, 1)
            draw.ellipse((px - d, py - d, px + d, py + d), fill=light)
        panel[:, :band_w] = np.asarray(band)
    if rng.random() < 0.75:
        t = max(int(panel_h * rng.uniform(0.02, 0.06)), 1)
        level = float(rng.uniform(0.0, 0.3))
        level = 1.0 - level if inverted else level
        panel[:t], panel[-t:], panel[:, :t], panel[:, -t:] = level, level, level, level

    # surroundings, wide enough that the rotation and shear never show an empty corner
    pad = int(panel_h * 0.6)
    body = float(rng.uniform(0.0, 1.0))
    scene = np.full((panel_h + 2 * pad, panel_w + 2 * pad), body, np.float32)
    scene += _smooth_texture(rng, scene.shape, float(rng.uniform(0.0, 0.12)))
    scene[pad:pad + panel_h, pad:pad + panel_w] = panel
    image = Image.fromarray(np.clip(scene, 0, 1) * 255).convert("L")
    cx, cy = image.width / 2, image.height / 2
    shear = float(rng.uniform(-0.2, 0.2))
    image = image.transform(image.size, Image.AFFINE, (1, shear, -shear * cy, 0, 1, 0),
                            resample=Image.BILINEAR)
    image = image.rotate(float(rng.uniform(-4, 4)), resample=Image.BILINEAR)
    margin_y = int(panel_h * rng.uniform(0.05, 0.25))
    margin_x = int(panel_h * rng.uniform(0.05, 0.25))
    image = image.crop((pad - margin_x, pad - margin_y, pad + panel_w + margin_x,
                        pad + panel_h + margin_y))

    # camera: resolution, JPEG, blur, contrast, noise
    small_h = int(rng.integers(12, 57))
    small_w = max(int(round(image.width * small_h / image.height)), 4)
    image = image.resize((small_w, small_h), Image.BILINEAR)
    if rng.random() < 0.5:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=int(rng.integers(30, 96)))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    line = line_from_image(image, height, width)
    sigma = float(rng.uniform(0.0, 1.2))
    if sigma > 0.3:
        line = np.asarray(Image.fromarray(line).filter(ImageFilter.GaussianBlur(sigma)))
    values = line.astype(np.float32) / 255.0
    contrast, brightness = float(rng.uniform(0.5, 1.0)), float(rng.uniform(-0.15, 0.15))
    values = (values - 0.5) * contrast + 0.5 + brightness
    values += rng.normal(0.0, rng.uniform(0.0, 0.04), size=values.shape)
    line = np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)
    return np.pad(line, ((0, 0), (0, int(width) - line.shape[1])), mode="edge")
