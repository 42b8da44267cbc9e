"""ClassificationTask: one label per image (multi-class) or several (multi-label), epoch-level metrics."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from eisen_lightning import keys
from eisen_lightning.tasks.base import BaseTask, class_names


class ClassificationTask(BaseTask):
    """Image classification into ``num_classes`` classes.

    Multi-class (``multilabel=False``): the net returns ``(B, C)`` logits, the target is the class
    index (``(B,)`` or ``(B, 1)``), probabilities are the softmax, the prediction the argmax.
    Multi-label: the target is ``(B, C)`` of 0/1, probabilities are sigmoids, the prediction is
    ``prob >= threshold``. Metric partials are built with ``num_classes`` (multi-class) or
    ``num_labels`` (multi-label), torchmetrics' names, and updated with ``(prob, target)``.

    Args:
        net: Network returning ``(B, num_classes)`` logits.
        loss: Loss taking ``(logits, target)`` (``CrossEntropyLoss``; ``BCEWithLogitsLoss`` for multi-label).
        optimizer: Optimizer partial.
        num_classes: Number of classes (outputs).
        label_names: One name per class; default ``class0, class1, ...``.
        multilabel: Several labels per image.
        threshold: Probability above which a label is predicted (multi-label).
        metrics: ``name -> partial`` of torchmetrics classification metrics.
        best_metric: Metric whose best validation value is logged as ``val/<name>_best``.
        best_mode: ``max`` or ``min``.
        **kwargs: ``scheduler``, ``scheduler_interval``, ``input_keys``, ``target_key`` of :class:`BaseTask`.

    >>> from functools import partial
    >>> task = ClassificationTask(
    ...     net=nn.Sequential(nn.Flatten(), nn.Linear(16, 3)),
    ...     loss=nn.CrossEntropyLoss(),
    ...     optimizer=partial(torch.optim.Adam, lr=1e-3),
    ...     num_classes=3,
    ... )
    >>> task.postprocess(torch.tensor([[0.0, 2.0, 1.0]]))["pred"]
    tensor([1])
    """

    def __init__(
        self,
        net: nn.Module,
        loss: Callable[..., torch.Tensor],
        optimizer: Callable[..., torch.optim.Optimizer],
        num_classes: int,
        label_names: Sequence[str] | None = None,
        multilabel: bool = False,
        threshold: float = 0.5,
        metrics: Mapping[str, Callable[..., Any]] | None = None,
        best_metric: str | None = "accuracy",
        best_mode: str = "max",
        **kwargs: Any,
    ) -> None:
        names = class_names(num_classes, label_names, minimum=1 if multilabel else 2)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"task.threshold must be in (0, 1), got {threshold}")
        size = {"num_labels" if multilabel else "num_classes": num_classes}
        super().__init__(
            net,
            loss,
            optimizer,
            metrics=metrics,
            metric_kwargs=size,
            class_names=names,
            best_metric=best_metric if metrics else None,
            best_mode=best_mode,
            **kwargs,
        )
        self.num_classes, self.label_names = num_classes, names
        self.multilabel, self.threshold = multilabel, threshold
        self.save_hyperparameters(
            {
                "num_classes": num_classes,
                "label_names": names,
                "multilabel": multilabel,
                "threshold": threshold,
            }
        )

    def target(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """The target in the form the loss and metrics expect: class indices, or 0/1 per label."""
        target = batch[self.target_key]
        if self.multilabel:
            return target.reshape(len(target), -1).float()
        return target.reshape(len(target)).long()

    def shared_step(self, batch: Mapping[str, Any], stage: str) -> dict[str, Any]:
        """Forward and loss against :meth:`target`."""
        output = self(*self.inputs(batch))
        return {keys.LOSS: self.compute_loss(output, self.target(batch)), keys.OUTPUT: output}

    def postprocess(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        """Probabilities (``prob``) and predicted classes or labels (``pred``)."""
        if self.multilabel:
            prob = output.sigmoid()
            return {keys.PROB: prob, keys.PRED: (prob >= self.threshold).long()}
        prob = output.softmax(dim=1)
        return {keys.PROB: prob, keys.PRED: prob.argmax(dim=1)}

    def metric_inputs(self, result: Mapping[str, Any], batch: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
        """Probabilities and integer targets, as torchmetrics expects."""
        return result[keys.PROB], self.target(batch).long()

    def predict_step(
        self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Any]:
        """Probabilities and predictions of each image, with its case id when the batch has one."""
        result = self.postprocess(self(*self.inputs(batch)))
        return {**result, keys.CASE_ID: batch.get(keys.CASE_ID)}
