"""GMMF and MARN: contract (every ablation), eq. 10 pooling, the GAN schedule of
Algorithm 1, gradient reversal and the lambda schedule."""

from __future__ import annotations

import math

import pytest
import torch

from graphrec.errors import ConfigError
from graphrec.models.ctr import GMMF, MARN
from graphrec.models.ctr.gmmf import min_pooling
from graphrec.models.ctr.marn import lambda_schedule
from graphrec.nn import grad_reverse
from graphrec.models.ctr.testing import CTRModelContract, contract_ctr_data
from graphrec.train.ctr import CTRConfig, build_ctr_model, fit_ctr, run_ctr

SMALL_GMMF = dict(id_dim=8, side_dim=4, user_dim=8, ae_hidden=16, gan_hidden=8, hidden=(16,))
SMALL_MARN = dict(dim=8, id_dim=8, side_dim=4, user_dim=8, hidden=(16,))


class TestGMMF(CTRModelContract):
    def make_model(self, schema, item_graphs=None):
        return GMMF(schema, item_graphs=item_graphs, **SMALL_GMMF)


class TestGMMFBase(CTRModelContract):
    """Table 3 (a): concatenation of ID embedding and original features."""

    def make_model(self, schema, item_graphs=None):
        return GMMF(schema, use_autoencoder=False, use_cgan=False, use_min=False, item_graphs=item_graphs, **SMALL_GMMF)


class TestGMMFNoAE(CTRModelContract):
    """Table 3 (g): CGAN + auto-difference + MIN on the original features."""

    def make_model(self, schema, item_graphs=None):
        return GMMF(schema, use_autoencoder=False, item_graphs=item_graphs, **SMALL_GMMF)


class TestMARN(CTRModelContract):
    def make_model(self, schema, item_graphs=None):
        return MARN(schema, item_graphs=item_graphs, **SMALL_MARN)


class TestMARNBaseIDs(CTRModelContract):
    """BaseModel+IDs: ID modality, plain GRU, no fusion, no adversary."""

    def make_model(self, schema, item_graphs=None):
        return MARN(schema, modalities=["id"], fusion="concat", adversarial="none", sequence="gru",
                    item_graphs=item_graphs, **SMALL_MARN)


class TestMARNAdv(CTRModelContract):
    """BaseModel+MAF+ADV: the original one-to-one adversarial transfer."""

    def make_model(self, schema, item_graphs=None):
        return MARN(schema, adversarial="adv", sequence="gru", item_graphs=item_graphs, **SMALL_MARN)


def test_min_pooling_by_hand():
    cand = torch.tensor([[1.0, 0.0]])
    hist = torch.tensor([[[2.0, 0.0], [-1.0, 5.0], [1.0, 1.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, True, False]])
    pooled, w = min_pooling(cand, hist, mask)
    # scores 2, -1, 1 (padding ignored), D = 2 -> ReLU(1, -0.5, 0.5)
    assert w.tolist() == [[1.0, 0.0, 0.5, 0.0]]
    assert pooled.tolist() == [[2.5, 0.5]]
    # a vanishing normaliser is floored at 0.1 * sum |s|: weights stay bounded
    hist2 = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]])
    _, w2 = min_pooling(cand, hist2, torch.tensor([[True, True]]))
    assert torch.isfinite(w2).all() and w2.max() <= 1 / 0.1 + 1e-4


def _snapshots(model):
    """Record generator/discriminator/backbone weights at the end of every epoch (the fit
    loop calls log_values once per epoch, before it may restore the best state)."""
    snaps = []
    real = model.log_values

    def log_values():
        snaps.append((
            [p.detach().clone() for p in model.generators.parameters()],
            [p.detach().clone() for p in model.discriminators.parameters()],
            model.head[0].weight.detach().clone(),
        ))
        return real()

    model.log_values = log_values
    return snaps


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_gan_schedule_no_update_before_k():
    data = contract_ctr_data()
    for k in (2, 1):
        torch.manual_seed(0)
        model = build_ctr_model("gmmf", data, SMALL_GMMF)
        g0 = [p.detach().clone() for p in model.generators.parameters()]
        d0 = [p.detach().clone() for p in model.discriminators.parameters()]
        b0 = model.head[0].weight.detach().clone()
        snaps = _snapshots(model)
        cfg = CTRConfig(epochs=2, batch_size=64, lr=1e-2, gan_lr=1e-3, gan_start_epoch=k, patience=5, progress=False)
        res = fit_ctr(model, data, cfg)
        for epoch, (g, d, head) in enumerate(snaps, start=1):
            assert not torch.equal(head, b0)  # the backbone trains from epoch 1
            # generator and discriminator move only in epochs > K
            assert _same(g, g0) == (epoch <= k) and _same(d, d0) == (epoch <= k), (k, epoch)
        gan_d = [r["gan_d_loss"] for r in res.history]
        assert gan_d[:k] == [None] * k and all(x > 0 for x in gan_d[k:])
        assert all(r["gan_g_loss"] > 0 for r in res.history[k:])
        assert all(r["recon"] > 0 for r in res.history)


def test_gan_steps_move_only_their_parameters():
    data = contract_ctr_data()
    torch.manual_seed(0)
    model = build_ctr_model("gmmf", data, SMALL_GMMF)
    from graphrec.models.ctr.base import CTRBatch

    batch = CTRBatch.from_split(data.samples["train"], slice(0, 32))
    model.discriminator_loss(batch).backward()
    g_params, d_params = model.gan_parameters()
    gan = {id(p) for p in g_params + d_params}
    assert all(p.grad is not None for p in d_params)
    assert all(p.grad is None for p in g_params)
    assert all(p.grad is None for p in model.parameters() if id(p) not in gan)
    model.zero_grad(set_to_none=True)
    model.generator_loss(batch).backward()
    assert all(p.grad is not None for p in g_params)
    assert all(p.grad is None for p in model.parameters() if id(p) not in gan)
    # the backbone loss does not reach the generator (Algorithm 1)
    model.zero_grad(set_to_none=True)
    model.loss(batch).backward()
    assert all(p.grad is None for p in g_params + d_params)


def test_gan_losses_are_eq16_and_eq17_over_the_batch_candidates():
    """Eq. 17 (D: real (E, H_m) -> 1, generated (E, G_m(E)) -> 0) and eq. 16 (G: generated
    pairs -> 1), summed over modalities, over the batch's distinct candidates."""
    import torch.nn.functional as F

    from graphrec.models.ctr.base import CTRBatch

    data = contract_ctr_data()
    torch.manual_seed(0)
    model = build_ctr_model("gmmf", data, SMALL_GMMF)
    batch = CTRBatch.from_split(data.samples["train"], slice(0, 32))
    items = torch.unique(batch.items)
    with torch.no_grad():
        e = model.ids.table()[items]
        if model.item_side.table() is not None:
            e = torch.cat([e, model.item_side.table()[items]], -1)
        want_d = want_g = torch.zeros(())
        for m in model.modalities:
            h = model.encoders[m](getattr(model, f"feat_{m}")[items])
            d, g = model.discriminators[m], model.generators[m]
            real = d(torch.cat([e, h], -1)).squeeze(-1)
            fake = d(torch.cat([e, g(e)], -1)).squeeze(-1)
            want_d = want_d + F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            want_d = want_d + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
            want_g = want_g + F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    assert len(model.modalities) == 2 and len(items) < len(batch)
    torch.testing.assert_close(model.discriminator_loss(batch).detach(), want_d)
    torch.testing.assert_close(model.generator_loss(batch).detach(), want_g)
    condition = model.gan_condition(batch)  # what the fit loop computes once for both steps
    torch.testing.assert_close(model.discriminator_loss(batch, condition).detach(), want_d)
    torch.testing.assert_close(model.generator_loss(batch, condition).detach(), want_g)


def test_fit_propagates_the_item_graph_twice_per_gan_batch():
    """With an item graph E is a propagation over all items: the D and G steps share one
    (no gradient), the backbone step needs its own (with gradient); not three."""
    from graphrec.models.ctr.testing import contract_graphs

    data = contract_ctr_data()
    torch.manual_seed(0)
    model = build_ctr_model("gmmf", data, SMALL_GMMF, item_graphs=contract_graphs(data.dataset.n_items))
    calls = []
    forward = model.ids.propagation.forward

    def counted(*args, **kwargs):
        calls.append(torch.is_grad_enabled())
        return forward(*args, **kwargs)

    model.ids.propagation.forward = counted
    cfg = CTRConfig(epochs=1, batch_size=64, gan_start_epoch=0, patience=5, progress=False)
    n_batches = -(-len(data.samples["train"].users) // 64)
    fit_ctr(model, data, cfg)
    training = calls[: 2 * n_batches]  # then validation and test, without gradient
    assert training == [False, True] * n_batches


def test_gmmf_reconstruction_is_eq14_over_the_batch_items():
    """Eq. 14 reuses the forward pass's H_m: it must equal the loss computed from scratch
    over the batch's distinct candidates and real behaviours (padding is not an item)."""
    import torch.nn.functional as F
    from graphrec.models.ctr.base import CTRBatch

    data = contract_ctr_data()
    torch.manual_seed(0)
    model = build_ctr_model("gmmf", data, dict(SMALL_GMMF, recon_weight=0.5))
    batch = CTRBatch.from_split(data.samples["train"], slice(0, 16))
    assert (~batch.mask).any()  # some histories are padded (index 0 after clamping)

    def eq14(b: CTRBatch) -> torch.Tensor:
        items = torch.unique(torch.cat([b.items, b.history[b.mask]]))
        return sum(
            0.5 * F.mse_loss(model.decoders[m](model.encoders[m](getattr(model, f"feat_{m}")[items])),
                             getattr(model, f"feat_{m}")[items])
            for m in model.modalities
        )

    parts = model.losses(batch)
    torch.testing.assert_close(parts["recon"], eq14(batch))
    torch.testing.assert_close(parts["loss"], parts["ctr"] + eq14(batch))
    # a batch whose padding maps to an item that is not in it: that item is left out
    hist = batch.history.clone()
    hist[hist == 0] = 1
    hist[:, -1] = -1
    lone = CTRBatch(batch.users, torch.where(batch.items == 0, 1, batch.items), hist, batch.props, batch.labels)
    assert 0 not in lone.history[lone.mask].tolist() and 0 not in lone.items.tolist()
    torch.testing.assert_close(model.losses(lone)["recon"], eq14(lone))
    # without the auto-encoders there is nothing to reconstruct
    base = build_ctr_model("gmmf", data, dict(SMALL_GMMF, use_autoencoder=False))
    assert float(base.losses(batch)["recon"]) == 0.0


def test_gradient_reversal():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [-0.5, -1.0, -1.5]


def test_lambda_schedule():
    assert lambda_schedule(0.0) == 0.0
    assert lambda_schedule(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert lambda_schedule(0.1) < lambda_schedule(0.5) < lambda_schedule(1.0) < 1


def test_marn_adversary_through_reversal():
    """D2 lowers its loss while the invariant projection receives the reversed gradient."""
    data = contract_ctr_data()
    torch.manual_seed(0)
    model = build_ctr_model("marn", data, SMALL_MARN)
    from graphrec.models.ctr.base import CTRBatch

    batch = CTRBatch.from_split(data.samples["train"], slice(0, 32))
    model.set_progress(1.0)
    parts = model.losses(batch)
    assert set(parts) >= {"ctr", "adv", "d1", "spec", "lambda"}
    # gradient of the adversarial term alone: D2 descends, W_inv ascends (reversal)
    model.zero_grad()
    parts["adv"].backward()
    w = model.invariant.weight
    g_inv = w.grad.clone()
    g_d2 = model.d2.weight.grad.clone()
    with torch.no_grad():
        model.d2.weight -= 0.5 * g_d2
    assert float(model.losses(batch)["adv"].detach()) < float(parts["adv"].detach())
    with torch.no_grad():
        model.d2.weight += 0.5 * g_d2
        w -= 0.5 * g_inv  # a descent step on the reversed gradient = ascent on the adv loss
    assert float(model.losses(batch)["adv"].detach()) > float(parts["adv"].detach())
    # D1 learns on detached z: no gradient reaches W_inv from it
    model.zero_grad()
    model.losses(batch)["d1"].backward()
    assert model.invariant.weight.grad is None or model.invariant.weight.grad.abs().sum() == 0
    # progress 0: lambda 0, no reversed gradient into W_inv
    model.set_progress(0.0)
    model.zero_grad()
    model.losses(batch)["adv"].backward()
    assert model.invariant.weight.grad.abs().sum() == 0


def test_modality_attention_shapes():
    data = contract_ctr_data()
    from graphrec.models.ctr.base import CTRBatch

    batch = CTRBatch.from_split(data.samples["test"], slice(0, 10))
    for name, params in (("gmmf", SMALL_GMMF), ("marn", SMALL_MARN)):
        torch.manual_seed(0)
        names, w = build_ctr_model(name, data, params).modality_attention(batch)
        assert names == ["id", "image", "text"] and w.shape == (10, 3)
        assert torch.allclose(w.sum(-1), torch.ones(10), atol=1e-5)


def test_bad_options():
    data = contract_ctr_data()
    with pytest.raises(ConfigError, match="fusion"):
        build_ctr_model("marn", data, {"fusion": "sum"})
    with pytest.raises(ConfigError, match="two modalities"):
        build_ctr_model("marn", data, {"modalities": ["id"]})
    with pytest.raises(ConfigError, match="not in the data"):
        build_ctr_model("gmmf", data, {"modalities": ["audio"]})


@pytest.mark.parametrize("name", ["deepfm", "youtubenet", "din", "gmmf", "marn"])
@pytest.mark.parametrize("modality", ["audio", "id"])
def test_every_model_checks_its_modalities_alike(name, modality):
    """One check (CTRSchema.chosen_modalities) for every model with --modalities: a
    modality the data lack is one ConfigError naming those they have; MARN alone takes
    ``id`` as a modality."""
    data = contract_ctr_data()
    if name == "marn" and modality == "id":
        build_ctr_model(name, data, {"modalities": ["id", "image"]})
        return
    has = "id, image, text" if name == "marn" else "image, text"
    with pytest.raises(ConfigError, match=f"modality '{modality}' is not in the data \\(has {has}"):
        build_ctr_model(name, data, {"modalities": [modality]})


@pytest.mark.parametrize("name", ["deepfm", "youtubenet", "din", "gmmf", "marn"])
def test_modalities_as_a_comma_separated_string(name):
    """Python takes ``modalities`` as the command line does: ``"text"`` is the one
    modality text (not the letters t, e, x, t), ``"image,text"`` a list of two."""
    data = contract_ctr_data()
    for given, want in (("text", ["text"]), ("image,text", ["image", "text"]), (" image , text", ["image", "text"])):
        if name == "marn":
            given, want = "id," + given, ["id"] + want
        model = build_ctr_model(name, data, {"modalities": given})
        used = getattr(model, "item_enc", model).modalities
        assert used == want, (given, used)
    with pytest.raises(ConfigError, match="lists 'text' twice"):
        build_ctr_model(name, data, {"modalities": "text,text"})


def test_run_ctr_takes_a_modalities_string(tmp_path):
    data = contract_ctr_data()
    record, model = run_ctr(data, "gmmf", dict(SMALL_GMMF, modalities="text"), CTRConfig(epochs=1, progress=False))
    assert model.modalities == ["text"]


def test_gmmf_without_content_features_names_where_they_come_from():
    import dataclasses

    from graphrec.errors import DataError

    data = contract_ctr_data()
    bare = dataclasses.replace(data, dataset=data.dataset.replace(item_features={}))
    with pytest.raises(DataError, match="GMMF needs item content features, and these data have none: .*`graphrec "
                                        "features` or `graphrec prepare --feature MODALITY=FILE`"):
        build_ctr_model("gmmf", bare)
    with pytest.raises(ConfigError, match="GMMF needs at least one content modality: choose modalities among image, "
                                          "text"):
        build_ctr_model("gmmf", data, {"modalities": []})


def test_gan_options_given_as_model_parameters_name_ctr_config():
    """`graphrec models gmmf --params` lists gan_lr and gan_start_epoch with GMMF's
    parameters; given to build_ctr_model they were refused as unknown ("gmmf has no
    option(s) gan_lr: valid are ..."). The refusal says where they go."""
    data = contract_ctr_data()
    with pytest.raises(ConfigError, match=r"^gan_lr is a training option of gmmf \(its fit loop's\), not model "
                                          r"parameters: pass CTRConfig\(gan_lr=0\.0001\) to run_ctr / fit_ctr$"):
        build_ctr_model("gmmf", data, {"gan_lr": 1e-4})
    with pytest.raises(ConfigError, match=r"gan_lr, gan_start_epoch are training options .* "
                                          r"CTRConfig\(gan_lr=0\.0001, gan_start_epoch=2\)"):
        run_ctr(data, "gmmf", {"gan_start_epoch": 2, "gan_lr": 1e-4}, CTRConfig(epochs=1, progress=False))


def test_gmmf_eq12_head_is_one_linear_layer_over_the_pooled_history_and_the_user(tmp_path):
    """--eq12-head: eq. 12 read literally (the CTR audit found it Python-only): no candidate
    in the head's input and no hidden layer; the default head has both."""
    from typer.testing import CliRunner

    from graphrec.cli import app
    from graphrec.train.record import load_record

    data = contract_ctr_data()
    small = {k: v for k, v in SMALL_GMMF.items() if k != "hidden"}
    literal = build_ctr_model("gmmf", data, dict(small, eq12_head=True))
    default = build_ctr_model("gmmf", data, small)
    assert literal.candidate_in_head is False and default.candidate_in_head is True
    linear = [m for m in literal.head.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 1 and linear[0].out_features == 1
    first = [m for m in default.head.modules() if isinstance(m, torch.nn.Linear)]
    # the default head: MLP [128, 64] over an input that holds the candidate's representations too
    assert len(first) == 3 and first[0].in_features > linear[0].in_features
    with pytest.raises(ConfigError, match=r"eq12_head sets hidden .*: give eq12_head or hidden, not both"):
        build_ctr_model("gmmf", data, dict(SMALL_GMMF, eq12_head=True))
    # from the command line, recorded, and rebuilt as trained by evaluate
    data.save(tmp_path / "s")
    runner = CliRunner()
    res = runner.invoke(app, ["train", "gmmf", "--data", str(tmp_path / "s"), "--epochs", "1", "--eq12-head",
                              "--device", "cpu", "--quiet", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert load_record(tmp_path / "r")["model_params"]["eq12_head"] is True
    res = runner.invoke(app, ["evaluate", str(tmp_path / "r"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
