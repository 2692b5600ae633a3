"""Training methods beyond τ-scaled cross-entropy: Madry adversarial training with τ (paper Eq. 12, Table III) and
Low Dimension Distillation (thesis Ch. 4: Algorithm 1, Eqs. 4.1–4.6, Tables 4.1–4.6).

Importing this module registers three methods in `tempscale.train.METHODS`; every parameter a method depends on
lives in ``spec.method_args`` (part of the run hash), built by the ``*_args`` helpers so that nothing is implicit:

``madry``       L = CE(F(x)/τ, y) + CE(F(x_adv), y)  (Eq. 12); x_adv by L∞ PGD on the τ = 1 CE.
                ``madry_args(eps, alpha, steps, random_start, craft_mode)``.
``ldd``         a teacher with a low-dimensional input projection and a full-resolution student, trained together
                (Algorithm 1): teacher on CE(z_t/τ, y) (Eq. 4.3), student on the KD loss (Eq. 4.4) against the
                teacher's DETACHED outputs. The model is an `LDDPair`: its forward is the student's, so training
                accuracy, attacks and analyses all see the student. ``ldd_args(reduction, ratio, kd_loss, alpha, kd_tau)``.
``ldd_pseudo``  a plain student trained on the hard pseudo-labels of a stored teacher (thesis Sec. 4.3.3, Table 4.6);
                optionally plus a high-temperature CE on the true labels (the thesis' "S_iter2/3").
                ``ldd_pseudo_args(teacher_run, true_label_tau, part)``.

Choices the sources leave open (all recorded in the spec through method_args):

* Madry training budget: the paper does not state it. ``MADRY_PAPER`` uses the common Madry CIFAR setting
  ε = 8/255, step 2/255, 10 steps, uniform random start.
* Madry crafting mode: ``craft_mode="eval"`` (default) crafts x_adv with the model in eval mode (BatchNorm uses its
  running statistics and the PGD forward passes do not update them), then switches back to train mode for the two
  loss terms. ``"train"`` keeps batch statistics while crafting (as several public Madry implementations do); the
  PGD passes then also move the running statistics. Public code differs; neither is stated in the paper.
* Madry's two terms use two separate forward passes (x, then x_adv), each with its own BatchNorm batch statistics,
  the literal reading of Eq. 12 (one concatenated batch would mix clean and adversarial statistics).
* The training PGD keeps the LAST iterate (Madry et al.), unlike `tempscale.attacks.pgd`, which keeps the first
  misclassified iterate (right for evaluation, an early-stopped and weaker adversary for training).
* LDD: the teacher's CE carries τ (``spec.tau``; the thesis uses plain CE, i.e. τ = 1, the default everywhere). The
  KL term is Hinton's KL(p_t ‖ p_s) at temperature ``kd_tau`` (1: the thesis states none) times kd_tau²; the MSE
  term is the mean over batch and classes of (z_s − z_t)² times ``alpha`` (the thesis gives no value for α; 1).
  The KD variants of Table 4.3 (``KD_LOSSES``) are sums of these terms; "kl+ce" adds CE(z_s/τ, y) on the true labels.
* One optimizer over teacher and student is exactly Algorithm 1's two updates: the teacher loss only reaches teacher
  parameters and the student loss only student parameters (teacher outputs are detached), and SGD/Adam update each
  parameter from its own gradient. ``tests/test_methods.py`` checks that the student loss sends no gradient into the
  teacher.
* Teacher reductions (``REDUCTIONS``, factor ``ratio`` r; thesis Sec. 4.2.1 and 4.3.2): "input_pool" average-pools the
  image by r before the network; "feature_pool" average-pools by r right after the stem; "large_stride" replaces the
  stem's 3×3 stride-1 convolution by a trainable kernel 3r, stride r, padding r convolution (r = 4: kernel 12,
  stride 4, padding 4 as in the thesis, so 32×32 → 8×8; in general H → H/r); "vit_patch" builds the ViT teacher with
  patches r times larger per side (16r), so r² times fewer tokens; "none" is the vanilla teacher-student pair.
  ratio 1, 2, 4, 8 give Table 4.2's 32, 16, 8, 4 from 32×32 inputs (16, 8, 4, 2 from the quick profile's 16×16).
* ``ldd_pseudo``: pseudo-labels are the teacher's argmax on each (augmented) training batch, computed on the fly with
  the teacher in eval mode. Every student starts from scratch: S_iter1 = pseudo-labels only, E epochs; S_iter2 =
  pseudo-labels + CE(z/τ_high, y) for E epochs; S_iter3 = the same loss for 2E epochs (the thesis: 200 and 400
  epochs; whether S_iter2/3 start from S_iter1 is not stated). The teacher is named by its run folder (whose name
  carries its spec hash) and resolved under `tempscale.paths.runs_dir()`; it is needed to train, not to load.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import InvalidSpecError
from .losses import check_tau, temperature_ce
from .models import Classifier, build_model, weights_for_init
from .train import METHODS, build_classifier, register_method

# =====================================================================================================================
# Madry adversarial training with τ on the clean term (paper Eq. 12)
# =====================================================================================================================

MADRY_PAPER = {"eps": 8 / 255, "alpha": 2 / 255, "steps": 10, "random_start": True, "craft_mode": "eval"}
CRAFT_MODES = ("eval", "train")


def madry_args(**overrides) -> dict:
    """Complete method_args for "madry": `MADRY_PAPER` with any field replaced (checked)."""
    unknown = set(overrides) - set(MADRY_PAPER)
    if unknown:
        raise InvalidSpecError(f"unknown madry setting(s) {sorted(unknown)}; settable: {sorted(MADRY_PAPER)}")
    return check_madry_args({**MADRY_PAPER, **overrides})


def check_madry_args(args: dict) -> dict:
    """The training-PGD budget must be explicit in method_args (it is part of the run's identity)."""
    missing = [k for k in MADRY_PAPER if k not in args]
    if missing:
        raise InvalidSpecError(f"madry needs method_args {missing} (use tempscale.methods.madry_args(...)); "
                               "the paper does not state its training PGD budget, so it is never implied")
    extra = set(args) - set(MADRY_PAPER) - {"vit_img_size"}
    if extra:
        raise InvalidSpecError(f"unknown madry method_args {sorted(extra)}")
    eps, alpha, steps = args["eps"], args["alpha"], args["steps"]
    if not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in (eps, alpha)):
        raise InvalidSpecError(f"madry eps and alpha must be finite numbers ≥ 0, got {eps}, {alpha}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise InvalidSpecError(f"madry steps must be an integer ≥ 1, got {steps!r}")
    if args["craft_mode"] not in CRAFT_MODES:
        raise InvalidSpecError(f"craft_mode must be one of {CRAFT_MODES}, got {args['craft_mode']!r}")
    if args["random_start"] not in (True, False):
        raise InvalidSpecError(f"random_start must be True or False, got {args['random_start']!r}")
    return {**args, "eps": float(eps), "alpha": float(alpha), "steps": steps,
            "random_start": bool(args["random_start"])}


def craft_adversarial(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float, steps: int,
                      random_start: bool = True, craft_mode: str = "eval") -> torch.Tensor:
    """Training-time L∞ PGD (Madry et al.) on CE(F(x), y) at τ = 1; returns the LAST iterate, in [0, 1] and
    within ‖x_adv − x‖∞ ≤ eps. The random start uses the global RNG (the trainer seeds it per epoch, so resumed
    runs repeat it). The model's train/eval modes and its parameters' requires_grad are restored afterwards;
    parameter .grad fields are never touched."""
    if craft_mode not in CRAFT_MODES:
        raise InvalidSpecError(f"craft_mode must be one of {CRAFT_MODES}, got {craft_mode!r}")
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    x = x.detach()
    try:
        if craft_mode == "eval":
            model.eval()
        for p, _ in grads:
            p.requires_grad_(False)
        x_adv = x.clone()
        if random_start:
            x_adv = (x_adv + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        with torch.enable_grad():
            for _ in range(steps):
                x_adv.requires_grad_(True)
                loss = F.cross_entropy(model(x_adv).float(), y)
                grad, = torch.autograd.grad(loss, x_adv)
                x_adv = x_adv.detach() + alpha * grad.sign()
                x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    finally:
        for m, training in modes:
            m.training = training
        for p, requires_grad in grads:
            p.requires_grad_(requires_grad)
    return x_adv.detach()


class ATLoss(NamedTuple):
    total: torch.Tensor        # clean + adversarial
    clean: torch.Tensor        # CE(F(x)/τ, y)
    adversarial: torch.Tensor  # CE(F(x_adv), y)


def madry_loss(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, tau: float) -> ATLoss:
    """Eq. 12: L_AT = CE(F(x)/τ, y) + CE(F(x_adv), y), with its two terms (two forward passes, current mode)."""
    clean = temperature_ce(model(x).float(), y, tau)
    adversarial = F.cross_entropy(model(x_adv).float(), y)
    return ATLoss(clean + adversarial, clean, adversarial)


def _build_madry(spec, num_classes: int, mean, std) -> nn.Module:
    check_madry_args(spec.method_args)
    return build_classifier(spec, num_classes, mean, std)


def _madry_train_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec) -> torch.Tensor:
    args = check_madry_args(spec.method_args)
    x_adv = craft_adversarial(model, x, y, args["eps"], args["alpha"], args["steps"], args["random_start"],
                              args["craft_mode"])
    if x.is_contiguous(memory_format=torch.channels_last):
        x_adv = x_adv.contiguous(memory_format=torch.channels_last)
    return madry_loss(model, x, x_adv, y, spec.tau).total


# =====================================================================================================================
# Low Dimension Distillation (thesis Ch. 4)
# =====================================================================================================================

REDUCTIONS = {
    "none": "vanilla teacher-student: the teacher is the standard network (Table 4.1 'Vanilla T-S')",
    "input_pool": "average-pool the image by `ratio` before the network (Table 4.1 'Pooling Image')",
    "feature_pool": "average-pool by `ratio` right after the stem (Table 4.1 'Pooling feature')",
    "large_stride": "trainable stem conv with kernel 3r, stride r, padding r (r = 4: 12/4/4, thesis Sec. 4.3.2)",
    "vit_patch": "ViT teacher with patch size 16·r (r² fewer tokens; thesis: patch32 teacher vs patch8 student)",
}
KD_LOSSES = {
    "kl": "KL(p_t ‖ p_s) · kd_tau²",
    "mse": "alpha · mean (z_s − z_t)²",
    "mse+kl": "KL(p_t ‖ p_s) · kd_tau² + alpha · mean (z_s − z_t)²   (Eq. 4.4, the thesis' choice)",
    "kl+ce": "KL(p_t ‖ p_s) · kd_tau² + CE(z_s / τ, y)   (Hinton's KD)",
}
LDD_DEFAULTS = {"reduction": "large_stride", "ratio": 4, "kd_loss": "mse+kl", "alpha": 1.0, "kd_tau": 1.0}


def ldd_args(**overrides) -> dict:
    """Complete method_args for "ldd": `LDD_DEFAULTS` (the thesis' main setting: 1/16 of the input dimension by a
    stride-4 stem, MSE+KL) with any field replaced (checked). Extra keys (e.g. vit_img_size) pass through."""
    return check_ldd_args({**LDD_DEFAULTS, **overrides})


def check_ldd_args(args: dict) -> dict:
    missing = [k for k in LDD_DEFAULTS if k not in args]
    if missing:
        raise InvalidSpecError(f"ldd needs method_args {missing} (use tempscale.methods.ldd_args(...))")
    if args["reduction"] not in REDUCTIONS:
        raise InvalidSpecError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {args['reduction']!r}")
    if args["kd_loss"] not in KD_LOSSES:
        raise InvalidSpecError(f"kd_loss must be one of {', '.join(KD_LOSSES)}, got {args['kd_loss']!r}")
    ratio = args["ratio"]
    if not isinstance(ratio, int) or isinstance(ratio, bool) or ratio < 1:
        raise InvalidSpecError(f"ratio must be an integer ≥ 1, got {ratio!r}")
    if not (isinstance(args["alpha"], (int, float)) and math.isfinite(args["alpha"]) and args["alpha"] >= 0):
        raise InvalidSpecError(f"alpha must be a finite number ≥ 0, got {args['alpha']!r}")
    check_tau(args["kd_tau"])
    return dict(args)


class LDDPair(nn.Module):
    """Teacher (low-dimensional input projection) + student (standard network), trained together.

    ``forward`` is the student's, and so are ``features``, ``prototypes``, ``head``, ``encoder`` and ``prepare``: every
    evaluation, attack and analysis that takes a `Classifier` sees the student. ``.teacher`` is reachable for its own
    numbers (Tables 4.1/4.2 report both)."""

    def __init__(self, teacher: Classifier, student: Classifier, reduction: str = "none", ratio: int = 1):
        super().__init__()
        self.teacher = teacher
        self.student = student
        self.reduction = reduction
        self.ratio = ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.student.features(x)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return self.student.prepare(x)

    @property
    def prototypes(self) -> torch.Tensor:
        return self.student.prototypes

    @property
    def head(self) -> nn.Linear:
        return self.student.head

    @property
    def encoder(self) -> nn.Module:
        return self.student.encoder

    @property
    def input_size(self):
        return self.student.input_size

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, ratio={self.ratio}"


class InputPooledClassifier(Classifier):
    """A `Classifier` that average-pools the image by `ratio` at the data's resolution before anything else
    (then resizes for fixed-size encoders and normalises, as every Classifier does)."""

    def __init__(self, encoder: nn.Module, feature_dim: int, num_classes: int, mean, std, input_size=None,
                 ratio: int = 1):
        super().__init__(encoder, feature_dim, num_classes, mean, std, input_size)
        self.pool_ratio = ratio

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_ratio > 1:
            x = F.avg_pool2d(x, self.pool_ratio)
        return super().prepare(x)


def _is_vit(arch: str) -> bool:
    return arch.startswith("vit")


def _large_stride_conv(conv: nn.Conv2d, ratio: int) -> nn.Conv2d:
    return nn.Conv2d(conv.in_channels, conv.out_channels, kernel_size=3 * ratio, stride=ratio, padding=ratio,
                     bias=conv.bias is not None)


def _replace_stem(encoder: nn.Module, reduction: str, ratio: int) -> None:
    """feature_pool / large_stride on the three CNN encoder families (SmallResNet, WideResNet, timm ResNet)."""
    if hasattr(encoder, "stem") and isinstance(encoder.stem, nn.Sequential):        # SmallResNet: conv, BN, ReLU
        if reduction == "feature_pool":
            encoder.stem = nn.Sequential(*encoder.stem, nn.AvgPool2d(ratio))
        else:
            encoder.stem[0] = _large_stride_conv(encoder.stem[0], ratio)
    elif hasattr(encoder, "stem") and isinstance(encoder.stem, nn.Conv2d):          # WideResNet: bare conv
        encoder.stem = (nn.Sequential(encoder.stem, nn.AvgPool2d(ratio)) if reduction == "feature_pool"
                        else _large_stride_conv(encoder.stem, ratio))
    elif hasattr(encoder, "conv1") and hasattr(encoder, "maxpool"):                 # timm ResNet (CIFAR stem)
        if reduction == "feature_pool":
            encoder.maxpool = nn.AvgPool2d(ratio)                                   # after conv1-bn1-act1
        else:
            encoder.conv1 = _large_stride_conv(encoder.conv1, ratio)
    else:
        raise InvalidSpecError(f"reduction {reduction!r} does not know the stem of {type(encoder).__name__}")


def _vit_teacher(num_classes, mean, std, ratio, weights, img_size) -> Classifier:
    import timm

    net = timm.create_model("vit_small_patch16_224", num_classes=0, img_size=img_size, patch_size=16 * ratio)
    if weights is not None:  # timm's filter resamples the 16×16 patch embedding to the larger patch
        from timm.models.vision_transformer import checkpoint_filter_fn
        from timm.models._helpers import load_state_dict

        state = checkpoint_filter_fn(load_state_dict(str(weights)), net)
        net.load_state_dict(state, strict=False)
    net.out_dim = net.num_features
    return Classifier(net, net.out_dim, num_classes, mean, std, input_size=img_size)


def build_teacher(arch: str, num_classes: int, mean, std, reduction: str, ratio: int, weights=None,
                  vit_img_size: int | None = None) -> Classifier:
    """The LDD teacher: `build_model(arch)` with its input projection reduced by `ratio` (see `REDUCTIONS`)."""
    if reduction not in REDUCTIONS:
        raise InvalidSpecError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    if reduction == "vit_patch":
        if not _is_vit(arch):
            raise InvalidSpecError("reduction 'vit_patch' needs a ViT architecture; CNNs use 'large_stride'")
        return _vit_teacher(num_classes, mean, std, ratio, weights, vit_img_size or 224)
    base = build_model(arch, num_classes, mean, std, weights=weights, vit_img_size=vit_img_size)
    if reduction == "none":
        return base
    if reduction == "input_pool":
        return InputPooledClassifier(base.encoder, base.head.in_features, num_classes, mean, std, base.input_size,
                                     ratio)
    if _is_vit(arch):
        raise InvalidSpecError(f"reduction {reduction!r} is for CNNs; a ViT teacher uses 'vit_patch' or 'input_pool'")
    _replace_stem(base.encoder, reduction, ratio)
    return base


def backbone_input_shape(model: nn.Module, image_size: int, channels: int = 3) -> tuple[int, int]:
    """Spatial size (h, w) of the "input vector" v = f_Φ(x) (Eq. 4.1) that enters the backbone f_Θ, for an image of
    `image_size`: the input of the first residual stage for CNNs, the patch grid for ViTs. An `LDDPair` gives its
    student's; pass ``pair.teacher`` for the teacher's."""
    net = model.student if isinstance(model, LDDPair) else model
    enc = net.encoder
    seen: list[tuple[int, int]] = []
    if hasattr(enc, "patch_embed"):
        hook = enc.patch_embed.register_forward_hook(lambda m, i, o: seen.append(_grid_of_tokens(o, m)))
    else:
        first = enc.layers if hasattr(enc, "layers") else enc.layer1
        hook = first.register_forward_pre_hook(lambda m, i: seen.append(tuple(i[0].shape[-2:])))
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(torch.zeros(1, channels, image_size, image_size, device=next(net.parameters()).device))
    finally:
        hook.remove()
        net.train(was_training)
    return seen[0]


def _grid_of_tokens(out: torch.Tensor, patch_embed: nn.Module) -> tuple[int, int]:
    if out.ndim == 4:  # timm PatchEmbed with output_fmt NHWC
        return tuple(out.shape[1:3])
    side = math.isqrt(out.shape[1])
    return side, side


def _build_ldd(spec, num_classes: int, mean, std) -> LDDPair:
    args = check_ldd_args(spec.method_args)
    vit_size = spec.method_args.get("vit_img_size")
    weights = weights_for_init(spec.init)
    teacher = build_teacher(spec.arch, num_classes, mean, std, args["reduction"], args["ratio"], weights=weights,
                            vit_img_size=vit_size)
    student = build_model(spec.arch, num_classes, mean, std, weights=weights, vit_img_size=vit_size)
    return LDDPair(teacher, student, args["reduction"], args["ratio"])


def kd_loss(z_s: torch.Tensor, z_t: torch.Tensor, kind: str = "mse+kl", alpha: float = 1.0, kd_tau: float = 1.0,
            y: torch.Tensor | None = None, tau: float = 1.0) -> torch.Tensor:
    """The student's loss (Eq. 4.4 and the variants of Table 4.3, see `KD_LOSSES`). `z_t` is detached here: the
    student loss never sends gradient into the teacher."""
    if kind not in KD_LOSSES:
        raise InvalidSpecError(f"kd_loss must be one of {', '.join(KD_LOSSES)}, got {kind!r}")
    z_s, z_t = z_s.float(), z_t.detach().float()
    terms = kind.split("+")
    loss = z_s.new_zeros(())
    if "kl" in terms:
        T = check_tau(kd_tau)
        loss = loss + F.kl_div(F.log_softmax(z_s / T, dim=1), F.log_softmax(z_t / T, dim=1), log_target=True,
                               reduction="batchmean") * T * T
    if "mse" in terms:
        loss = loss + alpha * F.mse_loss(z_s, z_t)
    if "ce" in terms:
        if y is None:
            raise InvalidSpecError("kd_loss 'kl+ce' needs the true labels y")
        loss = loss + temperature_ce(z_s, y, tau)
    return loss


class LDDLoss(NamedTuple):
    total: torch.Tensor     # teacher + student
    teacher: torch.Tensor   # CE(z_t / τ, y)  (Eq. 4.3)
    student: torch.Tensor   # KD loss against the detached teacher (Eq. 4.4 or a Table 4.3 variant)


def ldd_loss(model: LDDPair, x: torch.Tensor, y: torch.Tensor, kd: str = "mse+kl", alpha: float = 1.0,
             kd_tau: float = 1.0, tau: float = 1.0) -> LDDLoss:
    """Algorithm 1, lines 3–6, on one batch: both networks see the same x."""
    z_t = model.teacher(x).float()
    z_s = model.student(x).float()
    teacher = temperature_ce(z_t, y, tau)
    student = kd_loss(z_s, z_t, kd, alpha=alpha, kd_tau=kd_tau, y=y, tau=tau)
    return LDDLoss(teacher + student, teacher, student)


def _ldd_train_loss(model: LDDPair, x: torch.Tensor, y: torch.Tensor, spec) -> torch.Tensor:
    a = check_ldd_args(spec.method_args)
    return ldd_loss(model, x, y, a["kd_loss"], a["alpha"], a["kd_tau"], spec.tau).total


# --- pseudo-label students (Table 4.6) -------------------------------------------------------------------------------

PSEUDO_PARTS = ("teacher", "student")


def ldd_pseudo_args(teacher_run, true_label_tau: float | None = None, part: str = "teacher") -> dict:
    """method_args for "ldd_pseudo": `teacher_run` is a Run, a run folder or its name (stored by name, resolved under
    `tempscale.paths.runs_dir()`); `true_label_tau` None trains on pseudo-labels only (S_iter1), a τ adds
    CE(z/τ, y_true) (S_iter2/3); `part` picks an LDD pair's teacher (default) or student as the labeller."""
    name = getattr(teacher_run, "dir", teacher_run)
    name = Path(name).name
    return check_pseudo_args({"teacher_run": name, "true_label_tau": true_label_tau, "part": part})


def check_pseudo_args(args: dict) -> dict:
    if set(args) != {"teacher_run", "true_label_tau", "part"}:
        raise InvalidSpecError("ldd_pseudo needs method_args teacher_run, true_label_tau, part "
                               "(use tempscale.methods.ldd_pseudo_args(...))")
    if not isinstance(args["teacher_run"], str) or not args["teacher_run"]:
        raise InvalidSpecError(f"teacher_run must be a run folder name, got {args['teacher_run']!r}")
    if args["true_label_tau"] is not None:
        check_tau(args["true_label_tau"])
    if args["part"] not in PSEUDO_PARTS:
        raise InvalidSpecError(f"part must be one of {PSEUDO_PARTS}, got {args['part']!r}")
    return dict(args)


_LABELLERS: dict[tuple[str, str, str], nn.Module] = {}


def load_labeller(teacher_run: str, part: str = "teacher", device: str | torch.device = "cpu") -> nn.Module:
    """The frozen network whose argmax gives the pseudo-labels (cached per process)."""
    from .paths import runs_dir
    from .runs import Run

    path = Path(teacher_run) if Path(teacher_run).is_absolute() else runs_dir() / teacher_run
    key = (str(path), part, str(device))
    if key not in _LABELLERS:
        if not (path / "spec.json").exists():
            raise InvalidSpecError(f"pseudo-label teacher run {path} does not exist; train it first")
        run = Run.from_dir(path)
        if not run.is_complete:
            raise InvalidSpecError(f"pseudo-label teacher run {path} is not finished; train it first")
        model = run.load_model(device)
        if isinstance(model, LDDPair):
            model = getattr(model, part)
        for p in model.parameters():
            p.requires_grad_(False)
        _LABELLERS[key] = model.eval()
    return _LABELLERS[key]


def pseudo_label_loss(z: torch.Tensor, pseudo: torch.Tensor, y: torch.Tensor, tau: float = 1.0,
                      true_label_tau: float | None = None) -> torch.Tensor:
    """CE(z/τ, pseudo) [+ CE(z/τ_true, y)]: Sec. 4.3.3's students."""
    loss = temperature_ce(z.float(), pseudo, tau)
    if true_label_tau is not None:
        loss = loss + temperature_ce(z.float(), y, true_label_tau)
    return loss


def _build_pseudo(spec, num_classes: int, mean, std) -> nn.Module:
    check_pseudo_args(spec.method_args)
    return build_classifier(spec, num_classes, mean, std)


def _pseudo_train_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec) -> torch.Tensor:
    a = check_pseudo_args(spec.method_args)
    labeller = load_labeller(a["teacher_run"], a["part"], x.device)
    with torch.no_grad():
        pseudo = labeller(x).argmax(1)
    return pseudo_label_loss(model(x), pseudo, y, spec.tau, a["true_label_tau"])


# --- the notebooks' budgets ------------------------------------------------------------------------------------------

# Method-specific budgets per profile, shared by notebooks 07 (Madry), 08 (LDD) and 09 (GradCAM) so that they reuse one
# another's runs (same spec → same run folder). None means "the profile's own value". Quick: every training step of
# AT runs PGD and every LDD step trains two networks, so fewer epochs and a 3-step training PGD keep notebooks 07–09
# together at a few minutes on a 2-core CPU; the paper profile uses the paper's recipe and the Madry CIFAR budget.
NOTEBOOK_BUDGETS = {
    "smoke": dict(epochs=1, madry_steps=3, madry_alpha=4 / 255, n_eval=32, autoattack_n=8,
                  autoattack=None, pseudo_attack_steps=20),
    "quick": dict(epochs=8, madry_steps=3, madry_alpha=4 / 255, n_eval=200, autoattack_n=50,
                  autoattack=dict(steps=10, n_queries=100), pseudo_attack_steps=20),
    "paper": dict(epochs=None, madry_steps=10, madry_alpha=2 / 255, n_eval=None, autoattack_n=None,
                  autoattack=None, pseudo_attack_steps=200),
}


def notebook_budget(profile) -> dict:
    """The budget of `NOTEBOOK_BUDGETS` for a profile (or its name); unknown profiles get the paper's. The
    AutoAttack overrides are the profile's own ``attack_overrides["autoattack"]`` when it has them."""
    name = getattr(profile, "name", profile)
    budget = dict(NOTEBOOK_BUDGETS.get(name, NOTEBOOK_BUDGETS["paper"]))
    own = getattr(profile, "attack_overrides", {}).get("autoattack")
    if own:
        budget["autoattack"] = dict(own)
    return budget


def madry_spec(profile, tau: float, budget: dict | None = None, **overrides):
    """The RunSpec of one Madry run under a notebook budget (notebooks 07 and 08 share it)."""
    b = budget or notebook_budget(profile)
    if b["epochs"] is not None:
        overrides.setdefault("epochs", b["epochs"])
    return profile.spec(tau, method="madry", method_args=madry_args(steps=b["madry_steps"], alpha=b["madry_alpha"]),
                        **overrides)


def ldd_spec(profile, budget: dict | None = None, tau: float = 1.0, **args):
    """The RunSpec of one LDD run under a notebook budget (notebooks 08 and 09 share it); `args` go to `ldd_args`."""
    b = budget or notebook_budget(profile)
    overrides = {} if b["epochs"] is None else {"epochs": b["epochs"]}
    return profile.spec(tau, method="ldd", method_args=ldd_args(**args), **overrides)


# --- registration ----------------------------------------------------------------------------------------------------

register_method("madry", _build_madry, _madry_train_loss,
                "Madry adversarial training with τ on the clean term: CE(F(x)/τ, y) + CE(F(x_adv), y) (Eq. 12)")
register_method("ldd", _build_ldd, _ldd_train_loss,
                "Low Dimension Distillation: low-dimensional teacher + student, trained online (thesis Alg. 1)")
register_method("ldd_pseudo", _build_pseudo, _pseudo_train_loss,
                "student on a stored teacher's pseudo-labels [+ high-τ CE on true labels] (thesis Table 4.6)")

__all__ = ["MADRY_PAPER", "madry_args", "craft_adversarial", "madry_loss", "ATLoss", "REDUCTIONS", "KD_LOSSES",
           "LDD_DEFAULTS", "ldd_args", "LDDPair", "build_teacher", "backbone_input_shape", "kd_loss", "ldd_loss",
           "LDDLoss", "ldd_pseudo_args", "load_labeller", "pseudo_label_loss", "NOTEBOOK_BUDGETS", "notebook_budget",
           "madry_spec", "ldd_spec", "METHODS"]
