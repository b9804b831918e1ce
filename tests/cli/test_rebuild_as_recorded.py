"""The command a run prints for a stored graph that changed since it trained ("rebuild it
with `graphrec build-graph ...`", :func:`graphrec.graphs.store.rebuild_as_recorded`)
builds that graph again: run as printed, it gives the recorded checksum."""

from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data import Dataset, cold_start
from graphrec.graphs.store import read_record, rebuild_as_recorded, used_graph

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data_dir(saved_catalogue):
    return saved_catalogue("rebuild", "syn", n_users=60, n_items=40, n_clusters=3, seed=0)


@pytest.fixture
def two_torch_threads():
    """torch's own thread count is 2 (restored after): a graph built with --threads 1 is
    then rebuilt under another count unless the command names it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def rebuilt(graph):
    """Run the printed rebuild command of the graph at ``graph`` as it is; its new record."""
    fix = rebuild_as_recorded(used_graph(graph))
    command = re.fullmatch(r"rebuild it with `graphrec (build-graph .*)`", fix)
    assert command is not None, fix
    res = run(*shlex.split(command.group(1)), "--quiet")
    assert res.exit_code == 0, (fix, res.output)
    return read_record(graph)


def test_the_command_names_the_thread_count_and_device(data_dir, tmp_path, two_torch_threads):
    out = tmp_path / "g"
    res = run("build-graph", "--data", data_dir, "--kind", "knn", "--modalities", "text", "--threads", "1",
              "--device", "cpu", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    before = read_record(out / "knn")
    assert before.options["threads"] == 1 and before.options["device"] == "cpu"
    fix = rebuild_as_recorded(used_graph(out / "knn"))
    assert "--device cpu --threads 1 --out" in fix, fix
    import torch

    torch.set_num_threads(2)  # build-graph set 1: the rebuild must set it again itself
    after = rebuilt(out / "knn")
    assert after.checksum == before.checksum
    assert after.options == before.options  # threads 1 again, not torch's 2


def test_a_graph_of_a_folder_saved_with_its_cold_split(data_dir, tmp_path):
    # the folder holds the split: the command must not draw it again (build-graph refuses a
    # second cold-start split), yet gives the graph of that split
    cold = tmp_path / "cold"
    cold_start(Dataset.load(data_dir), 0.2, 0, "hidden").save(cold)
    out = tmp_path / "g"
    res = run("build-graph", "--data", cold, "--kind", "cooccur", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    before = read_record(out / "cooccur")
    assert before.n_cold_items == 8
    assert "--cold-start" not in rebuild_as_recorded(used_graph(out / "cooccur"))
    after = rebuilt(out / "cooccur")
    assert after.checksum == before.checksum and after.dataset_fingerprint == before.dataset_fingerprint


def test_records_from_before_device_was_kept(data_dir, tmp_path):
    """A graph recorded before its device was kept: a faiss search (backend_used) ran on
    the CPU, so its rebuild names --device cpu; the 'build one for this data' command pins
    neither device nor threads; a change report compares options both records have, entry
    by entry (a key one record predates is no change)."""
    from graphrec.graphs.store import GraphRecord, _rebuild, graph_change

    out = tmp_path / "g"
    assert run("build-graph", "--data", data_dir, "--kind", "knn", "--k", 5, "--threads", 1, "--out", out,
               "--quiet").exit_code == 0
    rec = read_record(out / "knn").to_dict()
    old = dict(rec, options={k: v for k, v in rec["options"].items() if k != "device"})
    for used, named in (("faiss", "--device cpu"), ("torch", None)):
        entry = dict(old, options=dict(old["options"], backend_used=used))
        command = rebuild_as_recorded(dict(entry, path=str(out / "knn")))
        assert (named in command) if named else ("--device" not in command), command
    fresh = _rebuild(out / "knn", GraphRecord.from_dict(rec), str(data_dir), fresh=True)
    assert "--device" not in fresh and "--threads" not in fresh and "--k 5" in fresh
    now = dict(rec, checksum="0" * 64, options=dict(rec["options"], threads=2))
    change = graph_change(dict(old, path="p"), dict(now, path="p"))
    assert change.startswith("checksum 000000000000, was ") and "option threads 2, was 1" in change
    assert "device" not in change
