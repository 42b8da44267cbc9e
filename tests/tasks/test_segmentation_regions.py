"""SegmentationTask in multi-label mode: sigmoid regions, one-hot Dice per region, the conf presets."""

from functools import partial

import pytest
import torch
from hydra.utils import instantiate
from monai.losses import DiceLoss
from monai.networks.nets import UNet
from torchmetrics.segmentation import DiceScore

from conftest import compose
from eisen_lightning import keys
from eisen_lightning.tasks import SegmentationTask

REGIONS = ["TC", "WT", "ET"]
DICE = {"dice": partial(DiceScore, include_background=True, average="none", input_format="one-hot")}


def _task(**overrides):
    args = dict(
        net=UNet(3, 2, 3, channels=(4, 8), strides=(2,)),
        loss=DiceLoss(sigmoid=True),
        optimizer=partial(torch.optim.Adam, lr=1e-3),
        num_classes=3,
        label_names=REGIONS,
        metrics=DICE,
        multilabel=True,
    )
    return SegmentationTask(**{**args, **overrides})


def test_postprocess_thresholds_each_region_independently():
    task = _task(threshold=0.7)
    logits = torch.tensor([2.0, 0.5, -1.0]).view(1, 3, 1, 1, 1)  # sigmoid: 0.88, 0.62, 0.27
    result = task.postprocess(logits)
    assert result[keys.PRED].view(-1).tolist() == [1, 0, 0]
    assert torch.allclose(result[keys.PROB], logits.sigmoid())


def test_dice_is_logged_per_region_over_the_epoch():
    task = _task()
    target = torch.zeros(1, 3, 4, 4, 4)
    target[:, 1, :2] = 1  # WT: half the volume
    target[:, 0, :1] = 1  # TC inside WT
    pred = target.clone()
    pred[:, 2, 0, 0, 0] = 1  # ET predicted where there is none
    pred[:, 0] = 0  # TC missed
    task.metrics.update(keys.VAL, *task.metric_inputs({keys.PRED: pred.long()}, {keys.LABEL: target}))
    logged = task.metrics.compute(keys.VAL, track_best=True)
    assert logged["val/dice/WT"] == pytest.approx(1.0)
    assert logged["val/dice/TC"] == pytest.approx(0.0)
    assert logged["val/dice/ET"] == pytest.approx(0.0)
    assert logged["val/dice"] == pytest.approx(1 / 3)


def test_evaluation_step_predicts_every_region():
    task = _task()
    batch = {keys.IMAGE: torch.randn(1, 2, 8, 8, 8), keys.LABEL: (torch.rand(1, 3, 8, 8, 8) > 0.5).float()}
    result = task.evaluation_step(batch, keys.VAL)
    assert result[keys.PRED].shape == (1, 3, 8, 8, 8) and torch.isfinite(result[keys.LOSS])


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="task.threshold must be in"):
        _task(threshold=1.5)
    with pytest.raises(TypeError, match="task.multilabel must be true or false"):
        _task(multilabel="yes")
    single = _task(num_classes=1, label_names=["tumour"], net=UNet(3, 2, 1, channels=(4, 8), strides=(2,)))
    assert single.label_names == ["tumour"]
    with pytest.raises(ValueError, match="task.num_classes must be an integer >= 2"):
        _task(multilabel=False, num_classes=1, label_names=["tumour"])


def test_the_regions_preset_and_sigmoid_loss_compose(tmp_path):
    cfg = compose(
        [
            "task=segmentation_regions",
            "loss=dice_sigmoid",
            "dataset.in_channels=4",
            "dataset.num_classes=3",
            "dataset.label_names=[TC,WT,ET]",
            "dataset.spatial_dims=3",
        ],
        tmp_path,
    )
    task = instantiate(cfg.task, _convert_="all")
    assert task.multilabel and task.label_names == REGIONS
    output = task(torch.randn(1, 4, 16, 16, 16))
    loss = task.compute_loss(output, (torch.rand(1, 3, 16, 16, 16) > 0.5).float())
    assert loss.ndim == 0 and torch.isfinite(loss)
