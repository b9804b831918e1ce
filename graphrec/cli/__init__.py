"""The ``graphrec`` command line (typer). Commands are thin wrappers over the library."""

from __future__ import annotations

import typer

from graphrec.cli import demo, evaluate, info, prepare, train

app = typer.Typer(
    name="graphrec",
    help="Multimodal graph recommenders: prepare data, build item graphs, train, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("prepare", help=prepare.__doc__)(prepare.prepare)
app.command("info", help=info.__doc__)(info.info)
app.add_typer(train.app, name="train")
app.command("evaluate", help=evaluate.__doc__)(evaluate.evaluate)
app.command("demo", help=demo.__doc__)(demo.demo)


def main() -> None:
    """Console-script entry point."""
    app()
