#!/usr/bin/env python
"""GraphML export of a kNN item graph: networkx's writer against graphrec's streaming one.

A random directed kNN-like graph (``--items`` items, ``--k`` random neighbours each,
float32 weights; COO duplicates summed, so slightly fewer than items x k edges) with a
synthetic dataset's item attributes (``item_id``, ``title``, ``has_text``, ``cold``;
``--no-attributes``: none) is exported two ways, each in its own process so that its peak
resident memory (``ru_maxrss``) is its own:

* ``networkx``: what ``graphrec.graphs.export.write_graphml`` did before, an atomic
  ``nx.write_graphml(to_networkx(graph, dataset), tmp)``;
* ``stream``: ``write_graphml(graph, path, dataset)``, written from the CSR matrix in
  chunks of rows.

For each: the best wall seconds of ``--repeats`` writes, the process's peak RSS before
the write (Python, graphrec, the graph and the dataset) and after, and the file size;
then the time and the peak-RSS increase of networkx over stream. ``--check`` reads both
files back with ``nx.read_graphml`` and compares nodes, attributes and weighted edges
(slow: networkx's reader at this size).

Usage (from the repository root; nothing else running)::

    PYTHONPATH=. python experiments/benchmarks/graphml_export.py --items 100000 --k 10 [--undirected] [--check]
    PYTHONPATH=. python experiments/benchmarks/graphml_export.py --items 500000 --k 10 --methods stream

Measured on a 2-core VM shared with other jobs (Python 3.11, networkx 3.6.1 without lxml,
scipy 1.11), 100,000 items, k=10 (999,961 matrix entries), with item attributes; "RSS
before" is Python, graphrec (torch included), the graph and the dataset::

    method      seconds  RSS before   peak RSS   increase     file
    networkx      21.3s      613 MB   2,473 MB   1,861 MB   120 MB
    stream         1.9s      613 MB     641 MB      28 MB   120 MB
    networkx / stream: 11.1x the time, 65.3x the memory increase, 3.9x the peak RSS
    (CPU pressure: tasks waited 14.1% of the wall time for a CPU)

Reruns with more load on the machine (45-52% CPU wait): networkx 29.2 s and 32.7 s,
stream 2.4 s and 1.8 s, the same memory; ``--check``: both files read back equal.
``--undirected`` (each pair once, union of both directions): networkx 34.1 s / +1,850 MB,
stream 1.2 s / +28 MB (50% CPU wait). 500,000 items (4,999,960 entries), ``--methods
stream``: 6.7 s, +123 MB, a 610 MB file (the networkx export took 167 s and 9.9 GB at
this size in an earlier audit). Most of stream's increase is ``directed=None``'s symmetry
test on the whole matrix (``abs(g - g.T)`` and its kin, about 6x the matrix): with
``directed=True`` at 2M entries tracemalloc's peak is 36 MB, the matrix's 17 MB copy and
one chunk of the default 65,536 entries' text.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO))  # after PYTHONPATH: a checkout named there is the one timed

from experiments._script import best_of, check_out_folder, cpu_wait_seconds, fail, one_line_errors  # noqa: E402

METHODS = ("networkx", "stream")


def peak_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def knn_graph(n_items: int, k: int, seed: int):
    """A directed random graph with ``k`` out-entries per row (duplicates summed)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n_items), k)
    cols = rng.integers(0, n_items, n_items * k)
    return sp.csr_matrix((rng.random(n_items * k).astype(np.float32), (rows, cols)), shape=(n_items, n_items))


def dataset(n_items: int, seed: int):
    """One training interaction per item (one user each), titles that need escaping."""
    from graphrec.data import build_dataset

    rng = np.random.default_rng(seed)
    ids = np.array([f"B{i:09d}" for i in range(n_items)])
    titles = np.array([f"item {i} & <co> \"é\"" for i in range(n_items)])
    return build_dataset(np.arange(n_items), ids, np.full(n_items, "train"), item_ids=ids,
                         item_features={"text": rng.random((n_items, 4)).astype(np.float32)},
                         item_fields={"title": titles}, name="graphml-bench")


def child(args: argparse.Namespace) -> None:
    """One method's measurement, printed as one JSON line."""
    from graphrec._atomic import atomic_file
    from graphrec.graphs.export import to_networkx, write_graphml

    g = knn_graph(args.items, args.k, args.seed)
    ds = None if args.no_attributes else dataset(args.items, args.seed)
    path = Path(args.work) / f"{args.child}.graphml"
    directed = False if args.undirected else None
    before = peak_mb()

    def networkx() -> None:
        import networkx as nx

        with atomic_file(path) as tmp:
            nx.write_graphml(to_networkx(g, ds, directed=directed), tmp)

    def stream() -> None:
        write_graphml(g, path, ds, directed=directed, overwrite=True)  # each repeat replaces the last

    seconds = best_of(args.repeats, networkx if args.child == "networkx" else stream)
    print(json.dumps({"seconds": seconds, "before_mb": before, "peak_mb": peak_mb(), "edges": int(g.nnz),
                      "file_mb": path.stat().st_size / 1e6}))


def read_back(path: Path):
    import networkx as nx

    back = nx.read_graphml(path)
    return back.is_directed(), dict(back.nodes(data=True)), {(u, v): d for u, v, d in back.edges(data=True)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--k", type=int, default=10, help="out-entries per item")
    p.add_argument("--repeats", type=int, default=1, help="writes per method (the best is reported)")
    p.add_argument("--no-attributes", action="store_true", help="no dataset: nodes without attributes")
    p.add_argument("--undirected", action="store_true",
                   help="export with directed=False: each pair once, the larger weight of its two directions")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated: networkx, stream [both]")
    p.add_argument("--check", action="store_true", help="read both files back and compare them (slow)")
    p.add_argument("--work", default=None, help="folder for the two files [a temporary folder, removed]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.items < 2 or args.k < 1 or args.repeats < 1:
        fail("graphml_export.py: --items >= 2, --k >= 1 and --repeats >= 1")
    if not methods or set(methods) - set(METHODS):
        fail(f"graphml_export.py: --methods {args.methods}: choose among {', '.join(METHODS)}")
    if args.check and len(set(methods)) < 2:
        fail("graphml_export.py: --check compares the two files: run both --methods")
    if args.child:
        with one_line_errors():
            child(args)
        return
    if args.work is not None:  # checked before any work; the files go to a temporary folder inside
        check_out_folder(args.work, "--work").mkdir(parents=True, exist_ok=True)
    import graphrec

    print(f"graphrec from {Path(graphrec.__file__).parent}; {args.items:,} items, k={args.k}, "
          f"{'no attributes' if args.no_attributes else 'item attributes'}, "
          f"{'directed=False' if args.undirected else 'directed'}, best of {args.repeats}", flush=True)
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        results = {}
        wait = cpu_wait_seconds()
        t = time.perf_counter()
        for method in dict.fromkeys(methods):
            cmd = [sys.executable, __file__, "--child", method, "--work", work, "--items", str(args.items),
                   "--k", str(args.k), "--repeats", str(args.repeats), "--seed", str(args.seed)]
            cmd += ["--no-attributes"] * args.no_attributes + ["--undirected"] * args.undirected
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                fail(f"graphml_export.py: the {method} run failed: {out.stderr.strip().splitlines()[-1:]}")
            results[method] = json.loads(out.stdout.strip().splitlines()[-1])
        elapsed = time.perf_counter() - t
        print(f"matrix entries {next(iter(results.values()))['edges']:,}")
        print(f"{'method':10s} {'seconds':>8s} {'RSS before':>11s} {'peak RSS':>10s} {'increase':>10s} {'file':>8s}")
        for method, r in results.items():
            print(f"{method:10s} {r['seconds']:7.1f}s {r['before_mb']:8,.0f} MB {r['peak_mb']:7,.0f} MB "
                  f"{r['peak_mb'] - r['before_mb']:7,.0f} MB {r['file_mb']:5,.0f} MB")
        if len(results) == 2:
            old, new = results["networkx"], results["stream"]
            print(f"networkx / stream: {old['seconds'] / new['seconds']:.1f}x the time, "
                  f"{(old['peak_mb'] - old['before_mb']) / max(new['peak_mb'] - new['before_mb'], 1):.1f}x the "
                  f"memory increase, {old['peak_mb'] / new['peak_mb']:.1f}x the peak RSS")
        if wait is not None and elapsed > 0:
            print(f"CPU pressure: tasks waited {(cpu_wait_seconds() - wait) / elapsed:.1%} of the wall time "
                  "for a CPU (more than a few % means disturbed timings)")
        if args.check:
            same = read_back(Path(work) / "networkx.graphml") == read_back(Path(work) / "stream.graphml")
            print(f"read back with nx.read_graphml: {'equal' if same else 'DIFFERENT'}")
            if not same:
                raise SystemExit(1)


if __name__ == "__main__":
    main()
