"""Tasks: LightningModules that wrap a net, a loss and metrics; built for subclassing."""

from eisen_lightning.tasks.base import BaseTask
from eisen_lightning.tasks.classification import ClassificationTask
from eisen_lightning.tasks.regression import RegressionTask
from eisen_lightning.tasks.segmentation import SegmentationTask

__all__ = ["BaseTask", "ClassificationTask", "RegressionTask", "SegmentationTask"]
