"""The cold-item path's serving cost: scoring a batch of users with the path, and scoring
items that arrive after training, before and after computing the neighbour term from
the batch's sparse histories (graphrec/models/coldstart.py, cb.py).

    PYTHONPATH=. python experiments/benchmarks/cold_path_scoring.py --items 200000 --threads 2

Set-up (not timed): ``million_items.make_dataset(--items)`` (as many users as items, 10
training interactions each, one 64-d content modality), a cold-start split hiding
``--cold`` (0.2) of the items from training (papers' protocol), the path's fused
features and their top-``--k`` (10) cosine graph (faiss-hnsw: approximate, enough for
timings), an untrained LightGCN (dim 64, 2 layers: the same propagation as a trained
one) with the path around it. Batches hold as many users as ``graphrec recommend`` puts
in one (``MAX_BATCH_SCORES // n_items``: 167 at 200,000 items), drawn at random.

Timed in the same process, the former computation (kept here as the baseline) against
the current one, so the ratios compare like with like on a busy machine:

* **cold scorer, per batch**: former: the base model's scores, then the neighbour term
  as the dense (B x n_items) history rows times the whole graph S, of which the unseen
  columns are kept; now: the batch's sparse histories times S[:, unseen] (extracted
  when the scorer is built; that set-up is timed apart). The neighbour term alone, both
  ways, and the base scorer alone (the reference: what the path adds on top of it).
* **new items (--new, 1,000)**: former ``new_item_scores`` per batch (one propagation,
  dense (n_items x m) cosines, thresholded with ``torch.where``, dense history rows times
  them); now ``new_item_scorer`` once per call (propagation, tower, sparse neighbour lists
  from slices of catalogue rows) plus, per batch, the inner products and the sparse
  product. Projected over every user of the catalogue as ``recommend --all`` would.

Each row: the fastest of ``--batches`` (5) batches after one warm-up batch (other load
on the machine only adds time, so the minimum is the steadiest figure on a shared one),
and the peak memory the step adds above what the process held before it (CPU: resident
memory sampled every millisecond by a thread, with glibc's mmap threshold fixed at 1 MB
so that freed blocks leave the resident set; CUDA: ``max_memory_allocated``). The scores
of the two computations are compared (largest absolute difference).

Results (the command above, 1 min 21 s wall of which 37 s the graph; 2 CPU cores, 2.9%
CPU pressure during the timed part; torch 2.14.1 CPU): 200,000 items and users, 83,869
unseen (the 20% cold items plus those the synthetic data never drew), graph k 10,
batches of 167 users (166 with the new items):

    step (fastest batch)                         before             after
    neighbour term alone                          558 ms  +517 MB    17 ms  +53 MB    32x
    cold scorer (base scorer alone: 85 ms)        727 ms  +645 MB   145 ms +181 MB   5.0x
      what the path adds to the base scorer       642 ms             60 ms
      all 200,000 users (1,198 batches)           871 s             174 s
    new items (1,000), per batch                 1957 ms +2578 MB   0.6 ms   +0 MB
      set-up, once per recommend call               -              1189 ms +404 MB
      all 200,000 users (1,205 batches)          2358 s             1.9 s          1263x

**candidates (--candidates, 1,000; ``recommend --items``)**: the cold scorer's whole
catalogue with the candidates' columns kept (what ``recommend`` did) against
``scorer(candidates)`` (the base model's candidate columns and the path's unseen
candidates only). Measured 2026-12-07 with the command above on a busy machine (83% CPU
pressure: every row slower than the table above): 482 ms -> 1.5 ms per batch of 167
users (401 of the candidates unseen), all 200,000 users 578 s -> 1.8 s; the cold
scorer's set-up 1.85 s (one propagation; it ran the base model's twice before, as the
former set-up row's 2.7 s shows). Scores identical.

**candidates among the catalogue and the new items** (``--candidates`` catalogue items
and every second of the ``--new`` items; ``recommend --items --new-items``): what
``recommend`` did before 2026-12-07 (the cold scorer and ``new_item_scorer`` built apart,
two propagations, every column scored, the candidates' kept) against
``scorer(candidates, new_items=...)`` (one propagation, the candidates' columns only).
Measured 2026-12-07 with the command above under 96% CPU pressure (two reviews running
beside it): set-up 4.83 s -> 2.00 s, 384 ms -> 34 ms per batch of 166 users (11x);
on a less busy moment the same two computations timed apart gave 1.49 s -> 0.79 s and
155 ms -> 1.1 ms. Scores identical.

Scores identical (largest difference 0). What remains of the path's cost is the
(B x d) @ (d x n_unseen) product and copying those columns into the base's scores (the
base model computes the unseen columns too, then they are replaced); the new items'
set-up is mostly the propagation (+404 MB, as the base scorer's). On a busy machine (56%
pressure, medians) the same command gave 21x, 4.8x and 2065x.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Peak:
    """Peak memory a block adds above what the process held at its start (bytes)."""

    def __init__(self, device) -> None:
        self.device, self.added = device, 0

    def __enter__(self) -> "_Peak":
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
            return self
        self.start, self.peak, self.stop = _rss(), _rss(), threading.Event()

        def sample() -> None:
            while not self.stop.is_set():
                self.peak = max(self.peak, _rss())
                time.sleep(0.001)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.added = torch.cuda.max_memory_allocated() - self.start
        else:
            self.stop.set()
            self.thread.join()
            self.added = max(self.peak, _rss()) - self.start


def _former_scorer(model):
    """The cold scorer as it was: the neighbour term from dense history rows times the
    whole graph, unseen columns kept."""
    import torch

    base = model.base.scorer()
    user_emb, _ = model.base.embeddings()
    idx = model.unseen_items
    f_t = model.content_embeddings(model.features[idx]).t().contiguous()
    gamma = float(model.gamma)

    def score(users: torch.Tensor) -> torch.Tensor:
        s = base(users)
        nb = model.neighbours.user_scores(users)[:, idx]
        s[:, idx] = user_emb[users] @ f_t + gamma * nb
        return s

    return score


def _former_new_item_scores(model, users, features):
    """``new_item_scores`` as it was, called per batch."""
    import torch

    from graphrec.models.coldstart import _COSINE_TOLERANCE
    from graphrec.nn import unit_rows

    x = features.to(model.features).float()
    user_emb, _ = model.base.embeddings()
    f = model.content_embeddings(x)
    sim = unit_rows(model.features) @ unit_rows(x).t()
    sim = torch.where(sim >= model.entry_threshold.unsqueeze(1) - _COSINE_TOLERANCE, sim, torch.zeros_like(sim))
    hist = model.neighbours.history_rows(users)
    return user_emb[users] @ f.t() + float(model.gamma) * (hist @ sim)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=200_000, help="catalogue size (and users)")
    ap.add_argument("--cold", type=float, default=0.2, help="share of the items hidden from training")
    ap.add_argument("--k", type=int, default=10, help="neighbours per item in the content graph")
    ap.add_argument("--new", type=int, default=1000, help="items arriving after training")
    ap.add_argument("--candidates", type=int, default=1000, help="items ranked by recommend --items")
    ap.add_argument("--batches", type=int, default=5, help="timed batches per row (after one warm-up)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    for name, ok in (("--items", args.items >= 100), ("--cold", 0 < args.cold < 1), ("--k", args.k >= 1),
                     ("--new", args.new >= 1),
                     ("--candidates", 1 <= args.candidates <= args.items), ("--batches", args.batches >= 1), ("--threads", args.threads >= 1)):
        if not ok:
            ap.error(f"{name} {getattr(args, name[2:])} is out of range (see --help)")
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        # a fixed mmap threshold: large blocks go back to the system when freed, so the
        # resident memory follows what is alive and a step's peak does not depend on the
        # blocks an earlier step left in the heap (glibc reads it at start: run again)
        os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(1 << 20)))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(REPO))
    from experiments._script import cpu_wait_seconds

    import numpy as np
    import torch

    from experiments.benchmarks.million_items import make_dataset
    from graphrec.data import cold_start
    from graphrec.graphs import knn_graph
    from graphrec.models.cb import ContentKNN
    from graphrec.models.coldstart import ColdItemRecommender
    from graphrec.nn import to_torch_sparse
    from graphrec.train.builders import build_model
    from graphrec.train.builders._cold import cold_path_features
    from graphrec.train.evaluate import MAX_BATCH_SCORES

    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    t0 = time.perf_counter()
    ds = cold_start(make_dataset(args.items), args.cold, 0, "papers")
    x = cold_path_features(ds)
    t1 = time.perf_counter()
    graph = knn_graph(x, args.k, backend="faiss-hnsw")
    t2 = time.perf_counter()
    torch.manual_seed(0)
    base = build_model("lightgcn", ds, {"cold_path": "none"})
    seen = torch.from_numpy(np.bincount(ds.train.indices, minlength=ds.n_items) > 0)
    knn = ContentKNN(ds.n_users, ds.n_items, to_torch_sparse(ds.train), to_torch_sparse(graph))
    model = ColdItemRecommender(base, torch.from_numpy(x), seen, knn, embedding_dim=64).to(dev).eval()
    with torch.no_grad():
        model.gamma.fill_(0.5)
    n, n_unseen = ds.n_items, int(model.unseen_items.numel())
    print(f"{n} items, {ds.n_users} users, {ds.train.nnz} training interactions, {n_unseen} unseen items, "
          f"graph k {args.k} ({graph.nnz} entries); data {t1 - t0:.0f} s, graph {t2 - t1:.0f} s; "
          f"{args.threads} thread(s), {dev}", flush=True)

    rng = np.random.default_rng(1)
    b_cat = max(1, min(1024, MAX_BATCH_SCORES // n))
    b_new = max(1, min(1024, MAX_BATCH_SCORES // (n + args.new)))
    draw = lambda b: torch.from_numpy(rng.choice(ds.n_users, b, replace=False)).to(dev)  # noqa: E731
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    p0, w0 = cpu_wait_seconds(), time.perf_counter()
    rows: list[tuple[str, float, float]] = []

    def timed(name: str, fn, batches):
        fn(batches[0])  # warm-up
        times = []
        with _Peak(dev) as peak:
            for users in batches[1:]:
                sync()
                t = time.perf_counter()
                fn(users)
                sync()
                times.append(time.perf_counter() - t)
        rows.append((name, min(times), peak.added / 2**20))
        print(f"  {name:<46} {rows[-1][1] * 1000:9.1f} ms/batch   peak +{rows[-1][2]:7.0f} MB", flush=True)
        return rows[-1][1]

    def once(name: str, fn):
        with _Peak(dev) as peak:
            sync()
            t = time.perf_counter()
            out = fn()
            sync()
            took = time.perf_counter() - t
        print(f"  {name:<46} {took * 1000:9.1f} ms once      peak +{peak.added / 2**20:7.0f} MB", flush=True)
        return out, took

    with torch.no_grad():
        print(f"cold scorer: batches of {b_cat} users", flush=True)
        batches = [draw(b_cat) for _ in range(args.batches + 1)]
        base_sc, _ = once("base scorer: set-up (propagation)", model.base.scorer)
        former, _ = once("former cold scorer: set-up", lambda: _former_scorer(model))
        current, _ = once("cold scorer: set-up (+ S[:, unseen])", model.scorer)
        idx, columns = model.unseen_items, model.neighbours.similarity_columns(model.unseen_items)
        t_nb_old = timed("former neighbour term (R_B S)[:, unseen]", lambda u: model.neighbours.user_scores(u)[:, idx],
                         batches)
        t_nb_new = timed("neighbour term R_B S[:, unseen]", lambda u: model.neighbours.history_product(u, columns),
                         batches)
        t_base = timed("base scorer (reference)", base_sc, batches)
        t_old = timed("former cold scorer", former, batches)
        t_new = timed("cold scorer", current, batches)
        diff = max(float((former(u) - current(u)).abs().max()) for u in batches[:2])
        print(f"  neighbour term {t_nb_old / t_nb_new:.0f}x faster; cold scorer {t_old / t_new:.1f}x faster per batch; the path adds {(t_old - t_base) * 1000:.0f} ms "
              f"-> {(t_new - t_base) * 1000:.0f} ms to the base's {t_base * 1000:.0f} ms; "
              f"all {ds.n_users} users ({-(-ds.n_users // b_cat)} batches): {t_old * ds.n_users / b_cat:.0f} s -> "
              f"{t_new * ds.n_users / b_cat:.0f} s; largest score difference {diff:.2e}", flush=True)

        print(f"candidates ({args.candidates} items, recommend --items): batches of {b_cat} users", flush=True)
        cand = torch.from_numpy(np.sort(rng.choice(n, args.candidates, replace=False))).to(dev)
        n_cold_cand = int((~model.seen[cand]).sum())
        t_full_cand = timed("cold scorer, candidates' columns kept", lambda u: current(u).index_select(1, cand),
                            batches)
        restricted, _ = once("cold scorer(candidates): set-up", lambda: model.scorer(cand))
        t_cand = timed("cold scorer(candidates)", restricted, batches)
        diff = max(float((current(u).index_select(1, cand) - restricted(u)).abs().max()) for u in batches[:2])
        print(f"  {n_cold_cand} of the candidates unseen; {t_full_cand / t_cand:.0f}x faster per batch; all "
              f"{ds.n_users} users at {b_cat} a batch: {t_full_cand * ds.n_users / b_cat:.0f} s -> "
              f"{t_cand * ds.n_users / b_cat:.1f} s; largest score difference {diff:.2e}", flush=True)

        print(f"new items: {args.new}, batches of {b_new} users", flush=True)
        new_x = torch.from_numpy(x[rng.choice(n, args.new, replace=False)]).to(dev)
        new_x = new_x + 0.05 * torch.randn(new_x.shape, generator=torch.Generator().manual_seed(2)).to(dev)
        batches = [draw(b_new) for _ in range(args.batches + 1)]
        t_old_new = timed("former new_item_scores", lambda u: _former_new_item_scores(model, u, new_x), batches)
        scorer, t_setup = once("new_item_scorer: set-up", lambda: model.new_item_scorer(new_x))
        t_new_new = timed("new_item_scorer: per batch", scorer, batches)
        lists = model._new_item_neighbours(new_x)
        diff = max(float((_former_new_item_scores(model, u, new_x) - scorer(u)).abs().max()) for u in batches[:2])
        nb = -(-ds.n_users // b_new)
        print(f"  new items {t_old_new / t_new_new:.0f}x faster per batch ({lists.nnz} catalogue -> new item "
              f"entries); all {ds.n_users} users ({nb} batches): {t_old_new * nb:.0f} s -> "
              f"{t_setup + t_new_new * nb:.1f} s ({t_old_new * nb / (t_setup + t_new_new * nb):.0f}x); "
              f"largest score difference {diff:.2e}", flush=True)

        print(f"candidates among the catalogue and the new items ({args.candidates} + {args.new // 2}, "
              f"recommend --items --new-items): batches of {b_new} users", flush=True)
        fresh = torch.arange(0, args.new, 2, device=dev)
        cols = torch.cat([cand, n + fresh])

        def both_then_columns():  # recommend_run before: two propagations, every column scored, then kept
            full, extra = model.scorer(), model.new_item_scorer(new_x)
            return lambda u: torch.cat([full(u), extra(u)], 1).index_select(1, cols)

        former_mixed, t_setup_old = once("former: scorer() + new_item_scorer: set-up", both_then_columns)
        mixed, t_setup_mixed = once("scorer(candidates, new_items): set-up",
                                    lambda: model.scorer(cand, new_items=new_x.index_select(0, fresh)))
        t_old_mixed = timed("former: every column, candidates' kept", former_mixed, batches)
        t_mixed = timed("scorer(candidates, new_items)", mixed, batches)
        diff = max(float((former_mixed(u) - mixed(u)).abs().max()) for u in batches[:2])
        print(f"  set-up {t_setup_old:.2f} s -> {t_setup_mixed:.2f} s (one propagation, not two); "
              f"{t_old_mixed / t_mixed:.0f}x faster per batch; largest score difference {diff:.2e}", flush=True)
    p1, wall = cpu_wait_seconds(), time.perf_counter() - w0
    if p0 is not None and p1 is not None:
        print(f"CPU pressure during the timed part: {100 * (p1 - p0) / wall:.1f}% of wall time "
              "(more than a few % = disturbed)")


if __name__ == "__main__":
    main()
