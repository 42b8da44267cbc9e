"""A small segmentation task and data for Trainer-level tests, and a net that fails on demand."""

from functools import partial

import torch
from monai.losses import DiceCELoss
from monai.networks.nets import UNet
from torch import nn
from torch.utils.data import DataLoader

from eisen_lightning.tasks import SegmentationTask

NAMES = ["background", "organ", "lesion"]


class FailingNet(nn.Module):
    """Wraps a net; on the training calls listed in ``bad_calls`` makes the loss or a gradient NaN.

    ``kind="loss"``: the output is NaN, so the loss is. ``kind="gradient"``: the output is finite, but
    the gradient of ``probe`` is NaN (the derivative of sqrt at zero, times zero).
    """

    def __init__(self, net: nn.Module, bad_calls: set[int], kind: str = "loss") -> None:
        super().__init__()
        self.net, self.bad_calls, self.kind, self.calls = net, set(bad_calls), kind, 0
        self.probe = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x) + self.probe
        if self.training:
            call, self.calls = self.calls, self.calls + 1
            if call in self.bad_calls and self.kind == "loss":
                return out * float("nan")
            if call in self.bad_calls:
                return out + torch.sqrt(self.probe * 0.0)
        return out


def small_unet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return UNet(3, 1, 3, channels=(4, 8), strides=(2,), num_res_units=1)


def task(net: nn.Module, **overrides) -> SegmentationTask:
    from torchmetrics.segmentation import DiceScore

    dice = partial(DiceScore, include_background=False, average="none", input_format="index")
    args = dict(
        net=net,
        loss=DiceCELoss(to_onehot_y=True, softmax=True),
        optimizer=partial(torch.optim.AdamW, lr=1e-2, weight_decay=1e-2),
        num_classes=3,
        label_names=NAMES,
        metrics={"dice": dice},
    )
    return SegmentationTask(**{**args, **overrides})


def loader(batches: int = 4, size: int = 16) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batches, 1, size, size, size, generator=generator)
    labels = (images > 0.5).long() + (images > 1.5).long()
    samples = [{"image": i, "label": lab} for i, lab in zip(images, labels, strict=True)]
    return DataLoader(samples, batch_size=1)


def trainer(**kwargs):
    import pytorch_lightning as pl

    settings = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    return pl.Trainer(**{**settings, **kwargs})
