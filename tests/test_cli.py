"""The command line: JSON on the last line, and one-line errors with no traceback for bad input.

One test runs `python -m tempscale` in a child process, end to end; the others call its `main` in this process
(a child costs seconds of imports each) and read what it printed.
"""
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tempscale.cli import main


def _cli(*args, runs_dir):
    return subprocess.run([sys.executable, "-m", "tempscale", *args, "--runs-dir", str(runs_dir)],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def cli(capsys):
    """`cli(*args)`: `python -m tempscale *args` in this process, as (returncode, stdout, stderr)."""
    def run(*args, runs_dir=None):
        code = main([*args, *(["--runs-dir", str(runs_dir)] if runs_dir else [])])
        printed = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=printed.out, stderr=printed.err)
    return run


def test_train_prints_json_last_and_reuses(cli, tmp_path):
    out = _cli("train", "--profile", "smoke", "--tau", "50", "--epochs", "1", "--quiet", "--json", runs_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert record["tau"] == 50.0 and record["epochs_done"] == 1 and record["diverged"] is False
    assert 0 <= record["clean_acc"] <= 1 and (tmp_path / record["run_dir"].split("/")[-1]).is_dir()
    again = cli("train", "--profile", "smoke", "--tau", "50", "--epochs", "1", "--quiet", "--json", runs_dir=tmp_path)
    assert json.loads(again.stdout.strip().splitlines()[-1]) == record
    listing = cli("runs", "--json", runs_dir=tmp_path)
    assert json.loads(listing.stdout.strip().splitlines()[-1])[0]["status"] == "complete"


@pytest.mark.parametrize("args, reason", [
    (["--dataset", "mnist"], "unknown dataset"),
    (["--arch", "lenet"], "unknown architecture"),
    (["--tau", "0"], "τ must be"),
    (["--tau", "-5"], "τ must be"),
    (["--epochs", "0"], "epochs must be"),
    (["--tau", "abc"], "invalid float"),
    (["--profile", "huge"], "unknown profile"),
    (["--dataset", "cifar10", "--data-dir", "/nonexistent/data"], "/nonexistent/data"),
])
def test_bad_arguments_exit_nonzero_with_one_line(cli, tmp_path, args, reason):
    out = cli("train", "--profile", "smoke", "--quiet", *args, runs_dir=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_profiles_lists_assumptions(cli):
    out = cli("profiles")
    assert out.returncode == 0 and "cnn.epochs" in out.stdout and "quick" in out.stdout


def test_eval_maps_each_attack_to_accuracy_and_count(cli, tmp_path):
    attacks = "clean,pgd20,cw_linf,apgd_ce,apgd_dlr,square,corruptions"
    out = cli("eval", "--profile", "smoke", "--tau", "50", "--epochs", "1", "--n-eval", "16", "--attacks", attacks,
               "--quiet", "--json", runs_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(record["attacks"]) == set(attacks.split(",")) | {"worst_case"}
    for name, r in record["attacks"].items():
        assert r["n"] == 16 and 0 <= r["accuracy"] <= 1, (name, r)
    assert record["attacks"]["pgd20"]["accuracy"] <= record["attacks"]["clean"]["accuracy"]


def test_eval_unknown_attack_is_one_line(cli, tmp_path):
    out = cli("eval", "--profile", "smoke", "--epochs", "1", "--attacks", "clean,fgsm9", "--quiet", runs_dir=tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "fgsm9" in out.stderr


def _spec_for(*args):
    from tempscale.cli import build_parser, spec_from_args

    return spec_from_args(build_parser().parse_args(["train", *args]))[1]


def test_another_arch_of_the_same_family_keeps_the_profile_recipe(capsys):
    spec = _spec_for("--profile", "quick", "--arch", "resnet20")
    quick = _spec_for("--profile", "quick")
    assert spec.arch == "resnet20" and spec.optimizer == "adam"
    assert {k: v for k, v in spec.to_dict().items() if k != "arch"} == \
        {k: v for k, v in quick.to_dict().items() if k != "arch"}
    assert capsys.readouterr().err == ""


def test_an_arch_of_another_family_switches_recipe_and_says_so_in_one_line(capsys):
    spec = _spec_for("--profile", "quick", "--arch", "vit_small_patch16_224", "--epochs", "2")
    assert spec.optimizer == "adam" and spec.lr == 1e-4 and spec.batch_size == 64 and spec.epochs == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vit recipe" in err[0] and "quick" in err[0]


def test_optimizer_flag_overrides_the_recipe(cli, tmp_path):
    assert _spec_for("--profile", "quick", "--optimizer", "sgd").optimizer == "sgd"
    assert _spec_for("--profile", "paper", "--optimizer", "adam").optimizer == "adam"
    out = cli("train", "--profile", "smoke", "--optimizer", "rmsprop", runs_dir=tmp_path)
    assert out.returncode == 2 and "invalid choice" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_profiles_estimate_prints_flops_and_gpu_hours(cli):
    out = cli("profiles", "--estimate")
    assert out.returncode == 0, out.stderr
    paper = [line for line in out.stdout.splitlines() if line.startswith("paper:")]
    assert len(paper) == 1 and "54 training runs" in paper[0] and "GPU-h" in paper[0]
    assert "cifar10 resnet50 at 32px" in out.stdout and "tinyimagenet vit_small_patch16_224" in out.stdout


def test_grid_check_data_is_run_all_preflight(cli, tmp_path, monkeypatch):
    """./run_all.sh's one start-up before the notebooks: the grid, after every dataset was found readable."""
    monkeypatch.setenv("TEMPSCALE_DATA", str(tmp_path))
    out = cli("grid", "--profile", "cifar-cpu", "--check-data")
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cifar-10-batches-py" in lines[0] and "--data-dir" in lines[0]
    assert cli("grid", "--profile", "quick", "--check-data").returncode == 0     # digits: bundled with sklearn
