"""Training: typed configs, the generic fit loop, evaluation, run records."""

from graphrec.train.builders import MODELS, build_model, model_params
from graphrec.train.config import TrainConfig
from graphrec.train.evaluate import evaluate_ranking
from graphrec.train.fit import FitResult, evaluate_model, fit, seed_everything
from graphrec.train.record import load_record, load_state, save_run
from graphrec.train.run import export_item_graph, load_run, reevaluate, run_training

__all__ = [
    "MODELS",
    "build_model",
    "model_params",
    "TrainConfig",
    "evaluate_ranking",
    "FitResult",
    "evaluate_model",
    "fit",
    "seed_everything",
    "load_record",
    "load_state",
    "save_run",
    "run_training",
    "reevaluate",
    "load_run",
    "export_item_graph",
]
