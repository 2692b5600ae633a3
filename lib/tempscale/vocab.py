"""Closed vocabularies: one spelling for every attack, metric, corruption, dataset and architecture.

Each is a `StrEnum`, so a member *is* its string (``Attack.CW_LINF == "cw_linf"``): dict keys, table columns, cache
folders and command-line values all use the same text. `parse` turns user input into a member and fails at the
door, naming the valid values, on anything else (a typo never reaches the work).
"""
from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from .errors import InvalidSpecError

E = TypeVar("E", bound=StrEnum)


class Attack(StrEnum):
    """Named attacks with the paper's budgets (`tempscale.attacks.ATTACKS`)."""

    CLEAN = "clean"
    PGD20 = "pgd20"
    CW_LINF = "cw_linf"
    CW_L2 = "cw_l2"
    APGD_CE = "apgd_ce"
    APGD_DLR = "apgd_dlr"
    SQUARE = "square"
    AUTOATTACK = "autoattack"
    PGD20_TARGETED = "pgd20_targeted"


# Columns of the robustness tables: every attack, the "-C" mean, and the per-example worst case.
Metric = StrEnum("Metric", {**{attack.name: attack.value for attack in Attack},
                            "CORRUPTIONS": "corruptions", "WORST_CASE": "worst_case"})


class Corruption(StrEnum):
    """The 19 CIFAR-10-C corruptions, in the release's order."""

    GAUSSIAN_NOISE = "gaussian_noise"
    SHOT_NOISE = "shot_noise"
    IMPULSE_NOISE = "impulse_noise"
    SPECKLE_NOISE = "speckle_noise"
    DEFOCUS_BLUR = "defocus_blur"
    GLASS_BLUR = "glass_blur"
    MOTION_BLUR = "motion_blur"
    ZOOM_BLUR = "zoom_blur"
    GAUSSIAN_BLUR = "gaussian_blur"
    SNOW = "snow"
    FROST = "frost"
    FOG = "fog"
    BRIGHTNESS = "brightness"
    SPATTER = "spatter"
    CONTRAST = "contrast"
    ELASTIC_TRANSFORM = "elastic_transform"
    PIXELATE = "pixelate"
    JPEG_COMPRESSION = "jpeg_compression"
    SATURATE = "saturate"


class Dataset(StrEnum):
    """Built-in datasets; any image folder is ``imagefolder:<path>`` (see `dataset_name`)."""

    DIGITS = "digits"
    CIFAR10 = "cifar10"
    CIFAR100 = "cifar100"
    TINYIMAGENET = "tinyimagenet"


IMAGEFOLDER_PREFIX = "imagefolder:"


class Arch(StrEnum):
    """Registered architectures (`tempscale.models.ARCHITECTURES`)."""

    RESNET8 = "resnet8"
    RESNET20 = "resnet20"
    RESNET50 = "resnet50"
    WRN28_10 = "wrn28_10"
    VIT_SMALL = "vit_small_patch16_224"
    VIT_BASE8 = "vit_base_patch8_224"


def parse(kind: type[E], value: object, what: str | None = None) -> E:
    """`value` as a member of `kind`, or an InvalidSpecError that lists the valid values."""
    try:
        return kind(value)
    except ValueError:
        valid = ", ".join(member.value for member in kind)
        raise InvalidSpecError(f"unknown {what or kind.__name__.lower()} {value!r}; choose one of {valid}") from None


def parse_all(kind: type[E], values, what: str | None = None) -> list[E]:
    """Every value parsed (all checked before any is used)."""
    return [parse(kind, value, what) for value in values]


def dataset_name(value: str) -> str:
    """A built-in dataset or ``imagefolder:<path>``; anything else fails with the valid values."""
    if isinstance(value, str) and value.startswith(IMAGEFOLDER_PREFIX) and len(value) > len(IMAGEFOLDER_PREFIX):
        return value
    try:
        return Dataset(value).value
    except ValueError:
        valid = ", ".join([*Dataset, f"{IMAGEFOLDER_PREFIX}<path>"])
        raise InvalidSpecError(f"unknown dataset {value!r}; choose one of {valid}") from None
