"""The `graphrec train` line a tune trial records (graphrec.train.commands): the flags the
registry derives for each hyper-parameter, None where the command line cannot say it."""

from __future__ import annotations

import shlex

from graphrec.train.commands import train_command_line
from graphrec.train.config import TrainConfig
from graphrec.train.registry import model_params


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
    cold = {"cold_start": 0.2, "cold_start_seed": 0, "cold_start_protocol": "papers"}
    assert train_command_line("lightgcn", lightgcn, TrainConfig(seed=1), tmp_path, cold) is None  # --repeats seed 1
