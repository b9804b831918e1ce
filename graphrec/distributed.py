"""Several processes on torch.distributed: the process group, the shards, the launcher.

graphrec runs data-parallel on PyTorch's own runtime (``torch.distributed``), never a
home-made one. A *rank* is one process; ``world`` is how many there are. Every rank
holds the dataset, the graphs and the model; work is split by :class:`Shard`:

* training (:func:`graphrec.train.fit`): rank ``r`` takes its part of every optimiser
  step's triples and DistributedDataParallel averages the gradients;
* evaluation (:func:`graphrec.train.evaluate.evaluate_ranking`): rank ``r`` scores the
  user batches ``r, r + world, ...``; the per-batch metric sums are gathered and added
  in batch order, so the metrics are exactly those of one process;
* graph building (:func:`graphrec.graphs.knn.knn_graph`,
  :func:`graphrec.graphs.cooccur.cooccurrence_graph`): rank ``r`` computes its row
  blocks; the blocks are gathered into the one graph a single process builds.

Two ways to start ranks, the same code path:

* ``graphrec train MODEL ... --nproc N`` / ``graphrec build-graph ... --nproc N``:
  :func:`launch` starts N local processes (``python -m graphrec`` with the same command line) with the environment ``torchrun`` sets;
* ``torchrun --nnodes M --nproc-per-node N -m graphrec train ...``: across machines.

A process started either way finds ``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` in its environment and joins the group in :func:`init_from_env` (gloo
on CPU, NCCL on CUDA). Under :func:`launch` the rendezvous store is the launcher's own
(:func:`host_store`, on a port the system picks and holds from the start), so no other
process can take the port between the launcher choosing it and rank 0 binding it.
Without them (and without a group initialised by the caller) :func:`current` is
``None`` and everything runs as one process, unchanged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Sequence

import torch
import torch.distributed as dist

from graphrec.errors import ConfigError

__all__ = ["Shard", "current", "init_from_env", "launched", "launch", "leave", "all_sum", "all_gather_objects", "broadcast", "part"]

#: environment variables a launcher (torchrun or :func:`launch`) sets for every rank
ENV = ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")

#: set to ``1`` by :func:`launch` for its ranks: the store at ``MASTER_ADDR:MASTER_PORT``
#: already runs (:func:`host_store`) and every rank, rank 0 included, joins it as a client
HOSTED_STORE = "GRAPHREC_HOSTED_STORE"


@dataclass(frozen=True)
class Shard:
    """This process's place in the group: ``rank`` of ``world`` (``local_rank`` on its machine)."""

    rank: int
    world: int
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the rank that prints and writes."""
        return self.rank == 0


def current() -> Shard | None:
    """The process group this process is in, or ``None`` when it runs alone."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    return Shard(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def launched() -> bool:
    """Whether a launcher (torchrun or :func:`launch`) started this process as a rank."""
    return all(k in os.environ for k in ENV)


def init_from_env(device: str = "cpu") -> Shard | None:
    """Join the process group a launcher describes in the environment (gloo for a CPU
    ``device``, NCCL for CUDA), once; ``None`` when this process was not launched as a rank.

    Returns the :class:`Shard`. The CUDA device of a rank is ``cuda:LOCAL_RANK``.
    """
    if current() is not None:
        return current()
    if not launched():
        return None
    if not dist.is_available():  # pragma: no cover - every torch wheel graphrec supports has it
        raise ConfigError("this torch build has no torch.distributed: run in one process (drop --nproc)")
    from graphrec._device import resolve_device

    backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"  # "auto": CUDA where there is one
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", 0))
        if local >= torch.cuda.device_count():
            raise ConfigError(
                f"rank with LOCAL_RANK {local} has no GPU of its own ({torch.cuda.device_count()} visible): "
                "start one process per GPU (--nproc at most the GPU count) or use --device cpu")
        torch.cuda.set_device(local)
    if os.environ.get(HOSTED_STORE) == "1":
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False)
        dist.init_process_group(backend, store=store, rank=int(os.environ["RANK"]),
                                world_size=int(os.environ["WORLD_SIZE"]))
    else:  # torchrun's rendezvous (rank 0 or torchrun's agent hosts the store)
        dist.init_process_group(backend)
    return current()


def leave(wait: bool = False, timeout: float = 60.0) -> None:
    """Leave the process group (before the process exits: torch warns otherwise).

    ``wait``: first wait (at most ``timeout`` seconds) until every rank is leaving too,
    for the end of a run that succeeded. Without it a rank that finishes first can tear
    its gloo connections down while a peer still holds them, and the peer's transport
    thread then aborts the process ("terminate called without an active exception").
    A rank that leaves on an error does not wait: its peers may never arrive.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if wait:
        try:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=timedelta(seconds=timeout))
            else:
                dist.barrier()
        except (dist.DistError, RuntimeError):  # a peer that stopped: nothing to wait for
            pass
    dist.destroy_process_group()


def part(n: int, shard: Shard) -> slice:
    """The contiguous part of ``range(n)`` that ``shard`` takes (``numpy.array_split``'s
    cut: the first ``n % world`` ranks take one more)."""
    q, r = divmod(n, shard.world)
    start = shard.rank * q + min(shard.rank, r)
    return slice(start, start + q + (1 if shard.rank < r else 0))


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over the ranks (in place, returned), on ``t``'s device."""
    if current() is not None:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (any picklable object)."""
    if current() is None:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if current() is None:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def host_store() -> dist.TCPStore:
    """A rendezvous store served by this process on 127.0.0.1, at a port the system picks
    when it binds (``store.port``); ranks started with ``MASTER_PORT=store.port`` and
    :data:`HOSTED_STORE` ``=1`` join it. It serves while the object lives.

    Picking a free port first and letting rank 0 bind it later leaves a window in which
    another process can take the port; a store bound at once has none.
    """
    return dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)


def check_nproc(nproc: int) -> None:
    """``--nproc`` is a number of processes; in a process a launcher started it is 1 or the
    launcher's own ``WORLD_SIZE`` (the ranks :func:`launch` starts keep ``--nproc N`` in
    their command line, so that the command a run records resumes it as started)."""
    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {nproc}")
    if nproc > 1 and launched() and nproc != int(os.environ["WORLD_SIZE"]):
        raise ConfigError(f"--nproc {nproc} inside a process that torchrun started with {os.environ['WORLD_SIZE']} "
                          "processes: use one of the two")


def starts_ranks(nproc: int) -> bool:
    """Whether this process is to start ``nproc`` ranks (not one of them already)."""
    return nproc > 1 and not launched()


#: seconds between a rank's failure and the launcher's SIGKILL of the ranks still running
_FAILURE_GRACE_S = 1.0
#: the same when the failed ranks all aborted (SIGABRT): that is how a rank can end while
#: an interruption stops the run, and rank 0 may still be keeping the run (its 130 then
#: says so); a genuine abort mid-training also ends rank 0 by itself (its peer is gone)
_ABORT_GRACE_S = 15.0


def launch(argv: Sequence[str], nproc: int, threads: int | None = None) -> int:
    """Run ``python -m graphrec ARGV`` as ``nproc`` local ranks; return the exit status.

    Each rank gets the environment torchrun gives (``RANK``, ``LOCAL_RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR=127.0.0.1``, ``MASTER_PORT``: the port of the store
    this launcher hosts for them, :func:`host_store`) and ``OMP_NUM_THREADS`` =
    ``threads`` or the CPU count divided by ``nproc``. Rank 0 keeps the terminal; the
    others are silent (their stderr goes to a temporary file, read only if they fail).
    When a rank exits with an error the others are stopped a second later (SIGKILL:
    nothing of theirs is half-written, writes happen through temporary names) and each
    failed rank's last error line is printed; a Ctrl-C reaches every rank (rank 0 keeps
    the run as one process does) and the launcher waits for them.
    """
    store = host_store()  # serves until the ranks are done (it lives in this frame)
    port = store.port
    per_rank = threads or max(1, (os.cpu_count() or 1) // nproc)
    procs: list[subprocess.Popen] = []
    logs: list[Any] = []
    for rank in range(nproc):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc),
                   LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   OMP_NUM_THREADS=str(per_rank), **{HOSTED_STORE: "1"},
                   TORCH_CPP_LOG_LEVEL=os.environ.get("TORCH_CPP_LOG_LEVEL", "ERROR"))
        log = None if rank == 0 else tempfile.TemporaryFile(mode="w+b")
        logs.append(log)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "graphrec", *argv], env=env,
            stdout=None if rank == 0 else subprocess.DEVNULL, stderr=None if rank == 0 else log,
        ))
    interrupted = False
    failed_at: float | None = None

    def forward_sigterm(signum: int, frame: Any) -> None:  # a kill of the launcher stops the ranks as Ctrl-C does
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, forward_sigterm)
    try:
        while True:
            try:
                codes = [p.poll() for p in procs]
                if not interrupted and any(c not in (None, 0, 130) for c in codes):
                    # a failure, not a Ctrl-C: stop the others, after a moment in which
                    # a rank that failed too (or is still exiting) ends by itself with
                    # its own error line, rather than killed without one
                    failed_at = time.monotonic() if failed_at is None else failed_at
                    aborts = all(c in (None, 0, 130, -signal.SIGABRT) for c in codes)
                    if time.monotonic() - failed_at >= (_ABORT_GRACE_S if aborts else _FAILURE_GRACE_S):
                        for p in procs:
                            if p.poll() is None:
                                p.kill()
                if all(c is not None for c in codes):
                    break
                time.sleep(0.05)
            except KeyboardInterrupt:  # the terminal sent SIGINT to every rank too: wait for them
                interrupted = True
    finally:
        signal.signal(signal.SIGTERM, before)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
    codes = [p.returncode for p in procs]
    # a rank stopped by the interruption can abort while exiting, after rank 0 kept the run
    # (gloo's threads: "terminate called without an active exception"): part of the stop,
    # whether the SIGINT reached this launcher too or the ranks only (rank 0's 130 says so)
    stopped = {0, 130, -signal.SIGKILL, -signal.SIGTERM}
    if codes[0] == 130:
        stopped.add(-signal.SIGABRT)
    # rank 0 prints its own error line; a failing other rank's line is printed here
    for rank, code in enumerate(codes[1:], start=1):
        if code not in stopped:
            sys.stderr.write(f"error: rank {rank} of {nproc} failed (exit {code}): {_last_line(logs[rank])}; "
                             "the other ranks were stopped\n")
    if codes[0] == 0 and all(c in stopped for c in codes[1:]):
        # rank 0 finished (and saved) the work; a stop that reached the others while they
        # were leaving the group came too late to interrupt anything
        return 0
    if codes[0] not in (0, -signal.SIGKILL, -signal.SIGTERM):
        # a rank that lost its peer can abort while exiting, after its error line (gloo's
        # threads, "terminate called without an active exception"): a signal is exit 1
        return codes[0] if codes[0] > 0 else 1
    return 130 if interrupted or 130 in codes else 1


def _last_line(log: Any) -> str:
    """The last error line a rank wrote (its ``error:`` line, else the last line)."""
    log.seek(0)
    lines = [ln.strip() for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("error:"):
            return ln[len("error:"):].strip()
    return lines[-1] if lines else "no message"
