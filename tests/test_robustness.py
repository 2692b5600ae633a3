"""Evaluation: numbers agree with the attacks; the cache is reused, resumed and distrusted exactly when it should be."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn as nn

from tempscale import attacks, corruptions, robustness
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
    assert set(report) == set(names) | {"worst_case", "worst_case[L2 0.5]"}
    assert report["pgd20"]["spec"]["steps"] == 5 and report["pgd20"]["n"] == N
    worst = report["worst_case"]
    assert worst["attacks"] == ["pgd20", "cw_linf", "square"] and worst["excluded"] == ["cw_l2"]
    assert worst["threat_model"] == "Linf eps=8/255"
    assert report["worst_case[L2 0.5]"]["attacks"] == ["cw_l2"]
    assert report["worst_case[L2 0.5]"]["accuracy"] == report["cw_l2"]["accuracy"]
    assert report["cw_l2"]["radius"] == 0.5 and report["cw_l2"]["median_l2"] > 0
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


def test_worst_case_is_per_threat_model_never_the_l2_group(digits):
    """`--attacks cw_l2,pgd20`: two groups of one attack each; the old code took the larger group, i.e. the first,
    and reported a C&W-L2-only "worst case"."""
    model, x, y = digits
    overrides = {"cw_l2": {"steps": 5}, "pgd20": {"steps": 5}}
    report = evaluate_suite(model, x[:32], y[:32], ["cw_l2", "pgd20"], overrides=overrides)
    assert report["worst_case"]["attacks"] == ["pgd20"]
    assert report["worst_case"]["accuracy"] == report["pgd20"]["accuracy"]
    assert report["worst_case[L2 0.5]"]["attacks"] == ["cw_l2"]
    # another L∞ radius is its own group; the main one follows PGD-20's ε (or `main_eps`)
    wide = evaluate_suite(model, x[:32], y[:32], ["pgd20", "cw_linf"],
                          overrides={"pgd20": {"steps": 5}, "cw_linf": {"steps": 5, "eps": 4 / 255}})
    assert wide["worst_case"]["attacks"] == ["pgd20"] and wide["worst_case[Linf 4/255]"]["attacks"] == ["cw_linf"]
    only_l2 = evaluate_suite(model, x[:32], y[:32], ["cw_l2"], overrides={"cw_l2": overrides["cw_l2"]})
    assert "worst_case" not in only_l2 and "worst_case[L2 0.5]" in only_l2


def test_cw_l2_distances_are_cached_beside_the_correctness(digits, tmp_path, monkeypatch):
    model, x, y = digits
    spec = attack_spec("cw_l2", steps=5, binary_steps=2, c=1.0)
    first = evaluate(model, x, y, spec, cache_dir=tmp_path, batch_size=BATCH)
    correct, distance = correct_under(model, x[:BATCH], y[:BATCH], spec, with_distance=True)
    assert torch.equal(first.correct[:BATCH], correct) and torch.equal(first.distances[:BATCH], distance)
    assert first.distances.shape == (N,) and torch.equal(first.correct, ~(first.distances <= 0.5))
    middle = first.distances.sort().values[N // 2 - 1:N // 2 + 1]
    assert first.to_dict()["median_l2"] == first.median_l2 == float(middle.mean())
    assert len(list(tmp_path.rglob("distances.pt"))) == 1
    assert evaluate(model, x[:4], y[:4], "clean").distances is None
    forbid_attacks(monkeypatch)
    again = evaluate(model, x, y, spec, cache_dir=tmp_path, batch_size=BATCH)
    assert again.cached and torch.equal(again.distances, first.distances)


def test_median_l2_counts_failures_as_infinite():
    result = robustness.EvalResult("cw_l2", attack_spec("cw_l2").to_dict(), 0.5, 4, torch.tensor([1, 1, 0, 0]).bool(),
                                   0.0, "", distances=torch.tensor([0.1, 0.2, math.inf, math.inf]))
    assert result.median_l2 == math.inf             # half not fooled: the median distance is unbounded
    assert robustness.EvalResult("cw_l2", {}, 0.0, 3, torch.zeros(3).bool(), 0.0, "",
                                 distances=torch.tensor([0.1, math.inf, math.inf])).median_l2 == math.inf


# --- the cache key covers everything a number depends on -------------------------------------------------------------

def recomputes(model, x, y, spec, cache_dir, monkeypatch, change) -> bool:
    """Evaluate (cached), apply `change(monkeypatch)`, evaluate again: True if the second call attacked again."""
    evaluate(model, x, y, spec, cache_dir=cache_dir, batch_size=BATCH)
    with pytest.MonkeyPatch.context() as mp:
        change(mp)
        calls = count_attacks(mp)
        again = evaluate(model, x, y, spec, cache_dir=cache_dir, batch_size=BATCH)
    assert bool(calls) != again.cached
    return bool(calls)


def test_unchanged_code_hits_the_cache(digits, tmp_path, monkeypatch):
    model, x, y = digits
    assert not recomputes(model, x[:48], y[:48], FAST_PGD, tmp_path, monkeypatch, lambda mp: None)


def test_changed_attack_code_is_recomputed(digits, tmp_path, monkeypatch):
    model, x, y = digits
    real_pgd = attacks.pgd

    def pgd(*args, **kwargs):     # the same numbers, other code: the key cannot know that, and must not assume it
        return real_pgd(*args, **kwargs)

    assert recomputes(model, x[:48], y[:48], FAST_PGD, tmp_path, monkeypatch,
                      lambda mp: mp.setattr(attacks, "pgd", pgd))
    assert recomputes(model, x[:48], y[:48], FAST_PGD, tmp_path, monkeypatch,
                      lambda mp: mp.setattr(attacks, "margin_loss", lambda z, y: -attacks.margin_loss(z, y)))
    # only the code a spec runs: another attack's runner is not part of PGD's key
    assert not recomputes(model, x[:48], y[:48], FAST_PGD, tmp_path, monkeypatch,
                          lambda mp: mp.setitem(attacks._RUNNERS, "square", lambda *a: None))


_FINGERPRINTS_IN_A_NEW_PROCESS = """
import sys
if sys.argv[1] == "busy":                     # another import history: other objects, other addresses
    import tempscale.audit, tempscale.experiments.robustness
    junk = [object() for _ in range(10_000)]
from tempscale import attacks, robustness
from tempscale.models import build_model
print([robustness.code_fingerprint(attacks.attack_code_roots(attacks.attack_spec(name)))
       for name in ("pgd20", "square", "apgd_ce", "cw_l2")],
      robustness.model_code_fingerprint(build_model("resnet8", 10)))
"""


def test_code_fingerprints_are_the_same_in_every_process():
    """The key must not depend on memory addresses (generated dataclass methods have no source): two notebook
    kernels with other import histories share one cache."""
    import subprocess
    import sys
    runs = [subprocess.run([sys.executable, "-c", _FINGERPRINTS_IN_A_NEW_PROCESS, history], check=True,
                           capture_output=True, text=True).stdout for history in ("plain", "busy")]
    assert runs[0] == runs[1] and runs[0].strip()


class Doubled(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x) * 2


def test_changed_model_code_is_recomputed(digits, tmp_path, monkeypatch):
    model, x, y = digits
    wrapped = Doubled(model)

    def forward(self, x):
        return 2 * self.model(x)

    assert recomputes(wrapped, x[:48], y[:48], FAST_PGD, tmp_path, monkeypatch,
                      lambda mp: mp.setattr(Doubled, "forward", forward))
    edited = robustness._module_source(__name__) + "\n# edited"
    assert recomputes(wrapped, x[:48], y[:48], FAST_PGD, tmp_path, monkeypatch,
                      lambda mp: mp.setattr(robustness, "_module_source", lambda name: edited))


def test_changed_environment_is_recomputed(digits, tmp_path, monkeypatch):
    model, x, y = digits
    threads = torch.get_num_threads()
    for change in (lambda mp: mp.setattr(torch, "__version__", "0.0.1"),
                   lambda mp: mp.setattr(robustness, "_device_type", lambda model: "cuda"),
                   lambda mp: mp.setattr(robustness, "_version", lambda name: "0.0.1"),
                   lambda mp: mp.setattr(torch, "get_num_threads", lambda: threads + 1),
                   # another vector instruction set (an AVX-512 machine against an AVX2 one) runs other kernels
                   lambda mp: mp.setattr(robustness, "cpu_capability", lambda: "ANOTHER_ISA")):
        assert recomputes(model, x[:48], y[:48], FAST_PGD, tmp_path, monkeypatch, change)
    environments = [json.loads(path.read_text())["environment"] for path in tmp_path.rglob("meta.json")]
    assert {"device": "cpu", "cpu_threads": threads, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__, "torchattacks": "3.5.1", "pyautoattack": "0.2.0"} in environments
    assert len(environments) == 6


def test_changed_corruption_generator_is_recomputed(digits, tmp_path, monkeypatch):
    """Generated -C images are keyed on the generator: its version and its code as it runs."""
    model, x, y = digits
    name = corruptions.CORRUPTIONS[0]

    def run():
        return evaluate_corruptions(model, x[:24], y[:24], names=[name], cache_dir=tmp_path, batch_size=BATCH)

    run()
    calls = count_attacks(monkeypatch)
    run()
    assert not calls
    monkeypatch.setattr(corruptions, "GENERATOR_VERSION", corruptions.GENERATOR_VERSION + 1)
    run()
    assert len(calls) == 1
    real = corruptions._CORRUPTION_FNS[name]
    monkeypatch.setitem(corruptions._CORRUPTION_FNS, name, lambda x, s, g: real(x, s, g))
    run()
    assert len(calls) == 2
