"""Notebook 09: GradCAM maps of a standard network, the LDD teacher and its student (thesis Fig. 4.2).

"standard" is the vanilla teacher-student pair's teacher (a plain network trained with cross-entropy for the same
epochs: the thesis' Baseline); "LDD teacher" / "LDD student" are the main pair (large-stride stem, the profile's
``ldd.ratio``). All are notebook 08's runs, reused (trained here if missing). Maps are for each image's TRUE class.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from ..data import first_n, load_dataset
from ..gradcam import gradcam_maps, target_layer_info
from ..inference import predict
from ..profiles import Profile
from ..runs import Run, get_or_train
from .ldd import ldd_spec

ON_OBJECT_INTENSITY = 0.25      # a pixel of the digit: grey intensity above this


@dataclass
class GradcamComparison:
    """The same images explained by each model: maps (B, H, W) in [0, 1], predictions and target layers."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    maps: dict[str, np.ndarray]
    predictions: dict[str, torch.Tensor]
    layers: dict[str, str]
    runs: dict[str, Run]

    def describe(self) -> str:
        lines = [f"standard: {self.runs['standard'].dir.name} | LDD: {self.runs['LDD'].dir.name}"]
        for label, layer in self.layers.items():
            correct = int((self.predictions[label] == self.labels).sum())
            lines.append(f"{label:>12}: target layer {layer}, correct on {correct}/{len(self.labels)} of these")
        return "\n".join(lines)


def first_per_class(bundle_test, n_classes: int, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `per_class` test images of each class, class by class."""
    x, y = first_n(bundle_test, None)
    idx = torch.cat([(y == c).nonzero().squeeze(1)[:per_class] for c in range(n_classes)])
    return x[idx], y[idx]


def compare_gradcam(profile: Profile, per_class: int = 1) -> GradcamComparison:
    """Train (or reuse) the vanilla and the main LDD pair and compute every model's maps on the same images."""
    vanilla = get_or_train(ldd_spec(profile, reduction="none", ratio=1))
    main = get_or_train(ldd_spec(profile, reduction="large_stride", ratio=profile.ldd.ratio))
    pair_v, pair = vanilla.load_model(), main.load_model()
    models: dict[str, tuple[nn.Module, str]] = {"standard": (pair_v, "teacher"), "LDD teacher": (pair, "teacher"),
                                                "LDD student": (pair, "student")}
    bundle = load_dataset(main.spec.dataset, main.spec.image_size)
    x, y = first_per_class(bundle.test, len(bundle.class_names), per_class)
    maps, predictions, layers = {}, {}, {}
    for label, (model, part) in models.items():
        info = target_layer_info(model, x, part)
        layers[label] = f"{part}.{info['name']} ({info['size'][0]}×{info['size'][1]})"
        maps[label] = gradcam_maps(model, x, target_classes=y, part=part)
        predictions[label] = predict(getattr(model, part), x, batch_size=None)
    return GradcamComparison(x, y, list(bundle.class_names), maps, predictions, layers,
                             {"standard": vanilla, "LDD": main})


def mean_difference_to(maps: dict[str, np.ndarray], reference: str = "LDD student") -> dict[str, float]:
    """Mean |difference| of each model's maps to the reference model's (0: the same maps)."""
    return {k: round(float(np.abs(m - maps[reference]).mean()), 3) for k, m in maps.items()}


def heat_statistics(comparison: GradcamComparison) -> pd.DataFrame:
    """Per model, averaged over the images: the share of the map's heat on the digit's strokes (grey intensity
    above `ON_OBJECT_INTENSITY`) and the share of pixels above half the map's maximum (the heat's area), in %."""
    gray = comparison.images.mean(1).numpy()
    on_object = gray > ON_OBJECT_INTENSITY
    rows = {}
    for label, m in comparison.maps.items():
        share = (m * on_object).sum((1, 2)) / np.maximum(m.sum((1, 2)), 1e-12)
        area = (m > 0.5 * m.max((1, 2), keepdims=True)).mean((1, 2))
        rows[label] = {"on_object_share": 100 * share.mean(), "area_above_half_max": 100 * area.mean()}
    frame = pd.DataFrame(rows).T
    frame.index.name = "model"
    frame.attrs["object_share_of_pixels"] = 100 * on_object.mean()
    return frame


__all__ = ["GradcamComparison", "compare_gradcam", "first_per_class", "mean_difference_to", "heat_statistics"]
