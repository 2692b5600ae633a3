"""Madry AT with τ (Eq. 12) and Low Dimension Distillation (thesis Ch. 4): losses, reductions, trainer integration."""
import copy

import pytest
import torch
import torch.nn.functional as F

import tempscale.methods as M
from tempscale.errors import InvalidSpecError
from tempscale.models import build_model
from tempscale.profiles import get_profile
from tempscale.runs import get_or_train
from tempscale.train import METHODS

MEAN = STD = (0.5, 0.5, 0.5)
SMOKE = get_profile("smoke")


def _batch(n=8, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    x[:, :, :4] = 0.0          # pixels at the box edges: the projection must clamp them into [0, 1]
    x[:, :, -4:] = 1.0
    return x, torch.randint(0, 10, (n,), generator=g)


def _model(seed=0, arch="resnet8"):
    torch.manual_seed(seed)
    return build_model(arch, 10, MEAN, STD)


# --- Madry AT (Eq. 12) ------------------------------------------------------------------------------------------------

def test_adversarial_examples_stay_in_the_ball_and_the_box():
    model, (x, y) = _model(), _batch()
    eps = 8 / 255
    x_adv = M.craft_adversarial(model, x, y, eps=eps, alpha=2 / 255, steps=5)
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() > eps / 2, "PGD did not move the images"
    with torch.no_grad():
        model.eval()
        assert F.cross_entropy(model(x_adv), y) > F.cross_entropy(model(x), y), "PGD must increase the τ=1 CE"


def test_crafting_leaves_modes_grads_and_requires_grad_alone():
    model, (x, y) = _model(), _batch()
    model.train()
    model.head.weight.requires_grad_(False)
    for p in model.encoder.parameters():
        p.grad = torch.ones_like(p)
    M.craft_adversarial(model, x, y, eps=8 / 255, alpha=2 / 255, steps=2, craft_mode="eval")
    assert all(m.training for m in model.modules())
    assert not model.head.weight.requires_grad and model.head.bias.requires_grad
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.encoder.parameters())


@pytest.mark.parametrize("tau", [0.5, 10.0])
def test_madry_loss_is_its_two_terms(tau):
    model, (x, y) = _model(), _batch()
    model.eval()
    x_adv = M.craft_adversarial(model, x, y, eps=8 / 255, alpha=2 / 255, steps=3)
    out = M.madry_loss(model, x, x_adv, y, tau)
    with torch.no_grad():
        z, z_adv = model(x), model(x_adv)
    by_hand_clean = -(torch.log_softmax(z / tau, 1)[torch.arange(len(y)), y]).mean()
    by_hand_adv = -(torch.log_softmax(z_adv, 1)[torch.arange(len(y)), y]).mean()   # τ = 1 on the adversarial term
    assert torch.allclose(out.clean, by_hand_clean, atol=1e-6)
    assert torch.allclose(out.adversarial, by_hand_adv, atol=1e-6)
    assert torch.allclose(out.total, by_hand_clean + by_hand_adv, atol=1e-6)


def test_registered_madry_loss_crafts_then_applies_eq12():
    spec = SMOKE.spec(10.0, method="madry", method_args=M.madry_args(steps=3))
    model, (x, y) = _model(), _batch()
    a, b = copy.deepcopy(model).train(), copy.deepcopy(model).train()
    torch.manual_seed(123)
    trained = METHODS["madry"].loss(a, x, y, spec)
    torch.manual_seed(123)
    x_adv = M.craft_adversarial(b, x, y, 8 / 255, 2 / 255, 3, True, "eval")
    assert torch.allclose(trained, M.madry_loss(b, x, x_adv, y, 10.0).total, atol=1e-6)


def test_madry_budget_must_be_explicit():
    with pytest.raises(InvalidSpecError):
        M.madry_args(epsilon=0.1)
    with pytest.raises(InvalidSpecError):
        M.check_madry_args({"eps": 8 / 255})
    with pytest.raises(InvalidSpecError):
        M.madry_args(steps=0)
    assert M.madry_args() == M.MADRY_PAPER


# --- LDD: losses ------------------------------------------------------------------------------------------------------

def _pair(reduction="large_stride", ratio=4, seed=0):
    torch.manual_seed(seed)
    teacher = M.build_teacher("resnet8", 10, MEAN, STD, reduction, ratio)
    return M.LDDPair(teacher, build_model("resnet8", 10, MEAN, STD), reduction, ratio)


def test_student_loss_sends_no_gradient_into_the_teacher():
    pair, (x, y) = _pair(), _batch()
    M.ldd_loss(pair, x, y, "mse+kl").student.backward()
    assert all(p.grad is None or not p.grad.any() for p in pair.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in pair.student.parameters())


def test_teacher_loss_reaches_only_the_teacher_and_one_optimizer_equals_two():
    pair, (x, y) = _pair(), _batch()
    M.ldd_loss(pair, x, y, "kl+ce").teacher.backward()
    assert all(p.grad is None for p in pair.student.parameters())
    teacher_only = [p.grad.clone() for p in pair.teacher.parameters()]
    pair.zero_grad()
    M.ldd_loss(pair, x, y, "kl+ce").total.backward()   # what the trainer's single optimizer sees
    for g_alone, p in zip(teacher_only, pair.teacher.parameters()):
        assert torch.allclose(g_alone, p.grad, atol=1e-6)


def test_pair_is_the_student_to_the_outside():
    pair, (x, _) = _pair(), _batch()
    pair.eval()
    with torch.no_grad():
        assert torch.equal(pair(x), pair.student(x))
        assert not torch.allclose(pair(x), pair.teacher(x))
        assert torch.equal(pair.features(x), pair.student.features(x))
    assert pair.prototypes is pair.student.head.weight and pair.encoder is pair.student.encoder


@pytest.mark.parametrize("kind", list(M.KD_LOSSES))
def test_each_kd_loss_computes_what_it_says(kind):
    g = torch.Generator().manual_seed(1)
    z_s, z_t = torch.randn(6, 10, generator=g), 3 * torch.randn(6, 10, generator=g)
    y = torch.randint(0, 10, (6,), generator=g)
    alpha, T, tau = 0.5, 2.0, 4.0
    p_t, log_p_t, log_p_s = (z_t / T).softmax(1), (z_t / T).log_softmax(1), (z_s / T).log_softmax(1)
    kl = (p_t * (log_p_t - log_p_s)).sum(1).mean() * T * T            # KL(p_t ‖ p_s), Hinton's T² factor
    mse = ((z_s - z_t) ** 2).mean()
    ce = -(z_s / tau).log_softmax(1)[torch.arange(6), y].mean()
    expected = {"kl": kl, "mse": alpha * mse, "mse+kl": kl + alpha * mse, "kl+ce": kl + ce}[kind]
    got = M.kd_loss(z_s, z_t, kind, alpha=alpha, kd_tau=T, y=y, tau=tau)
    assert torch.allclose(got, expected, atol=1e-5), (kind, got, expected)


def test_ldd_args_are_checked():
    assert M.ldd_args() == M.LDD_DEFAULTS
    for bad in (dict(reduction="pca"), dict(kd_loss="ce"), dict(ratio=0), dict(ratio=2.0), dict(alpha=-1)):
        with pytest.raises(InvalidSpecError):
            M.ldd_args(**bad)


# --- LDD: teacher input dimension (Tables 4.1, 4.2) --------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["input_pool", "feature_pool", "large_stride"])
@pytest.mark.parametrize("image, ratio, expected", [(32, 1, 32), (32, 2, 16), (32, 4, 8), (32, 8, 4), (16, 4, 4)])
def test_reduction_gives_the_documented_input_dimension(reduction, image, ratio, expected):
    pair = _pair(reduction, ratio)
    assert M.backbone_input_shape(pair.teacher, image) == (expected, expected)
    assert M.backbone_input_shape(pair, image) == (image, image), "the student keeps the full dimension"


def test_large_stride_stem_is_the_thesis_kernel():
    conv = _pair("large_stride", 4).teacher.encoder.stem[0]
    assert (conv.kernel_size, conv.stride, conv.padding) == ((12, 12), (4, 4), (4, 4))


@pytest.mark.parametrize("arch, reduction", [("resnet50", "feature_pool"), ("resnet50", "large_stride")])
def test_reductions_on_timm_resnet50(arch, reduction):
    teacher = M.build_teacher(arch, 10, MEAN, STD, reduction, 4)
    assert M.backbone_input_shape(teacher, 32) == (8, 8)


def test_vit_patch_teacher_has_r_squared_fewer_tokens():
    teacher = M.build_teacher("vit_small_patch16_224", 10, MEAN, STD, "vit_patch", 2, vit_img_size=64)
    assert M.backbone_input_shape(teacher, 64) == (2, 2)   # student ViT-S/16 at 64: 4×4 patches
    with pytest.raises(InvalidSpecError):
        M.build_teacher("resnet8", 10, MEAN, STD, "vit_patch", 2)


# --- the trainer, the run store and rebuilding ------------------------------------------------------------------------

def test_madry_and_ldd_train_through_the_run_store(tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPSCALE_RUNS", str(tmp_path))
    small = dict(epochs=1, n_train=96)
    madry = get_or_train(SMOKE.spec(10.0, method="madry", method_args=M.madry_args(steps=2, alpha=4 / 255), **small),
                         progress=False)
    ldd = get_or_train(SMOKE.spec(1.0, method="ldd", method_args=M.ldd_args(ratio=2), **small), progress=False)
    m = madry.load_model()
    assert type(m).__name__ == "Classifier" and not m.training
    pair = ldd.load_model()
    assert isinstance(pair, M.LDDPair) and (pair.reduction, pair.ratio) == ("large_stride", 2)
    assert pair.teacher.encoder.stem[0].stride == (2, 2)
    stored = torch.load(ldd.model_path, weights_only=True)
    assert all(torch.equal(v, pair.state_dict()[k]) for k, v in stored.items())
    assert any(k.startswith("teacher.") for k in stored) and any(k.startswith("student.") for k in stored)
    assert 0 <= ldd.result["clean_acc"] <= 1 and ldd.history

    # Table 4.6: a plain student on the stored teacher's pseudo-labels (+ high-τ CE on the true labels).
    args = M.ldd_pseudo_args(ldd, true_label_tau=50.0)
    assert args["teacher_run"] == ldd.dir.name
    pseudo = get_or_train(SMOKE.spec(1.0, method="ldd_pseudo", method_args=args, **small), progress=False)
    assert type(pseudo.load_model()).__name__ == "Classifier"
    with pytest.raises(InvalidSpecError):
        get_or_train(SMOKE.spec(1.0, method="ldd_pseudo", method_args=M.ldd_pseudo_args("no-such-run"), **small),
                     progress=False)


def test_pseudo_label_loss_by_hand():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(5, 10, generator=g)
    pseudo, y = torch.randint(0, 10, (5,), generator=g), torch.randint(0, 10, (5,), generator=g)
    assert torch.allclose(M.pseudo_label_loss(z, pseudo, y), F.cross_entropy(z, pseudo))
    assert torch.allclose(M.pseudo_label_loss(z, pseudo, y, true_label_tau=50.0),
                          F.cross_entropy(z, pseudo) + F.cross_entropy(z / 50.0, y))
