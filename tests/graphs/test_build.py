"""graphrec.graphs.build: the options of one graph (GraphSpec) and their parsing."""

from __future__ import annotations

import pytest

from graphrec.errors import ConfigError
from graphrec.graphs.build import GraphSpec, parse_modalities


def test_a_graph_spec_checks_its_types_and_backend():
    for kw, message in (({"k": "10"}, "k must be an integer >= 1, got '10'"), ({"k": 2.5}, "k must be an integer"),
                        ({"k": True}, "k must be an integer"), ({"backend": "nope"}, "backend 'nope' is not a kNN search backend"),
                        ({"cooccur_top_k": -1}, "cooccur_top_k must be an integer >= 1"),
                        ({"cooccur_min_count": 0}, "cooccur_min_count must be an integer >= 1")):
        with pytest.raises(ConfigError, match=message):
            GraphSpec(kind="knn", **kw)
    assert GraphSpec(kind="knn", k=5, cooccur_top_k=3).k == 5


def test_modality_lists_refuse_empty_and_repeated_names():
    assert parse_modalities(None) is None
    assert parse_modalities("image, text") == ("image", "text")
    assert parse_modalities(["text"]) == ("text",)
    for value, message in (("", "has an empty modality name"), ("text,", "has an empty modality name"),
                           (",", "has an empty modality name"), ([], "has an empty modality name"),
                           ("text,text", "lists 'text' twice"), (["a", "b", "a"], "lists 'a' twice")):
        with pytest.raises(ConfigError, match=message):
            parse_modalities(value)


@pytest.mark.parametrize("include_self, others", [(False, 9), (True, 10)])
def test_a_k_above_the_candidates_is_noted_and_keeps_every_candidate(include_self, others):
    """--k 500 over 90 items built the complete graph silently (its record saying k 500)."""
    import warnings

    from graphrec.data.synthetic import synthetic_catalogue
    from graphrec.errors import GraphrecNote
    from graphrec.graphs.build import build_item_graph

    ds = synthetic_catalogue(n_users=20, n_items=10, n_clusters=2, seed=0)
    with pytest.warns(GraphrecNote, match=f"k {others + 1} is more than the {others} items each item can take"):
        built = build_item_graph(ds, GraphSpec(kind="knn", k=others + 1, include_self=include_self, weighting="binary"))
    assert built.graph.nnz == 10 * others and built.record.k == others + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphrecNote)
        assert build_item_graph(ds, GraphSpec(kind="knn", k=others, include_self=include_self,
                                              weighting="binary")).graph.nnz == 10 * others


def test_modalities_of_two_models_are_not_fused_into_one_graph(tmp_path):
    """Early fusion averages unit vectors: features of two encoders live in two spaces
    even at one dimension. A dataset whose meta["features"] records name two models is
    refused by the kNN build (Python and build-graph, before any work), by a model that
    fuses its modalities (MM-GEF) and by the cold-item path; one model, or features with
    no record (prepared from .npy files), fuse as before."""
    import numpy as np
    from typer.testing import CliRunner

    from graphrec.cli import app
    from graphrec.data.synthetic import synthetic_catalogue
    from graphrec.errors import DataError
    from graphrec.graphs.build import build_item_graph
    from graphrec.train import build_model
    from graphrec.train.builders._cold import cold_path_features

    ds = synthetic_catalogue(n_users=20, n_items=10, n_clusters=2, seed=0)
    same = {"image": {"backend": "open_clip", "model": "ViT-B-32", "pretrained": "openai"},
            "text": {"backend": "open_clip", "model": "ViT-B-32", "pretrained": "openai"}}
    other = dict(same, text={"backend": "open_clip", "model": "ViT-B-16", "pretrained": "openai"})
    spec = GraphSpec(kind="knn", k=3)
    plain = build_item_graph(ds, spec).graph
    ok = build_item_graph(ds.replace(meta=dict(ds.meta, features=same)), spec).graph
    assert (ok != plain).nnz == 0
    mixed = ds.replace(meta=dict(ds.meta, features=other))
    message = (r"cannot fuse image features of open_clip ViT-B-32, pretrained openai with text features of "
               r"open_clip ViT-B-16, pretrained openai: vectors of different models live in different spaces")
    with pytest.raises(DataError, match=message):
        build_item_graph(mixed, spec)
    assert build_item_graph(mixed, GraphSpec(kind="knn", k=3, modalities=("text",))).graph.nnz > 0  # one modality
    with pytest.raises(DataError, match=message):
        build_model("mmgef", mixed, {})
    with pytest.raises(DataError, match=message):
        cold_path_features(mixed)
    np.testing.assert_array_equal(cold_path_features(ds), cold_path_features(ds.replace(meta=dict(ds.meta, features=same))))
    mixed.save(tmp_path / "mixed")
    res = CliRunner().invoke(app, ["build-graph", "--data", str(tmp_path / "mixed"), "--kind", "knn", "--k", "3",
                                   "--out", str(tmp_path / "g")])
    assert res.exit_code == 1 and "cannot fuse image features of open_clip ViT-B-32" in res.output
    assert not (tmp_path / "g").exists()
