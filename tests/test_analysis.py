"""tempscale.analysis: each test checks a property the paper's figures rely on and fails when it is false."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from tempscale import analysis as A
from tempscale.models import build_model


@pytest.fixture(scope="module")
def tiny():
    """A fresh ResNet-8 (10 classes) with a non-trivial head, in eval mode, and a small random batch in [0, 1]."""
    torch.manual_seed(0)
    model = build_model("resnet8", 10).eval()
    with torch.no_grad():   # spread the prototypes so the softmax is far from uniform (as after training)
        model.head.weight.mul_(40)
        model.head.bias.normal_(0, 1)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, 3, 16, 16, generator=g)
    y = torch.randint(0, 10, (12,), generator=g)
    return model, x, y


# --- extract --------------------------------------------------------------------------------------------------------

def test_extract_matches_forward_and_restores_mode(tiny):
    model, x, y = tiny
    model.train()
    feats, logits = A.extract(model, x, batch_size=5)        # 3 uneven batches
    assert model.training                                    # mode restored
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x))
        torch.testing.assert_close(feats, model.features(x))
    assert feats.shape == (12, 64) and logits.shape == (12, 10)
    assert not feats.requires_grad


# --- Eqs. 4–9 -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tau", [0.1, 1.0, 50.0])
def test_gradient_identity_on_a_real_model(tiny, tau):
    model, x, y = tiny
    out = A.gradient_identity_check(model, x, y, tau)
    assert out["n"] == 12 and out["dtype"] == "float32"
    assert out["max_abs_grad_df"] > 1e-3                      # a real, non-vanishing gradient is being compared
    assert out["max_abs_err"] < 1e-5, out
    assert out["max_rel_err"] < 1e-5, out


def test_gradient_identity_detects_a_wrong_closed_form(tiny, monkeypatch):
    model, x, y = tiny
    real = A.closed_form_gradients

    def wrong(features, prototypes, bias, targets, tau):   # forgets the 1/τ factor of Eqs. 4–6
        out = real(features, prototypes, bias, targets, tau)
        return {**out, "df": out["df"] * tau, "dW": out["dW"] * tau}

    monkeypatch.setattr(A, "closed_form_gradients", wrong)
    assert A.gradient_identity_check(model, x, y, 10.0)["max_rel_err"] > 0.5


def test_gradient_identity_on_tensors():
    g = torch.Generator().manual_seed(3)
    f, W, b = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g,
                                                                               dtype=torch.float64), None
    out = A.gradient_identity_check((f, W, b), None, torch.tensor([0, 1, 2, 0, 1]), 0.5)
    assert out["dtype"] == "float64" and out["max_abs_err"] < 1e-12


# --- Fig. 1 toy -----------------------------------------------------------------------------------------------------

def test_fig1_toy_low_tau_is_dominated_by_the_nearest_negative():
    W, f, true = A.fig1_toy()
    toy = A.toy_update_direction(W, f, true, taus=(0.1, 0.5, 1.0, 10.0, 50.0, 100.0))
    dist = np.linalg.norm(W - f, axis=1)
    dist[true] = np.inf
    nearest = int(np.argmin(dist))
    low = toy.index(0.1)
    assert toy.hard_class[low] == nearest
    assert toy.negative_share[low, nearest] > 0.99          # low τ: the hard class takes (almost) all of the push
    # ... so the update is ≈ (w_true − w_hard)/τ: straight away from the hard class, toward the true one
    expected = W[true] - W[nearest]
    assert A._cos(toy.direction[low], expected) > 0.999
    high = toy.index(100.0)
    neg = [j for j in range(len(W)) if j != true]
    assert np.allclose(toy.negative_share[high, neg], 1 / len(neg), atol=0.02)   # high τ: ≈ equal shares
    assert A._cos(toy.direction[high], W[true]) > 0.99      # pushes cancel (symmetric W): heads straight for w_true


def test_fig1_toy_entropy_rises_and_step_shrinks_with_tau():
    W, f, true = A.fig1_toy()
    taus = (0.1, 0.5, 1.0, 10.0, 50.0, 100.0)
    toy = A.toy_update_direction(W, f, true, taus=taus)
    assert np.all(np.diff(toy.negative_entropy) > 0)        # more equal weights over negatives as τ grows
    assert toy.negative_entropy[0] < 0.05 and toy.negative_entropy[-1] > 0.99
    norms = np.linalg.norm(toy.direction, axis=1)
    assert np.all(np.diff(norms) < 0)                       # Eq. 6's 1/τ: smaller steps at higher τ
    np.testing.assert_allclose(toy.tau_scaled_direction, toy.direction * np.array(taus)[:, None])
    table = toy.table()
    assert list(table["tau"]) == list(taus) and table["negative_entropy"].is_monotonic_increasing


def test_toy_direction_matches_autograd():
    W, f, true = A.fig1_toy()
    toy = A.toy_update_direction(W, f, true, taus=(0.7,))
    fl = torch.tensor(f, requires_grad=True)
    loss = torch.nn.functional.cross_entropy((torch.tensor(W) @ fl / 0.7)[None], torch.tensor([true]))
    (g,) = torch.autograd.grad(loss, fl)
    np.testing.assert_allclose(toy.direction[0], -g.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(toy.coefficients[0] @ W, toy.direction[0], atol=1e-12)   # Eq. 6 as a weighted sum


def test_toy_rejects_bad_input():
    W, f, _ = A.fig1_toy()
    with pytest.raises(ValueError):
        A.toy_update_direction(W, f, 7)
    with pytest.raises(ValueError):
        A.toy_update_direction(W[:2], f, 0)


# --- Eqs. 7–9: per-sample weights -----------------------------------------------------------------------------------

def _toy_batch():
    """8 samples, 4 classes: 6 confidently correct, 2 misclassified."""
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    logits = torch.randn(8, 4, generator=g)
    logits[torch.arange(8), y] += 6.0
    logits[6, 0] += 10.0    # misclassified as 0
    logits[7, 1] += 10.0    # misclassified as 1
    return logits, y


def test_sample_weight_spread_shrinks_with_tau():
    logits, y = _toy_batch()
    taus = (0.5, 1.0, 10.0, 50.0, 100.0)
    table = A.sample_weights_from_logits(logits, y, taus)
    assert len(table) == 8 * len(taus)
    summary = A.sample_weight_summary(table)
    assert np.all(np.diff(summary["std_weight"]) < 0)       # weights become more equal ...
    assert np.all(np.diff(summary["ess_fraction"]) > 0)     # ... and more samples drive the update
    low, high = summary.iloc[0], summary.iloc[-1]
    assert low["share_misclassified"] > 0.95                # low τ: the two hard samples carry the update
    assert high["ess_fraction"] > 0.99                      # high τ: every sample weighs about the same
    w_high = table.loc[table["tau"] == 100.0, "weight"]
    assert np.allclose(w_high, 1 - 1 / 4, atol=0.05)         # → 1 − 1/M as τ → ∞
    assert np.allclose(table.groupby("tau")["share"].sum(), 1.0)


def test_sample_weights_vs_tau_on_a_model(tiny):
    model, x, y = tiny
    table = A.sample_weights_vs_tau(model, x, y, (1.0, 10.0))
    with torch.no_grad():
        p = torch.softmax(model(x).double(), 1)[torch.arange(12), y].numpy()
    np.testing.assert_allclose(table.loc[table["tau"] == 1.0, "weight"], 1 - p, rtol=1e-5, atol=1e-7)


# --- Figs. 2–3: clusters ----------------------------------------------------------------------------------------------

def _blobs(spread, seed=0, n=40, d=16, k=4):
    g = np.random.default_rng(seed)
    centres = g.normal(size=(k, d)) * 5
    labels = np.repeat(np.arange(k), n)
    return centres[labels] + g.normal(size=(k * n, d)) * spread, labels


def test_cluster_scores_rank_separated_above_mixed():
    sep_x, lab = _blobs(0.5)
    mix_x, _ = _blobs(20.0)
    sep, mix = A.cluster_scores(sep_x, lab), A.cluster_scores(mix_x, lab)
    assert sep["silhouette_cosine"] > 0.5 > mix["silhouette_cosine"]
    assert sep["silhouette_euclidean"] > 0.5 > mix["silhouette_euclidean"]
    assert sep["davies_bouldin"] < mix["davies_bouldin"]    # lower is better
    shuffled = A.cluster_scores(sep_x, np.random.default_rng(1).permutation(lab))
    assert abs(shuffled["silhouette_euclidean"]) < 0.1      # random labels: no structure
    scaled = A.cluster_scores(sep_x * 37.0, lab)             # scale-invariant: models with larger features compare
    assert math.isclose(scaled["silhouette_euclidean"], sep["silhouette_euclidean"], rel_tol=1e-9)
    with pytest.raises(ValueError):
        A.cluster_scores(sep_x, np.zeros(len(lab), dtype=int))


def test_tsne_is_deterministic_and_keeps_blobs_apart():
    x, lab = _blobs(0.5, n=15)
    e1, e2 = A.tsne_embedding(x, seed=0), A.tsne_embedding(x, seed=0)
    assert e1.shape == (60, 2)
    np.testing.assert_allclose(e1, e2)
    assert A.cluster_scores(e1, lab)["silhouette_euclidean"] > 0.5


# --- Figs. 6–7: prototype geometry ----------------------------------------------------------------------------------

def test_variance_excludes_the_true_class():
    # the true class (column 1) is an outlier; the negatives are all equal → variance over negatives is exactly 0
    values = np.array([[0.2, 9.0, 0.2, 0.2],
                       [0.0, 1.0, 2.0, 3.0]])
    var = A.variance_over_negatives(values, [1, 3])
    assert var[0] == pytest.approx(0.0, abs=1e-15)
    assert math.isclose(var[1], np.var([0.0, 1.0, 2.0]))     # ddof 0 over the three negatives


def test_prototype_geometry_by_hand():
    # 3 prototypes on the axes; f(x) of class 0 is equidistant from both negatives, f(x) of class 1 is not
    W = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    feats = torch.tensor([[3.0, 1.0, 1.0], [1.0, 2.0, 0.0]])
    geo = A.geometry_from_features(feats, W, torch.tensor([0, 1]))
    assert geo.distance.shape == geo.cosine.shape == (2, 3)
    np.testing.assert_allclose(geo.distance[0], np.linalg.norm(feats[0].numpy() - W.numpy(), axis=1))
    np.testing.assert_allclose(geo.cosine[1], [1 / math.sqrt(5), 2 / math.sqrt(5), 0.0])
    assert geo.var_distance[0] == pytest.approx(0.0) and geo.var_cosine[0] == pytest.approx(0.0)
    assert geo.var_distance[1] > 0 and geo.var_cosine[1] > 0
    # per-model min-max: all N × M values in [0, 1], reaching both ends
    for norm in (geo.distance_norm, geo.cosine_norm):
        assert norm.min() == 0.0 and norm.max() == 1.0
    # normalisation removes the scale: the same geometry ×10 gives the same normalised variances
    geo10 = A.geometry_from_features(feats * 10, W * 10, torch.tensor([0, 1]))
    np.testing.assert_allclose(geo10.var_distance, geo.var_distance, atol=1e-12)
    np.testing.assert_allclose(geo10.var_cosine, geo.var_cosine, atol=1e-12)
    assert not np.allclose(geo10.var_distance_raw, geo.var_distance_raw)
    np.testing.assert_allclose(geo.negatives("distance")[1], np.delete(geo.distance[1], 1))
    assert geo.cv_distance()[0] == pytest.approx(0.0, abs=1e-12) and geo.cv_distance()[1] > 0
    np.testing.assert_allclose(geo10.cv_distance(), geo.cv_distance())      # scale-free per sample
    assert list(geo.preds) == [0, 1]
    table = geo.table()
    assert len(table) == 2 and table["correct"].all()
    assert geo.sample(1)["label"] == 1


def test_prototype_geometry_on_a_model(tiny):
    model, x, y = tiny
    geo = A.prototype_geometry(model, x, y, batch_size=5)
    assert geo.distance.shape == (12, 10) and geo.var_cosine.shape == (12,)
    with torch.no_grad():
        np.testing.assert_array_equal(geo.preds, model(x).argmax(1).numpy())
    # the variance really is over the negatives only: recompute one row by hand
    n = 3
    neg = np.delete(geo.distance_norm[n], int(y[n]))
    assert geo.var_distance[n] == pytest.approx(neg.var())


# --- Fig. 5: logits before / after ------------------------------------------------------------------------------------

def test_logits_before_after_tidy(tiny):
    model, x, y = tiny
    x, y = x[:3], y[:3]
    x_adv = (x + 8 / 255 * torch.sign(torch.randn_like(x))).clamp(0, 1)
    frame = A.logits_before_after(model, x, y, x_adv, class_names=[str(c) for c in range(10)])
    assert len(frame) == 3 * 10
    with torch.no_grad():
        z, z_adv = model(x), model(x_adv)
    np.testing.assert_allclose(frame["logit_clean"], z.numpy().ravel(), rtol=1e-6)
    np.testing.assert_allclose(frame["logit_adv"], z_adv.numpy().ravel(), rtol=1e-6)
    assert (frame["linf"] <= 8 / 255 + 1e-6).all() and (frame["grad_l1"] >= 0).all()
    summary = A.summarise_logits(frame)
    assert len(summary) == 3
    assert list(summary["pred_adv"]) == z_adv.argmax(1).tolist()
    assert list(summary["flipped"]) == (z_adv.argmax(1) != z.argmax(1)).tolist()
    with pytest.raises(ValueError):
        A.logits_before_after(model, x, y, x_adv[:2])


def test_saturated_softmax_has_zero_input_gradient():
    """A logit gap of 200 makes P_y round to 1 in float32: the CE gradient PGD follows is exactly 0."""
    class Saturated(torch.nn.Module):
        def forward(self, x):
            s = x.flatten(1).sum(1, keepdim=True)
            return torch.cat([200 + s, 2 * s, -s], 1)

    x = torch.rand(2, 3, 4, 4)
    y = torch.tensor([0, 0])
    assert (A.input_gradient_norm(Saturated(), x, y) == 0).all()
    assert (A.input_gradient_norm(Saturated(), x, torch.tensor([1, 2])) > 0).all()


# --- the shared inference helpers give the numbers the old hand-written loops gave ----------------------------------

def test_extract_equals_a_plain_batched_loop(tiny):
    model, x, _ = tiny
    model.eval()
    with torch.inference_mode():
        feats = [model.features(x[s:s + 5]) for s in range(0, len(x), 5)]
        expected = torch.cat(feats), torch.cat([model.head(f) for f in feats])
    got = A.extract(model, x, batch_size=5)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_input_gradient_norm_equals_one_plain_backward_pass(tiny):
    model, x, y = tiny
    model.eval()
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xg), y, reduction="sum"), xg)
    model.train()
    got = A.input_gradient_norm(model, x, y)
    np.testing.assert_array_equal(got, g.flatten(1).abs().sum(1).numpy())
    assert model.training and all(p.requires_grad for p in model.parameters())
    model.eval()
