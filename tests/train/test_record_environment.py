"""A run record names the machine that produced it: results differ in the last digits
between processors (floating-point summation order), so ``environment`` holds the
processor's model name next to the Python and torch versions."""

from __future__ import annotations

import platform

import torch

from graphrec.data.synthetic import synthetic_catalogue
from graphrec.models.ctr.testing import contract_ctr_data
from graphrec.train import TrainConfig, load_record, run_training
from graphrec.train.ctr import CTRConfig, run_ctr
from graphrec.train.record import cpu_identity, cpu_name, environment, torch_cpu_kernels


def test_cpu_name_reads_the_first_model_name_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"
                    "flags\t\t: fpu vme\n\nprocessor\t: 1\nmodel name\t: Other CPU\n")
    assert cpu_name(info) == "AMD EPYC 7B13"


def test_cpu_name_without_cpuinfo_falls_back_to_platform(tmp_path):
    # no such file (macOS, Windows), or a cpuinfo without a model name (some ARM kernels)
    expected = platform.processor() or platform.machine() or "unknown"
    assert cpu_name(tmp_path / "absent") == expected
    (tmp_path / "arm").write_text("processor\t: 0\nBogoMIPS\t: 48.00\nmodel name\t:   \n")
    assert cpu_name(tmp_path / "arm") == expected


def test_cpu_identity_reads_the_first_processor_block(tmp_path):
    """Two generations behind one bare model name are told apart by family / model /
    stepping, read from the first processor's block only."""
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
                    "model name\t: AMD EPYC\nstepping\t: 1\n\nprocessor\t: 1\nvendor_id\t: Other\n"
                    "cpu family\t: 6\nmodel\t\t: 85\nstepping\t: 7\n")
    assert cpu_identity(info) == "AuthenticAMD family 25 model 17 stepping 1"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
                    "model name\t: AMD EPYC\nstepping\t: 1\n")
    assert cpu_identity(info) == "AuthenticAMD family 25 model 1 stepping 1"
    # ARM kernels report no family; no cpuinfo at all off Linux
    (tmp_path / "arm").write_text("processor\t: 0\nBogoMIPS\t: 48.00\nCPU part\t: 0xd0c\n")
    assert cpu_identity(tmp_path / "arm") is None and cpu_identity(tmp_path / "absent") is None


def test_environment_names_what_torch_computes_with():
    kernels = torch_cpu_kernels()
    assert kernels["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert kernels.get("blas", "") in torch.__config__.show()
    env = environment("cpu")
    assert {k: env[k] for k in kernels} == kernels
    assert env.get("cpu_id") == cpu_identity()


def test_environment_on_cpu_has_no_gpu_entry():
    env = environment("cpu")
    assert env["torch"] == torch.__version__ and env["python"] == platform.python_version()
    assert env["threads"] == torch.get_num_threads() and env["cpu"] == cpu_name()
    assert "gpu" not in env


def test_ranking_and_ctr_records_hold_the_environment(tmp_path):
    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=4, seed=0)
    cfg = TrainConfig(epochs=1, batch_size=256, ks=(10,), progress=False)
    run_training(ds, "mf", {"embedding_dim": 4}, cfg, out=tmp_path / "rank")
    assert load_record(tmp_path / "rank")["environment"] == environment("cpu")

    run_ctr(contract_ctr_data(), "lr", {}, CTRConfig(epochs=1, progress=False), out=tmp_path / "ctr")
    assert load_record(tmp_path / "ctr")["environment"] == environment("cpu")


def _git(root, *args):
    import subprocess

    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_the_source_commit_names_the_checkout_and_its_changes_under_graphrec(tmp_path):
    from graphrec.train.record import source_commit, source_description, source_state

    root = tmp_path / "checkout"
    (root / "graphrec").mkdir(parents=True)
    (root / "graphrec" / "model.py").write_text("x = 1\n")
    (root / "README.md").write_text("readme\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "first")
    head = _git(root, "rev-parse", "HEAD")
    assert source_state(root) == (head, ()) and source_commit(root) == head
    assert source_description(root) == head[:7] + " (graphrec/ clean)"
    (root / "README.md").write_text("changed outside graphrec/\n")
    assert source_commit(root) == head  # only the package's files count
    (root / "graphrec" / "model.py").write_text("x = 2\n")
    assert source_state(root) == (head, ("graphrec/model.py",)) and source_commit(root) == head + "-dirty"
    assert source_description(root) == head[:7] + " + uncommitted changes in graphrec/model.py"
    # not the top of a checkout (a package installed inside another repository), or no checkout at all
    (root / "sub" / "graphrec").mkdir(parents=True)
    assert source_state(root / "sub") is None
    (tmp_path / "plain" / "graphrec").mkdir(parents=True)
    assert source_state(tmp_path / "plain") is None and source_commit(tmp_path / "plain") is None
    assert source_description(tmp_path / "plain") == "unknown (not a git checkout)"


def test_records_name_the_commit_of_the_graphrec_they_ran_where_it_is_a_checkout():
    from graphrec.train.record import SOURCE_ROOT, source_commit

    env = environment("cpu")
    assert env.get("graphrec_commit") == source_commit()
    if (SOURCE_ROOT / ".git").exists():  # the test suite runs from a clone: the commit is there
        head = _git(SOURCE_ROOT, "rev-parse", "HEAD")
        assert env["graphrec_commit"] in (head, head + "-dirty")
