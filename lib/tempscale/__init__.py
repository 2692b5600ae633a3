"""tempscale: softmax temperature and adversarial robustness, reproduced and audited.

The verbs a notebook needs; everything else lives in the submodules (README: "Layout")::

    import tempscale as ts

    P = ts.get_profile("quick", taus=(1, 50))           # the hyperparameter tree, overridden in one call
    runs = ts.train_grid(P)                             # {τ: Run}: trained once, then reused from the run store
    run = ts.get_or_train(P.spec(50.0))                 # one run
    x, y = ts.eval_set(P, run)                          # the fixed evaluation subset, the same for every τ
    table, reports = ts.evaluate_grid(runs, ["clean", "pgd20"], P)   # cached attacks per τ
    audits = ts.audit_grid(runs, x, y, ts.AuditBudget.from_profile(P))   # gradient-masking checks per τ
    ts.save_figure(fig, "fig2_tsne", P); ts.write_table(frame, ts.output_path(P, stem), caption)

Vocabularies are closed (`Attack`, `Metric`, `Corruption`, `Dataset`, `Arch`): a misspelt name fails at once with
the valid values. Importing the package registers every training method and audit check (their registries are
leaves; the plugins register themselves, as timm's models do).
"""
from . import methods, paper
from .audit import AuditBudget, audit_grid
from .evaluation import evaluate_grid, evaluate_run
from .experiments import class_names, eval_set, notebook_profile, train_grid
from .paths import output_path
from .plots import save_figure, use_style
from .profiles import get_profile
from .runs import get_or_train
from .tables import side_by_side, write_table
from .vocab import Arch, Attack, Corruption, Dataset, Metric

__version__ = "0.1.0"

__all__ = ["Arch", "Attack", "AuditBudget", "Corruption", "Dataset", "Metric", "audit_grid", "class_names",
           "eval_set", "evaluate_grid", "evaluate_run", "get_or_train", "get_profile", "methods", "notebook_profile",
           "output_path", "paper", "save_figure", "side_by_side", "train_grid", "use_style", "write_table"]
