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


def _reference_fuse(arrays: list[np.ndarray], chunk: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """fuse_features as first written (np.where masking, fancy-indexed accumulation for
    every chunk): the fast path must give the same bits (stored graphs hash them)."""
    n, dim = arrays[0].shape
    out = np.zeros((n, dim), dtype=np.float32)
    present = [np.zeros(n, dtype=bool) for _ in arrays]
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        acc = np.zeros((e - s, dim), dtype=np.float64)
        count = np.zeros(e - s, dtype=np.int64)
        for p, a in zip(present, arrays):
            blk = np.asarray(a[s:e], dtype=np.float64)
            finite = np.isfinite(blk).all(axis=1)
            blk = np.where(finite[:, None], blk, 0.0)
            norm = np.sqrt(np.einsum("ij,ij->i", blk, blk))
            has = finite & (norm > 0)
            tiny = finite & (norm == 0) & (np.abs(blk).max(axis=1, initial=0.0) > 0)
            if tiny.any():
                scale = np.abs(blk[tiny]).max(axis=1)
                blk[tiny] /= scale[:, None]
                norm[tiny] = np.sqrt(np.einsum("ij,ij->i", blk[tiny], blk[tiny]))
                has |= tiny
            p[s:e] = has
            acc[has] += blk[has] / norm[has, None]
            count += has
        nz = count > 0
        acc[nz] /= count[nz, None]
        out[s:e] = acc
    return out, present


@pytest.mark.parametrize("case", ["plain", "missing", "tiny", "huge", "nan", "float16", "float64", "fortran", "int"])
def test_fast_path_is_bit_identical_to_the_reference(case, monkeypatch):
    import graphrec.graphs.fuse as fuse

    monkeypatch.setattr(fuse, "_CHUNK", 64)  # several chunks, some all-present, some not
    rng = np.random.default_rng(3)
    n, d = 300, 48
    a = rng.standard_normal((n, d)).astype(np.float32)
    b = rng.standard_normal((n, d)).astype(np.float32) * 7
    if case in ("missing", "tiny", "huge", "nan", "float64"):
        a[rng.choice(n, 20, replace=False)] = 0
        b[rng.choice(n, 15, replace=False)] = 0
        b[5] = -a[5] * 7  # cancels
        a[7, : d // 2] = -0.0
    if case == "tiny":
        a[100:104] *= 1e-30
        b[200] = 1e-30
        a[201] = 1e-45
    if case == "huge":
        a[100:104] *= 1e30
        b[200] = 3e38
    if case == "nan":
        a[70, 3] = np.nan
        b[71, 0] = -np.inf
    arrays: list[np.ndarray] = [a, b]
    if case == "float16":
        arrays = [a.astype(np.float16), b.astype(np.float16)]
    if case == "float64":
        a64 = a.astype(np.float64)
        a64[10] = 1e200  # squares overflow float64: the general path
        a64[11] = 1e-300
        arrays = [a64, b.astype(np.float64) * 1e10]
    if case == "fortran":
        arrays = [np.asfortranarray(a), np.hstack([b, b])[:, ::2]]
    if case == "int":
        arrays = [(a * 10).astype(np.int64), (b * 10).astype(np.int32)]
    before = [x.copy() for x in arrays]
    want, want_present = _reference_fuse(arrays, 64)
    f = fuse_features({"a": arrays[0], "b": arrays[1]})
    assert f.x.tobytes() == want.tobytes()
    assert all(np.array_equal(f.present[m], p) for m, p in zip("ab", want_present))
    one = fuse_features({"a": arrays[0], "b": arrays[1]}, ["b"])
    assert one.x.tobytes() == _reference_fuse(arrays[1:], 64)[0].tobytes()
    for x, y in zip(arrays, before):  # inputs untouched (float64 rows are not divided in place)
        assert np.array_equal(x, y, equal_nan=True)
