"""Search spaces of `graphrec tune`: declared with each model in the registry, changed by
a YAML file entry by entry, checked against the model's declared parameters."""

from __future__ import annotations

import math
from typing import Annotated

import pytest

from graphrec.errors import ConfigError
from graphrec.train.registry import (
    TUNABLE_TRAIN_OPTIONS,
    Choice,
    FloatRange,
    IntRange,
    Option,
    get_model,
    register_model,
    registered_models,
    unregister_model,
)
from graphrec.train.space import (
    SearchSpace,
    dim_from_dict,
    dim_to_dict,
    grid_values,
    load_space_file,
    search_space,
    suggest,
)


class FakeTrial:
    """Records the suggest_* calls and answers the lower bound (or first choice)."""

    def __init__(self):
        self.calls = []

    def suggest_float(self, name, low, high, *, step=None, log=False):
        self.calls.append(("float", name, low, high, step, log))
        return low + (step or 0) * 3 if step else low

    def suggest_int(self, name, low, high, *, step=1, log=False):
        self.calls.append(("int", name, low, high, step, log))
        return low

    def suggest_categorical(self, name, choices):
        self.calls.append(("categorical", name, tuple(choices)))
        return choices[-1]


def test_every_trainable_ranking_model_declares_a_space_inside_its_declared_ranges():
    for entry in registered_models("ranking"):
        assert entry.search_space, f"{entry.name} declares no search space"
        space = search_space(entry.name)
        assert set(space.searched) == set(entry.search_space)
        names = {p.name for p in entry.params} | set(TUNABLE_TRAIN_OPTIONS)
        assert set(space.searched) <= names
    lightgcn = get_model("lightgcn").search_space
    assert lightgcn["lr"] == FloatRange(1e-4, 1e-2, log=True)
    assert lightgcn["num_layers"] == IntRange(1, 4)


def test_a_declared_space_outside_the_declared_range_is_refused_at_registration():
    def build(dataset, dim: int = 8):
        return None

    with pytest.raises(TypeError, match="neither a hyper-parameter"):
        register_model("toy-space", title="t", paper="p", summary="s", search_space={"width": IntRange(1, 4)})(build)
    def build2(dataset, dim: Annotated[int, Option(min=1)] = 8):
        return None

    with pytest.raises(TypeError, match="must be >= 1"):
        register_model("toy-space", title="t", paper="p", summary="s", search_space={"dim": IntRange(0, 4)})(build2)
    try:
        register_model("toy-space", title="t", paper="p", summary="s", search_space={"dim": Choice((4, 8)), "lr": FloatRange(0.1, 0.2)})(build2)
        assert set(get_model("toy-space").search_space) == {"dim", "lr"}
    finally:
        unregister_model("toy-space")


@pytest.mark.parametrize(
    "dim",
    [FloatRange(1e-4, 1e-2, log=True), FloatRange(0.0, 1.0, step=0.1), IntRange(5, 40, step=5), IntRange(1, 64, log=True),
     Choice((32, 64, 128))],
)
def test_ranges_round_trip_through_their_dict_form(dim):
    assert dim_from_dict(dim_to_dict(dim)) == dim


@pytest.mark.parametrize(
    "make, message",
    [(lambda: FloatRange(1.0, 1.0), "low < high"), (lambda: FloatRange(0.0, 1.0, log=True), "low > 0"),
     (lambda: IntRange(1.5, 3), "integers"), (lambda: IntRange(1, 8, log=True, step=2), "step"),
     (lambda: Choice(()), "at least one"), (lambda: Choice((1, 1)), "repeats")],
)
def test_malformed_ranges_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_yaml_file_changes_the_default_entry_by_entry(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "lr: {low: 1e-3, high: 5e-2, log: true}\n"   # PyYAML reads 1e-3 as text: accepted as a number
        "num_layers: 2\n"                          # fixed: no longer searched
        "embedding_dim: [16, 32]\n"                # added: a choice
        "batch_size: {choices: [512, 1024]}\n"     # a training option
    )
    space = search_space("lightgcn", load_space_file(path))
    assert space.searched == {
        "lr": FloatRange(1e-3, 5e-2, log=True),
        "reg_weight": FloatRange(1e-6, 1e-2, log=True),
        "embedding_dim": Choice((16, 32)),
        "batch_size": Choice((512, 1024)),
    }
    assert space.fixed == {"num_layers": 2}
    model, train = suggest(FakeTrial(), space)
    assert model == {"reg_weight": 1e-6, "embedding_dim": 32, "num_layers": 2}
    assert train == {"lr": 1e-3, "batch_size": 1024}


def test_null_drops_a_declared_entry_and_the_parameter_keeps_its_default(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("k: null\nuse_knn_graph: false\nitem_layers: 2\n")
    space = search_space("mmgef", load_space_file(path))
    assert "k" not in space.searched and "k" not in space.fixed
    assert set(space.searched) == {"lr", "reg_weight", "num_layers"}
    assert space.fixed == {"use_knn_graph": False, "item_layers": 2}
    model, _ = suggest(FakeTrial(), space)
    assert "k" not in model  # the builder's default (None: no content graph to size)
    with pytest.raises(ConfigError, match="nothing to search"):
        search_space("lightgcn", {"lr": None, "reg_weight": None, "num_layers": 2})


def test_integer_ranges_follow_the_declared_type():
    space = search_space("lattice", {"k": {"low": 5, "high": 20, "step": 5}, "lambda_coeff": {"low": 0, "high": 1}})
    assert space.searched["k"] == IntRange(5, 20, step=5)
    assert space.searched["lambda_coeff"] == FloatRange(0.0, 1.0)
    trial = FakeTrial()
    suggest(trial, space)
    assert ("int", "k", 5, 20, 5, False) in trial.calls
    assert ("float", "lambda_coeff", 0.0, 1.0, None, False) in trial.calls


def test_stepped_reals_come_back_rounded():
    space = SearchSpace("lattice", {"lambda_coeff": FloatRange(0.0, 1.0, step=0.1)}, {})
    model, _ = suggest(FakeTrial(), space)  # FakeTrial answers 0 + 3 * 0.1 = 0.30000000000000004
    assert model["lambda_coeff"] == 0.3


def test_a_trials_stored_parameters_read_as_the_model_received_them():
    from graphrec.train.space import as_suggested

    space = SearchSpace("lattice", {"lambda_coeff": FloatRange(0.0, 1.0, step=0.1), "lr": FloatRange(1e-4, 1e-2, log=True),
                                    "k": IntRange(5, 40, step=5)}, {})
    stored = {"lambda_coeff": 0.7000000000000001, "lr": 0.0012345678901234567, "k": 15, "other": 0.30000000000000004}
    assert as_suggested(space, stored) == {"lambda_coeff": 0.7, "lr": 0.0012345678901234567, "k": 15,
                                           "other": 0.30000000000000004}  # only stepped reals of the space
    assert as_suggested(space, {"lambda_coeff": 0.30000000000000004}) == {
        "lambda_coeff": suggest(FakeTrial(), space)[0]["lambda_coeff"]}


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"width": {"low": 1, "high": 2}}, "lightgcn has no hyper-parameter 'width': valid are"),
        ({"num_layers": {"low": 1.5, "high": 3}}, "num_layers is an integer, got 1.5"),
        ({"num_layers": {"low": -1, "high": 3}}, "num_layers must be >= 0"),
        ({"reg_weight": {"low": 0, "high": 1, "log": True}}, "low > 0"),
        ({"reg_weight": {"low": 1, "high": 0.5}}, "reg_weight: {low: 1, high: 0.5}: low must be below high: swap them"),
        ({"reg_weight": {"low": 0.5, "high": 0.5}}, r"low equals high: fix the value instead \(reg_weight: 0.5\)"),
        ({"num_layers": {"low": 1, "high": 3}, "lr": [0.01, 0.01]}, r"lr: \[0.01, 0.01\] lists 0.01 twice: list each value once"),
        ({"num_layers": {"low": 1, "high": 4, "step": 0}}, "num_layers: {low: 1, high: 4, step: 0}: step must be positive, got 0"),
        ({"reg_weight": {"low": 0.1, "high": 1, "log": True, "step": 0.1}}, "step and log: true exclude each other"),
        ({"reg_weight": {"lo": 1, "high": 2}}, "unknown lo"),
        ({"reg_weight": {"low": "a lot", "high": 2}}, "'a lot' is not a number"),
        ({"reg_weight": {"low": 0.1, "high": 1, "log": "yes"}}, "log must be true or false"),
        ({"embedding_dim": []}, "non-empty list"),
        ({"lr": -1}, "lr must be positive"),
        ({"lr_decay": 1.5}, r"lr_decay must be in \(0, 1\], got 1.5"),
        ({"lr_decay": {"low": 0.5, "high": 1.5}}, r"lr_decay must be in \(0, 1\], got 1.5"),
        # the value is the file's: no "(--dim on the command line)"
        ({"embedding_dim": 0}, r"lightgcn option embedding_dim must be >= 1, got 0$"),
    ],
)
def test_bad_entries_are_one_line_errors_naming_the_file_and_entry(entry, message):
    with pytest.raises(ConfigError, match=message) as e:
        search_space("lightgcn", entry, source="--space s.yaml")
    assert str(e.value).startswith("--space s.yaml: ") and "\n" not in str(e.value)
    # worded as the file is written (its keys and values), not by graphrec's classes
    assert not any(name in str(e.value) for name in ("Range", "Choice")), str(e.value)


def test_fixing_everything_leaves_nothing_to_search():
    # the message said "it declares no search space" of a model that declares one
    with pytest.raises(ConfigError, match=r"nothing to search for mf: --space fixes every parameter it names and "
                                          r"leaves no other searched; give at least one a list of values or a range"):
        search_space("mf", {"lr": 0.01, "reg_weight": 1e-4})


def test_space_files_that_are_not_mappings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_space_file(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- lr\n- reg\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_space_file(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("lr: {low: 1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_space_file(tmp_path / "bad.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert load_space_file(tmp_path / "empty.yaml") == {}


def test_a_space_folder_is_refused_as_a_folder(tmp_path):
    with pytest.raises(ConfigError, match=f"--space {tmp_path} is a folder: give a YAML file"):
        load_space_file(tmp_path)


@pytest.mark.parametrize("text, key, line", [("lr: 0.001\nlr: 0.002\n", "lr", 2),
                                             ("reg_weight:\n  low: 0.1\n  high: 1\n  low: 0.2\n", "low", 4)])
def test_a_key_given_twice_in_a_space_file_is_refused(tmp_path, text, key, line):
    """PyYAML keeps the last of two equal keys: the file would not mean what it says."""
    (tmp_path / "twice.yaml").write_text(text)
    with pytest.raises(ConfigError) as e:
        load_space_file(tmp_path / "twice.yaml")
    assert str(e.value) == f"--space {tmp_path / 'twice.yaml'}: {key!r} is given twice (line {line}): keep one of them"


def test_the_space_describes_itself_and_compares_by_value():
    a = search_space("lightgcn", {"num_layers": 3})
    b = search_space("lightgcn", {"num_layers": 3})
    assert a.to_dict() == b.to_dict() != search_space("lightgcn").to_dict()
    assert "lr: 0.0001 .. 0.01 (log)" in a.describe() and "num_layers: 3 (fixed)" in a.describe()


def test_a_grid_lists_every_value_of_each_searched_parameter():
    space = SearchSpace("lightgcn", {"num_layers": IntRange(1, 5, step=2), "lr": FloatRange(0.1, 0.4, step=0.1),
                                     "reg_weight": Choice((1e-4, 1e-3))}, {"embedding_dim": 64})
    assert grid_values(space) == {"num_layers": [1, 3, 5], "lr": [0.1, 0.2, 0.3, 0.4], "reg_weight": [1e-4, 1e-3]}
    assert grid_values(SearchSpace("lightgcn", {"num_layers": IntRange(2, 8, log=True)}, {})) == {
        "num_layers": [2, 3, 4, 5, 6, 7, 8]}
    with pytest.raises(ConfigError, match=r"--grid needs a finite set of values .*; lr is 0.0001 .. 0.01 \(log\): "
                                          r"list its values in --space \(e.g. lr: \[0.0001, 0.01\]\)"):
        grid_values(SearchSpace("lightgcn", {"num_layers": IntRange(1, 2), "lr": FloatRange(1e-4, 1e-2, log=True)}, {}))


#: MMRec's yaml grids (src/configs/model/*.yaml), points per model
MMREC_GRID_SIZES = {"freedom": 2 * 4, "bm3": 2 * 2 * 2, "vbpr": 7, "lattice": 4 * 4, "mgcn": 3, "smore": 2 * 4 * 4 * 2 * 2,
                    "dragon": 5 * 5, "lightgcn": 4 * 5}


@pytest.mark.parametrize("model, size", sorted(MMREC_GRID_SIZES.items()))
def test_the_field_models_declare_mmrecs_grid_as_a_reference_grid(model, size):
    space = search_space(model, "mmrec")
    values = grid_values(space)
    assert math.prod(len(v) for v in values.values()) == size
    assert space.fixed["cold_path"] == "none"  # MMRec's models have no cold-item path
    assert set(space.searched) <= set(values) and not set(space.searched) & set(space.fixed)


def test_dragons_mmrec_grid_carries_its_loss_scale():
    values = grid_values(search_space("dragon", "mmrec"))
    assert values["reg_weight"] == [r * math.log(2) for r in (0.1, 0.01, 1e-3, 1e-4, 1e-5)]
    assert values["lr"] == [0.1, 0.01, 1e-3, 1e-4, 1e-5]


def test_an_unknown_reference_grid_is_a_one_line_error_naming_the_models_grids():
    with pytest.raises(ConfigError, match=r"--space mmrc: no such file, and dragon has no reference grid 'mmrc' "
                                          r"\(its grids: mmrec\)"):
        search_space("dragon", "mmrc", "--space mmrc")
    with pytest.raises(ConfigError, match=r"mmgef has no reference grid 'mmrec' \(it declares none\)"):
        search_space("mmgef", "mmrec")


def test_reference_grids_must_name_declared_parameters_at_registration():
    def build(dataset, dim: Annotated[int, Option(min=1)] = 8):
        return None

    with pytest.raises(TypeError, match="reference grid 'mmrec' names width, which are neither"):
        register_model("toy-grid", title="t", paper="p", summary="s", reference_grids={"mmrec": {"width": [1, 2]}})(build)
    with pytest.raises(TypeError, match="reference grid name 'MMRec' must be lower-case"):
        register_model("toy-grid", title="t", paper="p", summary="s", reference_grids={"MMRec": {"dim": [4, 8]}})(build)
    try:
        register_model("toy-grid", title="t", paper="p", summary="s", search_space={"dim": IntRange(1, 64)},
                       reference_grids={"paper": {"dim": [4, 8], "lr": 0.01}})(build)
        space = search_space("toy-grid", "paper")
        assert dict(space.searched) == {"dim": Choice((4, 8))} and dict(space.fixed) == {"lr": 0.01}
    finally:
        unregister_model("toy-grid")
