"""Per-stage metrics and their logged names: ``val/dice``, ``val/dice/<class>``, ``val/dice_best``."""

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from eisen_lightning import keys

EVAL_STAGES = (keys.VAL, keys.TEST)
BEST_MODES = ("max", "min")


class StageMetrics(nn.Module):
    """One fresh copy of every metric per evaluation stage, computed over whole epochs.

    A metric with ``average="none"`` (torchmetrics' per-class setting) or whose result is a vector
    is logged per class (or per foreground class) as ``stage/name/<class>`` and as its NaN-ignoring
    mean under ``stage/name``; a matrix (a confusion matrix) is logged cell by cell as
    ``stage/name/<true class>/<predicted class>``; any other metric is logged as ``stage/name``.

    Args:
        factories: ``name -> partial``; each is called with ``metric_kwargs`` to build a metric.
        metric_kwargs: Keyword arguments for every factory (such as ``num_classes``).
        class_names: One name per class (may be empty when no metric is per class).
        best_metric: Name whose best value over validation epochs is logged as
            ``val/<name>_best``, or ``None``.
        best_mode: ``max`` or ``min``.
    """

    def __init__(
        self,
        factories: Mapping[str, Callable[..., Any]],
        metric_kwargs: Mapping[str, Any],
        class_names: Sequence[str],
        best_metric: str | None,
        best_mode: str = "max",
    ) -> None:
        super().__init__()
        if best_mode not in BEST_MODES:
            raise ValueError(f"task.best_mode must be one of {BEST_MODES}, got {best_mode!r}")
        if factories and best_metric is not None and best_metric not in factories:
            raise ValueError(
                f"task.best_metric {best_metric!r} is not among task.metrics {sorted(factories)}"
            )
        self.stages = nn.ModuleDict(
            {
                stage: nn.ModuleDict({n: f(**metric_kwargs) for n, f in factories.items()})
                for stage in EVAL_STAGES
            }
        )
        self.label_names, self.best_metric, self.best_mode = list(class_names), best_metric, best_mode
        self.best: float | None = None

    def __len__(self) -> int:
        return len(self.stages[keys.VAL])

    def update(self, stage: str, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of predicted and true label maps to every metric of ``stage``."""
        for metric in self.stages[stage].values():
            metric.update(pred, target)

    def compute(self, stage: str, track_best: bool) -> dict[str, float]:
        """Compute, name and reset the metrics of ``stage``; update the best value when asked."""
        logged: dict[str, float] = {}
        for name, metric in self.stages[stage].items():
            logged.update(self._named(stage, name, metric.compute(), _per_class(metric)))
            metric.reset()
        if self.best_metric is None:
            return logged
        key = keys.metric_key(stage, self.best_metric)
        if stage == keys.VAL and track_best and key in logged:
            value = logged[key]
            better = self.best is None or (
                value > self.best if self.best_mode == "max" else value < self.best
            )
            self.best = value if better and not math.isnan(value) else self.best
        if stage == keys.VAL and self.best is not None:
            logged[keys.metric_key(stage, self.best_metric + keys.BEST_SUFFIX)] = self.best
        return logged

    def _named(self, stage: str, name: str, value: torch.Tensor, per_class: bool) -> dict[str, float]:
        value = torch.as_tensor(value, dtype=torch.float32)
        if value.ndim == 0 and not per_class:
            return {keys.metric_key(stage, name): float(value)}
        if value.ndim == 2:
            return self._cells(stage, name, value)
        value = value.flatten()
        names = self._class_names(value.numel(), name)
        named = {
            keys.metric_key(stage, name, n): float(v) for n, v in zip(names, value.tolist(), strict=True)
        }
        named[keys.metric_key(stage, name)] = float(torch.nanmean(value))
        return named

    def _cells(self, stage: str, name: str, matrix: torch.Tensor) -> dict[str, float]:
        """A matrix (a confusion matrix: rows true, columns predicted) as ``stage/name/<true>/<pred>``."""
        rows = self._class_names(matrix.shape[0], name)
        cols = self._class_names(matrix.shape[1], name)
        return {
            keys.metric_key(stage, name, f"{rows[i]}/{cols[j]}"): float(matrix[i, j])
            for i in range(matrix.shape[0])
            for j in range(matrix.shape[1])
        }

    def _class_names(self, count: int, name: str) -> list[str]:
        if not self.label_names:
            return [str(i) for i in range(count)]
        if count == len(self.label_names):
            return self.label_names
        if count == len(self.label_names) - 1:
            return self.label_names[1:]
        raise ValueError(
            f"metric {name!r} returned {count} values; expected one per class ({len(self.label_names)}) "
            "or per foreground class"
        )

    def get_extra_state(self) -> dict[str, Any]:
        """The best value so far, saved in checkpoints so a resumed run keeps it."""
        return {"best": self.best}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the best value from a checkpoint."""
        self.best = state.get("best")


def _per_class(metric: Any) -> bool:
    """Torchmetrics returns a 0-d tensor for a single class even with ``average="none"``."""
    return getattr(metric, "average", "") in ("none", None)
