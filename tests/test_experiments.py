"""The code invariants behind notebooks 00–06 (`tempscale.experiments.*`, `plots.training`, `plots.robustness`,
`plots.clusters`), on untrained models and a few digits: shapes, one row per τ, value ranges, closed forms."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tempscale import paper  # noqa: E402
from tempscale.attacks import attack_spec  # noqa: E402
from tempscale.experiments import eval_set  # noqa: E402
from tempscale.experiments import geometry as G  # noqa: E402
from tempscale.experiments import gradients as GR  # noqa: E402
from tempscale.experiments import robustness as R  # noqa: E402
from tempscale.experiments import training as T  # noqa: E402
from tempscale.experiments import variation as V  # noqa: E402
from tempscale.evaluation import interval_table  # noqa: E402
from tempscale.stats import interval_text  # noqa: E402
from tempscale.tables import INTERVAL  # noqa: E402
from tempscale.plots.clusters import plot_cluster_scores  # noqa: E402
from tempscale.plots.robustness import plot_robustness_per_tau  # noqa: E402
from tempscale.plots.training import plot_convergence, plot_runs_history  # noqa: E402
from tempscale.profiles import ASSUMPTIONS, get_profile  # noqa: E402
from tempscale.train import build_for_spec  # noqa: E402

SMOKE = get_profile("smoke")
TAUS = (1.0, 50.0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: a second torch thread only adds synchronisation, which dominates on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass
class FakeRun:
    """What the experiment functions read from a stored run, without training one."""

    tau: float
    model: torch.nn.Module
    result: dict = field(default_factory=dict)
    history: list = field(default_factory=list)

    @property
    def dir(self) -> Path:
        return Path(f"/runs/fake-tau{self.tau:g}")

    def load_model(self, device="cpu") -> torch.nn.Module:
        return self.model


def _untrained(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_for_spec(SMOKE.spec(1.0)).eval()


@pytest.fixture(scope="module")
def digits():
    """32 test digits at the smoke profile's resolution (every class present)."""
    return eval_set(SMOKE, n=32)


@pytest.fixture(scope="module")
def fake_runs():
    """One untrained model per τ, with the result and history fields notebook 01 reads."""
    runs = {}
    for i, tau in enumerate(TAUS):
        history = [{"epoch": e, "test_errors": 100 - 30 * e - i, "train_loss": 2.0 / e, "test_total": 450}
                   for e in (1, 2)]
        result = {"clean_acc": 0.95 - 0.5 * i, "final_train_loss": 0.1, "epochs_done": 2, "diverged": False,
                  "provenance": {"elapsed_s": 1.5}}
        runs[tau] = FakeRun(tau, _untrained(i), result, history)
    return runs


# --- notebook 00 -------------------------------------------------------------------------------------------------


def test_closed_forms_equal_autograd_at_every_tau(digits):
    x, y = digits
    taus = (0.5, 1.0, 50.0)
    checks = GR.gradient_checks(_untrained(0), x[:8], y[:8], taus)
    assert list(checks.index) == list(taus), "one check per τ"
    assert set(GR.CHECK_COLUMNS) <= set(checks.columns)
    assert (checks["max_abs_grad_df"] > 0).all(), "the gradients compared must not vanish"
    assert (checks["max_rel_err"] < 1e-5).all(), "closed forms (Eqs. 4-9) disagree with autograd"
    assert (checks["max_abs_err"] < 1e-5 * np.maximum(1, checks["max_abs_grad_dW_batch"])).all()


def test_fig1_toy_low_tau_pushes_from_the_hard_class_high_tau_from_all():
    toy = GR.fig1_directions()
    table = toy.table().set_index("tau")
    nearest = GR.nearest_negative(toy)
    assert list(table.index) == list(GR.FIG1_TAUS)
    assert (table.loc[[0.1, 0.5], "hard_class"] == nearest).all(), "low τ: the hard class is the nearest negative"
    assert table.loc[0.5, "hard_share"] > 0.8, "low τ: the hard class dominates the push"
    assert table["negative_entropy"].is_monotonic_increasing, "shares of the push equalise as τ grows"
    assert table.loc[100.0, "negative_entropy"] > 0.99 and table.loc[100.0, "cos(dir, w_true)"] > 0.99
    assert table["|direction|"].is_monotonic_decreasing, "Eq. 6: the step shrinks like 1/τ"
    reading = GR.fig1_reading(toy)
    assert f"comes from w{nearest + 1}" in reading and "entropy rises with τ: True" in reading


def test_sample_weights_one_per_sample_and_tau(digits, fake_runs):
    x, y = digits
    weights, summary = GR.fixed_logit_weights(_untrained(0), x, y, TAUS)
    assert len(weights) == len(y) * len(TAUS), "one weight per sample per τ"
    assert weights["weight"].between(0, 1).all()
    assert np.allclose(weights.groupby("tau")["share"].sum(), 1.0)
    assert list(summary.index) == list(TAUS)
    assert GR.n_misclassified(weights) == int((~weights[weights["tau"] == 1.0]["correct"]).sum())

    own = GR.own_tau_weights(fake_runs, x, y)
    assert list(own.index) == list(TAUS), "one row per trained τ"
    assert own["ess_fraction"].between(1 / len(y), 1 + 1e-12).all()
    assert (own["logit range (median max − min)"] > 0).all()
    assert own.loc[1.0, "clean acc (%)"] == pytest.approx(95.0)


# --- notebooks 01 and 06 -------------------------------------------------------------------------------------------


def test_runs_table_one_row_per_tau_and_written_without_run_folders(fake_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPSCALE_FIGURES", str(tmp_path))
    summary = T.runs_table(fake_runs)
    assert list(summary.index) == list(TAUS), "one row per τ of the grid"
    assert summary.loc[50.0, "clean acc (%)"] == pytest.approx(45.0)
    paths = T.write_runs_table(summary, SMOKE)
    header = paths["csv"].read_text().splitlines()[0]
    assert "train s" in header and "run" not in header.split(",")
    assert T.not_converged(fake_runs) == [50.0]            # 45% < 90%
    assert T.not_converged(fake_runs, min_accuracy=0.4) == []


def test_convergence_curves_cover_every_lr_tau_and_seed(fake_runs, monkeypatch):
    trained = []

    def fake_get_or_train_each(specs, runs_dir=None, **_):
        trained.extend(specs)
        return [fake_runs[1.0]] * len(specs)

    monkeypatch.setattr(T, "get_or_train_each", fake_get_or_train_each)
    profile = get_profile("smoke", convergence={"taus": (0.5, 50.0), "lrs": (0.1, 0.01), "seeds": (0, 1),
                                                "epochs": 3})
    curves = T.convergence_curves(profile)
    assert set(curves["τ"]) == {0.5, 50.0} and set(curves["lr"]) == {0.1, 0.01}
    assert curves.groupby(["lr", "τ"])["seed"].nunique().eq(2).all(), "every (lr, τ) has every seed"
    assert len(trained) == 2 * 2 * 2
    sgd = T.paper_sgd()
    assert all(spec.epochs == 3 and spec.optimizer == sgd["optimizer"] == "sgd" for spec in trained)
    assert {spec.lr for spec in trained} == {0.1, 0.01}


def test_convergence_band_table_and_ranking(tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPSCALE_FIGURES", str(tmp_path))
    rows = [{"lr": 0.1, "τ": tau, "seed": seed, "epoch": epoch, "test_errors": errors + seed, "test_total": 100}
            for tau, curve in ((1.0, (40, 20, 10)), (50.0, (30, 6, 5)))
            for seed in (0, 2) for epoch, errors in zip((1, 2, 3), curve)]
    band = T.convergence_band(pd.DataFrame(rows))
    first = band[(band["τ"] == 1.0) & (band["epoch"] == 1)].iloc[0]
    assert (first["mean"], first["min"], first["max"]) == (41, 40, 42)
    speed = T.convergence_table(band)
    assert speed.loc[(0.1, 50.0), "final test errors (mean)"] == 6
    assert speed.loc[(0.1, 50.0), "final errors (min–max)"] == "5–7"
    assert speed.loc[(0.1, 50.0), "epoch reaching 2× final"] == 2       # 7 ≤ 12 first at epoch 2
    assert speed.loc[(0.1, 1.0), "epoch reaching 2× final"] == 2        # 21 ≤ 22
    assert T.final_error_ranking(speed, [0.1]) == ["lr 0.1: final test errors, best to worst: τ=50: 6.0, τ=1: 11.0"]
    assert T.write_convergence_table(speed, SMOKE)["md"].exists()

    fig = plot_convergence(band, taus=(1.0, 50.0), lrs=(0.1,), test_total=100)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 2
    assert fig.axes[0].get_ylabel() == "test errors (of 100)"


def test_runs_history_draws_one_line_per_tau_and_panel(fake_runs):
    fig = plot_runs_history(fake_runs)
    errors, loss = fig.axes
    assert len(errors.lines) == len(loss.lines) == len(TAUS)
    assert [t.get_text() for t in errors.get_legend().get_texts()] == ["τ = 1", "τ = 50"]


# --- notebook 02 ------------------------------------------------------------------------------------------------


def test_paper_reference_is_the_profiles_model_family():
    assert R.paper_reference(SMOKE) == R.PaperReference("resnet50", "cifar10")      # digits → CIFAR-10
    assert R.paper_reference(SMOKE).table_id == "I"
    vit = R.paper_reference(get_profile("paper", arch="vit_small_patch16_224", dataset="cifar100"))
    assert (vit.table_id, vit.dataset, str(vit)) == ("II", "cifar100", "vit_small_patch16_224 on cifar100")
    assert R.attack_names(False) == ["clean", "corruptions", "pgd20", "cw_linf"]
    assert R.attack_names(True)[-5:] == ["cw_l2", "apgd_ce", "square", "autoattack", "pgd20_targeted"]


def _evaluation(taus=(1.0, 50.0)):
    """What `evaluate_grid` returns for the appendix suite, with made-up numbers."""
    ours = pd.DataFrame({"clean": [99.0, 98.0], "corruptions": [80.0, 70.0], "pgd20": [10.0, 60.0],
                         "cw_linf": [5.0, 20.0], "cw_l2": [1.0, 2.0], "apgd_ce": [3.0, 40.0], "square": [4.0, 8.0],
                         "worst_case": [0.0, 2.0]}, index=pd.Index(taus, name="tau"))
    per_corruption = {name: 0.5 for name in paper.CORRUPTION_KEYS}
    reports = {tau: {"clean": {"n": 64}, "corruptions": {"source": "generated", "per_corruption": per_corruption}}
               for tau in taus}
    return ours, reports


def test_tables_side_by_side_with_the_paper(tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPSCALE_FIGURES", str(tmp_path))
    ours, reports = _evaluation()
    ref = R.paper_reference(SMOKE)
    scale = R.scale_label(SMOKE, reports)
    assert scale == "smoke profile: digits, resnet8, 64 test images"
    assert R.corruption_source(reports) == "generated"

    main = R.main_table(ours, ref, scale)
    published = paper.robustness("resnet50", "cifar10")
    assert list(main.columns.get_level_values("metric").unique()) == R.MAIN_COLUMNS
    assert main.loc[50.0, ("pgd20", "this run")] == 60.0
    assert main.loc[50.0, ("pgd20", "paper")] == published.loc[50.0, "pgd20"]
    assert set(published.index) <= set(main.index)
    assert {p.name for p in R.write_main_table(main, ref, SMOKE).values()} == {
        "table_I__digits_resnet8.md", "table_I__digits_resnet8.csv", "table_I__digits_resnet8.tex"}

    per_attack = R.attack_table(ours, ref, scale)
    assert list(per_attack.columns.get_level_values("metric").unique()) == [c for c in R.ATTACK_COLUMNS if c in ours]
    corruptions = R.per_corruption(reports, ours)
    assert corruptions.shape == (len(ours), 20), "19 corruptions + their mean, one row per τ"
    assert (corruptions.drop(columns="corruptions") == 50.0).all().all()
    written = R.write_appendix_tables(per_attack, corruptions, ref, scale, 3, SMOKE)
    assert len(written) == 6 and all(p.exists() for p in written)
    assert "severity 3" in (tmp_path / "smoke" / "table_3_4_corruptions__digits_resnet8.md").read_text()


def test_low_high_contrast_averages_each_side():
    ours, _ = _evaluation()
    contrast = R.low_high_contrast(ours)
    assert list(contrast.index) == R.CONTRAST_COLUMNS
    assert contrast.loc["pgd20"].tolist() == [10.0, 60.0]
    assert R.low_high_contrast(ours.loc[[50.0]]).empty, "no low τ: nothing to contrast"


def test_robustness_per_tau_draws_one_line_per_evaluation():
    ours, _ = _evaluation()
    fig = plot_robustness_per_tau(ours, "smoke profile")
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["clean", "corruptions", "pgd20", "cw_linf", "cw_l2", "apgd_ce", "square"]
    assert "smoke profile" in fig.axes[0].get_title()


# --- notebooks 03–05 --------------------------------------------------------------------------------------------


def test_cluster_scores_one_row_per_tau_in_range(digits, fake_runs):
    x, y = digits
    scores, features = G.cluster_table(fake_runs, x, y, list(TAUS))
    assert list(scores.index) == list(TAUS), "one score row per τ"
    assert scores[["silhouette_cosine", "silhouette_euclidean"]].apply(lambda c: c.between(-1, 1)).all().all()
    assert (scores["davies_bouldin"] >= 0).all()
    assert all(f.shape[0] == len(y) for f in features.values())
    assert G.cluster_grid(SMOKE) == sorted({1.0, 50.0} | set(SMOKE.tsne.taus))

    fig = plot_cluster_scores(scores, "clusters")
    assert len([ax for ax in fig.axes if ax.get_title()]) == 2 and fig.get_suptitle() == "clusters"


def test_tsne_gives_one_finite_point_per_image():
    features = {1.0: torch.randn(40, 8, generator=torch.Generator().manual_seed(0))}
    embeddings = G.tsne_embeddings(features, [1.0], seed=0)
    assert embeddings[1.0].shape == (40, 2) and np.isfinite(embeddings[1.0]).all()


def test_verdicts_follow_the_rank_correlation():
    rising = pd.DataFrame({"silhouette_cosine": [0.5, 0.7, 0.9]}, index=pd.Index([0.5, 1.0, 50.0], name="tau"))
    rho = G.rank_correlations(rising)
    assert rho == {"silhouette_cosine": pytest.approx(1.0)}
    assert G.describe_rho(rho) == "silhouette_cosine +1.00"
    assert G.cluster_verdict(rising, rho)[1].endswith(": supported")
    falling = rising.iloc[::-1].set_axis(rising.index)
    assert G.cluster_verdict(falling, G.rank_correlations(falling))[1].endswith(": not supported")
    lines = G.trend_verdicts({"median_var_distance": -0.9, "median_var_cosine": 0.1})
    assert lines[1].endswith("falls with τ, as the paper reports") and lines[2].endswith("no monotone trend with τ")


def test_fig5_needs_a_low_and_a_high_tau():
    assert G.fig5_taus(SMOKE) == [1.0, 50.0]
    with pytest.raises(ValueError, match="Fig. 5 needs"):
        G.fig5_taus(get_profile("smoke", taus=(1.0, 10.0)))


def test_logits_under_attack_stay_in_the_ball_and_never_raise_accuracy(digits, fake_runs):
    x, y = digits
    spec = attack_spec("pgd20", steps=3)
    logits, per_sample = G.logits_under_attack(fake_runs, x[:12], y[:12], spec)
    assert (logits["linf"] <= spec.eps + 1e-6).all(), "adversarial images must stay in the ε-ball"
    assert len(per_sample) == 12 * len(fake_runs), "one summary row per (τ, sample)"
    overview = G.attack_overview(per_sample)
    assert list(overview.columns) == list(G.OVERVIEW_NAMES.values())
    assert (overview["PGD-20 acc (%)"] <= overview["clean acc (%)"] + 1e-9).all(), "an attack cannot raise accuracy"
    assert len(G.saturation_lines(overview)) == len(fake_runs)

    with pytest.warns(UserWarning, match="adding the first ones"):   # untrained models: few usable images
        chosen = G.fig5_samples(per_sample, list(TAUS), n_show=12)
    assert len(chosen) == 12 and len(set(chosen)) == 12
    table = G.fig5_sample_table(per_sample, chosen[:2], [f"digit {i}" for i in range(10)])
    assert table.index.names == ["tau", "sample"] and len(table) == 2 * len(fake_runs)
    assert table["label"].str.startswith("digit ").all()


def test_prototype_variances_one_row_per_image_and_tau_in_range(digits, fake_runs):
    x, y = digits
    geos = G.prototype_geometries(fake_runs, x, y)
    variances = G.variance_table(geos)
    assert len(variances) == len(y) * len(fake_runs), "one row per test image per τ"
    assert (variances.groupby("tau").size() == len(y)).all()
    values = variances[["var_distance", "var_cosine"]]
    assert ((values >= 0) & (values <= 0.25 + 1e-12)).all().all(), "variance of values in [0, 1] ≤ 1/4"
    assert 0 <= G.fig6_sample(geos) < len(y)
    assert list(G.value_ranges(geos).index) == list(TAUS)
    trend = G.variance_trend(variances)
    assert list(trend.index) == list(TAUS) and set(G.TREND_COLUMNS) <= set(trend.columns)
    assert list(G.normalisation_check(variances).columns) == ["median_var_distance", "median_var_cosine",
                                                              "median_var_cosine_raw", "median_cv_distance"]


def test_tables_carry_95_percent_intervals_over_images():
    ours, _ = _evaluation()
    reports = {tau: {"pgd20": {"n": 200, "n_correct": k, "accuracy": k / 200},
                     "corruptions": {"per_corruption": {"fog": 0.5, "snow": 1.0}, "n": {"fog": 10, "snow": 10}}}
               for tau, k in ((1.0, 0), (50.0, 120))}
    intervals = interval_table(reports)
    assert intervals.loc[1.0, "pgd20"] == "0.0–1.9", "0 of 200 correct is still uncertain: Wilson, not Wald"
    assert intervals.loc[50.0, "pgd20"] == "53.1–66.5"
    assert intervals.loc[1.0, "corruptions"] == interval_text(15, 20), "-C pools every corrupted image"
    main = R.main_table(ours, R.paper_reference(SMOKE), "smoke", intervals)
    assert main.loc[50.0, ("pgd20", INTERVAL)] == "53.1–66.5"
    assert list(main.columns).index(("pgd20", INTERVAL)) == list(main.columns).index(("pgd20", "this run")) + 1
    assert main.loc[1.0, ("clean", "this run")] == 99.0, "numbers stay numbers"


def test_threat_model_scales_every_linf_attack_and_keeps_the_paper_default():
    from tempscale.attacks import ATTACKS

    quick = get_profile("quick")
    assert SMOKE.attacks.changes("pgd20", ATTACKS["pgd20"]) == {}, "smoke keeps the paper's 8/255: same cache keys"
    changes = quick.attacks.changes("pgd20", ATTACKS["pgd20"])
    assert changes["eps"] == quick.attacks.eps and changes["alpha"] == pytest.approx(quick.attacks.eps / 4)
    assert quick.attacks.changes("square", ATTACKS["square"]) == {"eps": quick.attacks.eps, "n_queries": 500}
    assert "eps" not in quick.attacks.changes("cw_l2", ATTACKS["cw_l2"]), "L2 attacks keep their own radius"
    assert "quick.eps" in ASSUMPTIONS and R.threat_model(quick).startswith("L∞ ε = 24/255 (paper: 8/255")


def test_seed_conclusions_compare_differences_with_the_seed_range():
    per_seed = pd.DataFrame({"pgd20": [1.0, 3.0, 2.0, 90.0, 80.0, 85.0], "clean": [99.0, 98.0, 97.0, 98.5, 97.0, 99.0]},
                            index=pd.MultiIndex.from_product([(1.0, 50.0), (0, 1, 2)], names=["tau", "seed"]))
    lines = V.seed_conclusions(per_seed)
    assert any("pgd20" in line and "exceeds" in line for line in lines)
    assert any("clean" in line and "is within" in line for line in lines)
    summary = V.seed_summary(per_seed)
    assert summary.loc[50.0, ("pgd20", "range")] == 10.0 and summary.loc[1.0, ("pgd20", "mean")] == 2.0
