"""eisen-lightning: deep learning on medical images with PyTorch Lightning, MONAI and Hydra.

The heavy parts (torch, MONAI, Lightning) are imported on first use, so ``import eisen_lightning``
and ``eisen --help`` stay fast.

>>> import eisen_lightning
>>> eisen_lightning.__version__
'0.1.0'
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "SegmentationTask": "eisen_lightning.tasks",
    "BaseTask": "eisen_lightning.tasks",
    "ClassificationTask": "eisen_lightning.tasks",
    "MedicalDataModule": "eisen_lightning.data",
    "DecathlonDataModule": "eisen_lightning.data",
    "DemoDataModule": "eisen_lightning.data",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'eisen_lightning' has no attribute {name!r}")
