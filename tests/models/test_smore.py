"""SMORE: the model contract; the spectrum fusion by hand and against circular
convolutions written out in the feature domain (the convolution theorem as an independent
check); the modality-aware preference gating on fixed parameters; the per-modality kNN
graphs and their max-pooled fusion against dense formulas on 6 items; the whole forward
pass and the loss against a dense numpy re-computation; the kNN-size rules; a short
real-data run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphrec.data import build_dataset
from graphrec.data.formats import read_mmrec
from graphrec.errors import ConfigError, DataError
from graphrec.models.smore import FUSION, SMORE, info_nce, spectrum_fusion
from graphrec.testing import DEVICE, RecommenderContract
from graphrec.train import TrainConfig, build_model, evaluate_ranking, run_training
from graphrec.train.builders.smore import max_pool_graphs, modality_knn_k
from graphrec.train.evaluate import most_popular_scorer

SMALL = {"embedding_dim": 16, "image_knn_k": 5, "text_knn_k": 4}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestSMOREContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model("smore", dataset, SMALL)


class TestSMOREVariantsContract(RecommenderContract):
    """Gate dropout, fixed features, binary graphs, two item layers, odd d, 4 LightGCN layers."""

    def make_model(self, dataset):
        params = dict(SMALL, embedding_dim=15, dropout=0.1, train_features=False, weighting="binary",
                      item_layers=2, num_layers=4, include_self=False, reg_weight=1e-4)
        return build_model("smore", dataset, params)


class TestSMOREOneModalityContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model("smore", dataset, dict(SMALL, modalities="text", image_knn_k=10, cl_weight=0.1))


# ----------------------------------------------------------- spectrum fusion

def _circular(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a ⊛ b)[n] = sum_k a[k] b[(n - k) mod d], row by row, written out."""
    d = a.shape[-1]
    out = np.zeros(np.broadcast_shapes(a.shape, b.shape))
    for n in range(d):
        for k in range(d):
            out[..., n] += a[..., k] * b[..., (n - k) % d]
    return out


def _dft_half(w: np.ndarray) -> torch.Tensor:
    """W_k = sum_n w[n] exp(-2 pi i k n / d), k = 0..d//2 (unnormalised), written out."""
    d = len(w)
    k = np.arange(d // 2 + 1)[:, None]
    n = np.arange(d)[None, :]
    return torch.tensor((w * np.exp(-2j * np.pi * k * n / d)).sum(1), dtype=torch.complex64)


def test_spectrum_fusion_by_hand():
    """d = 4: a filter whose kernel is a shift by one moves every feature one place; the
    fused spectrum of a = (1, 2, 0, 0) and b = a shift by two, with the identity filter,
    is a shifted by two, scaled by d^-1/2 = 1/2 (the orthonormal transforms)."""
    a = torch.tensor([[1.0, 2.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    shift_one = _dft_half(np.array([0.0, 1.0, 0.0, 0.0]))  # (1, -i, -1)
    identity = _dft_half(np.array([1.0, 0.0, 0.0, 0.0]))  # (1, 1, 1)
    torch.testing.assert_close(shift_one, torch.tensor([1, -1j, -1], dtype=torch.complex64))
    (da, db), fused = spectrum_fusion([a, b], [shift_one, identity], identity)
    torch.testing.assert_close(da, torch.tensor([[0.0, 1.0, 2.0, 0.0]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(db, b, atol=1e-6, rtol=0)
    torch.testing.assert_close(fused, torch.tensor([[0.0, 0.0, 0.5, 1.0]]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("d", [6, 7])
@pytest.mark.parametrize("n_modalities", [1, 2, 3])
def test_spectrum_fusion_is_circular_convolution(d, n_modalities):
    """Convolution theorem: filtering in the frequency domain = circular convolution with
    the filter's kernel; the fused product = d^-(M-1)/2 P_1 ⊛ ... ⊛ P_M ⊛ w_f."""
    rng = np.random.default_rng(d * 10 + n_modalities)
    p = [rng.normal(size=(5, d)) for _ in range(n_modalities)]
    kernels = [rng.normal(size=d) for _ in range(n_modalities + 1)]
    denoised, fused = spectrum_fusion(
        [torch.tensor(x, dtype=torch.float32) for x in p], [_dft_half(w) for w in kernels[:-1]], _dft_half(kernels[-1])
    )
    for x, w, got in zip(p, kernels, denoised):
        np.testing.assert_allclose(got.numpy(), _circular(x, w[None, :]), atol=1e-4)
    want = kernels[-1][None, :]
    for x in p:
        want = _circular(want, x)
    np.testing.assert_allclose(fused.numpy(), want * d ** (-(n_modalities - 1) / 2), atol=1e-4)


def test_model_spectrum_uses_the_projections_and_filters():
    """With identity projections (features of size d), the model's spectrum is the
    circular convolution of the raw features with each filter's kernel."""
    torch.manual_seed(0)
    d = 4
    model = _tiny_model(embedding_dim=d, feature_dims=(d, d))
    rng = np.random.default_rng(5)
    kernels = {v: rng.normal(size=d) for v in model.views}
    with torch.no_grad():
        for m in model.modalities:
            model.projections[m].weight.copy_(torch.eye(d))
            model.projections[m].bias.zero_()
        for v, w in kernels.items():
            model.filters[v].copy_(torch.view_as_real(_dft_half(w)))
    spec = model.spectrum()
    x = {m: model.feature_tables[m].detach().double().numpy() for m in model.modalities}
    for m in model.modalities:
        np.testing.assert_allclose(spec[m].detach().numpy(), _circular(x[m], kernels[m][None]), atol=1e-4)
    want = _circular(_circular(x["image"], x["text"]), kernels[FUSION][None]) / np.sqrt(d)
    np.testing.assert_allclose(spec[FUSION].detach().numpy(), want, atol=1e-4)


# ----------------------------------------------------------- a 6-item example

N_USERS, N_ITEMS = 4, 6
R = np.zeros((N_USERS, N_ITEMS), dtype=np.float32)
R[[0, 0, 0, 1, 1, 2, 2, 2, 3, 3], [0, 1, 2, 1, 3, 2, 4, 5, 0, 5]] = 1


def _features(dims=(3, 4)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {"image": rng.normal(size=(N_ITEMS, dims[0])).astype(np.float32),
            "text": rng.normal(size=(N_ITEMS, dims[1])).astype(np.float32)}


def _dataset(dims=(3, 4)):
    u, i = np.nonzero(R)
    return build_dataset(
        u, i, ["train"] * len(u), user_ids=np.arange(N_USERS), item_ids=np.arange(N_ITEMS),
        item_features=_features(dims), name="six",
    )


def _tiny_model(embedding_dim=4, feature_dims=(3, 4), **params) -> SMORE:
    return build_model("smore", _dataset(feature_dims),
                       dict({"embedding_dim": embedding_dim, "image_knn_k": 2, "text_knn_k": 3}, **params))


def _dense_cosine_knn(x: np.ndarray, k: int, include_self: bool) -> np.ndarray:
    """Top-k cosine graph with the cosines as values, by brute force."""
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = z @ z.T
    out = np.zeros_like(s)
    for i in range(len(x)):
        row = s[i].copy()
        if not include_self:
            row[i] = -np.inf
        top = np.argsort(-row)[:k]
        out[i, top] = s[i, top]
    return out


def _sym(a: np.ndarray) -> np.ndarray:
    """D^-1/2 A D^-1/2 with the row sums D."""
    inv = 1 / np.sqrt(a.sum(1))
    return inv[:, None] * a * inv[None, :]


@pytest.mark.parametrize("include_self", [True, False])
def test_modality_graphs_and_fusion_match_dense_formulas(include_self):
    """Ŝ_m = D^-1/2 topk_cos(X_m) D^-1/2 with k_image = 2, k_text = 3; Ŝ_f = entry-wise max
    over the union of their edges."""
    torch.manual_seed(0)
    model = _tiny_model(include_self=include_self)
    feats = _features()
    want = {
        "image": _sym(_dense_cosine_knn(feats["image"].astype(np.float64), 2, include_self)),
        "text": _sym(_dense_cosine_knn(feats["text"].astype(np.float64), 3, include_self)),
    }
    assert list(model.item_graphs()) == ["image", "text", FUSION]  # what export-graph --view offers
    for m in ("image", "text"):
        got = model.item_graphs()[m]
        assert got.layout == torch.sparse_csr
        np.testing.assert_allclose(got.to_dense().double().numpy(), want[m], atol=1e-6)
        assert got.values().numel() == N_ITEMS * (2 if m == "image" else 3)  # k per row, nothing dense
    pattern = (want["image"] != 0) | (want["text"] != 0)
    fused = np.where(pattern, np.maximum(np.where(want["image"] != 0, want["image"], -np.inf),
                                         np.where(want["text"] != 0, want["text"], -np.inf)), 0)
    np.testing.assert_allclose(model.item_graph(FUSION).to_dense().double().numpy(), fused, atol=1e-6)
    assert model.item_graph(FUSION).values().numel() == pattern.sum()


def test_max_pool_keeps_an_entry_of_one_graph_even_when_negative():
    import scipy.sparse as sp

    a = sp.csr_matrix(np.array([[0.5, -0.2], [0.0, 0.1]]))
    b = sp.csr_matrix(np.array([[0.7, 0.0], [-0.3, 0.05]]))
    got = max_pool_graphs([a, b])
    np.testing.assert_allclose(got.toarray(), [[0.7, -0.2], [-0.3, 0.1]], atol=1e-7)
    assert got.nnz == 4


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _lin(layer, x):
    w = layer.weight.detach().double().numpy()
    out = x @ w.T
    return out + layer.bias.detach().double().numpy() if layer.bias is not None else out


def _dense_preference(model, beh, views):
    """side = mean over views of σ(Ē U_v + u_v) ⊙ [softmax_d(tanh(H_f Q + q) Q') ⊙ H_m | H_f]."""
    fused = views[FUSION]
    parts = []
    for v in model.views:
        gate = _sigmoid(_lin(model.preference_gates[v], beh))
        if v == FUSION:
            parts.append(gate * fused)
        else:
            q = model.queries[v]
            att = _softmax(_lin(q[2], np.tanh(_lin(q[0], fused))))
            parts.append(gate * att * views[v])
    side = np.mean(parts, axis=0)
    return beh + side, side


def test_preference_gating_by_hand():
    """All preference and query weights zero: every gate is σ(0) = 1/2 and every attention
    1/d, so side = (H_image / (2d) + H_text / (2d) + H_f / 2) / 3."""
    torch.manual_seed(0)
    model = _tiny_model(embedding_dim=4)
    with torch.no_grad():
        for module in (*model.preference_gates.values(), *model.queries.values()):
            for p in module.parameters():
                p.zero_()
    beh = torch.tensor([[1.0, -1.0, 0.5, 2.0]])
    views = {"image": torch.tensor([[4.0, 0.0, 8.0, -4.0]]), "text": torch.tensor([[0.0, 8.0, 0.0, 4.0]]),
             FUSION: torch.tensor([[2.0, 2.0, -2.0, 6.0]])}
    final, side = model.preference(beh, views)
    want_side = (views["image"] / 8 + views["text"] / 8 + views[FUSION] / 2) / 3
    torch.testing.assert_close(side, want_side)
    torch.testing.assert_close(final, beh + want_side)


def test_preference_gating_on_fixed_parameters():
    """Random fixed parameters: the module equals its dense formula; each row (user) gets
    its own gates from its own behavioural representation."""
    torch.manual_seed(3)
    model = _tiny_model(embedding_dim=5)
    rng = np.random.default_rng(2)
    beh = rng.normal(size=(7, 5))
    views = {v: rng.normal(size=(7, 5)) for v in model.views}
    final, side = model.preference(torch.tensor(beh, dtype=torch.float32),
                                   {v: torch.tensor(h, dtype=torch.float32) for v, h in views.items()})
    want_final, want_side = _dense_preference(model, beh, views)
    np.testing.assert_allclose(side.detach().numpy(), want_side, atol=1e-5)
    np.testing.assert_allclose(final.detach().numpy(), want_final, atol=1e-5)
    # changing one row's behavioural representation changes that row's gates only
    beh2 = beh.copy()
    beh2[3] += 1.0
    _, side2 = model.preference(torch.tensor(beh2, dtype=torch.float32),
                                {v: torch.tensor(h, dtype=torch.float32) for v, h in views.items()})
    changed = (side2 - side).abs().sum(1).detach().numpy() > 1e-6
    assert changed.tolist() == [False, False, False, True, False, False, False]


def test_preference_dropout_zeroes_and_rescales_gates():
    torch.manual_seed(0)
    model = _tiny_model(embedding_dim=4, dropout=0.5)
    with torch.no_grad():
        for v in model.views:  # a gate of exactly σ(0) = 1/2 everywhere
            model.preference_gates[v].weight.zero_()
            model.preference_gates[v].bias.zero_()
    beh = torch.zeros(50, 4)
    ones = {v: torch.ones(50, 4) for v in model.views}
    model.queries["image"][2].weight.data.zero_()  # attention 1/d = 1/4
    model.queries["text"][2].weight.data.zero_()
    torch.manual_seed(1)
    with torch.no_grad():
        _, side = model.preference(beh, {FUSION: ones[FUSION], "image": ones["image"] * 4, "text": ones["text"] * 4},
                                   dropout=True)
    # each view contributes (kept: 1/2 * 2 = 1, dropped: 0) / 3
    values = set(np.round(side.numpy().ravel() * 3).astype(int).tolist())
    assert values <= {0, 1, 2, 3} and len(values) > 2
    assert abs(float(side.mean()) - 0.5) < 0.1  # E = 3 views x 1/2 kept x 1 / 3
    with torch.no_grad():
        _, no_drop = model.preference(beh, {FUSION: ones[FUSION], "image": ones["image"] * 4, "text": ones["text"] * 4})
    torch.testing.assert_close(no_drop, torch.full((50, 4), 0.5))
    # the masks come from the model's generator, seeded by reset_parameters: a copy built
    # from the same seed draws the same masks whatever the global RNG does meanwhile
    torch.manual_seed(7)
    one = _tiny_model(embedding_dim=4, dropout=0.5)
    torch.manual_seed(7)
    two = _tiny_model(embedding_dim=4, dropout=0.5)
    torch.rand(100)
    rows = torch.randn(9, 4)
    views = {v: torch.randn(9, 4) for v in one.views}
    with torch.no_grad():
        torch.testing.assert_close(one.preference(rows, views, dropout=True), two.preference(rows, views, dropout=True))


# ----------------------------------------------------------- the whole model, densely

def _dense_forward(model: SMORE):
    """Every representation of the module doc, in numpy float64 from the parameters."""
    d = model.embedding_dim
    n_users = model.n_users
    eu = model.lightgcn.user_embedding.weight.detach().double().numpy()
    ei = model.lightgcn.item_embedding.weight.detach().double().numpy()
    a = np.zeros((N_USERS + N_ITEMS,) * 2)
    a[:N_USERS, N_USERS:] = R
    a[N_USERS:, :N_USERS] = R.T
    a_hat = _sym(a)
    x = np.concatenate([eu, ei])
    layers = [x]
    for _ in range(model.num_layers):
        layers.append(a_hat @ layers[-1])
    beh = np.mean(layers, axis=0)
    spectra = {}
    for m in model.modalities:
        p = _lin(model.projections[m], model.feature_tables[m].detach().double().numpy())
        spectra[m] = np.fft.rfft(p, axis=1, norm="ortho")
    filt = {v: torch.view_as_complex(model.filters[v].detach()).numpy().astype(np.complex128) for v in model.views}
    hdot = {m: np.fft.irfft(spectra[m] * filt[m], n=d, axis=1, norm="ortho") for m in model.modalities}
    hdot[FUSION] = np.fft.irfft(np.prod([spectra[m] for m in model.modalities], axis=0) * filt[FUSION],
                                n=d, axis=1, norm="ortho")
    views = {}
    for v in model.views:
        h = ei * _sigmoid(_lin(model.item_gates[v], hdot[v]))
        s = model.item_graph(v).to_dense().double().numpy()
        for _ in range(model.item_layers):
            h = s @ h
        views[v] = np.concatenate([a_hat[:n_users, n_users:] @ h, h])
    final, side = _dense_preference(model, beh, views)
    return beh, side, final


@pytest.mark.parametrize("params", [{}, {"item_layers": 2, "num_layers": 2, "embedding_dim": 5}])
def test_embeddings_match_the_dense_formula(params):
    torch.manual_seed(4)
    model = _tiny_model(**params)
    _, _, final = _dense_forward(model)
    users, items = model.embeddings()
    np.testing.assert_allclose(users.detach().numpy(), final[:N_USERS], atol=1e-5)
    np.testing.assert_allclose(items.detach().numpy(), final[N_USERS:], atol=1e-5)
    scores = model.scorer()(torch.arange(N_USERS))
    np.testing.assert_allclose(scores.numpy(), final[:N_USERS] @ final[N_USERS:].T, atol=1e-5)


def test_loss_by_hand():
    """BPR + λ/(2B) Σ||e||² + λ_cl (NCE over the batch's positive items + NCE over its
    users), with duplicate rows in the batch counted as the reference counts them."""
    torch.manual_seed(6)
    model = _tiny_model(reg_weight=0.1, cl_weight=0.5, temperature=0.3)
    beh, side, final = _dense_forward(model)
    users = np.array([0, 0, 2, 3, 1, 2])
    pos = np.array([1, 2, 4, 5, 3, 4])
    neg = np.array([3, 5, 0, 2, 0, 1])
    eu, ep, en = final[users], final[N_USERS + pos], final[N_USERS + neg]
    bpr = np.mean(np.log1p(np.exp(-((eu * ep).sum(1) - (eu * en).sum(1)))))
    reg = ((eu ** 2).sum() + (ep ** 2).sum() + (en ** 2).sum()) / (2 * len(users))

    def nce(a, b, tau):
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        s = np.exp(a @ b.T / tau)
        return np.mean(-np.log(np.diag(s) / s.sum(1)))

    cl = nce(side[N_USERS + pos], beh[N_USERS + pos], 0.3) + nce(side[users], beh[users], 0.3)
    want = bpr + 0.1 * reg + 0.5 * cl
    model.train()
    got = model.loss(torch.as_tensor(users), torch.as_tensor(pos), torch.as_tensor(neg))
    np.testing.assert_allclose(float(got.detach()), want, rtol=1e-5)


def test_info_nce_with_counts_equals_the_repeated_batch():
    rng = np.random.default_rng(0)
    a, b = torch.tensor(rng.normal(size=(4, 3))), torch.tensor(rng.normal(size=(4, 3)))
    counts = torch.tensor([1, 3, 2, 1])
    rep = torch.repeat_interleave(torch.arange(4), counts)
    torch.testing.assert_close(info_nce(a, b, 0.2, counts), info_nce(a[rep], b[rep], 0.2))


# ----------------------------------------------------------- options

def test_knn_k_rules():
    assert modality_knn_k(("image", "text")) == {"image": 10, "text": 10}
    assert modality_knn_k(("image", "text"), None, 15, 40) == {"image": 15, "text": 40}
    assert modality_knn_k(("image", "text", "audio"), "audio=20,text=5", 15) == {"image": 15, "text": 5, "audio": 20}
    assert modality_knn_k(("audio", "text"), None, 10, 40) == {"audio": 10, "text": 40}
    with pytest.raises(ConfigError, match=r"image_knn_k 15 has no effect: the modalities used are audio, text, "
                                          r"without image; give their k with knn_k \(--knn-k audio=15\)"):
        modality_knn_k(("audio", "text"), None, 15, 40)  # would change nothing
    with pytest.raises(ConfigError, match="text_knn_k 20 has no effect"):
        modality_knn_k(("image",), None, 10, 20)
    assert modality_knn_k(("audio", "text"), "7") == {"audio": 7, "text": 7}
    assert modality_knn_k(("audio", "text"), {"audio": 3}) == {"audio": 3, "text": 10}
    with pytest.raises(ConfigError, match="not among the modalities"):
        modality_knn_k(("image", "text"), "audio=3")
    with pytest.raises(ConfigError, match="whole number"):
        modality_knn_k(("image", "text"), "image=2.5")
    with pytest.raises(ConfigError, match="neither a number nor"):
        modality_knn_k(("image", "text"), "image:3")


def test_a_grid_over_a_knn_size_with_no_effect_fails_before_any_training(tmp_path):
    """MMRec's grid names image_knn_k and text_knn_k; on data whose modalities are audio and
    text, image_knn_k changes nothing and every point would train four times: `graphrec
    tune --space mmrec --grid` stops with one line naming the point and the fix, before
    any study or trial exists (the registry's ``check`` hook, run on every grid point)."""
    from graphrec.data.synthetic import synthetic_catalogue
    from graphrec.train.tune import tune

    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=0)
    feats = dict(ds.item_features)
    audio = ds.replace(item_features={"audio": feats["image"], "text": feats["text"]}).save(tmp_path / "audio")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    with pytest.raises(ConfigError, match=r"^--grid point num_layers=3, image_knn_k=15, .*: image_knn_k 15 has no "
                                          r"effect: the modalities used are audio, text, without image"):
        tune(audio, "smore", None, storage, out=tmp_path / "out", space="mmrec", grid=True,
             config=TrainConfig(epochs=1), plots=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "study.db").exists()
    # the same grid with the modalities named as MMRec names them passes the check
    from graphrec.train.registry import get_model
    from graphrec.train.space import grid_values, search_space
    from graphrec.train.tune import _check_grid

    searched = search_space("smore", "mmrec")
    _check_grid(get_model("smore"), searched, grid_values(searched), ds)


def test_knn_k_reaches_the_graphs():
    torch.manual_seed(0)
    model = _tiny_model(knn_k="image=4")
    assert model.item_graph("image").values().numel() == 4 * N_ITEMS
    assert model.item_graph("text").values().numel() == 3 * N_ITEMS  # text_knn_k


def test_missing_modality_is_a_clear_error():
    with pytest.raises(DataError, match="no audio features"):
        build_model("smore", _dataset(), {"modalities": "audio"})


# ----------------------------------------------------------- stored graphs (--graph)

def _store(ds, folder, modality, **spec) -> str:
    """Build a one-modality kNN graph of ``ds`` as ``graphrec build-graph`` does and store it."""
    from graphrec.testing import store_built_graph

    return store_built_graph(ds, folder, **{**dict(kind="knn", k=2 if modality == "image" else 3,
                                                   modalities=(modality,), weighting="cosine", include_self=True),
                                            **spec})


def _same_graphs(a: dict, b: dict) -> bool:
    from graphrec.testing import same_sparse_tensors

    return same_sparse_tensors(a, b)


@pytest.mark.parametrize("normalization", ["none", "sym"])
@pytest.mark.parametrize("weighting", ["cosine", "binary"])
@pytest.mark.parametrize("include_self", [True, False])
def test_stored_graphs_give_the_graphs_the_builder_builds(normalization, weighting, include_self, tmp_path):
    """Each modality's graph with its own k (image 2, text 3), and the fusion view pooled
    from them, equal the built ones bit for bit."""
    ds = _dataset()
    params = {"embedding_dim": 4, "image_knn_k": 2, "text_knn_k": 3, "weighting": weighting,
              "include_self": include_self}
    built = build_model("smore", ds, params).item_graphs()
    assert list(built) == ["image", "text", FUSION]
    spec = dict(normalization=normalization, weighting=weighting, include_self=include_self)
    text = _store(ds, tmp_path / "text", "text", **spec)
    image = _store(ds, tmp_path / "image", "image", **spec)
    for graphs in ([text], [image], [text, image]):  # one modality stored (the other built), or both
        got = build_model("smore", ds, dict(params, graphs=graphs)).item_graphs()
        assert _same_graphs(got, built)


def test_stored_graphs_are_checked(tmp_path):
    ds = _dataset()
    params = {"embedding_dim": 4, "image_knn_k": 2, "text_knn_k": 3}
    cases = [
        (dict(weighting="binary"), "binary weights; smore's modality graphs are cosine: rebuild it with --weighting "
                                   "cosine, or train with --weighting binary"),
        (dict(symmetric=True), "symmetrised"),
        (dict(k=2), r"k=2 but smore uses k=3 for 'text'"),
        (dict(include_self=False), "include_self"),
        (dict(normalization="row"), "'row' normalisation"),
        (dict(kind="cooccur", modalities=None), "one-modality kNN"),
    ]
    for i, (spec, words) in enumerate(cases):
        path = _store(ds, tmp_path / f"g{i}", "text", **spec)
        with pytest.raises(DataError, match=words) as err:
            build_model("smore", ds, dict(params, graphs=[path]))
        assert path in str(err.value) and "\n" not in str(err.value)
    text = _store(ds, tmp_path / "text", "text")
    with pytest.raises(DataError, match="two stored graphs"):
        build_model("smore", ds, dict(params, graphs=[text, text]))
    with pytest.raises(DataError, match="not among --modalities image"):
        build_model("smore", ds, {"embedding_dim": 4, "image_knn_k": 2, "modalities": "image", "graphs": [text]})
    with pytest.raises(DataError, match="k=3 but smore uses k=4 for 'text': rebuild it with --k 4, or train with "
                                        "--knn-k text=3"):
        build_model("smore", ds, dict(params, knn_k="text=4", graphs=[text]))
    assert build_model("smore", ds, dict(params, knn_k=3, graphs=[text])) is not None  # text's k is still 3


# ----------------------------------------------------------- real data

def test_smore_beats_most_popular_on_lastfm(shared_data):
    ds = read_mmrec(shared_data / "lfm2k", features={"text": "all-MiniLM-L6-v2.npy", "image": "vggish.npy"})
    # lr 1e-2: past the first epochs, where the InfoNCE term dominates and validation
    # recall dips below its epoch-1 value (docs/models/smore.md), within 4 epochs
    config = TrainConfig(epochs=4, lr=1e-2, batch_size=2048, ks=(20,), progress=False, seed=0)
    record, _ = run_training(ds, "smore", {"embedding_dim": 32}, config, device=DEVICE)
    pop = evaluate_ranking(most_popular_scorer(ds), ds, "test", ks=(20,))
    ours = record["test"]["all"]
    assert ours["users"] == pop["users"]
    assert ours["recall@20"] > 1.5 * pop["recall@20"], (ours["recall@20"], pop["recall@20"])
    assert ours["ndcg@20"] > 1.5 * pop["ndcg@20"], (ours["ndcg@20"], pop["ndcg@20"])
