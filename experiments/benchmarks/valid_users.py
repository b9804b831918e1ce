"""Validation over every user against ``--valid-users N`` (TrainConfig.valid_users).

    PYTHONPATH=. python experiments/benchmarks/valid_users.py --items 200000 --valid-users 5000,50000,all

Synthetic data of :func:`million_items.make_dataset` (as many users as items, every user
with one validation interaction), an untrained LightGCN (d 64, 2 layers: the cost of a
validation does not depend on the weights), and :func:`graphrec.train.evaluate_model` on
the validation split with each ``--valid-users`` value in turn, ``--repeats`` rounds, in
one process and one thread. The report gives each validation's seconds and seconds per
validated user, and each value's time over the first value's, measured in the same run
(the machines are shared: compare the ratios).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _sizes(text: str) -> list[int | None]:
    out: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if part == "all":
            out.append(None)
        elif part.isdigit() and int(part) >= 1:
            out.append(int(part))
        else:
            raise argparse.ArgumentTypeError(f"{part!r} is neither a number of users >= 1 nor all")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200_000, help="Items (and users) of the synthetic data.")
    parser.add_argument("--valid-users", type=_sizes, default=[5000, 50000, None],
                        help="Comma-separated numbers of validated users, or all.")
    parser.add_argument("--repeats", type=int, default=2, help="Rounds over the values.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads.")
    args = parser.parse_args()
    if args.items < 100 or args.repeats < 1 or args.threads < 1:
        parser.error("--items must be at least 100, --repeats and --threads at least 1")

    import torch
    from million_items import make_dataset

    from graphrec.train import TrainConfig, build_model, evaluate_model

    torch.set_num_threads(args.threads)
    ds = make_dataset(args.items, n_eval_users=args.items)
    model = build_model("lightgcn", ds, {"embedding_dim": 64})
    print(f"{ds.n_users} users, {ds.n_items} items, {ds.split('valid').nnz} validation interactions, "
          f"{args.threads} thread(s)")
    seconds: dict[int | None, list[float]] = {v: [] for v in args.valid_users}
    users: dict[int | None, int] = {}
    for r in range(args.repeats):
        for v in args.valid_users:
            t0 = time.perf_counter()
            res = evaluate_model(model, ds, "valid", TrainConfig(valid_users=v, progress=False), "cpu")["all"]
            seconds[v].append(time.perf_counter() - t0)
            users[v] = int(res["users"])
            print(f"round {r}: valid_users {v or 'all'}: {seconds[v][-1]:.1f} s, {users[v]} users", flush=True)
    first = args.valid_users[0]
    base = min(seconds[first])
    print("\n| valid_users | users validated | best s | ms per user | time / first's |\n| --- | --- | --- | --- | --- |")
    for v in args.valid_users:
        best = min(seconds[v])
        print(f"| {v or 'all'} | {users[v]} | {best:.1f} | {1000 * best / max(users[v], 1):.2f} | {best / base:.1f}x |")


if __name__ == "__main__":
    main()
