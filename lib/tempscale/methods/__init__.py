"""Training methods: how a run spec becomes a model and a training loss, one module per method.

``standard``    τ-scaled cross-entropy (Eq. 3)                                      `tempscale.methods.standard`
``madry``       Madry adversarial training with τ on the clean term (Eq. 12)         `tempscale.methods.madry`
``ldd``         Low Dimension Distillation: teacher + student (thesis Alg. 1)         `tempscale.methods.ldd`
``ldd_pseudo``  a student of a stored teacher's pseudo-labels (thesis Table 4.6)      `tempscale.methods.pseudo`

`base` is the registry every module registers in (`METHODS`). A new method is one module with a `Method` subclass
and its ``@register_method`` line, plus its import below.
"""
from . import ldd, madry, pseudo, standard
from .base import METHODS, Method, MethodArgs, arg, build_classifier, register_method
from .ldd import (KD_LOSSES, LDD_DEFAULTS, REDUCTIONS, InputPooledClassifier, LDDArgs, LDDLoss, LDDPair,
                  backbone_input_shape, build_teacher, kd_loss, ldd_args, ldd_loss)
from .madry import CRAFT_MODES, MADRY_PAPER, ATLoss, MadryArgs, craft_adversarial, madry_args, madry_loss
from .pseudo import PSEUDO_PARTS, PseudoArgs, ldd_pseudo_args, load_labeller, pseudo_label_loss
from .standard import standard_loss

__all__ = ["METHODS", "Method", "MethodArgs", "arg", "build_classifier", "register_method",
           "KD_LOSSES", "LDD_DEFAULTS", "REDUCTIONS", "InputPooledClassifier", "LDDArgs", "LDDLoss", "LDDPair",
           "backbone_input_shape", "build_teacher", "kd_loss", "ldd_args", "ldd_loss",
           "CRAFT_MODES", "MADRY_PAPER", "ATLoss", "MadryArgs", "craft_adversarial", "madry_args", "madry_loss",
           "PSEUDO_PARTS", "PseudoArgs", "ldd_pseudo_args", "load_labeller", "pseudo_label_loss", "standard_loss"]
