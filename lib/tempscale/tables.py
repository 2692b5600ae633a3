"""Result tables in one house style: "paper | this run" side by side, written as Markdown, CSV and LaTeX.

Why: every notebook that regenerates a published table shows the published numbers next to ours, at the scale the
run actually had (a quick CPU profile is not the paper's setting, and the table must say so).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_write_text
from .paths import note_output

SOURCES: tuple[str, str] = ("paper", "this run")
INTERVAL = "95% CI"          # column of the 95% interval over images beside "this run" (`with_intervals`)
MISSING_MD = "—"
MISSING_TEX = "---"


def format_tau(tau: float, latex: bool = False) -> str:
    """Row label for a temperature: "τ = 0.5", "τ = 50" (no trailing zeros, no exponent); ``latex`` gives
    "$\\tau = 0.5$" so pdflatex needs no Unicode support."""
    value = np.format_float_positional(float(tau), trim="-")
    return f"$\\tau = {value}$" if latex else f"τ = {value}"


def _tau_indexed(frame: pd.DataFrame) -> pd.DataFrame:
    """The same frame with a float index named "tau", so 1 and 1.0 from two sources land on the same row."""
    out = frame.copy()
    out.index = pd.Index(out.index.astype(float), name="tau")
    if out.index.has_duplicates:
        raise ValueError(f"duplicate τ in index: {sorted(out.index[out.index.duplicated()].tolist())}")
    return out


def side_by_side(ours: pd.DataFrame, paper: pd.DataFrame | None, scale: str, *, reference: str = "paper",
                 by_tau: bool = True) -> pd.DataFrame:
    """Columns (metric, source) with source `reference` ("paper", or "thesis" for the thesis' tables) then
    "this run", metrics in the order of ``ours``; a metric or row one side lacks is NaN there. ``scale`` says what
    "this run" was (e.g. "quick profile: digits, resnet8, 450 test images") and travels in ``attrs["scale"]``.

    Rows: with `by_tau`, one per τ of either frame, sorted (1 and 1.0 are the same row); otherwise the published
    rows in their printed order (any index, e.g. the LDD tables' method × role), then the rows only ours has."""
    if by_tau:
        ours = _tau_indexed(ours)
        paper = _tau_indexed(paper) if paper is not None else pd.DataFrame(index=pd.Index([], dtype=float, name="tau"))
        index = pd.Index(ours.index.union(paper.index).sort_values(), name="tau")
    else:
        paper = paper if paper is not None else pd.DataFrame(index=ours.index[:0])
        index = paper.index.append(ours.index[~ours.index.isin(paper.index)])
    metrics = list(ours.columns)
    columns = pd.MultiIndex.from_product([metrics, (reference, SOURCES[1])], names=["metric", "source"])
    out = pd.DataFrame(np.nan, index=index, columns=columns, dtype=float)
    for metric in metrics:
        out[(metric, SOURCES[1])] = ours[metric].reindex(index).astype(float)
        if metric in paper.columns:
            out[(metric, reference)] = paper[metric].reindex(index).astype(float)
    out.attrs["scale"] = scale
    return out


def with_intervals(table: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """`side_by_side`'s table with a (metric, "95% CI") column after each "this run" column that `intervals`
    (text per τ and metric, e.g. `evaluation.interval_table`) covers; other columns and attrs unchanged."""
    out = table.astype(object)
    for metric in [m for m in dict.fromkeys(table.columns.get_level_values(0)) if m in intervals.columns]:
        position = out.columns.get_loc((metric, SOURCES[1])) + 1
        values = _tau_indexed(intervals)[metric].reindex(_tau_indexed(table).index).to_numpy()
        out.insert(position, (metric, INTERVAL), [MISSING_MD if pd.isna(v) else v for v in values])
    out.attrs = dict(table.attrs)
    return out


# --- writing ---------------------------------------------------------------------------------------------------------


def _atomic_write_text(path: Path, text: str) -> None:
    """A reader never sees half a table (temp file + os.replace)."""
    atomic_write_text(path, text)


def _cell(value: object, missing: str) -> str:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return missing if math.isnan(value) else f"{value:.2f}"
    return missing if value is None else str(value)


def _row_labels(frame: pd.DataFrame, latex: bool) -> list[str]:
    """τ rows get "τ = …"; any other index (e.g. the LDD tables') is shown as is."""
    if frame.index.name == "tau":
        return [format_tau(t, latex=latex) for t in frame.index]
    return [" / ".join(map(str, k)) if isinstance(k, tuple) else str(k) for k in frame.index]


def _column_labels(frame: pd.DataFrame) -> list[str]:
    """(metric, source) → "metric (source)"; flat labels as they are."""
    return [f"{k[0]} ({' / '.join(map(str, k[1:]))})" if isinstance(k, tuple) else str(k) for k in frame.columns]


def _heading(frame: pd.DataFrame, caption: str) -> str:
    """Caption and scale in one line: a reader of the bare file must still see what "this run" was."""
    scale = frame.attrs.get("scale")
    if not scale:
        return caption.strip()
    return f"{caption.strip()} (scale: {scale})" if caption.strip() else f"Scale: {scale}"


def _markdown(frame: pd.DataFrame, caption: str) -> str:
    cells = [[_cell(v, MISSING_MD) for v in row] for row in frame.itertuples(index=False)]
    shown = pd.DataFrame(cells, index=_row_labels(frame, latex=False), columns=_column_labels(frame))
    # disable_numparse: the cells are already formatted; tabulate would otherwise re-parse "7.50" and print "7.5".
    body = shown.to_markdown(colalign=("left", *["right"] * shown.shape[1]), disable_numparse=True)
    heading = _heading(frame, caption)
    return f"{heading}\n\n{body}\n" if heading else f"{body}\n"


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters, so captions and keys like "cw_linf" compile."""
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def _latex(frame: pd.DataFrame, caption: str) -> str:
    cells = [[_cell(v, MISSING_TEX) for v in row] for row in frame.itertuples(index=False)]
    if isinstance(frame.columns, pd.MultiIndex):
        columns = pd.MultiIndex.from_tuples([tuple(latex_escape(p) for p in k) for k in frame.columns])
    else:
        columns = pd.Index([latex_escape(k) for k in frame.columns])
    index = _row_labels(frame, latex=True) if frame.index.name == "tau" else [
        latex_escape(label) for label in _row_labels(frame, latex=False)]
    shown = pd.DataFrame(cells, index=index, columns=columns)
    return shown.to_latex(escape=False, caption=latex_escape(_heading(frame, caption)) or None,
                          column_format="l" + "r" * shown.shape[1], multicolumn_format="c")


def _csv(frame: pd.DataFrame) -> str:
    """Values with 2 decimals; τ written exactly ("0.005" must not become "0.01"), so rows stay distinct."""
    if frame.index.name == "tau":
        frame = frame.set_axis([np.format_float_positional(float(t), trim="-") for t in frame.index], axis=0)
        frame.index.name = "tau"
    mixed = [column for column in frame.columns if frame[column].dtype == object]
    if mixed:   # float_format skips object columns (numbers beside interval text): format their numbers alike
        frame = frame.copy()
        for column in mixed:
            frame[column] = [f"{v:.2f}" if isinstance(v, float) and not math.isnan(v) else v for v in frame[column]]
    return frame.to_csv(float_format="%.2f", lineterminator="\n")


def write_table(df: pd.DataFrame, stem: Path, caption: str = "") -> dict[str, Path]:
    """Write ``<stem>.md``, ``<stem>.csv`` and ``<stem>.tex`` (floats with 2 decimals; missing shown as "—" / "---";
    caption and ``attrs["scale"]`` above the Markdown table and in the LaTeX caption). The CSV keeps the numeric
    index and column levels so it reads back with ``pd.read_csv(path, header=[0, 1], index_col=0)``. Returns the
    paths by format. Parent folders are created; each file appears whole or not at all."""
    stem = Path(stem)
    paths = {fmt: stem.with_name(f"{stem.name}.{fmt}") for fmt in ("md", "csv", "tex")}  # keeps dots in the stem
    _atomic_write_text(paths["md"], _markdown(df, caption))
    _atomic_write_text(paths["csv"], _csv(df))
    _atomic_write_text(paths["tex"], _latex(df, caption))
    for path in paths.values():
        note_output(path)
    return paths
