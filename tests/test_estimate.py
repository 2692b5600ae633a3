"""The cost estimate: FLOPs counted on the real architecture, GPU-hours from a measurement or stated assumptions."""
import json

import pytest

from tempscale.estimate import (ASSUMED_PEAK_FLOPS, ASSUMED_UTILISATION, count_flops, estimate_lines,
                                measured_throughput, run_cost)
from tempscale.profiles import get_profile


def test_flops_of_a_conv_net_match_a_hand_count():
    flops = count_flops("resnet8", 16, 10)
    # resnet8 at 16×16: the stem conv alone is 2·(3·9)·16·16·16 FLOPs per image; the whole net is about 6 MFLOP.
    assert 2 * 27 * 16 * 16 * 16 < flops.forward < 1e7
    assert 2.8 < flops.train / flops.forward < 3.1   # backward ≈ 2 × forward


def test_gpu_hours_from_flops_when_nothing_was_measured(tmp_path):
    profile = get_profile("smoke")
    cost = run_cost(profile, "digits", "resnet8", root=tmp_path)
    spec = profile.spec(1.0)
    expected_flops = spec.epochs * (spec.n_train * cost.flops.train + 450 * cost.flops.forward)
    assert cost.run_flops == pytest.approx(expected_flops)
    assert cost.gpu_hours_per_run == pytest.approx(expected_flops / (ASSUMED_UTILISATION * ASSUMED_PEAK_FLOPS) / 3600)
    assert "FLOPs at" in cost.basis and cost.runs == 2


def test_a_cuda_benchmark_result_replaces_the_assumption(tmp_path):
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "cpu.json").write_text(json.dumps({"arch": "resnet8", "image_size": 16, "device": "cpu:x86_64",
                                                  "trainer_images_per_s": 10.0, "measured_at": "2026-01-02"}))
    assert measured_throughput("resnet8", 16, tmp_path) is None   # CPU speed says nothing about GPU-hours
    (results / "h100.json").write_text(json.dumps({"arch": "resnet8", "image_size": 16, "device": "cuda:H100",
                                                   "trainer_images_per_s": 1000.0, "measured_at": "2026-01-01"}))
    cost = run_cost(get_profile("smoke"), "digits", "resnet8", root=tmp_path)
    assert cost.gpu_hours_per_run == pytest.approx(2 * 256 / 1000.0 / 3600) and "measured" in cost.basis
    lines = estimate_lines(get_profile("smoke"), root=tmp_path)
    assert lines[0].startswith("smoke: 2 training runs") and "cuda:H100" in lines[1]
