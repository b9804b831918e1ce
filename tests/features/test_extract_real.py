"""Extraction on the real MovieLens-small posters and titles with a tiny random CLIP."""

from __future__ import annotations

import dataclasses
import shutil
import warnings

import numpy as np
import pytest
import torch

from graphrec.data import Dataset
from graphrec.errors import ConfigError, DataError
from graphrec.features import (
    WORK_MARKER,
    ClipEncoder,
    UnreadableImageWarning,
    attach_features,
    compose_texts,
    extract_item_features,
    find_images,
    image_keys,
    load_image,
    present_mask,
    read_item_table,
    remove_work_dir,
)


@pytest.fixture(scope="module")
def ds(ml_dataset_dir) -> Dataset:
    return Dataset.load(ml_dataset_dir)


@pytest.fixture(scope="module")
def poster_paths(ds, ml_small):
    links = read_item_table(ml_small / "links.csv")
    return find_images(ml_small / "posters", image_keys(ds.item_ids, "tmdbId", table=links))


@pytest.fixture(scope="module")
def titles(ds):
    return compose_texts(ds.item_fields, ["title", "genres"])


@pytest.fixture(scope="module")
def full(ds, poster_paths, titles, tiny_encoder):
    """One uninterrupted extraction of all posters and texts, no chunk files."""
    return extract_item_features(
        ds.n_items, image_paths=poster_paths, texts=titles,
        image_encoder=tiny_encoder, text_encoder=tiny_encoder, batch_size=32,
    )


def test_shapes_and_missing_posters(ds, full, poster_of):
    img, txt = full["image"], full["text"]
    assert img.x.shape == (ds.n_items, 16) and txt.x.shape == (ds.n_items, 16)
    assert img.x.dtype == np.float32 and np.isfinite(img.x).all() and np.isfinite(txt.x).all()
    # exactly the movies whose tmdbId poster exists have an image (links.csv read independently)
    expected = np.isin(ds.item_ids, list(poster_of))
    assert expected.sum() == 400
    assert np.array_equal(img.present, expected)
    assert img.n_without_input == ds.n_items - 400 and img.unreadable == []
    # missing rows are zero, present rows are not
    assert not img.x[~img.present].any()
    assert (np.abs(img.x[img.present]).max(axis=1) > 0).all()
    # every rated movie has a title
    assert txt.present.all() and txt.n_without_input == 0


def test_rows_are_aligned_to_item_ids(ds, full, poster_of, tiny_encoder):
    """Re-embedding one poster (or one title) alone gives that item's row of the batch run."""
    ids = ds.item_ids.tolist()
    for movie in ("1", "296", "2571"):  # Toy Story, Pulp Fiction, The Matrix: all have posters
        row = ids.index(movie)
        image = load_image(poster_of[movie], tiny_encoder.input_size)  # as extraction decodes it
        alone = tiny_encoder.encode_images(tiny_encoder.preprocess(image)[None])
        np.testing.assert_allclose(full["image"].x[row], alone[0], rtol=1e-4, atol=1e-5)
    row = ids.index("1")
    alone = tiny_encoder.encode_texts(["Toy Story (1995). Adventure|Animation|Children|Comedy|Fantasy"])
    np.testing.assert_allclose(full["text"].x[row], alone[0], rtol=1e-4, atol=1e-5)
    # and different posters give different rows
    a, b = (full["image"].x[ids.index(m)] for m in ("1", "296"))
    assert not np.allclose(a, b)


def test_two_runs_are_identical(ds, full, poster_paths, titles, tiny_config):
    """A second encoder (same seed) and a second run give bit-identical features."""
    enc = ClipEncoder(str(tiny_config), None, device="cpu", seed=0)
    again = extract_item_features(
        ds.n_items, image_paths=poster_paths, texts=titles,
        image_encoder=enc, text_encoder=enc, batch_size=32,
    )
    for m in ("image", "text"):
        assert np.array_equal(again[m].x, full[m].x) and np.array_equal(again[m].present, full[m].present)


class _InputSize:
    """The tiny encoder with another ``input_size`` (None: images always decoded at full size)."""

    def __init__(self, encoder, input_size):
        self._encoder, self.input_size = encoder, input_size
        self.dim = encoder.dim

    def __getattr__(self, name):
        return getattr(self._encoder, name)


def test_posters_of_normal_size_are_decoded_and_embedded_as_before(ds, poster_paths, poster_of, tiny_encoder):
    # a 185 x 278 poster is less than twice CLIP's 224: no reduced-scale decoding, the same bits
    for p in poster_of.values():
        assert np.array_equal(np.asarray(load_image(p, 224)), np.asarray(load_image(p)))
    first = sorted(poster_of)[:40]
    paths = [p if p is not None and p.stem in {poster_of[m].stem for m in first} else None for p in poster_paths]
    full_size = extract_item_features(ds.n_items, image_paths=paths, image_encoder=_InputSize(tiny_encoder, None))
    at_224 = extract_item_features(ds.n_items, image_paths=paths, image_encoder=_InputSize(tiny_encoder, 224))
    assert full_size["image"].n_present == 40
    assert np.array_equal(full_size["image"].x, at_224["image"].x)


def test_batches_are_encoded_as_one_batch_at_a_time(ds, poster_paths, tiny_encoder, tmp_path):
    """Decoding the next batch while one is encoded changes no bit: rows equal a plain loop
    (decode a batch, encode it) over the same batches, across chunks and around a chunk
    resumed from an earlier run."""
    chosen = [k for k, p in enumerate(poster_paths) if p is not None][:150]
    paths = [poster_paths[k] for k in chosen]
    expected = np.zeros((len(paths), tiny_encoder.dim), dtype=np.float32)
    for s in range(0, len(paths), 20):
        batch = [tiny_encoder.preprocess(load_image(p, tiny_encoder.input_size)) for p in paths[s : s + 20]]
        expected[s : s + 20] = tiny_encoder.encode_images(torch.stack(batch))
    got = extract_item_features(len(paths), image_paths=paths, image_encoder=tiny_encoder, batch_size=20,
                                chunk_size=60, workers=2)
    assert np.array_equal(got["image"].x, expected)
    # chunk 1 of 3 saved by an earlier run: chunks 0 and 2 embedded, the first batch of 2 ahead
    work = tmp_path / "work"
    extract_item_features(len(paths), image_paths=paths, image_encoder=tiny_encoder, batch_size=20, chunk_size=60,
                          work_dir=work)
    for name in ("000000.npz", "000002.npz"):
        (work / "image" / name).unlink()
    again = extract_item_features(len(paths), image_paths=paths, image_encoder=tiny_encoder, batch_size=20,
                                  chunk_size=60, work_dir=work, workers=2)
    assert again["image"].n_resumed == 60 and np.array_equal(again["image"].x, expected)


def test_corrupt_image_warns_and_is_missing(ds, poster_paths, poster_of, tiny_encoder, tmp_path):
    folder = tmp_path / "posters"
    folder.mkdir()
    chosen = sorted(poster_of)[:12]
    for m in chosen:
        shutil.copy(poster_of[m], folder / poster_of[m].name)
    bad = poster_of[chosen[3]].name
    (folder / bad).write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG at all" * 10)
    links = read_item_table(poster_of[chosen[0]].parents[1] / "links.csv")
    paths = find_images(folder, image_keys(ds.item_ids, "tmdbId", table=links))
    with pytest.warns(UnreadableImageWarning, match=bad):
        res = extract_item_features(ds.n_items, image_paths=paths, image_encoder=tiny_encoder, batch_size=5)
    img = res["image"]
    row = ds.item_ids.tolist().index(chosen[3])
    assert not img.present[row] and not img.x[row].any()
    assert img.unreadable == [str(folder / bad)]
    assert img.n_present == 11 and "1 unreadable" in img.summary()


def test_every_image_above_the_bomb_limit_is_named(ds, poster_paths, poster_of, tiny_encoder, monkeypatch):
    from PIL import Image

    from graphrec.features import LargeImageWarning

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)  # the 185 x 278 posters are above, not twice
    chosen = {poster_of[m].stem for m in sorted(poster_of)[:3]}
    paths = [p if p is not None and p.stem in chosen else None for p in poster_paths]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Pillow's own warning, once per place, names no file
        res = extract_item_features(ds.n_items, image_paths=paths, image_encoder=tiny_encoder, workers=2)
    assert res["image"].n_present == 3
    assert [w.category for w in caught] == [LargeImageWarning] * 3
    named = sorted(str(w.message).split()[1] for w in caught)
    assert named == sorted(str(p) for p in paths if p is not None)


def test_resume_after_interruption_equals_uninterrupted(ds, full, poster_paths, titles, tiny_encoder, tmp_path):
    work = tmp_path / "work"
    calls = []

    def stop_after_three(modality, chunk, n_chunks):
        calls.append((modality, chunk, n_chunks))
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated interruption")

    kw = dict(image_paths=poster_paths, texts=titles, image_encoder=tiny_encoder,
              text_encoder=tiny_encoder, batch_size=32, chunk_size=64, work_dir=work)
    with pytest.raises(KeyboardInterrupt):
        extract_item_features(ds.n_items, on_chunk=stop_after_three, **kw)
    assert calls == [("image", 0, 7), ("image", 1, 7), ("image", 2, 7)]
    assert len(list((work / "image").glob("*.npz"))) == 3
    # a chunk damaged by the interruption is recomputed, not trusted: here a truncated zip
    # (numpy raises zipfile.BadZipFile for it; bytes that are no archive, a ValueError)
    damaged = work / "image" / "000002.npz"
    damaged.write_bytes(damaged.read_bytes()[:200])

    resumed_calls = []
    res = extract_item_features(ds.n_items, on_chunk=lambda *a: resumed_calls.append(a), **kw)
    assert res["image"].n_resumed == 128  # chunks 0 and 1
    assert [c for m, c, _ in resumed_calls if m == "image"] == [2, 3, 4, 5, 6]
    for m in ("image", "text"):
        assert np.array_equal(res[m].x, full[m].x) and np.array_equal(res[m].present, full[m].present)

    # a finished run leaves every chunk; running again embeds nothing
    again_calls = []
    res2 = extract_item_features(ds.n_items, on_chunk=lambda *a: again_calls.append(a), **kw)
    assert again_calls == [] and res2["text"].n_resumed == ds.n_items
    assert np.array_equal(res2["image"].x, full["image"].x)


def test_chunks_of_another_model_are_discarded(ds, poster_paths, tiny_encoder, tiny_config, tmp_path):
    work = tmp_path / "work"
    kw = dict(image_paths=poster_paths, batch_size=50, chunk_size=100, work_dir=work)
    extract_item_features(ds.n_items, image_encoder=tiny_encoder, **kw)
    other = ClipEncoder(str(tiny_config), None, device="cpu", seed=1)
    res = extract_item_features(ds.n_items, image_encoder=other, **kw)
    assert res["image"].n_resumed == 0
    fresh = extract_item_features(ds.n_items, image_paths=poster_paths, image_encoder=other, batch_size=50)
    assert np.array_equal(res["image"].x, fresh["image"].x)


def test_attach_records_provenance_and_fuses(ds, full, tmp_path):
    new, notes = attach_features(ds, full, fuse=True, sources={"image": {"images": "posters"}})
    assert new.modalities == ["image", "text", "fused"]
    rec = new.meta["features"]
    assert rec["image"]["model"] == "GraphrecTinyCLIP" and rec["image"]["dim"] == 16
    assert rec["image"]["pretrained"].startswith("none") and rec["image"]["n_present"] == 400
    assert rec["fused"]["modalities"] == ["image", "text"]
    new.save(tmp_path / "ds")
    back = Dataset.load(tmp_path / "ds")
    assert np.array_equal(present_mask(back, "image"), full["image"].present)
    assert present_mask(back, "text").all()
    # the fused vector is graphrec.graphs.fuse_features of the two modalities
    from graphrec.graphs import fuse_features

    assert np.array_equal(back.item_features["fused"], fuse_features(back.item_features, ["image", "text"]).x)
    assert "fused image + text" in notes[0]
    # replacing image features without --fuse drops the stale fused vector
    newer, notes2 = attach_features(back, {"image": full["image"]})
    assert "fused" not in newer.item_features and "removed" in notes2[0]


def test_attach_refuses_to_fuse_features_of_two_models(ds, full):
    # same dimension, other weights: averaging them would mix two embedding spaces
    other = dict(full)
    other["text"] = dataclasses.replace(full["text"], encoder={**full["text"].encoder, "pretrained": "laion2b"})
    with pytest.raises(DataError, match=r"cannot fuse image features of open_clip GraphrecTinyCLIP, pretrained none "
                       r"\(random weights\) with text features of open_clip GraphrecTinyCLIP, pretrained laion2b"):
        attach_features(ds, other, fuse=True)
    # and with image features stored by an earlier extraction of another model
    stored, _ = attach_features(ds, {"image": full["image"]})
    with pytest.raises(DataError, match="cannot fuse image features of .* with text features of"):
        attach_features(stored, {"text": other["text"]}, fuse=True)
    new, _ = attach_features(stored, {"text": full["text"]}, fuse=True)  # the same model: fused
    assert new.modalities == ["image", "text", "fused"]


def test_mixed_precision_needs_cuda(tiny_config):
    if torch.cuda.is_available():
        enc = ClipEncoder(str(tiny_config), None, device="cuda", precision="auto")
        assert enc.amp
    with pytest.raises(ConfigError, match="CUDA"):
        ClipEncoder(str(tiny_config), None, device="cpu", precision="amp")


def test_encoder_errors_are_one_line(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="unknown open_clip model 'NoSuchModel-9'"):
        ClipEncoder("NoSuchModel-9", None)
    with pytest.raises(ConfigError, match="checkpoint .* not found"):
        ClipEncoder(str(tiny_config), str(tmp_path / "missing.pt"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConfigError, match="not an open_clip model config"):
            bad = tmp_path / "NotAConfig.json"
            bad.write_text("{}")
            ClipEncoder(str(bad), None)


def test_sentence_transformers_absent_is_a_config_error(monkeypatch):
    import sys

    from graphrec.features import SentenceTextEncoder

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails like when absent
    with pytest.raises(ConfigError, match="pip install sentence-transformers") as e:
        SentenceTextEncoder("all-MiniLM-L6-v2")
    assert "\n" not in str(e.value)


def test_a_work_dir_of_other_files_is_refused_and_kept(ds, titles, tiny_encoder, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "text").mkdir()  # a folder named like a chunk folder, not graphrec's
    (mine / "text" / "keep.txt").write_text("mine\n")
    with pytest.raises(ConfigError, match="work_dir .* is a folder of other files .*choose a new or empty folder"):
        extract_item_features(ds.n_items, texts=titles, text_encoder=tiny_encoder, work_dir=mine)
    assert (mine / "text" / "keep.txt").read_text() == "mine\n"
    # the chunks go into a marked folder; removing it leaves what others put there
    work = tmp_path / "work"
    extract_item_features(ds.n_items, texts=titles, text_encoder=tiny_encoder, work_dir=work, batch_size=512)
    assert sorted(p.name for p in work.iterdir()) == [WORK_MARKER, "text"]
    (work / "notes.txt").write_text("notes\n")
    remove_work_dir(work)
    assert [p.name for p in work.iterdir()] == ["notes.txt"]
    (work / "notes.txt").unlink()  # the folder is now the user's (empty): it stays
    extract_item_features(ds.n_items, texts=titles, text_encoder=tiny_encoder, work_dir=work, batch_size=512)
    remove_work_dir(work)
    assert work.is_dir() and list(work.iterdir()) == []
    new = tmp_path / "new" / "work"  # made by graphrec, with its parent: both go
    extract_item_features(ds.n_items, texts=titles, text_encoder=tiny_encoder, work_dir=new, batch_size=512)
    remove_work_dir(new)
    assert not (tmp_path / "new").exists()
    remove_work_dir(mine)  # not graphrec's: untouched
    assert (mine / "text" / "keep.txt").is_file()


def test_workers_below_one_are_refused(ds, poster_paths, tiny_encoder):
    # -1 was a ValueError traceback from the thread pool (0 silently meant the default)
    for workers in (-1, 0, 1.5):
        with pytest.raises(ConfigError, match=r"workers must be a whole number of at least 1 .* got"):
            extract_item_features(ds.n_items, image_paths=poster_paths, image_encoder=tiny_encoder, workers=workers)
