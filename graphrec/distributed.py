"""Several processes on torch.distributed: the process group, the shards, the launcher.

graphrec runs data-parallel on PyTorch's own runtime (``torch.distributed``), never a
home-made one. A *rank* is one process; ``world`` is how many there are. Every rank
holds the dataset, the graphs and the model; work is split by :class:`Shard`:

* training (:func:`graphrec.train.fit`): rank ``r`` takes its part of every optimiser
  step's triples and DistributedDataParallel averages the gradients;
* evaluation (:func:`graphrec.train.evaluate.evaluate_ranking`): rank ``r`` scores the
  user batches ``r, r + world, ...``; the per-batch metric sums are gathered and added
  in batch order, so the metrics are exactly those of one process for the same weights;
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

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Mapping, Sequence

import torch
import torch.distributed as dist

from graphrec.errors import ConfigError, GraphrecError

__all__ = ["Shard", "LostRank", "current", "init_from_env", "launched", "launch", "leave", "all_sum",
           "all_gather_objects", "broadcast", "part", "report_finished", "report_error", "lost_rank_message"]

#: environment variables a launcher (torchrun or :func:`launch`) sets for every rank
ENV = ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")

#: set to ``1`` by :func:`launch` for its ranks: the store at ``MASTER_ADDR:MASTER_PORT``
#: already runs (:func:`host_store`) and every rank, rank 0 included, joins it as a client
HOSTED_STORE = "GRAPHREC_HOSTED_STORE"


#: the key rank 0 sets in the store of :func:`launch` once the run is finished and saved
FINISHED_KEY = "graphrec/finished"
#: the key (``+ RANK``) under which a rank of :func:`launch` leaves its error line for the
#: launcher (:func:`report_error`): JSON ``{"message": ..., "lost": ...}``
ERROR_KEY = "graphrec/error/"


class LostRank(GraphrecError):
    """A collective failed because another rank of the group stopped: a consequence of that
    rank's failure, not a cause. Under :func:`launch` the launcher names the rank that
    failed, and prints this line only when it has nothing else to say."""


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


def check_same_everywhere(what: Mapping[str, Any], fix: str) -> None:
    """Refuse, on every rank, a process group whose ranks were started with other
    ``what`` (the options and the data's fingerprint, by name; JSON-able values) than rank
    0's: under ``torchrun`` each rank is its own command line, and ranks that disagree
    train two models as one (a record naming rank 0's options over mixed metrics) or
    wait for each other forever. A one-line :class:`~graphrec.errors.ConfigError` naming
    the first entry that differs and the rank, ending in ``fix``. Nothing outside a group."""
    if current() is None:
        return
    mine = {k: json.dumps(v, sort_keys=True, default=str) for k, v in what.items()}
    every = all_gather_objects(mine)
    for rank, theirs in enumerate(every):
        differs = [k for k in mine if theirs.get(k) != every[0].get(k)]
        if differs:
            from graphrec.errors import ConfigError

            k = differs[0]
            a, b = json.loads(theirs[k]), json.loads(every[0][k])
            if isinstance(a, dict) and isinstance(b, dict):  # name the entry: "lr 0.05 against 0.001"
                sub = next(n for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n))
                shown = f"{sub} {a.get(sub)!r} against {b.get(sub)!r}"
            else:
                shown = f"{a!r} against {b!r}"
            raise ConfigError(f"rank {rank} was started with other {k} than rank 0 ({shown}): {fix}")


def host_store() -> dist.TCPStore:
    """A rendezvous store served by this process on 127.0.0.1, at a port the system picks
    when it binds (``store.port``); ranks started with ``MASTER_PORT=store.port`` and
    :data:`HOSTED_STORE` ``=1`` join it. It serves while the object lives.

    Picking a free port first and letting rank 0 bind it later leaves a window in which
    another process can take the port; a store bound at once has none.
    """
    return dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)


def _tell_launcher(key: str, value: str) -> bool:
    """Set ``key`` in the store of the launcher (:func:`launch`) that started this rank;
    whether it was set (False outside :func:`launch`'s ranks: torchrun, one process)."""
    if os.environ.get(HOSTED_STORE) != "1" or not launched():
        return False
    try:
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                              timeout=timedelta(seconds=10))
        store.set(key, value)
    except (RuntimeError, ValueError):  # the launcher is gone: nobody to tell (DistError is a RuntimeError)
        return False
    return True


def report_finished() -> None:
    """Tell the launcher (:func:`launch`) that this rank's work is finished and saved: a
    stop that reaches the ranks afterwards, while they leave, interrupts nothing (the
    launcher then exits 0). Nothing outside :func:`launch`'s ranks (torchrun, one process)."""
    _tell_launcher(FINISHED_KEY, "1")


def report_error(message: str, lost: bool = False) -> bool:
    """Tell the launcher (:func:`launch`) the error line this rank ends with (``lost``: a
    :class:`LostRank`, another rank stopped first); whether the launcher has it. The
    launcher then prints one line for the run: rank 0's own, another rank's only where it
    says something else, a lost-rank line only when no rank failed of its own.
    False outside :func:`launch`'s ranks (torchrun, one process): print the line."""
    return _tell_launcher(f"{ERROR_KEY}{os.environ.get('RANK', '0')}", json.dumps({"message": message, "lost": lost}))


def lost_rank_message(shard: Shard, error: BaseException) -> str:
    """The line of a :class:`LostRank` of ``shard``: the transport's first sentence (gloo
    adds a paragraph of advice), and where the cause is (the rank that stopped first)."""
    text = " ".join(str(error).split())
    first = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text, maxsplit=1)[0] if text else type(error).__name__
    return (f"rank {shard.rank} lost another rank of the {shard.world}: {clip(first).rstrip('.')}; the rank that stopped "
            "first has the cause (see its output, or the launcher's)")


def _reported_error(store: dist.TCPStore, rank: int) -> tuple[str, bool] | None:
    """The error line rank ``rank`` told this launcher (:func:`report_error`) and whether it
    is a lost-rank line; None when it told none."""
    key = f"{ERROR_KEY}{rank}"
    try:
        if not store.check([key]):
            return None
        value = json.loads(store.get(key).decode())
        return str(value["message"]), bool(value["lost"])
    except (RuntimeError, ValueError, KeyError, TypeError):
        return None


def _finished(store: dist.TCPStore) -> bool:
    """Whether rank 0 reported its run finished and saved (:func:`report_finished`)."""
    try:
        return bool(store.check([FINISHED_KEY]))
    except RuntimeError:
        return False


def check_nproc(nproc: int) -> None:
    """``--nproc`` is a number of processes; in a process a launcher started it is 1 or the
    launcher's own ``WORLD_SIZE`` (the ranks :func:`launch` starts keep ``--nproc N`` in
    their command line, so that the command a run records resumes it as started)."""
    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {nproc}")
    if nproc > 1 and launched() and nproc != int(os.environ["WORLD_SIZE"]):
        raise ConfigError(f"--nproc {nproc} inside a process that torchrun started with {os.environ['WORLD_SIZE']} "
                          "processes: use one of the two")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's or ``taskset``'s
    limit), which ``os.cpu_count()`` ignores."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def starts_ranks(nproc: int) -> bool:
    """Whether this process is to start ``nproc`` ranks (not one of them already)."""
    return nproc > 1 and not launched()


#: seconds between a rank's failure and the launcher's SIGKILL of the ranks still running
_FAILURE_GRACE_S = 1.0
#: the same when the failed ranks all aborted (SIGABRT): that is how a rank can end while
#: an interruption stops the run, and rank 0 may still be keeping the run (its 130 then
#: says so); a genuine abort mid-training also ends rank 0 by itself (its peer is gone)
_ABORT_GRACE_S = 15.0


def _die_with_parent() -> None:
    """In a rank, before it runs (Linux): SIGTERM when the launcher dies, the stop the
    launcher forwards itself (a training rank takes it as Ctrl-C: rank 0 keeps the run,
    resumable). A launcher killed by a signal it cannot forward (``kill -9``) left its
    ranks training on, to write the finished run later into a folder nobody waits for."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # another C library: the ranks then outlive a killed launcher, as before
        pass


def launch(argv: Sequence[str], nproc: int, threads: int | None = None) -> int:
    """Run ``python -m graphrec ARGV`` as ``nproc`` local ranks; return the exit status.

    Each rank gets the environment torchrun gives (``RANK``, ``LOCAL_RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR=127.0.0.1``, ``MASTER_PORT``: the port of the store
    this launcher hosts for them, :func:`host_store`) and ``OMP_NUM_THREADS`` =
    ``threads`` or the usable CPUs (:func:`usable_cpus`) divided by ``nproc``; more ranks
    than CPUs is noted. Rank 0 keeps the terminal; the
    others are silent (their stderr goes to a temporary file, read only if they fail).
    When a rank exits with an error the others are stopped a second later (SIGKILL:
    nothing of theirs is half-written, writes happen through temporary names). The
    failure is said as one process says it: rank 0's own error line; another failed rank
    in one line with its last error line (only where it differs from rank 0's: an error
    raised on every rank is one line), or the signal that killed it when this launcher
    did not send it (``kill -9``, the out-of-memory killer); a rank's "lost another
    rank" line (:class:`LostRank`) only when no rank is named otherwise (:func:`_failure_lines`).

    Ctrl-C reaches every rank through the launcher, exactly once: the ranks ignore
    SIGINT (:data:`HOSTED_STORE`, ``python -m graphrec``), and the launcher forwards
    each SIGINT (the terminal's, or ``kill -INT`` of the launcher alone, a notebook's
    interrupt) and each SIGTERM it receives to every rank as SIGTERM, which a training
    rank takes as Ctrl-C (rank 0 keeps the run as one process does); the launcher then
    waits for them and exits 130 -- or 0, with a note, when rank 0 had already reported
    the run finished and saved (:func:`report_finished`) and every rank ended by the stop:
    a stop during the ranks' teardown interrupts nothing and leaves nothing to resume.
    A rank 0 that the forwarded SIGTERM killed before it could say anything (still
    starting) gets the one line one process gives, ``interrupted``.
    """
    store = host_store()  # serves until the ranks are done (it lives in this frame)
    port = store.port
    cpus = usable_cpus()
    per_rank = threads or max(1, cpus // nproc)
    if nproc > cpus:
        sys.stderr.write(f"note: --nproc {nproc} starts more processes than the {cpus} CPUs this process may use: "
                         "they share cores (slower than fewer), and each holds its own copy of the data\n")
    procs: list[subprocess.Popen] = []
    logs: list[Any] = []
    signalled: set[int] = set()  # the ranks this launcher sent a signal to
    interrupted = False
    failed_at: float | None = None

    def stop(rank: int, kill: bool = False) -> None:
        p = procs[rank]
        if p.poll() is None:
            signalled.add(rank)
            p.kill() if kill else p.send_signal(signal.SIGTERM)

    def forward(signum: int, frame: Any) -> None:  # Ctrl-C or a kill of the launcher stops the ranks as Ctrl-C does
        nonlocal interrupted
        interrupted = True
        for rank in range(len(procs)):
            stop(rank)

    before = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
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
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            ))
            if interrupted:  # an interrupt while the ranks were starting reaches the later ones too
                stop(rank)
        while True:
            codes = [p.poll() for p in procs]
            if not interrupted and any(c not in (None, 0, 130) for c in codes):
                # a failure, not a Ctrl-C: stop the others, after a moment in which
                # a rank that failed too (or is still exiting) ends by itself with
                # its own error line, rather than killed without one
                failed_at = time.monotonic() if failed_at is None else failed_at
                aborts = all(c in (None, 0, 130, -signal.SIGABRT) for c in codes)
                if time.monotonic() - failed_at >= (_ABORT_GRACE_S if aborts else _FAILURE_GRACE_S):
                    for rank in range(nproc):
                        stop(rank, kill=True)
            if all(c is not None for c in codes):
                break
            time.sleep(0.05)
    finally:
        for rank in range(len(procs)):
            stop(rank)
            try:
                procs[rank].wait(timeout=30)
            except subprocess.TimeoutExpired:
                stop(rank, kill=True)
                procs[rank].wait()
        for sig, handler in before.items():
            signal.signal(sig, handler)
    codes = [p.returncode for p in procs]
    finished = _finished(store)

    def stopped(rank: int) -> bool:
        """Whether the rank ended by the run's own stop, not by a failure of its own."""
        code = codes[rank]
        if code in (0, 130):
            return True
        if code in (-signal.SIGKILL, -signal.SIGTERM):  # sent by this launcher (a stop it made)
            return rank in signalled or interrupted
        # a rank stopped by the interruption can abort while exiting, after rank 0 kept the run
        # (gloo's threads: "terminate called without an active exception"): part of the stop,
        # whether the SIGINT reached this launcher too or the ranks only (rank 0's 130 says so)
        return code == -signal.SIGABRT and codes[0] == 130

    lines = _failure_lines([
        RankEnd(code, stopped(rank), _reported_error(store, rank),
                "" if rank == 0 else _last_line(logs[rank], errors_only=code < 0))
        for rank, code in enumerate(codes)
    ])
    for line in lines:
        sys.stderr.write(line + "\n")
    if interrupted and finished and all(stopped(rank) for rank in range(nproc)):
        # the stop came after rank 0 had saved the finished run (it ended by the forwarded
        # signal while leaving): nothing was interrupted, nothing is to be resumed
        sys.stderr.write("note: the stop came after the run was finished and saved: nothing to resume\n")
        return 0
    if codes[0] == 0 and all(stopped(rank) for rank in range(1, nproc)):
        # rank 0 finished (and saved) the work; a stop that reached the others while they
        # were leaving the group came too late to interrupt anything
        return 0
    if codes[0] > 0 and codes[0] != 130:
        return codes[0]
    if codes[0] < 0 and not stopped(0):
        # a rank that lost its peer can abort while exiting, after its error line (gloo's
        # threads, "terminate called without an active exception"): a signal is exit 1
        return 1
    if interrupted and codes[0] == -signal.SIGTERM:
        # the forwarded stop killed rank 0 before it could say anything (still importing, or a
        # command that leaves SIGTERM at its default): the line one process gives
        sys.stderr.write("interrupted\n")
    return 130 if interrupted or 130 in codes else 1


@dataclass(frozen=True)
class RankEnd:
    """How a rank of :func:`launch` ended, as its launcher saw it."""

    #: its exit status (``-N``: killed by signal N)
    code: int
    #: whether it ended by the run's own stop (finished, interrupted, or stopped by the
    #: launcher after another rank failed), not by a failure of its own
    stopped: bool
    #: the error line it told the launcher (:func:`report_error`) and whether that is a
    #: lost-rank line (:class:`LostRank`); None when it told none
    reported: tuple[str, bool] | None = None
    #: the last error line of its stderr (not rank 0's, which goes to the terminal)
    line: str = ""


def _failure_lines(ends: Sequence[RankEnd]) -> list[str]:
    """The launcher's lines about the ranks that failed (rank 0 first), as one process's
    run would say it: rank 0 prints its own error line itself; another rank's line is
    printed only where it says something else (an error raised on every rank is one
    line); a lost-rank line (:class:`LostRank`, rank 0's too, which it leaves to the
    launcher) only when no rank is named as failing of its own, nor rank 0's own line printed."""
    nproc = len(ends)
    lines: list[str] = []
    lost: list[str] = []
    first = ends[0]
    own = None  # the error rank 0 printed itself (when it told it)
    printed = False  # whether rank 0 printed an error line of its own
    if not first.stopped:
        if first.reported is not None and first.reported[1]:
            lost.append(f"error: {first.reported[0]}")
        elif first.code < 0 and first.code != -signal.SIGABRT:  # killed before any line of its own
            lines.append(f"error: rank 0 of {nproc} {_killed(-first.code)}; the other ranks were stopped")
        else:  # an exit status, or an abort after its line (gloo's threads while it exits)
            printed = True
            own = first.reported[0] if first.reported is not None else None
    for rank, end in enumerate(ends[1:], start=1):
        if end.stopped:
            continue
        message = clip(end.reported[0]) if end.reported is not None else end.line
        if own is not None and message == clip(own):
            continue  # rank 0's own line says it
        if end.code > 0:
            what = f"failed (exit {end.code}): {message or 'no message'}"
        elif message:
            what = f"failed ({_killed(-end.code)}): {message}"
        else:
            what = _killed(-end.code)
        line = f"error: rank {rank} of {nproc} {what}; the other ranks were stopped"
        if end.reported is not None and end.reported[1]:
            lost.append(line)
        else:
            lines.append(line)
    return lines if lines or printed else lost


def _killed(signum: int) -> str:
    """``was killed by signal 9 (SIGKILL: out of memory?)``: how a rank ended that a
    signal this launcher did not send stopped."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = "unknown signal"
    hint = {signal.SIGKILL: ": out of memory, or kill -9?", signal.SIGSEGV: ": a crash in native code",
            signal.SIGBUS: ": a crash in native code", signal.SIGABRT: ": aborted"}.get(signum, "")
    return f"was killed by signal {signum} ({name}{hint})"


def _last_line(log: Any, errors_only: bool = False) -> str:
    """The last error line a rank wrote (its ``error:`` line, else the last line; with
    ``errors_only``, "" when it wrote no ``error:`` line), shortened at a word."""
    log.seek(0)
    lines = [ln.strip() for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("error:"):
            return clip(ln[len("error:"):].strip())
    return "" if errors_only or not lines else clip(lines[-1])


#: the longest message of another library (gloo, NCCL) an error line quotes
MESSAGE_CHARS = 300


def clip(message: str, limit: int = MESSAGE_CHARS) -> str:
    """``message`` on one line, without a C++ source location (``[/path/pair.cc:545] ``)
    and, when longer than ``limit``, cut after its last whole word before it, with "..."."""
    text = re.sub(r"\[[^\]\s]*\.(?:cc|cpp|h|hpp|cu):\d+\]\s*", "", " ".join(message.split()))
    if len(text) <= limit:
        return text
    cut = text[:limit + 1].rsplit(" ", 1)[0] if " " in text[:limit + 1] else text[:limit]
    return cut.rstrip(" ,;:") + " ..."
