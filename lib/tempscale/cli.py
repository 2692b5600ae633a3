"""Command line: ``python -m tempscale train|eval|audit|runs|profiles|sweep|grid|assemble|readme|html``.

Batch work outside notebooks, on the same run store. Every argument is checked before any work starts. User errors
(unknown dataset, architecture, attack or device, a number out of its range, a missing or malformed data file, a
run store that cannot be written) exit with status 2 and one line on stderr, no traceback; the line gives the valid
range or values. With ``--json`` the last line of stdout is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from pathlib import Path

from . import publish, readme
from .assemble import write_assembled
from .audit import audit_run
from .data import load_dataset, require_official_corrupted
from .errors import DataNotFoundError, InvalidSpecError, RunStoreError, TempscaleError
from .estimate import estimate_lines
from .evaluation import evaluate_run
from .inference import check_device
from .paths import project_root, runs_dir
from .profiles import ASSUMPTIONS, PROFILES, describe, get_profile, recipe_family
from .runs import Run, check_runs_dir, get_or_train, list_runs, notice
from .spec import OPTIMIZERS
from .sweep import EXECUTORS, STATES, ClusterOptions, grid_specs, submit_sweep, sweep_specs, sweep_status
from .vocab import Metric, parse_all


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump: the reason is what the user needs
        raise TempscaleError(f"{self.prog}: {message} (see --help)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="quick", help="smoke | quick | paper (default: quick)")
    p.add_argument("--tau", type=float, help="training temperature τ > 0 (default: the profile's first τ)")
    p.add_argument("--dataset", help="digits | cifar10 | cifar100 | tinyimagenet | imagefolder:<path>")
    p.add_argument("--arch", help="resnet8 | resnet20 | resnet50 | wrn28_10 | vit_small_patch16_224 | "
                                         "vit_base_patch8_224")
    p.add_argument("--method", help="standard (default) or another registered training method")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="sgd | adam (default: the profile's)")
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--n-train", type=int, help="train on a fixed subset of this many examples")
    p.add_argument("--runs-dir", help="run store (default: $TEMPSCALE_RUNS or ./runs)")
    p.add_argument("--data-dir", help="data directory (default: $TEMPSCALE_DATA or ./data)")
    p.add_argument("--download", action="store_true", help="download CIFAR if missing (needs internet)")
    p.add_argument("--device", help="cpu | cuda (default: cuda when available)")
    p.add_argument("--compile", action="store_true", help="train through torch.compile (recorded in provenance)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m tempscale", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _common(sub.add_parser("train", help="train (or reuse) one run"))
    ev = sub.add_parser("eval", help="evaluate one run under attacks and corruptions (cached)")
    _common(ev)
    ev.add_argument("--attacks", default="clean,pgd20", help="comma-separated attack names, 'corruptions' included")
    ev.add_argument("--n-eval", type=int, help="attack the first N test examples (default: the profile's)")
    ev.add_argument("--severity", type=int, default=3, help="corruption severity 1..5 (default 3, as the paper)")
    au = sub.add_parser("audit", help="gradient-masking audit of one run")
    _common(au)
    au.add_argument("--n-eval", type=int, help="audit the first N test examples (default: the profile's)")
    runs = sub.add_parser("runs", help="list stored runs")
    runs.add_argument("--runs-dir")
    runs.add_argument("--json", action="store_true")
    pr = sub.add_parser("profiles", help="print every profile's hyperparameter tree and the assumptions")
    pr.add_argument("--estimate", action="store_true",
                    help="print each profile's FLOPs per run and expected GPU-hours instead")
    sw = sub.add_parser("sweep", help="submit one job per run of a profile (submitit: SLURM or local processes)")
    _common(sw)
    sw.add_argument("--executor", default="slurm", choices=EXECUTORS, help="slurm (default) | local | debug")
    sw.add_argument("--status", action="store_true", help="print done / running / queued / failed / missing per run")
    sw.add_argument("--attacks", help="also submit an evaluation job per run with these attacks (comma-separated)")
    sw.add_argument("--audit", action="store_true", help="also submit a gradient-masking audit job per run")
    sw.add_argument("--n-eval", type=int, help="evaluate/audit the first N test examples (default: the profile's)")
    sw.add_argument("--partition", help="SLURM partition")
    sw.add_argument("--timeout-min", type=int, default=ClusterOptions.timeout_min,
                    help="minutes per job; a job that runs out is requeued and resumes (default: %(default)s)")
    sw.add_argument("--gpus", type=int, help="GPUs per job (default: 1 on SLURM, 0 locally)")
    sw.add_argument("--wait", action="store_true", help="wait for the submitted jobs and report how they ended")
    gr = sub.add_parser("grid", help="print the notebook × dataset × model cells ./run_all.sh walks for a profile")
    gr.add_argument("--profile", default="quick")
    gr.add_argument("--check-data", action="store_true",
                    help="first check that every dataset of the grid (or the profile's) can be read")
    gr.add_argument("--download", action="store_true", help="with --check-data: fetch CIFAR when it is missing")
    asm = sub.add_parser("assemble", help="write a profile's multi-dataset / multi-model tables from its grid cells")
    asm.add_argument("--profile", default="quick")
    rd = sub.add_parser("readme", help="rewrite README.md's results table from the executed quick notebooks")
    rd.add_argument("--executed", default=str(project_root() / "executed" / "quick"))
    rd.add_argument("--readme", default=str(project_root() / "README.md"))
    ht = sub.add_parser("html", help="export the executed quick notebooks as HTML pages (notebooks/html/)")
    ht.add_argument("--executed", default=str(project_root() / "executed" / "quick"))
    ht.add_argument("--out", default=str(project_root() / publish.HTML_DIR))
    return parser


MAX_N_EVAL = 1 << 31


def check_count(value: int | None, what: str, low: int = 1, high: int = MAX_N_EVAL) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidSpecError(f"{what} must be an integer in {low}..{high}, got {value}")


def check_common(args) -> None:
    """What every training command needs, checked before any work: device and run store."""
    check_device(args.device)
    check_runs_dir(Path(args.runs_dir) if args.runs_dir else runs_dir())


# The flags that change a run's spec, named as its fields.
SPEC_FLAGS = ("dataset", "arch", "method", "epochs", "lr", "batch_size", "image_size", "n_train", "optimizer")


def spec_flags(args) -> dict:
    """The spec fields given on the command line (None: not given)."""
    return {k: v for k in SPEC_FLAGS if (v := getattr(args, k, None)) is not None}


def spec_from_args(args):
    profile = get_profile(args.profile)
    overrides = spec_flags(args)
    # Within the profile's family (resnet8 → resnet20) the profile's recipe stays; another family (a CNN profile
    # asked for a ViT) takes that family's recipe (ViT: Adam, 30 epochs), which the user is told.
    new_family = recipe_family(args.arch) if args.arch else None
    if new_family is not None and new_family != recipe_family(profile.arch):
        recipe = profile.recipe(args.arch)
        notice(f"--arch {args.arch} is a {new_family} architecture: using the paper's {new_family} recipe "
               f"({', '.join(f'{k}={v}' for k, v in recipe.items())}) instead of profile {profile.name}'s "
               f"{recipe_family(profile.arch)} recipe; explicit flags still win")
        overrides = {**recipe, **overrides}
    tau = profile.taus[0] if args.tau is None else args.tau
    return profile, profile.spec(tau, seed=args.seed, **overrides)


def stored_run(args, spec) -> Run:
    """The run of `spec`, trained first if the store does not hold it yet."""
    return get_or_train(spec, runs_dir=args.runs_dir, data_dir=args.data_dir, device=args.device,
                        progress=not args.quiet, download=args.download, compile_model=args.compile)


def cmd_train(args) -> dict:
    _, spec = spec_from_args(args)
    check_common(args)
    run = stored_run(args, spec)
    r = run.result
    return {"run_dir": str(run.dir), "clean_acc": r["clean_acc"], "epochs_done": r["epochs_done"],
            "diverged": r["diverged"], "tau": spec.tau, "dataset": spec.dataset, "arch": spec.arch,
            "method": spec.method, "seed": spec.seed, "init": r.get("init", spec.init)}


def cmd_eval(args) -> dict:
    names = parse_all(Metric, [a.strip() for a in args.attacks.split(",") if a.strip()], "attack")
    if not names:
        raise InvalidSpecError(f"--attacks names no attack; choose from {', '.join(Metric)}")
    check_count(args.n_eval, "--n-eval")
    check_count(args.severity, "--severity", 1, 5)
    profile, spec = spec_from_args(args)
    check_common(args)
    run = stored_run(args, spec)
    n_eval = args.n_eval if args.n_eval is not None else profile.n_eval
    results = evaluate_run(run, names, profile=profile, n_eval=n_eval, severity=args.severity,
                           data_dir=args.data_dir, device=args.device, progress=not args.quiet)
    # corruptions report n per corruption (the same images each time): the summary gives that per-image count.
    summary = {name: {"accuracy": r["accuracy"], "n": r["n"] if isinstance(r["n"], int) else max(r["n"].values())}
               for name, r in results.items()}
    return {"run_dir": str(run.dir), "tau": spec.tau, "n_eval": n_eval, "attacks": summary, "details": results}


def cmd_audit(args) -> dict:
    check_count(args.n_eval, "--n-eval")
    profile, spec = spec_from_args(args)
    check_common(args)
    run = stored_run(args, spec)
    # None lets the audit's own budget choose n (its quick budget trims the eval set to keep the CPU time sane).
    report = audit_run(run, profile=profile, n_eval=args.n_eval, data_dir=args.data_dir, device=args.device)
    return {"run_dir": str(run.dir), "tau": spec.tau, **report}


def cmd_runs(args) -> list:
    root = Path(args.runs_dir) if args.runs_dir else runs_dir()
    if root.exists() and not root.is_dir():
        raise RunStoreError(f"run store {root} is not a folder; pass --runs-dir with the run store's folder")
    rows = list_runs(root)
    if not args.json:
        for row in rows:
            acc = f"{row['clean_acc']:.4f}" if row.get("clean_acc") is not None else "-"
            print(f"{row['run']:<72} {row['status']:<22} clean_acc={acc}")
    return rows


def cmd_profiles(args) -> None:
    if args.estimate:
        for profile in PROFILES.values():
            print("\n".join(estimate_lines(profile)), end="\n\n")
        return
    for profile in PROFILES.values():
        print("\n".join(describe(profile)), end="\n\n")
    print("Assumptions where the paper is silent:")
    for key, text in ASSUMPTIONS.items():
        print(f"  {key}: {text}")


def sweep_specs_from_args(args):
    """The profile and one spec per (seed, τ): the profile's τ grid, with the same overrides `train` takes; with no
    override, every dataset and model of the profile's grid (`Profile.grid`)."""
    if args.tau is not None or args.seed is not None:
        raise InvalidSpecError("sweep runs the profile's whole τ grid and seeds; --tau and --seed are for train")
    profile, spec = spec_from_args(args)
    if profile.grid and not spec_flags(args):
        return profile, grid_specs(profile)     # every dataset and model of the profile's grid
    overrides = {k: v for k, v in spec.to_dict().items() if k not in ("tau", "seed")}
    return profile, sweep_specs(profile, **overrides)


def cmd_sweep(args) -> dict:
    check_count(args.n_eval, "--n-eval")
    profile, specs = sweep_specs_from_args(args)
    if args.executor != "slurm":   # a login node has no GPU; SLURM jobs check their device where they run
        check_device(args.device)
    root = Path(args.runs_dir) if args.runs_dir else runs_dir()
    check_runs_dir(root)
    if args.status:
        statuses = sweep_status(specs, root, args.data_dir)
        for status in statuses:
            print(status.line())
        counts = {state: sum(s.state == state for s in statuses) for state in STATES}
        print(", ".join(f"{n} {state}" for state, n in counts.items()))
        return {"runs": [{"run": s.run.dir.name, "state": s.state, "detail": s.detail} for s in statuses],
                "counts": counts}
    attacks = tuple(parse_all(Metric, [a.strip() for a in args.attacks.split(",") if a.strip()], "attack")) \
        if args.attacks else ()
    gpus = args.gpus if args.gpus is not None else (1 if args.executor == "slurm" else 0)
    options = ClusterOptions(executor=args.executor, partition=args.partition, timeout_min=args.timeout_min,
                             gpus=gpus).check()
    submitted, skipped = submit_sweep(profile, specs, root, options, data_dir=args.data_dir, device=args.device,
                                      attacks=attacks, audit=args.audit, n_eval=args.n_eval,
                                      compile_model=args.compile)
    for item in submitted:
        print(f"{item.run.dir.name:<72} {item.stage:<5} submitted as job {item.job.job_id} (was {item.why})")
    for status in skipped:
        print(f"{status.run.dir.name:<72} skipped: {status.state} ({status.detail})")
    outcomes = {}
    if args.wait:
        for item in submitted:
            try:
                item.job.result()
                outcomes[f"{item.stage}:{item.run.dir.name}"] = "done"
            except Exception as err:  # the job's own error, reported per job; the sweep goes on
                outcomes[f"{item.stage}:{item.run.dir.name}"] = f"failed: {str(err).strip().splitlines()[-1][:200]}"
        for key, outcome in outcomes.items():
            print(f"{key}: {outcome}")
    return {"submitted": [{"run": i.run.dir.name, "stage": i.stage, "job_id": str(i.job.job_id)} for i in submitted],
            "skipped": [{"run": s.run.dir.name, "state": s.state} for s in skipped], "outcomes": outcomes}


def cmd_grid(args) -> None:
    """One line per notebook run: number, dataset, architecture (tab-separated); nothing for a profile without a
    grid, whose notebooks run once on its own dataset and model. With --check-data, each dataset is read first
    (./run_all.sh's preflight, in the same process: one start-up instead of two)."""
    profile = get_profile(args.profile)
    if args.check_data:
        check_datasets(dict.fromkeys([cell.dataset for cell in profile.grid] or [profile.dataset]), args.download)
    for cell in profile.grid:
        for notebook in cell.notebooks:
            print(f"{notebook}\t{cell.dataset}\t{cell.arch}")


def check_datasets(datasets, download: bool) -> None:
    """Each dataset loads (downloaded first when asked) and has its official -C release where it needs one."""
    try:
        for dataset in datasets:
            load_dataset(dataset, download=download)
            require_official_corrupted(dataset)
    except TempscaleError as err:
        raise DataNotFoundError(f"{err} (or name its parent folder with --data-dir)") from None
    except OSError as err:  # a download that could not reach the server
        raise DataNotFoundError(f"downloading the data failed ({err}); copy it into the data directory instead") \
            from None


def cmd_assemble(args) -> None:
    profile = get_profile(args.profile)
    written = write_assembled(profile)
    if not profile.grid:
        print(f"profile {profile.name} has no grid: every table is already one dataset and model")
    for path in written:
        print(f"{path}")


def cmd_readme(args) -> None:
    changed = readme.update_readme(Path(args.readme), Path(args.executed))
    print(f"{args.readme}: results table {'rewritten' if changed else 'unchanged'} from {args.executed}")


def cmd_html(args) -> None:
    pages = publish.export_html(Path(args.executed), Path(args.out))
    print(f"{args.out}: {len(pages) - 1} notebooks exported to HTML from {args.executed} (index.html links them)")


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "audit": cmd_audit, "runs": cmd_runs, "profiles": cmd_profiles,
            "sweep": cmd_sweep, "grid": cmd_grid, "assemble": cmd_assemble, "readme": cmd_readme, "html": cmd_html}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            out = COMMANDS[args.command](args)
    except TempscaleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file or folder the user named (or the run store) that the OS refuses: their call
        where = f": {err.filename}" if err.filename else ""
        print(f"error: {err.strerror or type(err).__name__}{where}; check the path and its permissions",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished epochs and evaluation batches are kept; rerun the same command to resume",
              file=sys.stderr)
        return 130
    if getattr(args, "json", False) and out is not None:
        print(json.dumps(out, default=str))
    return 0
