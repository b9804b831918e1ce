"""experiments/zoo/run.py's bookkeeping, which every side-by-side figure with MMRec rests on:
that each MMRec grid point becomes the same point on graphrec's command line, that a
subset keeps the grid's tie order, that the tuned point is the best VALIDATION score (first
of equals), that the committed results are the runs of the grid they claim, and the
standard error of the reported difference."""

from __future__ import annotations

import importlib
import json
import subprocess
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphrec.cli import app

RESULTS = Path(__file__).resolve().parents[2] / "experiments" / "zoo" / "results"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_dir(saved_catalogue):
    return saved_catalogue("zoo", "synthetic", n_users=80, n_items=60, n_clusters=4, seed=0)


def test_points_are_the_grid_product_in_order_and_the_first_is_mmrecs_default(zoo):
    dragon = zoo.MODELS["dragon"]
    pts = zoo.points(dragon)
    assert len(pts) == 1 * 5 * 5
    assert pts[0] == zoo.default_point(dragon) == {"aggr_mode": "add", "reg_weight": 0.1, "learning_rate": 0.1}
    # the last key varies fastest, as itertools.product
    assert [p["learning_rate"] for p in pts[:5]] == [0.1, 0.01, 0.001, 0.0001, 0.00001]
    assert {p["reg_weight"] for p in pts[:5]} == {0.1}


def test_each_zoo_grid_is_the_models_registered_mmrec_grid(zoo):
    """The zoo's MMRec grids, in graphrec's names and scales, are what `graphrec tune MODEL
    --space mmrec` searches (one grid, two places: they must not drift apart)."""
    from graphrec.train import TrainConfig
    from graphrec.train.registry import get_model
    from graphrec.train.space import grid_values, search_space

    for key, model in zoo.MODELS.items():
        if model.tag:  # a variant of a model, with its own fixed options
            continue
        space = search_space(model.name, "mmrec")
        searched, fixed = {}, {}
        for name, values in model.grid.items():
            target = model.to_graphrec[name].lstrip("-").replace("-", "_")  # "--lr" is the training option lr
            values = [v * model.scale[name] if name in model.scale else v for v in values]
            (searched if len(values) > 1 else fixed)[target] = values if len(values) > 1 else values[0]
        fixed.update({k.lstrip("-").replace("-", "_"): v for k, v in model.fixed.items()})
        assert grid_values(space) == searched, key
        # the registry fixes what the zoo leaves to graphrec's defaults: MMRec's lr and no cold-item path
        assert {k: v for k, v in space.fixed.items() if k not in ("lr", "cold_path")} == fixed, key
        assert space.fixed["cold_path"] == "none", key  # the zoo passes --cold-path none
        if "lr" not in searched:  # the zoo trains at graphrec's default rate: MMRec's 0.001, as the grid fixes
            default = get_model(model.name).train_defaults.get("lr", TrainConfig().lr)
            assert space.fixed["lr"] == default == 1e-3, key


def test_a_subset_keeps_the_grids_order_whatever_order_it_was_typed_in(zoo):
    dragon = zoo.MODELS["dragon"]
    a = zoo.restrict(dragon, ["learning_rate=0.0001,0.1,0.001"])
    b = zoo.restrict(dragon, ["learning_rate=0.1,0.001,1e-4"])
    assert a.grid["learning_rate"] == b.grid["learning_rate"] == [0.1, 0.001, 0.0001]
    assert a.grid["reg_weight"] == dragon.grid["reg_weight"]  # other keys untouched
    assert zoo.points(a) == zoo.points(b)
    assert dragon.grid["learning_rate"] == [0.1, 0.01, 0.001, 0.0001, 0.00001]  # the model itself unchanged


@pytest.mark.parametrize(
    "subset, message",
    [("lr=0.1", "KEY one of aggr_mode, reg_weight, learning_rate"), ("learning_rate", "expected KEY=V1,V2"),
     ("learning_rate=0.5", "0.5 is not in dragon's grid for learning_rate")],
)
def test_a_subset_outside_the_grid_is_refused_with_its_name(zoo, subset, message):
    with pytest.raises(SystemExit, match=message):
        zoo.restrict(zoo.MODELS["dragon"], [subset])


def test_keys_name_points_as_the_result_folders_do(zoo):
    assert zoo.key({"n_ui_layers": 3, "reg_weight": 1e-5, "dropout_rate": 0.0, "aggr_mode": "add"}) == (
        "n_ui_layers3-reg_weight1e-05-dropout_rate0-aggr_modeadd")
    assert zoo.key({"reg_weight": 2.0}) == "reg_weight2"


def test_every_committed_result_is_a_run_of_a_point_of_its_models_grid(zoo):
    """A renamed grid value or key would orphan committed runs (the driver would rerun them
    and the summary would silently drop them); each file also says which run it is."""
    files = sorted(RESULTS.glob("*/*-*/*/seed*.json"))
    files = [f for f in files if f.parts[-4] != "graphrec-data"]
    assert len(files) > 100  # the committed tables rest on these
    mmrec_names = {m.name for m in zoo.MODELS.values()}
    for f in files:
        dataset, folder, point_key, seed_file = f.parts[-4:]
        lib, _, label = folder.partition("-")
        candidates = [m for m in zoo.MODELS.values() if (m.label if lib == "graphrec" else m.name) == label]
        assert lib in ("graphrec", "mmrec") and candidates, f
        if lib == "mmrec":
            assert label in mmrec_names
        keys = {zoo.key(p): p for m in candidates for p in zoo.points(m)}
        assert point_key in keys, f"{f}: not a point of the {label} grid"
        rec = json.loads(f.read_text())
        assert rec["lib"] == lib and rec["dataset"] == dataset and rec["seed"] == int(seed_file[4:-5])
        assert rec["point"] == keys[point_key], f
        assert 0 <= rec["valid"]["recall@20"] <= 1 and 0 <= rec["test"]["recall@20"] <= 1


def _write(zoo, lib, model, dataset, point, seed, valid):
    job = zoo.Job(lib, model, dataset, point, seed)
    zoo.write_json(job.path, {"valid": {"recall@20": valid}, "test": {"recall@20": 0.0}})


def test_the_tuned_point_is_the_best_validation_first_of_equals_and_waits_for_the_whole_grid(zoo, tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "HERE", tmp_path)
    model = zoo.restrict(zoo.MODELS["dragon"], ["reg_weight=0.1,0.01", "learning_rate=0.1,0.01"])
    pts = zoo.points(model)  # (0.1, 0.1), (0.1, 0.01), (0.01, 0.1), (0.01, 0.01)
    scores = [0.30, 0.42, 0.42, 0.41]
    for p, v in zip(pts[:3], scores):
        _write(zoo, "mmrec", model, "lfm2k", p, 0, v)
    assert zoo.tuned_point("mmrec", model, "lfm2k", 0) is None  # one point has not run
    _write(zoo, "mmrec", model, "lfm2k", pts[3], 0, scores[3])
    assert zoo.tuned_point("mmrec", model, "lfm2k", 0) == pts[1]  # tied with pts[2]: grid order decides
    # a test score never enters: the best test point is another one
    _write(zoo, "mmrec", model, "lfm2k", pts[3], 0, 0.41)
    path = zoo.Job("mmrec", model, "lfm2k", pts[3], 0).path
    rec = json.loads(path.read_text())
    rec["test"]["recall@20"] = 0.99
    path.write_text(json.dumps(rec))
    assert zoo.tuned_point("mmrec", model, "lfm2k", 0) == pts[1]
    assert zoo.tuned_point("graphrec", model, "lfm2k", 0) is None  # the other library's runs are its own


def test_a_graphrec_variant_shares_mmrecs_runs_of_the_model_it_varies(zoo):
    point = zoo.default_point(zoo.MODELS["vbpr-pb"])
    ours = zoo.Job("graphrec", zoo.MODELS["vbpr-pb"], "lfm2k", point, 0).path
    theirs = zoo.Job("mmrec", zoo.MODELS["vbpr-pb"], "lfm2k", point, 0).path
    assert ours.parts[-3] == "graphrec-vbpr-pb" and theirs.parts[-3] == "mmrec-vbpr"
    assert theirs == zoo.Job("mmrec", zoo.MODELS["vbpr"], "lfm2k", point, 0).path


def test_the_difference_is_in_standard_errors_of_independent_seeds(zoo):
    both = {"graphrec": {"values": {"recall": [0.3, 0.4, 0.5]}}, "mmrec": {"values": {"recall": [0.2, 0.2, 0.2]}}}
    # means 0.4 and 0.2; s.e. sqrt(0.01 / 3 + 0) = 0.0577: +3.5
    assert zoo.difference(both, "recall") == "+0.2000 (+3.5 s.e.)"
    both["mmrec"]["values"]["recall"] = [0.2]
    assert zoo.difference(both, "recall") == "+0.2000"  # one seed: no spread to compare with


def test_mmrec_gets_its_own_names_and_values(zoo, tmp_path):
    point = {"aggr_mode": "add", "reg_weight": 0.1, "learning_rate": 0.01}
    cmd = zoo.mmrec_cmd(zoo.MODELS["dragon"], point, 2, tmp_path / "lfm2k", tmp_path / "mmrec", tmp_path / "out.json")
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    assert sets == ["aggr_mode=add", "reg_weight=0.1", "learning_rate=0.01"]  # unscaled: MMRec's own point
    assert cmd[cmd.index("--model") + 1] == "DRAGON" and cmd[cmd.index("--seed") + 1] == "2"
    assert cmd[cmd.index("--threads") + 1] == "1"


def test_a_result_names_the_processor_it_ran_on(zoo, tmp_path, monkeypatch):
    from graphrec.train.record import cpu_identity, cpu_name, torch_cpu_kernels

    monkeypatch.setattr(zoo, "HERE", tmp_path)
    metrics = {"recall@20": 0.25, "ndcg@20": 0.1}

    def fake_run(cmd, cwd, **kw):  # MMRec's driver writes its figures to --out
        out = Path(cmd[cmd.index("--out") + 1])
        out.write_text(json.dumps({"valid": metrics, "test": metrics, "best_epoch": 3, "epochs_run": 24,
                                   "seconds_per_epoch": 0.5, "seconds_per_validation": 0.1,
                                   "hyper_parameters": {"reg_weight": 0.1}, "mmrec_commit": "e775373b"}))
        return type("Done", (), {"returncode": 0, "stderr": ""})()

    monkeypatch.setattr(zoo.subprocess, "run", fake_run)
    args = type("Args", (), {"mmrec_data": tmp_path / "data", "mmrec": tmp_path / "mmrec", "cache": tmp_path})()
    job = zoo.Job("mmrec", zoo.MODELS["vbpr"], "lfm2k", {"reg_weight": 0.1}, 4)
    zoo.run_job(job, 0, args)
    res = json.loads(job.path.read_text())
    assert job.path.is_relative_to(tmp_path) and res["cpu"] == cpu_name() and res["seed"] == 4
    assert res["cpu_id"] == cpu_identity() and res["cpu_capability"] == torch_cpu_kernels()["cpu_capability"]
    assert res["valid"] == metrics and res["epochs_run"] == 24


def test_the_time_part_records_what_it_timed_and_the_table_names_it(zoo, tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "HERE", tmp_path)
    monkeypatch.setattr(zoo, "graphrec_data", lambda folder, cache: tmp_path / "graphrec-data")
    monkeypatch.setattr(zoo, "graphrec_commit", lambda: "0123456789abcdef")
    seconds = iter([0.1, 0.4, 0.2, 0.4])  # graphrec, MMRec per round

    def fake_run(cmd, cwd, **kw):
        assert cmd[:2] == ["taskset", "-c"] and cmd[2] == "1"  # the first of --cores
        if "--out" in cmd:  # MMRec's driver (graphrec's result is read by fake_graphrec_result)
            Path(cmd[cmd.index("--out") + 1]).write_text(json.dumps(
                {"valid": {}, "test": {}, "best_epoch": 1, "epochs_run": 2, "seconds_per_epoch": next(seconds),
                 "seconds_per_validation": 0.0, "hyper_parameters": {}, "mmrec_commit": "e775373b"}))
        return type("Done", (), {"returncode": 0, "stderr": ""})()

    def fake_graphrec_result(run, wall):
        return {"seconds_per_epoch": next(seconds)}

    monkeypatch.setattr(zoo.subprocess, "run", fake_run)
    monkeypatch.setattr(zoo, "graphrec_cmd", lambda *a, **k: ["python", "-m", "graphrec", "train"])
    monkeypatch.setattr(zoo, "graphrec_result", fake_graphrec_result)
    (tmp_path / "data" / "lfm2k").mkdir(parents=True)
    zoo.main(["--mmrec", str(tmp_path), "--mmrec-data", str(tmp_path / "data"), "--models", "vbpr",
              "--datasets", "lfm2k", "--parts", "time", "--cores", "1,0"])
    rec = json.loads((tmp_path / "results" / "lfm2k" / "time-vbpr.json").read_text())
    assert [r["ratio"] for r in rec["rounds"]] == [0.25, 0.5] and rec["median_ratio"] == 0.375
    assert rec["measured"]["graphrec_commit"] == "0123456789abcdef"
    assert rec["measured"]["mmrec_commit"] == "e775373b" and rec["measured"]["torch"]
    zoo.main(["--summary", "--models", "vbpr", "--datasets", "lfm2k"])
    table = (tmp_path / "results" / "summary.md").read_text()
    row = next(line for line in table.splitlines() if "| time |" in line)
    assert f"ratio 0.38 ({rec['measured']['date']}, graphrec 0123456)" in row


PAIRINGS = ["freedom", "bm3", "vbpr", "vbpr-pb", "lattice", "mgcn", "smore", "dragon", "lightgcn"]


def test_every_pairing_is_checked_below(zoo):
    assert sorted(PAIRINGS) == sorted(zoo.MODELS)  # a new pairing must join the check


@pytest.mark.parametrize("name", PAIRINGS)
def test_each_pairing_trains_in_graphrec_at_mmrecs_point(zoo, data_dir, tmp_path, name):
    """The command the driver runs is accepted by `graphrec train`, and the run record
    holds MMRec's values under graphrec's names (scaled where the libraries define a
    quantity differently), the pairing's fixed options, and the mmrec protocol."""
    model = zoo.MODELS[name]
    point = zoo.points(model)[-1]  # the last point: no value equals a default by accident
    out = tmp_path / "run"
    cmd = zoo.graphrec_cmd(model, point, 3, data_dir, out, epochs=1)
    assert cmd[1:4] == ["-m", "graphrec", "train"]
    res = CliRunner().invoke(app, cmd[3:])
    assert res.exit_code == 0, res.output
    rec = json.loads((out / "record.json").read_text())
    params, config = rec["model_params"], rec["train_config"]
    assert config["protocol"] == "mmrec" and config["seed"] == 3 and config["epochs"] == 1
    assert params["cold_path"] == "none"
    expected = {model.to_graphrec[k]: v * model.scale.get(k, 1) for k, v in point.items()}
    expected.update(model.fixed)
    for param, value in expected.items():
        got = config[param[2:].replace("-", "_")] if param.startswith("--") else params[param]
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, (param, got, value)
    if name == "dragon":
        assert params["reg_weight"] == pytest.approx(1e-5 * math.log(2))  # MMRec's log2 BPR


def _record(valid, recall):
    return {"valid": {"recall@20": valid}, "test": {"recall@20": recall, "ndcg@20": recall / 2},
            "seconds_per_epoch": 1.0, "epochs_run": 10}


def test_where_the_choices_differ_the_summary_compares_both_libraries_at_each_choice(zoo, tmp_path, monkeypatch):
    import argparse

    monkeypatch.setattr(zoo, "HERE", tmp_path)
    model = zoo.restrict(zoo.MODELS["vbpr"], ["reg_weight=2.0,1.0"])
    two, one = zoo.points(model)
    # seed 0 chooses reg 2 for graphrec, reg 1 for MMRec
    valid0 = {("graphrec", 2.0): 0.42, ("graphrec", 1.0): 0.41, ("mmrec", 2.0): 0.40, ("mmrec", 1.0): 0.43}
    for (lib, reg), v in valid0.items():
        zoo.write_json(zoo.Job(lib, model, "lfm2k", {"reg_weight": reg}, 0).path, _record(v, v - 0.01))
    for lib, point in (("graphrec", two), ("mmrec", one)):
        for seed, v in ((1, 0.40), (2, 0.44)):
            zoo.write_json(zoo.Job(lib, model, "lfm2k", point, seed).path, _record(v, v - 0.01))
    args = argparse.Namespace(subset=["reg_weight=2.0,1.0"])
    table = zoo.summary(args, [zoo.MODELS["vbpr"]], ["lfm2k"], [0, 1, 2])
    assert "tuned over 2 of 7 points reg_weight2 | graphrec" in table
    assert "tuned over 2 of 7 points reg_weight1 | mmrec" in table
    # over the whole grid graphrec's seed 0 is complete and MMRec's is not: no tuned rows on either side
    for point in zoo.points(zoo.MODELS["vbpr"])[2:]:
        zoo.write_json(zoo.Job("graphrec", model, "lfm2k", point, 0).path, _record(0.3, 0.29))
    assert zoo.tuned_point("graphrec", zoo.MODELS["vbpr"], "lfm2k", 0) == two
    assert "tuned" not in zoo.summary(argparse.Namespace(subset=[]), [zoo.MODELS["vbpr"]], ["lfm2k"], [0, 1, 2])
    assert "at graphrec's choice" not in table  # MMRec has not run seeds 1-2 at reg 2 yet
    assert "at MMRec's choice" not in table
    for seed, v in ((1, 0.39), (2, 0.41)):
        zoo.write_json(zoo.Job("mmrec", model, "lfm2k", two, seed).path, _record(v, v - 0.01))
    table = zoo.summary(args, [zoo.MODELS["vbpr"]], ["lfm2k"], [0, 1, 2])
    rows = [r for r in table.splitlines() if "at graphrec's choice reg_weight2" in r]
    assert [r.split(" | ")[3] for r in rows] == ["graphrec", "mmrec", "graphrec - MMRec"]
    # validation: graphrec 0.42 / 0.40 / 0.44 (mean 0.42), MMRec 0.40 / 0.39 / 0.41 (mean 0.40);
    # s.e. sqrt(0.0004 / 3 + 0.0001 / 3) = 0.0129: +1.5
    assert rows[2].split(" | ")[5] == "+0.0200 (+1.5 s.e.)"
    assert "at MMRec's choice" not in table  # graphrec has not run seeds 1-2 at reg 1


def test_the_seed_mean_selection_waits_for_every_seed_at_every_point_and_reads_validation_only(
        zoo, tmp_path, monkeypatch):
    import argparse

    monkeypatch.setattr(zoo, "HERE", tmp_path)
    model = zoo.restrict(zoo.MODELS["vbpr"], ["reg_weight=2.0,1.0"])
    two, one = zoo.points(model)
    # graphrec: seed 0 prefers reg 2 (0.42 > 0.41), the mean reg 1 (0.41 against 0.3933);
    # MMRec: reg 2 and reg 1 tie on the mean (0.40): the first in grid order, reg 2
    valid = {("graphrec", 2.0): (0.42, 0.38, 0.38), ("graphrec", 1.0): (0.41, 0.41, 0.41),
             ("mmrec", 2.0): (0.40, 0.39, 0.41), ("mmrec", 1.0): (0.43, 0.38, 0.39)}
    for (lib, reg), values in valid.items():
        for seed, v in enumerate(values):
            # test favours the other point everywhere: it must not enter the choice
            zoo.write_json(zoo.Job(lib, model, "lfm2k", {"reg_weight": reg}, seed).path,
                           _record(v, 0.9 if reg == 2.0 else 0.1))
    assert zoo.tuned_point("graphrec", model, "lfm2k", 0) == two
    assert zoo.mean_tuned_point("graphrec", model, "lfm2k", [0, 1, 2]) == one
    assert zoo.mean_tuned_point("mmrec", model, "lfm2k", [0, 1, 2]) == two
    assert zoo.mean_tuned_point("mmrec", model, "lfm2k", [0, 1, 2, 3]) is None  # seed 3 never ran
    args = argparse.Namespace(subset=["reg_weight=2.0,1.0"])
    table = zoo.summary(args, [zoo.MODELS["vbpr"]], ["lfm2k"], [0, 1, 2])
    rows = [r.split(" | ") for r in table.splitlines() if "tuned on the 3-seed mean" in r]
    assert [(r[2], r[3]) for r in rows] == [
        ("tuned on the 3-seed mean over 2 of 7 points reg_weight1", "graphrec"),
        ("tuned on the 3-seed mean over 2 of 7 points reg_weight2", "mmrec"),
        ("tuned on the 3-seed mean", "graphrec - MMRec")]
    # graphrec's validation 0.41 x 3 against MMRec's 0.40 / 0.39 / 0.41: +0.0100 over
    # sqrt(0 + 0.0001 / 3) = 0.0058: +1.7 s.e.
    # (test recall: graphrec's 0.1 at reg 1 against MMRec's 0.9 at reg 2)
    assert ("| vbpr | lfm2k | tuned on the 3-seed mean | graphrec - MMRec | | +0.0100 (+1.7 s.e.) | -0.8000 |"
            in table)
    # where both mean choices are the seed-0 choices, one row says so instead of repeating them
    zoo.write_json(zoo.Job("graphrec", model, "lfm2k", one, 2).path, _record(0.30, 0.1))  # mean 0.3733: reg 2
    zoo.write_json(zoo.Job("mmrec", model, "lfm2k", two, 0).path, _record(0.44, 0.9))  # seed 0 and mean: reg 2
    assert zoo.mean_tuned_point("graphrec", model, "lfm2k", [0, 1, 2]) == two == zoo.tuned_point(
        "graphrec", model, "lfm2k", 0)
    table = zoo.summary(args, [zoo.MODELS["vbpr"]], ["lfm2k"], [0, 1, 2])
    assert [r for r in table.splitlines() if "3-seed mean" in r] == [
        '| vbpr | lfm2k | tuned on the 3-seed mean over 2 of 7 points | both libraries: the points of "tuned" '
        "| | | | | | |"]
    # one run missing on one side: no seed-mean rows for either library
    zoo.Job("mmrec", model, "lfm2k", one, 2).path.unlink()
    assert "3-seed mean" not in zoo.summary(args, [zoo.MODELS["vbpr"]], ["lfm2k"], [0, 1, 2])
    # one seed, or a subset of one point, selects nothing beyond the seed-0 rows
    assert "seed mean" not in zoo.summary(args, [zoo.MODELS["vbpr"]], ["lfm2k"], [0])
    one_point = argparse.Namespace(subset=["reg_weight=2.0"])
    table = zoo.summary(one_point, [zoo.MODELS["vbpr"]], ["lfm2k"], [0, 1])
    assert "seed mean" not in table
    # reg 2 is the default point: its "fixed" rows would repeat the default rows
    assert "| default reg_weight2 | graphrec | 2 |" in table and "fixed" not in table


def test_a_race_keeps_each_librarys_best_first_seed_points_and_chooses_on_their_mean_validation(
        zoo, tmp_path, monkeypatch):
    import argparse

    monkeypatch.setattr(zoo, "HERE", tmp_path)
    model = zoo.restrict(zoo.MODELS["vbpr"], ["reg_weight=2.0,1.0,0.1,0.01"])
    pts = zoo.points(model)  # reg 2, 1, 0.1, 0.01
    # seed-0 validation: graphrec keeps reg 1 (0.42) and reg 0.1 (0.41); MMRec keeps reg 1
    # (0.43) and reg 2, tied at 0.41 with reg 0.01: grid order keeps reg 2
    seed0 = {"graphrec": [0.40, 0.42, 0.41, 0.30], "mmrec": [0.41, 0.43, 0.39, 0.41]}
    for lib, values in seed0.items():
        for p, v in zip(pts[:3], values):
            zoo.write_json(zoo.Job(lib, model, "lfm2k", p, 0).path, _record(v, 0.5))
    assert zoo.race_points("graphrec", model, "lfm2k", 0, 2) is None  # reg 0.01 has not run seed 0
    for lib, values in seed0.items():
        zoo.write_json(zoo.Job(lib, model, "lfm2k", pts[3], 0).path, _record(values[3], 0.5))
    assert [p["reg_weight"] for p in zoo.race_points("graphrec", model, "lfm2k", 0, 2)] == [1.0, 0.1]
    assert [p["reg_weight"] for p in zoo.race_points("mmrec", model, "lfm2k", 0, 2)] == [1.0, 2.0]
    assert zoo.race_point("graphrec", model, "lfm2k", [0, 1, 2], 2) is None  # the survivors' seeds 1-2 missing
    # seeds 1-2 at every point; reg 0.01 (out after seed 0 on both sides) would win a whole-grid mean
    later = {"graphrec": [0.40, 0.40, 0.43, 0.60], "mmrec": [0.42, 0.40, 0.40, 0.60]}
    for lib, values in later.items():
        for p, v in zip(pts, values):
            for seed in (1, 2):
                # test favours the other points: it must not enter the choice
                zoo.write_json(zoo.Job(lib, model, "lfm2k", p, seed).path, _record(v, 0.1 if v > 0.41 else 0.9))
    assert zoo.mean_tuned_point("graphrec", model, "lfm2k", [0, 1, 2])["reg_weight"] == 0.01
    # graphrec: reg 1 mean 0.4067, reg 0.1 0.4233; MMRec: reg 1 0.41, reg 2 0.4167
    assert zoo.race_point("graphrec", model, "lfm2k", [0, 1, 2], 2)["reg_weight"] == 0.1
    assert zoo.race_point("mmrec", model, "lfm2k", [0, 1, 2], 2)["reg_weight"] == 2.0
    # the summary: race rows only when asked for, and not where the whole grid's mean is there
    args = argparse.Namespace(subset=["reg_weight=2.0,1.0,0.1,0.01"], race_top=2)
    table = zoo.summary(args, [zoo.MODELS["vbpr"]], ["lfm2k"], [0, 1, 2])
    assert "top 2" not in table and "tuned on the 3-seed mean over 4 of 7 points reg_weight0.01" in table
    for lib in ("graphrec", "mmrec"):  # the whole grid's mean is gone: reg 0.01 lacks seed 2
        zoo.Job(lib, model, "lfm2k", pts[3], 2).path.unlink()
    table = zoo.summary(args, [zoo.MODELS["vbpr"]], ["lfm2k"], [0, 1, 2])
    rows = [r.split(" | ") for r in table.splitlines() if "top 2" in r]
    assert [(r[2], r[3]) for r in rows] == [
        ("tuned on the 3-seed mean of seed 0's top 2 over 4 of 7 points reg_weight0.1", "graphrec"),
        ("tuned on the 3-seed mean of seed 0's top 2 over 4 of 7 points reg_weight2", "mmrec"),
        ("tuned on the 3-seed mean of seed 0's top 2", "graphrec - MMRec")]
    # validation graphrec 0.41 / 0.43 / 0.43 against MMRec 0.41 / 0.42 / 0.42: +0.0067 over
    # sqrt(0.000133 / 3 + 0.0000333 / 3) = 0.0075: +0.9 s.e.; test 0.5 / 0.1 / 0.1 on both sides
    assert ("| vbpr | lfm2k | tuned on the 3-seed mean of seed 0's top 2 | graphrec - MMRec | | "
            "+0.0067 (+0.9 s.e.) | +0.0000 (+0.0 s.e.) |") in table
    assert "top 2" not in zoo.summary(argparse.Namespace(subset=args.subset), [zoo.MODELS["vbpr"]], ["lfm2k"],
                                      [0, 1, 2])
    # a race that keeps the whole grid is the grid part's mean: no rows
    four = argparse.Namespace(subset=args.subset, race_top=4)
    assert "top 4" not in zoo.summary(four, [zoo.MODELS["vbpr"]], ["lfm2k"], [0, 1, 2])
    # where both races choose the seed-0 choices, one row says so
    for seed in (1, 2):
        zoo.write_json(zoo.Job("graphrec", model, "lfm2k", pts[1], seed).path, _record(0.50, 0.5))
        zoo.write_json(zoo.Job("mmrec", model, "lfm2k", pts[1], seed).path, _record(0.50, 0.5))
    table = zoo.summary(args, [zoo.MODELS["vbpr"]], ["lfm2k"], [0, 1, 2])
    assert [r for r in table.splitlines() if "top 2" in r] == [
        "| vbpr | lfm2k | tuned on the 3-seed mean of seed 0's top 2 over 4 of 7 points | both libraries: "
        'the points of "tuned" | | | | | | |']


def test_the_race_part_runs_the_first_seed_everywhere_then_each_librarys_survivors(zoo, tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(zoo, "HERE", tmp_path)
    valid = {("graphrec", 2.0): 0.40, ("graphrec", 1.0): 0.42, ("graphrec", 0.1): 0.41,
             ("mmrec", 2.0): 0.43, ("mmrec", 1.0): 0.40, ("mmrec", 0.1): 0.42}

    def run_jobs(jobs, args):  # "runs" each job: writes its record
        for j in jobs:
            ran.append((j.lib, j.point["reg_weight"], j.seed))
            zoo.write_json(j.path, _record(valid[j.lib, j.point["reg_weight"]], 0.5))

    monkeypatch.setattr(zoo, "run_jobs", run_jobs)
    (tmp_path / "data" / "lfm2k").mkdir(parents=True)
    base = ["--mmrec", str(tmp_path), "--mmrec-data", str(tmp_path / "data"), "--models", "vbpr",
            "--datasets", "lfm2k", "--subset", "reg_weight=2.0,1.0,0.1", "--seeds", "0,1,2", "--parts", "race"]
    zoo.main([*base, "--race-top", "2"])
    first = [r for r in ran if r[2] == 0]
    assert sorted(first) == sorted((lib, reg, 0) for lib in ("graphrec", "mmrec") for reg in (2.0, 1.0, 0.1))
    assert ran[:6] == first  # the first seed everywhere before any survivor's other seeds
    assert ran[6:] == [("graphrec", 1.0, 1), ("graphrec", 0.1, 1), ("graphrec", 1.0, 2), ("graphrec", 0.1, 2),
                       ("mmrec", 2.0, 1), ("mmrec", 0.1, 1), ("mmrec", 2.0, 2), ("mmrec", 0.1, 2)]
    with pytest.raises(SystemExit):
        zoo.main([*base, "--race-top", "0"])
    # tune is the race of one: each library's best first-seed point on the other seeds
    ran.clear()
    monkeypatch.setattr(zoo, "HERE", tmp_path / "tune")
    zoo.main([*base[:-1], "tune"])
    assert sorted(ran[:6]) == sorted(first)
    assert ran[6:] == [("graphrec", 1.0, 1), ("graphrec", 1.0, 2), ("mmrec", 2.0, 1), ("mmrec", 2.0, 2)]


def test_the_grid_part_runs_every_point_on_every_seed_and_unknown_parts_are_refused(zoo, tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(zoo, "HERE", tmp_path)
    monkeypatch.setattr(zoo, "run_jobs", lambda jobs, args: ran.extend((j.lib, j.point["reg_weight"], j.seed)
                                                                        for j in jobs))
    (tmp_path / "data" / "lfm2k").mkdir(parents=True)
    base = ["--mmrec", str(tmp_path), "--mmrec-data", str(tmp_path / "data"), "--models", "vbpr",
            "--datasets", "lfm2k", "--libs", "mmrec", "--subset", "reg_weight=2.0,1.0", "--seeds", "0,1"]
    zoo.main([*base, "--parts", "grid"])
    assert ran == [("mmrec", 2.0, 0), ("mmrec", 1.0, 0), ("mmrec", 2.0, 1), ("mmrec", 1.0, 1)]
    with pytest.raises(SystemExit):
        zoo.main([*base, "--parts", "grdi"])


def test_a_refresh_reruns_graphrecs_existing_runs_in_place_and_leaves_mmrecs(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "HERE", tmp_path)
    model = zoo.MODELS["vbpr"]
    old = {"valid": {"recall@20": 0.40}, "test": {"recall@20": 0.30, "ndcg@20": 0.2}, "best_epoch": 50,
           "epochs_run": 71, "seconds_per_epoch": 1.0}
    runs = [zoo.Job("graphrec", model, "lfm2k", {"reg_weight": 2.0}, 0),
            zoo.Job("graphrec", model, "lfm2k", {"reg_weight": 1.0}, 5),
            zoo.Job("graphrec", zoo.MODELS["dragon"], "lfm2k", {"aggr_mode": "add", "reg_weight": 0.1,
                                                                "learning_rate": 0.1}, 0)]
    other_cpu = "GenuineIntel family 6 model 85 stepping 7"  # the seed-5 run was made on another processor
    for job in runs:
        zoo.write_json(job.path, {**old, "lib": "graphrec", "point": job.point, "seed": job.seed,
                                  **({"cpu_id": other_cpu} if job.seed == 5 else {})})
    theirs = zoo.Job("mmrec", model, "lfm2k", {"reg_weight": 2.0}, 0)
    zoo.write_json(theirs.path, {**old, "lib": "mmrec", "point": theirs.point, "seed": 0})
    mmrec_before = theirs.path.read_text()
    trained = []
    git = subprocess.run

    def fake_run(cmd, cwd, **kw):
        if cmd[0] == "git":  # --since asks git which commits came after which
            return git(cmd, cwd=cwd, **kw)
        trained.append((cmd[cmd.index("--seed") + 1], cmd[cmd.index("--reg") + 1]))
        return type("Done", (), {"returncode": 0, "stderr": ""})()

    def fake_result(run, wall):  # the seed-5 run comes back changed, the seed-0 run the same
        seed = int(trained[-1][0])
        return {**old, "valid": {"recall@20": 0.41 if seed == 5 else 0.40}, "graphrec_commit": "abc1234"}

    monkeypatch.setattr(zoo.subprocess, "run", fake_run)
    monkeypatch.setattr(zoo, "graphrec_result", fake_result)
    monkeypatch.setattr(zoo, "graphrec_data", lambda folder, cache: tmp_path / "graphrec-data")
    monkeypatch.setattr(importlib.import_module("graphrec.train.record"), "cpu_identity",
                        lambda: "AuthenticAMD family 25 model 17 stepping 1")
    (tmp_path / "data" / "lfm2k").mkdir(parents=True)
    # graphrec only: no MMRec installation needed
    zoo.main(["--mmrec-data", str(tmp_path / "data"), "--models", "vbpr", "--datasets", "lfm2k",
              "--parts", "refresh", "--libs", "graphrec"])
    assert sorted(trained) == [("0", "2.0"), ("5", "1.0")]  # each existing VBPR run, DRAGON's not chosen
    for job, valid in zip(runs[:2], (0.40, 0.41)):
        res = json.loads(job.path.read_text())
        assert res["valid"]["recall@20"] == valid and res["graphrec_commit"] == "abc1234"
        assert (res["point"], res["seed"]) == (job.point, job.seed)
    assert json.loads(runs[2].path.read_text())["valid"]["recall@20"] == 0.40
    assert theirs.path.read_text() == mmrec_before
    out = capsys.readouterr().out
    # a changed run says where the stored one was made, when that was another processor
    assert "(same as before)" in out and ("(valid 0.400000 -> 0.410000, test 0.300000 -> 0.300000, best epoch "
                                          f"50 -> 50; the stored run was made on {other_cpu})") in out
    assert "refreshed 2 graphrec runs: 1 the same to the digit, 1 changed" in out
    # --subset narrows a refresh to its points
    trained.clear()
    zoo.main(["--mmrec-data", str(tmp_path / "data"), "--models", "vbpr", "--datasets", "lfm2k",
              "--parts", "refresh", "--libs", "graphrec", "--subset", "reg_weight=1"])
    assert trained == [("5", "1.0")]
    # --since REV keeps what a clean tree at REV or later made: an interrupted refresh continues
    head, first = (git(["git", *cmd], cwd=zoo.REPO, capture_output=True, text=True,
                                  check=True).stdout.split()[0] for cmd in (["rev-parse", "HEAD"],
                                                                            ["rev-list", "--max-parents=0", "HEAD"]))
    assert head != first
    for job, commit in zip(runs[:2], (head, first)):
        zoo.write_json(job.path, {**old, "lib": "graphrec", "point": job.point, "seed": job.seed,
                                  "graphrec_commit": commit})
    trained.clear()
    zoo.main(["--mmrec-data", str(tmp_path / "data"), "--models", "vbpr", "--datasets", "lfm2k",
              "--parts", "refresh", "--libs", "graphrec", "--since", "HEAD"])
    assert trained == [("5", "1.0")]  # made at the first commit, before HEAD
    assert "1 runs made at HEAD or later: kept" in capsys.readouterr().out
    for job, commit in zip(runs[:2], (head + "-dirty", first)):  # uncommitted changes: not kept
        zoo.write_json(job.path, {**old, "lib": "graphrec", "point": job.point, "seed": job.seed,
                                  "graphrec_commit": commit})
    trained.clear()
    zoo.main(["--mmrec-data", str(tmp_path / "data"), "--models", "vbpr", "--datasets", "lfm2k",
              "--parts", "refresh", "--libs", "graphrec", "--since", first])
    assert sorted(trained) == [("0", "2.0")]
    for bad, message in ((["--parts", "refresh", "--since", "no-such-commit"], "not a commit of this repository"),
                         (["--parts", "default", "--since", "HEAD"], "add --parts refresh")):
        with pytest.raises(SystemExit):
            zoo.main(["--mmrec-data", str(tmp_path / "data"), "--models", "vbpr", "--datasets", "lfm2k",
                      "--libs", "graphrec", *bad])
        assert message in capsys.readouterr().err
    # a file whose content names another point is refused before anything runs
    zoo.write_json(runs[0].path, {**old, "lib": "graphrec", "point": {"reg_weight": 1.0}, "seed": 0})
    trained.clear()
    with pytest.raises(SystemExit, match="move or delete the file"):
        zoo.main(["--mmrec-data", str(tmp_path / "data"), "--models", "vbpr", "--datasets", "lfm2k",
                  "--parts", "refresh", "--libs", "graphrec"])
    assert trained == []


def test_mmrec_runs_need_the_mmrec_installation_and_graphrec_only_runs_do_not(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "HERE", tmp_path)
    ran = []
    monkeypatch.setattr(zoo, "run_jobs", lambda jobs, args, again=False: ran.extend(j.lib for j in jobs))
    (tmp_path / "data" / "lfm2k").mkdir(parents=True)
    base = ["--mmrec-data", str(tmp_path / "data"), "--models", "vbpr", "--datasets", "lfm2k", "--seeds", "0"]
    for parts, libs in (("default", "graphrec,mmrec"), ("time", "graphrec"), ("refresh,default", "graphrec,mmrec")):
        with pytest.raises(SystemExit):
            zoo.main([*base, "--parts", parts, "--libs", libs])
        assert "--mmrec DEST is needed to run MMRec" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        zoo.main([*base, "--parts", "refresh", "--libs", "mmrec"])
    assert "--libs must include graphrec" in capsys.readouterr().err
    zoo.main([*base, "--parts", "default", "--libs", "graphrec"])
    assert ran == ["graphrec"]


def test_the_readme_tables_are_rewritten_between_their_markers_only(zoo, tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "HERE", tmp_path)
    point = zoo.default_point(zoo.MODELS["vbpr"])
    for lib in ("graphrec", "mmrec"):
        zoo.write_json(zoo.Job(lib, zoo.MODELS["vbpr"], "lfm2k", point, 0).path, _record(0.4, 0.39))
    text = "intro\n<!-- zoo table: vbpr -->\nold table\n<!-- /zoo table -->\nafter\n"
    out = zoo.readme_tables(text, [0])
    assert out.startswith("intro\n<!-- zoo table: vbpr -->\n| model |") and out.endswith("<!-- /zoo table -->\nafter\n")
    assert "old table" not in out and "| vbpr | lfm2k | default reg_weight2 | mmrec | 1 | 0.4000 |" in out
    assert zoo.readme_tables(out, [0]) == out  # rewriting again changes nothing
    with pytest.raises(SystemExit, match="unknown model"):
        zoo.readme_tables("<!-- zoo table: vbpr,nope -->\n<!-- /zoo table -->\n", [0])
    with pytest.raises(SystemExit, match="no <!-- /zoo table -->"):
        zoo.readme_tables("<!-- zoo table: vbpr -->\nno end\n", [0])


def test_a_readme_grid_marker_tabulates_each_points_validation_on_both_sides(zoo, tmp_path, monkeypatch):
    """``<!-- zoo grid: ... -->``: seed-0 validation recall@20 per point, "graphrec / MMRec",
    rows from the row keys' values (grid order), a column per value of the column key, "-"
    where a side has not run the point; every other key held to one value by a subset."""
    monkeypatch.setattr(zoo, "HERE", tmp_path)
    model = zoo.MODELS["bm3"]  # n_layers [1, 2] x reg_weight [0.1, 0.01] x dropout [0.3, 0.5]
    for (layers, reg, drop), valid in {(1, 0.1, 0.3): 0.31, (1, 0.1, 0.5): 0.32, (1, 0.01, 0.3): 0.33,
                                       (1, 0.01, 0.5): 0.34, (2, 0.1, 0.3): 0.99}.items():
        point = {"n_layers": layers, "reg_weight": reg, "dropout": drop}
        zoo.write_json(zoo.Job("graphrec", model, "lfm2k", point, 0).path, _record(valid, 0.3))
        if drop == 0.3:  # MMRec ran half of them, 0.1 lower
            zoo.write_json(zoo.Job("mmrec", model, "lfm2k", point, 0).path, _record(valid - 0.1, 0.3))
    zoo.write_json(zoo.Job("graphrec", model, "lfm2k", {"n_layers": 1, "reg_weight": 0.1, "dropout": 0.3}, 1).path,
                   _record(0.5, 0.3))
    text = "a\n<!-- zoo grid: bm3 lfm2k rows=reg_weight cols=dropout subset=n_ui_layers=1 -->\nold\n<!-- /zoo grid -->\nb\n"
    with pytest.raises(SystemExit, match="n_ui_layers=1"):  # not a key of BM3's grid
        zoo.readme_tables(text, [0])
    text = text.replace("n_ui_layers=1", "n_layers=1")
    out = zoo.readme_tables(text, [0])
    assert out == ("a\n<!-- zoo grid: bm3 lfm2k rows=reg_weight cols=dropout subset=n_layers=1 -->\n"
                   "| reg_weight | dropout 0.3 | dropout 0.5 |\n| --- | --- | --- |\n"
                   "| 0.1 | 0.3100 / 0.2100 | 0.3200 / - |\n| 0.01 | 0.3300 / 0.2300 | 0.3400 / - |\n"
                   "<!-- /zoo grid -->\nb\n")
    assert zoo.readme_tables(out, [0]) == out
    assert "| 0.1 | 0.5000 / - | - / - |" in zoo.readme_tables(text.replace("n_layers=1 ", "n_layers=1 seed=1 "), [0])
    for bad, message in (("rows=reg_weight cols=dropout", "n_layers of bm3's grid hold several values"),
                         ("rows=reg_weight cols=colour subset=n_layers=1", "colour is not a key"),
                         ("rows=reg_weight subset=n_layers=1", "needs rows=KEYS and cols=KEY"),
                         ("rows=reg_weight cols=dropout seed=x", "option 'seed=x'")):
        with pytest.raises(SystemExit, match=message):
            zoo.readme_tables(f"<!-- zoo grid: bm3 lfm2k {bad} -->\n<!-- /zoo grid -->\n", [0])
    with pytest.raises(SystemExit, match="no <!-- /zoo grid -->"):
        zoo.readme_tables("<!-- zoo grid: bm3 lfm2k rows=reg_weight cols=dropout -->\n", [0])


def test_a_readme_table_marker_names_its_datasets_seeds_and_subset(zoo, tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "HERE", tmp_path)
    model = zoo.MODELS["vbpr"]
    one = {"reg_weight": 1.0}
    for lib, base in (("graphrec", 0.40), ("mmrec", 0.38)):
        for seed in (0, 5):
            zoo.write_json(zoo.Job(lib, model, "lfm2k", one, seed).path, _record(base + seed / 100, base))
        zoo.write_json(zoo.Job(lib, model, "scientific", one, 0).path, _record(0.2, 0.2))
    text = "<!-- zoo table: vbpr datasets=lfm2k seeds=0,5 subset=reg_weight=1 -->\n<!-- /zoo table -->\n"
    out = zoo.readme_tables(text, [0, 1, 2])
    rows = [r.split(" | ") for r in out.splitlines() if "fixed" in r]
    # the subset's one point is both sides' choice; seeds 0 and 5 from the marker, not [0, 1, 2]
    assert [(r[2], r[3], r[4], r[5]) for r in rows[:2]] == [
        ("fixed reg_weight1", "graphrec", "2", "0.4250 ± 0.0354"),
        ("fixed reg_weight1", "mmrec", "2", "0.4050 ± 0.0354")]
    # 0.0200 over sqrt(0.00125 / 2 + 0.00125 / 2) = 0.0354: +0.6 s.e.
    assert "| vbpr | lfm2k | fixed | graphrec - MMRec | | +0.0200 (+0.6 s.e.) |" in out
    assert "scientific" not in out and "default" not in out  # one dataset; no run at the default point
    assert zoo.readme_tables(out, [0, 1, 2]) == out
    # only= keeps some kinds of rows: here the default point (which nothing ran) and the time
    # rows (no time file), so nothing but the header is left, and no "fixed" row
    only = zoo.readme_tables(text.replace("subset=reg_weight=1", "only=default,time"), [0, 1, 2])
    assert only.count("\n| ") == 2 and "fixed" not in only
    for bad, message in (("colour=red", "option 'colour=red'"), ("seeds=a", "seeds are integers"),
                         ("race=0", "race is a number of points"), ("only=tuned,best", "only= names some of"),
                         ("subset=reg_weight=3", "not in vbpr's grid")):
        with pytest.raises(SystemExit, match=message):
            zoo.readme_tables(f"<!-- zoo table: vbpr {bad} -->\n<!-- /zoo table -->\n", [0])


def test_the_committed_readme_tables_are_the_committed_results(zoo):
    """Every marked table of experiments/zoo/README.md is what ``--readme`` makes of the
    committed result files: a figure changed by hand, or results committed without
    rewriting the tables, fails here."""
    readme = (zoo.HERE / "README.md").read_text()
    assert readme.count("<!-- zoo table: ") >= 2
    assert zoo.readme_tables(readme, [0, 1, 2]) == readme


def test_the_model_pages_side_by_side_tables_are_the_committed_results(zoo):
    """The marked tables of docs/ (each model page's side-by-side table, DRAGON's seed-0
    grid) are what ``--readme`` makes of the committed results, as the zoo README's."""
    files = zoo.marked_files()
    assert files[0] == zoo.HERE / "README.md"
    pages = {p.name for p in files[1:]}
    assert {"freedom.md", "bm3.md", "vbpr.md", "mgcn.md", "smore.md", "dragon.md"} <= pages
    for path in files[1:]:
        text = path.read_text()
        assert zoo.readme_tables(text, [0, 1, 2], path.name) == text, path


def test_readme_rewrites_the_marked_tables_of_the_docs_too(zoo, tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "HERE", tmp_path / "zoo")
    monkeypatch.setattr(zoo, "REPO", tmp_path)
    (tmp_path / "docs" / "models").mkdir(parents=True)
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / "README.md").write_text("<!-- zoo table: vbpr -->\nold\n<!-- /zoo table -->\n")
    page = tmp_path / "docs" / "models" / "vbpr.md"
    page.write_text("# VBPR\n<!-- zoo table: vbpr only=default -->\nold\n<!-- /zoo table -->\nend\n")
    (tmp_path / "docs" / "other.md").write_text("no marker\n")
    point = zoo.default_point(zoo.MODELS["vbpr"])
    for lib in ("graphrec", "mmrec"):
        zoo.write_json(zoo.Job(lib, zoo.MODELS["vbpr"], "lfm2k", point, 0).path, _record(0.4, 0.39))
    assert zoo.marked_files() == [tmp_path / "zoo" / "README.md", page]
    zoo.main(["--readme", "--seeds", "0"])
    out = page.read_text()
    assert out.startswith("# VBPR\n<!-- zoo table: vbpr only=default -->\n| model |") and out.endswith("end\n")
    assert "| vbpr | lfm2k | default reg_weight2 | graphrec | 1 | 0.4000 |" in out and "old" not in out
    assert "old" not in (tmp_path / "zoo" / "README.md").read_text()
    assert (tmp_path / "docs" / "other.md").read_text() == "no marker\n"
    # a bad marker in a page: nothing is written, the README's stale table included
    (tmp_path / "zoo" / "README.md").write_text("<!-- zoo table: vbpr -->\nold\n<!-- /zoo table -->\n")
    page.write_text("<!-- zoo table: vbpr only=best -->\n<!-- /zoo table -->\n")
    with pytest.raises(SystemExit, match="^docs/models/vbpr.md: <!-- zoo table: vbpr only=best --> has"):
        zoo.main(["--readme"])
    assert "old" in (tmp_path / "zoo" / "README.md").read_text()


def test_the_patience_check_reruns_committed_runs_at_patience_21_and_names_the_changed_ones(
        patience_check, tmp_path, monkeypatch, capsys):
    zoo = patience_check.zoo
    monkeypatch.setattr(zoo, "HERE", tmp_path)
    (tmp_path / "cache" / "lfm2k").mkdir(parents=True)
    (tmp_path / "cache" / "lfm2k" / "dataset.json").write_text("{}")
    model = zoo.MODELS["vbpr"]
    for seed, valid in ((0, 0.40), (1, 0.41)):
        record = {**_record(valid, valid - 0.01), "best_epoch": 30, "wall_seconds": 1.0}
        zoo.write_json(zoo.result_path("lfm2k", "graphrec", "vbpr", {"reg_weight": 1.0}, seed), record)
    commands = []
    monkeypatch.setattr(patience_check.subprocess, "run", lambda cmd, **kw: commands.append(cmd))
    # the re-run of seed 0 is the committed run one epoch longer; seed 1's 21st validation is a new best
    reruns = iter([{**_record(0.40, 0.39), "best_epoch": 30, "epochs_run": 51},
                   {**_record(0.42, 0.40), "best_epoch": 51, "epochs_run": 72}])
    monkeypatch.setattr(zoo, "graphrec_result", lambda run, wall: next(reruns))
    patience_check.main(["--models", "vbpr", "--datasets", "lfm2k", "--seeds", "0,1", "--subset", "reg_weight=1",
                         "--cache", str(tmp_path / "cache")])
    out = capsys.readouterr().out.splitlines()
    assert all(cmd[cmd.index("--patience") + 1] == "21" and cmd[cmd.index("--reg") + 1] == "1.0" for cmd in commands)
    assert [line.endswith("CHANGED") for line in out[:2]] == [False, True]
    assert out[2] == "1 of 2 runs changed at patience 21"
    with pytest.raises(SystemExit):  # no committed run to compare with
        patience_check.main(["--models", "vbpr", "--datasets", "lfm2k", "--seeds", "7", "--cache", str(tmp_path)])


def test_the_readme_overview_quotes_the_committed_results(zoo):
    """The hand-written "Where the bars stand" table: its default, seed-0 tuned and seed-mean
    cells are the s.e. of the summary's difference rows over seeds 0-2 (test recall / ndcg);
    a seed-mean cell "top K: ..." quotes the race over each side's K best seed-0 points; the
    seed-0 choices over eight seeds are the summary's over seeds 0-7 where both ran all
    eight, empty where not; the fixed eight-seed cells quote the eight-seed marked tables;
    the speed column is the time part's median ratio."""
    import argparse
    import re

    text = (RESULTS.parent / "README.md").read_text()
    block = text[text.index("### Where the bars stand"):text.index("### Issue 18")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()
            if line.startswith("| ") and not line.startswith(("| model", "| ---"))]
    assert len(rows) == 15
    # each row's model name and result-folder dataset, read once for every column below
    names = [(cells[0].split()[0].lower(), {"amazon-scientific": "scientific", "lfm2k": "lfm2k"}[cells[1]])
             for cells in rows]
    # a row's grid: the model's whole grid unless its label names a subset
    subsets = {"SMORE (8-point subset)": ["image_knn_k=10", "text_knn_k=10"],
               "SMORE (3 layers, reg 1e-5, every k)": ["n_ui_layers=3", "reg_weight=0.00001"]}
    for cells, (name, data) in zip(rows, names):
        race = re.match(r"top (\d+): ", cells[4])
        args = argparse.Namespace(subset=subsets.get(cells[0], []), race_top=int(race.group(1)) if race else None)
        table = zoo.summary(args, [zoo.MODELS[name]], [data], [0, 1, 2])

        def se(kind: str) -> str:
            found = [r for r in table.splitlines() if f"| {data} | {kind} | graphrec - MMRec |" in r]
            if not found:
                return "not run"
            errs = re.findall(r"\(([+-]\d+\.\d) s\.e\.\)", found[0])
            return f"{errs[1]} / {errs[2]}"  # test recall, test ndcg

        kind = f"tuned on the 3-seed mean of seed 0's top {race.group(1)}" if race else "tuned on the 3-seed mean"
        mean = se(kind)
        if any(kind in r and "both libraries: the points of" in r for r in table.splitlines()):
            mean = "= seed 0"
        if race:
            mean = f"{race.group(0)}{mean}"
        assert cells[2:5] == [se("default"), se("tuned"), mean], cells[:2]
        # each side's seed-0 choice over seeds 0-7, where both choices ran all eight (else empty)
        eight_seeds = zoo.summary(argparse.Namespace(subset=args.subset, race_top=None), [zoo.MODELS[name]],
                                  [data], list(range(8))).splitlines()
        found = ""
        for i, line in enumerate(eight_seeds):
            if f"| {data} | tuned | graphrec - MMRec |" in line and \
                    [c.strip() for c in eight_seeds[i - 1].split("|")][5] == "8" == \
                    [c.strip() for c in eight_seeds[i - 2].split("|")][5]:
                errs = re.findall(r"\(([+-]\d+\.\d) s\.e\.\)", line)
                found = f"{errs[1]} / {errs[2]}"
        assert cells[5] == found, cells[:2]

    # the "fixed, 8 seeds" column: every recall / ndcg pair it quotes is the difference row
    # of a marked table (themselves checked against the results above) whose two rows both
    # ran eight seeds, for that model and set
    eight: dict[tuple[str, str], set[str]] = {}
    for m in zoo.TABLE_START.finditer(text):
        if "seeds=0,1,2,3,4,5,6,7" not in m.group(2):
            continue
        seeds = []
        for line in text[m.end():text.index(zoo.TABLE_END, m.end())].splitlines()[2:]:
            c = [x.strip() for x in line.strip("|").split("|")]
            if c[3] != "graphrec - MMRec":
                seeds.append(c[4])
            elif seeds[-2:] == ["8", "8"]:
                errs = re.findall(r"\(([+-]\d+\.\d) s\.e\.\)", line)
                eight.setdefault((c[0], c[1]), set()).add(f"{errs[1]} / {errs[2]}")
    quoted = 0
    for cells, (name, data) in zip(rows, names):
        for pair in re.findall(r"[+-]\d+\.\d / [+-]\d+\.\d", cells[6]):
            assert pair in eight.get((name, data), set()), (cells[:2], pair)
            quoted += 1
    assert quoted == 15

    # the speed column: the back-to-back time part's median ratio of seconds per epoch
    for cells, (name, data) in zip(rows, names):
        timing = json.loads((RESULTS / data / f"time-{name}.json").read_text())
        assert cells[7] == f"{timing['median_ratio']:.2f}", cells[:2]
