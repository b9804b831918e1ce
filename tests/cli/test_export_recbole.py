"""``graphrec export-recbole`` without RecBole installed: refusals that write nothing and
the printed config (RecBole reading the export is in tests/interop/test_export_recbole.py)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data.dataset import build_dataset

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
