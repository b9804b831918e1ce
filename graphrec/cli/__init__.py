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
    app.command("prepare", help=prepare.__doc__, cls=GraphrecCommand)(prepare.prepare)
    app.command("info", help=info.__doc__, cls=GraphrecCommand)(info.info)
    app.command("features", help=features.__doc__, cls=GraphrecCommand)(features.features)
    app.command("build-graph", help=build_graph.__doc__, cls=GraphrecCommand)(build_graph.build_graph)
    app.command("inspect", help=inspect_graph.__doc__, cls=GraphrecCommand)(inspect_graph.inspect_graph)
    app.command("export-graph", help=export_graph.__doc__, cls=GraphrecCommand)(export_graph.export_graph)
    app.command("models", help=models.__doc__, cls=GraphrecCommand)(models.models)
    app.add_typer(train.make_app(), name="train")
    app.command("tune", help=tune.__doc__, cls=GraphrecCommand)(tune.tune)
    app.command("plot", help=plot_runs.__doc__, cls=GraphrecCommand)(plot_runs.plot)
    app.command("plot-modality-attention", help=plot.__doc__, cls=GraphrecCommand)(plot.plot_modality_attention)
    app.command("evaluate", help=evaluate.__doc__, cls=GraphrecCommand)(evaluate.evaluate)
    app.command("recommend", help=recommend.__doc__, cls=GraphrecCommand)(recommend.recommend)
    app.command("export-recbole", help=export_recbole.__doc__, cls=GraphrecCommand)(export_recbole.export_recbole)
    app.command("export-mmrec", help=export_mmrec.__doc__, cls=GraphrecCommand)(export_mmrec.export_mmrec)
    app.command("demo", help=demo.__doc__, cls=GraphrecCommand)(demo.demo)
    return app


app = make_app()


def main() -> None:
    """Console-script entry point."""
    app()
