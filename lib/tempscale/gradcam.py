"""GradCAM heat maps (Selvaraju et al. 2017) for every architecture here, via pytorch-grad-cam (thesis Fig. 4.2).

`gradcam_maps(model, x, target_classes)` returns one map per image, (B, H, W) with H × W the image's own size, values
in [0, 1] (pytorch-grad-cam min-max scales each map), always finite. The target layer is chosen per architecture:

==========================  ===================================================================================
SmallResNet (resnet8/20)    the last block of ``encoder.layers``
WideResNet-28-10            the last block of ``encoder.layers``
timm ResNet-50              ``encoder.layer4[-1]``
timm ViT                    ``encoder.blocks[-1].norm1``; tokens → (B, C, h, w) with the prefix (cls) token dropped
`LDDPair`                   the same rule on ``.student`` (``part="student"``, the default) or ``.teacher``
==========================  ===================================================================================

One rule on top, because GradCAM on a 1 × 1 activation is a constant (no localisation at all): when the chosen CNN
block's output is 1 × 1 for this input, the last block whose output is at least 2 × 2 is used instead. This happens
for small low-dimensional LDD teachers (quick profile: a 16×16 digit reduced to 4×4 ends at 1×1 after two
stride-2 stages). `target_layer_info` says which layer was used and at what resolution; pass ``layer=`` to force one.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from .errors import InvalidSpecError
from .inference import eval_mode, model_device, preserved_state
from .methods.ldd import LDDPair

PARTS = ("student", "teacher")


def _network(model: nn.Module, part: str | None) -> nn.Module:
    """The Classifier to explain: an LDD pair's student or teacher, else the model itself."""
    if isinstance(model, LDDPair):
        part = part or "student"
        if part not in PARTS:
            raise InvalidSpecError(f"part must be one of {PARTS}, got {part!r}")
        return getattr(model, part)
    if part not in (None, "student"):
        raise InvalidSpecError(f"part={part!r} needs an LDD pair; this model is a {type(model).__name__}")
    return model


def _blocks(encoder: nn.Module) -> list[tuple[str, nn.Module]]:
    """Candidate target layers, in forward order (CNNs: residual blocks)."""
    if hasattr(encoder, "layers"):                                    # SmallResNet, WideResNet
        return [(f"encoder.layers[{i}]", b) for i, b in enumerate(encoder.layers)]
    if hasattr(encoder, "layer4"):                                    # timm ResNet
        return [(f"encoder.layer{s}[{i}]", b) for s in (1, 2, 3, 4) for i, b in enumerate(getattr(encoder, f"layer{s}"))]
    raise InvalidSpecError(f"no GradCAM target layer known for encoder {type(encoder).__name__}")


def _is_vit(net: nn.Module) -> bool:
    return hasattr(getattr(net, "encoder", None), "blocks") and hasattr(net.encoder, "patch_embed")


def _output_sizes(net: nn.Module, x: torch.Tensor, modules: Sequence[nn.Module], spatial: bool = True) -> list[tuple]:
    """Output shape of each module for one image: (h, w) when `spatial`, else the whole shape."""
    sizes: dict[int, tuple] = {}
    hooks = [m.register_forward_hook(
        lambda mod, i, o, k=k: sizes.__setitem__(k, tuple(o.shape[-2:]) if spatial else tuple(o.shape)))
             for k, m in enumerate(modules)]
    try:
        with eval_mode(net), torch.no_grad():
            net(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return [sizes[k] for k in range(len(modules))]


def vit_reshape_transform(tokens: torch.Tensor, prefix_tokens: int = 1) -> torch.Tensor:
    """ViT tokens (B, N, C) → (B, C, h, w): drop the `prefix_tokens` (cls, registers), square grid of patches."""
    patches = tokens[:, prefix_tokens:, :]
    side = math.isqrt(patches.shape[1])
    if side * side != patches.shape[1]:
        raise InvalidSpecError(f"{patches.shape[1]} patch tokens do not form a square grid")
    return patches.reshape(tokens.shape[0], side, side, tokens.shape[2]).permute(0, 3, 1, 2)


def target_layer_info(model: nn.Module, x: torch.Tensor, part: str | None = None) -> dict:
    """{"name", "module", "size" (h, w) of its activation map, "reshape" (callable or None)} for `gradcam_maps`."""
    net = _network(model, part)
    if _is_vit(net):
        prefix = getattr(net.encoder, "num_prefix_tokens", 1)
        module = net.encoder.blocks[-1].norm1
        tokens = _output_sizes(net, x, [net.encoder.patch_embed], spatial=False)[0]   # (B, N, C) or NHWC
        grid = tuple(tokens[1:3]) if len(tokens) == 4 else (math.isqrt(tokens[1]),) * 2
        return {"name": "encoder.blocks[-1].norm1", "module": module, "size": grid,
                "reshape": lambda t, p=prefix: vit_reshape_transform(t, p)}
    blocks = _blocks(net.encoder)
    sizes = _output_sizes(net, x, [b for _, b in blocks])
    pick = len(blocks) - 1
    if min(sizes[pick]) < 2:
        wide = [i for i, s in enumerate(sizes) if min(s) >= 2]
        pick = wide[-1] if wide else pick
    name, module = blocks[pick]
    return {"name": name, "module": module, "size": sizes[pick], "reshape": None}


def gradcam_maps(model: nn.Module, x: torch.Tensor, target_classes=None, part: str | None = None,
                 layer: nn.Module | None = None) -> np.ndarray:
    """GradCAM maps (B, H, W) in [0, 1] for images x (B, C, H, W) in [0, 1].

    `target_classes`: None (each image's predicted class), one int for all, or one per image (e.g. the true labels).
    `part`: for an `LDDPair`, "student" (default) or "teacher". `layer`: force a target layer (CNN layers only).
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if x.ndim != 4:
        raise InvalidSpecError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")
    net = _network(model, part)
    x = x.detach().to(model_device(net))
    if layer is None:
        info = target_layer_info(model, x, part)
        layer, reshape = info["module"], info["reshape"]
    else:
        reshape = None
    if target_classes is None:
        targets = None
    else:
        classes = torch.as_tensor(target_classes).reshape(-1).tolist()
        if len(classes) == 1:
            classes = classes * len(x)
        if len(classes) != len(x):
            raise InvalidSpecError(f"{len(classes)} target classes for {len(x)} images")
        targets = [ClassifierOutputTarget(int(c)) for c in classes]
    # pytorch-grad-cam switches to eval mode and backpropagates into the parameters: both are undone afterwards
    with preserved_state(net, grads=True), torch.enable_grad():
        with GradCAM(model=net, target_layers=[layer], reshape_transform=reshape) as cam:
            maps = cam(input_tensor=x, targets=targets)
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if maps.shape != (len(x), x.shape[-2], x.shape[-1]):
        raise AssertionError(f"GradCAM returned {maps.shape}, expected {(len(x), *x.shape[-2:])}")
    return maps


__all__ = ["gradcam_maps", "target_layer_info", "vit_reshape_transform"]
