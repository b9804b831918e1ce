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
from graphrec.cli._common import GraphrecGroup



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
    app.command("prepare", help=prepare.__doc__)(prepare.prepare)
    app.command("info", help=info.__doc__)(info.info)
    app.command("features", help=features.__doc__)(features.features)
    app.command("build-graph", help=build_graph.__doc__)(build_graph.build_graph)
    app.command("inspect", help=inspect_graph.__doc__)(inspect_graph.inspect_graph)
    app.command("export-graph", help=export_graph.__doc__)(export_graph.export_graph)
    app.command("models", help=models.__doc__)(models.models)
    app.add_typer(train.make_app(), name="train")
    app.command("tune", help=tune.__doc__)(tune.tune)
    app.command("plot", help=plot_runs.__doc__)(plot_runs.plot)
    app.command("plot-modality-attention", help=plot.__doc__)(plot.plot_modality_attention)
    app.command("evaluate", help=evaluate.__doc__)(evaluate.evaluate)
    app.command("recommend", help=recommend.__doc__)(recommend.recommend)
    app.command("export-recbole", help=export_recbole.__doc__)(export_recbole.export_recbole)
    app.command("export-mmrec", help=export_mmrec.__doc__)(export_mmrec.export_mmrec)
    app.command("demo", help=demo.__doc__)(demo.demo)
    return app


app = make_app()


def main() -> None:
    """Console-script entry point."""
    app()
