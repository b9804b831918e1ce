#!/usr/bin/env python
"""The user-user co-occurrence graph (DRAGON's user graph): graphrec against MMRec's
preprocessing script, on the same training data, timed in the same run.

MMRec builds DRAGON's (and DualGNN's) user graph with
``preprocessing/dualgnn-gen-u-u-matrix.py``: a Python double loop over all user pairs
intersecting their training item sets into a DENSE n_users x n_users torch matrix, then
per user the top 200 co-occurring users with their counts (``user_graph_dict.npy``;
DRAGON keeps the first 40 of them). graphrec computes the same counts with
:func:`graphrec.graphs.user_cooccurrence_graph` (R R^T in user blocks, pruned to the
top-k per user before the next block; never dense).

This script

1. writes the dataset as an MMRec folder (``graphrec export-mmrec``) unless
   ``--mmrec-folder`` names one, and reads that folder back with graphrec's MMRec reader,
   so both sides use the identical training interactions (x_label 0);
2. runs MMRec's script unchanged (its own venv, a temporary data_path holding a copy of
   the ``.inter`` file and the dataset yaml run_mmrec.py writes), timing the process;
3. times graphrec's top-200 (what MMRec stores) and top-40 (what DRAGON uses) graphs,
   best of ``--repeats``, in this process;
4. checks that the two agree: per user the same sorted counts, and the same neighbours
   wherever the 200th count is not tied; prints both times and the ratio.

Usage (from the repository root)::

    PYTHONPATH=. python experiments/benchmarks/user_graph_vs_mmrec.py \\
        --mmrec MMREC_DEST --data ../shared/data/amazon-baby --format lattice \\
        --workdir MMREC_DATA

Both sides run on one thread (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)`` in
MMRec's process through the environment).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MMREC_SCRIPT = "dualgnn-gen-u-u-matrix.py"
MMREC_TOP = 200  # the script keeps 200 users per row
DRAGON_TOP = 40  # DRAGON's topk_sample(k=40)


def export_folder(data: Path, fmt: str, workdir: Path, name: str) -> Path:
    """An MMRec folder of ``data`` under ``workdir/name`` (written once)."""
    folder = workdir / name
    if (folder / f"{name}.inter").is_file():
        return folder
    with tempfile.TemporaryDirectory(prefix="ugraph-") as tmp:
        prepared = Path(tmp) / name
        env = dict(os.environ, PYTHONPATH=str(REPO))
        for step in (["prepare", "--format", fmt, str(data), str(prepared), "--unseen", "keep"],
                     ["export-mmrec", str(prepared), str(folder), "--name", name]):
            done = subprocess.run([sys.executable, "-m", "graphrec", *step], cwd=REPO, env=env,
                                  capture_output=True, text=True)
            if done.returncode:
                last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
                sys.exit(f"user_graph_vs_mmrec.py: graphrec {step[0]} failed on {data}: {last}")
    return folder


def check_inputs(a: argparse.Namespace) -> str | None:
    """The problem with the path arguments, as one line (None: all there). Checked before
    any work: MMRec is only run after the export and graphrec's timings."""
    need = {"preprocessing/" + MMREC_SCRIPT: "file", "venv/bin/python": "file", "src/configs/dataset": "dir"}
    for rel, kind in need.items():
        path = a.mmrec / rel
        ok = path.is_dir() if kind == "dir" else path.is_file() and (rel != "venv/bin/python" or os.access(path, os.X_OK))
        if not ok:
            return (f"--mmrec {a.mmrec}: no {rel} there: pass the DEST folder of MMRec's setup "
                    f"(an MMRec checkout holding {', '.join(need)})")
    if a.mmrec_folder is not None:
        if not (a.mmrec_folder / f"{a.mmrec_folder.name}.inter").is_file():
            return (f"--mmrec-folder {a.mmrec_folder}: no {a.mmrec_folder.name}.inter there: "
                    f"pass an MMRec dataset folder (graphrec export-mmrec writes one)")
    elif not a.data.exists():
        return f"--data {a.data}: not found: pass the dataset folder (read with graphrec prepare --format {a.format})"
    if a.repeats < 1:
        return f"--repeats {a.repeats}: pass 1 or more"
    return None


def run_mmrec(mmrec: Path, folder: Path) -> tuple[float, dict]:
    """MMRec's script on a copy of ``folder``'s interactions; (seconds, its user_graph_dict)."""
    import yaml

    # a name of its own, so that MMRec runs of the same dataset meanwhile keep their yaml
    name = f"ugraph_bench_{folder.name}"
    ds_yaml = mmrec / "src" / "configs" / "dataset" / f"{name}.yaml"
    with tempfile.TemporaryDirectory(prefix="ugraph-mmrec-") as tmp:
        data_path = Path(tmp) / "data"
        (data_path / name).mkdir(parents=True)
        shutil.copy(folder / f"{folder.name}.inter", data_path / name / f"{name}.inter")
        # the settings run_mmrec.py (../shared/peers) writes for a dataset, pointing at the copy
        ds_yaml.write_text(yaml.safe_dump({
            "USER_ID_FIELD": "userID", "ITEM_ID_FIELD": "itemID", "TIME_FIELD": "timestamp",
            "inter_file_name": f"{name}.inter", "user_graph_dict_file": "user_graph_dict.npy",
            "field_separator": "\t", "data_path": str(data_path) + "/",
        }))
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        t0 = time.perf_counter()
        try:
            done = subprocess.run([str(mmrec / "venv" / "bin" / "python"), MMREC_SCRIPT, "-d", name],
                                  cwd=mmrec / "preprocessing", env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        finally:
            ds_yaml.unlink()
        seconds = time.perf_counter() - t0
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            sys.exit(f"user_graph_vs_mmrec.py: MMRec's {MMREC_SCRIPT} failed (exit {done.returncode}): {last}")
        graph = np.load(data_path / name / "user_graph_dict.npy", allow_pickle=True).item()
    return seconds, graph


def inter_user_ids(folder: Path, user_ids: np.ndarray) -> np.ndarray:
    """The ``.inter`` file's integer userID of each graphrec user row (through the
    folder's ``u_id_mapping.csv`` when graphrec restored the original ids from it)."""
    mapping = folder / "u_id_mapping.csv"
    if mapping.is_file():
        import pandas as pd

        table = pd.read_csv(mapping, sep="\t", dtype=str)
        to_int = dict(zip(table.iloc[:, 0], table.iloc[:, 1].astype(int)))
        return np.array([to_int[str(u)] for u in user_ids.tolist()], dtype=np.int64)
    return user_ids.astype(np.int64)


def compare(graph, full, user_ids: np.ndarray, mmrec_dict: dict, top: int) -> tuple[int, int, int]:
    """(users whose sorted top-``top`` counts agree, users whose neighbour sets agree
    among those whose ``top``-th count is not tied with the next one, such users).

    ``full`` is the unpruned graph (to see ties at the cut-off); MMRec's rows and
    columns are the ``.inter`` file's integer user ids, mapped to graphrec's rows by
    ``user_ids``."""
    row_of = {int(uid): r for r, uid in enumerate(user_ids.tolist())}
    same_counts = same_sets = untied = 0
    for u in range(graph.shape[0]):
        lo, hi = graph.indptr[u], graph.indptr[u + 1]
        ours = dict(zip(graph.indices[lo:hi].tolist(), graph.data[lo:hi].tolist()))
        idx, vals = mmrec_dict.get(int(user_ids[u]), [[], []])
        theirs = {row_of[int(i)]: float(v) for i, v in zip(idx, vals) if v > 0}
        same_counts += sorted(ours.values()) == sorted(theirs.values())
        row = np.sort(full.data[full.indptr[u]:full.indptr[u + 1]])[::-1]
        if row.size <= top or row[top - 1] != row[top]:
            untied += 1
            same_sets += set(ours) == set(theirs)
    return same_counts, same_sets, untied


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mmrec", type=Path, required=True, help="DEST of ../shared/peers/setup_mmrec.sh")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "amazon-baby")
    ap.add_argument("--format", default="lattice", help="graphrec prepare --format of --data")
    ap.add_argument("--name", default="baby", help="the MMRec dataset name (folder and .inter prefix)")
    ap.add_argument("--workdir", type=Path, default=REPO / "experiments" / "benchmarks" / "results" / "mmrec-data",
                    help="where the MMRec folder is written (once)")
    ap.add_argument("--mmrec-folder", type=Path, help="use this MMRec folder instead of exporting --data")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    problem = check_inputs(a)
    if problem:
        sys.exit(f"user_graph_vs_mmrec.py: {problem}")
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from graphrec.data.formats import read_mmrec
    from graphrec.graphs.cooccur import user_cooccurrence_graph

    folder = a.mmrec_folder or export_folder(a.data, a.format, a.workdir, a.name)
    ds = read_mmrec(folder, unseen="keep")
    print(f"{folder}: {ds.n_users} users, {ds.n_items} items, {ds.train.nnz} training interactions "
          f"({platform.processor() or platform.machine()}, numpy {np.__version__})", flush=True)

    times: dict[int, float] = {}
    graphs = {}
    for top in (MMREC_TOP, DRAGON_TOP):
        best = float("inf")
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            graphs[top] = user_cooccurrence_graph(ds.train, top_k=top)
            best = min(best, time.perf_counter() - t0)
        times[top] = best
        print(f"graphrec top-{top}: {best:.3f} s (best of {a.repeats}), {graphs[top].nnz} edges", flush=True)

    print("MMRec's preprocessing script (dense n_users^2 matrix, Python loop over user pairs) ...", flush=True)
    mmrec_seconds, mmrec_dict = run_mmrec(a.mmrec, folder)
    print(f"MMRec {MMREC_SCRIPT}: {mmrec_seconds:.1f} s (process wall time)", flush=True)

    full = user_cooccurrence_graph(ds.train)
    ids = inter_user_ids(folder, ds.user_ids)
    same_counts, same_sets, untied = compare(graphs[MMREC_TOP], full, ids, mmrec_dict, MMREC_TOP)
    print(f"agreement: {same_counts}/{ds.n_users} users with the same top-{MMREC_TOP} counts; "
          f"{same_sets}/{untied} users without a tie at the cut-off have the same neighbours", flush=True)
    print(f"ratio MMRec / graphrec (top-{MMREC_TOP}): {mmrec_seconds / times[MMREC_TOP]:.0f}x; "
          f"MMRec / graphrec top-{DRAGON_TOP}: {mmrec_seconds / times[DRAGON_TOP]:.0f}x", flush=True)


if __name__ == "__main__":
    main()
