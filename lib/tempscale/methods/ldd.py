"""``ldd``: Low Dimension Distillation (thesis Ch. 4: Algorithm 1, Eqs. 4.1–4.6, Tables 4.1–4.5).

A teacher with a low-dimensional input projection and a full-resolution student are trained together: the teacher
on CE(z_t/τ, y) (Eq. 4.3), the student on the KD loss (Eq. 4.4) against the teacher's DETACHED outputs. The model is
an `LDDPair` whose forward is the student's, so training accuracy, attacks and analyses all see the student.

Choices the thesis leaves open (all in method_args, built by `ldd_args`):

* The teacher's CE carries τ (``spec.tau``; the thesis uses plain CE, i.e. τ = 1, the default everywhere). The KL term
  is Hinton's KL(p_t ‖ p_s) at temperature ``kd_tau`` (1: the thesis states none) times kd_tau²; the MSE term is the
  mean over batch and classes of (z_s − z_t)² times ``alpha`` (the thesis gives no value; 1). The KD variants of
  Table 4.3 (`KD_LOSSES`) are sums of these terms; "kl+ce" adds CE(z_s/τ, y) on the true labels.
* One optimizer over teacher and student is exactly Algorithm 1's two updates: the teacher loss only reaches teacher
  parameters and the student loss only student parameters (teacher outputs are detached), and SGD/Adam update each
  parameter from its own gradient.
* Teacher reductions (`REDUCTIONS`, factor ``ratio`` r; thesis Sec. 4.2.1 and 4.3.2): "input_pool" average-pools the
  image by r before the network; "feature_pool" average-pools by r right after the stem; "large_stride" replaces the
  stem's 3×3 stride-1 convolution by a trainable kernel 3r, stride r, padding r convolution (r = 4: kernel 12,
  stride 4, padding 4 as in the thesis, so 32×32 → 8×8; in general H → H/r); "vit_patch" builds the ViT teacher
  with patches r times larger per side (ViT-B/8 → B/32 at r = 4), so r² times fewer tokens; "none" is the vanilla
  pair.
  ratio 1, 2, 4, 8 give Table 4.2's 32, 16, 8, 4 from 32×32 inputs (16, 8, 4, 2 from the quick profile's 16×16).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import InvalidSpecError
from ..inference import eval_mode, model_device
from ..losses import check_tau, temperature_ce
from ..models import VITS, Classifier, build_model, is_vit, timm_vit, weights_for_init
from .base import Method, MethodArgs, arg, register_method

if TYPE_CHECKING:
    from ..spec import RunSpec

REDUCTIONS = {
    "none": "vanilla teacher-student: the teacher is the standard network (Table 4.1 'Vanilla T-S')",
    "input_pool": "average-pool the image by `ratio` before the network (Table 4.1 'Pooling Image')",
    "feature_pool": "average-pool by `ratio` right after the stem (Table 4.1 'Pooling feature')",
    "large_stride": "trainable stem conv with kernel 3r, stride r, padding r (r = 4: 12/4/4, thesis Sec. 4.3.2)",
    "vit_patch": "ViT teacher with r× the student's patch side (r² fewer tokens; thesis: B/32 teacher, B/8 student)",
}
KD_LOSSES = {
    "kl": "KL(p_t ‖ p_s) · kd_tau²",
    "mse": "alpha · mean (z_s − z_t)²",
    "mse+kl": "KL(p_t ‖ p_s) · kd_tau² + alpha · mean (z_s − z_t)²   (Eq. 4.4, the thesis' choice)",
    "kl+ce": "KL(p_t ‖ p_s) · kd_tau² + CE(z_s / τ, y)   (Hinton's KD)",
}


@dataclass(frozen=True, kw_only=True)
class LDDArgs(MethodArgs):
    """Defaults: the thesis' main setting, 1/16 of the input dimension by a stride-4 stem, MSE+KL."""

    reduction: str = arg("large_stride", "how the teacher's input is reduced", choices=REDUCTIONS)
    ratio: int = arg(4, "reduction ratio r per side", minimum=1)
    kd_loss: str = arg("mse+kl", "the student's distillation loss", choices=KD_LOSSES)
    alpha: float = arg(1.0, "weight of the MSE term", minimum=0)
    kd_tau: float = arg(1.0, "temperature of the KL term", check=check_tau)


LDD_DEFAULTS = LDDArgs().to_dict()


def ldd_args(**overrides) -> dict:
    """Complete method_args for "ldd": `LDD_DEFAULTS` with any field replaced (checked)."""
    return LDDArgs.with_changes(**overrides)


# --- the pair -------------------------------------------------------------------------------------------------------

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


# --- teachers -------------------------------------------------------------------------------------------------------

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


def _vit_teacher(arch: str, num_classes: int, mean, std, ratio: int, weights: Path | None,
                 img_size: int) -> Classifier:
    """`arch` with r× larger patches (r² fewer tokens): the thesis' ViT-B/32 teacher of a ViT-B/8 student."""
    net = timm_vit(arch, weights, img_size, patch_size=VITS[arch][0] * ratio)
    return Classifier(net, net.out_dim, num_classes, mean, std, input_size=img_size)


def build_teacher(arch: str, num_classes: int, mean, std, reduction: str, ratio: int, weights=None,
                  vit_img_size: int | None = None) -> Classifier:
    """The LDD teacher: `build_model(arch)` with its input projection reduced by `ratio` (see `REDUCTIONS`)."""
    if reduction not in REDUCTIONS:
        raise InvalidSpecError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    if reduction == "vit_patch":
        if not is_vit(arch):
            raise InvalidSpecError("reduction 'vit_patch' needs a ViT architecture; CNNs use 'large_stride'")
        return _vit_teacher(arch, num_classes, mean, std, ratio, weights, vit_img_size or 224)
    base = build_model(arch, num_classes, mean, std, weights=weights, vit_img_size=vit_img_size)
    if reduction == "none":
        return base
    if reduction == "input_pool":
        return InputPooledClassifier(base.encoder, base.head.in_features, num_classes, mean, std, base.input_size,
                                     ratio)
    if is_vit(arch):
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
        hook = enc.patch_embed.register_forward_hook(lambda m, i, o: seen.append(_grid_of_tokens(o)))
    else:
        first = enc.layers if hasattr(enc, "layers") else enc.layer1
        hook = first.register_forward_pre_hook(lambda m, i: seen.append(tuple(i[0].shape[-2:])))
    try:
        with eval_mode(net), torch.no_grad():
            net(torch.zeros(1, channels, image_size, image_size, device=model_device(net)))
    finally:
        hook.remove()
    return seen[0]


def _grid_of_tokens(out: torch.Tensor) -> tuple[int, int]:
    if out.ndim == 4:  # timm PatchEmbed with output_fmt NHWC
        return tuple(out.shape[1:3])
    side = math.isqrt(out.shape[1])
    return side, side


# --- losses ---------------------------------------------------------------------------------------------------------

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


@register_method
class LowDimensionDistillation(Method):
    name = "ldd"
    description = "Low Dimension Distillation: low-dimensional teacher + student, trained online (thesis Alg. 1)"
    Args = LDDArgs

    def build(self, spec: RunSpec, num_classes: int, mean: tuple, std: tuple) -> LDDPair:
        a = self.args(spec)
        weights = weights_for_init(spec.init, spec.arch)
        # teacher first, then student: the order of the random initialisations is part of the run's identity
        teacher = build_teacher(spec.arch, num_classes, mean, std, a.reduction, a.ratio, weights=weights,
                                vit_img_size=a.vit_img_size)
        student = build_model(spec.arch, num_classes, mean, std, weights=weights, vit_img_size=a.vit_img_size)
        return LDDPair(teacher, student, a.reduction, a.ratio)

    def loss(self, model: LDDPair, x: torch.Tensor, y: torch.Tensor, spec: RunSpec) -> torch.Tensor:
        a = self.args(spec)
        return ldd_loss(model, x, y, a.kd_loss, a.alpha, a.kd_tau, spec.tau).total


__all__ = ["REDUCTIONS", "KD_LOSSES", "LDDArgs", "LDD_DEFAULTS", "ldd_args", "LDDPair", "InputPooledClassifier",
           "build_teacher", "backbone_input_shape", "kd_loss", "LDDLoss", "ldd_loss", "LowDimensionDistillation"]
