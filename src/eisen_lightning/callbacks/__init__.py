"""Lightning callbacks: TensorBoard summaries written with no user code."""

from eisen_lightning.callbacks.summaries import TensorBoardSummaries

__all__ = ["TensorBoardSummaries"]
