"""The fit loop's hooks for hyper-parameter search: ``on_epoch`` sees every history row
after its validation and may stop training by raising; ``evaluate_test=False`` never
looks at the test split."""

from __future__ import annotations

import importlib

import pytest

from graphrec.data.synthetic import synthetic_catalogue
from graphrec.train import TrainConfig, build_model, fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")
fit_module = importlib.import_module("graphrec.train.fit")  # graphrec.train.fit is also the function


@pytest.fixture(scope="module")
def ds():
    return synthetic_catalogue(n_users=120, n_items=80, n_clusters=4, seed=3)


@pytest.fixture()
def evaluated(monkeypatch):
    """The splits every ranking evaluation inside the fit loop was asked for, in order."""
    splits: list[str] = []
    real = fit_module.evaluate_ranking

    def spy(scorer, dataset, split, **kw):
        splits.append(split)
        return real(scorer, dataset, split, **kw)

    monkeypatch.setattr(fit_module, "evaluate_ranking", spy)
    return splits


def _config(**kw):
    return TrainConfig(**{"epochs": 4, "batch_size": 256, "ks": (20,), "progress": False, "patience": 50, **kw})


def test_on_epoch_sees_every_history_row_after_its_validation(ds):
    rows = []
    model = build_model("lightgcn", ds, {"embedding_dim": 8})
    res = fit(model, ds, _config(eval_every=2, epochs=5), on_epoch=lambda row: rows.append(dict(row)))
    assert rows == res.history
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    # validated epochs (every 2nd and the last) carry their validation when the hook runs
    assert ["valid" in r for r in rows] == [False, True, False, True, True]


def test_an_exception_from_on_epoch_ends_training_before_any_test(ds, evaluated):
    class Stop(Exception):
        pass

    seen = []

    def hook(row):
        seen.append(row["epoch"])
        if row["epoch"] == 2:
            raise Stop

    model = build_model("lightgcn", ds, {"embedding_dim": 8})
    with pytest.raises(Stop):
        fit(model, ds, _config(), on_epoch=hook)
    assert seen == [1, 2]
    assert evaluated == ["valid", "valid"]


def test_without_the_test_split_fit_only_validates(ds, evaluated):
    model = build_model("lightgcn", ds, {"embedding_dim": 8})
    res = fit(model, ds, _config(), evaluate_test=False)
    assert res.test == {}
    assert evaluated == ["valid"] * 4
    assert res.best_valid["recall@20"] == max(h["valid"]["recall@20"] for h in res.history)


def test_with_the_test_split_it_is_evaluated_once_at_the_end(ds, evaluated):
    model = build_model("lightgcn", ds, {"embedding_dim": 8})
    res = fit(model, ds, _config())
    assert evaluated == ["valid"] * 4 + ["test"]
    assert set(res.test) == {"all"}


def test_a_model_without_parameters_reports_its_one_validation(ds, evaluated):
    rows = []
    model = build_model("cb", ds, {"k": 5})
    res = fit(model, ds, _config(), on_epoch=rows.append, evaluate_test=False)
    assert rows == res.history and rows[0]["epoch"] == 0 and "valid" in rows[0]
    assert evaluated == ["valid"] and res.test == {}


def test_log_gets_a_line_per_validated_epoch_with_the_history_s_numbers(ds, capsys):
    """``log`` (what `graphrec train` prints off a terminal) gets one line per validated
    epoch, with its numbers as the history has them; without it fit prints nothing."""
    lines: list[str] = []
    model = build_model("lightgcn", ds, {"embedding_dim": 8})
    res = fit(model, ds, _config(eval_every=2, epochs=5), log=lines.append)
    validated = [r for r in res.history if "valid" in r]
    assert [line.split()[1] for line in lines] == [f"{r['epoch']}/5" for r in validated] == ["2/5", "4/5", "5/5"]
    best = -1.0
    for line, row in zip(lines, validated):
        best = max(best, row["valid"]["recall@20"])
        assert line.startswith(f"epoch {row['epoch']}/5  loss {row['loss']:.4f}  "
                               f"valid recall@20 {row['valid']['recall@20']:.4f}  best {best:.4f} (epoch ")
        assert line.endswith(f"  {row['train_seconds']:.2f} s/epoch  {row['eval_seconds']:.2f} s/validation")
    assert f"best {res.best_score:.4f} (epoch {res.best_epoch})" in lines[-1]
    model = build_model("lightgcn", ds, {"embedding_dim": 8})
    fit(model, ds, _config(epochs=2))
    assert capsys.readouterr() == ("", "")
