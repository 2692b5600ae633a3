"""The rehearsal profile: the paper grid's code path on tiny files written in the official formats.

The fast tests here check the files and the Tiny-ImageNet-C path; the whole rehearsal (`./run_all.sh --profile
rehearsal`: every notebook per grid cell, ResNet50, WRN-28-10 and ViT-S/16) runs with TEMPSCALE_REHEARSAL=1 and
asserts that every paper and thesis table and figure file appears, named by dataset and model.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from tempscale.data import DataNotFoundError, load_dataset, official_corruptions
from tempscale.evaluation import evaluate_run
from tempscale.experiments.ldd import TABLE_SPECS, default_tables
from tempscale.paths import output_tag
from tempscale.profiles import get_profile
from tempscale.rehearsal import TINY_IMAGENET_C_CORRUPTIONS, write_rehearsal_data
from tempscale.runs import get_or_train

ROOT = Path(__file__).resolve().parents[1]
# What each notebook writes (stems; Table I or II by the model family; 08: `notebook_outputs`).
NOTEBOOK_OUTPUTS = {
    "00": ["fig1_update_direction", "eqs7_9_sample_weights"],
    "01": ["table_runs", "runs_history"],
    "02": ["table_{I}", "table_3_9_attacks", "table_3_4_corruptions", "robustness_per_tau"],
    "03": ["fig2_silhouette", "fig2_tsne"],
    "04": ["fig5_logits_pgd"],
    "05": ["fig6_prototype_distance", "fig7_prototype_variance"],
    "06": ["fig4_convergence", "table_fig4_convergence"],
    "07": ["table_III_madry"],
    "09": ["fig4_2_gradcam"],
    "10": ["audit_robustness_vs_eps", "audit_accuracy_vs_tau", "audit_gradients_vs_tau", "table_audit"],
    "11": ["calibration_per_tau", "table_calibration"],
}


@pytest.fixture(scope="module")
def rehearsal_data(tmp_path_factory):
    return write_rehearsal_data(tmp_path_factory.mktemp("rehearsal") / "data")


def test_files_are_in_the_official_formats(rehearsal_data):
    for dataset, classes, size in (("cifar10", 10, 32), ("cifar100", 100, 32), ("tinyimagenet", 200, 64)):
        bundle = load_dataset(dataset, data_dir=rehearsal_data)
        assert (bundle.num_classes, bundle.image_size, len(bundle.test)) == (classes, size, 16)
    assert load_dataset("cifar10", data_dir=rehearsal_data).class_names[0] == "airplane"   # bytes keys decoded
    assert len(official_corruptions("cifar10", rehearsal_data)) == 19
    assert official_corruptions("tinyimagenet", rehearsal_data) == list(TINY_IMAGENET_C_CORRUPTIONS)
    assert len(TINY_IMAGENET_C_CORRUPTIONS) == 15


@pytest.fixture(scope="module")
def tiny_run(rehearsal_data, tmp_path_factory):
    torch.set_num_threads(1)
    profile = get_profile("smoke", dataset="tinyimagenet", n_eval=8)
    spec = profile.spec(1.0, epochs=1, n_train=16)
    return profile, get_or_train(spec, runs_dir=tmp_path_factory.mktemp("runs"), data_dir=rehearsal_data,
                                 progress=False)


def test_tiny_imagenet_c_evaluates_the_releases_15_corruptions(tiny_run, rehearsal_data):
    profile, run = tiny_run
    report = evaluate_run(run, ["corruptions"], profile, data_dir=rehearsal_data)
    assert list(report["corruptions"]["per_corruption"]) == list(TINY_IMAGENET_C_CORRUPTIONS)


def test_tiny_imagenet_without_its_c_release_says_where_to_put_it(tiny_run, rehearsal_data, tmp_path):
    profile, run = tiny_run
    bare = tmp_path / "data"
    bare.mkdir()
    (bare / "tiny-imagenet-200").symlink_to(rehearsal_data / "tiny-imagenet-200")
    with pytest.raises(DataNotFoundError, match="Tiny-ImageNet-C is missing.*official -C release"):
        evaluate_run(run, ["corruptions"], profile, data_dir=bare)


def notebook_outputs(notebook: str, profile) -> list[str]:
    if notebook != "08":
        return NOTEBOOK_OUTPUTS[notebook]
    tables = default_tables(profile)   # the thesis tables of this dataset and model; their figure needs 4.1 or 4.2
    return [TABLE_SPECS[t].stem for t in tables] + (["fig_ldd_tables"] if {"4.1", "4.2"} & set(tables) else [])


def expected_files(profile_name: str = "rehearsal") -> list[str]:
    profile = get_profile(profile_name)
    names = []
    for cell in profile.grid:
        for notebook in cell.notebooks:
            cell_profile = get_profile(profile_name, dataset=cell.dataset, arch=cell.arch)
            for stem in notebook_outputs(notebook, cell_profile):
                stem = stem.format(I="II" if cell.arch.startswith("vit") else "I")
                names.append(f"{stem}__{output_tag(cell)}")
    return names


def test_expected_files_cover_every_paper_table():
    names = expected_files()
    for table in ("table_I__cifar10_resnet50", "table_I__cifar100_resnet50", "table_I__tinyimagenet_resnet50",
                  "table_II__cifar10_vit_small_patch16_224", "table_II__cifar100_vit_small_patch16_224",
                  "table_III_madry__cifar10_resnet50", "table_4_1_ldd_reductions__cifar100_wrn28_10",
                  "table_4_4_ldd_backbones__cifar10_vit_base_patch8_224", "fig4_2_gradcam__cifar100_wrn28_10"):
        assert table in names


@pytest.mark.skipif(os.environ.get("TEMPSCALE_REHEARSAL") != "1",
                    reason="the whole rehearsal takes tens of minutes on 2 cores; TEMPSCALE_REHEARSAL=1 runs it")
def test_rehearsal_produces_every_paper_and_thesis_file(tmp_path):
    env = {**os.environ, "TEMPSCALE_FIGURES": str(tmp_path / "figures"), "TEMPSCALE_RUNS": str(tmp_path / "runs")}
    env.pop("TEMPSCALE_PROFILE", None)
    done = subprocess.run([str(ROOT / "run_all.sh"), "--profile", "rehearsal", "--force"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    folder = tmp_path / "figures" / "rehearsal"
    missing = [name for name in expected_files() if not list(folder.glob(f"{name}.*"))]
    assert missing == []
    for table in ("table_I", "table_II", "table_4_4_ldd_backbones"):
        assert (folder / f"{table}__assembled.md").exists()
