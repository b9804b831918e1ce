"""read_source: dispatch by format name, option checks, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec.data.formats import FORMATS, read_lattice, read_source
from graphrec.errors import ConfigError, DataError


def test_formats_table() -> None:
    assert sorted(FORMATS) == ["csv", "lattice", "mmrec", "movielens", "recbole", "unisrec"]
    assert FORMATS["lattice"] is read_lattice


def test_unknown_format() -> None:
    with pytest.raises(DataError, match=r"unknown data format 'tsv': use one of mmrec, lattice, unisrec, recbole, "
                                        r"movielens, csv"):
        read_source("tsv", Path("x"))


def test_option_not_taken() -> None:
    with pytest.raises(ConfigError, match=r"format 'movielens' does not take features"):
        read_source("movielens", Path("x"), features={"text": "t.npy"})
    with pytest.raises(ConfigError, match=r"format 'mmrec' does not take min_rating .*movielens"):
        read_source("mmrec", Path("x"), min_rating=3.0)


def test_dispatch_real(shared_data: Path) -> None:
    ds = read_source("MMRec", shared_data / "lfm2k" / "lfm2k.inter", features={"text": "all-MiniLM-L6-v2.npy"}, name="lfm")
    assert ds.name == "lfm" and ds.n_items == 1425 and ds.modalities == ["text"]
    sci = read_source("unisrec", shared_data / "amazon-scientific", features={"image": "feat3CLS"}, unseen="drop")
    assert sci.modalities == ["image"]
    ml = read_source("movielens", shared_data / "ml100k", min_rating=5, unseen="drop")
    assert ml.train.nnz < 100000


def test_errors_are_one_line(tmp_path: Path) -> None:
    for fmt in FORMATS:
        with pytest.raises(DataError) as e:
            read_source(fmt, tmp_path / "missing")
        assert "\n" not in str(e.value) and "missing" in str(e.value)


def test_a_graphrec_dataset_is_not_imported_again(tmp_path: Path) -> None:
    from graphrec.data.synthetic import synthetic_catalogue

    data = synthetic_catalogue(n_users=20, n_items=10, n_clusters=2, seed=0).save(tmp_path / "d")
    for fmt in ("mmrec", "recbole"):
        with pytest.raises(DataError, match="is already a graphrec dataset directory .dataset.json.: read it with "
                                            "Dataset.load .CLI: pass it as --data."):
            read_source(fmt, data)


def test_option_not_taken_names_the_cli_flag() -> None:
    with pytest.raises(ConfigError, match=r"format 'movielens' does not take features \(formats that do: mmrec, lattice, "
                       r"unisrec, csv\): remove features= \(CLI: --feature\)$"):
        read_source("movielens", Path("x"), features={"text": "t.npy"})
    with pytest.raises(ConfigError, match=r"remove min_rating= \(CLI: --min-rating\)$"):
        read_source("mmrec", Path("x"), min_rating=3.0)


def test_unseen_is_checked_for_every_format(tmp_path: Path) -> None:
    # movielens ignores unseen, but a misspelt value was accepted silently
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4,100\n")
    with pytest.raises(ConfigError, match=r"^unseen='bogus' \(--unseen\) is not one of error, drop, keep$"):
        read_source("movielens", tmp_path, unseen="bogus")
    assert read_source("movielens", tmp_path, unseen="drop").train.nnz == 1
