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
