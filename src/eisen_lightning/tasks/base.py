"""BaseTask: the LightningModule steps every task shares; subclasses choose how to score and predict."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from eisen_lightning import keys
from eisen_lightning.tasks.metrics import StageMetrics

SCHEDULER_INTERVALS = ("epoch", "step")


class BaseTask(pl.LightningModule):
    """Wires a net, a loss, metrics, an optimizer and a scheduler into Lightning's loops.

    The task never switches on names: every collaborator is given to it, and field routing
    (which batch keys feed the net, which key is the target) is configuration. Research code
    overrides the small steps: :meth:`forward`, :meth:`compute_loss`, :meth:`shared_step`,
    :meth:`postprocess`, :meth:`metric_inputs`, :meth:`predict_step`.

    Every step returns a dict that callbacks read (``keys.LOSS``, ``keys.OUTPUT`` and, in
    validation and testing, what :meth:`postprocess` adds such as ``keys.PRED``).

    Args:
        net: The network; it takes the tensors of ``input_keys`` in order.
        loss: Callable ``loss(output, target) -> scalar``.
        optimizer: Partial that takes the parameters and returns an optimizer.
        scheduler: Partial that takes the optimizer and returns an LR scheduler, or ``None``.
        scheduler_interval: Step the scheduler each ``epoch`` or each ``step``.
        input_keys: Batch keys passed to ``net`` as positional arguments.
        target_key: Batch key of the target.
        metrics: ``name -> partial`` of torchmetrics metrics, each built with ``metric_kwargs``.
        metric_kwargs: Keyword arguments for every metric partial (such as ``num_classes``).
        class_names: Names for per-class metric values.
        best_metric: Metric whose best validation value is logged as ``val/<name>_best``.
        best_mode: ``max`` or ``min``.

    >>> import functools
    >>> task = BaseTask(
    ...     net=nn.Conv3d(1, 2, kernel_size=3, padding=1),
    ...     loss=nn.CrossEntropyLoss(),
    ...     optimizer=functools.partial(torch.optim.AdamW, lr=1e-3),
    ... )
    >>> task(torch.rand(2, 1, 8, 8, 8)).shape
    torch.Size([2, 2, 8, 8, 8])
    >>> task.inputs({"image": torch.zeros(1), "label": torch.ones(1)})
    [tensor([0.])]
    >>> type(task.configure_optimizers()).__name__
    'AdamW'
    """

    def __init__(
        self,
        net: nn.Module,
        loss: Callable[..., torch.Tensor],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        input_keys: Sequence[str] = (keys.IMAGE,),
        target_key: str = keys.LABEL,
        metrics: Mapping[str, Callable[..., Any]] | None = None,
        metric_kwargs: Mapping[str, Any] | None = None,
        class_names: Sequence[str] = (),
        best_metric: str | None = None,
        best_mode: str = "max",
    ) -> None:
        super().__init__()
        _check_collaborators(net, loss, optimizer, scheduler_interval, input_keys)
        self.net, self.loss = net, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_interval = scheduler_interval
        self.input_keys, self.target_key = list(input_keys), target_key
        self.metrics = StageMetrics(
            metrics or {}, dict(metric_kwargs or {}), class_names, best_metric, best_mode
        )

    # -- overridable steps --------------------------------------------------------------------
    def forward(self, *inputs: torch.Tensor) -> Any:
        """Run the net on the input tensors."""
        return self.net(*inputs)

    def inputs(self, batch: Mapping[str, Any]) -> list[torch.Tensor]:
        """Pick the net's inputs from the batch by ``input_keys``."""
        missing = [k for k in self.input_keys if k not in batch]
        if missing:
            raise KeyError(f"batch has no key(s) {missing} named in task.input_keys; it has {sorted(batch)}")
        return [batch[k] for k in self.input_keys]

    def compute_loss(self, output: Any, target: torch.Tensor) -> torch.Tensor:
        """Return the loss of ``output`` against ``target``, reduced in float32.

        Under mixed precision the net runs in float16/bfloat16; sums over millions of voxels in
        those types lose the small terms, so the loss runs outside autocast on float32 copies.
        """
        device_type = target.device.type if isinstance(target, torch.Tensor) else "cpu"
        with torch.autocast(device_type=device_type, enabled=False):
            return self.loss(_float32(output), _float32(target))

    def shared_step(self, batch: Mapping[str, Any], stage: str) -> dict[str, Any]:
        """Forward and loss for ``stage``; returns ``{"loss", "output"}``."""
        output = self(*self.inputs(batch))
        return {keys.LOSS: self.compute_loss(output, batch[self.target_key]), keys.OUTPUT: output}

    def postprocess(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        """Turn net outputs into predictions (``pred``, ``prob``, ...); none by default."""
        return {}

    def metric_inputs(self, result: Mapping[str, Any], batch: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
        """The ``(preds, target)`` pair given to every metric's ``update``."""
        return result[keys.PRED], batch[self.target_key]

    def evaluation_step(self, batch: Mapping[str, Any], stage: str) -> dict[str, Any]:
        """Loss, predictions and metric update for ``val`` or ``test``."""
        result = self.shared_step(batch, stage)
        self.log_loss(stage, result[keys.LOSS], batch)
        result.update(self.postprocess(result[keys.OUTPUT]))
        if len(self.metrics):
            self.metrics.update(stage, *self.metric_inputs(result, batch))
        return result

    # -- Lightning hooks ----------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, Any]:
        """One optimisation step; logs ``train/loss`` per epoch."""
        result = self.shared_step(batch, keys.TRAIN)
        self.log_loss(keys.TRAIN, result[keys.LOSS], batch)
        return result

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, Any]:
        """Validation step (see :meth:`evaluation_step`)."""
        return self.evaluation_step(batch, keys.VAL)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, Any]:
        """Test step (see :meth:`evaluation_step`)."""
        return self.evaluation_step(batch, keys.TEST)

    def on_validation_epoch_end(self) -> None:
        """Log the epoch's validation metrics (and the best value so far)."""
        track = not self.trainer.sanity_checking
        self.log_dict(self.metrics.compute(keys.VAL, track_best=track), sync_dist=True)

    def on_test_epoch_end(self) -> None:
        """Log the epoch's test metrics."""
        self.log_dict(self.metrics.compute(keys.TEST, track_best=False), sync_dist=True)

    def log_loss(self, stage: str, loss: torch.Tensor, batch: Mapping[str, Any]) -> None:
        """Log ``stage/loss`` as an epoch mean weighted by batch size, synced across processes."""
        size = len(batch[self.input_keys[0]])
        self.log(
            keys.metric_key(stage, keys.LOSS),
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=size,
            sync_dist=True,
        )

    def configure_optimizers(self) -> Any:
        """Build the optimizer (and scheduler) from the partials given at construction."""
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        name = keys.metric_key(keys.TRAIN, "lr")
        schedule = {"scheduler": scheduler, "interval": self.scheduler_interval, "name": name}
        return {"optimizer": optimizer, "lr_scheduler": schedule}


def class_names(num_classes: int, label_names: Sequence[str] | None, minimum: int = 2) -> list[str]:
    """Check ``num_classes`` and return one name per class (``class0, class1, ...`` by default).

    Raises:
        ValueError: If ``num_classes`` is below ``minimum`` or the names do not match it.
    """
    if not isinstance(num_classes, int) or num_classes < minimum:
        raise ValueError(f"task.num_classes must be an integer >= {minimum}, got {num_classes!r}")
    names = list(label_names) if label_names is not None else [f"class{i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"task.label_names has {len(names)} names for {num_classes} classes: {names}")
    return names


def _float32(value: Any) -> Any:
    """Floating tensors (also inside tuples, lists and dicts) as float32; anything else unchanged."""
    from lightning_utilities.core.apply_func import apply_to_collection

    return apply_to_collection(value, torch.Tensor, lambda t: t.float() if t.is_floating_point() else t)


def _check_collaborators(
    net: Any, loss: Any, optimizer: Any, scheduler_interval: str, input_keys: Sequence[str]
) -> None:
    if not isinstance(net, nn.Module):
        raise TypeError(f"task.net must be a torch.nn.Module, got {type(net).__name__}")
    for name, value in (("loss", loss), ("optimizer", optimizer)):
        if not callable(value):
            raise TypeError(f"task.{name} must be callable, got {type(value).__name__}")
    if scheduler_interval not in SCHEDULER_INTERVALS:
        raise ValueError(
            f"task.scheduler_interval must be one of {SCHEDULER_INTERVALS}, got {scheduler_interval!r}"
        )
    if not input_keys:
        raise ValueError("task.input_keys must name at least one batch key")
