#!/usr/bin/env python
"""Does image decoding overlap with encoding in ``extract_item_features``? (stand-in encoder)

On a GPU the image tower is fast and the decoding threads set the pace; on a CPU the
tower dominates. Either way the end-to-end time of the image modality should approach
``max(decode, encode)``, not ``decode + encode``. This script measures the three with a
stand-in encoder whose ``encode_images`` sleeps ``--encode-seconds`` per batch (a sleep
releases the GIL as a GPU or torch kernel does) and returns per-channel statistics of an
8 x 8 grid of each image's pixels, so that the timing of the input side is real and the model side is fixed:

* ``decode + preprocess``: the posters decoded (``graphrec.features.load_image``) and
  preprocessed (CLIP's evaluation transform at 224: resize, centre crop, normalise) in
  ``--workers`` threads, no encoder;
* ``encode only``: the stand-in encoder on ready tensors (``batches x --encode-seconds``);
* ``end-to-end``: ``extract_item_features`` on the same ``--n`` posters (MovieLens-small's
  400 posters, cycled), ``--batch-size`` per batch.

Each row keeps the fastest of ``--repeats`` runs. The CPU wait of the machine while
timing (``/proc/pressure/cpu``) is printed: more than a few % means other processes
disturbed the numbers.

Usage (from the repository root)::

    PYTHONPATH=. python experiments/benchmarks/feature_prefetch.py --n 1280 --batch-size 64 --workers 2 \\
        --encode-seconds 0.25
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from experiments._script import (best_of, check_data_root, check_out_file, cpu_wait_total, fail,  # noqa: E402
                                one_line_errors)


class SleepingEncoder:
    """An image encoder whose model takes ``seconds`` per batch (a sleep) and whose
    preprocessing is CLIP's evaluation transform at 224 (torchvision)."""

    dim = 6
    input_size = 224

    def __init__(self, seconds: float) -> None:
        from torchvision import transforms as T

        self.seconds = seconds
        self._transform = T.Compose([
            T.Resize(224, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(224),
            T.ToTensor(),
            T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
        ])

    def preprocess(self, image: Any) -> Any:
        return self._transform(image)

    def encode_images(self, pixels: Any) -> Any:
        import torch

        time.sleep(self.seconds)
        grid = pixels[:, :, ::28, ::28]  # an 8 x 8 grid of pixels: cheap next to the sleep
        return torch.cat([grid.mean(dim=(2, 3)), grid.amax(dim=(2, 3))], dim=1).numpy()

    def describe(self) -> dict[str, Any]:
        return {"backend": "stand-in", "model": f"sleep {self.seconds} s per batch", "dim": self.dim}


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=1280, help="posters to embed (the 400 posters, cycled)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="image decoding threads")
    ap.add_argument("--encode-seconds", type=float, default=0.25, help="the stand-in model's time per batch")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="also write the report to this file")
    args = ap.parse_args(argv)
    if args.n < 1 or args.batch_size < 1 or args.workers < 1 or args.repeats < 1 or args.encode_seconds < 0:
        fail("--n, --batch-size, --workers and --repeats must be at least 1, --encode-seconds at least 0")
    out = check_out_file(args.out)
    check_data_root(args.data_root, "movielens-small/posters", "movielens-small (posters/)")

    from concurrent.futures import ThreadPoolExecutor

    import torch

    from graphrec.features import extract_item_features, load_image

    torch.set_num_threads(1)  # the stand-in's statistics: keep the CPUs for the decoding threads
    posters = sorted((args.data_root / "movielens-small" / "posters").glob("*.jpg"))
    paths = [posters[k % len(posters)] for k in range(args.n)]
    enc = SleepingEncoder(args.encode_seconds)
    tensors: list[Any] = []

    def decode() -> None:
        with ThreadPoolExecutor(args.workers) as pool:
            tensors[:] = list(pool.map(lambda p: enc.preprocess(load_image(p, enc.input_size)), paths))

    def encode_only() -> None:
        for s in range(0, len(tensors), args.batch_size):
            enc.encode_images(torch.stack(tensors[s : s + args.batch_size]))

    def end_to_end() -> None:
        extract_item_features(len(paths), image_paths=paths, image_encoder=enc, batch_size=args.batch_size,
                              workers=args.workers)

    decode()  # warm-up: file cache, allocator
    wait0, wall0 = cpu_wait_total(), time.perf_counter()
    rows = [
        ("decode + preprocess", best_of(args.repeats, decode)),
        ("encode only (stand-in)", best_of(args.repeats, encode_only)),
        ("end-to-end", best_of(args.repeats, end_to_end)),
    ]
    wait1, wall1 = cpu_wait_total(), time.perf_counter()
    d, e, both = (s for _, s in rows)
    lines = [
        "# Image decoding and encoding overlap (stand-in encoder)",
        f"graphrec {git_commit()}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"{args.n} posters, batch {args.batch_size}, {args.workers} decoding threads, "
        f"{args.encode_seconds} s per batch; best of {args.repeats}",
        f"command: python {' '.join(sys.argv)}",
        "",
        f"| {'what':<24} | {'seconds':>8} |",
        f"|{'-' * 26}|{'-' * 10}|",
        *(f"| {name:<24} | {s:>8.2f} |" for name, s in rows),
        "",
        f"end-to-end / (decode + encode) = {both / (d + e):.2f}; end-to-end / max(decode, encode) = {both / max(d, e):.2f}",
    ]
    if wait0 is not None and wait1 is not None:
        lines.append(f"CPU wait while timing: {100 * (wait1 - wait0) / 1e6 / (wall1 - wall0):.1f}% of wall time")
    report = "\n".join(lines)
    print(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report + "\n")


if __name__ == "__main__":
    with one_line_errors():
        main()
