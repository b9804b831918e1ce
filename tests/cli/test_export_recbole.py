"""``graphrec export-recbole`` without RecBole installed: refusals that write nothing and
the printed config (RecBole reading the export is in tests/interop/test_export_recbole.py)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data import Dataset
from graphrec.data.dataset import build_dataset
from graphrec.errors import DataError

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_ids_pandas_reads_as_missing_are_refused(tmp_path: Path) -> None:
    build_dataset(["u", "null"], ["i", "i"], ["train", "train"], name="na").save(tmp_path / "na")
    res = run("export-recbole", tmp_path / "na", tmp_path / "new" / "na")
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        "error: user id 'null' is read as a missing value by RecBole (pandas takes 'null' for NaN), so RecBole "
        "would not see this user: rename the user ids before preparing the dataset"
    ]
    assert not (tmp_path / "new").exists()


def test_printed_config_names_only_the_split_files_written(tmp_path: Path) -> None:
    users, items = ["u", "u", "v", "v"], ["a", "b", "a", "b"]
    build_dataset(users, items, ["train", "train", "train", "test"], name="d").save(tmp_path / "d")
    res = run("export-recbole", tmp_path / "d", tmp_path / "rb" / "d")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "rb" / "d").glob("*.inter")) == ["d.inter", "d.test.inter", "d.train.inter"]
    assert ("note: the valid split is empty, so d.valid.inter was not written and the config has no "
            "benchmark_filename (RecBole needs train, valid and test files): RecBole splits d.inter itself") in res.output
    assert "benchmark_filename" not in res.output.split("RecBole config:", 1)[1]
    build_dataset(users, items, ["train", "train", "valid", "test"], name="d", unseen="keep").save(tmp_path / "full")
    res = run("export-recbole", tmp_path / "full", tmp_path / "rb2" / "d")
    assert res.exit_code == 0 and "note:" not in res.output
    assert "  benchmark_filename: [train, valid, test]\n" in res.output


def test_a_failed_export_names_the_item_and_leaves_no_folder(tmp_path: Path) -> None:
    import numpy as np

    build_dataset(["u", "u"], ["1", "2"], ["train", "train"], name="t",
                  item_fields={"title": np.array(["ok", "A\tB"])}).save(tmp_path / "t")
    res = run("export-recbole", tmp_path / "t", tmp_path / "new" / "deeper" / "t")
    assert res.exit_code == 1
    assert res.output.strip() == ("error: item field 'title' value 'A\\tB' of item '2' contains a tab or line break, "
                                  "which RecBole atomic files cannot hold: replace it before writing")
    assert not (tmp_path / "new").exists()


def test_an_out_folder_named_like_a_dataset_recbole_ships_is_refused_first(tmp_path: Path) -> None:
    # RecBole's Config reads recbole/dataset_example/ml-100k for dataset 'ml-100k', whatever data_path says
    res = run("export-recbole", tmp_path / "no-such-dataset", tmp_path / "new" / "ml-100k")
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        f"error: OUT {tmp_path / 'new' / 'ml-100k'}: the folder name 'ml-100k' is a dataset RecBole ships: for the "
        "dataset name 'ml-100k' RecBole reads its bundled copy (recbole/dataset_example/ml-100k) whatever data_path "
        "says, so it would never read these files: choose another OUT folder name"
    ]
    assert not (tmp_path / "new").exists()
    from graphrec.data.formats import write_recbole

    with pytest.raises(DataError, match=r"^dataset name 'ml-100k' is a dataset RecBole ships: .*: pass another name="):
        write_recbole(build_dataset(["u"], ["i"], ["train"], name="ml-100k"), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def read_back(output: str, dest: Path) -> Dataset:
    """Run the read-back command export-recbole printed, into ``dest``."""
    line = next(ln for ln in output.splitlines() if ln.startswith("read back"))
    argv = shlex.split(line.split(": ", 1)[1].replace("DATASET_DIR", str(dest)))
    assert argv[:4] == ["graphrec", "prepare", "--format", "recbole"]
    res = run(*argv[1:])
    assert res.exit_code == 0, res.output
    return Dataset.load(dest)


def test_the_printed_read_back_command_gives_the_same_dataset(tmp_path: Path) -> None:
    import numpy as np

    # user w and item c only in test: reading back needs --unseen keep
    ds = build_dataset(["u", "u", "v", "v", "w"], ["a", "b", "a", "b", "c"], ["train", "train", "train", "valid", "test"],
                       timestamps=[1, 2, 3, 4, 5], item_fields={"price": np.array([1.5, 2.0, np.nan])},
                       name="d", unseen="keep")
    ds.save(tmp_path / "d")
    res = run("export-recbole", tmp_path / "d", tmp_path / "rb" / "d")
    assert res.exit_code == 0, res.output
    assert (f"read back (same fingerprint {ds.fingerprint()[:16]}): graphrec prepare --format recbole "
            f"{tmp_path / 'rb' / 'd'} DATASET_DIR --unseen keep") in res.output.splitlines()
    assert read_back(res.output, tmp_path / "back").fingerprint() == ds.fingerprint()
    # no valid split written: prepare must re-split, so the command says so and claims no fingerprint
    build_dataset(["u", "u", "v", "v"], ["a", "b", "a", "b"], ["train", "train", "train", "test"], name="h").save(tmp_path / "h")
    res = run("export-recbole", tmp_path / "h", tmp_path / "rb" / "h")
    assert res.exit_code == 0, res.output
    assert f"read back: graphrec prepare --format recbole {tmp_path / 'rb' / 'h'} DATASET_DIR --split random" in res.output
    back = read_back(res.output, tmp_path / "back_h")
    assert sum(m.nnz for m in back.splits.values()) == 4 and list(back.user_ids) == ["u", "v"]
