"""Markdown tables (mean ± std over seeds) from the results of ``run.py``.

    python experiments/mmgef/summarize.py [RESULTS_DIR] > experiments/mmgef/results/summary.md

The paper's numbers (MM-GEF, arXiv:2308.07222, Amazon Baby columns of Tables 1-3, in %) and
MMRec's reference runs on the same files (issue 4) are printed beside ours for
orientation only: other data, other splits.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

#: MM-GEF paper, Amazon Baby, R@20 / P@20 / N@20 in % (Tables 1, 2, 3)
PAPER_T1 = {
    "CB": (1.44, 0.07, 0.56),
    "LightGCN": (7.21, 0.38, 3.19),
    "LATTICE": (8.19, 0.43, 3.66),
    "MM-GEF w/o CF(+Att)": (8.12, 0.43, 3.58),  # "w/o CF+Att"; "w/o CF" reports 8.08 / 0.43 / 3.61
    "MM-GEF w/o Att": (8.21, 0.43, 3.65),
    "MM-GEF": (8.69, 0.46, 3.83),
}
PAPER_T2 = {
    "LATTICE": (8.2, 0.44, 3.66),
    "MM-GEF image w/o CF": (8.28, 0.44, 3.63),
    "MM-GEF text w/o CF": (8.71, 0.46, 3.80),
    "MM-GEF w/o CF(+Att)": (8.57, 0.45, 3.76),
    "MM-GEF image": (8.71, 0.46, 3.82),
    "MM-GEF text": (8.67, 0.46, 3.81),
    "MM-GEF": (8.64, 0.46, 3.77),
}
PAPER_T3 = {
    "LATTICE + CF": (1.00, 0.07, 0.51),  # its Table 3 LATTICE has CF checked (Table 2)
    "MM-GEF image w/o CF": (0.67, 0.05, 0.39),
    "MM-GEF text w/o CF": (0.84, 0.06, 0.46),
    "MM-GEF w/o CF": (0.84, 0.06, 0.46),
    "MM-GEF image": (1.48, 0.11, 0.71),
    "MM-GEF text": (1.41, 0.10, 0.70),
    "MM-GEF": (1.51, 0.11, 0.74),
}
#: MMRec (mmrec protocol, default configs, one thread) on the same files: recall@20, ndcg@20
MMREC = {
    ("lfm2k", "LightGCN"): (0.4168, 0.2935, 0.28),
    ("lfm2k", "LATTICE"): (0.2495, 0.1637, 1.08),
    ("lfm2k", "FREEDOM"): (0.3877, 0.2661, 0.55),
    ("scientific", "LightGCN"): (0.1736, 0.0796, None),
    ("scientific", "LATTICE"): (0.1492, 0.0674, 0.85),
}
METRICS = ("recall@20", "precision@20", "ndcg@20")


def load(root: Path) -> dict[str, dict[tuple[str, float], list[dict]]]:
    out: dict[str, dict[tuple[str, float], list[dict]]] = defaultdict(lambda: defaultdict(list))
    for f in sorted(root.glob("*/*/seed*.json")):
        r = json.loads(f.read_text())
        out[r["dataset"]][(r["config"], r["cold_start"])].append(r)
    return out


def ms(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    a = np.asarray(values) * scale
    return f"{a.mean():.{digits}f} ± {a.std():.{digits}f}" if len(a) > 1 else f"{a.mean():.{digits}f}"


def table(runs: dict, names: list[str], cold: float, protocol: str, group: str, paper: dict | None) -> list[str]:
    head = "| model | seeds | " + " | ".join(METRICS) + " | valid recall@20 | best epoch | s/epoch |"
    if paper is not None:
        head += " paper (Baby) R / P / N |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in names:
        rs = runs.get((name, cold))
        if not rs:
            continue
        if any(group not in r["test"][protocol] for r in rs):
            continue  # e.g. no warm group under the papers' cold-start protocol
        cells = [ms([r["test"][protocol][group][m] for r in rs]) for m in METRICS]
        row = f"| {name} | {len(rs)} | " + " | ".join(cells)
        row += f" | {ms([r['best_valid']['recall@20'] for r in rs])}"
        row += f" | {np.mean([r['best_epoch'] for r in rs]):.0f} | {np.mean([r['seconds_per_epoch'] for r in rs]):.3f} |"
        if paper is not None:
            p = paper.get(name)
            row += (" " + " / ".join(f"{v:.2f}" for v in p) + " |") if p else " |"
        lines.append(row)
    return lines


def paired(runs: dict, pairs: list[tuple[str, str, float]]) -> list[str]:
    """Per-seed differences a - b of test recall@20 / ndcg@20 (same seed: same split and
    initialisation seed), for the pairs whose two rows share seeds."""
    out = []
    for a, b, cold in pairs:
        ra = {r["seed"]: r for r in runs.get((a, cold), [])}
        rb = {r["seed"]: r for r in runs.get((b, cold), [])}
        seeds = sorted(set(ra) & set(rb))
        if not seeds:
            continue
        group = "cold" if cold else "all"
        d = {m: [ra[s]["test"]["recbole"][group][m] - rb[s]["test"]["recbole"][group][m] for s in seeds]
             for m in ("recall@20", "ndcg@20")}
        per = ", ".join(f"{100 * v:+.2f}" for v in d["recall@20"])
        out.append(f"| {a} - {b} | {'yes' if cold else 'no'} | {len(seeds)} | {per} | "
                   f"{100 * np.mean(d['recall@20']):+.2f} | {sum(v > 0 for v in d['recall@20'])} of {len(seeds)} | "
                   f"{100 * np.mean(d['ndcg@20']):+.2f} | {sum(v > 0 for v in d['ndcg@20'])} of {len(seeds)} |")
    return out


def tuning(runs: dict, ds: str) -> None:
    """Tables 7 and 8: the paper's batch size x learning rate grid on seed 0 (validation
    recall@20 per point), then each model at its best validation point (the first of equal
    scores in grid order, as ``run.py --tables 8`` picks it) over its seeds, with the
    orderings' paired differences."""
    from run import GRID, GRID_MODELS, best_of, grid_name, grid_names  # the grid and its selection rule, in one place

    seed0 = {n: r for (n, c), rs in runs.items() if not c for r in rs if r["seed"] == 0 and 7 in r["tables"]}
    if not seed0:
        return
    print(f"## {ds}: Table 7, the paper's search space (section 4.2), seed-0 validation recall@20 in %\n")
    print("| model | batch | " + " | ".join(f"lr {lr:.0e}" for lr in GRID["lr"]) + " |")
    print("|---|---|" + "---|" * len(GRID["lr"]))
    chosen: dict[str, str] = {}
    for model in GRID_MODELS:
        names = grid_names(model)
        if all(n in seed0 for n in names):
            chosen[model] = best_of(names, {n: seed0[n]["best_valid"]["recall@20"] for n in names})
        for bs in GRID["batch_size"]:
            cells = []
            for lr in GRID["lr"]:
                n = grid_name(model, bs, lr)
                v = f"{100 * seed0[n]['best_valid']['recall@20']:.2f}" if n in seed0 else "-"
                cells.append(f"**{v}**" if n == chosen.get(model) else v)
            print(f"| {model} | {bs} | " + " | ".join(cells) + " |")
    print()
    if chosen:
        print(f"## {ds}: Table 8, each model at its best seed-0 validation point, recbole protocol\n")
        print("\n".join(table(runs, list(chosen.values()), 0.0, "recbole", "all", None)) + "\n")
        order = [("MM-GEF", "LATTICE"), ("MM-GEF fixed", "LATTICE"), ("LATTICE", "LightGCN")]
        rows = paired(runs, [(chosen[a], chosen[b], 0.0) for a, b in order if a in chosen and b in chosen])
        if rows:
            print("| a - b | cold start | seeds | recall@20 a - b per seed | mean | a ahead | ndcg@20 mean | a ahead |")
            print("|---|---|---|---|---|---|---|---|")
            print("\n".join(rows) + "\n")


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path, nargs="?", default=HERE / "results", help="run.py's results folder")
    root = ap.parse_args().results
    data = load(root)
    print("# MM-GEF experiments (generated by experiments/mmgef/summarize.py)\n")
    print("Test metrics in %, mean ± std over seeds; model selection on validation recall@20.")
    print("The paper's columns are Amazon Baby (different data): for orientation only.\n")
    for ds, runs in data.items():
        warm_names = list(dict.fromkeys(n for (n, c), rs in runs.items() if not c and 1 in rs[0]["tables"]))
        t2_names = list(dict.fromkeys(n for (n, c), rs in runs.items() if not c and 2 in rs[0]["tables"]))
        cold_names = list(dict.fromkeys(n for (n, c), rs in runs.items() if c and 3 in rs[0]["tables"]))
        hidden_names = list(dict.fromkeys(n for (n, c), rs in runs.items() if c and 5 in rs[0]["tables"]))
        for protocol in ("recbole", "mmrec"):
            print(f"## {ds}: Table 1 (methods and ablations), {protocol} protocol\n")
            print("\n".join(table(runs, warm_names, 0.0, protocol, "all", PAPER_T1)) + "\n")
        print(f"## {ds}: Table 2 (modalities), recbole protocol\n")
        print("\n".join(table(runs, t2_names, 0.0, "recbole", "all", PAPER_T2)) + "\n")
        if cold_names:
            print(f"## {ds}: Table 3 (cold start, the papers' protocol: 20% of the items, valid and test hold "
                  "only their interactions), recbole protocol\n")
            print("\n".join(table(runs, cold_names, 0.2, "recbole", "cold", PAPER_T3)) + "\n")
        if hidden_names:
            for group in ("cold", "warm", "all"):
                print(f"## {ds}: cold start, hidden protocol (20% of the items lose their training interactions), "
                      f"{group} items, recbole protocol\n")
                print("\n".join(table(runs, hidden_names, 0.2, "recbole", group, None)) + "\n")
        pairs = [("MM-GEF", "LATTICE", 0.0), ("MM-GEF fixed", "LATTICE", 0.0), ("LATTICE", "LightGCN", 0.0),
                 ("MM-GEF", "LightGCN", 0.0), ("MM-GEF fixed", "LightGCN", 0.0),
                 ("MM-GEF", "LATTICE + CF", 0.2), ("MM-GEF", "LATTICE", 0.2), ("MM-GEF fixed", "LATTICE + CF", 0.2),
                 ("MM-GEF", "MM-GEF w/o Att", 0.2), ("MM-GEF", "MM-GEF w/o CF", 0.2), ("MM-GEF w/o CF", "LATTICE", 0.2)]
        rows = paired(runs, pairs)
        if rows:
            print(f"## {ds}: paired differences by seed (test, recbole protocol; cold start: the cold items)\n")
            print("| a - b | cold start | seeds | recall@20 a - b per seed | mean | a ahead | ndcg@20 mean | a ahead |")
            print("|---|---|---|---|---|---|---|---|")
            print("\n".join(rows) + "\n")
        grid = [n for (n, c), rs in runs.items() if not c and 4 in rs[0]["tables"]]
        best = None
        if grid:
            print(f"## {ds}: LightGCN grid (layers x reg), selected on validation recall@20, mmrec protocol\n")
            print("| config | seeds | valid recall@20 | test recall@20 | test ndcg@20 |")
            print("|---|---|---|---|---|")
            best = max(grid, key=lambda n: np.mean([r["best_valid"]["recall@20"] for r in runs[(n, 0.0)]]))
            for n in grid:
                rs = runs[(n, 0.0)]
                mark = " (best on validation)" if n == best else ""
                print(f"| {n}{mark} | {len(rs)} | {ms([r['best_valid']['recall@20'] for r in rs], 1.0, 4)} | "
                      f"{ms([r['test']['mmrec']['all']['recall@20'] for r in rs], 1.0, 4)} | "
                      f"{ms([r['test']['mmrec']['all']['ndcg@20'] for r in rs], 1.0, 4)} |")
            print()
        tuning(runs, ds)
        ref = [(n, v) for (d, n), v in MMREC.items() if d == ds]
        if ref:
            print(f"## {ds}: side by side with MMRec (mmrec protocol, test)\n")
            print("| model | ours recall@20 | ours ndcg@20 | ours s/epoch | MMRec recall@20 | MMRec ndcg@20 | MMRec s/epoch |")
            print("|---|---|---|---|---|---|---|")
            for name, (r, n, s) in ref:
                variants = [c for (c, cold) in runs if not cold and (c == name or c.startswith(name + " "))
                            and (c not in grid or c == best) and 7 not in runs[(c, cold)][0]["tables"]] or [name]
                for variant in variants:
                    rs = runs.get((variant, 0.0), [])
                    ours = (
                        [ms([x["test"]["mmrec"]["all"][m] for x in rs], 1.0, 4) for m in ("recall@20", "ndcg@20")]
                        + [f"{np.mean([x['seconds_per_epoch'] for x in rs]):.3f}"]
                        if rs else ["-", "-", "-"]
                    )
                    print(f"| {variant} | " + " | ".join(ours) + f" | {r:.4f} | {n:.4f} | {s if s is not None else '-'} |")
            print()


if __name__ == "__main__":
    main()
