"""Every figure in one house style: `style` (colours per τ, rc parameters, `save_figure`) is the leaf; one module per
figure family draws with it. Notebooks import from here."""
from .analysis import (plot_logit_bars, plot_prototype_profile, plot_sample_weights, plot_tau_bars,
                       plot_tsne_panels, plot_update_direction, plot_variance_boxes)
from .style import (METRIC_COLORS, SAVE_DPI, STYLE_RC, TAU_COLORS, class_colors, save_figure, tau_color, tau_label,
                    tau_palette, use_style)
from .calibration import plot_calibration
from .audit import plot_accuracy_vs_tau, plot_gradients_vs_tau, plot_robustness_vs_eps
from .clusters import plot_cluster_scores
from .robustness import plot_robustness_per_tau
from .training import plot_convergence, plot_runs_history
from .methods import plot_gradcam_grid, plot_ldd_tables, plot_madry_at
