"""Architectures, all behind one interface the paper's analysis needs.

Every model is a `Classifier`: an encoder f (input → penultimate feature f(x)) followed by one linear layer whose weight
rows are the class prototypes W (Eq. 2). So `features(x)`, `prototypes` and the logits `W f(x) + b` exist for every
architecture, and every analysis (Eqs. 4–10, Figs. 5–7, t-SNE) runs on every model.

Inputs are images in [0, 1] at the dataset's resolution; the classifier normalises them and, for architectures with a
fixed input size (ViT-224), resizes inside the model, so attack budgets stay in the data's pixel units.

Registered architectures (`ARCHITECTURES`): ``resnet8`` and ``resnet20`` (small CIFAR ResNets that train on a CPU),
``resnet50`` (timm, CIFAR stem: 3×3 stride-1 first conv, no max-pool), ``wrn28_10`` (WideResNet-28-10),
``vit_small_patch16_224`` (timm; pretrained weights from a local file only), ``vit_base_patch8_224`` (the thesis' ViT-B/8
LDD student of Table 4.4; its teacher, ViT-B/32, is the same model with 4× larger patches: `methods.ldd`).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import DataNotFoundError, InvalidSpecError


class Classifier(nn.Module):
    """x ∈ [0, 1] → normalise (→ resize) → encoder f → linear head W."""

    def __init__(self, encoder: nn.Module, feature_dim: int, num_classes: int, mean, std,
                 input_size: int | None = None):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.input_size = input_size
        self.encoder = encoder
        self.head = nn.Linear(feature_dim, num_classes)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """f(x): the penultimate representation, shape (B, feature_dim)."""
        return self.encoder(self.prepare(x))

    @property
    def prototypes(self) -> torch.Tensor:
        """W: one row per class (the last layer's weight), shape (num_classes, feature_dim)."""
        return self.head.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# --- small CIFAR ResNets (He et al. 2016, Sec. 4.2): 3 stages of basic blocks, widths w, 2w, 4w -----------------

class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """Encoder of a CIFAR ResNet-(6n+2). `stem` is replaceable (LDD's teacher swaps in a large-stride stem)."""

    def __init__(self, blocks_per_stage: int, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers, cin = [], width
        for stage, cout in enumerate((width, 2 * width, 4 * width)):
            for b in range(blocks_per_stage):
                layers.append(BasicBlock(cin, cout, 2 if stage > 0 and b == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.out_dim = cin

    def forward(self, x):
        return F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1)


# --- WideResNet-28-10 (Zagoruyko & Komodakis 2016; the variant RobustBench uses) -----------------------------

class WideBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None if cin == cout and stride == 1 else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        return out + (x if self.shortcut is None else self.shortcut(pre))


class WideResNet(nn.Module):
    def __init__(self, depth: int = 28, widen: int = 10):
        super().__init__()
        n = (depth - 4) // 6
        widths = (16, 16 * widen, 32 * widen, 64 * widen)
        self.stem = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        layers, cin = [], widths[0]
        for stage, cout in enumerate(widths[1:]):
            for b in range(n):
                layers.append(WideBlock(cin, cout, 2 if stage > 0 and b == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(cin)
        self.out_dim = cin

    def forward(self, x):
        return F.adaptive_avg_pool2d(F.relu(self.bn(self.layers(self.stem(x)))), 1).flatten(1)


# --- timm models ---------------------------------------------------------------------------------------------

def _timm_resnet50() -> nn.Module:
    import timm

    net = timm.create_model("resnet50", pretrained=False, num_classes=0)
    net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)  # CIFAR stem: 32×32 inputs keep their resolution
    net.maxpool = nn.Identity()
    net.out_dim = net.num_features
    return net


# The ViTs: timm name → (patch side, the variable naming its local pretrained checkpoint). Nothing is downloaded.
VITS = {
    "vit_small_patch16_224": (16, "TEMPSCALE_VIT_WEIGHTS"),
    "vit_base_patch8_224": (8, "TEMPSCALE_VIT_B8_WEIGHTS"),
}


def is_vit(arch: str) -> bool:
    """A vision transformer (its own training recipe, a patch-based LDD teacher)."""
    return arch in VITS


def find_vit_weights(weights: str | Path | None = None, arch: str = "vit_small_patch16_224") -> Path | None:
    """A local checkpoint of ViT `arch`: the given path, else its variable in `VITS`. Never downloads."""
    variable = VITS[arch][1]
    candidate = weights or os.environ.get(variable)
    if not candidate:
        return None
    path = Path(candidate)
    if not path.is_file():
        raise DataNotFoundError(f"ViT weights file {path.resolve()} does not exist; point {variable} at a "
                                f"timm {arch} checkpoint (.safetensors, .pth or .bin)")
    return path


def timm_vit(arch: str, weights: Path | None = None, img_size: int = 224, patch_size: int | None = None) -> nn.Module:
    """timm's `arch` without a head at `img_size`; `patch_size` other than the model's own gives a ViT with larger
    patches (LDD's teacher) whose patch embedding timm resamples from the checkpoint."""
    import timm

    kwargs = dict(num_classes=0, img_size=img_size)
    if patch_size is None:
        if weights is not None:
            kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(file=str(weights)))
        net = timm.create_model(arch, **kwargs)
    else:
        net = timm.create_model(arch, patch_size=patch_size, **kwargs)
        if weights is not None:   # timm's filter resamples the checkpoint's patch embedding to the larger patch
            from timm.models._helpers import load_state_dict
            from timm.models.vision_transformer import checkpoint_filter_fn

            net.load_state_dict(checkpoint_filter_fn(load_state_dict(str(weights)), net), strict=False)
    net.out_dim = net.num_features
    return net


@dataclass(frozen=True)
class ArchInfo:
    build: Callable[..., nn.Module]
    input_size: int | None   # fixed input size the encoder expects (None: any)
    description: str


ARCHITECTURES: dict[str, ArchInfo] = {}


def register(name: str, input_size: int | None, description: str):
    def wrap(fn):
        ARCHITECTURES[name] = ArchInfo(fn, input_size, description)
        return fn
    return wrap


@register("resnet8", None, "CIFAR ResNet-8, width 16 (78k parameters): CPU-friendly")
def _resnet8(**_):
    return SmallResNet(1, 16)


@register("resnet20", None, "CIFAR ResNet-20, width 16 (0.27M parameters)")
def _resnet20(**_):
    return SmallResNet(3, 16)


@register("resnet50", None, "timm ResNet-50 with a CIFAR stem (23.5M parameters): the paper's CNN")
def _resnet50(**_):
    return _timm_resnet50()


@register("wrn28_10", None, "WideResNet-28-10 (36.5M parameters): the thesis' LDD backbone")
def _wrn(**_):
    return WideResNet(28, 10)


@register("vit_small_patch16_224", 224, "timm ViT-S/16 at 224×224 (21.7M parameters): the paper's transformer")
def _vit_small(weights: Path | None = None, vit_img_size: int = 224, **_):
    return timm_vit("vit_small_patch16_224", weights, vit_img_size)


@register("vit_base_patch8_224", 224, "timm ViT-B/8 at 224×224 (86M parameters): the thesis' LDD transformer student")
def _vit_base8(weights: Path | None = None, vit_img_size: int = 224, **_):
    return timm_vit("vit_base_patch8_224", weights, vit_img_size)


def check_arch(arch: str) -> None:
    if arch not in ARCHITECTURES:
        raise InvalidSpecError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")


def build_model(arch: str, num_classes: int, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                weights: str | Path | None = None, vit_img_size: int | None = None) -> Classifier:
    """A fresh `Classifier`. `weights` (ViT only) is a local pretrained file; `vit_img_size` shrinks ViT for tests."""
    check_arch(arch)
    info = ARCHITECTURES[arch]
    input_size = vit_img_size or info.input_size
    encoder = info.build(weights=Path(weights) if weights else None, vit_img_size=input_size)
    return Classifier(encoder, encoder.out_dim, num_classes, mean, std, input_size=input_size)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_init(arch: str, init: str) -> str:
    """Turn a requested initialisation into what will actually happen, before the run is hashed.

    "pretrained" becomes "file:<sha256[:16]>" when local ViT weights are found, else "scratch" with a warning, so a run
    that silently started from scratch can never be mistaken for a fine-tuned one.
    """
    if init == "scratch" or init.startswith("file:"):
        return init
    if init != "pretrained":
        raise InvalidSpecError(f"init must be 'scratch' or 'pretrained', got {init!r}")
    path = find_vit_weights(arch=arch) if arch in VITS else None
    if path is None:
        hint = f"set {VITS[arch][1]} to a timm checkpoint" if arch in VITS else "only the ViTs load local weights"
        warnings.warn(f"no local pretrained weights for {arch} ({hint}); this run STARTS FROM SCRATCH and records "
                      "init='scratch'", stacklevel=2)
        return "scratch"
    return f"file:{file_digest(path)[:16]}"


def weights_for_init(init: str, arch: str = "vit_small_patch16_224") -> Path | None:
    """The local weight file of `arch` a resolved init refers to, checked against its recorded digest."""
    if not init.startswith("file:"):
        return None
    path = find_vit_weights(arch=arch) if arch in VITS else None
    if path is None or not file_digest(path).startswith(init[5:]):
        variable = VITS[arch][1] if arch in VITS else "the ViT weights variable"
        raise DataNotFoundError(f"this run was fine-tuned from weights with digest {init[5:]}; set "
                                f"{variable} to that same file to rebuild it")
    return path


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
