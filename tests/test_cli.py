"""The command line: JSON on the last line, and one-line errors with no traceback for bad input."""
import json
import subprocess
import sys

import pytest


def _cli(*args, runs_dir):
    return subprocess.run([sys.executable, "-m", "tempscale", *args, "--runs-dir", str(runs_dir)],
                          capture_output=True, text=True, timeout=300)


def test_train_prints_json_last_and_reuses(tmp_path):
    out = _cli("train", "--profile", "smoke", "--tau", "50", "--epochs", "1", "--quiet", "--json", runs_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert record["tau"] == 50.0 and record["epochs_done"] == 1 and record["diverged"] is False
    assert 0 <= record["clean_acc"] <= 1 and (tmp_path / record["run_dir"].split("/")[-1]).is_dir()
    again = _cli("train", "--profile", "smoke", "--tau", "50", "--epochs", "1", "--quiet", "--json", runs_dir=tmp_path)
    assert json.loads(again.stdout.strip().splitlines()[-1]) == record
    listing = subprocess.run([sys.executable, "-m", "tempscale", "runs", "--runs-dir", str(tmp_path), "--json"],
                             capture_output=True, text=True)
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
def test_bad_arguments_exit_nonzero_with_one_line(tmp_path, args, reason):
    out = _cli("train", "--profile", "smoke", "--quiet", *args, runs_dir=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_profiles_lists_assumptions():
    out = subprocess.run([sys.executable, "-m", "tempscale", "profiles"], capture_output=True, text=True)
    assert out.returncode == 0 and "cnn.epochs" in out.stdout and "quick" in out.stdout


def test_eval_maps_each_attack_to_accuracy_and_count(tmp_path):
    attacks = "clean,pgd20,cw_linf,apgd_ce,apgd_dlr,square,corruptions"
    out = _cli("eval", "--profile", "smoke", "--tau", "50", "--epochs", "1", "--n-eval", "16", "--attacks", attacks,
               "--quiet", "--json", runs_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(record["attacks"]) == set(attacks.split(",")) | {"worst_case"}
    for name, r in record["attacks"].items():
        assert r["n"] == 16 and 0 <= r["accuracy"] <= 1, (name, r)
    assert record["attacks"]["pgd20"]["accuracy"] <= record["attacks"]["clean"]["accuracy"]


def test_eval_unknown_attack_is_one_line(tmp_path):
    out = _cli("eval", "--profile", "smoke", "--epochs", "1", "--attacks", "clean,fgsm9", "--quiet", runs_dir=tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "fgsm9" in out.stderr
