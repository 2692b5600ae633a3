"""The registry of training methods: how a `RunSpec` becomes a model and a training loss.

A method is one small class in its own module of this package, registered with one line::

    @register_method
    class Standard(Method):
        name = "standard"
        description = "temperature-scaled cross-entropy (Eq. 3)"

        def loss(self, model, x, y, spec):
            return temperature_ce(model(x), y, spec.tau)

Everything a method depends on lives in ``spec.method_args`` (part of the run hash), described by the method's
`Args`: a frozen dataclass whose type hints and ``arg(...)`` metadata are the whole validation (types, allowed
values, lower bounds), so no method writes its own checker. `Args.to_dict()` is what goes into a spec and
`Args.from_dict(spec.method_args)` reads it back, refusing unknown or missing settings: a budget is never implied.

This module is a leaf of the package (it imports no other part of tempscale but models, losses and errors);
`tempscale.spec` checks method names against `METHODS`, and `tempscale.methods` imports every plugin.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Union

import torch
import torch.nn as nn

from ..errors import InvalidSpecError
from ..models import build_model, weights_for_init

if TYPE_CHECKING:  # the spec module imports this registry; a spec is only a type here
    from ..spec import RunSpec


# --- method_args: one frozen dataclass per method ---------------------------------------------------------------------

def arg(default: Any = dataclasses.MISSING, doc: str = "", *, choices: Mapping | tuple | None = None,
        minimum: float | None = None, check: Callable[[Any], Any] | None = None, optional: bool = False) -> Any:
    """A method_args field. `choices`: the allowed values (a tuple or the keys of a documenting dict);
    `minimum`: inclusive lower bound; `check`: an extra validator that raises InvalidSpecError; `optional`: the
    field may be absent from method_args and is left out of `to_dict()` while None."""
    metadata = {"doc": doc, "choices": tuple(choices) if choices is not None else None, "minimum": minimum,
                "check": check, "optional": optional}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class MethodArgs:
    """Settings every method accepts. Subclass with more `arg` fields; values are checked on construction."""

    vit_img_size: int | None = arg(None, "ViT input size (tests shrink ViT-224); None: the architecture's own",
                                   minimum=1, optional=True)

    def __post_init__(self) -> None:
        hints = _type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _validated(f"{type(self).__name__}.{f.name}", getattr(self, f.name), hints[f.name], f.metadata)
            object.__setattr__(self, f.name, value)

    @classmethod
    def from_dict(cls, method_args: Mapping[str, Any]) -> "MethodArgs":
        """Read a spec's method_args: every non-optional setting must be there, and nothing else."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(method_args) - set(fields)
        if unknown:
            raise InvalidSpecError(f"unknown {cls.__name__} setting(s) {sorted(unknown)}; settable: {sorted(fields)}")
        missing = [name for name, f in fields.items() if not f.metadata.get("optional") and name not in method_args]
        if missing:
            raise InvalidSpecError(f"{cls.__name__} needs method_args {missing}: every setting a run depends on is "
                                   "part of its spec (build them with the method's *_args helper)")
        return cls(**method_args)

    def to_dict(self) -> dict[str, Any]:
        """The method_args of a spec (optional settings left out while None)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if not (f.metadata.get("optional") and getattr(self, f.name) is None)}

    @classmethod
    def with_changes(cls, **changes: Any) -> dict[str, Any]:
        """The defaults with `changes` applied, validated, as method_args (the ``*_args`` helpers)."""
        return cls.from_dict({**cls().to_dict(), **changes}).to_dict()


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _validated(where: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    if typing.get_origin(hint) in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise InvalidSpecError(f"{where} must be set, got None")
        hint = next(option for option in options if option is not type(None))
    value = _typed(where, value, hint)
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise InvalidSpecError(f"{where} must be one of {', '.join(map(str, choices))}, got {value!r}")
    minimum = meta.get("minimum")
    if minimum is not None and value < minimum:
        raise InvalidSpecError(f"{where} must be ≥ {minimum:g}, got {value!r}")
    check = meta.get("check")
    if check is not None:
        check(value)
    return value


def _typed(where: str, value: Any, hint: Any) -> Any:
    """`value` as the type `hint` names (bool, int, float or str), or InvalidSpecError."""
    if hint is bool:
        if value not in (True, False):
            raise InvalidSpecError(f"{where} must be True or False, got {value!r}")
        return bool(value)
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidSpecError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise InvalidSpecError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str) or not value:
            raise InvalidSpecError(f"{where} must be a non-empty string, got {value!r}")
        return value
    raise TypeError(f"{where}: method_args fields are bool, int, float or str (optionally | None), not {hint!r}")


# --- methods ----------------------------------------------------------------------------------------------------------

def build_classifier(spec: RunSpec, num_classes: int, mean: tuple, std: tuple) -> nn.Module:
    """The spec's architecture as a plain `Classifier` (pretrained encoder weights when its init says so)."""
    return build_model(spec.arch, num_classes, mean, std, weights=weights_for_init(spec.init, spec.arch),
                       vit_img_size=spec.method_args.get("vit_img_size"))


class Method:
    """A training method. Subclasses set `name`, `description`, `Args` and `loss`; `build` defaults to the spec's
    plain classifier. Instances hold no state: one instance per name serves every run."""

    name: ClassVar[str]
    description: ClassVar[str]
    Args: ClassVar[type[MethodArgs]] = MethodArgs

    def args(self, spec: RunSpec) -> MethodArgs:
        return self.Args.from_dict(spec.method_args)

    def check(self, method_args: Mapping[str, Any]) -> None:
        """Raise InvalidSpecError unless `method_args` are complete and valid for this method."""
        self.Args.from_dict(method_args)

    def build(self, spec: RunSpec, num_classes: int, mean: tuple, std: tuple) -> nn.Module:
        """A fresh model for `spec` (the caller seeds the global RNG first)."""
        return build_classifier(spec, num_classes, mean, std)

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: RunSpec) -> torch.Tensor:
        """The scalar training loss of one batch (the model is in train mode)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<method {self.name!r}: {self.description}>"


METHODS: dict[str, Method] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Register a method under its `name` (a class decorator; re-registering the same class is harmless)."""
    existing = METHODS.get(cls.name)
    if existing is not None and type(existing).__qualname__ != cls.__qualname__:
        raise InvalidSpecError(f"method name {cls.name!r} is taken by {type(existing).__qualname__}")
    METHODS[cls.name] = cls()
    return cls


# --- stored runs, for methods that learn from one (the pseudo-label students) --------------------------------------

StoredModelLoader = Callable[[Path, "str | torch.device"], nn.Module]
_stored_model_loaders: list[StoredModelLoader] = []


def set_stored_model_loader(loader: StoredModelLoader) -> None:
    """The run store hands in how a finished run's model is opened from its folder. The store sits above the
    registry, so the registry takes the loader instead of importing the store."""
    _stored_model_loaders[:] = [loader]


def load_stored_model(run_dir: Path, device: str | torch.device = "cpu") -> nn.Module:
    """The trained model of the finished run in `run_dir`, through the run store's loader."""
    if not _stored_model_loaders:
        raise InvalidSpecError("no run store is loaded: import tempscale.runs (which trains through get_or_train)")
    return _stored_model_loaders[0](Path(run_dir), device)


__all__ = ["Method", "MethodArgs", "METHODS", "arg", "build_classifier", "register_method",
           "set_stored_model_loader", "load_stored_model"]
