"""Item tables, image lookup, text composition and image decoding (no model needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from graphrec.errors import ConfigError, DataError
from graphrec.features import compose_texts, find_images, image_keys, load_image, parse_fields, read_item_table
from graphrec.features.encoders import UnreadableImage


def test_csv_with_quotes_tsv_and_jsonl_read_the_same(tmp_path):
    (tmp_path / "t.csv").write_text('item_id,title,description\n1,"Heat, the film","a ""classic"""\n2,Up,\n')
    (tmp_path / "t.tsv").write_text("item_id\ttitle\tdescription\n1\tHeat, the film\ta \"classic\"\n2\tUp\t\n")
    (tmp_path / "t.jsonl").write_text(
        json.dumps({"item_id": 1, "title": "Heat, the film", "description": 'a "classic"'}) + "\n\n"
        + json.dumps({"item_id": "2", "title": "Up", "description": None}) + "\n"
    )
    (tmp_path / "t.json").write_text(json.dumps([{"item_id": 1, "title": "Heat, the film", "description": 'a "classic"'},
                                                 {"item_id": 2, "title": "Up"}]))
    for name in ("t.csv", "t.tsv", "t.jsonl", "t.json"):
        t = read_item_table(tmp_path / name)
        assert t.id_column == "item_id"
        got = list(t.lookup("description", ["2", "1", "3"]))
        assert got == ["", 'a "classic"', ""], name
        assert list(t.lookup("title", ["1"])) == ["Heat, the film"]


def test_id_column_detection_recbole_headers_and_lists(tmp_path):
    (tmp_path / "x.item").write_text("item_id:token\ttitle:token_seq\nB01\tA lamp\n")
    t = read_item_table(tmp_path / "x.item")
    assert t.id_column == "item_id:token" and list(t.lookup("title", ["B01"])) == ["A lamp"]
    (tmp_path / "y.jsonl").write_text(json.dumps({"asin": "B1", "categories": ["Lab", "Tools"]}) + "\n")
    assert list(read_item_table(tmp_path / "y.jsonl").lookup("categories", ["B1"])) == ["Lab, Tools"]
    (tmp_path / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0114709,862\n")
    assert read_item_table(tmp_path / "links.csv").id_column == "movieId"
    assert read_item_table(tmp_path / "links.csv", id_column="imdbId").id_column == "imdbId"


@pytest.mark.parametrize(
    "text, match",
    [
        ("title\nA\n", "no item id column found"),
        ("item_id,title\n1,A\n1,B\n", "line 3: item id '1' already appears on line 2"),
        ("item_id,title\n,A\n", "line 2: empty item id"),
        ("item_id,title\n1,A,extra\n", "line 2: expected 2 comma-separated fields"),
        ("", "file is empty"),
    ],
)
def test_table_errors_name_file_and_line(tmp_path, text, match):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(DataError, match=match):
        read_item_table(tmp_path / "t.csv")


def test_table_unknown_column_and_missing_file(tmp_path):
    (tmp_path / "t.csv").write_text("item_id,title\n1,A\n")
    t = read_item_table(tmp_path / "t.csv")
    with pytest.raises(DataError, match="no column 'plot'.*columns: item_id, title"):
        t.lookup("plot", ["1"])
    with pytest.raises(DataError, match="no item id column 'sku'"):
        read_item_table(tmp_path / "t.csv", id_column="sku")
    with pytest.raises(DataError, match="file not found"):
        read_item_table(tmp_path / "nope.csv")


def test_compose_texts_skips_empty_fields():
    cols = {"title": ["Heat", "", "  Up  "], "description": ["A  heist\nfilm", "", ""]}
    assert compose_texts(cols, ["title", "description"]) == ["Heat. A heist film", "", "Up"]
    assert parse_fields(" title, description ") == ("title", "description")
    with pytest.raises(ConfigError):
        parse_fields(" , ")
    with pytest.raises(ConfigError, match="once"):
        parse_fields("title,title")


def test_find_images_by_id_by_field_and_by_map(tmp_path):
    img = tmp_path / "img"
    img.mkdir()
    for name in ("1.jpg", "2.PNG", "3.webp", "3.png", "notes.txt", "sub"):
        (img / name).mkdir() if name == "sub" else (img / name).write_bytes(b"x")
    (img / "sub" / "4.jpeg").write_bytes(b"x")
    ids = ["1", "2", "3", "4", "5"]
    got = find_images(img, image_keys(ids))
    assert got == [img / "1.jpg", img / "2.PNG", img / "3.png", None, None]  # png preferred over webp
    fields = {"pic": np.array(["sub/4.jpeg", "2", "", "sub/4", "notes"])}
    got = find_images(img, image_keys(ids, "pic", item_fields=fields))
    assert got == [img / "sub/4.jpeg", img / "2.PNG", None, img / "sub/4.jpeg", None]
    (tmp_path / "map.csv").write_text("item_id,file\n1,3.webp\n2,1.0\n9,1\n")
    table = read_item_table(tmp_path / "map.csv")
    got = find_images(img, image_keys(ids, "file", table=table))
    assert got == [img / "3.webp", img / "1.jpg", None, None, None]  # "1.0" from a float export is key "1"
    with pytest.raises(ConfigError, match="--image-key COLUMN"):
        image_keys(ids, "item_id", table=table)
    with pytest.raises(ConfigError, match="neither item_id nor an item field"):
        image_keys(ids, "tmdbId", item_fields={})
    with pytest.raises(DataError, match="image folder not found"):
        find_images(tmp_path / "absent", ["1"])


def test_load_image_formats_and_transparency(tmp_path):
    Image.new("L", (8, 6), 128).save(tmp_path / "g.png")
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    rgba.save(tmp_path / "t.png")
    Image.new("RGB", (5, 5), (0, 0, 255)).save(tmp_path / "b.webp")
    assert load_image(tmp_path / "g.png").mode == "RGB"
    assert load_image(tmp_path / "t.png").getpixel((0, 0)) == (255, 255, 255)  # composited on white
    r, g, b = load_image(tmp_path / "b.webp").getpixel((2, 2))
    assert b > 200 and r < 50
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(UnreadableImage):
        load_image(tmp_path / "bad.jpg")
    full = tmp_path / "cut.jpg"
    Image.new("RGB", (64, 64), (10, 200, 30)).save(full, quality=95)
    full.write_bytes(full.read_bytes()[:200])  # truncated file
    with pytest.raises(UnreadableImage):
        load_image(full)


def test_load_image_scales_16_bit_integer_and_float_grayscale(tmp_path):
    # Pillow's convert("RGB") clips these samples at 255: a 16-bit photo used to turn white
    ramp16 = np.arange(0, 65536, 256, dtype=np.uint16).reshape(16, 16)  # 0, 256, ..., 65280
    Image.fromarray(ramp16).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode == "I;16"
    expected = np.arange(256, dtype=np.uint8).reshape(16, 16)  # value >> 8
    got = np.asarray(load_image(tmp_path / "g16.png"))
    assert got.shape == (16, 16, 3) and np.array_equal(got[..., 0], expected)
    assert np.array_equal(got[..., 0], got[..., 1]) and np.array_equal(got[..., 0], got[..., 2])
    # mode I: 16-bit content is shifted, 8-bit content kept, anything else stretched min..max
    Image.fromarray(ramp16.astype(np.int32)).save(tmp_path / "i16.tiff")
    Image.fromarray(expected.astype(np.int32)).save(tmp_path / "i8.tiff")
    Image.fromarray(np.array([[-1000, 0], [1000, 99000]], dtype=np.int32)).save(tmp_path / "iwide.tiff")
    with Image.open(tmp_path / "i16.tiff") as im:
        assert im.mode == "I"
    assert np.array_equal(np.asarray(load_image(tmp_path / "i16.tiff"))[..., 0], expected)
    assert np.array_equal(np.asarray(load_image(tmp_path / "i8.tiff"))[..., 0], expected)
    assert np.asarray(load_image(tmp_path / "iwide.tiff"))[..., 0].tolist() == [[0, 3], [5, 255]]
    # mode F: 0..1 is scaled by 255, 0..255 kept, anything else stretched; NaN counts as 0
    Image.fromarray(np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)).save(tmp_path / "f1.tiff")
    Image.fromarray(np.array([[0.0, 10.0], [128.0, 255.0]], dtype=np.float32)).save(tmp_path / "f255.tiff")
    Image.fromarray(np.array([[np.nan, -2.0], [2.0, 6.0]], dtype=np.float32)).save(tmp_path / "fwide.tiff")
    with Image.open(tmp_path / "f1.tiff") as im:
        assert im.mode == "F"
    assert np.asarray(load_image(tmp_path / "f1.tiff"))[..., 0].tolist() == [[0, 64], [128, 255]]
    assert np.asarray(load_image(tmp_path / "f255.tiff"))[..., 0].tolist() == [[0, 10], [128, 255]]
    assert np.asarray(load_image(tmp_path / "fwide.tiff"))[..., 0].tolist() == [[64, 0], [128, 255]]


def test_load_image_decodes_large_jpegs_at_a_reduced_scale(tmp_path):
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, size=(35, 50, 3), dtype=np.uint8)  # smooth content, upscaled
    big = Image.fromarray(small).resize((1000, 700), Image.BICUBIC)
    big.save(tmp_path / "big.jpg", quality=95)
    big.save(tmp_path / "big.png")
    full = load_image(tmp_path / "big.jpg")
    assert full.size == (1000, 700) and load_image(tmp_path / "big.jpg", None).size == (1000, 700)
    # the largest of 1/2, 1/4, 1/8 that keeps both sides >= the size asked for
    assert load_image(tmp_path / "big.jpg", 224).size == (500, 350)
    assert load_image(tmp_path / "big.jpg", 100).size == (250, 175)
    assert load_image(tmp_path / "big.jpg", 50).size == (125, 88)
    assert load_image(tmp_path / "big.jpg", 400).size == (1000, 700)  # less than twice as large: full size
    assert load_image(tmp_path / "big.png", 100).size == (1000, 700)  # not a JPEG: full size
    # the reduced decode is close to resizing the full one (libjpeg's DCT scaling)
    reduced = np.asarray(load_image(tmp_path / "big.jpg", 100), dtype=np.float64)
    resized = np.asarray(full.resize((250, 175), Image.BOX), dtype=np.float64)
    assert np.abs(reduced - resized).mean() < 3


def test_an_image_above_the_bomb_limit_warns_naming_the_file(tmp_path, monkeypatch):
    import warnings

    from graphrec.features import LargeImageWarning

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    Image.new("RGB", (40, 30), (9, 9, 9)).save(tmp_path / "a.jpg")  # 1200 pixels: above, not twice
    Image.new("RGB", (40, 30), (9, 9, 9)).save(tmp_path / "b.png")
    for name in ("a.jpg", "b.png"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert load_image(tmp_path / name).size == (40, 30)
        # Pillow's own warning names no file: only graphrec's is left
        assert [(w.category, str(w.message)) for w in caught] == [(LargeImageWarning, (
            f"image {tmp_path / name} is 40 x 30 pixels (0.0012 Mpx), above Pillow's decompression-bomb limit of "
            "0.001 Mpx (PIL.Image.MAX_IMAGE_PIXELS): check that it is a genuine image (decoded at full size; twice "
            "the limit is refused as unreadable)"))]
    Image.new("RGB", (50, 50)).save(tmp_path / "c.jpg")  # 2500 pixels, over twice the limit
    with pytest.raises(UnreadableImage, match="decompression bomb"):
        load_image(tmp_path / "c.jpg")
