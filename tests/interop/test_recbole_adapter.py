"""The RecBole adapters' contract on real data (250 lfm2k users): shapes of predict /
full_sort_predict, finite loss and gradients, the [PAD] id, graphs from the training
split only, features from .item fields or files, epochs, caches, state dicts, errors."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("recbole", reason="needs RecBole 1.2.1 (the [recbole] extra, numpy < 2; the development lock has it)")

from graphrec.data import Dataset  # noqa: E402
from graphrec.errors import ConfigError, DataError, GraphrecNote  # noqa: E402
from graphrec.graphs.build import GraphSpec, build_item_graph  # noqa: E402
from graphrec.interop.recbole import (  # noqa: E402
    ADAPTERS,
    GraphrecLATTICE,
    GraphrecLightGCN,
    GraphrecMMGEF,
    load_checkpoint,
    model_params_from_config,
    recbole_model,
    recbole_to_dataset,
    recbole_workdir,
)

PARAMS = {"embedding_dim": 16, "modalities": "text"}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rb(lfm2k_small: Dataset, tmp_path_factory: pytest.TempPathFactory, load_recbole: Any) -> Any:
    """RecBole's config, dataset and dataloaders of the 250-user subset (a RecBoleRun)."""
    return load_recbole(lfm2k_small, tmp_path_factory.mktemp("adapter"), GraphrecMMGEF, PARAMS)


def make(cls, rb: Any, **changes):
    """An adapter built like RecBole builds models: seeded, on RecBole's TRAIN dataset."""
    from recbole.utils import init_seed

    values = rb.config.final_config_dict
    saved = {k: values[k] for k in changes if k in values}
    values.update(changes)
    try:
        init_seed(0, True)
        return cls(rb.config, rb.train.dataset)
    finally:
        for k in changes:
            values.pop(k)
        values.update(saved)


def first_batch(rb: Any):
    return next(iter(rb.train))


def maps(rb: Any, ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """RecBole internal id of every graphrec user / item index."""
    d = rb.dataset
    return d.token2id("user_id", ds.user_ids), d.token2id("item_id", ds.item_ids)


def test_training_split_only_and_ids(rb: Any, lfm2k_small: Dataset) -> None:
    g = recbole_to_dataset(rb.train.dataset, rb.config)
    uid, iid = maps(rb, lfm2k_small)
    # graphrec index k is RecBole id k + 1 ([PAD] = 0 dropped), tokens kept
    assert g.n_users == rb.dataset.user_num - 1 and g.n_items == rb.dataset.item_num - 1
    np.testing.assert_array_equal(g.user_ids[uid - 1], lfm2k_small.user_ids)
    np.testing.assert_array_equal(g.item_ids[iid - 1], lfm2k_small.item_ids)
    # only the training interactions, exactly
    assert set(g.splits) == {"train"}
    want = lfm2k_small.train.toarray()
    np.testing.assert_array_equal(g.train.toarray()[np.ix_(uid - 1, iid - 1)], want)
    # .item float_seq fields become modalities, rows on the right items
    assert set(g.item_features) == {"text", "audio"}
    np.testing.assert_array_equal(g.item_features["text"][iid - 1], lfm2k_small.item_features["text"])
    np.testing.assert_array_equal(g.item_features["audio"][iid - 1], lfm2k_small.item_features["audio"])


def test_item_graphs_are_graphrecs_own_on_training_data(rb: Any, lfm2k_small: Dataset) -> None:
    model = make(GraphrecMMGEF, rb)
    _, iid = maps(rb, lfm2k_small)
    perm = iid - 1
    co = model.inner.cooccur_graph().to_dense().numpy()
    knn = model.inner.knn_adj.to_dense().numpy()
    want_co = build_item_graph(lfm2k_small, GraphSpec(kind="cooccur", normalization="sym")).graph.toarray()
    want_knn = build_item_graph(
        lfm2k_small, GraphSpec(kind="knn", k=10, modalities=("text",), normalization="sym")
    ).graph.toarray()
    np.testing.assert_allclose(co[np.ix_(perm, perm)], want_co, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(knn[np.ix_(perm, perm)], want_knn, rtol=1e-5, atol=1e-7)
    # a valid/test pair never shows up in the co-interaction graph's source matrix
    assert model.inner.lightgcn.adj._nnz() == 2 * lfm2k_small.train.nnz


@pytest.mark.parametrize("cls", [GraphrecLightGCN, GraphrecMMGEF, GraphrecLATTICE])
def test_contract(cls, rb: Any) -> None:
    model = make(cls, rb)
    n_items = rb.dataset.item_num
    batch = first_batch(rb)
    model.train()
    loss = model.calculate_loss(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)

    model.eval()
    users = torch.tensor([1, 5, 17])
    items = torch.tensor([3, 3, 9])
    inter = {"user_id": users, "item_id": items}
    with torch.no_grad():
        full = model.full_sort_predict(inter)
        pairs = model.predict(inter)
    assert full.shape == (3 * n_items,)
    assert pairs.shape == (3,)
    full = full.view(3, n_items)
    assert torch.isinf(full[:, 0]).all() and (full[:, 0] < 0).all()  # [PAD] is never recommended
    assert torch.isfinite(full[:, 1:]).all()
    torch.testing.assert_close(pairs, full[torch.arange(3), items])
    # cached for the evaluation pass; the cache follows the parameters
    with torch.no_grad():
        assert torch.equal(model.full_sort_predict(inter), full.reshape(-1))
        for p in model.parameters():
            p.add_(0.01)
    model.train()
    model.eval()
    with torch.no_grad():
        assert not torch.equal(model.full_sort_predict(inter), full.reshape(-1))


@pytest.mark.parametrize(
    "name, changes",
    [(name, {}) for name in ADAPTERS]
    + [(name, {"cold_path": "content", "cold_modalities": "text"}) for name in ("lightgcn", "mmgef")],
)
def test_scores_are_the_graphrec_models_own(name: str, changes: dict, rb: Any) -> None:
    """full_sort_predict is the graphrec model's scorer() and predict its forward(), for
    every model: the cold path's neighbour term is no inner product of embeddings()."""
    model = make(ADAPTERS[name], rb, **changes)
    inner = model.inner
    model.eval()
    n_users = rb.dataset.user_num - 1
    users = torch.arange(n_users)
    with torch.no_grad():
        want = inner.scorer()(users)
        full = model.full_sort_predict({"user_id": users + 1}).view(n_users, -1)
        torch.testing.assert_close(full[:, 1:], want)
        # (user, item) pairs over seen and unseen items, through the graphrec model's forward
        g = torch.Generator().manual_seed(0)
        u = torch.randint(n_users, (400,), generator=g)
        i = torch.randint(inner.n_items, (400,), generator=g)
        if changes:
            i[:200] = inner.unseen_items[torch.randint(inner.unseen_items.numel(), (200,), generator=g)]
        pairs = model.predict({"user_id": u + 1, "item_id": i + 1})
        torch.testing.assert_close(pairs, inner(u, i))
        torch.testing.assert_close(pairs, want[u, i])
        if changes:  # the path's scores are not the inner products of its embeddings()
            user_emb, item_emb = inner.embeddings()
            cold = inner.unseen_items
            assert cold.numel() > 0
            assert not torch.allclose((user_emb @ item_emb.t())[:, cold], want[:, cold], atol=1e-4)


def test_state_dict_round_trip_and_checkpoint(rb: Any, tmp_path: Path) -> None:
    a = make(GraphrecLATTICE, rb)
    b = make(GraphrecLATTICE, rb)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    inter = {"user_id": torch.arange(1, 9)}
    a.eval()
    b.eval()
    with torch.no_grad():
        want = a.full_sort_predict(inter)
        assert not torch.equal(b.full_sort_predict(inter), want)
        b.load_state_dict(a.state_dict())
        torch.testing.assert_close(b.full_sort_predict(inter), want)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": a.state_dict(), "other_parameter": a.other_parameter(), "config": rb.config}, path)
    c = make(GraphrecLATTICE, rb)
    c.eval()
    load_checkpoint(c, path)
    with torch.no_grad():
        torch.testing.assert_close(c.full_sort_predict(inter), want)


def test_train_starts_an_epoch_and_lattice_rebuilds(rb: Any) -> None:
    model = make(GraphrecLATTICE, rb)
    assert model.epoch == 0
    batch = first_batch(rb)
    model.train()
    model.calculate_loss(batch).backward()
    assert model.epoch == 1 and not model.inner._stale  # built at the first batch, reused after
    model.eval()
    model.train()
    assert model.epoch == 2 and model.inner._stale  # next training forward rebuilds it


def test_params_from_config() -> None:
    p = model_params_from_config("lattice", {"embedding_size": 32, "item_layers": 3, "k": "5", "reg_weight": "1e-3"})
    assert p["embedding_dim"] == 32 and p["item_layers"] == 3 and p["k"] == 5 and p["reg_weight"] == 1e-3
    assert model_params_from_config("lightgcn", {"n_layers": 3})["num_layers"] == 3  # RecBole's LightGCN's name
    # RecBole's own keys are RecBole's business; another model's key is ignored, with a note
    assert model_params_from_config("lightgcn", {"learning_rate": 0.1, "eval_args": {}})["reg_weight"] == 1e-4
    with pytest.warns(GraphrecNote, match=r"^graphrec lightgcn ignores the RecBole config key lambda_coeff: neither "):
        assert model_params_from_config("lightgcn", {"learning_rate": 0.1, "lambda_coeff": 0.5})["reg_weight"] == 1e-4
    assert model_params_from_config("lightgcn", {}) == {"embedding_dim": 64, "num_layers": 2, "reg_weight": 1e-4,
                                                         "reg_form": "squared", "cold_path": "none", "cold_k": 50, "cold_modalities": None,
                                                         "cold_objective": "regress"}
    with pytest.raises(ConfigError, match="both embedding_size=32 and embedding_dim=16"):
        model_params_from_config("lightgcn", {"embedding_size": 32, "embedding_dim": 16})
    with pytest.raises(ConfigError, match="remove the graphs key"):
        model_params_from_config("mmgef", {"graphs": ["g1"]})
    assert {"lightgcn", "mmgef", "lattice", "mf"} <= set(ADAPTERS) and "cb" not in ADAPTERS


def test_params_written_as_text_are_the_numbers_they_spell() -> None:
    """A number written as text is read as the number itself: "32.7" is refused for an int
    like 32.7 (it used to become 32), and errors name the RecBole key that was written."""
    for written in ("32", " 32 "):
        p = model_params_from_config("lightgcn", {"embedding_size": written})
        assert p["embedding_dim"] == 32 and type(p["embedding_dim"]) is int
    for key in ("embedding_size", "embedding_dim"):
        for value in ("32.7", "32.0", 32.7, 32.0):
            with pytest.raises(ConfigError, match=rf"embedding_dim={float(value)} is a float, not an int "
                                                  rf"\(RecBole config key {key}\): fix {key} in the RecBole config"):
                model_params_from_config("lightgcn", {key: value})
    with pytest.raises(ConfigError, match=r"embedding_dim='x' is not a number \(RecBole config key embedding_size\)"):
        model_params_from_config("lightgcn", {"embedding_size": "x"})
    with pytest.raises(ConfigError, match=r"num_layers=True is a bool.*\(RecBole config key n_layers\)"):
        model_params_from_config("lightgcn", {"n_layers": True})
    with pytest.raises(ConfigError, match=r"reg_weight must be >= 0.0, got -1.0 \(RecBole config key reg_weight\)"):
        model_params_from_config("lightgcn", {"reg_weight": "-1"})


def test_feature_files_equal_item_fields(rb: Any, lfm2k: Dataset, shared_data: Path, tmp_path: Path) -> None:
    # lfm2k's feature file rows follow its item tokens 0..n-1 (the MMRec convention)
    cfg = {"data_path": str(shared_data / "lfm2k"), "feature_fields": [], "feature_files": {"t": "all-MiniLM-L6-v2.npy"}}
    g = recbole_to_dataset(rb.train.dataset, cfg)
    h = recbole_to_dataset(rb.train.dataset, rb.config)
    assert list(g.item_features) == ["t"]
    np.testing.assert_array_equal(g.item_features["t"], h.item_features["text"])
    # a row order given by an ids file (here: reversed rows)
    x = np.load(shared_data / "lfm2k" / "all-MiniLM-L6-v2.npy")[::-1]
    np.save(tmp_path / "rev.npy", x)
    (tmp_path / "rev_ids.txt").write_text("\n".join(str(i) for i in range(len(x) - 1, -1, -1)) + "\n")
    cfg = {"data_path": str(tmp_path), "feature_fields": [], "feature_files": {"t": "rev.npy"}, "feature_item_ids": "rev_ids.txt"}
    np.testing.assert_array_equal(recbole_to_dataset(rb.train.dataset, cfg).item_features["t"], h.item_features["text"])
    # rows that do not cover RecBole's items are refused
    np.save(tmp_path / "short.npy", x[:10])
    with pytest.raises(DataError, match=r"short.npy: item '\d+' has no feature row as a row index"):
        recbole_to_dataset(rb.train.dataset, {"data_path": str(tmp_path), "feature_files": {"t": "short.npy"}})
    with pytest.raises(ConfigError, match="both a .item float_seq field and a feature_files entry"):
        recbole_to_dataset(rb.train.dataset, {"data_path": str(shared_data / "lfm2k"), "feature_files": {"text": "all-MiniLM-L6-v2.npy"}})


def test_errors(rb: Any) -> None:
    with pytest.raises(ConfigError, match=r"feature_fields names image.*float_seq item fields text, audio"):
        make(GraphrecMMGEF, rb, feature_fields=["image"])
    with pytest.raises(ConfigError, match="needs item features"):
        make(GraphrecLATTICE, rb, feature_fields=[])
    with pytest.raises(ConfigError, match="rescales or discretises the feature field 'text'"):
        make(GraphrecMMGEF, rb, normalize_all=True)
    with pytest.raises(ConfigError, match="got the whole RecBole dataset.*pass train_data.dataset"):
        GraphrecLightGCN(rb.config, rb.dataset)
    # LightGCN needs no features
    assert make(GraphrecLightGCN, rb, feature_fields=[]).inner.n_items == rb.dataset.item_num - 1


def test_only_the_training_split_is_accepted(lfm2k_small: Dataset, tmp_path: Path, load_recbole: Any) -> None:
    """Under RecBole's own random split (no benchmark files) too, the whole dataset, the
    valid and test splits are refused (a dataset data_preparation never split is taken as
    training interactions); the
    training split builds a graph of its interactions only."""
    from recbole.data import create_dataset

    rs = load_recbole(lfm2k_small, tmp_path, GraphrecLightGCN, {
        **PARAMS,
        "benchmark_filename": None,
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user", "mode": "full"},
    })
    n_all = rs.dataset.inter_num
    assert n_all == lfm2k_small.train.nnz + lfm2k_small.valid.nnz + lfm2k_small.test.nnz
    with pytest.raises(ConfigError, match=rf"got the whole RecBole dataset \({n_all} .*pass train_data.dataset"):
        GraphrecLightGCN(rs.config, rs.dataset)
    for split in (rs.valid, rs.test):
        with pytest.raises(ConfigError, match=r"got RecBole's (valid|test) split.*pass train_data.dataset"):
            GraphrecLightGCN(rs.config, split.dataset)
    with recbole_workdir(rs.workdir):
        unsplit = create_dataset(rs.config)
    assert GraphrecLightGCN(rs.config, unsplit).inner.adj._nnz() == 2 * n_all  # the caller's choice
    model = GraphrecLightGCN(rs.config, rs.train.dataset)
    n_train = rs.train.dataset.inter_num
    assert n_train < n_all and model.inner.adj._nnz() == 2 * n_train
    # the mark travels with the dataset, as in dataloaders saved by save_dataloaders: True
    import pickle

    GraphrecLightGCN(rs.config, pickle.loads(pickle.dumps(rs.train.dataset)))
    with pytest.raises(ConfigError, match="got the whole RecBole dataset"):
        GraphrecLightGCN(rs.config, pickle.loads(pickle.dumps(rs.dataset)))


def test_an_unmarked_valid_or_test_split_of_benchmark_files_is_refused(rb: Any) -> None:
    """graphrec.interop.recbole imported after data_preparation leaves the splits unmarked:
    the whole dataset was refused by its benchmark file sizes, but the test split was taken
    as training interactions (its graph built from the test rows). Their sizes tell them too."""
    from graphrec.interop.recbole import SPLIT_ATTR

    sizes = rb.dataset.file_size_list
    assert len(sizes) == 3 and len(set(sizes)) == 3
    for name, split in (("valid", rb.valid), ("test", rb.test)):
        unmarked = split.dataset.copy(split.dataset.inter_feat)
        if hasattr(unmarked, SPLIT_ATTR):
            delattr(unmarked, SPLIT_ATTR)
        with pytest.raises(ConfigError, match=rf"got {len(unmarked.inter_feat)} interactions, the size of the "
                                              rf"benchmark {name} file, not of the training file"):
            GraphrecLightGCN(rb.config, unmarked)
    train = rb.train.dataset.copy(rb.train.dataset.inter_feat)
    if hasattr(train, SPLIT_ATTR):
        delattr(train, SPLIT_ATTR)
    assert GraphrecLightGCN(rb.config, train).inner.adj._nnz() == 2 * sizes[0]


def test_no_negative_sampling_is_refused_when_the_model_is_built(rb: Any) -> None:
    """train_neg_sample_args: None used to fail at the first batch (KeyError 'neg_item_id')."""
    from recbole.config import Config

    with recbole_workdir(rb.workdir):
        config = Config(model=GraphrecLightGCN, dataset=rb.config["dataset"], config_dict={
            "data_path": rb.config["data_path"], "train_neg_sample_args": None, "use_gpu": False, "state": "WARNING",
        })
    assert config["train_neg_sample_args"]["distribution"] == "none"  # what RecBole makes of None
    with pytest.raises(ConfigError, match=r"train_neg_sample_args is None.*set train_neg_sample_args: \{distribution: uniform"):
        GraphrecLightGCN(config, rb.train.dataset)
    with pytest.raises(ConfigError, match=r"train_neg_sample_args is \{distribution: uniform, sample_num: 0\}"):
        make(GraphrecMMGEF, rb, train_neg_sample_args={"distribution": "uniform", "sample_num": 0, "alpha": 1.0})
    # popularity sampling and several negatives per positive are BPR triples too
    make(GraphrecLightGCN, rb, train_neg_sample_args={"distribution": "popularity", "sample_num": 2, "alpha": 1.0})


def test_runs_inside_recbole_trainer_with_lattice(rb: Any) -> None:
    from recbole.trainer import Trainer

    model = make(GraphrecLATTICE, rb)
    with recbole_workdir(rb.workdir):
        epochs, rb.config["epochs"] = rb.config["epochs"], 2
        try:
            trainer = Trainer(rb.config, model)
        finally:
            rb.config["epochs"] = epochs
        best, valid = trainer.fit(rb.train, rb.valid, saved=False, show_progress=False)
    assert model.epoch == 2  # one train() per epoch: the learned graph was rebuilt twice
    assert np.isfinite(best) and 0.0 < valid["recall@20"] <= 1.0


def test_a_model_registered_in_a_test_gets_its_adapter(rb: Any) -> None:
    """Any registered ranking model becomes a RecBole model through the registry alone."""
    from recbole.trainer import Trainer

    from graphrec.interop.recbole import recbole_model
    from graphrec.testing import ScaledMF, registered_toy_model

    with registered_toy_model("toy-recbole") as name:
        cls = recbole_model(name)
        assert cls.__name__ == "GraphrecToyMF" and name in ADAPTERS and recbole_model(name) is cls
        model = make(cls, rb, scale=3.0)  # the config key of the declared hyper-parameter
        assert isinstance(model.inner, ScaledMF) and model.inner.scale == 3.0
        assert model.inner.user_embedding.weight.shape[1] == 16  # embedding_dim of the config
        with recbole_workdir(rb.workdir):
            epochs, rb.config["epochs"] = rb.config["epochs"], 2
            try:
                trainer = Trainer(rb.config, model)
            finally:
                rb.config["epochs"] = epochs
            # saved=True (RecBole's default) pickles the model's class into the checkpoint
            best, valid = trainer.fit(rb.train, rb.valid, saved=True, show_progress=False)
            from graphrec.interop.recbole import load_checkpoint

            again = make(cls, rb, scale=3.0)
            load_checkpoint(again, trainer.saved_model_file)
        assert model.epoch == 2 and np.isfinite(best) and 0.0 < valid["recall@20"] <= 1.0
        for a, b in zip(model.state_dict().values(), again.state_dict().values()):
            assert torch.equal(a, b)
    assert name not in ADAPTERS
    with pytest.raises(ConfigError, match="no parameters for RecBole"):
        from graphrec.interop.recbole import recbole_model

        recbole_model("cb")


def test_every_adapter_class_pickles_by_name() -> None:
    """RecBole's Trainer pickles the model class into each checkpoint (saved=True): every
    adapter is a module attribute, also in a process that has not made it yet."""
    import pickle
    import subprocess
    import sys

    from graphrec.interop import recbole as module

    for name in ADAPTERS:
        cls = ADAPTERS[name]
        assert pickle.loads(pickle.dumps(cls)) is cls and getattr(module, cls.__name__) is cls
    blob = pickle.dumps(ADAPTERS["freedom"])
    code = ("import pickle, sys; cls = pickle.loads(sys.stdin.buffer.read()); "
            "print(cls.__name__, cls.graphrec_model)")
    res = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True)
    assert res.returncode == 0, res.stderr.decode()[-1500:]
    assert res.stdout.decode().split() == ["GraphrecFREEDOM", "freedom"]
    with pytest.raises(AttributeError):
        module.GraphrecNoSuchModel


def recbole_config(rb: Any, name: str, yaml_text: str | None = None, argv: tuple[str, ...] = (), **values: Any) -> Any:
    """A RecBole Config of adapter ``name`` as a user writes it: a YAML file (when given),
    a config_dict and ``--key=value`` arguments (``argv``), over the test's RecBole data."""
    import sys

    from recbole.config import Config

    files = None
    if yaml_text is not None:
        path = rb.workdir / f"{name}.yaml"
        path.write_text(yaml_text)
        files = [str(path)]
    config_dict = {"data_path": str(Path(rb.config["data_path"]).parent), "use_gpu": False, "state": "WARNING",
                   "benchmark_filename": ["train", "valid", "test"], **values}
    with recbole_workdir(rb.workdir):
        sys.argv = [sys.argv[0], *argv]  # recbole_workdir restores it
        return Config(model=recbole_model(name), dataset=rb.config["dataset"], config_file_list=files,
                      config_dict=config_dict)


#: MMRec's src/configs/model/MGCN.yaml (its grid cut to one value per key, as RecBole trains one point)
MMREC_MGCN_YAML = """embedding_size: 64
n_ui_layers: 2
n_layers: 1

learning_rate_scheduler: [0.96, 50]
lambda_coeff: 0.9
reg_weight: 1e-04

knn_k: 5

learning_rate: 0.001

cl_loss: 0.1
"""


def test_a_copied_mmrec_config_is_refused_with_graphrecs_names(rb: Any) -> None:
    """MGCN.yaml's n_layers is the item-graph layers and knn_k, cl_loss are k, cl_weight:
    the adapter read n_layers as num_layers and ignored the rest (num_layers 1, k 10,
    cl_weight 0.001, silently). Every MMRec name is now refused, saying graphrec's."""
    config = recbole_config(rb, "mgcn", MMREC_MGCN_YAML)
    want = ("n_ui_layers, n_layers, knn_k, cl_loss are MMRec's names for MGCN's num_layers, item_layers, k, cl_weight: "
            "write num_layers: 2; item_layers: 1; k: 5; cl_weight: 0.1 instead in the RecBole config "
            "(for MGCN, n_layers is not RecBole's n_layers, graphrec's num_layers)")
    with pytest.raises(ConfigError, match=f"^{re.escape(want)}$"):
        recbole_model("mgcn")(config, rb.train.dataset)
    # written as the message says, the values are the ones the YAML meant
    fixed = MMREC_MGCN_YAML.replace("n_ui_layers", "num_layers").replace("n_layers: 1", "item_layers: 1")
    fixed = fixed.replace("knn_k", "k").replace("cl_loss", "cl_weight")
    with pytest.warns(GraphrecNote, match="ignores the RecBole config keys learning_rate_scheduler, lambda_coeff: "):
        p = model_params_from_config("mgcn", recbole_config(rb, "mgcn", fixed))
    assert (p["num_layers"], p["item_layers"], p["k"], p["cl_weight"]) == (2, 1, 5, 0.1)

    def refused(name: str, values: dict) -> str:
        with pytest.raises(ConfigError) as e:
            model_params_from_config(name, values)
        return str(e.value)

    assert refused("freedom", {"knn_k": 5}) == "knn_k is MMRec's name for FREEDOM's k: write k: 5 instead in the RecBole config"
    assert refused("freedom", {"reg_weight": 1e-4}).startswith("reg_weight is MMRec's name for FREEDOM's feature_weight: "
                                                               "write feature_weight: 0.0001 instead")
    assert refused("freedom", {"mm_image_weight": 0.1}).startswith(
        "mm_image_weight is MMRec's name for FREEDOM's modality_weights: write modality_weights: "
        "{image: 0.1, text: 0.9} instead")  # the value written out, not a formula
    assert refused("dragon", {"n_mm_layers": 1, "aggr_mode": "add"}).startswith(
        "n_mm_layers, aggr_mode are MMRec's names for DRAGON's item_layers, aggregation: write item_layers: 1; "
        "aggregation: add instead")
    assert refused("smore", {"dropout_rate": 0.1}).startswith("dropout_rate is MMRec's name for SMORE's dropout: ")
    assert "n_layers is MMRec's name for LATTICE's item_layers" in refused("lattice", {"n_layers": 1})
    assert "graphrec tune mgcn --space mmrec" in refused("mgcn", {"cl_loss": [0.001, 0.01, 0.1]})  # a copied grid
    # the Python API refuses the same keys
    from graphrec.train.builders import build_model

    with pytest.raises(ConfigError, match="has no option 'knn_k'"):
        build_model("freedom", recbole_to_dataset(rb.train.dataset, rb.config), {"knn_k": 5})
    # where MMRec's n_layers is RecBole's (the user-item layers), it stays an alias
    for name in ("lightgcn", "bm3", "mmgef", "dragon"):
        assert model_params_from_config(name, {"n_layers": 3})["num_layers"] == 3
    # SMORE's image_knn_k is graphrec's own name
    assert model_params_from_config("smore", {"image_knn_k": 20})["image_knn_k"] == 20


def test_keys_neither_graphrecs_nor_recboles_get_one_note(rb: Any) -> None:
    """A typo (embeding_size) or another model's key used to be ignored without a word.
    RecBole's own keys, dataset keys included, are never reported."""
    yaml_text = ("embeding_size: 32\nload_col: {inter: [user_id, item_id], item: [item_id, text]}\n"
                 "USER_ID_FIELD: user_id\nITEM_ID_FIELD: item_id\nlearning_rate: 0.01\nepochs: 3\n"
                 "eval_args: {mode: full}\nfeature_fields: [text]\nembedding_dim: 16\nnormalize_all: false\n")
    config = recbole_config(rb, "lightgcn", yaml_text, argv=("--my_key=1", "--train_batch_size=512"), topk=[20],
                            metrics=["Recall"])
    assert config.cmd_config_dict == {"my_key": 1, "train_batch_size": 512}
    config["set_later"] = 3
    with pytest.warns(GraphrecNote) as notes:
        model = GraphrecLightGCN(config, rb.train.dataset)
    ours = [str(n.message) for n in notes if issubclass(n.category, GraphrecNote)]
    assert ours == ["graphrec lightgcn ignores the RecBole config keys embeding_size, my_key, set_later: neither "
                    "lightgcn's hyper-parameters (graphrec models lightgcn --params lists them) nor RecBole's options"]
    assert model.graphrec_params["embedding_dim"] == 16
    # nothing to say about a config of RecBole's and graphrec's keys only
    config = recbole_config(rb, "freedom", yaml_text.replace("embeding_size: 32\n", ""), modalities="text")
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphrecNote)
        model_params_from_config("freedom", config)


@pytest.mark.parametrize("name, changes, error, want", [
    ("mmgef", {"modalities": "text,audio"}, DataError,
     "GraphrecMMGEF: cannot average modalities of different dimensions (text 384, audio 128) in one early-fused "
     "vector: fuse one (modalities: text or modalities: audio) or project them to one dimension first"),
    ("freedom", {"modalities": "image"}, DataError,
     "GraphrecFREEDOM: the dataset has no image features (it has text, audio): choose modalities / modality_weights "
     "among those"),
    ("dragon", {"modalities": "image"}, DataError,
     "GraphrecDRAGON: the dataset has no image features (it has text, audio): choose modalities / modality_weights "
     "among those"),
    ("smore", {"image_knn_k": 20, "modalities": "text"}, ConfigError,
     "GraphrecSMORE: image_knn_k 20 has no effect: the modalities used are text, without image; give their k with "
     "knn_k (knn_k: text=20), or name the image features 'image' when preparing the data"),
    ("mmgef", {"structure": "learned", "use_knn_graph": False}, ConfigError,
     "GraphrecMMGEF: structure: learned learns the content graph, which use_knn_graph: false drops: drop one of them"),
    ("mgcn", {"modalities": "text,image"}, DataError,
     "GraphrecMGCN: dataset 'lfm2k_250' has no image features (it has text, audio): choose modalities among those"),
])
def test_builder_errors_name_config_keys(rb: Any, name: str, changes: dict, error: type, want: str) -> None:
    """The builders' messages named command-line flags (--modalities text, --knn-k text=20)
    and came as a raw traceback from build_model: the adapter writes them as the RecBole
    config keys, keeping the exception type."""
    with pytest.raises(error) as e:
        make(ADAPTERS[name], rb, **changes)
    assert type(e.value) is error and str(e.value) == want
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_the_knn_k_a_message_asks_for_is_accepted_as_written(rb: Any) -> None:
    """The message above says `knn_k: text=20`; written so in a YAML file (a string) it was
    refused as 'not a number', while {text: 20} and 20 were taken."""
    from graphrec.interop.recbole import model_params_from_config

    assert model_params_from_config("smore", {"knn_k": "text=20"})["knn_k"] == "text=20"
    model = make(ADAPTERS["smore"], rb, knn_k="text=20", modalities="text")
    assert model.inner is not None
    for value in ({"text": 20}, 20):
        make(ADAPTERS["smore"], rb, knn_k=value, modalities="text")
    with pytest.raises(ConfigError, match=r"knn_k 'twenty' is neither a number nor MODALITY=K pairs"):
        make(ADAPTERS["smore"], rb, knn_k="twenty", modalities="text")


def test_print_adapters_lists_them() -> None:
    # docs/recbole.md: `print(ADAPTERS)` "lists them all"; it printed <..._Adapters object at 0x...>
    shown = repr(ADAPTERS)
    assert shown.startswith("{'") and all(f"'{n}': {ADAPTERS[n].__name__}" in shown for n in ADAPTERS)


def test_config_keys_in_message() -> None:
    """Switches become true / false, a flag's value follows its key, other flags stay."""
    from graphrec.interop.recbole import _config_keys_in_message
    from graphrec.train.registry import get_model

    lattice, mmgef = get_model("lattice"), get_model("mmgef")
    assert _config_keys_in_message("pass --no-include-self or --include-self", lattice) == \
        "pass include_self: false or include_self: true"
    assert _config_keys_in_message("--cf-graph, --fixed-features, --parity reference.", lattice) == \
        "use_cf_graph: true, train_features: false, parity: reference."
    assert _config_keys_in_message("--no-attention; lower --k, or --feature-mode projected", mmgef) == \
        "attention: false; lower k, or feature_mode: projected"
    assert _config_keys_in_message("--modalities image,text or --reg 1e-5 (--cold-path none)", mmgef, ["image", "text"]) \
        == "modalities: image,text or reg_weight: 1e-5 (cold_path: none)"
    # a word that is no value of the flag, and flags of no hyper-parameter, stay as they are
    assert _config_keys_in_message("choose --modalities among those; --cold-start 0.2, --dim", mmgef, ["text"]) == \
        "choose modalities among those; --cold-start 0.2, embedding_dim"


def test_every_adapter_class_follows_the_docs_rule_and_each_listed_one_imports() -> None:
    """docs/recbole.md named three adapter classes, so `from graphrec.interop.recbole
    import GraphrecMF` failed (MF-BPR's adapter is GraphrecMFBPR): every registered model's
    class follows the rule the page states and imports by that name, and each row of the
    page's table is right. The table need not grow with every new model (adding a model
    touches its own files only): the rule, which it illustrates, is what is checked."""
    import importlib

    from graphrec.train.registry import get_model

    page = (REPO / "docs" / "recbole.md").read_text()
    section = page.split("## The adapter classes", 1)[1].split("\n## ", 1)[0]
    listed = dict(re.findall(r"^\| `([a-z0-9_-]+)` \| `(Graphrec\w+)` \|", section, flags=re.M))
    assert listed and set(listed) <= set(ADAPTERS)
    module = importlib.import_module("graphrec.interop.recbole")
    for name, cls in ADAPTERS.items():
        # the naming rule the page states
        assert cls.__name__ == "Graphrec" + "".join(ch for ch in get_model(name).title if ch.isalnum())
        assert getattr(module, cls.__name__) is cls
    for name, cls_name in listed.items():
        assert ADAPTERS[name].__name__ == cls_name
