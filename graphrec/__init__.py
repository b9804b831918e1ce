"""graphrec: multimodal graph recommenders with the item-item graph at the centre."""

__version__ = "0.1.0"
