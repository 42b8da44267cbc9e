"""SegmentationTask: dense prediction with whole-volume (sliding-window) validation and per-class metrics."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from eisen_lightning import keys
from eisen_lightning.tasks.base import BaseTask, class_names


class SegmentationTask(BaseTask):
    """Segmentation of 2D or 3D images into labels, or into overlapping regions (``multilabel``).

    Training sees patches; validation, testing and prediction run the ``inferer`` (MONAI's
    sliding window by default) over whole volumes. Metrics accumulate over the whole epoch
    (every case counts once, whatever the batch size) and are logged as ``val/dice`` (mean over
    foreground classes), ``val/dice/<label name>`` and ``val/dice_best``.

    In multi-label mode (BraTS' tumour core / whole tumour / enhancing tumour) each output channel
    is one region: the prediction is ``sigmoid(logits) > threshold`` per channel, the target a
    ``(B, num_classes, ...)`` 0/1 map, metrics take both in one-hot format, and every channel is a
    region (no background): use a sigmoid loss (``loss=dice_sigmoid``) and ``task=segmentation_regions``.

    Args:
        net: Network returning ``num_classes`` logit channels.
        loss: Loss taking ``(logits, label)`` with label of shape ``(B, 1, ...)`` (``(B, num_classes, ...)``
            in multi-label mode).
        optimizer: Optimizer partial.
        num_classes: Number of classes, background included (of regions in multi-label mode).
        label_names: One name per class, background first (per region in multi-label mode);
            default ``class0, class1, ...``.
        metrics: Mapping ``name -> partial`` building a torchmetrics metric for ``num_classes``
            over label maps (such as ``DiceScore``); per-class results are logged per class.
        inferer: Callable ``inferer(inputs, network)`` for whole volumes, or ``None`` for a plain forward.
        best_metric: Metric whose best epoch value is logged as ``val/<name>_best``.
        best_mode: ``max`` or ``min``.
        multilabel: One sigmoid per channel (overlapping regions) instead of a softmax over classes.
        threshold: Probability above which a voxel is in a region (multi-label mode), in ``(0, 1)``.
        **kwargs: ``scheduler``, ``scheduler_interval``, ``input_keys``, ``target_key`` of :class:`BaseTask`.

    >>> from monai.networks.nets import UNet
    >>> from monai.losses import DiceCELoss
    >>> from functools import partial
    >>> task = SegmentationTask(
    ...     net=UNet(3, 1, 2, channels=(4, 8), strides=(2,)),
    ...     loss=DiceCELoss(to_onehot_y=True, softmax=True),
    ...     optimizer=partial(torch.optim.Adam, lr=1e-3),
    ...     num_classes=2,
    ... )
    >>> task(torch.zeros(1, 1, 16, 16, 16)).shape
    torch.Size([1, 2, 16, 16, 16])
    """

    def __init__(
        self,
        net: nn.Module,
        loss: Callable[..., torch.Tensor],
        optimizer: Callable[..., torch.optim.Optimizer],
        num_classes: int,
        label_names: Sequence[str] | None = None,
        metrics: Mapping[str, Callable[..., Any]] | None = None,
        inferer: Callable[..., torch.Tensor] | None = None,
        best_metric: str | None = keys.DICE,
        best_mode: str = "max",
        multilabel: bool = False,
        threshold: float = 0.5,
        **kwargs: Any,
    ) -> None:
        if not isinstance(multilabel, bool):
            raise TypeError(f"task.multilabel must be true or false, got {multilabel!r}")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"task.threshold must be in (0, 1), got {threshold!r}")
        names = class_names(num_classes, label_names, minimum=1 if multilabel else 2)
        super().__init__(
            net,
            loss,
            optimizer,
            metrics=metrics,
            metric_kwargs={"num_classes": num_classes},
            class_names=names,
            best_metric=best_metric if metrics else None,
            best_mode=best_mode,
            **kwargs,
        )
        self.num_classes, self.label_names, self.inferer = num_classes, names, inferer
        self.multilabel, self.threshold = multilabel, threshold
        self.save_hyperparameters(
            {
                "num_classes": num_classes,
                "label_names": names,
                "input_keys": self.input_keys,
                "target_key": self.target_key,
                "best_metric": best_metric,
                "best_mode": best_mode,
                "multilabel": multilabel,
                "threshold": threshold,
            }
        )

    def infer(self, image: torch.Tensor) -> torch.Tensor:
        """Logits over a whole image through the inferer (the forward pass when there is none)."""
        if self.inferer is None:
            return self(image)
        return self.inferer(image, self)

    def shared_step(self, batch: Mapping[str, Any], stage: str) -> dict[str, Any]:
        """Patches through the net in training, whole volumes through the inferer otherwise."""
        if stage == keys.TRAIN or len(self.input_keys) > 1:
            return super().shared_step(batch, stage)
        output = self.infer(batch[self.input_keys[0]])
        return {keys.LOSS: self.compute_loss(output, batch[self.target_key]), keys.OUTPUT: output}

    def postprocess(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        """The label map: argmax over the class channel, shape ``(B, 1, ...)``.

        In multi-label mode: the region probabilities (``prob``) and the thresholded 0/1 regions
        (``pred``), both ``(B, num_classes, ...)``.
        """
        if self.multilabel:
            prob = output.sigmoid()
            return {keys.PROB: prob, keys.PRED: (prob > self.threshold).long()}
        return {keys.PRED: output.argmax(dim=1, keepdim=True)}

    def metric_inputs(self, result: Mapping[str, Any], batch: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
        """Predicted and true label maps without the channel axis, as torchmetrics' ``index`` format.

        In multi-label mode: the ``(B, num_classes, ...)`` 0/1 maps as they are (``one-hot`` format).
        """
        if self.multilabel:
            return result[keys.PRED], batch[self.target_key].long()
        return result[keys.PRED][:, 0], batch[self.target_key][:, 0].long()

    def predict_step(
        self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Any]:
        """Label map of each image, with the batch's geometry for writing it back."""
        result = self.postprocess(self.infer(batch[self.input_keys[0]]))
        return {**result, keys.META: batch.get(keys.META, {})}
