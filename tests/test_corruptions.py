"""CIFAR-10-C corruptions: the output contract, determinism, severity ordering, and the re-implemented pieces checked
against the libraries the original generator used (scipy, Pillow, colorsys for skimage's HSV) where they exist here."""
from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tempscale import corruptions as C
from tempscale.corruptions import CATEGORIES, CORRUPTIONS, corrupt, corrupt_all
from tempscale.errors import InvalidSpecError

# Corruptions with no randomness in the original: the seed must not matter.
DETERMINISTIC = {"defocus_blur", "zoom_blur", "gaussian_blur", "brightness", "contrast", "pixelate",
                 "jpeg_compression", "saturate"}

# Severity pairs (s, s + 1) where CIFAR-10-C's own constants do not move the image further, by mean absolute
# difference, from the clean one. Each was checked against the constants; the supplementary tests below pin down the
# reason, so a bug that breaks the real ordering still fails.
NOT_MONOTONE = {
    # Within a number of swap passes σ rises (.05 → .25 → .4 with one pass, .25 → .4 with two); the distance comes
    # from the swaps, and more blur smooths them back towards the (smooth) clean image.
    # See test_glass_blur_distance_grows_with_passes.
    "glass_blur": {(1, 2), (2, 3), (4, 5)},
    # Water (severities 1–3) covers ~32 % of pixels at 3; mud (4–5) keeps only blob interiors, ~4 % of pixels at 4.
    "spatter": {(3, 4)},
    # Severities 1–2 desaturate (×.3, ×.1) and 3–5 saturate (×1.5, ×2 + .1, ×2.5 + .2): ×1.5 is a smaller change
    # than ×.3.
    "saturate": {(2, 3)},
    # The image weight falls (.9 → .85 → .75) while the frost weight barely rises (.4 → .4 → .45): the output gets
    # darker towards mid-tones rather than further away. It is monotone in how much of the clean image survives:
    # see test_frost_keeps_less_of_the_image.
    "frost": {(3, 4), (4, 5)},
    # The affine jitter shrinks with severity (8 % → 3 % of the size) while the elastic field grows; the net pixel
    # distance falls. See test_elastic_parts_follow_their_constants.
    "elastic_transform": {(1, 2), (2, 3), (3, 4), (4, 5)},
}
TIE_TOLERANCE = 1e-6  # motion blur 3 → 4 only lengthens taps whose weight is < 1e-9: a tie up to rounding


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: on a shared 2-core machine OpenMP's thread hand-offs cost more than they save."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def natural_batch(size: int = 32) -> torch.Tensor:
    """8 images: 4 sklearn digits (3 channels) and 4 smooth random colour fields, in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = torch.tensor(load_digits().images[:4], dtype=torch.float32).unsqueeze(1) / 16
    digits = F.interpolate(digits, size=size, mode="bilinear", align_corners=False).clamp(0, 1).repeat(1, 3, 1, 1)
    gen = torch.Generator().manual_seed(0)
    colours = torch.rand(4, 3, 4, 4, generator=gen)
    colours = F.interpolate(colours, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
    return torch.cat([digits, colours])


@lru_cache(maxsize=None)
def sweep(name: str) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """(clean batch, its corruptions at severities 1–5 with seed 0), computed once per name."""
    x = natural_batch()
    return x, tuple(corrupt(x, name, s, seed=0) for s in range(1, 6))


def mean_distances(name: str) -> list[float]:
    x, outs = sweep(name)
    return [(out - x).abs().mean().item() for out in outs]


def test_names_and_categories():
    assert len(CORRUPTIONS) == 19 and len(set(CORRUPTIONS)) == 19
    assert list(CATEGORIES) == ["noise", "blur", "weather", "digital"]
    assert tuple(n for names in CATEGORIES.values() for n in names) == CORRUPTIONS
    assert all(len(names) in (4, 5) for names in CATEGORIES.values())


# ------------------------------------------------------------------------------------------------ per-corruption

@pytest.mark.parametrize("name", CORRUPTIONS)
def test_output_keeps_shape_dtype_device_and_range(name):
    x, outs = sweep(name)
    for out in outs:
        assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
        assert torch.isfinite(out).all()
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_same_seed_is_bit_identical_and_global_rng_untouched(name):
    x = natural_batch()[::2]
    state = torch.get_rng_state()
    first = corrupt(x, name, 3, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, corrupt(x, name, 3, seed=7))


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_seed_changes_exactly_the_random_corruptions(name):
    x = natural_batch()[::2]
    same = torch.equal(corrupt(x, name, 3, seed=0), corrupt(x, name, 3, seed=1))
    assert same == (name in DETERMINISTIC)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_severity_5_differs_from_clean(name):
    x, outs = sweep(name)
    assert (outs[4] - x).abs().mean() > 1e-3


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_moves_further_from_clean_as_severity_rises(name):
    distances = mean_distances(name)
    skipped = NOT_MONOTONE.get(name, set())
    for s in range(1, 5):
        if (s, s + 1) not in skipped:
            assert distances[s] >= distances[s - 1] - TIE_TOLERANCE, (name, s, distances)


def test_not_monotone_exceptions_are_real():
    """Every listed exception really is one: if a change made it monotone, the list (and its reasons) must go."""
    for name, pairs in NOT_MONOTONE.items():
        distances = mean_distances(name)
        for s, t in pairs:
            assert distances[t - 1] < distances[s - 1], (name, s, t, distances)


def test_glass_blur_distance_grows_with_passes():
    # Same σ, one swap pass (severities 2, 3) vs two (4, 5): the second pass must move the image further.
    d = mean_distances("glass_blur")
    assert d[3] > d[1] and d[4] > d[2]
    assert abs(d[1] - d[0]) < 0.02 * d[0]  # σ .05 vs .25: both blurs are nearly the identity


def test_frost_keeps_less_of_the_image():
    """1 − correlation with the clean image rises with every severity (image weight / frost weight falls)."""
    x, outs = sweep("frost")

    def decorrelation(out):
        a = x.flatten(1) - x.flatten(1).mean(1, keepdim=True)
        b = out.flatten(1) - out.flatten(1).mean(1, keepdim=True)
        return (1 - (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean().item()

    values = [decorrelation(out) for out in outs]
    assert values == sorted(values) and values[0] > 0, values


def test_elastic_parts_follow_their_constants():
    """The elastic field moves pixels further with severity; the affine jitter moves them less (CIFAR-C's choice)."""
    x = natural_batch()
    displaced, warped = [], []
    for fractions in C._ELASTIC:
        alpha, sigma, jitter = (32 * f for f in fractions)
        displaced.append((C._random_displacement(x, alpha, sigma, torch.Generator().manual_seed(0)) - x).abs().mean())
        warped.append((C._random_affine(x, jitter, torch.Generator().manual_seed(0)) - x).abs().mean())
    assert displaced == sorted(displaced) and displaced[0] == 0
    assert warped == sorted(warped, reverse=True) and warped[-1] > 0


# ------------------------------------------------------------------------------------------------------ inputs

def test_unknown_name_lists_valid_names():
    with pytest.raises(InvalidSpecError, match="gaussian_noise.*saturate"):
        corrupt(natural_batch()[:1], "fisheye", 3)


@pytest.mark.parametrize("severity", [0, 6, -1, 2.5, True])
def test_severity_out_of_range(severity):
    with pytest.raises(InvalidSpecError, match="severity"):
        corrupt(natural_batch()[:1], "fog", severity)


@pytest.mark.parametrize("shape", [(2, 32, 32), (2, 2, 32, 32)])
def test_bad_batch_shape(shape):
    with pytest.raises(InvalidSpecError):
        corrupt(torch.rand(shape), "fog", 1)


def test_one_channel_input():
    x = natural_batch()[:2, :1]
    for name, out in corrupt_all(x, 5, seed=3):
        assert out.shape == x.shape and torch.isfinite(out).all() and 0 <= out.min() and out.max() <= 1, name
        assert (out - x).abs().mean() > 1e-3, name


def test_64_pixel_input():
    x = natural_batch(64)[[0, 5]]
    for name, out in corrupt_all(x, 5, seed=3):
        assert out.shape == x.shape and torch.isfinite(out).all() and 0 <= out.min() and out.max() <= 1, name
        assert (out - x).abs().mean() > 1e-3, name


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_other_float_dtypes(dtype):
    x = natural_batch()[:2].to(dtype)
    for name in ("gaussian_noise", "glass_blur", "fog", "jpeg_compression"):
        out = corrupt(x, name, 2)
        assert out.dtype == dtype and 0 <= out.min() and out.max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_contract():
    x = natural_batch().cuda()
    for name in CORRUPTIONS:
        out = corrupt(x, name, 4, seed=1)
        assert out.device == x.device and out.shape == x.shape and 0 <= out.min() and out.max() <= 1, name
        assert torch.equal(out, corrupt(x, name, 4, seed=1)), name
        if name in DETERMINISTIC and name != "jpeg_compression":  # no randomness: CPU and GPU agree to rounding
            assert torch.allclose(out.cpu(), corrupt(x.cpu(), name, 4), atol=1e-4), name


# ---------------------------------------------------- re-implementations against the original's libraries

def test_glass_swaps_equal_the_sequential_loop():
    for delta, (h, w) in [(1, (12, 12)), (2, (13, 11))]:
        gen = torch.Generator().manual_seed(delta)
        x = torch.rand(2, 3, h, w, generator=gen)
        dy = torch.randint(-delta, delta, (2, h, w), generator=gen)
        dx = torch.randint(-delta, delta, (2, h, w), generator=gen)
        expected = x.clone()
        for b in range(2):
            for r in range(h - delta, delta, -1):
                for c in range(w - delta, delta, -1):
                    r2, c2 = r + int(dy[b, r, c]), c + int(dx[b, r, c])
                    here = expected[b, :, r, c].clone()
                    expected[b, :, r, c] = expected[b, :, r2, c2]
                    expected[b, :, r2, c2] = here
        assert torch.equal(C._swap_locally(x, dy, dx, delta), expected)


def test_brightness_and_saturate_match_hsv_round_trip():
    x = torch.rand(1, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x[0, :, 0, :3] = torch.tensor([[0.5, 0.0, 1.0]]).T  # greys, including black and white
    for severity in range(1, 6):
        shift = (0.05, 0.1, 0.15, 0.2, 0.3)[severity - 1]
        scale, offset = ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2))[severity - 1]
        bright, sat = corrupt(x, "brightness", severity), corrupt(x, "saturate", severity)
        for i in range(6):
            for j in range(6):
                h, s, v = colorsys.rgb_to_hsv(*x[0, :, i, j].tolist())
                assert np.allclose(colorsys.hsv_to_rgb(h, s, min(1, v + shift)), bright[0, :, i, j], atol=1e-12)
                s2 = min(1, max(0, s * scale + offset))
                assert np.allclose(colorsys.hsv_to_rgb(h, s2, v), sat[0, :, i, j], atol=1e-12)


def test_pixelate_matches_pillow_box():
    from PIL import Image

    img = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    for severity, factor in enumerate((0.95, 0.9, 0.85, 0.75, 0.65), 1):
        small = int(32 * factor)
        expected = Image.fromarray(img, mode="F").resize((small, small), Image.BOX).resize((32, 32), Image.BOX)
        ours = corrupt(torch.from_numpy(img)[None, None], "pixelate", severity)[0, 0]
        assert np.allclose(ours.numpy(), np.clip(np.asarray(expected), 0, 1), atol=1e-6)


def test_zoom_and_gaussian_match_scipy():
    from scipy.ndimage import gaussian_filter, zoom

    img = np.random.default_rng(1).random((32, 32))
    for factor in C._ZOOM_FACTORS[4] + (1.75, 2.25):  # every zoom blur factor, and snow's
        crop = int(np.ceil(32 / factor))
        top = (32 - crop) // 2
        zoomed = zoom(img[top:top + crop, top:top + crop], factor, order=1)
        trim = (zoomed.shape[0] - 32) // 2
        ours = C._clipped_zoom(torch.from_numpy(img)[None, None], factor)[0, 0].numpy()
        assert np.allclose(ours, zoomed[trim:trim + 32, trim:trim + 32], atol=1e-12), factor
    t = torch.from_numpy(img)[None, None]
    for sigma in (0.05, 0.4, 1.0):
        assert np.allclose(C._gaussian_blur(t, sigma)[0, 0], gaussian_filter(img, sigma, mode="nearest"), atol=1e-12)
    for sigma in (6.4, 0.96):  # elastic's displacement smoothing
        expected = gaussian_filter(img, sigma, mode="reflect", truncate=3)
        assert np.allclose(C._gaussian_blur(t, sigma, "symmetric", 3.0)[0, 0], expected, atol=1e-12)


def test_distance_transform_matches_scipy():
    from scipy.ndimage import distance_transform_edt

    mask = np.random.default_rng(2).random((3, 20, 24)) < 0.03
    ours = C._distance_to(torch.from_numpy(mask)[:, None])[:, 0].numpy()
    for b in range(3):
        assert np.allclose(ours[b], distance_transform_edt(~mask[b]), atol=1e-9)
