"""Where runs, data and figures live, whatever the working directory (notebooks run from notebooks/).

Environment variables win: TEMPSCALE_RUNS, TEMPSCALE_DATA, TEMPSCALE_FIGURES. Otherwise folders at the project root
when the library runs from a checkout, else the working directory. Every table and figure file written is also
appended to the file named by TEMPSCALE_OUTPUT_LOG, when set: ``./run_all.sh`` stamps a notebook run with exactly the
files it wrote, even while another notebook writes into the same folder.
"""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    root = Path(__file__).resolve().parents[2]
    return root if (root / "run_all.sh").exists() else Path.cwd()


def runs_dir() -> Path:
    return Path(os.environ.get("TEMPSCALE_RUNS") or project_root() / "runs")


def data_dir() -> Path:
    return Path(os.environ.get("TEMPSCALE_DATA") or project_root() / "data")


def figures_dir(profile: str = "quick") -> Path:
    """figures/ for the quick profile (committed); figures/<profile>/ for the others, so tests never overwrite it."""
    base = Path(os.environ.get("TEMPSCALE_FIGURES") or project_root() / "figures")
    return base if profile == "quick" else base / profile


def note_output(path: Path) -> None:
    """Append `path` to the output log of the running notebook (TEMPSCALE_OUTPUT_LOG), if there is one."""
    log = os.environ.get("TEMPSCALE_OUTPUT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{Path(path).resolve()}\n")


def output_tag(profile) -> str:
    """``<dataset>_<arch>`` of a profile: every table and figure file carries it, so the runs of one profile on
    several datasets and models (the paper's Tables I/II, the thesis' WRN and ViT rows) sit side by side."""
    dataset = str(profile.dataset)
    if dataset.startswith("imagefolder:"):
        dataset = "imagefolder-" + Path(dataset.split(":", 1)[1]).name
    return f"{dataset}_{profile.arch}"


def output_path(profile, stem: str) -> Path:
    """``<figures_dir(profile)>/<stem>__<dataset>_<arch>`` (no extension): where a table or figure of `profile` goes."""
    return figures_dir(profile.name) / f"{stem}__{output_tag(profile)}"
