"""RegressionTask: one (or a few) real values per image, such as bone age in months."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from eisen_lightning import keys
from eisen_lightning.tasks.base import BaseTask


class RegressionTask(BaseTask):
    """Predict ``num_outputs`` real values per image; metrics in the target's own unit.

    The net learns the standardised target ``(y - target_mean) / target_std`` (so losses and
    initial outputs are of order one whatever the unit); :meth:`postprocess` maps its output back
    to the unit of the target, which is what metrics (MAE, RMSE as epoch-level torchmetrics) and
    predictions see. The loss compares standardised values.

    Args:
        net: Network returning ``(B, num_outputs)`` (or ``(B,)`` for one output).
        loss: Loss taking ``(output, standardised target)`` (``MSELoss``, ``L1Loss``, ``SmoothL1Loss``).
        optimizer: Optimizer partial.
        num_outputs: Values predicted per image.
        output_names: One name per value (per-output metric names); default ``value0, value1, ...``.
        target_mean: Subtracted from the target before the loss.
        target_std: Divides the centred target before the loss (> 0).
        metrics: ``name -> partial`` of torchmetrics regression metrics (built without arguments).
        best_metric: Metric whose best validation value is logged as ``val/<name>_best``.
        best_mode: ``min`` (errors) or ``max``.
        **kwargs: ``scheduler``, ``scheduler_interval``, ``input_keys``, ``target_key`` of :class:`BaseTask`.

    >>> from functools import partial
    >>> task = RegressionTask(
    ...     net=nn.Linear(4, 1), loss=nn.MSELoss(), optimizer=partial(torch.optim.Adam, lr=1e-3),
    ...     target_mean=120.0, target_std=40.0,
    ... )
    >>> task.postprocess(torch.tensor([[0.5]]))["pred"]
    tensor([[140.]])
    """

    def __init__(
        self,
        net: nn.Module,
        loss: Callable[..., torch.Tensor],
        optimizer: Callable[..., torch.optim.Optimizer],
        num_outputs: int = 1,
        output_names: Sequence[str] | None = None,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        metrics: Mapping[str, Callable[..., Any]] | None = None,
        best_metric: str | None = "mae",
        best_mode: str = "min",
        **kwargs: Any,
    ) -> None:
        if isinstance(num_outputs, bool) or not isinstance(num_outputs, int) or num_outputs < 1:
            raise ValueError(f"task.num_outputs must be a positive integer, got {num_outputs!r}")
        if not target_std > 0:
            raise ValueError(f"task.target_std must be > 0, got {target_std}")
        names = list(output_names) if output_names else [f"value{i}" for i in range(num_outputs)]
        if len(names) != num_outputs:
            raise ValueError(f"task.output_names has {len(names)} names for {num_outputs} outputs: {names}")
        super().__init__(
            net,
            loss,
            optimizer,
            metrics=metrics,
            metric_kwargs={},
            class_names=names if num_outputs > 1 else [],
            best_metric=best_metric if metrics else None,
            best_mode=best_mode,
            **kwargs,
        )
        self.num_outputs, self.output_names = num_outputs, names
        self.target_mean, self.target_std = float(target_mean), float(target_std)
        self.save_hyperparameters(
            {
                "num_outputs": num_outputs,
                "output_names": names,
                "target_mean": target_mean,
                "target_std": target_std,
            }
        )

    def target(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """The target in its own unit, as ``(B, num_outputs)`` float."""
        return batch[self.target_key].reshape(len(batch[self.target_key]), self.num_outputs).float()

    def standardise(self, value: torch.Tensor) -> torch.Tensor:
        """Map a target to the scale the net learns."""
        return (value - self.target_mean) / self.target_std

    def shared_step(self, batch: Mapping[str, Any], stage: str) -> dict[str, Any]:
        """Forward, and the loss against the standardised target."""
        output = self(*self.inputs(batch))
        output = output.reshape(len(output), self.num_outputs)
        target = self.standardise(self.target(batch))
        return {keys.LOSS: self.compute_loss(output, target), keys.OUTPUT: output}

    def postprocess(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        """The prediction in the target's unit (``pred``)."""
        output = output.reshape(len(output), self.num_outputs).float()
        return {keys.PRED: output * self.target_std + self.target_mean}

    def metric_inputs(self, result: Mapping[str, Any], batch: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
        """Predictions and targets in the target's unit; flat for a single output."""
        pred, target = result[keys.PRED], self.target(batch)
        return (pred.reshape(-1), target.reshape(-1)) if self.num_outputs == 1 else (pred, target)

    def predict_step(
        self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Any]:
        """Predicted values of each image, with its case id when the batch has one."""
        result = self.postprocess(self(*self.inputs(batch)))
        return {**result, keys.CASE_ID: batch.get(keys.CASE_ID)}
