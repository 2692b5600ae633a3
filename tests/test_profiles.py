"""The hyperparameter tree: one typed, commented place per profile; overrides in one call; bad names fail early."""
import dataclasses

import pytest

from tempscale.errors import InvalidSpecError
from tempscale.profiles import PROFILES, SECTIONS, describe, get_profile


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_value_has_a_comment_and_is_printed(name):
    profile = PROFILES[name]
    lines = list(describe(profile))
    for section in SECTIONS:
        for field in dataclasses.fields(getattr(profile, section)):
            assert field.metadata.get("doc"), f"{section}.{field.name} has no comment"
            assert any(line.strip().startswith(f"{field.name} = ") for line in lines)


def test_sections_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROFILES["quick"].ldd.epochs = 3


def test_one_call_overrides_top_level_and_sections_and_ignores_none():
    p = get_profile("quick", taus=[1, 50], n_eval=None, ldd={"epochs": 2, "ratio": None}, tsne={"n": 10})
    assert p.taus == (1, 50) and p.n_eval == PROFILES["quick"].n_eval
    assert p.ldd.epochs == 2 and p.ldd.ratio == PROFILES["quick"].ldd.ratio and p.tsne.n == 10
    assert PROFILES["quick"].ldd.epochs == 3, "the registered profile is never changed"


@pytest.mark.parametrize("overrides, words", [
    ({"tau": 1}, "unknown profile setting"),
    ({"ldd": {"epoch": 2}}, "settable"),
    ({"audit": {"steps": 1}}, "quick.audit"),
])
def test_unknown_settings_fail_with_the_valid_names(overrides, words):
    with pytest.raises(InvalidSpecError, match=words):
        get_profile("quick", **overrides)


def test_unknown_profile_names_the_choices():
    with pytest.raises(InvalidSpecError, match="smoke, quick, paper"):
        get_profile("nope")


def test_quick_spec_is_the_documented_recipe():
    """Pinned: a change here retrains every quick run (and must be a deliberate, separate commit)."""
    spec = PROFILES["quick"].spec(50.0)
    assert (spec.optimizer, spec.lr, spec.weight_decay, spec.batch_size, spec.epochs, spec.image_size,
            spec.augment, spec.schedule) == ("adam", 3e-3, 0.0, 64, 40, 16, "crop", "cosine")
    assert spec.key() == "a7626815868c"


def test_the_train_section_changes_only_what_it_sets():
    paper = PROFILES["paper"].spec(1.0)
    assert (paper.optimizer, paper.lr, paper.epochs, paper.batch_size) == ("sgd", 0.1, 200, 128)
    vit = PROFILES["paper"].spec(1.0, arch="vit_small_patch16_224")
    assert (vit.optimizer, vit.lr, vit.epochs) == ("adam", 1e-4, 30)


def test_changes_for_one_tau_only():
    profile = get_profile("cifar-cpu")
    assert profile.spec(0.1).lr == 3e-3                      # τ = 0.1 converges only at the smaller step
    assert {profile.spec(t).lr for t in profile.taus if t != 0.1} == {3e-2}
    assert profile.spec(0.1, lr=0.1).lr == 0.1               # an explicit override still wins
    assert get_profile("quick").tau_train == {}
