"""The documentation holds no unfinished text: a placeholder for measured results sat in
docs/graphs-knn.md, cited as the reason for a default, from the first commit on."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_no_placeholder_is_left_in_the_docs():
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *sorted((REPO / "experiments").rglob("README.md"))]
    assert len(pages) > 20
    for page in pages:
        found = re.findall(r"\b(?:[A-Z]+_PLACEHOLDER|PLACEHOLDER|TODO|TBD|FIXME)\b", page.read_text())
        assert not found, (page, found)


def _python_blocks(page: Path) -> list[str]:
    """The ```python blocks of a page, dedented (they sit inside list items)."""
    import textwrap

    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", page.read_text(), flags=re.S | re.M)
    return [textwrap.dedent(body) for _, body in blocks]


def test_adding_a_model_builder_example_registers():
    """The builder example of docs/models/adding-a-model.md runs as written: its imports
    exist and its search_space names the builder's own hyper-parameters (the page once
    showed 'reg_weight' and 'dim', which register_model refuses)."""
    from graphrec.train import registry

    (snippet,) = [b for b in _python_blocks(REPO / "docs/models/adding-a-model.md") if "@register_model(" in b]
    real = registry.get_model("freedom")  # loads every builder first
    registry.unregister_model("freedom")
    try:
        namespace: dict = {}
        exec(compile(snippet, "adding-a-model.md", "exec"), namespace)
        entry = registry.get_model("freedom")
        assert entry.build is namespace["build_freedom"]
        assert set(entry.search_space) == {"lr", "dropout", "num_layers", "embedding_dim"}
    finally:
        registry._REGISTRY["freedom"] = real


def test_no_reference_to_files_the_repository_does_not_have():
    """Pages and modules cited a DESIGN.md and papers 'in shared/papers', neither of which
    is in the repository: papers are cited by title, venue or arXiv id instead."""
    files = [REPO / "README.md", *(REPO / "docs").rglob("*.md"), *(REPO / "graphrec").rglob("*.py"),
             *(REPO / "experiments").rglob("*.py"), *(REPO / "experiments").rglob("*.md")]
    for f in files:
        found = re.findall(r"DESIGN\.md|shared/papers|paper 00\d", f.read_text())
        assert not found, (f.relative_to(REPO), found)


def test_the_package_exports_its_entry_points_lazily():
    """dir(graphrec) listed only recommend: the entry points the package docstring names
    are importable from graphrec, each the object of its module, and importing graphrec
    imports no torch (the CLI's start-up)."""
    import subprocess
    import sys

    import graphrec

    for name in graphrec.__all__[1:]:
        module, attr = graphrec._EXPORTS[name]
        obj = getattr(graphrec, name)
        assert obj is getattr(__import__(module, fromlist=[attr]), attr), name
        assert name in dir(graphrec), name
        assert f":func:`{name}`" in graphrec.__doc__ or f":class:`{name}`" in graphrec.__doc__, name
    code = "import sys, graphrec; print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_subpackages_and_their_modules_the_docs_name_resolve_after_a_bare_import():
    """After `import graphrec` alone, graphrec.train.reevaluate, graphrec.graphs.stats.graph_report
    and graphrec.train.progress.lines_to (names the docs use) were AttributeErrors until
    something else imported the submodule; dir(graphrec) listed Any and import_module."""
    import subprocess
    import sys

    code = ("import graphrec; print(graphrec.train.reevaluate.__name__, graphrec.graphs.stats.graph_report.__name__, "
            "graphrec.train.progress.lines_to.__name__, graphrec.data.Dataset.__name__); "
            "print(sorted(n for n in dir(graphrec) if n[0].isupper() or n in ('train', 'graphs', 'Any'))); "
            "print(hasattr(graphrec.graphs, 'no_such_module'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["reevaluate graph_report lines_to Dataset",
                   "['CTRConfig', 'Dataset', 'GraphSpec', 'TrainConfig', 'graphs', 'train']", "False"]


def test_the_training_pages_command_table_lists_every_option_of_train_lightgcn():
    """docs/training.md's row for `graphrec train lightgcn` lacked the cold-item path's,
    the learning-rate decay's and --tensorboard, which --help shows."""
    import typer

    from graphrec.cli import app

    command = typer.main.get_command(app).commands["train"].commands["lightgcn"]
    options = {p.opts[0] for p in command.params if p.opts[0].startswith("--") and not getattr(p, "hidden", False)}
    row = next(line for line in (REPO / "docs/training.md").read_text().splitlines()
               if line.startswith("| `graphrec train lightgcn --data DIR` |"))
    listed = set(re.findall(r"--[a-z][a-z-]*", row))
    assert options - {"--data"} <= listed, sorted(options - listed - {"--data"})


def test_graphrec_train_imports_lazily_and_its_names_win_over_its_submodules():
    """graphrec.train imported every model and torch on import (so did the CLI through
    it); lazily, importing the submodule graphrec.train.fit would set the package's `fit`
    to the module and hide the function."""
    import subprocess
    import sys
    import types

    import graphrec
    import graphrec.train
    import graphrec.train.fit  # noqa: F401  the submodule, imported on purpose
    from graphrec.train import fit

    assert not isinstance(fit, types.ModuleType) and fit.__module__ == "graphrec.train.fit"
    assert graphrec.train.fit is fit is graphrec.fit
    assert set(graphrec.train.__all__) <= set(dir(graphrec.train))
    code = ("import sys, graphrec.train.commands, graphrec.train.config; "
            "print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_knn_pages_example_runs_on_the_readmes_dataset(tmp_path, monkeypatch):
    """docs/graphs-knn.md fused ["image", "text"]: on the README's data/lfm2k, whose only
    modality is text, it failed with "unknown modality 'image'". The example runs as
    written on a dataset of the same shape (text features only) at data/lfm2k."""
    from graphrec.data.synthetic import synthetic_catalogue

    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=2, seed=0)
    ds.replace(item_features={"text": ds.item_features["text"]}).save(tmp_path / "data" / "lfm2k")
    monkeypatch.chdir(tmp_path)
    (snippet,) = [b for b in _python_blocks(REPO / "docs/graphs-knn.md") if "fuse_features(" in b]
    assert 'Dataset.load("data/lfm2k")' in snippet  # the README's dataset, named
    namespace: dict = {}
    exec(compile(snippet, "graphs-knn.md", "exec"), namespace)
    assert namespace["E_m"].shape == (40, 40) and namespace["E_m"].nnz == 400
