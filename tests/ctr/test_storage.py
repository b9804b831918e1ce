"""CTR sample storage: histories trimmed to the longest real history, kept int32 until a
batch is cut, and the same samples, batches, predictions and fingerprint as the previous
layout (every history padded to ``max_history``, whole-split int64 tensors)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from graphrec.data.ctr import (
    CTR_SPLITS,
    CTRData,
    CTRSplit,
    behaviour_properties,
    build_ctr_data,
    sequences_from_dataset,
)
from graphrec.data.dataset import array_bytes
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.models.ctr import MARN, CTRSchema
from graphrec.train.ctr import _batch, predict_ctr, split_tensors

MAX_HISTORY = 40


@pytest.fixture(scope="module")
def data() -> CTRData:
    """Sequences of 5..12 behaviours, so every history is far shorter than MAX_HISTORY;
    timestamps, so the time deltas are stored too."""
    ds = synthetic_catalogue(n_users=60, n_items=50, n_clusters=4, items_per_user=(5, 12), seed=0)
    return build_ctr_data(ds, sequences_from_dataset(ds), max_history=MAX_HISTORY, seed=0)


def _padded(split: CTRSplit, width: int) -> CTRSplit:
    """The previous layout of ``split``: histories padded with -1 (deltas with NaN) to
    ``width`` columns."""
    n, w = split.history.shape
    hist = np.full((n, width), -1, np.int32)
    hist[:, :w] = split.history
    delta = None
    if split.hist_delta is not None:
        delta = np.full((n, width), np.nan, np.float32)
        delta[:, :w] = split.hist_delta
    return CTRSplit(split.users, split.items, split.labels, hist, split.position, delta)


def _old_batches(split: CTRSplit, index_sets) -> list:
    """The batches the previous code cut: whole-split int64 copies, properties of the
    whole split precomputed, each batch trimmed to its longest history."""
    t = {
        "users": torch.from_numpy(split.users.astype(np.int64)),
        "items": torch.from_numpy(split.items.astype(np.int64)),
        "history": torch.from_numpy(split.history.astype(np.int64)),
        "props": torch.from_numpy(behaviour_properties(split)),
        "labels": torch.from_numpy(split.labels.astype(np.float32)),
    }
    out = []
    for idx in index_sets:
        h = t["history"][idx]
        width = max(int((h >= 0).sum(1).max()), 1)
        out.append((t["users"][idx], t["items"][idx], h[:, :width], t["props"][idx][:, :width], t["labels"][idx]))
    return out


def _old_fingerprint(data: CTRData) -> str:
    """The fingerprint as the previous code computed it (every array hashed as stored)."""
    h = hashlib.sha256()
    h.update(data.dataset.fingerprint().encode())
    for s in CTR_SPLITS:
        sp_ = data.samples[s]
        arrays = {"users": sp_.users, "items": sp_.items, "labels": sp_.labels, "history": sp_.history,
                  "position": sp_.position}
        if sp_.hist_delta is not None:
            arrays["hist_delta"] = sp_.hist_delta
        for k, a in arrays.items():
            a = np.ascontiguousarray(a)
            h.update(f"{s}.{k}:{a.dtype.str}:{a.shape}".encode())
            h.update(array_bytes(a))
    for kind, side in (("user", data.user_side), ("item", data.item_side)):
        for k in sorted(side):
            a = np.ascontiguousarray(side[k])
            h.update(f"{kind}.{k}:{a.dtype.str}:{a.shape}".encode())
            h.update(array_bytes(a))
    return h.hexdigest()


def _as_previous_layout(data: CTRData) -> CTRData:
    return CTRData(data.dataset, {s: _padded(data.samples[s], MAX_HISTORY) for s in CTR_SPLITS},
                   data.user_side, data.item_side, data.vocab_sizes, data.meta)


def test_stored_width_is_the_longest_real_history(data):
    for s in CTR_SPLITS:
        sp_ = data.samples[s]
        lengths = (sp_.history >= 0).sum(1)
        assert sp_.history.dtype == np.int32 and sp_.hist_delta.dtype == np.float32
        assert sp_.history.shape[1] == lengths.max() < MAX_HISTORY, s
        assert sp_.hist_delta.shape == sp_.history.shape
        # left-aligned, nothing lost: the positions give the history lengths
        assert np.array_equal(lengths, np.minimum(sp_.position - 1, MAX_HISTORY))
        assert np.array_equal(np.isnan(sp_.hist_delta), sp_.history < 0)


def test_trimmed_samples_equal_the_padded_layout(data):
    """The same samples as the full-width build: what a long max_history stores beyond
    the longest history is padding only, and the fingerprint (of the padded layout)
    is the one the previous code gave."""
    old = _as_previous_layout(data)
    assert data.fingerprint() == old.fingerprint() == _old_fingerprint(old)
    assert data.stats() == old.stats()


def test_batches_and_predictions_equal_the_previous_layout(data):
    split = data.samples["train"]
    old = _padded(split, MAX_HISTORY)
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(split), generator=gen)
    index_sets = [order[s : s + 64] for s in range(0, len(split), 64)] + [slice(0, 100), slice(100, len(split))]
    new_t, old_layout_t = split_tensors(split), split_tensors(old)
    for ref, idx in zip(_old_batches(old, index_sets), index_sets):
        for t in (new_t, old_layout_t):  # trimmed samples, and samples stored before (padded)
            b = _batch(t, idx, torch.device("cpu"))
            got = (b.users, b.items, b.history, b.props, b.labels)
            for r, g in zip(ref, got):
                assert r.dtype == g.dtype and torch.equal(r, g)
    torch.manual_seed(0)
    model = MARN(CTRSchema.from_data(data), dim=8, id_dim=8, side_dim=4, hidden=(16,))  # reads the time buckets
    p_new = predict_ctr(model, new_t, batch_size=64)
    p_old = predict_ctr(model, old_layout_t, batch_size=64)
    assert np.array_equal(p_new, p_old)


def test_split_tensors_share_the_split_memory(data):
    split = data.samples["train"]
    t = split_tensors(split)
    assert t["history"].dtype == torch.int32 and t["hist_delta"].dtype == torch.float32
    for key, arr in (("history", split.history), ("hist_delta", split.hist_delta), ("users", split.users),
                     ("items", split.items), ("labels", split.labels)):
        assert np.shares_memory(t[key].numpy(), arr), key
    b = _batch(t, torch.arange(8), torch.device("cpu"))
    assert b.history.dtype == torch.int64 and b.props.dtype == torch.int64


def test_samples_stored_in_the_previous_layout_still_load(data, tmp_path):
    """A samples folder written before (histories padded to max_history) loads, passes
    its fingerprint check and gives the same batches."""
    old = _as_previous_layout(data)
    old.save(tmp_path / "old")
    back = CTRData.load(tmp_path / "old")
    assert back.samples["train"].history.shape[1] == MAX_HISTORY
    assert back.fingerprint() == data.fingerprint()
    data.save(tmp_path / "new")
    again = CTRData.load(tmp_path / "new")
    assert again.samples["train"].history.shape == data.samples["train"].history.shape
    assert again.fingerprint() == data.fingerprint()
    idx = torch.arange(len(data.samples["valid"]))
    a = _batch(split_tensors(back.samples["valid"]), idx, torch.device("cpu"))
    b = _batch(split_tensors(again.samples["valid"]), idx, torch.device("cpu"))
    assert torch.equal(a.history, b.history) and torch.equal(a.props, b.props)


def test_recency_properties_without_times(data):
    """Without timestamps the property is the recency rank: per batch it equals the
    whole padded split's."""
    split = data.samples["test"]
    no_time = CTRSplit(split.users, split.items, split.labels, split.history, split.position, None)
    old = _padded(no_time, MAX_HISTORY)
    idx = torch.arange(len(split))
    ref = _old_batches(old, [idx])[0]
    b = _batch(split_tensors(no_time), idx, torch.device("cpu"))
    assert torch.equal(b.props, ref[3]) and torch.equal(b.history, ref[2])
