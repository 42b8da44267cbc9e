"""Dictionary transforms MONAI lacks, each a MONAI ``MapTransform`` (docs/transforms.md maps Eisen's)."""

from eisen_lightning.transforms.fields import RenameKeysd, SetConstantsd
from eisen_lightning.transforms.labels import ClassesToOneHotd, Thresholdd

__all__ = ["ClassesToOneHotd", "RenameKeysd", "SetConstantsd", "Thresholdd"]
