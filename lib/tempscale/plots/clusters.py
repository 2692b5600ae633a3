"""Notebook 03's cluster scores per τ (the numbers behind Figs. 2–3's t-SNE panels)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from .analysis import plot_tau_bars

# (column of `experiments.geometry.cluster_table`, y label, panel title)
SILHOUETTE_PANELS = (("silhouette_cosine", "silhouette (cosine)", "silhouette, cosine distance"),
                     ("silhouette_euclidean", "silhouette (Euclidean)", "silhouette, Euclidean distance"))


def plot_cluster_scores(scores: pd.DataFrame, title: str) -> plt.Figure:
    """Cosine and Euclidean silhouette of the true classes in f(x), one bar per τ (index of `scores`)."""
    fig, axes = plt.subplots(1, 2, figsize=(max(9, 1.6 * len(scores) + 3), 4.4), layout="constrained")
    for ax, (column, ylabel, panel_title) in zip(axes, SILHOUETTE_PANELS):
        plot_tau_bars(scores[column].to_dict(), ylabel, panel_title, ax=ax)
    fig.suptitle(title)
    return fig
