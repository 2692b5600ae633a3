"""GradCAM maps: image-sized, finite, per-architecture target layers, different models give different maps."""
import numpy as np
import pytest
import torch

import tempscale.methods as M
from tempscale.errors import InvalidSpecError
from tempscale.gradcam import gradcam_maps, target_layer_info, vit_reshape_transform
from tempscale.models import build_model

MEAN = STD = (0.5, 0.5, 0.5)


def _images(n=4, size=16, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _model(seed=0, arch="resnet8", **kw):
    torch.manual_seed(seed)
    return build_model(arch, 10, MEAN, STD, **kw).eval()


@pytest.mark.parametrize("size", [16, 32])
def test_maps_have_the_image_size_and_are_finite(size):
    x = _images(size=size)
    maps = gradcam_maps(_model(), x, target_classes=[0, 1, 2, 3])
    assert maps.shape == (4, size, size)
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1 + 1e-6
    assert maps.max() > 0, "an all-zero map localises nothing"


def test_different_models_give_different_maps():
    x = _images()
    a = gradcam_maps(_model(0), x, target_classes=3)
    b = gradcam_maps(_model(1), x, target_classes=3)
    assert np.abs(a - b).mean() > 1e-3


def test_target_classes_matter_and_none_means_predicted():
    model, x = _model(), _images()
    with torch.no_grad():
        pred = model(x).argmax(1)
    assert np.allclose(gradcam_maps(model, x), gradcam_maps(model, x, pred))
    other = (pred + 1) % 10
    assert not np.allclose(gradcam_maps(model, x, pred), gradcam_maps(model, x, other))
    with pytest.raises(InvalidSpecError):
        gradcam_maps(model, x, [0, 1])


def test_model_state_is_left_alone():
    model, x = _model(), _images()
    model.train()
    model.head.weight.grad = torch.ones_like(model.head.weight)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gradcam_maps(model, x, 0)
    assert all(m.training for m in model.modules())
    assert torch.equal(model.head.weight.grad, torch.ones_like(model.head.weight))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items() if "running" not in k)


def test_ldd_pair_student_and_teacher_use_their_own_layers():
    torch.manual_seed(0)
    teacher = M.build_teacher("resnet8", 10, MEAN, STD, "large_stride", 4)
    pair = M.LDDPair(teacher, build_model("resnet8", 10, MEAN, STD), "large_stride", 4).eval()
    x = _images()
    s_info, t_info = target_layer_info(pair, x, "student"), target_layer_info(pair, x, "teacher")
    assert s_info["module"] is pair.student.encoder.layers[-1] and s_info["size"] == (4, 4)
    # teacher: 16×16 → 4×4 after the stride-4 stem, the last block is 1×1, so the last block with ≥ 2×2 is used
    assert t_info["module"] is pair.teacher.encoder.layers[-2] and t_info["size"] == (2, 2)
    s, t = gradcam_maps(pair, x, 1, part="student"), gradcam_maps(pair, x, 1, part="teacher")
    assert s.shape == t.shape == (4, 16, 16) and np.isfinite(s).all() and np.isfinite(t).all()
    assert not np.allclose(s, t)
    with pytest.raises(InvalidSpecError):
        gradcam_maps(_model(), x, part="teacher")


def test_vit_reshape_drops_the_cls_token_and_keeps_the_grid_order():
    c = 3
    grid = torch.arange(4 * c, dtype=torch.float32).reshape(1, 4, c)        # patch tokens in row-major order
    tokens = torch.cat([torch.full((1, 1, c), -1.0), grid], dim=1)         # cls first
    out = vit_reshape_transform(tokens)
    assert out.shape == (1, c, 2, 2) and (out >= 0).all()
    assert torch.equal(out[0, :, 0, 1], grid[0, 1]) and torch.equal(out[0, :, 1, 0], grid[0, 2])


def test_vit_maps():
    model, x = _model(arch="vit_small_patch16_224", vit_img_size=64), _images(2, 32)
    info = target_layer_info(model, x)
    assert info["module"] is model.encoder.blocks[-1].norm1 and info["size"] == (4, 4)
    maps = gradcam_maps(model, x, 5)
    assert maps.shape == (2, 32, 32) and np.isfinite(maps).all()


def test_timm_resnet50_layer():
    model = _model(arch="resnet50")
    assert target_layer_info(model, _images(1, 32))["module"] is model.encoder.layer4[-1]


def test_standard_teacher_and_student_give_three_different_maps():
    """Fig. 4.2's three rows: a standard network, an LDD teacher and its student explain the same images differently."""
    torch.manual_seed(0)
    pair = M.LDDPair(M.build_teacher("resnet8", 10, MEAN, STD, "large_stride", 4),
                     build_model("resnet8", 10, MEAN, STD), "large_stride", 4).eval()
    x, y = _images(), torch.tensor([0, 1, 2, 3])
    maps = {"standard": gradcam_maps(_model(1), x, y), "teacher": gradcam_maps(pair, x, y, part="teacher"),
            "student": gradcam_maps(pair, x, y, part="student")}
    for m in maps.values():
        assert m.shape == (4, 16, 16) and np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1 + 1e-6
    names = list(maps)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not np.allclose(maps[a], maps[b]), (a, b)


def test_gradcam_restores_requires_grad_and_modes_of_a_pair_part():
    torch.manual_seed(0)
    pair = M.LDDPair(M.build_teacher("resnet8", 10, MEAN, STD, "large_stride", 4),
                     build_model("resnet8", 10, MEAN, STD), "large_stride", 4).train()
    pair.teacher.head.weight.requires_grad_(False)
    gradcam_maps(pair, _images(), 0, part="teacher")
    assert all(m.training for m in pair.modules())
    assert not pair.teacher.head.weight.requires_grad and pair.teacher.head.bias.requires_grad
    assert all(p.grad is None for p in pair.parameters())
