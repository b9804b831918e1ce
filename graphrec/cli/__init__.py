"""The ``graphrec`` command line (typer). Commands are thin wrappers over the library."""

from __future__ import annotations

import typer

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
    prepare,
    recommend,
    train,
    train_ctr,
    tune,
)
from graphrec.cli._common import GraphrecCommand, GraphrecGroup



def make_app() -> typer.Typer:
    """The ``graphrec`` application, with one ``graphrec train`` command per model
    registered at the time of the call (:mod:`graphrec.train.registry`)."""
    app = typer.Typer(
        name="graphrec",
        help="Multimodal graph recommenders: prepare data, build item graphs, train, evaluate.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        cls=GraphrecGroup,
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
        ("export-recbole", export_recbole, export_recbole.export_recbole),
        ("export-mmrec", export_mmrec, export_mmrec.export_mmrec),
        ("demo", demo, demo.demo),
    )
    for name, module, command in commands:
        # the list of commands shows the first paragraph, re-flowed (rich keeps its line breaks)
        short = " ".join((module.__doc__ or "").split("\n\n")[0].split())
        app.command(name, help=module.__doc__, short_help=short, cls=GraphrecCommand)(command)
    app.add_typer(train.make_app(), name="train")  # a group: one command per registered model
    return app


app = make_app()


def main() -> None:
    """Console-script entry point."""
    app()
