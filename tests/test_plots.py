"""tempscale.plots: one colour per τ everywhere, files written where and how the project expects."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from tempscale import analysis as A  # noqa: E402
from tempscale import plots as P  # noqa: E402
from tempscale.profiles import PAPER_TAUS, THESIS_EXTRA_TAUS, get_profile  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _warmth(color):
    r, _, b = to_rgb(color)
    return r - b


def test_every_paper_tau_has_its_own_fixed_colour():
    grid = PAPER_TAUS + THESIS_EXTRA_TAUS
    colors = [P.tau_color(t) for t in grid]
    assert len(set(colors)) == len(grid)
    assert P.tau_color(50) == P.tau_color(50.0) == P.TAU_COLORS[50.0]   # int or float: same colour
    assert _warmth(P.tau_color(0.1)) < 0 < _warmth(P.tau_color(100))    # low τ cool, high τ warm
    assert _warmth(P.tau_color(0.5)) < _warmth(P.tau_color(50))
    assert P.tau_palette([1, 50]) == {1.0: P.TAU_COLORS[1.0], 50.0: P.TAU_COLORS[50.0]}
    assert P.tau_label(50.0) == "τ = 50" and P.tau_label(0.5) == "τ = 0.5"


def test_off_grid_tau_interpolates_and_bad_tau_fails():
    c = P.tau_color(3.0)   # between 1 and 10
    assert c not in P.TAU_COLORS.values() and c.startswith("#")
    assert P.tau_color(1000.0) == P.TAU_COLORS[150.0] and P.tau_color(0.01) == P.TAU_COLORS[0.1]   # clipped
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            P.tau_color(bad)


def test_use_style_sets_readable_fonts():
    P.use_style()
    assert matplotlib.rcParams["font.size"] >= 12
    assert matplotlib.rcParams["axes.titlesize"] >= 13
    assert matplotlib.rcParams["axes.spines.top"] is False


def test_save_figure_writes_png_and_pdf(tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPSCALE_FIGURES", str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], color=P.tau_color(1))
    paths = P.save_figure(fig, "fig2_tsne", get_profile("smoke"))
    assert [p.name for p in paths] == ["fig2_tsne__digits_resnet8.png", "fig2_tsne__digits_resnet8.pdf"]
    assert all(p.parent == tmp_path / "smoke" for p in paths)          # non-quick profiles get their own folder
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    quick = P.save_figure(fig, "fig2_tsne", "quick")                    # quick → figures/ itself (committed)
    assert quick[0] == tmp_path / "fig2_tsne.png" and quick[0].exists()  # a bare name: no dataset/model to add
    other = P.save_figure(fig, "fig2_tsne", get_profile("quick", dataset="cifar100", arch="wrn28_10"))
    assert other[0] == tmp_path / "fig2_tsne__cifar100_wrn28_10.png"     # beside the digits one, not over it


def test_save_figure_is_reproducible(tmp_path):
    fig, ax = plt.subplots()
    ax.bar([0, 1], [1, 2])
    a = P.save_figure(fig, "fig7_prototype_variance", directory=tmp_path / "a")
    b = P.save_figure(fig, "fig7_prototype_variance", directory=tmp_path / "b")
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()                      # no timestamps in the files


@pytest.mark.parametrize("bad", ["figs/fig1", "fig1.png", "", "../x", "a b"])
def test_save_figure_rejects_bad_names(tmp_path, bad):
    fig, _ = plt.subplots()
    with pytest.raises(ValueError):
        P.save_figure(fig, bad, directory=tmp_path)


def test_figure_helpers_draw_one_panel_per_tau():
    P.use_style()
    W, f, true = A.fig1_toy()
    toy = A.toy_update_direction(W, f, true, (0.5, 1.0, 50.0))
    fig = P.plot_update_direction(toy, taus=(0.5, 50.0))
    assert len(fig.axes) == 3

    emb = {t: np.random.default_rng(0).normal(size=(30, 2)) for t in (0.5, 1.0, 50.0)}
    labels = np.repeat(np.arange(3), 10)
    fig = P.plot_tsne_panels(emb, labels, scores={0.5: 0.1, 1.0: 0.2, 50.0: 0.3})
    assert len(fig.axes) == 3 and "0.300" in fig.axes[2].get_title()

    table = pd.DataFrame({"tau": np.repeat([1.0, 50.0, 100.0], 20), "var_distance": np.random.rand(60),
                          "var_cosine": np.random.rand(60)})
    fig = P.plot_variance_boxes(table, {"var_distance": "distance", "var_cosine": "cosine"})
    assert len(fig.axes) == 2
    assert len(fig.axes[0].get_xticklabels()) == 3                    # a box per τ

    fig = P.plot_tau_bars({1.0: 0.2, 50.0: -0.1}, "silhouette")
    assert len(fig.axes[0].patches) == 2

    logits = pd.concat([pd.DataFrame({"tau": t, "sample": s, "class": np.arange(4), "logit_clean": np.arange(4.0),
                                      "logit_adv": np.arange(4.0)[::-1], "label": 3, "pred_clean": 3, "pred_adv": 0})
                        for t in (1.0, 50.0) for s in (0, 5)])
    fig = P.plot_logit_bars(logits)
    assert len(fig.axes) == 4
    saturated = P.plot_logit_bars(logits.assign(grad_l1=[0.0 if t == 50.0 else 1.0 for t in logits["tau"]]))
    notes = [ax for ax in saturated.axes if any("saturated" in t.get_text() for t in ax.texts)]
    assert len(notes) == 2                                            # only the τ = 50 panels (zero input gradient)

    weights = A.sample_weights_from_logits(np.random.default_rng(0).normal(size=(16, 4)) * 5,
                                           np.arange(16) % 4, (1.0, 50.0))
    ess = A.sample_weight_summary(weights)
    fig = P.plot_sample_weights(weights, ess, ess_own=ess.assign(ess_fraction=0.5))
    assert len(fig.axes) == 2 and fig.axes[1].get_legend() is not None

    geo = {t: {"distance": np.arange(4.0), "cosine": np.linspace(-1, 1, 4), "label": 1} for t in (1.0, 50.0)}
    fig = P.plot_prototype_profile(geo)
    assert sum(ax.get_visible() for ax in fig.axes) == 4              # 2 panels, each with a twin axis
