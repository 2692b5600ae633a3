"""Evaluation: numbers agree with the attacks; the cache is reused, resumed and distrusted exactly when it should be."""
from __future__ import annotations

import json

import pytest
import torch

from tempscale import attacks
from tempscale.attacks import attack_spec, correct_under
from tempscale.errors import InvalidSpecError
from tempscale.robustness import CacheWarning, evaluate, evaluate_corruptions, evaluate_suite

N, BATCH = 96, 24          # 4 batches
FAST_PGD = attack_spec("pgd20", steps=5)
REAL_CORRECT_UNDER = attacks.correct_under


@pytest.fixture(scope="module")
def digits(digits_standard):
    model, x, y = digits_standard
    return model, x[:N], y[:N]


class Interrupt(Exception):
    pass


def count_attacks(monkeypatch, fail_after: int | None = None) -> list[int]:
    """Wrap attacks.correct_under to count calls (one per computed batch), optionally failing after `fail_after`."""
    calls: list[int] = []

    def counted(*args, **kwargs):
        if fail_after is not None and len(calls) >= fail_after:
            raise Interrupt("simulated crash")
        calls.append(1)
        return REAL_CORRECT_UNDER(*args, **kwargs)

    monkeypatch.setattr(attacks, "correct_under", counted)
    return calls


def forbid_attacks(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("attacked although the result was cached")

    monkeypatch.setattr(attacks, "correct_under", refuse)


def batch_files(tmp_path):
    return sorted(tmp_path.rglob("batch-*.pt"))


# --- numbers ----------------------------------------------------------------------------------------------------------

def test_evaluate_agrees_with_correct_under(digits):
    model, x, y = digits
    clean = evaluate(model, x, y, "clean")
    assert clean.accuracy == correct_under(model, x, y, "clean").float().mean().item()
    one_batch = evaluate(model, x, y, FAST_PGD, batch_size=len(x))  # first batch uses spec.seed itself
    assert torch.equal(one_batch.correct, correct_under(model, x, y, FAST_PGD))
    assert one_batch.n == N and one_batch.name == "pgd20" and one_batch.spec["steps"] == 5
    assert one_batch.backend == "tempscale.attacks.pgd" and one_batch.elapsed_s > 0
    assert one_batch.accuracy < clean.accuracy


def test_batched_evaluation_is_deterministic(digits):
    model, x, y = digits
    first = evaluate(model, x, y, FAST_PGD, batch_size=BATCH)
    assert torch.equal(first.correct, evaluate(model, x, y, FAST_PGD, batch_size=BATCH).correct)


# --- cache --------------------------------------------------------------------------------------------------------

def test_second_call_loads_without_attacking(digits, tmp_path, monkeypatch):
    model, x, y = digits
    first = evaluate(model, x, y, FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
    assert not first.cached
    (folder,) = [p.parent for p in tmp_path.rglob("result.json")]
    assert folder.parent.name == f"pgd20-{FAST_PGD.key()}"
    assert json.loads((folder / "result.json").read_text())["n_correct"] == int(first.correct.sum())
    assert not batch_files(tmp_path)  # folded into the final files
    forbid_attacks(monkeypatch)
    second = evaluate(model, x, y, FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
    assert second.cached and torch.equal(second.correct, first.correct)
    assert second.accuracy == first.accuracy and second.elapsed_s == pytest.approx(first.elapsed_s)


def test_interrupted_run_resumes_at_the_first_missing_batch(digits, tmp_path, monkeypatch):
    model, x, y = digits
    reference = evaluate(model, x, y, FAST_PGD, cache_dir=tmp_path / "ref", batch_size=BATCH)
    count_attacks(monkeypatch, fail_after=2)
    with pytest.raises(Interrupt):
        evaluate(model, x, y, FAST_PGD, cache_dir=tmp_path / "run", batch_size=BATCH)
    assert len(batch_files(tmp_path / "run")) == 2
    calls = count_attacks(monkeypatch)
    resumed = evaluate(model, x, y, FAST_PGD, cache_dir=tmp_path / "run", batch_size=BATCH)
    assert len(calls) == N // BATCH - 2
    assert torch.equal(resumed.correct, reference.correct)


def test_corrupt_batch_file_is_detected_and_recomputed(digits, tmp_path, monkeypatch):
    model, x, y = digits
    reference = evaluate(model, x, y, FAST_PGD, batch_size=BATCH)
    count_attacks(monkeypatch, fail_after=2)
    with pytest.raises(Interrupt):
        evaluate(model, x, y, FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
    damaged = batch_files(tmp_path)[0]
    damaged.write_bytes(damaged.read_bytes()[:20])  # truncated
    calls = count_attacks(monkeypatch)
    with pytest.warns(CacheWarning, match="batch-00000"):
        result = evaluate(model, x, y, FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
    assert len(calls) == N // BATCH - 1
    assert torch.equal(result.correct, reference.correct)


def test_batch_file_from_another_layout_is_not_trusted(digits, tmp_path, monkeypatch):
    model, x, y = digits
    count_attacks(monkeypatch, fail_after=1)
    with pytest.raises(Interrupt):
        evaluate(model, x, y, FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
    (path,) = batch_files(tmp_path)
    torch.save({"correct": torch.ones(BATCH + 1, dtype=torch.bool), "start": 0, "stop": BATCH, "elapsed_s": 0.0},
               path)  # readable but the wrong length
    count_attacks(monkeypatch)
    with pytest.warns(CacheWarning):
        result = evaluate(model, x, y, FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
    assert result.n == N


def test_a_flipped_result_in_a_readable_batch_file_is_caught_by_its_checksum(digits, tmp_path, monkeypatch):
    """A cached batch that still unpickles and has the right shape, with one example's result flipped, is refused."""
    model, x, y = digits
    reference = evaluate(model, x, y, FAST_PGD, batch_size=BATCH)
    count_attacks(monkeypatch, fail_after=1)
    with pytest.raises(Interrupt):
        evaluate(model, x, y, FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
    (path,) = batch_files(tmp_path)
    record = torch.load(path, weights_only=True)
    record["correct"][0] = ~record["correct"][0]
    torch.save(record, path)
    count_attacks(monkeypatch)
    with pytest.warns(CacheWarning, match="batch-00000"):
        result = evaluate(model, x, y, FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
    assert torch.equal(result.correct, reference.correct)


def test_corrupt_final_result_is_recomputed(digits, tmp_path, monkeypatch):
    model, x, y = digits
    first = evaluate(model, x, y, FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
    (correct_file,) = tmp_path.rglob("correct.pt")
    correct_file.write_bytes(b"not a tensor file")
    calls = count_attacks(monkeypatch)
    with pytest.warns(CacheWarning):
        again = evaluate(model, x, y, FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
    assert len(calls) == N // BATCH and not again.cached
    assert torch.equal(again.correct, first.correct)


def test_different_eval_set_or_model_does_not_hit_the_cache(digits, tmp_path, monkeypatch):
    model, x, y = digits
    evaluate(model, x[:48], y[:48], FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
    calls = count_attacks(monkeypatch)
    other_images = evaluate(model, x[48:], y[48:], FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
    assert len(calls) == 2 and not other_images.cached
    relabelled = evaluate(model, x[:48], (y[:48] + 1) % 10, FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
    assert len(calls) == 4 and not relabelled.cached
    other_spec = evaluate(model, x[:48], y[:48], attack_spec("pgd20", steps=6), cache_dir=tmp_path, batch_size=BATCH)
    assert len(calls) == 6 and not other_spec.cached
    with torch.no_grad():
        model[-1].bias.add_(1e-3)  # a "retrained" model
    try:
        retrained = evaluate(model, x[:48], y[:48], FAST_PGD, cache_dir=tmp_path, batch_size=BATCH)
        assert len(calls) == 8 and not retrained.cached
    finally:
        with torch.no_grad():
            model[-1].bias.sub_(1e-3)


# --- corruptions ------------------------------------------------------------------------------------------------------

def fake_corruption_source(x, y):
    """Deterministic stand-in for official -C arrays: 'dark' scales images down, 'noisy' adds fixed noise."""
    def source(name: str, severity: int):
        if name == "dark":
            return x * (1 - 0.15 * severity), y
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(severity)) * 0.1 * severity
        return (x + noise).clamp(0, 1), y
    source.description = "test arrays"
    return source


def test_evaluate_corruptions_with_a_supplied_source(digits, tmp_path, monkeypatch):
    model, x, y = digits
    source = fake_corruption_source(x, y)
    result = evaluate_corruptions(model, x, y, severity=3, names=["dark", "noisy"], source=source,
                                  cache_dir=tmp_path, batch_size=BATCH)
    for name in ("dark", "noisy"):
        images, labels = source(name, 3)
        assert result.per_corruption[name] == correct_under(model, images, labels, "clean").float().mean().item()
    assert result.mean_accuracy == pytest.approx(sum(result.per_corruption.values()) / 2)
    assert result.source == "supplied (test arrays)" and result.n == {"dark": N, "noisy": N}
    forbid_attacks(monkeypatch)
    again = evaluate_corruptions(model, x, y, severity=3, names=["dark", "noisy"], source=source,
                                 cache_dir=tmp_path, batch_size=BATCH)
    assert again.per_corruption == result.per_corruption
    with pytest.raises(AssertionError, match="cached"):  # another severity is another result
        evaluate_corruptions(model, x, y, severity=4, names=["dark"], source=source, cache_dir=tmp_path)


def test_evaluate_corruptions_generated(digits):
    corruptions = pytest.importorskip("tempscale.corruptions")
    model, x, y = digits
    names = list(corruptions.CORRUPTIONS[:2])
    result = evaluate_corruptions(model, x[:32], y[:32], severity=3, names=names, seed=0)
    assert set(result.per_corruption) == set(names)
    assert result.source == "generated (tempscale.corruptions, seed 0)"
    assert all(0 <= acc <= 1 for acc in result.per_corruption.values())
    with pytest.raises(InvalidSpecError, match="unknown corruption"):
        evaluate_corruptions(model, x[:8], y[:8], names=["not-a-corruption"])


# --- suites -----------------------------------------------------------------------------------------------------------

def test_suite_reports_each_attack_and_the_per_example_worst_case(digits, tmp_path):
    model, x, y = digits
    overrides = {"pgd20": {"steps": 5}, "cw_linf": {"steps": 5}, "square": {"n_queries": 20},
                 "cw_l2": {"steps": 10, "c": 1.0}, "corruptions": {"names": ["dark"],
                                                                      "source": fake_corruption_source(x, y)}}
    names = ["clean", "pgd20", "cw_linf", "square", "cw_l2", "corruptions"]
    report = evaluate_suite(model, x, y, names, cache_dir=tmp_path, overrides=overrides, batch_size=BATCH)
    assert set(report) == set(names) | {"worst_case"}
    assert report["pgd20"]["spec"]["steps"] == 5 and report["pgd20"]["n"] == N
    worst = report["worst_case"]
    assert worst["attacks"] == ["pgd20", "cw_linf", "square"] and worst["excluded"] == ["cw_l2"]
    masks = {name: evaluate(model, x, y, attack_spec(name, **overrides[name]), cache_dir=tmp_path,
                            batch_size=BATCH).correct for name in worst["attacks"]}
    expected = torch.stack(list(masks.values())).all(0).float().mean().item()
    assert worst["accuracy"] == expected <= min(report[name]["accuracy"] for name in worst["attacks"])
    assert report["corruptions"]["per_corruption"].keys() == {"dark"}
    json.dumps(report)  # what the CLI prints with --json


def test_suite_rejects_unknown_names_before_running_anything(digits, monkeypatch):
    model, x, y = digits
    forbid_attacks(monkeypatch)
    with pytest.raises(InvalidSpecError, match="pgd-20"):
        evaluate_suite(model, x, y, ["clean", "pgd-20"])
    with pytest.raises(InvalidSpecError, match="not in the suite"):
        evaluate_suite(model, x, y, ["clean"], overrides={"pgd20": {"steps": 1}})
