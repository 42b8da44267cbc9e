"""RegressionTask (standardised targets, epoch-level MAE/RMSE in the target's unit) and FusionNet."""

from functools import partial

import pytest
import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader

from eisen_lightning.models import FusionNet
from eisen_lightning.tasks import RegressionTask

METRICS = {
    "mae": partial(torchmetrics.MeanAbsoluteError),
    "rmse": partial(torchmetrics.MeanSquaredError, squared=False),
}


def _data(n: int = 64, batch_size: int = 16):
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(n, 1, 4, 4, generator=generator)
    male = (torch.arange(n) % 2).float()
    months = 120 + 30 * image[:, 0, :2].mean((1, 2)) + 40 * male  # months, sex-dependent
    samples = [{"image": image[i], "male": male[i], "label": months[i]} for i in range(n)]
    return DataLoader(samples, batch_size=batch_size, shuffle=False)


def _task(net=None, **overrides):
    args = dict(
        net=net or nn.Sequential(nn.Flatten(), nn.Linear(16, 1)),
        loss=nn.MSELoss(),
        optimizer=partial(torch.optim.Adam, lr=3e-2),
        metrics=METRICS,
        target_mean=120.0,
        target_std=40.0,
    )
    return RegressionTask(**{**args, **overrides})


def _fit(task, loader, epochs: int = 1):
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(task, train_dataloaders=loader, val_dataloaders=loader)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_metrics_are_epoch_level_and_in_the_targets_unit():
    torch.manual_seed(0)
    loader = _data(n=40, batch_size=16)  # batches of 16, 16, 8: a batch mean of means would differ
    task = _task()
    metrics = _fit(task, loader, epochs=1)
    task.eval()
    with torch.no_grad():
        pred = torch.cat([task.postprocess(task(b["image"]))["pred"].reshape(-1) for b in loader])
    target = torch.cat([b["label"] for b in loader])
    assert metrics["val/mae"] == pytest.approx(float((pred - target).abs().mean()), rel=1e-4)
    assert metrics["val/rmse"] == pytest.approx(float((pred - target).pow(2).mean().sqrt()), rel=1e-4)
    assert metrics["val/mae_best"] == pytest.approx(metrics["val/mae"])


def test_the_loss_compares_standardised_values():
    task = _task(net=nn.Identity(), target_mean=100.0, target_std=20.0)
    batch = {"image": torch.tensor([[0.5], [-1.0]]), "label": torch.tensor([110.0, 80.0])}
    result = task.shared_step(batch, "train")
    assert float(result["loss"]) == pytest.approx(0.0)
    assert task.postprocess(result["output"])["pred"].reshape(-1).tolist() == pytest.approx([110.0, 80.0])


def test_a_fusion_net_learns_from_the_extra_input():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(16, 8))
    task = _task(net=FusionNet(backbone, 8, [1], out_channels=1, hidden=16), input_keys=["image", "male"])
    image_only = _task()
    with_sex, without = _fit(task, _data(), epochs=40), _fit(image_only, _data(), epochs=40)
    assert with_sex["val/mae"] < 5.0 < without["val/mae"]


def test_fusion_net_checks_and_defaults_its_extra_inputs():
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    net = FusionNet(backbone, 3, [1, 2], out_channels=2, extra_defaults=[0.5, 0.0, 1.0])
    image = torch.randn(5, 1, 2, 2)
    extras = (torch.full((5,), 0.5), torch.tensor([[0.0, 1.0]]).repeat(5, 1))
    assert torch.equal(net(image), net(image, *extras))
    assert not torch.equal(net(image), net(image, torch.ones(5), extras[1]))
    with pytest.raises(ValueError, match=r"takes the image and 2 extra input\(s\).*got 1"):
        net(image, torch.ones(5))
    with pytest.raises(ValueError, match="has 1 values per image, expected 2"):
        net(image, torch.ones(5), torch.ones(5))
    with pytest.raises(ValueError, match="extra_defaults needs one value per extra value"):
        FusionNet(backbone, 3, [1], extra_defaults=[0.0, 1.0])
    strict = FusionNet(backbone, 3, [1])
    with pytest.raises(ValueError, match="list them in task.input_keys after the image"):
        strict(image)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_outputs": 0}, "task.num_outputs must be a positive integer, got 0"),
        ({"target_std": 0.0}, "task.target_std must be > 0, got 0.0"),
        ({"num_outputs": 2, "output_names": ["a"]}, r"task.output_names has 1 names for 2 outputs"),
        ({"best_metric": "r2"}, r"task.best_metric 'r2' is not among task.metrics"),
    ],
)
def test_bad_arguments_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        _task(**overrides)


def test_several_outputs_are_named_and_predicted_in_unit():
    task = _task(
        net=nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), num_outputs=2, output_names=["age", "height"]
    )
    out = task.predict_step({"image": torch.zeros(3, 1, 4, 4), "case_id": ["a", "b", "c"]}, 0)
    assert out["pred"].shape == (3, 2) and out["case_id"] == ["a", "b", "c"]
    assert task.hparams["output_names"] == ["age", "height"]
