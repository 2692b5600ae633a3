"""Robust-accuracy evaluation with a resumable, self-checking cache.

`evaluate` runs one attack batch by batch. With a `cache_dir` every finished batch is written at once (atomically),
so an interrupted evaluation resumes at the first missing batch and a finished one is loaded without attacking:

    cache_dir/<spec.name>-<spec.key()>/<context>/batch-00000.pt …   per-batch correctness while running
                                                 correct.pt          per-example correctness when finished
                                                 distances.pt        per-example L2 distance (C&W-L2 only)
                                                 result.json         summary; written last, marks completion

`<context>` hashes everything else the numbers depend on: the eval set (shape + bytes of x and y), the model's
weights, the batch size (random starts are drawn per batch), the attack backend, the device type, the versions of
torch, torchattacks and pyautoattack, the source of the attack code that runs the spec (`code_fingerprint` of
`attacks.attack_code_roots`: every function and class of the project it reaches) and the source of the model's own
classes' modules (`model_code_fingerprint`). So a different eval set, a retrained model, an edited attack or model, a
library upgrade or a switch to the GPU never reuses another result. Generated corruptions are keyed on the
generator's source as well (`corruption_generator_fingerprint`). A cache file that cannot
be read back, or whose bytes no longer match its checksum (a ``.sha256`` sidecar for tensor files, an embedded digest
for result.json / meta.json), is deleted and recomputed with a `CacheWarning`: it is a cache, and is never used
unchecked. The batch files are deleted only after result.json is written, so a crash between any two writes is
finished from the batches already on disk without attacking again.

`evaluate_corruptions` gives the "-C" accuracy (mean over corruptions at one severity); `evaluate_suite` runs a list
of attacks plus the per-example worst case, which is what ``python -m tempscale eval --attacks … --json`` reports.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import json
import math
import re
import site
import sys
import time
import types
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch
import torch.nn as nn

from . import attacks, corruptions
from .attacks import AttackSpec, attack_backend, attack_spec, worst_case
from .errors import CorruptCheckpointError, InvalidSpecError
from .inference import model_device
from .io import load_verified, read_json_verified, remove_verified, save_verified, shared_lock, write_json_verified
from .provenance import cpu_capability

CorruptionSource = Callable[[str, int], "tuple[torch.Tensor, torch.Tensor]"]
Outcome = "tuple[torch.Tensor, torch.Tensor | None]"     # (correct per example, L2 distance per example or None)
BatchFn = Callable[[int, int], Outcome]


class CacheWarning(UserWarning):
    """A cached evaluation file was unreadable or inconsistent; it was deleted and its part recomputed."""


# --- results ------------------------------------------------------------------------------------------------------

@dataclass
class EvalResult:
    name: str
    spec: dict
    accuracy: float             # fraction in [0, 1]
    n: int
    correct: torch.Tensor       # bool per example (CPU): still classified correctly under the attack
    elapsed_s: float            # compute time summed over batches (also when resumed or loaded from the cache)
    backend: str                # e.g. "torchattacks 3.5.1" or "pyautoattack 0.2.0 (official AutoAttack, …)"
    cached: bool = False        # True when loaded from a finished cache without attacking
    distances: torch.Tensor | None = None   # minimum-norm attacks (C&W-L2): L2 norm per example, ∞ = not fooled

    @property
    def median_l2(self) -> float | None:
        """Median L2 distance over *all* examples (failures count as ∞, so it is ∞ when half or more are not
        fooled); the mean of the two middle values for an even count."""
        if self.distances is None:
            return None
        ordered = self.distances.sort().values.tolist()
        if not ordered:
            return math.nan
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    def to_dict(self) -> dict:
        out = {"name": self.name, "accuracy": self.accuracy, "n": self.n, "n_correct": int(self.correct.sum()),
               "elapsed_s": self.elapsed_s, "backend": self.backend, "cached": self.cached, "spec": self.spec}
        if self.distances is not None:
            out["median_l2"] = self.median_l2
            out["radius"] = self.spec["eps"]
        return out


@dataclass
class CorruptionResult:
    severity: int
    source: str                                 # where the corrupted images came from
    per_corruption: dict[str, float]            # accuracy per corruption
    mean_accuracy: float                        # the "-C" accuracy: mean over corruptions
    n: dict[str, int]
    correct: dict[str, torch.Tensor]
    elapsed_s: float

    def to_dict(self) -> dict:
        return {"accuracy": self.mean_accuracy, "per_corruption": self.per_corruption, "severity": self.severity,
                "source": self.source, "n": self.n, "elapsed_s": self.elapsed_s}


# --- fingerprints -------------------------------------------------------------------------------------------------

def _hash_tensor(hasher, tensor: torch.Tensor) -> None:
    tensor = tensor.detach().cpu().contiguous()
    hasher.update(f"{tuple(tensor.shape)}|{tensor.dtype}|".encode())
    hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


def data_fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    """Shape, dtype and bytes of the eval set: a different set never shares a cache entry."""
    hasher = hashlib.sha256()
    for tensor in (x, y):
        _hash_tensor(hasher, tensor)
    return hasher.hexdigest()[:16]


def model_fingerprint(model: nn.Module) -> str:
    """Hash of the state dict (names and values): a retrained model never reuses an old model's results."""
    hasher = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        hasher.update(name.encode())
        _hash_tensor(hasher, tensor)
    return hasher.hexdigest()[:16]


def _short_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _device_type(model: nn.Module) -> str:
    return model_device(model).type


def environment_fingerprint(model: nn.Module) -> dict:
    """Where and with what the numbers were computed: the model's device type, on a CPU its thread count and vector
    instruction set (the kernels split their sums by thread and pick their code by instruction set, so either can
    change the last bits and flip a borderline example), and the attack libraries' versions (kernels and RNG
    streams differ between devices and versions)."""
    device = _device_type(model)
    threads = {"cpu_threads": torch.get_num_threads(), "cpu_capability": cpu_capability()} if device == "cpu" else {}
    return {"device": device, **threads, "torch": torch.__version__, "torchattacks": _version("torchattacks"),
            "pyautoattack": _version("pyautoattack")}


_LIBRARY_PREFIXES = tuple(sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()}))


def _is_library(obj) -> bool:
    """Installed library code (identified by its distribution's version) rather than the project's or a user's code
    (identified by its source). tempscale is the project's wherever it is installed."""
    module = getattr(obj, "__module__", None) or ""
    if module.split(".")[0] == __name__.split(".")[0]:
        return False
    try:
        path = inspect.getsourcefile(obj)
    except TypeError:       # built-in
        return True
    return path is None or str(Path(path).resolve()).startswith(_LIBRARY_PREFIXES)


@functools.lru_cache(maxsize=None)
def _distributions() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def _library_label(obj) -> str:
    module = getattr(obj, "__module__", None) or ""
    dists = _distributions().get(module.split(".")[0], [])
    versions = ", ".join(f"{d} {_version(d)}" for d in sorted(set(dists))) or f"python {sys.version.split()[0]}"
    return f"{module}.{getattr(obj, '__qualname__', '?')} ({versions})"


_SOURCES: dict = {}     # object → its source, memoised: the code that runs, even if the file changed since import


def _source(obj) -> str:
    if obj not in _SOURCES:
        try:
            _SOURCES[obj] = inspect.getsource(obj)
        except (OSError, TypeError):    # generated code (dataclass methods, exec): its bytecode, never an address
            code = getattr(obj, "__code__", None)
            _SOURCES[obj] = _code_text(code) if code is not None else _ADDRESS.sub("", repr(obj))
    return _SOURCES[obj]


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _code_text(code: types.CodeType) -> str:
    """What a code object does, the same in every process: bytecode, names and constants (nested code included)."""
    consts = [_code_text(c) if isinstance(c, types.CodeType)
              else sorted(map(repr, c)) if isinstance(c, frozenset) else repr(c) for c in code.co_consts]
    return repr((code.co_name, code.co_code.hex(), code.co_names, code.co_varnames, consts))


def _code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _methods(cls: type) -> dict[str, types.FunctionType]:
    """A class's own functions as bound now (a monkeypatched method is the new function)."""
    out = {}
    for name, member in vars(cls).items():
        member = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
        if isinstance(member, types.FunctionType):
            out[name] = inspect.unwrap(member)
    return out


def _names_read(obj) -> Iterable[tuple[str, object]]:
    """(global name, value) for every global a function or class's methods read, plus a function's closure."""
    if isinstance(obj, type):
        functions = list(_methods(obj).values())
        namespace = vars(sys.modules[obj.__module__]) if obj.__module__ in sys.modules else {}
    else:
        functions, namespace = [obj], obj.__globals__
        for cell in obj.__closure__ or ():
            with contextlib.suppress(ValueError):
                yield f"{obj.__qualname__}.<closure>", cell.cell_contents
    for function in functions:
        if not isinstance(function, types.FunctionType):
            continue
        for code in _code_objects(function.__code__):
            for name in code.co_names:
                if name in namespace:
                    yield name, namespace[name]


def _describe(value, follow: list) -> object:
    """A JSON-able, address-free description of a module-level value; functions and classes in it are queued."""
    if isinstance(value, (types.FunctionType, type, functools.partial)):
        follow.append(value)
        return f"<{getattr(value, '__qualname__', type(value).__name__)}>"
    if isinstance(value, Mapping):
        if getattr(value, "fingerprint_by_key", False):     # a dispatch table: only the entry used is a root
            return sorted(map(str, value))
        return {str(k): _describe(v, follow) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_describe(v, follow) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    text = repr(value)
    return type(value).__qualname__ if " at 0x" in text else text


def code_fingerprint(roots: Iterable) -> str:
    """Hash of the code behind `roots` (functions or classes): the source of each project (or user) function and
    class reachable from them through the globals they read, the module-level values they read, and, for library
    code, its name and distribution version. A changed, added or monkeypatched function changes the hash."""
    parts: dict[str, object] = {}
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        obj = todo.pop()
        if isinstance(obj, functools.partial):
            todo += [obj.func, *obj.args, *obj.keywords.values()]
            continue
        if isinstance(obj, types.FunctionType):
            obj = inspect.unwrap(obj)
        if not isinstance(obj, (types.FunctionType, type)) or id(obj) in seen:
            continue
        seen.add(id(obj))
        name = f"{obj.__module__}.{obj.__qualname__}"
        if _is_library(obj):
            parts[name] = _library_label(obj)
            continue
        parts[name] = _source(obj)
        if isinstance(obj, type):
            parts.update({f"{name}.{method}": _source(fn) for method, fn in _methods(obj).items()})
        for global_name, value in _names_read(obj):
            if isinstance(value, types.ModuleType):
                continue
            described = _describe(value, todo)
            if not isinstance(value, (types.FunctionType, type, functools.partial)):
                parts[f"{obj.__module__}:{global_name}"] = described
    return _short_hash(sorted(parts.items(), key=lambda item: item[0]))


def _module_source(module_name: str) -> str:
    module = sys.modules.get(module_name)
    try:
        return inspect.getsource(module) if module is not None else module_name
    except (OSError, TypeError):
        return module_name


def model_code_fingerprint(model: nn.Module) -> str:
    """Hash of the code behind the model beyond its weights: for each class among its modules, the whole source of
    the module that defines it (project or user code) and its `code_fingerprint` (its methods as bound now and what
    they reach), or, for library classes (torch, timm, …), the name and the library's version."""
    parts = {}
    for cls in {type(module) for module in model.modules()}:
        if _is_library(cls):
            parts[f"{cls.__module__}.{cls.__qualname__}"] = _library_label(cls)
        else:
            parts[cls.__module__] = _module_source(cls.__module__)
            parts[f"{cls.__module__}.{cls.__qualname__}"] = code_fingerprint([cls])
    return _short_hash(sorted(parts.items()))


def corruption_generator_fingerprint() -> str:
    """Hash of the corruption generator: `tempscale.corruptions`' source file, the code `corrupt` reaches as bound
    now (`code_fingerprint`) and GENERATOR_VERSION."""
    return _short_hash([corruptions.GENERATOR_VERSION, _module_source(corruptions.__name__),
                        code_fingerprint([corruptions.corrupt])])


# --- the batch cache ----------------------------------------------------------------------------------------------

def _discard(path: Path, reason: str) -> None:
    warnings.warn(f"evaluation cache file {path} is {reason}; deleting it and recomputing", CacheWarning,
                  stacklevel=3)
    remove_verified(path)


def _valid_distance(distance, length: int, expected: bool) -> bool:
    if not expected:
        return distance is None
    return isinstance(distance, torch.Tensor) and distance.is_floating_point() and tuple(distance.shape) == (length,)


def _load_batch(path: Path, start: int, stop: int, with_distance: bool) -> dict | None:
    """A finished batch's record, or None (missing; or corrupt, which is deleted with a warning)."""
    if not path.exists():
        return None
    try:
        record = load_verified(path)
        correct, distance = record["correct"], record.get("distance")
        if (record["start"], record["stop"]) != (start, stop) or correct.dtype != torch.bool \
                or tuple(correct.shape) != (stop - start,) or not _valid_distance(distance, stop - start,
                                                                                   with_distance):
            raise CorruptCheckpointError("inconsistent")
        return {"correct": correct, "distance": distance, "elapsed_s": float(record["elapsed_s"])}
    except (CorruptCheckpointError, KeyError, TypeError, AttributeError, IndexError, ValueError):
        _discard(path, "unreadable or inconsistent")
        return None


def _load_final(folder: Path, n: int, with_distance: bool) -> tuple[dict, torch.Tensor, torch.Tensor | None] | None:
    summary_path, correct_path, distance_path = folder / "result.json", folder / "correct.pt", folder / "distances.pt"
    if not summary_path.exists():
        return None
    try:
        summary = read_json_verified(summary_path)
        correct = load_verified(correct_path)
        distance = load_verified(distance_path) if with_distance else None
        if summary["n"] != n or correct.dtype != torch.bool or tuple(correct.shape) != (n,) \
                or int(correct.sum()) != summary["n_correct"] or not _valid_distance(distance, n, with_distance):
            raise CorruptCheckpointError("inconsistent")
        return summary, correct, distance
    except (CorruptCheckpointError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError):
        _discard(summary_path, "unreadable or inconsistent with correct.pt")
        remove_verified(correct_path)
        remove_verified(distance_path)
        return None


def _batched_correct(folder: Path | None, n: int, batch_size: int, compute: BatchFn, meta: dict,
                     progress: bool, desc: str,
                     with_distance: bool = False) -> tuple[torch.Tensor, torch.Tensor | None, float, bool]:
    """Per-example correctness (and, `with_distance`, L2 distance) from `compute(start, stop)` batch by batch,
    cached under `folder` when given.

    Returns (correct, distances or None, compute seconds, loaded-from-final-cache).
    """
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        final = _load_final(folder, n, with_distance)
        if final is not None:
            return final[1], final[2], float(final[0]["elapsed_s"]), True
        write_json_verified(folder / "meta.json", meta)
    from tqdm import tqdm

    parts, distances, elapsed = [], [], 0.0
    starts = range(0, n, batch_size)
    for index, start in enumerate(tqdm(starts, desc=desc, disable=not progress, leave=False)):
        stop = min(start + batch_size, n)
        path = folder / f"batch-{index:05d}.pt" if folder is not None else None
        record = _load_batch(path, start, stop, with_distance) if path is not None else None
        if record is None:
            began = time.perf_counter()
            correct, distance = compute(start, stop)
            record = {"correct": correct.cpu().bool(), "elapsed_s": time.perf_counter() - began}
            if with_distance:
                record["distance"] = distance.cpu().float()
            if path is not None:
                save_verified({**record, "start": start, "stop": stop}, path)
        parts.append(record["correct"])
        distances.append(record.get("distance"))
        elapsed += record["elapsed_s"]
    correct = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.bool)
    distance = (torch.cat(distances) if distances else torch.zeros(0)) if with_distance else None
    if folder is not None:
        _finish(folder, correct, distance, elapsed, meta, len(starts))
    return correct, distance, elapsed, False


def _finish(folder: Path, correct: torch.Tensor, distance: torch.Tensor | None, elapsed: float, meta: dict,
            n_batches: int) -> None:
    """Write the final files (correctness first, the summary last: its presence means done), drop the batches."""
    save_verified(correct, folder / "correct.pt")
    if distance is not None:
        save_verified(distance, folder / "distances.pt")
    summary = {**meta, "n": len(correct), "n_correct": int(correct.sum()),
               "accuracy": float(correct.float().mean()) if len(correct) else 0.0, "elapsed_s": elapsed}
    write_json_verified(folder / "result.json", summary)
    for index in range(n_batches):
        remove_verified(folder / f"batch-{index:05d}.pt")


def _locked(folder: Path | None):
    """Serialise concurrent evaluations of one cache entry (the second then just loads the first's result)."""
    if folder is None:
        return contextlib.nullcontext()
    folder.mkdir(parents=True, exist_ok=True)
    return shared_lock(folder / ".lock")


# --- attacks ------------------------------------------------------------------------------------------------------

def batch_seed(seed: int, start: int) -> int:
    """Seed for the batch starting at example `start`: `seed` itself for the first batch (so a single-batch
    evaluation equals `correct_under(model, x, y, spec)`), distinct for the others."""
    return seed if start == 0 else int(hashlib.sha256(f"{seed}:{start}".encode()).hexdigest()[:8], 16)


def _check_eval_args(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
    if batch_size < 1:
        raise InvalidSpecError(f"batch_size must be >= 1, got {batch_size}")
    if len(x) != len(y):
        raise InvalidSpecError(f"x has {len(x)} images but y has {len(y)} labels")


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec | str,
             cache_dir: str | Path | None = None, batch_size: int = 256, progress: bool = False) -> EvalResult:
    """Accuracy of `model` on (x, y) under `spec` (an `AttackSpec` or a registered name), with per-example results.

    Batch i uses ``batch_seed(spec.seed, start_i)``, so results are reproducible for a given batch size. See the
    module docstring for the cache layout and guarantees.
    """
    spec = attack_spec(spec) if isinstance(spec, str) else spec
    _check_eval_args(x, y, batch_size)
    backend = attack_backend(spec)
    with_distance = attacks.minimum_norm(spec)
    meta = {"name": spec.name, "spec": spec.to_dict(), "spec_key": spec.key(), "backend": backend,
            "data": data_fingerprint(x, y), "batch_size": batch_size}
    folder = None
    if cache_dir is not None:
        meta.update(_code_identity(model), attack_code=code_fingerprint(attacks.attack_code_roots(spec)))
        context = _short_hash({k: meta[k] for k in ("backend", "data", "batch_size", *_CODE_KEYS, "attack_code")})
        folder = Path(cache_dir) / f"{spec.name}-{spec.key()}" / context

    def compute(start: int, stop: int) -> Outcome:
        batch_spec = dataclasses.replace(spec, seed=batch_seed(spec.seed, start))
        return attacks.correct_under(model, x[start:stop], y[start:stop], batch_spec, with_distance=True)

    with _locked(folder):
        correct, distance, elapsed, cached = _batched_correct(folder, len(x), batch_size, compute, meta, progress,
                                                              spec.name, with_distance)
    accuracy = float(correct.float().mean()) if len(correct) else 0.0
    return EvalResult(spec.name, spec.to_dict(), accuracy, len(correct), correct, elapsed, backend, cached,
                      distance)


_CODE_KEYS = ("model", "model_code", "environment")


def _code_identity(model: nn.Module) -> dict:
    """The model's weights, the code behind them and the environment: part of every cached result's key."""
    return {"model": model_fingerprint(model), "model_code": model_code_fingerprint(model),
            "environment": environment_fingerprint(model)}


# --- common corruptions -------------------------------------------------------------------------------------------

def _source_description(source: CorruptionSource | None, seed: int) -> str:
    if source is None:
        return f"generated (tempscale.corruptions, seed {seed})"
    label = getattr(source, "description", None) or getattr(source, "__qualname__", type(source).__name__)
    return f"supplied ({label})"


def _corruption_names(names, source) -> list[str]:
    if source is not None and names is not None:
        return list(names)
    available = tuple(corruptions.CORRUPTIONS)
    unknown = [name for name in (names or ()) if name not in available]
    if unknown:
        raise InvalidSpecError(f"unknown corruption(s) {', '.join(unknown)}; choose from {', '.join(available)}")
    return list(names) if names is not None else list(available)


def _corruption_data(x, y, name, severity, seed, source):
    """(images provider, labels, data fingerprint) for one corruption; generated images are made lazily (only when
    some batch is missing from the cache), supplied ones are loaded now (their bytes are the fingerprint)."""
    if source is not None:
        x_c, y_c = source(name, severity)
        return (lambda: x_c), y_c, data_fingerprint(x_c, y_c)
    generated: list[torch.Tensor] = []

    def images() -> torch.Tensor:
        if not generated:
            generated.append(corruptions.corrupt(x, name, severity, seed))
        return generated[0]

    return images, y, _short_hash([data_fingerprint(x, y), name, severity, seed, corruption_generator_fingerprint()])


def evaluate_corruptions(model: nn.Module, x: torch.Tensor, y: torch.Tensor, severity: int = 3,
                         names: list[str] | None = None, seed: int = 0, cache_dir: str | Path | None = None,
                         source: CorruptionSource | None = None, batch_size: int = 256,
                         progress: bool = False) -> CorruptionResult:
    """Clean accuracy on each common corruption at `severity` and their mean (the paper's "-C" column, severity 3).

    Images come from ``tempscale.corruptions.corrupt(x, name, severity, seed)`` unless `source` is given:
    ``source(name, severity) -> (images, labels)`` supplying e.g. the official CIFAR-10-C arrays. Each corruption is
    cached like an attack, keyed on the clean set + (name, severity, seed) when generated, on the supplied bytes
    otherwise.
    """
    if not 1 <= severity <= 5:
        raise InvalidSpecError(f"severity must be 1..5, got {severity}")
    _check_eval_args(x, y, batch_size)
    names = _corruption_names(names, source)
    clean = attacks.ATTACKS["clean"]
    identity = {**_code_identity(model), "attack_code": code_fingerprint(attacks.attack_code_roots(clean))} \
        if cache_dir else {}
    per, counts, masks, elapsed = {}, {}, {}, 0.0
    for name in names:
        images, labels, data_fp = _corruption_data(x, y, name, severity, seed, source)
        meta = {"corruption": name, "severity": severity, "seed": seed, "source": _source_description(source, seed),
                "data": data_fp, "batch_size": batch_size, **identity}
        folder = None
        if cache_dir is not None:
            folder = Path(cache_dir) / f"corruption-{name}-s{severity}" / _short_hash(meta)

        def compute(start: int, stop: int, images=images, labels=labels) -> Outcome:
            return attacks.correct_under(model, images()[start:stop], labels[start:stop], clean), None

        with _locked(folder):
            correct, _, seconds, _ = _batched_correct(folder, len(labels), batch_size, compute, meta, progress, name)
        per[name], counts[name], masks[name] = float(correct.float().mean()), len(correct), correct
        elapsed += seconds
    mean = sum(per.values()) / len(per) if per else 0.0
    return CorruptionResult(severity, _source_description(source, seed), per, mean, counts, masks, elapsed)


# --- suites -------------------------------------------------------------------------------------------------------

def _radius_label(eps: float) -> str:
    """ε as "8/255" when it is a whole number of 255ths, else as a number."""
    value = eps * 255
    return f"{value:.0f}/255" if value >= 1 and abs(value - round(value)) < 1e-6 else f"{eps:.6g}"


def threat_model(spec: AttackSpec) -> tuple[str, float]:
    """(norm, radius) an attack's accuracy is measured under: the L∞ ball of PGD, APGD, Square and AutoAttack, the
    L2 ball C&W-L2 is scored at."""
    return spec.norm, round(spec.eps, 12)


def worst_case_key(norm: str, eps: float, main: bool) -> str:
    """"worst_case" for the suite's main threat model, "worst_case[L2 0.5]" (etc.) for the others."""
    return "worst_case" if main else f"worst_case[{norm} {_radius_label(eps)}]"


def _worst_case_entries(specs: Mapping[str, AttackSpec], results: Mapping[str, EvalResult],
                        main_eps: float) -> dict[str, dict]:
    """The per-example worst case within each threat model (norm and radius), never across them: an L∞ 8/255 and
    an L2 0.5 result are different questions. The L∞ group at `main_eps` is "worst_case" (the tables' column)."""
    groups: dict[tuple[str, float], list[str]] = {}
    for name, spec in specs.items():
        groups.setdefault(threat_model(spec), []).append(name)
    entries = {}
    for (norm, eps), members in sorted(groups.items(), key=lambda item: (item[0][0] != "Linf", item[0][1])):
        mask = worst_case({name: results[name].correct for name in members})
        main = norm == "Linf" and math.isclose(eps, main_eps, rel_tol=1e-9, abs_tol=1e-12)
        entries[worst_case_key(norm, eps, main)] = {
            "accuracy": float(mask.float().mean()) if len(mask) else 0.0, "n": len(mask),
            "n_correct": int(mask.sum()), "threat_model": f"{norm} eps={_radius_label(eps)}", "norm": norm,
            "eps": eps, "attacks": members, "excluded": [name for name in specs if name not in members]}
    return entries


def evaluate_suite(model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str],
                   cache_dir: str | Path | None = None, overrides: dict[str, dict] | None = None,
                   batch_size: int = 256, progress: bool = False, main_eps: float | None = None) -> dict:
    """Evaluate several attacks (and "corruptions") on one eval set: {name: {accuracy, n, …}, "worst_case": {…}}.

    `overrides` maps an attack name to spec fields to change (e.g. ``{"square": {"n_queries": 100}}``) and
    "corruptions" to keyword arguments of `evaluate_corruptions` (severity, names, seed, source). All names are
    checked before anything runs. The worst case (per-example AND) is taken within each threat model: "worst_case"
    over the L∞ attacks at the main ε (`main_eps`, default PGD-20's ε in this suite, i.e. with its override), and
    "worst_case[<norm> <radius>]" for every other threat model present (e.g. "worst_case[L2 0.5]" for C&W-L2).
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(names)
    if unknown:
        raise InvalidSpecError(f"overrides given for {', '.join(sorted(unknown))}, which are not in the suite")
    if len(set(names)) != len(names):
        raise InvalidSpecError(f"attack names repeat: {', '.join(names)}")
    specs = {name: attack_spec(name, **overrides.get(name, {})) for name in names if name != "corruptions"}
    report: dict = {}
    results: dict[str, EvalResult] = {}
    for name in names:
        if name == "corruptions":
            report[name] = evaluate_corruptions(model, x, y, cache_dir=cache_dir, batch_size=batch_size,
                                                progress=progress, **overrides.get(name, {})).to_dict()
            continue
        results[name] = evaluate(model, x, y, specs[name], cache_dir=cache_dir, batch_size=batch_size,
                                 progress=progress)
        report[name] = results[name].to_dict()
    adversarial = {name: spec for name, spec in specs.items() if spec.method != "clean"}
    if main_eps is None:
        main_eps = attack_spec("pgd20", **overrides.get("pgd20", {})).eps
    report.update(_worst_case_entries(adversarial, results, main_eps))
    return report
