"""Where the main job's time goes: every notebook executed as ``./run_all.sh`` does, sampled by py-spy.

    .venv/bin/python benchmarks/profile_main_job.py [--profile quick] [--only 00,02] [--runs-dir DIR] [--json OUT]
    .venv/bin/python benchmarks/profile_main_job.py --profile rehearsal --dataset cifar100 --arch wrn28_10 --only 08

Each notebook runs under ``py-spy record --subprocesses`` (a sampling profiler outside the process: it does not slow
the kernel down), from an empty run store unless ``--runs-dir`` names a filled one. The samples are sorted into
operations by the frames they pass through (`OPERATIONS`, first match from the innermost frame outwards) and printed
as seconds per notebook and operation, with each notebook's wall time; what the cells do not account for is kernel
start-up and papermill. Prints figures, asserts nothing; on a 2-core
CPU a second busy process moves them 4–8×: run it on an idle machine.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tempscale.rehearsal import write_rehearsal_data

ROOT = Path(__file__).resolve().parents[1]
RATE = 20   # samples per second per process

# (operation, pattern matched against one frame "function (file:line)"); the innermost matching frame decides.
OPERATIONS = (
    ("AutoAttack (official)", r"pyautoattack/"),
    ("APGD", r"torchattacks/attacks/apgd"),
    ("FAB", r"torchattacks/attacks/fab"),
    ("Square", r"torchattacks/attacks/square"),
    ("C&W-L2", r"torchattacks/attacks/cw|_MarginFixedCW|cw_l2"),
    ("PGD (attacks)", r"tempscale/attacks\.py"),
    ("audit checks", r"tempscale/audit/"),
    ("Madry PGD (training)", r"craft_adversarial"),
    ("training", r"tempscale/train\.py|tempscale/methods/"),
    ("corruptions", r"tempscale/corruptions\.py"),
    ("t-SNE", r"sklearn/manifold"),
    ("GradCAM", r"pytorch_grad_cam/|tempscale/gradcam\.py"),
    ("stored files (save, load, checksum)", r"tempscale/io\.py"),
    ("evaluation cache keys (fingerprints)", r"tempscale/robustness\.py"),
    ("data loading", r"tempscale/data\.py"),
    ("plotting", r"matplotlib/|seaborn/"),
    ("imports", r"<frozen importlib|_find_and_load"),
)
CELL_FRAME = "run_code ("   # IPython executing a cell: samples outside it are kernel start-up and papermill


def classify(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for name, pattern in OPERATIONS:
            if re.search(pattern, frame):
                return name
    return "other"


def parse_raw(path: Path) -> collections.Counter:
    """Seconds per operation of the notebook's cells from py-spy's raw (collapsed stack) output; samples of other
    threads and processes (papermill, the kernel's I/O threads) are left out."""
    seconds: collections.Counter = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit() and CELL_FRAME in stack:
            seconds[classify(stack.split(CELL_FRAME, 1)[1])] += int(count) / RATE
    return seconds


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        sys.exit("profile_main_job.py: py-spy not found; install it with `.venv/bin/pip install py-spy`")
    return found


def notebooks(only: str | None) -> list[Path]:
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    wanted = None if only is None else set(only.split(","))
    return [p for p in paths if wanted is None or p.name[:2] in wanted]


def profile_notebook(path: Path, parameters: dict, out_dir: Path, env: dict) -> tuple[float, collections.Counter]:
    raw = out_dir / f"{path.stem}.txt"
    injected = [arg for name, value in parameters.items() if value is not None for arg in ("-p", name, value)]
    command = [py_spy(), "record", "--subprocesses", "--rate", str(RATE), "--format", "raw", "--output", str(raw),
               "--", sys.executable, "-m", "tempscale.papermill_ipc", str(path), str(out_dir / path.name),
               "-k", "tempscale", *injected, "--log-level", "ERROR"]
    began = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began, parse_raw(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--only", help="comma-separated notebook numbers, e.g. 00,02")
    parser.add_argument("--dataset", help="a grid cell's dataset (default: the profile's)")
    parser.add_argument("--arch", help="a grid cell's architecture (default: the profile's)")
    parser.add_argument("--runs-dir", help="run store to use (default: a fresh empty one)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    selected = notebooks(args.only)
    if not selected:
        sys.exit(f"profile_main_job.py: no notebook matches --only {args.only}")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TEMPSCALE_RUNS": args.runs_dir or str(Path(tmp) / "runs"),
               "TEMPSCALE_FIGURES": str(Path(tmp) / "figures"), "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
        if args.profile == "rehearsal":   # its tiny files in the official formats, as run_all.sh writes them
            env["TEMPSCALE_DATA"] = str(write_rehearsal_data(Path(tmp) / "rehearsal-data"))
        parameters = {"profile": args.profile, "dataset": args.dataset, "arch": args.arch}
        results = {}
        for path in selected:
            wall, ops = profile_notebook(path, parameters, Path(tmp), env)
            ops["outside the cells (kernel start-up, papermill)"] = max(0.0, wall - sum(ops.values()))
            results[path.stem] = {"wall_s": wall, "operations_s": dict(ops.most_common())}
            top = ", ".join(f"{name} {s:.0f}" for name, s in ops.most_common(5))
            print(f"{path.stem:<32} {wall:7.1f} s   {top}", flush=True)
    totals: collections.Counter = collections.Counter()
    for result in results.values():
        totals.update(result["operations_s"])
    print(f"{'total':<32} {sum(r['wall_s'] for r in results.values()):7.1f} s")
    print("sampled seconds per operation, all notebooks:")
    for name, seconds in totals.most_common():
        print(f"  {name:<48} {seconds:7.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({**parameters, "notebooks": results,
                                               "operations_s": dict(totals.most_common())}, indent=1))


if __name__ == "__main__":
    main()
