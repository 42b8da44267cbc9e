"""Nets MONAI lacks (Obelisk), MONAI nets with a fix (HighResNet), and input-size checks.

The presets that select and configure nets live in ``conf/net/`` (``net=obelisk``); see
``docs/models.md``.
"""

from eisen_lightning.models.constraints import (
    SizeConstraint,
    check_input_size,
    nearest_valid_size,
    required_divisor,
    size_constraint,
    spatial_dims_of,
)
from eisen_lightning.models.fusion import FusionNet
from eisen_lightning.models.highresnet import HighResNet
from eisen_lightning.models.obelisk import Obelisk

__all__ = [
    "FusionNet",
    "HighResNet",
    "Obelisk",
    "SizeConstraint",
    "check_input_size",
    "nearest_valid_size",
    "required_divisor",
    "size_constraint",
    "spatial_dims_of",
]
