"""Metrics torchmetrics lacks, as torchmetrics metrics: surface distances of segmentations (MONAI's)."""

from eisen_lightning.metrics.surface import HausdorffDistance95, SurfaceDice

__all__ = ["HausdorffDistance95", "SurfaceDice"]
