"""Does MMRec's stopping rule change graphrec's committed zoo runs?

MMRec (like RecBole) stops when ``cur_step > stopping_step``: its ``stopping_step: 20`` ends
a run at the 21st validation without improvement. graphrec's ``--patience 20`` ends it at
the 20th, and the zoo's graphrec runs use 20. This re-runs committed graphrec runs with
``--patience 21`` (MMRec's rule) in a temporary folder and prints, per run, the committed
and the re-run best epoch, epochs run, validation and test recall@20. Training does not
depend on the patience, so a run changes only if its 21st validation without improvement
would have been a new best. Nothing under results/ is written.

    python experiments/zoo/patience_check.py                       # default point, seed 0, every model
    python experiments/zoo/patience_check.py --models vbpr --datasets lfm2k --subset reg_weight=1 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as zoo  # noqa: E402  (the driver beside this file)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="vbpr,bm3,freedom,smore,mgcn,dragon")
    ap.add_argument("--datasets", default="lfm2k,scientific")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--subset", action="append", default=[], metavar="KEY=V",
                    help="run at this value of KEY instead of the default point's (repeatable)")
    ap.add_argument("--cache", type=Path, default=zoo.HERE / "results" / "graphrec-data")
    a = ap.parse_args(argv)
    jobs = []
    for dataset in a.datasets.split(","):
        for name in a.models.split(","):
            if name not in zoo.MODELS:
                ap.error(f"unknown model {name}: choose from {', '.join(zoo.MODELS)}")
            model = zoo.MODELS[name]
            point = zoo.default_point(zoo.restrict(model, a.subset))  # the default point without --subset
            for seed in (int(s) for s in a.seeds.split(",")):
                path = zoo.result_path(dataset, "graphrec", name, point, seed)
                if not path.exists():
                    ap.error(f"no committed run {path}: run it with run.py first")
                jobs.append((json.loads(path.read_text()), name, dataset, point, seed))
    changed = 0
    for old, name, dataset, point, seed in sorted(jobs, key=lambda j: j[0]["wall_seconds"]):
        data = a.cache / dataset
        if not (data / "dataset.json").exists():
            sys.exit(f"no graphrec dataset at {data}: run.py makes it on its first run")
        with tempfile.TemporaryDirectory() as tmp:
            cmd = zoo.graphrec_cmd(zoo.MODELS[name], point, seed, data, Path(tmp) / "run") + ["--patience", "21"]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=zoo.REPO, stdout=subprocess.DEVNULL)
            new = zoo.graphrec_result(Path(tmp) / "run", time.perf_counter() - t0)
        same = (new["best_epoch"] == old["best_epoch"] and new["valid"]["recall@20"] == old["valid"]["recall@20"]
                and new["test"]["recall@20"] == old["test"]["recall@20"])
        changed += not same
        print(f"{name:8} {dataset:10} {zoo.key(point):40} seed {seed}: patience 20 best {old['best_epoch']}/"
              f"{old['epochs_run']} valid {old['valid']['recall@20']:.4f} test {old['test']['recall@20']:.4f}; "
              f"patience 21 best {new['best_epoch']}/{new['epochs_run']} valid {new['valid']['recall@20']:.4f} "
              f"test {new['test']['recall@20']:.4f}{'' if same else '  CHANGED'}", flush=True)
    print(f"{changed} of {len(jobs)} runs changed at patience 21")


if __name__ == "__main__":
    main()
