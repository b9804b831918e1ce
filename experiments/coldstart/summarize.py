"""Tables of experiments/coldstart/run.py's results: mean and standard deviation over the
seeds of every row (test split; selection was on validation only).

    python experiments/coldstart/summarize.py [RESULTS_DIR]
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    m = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * m:.2f} ± {100 * sd:.2f}"


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path, nargs="?", default=HERE / "results", help="run.py's results folder")
    root = ap.parse_args().results
    if not root.is_dir():
        raise SystemExit(f"{root}: no results folder: run experiments/coldstart/run.py first (or name its --out)")
    for ds_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        rows: dict[str, list[dict]] = {}
        for f in sorted(ds_dir.glob("*/seed*.json")):
            r = json.loads(f.read_text())
            rows.setdefault(r["row"], []).append(r)
        print(f"\n### {ds_dir.name}\n")
        print("| row | protocol | seeds | valid recall@20 | test recall@20 (group) | test ndcg@20 (group) "
              "| cold among cold: recall@20 | ndcg@20 | unseen items in top-20 | best epoch | s/epoch |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, rs in rows.items():
            proto = rs[0].get("protocol") or "warm split"
            group = "cold" if proto == "papers" else ("all" if proto == "warm split" else "all")
            tests = [r["test"].get(group, r["test"]["all"]) for r in rs]
            among = [r["cold_among_cold"] for r in rs if r.get("cold_among_cold")]
            share = [r["unseen_share_top20"] for r in rs if "unseen_share_top20" in r]
            extra = ""
            if proto == "hidden":
                warm = [r["test"]["warm"] for r in rs if "warm" in r["test"]]
                cold = [r["test"]["cold"] for r in rs if "cold" in r["test"]]
                extra = (f" (warm {_ms([t['recall@20'] for t in warm])}, cold {_ms([t['recall@20'] for t in cold])})")
            print(
                f"| {name} | {proto} | {len(rs)} | {_ms([r['best_valid']['recall@20'] for r in rs])} "
                f"| {_ms([t['recall@20'] for t in tests])} ({group}){extra} | {_ms([t['ndcg@20'] for t in tests])} "
                f"| {_ms([a['recall@20'] for a in among])} | {_ms([a['ndcg@20'] for a in among])} "
                f"| {_ms(share) if share else '-'} | {statistics.fmean(r['best_epoch'] for r in rs):.0f} "
                f"| {statistics.fmean(r['timings']['seconds_per_epoch'] for r in rs):.2f} |"
            )


if __name__ == "__main__":
    main()
