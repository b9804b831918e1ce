"""The model registry: one declaration per model drives the CLI, `graphrec models`,
evaluate and the Python API; the commands that existed before it keep their flags."""

from __future__ import annotations

import json
from typing import Annotated

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.cli import make_app
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError, ModelDefinitionError
from graphrec.testing import RecommenderContract, ScaledMF, registered_toy_model
from graphrec.train.builders._common import Reg
from graphrec.train import TrainConfig, build_model, model_params, run_training
from graphrec.train.registry import Option, get_model, register_model, registered_models, unregister_model

runner = CliRunner()

# The options of every `graphrec train` command as they were written by hand before the
# registry (graphrec 0.1, commit f4886e0): the generated commands must keep them all.
RANKING_COMMON = {
    "--data", "--epochs", "--lr", "--batch-size", "--patience", "--eval-every", "--metric", "--select-on",
    "--protocol", "--seed", "--device", "--out", "--cold-start", "--threads", "--quiet",
}
CTR_COMMON = {
    "--data", "--task", "--max-history", "--sample-seed", "--samples", "--cold-start", "--item-graph", "--graph-k",
    "--cooccur-top-k", "--graph-layers", "--epochs", "--lr", "--batch-size", "--patience", "--seed", "--device",
    "--out", "--threads", "--quiet",
}
BEFORE = {
    "lightgcn": RANKING_COMMON | {"--dim", "--layers", "--reg"},
    "mmgef": RANKING_COMMON | {"--dim", "--layers", "--item-layers", "--reg", "--k", "--modalities", "--graph",
                               "--no-cf-graph", "--no-knn-graph", "--no-attention", "--feature-mode", "--cooccur-top-k"},
    "lattice": RANKING_COMMON | {"--dim", "--layers", "--item-layers", "--reg", "--k", "--modalities", "--lambda",
                                 "--include-self", "--no-include-self", "--train-features", "--fixed-features",
                                 "--cf-graph", "--no-cf-graph", "--graph"},
    "mf": RANKING_COMMON | {"--dim", "--reg"},
    "cb": RANKING_COMMON | {"--k", "--modalities", "--graph"},
    "lr": CTR_COMMON,
    "fm": CTR_COMMON | {"--dim"},
    "deepfm": CTR_COMMON | {"--dim", "--modalities"},
    "youtubenet": CTR_COMMON | {"--dim", "--modality-dim", "--modalities"},
    "din": CTR_COMMON | {"--dim", "--modality-dim", "--modalities"},
    "gmmf": CTR_COMMON | {"--dim", "--modalities", "--gan-start-epoch", "--gan-lr", "--recon-weight",
                          "--no-autoencoder", "--no-cgan", "--no-min"},
    "marn": CTR_COMMON | {"--dim", "--modalities", "--fusion", "--adversarial", "--sequence", "--adv-weight"},
}


def _options(app, model: str) -> set[str]:
    import typer.main

    group = typer.main.get_command(app)
    cmd = group.commands["train"].commands[model]
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


@pytest.fixture(scope="module")
def data_dir(saved_catalogue):
    return saved_catalogue("registry", "synthetic", n_users=60, n_items=40, n_clusters=3, seed=0)


@pytest.mark.parametrize("model", sorted(BEFORE))
def test_existing_commands_keep_their_flags(model):
    assert _options(make_app(), model) >= BEFORE[model]


def test_models_lists_every_model_with_its_task_and_paper():
    res = runner.invoke(make_app(), ["models"])
    assert res.exit_code == 0, res.output
    for name in BEFORE:
        entry = get_model(name)
        line = next(line for line in res.output.splitlines() if line.startswith(name + " "))
        assert entry.task in line and entry.paper in line
    res = runner.invoke(make_app(), ["models", "--task", "ctr"])
    assert "lightgcn" not in res.output and "gmmf" in res.output
    res = runner.invoke(make_app(), ["models", "--task", "bogus"])
    assert res.exit_code == 1 and "ranking, ctr" in res.output


def test_models_params_lists_the_reference_grids_after_a_models_parameters():
    res = runner.invoke(make_app(), ["models", "--params"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    for entry in registered_models("ranking"):
        block = lines[lines.index(next(line for line in lines if line.startswith(entry.name + " "))) + 1:]
        block = block[: next((i for i, line in enumerate(block) if not line.startswith(" ")), len(block))]
        grids = [line.strip() for line in block if "reference grids" in line]
        if entry.reference_grids:
            assert grids == [f"reference grids (graphrec tune {entry.name} --space NAME): mmrec"], entry.name
        else:
            assert grids == [], entry.name
    assert get_model("dragon").reference_grids and not get_model("mmgef").reference_grids


def test_train_help_lists_every_model_with_its_paper():
    res = runner.invoke(make_app(), ["train", "--help"], env={"COLUMNS": "300"})
    assert res.exit_code == 0
    for entry in registered_models():
        assert entry.name in res.output and entry.paper in res.output


def test_defaults_and_checks_come_from_the_declaration():
    assert model_params("lightgcn") == {"embedding_dim": 64, "num_layers": 2, "reg_weight": 1e-4, "reg_form": "squared",
                                        # the cold-item path's options, which every trainable ranking model has
                                        "cold_path": "none", "cold_k": 50, "cold_modalities": None,
                                        "cold_objective": "regress"}
    with pytest.raises(ConfigError, match="reg_weight must be >= 0.0, got -1"):
        model_params("lightgcn", {"reg_weight": -1.0})
    with pytest.raises(ConfigError, match="feature_mode='dense' is not one of fixed, projected"):
        model_params("mmgef", {"feature_mode": "dense"})
    with pytest.raises(ConfigError, match="lambda_coeff must be <= 1.0"):
        model_params("lattice", {"lambda_coeff": 1.5})
    with pytest.raises(ConfigError, match="no option 'layer'"):
        model_params("lightgcn", {"layer": 3})
    # the declared types: a string for a flag is not silently true, a bool is not a size
    for params, message in (({"use_cf_graph": "false"}, "use_cf_graph='false' is a str, not a bool"),
                            ({"embedding_dim": True}, "embedding_dim=True is a bool, not an int [(]--dim on the command"),
                            ({"embedding_dim": 64.5}, "embedding_dim=64.5 is a float, not an int"),
                            ({"k": "5"}, "k='5' is a str, not an int"),
                            ({"reg_weight": "1e-4"}, "reg_weight='1e-4' is a str, not a float")):
        with pytest.raises(ConfigError, match=message):
            model_params("mmgef", params)
    assert model_params("mmgef", {"reg_weight": 0, "k": np.int64(5)})["k"] == 5  # an int is a float; numpy ints count
    with pytest.raises(ConfigError, match="unknown ranking model 'nope'.*lightgcn"):
        model_params("nope")


def test_bad_value_on_the_command_line_is_one_line(data_dir, tmp_path):
    res = runner.invoke(make_app(), ["train", "lightgcn", "--data", str(data_dir), "--reg", "-1",
                                     "--out", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 1 and "reg_weight must be >= 0.0" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r").exists()


def test_a_model_registered_in_a_test_gets_train_evaluate_and_python(data_dir, tmp_path):
    with registered_toy_model("toy-mf") as name:
        app = make_app()
        assert _options(app, name) >= RANKING_COMMON | {"--lr-decay", "--lr-decay-every", "--overwrite", "--dim", "--scale"}
        res = runner.invoke(app, ["train", name, "--help"], env={"COLUMNS": "300"})
        assert "Toy MF (a test fixture)" in res.output and "Score multiplier s." in res.output
        assert "[default: 2.0]" in res.output and "Example: graphrec train toy-mf" in res.output
        out = tmp_path / "toy"
        res = runner.invoke(app, ["train", name, "--data", str(data_dir), "--dim", "4", "--scale", "3", "--epochs", "2",
                                  "--cold-start", "0.2", "--lr-decay", "0.5", "--device", "cpu", "--out", str(out), "--quiet"])
        assert res.exit_code == 0, res.output
        record = json.loads((out / "record.json").read_text())
        # a registered model gets the cold-item path's options too (off by default)
        assert record["model"] == name and record["model_params"] == {
            "embedding_dim": 4, "scale": 3.0, "cold_path": "none", "cold_k": 50, "cold_modalities": None,
            "cold_objective": "regress"}
        assert record["train_config"]["lr_decay"] == 0.5 and record["train_config"]["lr_decay_every"] == 50
        assert set(record["test"]) == {"all", "cold"}  # the papers' protocol: test holds new items only
        assert record["dataset"]["transforms"]["cold_start_protocol"] == "papers"
        res = runner.invoke(app, ["evaluate", str(out), "--device", "cpu"])
        assert res.exit_code == 0, res.output
        line = next(l for l in res.output.splitlines() if l.startswith("recall@20"))
        assert f"{record['test']['all']['recall@20']:.4f}" in line
        model = build_model(name, synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=0), {"scale": 0.5})
        assert isinstance(model, ScaledMF) and model.scale == 0.5
        res = runner.invoke(app, ["train", name, "--data", str(data_dir), "--scale", "0", "--quiet"])
        assert res.exit_code == 1 and "scale must be > 0.0" in res.output
    assert name not in {e.name for e in registered_models()}
    assert name not in _registered_commands(make_app())
    # its run, once nothing registers the model, says what to do rather than "unknown model"
    res = runner.invoke(make_app(), ["evaluate", str(out), "--device", "cpu"])
    assert res.exit_code == 1 and res.output.strip().splitlines() == [
        f"error: run {out} trained the model 'toy-mf', which nothing registers here: a plug-in model must be "
        "registered before its runs load (import the module whose register_model defines it, or install the "
        "package that declares it under the graphrec.models entry point)"], res.output


def _registered_commands(app) -> set[str]:
    import typer.main

    return set(typer.main.get_command(app).commands["train"].commands)


def test_python_training_of_a_registered_model():
    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=1)
    with registered_toy_model("toy-py") as name:
        record, model = run_training(ds, name, {"embedding_dim": 4}, TrainConfig(epochs=3, progress=False))
    assert record["model_params"] == {"embedding_dim": 4, "scale": 2.0, "cold_path": "none", "cold_k": 50,
                                      "cold_modalities": None, "cold_objective": "regress"}
    assert isinstance(model, ScaledMF)


class TestToyModelContract(RecommenderContract):
    """A registered model's constructor handed to the shared contract suite."""

    def make_model(self, dataset):
        with registered_toy_model("toy-contract") as name:
            return build_model(name, dataset)


def test_registration_rules():
    def build(dataset, width: Annotated[int, Option(help="w")] = 3) -> ScaledMF:
        return ScaledMF(dataset.n_users, dataset.n_items, width)

    def other(dataset, width: int = 3) -> ScaledMF:
        return ScaledMF(dataset.n_users, dataset.n_items, width)

    register_model("toy-rules", title="T", paper="p", summary="s")(build)
    try:
        with pytest.raises(ValueError, match="already registered"):  # another function, the same name
            register_model("toy-rules", title="T", paper="p", summary="s")(other)
        register_model("toy-rules", title="T2", paper="p", summary="s", replace=True)(build)
        assert get_model("toy-rules").title == "T2" and get_model("toy-rules").param("width").flags == ("--width",)
        # a notebook cell run again defines the same function anew: it replaces itself
        unregister_model("toy-rules")
        for width in (4, 5):
            def rerun(dataset, width: int = width) -> ScaledMF:
                return ScaledMF(dataset.n_users, dataset.n_items, width)

            register_model("toy-rules", title="T3", paper="p", summary="s")(rerun)
        assert get_model("toy-rules").defaults["width"] == 5
    finally:
        unregister_model("toy-rules")
    with pytest.raises(ValueError, match="lower-case"):
        register_model("Toy Rules", title="T", paper="p", summary="s")
    with pytest.raises(TypeError, match="needs a default"):
        register_model("toy-nodefault", title="T", paper="p", summary="s")(lambda dataset, width: None)
    with pytest.raises(ValueError, match="task must be one of"):
        register_model("toy-task", title="T", paper="p", summary="s", task="regression")


def test_plugins_are_loaded_from_entry_points(monkeypatch):
    import importlib.metadata

    import graphrec.train.registry as registry

    class EP:
        def __init__(self, name, fn):
            self.name, self.value, self._fn = name, f"plugin:{name}", fn

        def load(self):
            return self._fn()

    def good():
        def build(dataset, scale: float = 1.0) -> ScaledMF:
            return ScaledMF(dataset.n_users, dataset.n_items, scale=scale)

        register_model("toy-plugin", title="Plug", paper="p", summary="s")(build)

    def broken():
        raise ImportError("no such package")

    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: [EP("good", good), EP("broken", broken)] if group == "graphrec.models" else [])
    monkeypatch.setattr(registry, "_LOADED", False)
    try:
        with pytest.warns(UserWarning, match="plug-in 'broken'.*no such package"):
            names = {e.name for e in registered_models()}
        assert "toy-plugin" in names and "lightgcn" in names
    finally:
        unregister_model("toy-plugin")


PLUGIN_FIRST = """
from graphrec.testing import ScaledMF
from graphrec.train.registry import register_model
{decorator}
def build_mf(dataset, scale: float = 1.0) -> ScaledMF:
    return ScaledMF(dataset.n_users, dataset.n_items, scale=scale)
import graphrec
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.train import build_model
from graphrec.train.registry import get_model
ds = synthetic_catalogue(n_users=20, n_items=15, seed=0)
print(type(build_model("lightgcn", ds, {{}})).__name__, get_model("mf").build.__module__)
"""


@pytest.mark.parametrize("replace", [True, False])
def test_a_plugin_registered_before_the_registry_loaded_meets_the_built_in_models(replace):
    """A notebook registering its own 'mf' before anything loaded the registry: with
    replace=True it replaced MF and every built-in model stayed usable; without it, the
    registration is refused at once. (The built-ins used to register after the plug-in
    and collide with it: every later registry call failed, lightgcn's included.)"""
    import subprocess
    import sys

    flag = "replace=True" if replace else "replace=False"
    code = PLUGIN_FIRST.format(decorator=f'@register_model("mf", title="My MF", paper="p", summary="s", {flag})')
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if replace:
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["LightGCN", "__main__"]
    else:
        assert res.returncode == 1
        assert res.stderr.strip().splitlines()[-1].endswith(
            "model 'mf' is already registered (by graphrec.train.builders.mf): choose another name, "
            "or pass replace=True to replace it"), res.stderr


def test_ctr_models_are_registered_with_their_training_options():
    gmmf = get_model("gmmf", "ctr")
    assert {p.name for p in gmmf.train_params} == {"gan_start_epoch", "gan_lr"}
    assert "gan_lr" not in gmmf.defaults and gmmf.defaults["id_dim"] == 32
    # a model of the other task is not "unknown" (graphrec tune gmmf said so)
    with pytest.raises(ConfigError, match="'lightgcn' is a ranking model, and this takes a CTR model: one of .*gmmf"):
        get_model("lightgcn", "ctr")
    with pytest.raises(ConfigError, match="unknown CTR model 'nope'"):
        get_model("nope", "ctr")


@pytest.mark.parametrize("name", [e.name for e in registered_models("ranking") if e.check is not None])
def test_a_models_check_accepts_what_trains_and_refuses_what_its_builder_refuses(name):
    """``check`` (run by `graphrec tune --grid` on every point before training) passes a
    model's defaults on data it trains on, and where it refuses, the builder refuses the
    same parameters with the same one-line error: a modality the data lack, no features."""
    from graphrec.errors import DataError

    data = synthetic_catalogue(n_users=40, n_items=30, n_clusters=3, seed=0)
    entry = get_model(name)
    entry.check(data, model_params(name))
    bad = [(data, {"modalities": "image,audio"}, DataError, "no audio features")]
    if entry.needs_features is True:
        bad.append((data.replace(item_features={}), {}, DataError, "needs item content features"))
    if name == "freedom":
        bad.append((data, {"dropout": 1.0}, ConfigError, "dropout must be < 1"))
    for dataset, params, error, message in bad:
        with pytest.raises(error, match=message) as checked:
            entry.check(dataset, model_params(name, params))
        with pytest.raises(error) as built:
            build_model(name, dataset, params)
        assert str(built.value) == str(checked.value)


@pytest.mark.parametrize(
    "model, params",
    [("freedom", {}), ("lattice", {}), ("mgcn", {}), ("smore", {}), ("mmgef", {}), ("cb", {}),
     ("lightgcn", {"cold_path": "content", "cold_k": 5})],
)
def test_build_model_progress_reaches_every_knn_build(model, params, monkeypatch):
    # the builders say nothing about progress: build_model's flag reaches their kNN searches
    import graphrec.graphs.build as build_mod
    from graphrec.testing import contract_dataset
    from graphrec.train.registry import build_model

    seen: list[bool] = []
    real = build_mod.knn_graph

    def spy(*args, **kw):
        seen.append(kw["progress"])
        return real(*args, **kw)

    monkeypatch.setattr(build_mod, "knn_graph", spy)
    ds = contract_dataset()
    build_model(model, ds, params, progress=True)
    assert seen and all(seen)
    n_on = len(seen)
    seen.clear()
    build_model(model, ds, params)  # default: no bars
    assert len(seen) == n_on and not any(seen)
    with build_mod.build_progress(True):  # an explicit progress=False still wins
        build_mod.build_item_graph(ds, build_mod.GraphSpec(kind="knn", k=3), progress=False)
        build_mod.build_item_graph(ds, build_mod.GraphSpec(kind="knn", k=3))
    assert seen[-2:] == [False, True]


@pytest.mark.parametrize("progress", [False, True])
def test_run_training_builds_with_the_trainings_progress_setting(progress, monkeypatch):
    import graphrec.train.run as run_mod

    seen = []
    real = run_mod.build_model
    monkeypatch.setattr(run_mod, "build_model", lambda *a, **kw: seen.append(kw.get("progress")) or real(*a, **kw))
    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=1)
    with registered_toy_model("toy-progress") as name:
        run_training(ds, name, {"embedding_dim": 4}, TrainConfig(epochs=1, progress=progress))
    assert seen == [progress]


def test_models_names_a_few_models_and_lists_their_reference_names():
    res = runner.invoke(make_app(), ["models", "freedom", "lightgcn", "--params"])
    assert res.exit_code == 0, res.output
    starts = [line.split()[0] for line in res.output.splitlines() if not line.startswith(" ")]
    assert starts == ["name", "freedom", "lightgcn"]
    assert ("mmrec's names for them: n_ui_layers = num_layers, n_mm_layers = item_layers, knn_k = k, reg_weight = "
            "feature_weight, mm_image_weight = modality_weights: {image: W, text: 1 - W}") in res.output
    res = runner.invoke(make_app(), ["models", "freedom", "gmmf", "--task", "ranking"])
    assert res.exit_code == 1 and "no ranking model named gmmf: choose among" in res.output


# ---- a model author's mistakes: each one line, found as early as it can be


def _build(dataset, **_):  # a builder's body: the declarations below are what is tested
    return ScaledMF(dataset.n_users, dataset.n_items, embedding_dim=4)


def test_a_hyper_parameter_without_a_type_is_refused_at_registration():
    """It was accepted: the command line then passed the text '0.01' to the builder, and
    the record kept the string."""
    def build_untyped(dataset, reg_weight=1e-4) -> ScaledMF:
        return _build(dataset)

    with pytest.raises(ModelDefinitionError, match=r"hyper-parameter 'reg_weight' needs a type annotation \(e\.g\. "
                       r"`reg_weight: float = 0\.0001`"):
        register_model("toy-untyped", title="T", paper="p", summary="s")(build_untyped)
    assert "toy-untyped" not in {e.name for e in registered_models()}


def test_the_return_annotation_may_name_a_class_imported_for_type_checking_only():
    namespace: dict = {"Annotated": Annotated, "Option": Option, "ScaledMF": ScaledMF}
    exec("from __future__ import annotations\n"
         "def build_tc(dataset, width: Annotated[int, Option(min=1)] = 3) -> NotImportedHere:\n"
         "    return ScaledMF(dataset.n_users, dataset.n_items, embedding_dim=width)\n"
         "def build_bad(dataset, width: NotImportedEither = 3) -> ScaledMF:\n"
         "    return ScaledMF(dataset.n_users, dataset.n_items)\n", namespace)
    register_model("toy-tc", title="T", paper="p", summary="s")(namespace["build_tc"])
    try:
        assert get_model("toy-tc").param("width").type is int
    finally:
        unregister_model("toy-tc")
    with pytest.raises(ModelDefinitionError, match="type names NotImportedEither, which is not defined in the "
                       "builder's module: import it at module level"):
        register_model("toy-tc-bad", title="T", paper="p", summary="s")(namespace["build_bad"])


def test_an_option_over_a_shared_alias_changes_only_what_it_sets():
    """``Annotated[Reg, Option(help=...)]`` dropped the alias's --reg flag and its lower
    bound (-1 was accepted)."""
    def build_help(dataset, reg_weight: Annotated[Reg, Option(help="My own help.")] = 1e-4) -> ScaledMF:
        return _build(dataset)

    register_model("toy-help", title="T", paper="p", summary="s")(build_help)
    try:
        spec = get_model("toy-help").param("reg_weight")
        assert spec.flags == ("--reg",) and spec.option.min == 0.0 and spec.option.help == "My own help."
        with pytest.raises(ConfigError, match="reg_weight must be >= 0.0"):
            model_params("toy-help", {"reg_weight": -1.0})
    finally:
        unregister_model("toy-help")


def test_two_hyper_parameters_on_one_flag_are_refused_at_registration():
    def build_twice(dataset, width: Annotated[int, Option("--dim")] = 3,
                    embedding_dim: Annotated[int, Option("--dim")] = 4) -> ScaledMF:
        return _build(dataset)

    with pytest.raises(ModelDefinitionError, match=r"^tests\..*hyper-parameters 'width' and 'embedding_dim' both take "
                       r"the flag --dim: give one of them another"):
        register_model("toy-twice", title="T", paper="p", summary="s")(build_twice)
    # the cold-item path's flags are the model's too
    def build_cold(dataset, k: Annotated[int, Option("--cold-k")] = 3) -> ScaledMF:
        return _build(dataset)

    with pytest.raises(ModelDefinitionError, match="'k' and 'cold_k' both take the flag --cold-k"):
        register_model("toy-cold-flag", title="T", paper="p", summary="s")(build_cold)


def _toy_with(flag: str, module: str):
    def build_flag(dataset, width: int = 3) -> ScaledMF:
        return _build(dataset)

    build_flag.__annotations__["width"] = Annotated[int, Option(flag, min=1)]  # `flag` is no global
    build_flag.__module__ = module
    return build_flag


def test_a_shared_flag_taken_by_a_plugin_skips_its_command_and_keeps_the_others():
    """``Option("--epochs")`` registered, listed --epochs twice in --help, and the value
    went to training: the model's option could never be set."""
    register_model("toy-epochs", title="T", paper="p", summary="s")(_toy_with("--epochs", "someone.models"))
    try:
        with pytest.warns(UserWarning, match=r"plug-in 'toy-epochs' has no command: someone\.models: model 'toy-epochs': "
                          r"hyper-parameter 'width' takes the flag --epochs, which is the shared training option "
                          r"'epochs''s: give it another flag"):
            names = _registered_commands(make_app())
        assert "toy-epochs" not in names and "lightgcn" in names
    finally:
        unregister_model("toy-epochs")


def test_a_shared_flag_taken_by_graphrecs_own_model_is_one_line_from_every_command():
    from graphrec._entry import main

    register_model("toy-own", title="T", paper="p", summary="s")(_toy_with("--seed", "graphrec.train.builders.toy"))
    try:
        for argv in (["train", "--help"], ["train", "lightgcn", "--help"], ["train"]):
            proc = _run_main(main, argv)  # no help is written before the line (the group's is made first)
            assert proc == (1, "", "error: graphrec.train.builders.toy: model 'toy-own': hyper-parameter 'width' takes "
                                   "the flag --seed, which is the shared training option 'seed''s: give it another flag "
                                   "(Option('--other-flag'))\n")
    finally:
        unregister_model("toy-own")


def _run_main(main, argv):
    import contextlib
    import io
    import sys

    err, out = io.StringIO(), io.StringIO()
    old = sys.argv
    sys.argv = ["graphrec", *argv]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                main()
                code = 0
            except SystemExit as e:
                code = e.code
    finally:
        sys.argv = old
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("returned, what", [
    (lambda m: (None, m), "a tuple"), (lambda m: None, r"None \(no return statement\?\)"),
    (lambda m: __import__("torch").nn.Linear(2, 2), "a Linear"),
])
def test_a_builder_returning_no_model_is_one_line(returned, what):
    def build_wrong(dataset, width: int = 3) -> ScaledMF:
        return returned(_build(dataset))

    register_model("toy-wrong", title="T", paper="p", summary="s")(build_wrong)
    try:
        with pytest.raises(ModelDefinitionError, match=rf"builder tests\..*build_wrong of model 'toy-wrong' returned "
                           rf"{what}, not a graphrec\.models\.Recommender: return the model it builds"):
            build_model("toy-wrong", synthetic_catalogue(n_users=20, n_items=15, n_clusters=2, seed=0))
    finally:
        unregister_model("toy-wrong")


class _PerTripleLoss(ScaledMF):
    def loss(self, users, pos_items, neg_items):
        pos, neg = self.pairwise_scores(users, pos_items, neg_items)
        return -(pos - neg).sigmoid().log()  # one value per triple: the mean was forgotten


def test_a_loss_that_is_not_one_number_is_one_line_naming_the_fix():
    ds = synthetic_catalogue(n_users=20, n_items=15, n_clusters=2, seed=0)
    model = _PerTripleLoss(ds.n_users, ds.n_items, embedding_dim=4)
    from graphrec.train.fit import fit

    with pytest.raises(ModelDefinitionError, match=r"_PerTripleLoss\.loss returned shape \(\d+,\), not a "
                       r"0-dimensional tensor: return the batch's mean \(e\.g\. loss\.mean\(\)\)"):
        fit(model, ds, TrainConfig(epochs=1, batch_size=16, progress=False))


def test_help_joins_a_docstrings_lines_within_each_paragraph():
    """Typer kept a docstring's hard line breaks: at 80 columns the help read
    "one GCN per / modality / (default ...)"."""
    from graphrec.cli.train import command_help

    def build_doc(dataset, width: int = 3) -> ScaledMF:
        """One GCN per
        modality, sharing an ID embedding.

        A second
        paragraph."""
        return _build(dataset)

    register_model("toy-doc", title="T", paper="p", summary="s")(build_doc)
    try:
        assert command_help(get_model("toy-doc")).split("\n\n")[1:] == [
            "One GCN per modality, sharing an ID embedding.", "A second paragraph."]
    finally:
        unregister_model("toy-doc")


def test_the_loss_axis_label_comes_from_the_registry():
    """graphrec plot kept its own list of the models whose loss is BPR alone: a new model
    needed an edit there (its label read "training loss" whatever it computed)."""
    from graphrec.train.plots import loss_label

    register_model("toy-bpr", title="T", paper="p", summary="s", loss="BPR loss")(_toy_with("--width", __name__))
    try:
        with registered_toy_model("toy-other") as other:
            assert loss_label([{"task": "ranking", "model": "toy-bpr"}]) == "BPR loss (mean per batch)"
            assert loss_label([{"task": "ranking", "model": other}]) == "training loss (mean per batch)"
            assert loss_label([{"task": "ranking", "model": "toy-bpr"}, {"task": "ranking", "model": other}]) == \
                "training loss (mean per batch)"
    finally:
        unregister_model("toy-bpr")


# models documented on a page they share (the baselines, the CTR models): every other
# registered model has docs/models/NAME.md
SHARED_PAGES = {"mf": "baselines.md", "cb": "baselines.md", **{
    name: "ctr.md" for name in ("lr", "fm", "deepfm", "youtubenet", "din", "gmmf", "marn")}}


def test_every_registered_model_has_its_doc_page():
    """A model added without docs/models/NAME.md passed every test."""
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs" / "models"
    for entry in registered_models():
        page = docs / SHARED_PAGES.get(entry.name, f"{entry.name}.md")
        assert page.is_file(), f"model {entry.name!r} has no doc page: write docs/models/{entry.name}.md"
        assert entry.title in page.read_text(encoding="utf-8"), f"{page.name} does not name {entry.title}"


def test_builder_defaults_are_the_model_constructors_defaults():
    """A default is written twice, in the builder (what the CLI, the record and tune use)
    and in the model's constructor (what Python users of the class get): the two must
    agree, after the builder's ``resolve`` rule for those that follow other parameters
    (a model author changing one of them alone passed every other test)."""
    import inspect
    import typing

    for entry in registered_models():
        model_class = typing.get_type_hints(entry.build).get("return")
        assert inspect.isclass(model_class), entry.name
        constructor = inspect.signature(model_class.__init__).parameters
        defaults = entry.resolve(entry.defaults) if entry.resolve is not None else entry.defaults
        for name, value in defaults.items():
            own = constructor.get(name)
            if own is None or own.default is inspect.Parameter.empty:
                continue  # a builder-only parameter, or one the constructor requires
            assert value == own.default, (
                f"{entry.name}: the builder's default {name}={value!r} differs from "
                f"{model_class.__name__}'s {own.default!r}"
            )


def test_a_reference_implementations_name_is_translated_in_every_unknown_option_message(data_dir):
    """`--knn-k 10`, `{'knn_k': 5}` or a space file's `knn_k` said only that the name is
    unknown; the RecBole adapter alone said what it is in graphrec."""
    from graphrec.train.registry import reference_hint
    from graphrec.train.space import search_space

    freedom = get_model("freedom")
    assert reference_hint(freedom, "knn_k") == "knn_k is MMRec's name for FREEDOM's k (--k)"
    assert reference_hint(freedom, "mm_image_weight") == ("mm_image_weight is MMRec's name for FREEDOM's "
                                                          "modality_weights (--modality-weights), its value W meaning "
                                                          "{image: W, text: 1 - W}")
    assert reference_hint(freedom, "learning_rate") == "learning_rate is MMRec's and RecBole's name for lr (--lr)"
    assert reference_hint(get_model("cb"), "embedding_size") is None  # cb has no embeddings
    assert reference_hint(freedom, "nosuch") is None
    res = runner.invoke(make_app(), ["train", "freedom", "--data", str(data_dir), "--knn-k", "10"])
    assert res.exit_code == 1 and res.output.strip() == (
        "error: No such option: --knn-k (Possible options: --k); knn_k is MMRec's name for FREEDOM's k (--k): see "
        "`graphrec train freedom --help`"), res.output
    res = runner.invoke(make_app(), ["train", "lightgcn", "--data", str(data_dir), "--learning-rate", "0.01"])
    assert "learning_rate is MMRec's and RecBole's name for lr (--lr)" in res.output
    with pytest.raises(ConfigError, match=r"model 'freedom' has no option 'knn_k' \(knn_k is MMRec's name for FREEDOM's "
                       r"k \(--k\)\): valid are"):
        model_params("freedom", {"knn_k": 5})
    with pytest.raises(ConfigError, match=r"^s.yaml: freedom has no hyper-parameter 'knn_k' \(knn_k is MMRec's name"):
        search_space("freedom", {"knn_k": [10, 20]}, source="s.yaml")


def test_task_ctr_on_a_ranking_model_names_the_ctr_models(data_dir):
    """`graphrec train lightgcn --task ctr` said only "No such option: --task"."""
    res = runner.invoke(make_app(), ["train", "lightgcn", "--data", str(data_dir), "--task", "ctr"])
    assert res.exit_code == 1
    ctr = ", ".join(e.name for e in registered_models("ctr"))
    assert (f"lightgcn ranks items (top-k, recall/ndcg); the click-through-rate models ({ctr}) take --task ctr, "
            "e.g. graphrec train gmmf --task ctr") in " ".join(res.output.split()), res.output


def test_the_cold_item_path_on_a_model_without_parameters_says_why(data_dir):
    """`graphrec train cb --cold-path content` said only "No such option: --cold-path"."""
    res = runner.invoke(make_app(), ["train", "cb", "--data", str(data_dir), "--cold-path", "content"])
    assert res.exit_code == 1
    assert ("cb has no parameters to train a cold-item path with; it scores items without training interactions "
            "from their content already") in " ".join(res.output.split()), res.output
