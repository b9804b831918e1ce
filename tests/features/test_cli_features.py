"""`graphrec features` through typer's CliRunner, on the real MovieLens-small files."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import graphrec.features as gf
from graphrec.cli import app
from graphrec.data import Dataset
from graphrec.features import ClipEncoder, extract_item_features, present_mask
from graphrec.graphs.store import load_graph

runner = CliRunner()
# open_clip (and torchvision, which it imports) is an optional extra: absent from the core environment
NEEDS_CLIP_MARK = pytest.mark.skipif(
    importlib.util.find_spec("open_clip") is None,
    reason="needs open_clip_torch + torchvision (the [clip] extra; the development lock has them)",
)


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def ml_args(ml_small, tiny_config, *extra):
    return (
        "--images", ml_small / "posters", "--image-map", ml_small / "links.csv", "--image-key", "tmdbId",
        "--texts", ml_small / "movies.csv", "--text-fields", "title,genres",
        "--model", tiny_config, "--pretrained", "none", "--device", "cpu", "--batch-size", "64", "--quiet",
        *extra,
    )


@pytest.fixture
def data_copy(ml_dataset_dir, tmp_path):
    path = tmp_path / "ml"
    shutil.copytree(ml_dataset_dir, path)
    return path


def test_features_then_build_graph(ml_small, data_copy, tiny_config, tmp_path):
    out = tmp_path / "ml-feat"
    res = run("features", "--data", data_copy, "--out", out, "--fuse", *ml_args(ml_small, tiny_config))
    assert res.exit_code == 0, res.output
    assert "image: 400/9724 items (9324 with no image file, 0 unreadable), dim 16" in res.output
    assert "text: 9724/9724 items" in res.output and "fused image + text" in res.output
    assert "next: graphrec build-graph --data" in res.output
    ds = Dataset.load(out)
    assert ds.modalities == ["image", "text", "fused"]
    assert all(ds.item_features[m].shape == (9724, 16) for m in ds.modalities)
    rec = ds.meta["features"]
    assert rec["image"]["model"] == "GraphrecTinyCLIP" and rec["image"]["dim"] == 16
    assert rec["image"]["source"]["image_key"] == "tmdbId"
    assert rec["text"]["source"]["fields"] == ["title", "genres"]
    assert present_mask(ds, "image").sum() == 400 and present_mask(ds, "fused").all()
    assert not (tmp_path / ".ml-feat.features-work").exists()  # chunks removed after the save
    assert Dataset.load(data_copy).modalities == []  # --out leaves --data as it was

    # the stored fused vector gives the same kNN graph as fusing image and text in build-graph
    for mods in ("fused", "image,text"):
        r = run("build-graph", "--data", out, "--kind", "knn", "--modalities", mods, "--k", "5",
                "--out", tmp_path / mods.replace(",", "-"), "--quiet", "--device", "cpu")
        assert r.exit_code == 0, r.output
    g1, _ = load_graph(tmp_path / "fused" / "knn")
    g2, _ = load_graph(tmp_path / "image-text" / "knn")
    assert np.array_equal(g1.indices, g2.indices) and np.allclose(g1.data, g2.data, atol=1e-5)


def test_interrupted_command_resumes(ml_small, data_copy, tiny_config, monkeypatch):
    real = gf.extract_item_features
    seen = []

    def interrupted(*a, **kw):
        def stop(modality, chunk, n):
            seen.append((modality, chunk))
            if len(seen) == 2:
                raise KeyboardInterrupt

        return real(*a, **kw, on_chunk=stop)

    args = ("features", "--data", data_copy, "--chunk-size", "128", *ml_args(ml_small, tiny_config))
    monkeypatch.setattr(gf, "extract_item_features", interrupted)
    res = run(*args)
    assert res.exit_code == 130 and len(seen) == 2
    work = data_copy.parent / ".ml.features-work"
    assert res.output.strip().splitlines()[-1] == (
        f"interrupted: the 2 finished chunks are kept in {work}; running the same command again resumes "
        "(--restart discards them)")
    assert sorted(p.name for p in (work / "image").glob("*.npz")) == ["000000.npz", "000001.npz"]
    assert Dataset.load(data_copy).modalities == []  # the dataset is untouched
    monkeypatch.setattr(gf, "extract_item_features", real)
    res = run(*args)
    assert res.exit_code == 0, res.output
    assert "256 resumed from an earlier run" in res.output and not work.exists()
    ds = Dataset.load(data_copy)
    # equal to one uninterrupted library run with the same sizes
    enc = ClipEncoder(str(tiny_config), None, device="cpu")
    ref = extract_item_features(
        ds.n_items,
        image_paths=gf.find_images(ml_small / "posters", gf.image_keys(
            ds.item_ids, "tmdbId", table=gf.read_item_table(ml_small / "links.csv"))),
        texts=gf.compose_texts(ds.item_fields, ["title", "genres"]),
        image_encoder=enc, text_encoder=enc, batch_size=64,
    )
    assert np.array_equal(ds.item_features["image"], ref["image"].x)
    assert np.array_equal(ds.item_features["text"], ref["text"].x)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM")
def test_sigterm_keeps_the_chunks_like_ctrl_c(data_copy, tiny_config):
    """A real SIGTERM (kill, a batch system's time limit) of a real `graphrec features` process
    after its second chunk: it used to end at once (status -15) without a word."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        import graphrec.features as gf
        real = gf.extract_item_features
        def extract(*a, **kw):
            def stop(modality, chunk, n):
                if chunk == 1:
                    os.kill(os.getpid(), signal.SIGTERM)
            return real(*a, **kw, on_chunk=stop)
        gf.extract_item_features = extract
        from graphrec.cli import main
        sys.argv = ["graphrec", *sys.argv[1:]]
        main()
        """
    )
    args = ["features", "--data", data_copy, "--text-fields", "title", "--model", tiny_config, "--pretrained", "none",
            "--device", "cpu", "--quiet", "--chunk-size", "1024"]
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 130, proc.stderr
    work = data_copy.parent / ".ml.features-work"
    assert proc.stderr.strip().splitlines()[-1] == (
        f"interrupted: the 2 finished chunks are kept in {work}; running the same command again resumes "
        "(--restart discards them)"), proc.stderr
    assert sorted(p.name for p in (work / "text").glob("*.npz")) == ["000000.npz", "000001.npz"]
    assert Dataset.load(data_copy).modalities == []
    res = run(*args)
    assert res.exit_code == 0 and "2048 resumed from an earlier run" in res.output, res.output


def test_images_named_by_item_id_png_webp_corrupt(ml_small, poster_of, data_copy, tiny_config, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    movies = ["1", "2", "3", "5"]
    Image.open(poster_of["1"]).save(folder / "1.png")
    Image.open(poster_of["2"]).save(folder / "2.webp")
    shutil.copy(poster_of["3"], folder / "3.jpg")
    (folder / "5.jpg").write_bytes(b"not an image")
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"movieId": m, "title": f"movie {m}", "description": ""}) + "\n" for m in movies))
    res = run("features", "--data", data_copy, "--images", folder, "--texts", texts,
              "--text-fields", "title,description", "--model", tiny_config, "--pretrained", "none",
              "--device", "cpu", "--quiet")
    assert res.exit_code == 0, res.output
    assert "warning: cannot read image" in res.output and "5.jpg" in res.output
    assert "image: 3/9724 items (9720 with no image file, 1 unreadable)" in res.output
    assert "text: 4/9724 items (9720 with no text)" in res.output
    ds = Dataset.load(data_copy)
    ids = ds.item_ids.tolist()
    assert present_mask(ds, "image")[[ids.index(m) for m in movies]].tolist() == [True, True, True, False]
    assert ds.meta["features"]["image"]["unreadable"] == [str(folder / "5.jpg")]
    # a second run must be asked to replace them
    res = run("features", "--data", data_copy, "--images", folder, "--model", tiny_config, "--pretrained", "none", "--quiet")
    assert res.exit_code == 1 and "already has image features: pass --overwrite" in res.output
    res = run("features", "--data", data_copy, "--images", folder, "--model", tiny_config, "--pretrained", "none",
              "--quiet", "--overwrite", "--device", "cpu")
    assert res.exit_code == 0, res.output


def test_all_images_unreadable_is_refused_before_saving_and_resumes(poster_of, data_copy, tiny_config, tmp_path):
    # files exist for three items, none decodes: an all-zero image modality used to be written with exit 0
    folder = tmp_path / "imgs"
    folder.mkdir()
    for m in ("1", "2", "3"):
        (folder / f"{m}.jpg").write_bytes(b"not an image")
    args = ("features", "--data", data_copy, "--images", folder, "--text-fields", "title", "--model", tiny_config,
            "--pretrained", "none", "--device", "cpu", "--quiet")
    res = run(*args)
    assert res.exit_code == 1, res.output
    work = data_copy.parent / ".ml.features-work"
    error = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert error == [
        f"error: none of the 3 image files of {data_copy}'s items in {folder} could be read (first: {folder / '1.jpg'}; "
        "see the warnings above), so the image features would be all zero: fix or replace them (or check --images, "
        f"--image-key, --image-map) and run the same command again; the finished chunks are kept in {work}"
    ]
    assert "Traceback" not in res.output and "wrote" not in res.output
    assert Dataset.load(data_copy).modalities == []  # nothing saved
    assert sorted(p.name for p in (work / "text").glob("*.npz"))  # the chunks are kept
    # the images fixed, the same command resumes the texts and succeeds
    for m in ("1", "2", "3"):
        shutil.copy(poster_of[m], folder / f"{m}.jpg")
    res = run(*args)
    assert res.exit_code == 0, res.output
    assert "image: 3/9724 items (9721 with no image file, 0 unreadable)" in res.output
    assert "text: 9724/9724 items (0 with no text), dim 16, GraphrecTinyCLIP; 9724 resumed from an earlier run" in res.output
    assert Dataset.load(data_copy).modalities == ["image", "text"] and not work.exists()


def test_in_place_features_keep_what_the_user_stored_in_the_dataset_folder(data_copy, tiny_config):
    # the in-place save replaced the folder as a whole: a run folder and notes inside it were deleted silently
    (data_copy / "run").mkdir()
    (data_copy / "run" / "record.json").write_text("{}")
    (data_copy / "notes.txt").write_text("mine")
    args = ("features", "--data", data_copy, "--text-fields", "title", "--model", tiny_config, "--pretrained", "none",
            "--device", "cpu", "--quiet")
    res = run(*args)
    assert res.exit_code == 1, res.output
    error = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert error == [f"error: --data {data_copy} holds notes.txt, run/, which a dataset does not write: move them out "
                     "of the dataset folder first (replacing it would delete them)"]
    assert "Traceback" not in res.output
    assert (data_copy / "notes.txt").read_text() == "mine" and (data_copy / "run" / "record.json").is_file()
    assert Dataset.load(data_copy).modalities == []  # nothing saved
    work = data_copy.parent / ".ml.features-work"
    assert not work.exists()  # refused before any encoding: no chunk was made
    shutil.move(data_copy / "run", data_copy.parent / "run")
    (data_copy / "notes.txt").unlink()
    res = run(*args)
    assert res.exit_code == 0, res.output
    assert Dataset.load(data_copy).modalities == ["text"] and not work.exists()


def test_data_given_as_dot_or_dotdot_puts_the_chunks_beside_the_dataset(data_copy, tiny_config, monkeypatch):
    # `--data .` inside the dataset folder: Path(".").name is "", and the default work folder
    # used to be "..features-work" inside the dataset, refused as such
    (data_copy / "sub").mkdir()
    monkeypatch.chdir(data_copy / "sub")
    assert gf.default_work_dir("..") == data_copy.parent / ".ml.features-work"
    monkeypatch.chdir(data_copy)
    assert gf.default_work_dir(".") == data_copy.parent / ".ml.features-work"
    (data_copy / "sub").rmdir()
    res = run("features", "--data", ".", "--text-fields", "title", "--model", tiny_config, "--pretrained", "none",
              "--device", "cpu", "--quiet")
    assert res.exit_code == 0, res.output
    assert f"chunks in {data_copy.parent / '.ml.features-work'}" in res.output
    assert f"note: {data_copy} was replaced by its new version" in res.output  # the shell's folder went
    assert Dataset.load(data_copy).modalities == ["text"]
    assert not (data_copy.parent / ".ml.features-work").exists()


def test_texts_from_dataset_fields(data_copy, tiny_config):
    res = run("features", "--data", data_copy, "--text-fields", "title", "--model", tiny_config,
              "--pretrained", "none", "--device", "cpu", "--quiet", "--fuse")
    assert res.exit_code == 0, res.output
    ds = Dataset.load(data_copy)
    assert ds.modalities == ["text", "fused"] and ds.meta["features"]["text"]["source"]["texts"] is None


@pytest.mark.parametrize(
    "extra, message",
    [
        ((), "nothing to extract"),
        (("--text-fields", "title"), "--pretrained is required"),
        (("--text-fields", "plot", "--pretrained", "none"), "no item field 'plot'"),
        (("--image-map", "links.csv", "--pretrained", "none"), "--image-map needs --images"),
        pytest.param(("--text-fields", "title", "--model", "NoSuchModel-9", "--pretrained", "none", "--device", "cpu"),
                     "unknown open_clip model", marks=NEEDS_CLIP_MARK),
        pytest.param(("--text-fields", "title", "--pretrained", "weights/missing.pt", "--device", "cpu"),
                     "checkpoint weights/missing.pt not found", marks=NEEDS_CLIP_MARK),
        (("--text-fields", "title", "--pretrained", "none", "--device", "cpu", "--precision", "amp"), "needs a CUDA device"),
    ],
)
def test_user_errors_are_one_line(data_copy, extra, message):
    res = run("features", "--data", data_copy, "--quiet", *extra)
    assert res.exit_code == 1, res.output
    assert message in res.output and res.output.strip().count("\n") == 0, res.output


def test_inputs_matching_no_item_are_refused_before_any_work(data_copy, tmp_path):
    # ids of another catalogue, or an empty image folder: nothing would be encoded, and an
    # all-zero feature (an edgeless kNN graph) used to be written with exit 0
    (tmp_path / "other.csv").write_text("item_id,title\nx77,a\nx88,b\n")
    (tmp_path / "empty").mkdir()
    common = ("--pretrained", "none", "--device", "cpu", "--quiet", "--out", tmp_path / "out")
    res = run("features", "--data", data_copy, "--texts", tmp_path / "other.csv", *common)
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0, res.output
    assert f"no item of {data_copy} has a text in {tmp_path / 'other.csv'} (its ids in column 'item_id', e.g. x77, x88;" in res.output
    res = run("features", "--data", data_copy, "--images", tmp_path / "empty", *common)
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0, res.output
    assert f"no item of {data_copy} has an image in {tmp_path / 'empty'} (keys from --image-key item_id" in res.output
    res = run("features", "--data", data_copy, "--text-fields", "title,,genres", *common)
    assert res.exit_code == 1 and "--text-fields 'title,,genres' has an empty field name" in res.output, res.output
    assert not (tmp_path / "out").exists()


@NEEDS_CLIP_MARK
def test_a_file_that_is_no_checkpoint_is_named(data_copy, tiny_config, tmp_path):
    (tmp_path / "junk.bin").write_text("junk\n")
    res = run("features", "--data", data_copy, "--text-fields", "title", "--model", tiny_config,
              "--pretrained", tmp_path / "junk.bin", "--device", "cpu", "--quiet", "--out", tmp_path / "out")
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0, res.output
    assert f"could not load checkpoint {tmp_path / 'junk.bin'} into open_clip model" in res.output
    assert "needs internet" not in res.output


@NEEDS_CLIP_MARK
def test_fusing_with_stored_features_of_another_dimension(data_copy, tiny_config):
    # 8-d image features stored by an earlier extraction; texts now from the 16-d model
    ds = Dataset.load(data_copy)
    rng = np.random.default_rng(0)
    ds.replace(item_features={"image": rng.normal(size=(ds.n_items, 8)).astype(np.float32)}).save(
        data_copy, overwrite=True)
    text = ("--text-fields", "title", "--model", tiny_config, "--pretrained", "none", "--device", "cpu", "--quiet")
    res = run("features", "--data", data_copy, *text, "--fuse")
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert res.exit_code == 1 and len(errors) == 1, res.output  # after the random-weights note
    assert "the stored image features are 8-d and this extraction's text vectors 16-d" in errors[0]
    assert "pass --images DIR too" in errors[0] and "encoded" not in res.output
    # without --fuse: stored, and the printed next step is a command that runs (text alone)
    res = run("features", "--data", data_copy, *text)
    assert res.exit_code == 0, res.output
    assert res.output.strip().endswith(f"next: graphrec build-graph --data {data_copy} --modalities text"), res.output


@NEEDS_CLIP_MARK
def test_fusing_features_of_two_models_of_the_same_dimension_is_refused(poster_of, data_copy, tiny_config, tmp_path):
    # both 16-d, so the dimension check passed and vectors of two models used to be averaged
    other = tmp_path / "OtherTinyCLIP.json"
    shutil.copy(tiny_config, other)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for m in ("1", "2", "3"):
        shutil.copy(poster_of[m], folder / f"{m}.jpg")
    common = ("--pretrained", "none", "--device", "cpu", "--quiet")
    res = run("features", "--data", data_copy, "--images", folder, "--model", tiny_config, *common)
    assert res.exit_code == 0, res.output
    res = run("features", "--data", data_copy, "--text-fields", "title", "--model", other, *common, "--fuse")
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert res.exit_code == 1 and len(errors) == 1, res.output
    assert errors[0] == (
        "error: --fuse averages image and text vectors, but the stored image features come from open_clip "
        "GraphrecTinyCLIP, pretrained none (random weights) and this extraction's text features from open_clip "
        "OtherTinyCLIP, pretrained none (random weights): vectors of different models live in different spaces; "
        "extract both with the same --model and --pretrained (pass --images and --texts together), or drop --fuse"
    )
    assert "encoded" not in res.output and Dataset.load(data_copy).modalities == ["image"]
    # the model of the stored image features: fused
    res = run("features", "--data", data_copy, "--text-fields", "title", "--model", tiny_config, *common, "--fuse")
    assert res.exit_code == 0, res.output
    assert Dataset.load(data_copy).modalities == ["image", "text", "fused"]


@NEEDS_CLIP_MARK
def test_a_pretrained_tag_without_network_fails_at_once(data_copy, tiny_config, monkeypatch):
    # no route to the hub: offline mode (cached weights would load; a rarely cached tag), one line, no retries
    import huggingface_hub.constants as hub

    import graphrec.features.encoders as enc

    monkeypatch.setattr(enc, "_hub_reachable", lambda timeout=3.0: False)
    before = hub.HF_HUB_OFFLINE
    res = run("features", "--data", data_copy, "--text-fields", "title", "--pretrained", "commonpool_s_basic_s13m_b4k",
              "--device", "cpu", "--quiet", "--out", data_copy.parent / "out")
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0, res.output
    assert ("pretrained 'commonpool_s_basic_s13m_b4k' of open_clip model 'ViT-B-32' is not in the local cache and "
            "huggingface.co cannot be reached") in res.output
    assert hub.HF_HUB_OFFLINE == before  # switched back


def test_text_model_without_sentence_transformers(data_copy, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    res = run("features", "--data", data_copy, "--text-fields", "title", "--text-model", "all-MiniLM-L6-v2",
              "--device", "cpu", "--quiet")
    assert res.exit_code == 1
    assert res.output.strip() == (
        "error: the sentence-transformers text backend is not installed: pip install sentence-transformers"
    )


@NEEDS_CLIP_MARK
def test_a_model_that_fails_to_build_with_random_weights_says_so(tiny_config, monkeypatch):
    """Random weights load nothing: a failure is the model's, not a 'checkpoint None' or a
    tag that 'needs internet'."""
    import open_clip

    from graphrec.errors import ConfigError
    from graphrec.features import ClipEncoder

    def broken(*args, **kwargs):
        raise RuntimeError("shapes do not match")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", broken)
    with pytest.raises(ConfigError, match=r"could not build open_clip model 'GraphrecTinyCLIP' \(shapes do not match\)$"):
        ClipEncoder(str(tiny_config), None, device="cpu", seed=0)


# ---- the work folder: only what graphrec wrote is ever removed
def text_args(tiny_config, *extra):
    return ("--text-fields", "title", "--model", tiny_config, "--pretrained", "none", "--device", "cpu", "--quiet", *extra)


def test_a_work_dir_that_is_not_graphrecs_is_refused_and_left_alone(data_copy, tiny_config, tmp_path, monkeypatch):
    # the dataset itself, the working directory and a folder of other files were deleted
    # wholesale at the end of the run (and up front with --restart)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("mine\n")
    before = sorted(p.name for p in data_copy.iterdir())
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)
    cases = [
        (data_copy, f"--work-dir {data_copy} is the --data folder {data_copy}"),
        (data_copy / "chunks", f"is inside the --data folder {data_copy}"),
        (out / "w", f"is inside the --out folder {out}"),
        (".", f"--work-dir . contains the --data folder {data_copy}"),
        (tmp_path / "mine", "is a folder of other files (no .graphrec-features-work marker"),
    ]
    for work, message in cases:
        for restart in ((), ("--restart",)):
            res = run("features", "--data", data_copy, "--out", out, "--work-dir", work, *restart, *text_args(tiny_config))
            assert res.exit_code == 1 and res.output.strip().count("\n") == 0, res.output
            assert message in res.output and "choose a" in res.output, res.output
    assert sorted(p.name for p in data_copy.iterdir()) == before
    assert Dataset.load(data_copy).n_items == 9724
    assert (tmp_path / "mine" / "keep.txt").read_text() == "mine\n"
    assert not out.exists() and not (data_copy / "chunks").exists()


@NEEDS_CLIP_MARK
def test_the_work_dir_loses_only_the_chunks(data_copy, tiny_config, tmp_path):
    # an empty folder named by the user stays; one graphrec made goes, with the parents it made
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run("features", "--data", data_copy, "--out", tmp_path / "o1", "--work-dir", empty, *text_args(tiny_config))
    assert res.exit_code == 0, res.output
    assert empty.is_dir() and list(empty.iterdir()) == []
    res = run("features", "--data", data_copy, "--out", tmp_path / "o2", "--work-dir", tmp_path / "new" / "w",
              *text_args(tiny_config))
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "new").exists()
    # a file put into graphrec's work folder between two runs (--restart too) survives them
    work = tmp_path / "work"
    res = run("features", "--data", data_copy, "--out", tmp_path / "o3", "--work-dir", work, *text_args(tiny_config))
    assert res.exit_code == 0 and not work.exists(), res.output
    gf.open_work_dir(work)
    (work / "notes.txt").write_text("notes\n")
    res = run("features", "--data", data_copy, "--out", tmp_path / "o4", "--work-dir", work, "--restart",
              *text_args(tiny_config))
    assert res.exit_code == 0, res.output
    assert [p.name for p in work.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--workers", "-1"), "--workers must be at least 1 (threads decoding images), got -1"),  # was a traceback
        (("--workers", "0"), "--workers must be at least 1"),
        (("--chunk-size", "0"), "--chunk-size must be at least 1, got 0"),
        (("--text-model", "all-MiniLM-L6-v2"), "--text-model embeds item texts, and none are extracted: pass --texts FILE"),
        (("--id-column", "movieId"), "--id-column names the item id column of --texts or --image-map, and neither is given"),
    ],
)
def test_bad_or_unused_options_are_refused_before_any_work(ml_small, data_copy, tiny_config, tmp_path, extra, message):
    res = run("features", "--data", data_copy, "--images", ml_small / "posters", "--model", tiny_config,
              "--pretrained", "none", "--device", "cpu", "--quiet", "--out", tmp_path / "out", *extra)
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0, res.output
    assert message in res.output, res.output
    assert not (tmp_path / "out").exists()


def test_an_image_key_without_images_is_refused(ml_small, data_copy, tiny_config, tmp_path):
    res = run("features", "--data", data_copy, "--texts", ml_small / "movies.csv", "--image-key", "tmdbId",
              *text_args(tiny_config, "--out", tmp_path / "out"))
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0, res.output
    assert "--image-key tmdbId names the items' image files, and no --images DIR is given" in res.output
    assert not (tmp_path / "out").exists()
