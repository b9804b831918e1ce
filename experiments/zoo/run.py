"""graphrec's implementations of the field's models next to MMRec's, on the same files.

    python experiments/zoo/run.py --mmrec MMREC_DEST --models freedom,bm3,vbpr \
        --datasets lfm2k,scientific --seeds 0,1,2 --parts default,tune --workers 2
    python experiments/zoo/run.py ... --parts time        # seconds per epoch, back to back
    python experiments/zoo/run.py ... --summary            # the tables (results/summary.md)
    python experiments/zoo/run.py --readme                 # the marked tables of README.md and docs/

Both libraries read the SAME MMRec folder (``graphrec export-mmrec``; graphrec reads it
back with ``prepare --format mmrec``), train one hyper-parameter point per run with
early stopping on validation recall@20 (patience 20), and report the test split at the
best validation epoch under the mmrec protocol (test masks training items only, as
MMRec). MMRec runs through ../shared/peers/run_mmrec.py (one point per run, never its
main.py, which selects on test). Every run is one process pinned to one core with one
thread (``taskset``); ``--workers 2`` runs two at a time on the two cores.

Parts:
- ``default``: MMRec's default point (the first value of every grid in its model yaml),
  seeds ``--seeds`` on each side.
- ``tune``: both libraries over the same grid (MMRec's yaml grid, mapped to graphrec's
  names in ``MODELS``), every point on the first seed; the point with the best
  VALIDATION recall@20 is then run on the other seeds. Test numbers never select.
  ``--subset KEY=V1,V2`` (repeatable) tunes over the listed values of a hyper-parameter
  only, the same subset on both sides, where the full grid costs too much; pass it to
  ``--summary`` too, which then names the subset in the tuned rows. The summary shows
  tuned rows once both libraries ran the whole grid (or subset) on the first seed; where
  their choices differ and both ran all seeds at a choice (``--subset`` down to that one
  point runs them), it adds both libraries at each choice: a same-point comparison that
  separates the libraries from the luck of each one's first-seed selection. A subset of
  one point selects nothing: the summary calls its rows "fixed" (both sides at that point).
- ``grid``: every point of the grid (or subset) on every seed of ``--seeds``. Once both
  libraries ran it, the summary adds rows "tuned on the N-seed mean": each library's point
  with the best MEAN validation recall@20 over the seeds (first of equals in grid order):
  validation only, a less noisy estimate of each point than one seed's. The first-seed
  "tuned" rows stay beside it; where both libraries' mean choices are their first-seed
  choices, one row says so instead of repeating them.
- ``race``: a cheaper two-stage form of ``grid`` where a grid's runs are long: every point
  on the first seed (as ``tune``), then each library's ``--race-top K`` best points on
  that seed's validation (default 5; first of equals in grid order) on the other seeds.
  ``--summary --race-top K`` adds rows "tuned on the N-seed mean of seed S's top K": each
  library's point with the best mean validation among its own K (validation only; the
  other points are out after one seed, as in successive halving). Where the whole grid
  ran every seed, the "3-seed mean" rows say more and the race rows are left out.
- ``refresh``: re-run every graphrec result already in ``results/`` for the chosen models
  and datasets (each point and seed it holds, whatever part made it), replacing it, after
  a change to graphrec's training made those runs stale (``--subset`` narrows it to those
  points). MMRec's runs are left alone. It prints, per run, whether validation and test
  came back to the digit, and a count at the end; each new result names the graphrec
  commit it ran at (``graphrec_commit``). ``--since REV`` skips the runs already made at
  REV or a later commit (a clean tree): an interrupted refresh continues where it stopped
  when given the commit it ran at.
- ``time``: seconds per training epoch, graphrec and MMRec alternating on one core at the
  default point (``--time-epochs`` epochs each, ``--time-rounds`` rounds): the ratio is
  the figure, absolute seconds drift on shared machines.

Results: ``results/<dataset>/<lib>-<model>/<point>/seed<S>.json`` (written atomically,
existing results skipped, so an interrupted run continues; committed, so a later session
continues a grid too). Each names the processor it ran on (``cpu``; results written
before the field existed have none): re-runs on another processor reproduce test
recall@20 to about four digits and validation to within a user or two, not bit for bit.

``--readme`` rewrites every ``<!-- zoo table: MODELS [datasets=A,B] [seeds=0,1,2]
[subset=KEY=V1,V2 ...] [race=K] [only=default,time] -->`` ... ``<!-- /zoo table -->``
block of README.md and of the pages under docs/ with the summary of those models (both
datasets, ``--seeds`` and every kind of row unless the marker says otherwise; ``race=K``
as ``--race-top K``; ``only=`` keeps some of default, tuned, mean, race, time), and
every ``<!-- zoo grid: MODEL DATASET rows=K1,K2 cols=K3 [subset=KEY=V ...] [seed=S] -->``
... ``<!-- /zoo grid -->`` block with seed S's (default 0) validation recall@20 at each
point, "graphrec / MMRec", a row per combination of the row keys' values and a column per
value of K3. A test checks that every marked table is what ``--readme`` makes of the
committed results.

Stopping: MMRec's ``stopping_step: 20`` stops at the 21st validation without improvement
(``cur_step > stopping_step``), graphrec's ``--patience 20`` at the 20th. The runs here keep
graphrec's 20; re-running graphrec's default-point seed-0 runs of the six issue-18/19 models
on both sets at ``--patience 21`` changed no result (``patience_check.py``; README.md,
"Protocol").
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PEERS = REPO.parent / "shared" / "peers"


@dataclass(frozen=True)
class ZooModel:
    """A model on both sides: MMRec's name, its grid, and the map to graphrec's options."""

    name: str  # graphrec name
    mmrec: str  # MMRec name
    grid: dict[str, list[Any]]  # MMRec hyper-parameter -> values (its yaml; first = default)
    to_graphrec: dict[str, str]  # MMRec hyper-parameter -> graphrec model parameter (or a --training-flag)
    fixed: dict[str, Any]  # graphrec options that make the point the same as MMRec's
    # MMRec hyper-parameter -> factor applied to its value on the graphrec side, where the two
    # libraries define a quantity on different scales (the point is named by MMRec's values)
    scale: dict[str, float] = field(default_factory=dict)
    # the zoo's name for this pairing when it is not the graphrec model's (a variant of one)
    tag: str = ""

    @property
    def label(self) -> str:
        return self.tag or self.name


MODELS = {
    "freedom": ZooModel("freedom", "FREEDOM", {"dropout": [0.8, 0.9], "reg_weight": [0.0, 1e-5, 1e-4, 1e-3]},
                        {"dropout": "dropout", "reg_weight": "feature_weight"}, {}),
    "bm3": ZooModel("bm3", "BM3", {"n_layers": [1, 2], "reg_weight": [0.1, 0.01], "dropout": [0.3, 0.5]},
                    {"n_layers": "num_layers", "reg_weight": "reg_weight", "dropout": "dropout"}, {}),
    "vbpr": ZooModel("vbpr", "VBPR", {"reg_weight": [2.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5]},
                     # MMRec's VBPR: raw features concatenated, no biases (graphrec's default too)
                     {"reg_weight": "reg_weight"}, {"feature_norm": "none", "biases": False}),
    # ... and with MMRec's projection bias b (E f_i + b), which enters its norm penalty
    "vbpr-pb": ZooModel("vbpr", "VBPR", {"reg_weight": [2.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5]},
                        {"reg_weight": "reg_weight"}, {"feature_norm": "none", "biases": False, "projection_bias": True},
                        tag="vbpr-pb"),
    # MMRec's LATTICE against graphrec's in reference parity (docs/models/lattice.md): MMRec's
    # LightGCN backbone has n_layers 1 and its learning-rate schedule is [0.96, 50]
    "lattice": ZooModel("lattice", "LATTICE",
                        {"reg_weight": [0.0, 1e-5, 1e-4, 1e-3], "learning_rate": [1e-4, 5e-4, 1e-3, 5e-3]},
                        {"reg_weight": "reg_weight", "learning_rate": "--lr"},
                        {"parity": "reference", "num_layers": 1, "--lr-decay": 0.96}),
    # MMRec trains MGCN and SMORE with learning_rate_scheduler [0.96, 50]
    "mgcn": ZooModel("mgcn", "MGCN", {"cl_loss": [0.001, 0.01, 0.1]}, {"cl_loss": "cl_weight"},
                     {"--lr-decay": 0.96}),
    "smore": ZooModel("smore", "SMORE",
                      {"n_ui_layers": [3, 4], "image_knn_k": [10, 15, 20, 40], "text_knn_k": [10, 15, 20, 40],
                       "reg_weight": [1e-5, 1e-4], "dropout_rate": [0.0, 0.1]},
                      {"n_ui_layers": "num_layers", "image_knn_k": "image_knn_k", "text_knn_k": "text_knn_k",
                       "reg_weight": "reg_weight", "dropout_rate": "dropout"}, {"--lr-decay": 0.96}),
    # DRAGON's yaml grid starts at learning_rate 0.1 and reg_weight 0.1 (its default point).
    # MMRec's DRAGON loss is -mean(log2 sigmoid(.)) = BPR / ln 2 plus reg_weight * R; under
    # Adam (invariant to the loss's scale) that is graphrec's ln-BPR plus (ln 2 reg_weight) R
    "dragon": ZooModel("dragon", "DRAGON",
                       {"aggr_mode": ["add"], "reg_weight": [0.1, 0.01, 0.001, 0.0001, 0.00001],
                        "learning_rate": [0.1, 0.01, 0.001, 0.0001, 0.00001]},
                       {"aggr_mode": "aggregation", "reg_weight": "reg_weight", "learning_rate": "--lr"}, {},
                       scale={"reg_weight": math.log(2)}),
    # MMRec's LightGCN regularises with EmbLoss (norms, not squared, over B): graphrec's --reg-form norm
    "lightgcn": ZooModel("lightgcn", "LightGCN",
                         {"n_layers": [1, 2, 3, 4], "reg_weight": [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]},
                         {"n_layers": "num_layers", "reg_weight": "reg_weight"}, {"reg_form": "norm"}),
}

#: what ``--parts`` may name (the module docstring says what each runs)
PARTS = ("default", "tune", "grid", "race", "refresh", "time")

#: graphrec dataset folders are read back from the MMRec exports, image_feat/text_feat
FEATURES = {"image": "image_feat.npy", "text": "text_feat.npy"}


def points(model: ZooModel) -> list[dict[str, Any]]:
    keys = list(model.grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(model.grid[k] for k in keys))]


def restrict(model: ZooModel, subsets: list[str]) -> ZooModel:
    """``model`` with its grid cut to the values of ``KEY=V1,V2`` strings (each a subset of
    the grid's values for KEY, which stays a key of the grid). The kept values stay in the
    grid's order, whatever order they were typed in: ties in validation go to the first
    point in grid order, and that must not depend on how a command was written."""
    grid = dict(model.grid)
    for item in subsets:
        name, sep, values = item.partition("=")
        if not sep or name not in grid:
            raise SystemExit(f"--subset {item!r}: expected KEY=V1,V2 with KEY one of {', '.join(grid)} ({model.label})")
        chosen = []
        for v in values.split(","):
            match = [g for g in grid[name] if str(g) == v or (not isinstance(g, str) and _number(v) == g)]
            if not match:
                raise SystemExit(f"--subset {item!r}: {v} is not in {model.label}'s grid for {name} {grid[name]}")
            chosen.append(match[0])
        grid[name] = [g for g in grid[name] if g in chosen]
    return dataclasses.replace(model, grid=grid)


def _number(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:
        return None


def default_point(model: ZooModel) -> dict[str, Any]:
    return {k: v[0] for k, v in model.grid.items()}


def _value(v: Any) -> str:
    """A grid value as the result folders and tables spell it (``1e-05``, ``0.1``, ``3``)."""
    return f"{v:g}" if isinstance(v, float) else str(v)


def key(point: dict[str, Any]) -> str:
    return "-".join(f"{k}{_value(v)}" for k, v in point.items())


def result_path(dataset: str, lib: str, model: str, point: dict[str, Any], seed: int) -> Path:
    return HERE / "results" / dataset / f"{lib}-{model}" / key(point) / f"seed{seed}.json"


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary name beside it, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(value, indent=1))


def graphrec_data(mmrec_folder: Path, cache: Path) -> Path:
    """The graphrec dataset of an MMRec folder (``prepare --format mmrec``), made once."""
    out = cache / mmrec_folder.name
    if not (out / "dataset.json").exists():
        flags = [f"--feature={m}={f}" for m, f in FEATURES.items() if (mmrec_folder / f).exists()]
        # items seen only in valid/test stay (MMRec keeps them: they are candidates)
        subprocess.run([sys.executable, "-m", "graphrec", "prepare", "--format", "mmrec", str(mmrec_folder),
                        str(out), "--unseen", "keep", *flags], check=True, cwd=REPO)
    return out


def graphrec_cmd(model: ZooModel, point: dict[str, Any], seed: int, data: Path, out: Path,
                 epochs: int | None = None) -> list[str]:
    from graphrec.train.registry import get_model

    entry = get_model(model.name)
    args = [sys.executable, "-m", "graphrec", "train", model.name, "--data", str(data), "--protocol", "mmrec",
            "--threads", "1", "--seed", str(seed), "--out", str(out), "--quiet", "--device", "cpu",
            # MMRec's models have no cold-item path: items kept without training interactions
            # are scored by the model alone on both sides
            "--cold-path", "none"]
    if epochs:
        args += ["--epochs", str(epochs), "--patience", str(epochs)]
    values = {model.to_graphrec[k]: v * model.scale[k] if k in model.scale else v for k, v in point.items()}
    values.update(model.fixed)
    for name, value in values.items():
        if name.startswith("--"):  # a training option of `graphrec train`, not a model parameter
            args += [name, str(value)]
            continue
        spec = entry.param(name)
        flag = spec.flags[0]
        if isinstance(value, bool):
            pos, _, neg = flag.partition("/")
            args.append(pos if value else neg)
        else:
            args += [flag, str(value)]
    return args


def mmrec_cmd(model: ZooModel, point: dict[str, Any], seed: int, folder: Path, mmrec: Path, out: Path,
              epochs: int | None = None) -> list[str]:
    args = [str(mmrec / "venv" / "bin" / "python"), str(PEERS / "run_mmrec.py"), "--mmrec", str(mmrec),
            "--data", str(folder), "--model", model.mmrec, "--threads", "1", "--seed", str(seed), "--out", str(out)]
    if epochs:
        args += ["--epochs", str(epochs), "--patience", str(epochs)]
    for k, v in point.items():
        args += ["--set", f"{k}={v}"]
    return args


def graphrec_result(run: Path, wall: float) -> dict[str, Any]:
    rec = json.loads((run / "record.json").read_text())
    secs = [h["train_seconds"] for h in rec["history"]]
    return {
        "valid": rec["best_valid"], "test": rec["test"]["all"], "best_epoch": rec["best_epoch"],
        "epochs_run": rec["timings"]["epochs"], "seconds_per_epoch": statistics.median(secs) if secs else None,
        "seconds_per_validation": rec["timings"]["eval_seconds_per_pass"], "wall_seconds": wall,
        "model_params": rec["model_params"],
        # the code the run trained with (a later change to training makes it stale: --parts refresh)
        "graphrec_commit": rec.get("environment", {}).get("graphrec_commit"),
    }


def mmrec_result(out: Path, wall: float) -> dict[str, Any]:
    r = json.loads(out.read_text())
    return {
        "valid": r["valid"], "test": r["test"], "best_epoch": r["best_epoch"], "epochs_run": r["epochs_run"],
        "seconds_per_epoch": r["seconds_per_epoch"], "seconds_per_validation": r["seconds_per_validation"],
        "wall_seconds": wall, "hyper_parameters": r["hyper_parameters"], "mmrec_commit": r["mmrec_commit"],
    }


@dataclass
class Job:
    lib: str
    model: ZooModel
    dataset: str
    point: dict[str, Any]
    seed: int

    @property
    def path(self) -> Path:
        # a variant shares its MMRec runs with the pairing it varies on the graphrec side
        name = self.model.label if self.lib == "graphrec" else self.model.name
        return result_path(self.dataset, self.lib, name, self.point, self.seed)


def run_job(job: Job, core: int, args: argparse.Namespace) -> bool | None:
    """Run one job and write its result; where it replaced one (a refresh), whether the run
    came back the same to the digit (None for a new result or a failed run)."""
    folder = args.mmrec_data / job.dataset
    with tempfile.TemporaryDirectory(prefix="zoo-") as tmp:
        out = Path(tmp) / "run"
        if job.lib == "graphrec":
            cmd = graphrec_cmd(job.model, job.point, job.seed, graphrec_data(folder, args.cache), out)
        else:
            cmd = mmrec_cmd(job.model, job.point, job.seed, folder, args.mmrec, Path(tmp) / "out.json")
        t0 = time.perf_counter()
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO))
        proc = subprocess.run(["taskset", "-c", str(core), *cmd], cwd=REPO if job.lib == "graphrec" else tmp,
                              capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(f"FAILED {job.lib} {job.model.label} {job.dataset} {key(job.point)} seed {job.seed}:\n"
                  f"{proc.stderr[-3000:]}", flush=True)
            return
        res = graphrec_result(out, wall) if job.lib == "graphrec" else mmrec_result(Path(tmp) / "out.json", wall)
    from graphrec.train.record import processor

    # the processor and torch's kernels on it: float sums are ordered differently on other
    # CPUs, so a re-run elsewhere is a new draw in the last digits (both libraries ran on this one)
    res.update(lib=job.lib, model=job.model.label, dataset=job.dataset, point=job.point, seed=job.seed,
               **processor())
    before = load(job)
    write_json(job.path, res)
    change, same = "", None
    if before is not None:  # a refresh: say whether the run came back the same
        same = all(before[split] == res[split] for split in ("valid", "test")) and \
            before["best_epoch"] == res["best_epoch"]
        change = " (same as before)" if same else \
            f" (valid {before['valid']['recall@20']:.6f} -> {res['valid']['recall@20']:.6f}, " \
            f"test {before['test']['recall@20']:.6f} -> {res['test']['recall@20']:.6f}, " \
            f"best epoch {before['best_epoch']} -> {res['best_epoch']}" + \
            (f"; the stored run was made on {before['cpu_id']})"
             if before.get("cpu_id") not in (None, res.get("cpu_id")) else ")")
    print(f"{job.lib:8} {job.model.label:8} {job.dataset:10} {key(job.point):32} seed {job.seed}: "
          f"valid {res['valid']['recall@20']:.4f} test {res['test']['recall@20']:.4f} "
          f"{res['seconds_per_epoch']:.3f} s/epoch, {res['epochs_run']} epochs{change}", flush=True)
    return same


def run_jobs(jobs: list[Job], args: argparse.Namespace, again: bool = False) -> list[bool | None]:
    """Run the jobs whose result is missing (every one with ``again``: a refresh replaces
    them); returns what :func:`run_job` returned for each job run."""
    unique = {j.path: j for j in jobs}
    todo = list(unique.values()) if again else [j for j in unique.values() if not j.path.exists()]
    if again:
        print(f"{len(todo)} runs to run again", flush=True)
    else:
        print(f"{len(unique) - len(todo)} of {len(unique)} runs done already; {len(todo)} to run", flush=True)
    for dataset in sorted({j.dataset for j in todo if j.lib == "graphrec"}):
        graphrec_data(args.mmrec_data / dataset, args.cache)  # once, before two workers could race to make it
    lock = threading.Lock()
    outcomes: list[bool | None] = []

    def worker(core: int) -> None:
        while True:
            with lock:
                if not todo:
                    return
                job = todo.pop(0)
            try:
                outcome = run_job(job, core, args)
                with lock:
                    outcomes.append(outcome)
            except Exception as e:  # one failed run must not stop the others
                print(f"FAILED {job.lib} {job.model.label} {job.dataset} {key(job.point)} seed {job.seed}: {e}", flush=True)

    threads = [threading.Thread(target=worker, args=(c,)) for c in args.core_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def existing_jobs(models: list[ZooModel], datasets: list[str], subsets: Sequence[str] = ()) -> list[Job]:
    """graphrec's runs already in ``results/`` for these models and datasets (what a refresh
    re-runs), those at the points of ``subsets`` only where any is given."""
    jobs = []
    for d, m in itertools.product(datasets, models):
        kept = {key(p) for p in points(restrict(m, list(subsets)))}
        for path in sorted((HERE / "results" / d / f"graphrec-{m.label}").glob("*/seed*.json")):
            r = json.loads(path.read_text())
            job = Job("graphrec", m, d, r["point"], r["seed"])
            if job.path != path:  # a file the driver did not write where it writes
                raise SystemExit(f"{path}: its point and seed name {job.path}; move or delete the file")
            if key(job.point) in kept:
                jobs.append(job)
    return jobs


def made_since(result: dict[str, Any], rev: str) -> bool:
    """Whether a graphrec result was trained at ``rev`` or a commit after it, from a clean
    tree (a ``-dirty`` commit or none recorded: no)."""
    commit = result.get("graphrec_commit")
    return bool(commit) and not commit.endswith("-dirty") and _descends(commit, rev)


@functools.lru_cache(maxsize=None)
def _descends(commit: str, rev: str) -> bool:
    """``commit`` is ``rev`` or comes after it (one git call per pair: a refresh asks for
    hundreds of runs made at a handful of commits)."""
    return subprocess.run(["git", "merge-base", "--is-ancestor", rev, commit], cwd=REPO,
                          capture_output=True).returncode == 0


def load(job: Job) -> dict[str, Any] | None:
    return json.loads(job.path.read_text()) if job.path.exists() else None


def tuned_point(lib: str, model: ZooModel, dataset: str, seed: int) -> dict[str, Any] | None:
    """The grid point with the best validation recall@20 on ``seed`` (None until all ran)."""
    return mean_tuned_point(lib, model, dataset, [seed])


def mean_tuned_point(lib: str, model: ZooModel, dataset: str, seeds: list[int],
                     among: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The grid point (of ``among``, by default the whole grid) with the best MEAN validation
    recall@20 over ``seeds`` (first of equals in grid order; None until every point ran every
    seed). Over several seeds it is a less noisy estimate of each point's validation than one
    seed's; it reads validation only."""
    scored = []
    for p in (points(model) if among is None else among):
        runs = [load(Job(lib, model, dataset, p, s)) for s in seeds]
        if any(r is None for r in runs):
            return None
        scored.append((statistics.mean(r["valid"]["recall@20"] for r in runs), p))
    return max(scored, key=lambda t: t[0])[1]


def race_points(lib: str, model: ZooModel, dataset: str, seed: int, top: int) -> list[dict[str, Any]] | None:
    """The ``top`` grid points with the best validation recall@20 on ``seed``, best first
    (equals in grid order; None until the whole grid ran that seed): the points a race keeps
    for its other seeds."""
    scored = []
    for p in points(model):
        r = load(Job(lib, model, dataset, p, seed))
        if r is None:
            return None
        scored.append((r["valid"]["recall@20"], p))
    return [p for _, p in sorted(scored, key=lambda t: -t[0])[:top]]  # sorted is stable: grid order


def race_point(lib: str, model: ZooModel, dataset: str, seeds: list[int], top: int) -> dict[str, Any] | None:
    """The race's choice: among ``lib``'s ``top`` best points on ``seeds[0]``, the best mean
    validation over ``seeds`` (None until those points ran every seed)."""
    kept = race_points(lib, model, dataset, seeds[0], top)
    return None if kept is None else mean_tuned_point(lib, model, dataset, seeds, among=kept)


def time_part(args: argparse.Namespace, models: list[ZooModel], datasets: list[str]) -> None:
    """Seconds per epoch at the default point, graphrec and MMRec alternating on one core
    (the first of ``--cores``, core 0 by default)."""
    for dataset, model in itertools.product(datasets, models):
        path = HERE / "results" / dataset / f"time-{model.label}.json"
        if path.exists():
            continue
        folder = args.mmrec_data / dataset
        data = graphrec_data(folder, args.cache)
        point = default_point(model)
        rounds, mmrec_commit = [], None
        for r in range(args.time_rounds):
            row = {}
            for lib in ("graphrec", "mmrec"):
                with tempfile.TemporaryDirectory(prefix="zoo-time-") as tmp:
                    if lib == "graphrec":
                        cmd = graphrec_cmd(model, point, 0, data, Path(tmp) / "run", epochs=args.time_epochs)
                    else:
                        cmd = mmrec_cmd(model, point, 0, folder, args.mmrec, Path(tmp) / "out.json", epochs=args.time_epochs)
                    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO))
                    subprocess.run(["taskset", "-c", str(args.core_list[0]), *cmd], cwd=REPO if lib == "graphrec" else tmp, check=True,
                                   capture_output=True, env=env)
                    res = (graphrec_result(Path(tmp) / "run", 0.0) if lib == "graphrec"
                           else mmrec_result(Path(tmp) / "out.json", 0.0))
                    row[lib] = res["seconds_per_epoch"]
                    if lib == "mmrec":
                        mmrec_commit = res["mmrec_commit"]
            row["ratio"] = row["graphrec"] / row["mmrec"]
            rounds.append(row)
            print(f"time {model.label} {dataset} round {r}: graphrec {row['graphrec']:.3f} s, mmrec {row['mmrec']:.3f} s, "
                  f"ratio {row['ratio']:.2f}", flush=True)
        # what was timed: a later change to either side makes the figure stale (delete the
        # file and re-run the part to re-measure)
        import torch

        measured = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "graphrec_commit": graphrec_commit(),
                    "mmrec_commit": mmrec_commit, "torch": torch.__version__}
        write_json(path, {"model": model.label, "dataset": dataset, "point": point, "epochs": args.time_epochs,
                          "rounds": rounds, "median_ratio": statistics.median(r["ratio"] for r in rounds),
                          "measured": measured})


def graphrec_commit() -> str:
    """The commit of the graphrec code the runs import, marked ``-dirty`` where it has
    uncommitted changes under graphrec/."""
    from graphrec.train.record import source_commit

    return source_commit() or "unknown"


def difference(both: dict[str, dict[str, Any]], metric: str) -> str:
    """graphrec's mean minus MMRec's, and that difference in standard errors
    (sqrt(s1^2/n1 + s2^2/n2); the seeds of the two libraries are independent draws, not pairs)."""
    a, b = both["graphrec"]["values"][metric], both["mmrec"]["values"][metric]
    diff = statistics.mean(a) - statistics.mean(b)
    if len(a) < 2 or len(b) < 2:
        return f"{diff:+.4f}"
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    return f"{diff:+.4f} ({diff / se:+.1f} s.e.)" if se > 0 else f"{diff:+.4f}"


def summary(args: argparse.Namespace, models: list[ZooModel], datasets: list[str], seeds: list[int]) -> str:
    def stats(lib: str, model: ZooModel, dataset: str, point: dict[str, Any] | None) -> dict[str, Any] | None:
        if point is None:
            return None
        runs = [load(Job(lib, model, dataset, point, s)) for s in seeds]
        runs = [r for r in runs if r is not None]
        if not runs:
            return None

        def ms(values: list[float]) -> str:
            m = statistics.mean(values)
            return f"{m:.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{m:.4f}"

        return {
            "n": len(runs),
            "valid": ms([r["valid"]["recall@20"] for r in runs]),
            "recall": ms([r["test"]["recall@20"] for r in runs]),
            "ndcg": ms([r["test"]["ndcg@20"] for r in runs]),
            "values": {"valid": [r["valid"]["recall@20"] for r in runs],
                       **{m: [r["test"][f"{m}@20"] for r in runs] for m in ("recall", "ndcg")}},
            "spe": statistics.median(r["seconds_per_epoch"] for r in runs),
            "epochs": statistics.median(r["epochs_run"] for r in runs),
        }

    lines = [
        "| model | data | point | lib | seeds | valid recall@20 | test recall@20 | test ndcg@20 | s/epoch (median) | epochs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def row(model: ZooModel, dataset: str, name: str, lib: str, s: dict[str, Any]) -> str:
        return (f"| {model.label} | {dataset} | {name} | {lib} | {s['n']} | {s['valid']} | "
                f"{s['recall']} | {s['ndcg']} | {s['spe']:.3f} | {s['epochs']:.0f} |")

    def diff_row(model: ZooModel, dataset: str, name: str, both: dict[str, dict[str, Any]]) -> str:
        return (f"| {model.label} | {dataset} | {name} | graphrec - MMRec | | {difference(both, 'valid')} | "
                f"{difference(both, 'recall')} | {difference(both, 'ndcg')} | | |")

    for dataset, model in itertools.product(datasets, models):
        sub = restrict(model, args.subset)
        choice = {"default": dict.fromkeys(("graphrec", "mmrec"), default_point(model)),
                  "tuned": {lib: tuned_point(lib, sub, dataset, seeds[0]) for lib in ("graphrec", "mmrec")},
                  "mean": {lib: mean_tuned_point(lib, sub, dataset, seeds) for lib in ("graphrec", "mmrec")}}
        top = getattr(args, "race_top", None)
        race = top and None in choice["mean"].values()  # where the whole grid's mean exists it says more
        choice["race"] = {lib: race_point(lib, sub, dataset, seeds, top) if race else None
                          for lib in ("graphrec", "mmrec")}
        for label in ("tuned", "mean", "race"):
            if None in choice[label].values():  # tuned rows only once both libraries ran the same grid
                choice[label] = dict.fromkeys(choice[label])
        if len(points(sub)) == 1 or len(seeds) == 1:  # selects nothing more than the seed-0 choice
            choice["mean"] = dict.fromkeys(choice["mean"])
        if len(seeds) == 1 or (top or 0) >= len(points(sub)):  # a race that keeps every point is "grid"
            choice["race"] = dict.fromkeys(choice["race"])
        if len(points(sub)) == 1 and points(sub)[0] == default_point(model):  # "fixed" would repeat "default"
            choice["tuned"] = dict.fromkeys(choice["tuned"])
        wanted = getattr(args, "rows", None) or ROW_KINDS
        for label in (kind for kind in ("default", "tuned", "mean", "race") if kind in wanted):
            # a grid (or subset) of one point selects nothing: both sides at that point, "fixed"
            kind = {"default": "default", "tuned": "tuned" if len(points(sub)) > 1 else "fixed",
                    "mean": f"tuned on the {len(seeds)}-seed mean",
                    "race": f"tuned on the {len(seeds)}-seed mean of seed {seeds[0]}'s top {top}"}[label]
            name = kind + (f" over {len(points(sub))} of {len(points(model))} points"
                           if label != "default" and kind != "fixed" and args.subset else "")
            if (label in ("mean", "race") and None not in choice[label].values()
                    and choice[label] == choice["tuned"]):
                # both libraries' mean choices are their seed-0 choices: the rows would repeat
                lines.append(f"| {model.label} | {dataset} | {name} | both libraries: the points of \"tuned\" "
                             "| | | | | | |")
                continue
            both, chosen = {}, {}
            for lib in ("graphrec", "mmrec"):
                point = choice[label][lib]
                s = stats(lib, model, dataset, point)
                if s is None:
                    continue
                both[lib], chosen[lib] = s, point
                lines.append(row(model, dataset, f"{name} {key(point)}", lib, s))
            if len(both) == 2:
                lines.append(diff_row(model, dataset, kind, both))
            if label == "tuned" and len(chosen) == 2 and chosen["graphrec"] != chosen["mmrec"]:
                # Where the two choices differ, both libraries at each choice, once every seed
                # ran there on both sides: a same-point comparison that separates the libraries
                # from the luck of each one's seed-0 selection.
                for owner, point in chosen.items():
                    other = "mmrec" if owner == "graphrec" else "graphrec"
                    same = {owner: both[owner], other: stats(other, model, dataset, point)}
                    same = {lib: same[lib] for lib in ("graphrec", "mmrec")}  # the table's order
                    if any(s is None or s["n"] < len(seeds) for s in same.values()):
                        continue
                    name = f"at {'graphrec' if owner == 'graphrec' else 'MMRec'}'s choice {key(point)}"
                    lines.extend(row(model, dataset, name, lib, s) for lib, s in same.items())
                    lines.append(diff_row(model, dataset, name, same))
        t = HERE / "results" / dataset / f"time-{model.label}.json"
        if t.exists() and "time" in wanted:
            tr = json.loads(t.read_text())
            rounds = ", ".join(f"{r['graphrec']:.3f}/{r['mmrec']:.3f}" for r in tr["rounds"])
            when = ""
            if "measured" in tr:  # files written before the time part recorded it have none
                when = f" ({tr['measured']['date']}, graphrec {tr['measured']['graphrec_commit'][:7]})"
            lines.append(f"| {model.label} | {dataset} | default | time | | | | | graphrec/MMRec s per epoch "
                         f"{rounds}: ratio {tr['median_ratio']:.2f}{when} | {tr['epochs']} |")
    return "\n".join(lines)


TABLE_START = re.compile(r"<!-- zoo table: ([\w,-]+)((?: [\w.,=-]+)*) -->\n")
TABLE_END = "<!-- /zoo table -->"
#: the options a marker may add after its models (``--summary``'s options of the same names)
TABLE_OPTIONS = ("datasets", "seeds", "subset", "race", "only")
#: the kinds of rows a summary holds, in its order (a marker's ``only=`` keeps some of them;
#: "tuned" brings the rows at each library's choice with it)
ROW_KINDS = ("default", "tuned", "mean", "race", "time")


def _table_options(marker: str, options: str, seeds: list[int],
                   where: str = "README") -> tuple[list[str], list[int], list[str], int | None, tuple[str, ...]]:
    """The datasets, seeds, subsets, race size and row kinds of a marker's ``datasets=A,B
    seeds=0,1 subset=KEY=V1,V2 race=K only=default,time`` words (each optional; subset
    repeatable), defaulting to both datasets, ``seeds``, no race rows and every row kind.
    ``where`` names the file in the messages."""
    datasets, subset, race, rows = ["lfm2k", "scientific"], [], None, ROW_KINDS
    for word in options.split():
        name, _, value = word.partition("=")
        if name not in TABLE_OPTIONS or not value:
            raise SystemExit(f"{where}: {marker} has option {word!r}; expected NAME=VALUE with NAME one of "
                             f"{', '.join(TABLE_OPTIONS)}")
        if name == "datasets":
            datasets = value.split(",")
        elif name == "seeds":
            try:
                seeds = [int(v) for v in value.split(",")]
            except ValueError:
                raise SystemExit(f"{where}: {marker} has {word!r}; seeds are integers, e.g. seeds=0,1,2") from None
        elif name == "race":
            if not value.isdigit() or int(value) < 1:
                raise SystemExit(f"{where}: {marker} has {word!r}; race is a number of points, e.g. race=5")
            race = int(value)
        elif name == "only":
            rows = tuple(value.split(","))
            if any(r not in ROW_KINDS for r in rows):
                raise SystemExit(f"{where}: {marker} has {word!r}; only= names some of {', '.join(ROW_KINDS)}")
        else:
            subset.append(value)
    return datasets, seeds, subset, race, rows


GRID_START = re.compile(r"<!-- zoo grid: ([\w-]+) ([\w-]+)((?: [\w.,=-]+)*) -->\n")
GRID_END = "<!-- /zoo grid -->"


def grid_table(model: ZooModel, dataset: str, rows: list[str], col: str, seed: int = 0) -> str:
    """Seed ``seed``'s validation recall@20 at every point of ``model``'s grid, "graphrec /
    MMRec" ("-" where a side has not run the point): a row per combination of the ``rows``
    keys' values, a column per value of ``col``. Every other key of the grid must hold one
    value (cut it with a subset), so that each cell is one point."""
    for k in (*rows, col):
        if k not in model.grid:
            raise SystemExit(f"zoo grid: {k} is not a key of {model.label}'s grid ({', '.join(model.grid)})")
    several = [k for k in model.grid if k not in rows and k != col and len(model.grid[k]) > 1]
    if several:
        raise SystemExit(f"zoo grid: {', '.join(several)} of {model.label}'s grid hold several values: "
                         f"name them in rows= or cols=, or keep one with subset={several[0]}=V")
    lines = ["| " + " | ".join([*rows, *(f"{col} {_value(v)}" for v in model.grid[col])]) + " |",
             "| " + " | ".join(["---"] * (len(rows) + len(model.grid[col]))) + " |"]
    for combo in itertools.product(*(model.grid[r] for r in rows)):
        cells = [_value(v) for v in combo]
        for v in model.grid[col]:
            chosen = {**dict(zip(rows, combo)), col: v}
            point = {k: chosen.get(k, values[0]) for k, values in model.grid.items()}
            runs = [load(Job(lib, model, dataset, point, seed)) for lib in ("graphrec", "mmrec")]
            cells.append(" / ".join(f"{r['valid']['recall@20']:.4f}" if r else "-" for r in runs))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _readme_grids(text: str, where: str = "README") -> str:
    """``text`` with every block between ``<!-- zoo grid: MODEL DATASET rows=K1,K2 cols=K3
    [subset=KEY=V] [seed=S] -->`` and ``<!-- /zoo grid -->`` replaced by :func:`grid_table`."""
    out, pos = [], 0
    for m in GRID_START.finditer(text):
        marker = m.group(0).strip()
        end = text.find(GRID_END, m.end())
        if end < 0:
            raise SystemExit(f"{where}: {marker} has no {GRID_END}")
        if m.group(1) not in MODELS:
            raise SystemExit(f"{where}: {marker} names unknown model {m.group(1)}")
        rows, col, subset, seed = [], None, [], 0
        for word in m.group(3).split():
            name, _, value = word.partition("=")
            if name == "rows" and value:
                rows = value.split(",")
            elif name == "cols" and value:
                col = value
            elif name == "subset" and value:
                subset.append(value)
            elif name == "seed" and value.isdigit():
                seed = int(value)
            else:
                raise SystemExit(f"{where}: {marker} has option {word!r}; expected rows=K1,K2 cols=K subset=KEY=V seed=S")
        if not rows or col is None:
            raise SystemExit(f"{where}: {marker} needs rows=KEYS and cols=KEY")
        table = grid_table(restrict(MODELS[m.group(1)], subset), m.group(2), rows, col, seed)
        out += [text[pos:m.end()], table, "\n"]
        pos = end
    return "".join(out) + text[pos:]


def readme_tables(text: str, seeds: list[int], where: str = "README") -> str:
    """``text`` (the README) with every block between ``<!-- zoo table: MODELS [OPTIONS] -->``
    and ``<!-- /zoo table -->`` replaced by the summary of MODELS (on both datasets and
    ``seeds`` unless the marker names ``datasets=``, ``seeds=``, ``subset=`` or ``race=`` as
    ``--summary`` takes them), and every ``<!-- zoo grid: ... -->`` block by its per-point
    validation table (:func:`_readme_grids`), so that the README's tables are the committed
    result files and nothing else. ``where`` names the file in the messages; a marker's
    ``only=`` keeps some of :data:`ROW_KINDS` (a doc page's default-point table)."""
    out, pos = [], 0
    for m in TABLE_START.finditer(text):
        if m.start() < pos:
            continue
        marker = m.group(0).strip()
        end = text.find(TABLE_END, m.end())
        if end < 0:
            raise SystemExit(f"{where}: {marker} has no {TABLE_END}")
        unknown = [name for name in m.group(1).split(",") if name not in MODELS]
        if unknown:
            raise SystemExit(f"{where}: {marker} names unknown model(s) {', '.join(unknown)}")
        datasets, table_seeds, subset, race, rows = _table_options(marker, m.group(2), seeds, where)
        table = summary(argparse.Namespace(subset=subset, race_top=race, rows=rows),
                        [MODELS[name] for name in m.group(1).split(",")], datasets, table_seeds)
        out += [text[pos:m.end()], table, "\n"]
        pos = end
    return _readme_grids("".join(out) + text[pos:], where)


def marked_files() -> list[Path]:
    """The files ``--readme`` rewrites: this folder's README.md and every page under the
    repository's docs/ that holds a ``<!-- zoo table`` or ``<!-- zoo grid`` marker."""
    docs = sorted(p for p in (REPO / "docs").rglob("*.md")
                  if "<!-- zoo table: " in p.read_text() or "<!-- zoo grid: " in p.read_text())
    return [HERE / "README.md", *docs]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mmrec", type=Path, help="DEST of ../shared/peers/setup_mmrec.sh (needed to run MMRec)")
    ap.add_argument("--mmrec-data", type=Path, default=HERE / "results" / "mmrec-data",
                    help="folder of MMRec dataset folders written by graphrec export-mmrec (one per dataset)")
    ap.add_argument("--cache", type=Path, default=HERE / "results" / "graphrec-data")
    ap.add_argument("--models", default="freedom,bm3,vbpr")
    ap.add_argument("--datasets", default="lfm2k,scientific")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--parts", default="default,tune")
    ap.add_argument("--libs", default="graphrec,mmrec")
    ap.add_argument("--workers", type=int, default=1, help="runs at a time (one core each)")
    ap.add_argument("--cores", default=None,
                    help="the cores the workers are pinned to, comma-separated (default 0..workers-1); "
                         "one worker per core")
    ap.add_argument("--subset", action="append", default=[], metavar="KEY=V1,V2",
                    help="tune over these values of KEY only (repeatable; both libraries the same subset)")
    ap.add_argument("--race-top", type=int, default=None, metavar="K",
                    help="the race part keeps each library's K best points of the first seed for the other seeds "
                         "(default 5); --summary adds the race's rows with it")
    ap.add_argument("--since", default=None, metavar="REV",
                    help="refresh only the runs made before commit REV (continues an interrupted refresh)")
    ap.add_argument("--time-epochs", type=int, default=10)
    ap.add_argument("--time-rounds", type=int, default=2)
    ap.add_argument("--summary", action="store_true", help="print the tables from the results and write summary.md")
    ap.add_argument("--readme", action="store_true",
                    help="rewrite the marked tables (<!-- zoo table: MODELS -->, <!-- zoo grid: ... -->) of the "
                         "README and of docs/ from the results")
    a = ap.parse_args(argv)
    unknown = [m for m in a.models.split(",") if m not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(MODELS)}")
    if a.race_top is not None and a.race_top < 1:
        ap.error(f"--race-top {a.race_top}: a race keeps at least one point")
    models = [MODELS[m] for m in a.models.split(",")]
    datasets = a.datasets.split(",")
    seeds = [int(s) for s in a.seeds.split(",")]
    libs = a.libs.split(",")
    sys.path.insert(0, str(REPO))
    if a.readme:
        # every file rendered before any is written: a bad marker in one leaves all as they were
        rendered = {path: readme_tables(path.read_text(), seeds, str(path.relative_to(REPO)))
                    for path in marked_files()}
        for path, text in rendered.items():
            write_text(path, text)
            print(f"rewrote the marked tables of {path.relative_to(REPO)}")
        return
    if a.summary:
        text = summary(a, models, datasets, seeds)
        print(text)
        write_text(HERE / "results" / "summary.md", text + "\n")
        return
    missing = [d for d in datasets if not (a.mmrec_data / d).is_dir()]
    if missing:
        ap.error(f"no MMRec folder for {', '.join(missing)} under {a.mmrec_data}: write it with graphrec export-mmrec")
    if shutil.which("taskset") is None:
        ap.error("taskset (util-linux) is needed to pin each run to one core")
    a.core_list = [int(c) for c in a.cores.split(",")] if a.cores else list(range(a.workers))
    parts = a.parts.split(",")
    if set(parts) - set(PARTS):
        ap.error(f"unknown part(s) {', '.join(sorted(set(parts) - set(PARTS)))}: choose from {', '.join(PARTS)}")
    # MMRec runs in the time part, and in every other part but refresh unless --libs leaves it out
    if a.mmrec is None and ("time" in parts or ("mmrec" in libs and set(parts) - {"refresh"})):
        ap.error("--mmrec DEST is needed to run MMRec (the DEST of ../shared/peers/setup_mmrec.sh); "
                 "--summary and --readme read the results only; --libs graphrec and --parts refresh "
                 "run graphrec only")
    jobs: list[Job] = []
    if "default" in parts:
        jobs += [Job(lib, m, d, default_point(m), s) for d in datasets for m in models for lib in libs for s in seeds]
    # tune and race: the whole grid (or subset) on the first seed, then each library's best
    # point (tune) or best --race-top points (race) of that seed's validation on the others
    survivors = [top for part, top in (("tune", 1), ("race", 5 if a.race_top is None else a.race_top))
                 if part in parts]
    if survivors:
        jobs += [Job(lib, m, d, p, seeds[0]) for d in datasets for m in models for lib in libs
                 for p in points(restrict(m, a.subset))]
    if "grid" in parts:  # every point on every seed, seed by seed: what the seed-mean selection needs
        jobs += [Job(lib, m, d, p, s) for s in seeds for d in datasets for m in models for lib in libs
                 for p in points(restrict(m, a.subset))]
    if a.since is not None and "refresh" not in parts:
        ap.error("--since REV narrows a refresh: add --parts refresh")
    if "refresh" in parts:
        if "graphrec" not in libs:
            ap.error("--parts refresh re-runs graphrec's results: --libs must include graphrec")
        again = existing_jobs(models, datasets, a.subset)
        if a.since is not None:
            rev = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{a.since}^{{commit}}"], cwd=REPO,
                                 capture_output=True, text=True).stdout.strip()
            if not rev:
                ap.error(f"--since {a.since}: not a commit of this repository (git log names them)")
            done = {j.path for j in again if made_since(load(j) or {}, rev)}
            again = [j for j in again if j.path not in done]
            print(f"{len(done)} runs made at {a.since} or later: kept", flush=True)
        outcomes = run_jobs(again, a, again=True)
        failed = len(again) - outcomes.count(True) - outcomes.count(False)
        print(f"refreshed {len(again)} graphrec runs: {outcomes.count(True)} the same to the digit, "
              f"{outcomes.count(False)} changed" + (f", {failed} failed (kept as they were)" if failed else ""),
              flush=True)
    run_jobs(jobs, a)
    if survivors:
        more = []
        for d, m, lib in itertools.product(datasets, models, libs):
            # the best `top` points of the first seed, best first: tune's choice is the first
            kept = race_points(lib, restrict(m, a.subset), d, seeds[0], max(survivors))
            if kept is not None:
                more += [Job(lib, m, d, p, s) for s in seeds[1:] for p in kept]
        run_jobs(more, a)
    if "time" in parts:
        time_part(a, models, datasets)


if __name__ == "__main__":
    main()
