"""Image decoding overlaps encoding: batch b + 1 is decoded while batch b is encoded."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from graphrec.features import extract_item_features

torch = pytest.importorskip("torch")

#: how long a stand-in encoder waits for the next batch's decoding to start: a bound that
#: keeps a broken overlap from hanging the test, never reached when it works
PATIENCE_S = 30.0


class RecordingEncoder:
    """A stand-in image encoder that records, while it encodes batch b, which items'
    preprocessing (in the decoding threads) has started. Item i's image is a solid colour
    with red = i, so the preprocessing knows which item it handles."""

    dim = 2

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.lock = threading.Lock()
        self.started: set[int] = set()  # items whose preprocessing started
        self.encoded = 0  # batches encoded so far
        self.next_started = threading.Event()  # an item of the batch after the one encoded started
        self.seen: list[tuple[bool, int]] = []  # per batch: next batch under way?, items started beyond it

    def preprocess(self, image):
        item = image.getpixel((0, 0))[0]
        with self.lock:
            self.started.add(item)
            if item // self.batch_size == self.encoded + 1:
                self.next_started.set()
        return torch.tensor([float(item), float(image.getpixel((1, 1))[1])])

    def encode_images(self, pixels):
        b = self.encoded
        last = (b + 1) * self.batch_size >= self.n_items
        patience = PATIENCE_S if all(u for u, _ in self.seen) else 0.0  # waited in vain once: enough
        under_way = last or self.next_started.wait(patience)  # the next batch decodes while this one encodes
        with self.lock:
            beyond = sum(1 for i in self.started if i >= (b + 2) * self.batch_size)
            self.seen.append((under_way, beyond))
            self.encoded += 1
            self.next_started = threading.Event()
            if any(i // self.batch_size == self.encoded + 1 for i in self.started):
                self.next_started.set()
        return pixels.numpy() * 2

    def describe(self):
        return {"backend": "stand-in", "model": "recording", "dim": self.dim}


def test_the_next_batch_is_decoded_while_one_is_encoded_and_no_further(tmp_path):
    n, bs = 50, 8  # 7 batches over 2 chunks of 32 items
    paths = []
    for i in range(n):
        Image.new("RGB", (4, 4), (i, 100 + i, 0)).save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    enc = RecordingEncoder(bs)
    enc.n_items = n
    res = extract_item_features(n, image_paths=paths, image_encoder=enc, batch_size=bs, chunk_size=32, workers=3)
    assert len(enc.seen) == 7
    # every batch but the last: the following batch's decoding had started before it was encoded
    # (across the chunk boundary too), and nothing beyond the following batch had
    assert all(under_way for under_way, _ in enc.seen), enc.seen
    assert all(beyond == 0 for _, beyond in enc.seen), enc.seen
    # in item order, as the plain loop gives
    expected = np.stack([[2.0 * i, 2.0 * (100 + i)] for i in range(n)]).astype(np.float32)
    assert np.array_equal(res["image"].x, expected) and res["image"].present.all()
