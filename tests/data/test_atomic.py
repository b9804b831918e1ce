"""graphrec._atomic.atomic_dir: all or nothing, and the output gets the usual mode."""

from __future__ import annotations

import os

import pytest

from graphrec._atomic import atomic_dir, atomic_file
from graphrec.errors import DataError


def test_output_replaces_old_and_has_the_umask_mode(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("1")
        assert not out.exists()
    assert (out / "a.txt").read_text() == "1"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700
    with pytest.raises(DataError, match="already exists"):
        with atomic_dir(out):
            pass
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]


def test_failure_leaves_the_old_output_and_no_temporary(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(out, overwrite=True) as tmp:
            (tmp / "half.txt").write_text("x")
            raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "keep.txt").read_text() == "old"


# ------------------------------------------------------------------ interrupted swaps
def test_failure_removes_the_parent_folders_it_created(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "a" / "new" / "deeper" / "out"):
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"] and not any((tmp_path / "a").iterdir())
    with atomic_dir(tmp_path / "a" / "new" / "out") as tmp:
        (tmp / "f").write_text("x")
    assert (tmp_path / "a" / "new" / "out" / "f").read_text() == "x"  # success keeps them
    # a file alike
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "b" / "deeper" / "out.csv") as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert not (tmp_path / "b").exists()
    with atomic_file(tmp_path / "b" / "deeper" / "out.csv") as tmp:
        tmp.write_text("whole")
    assert (tmp_path / "b" / "deeper" / "out.csv").read_text() == "whole"


def test_an_interrupt_between_the_two_renames_puts_the_old_output_back(tmp_path, monkeypatch):
    from pathlib import Path

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    real_rename = Path.rename

    def rename(self, target):
        if self.name.startswith(".out.tmp-"):  # the new output moving into place
            raise KeyboardInterrupt
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(out, overwrite=True) as tmp:
            (tmp / "new.txt").write_text("new")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "keep.txt").read_text() == "old"


# ------------------------------------------------------------------ single files
def test_atomic_file_keeps_the_suffix_and_replaces_at_the_end(tmp_path):
    from graphrec._atomic import atomic_file

    out = tmp_path / "sub" / "recs.csv"
    with atomic_file(out) as tmp:
        assert tmp.parent == out.parent and tmp.suffix == ".csv" and tmp.name.startswith(".recs.csv.tmp-")
        tmp.write_text("a,b\n")
        assert not out.exists()
    assert out.read_text() == "a,b\n"
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's 0600
    with pytest.raises(RuntimeError):
        with atomic_file(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert [p.name for p in out.parent.iterdir()] == ["recs.csv"] and out.read_text() == "a,b\n"


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# ------------------------------------------------------------------ stale temporaries
def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


posix_only = pytest.mark.skipif(os.name != "posix", reason="process IDs are checked with os.kill(pid, 0)")


@posix_only
def test_stale_old_folders_and_file_temporaries_are_removed(tmp_path):
    from graphrec._atomic import _host, remove_stale_temporaries

    out = tmp_path / "out.csv"
    out.write_text("x")
    host, dead, alive = _host(), _dead_pid(), os.getppid()
    stale = [
        tmp_path / f".out.csv.tmp-{host}.{dead}-k1ll3d00.csv",  # a file of a killed atomic_file
        tmp_path / f".out.csv.tmp-{host}.{dead}-k1ll3d01",  # a folder of a killed atomic_dir
        tmp_path / f".out.csv.old-{host}.{dead}-k1ll3d02",  # the replaced output of a write killed after its renames
    ]
    kept = [
        tmp_path / f".out.csv.tmp-{host}.{alive}-runn1ng0.csv",  # a write in progress
        tmp_path / f".out.csv.old-{host}.{alive}-runn1ng1",
        tmp_path / f".other.csv.tmp-{host}.{dead}-0ther000.csv",  # another output's
        tmp_path / f".out.csv.tmp-elsewhere.{dead}-0ther001.csv",  # another host's
        tmp_path / f".out.csv.old-{dead}",  # graphrec before names had a host
    ]
    for p in stale + kept:
        if p.suffix == ".csv":
            p.write_text("half")
        else:
            (p / "sub").mkdir(parents=True)
    assert sorted(remove_stale_temporaries(out)) == sorted(stale)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale)


@posix_only
def test_a_stale_old_folder_is_kept_while_it_is_the_only_copy(tmp_path):
    """Killed between its two renames: the output is missing and its .old folder is the
    earlier output, which nothing removes."""
    from graphrec._atomic import _host, remove_stale_temporaries

    old = tmp_path / f".out.old-{_host()}.{_dead_pid()}-k1ll3d00"
    old.mkdir()
    assert remove_stale_temporaries(tmp_path / "out") == [] and old.is_dir()
    (tmp_path / "out").mkdir()
    assert remove_stale_temporaries(tmp_path / "out") == [old]


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/stat"), reason="process start times come from /proc")
def test_a_temporary_older_than_the_process_now_using_its_id_is_stale(tmp_path):
    """The ID was reused: the process running under it started after the temporary was
    last written, so it cannot be the writer."""
    import subprocess
    import sys
    import time

    from graphrec._atomic import _host, remove_stale_temporaries

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        reused = tmp_path / f".out.tmp-{_host()}.{proc.pid}-r3us3d00"
        fresh = tmp_path / f".out.tmp-{_host()}.{proc.pid}-fr3sh000"
        reused.mkdir()
        fresh.mkdir()
        hour_ago = time.time() - 3600
        os.utime(reused, (hour_ago, hour_ago))
        assert remove_stale_temporaries(tmp_path / "out") == [reused]
        assert fresh.is_dir()
    finally:
        proc.kill()
        proc.wait()


def test_an_existing_output_names_the_python_keyword_and_the_flag(tmp_path):
    """Called from Python (Dataset.save, export_graph, write_recommendations ...) the
    refusal said only `pass --overwrite`, a flag a notebook user has no way to pass."""
    (tmp_path / "d").mkdir()
    with pytest.raises(DataError, match=r"d already exists: choose another output or pass overwrite=True "
                                        r"\(CLI: --overwrite\)$"):
        with atomic_dir(tmp_path / "d"):
            pass
