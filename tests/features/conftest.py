"""Fixtures of the feature-extraction tests: a tiny open_clip config, MovieLens-small."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

#: why a test that needs open_clip skips (it imports torchvision, which has no CPU wheel:
#: the core-only environment of `./dev test` has neither)
NEEDS_CLIP = "needs open_clip_torch + torchvision (the [clip] extra; the development lock has them)"

#: a CLIP small enough for CPU tests: 2 layers of width 32 per tower, 32 x 32 images
TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory) -> Path:
    """Path of the tiny model config; ``ClipEncoder(model=str(path))`` registers it
    with open_clip (model name ``GraphrecTinyCLIP``). Skips without open_clip."""
    pytest.importorskip("open_clip", reason=NEEDS_CLIP)
    path = tmp_path_factory.mktemp("clipcfg") / "GraphrecTinyCLIP.json"
    path.write_text(json.dumps(TINY_CONFIG))
    return path


@pytest.fixture(scope="session")
def tiny_encoder(tiny_config):
    from graphrec.features import ClipEncoder

    return ClipEncoder(str(tiny_config), None, device="cpu", seed=0)


@pytest.fixture(scope="session")
def ml_small(shared_data) -> Path:
    """The real MovieLens latest-small folder (ratings, movies, links, 400 posters)."""
    return shared_data / "movielens-small"


@pytest.fixture(scope="session")
def ml_dataset_dir(ml_small, tmp_path_factory) -> Path:
    """MovieLens-small prepared as `graphrec prepare --format movielens` does (random split)."""
    from graphrec.data import random_split
    from graphrec.data.formats import read_source

    path = tmp_path_factory.mktemp("mlds") / "ml-small"
    random_split(read_source("movielens", ml_small), seed=0).save(path)
    return path


@pytest.fixture(scope="session")
def poster_of(ml_small) -> dict[str, Path]:
    """movieId -> its poster file, computed independently of graphrec from links.csv."""
    import csv

    out = {}
    with open(ml_small / "links.csv", newline="") as f:
        for row in csv.DictReader(f):
            p = ml_small / "posters" / f"{row['tmdbId']}.jpg"
            if row["tmdbId"] and p.is_file():
                out[row["movieId"]] = p
    return out
