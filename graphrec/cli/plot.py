"""Draw the per-sample modality weights of a CTR run as a heat map (the papers' Figure 4).

`graphrec plot-modality-attention RUN_DIR --out FILE.png` reads ``attention.npz``, which
`graphrec train gmmf|marn --task ctr` writes into its run directory (per test sample:
the weight of each modality), picks ``--rows`` random positive test samples (seeded)
and draws one row per sample, one column per modality, darker = more weight.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from graphrec.cli._common import user_errors

__all__ = ["plot_modality_attention", "draw_modality_attention"]


def _no_weights(record: dict, path: Path) -> str:
    """Why a run has no ``attention.npz``, and which run has one."""
    model = str(record.get("model", "?"))
    fusion = (record.get("model_params") or {}).get("fusion")
    if model == "marn" and fusion not in (None, "maf"):
        return (f"{path} not found: this MARN run (--fusion {fusion}) has no modality weights: MARN has them with "
                "--fusion maf (the default; `graphrec train marn --task ctr --fusion maf --out RUN_DIR`)")
    return (f"{path} not found: only GMMF and MARN (--fusion maf) runs export modality weights, and this is a "
            f"{model} run (train one with `graphrec train gmmf --task ctr --out RUN_DIR`)")


def draw_modality_attention(run_dir: Path, out: Path, rows: int = 20, seed: int = 0, title: str | None = None) -> Path:
    """Write the heat map of ``run_dir``'s ``attention.npz`` to ``out`` (atomically)."""
    import numpy as np

    from graphrec.errors import ARRAY_FILE_ERRORS, DataError
    from graphrec.train.ctr import ATTENTION_FILE

    from graphrec.train.record import load_record
    from graphrec.train.state import check_finished

    # a folder that is no run (a typo) is named as such; an interrupted run has no test
    # split weights yet: how to resume it
    record = load_record(run_dir)
    check_finished(record, run_dir)
    path = Path(run_dir) / ATTENTION_FILE
    if not path.is_file():
        raise DataError(_no_weights(record, path))
    try:
        with np.load(path, allow_pickle=False) as z:
            names = [str(n) for n in z["modalities"]]
            weights = z["weights"]
            labels = z["labels"]
            item_ids = z["item_ids"]
    except ARRAY_FILE_ERRORS as e:
        raise DataError(f"{path}: unreadable ({e}): train the run again") from None
    pos = np.flatnonzero(labels == 1)
    if len(pos) == 0:
        raise DataError(f"{path}: no positive sample to draw")
    pick = np.sort(np.random.default_rng(seed).choice(pos, size=min(rows, len(pos)), replace=False))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2.5, 0.28 * len(pick) + 1.2))
    im = ax.imshow(weights[pick], cmap="Blues", aspect="auto", vmin=0.0, vmax=float(weights[pick].max()))
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(pick)), [str(i) for i in item_ids[pick]], fontsize=7)
    ax.set_xlabel("modality")
    ax.set_ylabel("test item (positive samples)")
    ax.set_title(title or f"modality weights: {Path(run_dir).name}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.05)
    fig.tight_layout()
    from graphrec.train.plots import save_figure

    return save_figure(fig, out, plt, dpi=150)


@user_errors
def plot_modality_attention(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a GMMF or MARN CTR run.")],
    out: Annotated[Path, typer.Option("--out", help="Image file to write (.png, .pdf, .svg).")],
    rows: Annotated[int, typer.Option(help="Number of sampled positive test samples.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the sampled rows.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
) -> None:
    """Draw a run's per-sample modality weights as a heat map (GMMF/MARN Figure 4)."""
    from graphrec._atomic import check_image_output

    from graphrec.errors import ConfigError

    if rows < 1:
        raise ConfigError(f"--rows {rows}: draw at least one sample (--rows 1 or more)")
    if seed < 0:
        raise ConfigError(f"--seed {seed}: seeds are integers >= 0")
    check_image_output(out, option="--out", overwrite=overwrite)  # before anything is read or drawn
    draw_modality_attention(run_dir, out, rows, seed)
    typer.echo(f"heat map written to {out}")
