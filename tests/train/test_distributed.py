"""Training, evaluation and graph building in a torch.distributed group (gloo, CPU).

A group of one rank runs the distributed code path (DDP, sharded evaluation, gathered
graph blocks) and must give the numbers of no group bit for bit; two ranks are real
processes started the way ``--nproc`` / torchrun start them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.distributed as dist

from graphrec import distributed
from graphrec.data.formats import read_mmrec
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.data.splits import cold_start
from graphrec.graphs.cooccur import _my_blocks, block_bounds, cooccurrence_graph, user_cooccurrence_graph
from graphrec.graphs.knn import knn_graph
from graphrec.train import TrainConfig
from graphrec.train.builders import build_model, model_params
from graphrec.train.fit import fit, seed_everything

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def group_of_one(monkeypatch):
    """This process as the only rank of a gloo group (left afterwards), on a store it hosts."""
    store = distributed.host_store()
    for key, value in dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(store.port), RANK="0", WORLD_SIZE="1",
                           LOCAL_RANK="0", **{distributed.HOSTED_STORE: "1"}).items():
        monkeypatch.setenv(key, value)

    def join():
        shard = distributed.init_from_env("cpu")
        assert shard == distributed.Shard(0, 1, 0)
        return shard

    yield join
    distributed.leave()


def _fit(ds, name, overrides, config):
    seed_everything(config.seed)
    model = build_model(name, ds, model_params(name, overrides))
    result = fit(model, ds, config)
    return result, {k: v.clone() for k, v in model.state_dict().items()}


def _same_fit(a, b):
    (ra, sa), (rb, sb) = a, b
    assert [h["loss"] for h in ra.history] == [h["loss"] for h in rb.history]
    assert [h.get("valid") for h in ra.history] == [h.get("valid") for h in rb.history]
    assert ra.best_epoch == rb.best_epoch and ra.best_valid == rb.best_valid
    assert ra.test == rb.test
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_a_group_of_one_rank_is_bit_identical_on_a_real_set(shared_data, group_of_one):
    ds = read_mmrec(shared_data / "lfm2k")
    config = TrainConfig(epochs=3, lr=5e-3, batch_size=2048, ks=(20,), eval_batch_size=300, progress=False, seed=3)
    alone = _fit(ds, "lightgcn", {"embedding_dim": 16, "num_layers": 2}, config)
    group_of_one()
    together = _fit(ds, "lightgcn", {"embedding_dim": 16, "num_layers": 2}, config)
    assert distributed.current() is not None
    _same_fit(alone, together)


def test_a_group_of_one_rank_with_cold_start_and_a_part_that_trains_every_other_step(group_of_one):
    """The cold-item path trains on every second batch: its parameters are unused on the
    other steps, where they keep no gradient (Adam skips them), as in one process."""
    ds = cold_start(synthetic_catalogue(n_users=120, n_items=80, n_clusters=3, seed=1), 0.2, seed=0)
    config = TrainConfig(epochs=3, lr=1e-2, batch_size=256, ks=(10, 20), eval_batch_size=50, progress=False, seed=0)
    overrides = {"embedding_dim": 8, "cold_path": "content", "cold_k": 5}
    alone = _fit(ds, "lightgcn", overrides, config)
    group_of_one()
    _same_fit(alone, _fit(ds, "lightgcn", overrides, config))
    assert set(alone[0].test) >= {"all", "cold"}


@pytest.mark.parametrize("name", ["mf", "mmgef", "lattice", "freedom", "bm3", "vbpr", "mgcn", "smore"])
def test_every_registered_model_trains_bit_identically_in_a_group_of_one(name, group_of_one):
    """The registry's models through the shared fit loop under DDP: per-epoch graph
    rebuilds (LATTICE, learned MM-GEF), sampled pruning (FREEDOM), dropout (BM3)."""
    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=4)
    config = TrainConfig(epochs=2, lr=1e-2, batch_size=200, ks=(10,), eval_batch_size=25, progress=False, seed=1)
    overrides = {"embedding_dim": 8, **({"structure": "learned"} if name == "mmgef" else {})}
    alone = _fit(ds, name, overrides, config)
    group_of_one()
    _same_fit(alone, _fit(ds, name, overrides, config))


@pytest.mark.parametrize("n,world", [(10, 3), (2, 4), (0, 2), (7, 1)])
def test_parts_cover_every_index_once_in_order(n, world):
    parts = [distributed.part(n, distributed.Shard(r, world)) for r in range(world)]
    assert [i for p in parts for i in range(p.start, p.stop)] == list(range(n))
    sizes = [p.stop - p.start for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_cooccurrence_blocks_are_split_contiguously_by_work():
    bound = np.array([50, 1, 1, 1, 1, 1, 1, 40, 1, 1], dtype=np.int64)
    bounds = block_bounds(bound, block_size=2)
    mine = [_my_blocks(bounds, bound, distributed.Shard(r, 3)) for r in range(3)]
    assert [b for m in mine for b in m] == bounds  # each block once, ranks in item order
    assert mine[0] == [(0, 2)]  # the heavy first block is a third of the work on its own


def test_nproc_refusals(monkeypatch):
    with pytest.raises(Exception, match="--nproc must be at least 1"):
        distributed.check_nproc(0)
    assert distributed.starts_ranks(2) and not distributed.starts_ranks(1)
    for key, value in dict(MASTER_ADDR="h", MASTER_PORT="1", RANK="0", WORLD_SIZE="2").items():
        monkeypatch.setenv(key, value)
    with pytest.raises(Exception, match="torchrun started with 2"):
        distributed.check_nproc(3)
    distributed.check_nproc(1)
    distributed.check_nproc(2)  # a rank that --nproc 2 started
    assert not distributed.starts_ranks(2)


_GRAPH_WORKER = textwrap.dedent(
    """
    import sys
    import numpy as np, scipy.sparse as sp
    from graphrec import distributed
    from graphrec.graphs.cooccur import cooccurrence_graph, user_cooccurrence_graph
    from graphrec.graphs.knn import knn_graph

    shard = distributed.init_from_env("cpu")
    data = np.load(sys.argv[1])
    x, train = data["x"], sp.csr_matrix((data["v"], (data["r"], data["c"])), shape=tuple(data["shape"]))
    graphs = {
        "knn": knn_graph(x, 4, backend="torch", shard=shard),
        "knn_sym_self": knn_graph(x, 4, backend="torch", symmetric=True, include_self=True, shard=shard),
        "knn_faiss_binary": knn_graph(x, 3, backend="faiss", weighted=False, shard=shard),
        "co": cooccurrence_graph(train, block_size=3, shard=shard),
        "co_top": cooccurrence_graph(train, top_k=2, symmetric=True, block_size=2, shard=shard),
        "users": user_cooccurrence_graph(train, top_k=3, block_size=4, shard=shard),
    }
    out = {}
    for name, g in graphs.items():
        out[name + "_indptr"], out[name + "_indices"], out[name + "_data"] = g.indptr, g.indices, g.data
    np.savez(sys.argv[2] + f"-rank{shard.rank}.npz", **out)
    distributed.leave()
    """
)


@pytest.mark.parametrize("launcher", ["hosted-store", "torchrun"])
def test_two_ranks_build_the_graphs_of_one_process_edge_for_edge(tmp_path, launcher):
    """Two ranks on the store :func:`graphrec.distributed.launch` hosts, and under torchrun
    itself (``--standalone``: its own rendezvous, the ``env://`` path of ``init_from_env``)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 6)).astype(np.float32)
    x[5] = 0.0  # an item without content
    x[9] = x[8]  # a tie
    train = sp.random(40, 37, density=0.15, random_state=1, format="coo")
    np.savez(tmp_path / "in.npz", x=x, r=train.row, c=train.col, v=np.ones(train.nnz, np.float32),
             shape=np.array(train.shape))
    script = tmp_path / "worker.py"
    script.write_text(_GRAPH_WORKER)
    args = [str(script), str(tmp_path / "in.npz"), str(tmp_path / "out")]
    if launcher == "torchrun":
        env = {k: v for k, v in os.environ.items() if k not in (*distributed.ENV, distributed.HOSTED_STORE)}
        res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                              *args], env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
    else:
        store = distributed.host_store()
        procs = [
            subprocess.Popen([sys.executable, *args],
                             env=dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(store.port), RANK=str(r),
                                      WORLD_SIZE="2", LOCAL_RANK=str(r), **{distributed.HOSTED_STORE: "1"}),
                             stderr=subprocess.PIPE, text=True)
            for r in range(2)
        ]
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
    expected = {
        "knn": knn_graph(x, 4, backend="torch"),
        "knn_sym_self": knn_graph(x, 4, backend="torch", symmetric=True, include_self=True),
        "knn_faiss_binary": knn_graph(x, 3, backend="faiss", weighted=False),
        "co": cooccurrence_graph(train.tocsr(), block_size=3),
        "co_top": cooccurrence_graph(train.tocsr(), top_k=2, symmetric=True, block_size=2),
        "users": user_cooccurrence_graph(train.tocsr(), top_k=3, block_size=4),
    }
    for rank in range(2):
        got = np.load(tmp_path / f"out-rank{rank}.npz")
        for name, g in expected.items():
            assert g.nnz > 0
            np.testing.assert_array_equal(got[name + "_indptr"], g.indptr, err_msg=name)
            np.testing.assert_array_equal(got[name + "_indices"], g.indices, err_msg=name)
            np.testing.assert_array_equal(got[name + "_data"], g.data, err_msg=name)


def test_a_quoted_message_is_one_line_without_its_source_location_and_cut_at_a_word():
    from graphrec.distributed import clip

    gloo = ("[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:3786: "
            "Connection reset by peer. This is typically caused by a remote worker hanging or bugs in the\n"
            "application. Check the logs of the remote worker before reporting an error.")
    assert clip(gloo) == gloo[gloo.index("Read"):].replace("\n", " ")
    short = clip(gloo, 80)
    assert short == "Read error [127.0.0.1]:3786: Connection reset by peer. This is typically caused ..."
    assert clip("x" * 50, 10) == "x" * 10 + " ..."


GLOO_RESET = ("[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:31148: "
              "Connection reset by peer. This is typically caused by a remote worker hanging or bugs in the "
              "application. Check the logs of the remote worker before reporting an error. GLHF! \U0001f3d6\ufe0f")
NAN = "training loss became nan at epoch 1: lower --lr"


def _lines(*ends):
    return distributed._failure_lines([distributed.RankEnd(*end) for end in ends])


def test_an_error_raised_on_every_rank_is_rank_0s_line_alone():
    # rank 0 printed its own line and told it; rank 1 failed with the same text: one line, as --nproc 1
    assert _lines((1, False, (NAN, False)), (1, False, (NAN, False), NAN)) == []
    # also when rank 1 told nothing (its log's line is compared, as the launcher clips it)
    assert _lines((1, False, (NAN, False)), (1, False, None, distributed.clip(NAN))) == []
    # rank 1 lost rank 0 (which failed first): rank 0's own line says it
    lost = distributed.lost_rank_message(distributed.Shard(1, 2), RuntimeError(GLOO_RESET))
    assert _lines((1, False, (NAN, False)), (1, False, (lost, True), lost)) == []


def test_another_ranks_line_is_printed_where_it_says_something_else():
    other = _lines((1, False, (NAN, False)), (1, False, ("out of memory", False), "out of memory"))
    assert other == ["error: rank 1 of 2 failed (exit 1): out of memory; the other ranks were stopped"]
    # rank 0 stopped by the launcher after rank 1 failed: rank 1's line, as before
    alone = _lines((-9, True, None), (1, False, ("simulated failure", False), "simulated failure"))
    assert alone == ["error: rank 1 of 2 failed (exit 1): simulated failure; the other ranks were stopped"]


def test_a_rank_killed_by_a_signal_is_named_without_rank_0s_lost_rank_line():
    lost = distributed.lost_rank_message(distributed.Shard(0, 2), RuntimeError(GLOO_RESET))
    lines = _lines((1, False, (lost, True)), (-9, False, None, ""))
    assert lines == ["error: rank 1 of 2 was killed by signal 9 (SIGKILL: out of memory, or kill -9?); "
                     "the other ranks were stopped"]
    # rank 0 killed: rank 1's lost-rank line adds nothing to the launcher's
    rank_1_lost = distributed.lost_rank_message(distributed.Shard(1, 2), RuntimeError(GLOO_RESET))
    lines = _lines((-9, False, None), (1, False, (rank_1_lost, True), rank_1_lost))
    assert lines == ["error: rank 0 of 2 was killed by signal 9 (SIGKILL: out of memory, or kill -9?); "
                     "the other ranks were stopped"]


def test_rank_0s_lost_rank_line_is_printed_when_no_rank_is_named_otherwise():
    lost = distributed.lost_rank_message(distributed.Shard(0, 2), RuntimeError(GLOO_RESET))
    assert _lines((1, False, (lost, True)), (0, True, None)) == [f"error: {lost}"]
    assert _lines((-6, False, (lost, True)), (0, True, None)) == [f"error: {lost}"]  # aborted while leaving


def test_a_lost_rank_line_says_the_transports_first_sentence_and_where_the_cause_is():
    line = distributed.lost_rank_message(distributed.Shard(0, 2), RuntimeError(GLOO_RESET))
    assert line.startswith("rank 0 lost another rank of the 2: Read error [127.0.0.1]:31148: Connection reset by peer;")
    assert "GLHF" not in line and "pair.cc" not in line and "\n" not in line
    assert "the rank that stopped first has the cause" in line


def test_a_rank_tells_the_launchers_store_its_error_line(monkeypatch):
    store = distributed.host_store()
    for key, value in dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(store.port), RANK="1", WORLD_SIZE="2",
                           **{distributed.HOSTED_STORE: "1"}).items():
        monkeypatch.setenv(key, value)
    assert distributed._reported_error(store, 1) is None
    assert distributed.report_error(NAN)
    assert distributed._reported_error(store, 1) == (NAN, False)
    monkeypatch.setenv("RANK", "0")
    assert distributed.report_error("rank 0 lost another rank of the 2: x", lost=True)
    assert distributed._reported_error(store, 0) == ("rank 0 lost another rank of the 2: x", True)
    monkeypatch.delenv(distributed.HOSTED_STORE)  # torchrun: no graphrec launcher to tell
    assert not distributed.report_error(NAN)


@pytest.mark.parametrize("rank,told,printed", [("0", True, False), ("0", False, True), ("1", True, True)])
def test_rank_0_leaves_its_lost_rank_line_to_the_launcher_that_has_it(monkeypatch, capsys, rank, told, printed):
    import typer

    from graphrec.cli._common import user_errors

    monkeypatch.setenv(distributed.HOSTED_STORE, "1")
    monkeypatch.setenv("RANK", rank)
    monkeypatch.delenv("GRAPHREC_DEBUG", raising=False)
    calls = []
    monkeypatch.setattr(distributed, "report_error", lambda message, lost=False: calls.append((message, lost)) or told)

    @user_errors
    def lose():
        raise distributed.LostRank("rank 0 lost another rank of the 2: reset")

    with pytest.raises(typer.Exit) as e:
        lose()
    assert e.value.exit_code == 1
    assert calls == [("rank 0 lost another rank of the 2: reset", True)]
    err = capsys.readouterr().err
    assert (err == "error: rank 0 lost another rank of the 2: reset\n") if printed else err == ""
