"""Data: public data-set layouts, DataModules, splits, the batch boundary and synthetic replicas.

The DataModules are imported on first use (each pulls in Lightning and MONAI), so that light
submodules such as :mod:`eisen_lightning.data.download` start fast.

>>> from eisen_lightning.data import DecathlonDataModule
>>> DecathlonDataModule.__module__
'eisen_lightning.data.decathlon'
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "AbcsDataModule": "abcs",
    "BoneAgeDataModule": "boneage",
    "BratsDataModule": "brats",
    "CamusDataModule": "camus",
    "DatasetInfo": "datamodule",
    "DecathlonDataModule": "decathlon",
    "DemoDataModule": "demo",
    "EmidecDataModule": "emidec",
    "JsonListDataModule": "json_list",
    "KaggleCovidDataModule": "kaggle_covid",
    "MedicalDataModule": "datamodule",
    "MedSegDataModule": "medseg",
    "PandaDataModule": "panda",
    "PCamDataModule": "pcam",
    "RSNAICHDataModule": "rsna_ich",
    "UCSDCovidDataModule": "ucsd_covid",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
