"""Run directories: the trained weights plus a JSON record of everything that made them.

A run directory holds

* ``record.json``: graphrec version, model name and hyper-parameters, training config,
  dataset (path as given, name, fingerprint, statistics), device, environment (Python and
  torch versions, threads, the processor and GPU that ran it, and the git commit of the
  graphrec source when it runs from a checkout: :func:`environment`),
  per-epoch losses and validation metrics, best epoch, final test metrics, timings;
* ``model.pt``: the best ``state_dict`` (tensors only; read back with
  ``torch.load(weights_only=True)``, so a crafted checkpoint cannot run code).

Both are written into a temporary folder that is renamed into place at the end.

The checkpoint is bound to its record: at save time ``record["checkpoint"]`` gets the
file name, the sha256 of the written ``model.pt`` and the model name and
hyper-parameters the weights were trained with. :func:`load_state` (with the record)
refuses, with one line naming the run and what differs, a ``model.pt`` whose hash is
not the recorded one (another run's or another seed's weights, a damaged file) and a
record whose model or hyper-parameters were changed after training. A run written
before the binding existed (no ``checkpoint`` entry) still loads, with a
:class:`UnverifiedCheckpointWarning` saying the weights cannot be verified.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch

from graphrec._atomic import atomic_dir
from graphrec.graphs.build import GraphMemo, MemoEntry
from graphrec._device import resolve_device
from graphrec.errors import DataError

__all__ = ["save_run", "save_tensors", "load_record", "check_record_fields", "check_history", "load_state",
           "file_sha256", "checkpoint_entry", "environment", "processor", "cpu_name", "cpu_identity",
           "torch_cpu_kernels", "source_state", "source_commit", "source_description", "UnverifiedCheckpointWarning"]

RECORD = "record.json"
#: the ``record_version`` of the ranking records this code writes. 2 (2026-12): a cold-item
#: path with ``cold_modalities`` unset fuses the model's ``modalities``; records without
#: the entry (version 1) fused every modality of the dataset, and rebuild as they trained
#: (:func:`graphrec.train.run.buildable_params`)
RECORD_VERSION = 2
WEIGHTS = "model.pt"
#: the folder of a run holding the graphs its model was built over (:func:`save_run`)
RUN_GRAPHS = "graphs"


class UnverifiedCheckpointWarning(UserWarning):
    """A run's ``model.pt`` has no recorded hash (a run written before checkpoints were
    bound to their records): its weights are loaded unverified."""


def is_logged_loss(name: str) -> bool:
    """Whether a value a model logs per epoch (a history row's ``model`` entry,
    ``log_values()``) is a loss (the cold-item path's ``base_loss``), not a learned weight."""
    return name.endswith("_loss")


def learned_weights(row: Mapping[str, Any]) -> dict[str, float]:
    """A history row's learned weights: its model's logged values but the losses."""
    return {k: v for k, v in (row.get("model") or {}).items() if not is_logged_loss(k)}


def _cpuinfo_blocks(cpuinfo: str | os.PathLike) -> list[dict[str, str]]:
    """Linux's ``cpuinfo`` as one ``{field: value}`` per blank-line-separated block (one
    per processor); empty where the file cannot be read (macOS, Windows)."""
    blocks: list[dict[str, str]] = [{}]
    try:
        with open(cpuinfo) as f:
            for line in f:
                name, sep, value = line.partition(":")
                if sep:
                    blocks[-1].setdefault(name.strip(), value.strip())
                elif not line.strip() and blocks[-1]:
                    blocks.append({})
    except OSError:
        return []
    return [b for b in blocks if b]


def cpu_name(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The processor's model name (e.g. ``"AMD EPYC 7B13"``): the first ``model name``
    line of Linux's ``cpuinfo``, else :func:`platform.processor`, else the architecture.

    Floating-point sums are ordered differently on different processors, so a run
    repeated on another machine can differ in the last digits; the record says which
    processor produced its figures."""
    for block in _cpuinfo_blocks(cpuinfo):
        if block.get("model name"):
            return block["model name"]
    return platform.processor() or platform.machine() or "unknown"


def cpu_identity(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str | None:
    """The first processor's vendor, family, model and stepping from Linux's ``cpuinfo``
    (``"AuthenticAMD family 25 model 17 stepping 1"``), or None where it has none.

    A virtual machine often reports a bare model name (``"AMD EPYC"``) for several
    processor generations; these four numbers tell them apart, so two records say
    whether their runs could have come back to the digit."""
    blocks = _cpuinfo_blocks(cpuinfo)
    first = blocks[0] if blocks else {}
    if not all(first.get(k) for k in ("vendor_id", "cpu family", "model", "stepping")):
        return None
    return f"{first['vendor_id']} family {first['cpu family']} model {first['model']} stepping {first['stepping']}"


def torch_cpu_kernels() -> dict[str, str]:
    """What torch computes with on this CPU: the vector instruction set its kernels
    dispatch to (``torch.backends.cpu.get_cpu_capability()``, e.g. ``"AVX512"``) and the
    BLAS it was built with (``BLAS_INFO`` of ``torch.__config__.show()``, e.g.
    ``"mkl"``); an entry torch does not report is left out."""
    out: dict[str, str] = {}
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    if capability is not None:
        out["cpu_capability"] = str(capability())
    match = re.search(r"BLAS_INFO=([\w.+-]+)", torch.__config__.show())
    if match:
        out["blas"] = match.group(1)
    return out


def processor() -> dict[str, str]:
    """The processor that computed a result, as records and the zoo's results hold it:
    ``cpu`` (:func:`cpu_name`), ``cpu_id`` (:func:`cpu_identity`, where Linux reports it)
    and torch's kernels on it (:func:`torch_cpu_kernels`)."""
    identity = cpu_identity()
    return {"cpu": cpu_name(), **({"cpu_id": identity} if identity is not None else {}), **torch_cpu_kernels()}


#: the folder above the graphrec package: a git checkout's root when graphrec runs from one
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def source_state(root: str | os.PathLike | None = None) -> tuple[str, tuple[str, ...]] | None:
    """``(commit, files changed under graphrec/)`` of the git checkout at ``root`` (default
    :data:`SOURCE_ROOT`, where this graphrec is imported from), or None where that is not
    the top of a git checkout (an installed package) or git is missing. The default root
    is asked once per process (the code a process runs is the code it imported)."""
    if root is None:
        return _source_state_here()
    return _git_state(Path(root))


@functools.lru_cache(maxsize=1)
def _source_state_here() -> tuple[str, tuple[str, ...]] | None:
    return _git_state(SOURCE_ROOT)


def _git_state(root: Path) -> tuple[str, tuple[str, ...]] | None:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout

    try:
        if not (root / "graphrec").is_dir():
            return None
        if Path(git("rev-parse", "--show-toplevel").strip()).resolve() != root.resolve():
            return None  # e.g. site-packages inside some other repository
        head = git("rev-parse", "HEAD").strip()
        status = git("status", "--porcelain", "--", "graphrec").splitlines()
        changed = tuple(line[3:] for line in status if line.strip())
    except (OSError, subprocess.SubprocessError):
        return None
    return head, changed


def source_commit(root: str | os.PathLike | None = None) -> str | None:
    """The commit of :func:`source_state`, with ``-dirty`` where files under graphrec/
    differ from it; None outside a git checkout."""
    state = source_state(root)
    if state is None:
        return None
    head, changed = state
    return head + ("-dirty" if changed else "")


def source_description(root: str | os.PathLike | None = None) -> str:
    """The graphrec source (:func:`source_state`) a report was made with, for a human:
    ``abc1234 (graphrec/ clean)``, ``abc1234 + uncommitted changes in graphrec/x.py``, or
    ``unknown (not a git checkout)``."""
    state = source_state(root)
    if state is None:
        return "unknown (not a git checkout)"
    head, changed = state
    return head[:7] + (f" + uncommitted changes in {', '.join(changed)}" if changed else " (graphrec/ clean)")


def environment(device: torch.device | str | None = None) -> dict[str, Any]:
    """A record's ``environment`` entry: Python and torch versions, torch's intra-op
    threads, the processor (:func:`cpu_name`, :func:`cpu_identity` where Linux reports
    it), its logical core count and what torch computes with on it
    (:func:`torch_cpu_kernels`), for a CUDA
    ``device`` the GPU's name, and, where graphrec runs from a git checkout, its commit
    (:func:`source_commit`: ``-dirty`` with uncommitted changes under graphrec/)."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        **processor(),
        "cpu_count": os.cpu_count(),
    }
    dev = None if device is None else resolve_device(device)
    if dev is not None and dev.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(dev)
    commit = source_commit()
    if commit is not None:
        env["graphrec_commit"] = commit
    return env


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checkpoint_entry(weights: Path, record: Mapping[str, Any]) -> dict[str, Any]:
    """``record["checkpoint"]`` for the weights file just written (module doc)."""
    return {
        "file": weights.name,
        "sha256": file_sha256(weights),
        "model": record.get("model"),
        "model_params": _plain(record.get("model_params")),
    }


def save_tensors(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)``, where a failed write is an :class:`OSError` naming the
    file, as any other write's is: torch's zip writer reports a full disk as a
    ``RuntimeError`` (``[enforce fail at inline_container.cc] unexpected pos ...``), which
    the command line would show as a traceback."""
    try:
        torch.save(obj, path)
    except RuntimeError as e:
        text = str(e)
        if "inline_container" not in text and "PytorchStreamWriter" not in text and "file write failed" not in text:
            raise
        try:
            full = shutil.disk_usage(Path(path).parent).free < 1 << 20
        except OSError:
            full = False
        code = errno.ENOSPC if full else errno.EIO
        raise OSError(code, os.strerror(code) if full else f"torch.save could not write it ({text.splitlines()[0]})",
                      str(path)) from None


def save_run(
    out: str | os.PathLike, record: dict[str, Any], state_dict: dict[str, Any], overwrite: bool = True,
    *, claimed: bool = False, fallback: bool = False, graphs: GraphMemo | None = None,
) -> Path:
    """Write ``record.json`` and ``model.pt`` to ``out`` atomically; returns the folder
    written.

    ``record["checkpoint"]`` is set (in the caller's dict too) to bind the weights to the
    record (module doc). An existing ``out`` is replaced only with ``overwrite``; with
    ``fallback`` a taken ``out`` is kept and the run is written beside it, ``OUT-2``
    (``claimed``: ``out`` is the empty folder claimed for it; :func:`graphrec._atomic.atomic_dir`).
    ``graphs``: the graphs the model was built over (:class:`~graphrec.graphs.build.GraphMemo`),
    stored in ``out/graphs/N`` and listed in ``record["run_graphs"]`` (:class:`RunGraphs`
    reads them back).
    """
    out = Path(out)
    placed: list[Path] = []
    with atomic_dir(out, overwrite=overwrite, claimed=claimed, fallback=fallback, placed=placed) as tmp:
        if graphs is not None and graphs.entries:
            record["run_graphs"] = _write_run_graphs(tmp, graphs)
        save_tensors({k: v.detach().cpu() for k, v in state_dict.items()}, tmp / WEIGHTS)
        record["checkpoint"] = checkpoint_entry(tmp / WEIGHTS, record)
        (tmp / RECORD).write_text(json.dumps(record, indent=2, default=_jsonable))
    return placed[0]


def _write_run_graphs(folder: Path, graphs: GraphMemo) -> list[dict[str, Any]]:
    """Store each graph of ``graphs`` in ``folder/graphs/N`` (:func:`graphrec.graphs.store.save_graph`);
    the entries of ``record["run_graphs"]``: its memo key, folder, checksum and emptied rows."""
    from graphrec.graphs.store import save_graph

    entries = []
    for n, (key, entry) in enumerate(graphs.entries.items()):
        where = f"{RUN_GRAPHS}/{n}"
        written = save_graph(folder / where, entry.graph, entry.record)
        entries.append({"key": json.loads(key), "dir": where, "checksum": written.checksum,
                        "emptied_rows": int(entry.emptied_rows)})
    return entries


def run_graphs(record: Mapping[str, Any], run_dir: str | os.PathLike) -> "RunGraphs | None":
    """The memo of the graphs run ``run_dir`` stored (:func:`save_run`'s ``graphs``), for
    building its model over them; None for a run that stored none (recorded before runs
    kept their graphs, or a model without built graphs): its graphs are built again."""
    entries = record.get("run_graphs")
    if not entries:
        return None
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) and isinstance(e.get("key"), Mapping)
                                                 and isinstance(e.get("dir"), str) for e in entries):
        raise DataError(f"{Path(run_dir) / RECORD}: the entry 'run_graphs' is damaged: restore the record or train again")
    return RunGraphs(run_dir, entries)


class RunGraphs(GraphMemo):
    """The graphs a run stored (``record["run_graphs"]``), read from its folder when the
    model's builder asks for them (:func:`graphrec.graphs.build.graph_memo`), each checked
    against its checksum; a graph the run did not store is built (and not kept)."""

    def __init__(self, run_dir: str | os.PathLike, entries: list[Mapping[str, Any]]) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.stored = {json.dumps(e["key"], sort_keys=True): e for e in entries}

    def get(self, dataset: Any, spec: Any) -> MemoEntry | None:
        from graphrec.graphs.store import load_graph

        entry = self.stored.get(self.key(dataset, spec))
        if entry is None:
            return None
        folder = self.run_dir / entry["dir"]
        if not folder.is_dir():
            raise DataError(f"run {self.run_dir} lists its graph {entry['dir']} but the folder is missing: restore it "
                            "or train again")
        graph, record = load_graph(folder)  # its checksum checked against its own record
        if record.checksum != entry.get("checksum"):
            raise DataError(f"{folder}: not the graph run {self.run_dir} was trained over (checksum "
                            f"{str(record.checksum)[:12]}, the run recorded {str(entry.get('checksum'))[:12]}): "
                            "restore it or train again")
        return MemoEntry(graph, record, int(entry.get("emptied_rows") or 0))

    def put(self, dataset: Any, spec: Any, built: Any) -> None:
        pass  # a loaded run keeps no new graph


def load_record(run_dir: str | os.PathLike) -> dict[str, Any]:
    """A run's ``record.json``: a JSON object naming its model; anything else (not JSON,
    not text, a list, ``{}``) is a one-line :class:`DataError`."""
    path = Path(run_dir) / RECORD
    if not path.is_file():
        if (Path(run_dir) / "tune.json").is_file():  # a tune folder: its best run is a run
            raise DataError(f"{run_dir} is a graphrec tune folder, not a run: pass its best run, {Path(run_dir) / 'best'}")
        raise DataError(f"{run_dir} is not a graphrec run directory (no {RECORD}): pass the --out of `graphrec train`")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON ({e}): restore the file or train again") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file (not UTF-8): restore the file or train again") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}: holds a JSON {_json_name(type(record))}, not a run record object: restore the file or train again")
    if not isinstance(record.get("model"), str):
        raise DataError(f"{path}: no model name (not a run record written by `graphrec train`): restore the file or train again")
    return record


def check_record_fields(record: Mapping[str, Any], run_dir: str | os.PathLike, fields: Mapping[str, type]) -> None:
    """Each of ``fields`` (name -> JSON type) is in ``record`` with that type, else a
    one-line :class:`DataError` naming the run's record and the field."""
    path = Path(run_dir) / RECORD
    for name, typ in fields.items():
        value = record.get(name)
        if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
            got = "missing" if name not in record else f"a JSON {_json_name(type(value))}"
            raise DataError(
                f"{path}: the entry {name!r} is {got}, not a JSON {_json_name(typ)}: the record "
                "was damaged or edited; restore it or train again"
            )


def check_history(record: Mapping[str, Any], run_dir: str | os.PathLike) -> list[Mapping[str, Any]]:
    """The record's per-epoch ``history`` when it is a list of rows that each have an
    integer ``epoch`` (what ``graphrec plot`` draws against) and, where present, a numeric
    (or null) ``loss`` and objects for ``valid``, ``valid_groups`` and ``model``; a
    one-line :class:`DataError` naming the record and the row otherwise (a hand edit gave a
    ``KeyError`` traceback)."""
    path = Path(run_dir) / RECORD
    check_record_fields(record, run_dir, {"history": list})

    def damaged(where: str, key: str, value: Any, want: str, present: bool = True) -> DataError:
        got = f"a JSON {_json_name(type(value))}" if present else "missing"
        return DataError(f"{where}: the entry {key!r} is {got}, not a JSON {want}: the record was damaged or edited; "
                         "restore it or train again")

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    for n, row in enumerate(record["history"]):
        where = f"{path}: history[{n}]"
        if not isinstance(row, dict):
            raise DataError(f"{where} is a JSON {_json_name(type(row))}, not a JSON object: the record was damaged or "
                            "edited; restore it or train again")
        if not (number(row.get("epoch")) and isinstance(row["epoch"], int)):
            raise damaged(where, "epoch", row.get("epoch"), "number", "epoch" in row)
        if row.get("loss") is not None and not number(row["loss"]):
            raise damaged(where, "loss", row["loss"], "number")
        for key in ("valid", "valid_groups", "model"):
            if row.get(key) is not None and not isinstance(row[key], dict):
                raise damaged(where, key, row[key], "object")
    best = record.get("best_epoch")
    if best is not None and not (number(best) and isinstance(best, int)):
        raise damaged(str(path), "best_epoch", best, "number")
    return record["history"]


def _json_name(typ: type) -> str:
    """The JSON name of a Python type that ``json.loads`` returns."""
    names = {dict: "object", list: "list", str: "string", int: "number", float: "number", bool: "boolean"}
    return names.get(typ, "null" if typ is type(None) else typ.__name__)


def load_state(
    run_dir: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    record: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's saved ``state_dict``; with its ``record``, verified against the
    record's checkpoint entry first (module doc)."""
    path = Path(run_dir) / WEIGHTS
    if not path.is_file():
        state = ((record or {}).get("tune") or {}).get("state")
        if state in ("pruned", "failed"):  # a tune trial that stopped early keeps no weights
            raise DataError(f"{run_dir} is a {state} trial of a tune study: it kept no weights; use the study's "
                            "best run (OUT/best) or a completed trial")
        raise DataError(f"{path} is missing: the run did not finish; train again")
    if record is not None:
        verify_checkpoint(run_dir, record)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
        raise DataError(f"{path} is not a graphrec checkpoint ({type(e).__name__}): train again") from None


def verify_checkpoint(run_dir: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Refuse a ``model.pt`` that is not the one written with ``record`` (module doc)."""
    run = Path(run_dir)
    ck = record.get("checkpoint")
    if not ck:
        warnings.warn(
            f"run {run}: record.json has no checkpoint hash (a run written by an older graphrec), so "
            f"{WEIGHTS} cannot be verified to be this run's weights; train again to get a verifiable run",
            UnverifiedCheckpointWarning,
            stacklevel=3,
        )
        return
    if ck.get("model") != record.get("model"):
        raise DataError(
            f"run {run}: record.json says model {record.get('model')!r} but its checkpoint was written for "
            f"{ck.get('model')!r}: the record was edited after training; restore it or train again"
        )
    params, saved = _plain(record.get("model_params")) or {}, ck.get("model_params") or {}
    if params != saved:
        diff = sorted(k for k in set(params) | set(saved) if params.get(k, "<unset>") != saved.get(k, "<unset>"))
        k = diff[0]
        raise DataError(
            f"run {run}: record.json's model_params differ from those the checkpoint was trained with "
            f"({k}: {params.get(k, '<unset>')!r} in the record, {saved.get(k, '<unset>')!r} at training"
            + (f", and {len(diff) - 1} more" if len(diff) > 1 else "")
            + "): the record was edited after training; restore it or train again"
        )
    have = file_sha256(run / WEIGHTS)
    if have != ck.get("sha256"):
        raise DataError(
            f"run {run}: {WEIGHTS} is not the checkpoint this run wrote (sha256 {have[:12]} on disk, "
            f"{str(ck.get('sha256'))[:12]} in record.json): it was replaced by another run's weights or "
            "damaged; restore the run's own model.pt or train again"
        )


def _plain(obj: Any) -> Any:
    """JSON round trip: tuples become lists, so saved and loaded parameters compare equal."""
    return None if obj is None else json.loads(json.dumps(obj, default=_jsonable))


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)
