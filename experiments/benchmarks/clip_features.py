#!/usr/bin/env python
"""Throughput of CLIP feature extraction (graphrec.features) on the MovieLens-small posters.

Times, on ``<data-root>/movielens-small`` (400 real posters, ``posters/<tmdbId>.jpg``,
titles and genres in ``movies.csv``):

* ``images end-to-end``: ``extract_item_features`` on the 400 posters: decoding (PIL, RGB),
  the model's preprocessing in ``--workers`` threads, and the encoder, batch by batch;
* ``images decode+preprocess``: the same decoding and preprocessing alone (no model),
  the input side's ceiling;
* ``images encode only``: the encoder on the already preprocessed tensors (the model's
  ceiling); end-to-end / encode-only is printed as the ratio;
* ``texts end-to-end``: ``extract_item_features`` on "title. genres" of ``--n-texts``
  movies (tokenizer + text tower).

Each row keeps the fastest of ``--repeats`` runs and prints items per second. The model
is built once, before timing (with ``--pretrained none`` it has random weights: the
arithmetic, hence the speed, is that of the real model). The CPU wait of the machine
during the run (``/proc/pressure/cpu``) is printed: more than a few % means other
processes disturbed the timings.

Usage (from the repository root)::

    PYTHONPATH=. python experiments/benchmarks/clip_features.py --model ViT-B-32 --pretrained none \\
        --device cpu --threads 1 --batch-size 32
    PYTHONPATH=. python experiments/benchmarks/clip_features.py --device cuda --batch-size 256   # GPU, AMP
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from experiments._script import best_of, check_data_root, cpu_wait_total  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--model", default="ViT-B-32", help="open_clip model name or config .json")
    ap.add_argument("--pretrained", default="none", help="tag, checkpoint path, or none (random weights)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto", help="auto (AMP on CUDA), fp32, amp")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None, help="image decoding threads")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--n-texts", type=int, default=400, help="texts to embed (first movies of movies.csv with a poster, then others)")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args(argv)
    check_data_root(args.data_root, "movielens-small/movies.csv", "movielens-small (movies.csv, links.csv, posters/)")

    import numpy as np
    import torch

    from graphrec.features import (
        ClipEncoder,
        extract_item_features,
        find_images,
        image_keys,
        load_image,
        read_item_table,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    root = args.data_root / "movielens-small"
    movies = read_item_table(root / "movies.csv")
    links = read_item_table(root / "links.csv")
    ids = np.array(movies.columns[movies.id_column])
    paths = find_images(root / "posters", image_keys(ids, "tmdbId", table=links))
    poster_paths = [p for p in paths if p is not None]
    with_poster = [k for k, p in enumerate(paths) if p is not None]
    order = with_poster + [k for k in range(len(ids)) if paths[k] is None]
    title, genres = movies.columns["title"], movies.columns["genres"]
    texts = [f"{title[k]}. {genres[k]}" for k in order[: args.n_texts]]

    t0 = time.perf_counter()
    enc = ClipEncoder(args.model, None if args.pretrained.lower() in ("none", "random") else args.pretrained,
                      device=args.device, precision=args.precision)
    build_s = time.perf_counter() - t0
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    wait0, wall0 = cpu_wait_total(), time.perf_counter()

    def images_e2e() -> None:
        extract_item_features(len(poster_paths), image_paths=poster_paths, image_encoder=enc,
                              batch_size=args.batch_size, workers=args.workers)
        sync()

    def texts_e2e() -> None:
        extract_item_features(len(texts), texts=texts, text_encoder=enc, batch_size=args.batch_size)
        sync()

    from concurrent.futures import ThreadPoolExecutor

    n_workers = args.workers or min(8, os.cpu_count() or 1)
    tensors: list[Any] = []

    def decode() -> None:
        with ThreadPoolExecutor(n_workers) as pool:
            tensors[:] = list(pool.map(lambda p: enc.preprocess(load_image(p)), poster_paths))

    def encode_only() -> None:
        for s in range(0, len(tensors), args.batch_size):
            enc.encode_images(torch.stack(tensors[s : s + args.batch_size]))
        sync()

    images_e2e()  # warm-up (allocator, kernels, file cache)
    rows = [
        ("images end-to-end", len(poster_paths), best_of(args.repeats, images_e2e)),
        ("images decode+preprocess", len(poster_paths), best_of(args.repeats, decode)),
        ("images encode only", len(tensors), best_of(args.repeats, encode_only)),
        ("texts end-to-end", len(texts), best_of(args.repeats, texts_e2e)),
    ]
    wait1, wall1 = cpu_wait_total(), time.perf_counter()

    print(f"# CLIP feature extraction throughput ({enc.model_name}, pretrained={args.pretrained})")
    print(f"device {args.device} ({torch.cuda.get_device_name() if args.device.startswith('cuda') else platform.processor() or platform.machine()}), "
          f"precision {enc.precision}, batch {args.batch_size}, torch threads {torch.get_num_threads()}, "
          f"decode workers {n_workers}, {os.cpu_count()} CPUs, torch {torch.__version__}; model built in {build_s:.1f} s")
    print(f"command: python {' '.join(sys.argv)}")
    print()
    print(f"| {'what':<26} | {'items':>5} | {'seconds':>8} | {'items/s':>8} |")
    print(f"|{'-' * 28}|{'-' * 7}|{'-' * 10}|{'-' * 10}|")
    for name, n, s in rows:
        print(f"| {name:<26} | {n:>5} | {s:>8.2f} | {n / s:>8.1f} |")
    e2e, enc_only = rows[0][2], rows[2][2]
    print()
    print(f"images end-to-end / encode only: {e2e / enc_only:.2f}x the time")
    if wait0 is not None and wait1 is not None:
        print(f"CPU wait while timing: {100 * (wait1 - wait0) / 1e6 / (wall1 - wall0):.1f}% of wall time")


if __name__ == "__main__":
    main()
