"""Training methods: the registry and its generic method_args, Madry AT with τ (Eq. 12), Low Dimension Distillation
(thesis Ch. 4) and its pseudo-label students: losses, reductions, trainer integration."""
import copy
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

import tempscale.methods as M
from tempscale.errors import InvalidSpecError
from tempscale.methods import METHODS, Method, MethodArgs, arg, register_method
from tempscale.models import build_model
from tempscale.profiles import get_profile
from tempscale.runs import get_or_train

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
    with pytest.raises(InvalidSpecError, match="needs method_args"):
        M.MadryArgs.from_dict({"eps": 8 / 255})
    with pytest.raises(InvalidSpecError, match="needs method_args"):
        SMOKE.spec(1.0, method="madry")            # an empty method_args never means "the defaults"
    for bad in (dict(steps=0), dict(steps=2.0), dict(eps=-0.1), dict(alpha=float("nan")), dict(craft_mode="x"),
                dict(random_start="yes")):
        with pytest.raises(InvalidSpecError):
            M.madry_args(**bad)
    assert M.madry_args() == M.MADRY_PAPER
    assert M.MADRY_PAPER == {"eps": 8 / 255, "alpha": 2 / 255, "steps": 10, "random_start": True, "craft_mode": "eval"}


def test_method_args_of_stored_runs_are_unchanged():
    """The helpers' dicts are part of every run hash: the same calls must give the same dicts as always."""
    assert M.madry_args(steps=3, alpha=4 / 255) == {"eps": 8 / 255, "alpha": 4 / 255, "steps": 3,
                                                    "random_start": True, "craft_mode": "eval"}
    assert M.ldd_args(reduction="none", ratio=1) == {"reduction": "none", "ratio": 1, "kd_loss": "mse+kl",
                                                     "alpha": 1.0, "kd_tau": 1.0}
    assert M.ldd_pseudo_args("run-x", 50.0) == {"teacher_run": "run-x", "true_label_tau": 50.0, "part": "teacher"}
    assert M.ldd_pseudo_args("run-x") == {"teacher_run": "run-x", "true_label_tau": None, "part": "teacher"}
    spec = SMOKE.spec(1.0, method="madry", method_args=M.madry_args(steps=3, alpha=4 / 255), epochs=1)
    assert spec.key() == "d4495ecef866", "a madry run hash moved"


# --- the registry -----------------------------------------------------------------------------------------------------

def test_every_method_is_registered_with_its_args():
    assert {"standard", "madry", "ldd", "ldd_pseudo"} <= set(METHODS)
    assert METHODS["madry"].Args is M.MadryArgs and METHODS["ldd"].Args is M.LDDArgs
    assert all(m.description for m in METHODS.values())


def test_method_args_are_validated_from_their_type_hints():
    @dataclass(frozen=True, kw_only=True)
    class Args(MethodArgs):
        count: int = arg(2, minimum=1)
        rate: float = arg(0.5, minimum=0)
        flag: bool = arg(False)
        kind: str = arg("a", choices=("a", "b"))
        limit: float | None = arg(None)

    assert Args().to_dict() == {"count": 2, "rate": 0.5, "flag": False, "kind": "a", "limit": None}
    assert Args(rate=1).rate == 1.0 and isinstance(Args(rate=1).rate, float)
    assert Args.from_dict({"count": 3, "rate": 0.0, "flag": True, "kind": "b", "limit": 2.0}).limit == 2.0
    for bad in (dict(count=0), dict(count=True), dict(count=1.5), dict(rate="x"), dict(flag=2), dict(kind="c"),
                dict(limit=float("inf"))):
        with pytest.raises(InvalidSpecError):
            Args(**bad)
    with pytest.raises(InvalidSpecError, match="unknown"):
        Args.from_dict({**Args().to_dict(), "other": 1})
    with pytest.raises(InvalidSpecError, match="needs method_args"):
        Args.from_dict({"count": 3})
    assert Args.from_dict({**Args().to_dict(), "vit_img_size": 64}).to_dict()["vit_img_size"] == 64


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
    for bad in (dict(reduction="pca"), dict(kd_loss="ce"), dict(ratio=0), dict(ratio=2.0), dict(alpha=-1),
                dict(kd_tau=0.0)):
        with pytest.raises(InvalidSpecError):
            M.ldd_args(**bad)
    assert M.ldd_args(vit_img_size=64)["vit_img_size"] == 64   # ViT tests shrink the input


def test_pseudo_args_are_checked():
    for bad in (dict(teacher_run=""), dict(true_label_tau=0.0), dict(part="both")):
        with pytest.raises(InvalidSpecError):
            M.ldd_pseudo_args(**{"teacher_run": "run-x", **bad})
    with pytest.raises(InvalidSpecError, match="needs method_args"):
        M.PseudoArgs.from_dict({"teacher_run": "run-x", "part": "teacher"})


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


def test_vit_b8_teacher_is_the_theses_b32():
    teacher = M.build_teacher("vit_base_patch8_224", 10, MEAN, STD, "vit_patch", 4, vit_img_size=64)
    assert teacher.encoder.patch_embed.patch_size == (32, 32)          # thesis: vit_base_patch32 teacher
    assert M.backbone_input_shape(teacher, 64) == (2, 2)               # the B/8 student sees 8×8 patches


def test_ldd_tables_follow_the_theses_cells():
    from tempscale.experiments.ldd import TABLES, configurations, default_tables, thesis_backbone_rows

    paper = get_profile("paper")
    assert default_tables(get_profile("quick")) == TABLES                       # ResNet-8 stands in for the WRN
    assert default_tables(get_profile("paper", dataset="cifar100", arch="wrn28_10")) == TABLES
    for dataset, arch in (("cifar10", "wrn28_10"), ("cifar10", "resnet50"), ("cifar100", "vit_base_patch8_224")):
        assert default_tables(get_profile("paper", dataset=dataset, arch=arch)) == ("4.4",)
    assert configurations(4, "vit_base_patch8_224")["ours"] == dict(reduction="vit_patch", ratio=4)
    assert configurations(4, "wrn28_10")["ours"] == configurations(4)["large_stride"]
    vit = thesis_backbone_rows(get_profile("paper", dataset="cifar100", arch="vit_base_patch8_224"))
    assert list(vit.index) == ["Baseline", "Ours"] and vit.loc["Ours", "pgd20"] == 22.43   # no Madry row for ViT
    wrn = thesis_backbone_rows(get_profile("paper", dataset="cifar100", arch="wrn28_10"))
    assert list(wrn.index) == ["Baseline", "Ours", "Madry et al. 2018"] and wrn.loc["Baseline", "clean"] == 82.79
    quick = thesis_backbone_rows(get_profile("quick"))                            # digits: the thesis' CIFAR-10 WRN
    assert (quick.attrs["backbone"], quick.attrs["dataset"]) == ("WideResnet", "cifar10")
    assert quick.loc["Ours", "pgd20"] == 43.56
    assert paper.ldd.vit_img_size is None and get_profile("rehearsal").ldd.vit_img_size == 32


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


# --- a new method: one class and one registration line ----------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class SmoothingArgs(MethodArgs):
    smoothing: float = arg(0.1, "label smoothing of the τ-scaled CE", minimum=0)


class LabelSmoothing(Method):
    name = "test_label_smoothing"
    description = "τ-scaled cross-entropy with label smoothing (defined in a test)"
    Args = SmoothingArgs

    def loss(self, model, x, y, spec):
        return F.cross_entropy(model(x) / spec.tau, y, label_smoothing=self.args(spec).smoothing)


def test_a_new_method_trains_through_the_run_store(tmp_path, monkeypatch):
    monkeypatch.setitem(METHODS, LabelSmoothing.name, None)   # the registry is restored after the test
    register_method(LabelSmoothing)
    spec = SMOKE.spec(1.0, method=LabelSmoothing.name, method_args=SmoothingArgs(smoothing=0.2).to_dict(),
                      epochs=1, n_train=64)
    run = get_or_train(spec, runs_dir=tmp_path, progress=False)
    assert run.is_complete and run.dir.name.startswith("digits-resnet8-test_label_smoothing-")
    assert type(run.load_model()).__name__ == "Classifier" and len(run.history) == 1
    with pytest.raises(InvalidSpecError):
        SMOKE.spec(1.0, method=LabelSmoothing.name, method_args={"smoothing": -1.0})


# --- the notebooks' specs and tables (tempscale.experiments.madry / .ldd) ---------------------------------------------

# The per-profile budgets notebooks 07-09 used before they moved into the profile tree (AutoAttack: the profile's own
# attack budget when it has one); the runs they name must not move — except quick's Madry step, which follows quick's
# threat model (24/255, ASSUMPTIONS["quick.eps"]) at the same ratio, ε/2, as the old 4/255 at 8/255, and quick's epochs,
# cut from 8 to 6 for the main job's time (ASSUMPTIONS["quick.time"]).
OLD_NOTEBOOK_BUDGETS = {
    "smoke": dict(epochs=1, madry_steps=3, madry_alpha=4 / 255, n_eval=32, autoattack_n=8,
                  autoattack={"n_queries": 50, "steps": 10}, pseudo_attack_steps=20),
    "quick": dict(epochs=3, madry_steps=3, madry_alpha=12 / 255, n_eval=200, autoattack_n=50,
                  autoattack=dict(steps=10, n_queries=100), pseudo_attack_steps=20),
    "paper": dict(epochs=None, madry_steps=10, madry_alpha=2 / 255, n_eval=None, autoattack_n=None,
                  autoattack=None, pseudo_attack_steps=200),
}


@pytest.mark.parametrize("name", list(OLD_NOTEBOOK_BUDGETS))
def test_profile_sections_keep_the_notebook_budgets(name):
    old, p = OLD_NOTEBOOK_BUDGETS[name], get_profile(name)
    assert (p.madry.epochs, p.madry.steps, p.madry.alpha, p.madry.n_eval) == (
        old["epochs"], old["madry_steps"], old["madry_alpha"], old["n_eval"])
    assert (p.ldd.epochs, p.ldd.n_eval, p.ldd.autoattack_n, p.ldd.pseudo_attack_steps, p.ldd.ratio, p.ldd.pseudo_tau
            ) == (old["epochs"], old["n_eval"], old["autoattack_n"], old["pseudo_attack_steps"], 4, 50.0)
    merged = {**p.attacks.budgets.get("autoattack", {}), **(p.ldd.autoattack or {})}
    assert merged == (old["autoattack"] or {})


def test_notebook_specs_name_the_stored_runs():
    from tempscale.experiments.ldd import configurations, ldd_spec
    from tempscale.experiments.madry import madry_spec

    smoke = get_profile("smoke")
    assert madry_spec(smoke, 1.0).folder_name() == "digits-resnet8-madry-tau1-seed0-d4495ecef866"
    assert madry_spec(smoke, 1.0) == smoke.spec(1.0, method="madry", epochs=1,
                                                method_args=M.madry_args(steps=3, alpha=4 / 255))
    main = ldd_spec(smoke, **configurations(4)["large_stride"])
    assert main == smoke.spec(1.0, method="ldd", method_args=M.ldd_args(), epochs=1)
    assert ldd_spec(get_profile("paper"), reduction="none", ratio=1).epochs == get_profile("paper").spec(1.0).epochs


def _old_beside(ours, thesis, scale):
    """Notebook 08's former helper, kept here as the reference `side_by_side(by_tau=False)` must reproduce."""
    import numpy as np
    import pandas as pd

    index = thesis.index.append(ours.index[~ours.index.isin(thesis.index)])
    columns = pd.MultiIndex.from_product([list(ours.columns), ["thesis", "this run"]], names=["metric", "source"])
    out = pd.DataFrame(np.nan, index=index, columns=columns)
    for m in ours.columns:
        out[(m, "this run")] = ours[m].reindex(index).astype(float)
        if m in thesis.columns:
            out[(m, "thesis")] = thesis[m].reindex(index).astype(float)
    out.attrs["scale"] = scale
    return out


def test_side_by_side_keeps_the_thesis_rows_for_the_ldd_tables():
    import pandas as pd

    from tempscale.paper import ldd_table
    from tempscale.tables import side_by_side

    thesis = ldd_table("4.1").T
    ours = pd.DataFrame({(m, r): {"clean": 50.0 + i, "pgd": 10.0 + i} for i, (m, r) in enumerate(thesis.index)}).T
    ours.index.names = ["method", "role"]
    ours.loc[("Extra", "student"), :] = [1.0, 2.0]
    got = side_by_side(ours, thesis, "scale", reference="thesis", by_tau=False)
    pd.testing.assert_frame_equal(got, _old_beside(ours, thesis, "scale"))
    assert got.index[-1] == ("Extra", "student") and got.attrs["scale"] == "scale"
