"""A tiny Pascal VOC folder for the detector and benchmark tests (imported by name: tests/
is on sys.path, see tests/conftest.py)."""

from pathlib import Path

VOC_BOXES = [  # per image: (name, xmin, ymin, xmax, ymax), VOC's 1-based inclusive pixels
    [("cat", 11, 9, 40, 30)], [("dog", 50, 5, 90, 40), ("cat", 3, 30, 30, 60)],
    [("cat", 20, 20, 60, 50)], [("dog", 5, 5, 45, 35)], [("dog", 60, 30, 95, 62)],
    [("cat", 40, 10, 80, 55), ("dog", 2, 2, 30, 25)]]


def write_voc_fixture(root, boxes=VOC_BOXES, image_sets=None):
    """A tiny Pascal VOC folder: 96x64 JPEGs (a filled rectangle per object, red = cat,
    blue = dog) with their XML annotations; optional ImageSets/Main lists {file: ids}."""
    from PIL import Image, ImageDraw

    root = Path(root)
    (root / "images").mkdir(parents=True)
    (root / "annots").mkdir()
    colours = {"cat": (220, 30, 30), "dog": (30, 30, 220)}
    for i, objects in enumerate(boxes):
        image = Image.new("RGB", (96, 64), (120, 160, 120))
        draw = ImageDraw.Draw(image)
        xml = [f"<annotation><filename>{i:05d}.jpg</filename><size><width>96</width>"
               "<height>64</height><depth>3</depth></size>"]
        for name, x1, y1, x2, y2 in objects:
            draw.rectangle([x1 - 1, y1 - 1, x2 - 1, y2 - 1], fill=colours[name])
            xml.append(f"<object><name>{name}</name><difficult>0</difficult><bndbox>"
                       f"<xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>"
                       "</bndbox></object>")
        image.save(root / "images" / f"{i:05d}.jpg", quality=95)
        (root / "annots" / f"{i:05d}.xml").write_text("".join(xml) + "</annotation>")
    for file, ids in (image_sets or {}).items():
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main" / file).write_text("\n".join(ids) + "\n")
    return root
