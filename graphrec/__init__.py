"""graphrec: multimodal graph recommenders with the item-item graph at the centre."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``graphrec.recommend`` (:func:`graphrec.train.recommend.recommend_run`), imported on
    first use so that ``import graphrec`` stays light."""
    if name == "recommend":
        from graphrec.train.recommend import recommend_run

        return recommend_run
    raise AttributeError(f"module 'graphrec' has no attribute {name!r}")
