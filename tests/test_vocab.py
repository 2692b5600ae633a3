"""Closed vocabularies: one spelling each, matching the registries, and a typo fails at the door."""
import pytest

from tempscale import attacks, corruptions, data, models
from tempscale.errors import InvalidSpecError
from tempscale.vocab import Arch, Attack, Corruption, Dataset, Metric, dataset_name, parse


def test_enums_match_the_registries():
    assert list(Attack) == list(attacks.ATTACKS)
    assert list(Arch) == list(models.ARCHITECTURES)
    assert list(Corruption) == list(corruptions.CORRUPTIONS)
    assert set(Dataset) == set(data.NUM_CLASSES)
    assert set(Attack) < set(Metric) and {"corruptions", "worst_case"} < set(Metric)


def test_one_spelling_everywhere():
    for vocabulary in (Attack, Metric, Corruption, Dataset, Arch):
        assert all("-" not in member for member in vocabulary), vocabulary


@pytest.mark.parametrize("kind, value", [(Attack, "cw-linf"), (Attack, "PGD20"), (Arch, "resnet18"),
                                         (Corruption, "fog ")])
def test_a_typo_fails_with_the_valid_values(kind, value):
    with pytest.raises(InvalidSpecError, match=", ".join(m.value for m in kind)):
        parse(kind, value)


def test_datasets_allow_image_folders_only_with_a_path():
    assert dataset_name("imagefolder:/data/x") == "imagefolder:/data/x"
    assert dataset_name("cifar10") == "cifar10"
    for bad in ("imagefolder:", "mnist"):
        with pytest.raises(InvalidSpecError, match="imagefolder:<path>"):
            dataset_name(bad)
