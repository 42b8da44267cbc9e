"""Public data-set layouts: each module turns a folder as distributed into sample dicts, with checks."""

from eisen_lightning.data.datasets.decathlon import (
    DECATHLON_TASKS,
    DecathlonLayout,
    LayoutError,
    read_decathlon,
)

__all__ = ["DECATHLON_TASKS", "DecathlonLayout", "LayoutError", "read_decathlon"]
