"""Notebook 08: Low Dimension Distillation at the profile's scale, beside the thesis (Tables 4.1–4.6).

Each thesis table needs a few LDD pairs (`CONFIGURATIONS`, `NEEDED`); tables share pairs (the main model, a large-
stride stem at ratio r, appears in 4.1–4.5). Every number is `tempscale.evaluation.evaluate_run` on the pair's teacher
or student (``part=``, cached under the run's ``evals/<part>``), on the profile's ``ldd.n_eval`` test images.

Rows keep the thesis' labels. Teacher input dimensions are written for the thesis' 32×32 inputs and matched by
reduction ratio (the quick profile's 16×16 digits give 16/8/4/2 where the thesis has 32/16/8/4).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from ..attacks import ATTACKS, attack_spec
from ..data import first_n, load_dataset
from ..evaluation import evaluate_run
from ..inference import predict
from ..methods.ldd import KD_LOSSES, ldd_args
from ..methods.pseudo import ldd_pseudo_args
from ..models import is_vit
from ..paper import ldd_table
from ..paths import output_path
from ..profiles import Profile
from ..runs import Run, get_or_train, get_or_train_each
from ..spec import RunSpec
from ..tables import side_by_side, write_table
from . import eval_set
from .madry import madry_spec

TABLES = ("4.1", "4.2", "4.3", "4.4", "4.5", "4.6")
THESIS_SIZE = 32                      # the thesis' CIFAR images are 32×32
PARTS = ("teacher", "student")

# "ours" is the main LDD pair at ratio r: a large-stride stem for a CNN, r× larger patches for a ViT (Sec. 4.3.2).
NEEDED = {
    "4.1": ["vanilla", "input_pool", "feature_pool", "large_stride"],
    "4.2": ["vanilla", "stride_2", "stride_4", "stride_8"],
    "4.3": [f"loss_{k}" for k in KD_LOSSES],
    "4.4": ["vanilla", "ours"],
    "4.5": ["vanilla", "stride_2", "stride_4"],
    "4.6": ["ours"],
}
# Table 4.4 compares backbones on CIFAR-10 and CIFAR-100: the thesis' label of each; its headline backbone (the one
# with a Madry row) stands in for any other model.
THESIS_BACKBONES = {"wrn28_10": "WideResnet", "resnet50": "Resnet50", "vit_base_patch8_224": "Vit"}
HEADLINE_BACKBONE = "WideResnet"
MADRY_ROW = "Madry et al. 2018"
THESIS_DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}   # the thesis' columns, as captions name them
BACKBONE_NAMES = {"WideResnet": "WideResNet", "Resnet50": "ResNet50", "Vit": "ViT-B/8 (B/32 teacher)"}
# The ablations (4.1–4.3, 4.5, 4.6) change a CNN's stem; the thesis runs them on WRN-28-10 / CIFAR-100.
ABLATION_CELL = ("cifar100", "wrn28_10")
REDUCTION_LABELS = {"vanilla": "Vanilla T-S", "input_pool": "Pooling Image", "feature_pool": "Pooling feature",
                    "large_stride": "Large Stride Kernel"}
LOSS_LABELS = {"kl": "KL", "mse": "MSE", "mse+kl": "MSE+KL", "kl+ce": "KL+CE"}
DIMENSION_KEYS = {1: "vanilla", 2: "stride_2", 4: "stride_4", 8: "stride_8"}


def default_tables(profile: Profile) -> tuple[str, ...]:
    """The thesis tables notebook 08 builds for the profile's dataset and model: on a thesis backbone, Table 4.4
    everywhere and the ablations only on their cell (WRN-28-10 / CIFAR-100); a ViT, Table 4.4 only (the ablations
    change a CNN stem); any other CNN (the small profiles' ResNet-8 stands in for the WRN), every table."""
    if is_vit(profile.arch):
        return ("4.4",)
    if profile.arch in THESIS_BACKBONES and (str(profile.dataset), profile.arch) != ABLATION_CELL:
        return ("4.4",)
    return TABLES


def configurations(ratio: int, arch: str = "resnet8") -> dict[str, dict]:
    """ldd_args per configuration name; `ratio` is the main teacher's reduction ratio r."""
    return {
        "vanilla": dict(reduction="none", ratio=1),
        "ours": dict(reduction="vit_patch" if is_vit(arch) else "large_stride", ratio=ratio),
        "input_pool": dict(reduction="input_pool", ratio=ratio),
        "feature_pool": dict(reduction="feature_pool", ratio=ratio),
        "large_stride": dict(reduction="large_stride", ratio=ratio),   # Table 4.1's row: a CNN's "ours"
        **{f"stride_{q}": dict(reduction="large_stride", ratio=q) for q in (2, 4, 8)},
        **{f"loss_{k}": dict(reduction="large_stride", ratio=ratio, kd_loss=k) for k in KD_LOSSES},
    }


def ldd_spec(profile: Profile, tau: float = 1.0, **args) -> RunSpec:
    """The RunSpec of one LDD pair under the profile's ``ldd`` section (notebooks 08 and 09 share it); `args` go
    to `ldd_args`."""
    epochs, vit_size = profile.ldd.epochs, profile.ldd.vit_img_size
    if vit_size is not None and is_vit(profile.arch):
        args = {"vit_img_size": vit_size, **args}
    return profile.spec(tau, method="ldd", method_args=ldd_args(**args),
                        **({} if epochs is None else {"epochs": epochs}))


def dimension(ratio: int, size: int) -> str:
    """The teacher's input dimension for reduction ratio `ratio` on `size`×`size` images, e.g. "8x8"."""
    return f"{size // ratio}x{size // ratio}"


@dataclass(frozen=True)
class TableSpec:
    """How one thesis table is built from the study, and where and under which caption it is written."""

    stem: str
    build: Callable[["LDDStudy"], pd.DataFrame]
    caption: Callable[["LDDStudy"], str]


@dataclass
class LDDStudy:
    """The LDD pairs of the requested tables, trained (or reused), and the tables built from them."""

    profile: Profile
    tables: tuple[str, ...]
    runs: dict[str, Run]
    size: int                                  # the data's image side
    n_images: int                              # test images for clean / PGD
    produced: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def ratio(self) -> int:
        return self.profile.ldd.ratio

    @property
    def scale(self) -> str:
        spec0 = next(iter(self.runs.values())).spec
        return (f"{self.profile.name} profile: {spec0.dataset} {self.size}×{self.size}, {spec0.arch}, "
                f"{spec0.epochs} epochs, {self.n_images} test images (teacher dims are those of "
                f"{THESIS_SIZE}×{THESIS_SIZE} inputs in the thesis, {self.size}×{self.size} here: same ratios)")

    def describe(self) -> str:
        configs = configurations(self.ratio, self.profile.arch)
        return "\n".join([
            f"profile {self.profile.name}: {self.profile.dataset} at {self.size}×{self.size}, {self.profile.arch}; "
            f"main teacher ratio r = {self.ratio} ({dimension(1, self.size)} → {dimension(self.ratio, self.size)}; "
            f"thesis {dimension(1, THESIS_SIZE)} → {dimension(self.ratio, THESIS_SIZE)}); epochs "
            f"{self.profile.ldd.epochs or 'the profile default'}; tables {self.tables}",
            f"{len({run.dir for run in self.runs.values()})} distinct LDD runs; {self.n_images} test images; "
            "teacher input dimension per run: "
            + str({key: dimension(configs[key]["ratio"], self.size) for key in self.runs})])

    def score(self, run: Run, part: str, names=("clean", "pgd20"), n_eval: int | None = None,
              budgets: dict | None = None, labels: dict[str, str] | None = None) -> dict[str, float]:
        """Accuracy (%) per evaluation of one network of a pair (a plain model is its own student)."""
        report = evaluate_run(run, list(names), self.profile, n_eval=self.n_images if n_eval is None else n_eval,
                              part=part, budgets=budgets)
        return {(labels or {}).get(name, name): 100 * report[name]["accuracy"] for name in names}

    def table(self, table_id: str) -> pd.DataFrame | None:
        """Build and write one thesis table (None when it was not requested)."""
        if table_id not in self.tables:
            return None
        spec = TABLE_SPECS[table_id]
        frame = self.produced[table_id] = spec.build(self)
        write_table(frame, output_path(self.profile, spec.stem), caption=spec.caption(self))
        return frame


def run_ldd_study(profile: Profile, tables=None) -> LDDStudy:
    """Train (or reuse) every LDD pair the requested tables need; tables are built by `LDDStudy.table`."""
    tables = default_tables(profile) if tables is None else tuple(tables)
    configs = configurations(profile.ldd.ratio, profile.arch)
    keys = dict.fromkeys(k for t in tables for k in NEEDED[t])
    runs = dict(zip(keys, get_or_train_each([ldd_spec(profile, **configs[key]) for key in keys])))
    size = profile.spec(1.0).image_size or THESIS_SIZE
    _, y = eval_set(profile, next(iter(runs.values())), profile.eval_n(profile.ldd.n_eval))
    return LDDStudy(profile, tables, runs, size, len(y))


def _beside(ours: pd.DataFrame, thesis: pd.DataFrame, scale: str) -> pd.DataFrame:
    return side_by_side(ours, thesis, scale, reference="thesis", by_tau=False)


# --- the tables -------------------------------------------------------------------------------------------------------

def _reductions(study: LDDStudy) -> pd.DataFrame:
    rows = {(REDUCTION_LABELS[k], part): study.score(study.runs[k], part, labels={"pgd20": "pgd"})
            for k in REDUCTION_LABELS for part in PARTS}
    ours = pd.DataFrame(rows).T
    ours.index.names = ["method", "role"]
    return _beside(ours, ldd_table("4.1").T, study.scale)


def _dimensions(study: LDDStudy) -> pd.DataFrame:
    rows = {(dimension(q, THESIS_SIZE), part): study.score(study.runs[k], part, labels={"pgd20": "pgd"})
            for q, k in DIMENSION_KEYS.items() for part in PARTS}
    ours = pd.DataFrame(rows).T
    ours.index.names = ["teacher_dim", "role"]
    return _beside(ours, ldd_table("4.2").T, study.scale)


def _losses(study: LDDStudy) -> pd.DataFrame:
    ours = pd.DataFrame({LOSS_LABELS[k]: study.score(study.runs[f"loss_{k}"], "student", labels={"pgd20": "pgd"})
                         for k in KD_LOSSES}).T
    ours.index.name = "loss"
    return _beside(ours, ldd_table("4.3").T, study.scale)


def autoattack_images(study: LDDStudy) -> int:
    """Images for Table 4.4's AutoAttack: the section's autoattack_n, at most the eval set (0 skips it)."""
    n = study.profile.ldd.autoattack_n
    return study.n_images if n is None else min(n, study.n_images)


def _autoattack_budget(study: LDDStudy) -> dict:
    return dict(study.profile.ldd.autoattack or {})


def thesis_cell(profile: Profile) -> tuple[str, str]:
    """(backbone, dataset) of Table 4.4 that this profile's run is compared with: its own where the thesis has it,
    else WideResNet on CIFAR-10 (the thesis' headline row)."""
    dataset = str(profile.dataset)
    return (THESIS_BACKBONES.get(profile.arch, HEADLINE_BACKBONE),
            dataset if dataset in THESIS_DATASETS else "cifar10")


def thesis_backbone_rows(profile: Profile) -> pd.DataFrame:
    """The thesis' Table 4.4 rows this profile's run is compared with: Baseline and Ours of its backbone and dataset,
    and the Madry row where the thesis has one (WideResNet; a small profile's stand-in CNN gets it too)."""
    backbone, dataset = thesis_cell(profile)
    frame = ldd_table("4.4")[dataset].xs(backbone, level="backbone")   # WideResnet's rows include Madry's
    frame.attrs.update(backbone=backbone, dataset=dataset)
    return frame


def _backbones(study: LDDStudy) -> pd.DataFrame:
    thesis = thesis_backbone_rows(study.profile)
    n_aa, budget = autoattack_images(study), _autoattack_budget(study)

    def score(run: Run, part: str) -> dict[str, float]:
        out = study.score(run, part)
        if n_aa:
            out.update(study.score(run, part, ("autoattack",), n_eval=n_aa, budgets={"autoattack": budget}))
        return out

    rows = {"Baseline": score(study.runs["vanilla"], "teacher"), "Ours": score(study.runs["ours"], "student")}
    if MADRY_ROW in thesis.index:
        study.runs["madry"] = get_or_train(madry_spec(study.profile, 1.0))
        rows[MADRY_ROW] = score(study.runs["madry"], "student")
    ours = pd.DataFrame(rows).T
    ours.index.name = "method"
    if n_aa:
        aa = attack_spec("autoattack", **{**study.profile.attacks.changes("autoattack", ATTACKS["autoattack"]),
                                          **budget})
        note = f"AutoAttack on the first {n_aa} images, budget {aa.steps} iterations / {aa.n_queries} Square queries"
    else:
        note = "AutoAttack skipped"
    backbone, dataset = BACKBONE_NAMES[thesis.attrs["backbone"]], THESIS_DATASETS[thesis.attrs["dataset"]]
    frame = _beside(ours, thesis, study.scale + f"; {note}; thesis column: {backbone}, {dataset}")
    frame.attrs["thesis_dataset"] = dataset
    return frame


def _corruptions(study: LDDStudy) -> pd.DataFrame:
    entries = {"Baseline": ("vanilla", "teacher"), dimension(1, THESIS_SIZE): ("vanilla", "student"),
               dimension(2, THESIS_SIZE): ("stride_2", "student"), dimension(4, THESIS_SIZE): ("stride_4", "student")}
    ours = pd.DataFrame({label: study.score(study.runs[k], part, ("clean", "corruptions"))
                         for label, (k, part) in entries.items()}).T
    ours.index.name = "teacher_dim"
    dataset = thesis_cell(study.profile)[1]
    return _beside(ours, ldd_table("4.5")[dataset], study.scale + f"; thesis column: {THESIS_DATASETS[dataset]}")


def pseudo_label_specs(study: LDDStudy) -> dict[str, RunSpec]:
    """S_iter1 (pseudo-labels only, E epochs), S_iter2 (+ high-τ CE on the true labels, E), S_iter3 (the same, 2E),
    each from scratch, E being the teacher's epochs."""
    teacher = study.runs["ours"]
    epochs, tau = teacher.spec.epochs, study.profile.ldd.pseudo_tau
    args = {"S_iter1": ldd_pseudo_args(teacher, None), "S_iter2": ldd_pseudo_args(teacher, tau),
            "S_iter3": ldd_pseudo_args(teacher, tau)}
    return {name: study.profile.spec(1.0, method="ldd_pseudo", method_args=a,
                                     epochs=2 * epochs if name == "S_iter3" else epochs)
            for name, a in args.items()}


def _pseudo_labels(study: LDDStudy) -> pd.DataFrame:
    steps = study.profile.ldd.pseudo_attack_steps
    long_pgd = {"pgd20": {"steps": steps}}
    rows = {}
    for name, spec in pseudo_label_specs(study).items():
        study.runs[name] = get_or_train(spec)
        rows[name] = study.score(study.runs[name], "student", budgets=long_pgd, labels={"pgd20": "pgd"})
    ours = pd.DataFrame(rows).T
    ours.index.name = "student"
    thesis = ldd_table("4.6").T.rename(columns={"pgd200": "pgd"})
    return _beside(ours, thesis, study.scale + f"; pgd: thesis PGD-200, this run PGD-{steps}; "
                                               f"true-label τ = {study.profile.ldd.pseudo_tau:g}")


def pseudo_label_disagreement(study: LDDStudy) -> str:
    """How wrong the main teacher's pseudo-labels are on the training set (the thesis: it cannot fit it)."""
    spec = study.runs["ours"].spec
    x, y = first_n(load_dataset(spec.dataset, spec.image_size).train, None)
    pseudo = predict(study.runs["ours"].load_model().teacher, x, batch_size=None)
    return (f"teacher pseudo-labels disagree with the true label on {100 * (pseudo != y).float().mean():.1f}% "
            f"of the {len(y)} training images")


def _dimension_caption(study: LDDStudy) -> str:
    dims = ", ".join(f"{dimension(q, THESIS_SIZE)} ≙ {dimension(q, study.size)}" for q in DIMENSION_KEYS)
    return f"Table 4.2: LDD teacher input dimension (thesis labels; here {dims}), accuracy (%)"


TABLE_SPECS = {
    "4.1": TableSpec("table_4_1_ldd_reductions", _reductions, caption=lambda s: (
        f"Table 4.1: LDD with different dimension reductions (ratio {s.ratio}), accuracy (%)")),
    "4.2": TableSpec("table_4_2_ldd_dimensions", _dimensions, caption=_dimension_caption),
    "4.3": TableSpec("table_4_3_ldd_losses", _losses,
                     caption=lambda s: "Table 4.3: LDD student per distillation loss, accuracy (%)"),
    "4.4": TableSpec("table_4_4_ldd_backbones", _backbones,
                     caption=lambda s: "Table 4.4: baseline, LDD and Madry AT, accuracy (%)"),
    "4.5": TableSpec("table_4_5_ldd_corruptions", _corruptions,
                     caption=lambda s: "Table 4.5: clean and -C accuracy (%) per teacher dimension"),
    "4.6": TableSpec("table_4_6_ldd_pseudo", _pseudo_labels, caption=lambda s: (
        "Table 4.6: students distilled from the LDD teacher's pseudo-labels, accuracy (%)")),
}


# --- what the numbers say -----------------------------------------------------------------------------------------

def _pct(v: float) -> str:
    return f"{v:.2f}%"


def _rises(s: pd.Series) -> str:
    return "rises monotonically" if s.is_monotonic_increasing else "does not rise monotonically"


def ldd_findings(produced: dict[str, pd.DataFrame]) -> list[str]:
    """The thesis' claims per table in numbers, this run beside the thesis (printed, never asserted)."""
    lines = []
    if "4.1" in produced:
        f = produced["4.1"]
        for method in dict.fromkeys(f.index.get_level_values(0)):
            t, s = f.loc[(method, "teacher")], f.loc[(method, "student")]
            lines.append(f"4.1 {method:>20}: teacher clean {_pct(t[('clean', 'this run')])} PGD "
                         f"{_pct(t[('pgd', 'this run')])} | student clean {_pct(s[('clean', 'this run')])} PGD "
                         f"{_pct(s[('pgd', 'this run')])}  (thesis student PGD {_pct(s[('pgd', 'thesis')])})")
    if "4.2" in produced:
        f = produced["4.2"].xs("teacher", level="role")
        ours = (f[("pgd", "this run")] / f[("clean", "this run")]).round(3)
        thesis = (f[("pgd", "thesis")] / f[("clean", "thesis")]).round(3)
        lines.append(f"4.2 teacher PGD/clean ratio by dimension (high → low): this run {ours.tolist()} "
                     f"({_rises(ours)}); thesis {thesis.tolist()} ({_rises(thesis)})")
    if "4.3" in produced:
        f = produced["4.3"]
        lines.append(f"4.3 most robust student loss: this run {f[('pgd', 'this run')].idxmax()}, thesis "
                     f"{f[('pgd', 'thesis')].idxmax()}; most accurate: this run {f[('clean', 'this run')].idxmax()}, "
                     f"thesis {f[('clean', 'thesis')].idxmax()}")
    if "4.4" in produced:
        f = produced["4.4"]
        b, o = f.loc["Baseline", ("pgd20", "this run")], f.loc["Ours", ("pgd20", "this run")]
        tb, to = f.loc["Baseline", ("pgd20", "thesis")], f.loc["Ours", ("pgd20", "thesis")]
        madry = f"; Madry AT: {_pct(f.loc[MADRY_ROW, ('pgd20', 'this run')])}" if MADRY_ROW in f.index else ""
        lines.append(f"4.4 LDD student vs baseline, PGD-20: {_pct(o)} vs {_pct(b)} → the student is "
                     f"{'more' if o > b else 'not more'} robust here (thesis {f.attrs['thesis_dataset']}: "
                     f"{_pct(to)} vs {_pct(tb)}){madry}")
        if ("autoattack", "this run") in f.columns:
            lines.append("    AutoAttack (reduced budget): "
                         + ", ".join(f"{i} {_pct(v)}" for i, v in f[("autoattack", "this run")].items()))
    if "4.5" in produced:
        f = produced["4.5"]
        lines.append(f"4.5 best -C: this run {f[('corruptions', 'this run')].idxmax()}, thesis "
                     f"{f[('corruptions', 'thesis')].idxmax()}")
    if "4.6" in produced:
        f = produced["4.6"]
        lines.append("4.6 pseudo-label students (clean / pgd): " + "; ".join(
            f"{i} {_pct(f.loc[i, ('clean', 'this run')])} / {_pct(f.loc[i, ('pgd', 'this run')])}" for i in f.index))
    return lines


__all__ = ["TABLES", "NEEDED", "configurations", "default_tables", "ldd_spec", "dimension", "LDDStudy", "run_ldd_study",
           "thesis_cell", "thesis_backbone_rows", "pseudo_label_specs", "pseudo_label_disagreement",
           "autoattack_images", "ldd_findings", "TABLE_SPECS"]
