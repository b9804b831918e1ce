"""`graphrec train ... --nproc 2` and `graphrec build-graph ... --nproc 2`: two local
ranks on gloo, started by graphrec's launcher as torchrun would start them."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec import distributed


def graphrec(*args, cwd, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "graphrec", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))


@pytest.fixture(scope="module")
def data_dir(saved_catalogue):
    return saved_catalogue("dist", "data", n_users=150, n_items=90, n_clusters=3, seed=2)


TRAIN = ["train", "lightgcn", "--epochs", "4", "--dim", "8", "--eval-every", "2", "--lr", "0.02", "--device", "cpu",
         "--quiet", "--threads", "1"]


@pytest.fixture(scope="module")
def two_ranks(data_dir, tmp_path_factory):
    """An uninterrupted run of two ranks (its folder holds nothing else)."""
    where = tmp_path_factory.mktemp("two-ranks")
    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--out", "two", cwd=where)
    assert res.returncode == 0, res.stderr
    return where, res


def test_two_ranks_train_as_one_process_with_the_same_options(data_dir, two_ranks):
    """--batch-size is the step's size whatever --nproc: two ranks take one process's steps
    on the same triples, so the same losses (up to summation order) and the same selected
    epoch."""
    tmp_path, two = two_ranks
    one = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--out", "one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # rank 1 wrote nothing
    assert two.stdout.count("run saved to two") == 1
    a = json.loads((tmp_path / "one" / "record.json").read_text())
    b = json.loads((tmp_path / "two" / "record.json").read_text())
    assert b["distributed"] == {"world": 2, "backend": "gloo"} and "distributed" not in a
    np.testing.assert_allclose([h["loss"] for h in b["history"]], [h["loss"] for h in a["history"]], rtol=1e-5)
    assert b["best_epoch"] == a["best_epoch"]
    for key, value in a["test"]["all"].items():
        assert b["test"]["all"][key] == pytest.approx(value, abs=1e-3), key
    # the two ranks' sharded test equals one process evaluating the saved weights, exactly
    again = graphrec("evaluate", "two", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    for key in ("recall@20", "ndcg@20"):
        assert f"{b['test']['all'][key]:.4f}" in again.stdout


def test_two_ranks_build_the_one_process_graphs(data_dir, tmp_path):
    opts = ["build-graph", "--data", data_dir, "--quiet", "--cooccur-top-k", "4", "--symmetric", "--k", "6"]
    one = graphrec(*opts, "--out", "one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    # --threads reaches the ranks' OpenMP too (faiss follows it): it stayed at the CPU count / nproc
    record_omp = "import os\nif os.environ.get('RANK'):\n    open(os.path.join(os.environ['OMP_DIR'], 'rank' + " \
                 "os.environ['RANK']), 'w').write(os.environ['OMP_NUM_THREADS'])\n"
    two = graphrec(*opts, "--out", "two", "--nproc", "2", "--threads", "3", cwd=tmp_path,
                   env={**hook_env(tmp_path, record_omp), "OMP_DIR": str(tmp_path)})
    assert two.returncode == 0, two.stderr
    assert "rank 0 of 2 processes" in two.stdout
    assert [(tmp_path / f"rank{r}").read_text() for r in range(2)] == ["3", "3"]
    for kind in ("knn", "cooccur"):
        a = sp.load_npz(tmp_path / "one" / kind / "graph.npz")
        b = sp.load_npz(tmp_path / "two" / kind / "graph.npz")
        assert a.nnz > 0
        for attr in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(b, attr), getattr(a, attr), err_msg=f"{kind} {attr}")
    # the processes' split of the rows can round a kNN weight (docs/scaling.md): the record says
    # how many there were and the command that rebuilds it as recorded names them
    from graphrec.graphs.store import read_record as load_graph_record, rebuild_as_recorded

    two_knn = load_graph_record(tmp_path / "two" / "knn")
    assert two_knn.options["nproc"] == 2 and "nproc" not in load_graph_record(tmp_path / "one" / "knn").options
    assert "--threads 3 --nproc 2 --out" in rebuild_as_recorded({**two_knn.to_dict(), "path": str(tmp_path / "two" / "knn")})


@pytest.mark.parametrize("model", ["bm3", "mgcn", "freedom", "lattice", "mmgef", "smore", "dragon"])
def test_two_ranks_train_every_ranking_model_as_one_process(data_dir, tmp_path, model):
    """The losses and test metrics of two ranks are one process's (up to float rounding:
    DRAGON's Adam and LeakyReLU amplify it, docs/scaling.md, "Rounding amplified"). Each
    rank takes half of every step's triples and DDP averages the gradients; BM3 draws a
    dropout mask for the step and MGCN its contrastive negatives from it (couples_batch),
    so there each rank computes the whole step. LightGCN has the tests above; VBPR's step
    is split as LightGCN's."""
    opts = ["train", model, "--data", data_dir, "--epochs", "2", "--dim", "8", "--batch-size", "256",
            "--device", "cpu", "--quiet", "--threads", "1"]
    one = graphrec(*opts, "--out", "one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    two = graphrec(*opts, "--out", "two", "--nproc", "2", cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    a = json.loads((tmp_path / "one" / "record.json").read_text())
    b = json.loads((tmp_path / "two" / "record.json").read_text())
    assert len(b["history"]) == len(a["history"]) == 2
    np.testing.assert_allclose([h["loss"] for h in b["history"]], [h["loss"] for h in a["history"]], rtol=1e-5)
    for key, value in a["test"]["all"].items():
        assert b["test"]["all"][key] == pytest.approx(value, abs=1e-4), key


FAIL_RANK_1 = textwrap.dedent(
    """
    import os
    if os.environ.get("RANK") == "1":
        from graphrec.models.lightgcn import LightGCN
        start = LightGCN.start_epoch

        def start_epoch(model, epoch):
            if epoch == 2:
                raise RuntimeError("simulated failure of this rank")
            return start(model, epoch)

        LightGCN.start_epoch = start_epoch
    """
)


CTRL_C_AT_EPOCH_3 = textwrap.dedent(
    """
    from graphrec.models.lightgcn import LightGCN
    start = LightGCN.start_epoch

    def start_epoch(model, epoch):  # as the terminal's SIGINT reaches every rank
        if epoch == 3:
            raise KeyboardInterrupt
        return start(model, epoch)

    LightGCN.start_epoch = start_epoch
    """
)


def hook_env(tmp_path, code):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(code)
    return {"PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}


def test_ctrl_c_keeps_a_two_rank_run_and_the_printed_command_resumes_it_exactly(data_dir, two_ranks, tmp_path):
    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--out", "run", cwd=tmp_path,
                   env=hook_env(tmp_path, CTRL_C_AT_EPOCH_3))
    assert res.returncode == 130, res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("interrupted after 2 of 4 epochs") and "--nproc 2" in line and line.endswith("--resume`"), line
    assert json.loads((tmp_path / "run" / "record.json").read_text())["status"] == "interrupted"
    command = shlex.split(line.split("`")[1])
    assert command[0] == "graphrec"
    again = graphrec(*command[1:], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    got = json.loads((tmp_path / "run" / "record.json").read_text())
    want = json.loads((two_ranks[0] / "two" / "record.json").read_text())
    assert got["resumed_after"] == [2] and got["test"] == want["test"] and got["best_valid"] == want["best_valid"]
    # a run interrupted in one process continues in two: the same steps, split
    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--out", "run2", cwd=tmp_path,
                   env=hook_env(tmp_path / "run", CTRL_C_AT_EPOCH_3))
    assert res.returncode == 130
    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--out", "run2", "--resume",
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    got = json.loads((tmp_path / "run2" / "record.json").read_text())
    assert got["resumed_after"] == [2] and got["distributed"]["world"] == 2
    assert got["best_epoch"] == want["best_epoch"]
    for key in ("recall@20", "ndcg@20"):
        assert got["test"]["all"][key] == pytest.approx(want["test"]["all"][key], abs=1e-3), key


SIGTERM_TO_LAUNCHER_AT_EPOCH_3 = textwrap.dedent(
    """
    import os, signal, time
    from graphrec.models.lightgcn import LightGCN
    start = LightGCN.start_epoch

    def start_epoch(model, epoch):  # `kill LAUNCHER` from outside, while rank 0 is in epoch 3
        if epoch == 3 and os.environ.get("RANK") == "0":
            os.kill(os.getppid(), signal.SIGTERM)
            time.sleep(60)  # the launcher's forwarded SIGTERM ends this
        return start(model, epoch)

    LightGCN.start_epoch = start_epoch
    """
)


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_sigterm_to_the_launcher_keeps_the_run_like_ctrl_c(data_dir, two_ranks, tmp_path):
    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--out", "run", cwd=tmp_path,
                   env=hook_env(tmp_path, SIGTERM_TO_LAUNCHER_AT_EPOCH_3))
    assert res.returncode == 130, res.stderr
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("interrupted after 2 of 4 epochs") and "--nproc 2" in err[0], res.stderr
    assert json.loads((tmp_path / "run" / "record.json").read_text())["status"] == "interrupted"
    again = graphrec(*shlex.split(err[0].split("`")[1])[1:], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    got = json.loads((tmp_path / "run" / "record.json").read_text())
    want = json.loads((two_ranks[0] / "two" / "record.json").read_text())
    assert got["resumed_after"] == [2] and got["test"] == want["test"]


SIGKILL_TO_LAUNCHER_AT_EPOCH_3 = SIGTERM_TO_LAUNCHER_AT_EPOCH_3.replace("signal.SIGTERM)", "signal.SIGKILL)") + (
    "\nif os.environ.get('RANK'):  # each rank's pid, for the test to look for\n"
    "    open(os.path.join(os.environ['PID_DIR'], 'rank' + os.environ['RANK']), 'w').write(str(os.getpid()))\n"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_launcher_killed_outright_stops_its_ranks_which_keep_the_run(data_dir, tmp_path):
    """`kill -9` of the launcher (it cannot forward it) left both ranks training on; they
    finished later and wrote the run into a folder nobody waited for. The ranks now get the
    launcher's own stop when it dies: rank 0 keeps the run, resumable, and none is left."""
    import time

    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--out", "run", cwd=tmp_path,
                   env={**hook_env(tmp_path, SIGKILL_TO_LAUNCHER_AT_EPOCH_3), "PID_DIR": str(tmp_path)}, timeout=120)
    assert res.returncode == -9
    pids = [int((tmp_path / f"rank{r}").read_text()) for r in range(2)]

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    record = tmp_path / "run" / "record.json"
    deadline = time.monotonic() + 60  # the ranks end by themselves (orphans: nobody waits for them)
    while (any(alive(p) for p in pids) or not record.exists()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)
    assert json.loads(record.read_text())["status"] == "interrupted"


SIGINT_AT_EPOCH_3 = textwrap.dedent(
    """
    import os, signal, time
    from graphrec.models.lightgcn import LightGCN
    start = LightGCN.start_epoch

    def start_epoch(model, epoch):
        if epoch == 3 and os.environ.get("RANK") == "0":
            if os.environ.get("TO_GROUP"):  # the terminal's Ctrl-C: the launcher's whole process group
                os.killpg(os.getpgid(0), signal.SIGINT)
            else:  # `kill -INT LAUNCHER`, a notebook's interrupt: the launcher alone
                os.kill(os.getppid(), signal.SIGINT)
            time.sleep(20)  # the launcher's forwarded stop ends this
        return start(model, epoch)

    LightGCN.start_epoch = start_epoch
    """
)


@pytest.mark.skipif(os.name != "posix", reason="SIGINT")
@pytest.mark.parametrize("to", ["launcher", "group"])
def test_sigint_to_the_launcher_stops_every_rank_and_keeps_the_run(data_dir, tmp_path, to):
    """docs/scaling.md: Ctrl-C reaches every rank. A SIGINT sent to the launcher alone
    was swallowed (the run trained to its end, exit 0); one sent to the whole group (the
    terminal) reaches each rank once, through the launcher."""
    env = dict(hook_env(tmp_path, SIGINT_AT_EPOCH_3), **({"TO_GROUP": "1"} if to == "group" else {}))
    argv = [sys.executable, "-m", "graphrec", *map(str, TRAIN), "--data", str(data_dir), "--batch-size", "128",
            "--nproc", "2", "--out", "run"]
    res = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300, start_new_session=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1", **env))
    assert res.returncode == 130, res.stderr
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("interrupted after 2 of 4 epochs") and "--nproc 2" in err[0], res.stderr
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["status"] == "interrupted" and record["epochs_completed"] == 2
    assert (tmp_path / "run" / "resume.pt").is_file()


KILL_RANK_AT_EPOCH_2 = textwrap.dedent(
    """
    import os, signal
    from graphrec.models.lightgcn import LightGCN
    start = LightGCN.start_epoch

    def start_epoch(model, epoch):  # `kill -9` of one rank, the out-of-memory killer
        if epoch == 2 and os.environ.get("RANK") == os.environ["KILLED_RANK"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return start(model, epoch)

    LightGCN.start_epoch = start_epoch
    """
)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.parametrize("rank", ["1", "0"])
def test_a_rank_killed_by_a_signal_is_named_with_the_signal(data_dir, tmp_path, rank):
    """docs/scaling.md: a rank that dies of a signal is named with its signal (it could
    not say so itself), in the one line of the failure: the survivor's "lost another
    rank" line (gloo's paragraph of advice) is not printed beside it."""
    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--out", "run", cwd=tmp_path,
                   env=dict(hook_env(tmp_path, KILL_RANK_AT_EPOCH_2), KILLED_RANK=rank))
    assert res.returncode == 1, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert errors == [f"error: rank {rank} of 2 was killed by signal 9 (SIGKILL: out of memory, or kill -9?); "
                      "the other ranks were stopped"], res.stderr
    assert all(ln.startswith("error: ") for ln in errors) and "Traceback" not in res.stderr, res.stderr
    for ln in errors:  # gloo's message (its wording varies): no C++ source location, not cut mid-word
        assert ".cc:" not in ln, ln
        said = ln.split(" of the 2: ", 1)[-1]  # the survivor's error, as graphrec.distributed.clip leaves it
        assert len(said) <= distributed.MESSAGE_CHARS or said.endswith(" ..."), ln
    assert not (tmp_path / "run").exists()


RANK_1_ABORTS_AT_EXIT = textwrap.dedent(
    """
    import os
    if os.environ.get("RANK") == "1":
        import atexit
        atexit.register(os.abort)
    """
)


#: rank 0 takes a few seconds to exit after keeping an interrupted run (a slow disk, a busy
#: machine), so that rank 1's abort is seen first
RANK_0_SLOW_AT_EXIT = textwrap.dedent(
    """
    import os
    if os.environ.get("RANK") == "0":
        import atexit, time
        atexit.register(time.sleep, 3)
    """
)


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
@pytest.mark.parametrize("stop", ["sigterm-to-the-launcher", "interrupt-in-the-ranks-only",
                                  "interrupt-in-the-ranks-only-rank-0-slow"])
def test_a_rank_that_aborts_while_stopping_does_not_turn_the_interruption_into_a_failure(data_dir, tmp_path, stop):
    # rank 1 aborts on its way out, as gloo's threads sometimes do after an interruption
    # ("terminate called without an active exception"): the run is still interrupted, kept,
    # and reported in one line, whether the launcher was stopped (SIGTERM, forwarded) or
    # the SIGINT reached the ranks alone (a KeyboardInterrupt in each; rank 0's 130 says so)
    # (rank 0 slow: the launcher sees rank 1's abort while rank 0 still exits; it once killed
    # rank 0 a second later and called the interruption a failure)
    first = SIGTERM_TO_LAUNCHER_AT_EPOCH_3 if stop == "sigterm-to-the-launcher" else CTRL_C_AT_EPOCH_3
    slow = RANK_0_SLOW_AT_EXIT if stop.endswith("rank-0-slow") else ""
    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--out", "run", cwd=tmp_path,
                   env=hook_env(tmp_path, first + RANK_1_ABORTS_AT_EXIT + slow))
    assert res.returncode == 130, res.stderr
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("interrupted after 2 of 4 epochs"), res.stderr
    assert json.loads((tmp_path / "run" / "record.json").read_text())["status"] == "interrupted"


def test_a_rank_that_dies_fails_the_run_with_one_line_and_nothing_written(data_dir, tmp_path):
    env = hook_env(tmp_path, FAIL_RANK_1)
    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--out", "run", cwd=tmp_path,
                   env=env)
    assert res.returncode == 1, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert any("rank 1 of 2 failed" in ln and "simulated failure" in ln for ln in errors), res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["hook"]  # no temporaries either


def test_a_failing_rank_that_aborts_while_leaving_the_group_still_names_its_error(data_dir, tmp_path):
    # leaving the process group can abort a rank (gloo's threads) before Python prints its
    # exception: the rank's error line is written first, so the launcher still names it
    hook = FAIL_RANK_1 + textwrap.dedent(
        """
        if os.environ.get("RANK") == "1":
            import graphrec.distributed
            graphrec.distributed.leave = lambda *a, **k: os.abort()
        """
    )
    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--out", "run", cwd=tmp_path,
                   env=hook_env(tmp_path, hook))
    assert res.returncode == 1, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert any("rank 1 of 2 failed" in ln and "simulated failure" in ln for ln in errors), res.stderr
    assert not (tmp_path / "run").exists()


ABORT_RANK_0 = textwrap.dedent(
    """
    import os, sys
    if os.environ.get("RANK") == "0":
        from graphrec.models.lightgcn import LightGCN
        start = LightGCN.start_epoch

        def start_epoch(model, epoch):  # an error line, then death by a signal (SIGABRT)
            if epoch == 2:
                sys.stderr.write("error: simulated crash of rank 0\\n")
                sys.stderr.flush()
                os.abort()
            return start(model, epoch)

        LightGCN.start_epoch = start_epoch
    """
)


def test_a_rank_killed_by_a_signal_fails_the_run_with_exit_1_and_nothing_written(data_dir, tmp_path):
    # a rank that lost its peer can abort while exiting (gloo's threads), after its error
    # line: the command's exit status is 1, not the signal's 128 + n
    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--out", "run", cwd=tmp_path,
                   env=hook_env(tmp_path, ABORT_RANK_0))
    assert res.returncode == 1, res.stderr
    assert "error: simulated crash of rank 0" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["hook"]


def test_nproc_refusals(data_dir, tmp_path):
    res = graphrec(*TRAIN, "--data", data_dir, "--nproc", "0", cwd=tmp_path)
    assert res.returncode == 1 and "--nproc must be at least 1" in res.stderr
    # a bad training option is one line before any rank starts (it failed in every rank)
    res = graphrec(*TRAIN, "--data", data_dir, "--nproc", "2", "--epochs", "0", "--out", "r", cwd=tmp_path)
    assert res.returncode == 1 and res.stderr.strip() == "error: --epochs must be at least 1, got 0", res.stderr
    assert not (tmp_path / "r").exists()
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1", "RANK": "0", "WORLD_SIZE": "2"}
    res = graphrec("build-graph", "--data", data_dir, "--nproc", "3", "--out", "g", cwd=tmp_path, env=env)
    assert res.returncode == 1 and "torchrun" in res.stderr
    assert not (tmp_path / "g").exists()


def test_what_every_rank_would_refuse_is_one_line_before_the_ranks_start(data_dir, tmp_path):
    res = graphrec(*TRAIN, "--data", tmp_path / "nosuch", "--nproc", "2", "--out", "x", cwd=tmp_path)
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 1 and len(err) == 1 and "nosuch" in err[0] and "rank 1 of" not in err[0], res.stderr
    res = graphrec("train", "mmgef", "--data", data_dir, "--modalities", "audio", "--epochs", "1", "--nproc", "2",
                   "--quiet", "--out", "y", cwd=tmp_path)
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 1 and len(err) == 1 and "audio" in err[0] and "rank 1 of" not in err[0], res.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_an_error_raised_on_every_rank_is_one_line_as_in_one_process(data_dir, tmp_path):
    # the loss becomes NaN on both ranks: rank 0's line, not a second "rank 1 of 2 failed" with the same text
    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--lr", "1e38", "--out", "run",
                   cwd=tmp_path)
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 1 and len(err) == 1, res.stderr
    assert err[0].startswith("error: training loss became nan") and "rank" not in err[0], res.stderr
    assert not (tmp_path / "run").exists()


#: a rank says that it started (rank 0's stderr is the launcher's)
SAY_RANK_STARTED = textwrap.dedent(
    """
    import os, sys
    if os.environ.get("RANK"):
        sys.stderr.write("rank " + os.environ["RANK"] + " started\\n")
    """
)


def test_what_every_rank_would_refuse_of_a_graph_build_is_one_line_before_the_ranks_start(data_dir, tmp_path):
    from graphrec.data import Dataset

    no_features = tmp_path / "plain"
    Dataset.load(data_dir).replace(item_features={}).save(no_features)
    taken = tmp_path / "graphs" / "synthetic" / "cooccur"  # the default --out graphs/DATASET, built before
    taken.mkdir(parents=True)
    (taken / "graph.json").write_text("{}")
    cases = [
        (["--data", tmp_path / "nosuch", "--kind", "cooccur", "--out", "g"], "nosuch"),
        (["--data", no_features, "--kind", "knn", "--out", "g"], "has no item features: a kNN graph needs them"),
        (["--data", data_dir, "--kind", "knn", "--modalities", "audio", "--out", "g"], "unknown modality 'audio'"),
        (["--data", data_dir, "--kind", "cooccur"], "cooccur already exists"),
    ]
    env = hook_env(tmp_path, SAY_RANK_STARTED)
    for args, said in cases:
        res = graphrec("build-graph", *args, "--nproc", "2", "--quiet", cwd=tmp_path, env=env)
        err = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode == 1 and len(err) == 1 and said in err[0], (args, res.stderr)
    assert not (tmp_path / "g").exists() and not (tmp_path / "graphs" / "synthetic" / "knn").exists()


def test_a_copied_interrupted_run_is_resumed_under_its_own_name(data_dir, tmp_path):
    import shutil

    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--out", "run", cwd=tmp_path,
                   env=hook_env(tmp_path, CTRL_C_AT_EPOCH_3))
    assert res.returncode == 130, res.stderr
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    # resumed in two processes with another --lr: one line, naming the copy's own resume command
    args = [a if a != "0.02" else "0.03" for a in TRAIN]
    res = graphrec(*args, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--out", "copy", "--resume",
                   cwd=tmp_path)
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 1 and len(err) == 1, res.stderr
    assert "--resume: lr is 0.03 here but 0.02 in the interrupted run copy" in err[0], err[0]
    assert "--out copy" in err[0] and "--out run" not in err[0], err[0]
    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--out", "copy", "--resume",
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    got = json.loads((tmp_path / "copy" / "record.json").read_text())
    assert got["resumed_after"] == [2] and got["processes"] == [1, 2] and got["distributed"]["world"] == 2


RANK_0_DONE_THEN_SIGTERM = textwrap.dedent(
    """
    import os, signal, time
    if os.environ.get("RANK") == "0":
        os._exit(0)  # rank 0 finished its work (and saved it)
    if os.environ.get("RANK") == "1":
        time.sleep(2)  # rank 1 is still leaving when the launcher is killed
        os.kill(os.getppid(), signal.SIGTERM)
        time.sleep(60)  # the launcher's forwarded SIGTERM ends this
    """
)


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_a_sigterm_after_rank_0_finished_is_not_an_interruption(data_dir, tmp_path):
    res = graphrec(*TRAIN, "--data", data_dir, "--nproc", "2", "--out", "run", cwd=tmp_path,
                   env=hook_env(tmp_path, RANK_0_DONE_THEN_SIGTERM), timeout=120)
    assert res.returncode == 0, (res.returncode, res.stderr)
    assert "error" not in res.stderr and "interrupted" not in res.stderr, res.stderr


STOP_AFTER_SAVE = textwrap.dedent(
    """
    import os
    if os.environ.get("RANK") == "0":
        import signal
        import time

        import graphrec.cli.train as cli_train

        def print_record(record):  # rank 0 has saved the finished run: a SIGTERM to the launcher now
            os.kill(os.getppid(), signal.SIGTERM)
            time.sleep(5)  # the forwarded SIGTERM ends this rank here, after the save

        cli_train.print_record = print_record
    """
)


def test_a_stop_after_the_run_was_saved_exits_0_without_a_resume_hint(data_dir, tmp_path):
    res = graphrec(*TRAIN, "--data", data_dir, "--batch-size", "128", "--nproc", "2", "--out", "run", cwd=tmp_path,
                   env=hook_env(tmp_path, STOP_AFTER_SAVE))
    assert json.loads((tmp_path / "run" / "record.json").read_text())["status"] == "finished"
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip().splitlines()[-1] == "note: the stop came after the run was finished and saved: nothing to resume"
    assert "--resume" not in res.stderr


def _torchrun_ranks_differing_in(tmp_path, args, flag: str, rank0: str, others: str) -> subprocess.CompletedProcess:
    """``graphrec ARGS FLAG VALUE`` under torchrun, two ranks: rank 0 with ``rank0``, rank 1 with ``others``."""
    script = tmp_path / "rank.sh"
    script.write_text(f'v={rank0}; [ "$RANK" = 0 ] || v={others}\n'
                      f'exec {shlex.quote(sys.executable)} -m graphrec {shlex.join(map(str, args))} {flag} "$v"\n')
    env = {k: v for k, v in os.environ.items() if k not in (*distributed.ENV, distributed.HOSTED_STORE)}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "--no-python", "bash", str(script)], cwd=tmp_path, env=dict(env, OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=300)


def test_ranks_started_with_other_options_are_refused_on_every_rank(data_dir, tmp_path):
    """Under torchrun each rank is its own command line: ranks given other learning rates
    trained two models as one (a record of rank 0's options over mixed metrics), other
    epoch counts waited for each other forever. Every rank now refuses, in one line."""
    res = _torchrun_ranks_differing_in(tmp_path, [*TRAIN, "--data", data_dir, "--out", "mixed"], "--lr", "0.001", "0.05")
    assert res.returncode != 0
    line = ("error: rank 1 was started with other training options than rank 0 (lr 0.05 against 0.001): start every "
            "rank with the same command line on the same data")
    assert res.stderr.count(line) == 2, res.stderr  # one per rank
    assert not (tmp_path / "mixed").exists()


def test_build_graph_ranks_started_with_other_options_are_refused(data_dir, tmp_path):
    """build-graph under torchrun had no such check: ranks given other --k built their
    rows of two graphs into one record."""
    res = _torchrun_ranks_differing_in(
        tmp_path, ["build-graph", "--data", data_dir, "--kind", "knn", "--quiet", "--out", "g"], "--k", "5", "7")
    assert res.returncode != 0
    line = ("error: rank 1 was started with other graph options than rank 0 (k 7 against 5): start every rank with "
            "the same command line on the same data")
    assert res.stderr.count(line) == 2, res.stderr
    assert not (tmp_path / "g").exists()


STOP_LAUNCHER_IN_RANK_0 = textwrap.dedent(
    """
    import os, signal, time
    WHEN = os.environ.get("STOP_WHEN")
    if os.environ.get("RANK") == "0" and WHEN == "start":  # `kill LAUNCHER` while rank 0 starts
        os.kill(os.getppid(), signal.SIGTERM)
        time.sleep(60)  # the launcher's forwarded SIGTERM ends this (its default action: no word)
    if os.environ.get("RANK") == "0" and WHEN == "build":
        import graphrec.graphs.build as build
        real = build.build_item_graph

        def build_item_graph(*args, **kwargs):  # ... or while it builds
            os.kill(os.getppid(), signal.SIGTERM)
            time.sleep(60)
            return real(*args, **kwargs)

        build.build_item_graph = build_item_graph
    """
)


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
@pytest.mark.parametrize("when", ["start", "build"])
def test_a_stopped_two_rank_build_says_interrupted_and_leaves_nothing(data_dir, tmp_path, when):
    """Ctrl-C of `build-graph --nproc 2` ended with status 130 and no line (its ranks died of
    the forwarded SIGTERM): now one process's `interrupted`, and no output or temporary."""
    env = dict(hook_env(tmp_path, STOP_LAUNCHER_IN_RANK_0), STOP_WHEN=when)
    res = graphrec("build-graph", "--data", data_dir, "--kind", "knn", "--k", "5", "--nproc", "2", "--quiet",
                   "--out", tmp_path / "g", cwd=tmp_path, env=env)
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 130 and err == ["interrupted"], res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hook"]  # no g, no .g.tmp-*


def test_more_ranks_than_cpus_are_noted_and_threads_follow_the_affinity(tmp_path, capfd, monkeypatch):
    """os.cpu_count() ignores a container's or taskset's limit: the ranks' OpenMP threads
    and the note on too many ranks follow the CPUs this process may use."""
    cpus = distributed.usable_cpus()
    assert 1 <= cpus <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert cpus == len(os.sched_getaffinity(0))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(distributed, "usable_cpus", lambda: 1)
    code = distributed.launch(["models", "lightgcn"], 2)
    assert code == 0
    err = capfd.readouterr().err
    assert "note: --nproc 2 starts more processes than the 1 CPUs this process may use" in err, err
