"""Pictures of training and tuning (matplotlib, the ``plot`` extra).

* :func:`draw_runs` (``graphrec plot RUN [RUN ...] --out FILE.png``): per epoch, the
  training loss and the validation metric of one or several runs overlaid, each run's
  best epoch marked; when a run logs learned weights (MM-GEF's graph weights,
  LATTICE's modality weights: the ``model`` entries of its history), a third panel
  draws them over the epochs.
* :func:`draw_study` (written by ``graphrec tune``): the validation metric of every
  trial with the best so far, and Optuna's parameter importances.

Images are written under a temporary name beside the output and renamed into place.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from graphrec.errors import ConfigError, DataError

__all__ = ["draw_runs", "draw_study", "require_matplotlib", "HISTORY_PLOT", "IMPORTANCE_PLOT"]

HISTORY_PLOT = "optimization_history.png"
IMPORTANCE_PLOT = "param_importances.png"


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or a one-line
    :class:`ConfigError` saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'graphrec[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_runs(
    runs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    labels: Sequence[str] | None = None,
    metric: str | None = None,
    items: str | None = None,
) -> Path:
    """Draw the curves of the run directories ``runs`` into ``out`` (module doc).

    ``labels`` name the runs in the legend (default: their folder names); ``metric`` is
    the validation metric drawn (default: the one the first run selected on, its
    ``valid_metric``: a ranking run's ``recall@20``, a CTR run's ``auc``, unless chosen) and ``items`` the items it is of (``all``, ``cold`` or
    ``warm``; default: what the first run selected on, ``--select-on``). A run without
    that metric (``cold`` beside a run without a cold-start split) is left out of the
    validation panel with a ``UserWarning`` naming it (at least one run must have it).
    """
    from graphrec.train.config import SELECT_GROUPS
    from graphrec.train.fit import selected_label, valid_metrics
    from graphrec.train.record import check_history, is_logged_loss, learned_weights, load_record

    if not runs:
        raise ConfigError("give at least one run directory")
    if labels is not None and len(labels) != len(runs):
        raise ConfigError(f"{len(labels)} --label for {len(runs)} runs: give one per run or none")
    records = [load_record(r) for r in runs]
    for run, record in zip(runs, records):
        if not isinstance(record.get("history"), list) or not record["history"]:
            raise DataError(f"{run}: the record has no per-epoch history to draw")
        check_history(record, run)  # the rows it draws from: an edited one is a line naming it
    first = records[0].get("train_config") or {}
    if metric is None:  # what the first run selected on: its valid_metric (a CTR run recorded without one: AUC)
        from graphrec.train.ctr import SELECTION_METRIC

        ctr = records[0].get("task") == "ctr"
        metric = str(first.get("valid_metric", SELECTION_METRIC if ctr else "recall@20"))
    items = items or str(first.get("select_on", "all"))
    if items not in SELECT_GROUPS:
        raise ConfigError(f"--items {items!r} is not one of {', '.join(sorted(SELECT_GROUPS))}")

    what = f"validation {selected_label(metric, items)}"
    if not any(metric in valid_metrics(row, items) for rec in records for row in rec["history"]):
        protocols = {((rec.get("dataset") or {}).get("transforms") or {}).get("cold_start_protocol") for rec in records}
        if items == "warm" and protocols == {"papers"}:  # a cold-start run, without a warm group
            raise DataError("--items warm: under the papers' cold-start protocol validation holds cold items only, "
                            "so there is no warm curve: use --items all or cold (--cold-protocol hidden keeps warm "
                            "items in validation)")
        raise DataError(f"no run has a {what} in its history: choose another --metric"
                        + ("" if items == "all" else " or --items (cold and warm need a cold-start run)"))
    labels = list(labels) if labels is not None else _labels(runs)
    plt = require_matplotlib()

    learned = any(learned_weights(row) for rec in records for row in rec["history"])
    n = 3 if learned else 2
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.0))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (record, label) in enumerate(zip(records, labels)):
        color = colors[i % len(colors)]
        rows = record["history"]
        losses = [(r["epoch"], r["loss"]) for r in rows if isinstance(r.get("loss"), (int, float))]
        if losses:
            axes[0].plot(*zip(*losses), color=color, label=label)
        for name in sorted({k for r in rows for k in (r.get("model") or {}) if is_logged_loss(k)}):  # the cold path's base_loss
            pts = [(r["epoch"], r["model"][name]) for r in rows if name in (r.get("model") or {})]
            axes[0].plot(*zip(*pts), color=color, linestyle="--", label=f"{label}: {name}")
        # a metric left undefined (NaN, stored as null) is no point of the curve
        values = [(r["epoch"], valid_metrics(r, items).get(metric)) for r in rows]
        valid = [(e, float(v)) for e, v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        if valid:
            best = record.get("best_epoch")
            at = next((v for e, v in valid if e == best), None)
            if at is None:  # no recorded best epoch (an old record): the best value, logloss the lowest
                pick = min if metric == "logloss" else max
                best, at = pick(valid, key=lambda ev: ev[1])
            axes[1].plot(*zip(*valid), color=color, marker="." if len(valid) < 60 else None,
                         label=f"{label} (best epoch {best}: {at:.4f})")
            axes[1].axvline(best, color=color, linestyle=":", linewidth=1)
            axes[1].plot([best], [at], marker="*", markersize=13, color=color, markeredgecolor="black")
        else:  # e.g. --items cold beside a run without a cold-start split: said, not silently missing
            warnings.warn(f"run {label} has no {what} in its history: it is left out of the validation panel",
                          stacklevel=2)
        if learned:
            names = sorted({k for r in rows for k in learned_weights(r)})
            styles = ["-", "--", "-.", ":"]
            for j, name in enumerate(names):
                pts = [(r["epoch"], r["model"][name]) for r in rows if name in (r.get("model") or {})]
                axes[2].plot(*zip(*pts), color=color, linestyle=styles[j % len(styles)], label=f"{label}: {name}")
    axes[0].set(title="training loss", xlabel="epoch", ylabel=loss_label(records))
    axes[1].set(title=f"validation {metric}" + ("" if items == "all" else f", {items} items"), xlabel="epoch",
                ylabel=metric)
    if learned:
        axes[2].set(title="learned weights", xlabel="epoch", ylabel="weight")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out, plt)


def _auxiliary(record: Mapping[str, Any]) -> str | None:
    """What a CTR run's training loss adds to the log loss (its model's own terms,
    :meth:`graphrec.models.ctr.CTRModel.losses`): GMMF's reconstruction loss (unless
    ``--no-autoencoder``), MARN's adversarial terms (unless ``--adversarial none``)."""
    params = record.get("model_params") or {}
    if record.get("model") == "gmmf" and params.get("use_autoencoder", True):
        return "GMMF: + reconstruction loss"
    if record.get("model") == "marn" and params.get("adversarial", "ddma") != "none":
        return "MARN: + adversarial terms"
    return None


def loss_label(records: Sequence[Mapping[str, Any]]) -> str:
    """The loss axis' label of these runs, naming what their recorded ``loss`` sums: for
    ranking runs without the cold-item path, what their models' registry entries declare
    (``loss=``: "BPR loss" for BPR plus L2 alone) where they agree, else "training loss";
    log loss for CTR runs plus the auxiliary terms of the GMMF or MARN runs drawn
    (:func:`_auxiliary`)."""
    tasks = {rec.get("task", "ranking") for rec in records}
    if tasks == {"ranking"}:
        from graphrec.train.registry import registered_models

        declared = {e.name: e.loss for e in registered_models("ranking")}
        labels = {declared.get(rec.get("model", "lightgcn"), "training loss")
                  if (rec.get("model_params") or {}).get("cold_path", "none") == "none" else "training loss"
                  for rec in records}
        # BM3 has no BPR term; FREEDOM, MGCN and SMORE add their own; the cold-item path its loss
        return f"{labels.pop() if len(labels) == 1 else 'training loss'} (mean per batch)"
    if tasks != {"ctr"}:
        return "training loss (mean per batch)"
    extra = sorted({a for a in map(_auxiliary, records) if a is not None})
    return "log loss (mean per batch)" if not extra else f"log loss (mean per batch; {', '.join(extra)})"


def _labels(runs: Sequence[str | os.PathLike]) -> list[str]:
    """Folder names, with the parent's name where the name is a number (a tune trial,
    ``trials/3``) or two runs share one."""
    paths = [Path(r).resolve() for r in runs]
    names = [p.name for p in paths]
    shared = len(set(names)) < len(names)
    return ["/".join(p.parts[-2:]) if shared or p.name.isdigit() else p.name for p in paths]


def draw_study(study: Any, out: str | os.PathLike, metric: str) -> tuple[list[Path], list[str]]:
    """``out/optimization_history.png`` and ``out/param_importances.png`` of an Optuna
    study; returns the images written and a note for each one that could not be (no
    matplotlib, too few completed trials), so a tune never fails on its pictures."""
    import optuna

    try:
        plt = require_matplotlib()
    except ConfigError:
        return [], ["no plots: matplotlib is not installed (pip install 'graphrec[plot]')"]
    out = Path(out)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values]
    written, notes = [], []
    if not complete:
        return [], ["no plots: no trial completed"]

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.scatter([t.number for t in complete], [t.value for t in complete], color="tab:blue", zorder=3, label="completed trial")
    if pruned:
        ax.scatter([t.number for t in pruned], [t.intermediate_values[t.last_step] for t in pruned], marker="x",
                   color="tab:gray", zorder=3, label="pruned (last validation)")
    best, xs, ys = float("-inf"), [], []
    for t in sorted(complete, key=lambda t: t.number):
        best = max(best, t.value)
        xs.append(t.number)
        ys.append(best)
    ax.step(xs, ys, where="post", color="tab:red", label="best so far")
    ax.set(title=f"{study.study_name}: validation {metric} per trial", xlabel="trial",
           ylabel=f"validation {metric} (trial's best epoch)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(save_figure(fig, out / HISTORY_PLOT, plt))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            evaluator = optuna.importance.PedAnovaImportanceEvaluator()  # no scikit-learn needed
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (ValueError, RuntimeError) as e:
            importances, caught = {}, [str(e)]
    if len(complete) < 3 or caught or len(importances) < 1:
        notes.append(f"no {IMPORTANCE_PLOT}: parameter importances need more completed trials (have {len(complete)})")
        return written, notes
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(names) + 1.6))
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    for y, n in enumerate(names):
        ax.text(importances[n], y, f" {importances[n]:.2f}", va="center", fontsize=8)
    ax.set(title=f"{study.study_name}: parameter importances (PED-ANOVA, {len(complete)} trials)",
           xlabel=f"importance for validation {metric}")
    ax.set_xlim(0, max(importances.values()) * 1.2 or 1)
    fig.tight_layout()
    written.append(save_figure(fig, out / IMPORTANCE_PLOT, plt))
    return written, notes


def save_figure(fig: Any, out: str | os.PathLike, plt: Any, dpi: int = 120) -> Path:
    """``fig`` saved as ``out`` (format from its suffix, PNG without one) through
    :func:`graphrec._atomic.atomic_file`, then closed."""
    from graphrec._atomic import atomic_file

    out = Path(out)
    try:
        with atomic_file(out) as tmp:
            fig.savefig(tmp, dpi=dpi, format=out.suffix[1:] or "png")
    finally:
        plt.close(fig)
    return out
