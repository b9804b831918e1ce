"""Summarise LightGCN runs: test metrics under both protocols and timings (markdown)."""

from __future__ import annotations

import json
from pathlib import Path


def mmrec_metrics(path: Path) -> dict[str, float]:
    """Parse the test column of `graphrec evaluate --protocol mmrec` output."""
    out = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and "@" in parts[0]:
                out[parts[0]] = float(parts[2])
    return out


def main(runs: Path) -> None:
    print("| dataset | protocol | recall@20 | ndcg@20 | precision@20 | best epoch | s/epoch | s/validation |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in sorted(p for p in runs.iterdir() if (p / "record.json").is_file()):
        r = json.loads((run / "record.json").read_text())
        t = r["timings"]
        test = r["test"]["all"]
        mm = mmrec_metrics(run / "mmrec.txt")
        for proto, m in (("recbole", test), ("mmrec", mm)):
            if not m:
                continue
            print(
                f"| {r['dataset']['name']} | {proto} | {m['recall@20']:.4f} | {m['ndcg@20']:.4f} | "
                f"{m['precision@20']:.4f} | {r['best_epoch']} | {t['seconds_per_epoch']:.2f} | "
                f"{t['eval_seconds_per_pass']:.2f} |"
            )


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", type=Path, help="folder of `graphrec train` run directories (run.sh's runs/)")
    main(ap.parse_args().runs)
