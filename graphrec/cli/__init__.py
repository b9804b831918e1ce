"""The ``graphrec`` command line (typer). Commands are thin wrappers over the library."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from graphrec.cli import (
    build_graph,
    demo,
    evaluate,
    export_graph,
    export_mmrec,
    export_recbole,
    features,
    info,
    inspect_graph,
    models,
    plot,
    plot_runs,
    predict,
    prepare,
    recommend,
    train,
    tune,
)
from graphrec.cli._common import GraphrecCommand, GraphrecGroup


class _LazyTrainGroup(TyperGroup):
    """``graphrec train``: one command per registered model, made from the registry (which
    imports every model, hence torch) the first time a command or the list of them is
    needed, not when ``graphrec --help``, ``info`` or ``prepare`` start."""

    def __init__(self) -> None:
        self._real: TyperGroup | None = None
        super().__init__(name="train", help=train.TRAIN_HELP, short_help=train.TRAIN_HELP, no_args_is_help=True)

    @property  # type: ignore[override]
    def commands(self) -> dict[str, Any]:
        if self._real is None:
            self._real = typer.main.get_group(train.make_app())
        return self._real.commands

    @commands.setter
    def commands(self, value: Any) -> None:  # click's __init__ sets an empty dict: the real ones come later
        pass

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.commands  # made before any help is written: a refused model declaration is its only line
        super().format_help(ctx, formatter)


class _RootGroup(GraphrecGroup):
    """The ``graphrec`` group, with ``graphrec train`` added (:class:`_LazyTrainGroup`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_command(_LazyTrainGroup(), "train")


def make_app() -> typer.Typer:
    """The ``graphrec`` application, with one ``graphrec train`` command per model
    registered at the time of the call (:mod:`graphrec.train.registry`)."""
    app = typer.Typer(
        name="graphrec",
        help="Multimodal graph recommenders: prepare data, build item graphs, train, evaluate.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        cls=_RootGroup,
    )
    # (name, module whose docstring is the help, the command); every one a GraphrecCommand
    commands = (
        ("prepare", prepare, prepare.prepare),
        ("info", info, info.info),
        ("features", features, features.features),
        ("build-graph", build_graph, build_graph.build_graph),
        ("inspect", inspect_graph, inspect_graph.inspect_graph),
        ("export-graph", export_graph, export_graph.export_graph),
        ("models", models, models.models),
        ("tune", tune, tune.tune),
        ("plot", plot_runs, plot_runs.plot),
        ("plot-modality-attention", plot, plot.plot_modality_attention),
        ("evaluate", evaluate, evaluate.evaluate),
        ("recommend", recommend, recommend.recommend),
        ("predict", predict, predict.predict),
        ("export-recbole", export_recbole, export_recbole.export_recbole),
        ("export-mmrec", export_mmrec, export_mmrec.export_mmrec),
        ("demo", demo, demo.demo),
    )
    for name, module, command in commands:
        # the list of commands shows the first paragraph, re-flowed (rich keeps its line breaks)
        short = " ".join((module.__doc__ or "").split("\n\n")[0].split())
        app.command(name, help=module.__doc__, short_help=short, cls=GraphrecCommand)(command)
    return app  # `graphrec train` is added by _RootGroup, built when first used


app = make_app()


def main() -> None:
    """Console-script entry point."""
    app()
