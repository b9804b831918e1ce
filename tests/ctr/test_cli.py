"""`graphrec train <ctr model> --task ctr` and `graphrec plot-modality-attention`."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.models.ctr.testing import contract_ctr_data
from graphrec.train.record import load_record

runner = CliRunner()


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    path = tmp_path_factory.mktemp("ctr") / "samples"
    contract_ctr_data().save(path)
    return path


def test_train_din_writes_run_and_table(samples, tmp_path):
    res = runner.invoke(app, ["train", "din", "--data", str(samples), "--task", "ctr", "--epochs", "2",
                              "--item-graph", "cooccur", "--threads", "1", "--device", "cpu",
                              "--out", str(tmp_path / "run"), "--quiet"])
    assert res.exit_code == 0, res.output
    for word in ("auc", "gauc", "logloss", "level_0", "cold"):
        assert word in res.output
    rec = load_record(tmp_path / "run")
    assert rec["model"] == "din" and rec["item_graph"]["spec"] == "cooccur"
    assert rec["model_params"]["graph_layers"] == 2
    # the commands that read ranking runs say what the run is, in one line, and write nothing
    for args in (["evaluate", str(tmp_path / "run")],
                 ["export-graph", str(tmp_path / "run"), "--out", str(tmp_path / "graph")]):
        res = runner.invoke(app, args)
        assert res.exit_code == 1, res.output
        assert "trained din for the ctr task: this reads top-k ranking runs" in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "graph").exists()


def test_gmmf_attention_heat_map(samples, tmp_path):
    res = runner.invoke(app, ["train", "gmmf", "--data", str(samples), "--epochs", "2", "--gan-start-epoch", "1",
                              "--device", "cpu", "--out", str(tmp_path / "run"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "GAN losses at epoch 2" in res.output
    with np.load(tmp_path / "run" / "attention.npz") as z:
        assert list(z["modalities"]) == ["id", "image", "text"]
        assert np.allclose(z["weights"].sum(1), 1.0, atol=1e-5)
    res = runner.invoke(app, ["plot-modality-attention", str(tmp_path / "run"), "--out", str(tmp_path / "fig.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
    # a run without modality weights: one clear line, exit 1
    runner.invoke(app, ["train", "lr", "--data", str(samples), "--epochs", "1", "--device", "cpu",
                        "--out", str(tmp_path / "lr"), "--quiet"])
    res = runner.invoke(app, ["plot-modality-attention", str(tmp_path / "lr"), "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 1 and "only GMMF and MARN" in res.output


def test_user_errors_are_one_line(samples, tmp_path):
    res = runner.invoke(app, ["train", "marn", "--data", str(samples), "--task", "ranking", "--quiet"])
    assert res.exit_code == 1 and "--task ctr" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["train", "marn", "--data", str(samples), "--fusion", "sum", "--epochs", "1",
                              "--device", "cpu", "--out", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 1 and "fusion" in res.output
    res = runner.invoke(app, ["train", "lr", "--data", str(samples), "--item-graph", "knn", "--quiet",
                              "--device", "cpu", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and "no item ID embedding" in res.output


def test_samples_folder_as_data_refuses_other_sampling_options(samples, tmp_path):
    # samples given as --data are used as stored: options they were not built with are
    # refused in one line (as --max-history is), before anything is trained or written
    run = ["train", "lr", "--data", str(samples), "--epochs", "1", "--device", "cpu", "--quiet"]
    res = runner.invoke(app, [*run, "--sample-seed", "7", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"{samples} holds samples with sample seed 0, not 7: drop --sample-seed" in res.output
    res = runner.invoke(app, [*run, "--samples", str(tmp_path / "s"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"--samples {tmp_path / 's'} would store nothing: drop --samples" in res.output
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()
    res = runner.invoke(app, [*run, "--sample-seed", "0", "--out", str(tmp_path / "r")])  # the stored seed
    assert res.exit_code == 0, res.output


def test_source_folder_and_samples_store(shared_data, tmp_path):
    src = shared_data / "amazon-scientific"
    args = ["train", "lr", "--data", str(src), "--samples", str(tmp_path / "s"), "--max-history", "10",
            "--epochs", "1", "--device", "cpu", "--quiet"]
    res = runner.invoke(app, args + ["--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s" / "ctr.json").is_file()
    res = runner.invoke(app, args + ["--out", str(tmp_path / "b")])  # reuses the stored samples
    assert res.exit_code == 0, res.output
    a, b = load_record(tmp_path / "a"), load_record(tmp_path / "b")
    assert a["dataset"]["samples_fingerprint"] == b["dataset"]["samples_fingerprint"]
    res = runner.invoke(app, [*args[:-3], "--sample-seed", "1", "--epochs", "1", "--device", "cpu", "--quiet",
                              "--out", str(tmp_path / "c")])
    assert res.exit_code == 1 and "other samples" in res.output


def _toy_source(n_items, path):
    """A graphrec dataset with timestamps (a CTR source) of 40 users over ``n_items`` items."""
    from graphrec.data import build_dataset

    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{rng.integers(n_items)}", "train") for u in range(40) for _ in range(8)]
    users, items, split = (np.array(c) for c in zip(*rows))
    ds = build_dataset(users, items, split=split, name="toy", timestamps=np.arange(len(users), dtype=np.int64))
    ds.save(path)
    return path


def test_samples_of_other_source_data_name_the_data(tmp_path):
    # the same options on other source data: the message blames the data, not the options
    a, b = _toy_source(30, tmp_path / "a"), _toy_source(31, tmp_path / "b")
    common = ["--samples", str(tmp_path / "s"), "--epochs", "1", "--device", "cpu", "--quiet"]
    res = runner.invoke(app, ["train", "lr", "--data", str(a), *common, "--out", str(tmp_path / "r1")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", "lr", "--data", str(b), *common, "--out", str(tmp_path / "r2")])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"holds samples of other data (built from {a}, not from {b}" in res.output, res.output
    assert "--max-history" not in res.output


def test_samples_record_their_source_as_an_absolute_path(tmp_path, monkeypatch):
    # built from a relative --data, checked from another directory: the line names the folder
    _toy_source(30, tmp_path / "a")
    _toy_source(31, tmp_path / "b")
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["train", "lr", "--data", "a", "--samples", "s", "--epochs", "1", "--device", "cpu",
                              "--quiet", "--out", "r1"])
    assert res.exit_code == 0, res.output
    assert load_record(tmp_path / "r1")["dataset"]["samples"]["source"] == str(tmp_path.resolve() / "a")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    res = runner.invoke(app, ["train", "lr", "--data", "../b", "--samples", "../s", "--epochs", "1", "--device",
                              "cpu", "--quiet", "--out", "r2"])
    assert res.exit_code == 1, res.output
    assert f"(built from {tmp_path.resolve() / 'a'}, not from ../b" in res.output, res.output


@pytest.mark.parametrize("options", [["--item-graph", "foo"], ["--modalities", "foo"],
                                     ["--graph-layers", "-1", "--item-graph", "knn"],
                                     ["--graph-layers", "0", "--item-graph", "cooccur"]])
def test_model_options_are_checked_before_samples_are_stored(tmp_path, options):
    _toy_source(30, tmp_path / "a")
    res = runner.invoke(app, ["train", "din", "--data", str(tmp_path / "a"), "--samples", str(tmp_path / "s"),
                              *options, "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert res.output.startswith("error: ") and "samples saved" not in res.output, res.output
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()


@pytest.mark.parametrize("modality", ["audio", "id"])
def test_deepfm_unknown_modality_is_one_line(samples, tmp_path, modality):
    res = runner.invoke(app, ["train", "deepfm", "--data", str(samples), "--modalities", modality, "--epochs", "1",
                              "--device", "cpu", "--quiet", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"error: modality '{modality}' is not in the data (has image, text" in res.output, res.output
    assert "--modalities" in res.output


@pytest.mark.parametrize("model, options, notes", [
    ("gmmf", ["--no-cgan", "--gan-start-epoch", "0", "--gan-lr", "0.5"],
     ["--gan-start-epoch 0 has no effect with --no-cgan", "--gan-lr 0.5 has no effect with --no-cgan"]),
    ("gmmf", ["--no-autoencoder", "--recon-weight", "5", "--gan-start-epoch", "0"],
     ["--recon-weight 5.0 has no effect with --no-autoencoder"]),
    ("gmmf", ["--gan-start-epoch", "3"], ["the GAN never trains: it trains in the epochs after --gan-start-epoch 3, "
                                          "and --epochs 1 ends the run first"]),
    # a typed --epochs at or below the default --gan-start-epoch (1) is noted too
    ("gmmf", [], ["the GAN never trains: it trains in the epochs after --gan-start-epoch 1, the default, "
                  "and --epochs 1 ends the run first"]),
    ("marn", ["--adversarial", "none", "--adv-weight", "0.7"], ["--adv-weight 0.7 has no effect with --adversarial none"]),
    ("lr", ["--graph-layers", "3", "--graph-k", "5", "--cooccur-top-k", "4"],
     [f"{o} has no effect without --item-graph" for o in ("--graph-layers 3", "--graph-k 5", "--cooccur-top-k 4")]),
    ("fm", ["--item-graph", "cooccur", "--graph-k", "5", "--cooccur-top-k", "4"],
     ["--graph-k 5 has no effect with --item-graph cooccur"]),
    ("fm", ["--item-graph", "knn", "--graph-k", "5", "--cooccur-top-k", "4"],
     ["--cooccur-top-k 4 has no effect with --item-graph knn"]),
    # the defaults (and values that act) give no note
    ("gmmf", ["--no-cgan"], []),
    ("fm", ["--item-graph", "both", "--graph-k", "5", "--cooccur-top-k", "4"], []),
])
def test_options_without_effect_are_noted(samples, tmp_path, model, options, notes):
    res = runner.invoke(app, ["train", model, "--data", str(samples), *options, "--epochs", "1", "--device", "cpu",
                              "--quiet", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    got = [line for line in res.stderr.splitlines() if line.startswith("note: ")]
    assert len(got) == len(notes), res.stderr
    for line, want in zip(got, notes):
        assert line.startswith(f"note: {want}"), res.stderr


@pytest.mark.parametrize("options, message", [
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--patience", "0"], "--patience must be at least 1, got 0"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--lr", "nan"], "--lr must be positive and finite"),
    (["--graph-k", "0", "--item-graph", "knn"], "--graph-k must be at least 1"),
    (["--cooccur-top-k", "-1", "--item-graph", "cooccur"], "--cooccur-top-k must be at least 0"),
    (["--item-graph", "knn,cooccur"], "--item-graph 'knn,cooccur': a comma-separated list takes stored graph "
                                      "directories, and 'knn' is a graph kind"),
])
def test_bad_values_name_the_options(samples, tmp_path, options, message):
    """Errors say --batch-size, not CTRConfig's batch_size (nor the graph builder's k)."""
    res = runner.invoke(app, ["train", "fm", "--data", str(samples), "--epochs", "1", *options, "--device", "cpu",
                              "--quiet", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert res.output.startswith(f"error: {message}"), res.output
    if "knn,cooccur" in options:
        assert "--item-graph both is knn + cooccur" in res.output


def test_marn_concat_run_has_no_modality_weights_and_says_which_fusion_has(samples, tmp_path):
    res = runner.invoke(app, ["train", "marn", "--data", str(samples), "--fusion", "concat", "--epochs", "1",
                              "--device", "cpu", "--quiet", "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["plot-modality-attention", str(tmp_path / "run"), "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert "this MARN run (--fusion concat) has no modality weights: MARN has them with --fusion maf" in res.output


def test_stored_graph_of_other_data_names_the_samples_dataset(samples, tmp_path):
    from graphrec.graphs import GraphSpec, build_item_graph, save_graph

    data = contract_ctr_data()
    other = data.dataset.replace(splits={"train": data.dataset.train + data.dataset.test}, timestamps=None)
    stale = build_item_graph(other, GraphSpec(kind="cooccur"))
    save_graph(tmp_path / "stale", stale.graph, stale.record)
    res = runner.invoke(app, ["train", "din", "--data", str(samples), "--item-graph", str(tmp_path / "stale"),
                              "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    # the fix builds from the samples' own dataset into a new folder, never over the given graph
    assert f"`graphrec build-graph --data {(samples / 'dataset').resolve()} --kind cooccur" in res.output, res.output
    assert "--out NEW_DIR` and pass NEW_DIR/cooccur" in res.output and "--overwrite" not in res.output
    # samples built in memory (no folder): the fix says how to get one
    from graphrec.train.ctr import resolve_item_graphs
    from graphrec.errors import DataError

    with pytest.raises(DataError, match="store the samples with --samples DIR, then `graphrec build-graph --data DIR/dataset"):
        resolve_item_graphs(data, str(tmp_path / "stale"))


def test_optimizer_adagrad_trains_the_backbone_and_is_recorded(samples, tmp_path, monkeypatch):
    """--optimizer adagrad (MARN's paper) replaces the backbone's Adam; GMMF's GAN keeps
    its two Adam optimisers (gan_lr)."""
    import torch

    made = []

    class Spy(torch.optim.Adagrad):
        def __init__(self, params, **kw):
            params = list(params)
            made.append((len(params), kw))
            super().__init__(params, **kw)

    monkeypatch.setattr(torch.optim, "Adagrad", Spy)
    args = ["train", "gmmf", "--data", str(samples), "--epochs", "1", "--gan-start-epoch", "0", "--device", "cpu",
            "--lr", "0.1", "--quiet"]
    res = runner.invoke(app, [*args, "--optimizer", "adagrad", "--out", str(tmp_path / "ada")])
    assert res.exit_code == 0, res.output
    assert len(made) == 1 and made[0][1]["lr"] == 0.1  # one: the backbone's
    rec = load_record(tmp_path / "ada")
    assert rec["train_config"]["optimizer"] == "adagrad"
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "adam")])
    assert res.exit_code == 0 and len(made) == 1  # the default is Adam
    assert load_record(tmp_path / "adam")["test"]["auc"] != rec["test"]["auc"]
    res = runner.invoke(app, [*args, "--optimizer", "sgd", "--out", str(tmp_path / "sgd")])
    assert res.exit_code == 1 and "optimizer 'sgd' is not one of adam, adagrad (--optimizer)" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "sgd").exists()


@pytest.mark.parametrize("quiet", [False, True])
def test_item_graph_build_shows_progress_unless_quiet(samples, tmp_path, monkeypatch, quiet):
    """Building the item graphs (110 s at 10^5 items) showed nothing: the run passed
    progress=False. The graph builds now follow the run's progress setting."""
    import tqdm.auto

    bars: list[str] = []

    class Recorder(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            bars.append(str(kwargs.get("desc")))
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recorder)
    res = runner.invoke(app, ["train", "din", "--data", str(samples), "--item-graph", "both", "--epochs", "1",
                              "--device", "cpu", "--threads", "1", "--out", str(tmp_path / "r")]
                        + (["--quiet"] if quiet else []))
    assert res.exit_code == 0, res.output
    graph_bars = [b for b in bars if b.startswith("kNN") or b == "co-interactions"]
    if quiet:
        assert bars == []
    else:
        assert any(b.startswith("kNN") for b in graph_bars) and "co-interactions" in graph_bars, bars
