"""One house style for every figure: fonts that read on a projector, one colour per τ everywhere, one way to save.

- `use_style()` sets the rc parameters (call it once at the top of a notebook). It leaves the layout engine alone
  (so `fig.tight_layout()` works as usual); the helpers below use constrained layout.
- `tau_color(τ)` gives the same colour for the same τ in every figure: cool (blue) for low τ, warm (red) for high τ,
  anchored on the paper's grid (Table I plus the thesis' 150); a τ between anchors is interpolated on log τ.
- `save_figure(fig, name, P)` writes ``<figures_dir>/<name>__<dataset>_<arch>.png`` (150 dpi) and ``.pdf``, without
  timestamps in the files, so regenerating an unchanged figure gives the same PDF. Names follow the paper's figures:
  ``fig1_update_direction``, ``fig2_tsne``, ``fig5_logits_pgd``, ``fig6_prototype_distance``,
  ``fig7_prototype_variance``, ...
- Figure functions live beside this module, one per figure family (`plots.analysis`, …); each returns the Figure.
"""
from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LinearSegmentedColormap, to_hex

from ..io import atomic_write_bytes
from ..paths import figures_dir, note_output, output_path

# --- colours ------------------------------------------------------------------------------------------------------

# The paper's τ grid (Table I) plus the thesis' 150. Cool → warm; every colour keeps contrast on white (no pale
# yellows) and neighbours differ in hue or lightness.
TAU_COLORS: Mapping[float, str] = {
    0.1: "#1b2a6b",    # deep indigo
    0.5: "#2166ac",    # blue
    1.0: "#3a9fc7",    # sky blue
    10.0: "#5aae61",   # green: the neutral middle
    30.0: "#e0a100",   # amber
    50.0: "#f0642a",   # orange
    70.0: "#d6272c",   # red
    100.0: "#9e1a3c",  # crimson
    150.0: "#5e1036",  # dark wine
}

_ANCHORS = sorted(TAU_COLORS)
_LOG_LO, _LOG_HI = math.log10(_ANCHORS[0]), math.log10(_ANCHORS[-1])
TAU_CMAP = LinearSegmentedColormap.from_list(
    "tempscale_tau", [((math.log10(t) - _LOG_LO) / (_LOG_HI - _LOG_LO), TAU_COLORS[t]) for t in _ANCHORS])

# Colours for quantities that are not temperatures (kept out of the τ palette's hues where possible).
METRIC_COLORS: Mapping[str, str] = {
    "distance": "#222222",      # Euclidean distance (Fig. 6)
    "cosine": "#8e44ad",        # cosine similarity (Fig. 6)
    "clean": "#4c72b0",         # logits before the attack (Fig. 5, blue as in the paper)
    "adversarial": "#dd8452",   # logits after the attack (Fig. 5, orange as in the paper)
    "true": "#2ca02c",          # marks the true class
    "hard": "#d62728",          # marks the hard (error-prone) class
    "neutral": "#7f7f7f",
}


def tau_color(tau: float) -> str:
    """The colour of τ in every figure: the fixed anchor colour, else interpolated on log τ (clipped to the grid)."""
    tau = float(tau)
    if not math.isfinite(tau) or tau <= 0:
        raise ValueError(f"τ must be a finite number > 0, got {tau!r}")
    for anchor, color in TAU_COLORS.items():
        if math.isclose(tau, anchor, rel_tol=1e-9):
            return color
    pos = (math.log10(tau) - _LOG_LO) / (_LOG_HI - _LOG_LO)
    return to_hex(TAU_CMAP(min(max(pos, 0.0), 1.0)))


def tau_palette(taus: Iterable[float]) -> dict[float, str]:
    """{τ: colour} for seaborn's `palette=` (keys as floats)."""
    return {float(t): tau_color(t) for t in taus}


def tau_label(tau: float) -> str:
    """'τ = 0.5', 'τ = 50': the one way a temperature is written in figures."""
    return f"τ = {float(tau):g}"


def class_colors(n: int) -> list[str]:
    """Distinct colours for n classes (t-SNE scatter): tab10 up to 10 classes, then tab20, then a hue wheel."""
    if n <= 10:
        return [to_hex(c) for c in plt.get_cmap("tab10").colors[:n]]
    if n <= 20:
        return [to_hex(c) for c in plt.get_cmap("tab20").colors[:n]]
    return [to_hex(plt.get_cmap("hsv")(i / n)) for i in range(n)]


# --- style --------------------------------------------------------------------------------------------------------

STYLE_RC = {
    "figure.dpi": 100,              # on screen; files use SAVE_DPI
    "figure.figsize": (8.0, 4.8),
    "font.family": "DejaVu Sans",   # ships with matplotlib: identical glyphs (τ, ≈, ≠) on every machine
    "font.size": 13,
    "axes.titlesize": 14,
    "axes.titleweight": "bold",
    "axes.labelsize": 13,
    "xtick.labelsize": 11.5,
    "ytick.labelsize": 11.5,
    "legend.fontsize": 11.5,
    "legend.title_fontsize": 12,
    "legend.frameon": False,
    "figure.titlesize": 15,
    "figure.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.35,
    "grid.linewidth": 0.8,
    "lines.linewidth": 2.0,
    "lines.markersize": 6.5,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.08,
    "pdf.fonttype": 42,             # editable text in the PDFs
    "svg.fonttype": "none",
}
SAVE_DPI = 150


def use_style() -> None:
    """Apply the house style (seaborn whitegrid + STYLE_RC). Idempotent."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", rc=STYLE_RC)
    mpl.rcParams.update(STYLE_RC)


# --- saving -------------------------------------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def save_figure(fig: plt.Figure, name: str, profile="quick", formats: Sequence[str] = ("png", "pdf"),
                directory: str | Path | None = None) -> list[Path]:
    """Write `fig` as .png (150 dpi) and .pdf; return the paths written.

    With a `Profile` the files are ``<figures_dir>/<name>__<dataset>_<arch>.*`` (`tempscale.paths.output_path`), so
    one profile's runs on several datasets and models sit side by side; with a profile name, ``<figures_dir>/<name>.*``.
    `name` is a bare file stem named after the paper's figure, e.g. "fig7_prototype_variance" (no folders, no
    extension). Files carry no creation date, so they are reproducible.
    """
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith((".png", ".pdf")):
        raise ValueError(f"figure name must be a bare file stem like 'fig2_tsne', got {name!r}")
    if isinstance(profile, str):
        stem = figures_dir(profile) / name
    else:
        stem = output_path(profile, name)
    if directory is not None:
        stem = Path(directory) / stem.name
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None} if fmt == "png" else None
        image = io.BytesIO()   # whole or absent: a reader never sees half a figure
        fig.savefig(image, format=fmt, dpi=SAVE_DPI, metadata=metadata)
        atomic_write_bytes(path, image.getvalue())
        note_output(path)
        paths.append(path)
    return paths
