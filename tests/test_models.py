"""Every registered architecture exposes f(x), the prototypes W and the logits W f(x) + b."""
import pytest
import torch

from tempscale.errors import DataNotFoundError, InvalidSpecError
from tempscale.models import ARCHITECTURES, build_model, count_parameters, resolve_init, weights_for_init

SHAPES = {  # arch: (input size used here, feature dim)
    "resnet8": (16, 64), "resnet20": (32, 64), "resnet50": (32, 2048), "wrn28_10": (32, 640),
    "vit_small_patch16_224": (32, 384), "vit_base_patch8_224": (32, 768),
}


def test_every_architecture_is_covered_here():
    assert set(SHAPES) == set(ARCHITECTURES)


@pytest.mark.parametrize("arch", sorted(SHAPES))
def test_features_prototypes_logits(arch):
    torch.manual_seed(0)
    size, dim = SHAPES[arch]
    # ViT-B/8 at its own 224 (784 tokens) is ≈ 50 GFLOPs a forward pass: the same model at 32×32 here
    model = build_model(arch, num_classes=7, vit_img_size=32 if arch == "vit_base_patch8_224" else None).eval()
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        f = model.features(x)
        logits = model(x)
    assert f.shape == (2, dim)
    assert model.prototypes.shape == (7, dim)
    assert logits.shape == (2, 7)
    torch.testing.assert_close(logits, f @ model.prototypes.T + model.head.bias, rtol=1e-4, atol=1e-4)


def test_vit_resizes_inside_the_model():
    model = build_model("vit_small_patch16_224", num_classes=3).eval()
    assert model.input_size == 224
    with torch.no_grad():   # CIFAR-sized input, resized to 224 internally, so ε stays in CIFAR pixels
        assert model(torch.rand(1, 3, 32, 32)).shape == (1, 3)


def test_small_resnet_sizes():
    assert 70_000 < count_parameters(build_model("resnet8", 10)) < 90_000
    assert 260_000 < count_parameters(build_model("resnet20", 10)) < 280_000


def test_unknown_architecture():
    with pytest.raises(InvalidSpecError, match="resnet50"):
        build_model("resnet1000", 10)


def test_vit_pretrained_from_local_file(tmp_path, monkeypatch):
    import timm

    reference = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0)
    path = tmp_path / "vit_small.pth"
    torch.save(reference.state_dict(), path)
    monkeypatch.setenv("TEMPSCALE_VIT_WEIGHTS", str(path))
    init = resolve_init("vit_small_patch16_224", "pretrained")
    assert init.startswith("file:")
    model = build_model("vit_small_patch16_224", 10, weights=weights_for_init(init))
    torch.testing.assert_close(model.encoder.pos_embed, reference.pos_embed)


def test_vit_without_weights_says_so_and_records_scratch(monkeypatch):
    monkeypatch.delenv("TEMPSCALE_VIT_WEIGHTS", raising=False)
    with pytest.warns(UserWarning, match="FROM SCRATCH"):
        assert resolve_init("vit_small_patch16_224", "pretrained") == "scratch"


def test_vit_weights_path_that_does_not_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("TEMPSCALE_VIT_WEIGHTS", str(tmp_path / "nope.pth"))
    with pytest.raises(DataNotFoundError, match="nope.pth"):
        resolve_init("vit_small_patch16_224", "pretrained")


def test_each_vit_reads_its_own_weights_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("TEMPSCALE_VIT_WEIGHTS", raising=False)
    monkeypatch.setenv("TEMPSCALE_VIT_B8_WEIGHTS", str(tmp_path / "nope.pth"))
    with pytest.raises(DataNotFoundError, match="TEMPSCALE_VIT_B8_WEIGHTS"):
        resolve_init("vit_base_patch8_224", "pretrained")
    with pytest.warns(UserWarning, match="TEMPSCALE_VIT_WEIGHTS"):   # ViT-S is not given ViT-B/8's file
        assert resolve_init("vit_small_patch16_224", "pretrained") == "scratch"
