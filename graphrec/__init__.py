"""graphrec: multimodal graph recommenders with the item-item graph at the centre."""

__version__ = "0.1.0"

__all__ = ["__version__", "recommend"]


def __getattr__(name: str):
    """``graphrec.recommend`` (:func:`graphrec.train.recommend.recommend_run`), imported on
    first use so that ``import graphrec`` stays light."""
    if name == "recommend":
        from graphrec.train.recommend import recommend_run

        return recommend_run
    raise AttributeError(f"module 'graphrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazily imported ``recommend`` too (tab completion, ``dir(graphrec)``)."""
    return sorted(set(globals()) | set(__all__))
