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
    # the commands that read ranking runs only say what the run is, in one line, and write nothing
    for args in (["export-graph", str(tmp_path / "run"), "--out", str(tmp_path / "graph")],):
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
    """--optimizer adagrad (MARN's paper) replaces the backbone's Adam, its accumulator
    starting at TensorFlow's 0.1 (not PyTorch's 0, whose first step moves every parameter
    by about +-lr); GMMF's GAN keeps its two Adam optimisers (gan_lr)."""
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
    assert made[0][1].get("initial_accumulator_value") == 0.1
    rec = load_record(tmp_path / "ada")
    assert rec["train_config"]["optimizer"] == "adagrad"
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "adam")])
    assert res.exit_code == 0 and len(made) == 1  # the default is Adam
    assert load_record(tmp_path / "adam")["test"]["auc"] != rec["test"]["auc"]
    res = runner.invoke(app, [*args, "--optimizer", "sgd", "--out", str(tmp_path / "sgd")])
    assert res.exit_code == 1 and "optimizer 'sgd' is not one of adam, adagrad (--optimizer)" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "sgd").exists()


def test_evaluate_a_ctr_run_repeats_its_metrics_and_writes_its_probabilities(samples, tmp_path):
    import csv

    from sklearn.metrics import log_loss, roc_auc_score

    run = tmp_path / "run"
    res = runner.invoke(app, ["train", "din", "--data", str(samples), "--task", "ctr", "--epochs", "2",
                              "--item-graph", "cooccur", "--threads", "1", "--device", "cpu", "--out", str(run),
                              "--quiet"])
    assert res.exit_code == 0, res.output
    rec = load_record(run)
    preds = tmp_path / "preds.csv"
    res = runner.invoke(app, ["evaluate", str(run), "--predictions", str(preds), "--device", "cpu", "--quiet"])
    assert res.exit_code == 0, res.output
    rows = {line.split()[0]: line.split()[1:] for line in res.output.splitlines() if line.split()}
    assert rows["auc"] == [f"{rec['best_valid']['auc']:.4f}", f"{rec['test']['auc']:.4f}"]
    assert rows["logloss"] == [f"{rec['best_valid']['logloss']:.4f}", f"{rec['test']['logloss']:.4f}"]
    with open(preds, newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["split", "user", "item", "label", "probability"]
    test = [r for r in table if r["split"] == "test"]
    assert len(test) == rec["test"]["samples"] and len(table) == len(test) + rec["best_valid"]["samples"]
    labels = [int(r["label"]) for r in test]
    probs = np.array([float(r["probability"]) for r in test])
    assert roc_auc_score(labels, probs) == pytest.approx(rec["test"]["auc"], abs=1e-6)
    assert log_loss(labels, probs.clip(1e-7, 1 - 1e-7)) == pytest.approx(rec["test"]["logloss"], abs=1e-6)
    # an existing --predictions is kept unless --overwrite; a ranking option is refused; both in one line
    for args, words in ((["--predictions", str(preds)], "already exists"), (["--protocol", "mmrec"], "CTR run")):
        res = runner.invoke(app, ["evaluate", str(run), *args])
        assert res.exit_code == 1 and words in res.output and len(res.output.strip().splitlines()) == 1, res.output
    # --predictions RUN/record.json --overwrite replaced the run's own record (model.pt alike)
    for own in ("record.json", "model.pt"):
        before = (run / own).read_bytes()
        res = runner.invoke(app, ["evaluate", str(run), "--predictions", str(run / own), "--overwrite"])
        assert res.exit_code == 1 and "write a .csv file" in res.output, res.output
        assert (run / own).read_bytes() == before


def test_evaluate_a_ctr_run_refuses_other_samples(samples, tmp_path):
    from graphrec.data.ctr import CTRData

    run = tmp_path / "run"
    res = runner.invoke(app, ["train", "din", "--data", str(samples), "--task", "ctr", "--epochs", "1", "--threads", "1",
                              "--device", "cpu", "--out", str(run), "--quiet"])
    assert res.exit_code == 0, res.output
    other = tmp_path / "other"
    data = CTRData.load(samples)
    data.samples["test"].labels = 1 - data.samples["test"].labels  # other samples of the same data
    data.save(other)
    res = runner.invoke(app, ["evaluate", str(run), "--data", str(other), "--device", "cpu"])
    assert res.exit_code == 1, res.output
    assert "the samples differ from those run" in res.output and len(res.output.strip().splitlines()) == 1
def _one_error_line(res, *words):
    """``res`` failed with exit status 1 and one ``error:`` line holding every one of ``words``."""
    assert res.exit_code == 1, res.output
    assert len(res.output.strip().splitlines()) == 1 and res.output.startswith("error: "), res.output
    assert "Traceback" not in res.output, res.output
    for w in words:
        assert w in res.output, (w, res.output)


def _edit(split, key, fn):
    """An edit of array ``key`` of a split (through its CTRSplit field)."""
    def apply(data):
        sp_ = data.samples[split]
        setattr(sp_, key, fn(getattr(sp_, key).copy()))
    return apply


def _set(a, index, value):
    a[index] = value
    return a


#: (id, edit of a CTRData, words of the one error line) of the stored-samples checks
_STORED_EDITS = [
    ("label-2", _edit("train", "labels", lambda a: _set(a, 3, 2.0)),
     ["samples.npz: train__labels[3] = 2 is not a label (0 or 1"]),
    ("label-half", _edit("valid", "labels", lambda a: _set(a, 5, 0.5)),
     ["valid__labels[5] = 0.5 is not a label"]),
    ("user-range", _edit("train", "users", lambda a: _set(a, 3, 10 ** 6)),
     ["train__users[3] = 1000000 is not a user index (0..59, the 60 users of"]),
    ("item-range", _edit("test", "items", lambda a: _set(a, 7, -2)),
     ["test__items[7] = -2 is not an item index (0..49"]),
    ("history-range", _edit("train", "history", lambda a: _set(a, (4, 1), 50)),
     ["train__history[4, 1] = 50 is not an item index or the padding -1"]),
    ("history-gap", _edit("train", "history", lambda a: _set(a, (0, 3), 7)),
     ["train__history[0, 3] = 7 follows the padding -1 at column 2"]),
    ("user-dtype", _edit("train", "users", lambda a: a.astype(np.float64)),
     ["array train__users has dtype float64, expected an integer dtype"]),
    ("items-shape", _edit("valid", "items", lambda a: a[:-1]),
     ["array valid__items has shape (119,), expected 120"]),
    ("history-cut", lambda d: [_edit("train", k, lambda a: a[:, :4].copy())(d) for k in ("history", "hist_delta")],
     ["train__history row", "behaviours, but train__position[", "(position - 1, at most max history 6"]),
    ("history-width", _edit("train", "history", lambda a: np.pad(a, ((0, 0), (0, 3)), constant_values=-1)),
     ["array train__history has 9 columns, expected 1 to max history 6 of ctr.json"]),
    ("position", _edit("test", "position", lambda a: _set(a, 0, 0)),
     ["test__position[0] = 0 is not a target position"]),
    ("delta-inf", _edit("train", "hist_delta", lambda a: _set(a, (0, 0), np.inf)),
     ["train__hist_delta[0, 0] = inf at a history behaviour is not a finite number of seconds"]),
    ("user-side", lambda d: d.user_side.__setitem__("gender", _set(d.user_side["gender"].copy(), 2, 3)),
     ["side.npz: user__gender[2] = 3 is not a code of field 'gender' (0..2, vocab_sizes['gender'] = 3"]),
    ("item-side", lambda d: d.item_side.__setitem__("genres", _set(d.item_side["genres"].copy(), (1, 0), -4)),
     ["side.npz: item__genres[1, 0] = -4 is not a code of field 'genres'"]),
]


@pytest.mark.parametrize("edit, words", [c[1:] for c in _STORED_EDITS], ids=[c[0] for c in _STORED_EDITS])
def test_stored_samples_are_checked_beyond_their_fingerprint(tmp_path, edit, words):
    # an edited samples folder whose fingerprint was computed again (save computes it) or a
    # home-made one: the fingerprint holds, so the arrays themselves are checked, in one line
    data = contract_ctr_data()
    edit(data)
    data.save(tmp_path / "s")
    res = runner.invoke(app, ["train", "din", "--data", str(tmp_path / "s"), "--epochs", "1", "--device", "cpu",
                              "--quiet", "--out", str(tmp_path / "r")])
    _one_error_line(res, *words, "delete", "build them again")
    assert not (tmp_path / "r").exists()


def test_stored_samples_header_entries_are_checked(tmp_path):
    import json

    contract_ctr_data().save(tmp_path / "s")
    head = json.loads((tmp_path / "s" / "ctr.json").read_text())
    head["vocab_sizes"]["gender"] = "3"
    (tmp_path / "s" / "ctr.json").write_text(json.dumps(head))
    res = runner.invoke(app, ["train", "lr", "--data", str(tmp_path / "s"), "--epochs", "1", "--device", "cpu",
                              "--quiet", "--out", str(tmp_path / "r")])
    _one_error_line(res, "ctr.json: entry 'vocab_sizes' is", "expected an object {field: number of codes >= 1}")


RATINGS_HEAD = "user_id,item_id,rating,timestamp"


def _ratings(path, rows, sep=","):
    """A MovieLens folder whose ratings.csv holds ``rows`` (user, item, time)."""
    path.mkdir(parents=True)
    lines = [RATINGS_HEAD.replace(",", sep)] + [sep.join((str(u), str(i), "4", str(t))) for u, i, t in rows]
    (path / "ratings.csv").write_text("\n".join(lines) + "\n")
    return path


def _rows(n_users, per_user, n_items=30):
    rng = np.random.default_rng(0)
    return [(u + 1, int(i) + 1, 1000 * u + k) for u in range(n_users)
            for k, i in enumerate(rng.choice(n_items, per_user, replace=False))]


@pytest.mark.parametrize("sep, name", [("\t", "tab"), (";", "semicolon"), ("|", "pipe")])
def test_movielens_ratings_with_another_separator_say_so(tmp_path, sep, name):
    src = _ratings(tmp_path / "ml", _rows(10, 6), sep=sep)
    for args in (["train", "din", "--data", str(src), "--epochs", "1", "--device", "cpu", "--quiet", "--out",
                  str(tmp_path / "r")], ["prepare", "--format", "movielens", str(src), str(tmp_path / "d")]):
        res = runner.invoke(app, args)
        _one_error_line(res, "ratings.csv line 1: the file is not comma-separated", f"is {name}-separated",
                        "separate its columns with commas")
        assert "name it userId" not in res.output
    assert not (tmp_path / "r").exists() and not (tmp_path / "d").exists()


def _unisrec(root, valid_sep="\t", feat_values=None):
    """A tiny UniSRec folder (2 users of 5 behaviours, 6 items, item map, 4-d features)."""
    root.mkdir(parents=True)
    head = ["user_id:token", "item_id_list:token_seq", "item_id:token"]
    seqs = {0: [0, 1, 2, 3, 4], 1: [5, 4, 3, 2, 1]}
    train = [(u, s[:k], s[k]) for u, s in seqs.items() for k in range(1, 3)]
    files = {
        "x.train.inter": ["\t".join(head)] + [f"{u}\t{' '.join(map(str, h))}\t{t}" for u, h, t in train],
        "x.valid.inter": [valid_sep.join(head)] + [valid_sep.join((str(u), " ".join(map(str, s[:3])), str(s[3])))
                                                   for u, s in seqs.items()],
        "x.test.inter": ["\t".join(head)] + [f"{u}\t{' '.join(map(str, s[:4]))}\t{s[4]}" for u, s in seqs.items()],
        "x.item2index": [f"I{k}\t{k}" for k in range(6)],
        "x.user2index": [f"U{k}\t{k}" for k in range(2)],
    }
    for name, lines in files.items():
        (root / name).write_text("\n".join(lines) + "\n")
    np.arange(6 * 4 if feat_values is None else feat_values, dtype=np.float32).tofile(root / "x.feat1CLS")
    return root


def test_unisrec_inter_file_with_commas_says_it_is_not_tab_separated(tmp_path):
    src = _unisrec(tmp_path / "u", valid_sep=",")
    res = runner.invoke(app, ["train", "din", "--data", str(src), "--epochs", "1", "--device", "cpu", "--quiet",
                              "--out", str(tmp_path / "r")])
    _one_error_line(res, "x.valid.inter line 1: the file is not tab-separated", "is comma-separated",
                    "separate the columns with tabs")
    assert "header has no" not in res.output


def test_unisrec_feature_file_of_the_wrong_size_gives_the_command_line_fix(tmp_path):
    src = _unisrec(tmp_path / "u", feat_values=6 * 4 - 1)
    res = runner.invoke(app, ["train", "din", "--data", str(src), "--epochs", "1", "--device", "cpu", "--quiet",
                              "--out", str(tmp_path / "r")])
    _one_error_line(res, "x.feat1CLS: 92 bytes (23 float32 values", "do not split into 6 rows, one per item",
                    "the 6 lines of", "x.item2index", "write it as 6 x dim float32 values", "24 x dim bytes")
    assert "read_unisrec(" not in res.output and "dim=" not in res.output


def test_no_training_samples_name_the_data_and_the_counts(tmp_path):
    # every user has 3 behaviours: a validation history, target and test target, no training sample
    src = _ratings(tmp_path / "ml", _rows(12, 3) + [(99, 1, 5)])
    res = runner.invoke(app, ["train", "din", "--data", str(src), "--samples", str(tmp_path / "s"), "--epochs", "1",
                              "--device", "cpu", "--quiet", "--out", str(tmp_path / "r")])
    _one_error_line(res, f"{src} ('ml') gives no training samples", "all 12 users that give samples have exactly 3 "
                    "behaviours (1 of its 13 users have fewer than 3", "needs a user with at least 4")
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()


def test_duplicate_ratings_rows_are_noted(tmp_path):
    rows = _rows(10, 6)
    src = _ratings(tmp_path / "ml", rows + rows[:3])
    res = runner.invoke(app, ["train", "lr", "--data", str(src), "--epochs", "1", "--device", "cpu", "--quiet",
                              "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert f"note: 3 duplicate rows of {src / 'ratings.csv'} merged" in res.stderr, res.stderr
    res = runner.invoke(app, ["prepare", "--format", "movielens", str(src), str(tmp_path / "d")])
    assert res.exit_code == 0 and f"note: 3 duplicate rows of {src / 'ratings.csv'} merged" in res.output, res.output
    # a dataset directory merged them when it was prepared (and noted it then): no note
    res = runner.invoke(app, ["train", "lr", "--data", str(tmp_path / "d"), "--epochs", "1", "--device", "cpu",
                              "--quiet", "--out", str(tmp_path / "r2")])
    assert res.exit_code == 0 and "note:" not in res.output, res.output


def test_slice_table_prints_sample_counts_as_integers(samples, tmp_path):
    import re

    res = runner.invoke(app, ["train", "lr", "--data", str(samples), "--epochs", "1", "--device", "cpu", "--quiet",
                              "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    rows = [ln for ln in res.stdout.splitlines() if re.match(r"(level_\d|warm|cold)\s", ln)]
    assert rows and all(re.fullmatch(r"\S+\s+(\d\.\d{4}|-)\s+\d+", ln) for ln in rows), res.stdout


def test_sources_without_timestamps_and_too_short_users_name_the_file_and_the_counts(tmp_path):
    src = tmp_path / "ml"
    src.mkdir()
    (src / "ratings.csv").write_text("userId,movieId,rating\n" + "".join(f"{u},{i},4\n" for u in range(1, 6)
                                                                          for i in range(1, 6)))
    res = runner.invoke(app, ["train", "din", "--data", str(src), "--epochs", "1", "--device", "cpu", "--quiet",
                              "--out", str(tmp_path / "r")])
    _one_error_line(res, f"{src / 'ratings.csv'}: no timestamp column", "add it")
    # a prepared dataset without timestamps names its folder
    res = runner.invoke(app, ["prepare", "--format", "movielens", str(src), str(tmp_path / "d")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", "din", "--data", str(tmp_path / "d"), "--epochs", "1", "--device", "cpu",
                              "--quiet", "--out", str(tmp_path / "r")])
    _one_error_line(res, f"{tmp_path / 'd'}: the dataset holds no timestamps")
    # every user has 2 behaviours: none gives a sample
    short = _ratings(tmp_path / "short", _rows(7, 2))
    res = runner.invoke(app, ["train", "din", "--data", str(short), "--epochs", "1", "--device", "cpu", "--quiet",
                              "--out", str(tmp_path / "r")])
    _one_error_line(res, "has 3 or more behaviours (7 users, at most 2 behaviours each)")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("quiet, terminal", [(False, True), (True, True), (False, False)])
def test_item_graph_build_shows_progress_unless_quiet(samples, tmp_path, monkeypatch, quiet, terminal):
    """Building the item graphs (110 s at 10^5 items) showed nothing: the run passed
    progress=False. The graph builds now follow the run's progress setting: bars on a
    terminal unless --quiet; off a terminal (a log file) no bar, as for the epochs."""
    from graphrec.testing import recorded_bars

    monkeypatch.setattr("graphrec.cli._common.stderr_is_terminal", lambda: terminal)
    recorded = recorded_bars(monkeypatch)
    res = runner.invoke(app, ["train", "din", "--data", str(samples), "--item-graph", "both", "--epochs", "1",
                              "--device", "cpu", "--threads", "1", "--out", str(tmp_path / "r")]
                        + (["--quiet"] if quiet else []))
    assert res.exit_code == 0, res.output
    bars = [str(b.get("desc")) for b in recorded]
    graph_bars = [b for b in bars if b.startswith("kNN") or b == "co-interactions"]
    if quiet or not terminal:
        assert bars == []
    else:
        assert any(b.startswith("kNN") for b in graph_bars) and "co-interactions" in graph_bars, bars


def _help(*command):
    res = runner.invoke(app, [*command, "--help"], terminal_width=400)
    assert res.exit_code == 0, res.output
    return " ".join(res.output.replace("│", " ").split())


def test_max_history_and_sample_seed_show_their_defaults_as_the_other_options_do(samples, tmp_path):
    """Their help said "[50]" and "[0]" where every other option says "[default: ...]";
    left out, they are still the stored samples' own when --data holds samples (the
    contract samples have max history 6)."""
    text = _help("train", "din")
    assert "--max-history <int> Behaviours kept in a history (samples as --data: theirs). [default: 50]" in text
    assert "--sample-seed <int> Seed of the sampled negatives (samples as --data: theirs). [default: 0]" in text
    assert "[50]" not in text and "[0]" not in text
    run = ["train", "lr", "--data", str(samples), "--epochs", "1", "--device", "cpu", "--quiet"]
    res = runner.invoke(app, [*run, "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert load_record(tmp_path / "r")["dataset"]["samples"]["max_history"] == 6
    res = runner.invoke(app, [*run, "--max-history", "50", "--out", str(tmp_path / "r2")])
    assert res.exit_code == 1 and f"{samples} holds samples with max history 6, not 50" in res.output, res.output


def test_lr_help_hides_the_item_graph_options_it_refuses(samples, tmp_path):
    """LR has no item ID embedding: its --help listed --item-graph, --graph-k,
    --cooccur-top-k and --graph-layers, which it always refuses. They are hidden there
    (still parsed: --item-graph gets LR's one-line refusal) and shown for the others."""
    import typer.main

    flags = ("--item-graph", "--graph-k", "--cooccur-top-k", "--graph-layers")
    train = typer.main.get_command(app).commands["train"]
    for name, command in train.commands.items():
        if name not in ("lr", "fm", "deepfm", "youtubenet", "din", "gmmf", "marn"):
            continue
        shown = {o for p in command.params if not getattr(p, "hidden", False) for o in p.opts}
        assert (set(flags) & shown) == (set() if name == "lr" else set(flags)), name
    text = _help("train", "lr")
    assert not any(flag in text for flag in flags), text
    res = runner.invoke(app, ["train", "lr", "--data", str(samples), "--item-graph", "knn", "--quiet",
                              "--device", "cpu", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and res.output.strip() == "error: lr has no item ID embedding to enrich: drop --item-graph"


def test_weight_decay_is_a_training_option_recorded_with_the_others(samples, tmp_path):
    """--weight-decay sets CTRConfig.weight_decay (the backbone optimiser's L2), which the
    command line could not set; it is recorded in the run's train_config and changes the
    training; a negative or NaN value is one line before anything is read."""
    assert "--weight-decay <float> Weight decay (L2) of the backbone optimiser" in _help("train", "din")
    run = ["train", "youtubenet", "--data", str(samples), "--epochs", "2", "--lr", "0.01", "--device", "cpu",
           "--threads", "1", "--quiet"]
    records = {}
    for wd in ("0", "0.1"):
        res = runner.invoke(app, [*run, "--weight-decay", wd, "--out", str(tmp_path / wd)])
        assert res.exit_code == 0, res.output
        records[wd] = load_record(tmp_path / wd)
    assert records["0.1"]["train_config"]["weight_decay"] == 0.1 and records["0"]["train_config"]["weight_decay"] == 0
    assert records["0.1"]["history"][-1]["loss"] != records["0"]["history"][-1]["loss"]
    assert "--weight-decay 0.1" in records["0.1"]["command"]
    for bad in ("-1", "nan"):
        res = runner.invoke(app, [*run, "--weight-decay", bad, "--out", str(tmp_path / "bad")])
        assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
        assert res.output.startswith(f"error: --weight-decay must be >= 0 and finite (e.g. 1e-5; 0: none), got "), res.output
    assert not (tmp_path / "bad").exists()


def test_gmmf_without_features_is_refused_before_any_note_and_names_the_fix(tmp_path):
    """GMMF on data without item features said "needs at least one content modality"
    without a fix, after the note that --epochs 1 never trains the GAN: the fatal error
    now comes first and alone, names where features come from, and nothing is stored."""
    _toy_source(30, tmp_path / "a")
    res = runner.invoke(app, ["train", "gmmf", "--data", str(tmp_path / "a"), "--epochs", "1", "--device", "cpu",
                              "--quiet", "--samples", str(tmp_path / "s"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    line = res.output.strip()
    assert line.startswith("error: GMMF needs item content features, and these data have none: "), line
    assert "`graphrec features`" in line and "`graphrec prepare --feature MODALITY=FILE`" in line, line
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()
    # stored samples as --data (the model is checked on them before the notes too)
    from graphrec.data.ctr import load_ctr_source

    load_ctr_source(tmp_path / "a").save(tmp_path / "s2")
    res = runner.invoke(app, ["train", "gmmf", "--data", str(tmp_path / "s2"), "--epochs", "1", "--device", "cpu",
                              "--quiet", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and res.output.strip().splitlines() == [line], res.output


@pytest.mark.parametrize("graph", ["knn", "both"])
def test_knn_graph_without_features_names_the_ctr_option(tmp_path, graph):
    """DIN --item-graph knn on data without features said "build --kind cooccur" (the
    graph builder's flag); this command's fix is --item-graph cooccur, given before the
    samples are stored."""
    _toy_source(30, tmp_path / "a")
    res = runner.invoke(app, ["train", "din", "--data", str(tmp_path / "a"), "--item-graph", graph, "--epochs", "1",
                              "--device", "cpu", "--quiet", "--samples", str(tmp_path / "s"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert res.output.strip() == (
        f"error: --item-graph {graph} builds a kNN graph of the items' content features, and these data have none: "
        "pass --item-graph cooccur (the graph of the training co-interactions), or data with item features")
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()


def test_an_fm_run_recorded_before_the_item_only_default_evaluates_as_it_trained(samples, tmp_path):
    """LR and FM took the papers' item fields only, with user_fields (default False); a run
    recorded before has no such entry and trained with the user fields: it is rebuilt so."""
    import json

    run = tmp_path / "run"
    res = runner.invoke(app, ["train", "fm", "--data", str(samples), "--task", "ctr", "--epochs", "1",
                              "--user-fields", "--threads", "1", "--device", "cpu", "--out", str(run), "--quiet"])
    assert res.exit_code == 0, res.output
    rec = load_record(run)
    for params in (rec["model_params"], rec["checkpoint"]["model_params"]):  # as an older graphrec wrote them
        del params["user_fields"]
    (run / "record.json").write_text(json.dumps(rec))
    res = runner.invoke(app, ["evaluate", str(run), "--device", "cpu", "--quiet"])
    assert res.exit_code == 0, res.output
    rows = {line.split()[0]: line.split()[1:] for line in res.output.splitlines() if line.split()}
    assert rows["auc"] == [f"{rec['best_valid']['auc']:.4f}", f"{rec['test']['auc']:.4f}"]
