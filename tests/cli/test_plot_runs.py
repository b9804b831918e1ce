"""`graphrec plot RUN [RUN ...] --out FILE.png`: curves of several runs in one picture
(opened and checked: size, not blank), learned weights for item-graph models, one-line
errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data.synthetic import synthetic_catalogue

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
DPI = 120  # graphrec.train.plots saves at 120 dots per inch


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A LightGCN run and an MM-GEF run whose graph weights are learned (logged per epoch)."""
    root = tmp_path_factory.mktemp("plot")
    data = root / "data"
    synthetic_catalogue(n_users=100, n_items=60, n_clusters=4, seed=1).save(data)
    common = ("--data", data, "--epochs", 4, "--batch-size", 512, "--device", "cpu", "--quiet")
    out = {}
    for name, extra in (("lightgcn", ()), ("mmgef", ("--k", 5))):
        res = run("train", name, *common, *extra, "--out", root / name)
        assert res.exit_code == 0, res.output
        out[name] = root / name
    return out


def _picture(path: Path):
    from matplotlib.image import imread

    pixels = imread(path)
    assert pixels[..., :3].std() > 0.05, "the picture is blank"
    return pixels


def test_several_runs_overlaid_with_the_learned_weights(runs, tmp_path):
    pytest.importorskip("matplotlib", reason="graphrec plot needs matplotlib (the plot extra)")
    out = tmp_path / "curves.png"
    res = run("plot", runs["lightgcn"], runs["mmgef"], "--out", out, "--label", "LightGCN", "--label", "MM-GEF")
    assert res.exit_code == 0, res.output
    assert res.output.strip() == f"curves of 2 runs written to {out}"
    pixels = _picture(out)
    # three panels (loss, validation metric, learned weights) of 5.2 x 4 inches
    assert pixels.shape[:2] == (4 * DPI, round(3 * 5.2 * DPI))


def test_runs_without_learned_weights_get_two_panels(runs, tmp_path):
    pytest.importorskip("matplotlib", reason="graphrec plot needs matplotlib (the plot extra)")
    out = tmp_path / "one.png"
    res = run("plot", runs["lightgcn"], "--out", out, "--metric", "ndcg@20")
    assert res.exit_code == 0, res.output
    assert _picture(out).shape[:2] == (4 * DPI, round(2 * 5.2 * DPI))


def test_the_learned_weights_drawn_are_the_records(runs):
    """What the third panel draws: the history's ``model`` entries of every epoch."""
    import json

    history = json.loads((runs["mmgef"] / "record.json").read_text())["history"]
    names = set(history[0]["model"])
    assert names and all(set(row["model"]) == names for row in history)
    assert all(abs(sum(row["model"].values()) - 1) < 1e-5 for row in history)  # softmax weights


def _one_line_error(res, text: str) -> None:
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], res.output


def test_user_errors_are_one_line(runs, tmp_path, monkeypatch):
    out = tmp_path / "x.png"
    _one_line_error(run("plot", runs["lightgcn"], "--out", out, "--label", "a", "--label", "b"),
                    "2 --label for 1 runs")
    _one_line_error(run("plot", tmp_path, "--out", out), "is not a graphrec run directory")
    _one_line_error(run("plot", runs["lightgcn"], "--out", out, "--metric", "recall@7"),
                    "no run has a validation recall@7")
    _one_line_error(run("plot", runs["lightgcn"], "--out", tmp_path), "is a folder, not a file")
    _one_line_error(run("plot", runs["lightgcn"], "--out", tmp_path / "x.txt"),
                    f"--out {tmp_path / 'x.txt'}: matplotlib cannot write .txt images: end the name with .png, .pdf, .svg")
    assert not (tmp_path / "x.txt").exists()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    _one_line_error(run("plot", runs["lightgcn"], "--out", out), "plots need matplotlib: pip install 'graphrec[plot]'")
    assert not out.exists()


def test_a_run_selected_on_cold_items_is_drawn_with_their_curve(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="graphrec plot needs matplotlib (the plot extra)")
    import json

    import graphrec.train.plots as plots

    data = tmp_path / "data"
    synthetic_catalogue(n_users=100, n_items=60, n_clusters=4, seed=1).save(data)
    res = run("train", "mf", "--data", data, "--epochs", 4, "--batch-size", 512, "--device", "cpu", "--quiet",
              "--cold-start", 0.2, "--cold-protocol", "hidden", "--select-on", "cold", "--out", tmp_path / "mf")
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "mf" / "record.json").read_text())
    drawn = []
    real = plots.require_matplotlib

    def spying():
        plt = real()
        subplots = plt.subplots

        class Spy:
            def __getattr__(self, name):
                return getattr(plt, name)

            def subplots(self, *a, **k):
                fig, axes = subplots(*a, **k)
                drawn.append(axes)
                return fig, axes

        return Spy()

    monkeypatch.setattr(plots, "require_matplotlib", spying)
    for items, group in ((None, "cold"), ("all", None)):
        res = run("plot", tmp_path / "mf", "--out", tmp_path / "c.png", "--overwrite",
                  *(("--items", items) if items else ()))
        assert res.exit_code == 0, res.output
        panel = drawn[-1][1]
        want = [(h["epoch"], (h["valid_groups"][group] if group else h["valid"])["recall@20"])
                for h in record["history"] if "valid" in h]
        assert panel.get_title() == "validation recall@20" + (", cold items" if group else "")
        curve = panel.lines[0]
        assert list(zip(curve.get_xdata(), curve.get_ydata())) == want
    res = run("plot", tmp_path / "mf", "--out", tmp_path / "c.png", "--items", "hot", "--overwrite")
    assert res.exit_code == 1 and "--items 'hot' is not one of all, cold, warm" in res.output


def test_a_run_without_the_items_drawn_is_named_not_silently_left_out(runs, tmp_path):
    """--items cold beside a run without a cold-start split drew only the cold run's curve
    and said nothing: a line names the run left out of the validation panel."""
    pytest.importorskip("matplotlib", reason="graphrec plot needs matplotlib (the plot extra)")
    data = tmp_path / "data"
    synthetic_catalogue(n_users=100, n_items=60, n_clusters=4, seed=1).save(data)
    assert run("train", "mf", "--data", data, "--epochs", 2, "--batch-size", 512, "--device", "cpu", "--quiet",
               "--cold-start", 0.2, "--cold-protocol", "hidden", "--out", tmp_path / "cold").exit_code == 0
    res = run("plot", tmp_path / "cold", runs["lightgcn"], "--out", tmp_path / "c.png", "--items", "cold")
    assert res.exit_code == 0, res.output
    assert ("warning: run lightgcn has no validation recall@20 of the cold items in its history: it is left out "
            "of the validation panel") in res.output
    # an existing image is replaced only with --overwrite, as every command's output
    before = (tmp_path / "c.png").read_bytes()
    res = run("plot", tmp_path / "cold", runs["lightgcn"], "--out", tmp_path / "c.png", "--items", "all")
    assert res.exit_code == 1 and "c.png already exists: choose another --out or pass --overwrite" in res.output
    assert (tmp_path / "c.png").read_bytes() == before
    res = run("plot", tmp_path / "cold", runs["lightgcn"], "--out", tmp_path / "c.png", "--items", "all", "--overwrite")
    assert res.exit_code == 0 and "warning" not in res.output


def test_a_ctr_run_is_drawn_with_its_selection_metric_auc(tmp_path, monkeypatch):
    """A CTR run selects on validation AUC: that is the default curve (the ranking
    default, recall@20, is not in a CTR history)."""
    pytest.importorskip("matplotlib", reason="graphrec plot needs matplotlib (the plot extra)")
    import graphrec.train.plots as plots
    from graphrec.models.ctr.testing import contract_ctr_data
    from graphrec.train.ctr import CTRConfig, run_ctr

    run_ctr(contract_ctr_data(), "lr", {}, CTRConfig(epochs=2, progress=False), out=tmp_path / "ctr")
    drawn = []
    real = plots.save_figure

    def save(fig, out, plt, **kw):
        drawn.append([ax.get_title() for ax in fig.axes] + [ax.get_ylabel() for ax in fig.axes])
        return real(fig, out, plt, **kw)

    monkeypatch.setattr(plots, "save_figure", save)
    res = run("plot", tmp_path / "ctr", "--out", tmp_path / "ctr.png")
    assert res.exit_code == 0, res.output
    assert drawn == [["training loss", "validation auc", "log loss (mean per batch)", "auc"]]
    _picture(tmp_path / "ctr.png")
    # a run selected on validation logloss: its curve
    run_ctr(contract_ctr_data(), "lr", {}, CTRConfig(epochs=2, progress=False, valid_metric="logloss"),
            out=tmp_path / "ctr-ll")
    res = run("plot", tmp_path / "ctr-ll", "--out", tmp_path / "ll.png")
    assert res.exit_code == 0, res.output
    assert drawn[-1] == ["training loss", "validation logloss", "log loss (mean per batch)", "logloss"]


def test_ctr_loss_axis_names_the_auxiliary_terms():
    """GMMF's and MARN's recorded loss is the log loss plus their own terms: the axis says so."""
    from graphrec.train.plots import loss_label

    ctr = {"task": "ctr"}
    assert loss_label([dict(ctr, model="lr")]) == "log loss (mean per batch)"
    assert loss_label([dict(ctr, model="gmmf", model_params={})]) == \
        "log loss (mean per batch; GMMF: + reconstruction loss)"
    assert loss_label([dict(ctr, model="gmmf", model_params={"use_autoencoder": False})]) == "log loss (mean per batch)"
    assert loss_label([dict(ctr, model="marn", model_params={"adversarial": "ddma"}), dict(ctr, model="lr")]) == \
        "log loss (mean per batch; MARN: + adversarial terms)"
    assert loss_label([dict(ctr, model="marn", model_params={"adversarial": "none"})]) == "log loss (mean per batch)"
    assert loss_label([{"task": "ranking"}]) == "BPR loss (mean per batch)"
    # BM3 has no BPR term, SMORE adds InfoNCE, the cold-item path its regression
    assert loss_label([{"task": "ranking", "model": "bm3"}]) == "training loss (mean per batch)"
    assert loss_label([{"task": "ranking", "model": "lightgcn"}, {"task": "ranking", "model": "smore"}]) == \
        "training loss (mean per batch)"
    assert loss_label([{"task": "ranking", "model": "mmgef", "model_params": {"cold_path": "content"}}]) == \
        "training loss (mean per batch)"
    assert loss_label([{"task": "ranking", "model": "mmgef", "model_params": {"cold_path": "none"}}]) == \
        "BPR loss (mean per batch)"


def test_warm_curves_of_a_papers_cold_start_run_are_refused_with_the_reason(tmp_path):
    """--items warm of a papers-protocol run said "cold and warm need a cold-start run"
    of a cold-start run: its validation holds cold items only."""
    data = tmp_path / "data"
    synthetic_catalogue(n_users=100, n_items=60, n_clusters=4, seed=1).save(data)
    assert run("train", "mf", "--data", data, "--epochs", 2, "--batch-size", 512, "--device", "cpu", "--quiet",
               "--cold-start", 0.2, "--out", tmp_path / "papers").exit_code == 0
    _one_line_error(run("plot", tmp_path / "papers", "--out", tmp_path / "c.png", "--items", "warm"),
                    "--items warm: under the papers' cold-start protocol validation holds cold items only")
    assert not (tmp_path / "c.png").exists()


def test_undefined_validation_values_are_no_points_and_an_old_logloss_best_is_the_lowest(tmp_path, monkeypatch):
    """A metric left undefined at an epoch (NaN, stored as null) is no point of the
    curve (it failed with a TypeError); a record without best_epoch marks the best value,
    the lowest for logloss."""
    pytest.importorskip("matplotlib", reason="graphrec plot needs matplotlib (the plot extra)")
    import graphrec.train.plots as plots
    from graphrec.models.ctr.testing import contract_ctr_data
    from graphrec.train.ctr import CTRConfig, run_ctr

    run_ctr(contract_ctr_data(), "lr", {}, CTRConfig(epochs=3, progress=False), out=tmp_path / "ctr")
    path = tmp_path / "ctr" / "record.json"
    record = json.loads(path.read_text())
    record["history"][0]["valid"]["gauc"] = None
    del record["best_epoch"]
    path.write_text(json.dumps(record))
    drawn = []
    real = plots.save_figure

    def save(fig, out, plt, **kw):
        drawn.append([line.get_label() for line in fig.axes[1].get_lines()])
        return real(fig, out, plt, **kw)

    monkeypatch.setattr(plots, "save_figure", save)
    for metric in ("gauc", "logloss"):
        res = run("plot", tmp_path / "ctr", "--out", tmp_path / f"{metric}.png", "--metric", metric)
        assert res.exit_code == 0, res.output
    rows = record["history"]
    lowest = min(rows, key=lambda r: r["valid"]["logloss"])
    assert f"(best epoch {lowest['epoch']}: {lowest['valid']['logloss']:.4f})" in drawn[-1][0]
    highest = max(rows[1:], key=lambda r: r["valid"]["gauc"])
    assert f"(best epoch {highest['epoch']}: {highest['valid']['gauc']:.4f})" in drawn[0][0]


@pytest.mark.parametrize("edit, message", [
    (lambda rec: rec["history"][0].pop("epoch"), "history[0]: the entry 'epoch' is missing, not a JSON number"),
    (lambda rec: rec["history"].__setitem__(0, 5), "history[0] is a JSON number, not a JSON object"),
    (lambda rec: rec["history"][1].__setitem__("loss", "x"), "history[1]: the entry 'loss' is a JSON string, not a JSON number"),
    (lambda rec: rec.__setitem__("best_epoch", "two"), "the entry 'best_epoch' is a JSON string, not a JSON number"),
])
def test_a_hand_edited_history_is_one_line_naming_the_row(runs, tmp_path, edit, message):
    """A row without 'epoch' was a KeyError traceback, a row that is a number an
    AttributeError; a string loss or best epoch passed silently."""
    import json
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(runs["lightgcn"], copy)
    record = json.loads((copy / "record.json").read_text())
    edit(record)
    (copy / "record.json").write_text(json.dumps(record))
    _one_line_error(run("plot", copy, "--out", tmp_path / "x.png"),
                    f"{copy / 'record.json'}: {message}: the record was damaged or edited; restore it or train again")
    assert not (tmp_path / "x.png").exists()
