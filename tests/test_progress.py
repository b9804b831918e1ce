"""Progress of long work (graphrec._progress): bars by default, lines in a log, nothing off."""

from __future__ import annotations

import time

import pytest

import graphrec._progress as progress
from graphrec.errors import ConfigError
from graphrec._progress import busy, counter, lines_to, tracked


class Clock:
    """time.monotonic for the module, advanced by hand."""

    def __init__(self, monkeypatch):
        self.now = 1000.0
        monkeypatch.setattr(progress.time, "monotonic", lambda: self.now)


def test_lines_every_interval_with_share_pace_and_a_closing_line(monkeypatch):
    clock = Clock(monkeypatch)
    got: list[str] = []
    with lines_to(got.append, every=60):
        for _ in tracked(range(4), True, "epoch 1", unit="step"):
            clock.now += 25  # steps end at 25, 50, 75, 100 s: lines at 75 s (>= 60) only
    assert got == [
        "epoch 1: 3/4 steps (75%), 1:15 elapsed, about 0:25 left",
        "epoch 1: 4 steps in 1:40",
    ]
    got.clear()
    with lines_to(got.append, every=0):
        list(tracked(range(1), True, "epoch 2", unit="step"))
    assert got[0].startswith("epoch 2: 1/1 step (100%)") and got[-1].startswith("epoch 2: 1 step in 0:00")


def test_a_short_loop_writes_nothing_and_a_loop_left_early_no_closing_line(monkeypatch):
    clock = Clock(monkeypatch)
    got: list[str] = []
    with lines_to(got.append, every=60):
        assert list(tracked(range(3), True, "quick")) == [0, 1, 2]
        assert got == []
        for i in tracked(range(10), True, "left", unit="batch"):
            clock.now += 61
            if i == 1:
                break
    assert got == ["left: 1/10 batches (10%), 1:01 elapsed, about 9:09 left"]


def test_off_or_epoch_lines_elsewhere_give_the_iterable_itself():
    items = [1, 2]
    with lines_to(lambda line: pytest.fail(line), every=0):
        assert tracked(items, False, "off") is items
        assert tracked(items, True, "epochs", lines=False) is items  # the caller's own lines say it


def test_without_lines_a_tqdm_bar(monkeypatch):
    import tqdm.auto

    made = []

    class Bar:
        def __init__(self, it=None, **kw):
            made.append(kw)
            self.it = it

        def __iter__(self):
            return iter(self.it)

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    assert list(tracked(range(3), True, "kNN", unit="block", leave=False)) == [0, 1, 2]
    assert made == [{"total": 3, "desc": "kNN", "unit": "block", "dynamic_ncols": True, "leave": False}]


def test_counter_times_the_work_of_this_call_not_the_resumed_part(monkeypatch):
    clock = Clock(monkeypatch)
    got: list[str] = []
    with lines_to(got.append, every=60):
        with counter(True, "image", total=1000, unit="item", initial=600) as bar:
            clock.now += 60
            bar.update(100)  # 100 items a minute: 300 left, 3 minutes
    assert got == ["image: 700/1,000 items (70%), 1:00 elapsed, about 3:00 left", "image: 700 items in 1:00"]
    with counter(False, "off", total=5) as bar:
        bar.update(5)  # nothing shown, nothing raised


def test_an_unknown_total_counts_and_times():
    got: list[str] = []
    with lines_to(got.append, every=0):
        list(tracked(iter([1, 2]), True, "rows", unit="row"))
    assert got[0].startswith("rows: 1 row, 0:00 elapsed") and got[-1].startswith("rows: 2 rows in 0:0")


def test_busy_writes_lines_from_its_thread_while_the_call_runs(monkeypatch):
    monkeypatch.setattr(progress, "BUSY_SECONDS", 0.05)
    got: list[str] = []
    with lines_to(got.append, every=0.05):
        with busy(True, "kNN (hnsw: indexing 10 items)"):
            time.sleep(0.3)
    assert len(got) >= 3 and got[0].startswith("kNN (hnsw: indexing 10 items): 0:00 elapsed")
    assert got[-1].startswith("kNN (hnsw: indexing 10 items): done in 0:00")
    with lines_to(lambda line: pytest.fail(line), every=0):
        with busy(False, "off"):
            pass
    # an error: its lines so far, no closing "done" line
    got.clear()
    with pytest.raises(MemoryError), lines_to(got.append, every=0.05):
        with busy(True, "hnsw"):
            time.sleep(0.2)
            raise MemoryError
    assert got and not any("done" in line for line in got)


def test_busy_at_an_interval_of_0_writes_once_a_second_not_as_fast_as_it_can():
    got: list[str] = []
    with lines_to(got.append, every=0):
        with busy(True, "hnsw"):
            time.sleep(0.3)
    assert got == []  # its first line would come after BUSY_SECONDS
    assert progress.BUSY_SECONDS == 1.0


def test_an_interval_is_seconds_at_or_above_0():
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="progress lines every .* seconds: give a number of seconds >= 0"):
            with lines_to(print, every=bad):
                pass


def test_clock_and_units():
    assert progress._clock(65) == "1:05" and progress._clock(3725) == "1:02:05"
    assert [progress._plural(u) for u in ("batch", "step", " entries", "it", "box")] == [
        "batches", "steps", "entries", "it", "boxes"]


def test_a_command_in_a_log_writes_lines_and_a_bad_interval_is_one_line(tmp_path, monkeypatch):
    """`graphrec train` with stderr in a file: the epoch lines and, from within the epoch
    and its validation, progress lines ($GRAPHREC_PROGRESS_SECONDS=0: every step); a bad
    value of the variable is a one-line error."""
    from typer.testing import CliRunner

    from graphrec.cli import make_app
    from graphrec.data.synthetic import synthetic_catalogue
    from graphrec.testing import one_error_line

    data = synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=0).save(tmp_path / "data")
    args = ["train", "lightgcn", "--data", str(data), "--epochs", "1", "--dim", "8", "--batch-size", "128",
            "--device", "cpu", "--out"]
    monkeypatch.setenv("GRAPHREC_PROGRESS_SECONDS", "0")
    res = CliRunner().invoke(make_app(), [*args, str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert "epoch 1: 1/" in res.stderr and " steps in 0:0" in res.stderr and "epoch 1: " not in res.stdout
    assert "evaluate valid: 1/1 batch (100%)" in res.stderr and "epoch 1/1  loss" in res.stderr
    assert "\r" not in res.output
    monkeypatch.setenv("GRAPHREC_PROGRESS_SECONDS", "soon")
    res = CliRunner().invoke(make_app(), [*args, str(tmp_path / "bad")])
    assert one_error_line(res) == ("error: GRAPHREC_PROGRESS_SECONDS='soon' is not a number of seconds >= 0: "
                                          "set it to e.g. 60, or unset it")
