"""Lightning callbacks: TensorBoard summaries written with no user code."""

from eisen_lightning.callbacks.nan_guard import NaNGuard
from eisen_lightning.callbacks.onnx_export import OnnxExport
from eisen_lightning.callbacks.summaries import TensorBoardSummaries
from eisen_lightning.models.checkpointing import ActivationCheckpointing

__all__ = ["ActivationCheckpointing", "NaNGuard", "OnnxExport", "TensorBoardSummaries"]
