"""Renamed keyword arguments of the public functions (graphrec._checks.renamed): the old
name still works, with a FutureWarning naming the new one; giving both is a one-line
ConfigError; positional calls are unchanged. build_model called the dataset `data` (a
CTRData elsewhere), run_training called the model's hyper-parameters `model_overrides`
(`params` in build_model and run_ctr)."""

from __future__ import annotations

import inspect
import warnings

import pytest

from graphrec._checks import renamed
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError
from graphrec.train import TrainConfig, build_model, run_training

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@renamed(old="new")
def _f(a, new=None, *, other=0):
    return a, new, other


def test_renamed_maps_the_old_keyword_with_a_future_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name and positional calls warn nothing
        assert _f(1, 2) == (1, 2, 0)
        assert _f(1, new=2, other=3) == (1, 2, 3)
    with pytest.warns(FutureWarning, match=r"_f\(\): the argument old= is renamed new=") as caught:
        assert _f(1, old=2) == (1, 2, 0)
    assert caught[0].filename == __file__  # points at the caller
    assert list(inspect.signature(_f).parameters) == ["a", "new", "other"]  # help() shows the new names


@pytest.mark.parametrize("call", [lambda: _f(1, old=2, new=2), lambda: _f(1, 2, old=2)])
def test_renamed_refuses_both_names_in_one_line(call):
    with pytest.raises(ConfigError, match=r"^_f\(\) got both new= and its old name old=: pass new only$"):
        call()


def test_renamed_refuses_an_unknown_new_name_when_the_function_is_defined():
    with pytest.raises(ValueError):
        renamed(old="nope")(lambda a: a)


@pytest.fixture(scope="module")
def ds():
    return synthetic_catalogue(n_users=40, n_items=25, n_clusters=2, seed=0)


def test_build_model_takes_dataset_and_its_old_name_data(ds):
    with pytest.warns(FutureWarning, match="data= is renamed dataset="):
        old = build_model("lightgcn", data=ds, params={"embedding_dim": 8})
    new = build_model("lightgcn", dataset=ds, params={"embedding_dim": 8})
    assert type(old) is type(new) and old.n_items == new.n_items == ds.n_items
    with pytest.raises(ConfigError, match="got both dataset= and its old name data="):
        build_model("lightgcn", ds, data=ds)


def test_run_training_takes_params_and_its_old_name_model_overrides(ds):
    config = TrainConfig(epochs=1, eval_every=1, progress=False)
    with pytest.warns(FutureWarning, match="model_overrides= is renamed params="):
        record, _ = run_training(ds, "lightgcn", model_overrides={"embedding_dim": 8}, config=config)
    assert record["model_params"]["embedding_dim"] == 8
    with pytest.raises(ConfigError, match="got both params= and its old name model_overrides="):
        run_training(ds, "lightgcn", {}, config, model_overrides={})
    with pytest.raises(ConfigError, match="got both params= and its old name model_overrides="):
        run_training(ds, "lightgcn", params={}, model_overrides={}, config=config)


def test_graphrec_recommend_is_named_as_users_call_it(ds, tmp_path):
    """graphrec.recommend is recommend_run: its messages name graphrec.recommend."""
    import graphrec

    ds.save(tmp_path / "data")
    run_training(ds, "lightgcn", {"embedding_dim": 4}, TrainConfig(epochs=1, progress=False), out=tmp_path / "run",
                 data_path=tmp_path / "data")
    with pytest.warns(FutureWarning, match=r"^graphrec\.recommend\(\): the argument run= is renamed run_dir="):
        recs = graphrec.recommend(run=tmp_path / "run", k=3)
    assert len(recs) == 3 * ds.n_users
    with pytest.raises(ConfigError, match=r"^graphrec\.recommend\(\) got both run_dir= and its old name run="):
        graphrec.recommend(tmp_path / "run", run=tmp_path / "run")
