"""The quick main job's time per notebook, one notebook at a time on every core (the main job before parallel
notebooks) against two single-thread notebooks at once (``./run_all.sh``'s default), each from an empty run store.

    .venv/bin/python benchmarks/bench_main_job.py [--profile quick] [--only 00,01] [--skip-main-job]

Each setting runs ``./run_all.sh --profile P --force`` (before: ``--jobs 1`` with OMP_NUM_THREADS = the core count;
after: the defaults) with its own empty run store and figures folder (the committed figures are not touched) and
prints the summary's seconds per notebook side by side, the wall time of
each job (notebooks overlap under --jobs 2, so the wall time is not their sum) and the ratio. Then the τ grid's
training alone: one process with every thread, one run after another, against two single-thread processes that
share the grid through the run store (`tempscale.runs.get_or_train_each`), and the τ grid's models as one batched
model (`torch.func.vmap` over stacked weights) against one after another; last, `bench_trainer.py`'s trainer
against a bare PyTorch loop. Prints figures, asserts nothing;
on a 2-core CPU another busy process moves them 4–8×: run it on an idle machine.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
SUMMARY_LINE = re.compile(r"^\s+(\d\d_\S+)\s+(ok|FAILED)\s+(\d+) s$")


SETTINGS = {"before": (1, os.cpu_count()), "after": (2, 1)}   # (notebooks at once, threads each)


def main_job(profile: str, jobs: int, threads: int, only: str | None) -> tuple[dict[str, int], float]:
    """Seconds per notebook from run_all.sh's summary, and the job's wall time."""
    with tempfile.TemporaryDirectory(prefix="bench-main-") as tmp:
        env = {**os.environ, "TEMPSCALE_RUNS": f"{tmp}/runs", "TEMPSCALE_FIGURES": f"{tmp}/figures",
               "TEMPSCALE_EXECUTED": f"{tmp}/executed",
               "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        command = ["./run_all.sh", "--profile", profile, "--jobs", str(jobs), "--force"]
        command += ["--only", only] if only else []
        started = time.perf_counter()
        out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"bench_main_job: {' '.join(command)} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    seconds = {m.group(1): int(m.group(3)) for m in map(SUMMARY_LINE.match, out.stdout.splitlines()) if m}
    return seconds, wall


GRID_SCRIPT = """
import sys
from tempscale.experiments import train_grid
from tempscale.profiles import get_profile
train_grid(get_profile(sys.argv[1]), progress=False)
"""


def grid_training(profile: str, processes: int) -> float:
    """Wall seconds to train the profile's τ grid with `processes` processes of (cores / processes) threads each."""
    threads = max(1, os.cpu_count() // processes)
    with tempfile.TemporaryDirectory(prefix="bench-grid-") as tmp:
        env = {**os.environ, "TEMPSCALE_RUNS": tmp, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        started = time.perf_counter()
        workers = [subprocess.Popen([PYTHON, "-c", GRID_SCRIPT, profile], env=env) for _ in range(processes)]
        if any(worker.wait() for worker in workers):
            sys.exit("bench_main_job: training the grid failed")
        return time.perf_counter() - started


BATCHED_SCRIPT = """
import sys, time, torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, replace_all_batch_norm_modules_, stack_module_state
from tempscale.models import build_model
from tempscale.profiles import get_profile

profile = get_profile(sys.argv[1])
taus, steps, batch, size = profile.taus, int(sys.argv[2]), profile.spec(1.0).batch_size, profile.spec(1.0).image_size
gen = torch.Generator().manual_seed(0)
x = torch.rand(steps, batch, 3, size, size, generator=gen)
y = torch.randint(0, 10, (steps, batch), generator=gen)
models = [build_model(profile.arch, 10).train() for _ in taus]
for model in models:   # running statistics are in-place buffer updates, which vmap cannot batch
    replace_all_batch_norm_modules_(model)

def one_by_one():
    for model, tau in zip(models, taus):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for i in range(steps):
            loss = F.cross_entropy(model(x[i]) / tau, y[i])
            opt.zero_grad(); loss.backward(); opt.step()

params, buffers = stack_module_state(models)
tau_t = torch.tensor(taus)

def loss_of(p, b, tau, xb, yb):
    return F.cross_entropy(functional_call(models[0], (p, b), (xb,)) / tau, yb)

step = torch.vmap(grad_and_value(loss_of), in_dims=(0, 0, 0, None, None))

def batched():
    p = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    opt = torch.optim.Adam(p.values(), lr=1e-3)
    for i in range(steps):
        grads, _ = step(p, buffers, tau_t, x[i], y[i])
        for k, g in grads.items():
            p[k].grad = g
        opt.step()

for fn in (one_by_one, batched):   # warm-up
    fn()
times = {}
for fn in (one_by_one, batched, one_by_one, batched):
    t0 = time.perf_counter(); fn(); times[fn.__name__] = min(times.get(fn.__name__, 1e9), time.perf_counter() - t0)
print(times["one_by_one"], times["batched"])
"""


def batched_training(profile: str, steps: int = 20) -> tuple[float, float]:
    """(one by one, vmap-batched) seconds for `steps` Adam steps of every τ's model, in one process."""
    out = subprocess.run([PYTHON, "-c", BATCHED_SCRIPT, profile, str(steps)],
                         capture_output=True, text=True, check=True)
    one, batched = map(float, out.stdout.split())
    return one, batched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--only", help="notebooks to run, e.g. 00,02 (default: all)")
    parser.add_argument("--skip-main-job", action="store_true", help="only the grid-training comparison")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; profile {args.profile}")
    if not args.skip_main_job:
        (before, wall_before), (after, wall_after) = (main_job(args.profile, *SETTINGS[k], args.only)
                                                      for k in ("before", "after"))
        labels = [f"{jobs} × {threads} thr" for jobs, threads in SETTINGS.values()]
        print(f"\n{'notebook':34} {labels[0]:>10} {labels[1]:>10}")
        for name in before:
            print(f"{name:34} {before[name]:>8} s {after.get(name, 0):>8} s")
        print(f"{'sum of notebooks':34} {sum(before.values()):>8} s {sum(after.values()):>8} s")
        print(f"{'wall time of the job':34} {wall_before:>8.0f} s {wall_after:>8.0f} s   "
              f"(after / before = {wall_after / wall_before:.2f})")
    single, vmapped = batched_training(args.profile)
    print(f"\nτ grid as one vmap-batched model (torch.func) against one model after another, 20 Adam steps each: "
          f"{vmapped:.2f} s vs {single:.2f} s (batched / one by one = {vmapped / single:.2f})")
    one, two = grid_training(args.profile, 1), grid_training(args.profile, 2)
    print(f"\nτ grid training: one process, one run after another {one:.0f} s; two single-thread processes sharing "
          f"the grid {two:.0f} s (ratio {two / one:.2f})")
    trainer = subprocess.run([PYTHON, str(ROOT / "benchmarks" / "bench_trainer.py")],
                             capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    print("\ntrainer against a bare PyTorch loop (benchmarks/bench_trainer.py, one thread):")
    print("\n".join(line for line in trainer.stdout.splitlines() if not line.startswith("wrote")))


if __name__ == "__main__":
    main()
