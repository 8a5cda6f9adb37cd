"""zoo.datasets.synthetic_plates: synthetic number-plate crops inside `SyntheticText`.

Checked here: labels hold only the plate alphabet of the charset and 5-8 characters, every
sample is a function of (seed, index), plain streams (plate_fraction 0) are the lines they
were before plates existed (rebuilt here from the line renderer alone), the mix follows the
fraction, and the images look like a crop (dark characters on a lighter panel, full width).
"""

from __future__ import annotations

import numpy as np
import pytest

from zoo.charset import CHARSETS, Charset
from zoo.datasets import synthetic_plates as P
from zoo.datasets import text as T

FULL = Charset(CHARSETS["full"])


def test_plate_texts_use_capitals_and_digits_only_and_5_to_8_of_them():
    rng = np.random.default_rng(0)
    for _ in range(300):
        text, groups = P.random_plate_text(rng, FULL)
        assert 5 <= len(text) <= 8, text
        assert all(c.isdigit() or "A" <= c <= "Z" for c in text), text
        assert "".join(groups) == text and all(groups)
    digits_only = Charset("0123456789")
    text, _ = P.random_plate_text(np.random.default_rng(1), digits_only)
    assert text.isdigit()
    with pytest.raises(ValueError, match="upper-case letters or digits"):
        P.plate_alphabet(Charset("abc"))


def test_a_plate_sample_depends_on_seed_and_index_only():
    a = T.SyntheticText(40, 8, charset=FULL, height=48, seed=5, plate_fraction=1.0)
    b = T.SyntheticText(40, 3, charset=FULL, height=48, seed=5, plate_fraction=1.0)
    for i in (0, 7, 39):
        (image_a, text_a), (image_b, text_b) = a.sample(i), b.sample(i)
        assert text_a == text_b == a.text(i)
        np.testing.assert_array_equal(image_a, image_b)
        assert image_a.shape == (48, 192) and image_a.dtype == np.uint8
    assert a.sample(0)[1] != T.SyntheticText(40, charset=FULL, height=48, seed=6,
                                             plate_fraction=1.0).sample(0)[1]


def test_plain_streams_are_unchanged_by_the_plate_option():
    lines = T.SyntheticText(10, 4, height=32, seed=3)
    fonts = T.dejavu_fonts()
    for i in range(10):
        rng = T._rng(3, i)  # what the stream drew before plates: text, then rendering
        text = T.random_text(rng, Charset())
        expected = T.render_text_line(text, rng, fonts, 32, 128)
        image, got = lines.sample(i)
        assert got == text
        np.testing.assert_array_equal(image, expected)


def test_the_mix_follows_the_fraction():
    mixed = T.SyntheticText(400, charset=FULL, height=48, seed=0, plate_fraction=0.5)
    plates = [mixed._draw(i)[2] is not None for i in range(400)]
    assert 0.4 < np.mean(plates) < 0.6
    with pytest.raises(ValueError, match="plate_fraction"):
        T.SyntheticText(10, charset=FULL, plate_fraction=1.5)
    with pytest.raises(ValueError, match="upper-case"):
        T.SyntheticText(10, charset=Charset("abc"), plate_fraction=0.5)


def test_a_plate_crop_has_dark_characters_on_a_lighter_panel():
    rng = np.random.default_rng(11)
    darker = 0
    for k in range(20):
        image = P.render_plate(["RK", "755AJ"], rng, T.dejavu_fonts(), 48, 192)
        assert image.shape == (48, 192)
        middle = image[16:32].astype(np.float32)
        # the character rows hold both ink (dark) and panel (light): a wide spread
        if np.percentile(middle, 90) - np.percentile(middle, 10) > 40:
            darker += 1
    assert darker >= 16


def test_the_text_task_takes_plate_fraction_for_synthetic_lines_only(tmp_path):
    """synth_text, or the synthetic lines mixed into real crops."""
    from zoo.training import TrainConfig, resolve
    from zoo.training.config import ConfigError

    base = dict(model="crnn_small", epochs=1, out=str(tmp_path))
    resolve(TrainConfig(**base, options={"charset": "full", "plate_fraction": 0.5}))
    with pytest.raises(ConfigError, match="applies to synthetic lines"):
        resolve(TrainConfig(**base, dataset=f"folder:{tmp_path}",
                            options={"plate_fraction": 0.5}))
    # on real crops it shapes the synthetic lines that --synthetic-share mixes in
    resolve(TrainConfig(**base, dataset=f"folder:{tmp_path}",
                        options={"plate_fraction": 0.5, "synthetic_share": 0.25}))
    with pytest.raises(ConfigError, match="--charset upper or full"):
        resolve(TrainConfig(**base, options={"plate_fraction": 0.5}))
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        resolve(TrainConfig(**base, options={"charset": "upper", "plate_fraction": 2.0}))
