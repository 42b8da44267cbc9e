"""SegmentationTask and its per-stage metrics: epoch-level accumulation, naming, validation of arguments."""

from functools import partial

import pytest
import torch
from monai.losses import DiceCELoss
from monai.networks.nets import UNet
from torchmetrics.segmentation import DiceScore

from eisen_lightning import keys
from eisen_lightning.tasks import SegmentationTask
from eisen_lightning.tasks.metrics import StageMetrics

NAMES = ["background", "organ", "lesion"]
DICE = {"dice": partial(DiceScore, include_background=False, average="none", input_format="index")}


def _task(**overrides):
    args = dict(
        net=UNet(3, 1, 3, channels=(4, 8), strides=(2,)),
        loss=DiceCELoss(to_onehot_y=True, softmax=True),
        optimizer=partial(torch.optim.Adam, lr=1e-3),
        num_classes=3,
        label_names=NAMES,
        metrics=DICE,
    )
    return SegmentationTask(**{**args, **overrides})


def _case(organ_hit: int, lesion_hit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1x10 case: organ 4 voxels, lesion 2 voxels, with the given numbers of them predicted."""
    target = torch.zeros(1, 10, dtype=torch.long)
    target[0, :4], target[0, 4:6] = 1, 2
    pred = torch.zeros_like(target)
    pred[0, :organ_hit], pred[0, 4 : 4 + lesion_hit] = 1, 2
    return pred, target


def test_dice_is_the_mean_over_cases_of_the_epoch_not_of_batch_means():
    metrics = StageMetrics(DICE, {"num_classes": 3}, NAMES, "dice")
    cases = [_case(4, 2), _case(4, 2), _case(4, 2), _case(0, 0)]
    first = [torch.cat(t) for t in zip(*cases[:3], strict=True)]
    metrics.update(keys.VAL, *first)  # a batch of three perfect cases
    metrics.update(keys.VAL, *cases[3])  # a batch of one missed case
    logged = metrics.compute(keys.VAL, track_best=True)
    assert logged["val/dice/organ"] == pytest.approx(0.75)  # (1 + 1 + 1 + 0) / 4, batch means would give 0.5
    assert logged["val/dice/lesion"] == pytest.approx(0.75)
    assert logged["val/dice"] == pytest.approx(0.75)
    assert logged["val/dice_best"] == pytest.approx(0.75)


def test_metrics_reset_each_epoch_and_track_the_best():
    metrics = StageMetrics(DICE, {"num_classes": 3}, NAMES, "dice")
    for hits, expected_best in (((4, 2), 1.0), ((2, 1), 1.0)):
        metrics.update(keys.VAL, *_case(*hits))
        logged = metrics.compute(keys.VAL, track_best=True)
        assert logged["val/dice_best"] == pytest.approx(expected_best)
    assert logged["val/dice"] == pytest.approx(2 / 3)  # 2*2/(4+2): only this epoch's case counts
    restored = StageMetrics(DICE, {"num_classes": 3}, NAMES, "dice")
    restored.load_state_dict(metrics.state_dict())
    assert restored.best == pytest.approx(1.0)


def test_sanity_check_epochs_do_not_set_the_best():
    metrics = StageMetrics(DICE, {"num_classes": 3}, NAMES, "dice")
    metrics.update(keys.VAL, *_case(4, 2))
    assert "val/dice_best" not in metrics.compute(keys.VAL, track_best=False)


def test_single_foreground_class_is_still_logged_per_class():
    metrics = StageMetrics(DICE, {"num_classes": 2}, ["background", "spleen"], "dice")
    pred, target = _case(4, 0)
    metrics.update(keys.TEST, pred.clamp(max=1), target.clamp(max=1))
    logged = metrics.compute(keys.TEST, track_best=False)
    assert set(logged) == {"test/dice", "test/dice/spleen"}


def test_a_class_absent_from_a_case_does_not_count_for_it():
    metrics = StageMetrics(DICE, {"num_classes": 3}, NAMES, "dice")
    pred, target = _case(4, 0)
    target[target == 2] = 0  # no lesion in this case, none predicted
    metrics.update(keys.VAL, pred, target)
    metrics.update(keys.VAL, *_case(4, 2))
    logged = metrics.compute(keys.VAL, track_best=False)
    assert logged["val/dice/lesion"] == pytest.approx(1.0)


def test_forward_training_and_validation_steps():
    task = _task(inferer=None)
    batch = {"image": torch.randn(2, 1, 16, 16, 16), "label": torch.randint(0, 3, (2, 1, 16, 16, 16))}
    result = task.shared_step(batch, keys.TRAIN)
    assert result["output"].shape == (2, 3, 16, 16, 16) and result["loss"].ndim == 0
    pred = task.predict_step(batch, 0)["pred"]
    post = task.postprocess(result["output"])
    assert torch.equal(post["pred"], result["output"].argmax(1, keepdim=True))
    preds, target = task.metric_inputs(post, batch)
    assert preds.shape == target.shape == (2, 16, 16, 16) and target.dtype == torch.long
    assert pred.shape == (2, 1, 16, 16, 16) and pred.max() < 3


def test_configure_optimizers_names_the_learning_rate():
    task = _task(scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=1))
    config = task.configure_optimizers()
    assert isinstance(config["optimizer"], torch.optim.Adam)
    assert config["lr_scheduler"]["name"] == "train/lr" and config["lr_scheduler"]["interval"] == "epoch"
    assert isinstance(_task().configure_optimizers(), torch.optim.Adam)


def test_missing_input_key_names_the_keys():
    task = _task(input_keys=["t1"])
    with pytest.raises(KeyError, match=r"\['t1'\].*task.input_keys"):
        task.shared_step(
            {"image": torch.zeros(1, 1, 8, 8, 8), "label": torch.zeros(1, 1, 8, 8, 8)}, keys.TRAIN
        )


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"num_classes": 1}, ValueError, "task.num_classes must be an integer >= 2, got 1"),
        ({"label_names": ["a", "b"]}, ValueError, "task.label_names has 2 names for 3 classes"),
        ({"best_mode": "up"}, ValueError, "task.best_mode must be one of"),
        ({"best_metric": "hd95"}, ValueError, "task.best_metric 'hd95' is not among task.metrics"),
        ({"net": "unet"}, TypeError, "task.net must be a torch.nn.Module, got str"),
        ({"loss": 3}, TypeError, "task.loss must be callable"),
        ({"scheduler_interval": "batch"}, ValueError, "task.scheduler_interval must be one of"),
        ({"input_keys": []}, ValueError, "task.input_keys must name at least one"),
    ],
)
def test_invalid_arguments_are_named(overrides, error, message):
    with pytest.raises(error, match=message):
        _task(**overrides)


def test_metric_key_rejects_unknown_stage():
    with pytest.raises(ValueError, match="stage must be one of"):
        keys.metric_key("training", "loss")
