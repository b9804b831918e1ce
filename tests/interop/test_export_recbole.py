"""Both directions of the file bridge: ``graphrec export-recbole`` output read by RecBole
with the printed config and no edits (same users, items, interactions per split and
features), and ``graphrec prepare --format recbole`` on what RecBole users have
(RecBole's own ml-100k example, and the exported folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("recbole", reason="needs RecBole 1.2.1 (the [recbole] extra, numpy < 2; the development lock has it)")

from graphrec.cli import app  # noqa: E402
from graphrec.data import Dataset  # noqa: E402
from graphrec.interop.recbole import recbole_workdir  # noqa: E402

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def exported(lfm2k: Dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("export")
    lfm2k.save(root / "graphrec" / "lfm2k")
    res = run("export-recbole", root / "graphrec" / "lfm2k", root / "recbole" / "lfm2k")
    assert res.exit_code == 0, res.output
    return root / "recbole" / "lfm2k", res.output


def test_help_has_an_example() -> None:
    res = run("export-recbole", "--help")
    assert res.exit_code == 0 and "Example" in res.output


def test_recbole_reads_the_export_with_the_printed_config(lfm2k: Dataset, exported: tuple[Path, str], tmp_path: Path) -> None:
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation

    out, output = exported
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"lfm2k{s}" for s in (".inter", ".train.inter", ".valid.inter", ".test.inter", ".item", ".user")
    )
    config_lines = output.split("RecBole config:\n", 1)[1].splitlines()
    (tmp_path / "lfm2k.yaml").write_text("\n".join(line.strip() for line in config_lines) + "\n")
    with recbole_workdir(tmp_path):
        config = Config(
            model="BPR",
            config_file_list=[str(tmp_path / "lfm2k.yaml")],
            config_dict={"use_gpu": False, "state": "WARNING", "checkpoint_dir": str(tmp_path / "saved")},
        )
        dataset = create_dataset(config)
        train, valid, test = data_preparation(config, dataset)
    assert config["dataset"] == "lfm2k"
    assert dataset.user_num - 1 == lfm2k.n_users and dataset.item_num - 1 == lfm2k.n_items
    for split, loader in (("train", train), ("valid", valid), ("test", test)):
        assert loader.dataset.inter_num == lfm2k.splits[split].nnz, split
    assert len(test.uid_list) == len(lfm2k.users_with("test"))
    iid = dataset.token2id("item_id", lfm2k.item_ids)
    np.testing.assert_array_equal(dataset.item_feat["text"].numpy()[iid], lfm2k.item_features["text"])
    np.testing.assert_array_equal(dataset.item_feat["audio"].numpy()[iid], lfm2k.item_features["audio"])


def test_prepare_reads_the_export_back(lfm2k: Dataset, exported: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = exported
    res = run("prepare", "--format", "recbole", out, tmp_path / "back")
    assert res.exit_code == 0, res.output
    back = Dataset.load(tmp_path / "back")
    assert back.fingerprint() == lfm2k.fingerprint()  # split, ids and features unchanged


def test_export_refuses_existing_output(exported: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = exported
    res = run("export-recbole", tmp_path / "missing", tmp_path / "x")
    assert res.exit_code == 1 and "not a graphrec dataset directory" in res.output
    res = run("export-recbole", tmp_path / "missing", out)
    assert res.exit_code == 1 and "already exists: choose another OUT or pass --overwrite" in res.output
    other = tmp_path / "notes"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    res = run("export-recbole", tmp_path / "missing", other, "--overwrite")
    assert res.exit_code == 1 and "is not a folder written by export-recbole (no *.inter in it)" in res.output
    assert (other / "notes.txt").read_text() == "x"


def test_prepare_reads_recboles_own_example_like_recbole(tmp_path: Path) -> None:
    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset

    src = Path(recbole.__file__).parent / "dataset_example" / "ml-100k"
    res = run("prepare", "--format", "recbole", src, tmp_path / "ml100k", "--seed", "0")
    assert res.exit_code == 0, res.output
    ds = Dataset.load(tmp_path / "ml100k")
    with recbole_workdir(tmp_path):
        # dataset "ml-100k" makes RecBole read its bundled copy with its preset config
        rb = create_dataset(Config(model="BPR", dataset="ml-100k", config_dict={"use_gpu": False, "state": "WARNING"}))
    assert (ds.n_users, ds.n_items) == (rb.user_num - 1, rb.item_num - 1) == (943, 1682)
    assert sum(m.nnz for m in ds.splits.values()) == rb.inter_num == 100000
    assert set(ds.splits) == {"train", "valid", "test"}  # no given split: random per user
    assert ds.user_fields["occupation"][ds.user_ids.tolist().index("1")] == "technician"
