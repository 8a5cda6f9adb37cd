"""zoo.datasets.text.load_text_boxes: text boxes annotated in whole images (the OpenALPR
benchmark format, `NAME.txt` = `file x y w h TEXT` lines next to `NAME.jpg`), on images
drawn here.

References written here: crop regions computed by hand from the box, the margin and the
image size; crops cut by hand out of the decoded image file; PIL's grey formula
L = (19595 R + 38470 G + 7471 B + 2^15) >> 16 (ITU-R 601-2 luma, 16-bit fixed point).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from zoo.charset import Charset
from zoo.datasets import text as T
from zoo.datasets.errors import DataError, DataNotFound

DARK, BRIGHT = 30, 230
# a 160 x 100 photo with one bright "plate" at x=40, y=30, 60 x 20 px
PLATE = (40, 30, 60, 20)


def write_photo(path, size=(160, 100), rectangles=(PLATE,), level=BRIGHT, background=DARK,
                **save):
    """A dark grey image with bright rectangles (x, y, w, h) at known places."""
    array = np.full((size[1], size[0]), background, np.uint8)
    for x, y, w, h in rectangles:
        array[y:y + h, x:x + w] = level
    save = {"quality": 100, **save} if str(path).endswith(".jpg") else save
    Image.fromarray(array).save(path, **save)
    return path


def write_boxes(path, *lines, separator="\t"):
    path.write_text("".join(separator.join(str(v) for v in line) + "\n" for line in lines),
                    encoding="utf-8")


def decoded(path):
    """The grey pixels of an image file, as PIL decodes it (the JPEG's own rounding)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), np.float32) / 255.0


def assert_one_line(error, *paths):
    message = str(error)
    assert isinstance(error, DataError) and "\n" not in message, message
    for path in paths:
        assert str(path) in message, (str(path), message)


@pytest.fixture()
def plate(tmp_path):
    image = write_photo(tmp_path / "car.jpg")
    write_boxes(tmp_path / "car.txt", ("car.jpg", *PLATE, "AB12"))
    return tmp_path, image


# ---------------------------------------------------------------- crops

def test_crop_with_margin_contains_the_box_at_the_expected_place(plate):
    root, image = plate
    # margin 0.25 of h = 20 px: 5 px on each side -> rows 25..54, columns 35..104 (30 x 70);
    # at height 30 the crop is not resampled, so it is exactly those pixels of the file
    lines = T.load_text_boxes(root, height=30, margin=0.25)
    assert lines.x.shape == (1, 30, 80, 1)                     # 70 px padded to 80
    assert lines.texts == ("AB12",) and lines.names == ("car.txt:1",)
    crop = lines.x[0, :, :70, 0]
    np.testing.assert_array_equal(crop, decoded(image)[25:55, 35:105])
    # the bright box: rows 5..24, columns 5..64 of the crop; 5 dark pixels around it
    assert crop[7:23, 7:63].min() > 0.8
    for strip in (crop[:4], crop[26:], crop[:, :4], crop[:, 66:]):
        assert strip.max() < 0.3
    assert crop[5, 5] > 0.6 and crop[24, 64] > 0.6 and crop[4, 4] < 0.4 and crop[25, 65] < 0.4
    # padding repeats the last column (a dark margin column)
    np.testing.assert_array_equal(lines.x[0, :, 70:, 0], np.repeat(crop[:, 69:70], 10, axis=1))
    assert lines.charset == Charset("12AB")                    # sorted characters of the texts
    assert lines.charset.decode_batch(lines.y) == ["AB12"]


def test_default_margin_is_a_tenth_of_the_box_height(plate):
    root, image = plate
    # 0.1 x 20 = 2 px on each side: rows 28..51, columns 38..101 (24 x 64)
    lines = T.load_text_boxes(root, height=24, width=64)
    assert lines.x.shape == (1, 24, 64, 1)
    np.testing.assert_array_equal(lines.x[0, :, :, 0], decoded(image)[28:52, 38:102])
    box = T.read_text_boxes(root)[0]
    assert (box.x, box.y, box.w, box.h, box.text) == (40, 30, 60, 20, "AB12")
    assert T.box_crop_region(box, (160, 100)) == (38, 28, 102, 52)
    assert T.box_crop_region(box, (160, 100), margin=0.0) == (40, 30, 100, 50)


def test_crop_is_resized_to_the_height_keeping_the_aspect_ratio(plate):
    root, _ = plate
    # the 24 x 64 crop (margin 2 px) at height 48: twice as large, 128 px wide
    lines = T.load_text_boxes(root, height=48)
    assert lines.x.shape == (1, 48, 128, 1)
    crop = lines.x[0, :, :, 0]
    bright_rows = np.nonzero(crop[:, 64] > 0.5)[0]
    bright_columns = np.nonzero(crop[24] > 0.5)[0]
    # the box spans crop pixels 2..21 x 2..61 at scale 1, so 4..43 x 4..123 at scale 2
    assert abs(bright_rows[0] - 4) <= 1 and abs(bright_rows[-1] - 43) <= 1
    assert abs(bright_columns[0] - 4) <= 1 and abs(bright_columns[-1] - 123) <= 1
    assert len(bright_rows) == bright_rows[-1] - bright_rows[0] + 1    # one bright band
    assert crop[:2].max() < 0.3 and crop[-2:].max() < 0.3
    # 32 px: 64 x 32 / 24 = 85.3 -> 85 px, padded to 96
    assert T.load_text_boxes(root, height=32).x.shape == (1, 32, 96, 1)
    # a fixed width squeezes a wider crop to it
    assert T.load_text_boxes(root, height=48, width=100).x.shape == (1, 48, 100, 1)


def test_margin_is_clipped_to_the_image(tmp_path):
    # boxes touching the top-left and the bottom-right corners of a 160 x 100 image
    corners = [(0, 0, 30, 20), (130, 80, 30, 20)]
    image = write_photo(tmp_path / "edge.png", rectangles=corners)
    write_boxes(tmp_path / "edge.txt", ("edge.png", *corners[0], "tl"),
                ("edge.png", *corners[1], "br"))
    boxes = T.read_text_boxes(tmp_path)
    # margin 2 px, but nothing exists left of 0, above 0, right of 160 or below 100
    assert T.box_crop_region(boxes[0], (160, 100)) == (0, 0, 32, 22)
    assert T.box_crop_region(boxes[1], (160, 100)) == (128, 78, 160, 100)
    lines = T.load_text_boxes(tmp_path, height=22)
    pixels = decoded(image)
    np.testing.assert_array_equal(lines.x[0, :, :32, 0], pixels[0:22, 0:32])
    np.testing.assert_array_equal(lines.x[1, :, :32, 0], pixels[78:100, 128:160])
    assert lines.texts == ("tl", "br") and lines.names == ("edge.txt:1", "edge.txt:2")


def test_colour_images_become_grey(tmp_path):
    array = np.zeros((40, 100, 3), np.uint8)
    array[...] = (200, 0, 0)                     # red
    array[10:30, 20:80] = (10, 220, 40)          # a green box
    Image.fromarray(array).save(tmp_path / "c.png")
    write_boxes(tmp_path / "c.txt", ("c.png", 20, 10, 60, 20, "x"))
    lines = T.load_text_boxes(tmp_path, height=24)       # 24 x 64 crop, not resampled

    def luma(r, g, b):
        return ((19595 * r + 38470 * g + 7471 * b + (1 << 15)) >> 16) / 255.0

    assert lines.x[0, 12, 32, 0] == pytest.approx(luma(10, 220, 40), abs=1e-6)
    assert lines.x[0, 0, 0, 0] == pytest.approx(luma(200, 0, 0), abs=1e-6)


# ---------------------------------------------------------------- the format

def test_several_boxes_tab_and_space_separated_in_file_order(tmp_path):
    rectangles = [(10, 10, 40, 16), (70, 50, 60, 24)]
    write_photo(tmp_path / "b.jpg", rectangles=rectangles)
    write_photo(tmp_path / "a.jpg")
    # b.txt: a tab-separated line whose text holds a space, then a space-separated one
    (tmp_path / "b.txt").write_text(
        "b.jpg\t10\t10\t40\t16\tAB 1\n\n" "b.jpg 70 50 60 24 XY9\n", encoding="utf-8")
    write_boxes(tmp_path / "a.txt", ("a.jpg", *PLATE, "Q7"), separator=" ")
    (tmp_path / "c.jpg").write_bytes(b"")        # an image without annotation: ignored
    lines = T.load_text_boxes(tmp_path, height=32)
    assert lines.texts == ("Q7", "AB 1", "XY9")            # a.txt, then b.txt line by line
    assert lines.names == ("a.txt:1", "b.txt:1", "b.txt:3")  # the blank line 2 is skipped
    assert lines.charset == Charset(" 179ABQXY")
    assert lines.charset.decode_batch(lines.y) == list(lines.texts)
    assert lines.y.shape == (3, 4) and lines.y[0, 2] == -1
    # crops (rows x columns) with margins round(2.0) = round(1.6) = round(2.4) = 2 px:
    # 24 x 64, 20 x 44, 28 x 64 -> at 32 px 85, 70, 73 wide; padded to 85 rounded up: 96
    assert lines.x.shape == (3, 32, 96, 1)
    assert T.box_crop_region(T.read_text_boxes(tmp_path)[2], (160, 100)) == (68, 48, 132, 76)
    x, y = lines
    assert x is lines.x and y is lines.y and len(lines) == 3


def test_charset_given_and_max_label_length(plate):
    root, _ = plate
    lines = T.load_text_boxes(root, charset="0123456789AB", max_label_length=6)
    assert lines.y.shape == (1, 6)
    assert lines.y[0].tolist() == [11, 12, 2, 3, -1, -1]


# ---------------------------------------------------------------- bad input

def test_missing_folder_and_no_annotations(tmp_path):
    with pytest.raises(DataNotFound) as info:
        T.load_text_boxes(tmp_path / "nope")
    assert_one_line(info.value, tmp_path / "nope")
    write_photo(tmp_path / "lonely.jpg")
    with pytest.raises(DataError, match="holds no text boxes") as info:
        T.load_text_boxes(tmp_path)
    assert_one_line(info.value, tmp_path)
    (tmp_path / "lonely.txt").write_text("\n\n")
    with pytest.raises(DataError, match="holds no text boxes"):
        T.load_text_boxes(tmp_path)


@pytest.mark.parametrize("line, what", [
    ("car.jpg\t40\t30\t60\t20", "expected 'file x y w h TEXT'"),          # no text
    ("car.jpg 40 30 60", "expected 'file x y w h TEXT'"),
    ("car.jpg\t40\t30\tsixty\t20\tAB12", "must be numbers"),
    ("car.jpg 40 30 0 20 AB12", "positive width and height"),
    ("car.jpg 40 30 60 -5 AB12", "positive width and height"),
    ("car.jpg nan 30 60 20 AB12", "finite"),
])
def test_annotation_lines_that_do_not_parse(plate, line, what):
    root, _ = plate
    (root / "car.txt").write_text(f"car.jpg 40 30 60 20 AB12\n{line}\n", encoding="utf-8")
    with pytest.raises(DataError, match=what) as info:
        T.load_text_boxes(root)
    assert_one_line(info.value, root / "car.txt")
    assert "line 2" in str(info.value)


def test_missing_image_and_box_outside_the_image(plate):
    root, image = plate
    write_boxes(root / "car.txt", ("other.jpg", *PLATE, "AB12"))
    with pytest.raises(DataNotFound) as info:
        T.load_text_boxes(root)
    assert_one_line(info.value, root / "car.txt", root / "other.jpg")
    for box in [(101, 30, 60, 20), (-1, 30, 60, 20), (40, 81, 60, 20)]:  # 160 x 100 image
        write_boxes(root / "car.txt", ("car.jpg", *box, "AB12"))
        with pytest.raises(DataError, match="reaches outside the 160x100 image") as info:
            T.load_text_boxes(root)
        assert_one_line(info.value, root / "car.txt", image)
    write_boxes(root / "car.txt", ("car.jpg", 100, 80, 60, 20, "AB12"))   # just fits
    assert T.load_text_boxes(root).texts == ("AB12",)


def test_unreadable_image_and_text_outside_the_charset(plate):
    root, _ = plate
    with pytest.raises(DataError, match="character 'B'") as info:
        T.load_text_boxes(root, charset="A12")
    assert_one_line(info.value, root / "car.txt")
    (root / "car.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError) as info:
        T.load_text_boxes(root)
    assert_one_line(info.value, root / "car.jpg")
    (root / "car.txt").write_bytes(b"car.jpg 40 30 60 20 \xff\xfe\n")
    with pytest.raises(DataError, match="not UTF-8") as info:
        T.load_text_boxes(root)
    assert_one_line(info.value, root / "car.txt")


def test_bad_arguments(plate):
    root, _ = plate
    with pytest.raises(ValueError, match="margin"):
        T.load_text_boxes(root, margin=-0.1)
    with pytest.raises(ValueError, match="height"):
        T.load_text_boxes(root, height=0)
