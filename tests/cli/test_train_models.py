"""`graphrec train lattice|cb|mf` and stored graphs (`--graph`) through the CLI; models' own
defaults of the training options (the registry's ``train_defaults``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.testing import one_error_line

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_dir(saved_catalogue):
    return saved_catalogue("models", "synthetic", n_users=150, n_items=90, n_clusters=5, seed=0)


@pytest.mark.parametrize("model", ["lattice", "cb", "mf"])
def test_help_has_an_example(model):
    res = run("train", model, "--help")
    assert res.exit_code == 0 and "Example" in res.output


@pytest.mark.parametrize("model", ["smore", "mgcn"])
@pytest.mark.parametrize("extra, decay", [([], 0.96), (["--lr-decay", "1"], 1.0)])
def test_reference_learning_rate_schedule_is_the_default(data_dir, tmp_path, model, extra, decay):
    """`graphrec train smore|mgcn` default to MMRec's learning_rate_scheduler [0.96, 50]."""
    out = tmp_path / model
    res = run("train", model, "--data", data_dir, "--dim", "4", "--epochs", "1", "--device", "cpu", "--out", out,
              "--quiet", *extra)
    assert res.exit_code == 0, res.output
    config = json.loads((out / "record.json").read_text())["train_config"]
    assert config["lr_decay"] == decay and config["lr_decay_every"] == 50


def test_lattice_with_cold_start_then_evaluate(data_dir, tmp_path):
    out = tmp_path / "lattice"
    res = run("train", "lattice", "--data", data_dir, "--epochs", "3", "--dim", "8", "--k", "5", "--lambda", "0.7",
              "--cold-start", "0.2", "--cold-protocol", "hidden", "--select-on", "cold", "--device", "cpu", "--out", out,
              "--quiet")
    assert res.exit_code == 0, res.output
    assert "test-cold" in res.output and "modality_weight_image" in res.output
    assert "valid-cold" in res.output and "selected on cold items" in res.output
    record = json.loads((out / "record.json").read_text())
    assert record["train_config"]["select_on"] == "cold"
    cold_valid = [h["valid_groups"]["cold"]["recall@20"] for h in record["history"]]
    assert record["best_epoch"] == cold_valid.index(max(cold_valid)) + 1
    assert record["model_params"]["lambda_coeff"] == 0.7 and record["model_params"]["k"] == 5
    assert set(record["test"]) == {"all", "warm", "cold"}
    assert len(record["history"]) == 3 and "modality_weight_text" in record["history"][0]["model"]
    res = run("evaluate", out, "--device", "cpu")
    assert res.exit_code == 0, res.output
    line = next(l for l in res.output.splitlines() if l.startswith("recall@20"))
    assert f"{record['test']['all']['recall@20']:.4f}" in line


def test_lattice_with_the_cf_graph_records_its_weight_and_reloads(data_dir, tmp_path):
    out = tmp_path / "lattice-cf"
    res = run("train", "lattice", "--data", data_dir, "--epochs", "2", "--dim", "8", "--k", "5", "--cf-graph",
              "--cold-start", "0.2", "--device", "cpu", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    record = json.loads((out / "record.json").read_text())
    assert record["model_params"]["use_cf_graph"] is True
    assert 0 < record["history"][-1]["model"]["cf_weight"] < 1
    res = run("evaluate", out, "--device", "cpu")  # the reloaded model rebuilds E^c from the same split
    assert res.exit_code == 0, res.output
    line = next(l for l in res.output.splitlines() if l.startswith("recall@20"))
    assert f"{record['test']['all']['recall@20']:.4f}" in line


def test_cb_notes_the_training_options_it_ignores(data_dir, tmp_path):
    """cb has no parameters: its --help hides the training options (--negatives as well:
    it draws no negatives), and given ones are accepted, as in graphrec 0.1, with a note
    naming them (they were silently ignored)."""
    import typer.main

    cb = typer.main.get_command(app).commands["train"].commands["cb"]
    shown = {o for p in cb.params if not getattr(p, "hidden", False) for o in p.opts}
    assert not shown & {"--epochs", "--lr", "--batch-size", "--patience", "--negatives"}
    lightgcn = typer.main.get_command(app).commands["train"].commands["lightgcn"]
    assert "--negatives" in {o for p in lightgcn.params if not getattr(p, "hidden", False) for o in p.opts}
    res = run("train", "cb", "--data", data_dir, "--k", "20", "--lr", "0.1", "--batch-size", "64", "--negatives", "warm",
              "--device", "cpu", "--out", tmp_path / "cb", "--quiet")
    assert res.exit_code == 0, res.output
    assert "note: --lr, --batch-size, --negatives have no effect: cb has no parameters to train" in res.output
    assert "--negatives warm has no effect without --cold-start" not in res.output  # one note, not two
    res = run("train", "cb", "--data", data_dir, "--k", "20", "--device", "cpu", "--out", tmp_path / "cb2", "--quiet")
    assert res.exit_code == 0 and "note:" not in res.output


def test_cb_and_mf(data_dir, tmp_path):
    res = run("train", "cb", "--data", data_dir, "--k", "20", "--cold-start", "0.2", "--device", "cpu",
              "--out", tmp_path / "cb", "--quiet")
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "cb" / "record.json").read_text())
    assert record["best_epoch"] == 0 and record["test"]["cold"]["recall@20"] > 0
    assert "(recbole protocol, no parameters, no training)" in res.output and "best epoch" not in res.output
    # the run reloads (it has no cold-item path, unlike the trainable models)
    res = run("evaluate", tmp_path / "cb", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert f"{record['test']['all']['recall@20']:.4f}" in res.output
    res = run("train", "mf", "--data", data_dir, "--epochs", "2", "--dim", "8", "--device", "cpu",
              "--out", tmp_path / "mf", "--quiet")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "mf" / "record.json").read_text())["model"] == "mf"
    res = run("train", "mf", "--data", data_dir, "--epochs", "1", "--select-on", "cold", "--device", "cpu",
              "--out", tmp_path / "mf2", "--quiet")
    assert res.exit_code == 1 and "needs a cold-start split: add --cold-start" in res.output
    assert not (tmp_path / "mf2").exists()


def test_mmgef_reuses_stored_graphs_and_refuses_stale_ones(data_dir, tmp_path):
    graphs = tmp_path / "g"
    res = run("build-graph", "--data", data_dir, "--kind", "both", "--k", "6", "--out", graphs, "--quiet", "--device", "cpu")
    assert res.exit_code == 0, res.output
    a = run("train", "mmgef", "--data", data_dir, "--epochs", "2", "--dim", "8", "--graph", graphs / "knn",
            "--graph", graphs / "cooccur", "--device", "cpu", "--out", tmp_path / "stored", "--quiet")
    assert a.exit_code == 0, a.output
    b = run("train", "mmgef", "--data", data_dir, "--epochs", "2", "--dim", "8", "--k", "6",
            "--device", "cpu", "--out", tmp_path / "fresh", "--quiet")
    assert b.exit_code == 0, b.output
    ra = json.loads((tmp_path / "stored" / "record.json").read_text())
    rb = json.loads((tmp_path / "fresh" / "record.json").read_text())
    assert ra["model_params"]["graphs"][0].endswith("knn")
    # the stored graphs are the ones built on the fly: identical training
    assert ra["test"]["all"]["recall@20"] == pytest.approx(rb["test"]["all"]["recall@20"], abs=1e-9)
    assert np.isclose(ra["history"][-1]["loss"], rb["history"][-1]["loss"], rtol=1e-6)
    # a graph of the full training data is refused for a cold-start run (the co-interaction
    # graph would leak the hidden items' interactions)
    res = run("train", "mmgef", "--data", data_dir, "--epochs", "1", "--graph", graphs / "cooccur",
              "--cold-start", "0.2", "--device", "cpu", "--out", tmp_path / "leak", "--quiet")
    assert res.exit_code == 1
    assert "cold_start differs" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "leak").exists()
    res = run("train", "mmgef", "--data", data_dir, "--epochs", "1", "--graph", graphs / "knn", "--k", "10",
              "--device", "cpu", "--out", tmp_path / "k", "--quiet")
    assert res.exit_code == 1 and "k=6 but --k 10" in res.output
    # the content graph can be dropped (co-interaction graph only), but not while reusing it
    res = run("train", "mmgef", "--data", data_dir, "--epochs", "1", "--dim", "8", "--no-knn-graph",
              "--device", "cpu", "--out", tmp_path / "co", "--quiet")
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "co" / "record.json").read_text())
    assert record["model_params"]["use_knn_graph"] is False
    res = run("train", "mmgef", "--data", data_dir, "--epochs", "1", "--no-knn-graph", "--graph", graphs / "knn",
              "--device", "cpu", "--out", tmp_path / "co2", "--quiet")
    assert res.exit_code == 1 and "--no-knn-graph" in res.output and len(res.output.strip().splitlines()) == 1


def test_content_models_on_data_without_features(tmp_path):
    """A dataset without item features (e.g. the LATTICE split of Amazon Baby): the content
    models refuse it in one line naming the fix; MM-GEF also names --no-knn-graph, and
    trains with it on the co-interaction graph alone."""
    path = tmp_path / "plain"
    synthetic_catalogue(n_users=150, n_items=90, n_clusters=5, seed=0).replace(item_features={}).save(path)
    for model in ("lattice", "cb", "mmgef"):
        res = run("train", model, "--data", path, "--epochs", "1", "--device", "cpu", "--out", tmp_path / model, "--quiet")
        assert res.exit_code == 1 and "has none: embed its images and texts with graphrec features, or prepare it with --feature MODALITY=FILE" in res.output, res.output
        assert ("--no-knn-graph" in res.output) == (model == "mmgef")
        assert not (tmp_path / model).exists()
    res = run("train", "mmgef", "--data", path, "--epochs", "1", "--dim", "8", "--no-knn-graph", "--device", "cpu",
              "--out", tmp_path / "cooccur", "--quiet")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "cooccur" / "record.json").read_text())["model_params"]["use_knn_graph"] is False


def test_export_graph_of_a_trained_run_and_inspect_it(data_dir, tmp_path):
    """`graphrec export-graph RUN` stores the item graph the trained model propagates over
    (with its learned weights at the best epoch) as a provenance-checked graph that
    `graphrec inspect` reads; other models and reuse as a training input are refused."""
    from graphrec.data import Dataset, cold_start
    from graphrec.graphs.store import load_graph
    from graphrec.train import load_run

    run_dir, out = tmp_path / "lat", tmp_path / "g" / "lattice"
    res = run("train", "lattice", "--data", data_dir, "--epochs", "3", "--dim", "8", "--cf-graph", "--cold-start", "0.2",
              "--device", "cpu", "--out", run_dir, "--quiet")
    assert res.exit_code == 0, res.output
    res = run("export-graph", run_dir, "--out", out)
    assert res.exit_code == 0, res.output
    record = json.loads((run_dir / "record.json").read_text())
    ds = cold_start(Dataset.load(data_dir), 0.2, 0)
    graph, rec = load_graph(out, dataset=ds)  # the run's cold-start split: accepted
    assert rec.kind == "model" and rec.weighting == "learned" and rec.n_cold_items == len(ds.cold_items)
    assert rec.options["model"] == "lattice" and rec.options["best_epoch"] == record["best_epoch"]
    best = next(h for h in record["history"] if h["epoch"] == record["best_epoch"])
    assert rec.options["weights"] == pytest.approx(best["model"])
    _, _, model = load_run(run_dir)
    model.eval()
    want = model.item_graph().to_dense().numpy()
    np.testing.assert_allclose(graph.toarray(), want, rtol=1e-6, atol=1e-7)
    with pytest.raises(Exception, match="cold_start differs.*export it again .*`graphrec export-graph "):
        load_graph(out, dataset=Dataset.load(data_dir))
    res = run("inspect", out, "--sample", "50")
    assert res.exit_code == 0, res.output
    assert f"the item graph of lattice run {run_dir.resolve()}" in res.output and "cf_weight" in res.output
    res = run("export-graph", run_dir, "--out", out)
    assert res.exit_code == 1 and "a graph already exists" in res.output
    assert run("export-graph", run_dir, "--out", out, "--overwrite").exit_code == 0
    res = run("train", "mmgef", "--data", data_dir, "--epochs", "1", "--graph", out, "--cold-start", "0.2", "--device", "cpu",
              "--quiet")
    assert res.exit_code == 1 and "is a 'model' graph" in res.output
    lg = tmp_path / "lg"
    assert run("train", "lightgcn", "--data", data_dir, "--epochs", "1", "--dim", "8", "--device", "cpu", "--out", lg,
               "--quiet").exit_code == 0
    res = run("export-graph", lg, "--out", tmp_path / "g" / "lg")
    assert res.exit_code == 1 and "lightgcn, which has no item graph" in res.output
    assert not (tmp_path / "g" / "lg").exists()


def test_export_graph_of_every_graph_a_model_propagates_over(data_dir, tmp_path):
    """export-graph stores any graph a run propagates over, with its provenance: FREEDOM's
    one graph with no --view, MGCN's per-modality graphs, SMORE's and its fusion graph,
    DRAGON's item graph and its user graph (inspectable like a built user graph). A model
    with several graphs needs --view (the message lists them); a view it lacks is refused;
    nothing is written then."""
    from graphrec.graphs.store import load_graph
    from graphrec.train import load_run

    cases = {"freedom": ["item"], "mgcn": ["image", "text"], "smore": ["image", "text", "fusion"],
             "dragon": ["item", "user"]}
    for name, views in cases.items():
        run_dir, graphs = tmp_path / name, tmp_path / "g" / name
        res = run("train", name, "--data", data_dir, "--epochs", "1", "--dim", "8", "--device", "cpu",
                  "--out", run_dir, "--quiet")
        assert res.exit_code == 0, res.output
        _, ds, model = load_run(run_dir)
        model.eval()
        if len(views) > 1:
            res = run("export-graph", run_dir, "--out", graphs / "any")
            assert res.exit_code == 1, res.output
            assert f"propagates over {len(views)} graphs: pass --view " + " or --view ".join(views) in res.output
        res = run("export-graph", run_dir, "--view", "audio", "--out", graphs / "audio")
        assert res.exit_code == 1 and f"{name} has no graph 'audio': its graphs are {', '.join(views)}" in res.output
        assert not graphs.exists()
        for view in views:
            out = graphs / view
            res = run("export-graph", run_dir, *(["--view", view] if len(views) > 1 else []), "--out", out)
            assert res.exit_code == 0, res.output
            graph, rec = load_graph(out, dataset=ds)
            users = view == "user"
            want = (model.user_graphs() if users else model.item_graphs())[view].to_dense().numpy()
            np.testing.assert_allclose(graph.toarray(), want, rtol=1e-6, atol=1e-7)
            assert graph.shape == ((ds.n_users,) * 2 if users else (ds.n_items,) * 2)
            assert rec.kind == "model" and rec.options["view"] == view and rec.nodes == ("users" if users else "items")
            own = [view] if view in ("image", "text") else [] if users else ["image", "text"]
            assert sorted(rec.modalities) == own, (name, view)
            # the operator as propagated (FREEDOM's: the sym-normalised graphs' merge), not "none"
            assert rec.normalization == "as-propagated", (name, view)
            # fixed merges are said, not hidden behind "learned weights: fixed"
            merge = {("freedom", "item"): {"fixed_weights": {"image": 0.1, "text": 0.9}},
                     ("dragon", "item"): {"fixed_weights": {"image": 0.1, "text": 0.9}},
                     ("smore", "fusion"): {"max_pooled": ["image", "text"]}}.get((name, view))
            assert rec.options.get("merge") == merge, (name, view)
            said = {"fixed_weights": "fixed modality weights: image 0.1000, text 0.9000",
                    "max_pooled": "entry-wise max of the image, text graphs"}
            for key, text in said.items():
                assert (text in res.output) == (merge is not None and key in merge), (name, view, res.output)
    res = run("inspect", tmp_path / "g" / "dragon" / "user", "--sample", "20")
    assert res.exit_code == 0, res.output
    assert f"the user graph of dragon run {(tmp_path / 'dragon').resolve()}" in res.output
    assert "1 user layer(s)" in res.output
    res = run("inspect", tmp_path / "g" / "smore" / "fusion", "--sample", "20")
    assert res.exit_code == 0 and "the fusion item graph of smore run" in res.output, res.output
    assert "learned weights: fixed; entry-wise max of the image, text graphs" in res.output
    res = run("inspect", tmp_path / "g" / "freedom" / "item", "--sample", "20")
    assert res.exit_code == 0, res.output
    assert "learned weights: fixed; fixed modality weights: image 0.1000, text 0.9000" in res.output


def test_export_graph_records_the_modalities_the_model_fused(data_dir, tmp_path):
    """MM-GEF's exported graph names the modalities of its content graph as the builder
    resolved them: a stored text-only kNN graph's, else the dataset's defaults."""
    from graphrec.graphs.store import read_record

    graphs = tmp_path / "g"
    res = run("build-graph", "--data", data_dir, "--kind", "knn", "--modalities", "text", "--k", "6", "--out", graphs,
              "--quiet", "--device", "cpu")
    assert res.exit_code == 0, res.output
    for name, extra, want in (("stored", ["--graph", graphs / "knn"], ["text"]), ("built", [], ["image", "text"]),
                              ("cooccur", ["--no-knn-graph"], [])):
        run_dir = tmp_path / name
        res = run("train", "mmgef", "--data", data_dir, "--epochs", "1", "--dim", "8", *extra, "--device", "cpu",
                  "--out", run_dir, "--quiet")
        assert res.exit_code == 0, res.output
        assert run("export-graph", run_dir, "--out", tmp_path / "x" / name).exit_code == 0
        assert sorted(read_record(tmp_path / "x" / name).modalities) == want, name


def test_options_without_effect_are_noted(data_dir, tmp_path):
    """A pairing that changes nothing (a cold-start option without --cold-start, a path
    option without the path) still trains, with a note per option naming what is missing."""
    res = run("train", "lightgcn", "--data", data_dir, "--epochs", "1", "--quiet", "--out", tmp_path / "r",
              "--cold-protocol", "hidden", "--negatives", "warm", "--cold-k", "7")
    assert res.exit_code == 0, res.output
    assert "note: --cold-protocol hidden has no effect without --cold-start" in res.output
    assert "note: --negatives warm has no effect without --cold-start" in res.output
    assert "note: --cold-k 7 has no effect without --cold-path content" in res.output
    res = run("train", "lightgcn", "--data", data_dir, "--epochs", "1", "--quiet", "--out", tmp_path / "s",
              "--cold-start", "0.2", "--cold-protocol", "hidden", "--cold-path", "content", "--cold-k", "7")
    assert res.exit_code == 0, res.output
    assert "note:" not in res.output


def test_the_cold_path_follows_the_models_modalities(data_dir, tmp_path):
    """--modalities image trains the model and its cold-item path on the same content
    (--cold-modalities overrides it); a record written before this default (no
    record_version, whose path fused every modality) rebuilds its path as it trained."""
    import json

    from graphrec.train.run import load_run

    res = run("train", "vbpr", "--data", data_dir, "--epochs", "1", "--quiet", "--out", tmp_path / "r",
              "--cold-start", "0.2", "--cold-protocol", "hidden", "--cold-path", "content", "--modalities", "image",
              "--dim", "8")
    assert res.exit_code == 0, res.output
    assert "note:" not in res.output  # (under the papers' protocol the path notes how it wins there)
    assert load_run(tmp_path / "r")[2].cold_modalities == ("image",)
    res = run("train", "vbpr", "--data", data_dir, "--epochs", "1", "--quiet", "--out", tmp_path / "s",
              "--cold-start", "0.2", "--cold-path", "content", "--modalities", "image", "--cold-modalities", "text",
              "--dim", "8")
    assert res.exit_code == 0, res.output
    assert load_run(tmp_path / "s")[2].cold_modalities == ("text",)
    res = run("train", "vbpr", "--data", data_dir, "--epochs", "1", "--quiet", "--out", tmp_path / "t",
              "--cold-start", "0.2", "--cold-path", "content", "--dim", "8")
    assert res.exit_code == 0, res.output
    assert load_run(tmp_path / "t")[2].cold_modalities == ("image", "text")
    # an older record (no record_version; the path then fused every modality, written
    # here as a run trained with both named, its record then made as an older one wrote it)
    res = run("train", "vbpr", "--data", data_dir, "--epochs", "1", "--quiet", "--out", tmp_path / "old",
              "--cold-start", "0.2", "--cold-path", "content", "--modalities", "image", "--cold-modalities",
              "image,text", "--dim", "8")
    assert res.exit_code == 0, res.output
    _, ds, trained = load_run(tmp_path / "old")
    record = json.loads((tmp_path / "old" / "record.json").read_text())
    assert record.pop("record_version") == 2
    for params in (record["model_params"], record["checkpoint"]["model_params"]):
        params["cold_modalities"] = None
    (tmp_path / "old" / "record.json").write_text(json.dumps(record))
    _, _, rebuilt = load_run(tmp_path / "old")
    assert rebuilt.cold_modalities == ("image", "text")
    # a version this graphrec does not know, or no integer: one line, not a traceback
    for version, message in ((3, "record_version 3 is from a newer graphrec (this one reads up to 2)"),
                             (None, "record_version None is not an integer >= 1")):
        (tmp_path / "old" / "record.json").write_text(json.dumps(dict(record, record_version=version)))
        res = run("evaluate", tmp_path / "old")
        assert message in one_error_line(res)
    users = torch.arange(ds.n_users)
    with torch.no_grad():
        assert torch.equal(rebuilt.scorer()(users), trained.scorer()(users))


def test_lr_decay_every_without_lr_decay_is_noted(data_dir, tmp_path):
    res = run("train", "lightgcn", "--data", data_dir, "--epochs", "1", "--quiet", "--out", tmp_path / "r",
              "--lr-decay-every", "7")
    assert res.exit_code == 0, res.output
    assert "note: --lr-decay-every 7 has no effect without --lr-decay (the learning rate is constant)" in res.output
    res = run("train", "lightgcn", "--data", data_dir, "--epochs", "1", "--quiet", "--out", tmp_path / "s",
              "--lr-decay-every", "7", "--lr-decay", "0.5")
    assert res.exit_code == 0 and "note:" not in res.output, res.output
    # smore decays by default (its reference's 0.96 every 50 epochs): --lr-decay-every acts
    res = run("train", "smore", "--data", data_dir, "--epochs", "1", "--quiet", "--out", tmp_path / "t",
              "--lr-decay-every", "7")
    assert "--lr-decay-every" not in res.output, res.output


def test_content_rows_emptied_by_the_normalisation_are_noted_once(data_dir, tmp_path):
    """MM-GEF's fixed E^m keeps negative cosines (eq. 2): with k near the item count some
    items' neighbours sum to <= 0 and the symmetric normalisation empties their rows.
    build-graph noted it; a training run built the same graph silently. The run prints
    one note (the graph is built once per command), naming the fixes; projected mode,
    which clips negative cosines, has nothing to note."""
    from graphrec.graphs import GraphSpec, build_item_graph
    from graphrec.data import Dataset

    emptied = build_item_graph(Dataset.load(data_dir), GraphSpec(kind="knn", k=89, normalization="sym")).emptied_rows
    assert emptied > 0
    common = ["--data", data_dir, "--k", "89", "--dim", "4", "--epochs", "1", "--device", "cpu", "--quiet"]
    res = run("train", "mmgef", *common, "--out", tmp_path / "fixed")
    assert res.exit_code == 0, res.output
    notes = [line for line in res.output.splitlines() if line.startswith("note:")]
    assert notes == [f"note: content graph: {emptied} item(s) have kNN neighbours whose cosines sum to <= 0: the "
                     "symmetric normalisation leaves their rows of the kNN graph empty (no propagation over it for "
                     "them): lower --k, or --feature-mode projected (clips negative cosines to 0)"], res.output
    res = run("train", "mmgef", *common, "--feature-mode", "projected", "--out", tmp_path / "projected")
    assert res.exit_code == 0 and "note:" not in res.output, res.output
    # the same graph stored unnormalised and given with --graph: noted with the stored graph's fix
    assert run("build-graph", "--data", data_dir, "--kind", "knn", "--k", "89", "--out", tmp_path / "g",
               "--quiet").exit_code == 0
    res = run("train", "mmgef", *common[:2], *common[4:], "--graph", tmp_path / "g" / "knn", "--out", tmp_path / "stored")
    assert res.exit_code == 0, res.output
    assert [line for line in res.output.splitlines() if line.startswith("note:")] == [
        f"note: graph {tmp_path / 'g' / 'knn'}: {emptied} item(s) have kNN neighbours whose cosines sum to <= 0: the "
        "symmetric normalisation leaves their rows of the kNN graph empty (no propagation over it for them): "
        "rebuild it with a lower --k, or --weighting binary"], res.output


def test_a_builder_note_is_a_warning_in_python(data_dir):
    from graphrec.data import Dataset
    from graphrec.errors import GraphrecNote
    from graphrec.train.builders.mmgef import build_mmgef

    ds = Dataset.load(data_dir)
    with pytest.warns(GraphrecNote, match="content graph: [0-9]+ item\\(s\\) have kNN neighbours"):
        build_mmgef(ds, k=89, embedding_dim=4)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphrecNote)
        build_mmgef(ds, k=10, embedding_dim=4)


@pytest.mark.parametrize("model, options, fix", [
    ("lattice", {"k": 89}, "lower --k"),
    ("mgcn", {"k": 89, "include_self": False}, "lower --k, or --weighting binary"),
    ("smore", {"image_knn_k": 89, "text_knn_k": 89, "include_self": False}, "lower --{m}-knn-k, or --weighting binary"),
])
def test_every_model_normalising_a_cosine_graph_notes_emptied_rows(data_dir, model, options, fix):
    """LATTICE, MGCN and SMORE (cosine weights) normalise per-modality cosine kNN graphs
    symmetrically too: each modality's emptied rows are noted with its own count."""
    import importlib
    import warnings

    from graphrec.data import Dataset
    from graphrec.errors import GraphrecNote
    from graphrec.graphs import GraphSpec, build_item_graph

    ds = Dataset.load(data_dir)
    build = getattr(importlib.import_module(f"graphrec.train.builders.{model}"), f"build_{model}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build(ds, **options)
    notes = [str(w.message) for w in caught if issubclass(w.category, GraphrecNote)]
    expected = []
    for m in ("image", "text"):
        n = build_item_graph(ds, GraphSpec(kind="knn", k=89, modalities=(m,), normalization="sym")).emptied_rows
        if n:
            expected.append((f"{m} graph: {n} item(s) have kNN neighbours", fix.format(m=m)))
    assert expected and len(notes) == len(expected)
    for note, (start, end) in zip(notes, expected):
        assert note.startswith(start) and note.endswith(end), note


@pytest.mark.parametrize("model, builds, options", [
    ("mgcn", [["--kind", "knn", "--modalities", "text", "--include-self"]], []),
    ("smore", [["--kind", "knn", "--modalities", "text", "--include-self", "--k", "8"]], ["--text-knn-k", "8"]),
    ("dragon", [["--kind", "knn", "--modalities", "text", "--weighting", "binary", "--include-self"],
                ["--kind", "user-cooccur", "--cooccur-top-k", "5"]], ["--user-k", "5"]),
])
def test_mgcn_smore_dragon_train_on_stored_graphs_as_on_built_ones(data_dir, tmp_path, model, builds, options):
    """`graphrec train mgcn|smore|dragon --graph DIR` over graphs stored by `graphrec
    build-graph` (DRAGON's user graph too) trains as the run that builds them: the same
    losses and metrics; the run records the graphs' paths and checksums."""
    graphs = []
    for i, build in enumerate(builds):
        res = run("build-graph", "--data", data_dir, *build, "--out", tmp_path / f"g{i}", "--quiet", "--device", "cpu")
        assert res.exit_code == 0, res.output
        graphs.append(tmp_path / f"g{i}" / build[1])
    train = ("train", model, "--data", data_dir, "--dim", "4", "--epochs", "1", "--device", "cpu", "--quiet", *options)
    a = run(*train, *(x for g in graphs for x in ("--graph", g)), "--out", tmp_path / "stored")
    assert a.exit_code == 0, a.output
    b = run(*train, "--out", tmp_path / "built")
    assert b.exit_code == 0, b.output
    ra = json.loads((tmp_path / "stored" / "record.json").read_text())
    rb = json.loads((tmp_path / "built" / "record.json").read_text())
    assert ra["test"] == rb["test"] and ra["best_valid"] == rb["best_valid"]
    assert [(h["loss"], h["valid"]) for h in ra["history"]] == [(h["loss"], h["valid"]) for h in rb["history"]]
    assert ra["model_params"]["graphs"] == [str(g.resolve()) for g in graphs]
    assert [g["path"] for g in ra["graphs"]] == ra["model_params"]["graphs"] and "graphs" not in rb
    # another k than the stored graph's is refused in one line naming the graph
    res = run(*train, "--graph", graphs[0], "--k" if model != "smore" else "--text-knn-k", "7", "--out", tmp_path / "k")
    assert res.exit_code == 1 and str(graphs[0]) in res.output and len(res.output.strip().splitlines()) == 1
