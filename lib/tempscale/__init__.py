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
the valid values. Every training method and audit check is registered as soon as its registry is imported (the
registries are leaves; the plugins register themselves, as timm's models do).
"""
import importlib

# name → the submodule that defines it. Imported on first use (PEP 562), so a process that needs one module (the
# papermill launcher, the command line, a kernel importing `tempscale.experiments`) does not pay for torch,
# matplotlib and scipy it never touches. Registries fill themselves: `tempscale.methods` and `tempscale.audit`
# import their plugins whenever any of their modules is imported.
_EXPORTS = {
    "AuditBudget": "audit", "audit_grid": "audit",
    "evaluate_grid": "evaluation", "evaluate_run": "evaluation",
    "class_names": "experiments", "eval_set": "experiments", "notebook_profile": "experiments",
    "train_grid": "experiments",
    "output_path": "paths",
    "save_figure": "plots", "use_style": "plots",
    "get_profile": "profiles",
    "get_or_train": "runs",
    "side_by_side": "tables", "write_table": "tables",
    "Arch": "vocab", "Attack": "vocab", "Corruption": "vocab", "Dataset": "vocab", "Metric": "vocab",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    else:
        try:
            value = importlib.import_module(f".{name}", __name__)   # a submodule: ts.methods, ts.paper, ts.attacks
        except ModuleNotFoundError as missing:
            if missing.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__version__ = "0.1.0"

__all__ = sorted([*_EXPORTS, "methods", "paper"])
