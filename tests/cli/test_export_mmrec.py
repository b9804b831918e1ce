"""``graphrec export-mmrec``: the folder MMRec reads, the printed read-back command
(``prepare --format mmrec``) giving the same fingerprint, notes for what MMRec files
cannot hold, one-line option errors that write nothing, and overwrite refusal."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data import Dataset
from graphrec.data.dataset import build_dataset
from graphrec.data.splits import cold_start
from graphrec.data.synthetic import synthetic_catalogue

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def synthetic(**changes) -> Dataset:
    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=4, seed=0)
    return ds.replace(**changes)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic catalogue (image + text, timestamps) without its item field."""
    path = tmp_path_factory.mktemp("export_mmrec") / "synthetic"
    synthetic(item_fields={}).save(path)
    return path


def read_back(output: str, dest: Path) -> Dataset:
    """Run the read-back command that export-mmrec printed, into ``dest``."""
    line = next(ln for ln in output.splitlines() if ln.startswith("read back"))
    argv = shlex.split(line.split(": ", 1)[1].replace("DATASET_DIR", str(dest)))
    assert argv[:3] == ["graphrec", "prepare", "--format"]
    res = run(*argv[1:])
    assert res.exit_code == 0, res.output
    return Dataset.load(dest)


def test_help_has_an_example() -> None:
    res = run("export-mmrec", "--help")
    assert res.exit_code == 0 and "Example" in res.output


def test_export_is_what_mmrec_reads_and_prepare_reads_it_back(data_dir: Path, tmp_path: Path) -> None:
    ds = Dataset.load(data_dir)
    out = tmp_path / "mmrec" / "synthetic"
    res = run("export-mmrec", data_dir, out)
    assert res.exit_code == 0, res.output
    assert f"wrote {out}: 60 users, 40 items, train {ds.train.nnz}, valid {ds.valid.nnz}, test {ds.test.nnz}" in res.output
    assert "image_feat.npy = image (32-d), text_feat.npy = text (32-d)" in res.output
    assert f"read back (same fingerprint {ds.fingerprint()[:16]})" in res.output
    assert "note:" not in res.output
    assert "  inter_file_name: 'synthetic.inter'" in res.output
    assert f"data_path: {out.resolve().parent}/" in res.output

    # what MMRec's loader relies on: the header, 0-based ids whose max + 1 are the
    # user and item counts, item i = feature row i, x_label 0/1/2 per split
    lines = (out / "synthetic.inter").read_text().splitlines()
    assert lines[0].split("\t") == ["userID", "itemID", "rating", "timestamp", "x_label"]
    rows = np.array([ln.split("\t") for ln in lines[1:]], dtype=np.float64)
    assert rows[:, 0].max() + 1 == ds.n_users and rows[:, 1].max() + 1 == ds.n_items
    assert set(rows[:, 2]) == {1.0}
    for label, s in enumerate(("train", "valid", "test")):
        assert (rows[:, 4] == label).sum() == ds.splits[s].nnz
    for slot in ("image", "text"):
        np.testing.assert_array_equal(np.load(out / f"{slot}_feat.npy"), ds.item_features[slot])

    back = read_back(res.output, tmp_path / "back")
    assert back.fingerprint() == ds.fingerprint()


def test_chosen_slots_read_back_under_their_names(tmp_path: Path) -> None:
    ds = synthetic(item_fields={})
    ds = ds.replace(item_features={"clip": ds.item_features["image"], "minilm": ds.item_features["text"]})
    ds.save(tmp_path / "ds")
    out = tmp_path / "synthetic"
    res = run("export-mmrec", tmp_path / "ds", out, "--image", "clip", "--text", "minilm")
    assert res.exit_code == 0, res.output
    assert "--feature clip=image_feat.npy --feature minilm=text_feat.npy" in res.output
    # MMRec's FREEDOM weighs its image_feat graph 0.1, graphrec's default weighs clip and minilm equally
    assert ("note: MMRec's DRAGON and FREEDOM merge the item graphs of image_feat.npy (clip) and text_feat.npy "
            "(minilm) with weights 0.1 / 0.9 (mm_image_weight), graphrec's default with 0.5 / 0.5: train graphrec "
            "with --modality-weights clip=0.1,minilm=0.9 for MMRec's merge") in res.output
    assert read_back(res.output, tmp_path / "back").fingerprint() == ds.fingerprint()


def test_users_without_training_are_noted_and_read_back_with_unseen_keep(tmp_path: Path) -> None:
    ds = build_dataset(
        ["a", "a", "b", "b", "c", "a", "b"],
        ["0", "1", "1", "2", "2", "2", "0"],
        ["train", "train", "train", "train", "test", "valid", "test"],
        item_features={"image": np.eye(3, dtype=np.float32)},
        name="t",
        unseen="keep",
    )
    ds.save(tmp_path / "ds")
    res = run("export-mmrec", tmp_path / "ds", tmp_path / "t", "--text", "image")
    assert res.exit_code == 0, res.output
    assert "note: 1 test interactions of 1 users without training interactions: MMRec drops them" in res.output
    assert "--feature image=text_feat.npy --unseen keep" in res.output
    assert not (tmp_path / "t" / "image_feat.npy").exists()
    assert read_back(res.output, tmp_path / "back").fingerprint() == ds.fingerprint()


def test_what_mmrec_files_cannot_hold_is_noted(tmp_path: Path) -> None:
    ds = cold_start(synthetic(), 0.1, seed=0)
    ds = ds.replace(item_features=dict(ds.item_features, audio=ds.item_features["text"][:, :4]))
    ds.save(tmp_path / "ds")
    res = run("export-mmrec", tmp_path / "ds", tmp_path / "synthetic")
    assert res.exit_code == 0, res.output
    assert "note: modalities audio are not written" in res.output
    assert "note: fields (item cluster) have no place in MMRec files" in res.output
    assert "note: the 4 cold-start items are not marked in MMRec files" in res.output
    assert "same fingerprint" not in res.output


def test_trailing_items_without_interactions_are_refused_or_left_out(tmp_path: Path) -> None:
    """MMRec counts max(itemID) + 1 items: items after the last one with interactions are
    refused with the option that leaves them out; with it, the export and its read-back
    have the other items, and the note says which were left out."""
    import scipy.sparse as sp

    ds = synthetic(item_fields={})
    ds = ds.replace(
        item_ids=np.array([*ds.item_ids.tolist(), "x1", "x2"]),
        splits={s: sp.hstack([m, sp.csr_matrix((ds.n_users, 2))]).tocsr() for s, m in ds.splits.items()},
        item_features={m: np.vstack([x, np.ones((2, x.shape[1]), np.float32)]) for m, x in ds.item_features.items()},
    )
    ds.save(tmp_path / "ds")
    res = run("export-mmrec", tmp_path / "ds", tmp_path / "synthetic")
    assert res.exit_code == 1 and "(CLI: --drop-trailing-items) to leave the 2 trailing items without interactions" in res.output
    assert not (tmp_path / "synthetic").exists()
    res = run("export-mmrec", tmp_path / "ds", tmp_path / "synthetic", "--drop-trailing-items")
    assert res.exit_code == 0, res.output
    assert f"wrote {tmp_path / 'synthetic'}: 60 users, 40 items" in res.output
    assert "note: the last 2 of 42 items (from 'x1', index 40) have no interactions and are not written" in res.output
    assert "same fingerprint" not in res.output
    back = read_back(res.output, tmp_path / "back")
    assert back.item_ids.tolist() == ds.item_ids[:40].tolist()
    np.testing.assert_array_equal(back.item_features["image"], ds.item_features["image"][:40])


def test_dataset_without_features(tmp_path: Path) -> None:
    synthetic(item_fields={}, item_features={}).save(tmp_path / "ds")
    res = run("export-mmrec", tmp_path / "ds", tmp_path / "synthetic")
    assert res.exit_code == 0, res.output
    assert "note: the dataset has no features: only MMRec's general models" in res.output
    assert sorted(p.name for p in (tmp_path / "synthetic").iterdir()) == [
        "i_id_mapping.csv", "synthetic.inter", "u_id_mapping.csv"
    ]
    assert "vision_feature_file" not in res.output


@pytest.mark.parametrize(
    "make, args, message",
    [
        (None, ["--image", "audio"], "error: image='audio' (CLI: --image): dataset 'synthetic' has no modality 'audio' (it has: image, text)"),
        (None, ["--image", "text", "--text", "text"], "both name modality 'text'"),
        (None, ["--name", "other"], "dataset name 'other' differs from the folder name 'synthetic'"),
        ("audio", [], "no modality named 'image' for MMRec's image_feat.npy and 'audio' would not be written"),
        ("nosplit", [], "has no valid split: MMRec trains on train, stops early on valid and reports test"),
        ("missing", [], "is not a graphrec dataset directory"),
    ],
)
def test_errors_are_one_line_and_write_nothing(tmp_path: Path, data_dir: Path, make: str | None, args: list, message: str) -> None:
    src = data_dir
    if make == "audio":
        ds = synthetic(item_fields={})
        src = ds.replace(item_features={"audio": ds.item_features["image"]}).save(tmp_path / "ds")
    elif make == "nosplit":
        ds = synthetic(item_fields={}, timestamps=None)
        src = ds.replace(splits={"train": ds.train, "test": ds.test}).save(tmp_path / "ds")
    elif make == "missing":
        src = tmp_path / "nope"
    out = tmp_path / "out" / "synthetic"
    res = run("export-mmrec", src, out, *args)
    assert res.exit_code == 1
    assert message in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_refuses_an_existing_out_unless_overwrite(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "synthetic"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    res = run("export-mmrec", data_dir, out)
    assert res.exit_code == 1
    assert res.output.strip() == f"error: {out} already exists: choose another OUT or pass --overwrite"
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    # --overwrite replaces an earlier export only: a folder of other files (or the source
    # dataset itself) is kept, and the call refused
    res = run("export-mmrec", data_dir, out, "--overwrite")
    assert res.exit_code == 1 and "is not a folder written by export-mmrec (no *.inter in it)" in res.output
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    res = run("export-mmrec", data_dir, data_dir, "--overwrite", "--name", data_dir.name)
    assert res.exit_code == 1 and (data_dir / "dataset.json").is_file()
    (out / "mine.txt").unlink()
    out.rmdir()
    assert run("export-mmrec", data_dir, out).exit_code == 0
    (out / "mine.txt").write_text("left in an earlier export")
    res = run("export-mmrec", data_dir, out, "--overwrite")
    assert res.exit_code == 0, res.output
    assert not (out / "mine.txt").exists() and (out / "synthetic.inter").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic"]  # no temporary folder left


def test_printed_config_names_only_the_feature_files_written(data_dir: Path, tmp_path: Path) -> None:
    ds = Dataset.load(data_dir)
    ds.replace(item_features={"text": ds.item_features["text"]}).save(tmp_path / "textonly")
    out = tmp_path / "mmrec" / "textonly"
    res = run("export-mmrec", tmp_path / "textonly", out, "--name", "textonly")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.glob("*.npy")) == ["text_feat.npy"]
    assert ("note: no image_feat.npy written (no modality for MMRec's image features; --image MODALITY chooses one): "
            "the config sets vision_feature_file: '' so MMRec loads no image features") in res.output
    config = res.output.split("MMRec dataset config", 1)[1]
    assert "  vision_feature_file: ''\n" in config and "  text_feature_file: 'text_feat.npy'\n" in config
    assert "image_feat.npy" not in config


def test_printed_config_names_time_field_only_with_a_timestamp_column(data_dir: Path, tmp_path: Path) -> None:
    """The printed config said TIME_FIELD: timestamp for a .inter file without that column."""
    res = run("export-mmrec", data_dir, tmp_path / "with" / "synthetic")
    assert res.exit_code == 0, res.output
    assert "  TIME_FIELD: timestamp\n" in res.output.split("MMRec dataset config", 1)[1]
    Dataset.load(data_dir).replace(timestamps=None).save(tmp_path / "nots")
    out = tmp_path / "without" / "synthetic"
    res = run("export-mmrec", tmp_path / "nots", out)
    assert res.exit_code == 0, res.output
    assert "timestamp" not in (out / "synthetic.inter").read_text().splitlines()[0]
    assert "TIME_FIELD" not in res.output and "timestamps are not written" not in res.output


def test_user_graph_is_mmrecs_user_graph_dict_of_the_training_counts(data_dir: Path, tmp_path: Path) -> None:
    """--user-graph writes what MMRec's preprocessing/dualgnn-gen-u-u-matrix.py writes for
    DRAGON and DualGNN: per user, the other users by the number of training items both
    have, most first; checked against a dense count of the 60 users."""
    ds = Dataset.load(data_dir)
    out = tmp_path / "synthetic"
    res = run("export-mmrec", data_dir, out, "--user-graph")
    assert res.exit_code == 0, res.output
    graph = np.load(out / "user_graph_dict.npy", allow_pickle=True).item()
    r = (ds.train.toarray() > 0).astype(np.int64)
    counts = r @ r.T
    np.fill_diagonal(counts, 0)
    assert sorted(graph) == list(range(ds.n_users))
    for u in range(ds.n_users):
        expected = sorted(np.flatnonzero(counts[u]).tolist(), key=lambda v: (-counts[u, v], v))
        assert graph[u] == [expected, [float(counts[u, v]) for v in expected]]
    assert f"user_graph_dict.npy ({int((counts > 0).sum())} user-user edges)" in res.output
    assert "  user_graph_dict_file: 'user_graph_dict.npy'\n" in res.output.split("MMRec dataset config", 1)[1]
    assert "--user-graph writes it" not in res.output
    assert read_back(res.output, tmp_path / "back").fingerprint() == ds.fingerprint()
    res = run("export-mmrec", data_dir, tmp_path / "plain" / "synthetic")
    assert "user_graph_dict_file" not in res.output and not (tmp_path / "plain" / "synthetic" / "user_graph_dict.npy").exists()
    assert "(MMRec's DRAGON and DualGNN also read user_graph_dict.npy: --user-graph writes it)" in res.output
