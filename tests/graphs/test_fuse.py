"""Early fusion (MM-GEF section 3.1): mean of the L2-normalised modality vectors an item has."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.errors import ConfigError, DataError
from graphrec.graphs.fuse import FusedFeatures, fuse_features


def _features() -> dict[str, np.ndarray]:
    image = np.array(
        [
            [3.0, 0.0, 4.0],  # item 0: both
            [0.0, 0.0, 0.0],  # item 1: text only
            [0.0, 0.0, 0.0],  # item 2: nothing
            [np.nan, 1.0, 0.0],  # item 3: image NaN (raw array) -> text only
            [0.0, 2.0, 0.0],  # item 4: image only
        ],
        dtype=np.float32,
    )
    text = np.array(
        [[0.0, 10.0, 0.0], [0.0, 0.0, -2.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]],
        dtype=np.float32,
    )
    return {"image": image, "text": text}


def test_fusion_by_hand():
    f = fuse_features(_features())
    assert isinstance(f, FusedFeatures)
    assert f.x.dtype == np.float32 and f.x.shape == (5, 3)
    assert f.modalities == ("image", "text")
    s = 1 / np.sqrt(2)
    expected = np.array(
        [
            [0.3, 0.5, 0.4],  # mean of (0.6, 0, 0.8) and (0, 1, 0)
            [0.0, 0.0, -1.0],
            [0.0, 0.0, 0.0],
            [s, s, 0.0],
            [0.0, 1.0, 0.0],
        ]
    )
    np.testing.assert_allclose(f.x, expected, atol=1e-7)
    assert f.present["image"].tolist() == [True, False, False, False, True]
    assert f.present["text"].tolist() == [True, True, False, True, False]
    assert f.n_missing_all == 1 and f.missing_all.tolist() == [2]


def test_subset_single_modality_and_order():
    feats = _features()
    f = fuse_features(feats, ["text"])
    assert f.modalities == ("text",)
    np.testing.assert_allclose(np.linalg.norm(f.x[[0, 1, 3]], axis=1), 1.0, rtol=1e-6)
    assert f.n_missing_all == 2 and f.missing_all.tolist() == [2, 4]
    g = fuse_features(feats, ("text", "image"))
    np.testing.assert_allclose(g.x, fuse_features(feats).x, atol=1e-7)  # order-free mean
    assert fuse_features(feats, "image").modalities == ("image",)


def test_describe_names_missing_items():
    f = fuse_features(_features())
    line = f.describe()
    assert "\n" not in line and "1 item has none" in line and "(indices 2)" in line
    named = f.describe(item_ids=np.array(["a", "b", "c", "d", "e"]))
    assert "(ids 'c')" in named
    assert "none of them" not in fuse_features({"t": np.ones((2, 2), np.float32)}).describe()
    many = fuse_features({"t": np.zeros((9, 2), np.float32)})
    assert many.n_missing_all == 9 and "..." in many.describe(max_items=3)


def test_describe_of_one_modality_does_not_say_fused():
    """One modality is not fused: the line named it after 'fused', and a stored early-fused
    modality (graphrec features --fuse) read 'fused fused (dim 2; present: fused 2/3)'."""
    import re

    x = np.array([[1, 0], [0, 1], [0, 0]], np.float32)
    line = fuse_features({"fused": x}).describe()
    assert line.startswith("'fused' features (one modality; dim 2; present: 2/3)"), line
    assert not re.search(r"\b(\w+) \1\b", line), line
    assert "1 item has none (indices 2)" in line
    assert fuse_features({"image": x, "text": x}).describe().startswith("fused image + text (dim 2; present: image 2/3, text 2/3)")


def test_float64_and_scale_invariance():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 4))
    b = rng.standard_normal((20, 4)).astype(np.float32)
    f1 = fuse_features({"a": a, "b": b})
    f2 = fuse_features({"a": a * 1e-30, "b": b * 7})  # per-modality scale does not matter
    assert f1.x.dtype == np.float32
    np.testing.assert_allclose(f1.x, f2.x, atol=1e-6)
    assert f2.n_missing_all == 0


def test_unknown_modality_lists_available():
    with pytest.raises(ConfigError, match="unknown modality 'audio': the features have image, text"):
        fuse_features(_features(), ["audio"])
    with pytest.raises(ConfigError, match="no modality selected"):
        fuse_features(_features(), [])
    with pytest.raises(ConfigError, match="selected twice"):
        fuse_features(_features(), ["text", "text"])


def test_data_errors():
    with pytest.raises(DataError, match=r"different dimensions \(text 384, audio 128\) in one early-fused vector: fuse one \(--modalities text or --modalities audio; in a tune space file, modalities: text\) or project them to one dimension first"):
        fuse_features({"text": np.zeros((3, 384), np.float32), "audio": np.zeros((3, 128), np.float32)})
    with pytest.raises(DataError, match="different numbers of rows"):
        fuse_features({"a": np.zeros((3, 2)), "b": np.zeros((4, 2))})
    with pytest.raises(DataError, match="no item features"):
        fuse_features({})
    with pytest.raises(DataError, match="expected \\(n_items, dim\\)"):
        fuse_features({"a": np.zeros(3)})


def test_real_clip_features(shared_data):
    base = shared_data / "amazon-scientific"
    text = np.fromfile(base / "Scientific.feat1CLS", dtype=np.float32).reshape(-1, 512)
    image = np.fromfile(base / "Scientific.feat3CLS", dtype=np.float32).reshape(-1, 512)
    f = fuse_features({"image": image, "text": text})
    assert f.x.shape == (1585, 512) and f.n_missing_all == 0
    # the fused vector of two unit vectors has norm cos(angle / 2) in (0, 1]
    norms = np.linalg.norm(f.x, axis=1)
    assert (norms > 0.5).all() and (norms <= 1 + 1e-6).all()
    cos_it = np.einsum("ij,ij->i", image, text) / np.linalg.norm(image, axis=1) / np.linalg.norm(text, axis=1)
    np.testing.assert_allclose(norms, np.sqrt((1 + cos_it) / 2), rtol=1e-5)


def test_a_stored_fused_vector_is_not_fused_again_by_default():
    feats = _features()
    with_fused = dict(feats, fused=fuse_features(feats).x)
    f = fuse_features(with_fused)
    assert f.modalities == ("image", "text")  # not image + text + fused
    np.testing.assert_allclose(f.x, fuse_features(feats).x)
    assert fuse_features(with_fused, ["fused"]).modalities == ("fused",)  # when asked for
    only = fuse_features({"fused": with_fused["fused"]})
    assert only.modalities == ("fused",)


def test_the_dimension_error_names_the_option_that_chose_the_modalities():
    feats = {"text": np.zeros((3, 384), np.float32), "audio": np.zeros((3, 128), np.float32)}
    with pytest.raises(DataError, match=r"fuse one \(--cold-modalities text or --cold-modalities audio; in a tune "
                                        r"space file, cold_modalities: text\)"):
        fuse_features(feats, option="--cold-modalities")


def test_modalities_that_cancel_are_named():
    """An item whose unit image and text vectors are opposite fuses to a zero row, which
    gets no kNN neighbours, though it has both modalities: named, not silently lost."""
    from graphrec.graphs.knn import knn_graph

    img = np.float32([[1, 2], [1, 0], [0, 1], [1, 1]])
    txt = np.float32([[-2, -4], [1, 0], [0, 1], [1, 1]])
    fused = fuse_features({"image": img, "text": txt})
    assert fused.cancelled.tolist() == [0] and fused.n_missing_all == 0
    assert not fused.x[0].any() and knn_graph(fused.x, 2)[0].nnz == 0
    assert "1 item has modality vectors that cancel to a zero vector (ids 'a'): no kNN neighbours" in \
        fused.describe(item_ids=np.array(["a", "b", "c", "d"]))
    assert fuse_features({"image": img}).cancelled.size == 0
