"""A Lightning callback that appends the run's progress as JSON lines, for the builder's live view."""

import json
import math
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl


class ProgressFile(pl.Callback):
    """Append ``{"event", "epoch", "step", "metrics"}`` lines to ``path`` as the run goes.

    Args:
        path: The JSON-lines file (its folder is created).

    Example:
        >>> callback = ProgressFile("/tmp/progress.jsonl")
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = Path(path)

    def _write(self, event: str, trainer: "pl.Trainer") -> None:
        metrics = {}
        for key, value in trainer.callback_metrics.items():
            number = float(value.detach().float().mean()) if hasattr(value, "detach") else float(value)
            metrics[key] = None if math.isnan(number) else number
        line = {
            "event": event,
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "time": time.time(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps({**line, "metrics": metrics}) + "\n")

    def on_train_start(self, trainer: "pl.Trainer", pl_module: Any) -> None:  # noqa: D102
        self._write("start", trainer)

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: Any) -> None:  # noqa: D102
        self._write("epoch", trainer)

    def on_validation_epoch_end(self, trainer: "pl.Trainer", pl_module: Any) -> None:  # noqa: D102
        self._write("validation", trainer)

    def on_train_end(self, trainer: "pl.Trainer", pl_module: Any) -> None:  # noqa: D102
        self._write("end", trainer)
