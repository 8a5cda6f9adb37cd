"""zoo.datasets.text: the seeded synthetic text-line generator, its cached test set, and the
loader of real labelled crops (CSV or file-name labels), on fixtures made here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from zoo.charset import Charset
from zoo.datasets import text as T

SMALL = dict(num_samples=10, batch_size=4, seed=7)


# ---------------------------------------------------------------- synthetic lines

def test_fonts_are_dejavu_without_the_display_subsets():
    fonts = T.dejavu_fonts()
    assert len(fonts) >= 10
    assert all(p.name.startswith("DejaVu") and p.suffix == ".ttf" for p in fonts)
    assert not any("Display" in p.name for p in fonts)


def test_same_seed_same_images_whatever_the_batching():
    a, b = T.SyntheticText(**SMALL), T.SyntheticText(**SMALL)
    xa, ya = a[1]
    xb, yb = b[1]
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    regrouped = T.SyntheticText(num_samples=10, batch_size=2, seed=7)
    np.testing.assert_array_equal(regrouped[2][0], xa[:2])      # samples 4, 5
    np.testing.assert_array_equal(a[0][0], a[0][0])             # repeated access
    other = T.SyntheticText(num_samples=10, batch_size=4, seed=8)
    assert not np.array_equal(other[1][0], xa)
    assert [a.text(i) for i in range(10)] != [other.text(i) for i in range(10)]


def test_batches_shapes_range_and_padded_labels():
    data = T.SyntheticText(**SMALL)
    assert len(data) == 3
    for index in range(len(data)):
        x, y = data[index]
        size = 4 if index < 2 else 2                               # 10 = 4 + 4 + 2
        assert x.shape == (size, 32, 128, 1) and x.dtype == np.float32
        assert y.shape == (size, T.MAX_LENGTH) and y.dtype == np.int32
        assert 0.0 <= x.min() and x.max() <= 1.0
        np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-3)  # 8-bit levels
        for row, i in zip(y, range(index * 4, index * 4 + size)):
            length = int(np.sum(row != -1))
            assert T.MIN_LENGTH <= length <= T.MAX_LENGTH
            assert np.all(row[:length] >= 1) and np.all(row[length:] == -1)  # padding at end
            assert data.charset.decode(row) == data.text(i)
    with pytest.raises(IndexError):
        data[3]


def test_lengths_charset_and_spaces():
    charset = Charset("ab ")
    data = T.SyntheticText(num_samples=200, charset=charset, min_length=2, max_length=3,
                           seed=1)
    texts = [data.text(i) for i in range(200)]
    assert {len(t) for t in texts} == {2, 3}
    assert set("".join(texts)) <= set("ab ")
    assert all(t == t.strip() for t in texts)                 # no invisible end spaces
    assert any(" " in t for t in texts)
    with pytest.raises(ValueError, match="min_length <= max_length"):
        T.SyntheticText(min_length=5, max_length=4)


def test_clean_rendering_dark_text_on_white():
    image = T.render_text_line("0123", augment=False, width=96)
    assert image.shape == (32, 96) and image.dtype == np.uint8
    assert image.max() == 255 and image.min() < 60                # ink on white
    ink_columns = np.nonzero(image.min(axis=0) < 128)[0]
    assert ink_columns[0] < 10 and ink_columns[-1] < 80           # left-aligned, fits
    squeezed = T.render_text_line("0123456789" * 3, augment=False, width=96)
    assert squeezed.shape == (32, 96)
    assert np.nonzero(squeezed.min(axis=0) < 128)[0][-1] > 85     # squeezed to the width
    with pytest.raises(ValueError, match="needs rng"):
        T.render_text_line("0", augment=True)


def test_augmentations_vary_with_the_seed():
    first = T.render_text_line("abc", np.random.default_rng(0))
    again = T.render_text_line("abc", np.random.default_rng(0))
    other = T.render_text_line("abc", np.random.default_rng(1))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_cached_test_set_is_identical_every_time(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path))
    options = dict(num_samples=6, seed=3, max_length=6, width=96)
    first = T.synthetic_text_set(**options)
    cached = list((tmp_path / "synth_text").glob("*.npz"))
    assert len(cached) == 1
    second = T.synthetic_text_set(**options)                   # read from the cache
    fresh = T.synthetic_text_set(**options, cache=False)
    for other in (second, fresh):
        np.testing.assert_array_equal(other.x, first.x)
        np.testing.assert_array_equal(other.y, first.y)
        assert other.texts == first.texts
    assert first.x.shape == (6, 32, 96, 1) and first.y.shape == (6, 6)
    assert first.charset.decode_batch(first.y) == list(first.texts)
    x, y = first
    assert len(first) == 6 and x is first.x and y is first.y
    T.synthetic_text_set(**{**options, "seed": 4})
    assert len(list((tmp_path / "synth_text").glob("*.npz"))) == 2  # another key


def test_height_is_a_parameter_and_the_width_keeps_the_aspect_ratio():
    for height, width in ((32, 128), (48, 192), (64, 256)):   # 4 x height by default
        assert T.line_width(height) == width
        x, y = T.SyntheticText(num_samples=3, batch_size=3, height=height, seed=5)[0]
        assert x.shape == (3, height, width, 1) and y.shape == (3, T.MAX_LENGTH)
    data = T.SyntheticText(num_samples=2, height=48, width=100)
    assert data[0][0].shape == (2, 48, 100, 1)
    # the same clean line at 64 px: twice the 32-px one in both directions
    small = T.render_text_line("ab12", augment=False)
    tall = T.render_text_line("ab12", augment=False, height=64)
    assert small.shape == (32, 128) and tall.shape == (64, 256)

    def ink_extent(image, axis):
        ink = np.nonzero(image.min(axis=axis) < 128)[0]
        return ink[-1] - ink[0] + 1

    for axis in (0, 1):
        assert abs(ink_extent(tall, axis) / ink_extent(small, axis) - 2) < 0.15
    for bad in (8, 15, 32.5):
        with pytest.raises(ValueError, match="height must be a whole number"):
            T.SyntheticText(height=bad)


def test_cached_sets_are_keyed_on_the_height(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path))
    options = dict(num_samples=3, seed=3, max_length=5)
    short = T.synthetic_text_set(**options)
    tall = T.synthetic_text_set(**options, height=48)
    assert short.x.shape == (3, 32, 128, 1) and tall.x.shape == (3, 48, 192, 1)
    assert short.texts == tall.texts                      # the same strings, drawn taller
    assert len(list((tmp_path / "synth_text").glob("*.npz"))) == 2
    again = T.synthetic_text_set(**options, height=48)    # from the cache
    np.testing.assert_array_equal(again.x, tall.x)
    assert T.synthetic_text_set(**options, height=48, width=192).x.shape == tall.x.shape
    assert len(list((tmp_path / "synth_text").glob("*.npz"))) == 2  # same resolved width


# ---------------------------------------------------------------- real crops

def write_crop(path, height, width, mode="L", level=40):
    """A dark bar on a light background, `height` x `width` pixels."""
    array = np.full((height, width), 220, np.uint8)
    array[height // 4:3 * height // 4, 1:width - 1] = level
    image = Image.fromarray(array)
    (image.convert("RGB") if mode == "RGB" else image).save(path)


def expected_width(height, width):
    return max(1, round(width * 32 / height))


@pytest.fixture()
def crops(tmp_path):
    sizes = {"a.png": (16, 40, "L"), "b.jpg": (64, 100, "RGB"), "c.png": (32, 50, "L")}
    for name, (h, w, mode) in sizes.items():
        write_crop(tmp_path / name, h, w, mode)
    (tmp_path / "labels.csv").write_text(
        'filename,text\na.png,ab1\nb.jpg,"b,a"\nc.png,1\n', encoding="utf-8")
    return tmp_path, sizes


def test_folder_with_csv_pads_to_the_batch_width(crops):
    root, sizes = crops
    data = T.TextFolder(root, batch_size=2)
    assert data.texts == ("ab1", "b,a", "1")
    assert data.charset.characters == ",1ab"                   # sorted characters of labels
    assert len(data) == 2
    x, y = data[0]
    widths = [expected_width(*sizes[n][:2]) for n in ("a.png", "b.jpg")]   # 80, 50
    assert widths == [80, 50]
    assert x.shape == (2, 32, math.ceil(max(widths) / 16) * 16, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    # padding repeats the last column of each image
    np.testing.assert_array_equal(x[1, :, widths[1]:, 0],
                                  np.repeat(x[1, :, widths[1] - 1:widths[1], 0],
                                            x.shape[2] - widths[1], axis=1))
    assert y.shape == (2, 3) and y.dtype == np.int32
    assert data.charset.decode_batch(y) == ["ab1", "b,a"]
    x_last, y_last = data[1]
    assert x_last.shape == (1, 32, 64, 1)                       # 50 px -> 64
    np.testing.assert_array_equal(y_last, [[data.charset.encode("1")[0], -1, -1]])


def test_folder_fixed_width_squeezes_and_pads(crops):
    root, _ = crops
    data = T.TextFolder(root, batch_size=3, width=64, charset="ab1,", max_label_length=5)
    x, y = data[0]
    assert x.shape == (3, 32, 64, 1) and y.shape == (3, 5)
    # a.png would be 80 px wide: squeezed to 64, its bar ends one column before the border
    assert x[0, 16, 60, 0] < 0.5 and x[0, 16, 63, 0] > 0.5
    lines = T.load_text_folder(root, width=64)
    assert lines.x.shape == (3, 32, 64, 1) and lines.texts == data.texts


def test_folder_at_other_heights(crops):
    root, sizes = crops
    for height in (48, 64):
        lines = T.load_text_folder(root, height=height)
        widths = [max(1, round(w * height / h)) for h, w, _ in sizes.values()]
        assert lines.x.shape == (3, height, math.ceil(max(widths) / 16) * 16, 1)
        # c.png (32 x 50, bar in rows 8..23) scaled by height / 32: bar rows 12..35 at 48
        bar = np.nonzero(lines.x[2, :, widths[2] // 2, 0] < 0.5)[0]
        assert abs(bar[0] - 8 * height / 32) <= 1 and abs(bar[-1] + 1 - 24 * height / 32) <= 1
    assert lines.names == ("a.png", "b.jpg", "c.png")


def test_folder_with_file_name_labels(tmp_path):
    for name in ("hello_1.png", "hello_2.png", "abc.png"):
        write_crop(tmp_path / name, 32, 60)
    (tmp_path / "notes.txt").write_text("ignored")
    data = T.TextFolder(tmp_path, batch_size=8)
    assert data.texts == ("abc", "hello", "hello")
    assert T.label_from_file_name("x_y_12.png") == "x_y"
    x, y = data[0]
    assert x.shape == (3, 32, 64, 1)
    assert data.charset.decode_batch(y) == ["abc", "hello", "hello"]


def test_folder_shuffles_reproducibly(tmp_path):
    for i in range(6):
        write_crop(tmp_path / f"{'abcdef'[i]}.png", 32, 40 + 8 * i)
    one = T.TextFolder(tmp_path, batch_size=6, shuffle=True, seed=3)
    two = T.TextFolder(tmp_path, batch_size=6, shuffle=True, seed=3)
    np.testing.assert_array_equal(one[0][1], two[0][1])
    first_epoch = one[0][1]
    one.on_epoch_end()
    assert sorted(one.charset.decode_batch(one[0][1])) == list("abcdef")
    assert not np.array_equal(one[0][1], first_epoch)


def test_folder_errors(crops, tmp_path_factory):
    root, _ = crops
    with pytest.raises(ValueError, match=r"label of b.jpg: character ','"):
        T.TextFolder(root, charset="ab1")
    (root / "labels.csv").write_text("a.png,ab,extra\n", encoding="utf-8")
    with pytest.raises(ValueError, match="row 1: expected 'filename,text'"):
        T.TextFolder(root)
    (root / "labels.csv").write_text("missing.png,ab\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        T.TextFolder(root)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(ValueError, match="no labelled images"):
        T.TextFolder(empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        T.TextFolder(empty / "nope")
