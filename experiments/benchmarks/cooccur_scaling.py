#!/usr/bin/env python
"""Scaling of the co-interaction graph (graphrec.graphs.cooccur) from Baby to 10M interactions.

For Amazon Baby (LATTICE split, training interactions) and synthetic interaction sets
with power-law item popularity (p_i ~ rank^-alpha, so a few items are very popular) and
Pareto-distributed user activity, this times ``cooccurrence_graph`` with

* ``all pairs``: no pruning (every co-interacting pair is stored);
* ``top-k``: the ``--top-k`` largest counts per row;
* ``top-k sym``: the same, symmetrised (union);
* ``min_count``: pairs with at least ``--min-count`` co-users;

and, as the baseline measured in the same run, plain scipy ``R.T @ R`` in one product
with the diagonal dropped (what an unblocked implementation does). For every run it
prints seconds (best of ``--repeats``), stored edges, the peak memory allocated during
the call (tracemalloc, measured in one extra untimed run: it covers every numpy array,
including scipy's product outputs, the input excluded), and the ratios to the
baseline. The products column is sum_u |items(u)|^2, the work of R^T R; the
dense column is what an n_items x n_items float32 matrix would take.

Usage (from the repository root)::

    PYTHONPATH=. python experiments/benchmarks/cooccur_scaling.py \\
        --out experiments/benchmarks/results/cooccur_scaling.md
    PYTHONPATH=. python experiments/benchmarks/cooccur_scaling.py --sizes 100000 --repeats 1   # quick

Synthetic sizes: n interactions drawn for n/10 users and n/100 items (10M -> 1M users x
100k items); duplicates are merged, so slightly fewer distinct pairs remain.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from experiments._script import check_out_file, fail, one_line_errors  # noqa: E402
from graphrec.graphs.cooccur import cooccurrence_graph, expected_products  # noqa: E402

#: where Amazon Baby is looked for when no --data-root is given (its row is then optional)
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"


# ------------------------------------------------------------------ data
def synthetic(
    n_interactions: int,
    n_users: int,
    n_items: int,
    *,
    item_alpha: float = 1.0,
    user_alpha: float = 2.0,
    max_user_weight: float = 2000.0,
    seed: int = 0,
) -> sp.csr_matrix:
    """Binary users x items CSR with power-law item popularity and user activity."""
    rng = np.random.default_rng(seed)
    p_item = np.arange(1, n_items + 1, dtype=np.float64) ** -item_alpha
    p_item = p_item[rng.permutation(n_items)] / p_item.sum()
    w_user = np.minimum(rng.pareto(user_alpha, n_users) + 1.0, max_user_weight)
    p_user = w_user / w_user.sum()
    u = rng.choice(n_users, size=n_interactions, p=p_user)
    i = rng.choice(n_items, size=n_interactions, p=p_item)
    r = sp.csr_matrix((np.ones(n_interactions, np.float32), (u, i)), shape=(n_users, n_items))
    r.sum_duplicates()
    r.data[:] = 1.0
    return r


def baby_folder(data_root: str | None) -> Path | None:
    """Amazon Baby's folder, or None to skip its row: only under the default root may it
    be absent; a ``--data-root`` named by the user must hold it (a one-line error)."""
    if data_root is None:
        path = DEFAULT_DATA_ROOT / "amazon-baby"
        return path if path.is_dir() else None
    path = Path(data_root) / "amazon-baby"
    if not path.is_dir():
        what = "does not exist" if not Path(data_root).is_dir() else "has no amazon-baby folder"
        fail(f"cooccur_scaling.py: --data-root {data_root} {what}: pass the folder that holds amazon-baby "
             f"(LATTICE's files), or leave --data-root out to skip the Baby row when {DEFAULT_DATA_ROOT} lacks it")
    return path


def baby(path: Path) -> sp.csr_matrix:
    from graphrec.data.formats import read_lattice

    with one_line_errors():
        return read_lattice(path, unseen="keep").train


# ------------------------------------------------------------------ measuring
def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    gc.collect()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def peak_mb(fn: Callable[[], Any]) -> float:
    """Peak MB of memory allocated during one call (tracemalloc: every numpy array,
    including scipy's product outputs), above what was allocated before it."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def scipy_baseline(r: sp.csr_matrix) -> sp.csr_matrix:
    """One unblocked R^T R with scipy, diagonal dropped (no pruning possible before it)."""
    b = sp.csr_matrix(r, copy=True)
    b.data = np.ones(b.nnz, dtype=np.int32)
    c = (b.T.tocsr() @ b).tocoo()
    off = c.row != c.col
    return sp.csr_matrix((c.data[off].astype(np.float32), (c.row[off], c.col[off])), shape=c.shape)


def run_case(name: str, r: sp.csr_matrix, args: argparse.Namespace, lines: list[str]) -> None:
    n_users, n_items = r.shape
    products = expected_products(r)
    dense_gb = n_items * n_items * 4 / 1e9
    configs: list[tuple[str, Callable[[], sp.csr_matrix]]] = [
        ("scipy R^T R (baseline)", lambda: scipy_baseline(r)),
        ("all pairs", lambda: cooccurrence_graph(r)),
        (f"top-k={args.top_k}", lambda: cooccurrence_graph(r, top_k=args.top_k)),
        (f"top-k={args.top_k} sym", lambda: cooccurrence_graph(r, top_k=args.top_k, symmetric=True)),
        (f"min_count={args.min_count}", lambda: cooccurrence_graph(r, min_count=args.min_count)),
    ]
    if args.skip_baseline:
        configs = configs[1:]
    head = (
        f"\n### {name}: {n_users:,} users x {n_items:,} items, {r.nnz:,} interactions, "
        f"{products / 1e6:,.1f}M products, dense n x n float32 would be {dense_gb:,.2f} GB\n"
    )
    print(head, flush=True)
    lines.append(head)
    row = "| config | seconds | edges | peak MB | time / baseline | peak / baseline |"
    sep = "|---|---:|---:|---:|---:|---:|"
    print(row)
    print(sep)
    lines += [row, sep]
    base: tuple[float, float] | None = None
    for label, fn in configs:
        best_t, edges = float("inf"), 0
        for _ in range(args.repeats):
            dt, g = timed(fn)
            edges = g.nnz
            best_t = min(best_t, dt)
            del g
        peak = peak_mb(fn)  # a separate, untimed run: tracing slows allocations down
        if base is None and label.startswith("scipy"):
            base = (best_t, peak)
        ratio_t = f"{best_t / base[0]:.2f}" if base else "-"
        ratio_m = f"{peak / base[1]:.2f}" if base and base[1] > 0 else "-"
        line = f"| {label} | {best_t:.3f} | {edges:,} | {peak:,.1f} | {ratio_t} | {ratio_m} |"
        print(line, flush=True)
        lines.append(line)


def _commit() -> str:
    from graphrec.train.record import source_state

    state = source_state()
    return state[0][:7] if state else "unknown"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000,10000000", help="synthetic interaction counts, comma-separated")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--min-count", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="runs per config (best time, largest peak)")
    p.add_argument("--item-alpha", type=float, default=1.0, help="item popularity exponent")
    p.add_argument("--data-root", default=None,
                   help="the folder holding amazon-baby (default: ../shared/data beside the repository, where "
                        "the Baby row is skipped when absent; a folder named here must hold it)")
    p.add_argument("--skip-baseline", action="store_true", help="do not run the unblocked scipy product")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the markdown report here")
    args = p.parse_args(argv)
    out = check_out_file(args.out)  # both now, not after the measurements
    baby_path = baby_folder(args.data_root)

    lines = [
        "# Co-interaction graph scaling",
        "",
        f"command: `{' '.join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:]))}`  ",
        f"commit {_commit()}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs (scipy's sparse product is single-threaded)",
    ]
    print("\n".join(lines))
    if baby_path is not None:
        run_case("amazon-baby (train)", baby(baby_path), args, lines)
    else:
        print(f"(amazon-baby not found under the default {DEFAULT_DATA_ROOT}; skipped)")
    for size in [int(float(s)) for s in args.sizes.split(",") if s.strip()]:
        t = time.perf_counter()
        r = synthetic(size, max(size // 10, 10), max(size // 100, 100), item_alpha=args.item_alpha, seed=args.seed)
        print(f"\n(generated {size:,} interactions in {time.perf_counter() - t:.1f} s)")
        deg_i = np.bincount(r.indices, minlength=r.shape[1])
        note = f"most popular item: {deg_i.max():,} users ({deg_i.max() / r.nnz:.1%} of interactions)"
        run_case(f"synthetic {size:,}", r, args, lines)
        print(note)
        lines.append("\n" + note)
        del r
        gc.collect()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n")
        print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
