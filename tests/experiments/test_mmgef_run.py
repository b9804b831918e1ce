"""experiments/mmgef/run.py's bookkeeping: which rows are the same run, and which grid
point Table 8 takes (validation only). A wrong answer here silently reuses or selects
the wrong result, so these are checked on the script's real row list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def run(mmgef_run):
    return mmgef_run


def by_name(rows, name, cold=False):
    (row,) = [c for c in rows if c.name == name and bool(c.cold_start) == cold]
    return row


@pytest.mark.parametrize("dataset", ["scientific", "lfm2k"])
def test_grid_row_at_the_dataset_settings_is_the_plain_row(run, dataset):
    rows = run.configs(dataset)
    settings = run.SETTINGS[dataset]
    bs, lr = settings["batch_size"], settings["lr"]
    for model in run.GRID_MODELS:
        same = by_name(rows, run.grid_name(model, bs, lr))
        other = by_name(rows, run.grid_name(model, 512, 1e-2))
        twins = run.find_twins([same, other], rows, settings)
        assert by_name(rows, model) in twins[run.slug(same)]
        assert twins[run.slug(other)] == []  # another batch size and lr: a run of its own


def test_warm_and_cold_rows_that_share_a_name_are_not_twins(run):
    rows = run.configs("scientific")
    settings = run.SETTINGS["scientific"]
    warm, cold = by_name(rows, "LATTICE"), by_name(rows, "LATTICE", cold=True)
    assert run.slug(warm) != run.slug(cold)
    assert run.result_path(Path("r"), "scientific", warm, 0) != run.result_path(Path("r"), "scientific", cold, 0)
    twins = run.find_twins([warm, cold], rows, settings)
    assert cold not in twins[run.slug(warm)] and warm not in twins[run.slug(cold)]
    # "MM-GEF text" fuses text only on lfm2k, where it is "MM-GEF" itself; the cold
    # "MM-GEF text" row is the cold "MM-GEF", never the warm one
    rows = run.configs("lfm2k")
    settings = run.SETTINGS["lfm2k"]
    text_cold = by_name(rows, "MM-GEF text", cold=True)
    twins = run.find_twins([text_cold], rows, settings)[run.slug(text_cold)]
    assert twins and all(t.cold_start for t in twins)


def write(out, run, dataset, row, valid, test):
    path = run.result_path(out, dataset, row, 0)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"best_valid": {"recall@20": valid}, "test": {"recall@20": test},
                                "run_settings": run.run_settings(row, run.SETTINGS[dataset], 1000)}))


def test_table_8_takes_the_best_validation_point_first_of_equals(run, tmp_path):
    rows = run.configs("lfm2k")
    grid = [(bs, lr) for bs in run.GRID["batch_size"] for lr in run.GRID["lr"]]
    # LightGCN: two points tie on validation (the later one has the better test: ignored)
    for i, (bs, lr) in enumerate(grid):
        valid = 0.40 if (bs, lr) in ((1024, 1e-3), (4096, 1e-2)) else 0.30 + 0.001 * i
        test = 0.99 if (bs, lr) == (4096, 1e-2) else 0.1
        write(tmp_path, run, "lfm2k", by_name(rows, run.grid_name("LightGCN", bs, lr)), valid, test)
    # LATTICE: one grid point missing, so no tuned point yet
    for bs, lr in grid[:-1]:
        write(tmp_path, run, "lfm2k", by_name(rows, run.grid_name("LATTICE", bs, lr)), 0.5, 0.5)
    chosen = run.tuned_rows(rows, tmp_path, "lfm2k")
    assert [c.name for c in chosen] == [run.grid_name("LightGCN", 1024, 1e-3)]
    assert chosen[0].train == {"batch_size": 1024, "lr": 1e-3}
    # a grid point trained with another --epochs (a smoke run) selects nothing: the call stops
    with pytest.raises(SystemExit, match=r"lfm2k/lightgcn-grid-bs-512-lr-1e-02/seed0.json was trained with other "
                                         r"settings \(max_epochs: 1000 there, 5 in this call\)"):
        run.tuned_rows(rows, tmp_path, "lfm2k", epochs=5)


def test_only_names_that_are_no_row_stop_the_call_before_any_work(run, tmp_path):
    """``--only`` with a name that is no row of the tables ran nothing and exited 0 (the
    README listed such commands); it stops with the rows it has, before the data are read."""
    with pytest.raises(SystemExit, match=r"--only 'LATTICE \(cold-selected\)': no row of table\(s\) 3 on scientific"):
        run.main(["--dataset", "scientific", "--tables", "3", "--only", "LATTICE,LATTICE (cold-selected)",
                  "--data-root", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_the_readme_commands_name_existing_rows(run):
    """Every ``run.py ... --only "A,B"`` command of the README's command block names rows
    of the tables it asks for."""
    import re
    import shlex

    readme = (Path(run.__file__).parent / "README.md").read_text()
    block = readme.split("```bash", 1)[1].split("```", 1)[0]
    checked = 0
    for line in block.splitlines():
        if "experiments/mmgef/run.py" not in line or "--only" not in line:
            continue
        args = shlex.split(line.split("#", 1)[0])
        opts = dict(zip(args[2::2], args[3::2]))
        tables = {int(t) for t in opts["--tables"].split(",")}
        names = {c.name for c in run.configs(opts["--dataset"]) if tables & set(c.tables)}
        assert set(opts["--only"].split(",")) <= names, (line, set(opts["--only"].split(",")) - names)
        checked += 1
    assert checked >= 4
    assert re.search(r"cold_gradients\.py --seeds 0,1,2", block)


def test_result_settings_differ_recorded_and_legacy(run):
    rows = run.configs("lfm2k")
    settings = run.SETTINGS["lfm2k"]
    mf = by_name(rows, "MF-BPR")
    wanted = run.run_settings(mf, settings, 1000)
    assert wanted == {"max_epochs": 1000, "patience": 20, "eval_every": 1, "lr": 1e-3, "batch_size": 2048}
    assert run.settings_differ({"run_settings": dict(wanted)}, wanted) is None
    smoke = {"run_settings": dict(wanted, max_epochs=1)}
    assert run.settings_differ(smoke, wanted) == "max_epochs: 1 there, 1000 in this call"
    assert run.settings_differ({"run_settings": dict(wanted, lr=1e-2)}, wanted).startswith("lr: 0.01 there")
    # results written before the settings were recorded: judged by their epochs and lr
    assert run.settings_differ({"lr": 1e-3, "epochs": 1, "best_epoch": 1}, wanted).startswith("max_epochs: 1 epochs")
    assert run.settings_differ({"lr": 1e-3, "epochs": 87, "best_epoch": 60}, wanted) is None  # stopped early
    assert run.settings_differ({"lr": 1e-3, "epochs": 1000, "best_epoch": 990}, wanted) is None  # ran them all
    assert run.settings_differ({"lr": 1e-2, "epochs": 87, "best_epoch": 60}, wanted).startswith("lr: 0.01")
    # CB does not train: no setting to differ in
    assert run.run_settings(by_name(rows, "CB"), settings, 1) == {}


def test_every_committed_result_has_the_settings_run_py_runs(run):
    """The committed Tables (trained to early stopping under SETTINGS) pass the check that
    refuses smoke runs: a later call skips them, as before."""
    out = Path(run.__file__).parent / "results"
    checked = 0
    for dataset in run.SETTINGS:
        for c in run.configs(dataset):
            for path in (out / dataset / run.slug(c)).glob("seed*.json"):
                differ = run.settings_differ(json.loads(path.read_text()), run.run_settings(c, run.SETTINGS[dataset], 1000))
                assert differ is None, (path, differ)
                checked += 1
    assert checked > 0


def test_a_result_of_other_settings_stops_the_call(shared_data, tmp_path):
    """A 1-epoch smoke result was skipped by a later 3-epoch call (nothing printed, the
    smoke result kept as if it were the call's): the call now stops before any work."""
    import subprocess
    import sys

    def call(*args):
        return subprocess.run([sys.executable, str(Path(run_script())), "--dataset", "lfm2k", "--tables", "1",
                               "--only", "MF-BPR", "--seeds", "0", "--data-root", str(shared_data),
                               "--out", str(tmp_path), *args], capture_output=True, text=True, timeout=300)

    first = call("--epochs", "1")
    assert first.returncode == 0, first.stderr
    result = tmp_path / "lfm2k" / "mf-bpr" / "seed0.json"
    assert json.loads(result.read_text())["run_settings"]["max_epochs"] == 1
    again = call("--epochs", "1")  # the same settings: skipped
    assert again.returncode == 0 and again.stdout == "", again.stderr
    other = call("--epochs", "3")
    assert other.returncode == 1 and "Traceback" not in other.stderr, other.stderr
    assert other.stderr.strip() == (f"{result} was trained with other settings (max_epochs: 1 there, 3 in this call): "
                                    "delete it to re-run it with this call's, or call with the settings it was run with")
    assert json.loads(result.read_text())["run_settings"]["max_epochs"] == 1  # kept, not overwritten


def run_script() -> Path:
    return Path(__file__).resolve().parents[2] / "experiments" / "mmgef" / "run.py"
