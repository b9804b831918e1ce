"""The `graphrec train` line a tune trial records (graphrec.train.commands): the flags the
registry derives for each hyper-parameter, None where the command line cannot say it."""

from __future__ import annotations

import shlex

import pytest

from graphrec.train.commands import (
    CONFIG_FLAGS,
    TRAIN_OPTIONS,
    config_from_options,
    option_defaults,
    train_command_line,
)
from graphrec.train.config import TrainConfig
from graphrec.train.registry import get_model, model_params, register_model, registered_models


def test_hyper_parameters_take_the_flags_the_command_is_generated_with(tmp_path):
    params = model_params("mmgef", {"use_cf_graph": False, "modalities": ["image", "text"], "embedding_dim": 32})
    line = train_command_line("mmgef", params, TrainConfig(lr=0.0012345678901234567, epochs=7), tmp_path,
                              device="cpu", threads=3)
    words = shlex.split(line)
    assert words[:5] == ["graphrec", "train", "mmgef", "--data", str(tmp_path.resolve())]
    assert "--no-cf-graph" in words and words[words.index("--modalities") + 1] == "image,text"
    assert words[words.index("--dim") + 1] == "32"
    assert float(words[words.index("--lr") + 1]) == 0.0012345678901234567  # exactly
    assert words[-4:] == ["--device", "cpu", "--threads", "3"]
    assert "--batch-size" not in words and "--lr-decay-every" not in words  # the command's defaults


def test_a_model_s_own_training_defaults_are_not_repeated_and_a_cold_split_is(tmp_path):
    line = train_command_line("smore", model_params("smore", {}), TrainConfig(lr_decay=0.96), tmp_path,
                              {"cold_start": 0.2, "cold_start_seed": 0, "cold_start_protocol": "papers"})
    words = shlex.split(line)
    assert "--lr-decay" not in words  # smore's own default
    assert words[-4:] == ["--cold-start", "0.2", "--cold-protocol", "papers"]


def test_what_graphrec_train_cannot_say_has_no_command(tmp_path):
    lightgcn = model_params("lightgcn", {})
    assert train_command_line("lightgcn", lightgcn, TrainConfig(weight_decay=0.1), tmp_path) is None


def test_a_cold_split_drawn_with_another_seed_than_the_training_s_is_said_with_cold_seed(tmp_path):
    """A --repeats study's later seeds train on the split of --seed: their command had none."""
    cold = {"cold_start": 0.2, "cold_start_seed": 0, "cold_start_protocol": "papers"}
    words = shlex.split(train_command_line("lightgcn", model_params("lightgcn", {}), TrainConfig(seed=1), tmp_path,
                                           cold))
    assert words[words.index("--seed") + 1] == "1" and words[-6:] == [
        "--cold-start", "0.2", "--cold-protocol", "papers", "--cold-seed", "0"]


def _command(model: str):
    import typer.main

    from graphrec.cli import make_app

    return typer.main.get_command(make_app()).commands["train"].commands[model]


@pytest.mark.parametrize("model", [e.name for e in registered_models("ranking")])
def test_every_training_option_is_a_flag_of_graphrec_train_at_the_config_s_default(model):
    """One declaration (TRAIN_OPTIONS) gives the command's options, their defaults and the
    flags a recorded command line uses: each TrainConfig field graphrec train sets is an
    option of every ranking command, with TrainConfig's default or the model's own."""
    entry = get_model(model, "ranking")
    params = {p.name: p for p in _command(model).params}
    fields = {**TrainConfig().to_dict(), **dict(entry.train_defaults)}
    for option, field in TRAIN_OPTIONS.items():
        assert CONFIG_FLAGS[field] in params[option].opts
        if entry.trainable or option not in ("epochs",):
            assert params[option].default == fields[field], (model, option)


def test_graphrec_tune_takes_graphrec_train_s_defaults():
    import typer.main

    from graphrec.cli import make_app

    params = {p.name: p.default for p in typer.main.get_command(make_app()).commands["tune"].params}
    defaults = option_defaults()
    for option in ("epochs", "patience", "eval_every", "metric", "select_on", "negatives", "protocol", "seed"):
        assert params[option] == defaults[option], option


def test_config_from_options_maps_each_option_to_its_field():
    options = {**option_defaults(), "metric": "ndcg@10", "negatives": "warm"}
    config = config_from_options(options, progress=False)
    assert config.valid_metric == "ndcg@10" and config.negatives == "warm" and config.progress is False
    with pytest.raises(TypeError, match="missing"):
        config_from_options({"epochs": 3})


def test_a_model_s_training_default_must_be_one_graphrec_train_sets():
    """A ranking model's train_defaults that graphrec train has no option for would be a
    default the command line cannot apply: refused at registration."""
    with pytest.raises(ValueError, match="weight_decay are not options graphrec train sets"):
        register_model("toy-wd", title="T", paper="p", summary="s",
                       train_defaults={"weight_decay": 0.1})(lambda dataset: None)
    assert "toy-wd" not in {e.name for e in registered_models()}


def test_the_ctr_commands_take_ctr_config_s_training_defaults():
    from graphrec.cli.train_ctr import CTR_TRAIN_OPTIONS
    from graphrec.train.ctr import CTRConfig

    for entry in registered_models("ctr"):
        params = {p.name: p.default for p in _command(entry.name).params}
        for option in CTR_TRAIN_OPTIONS:
            assert params[option] == dict(entry.train_defaults).get(option, getattr(CTRConfig(), option)), option
