"""Data: public data-set layouts, DataModules, splits, the batch boundary and synthetic replicas."""

from eisen_lightning.data.datamodule import DatasetInfo, MedicalDataModule
from eisen_lightning.data.decathlon import DecathlonDataModule
from eisen_lightning.data.demo import DemoDataModule

__all__ = ["DatasetInfo", "DecathlonDataModule", "DemoDataModule", "MedicalDataModule"]
