"""ClassificationTask: multi-class and multi-label training with epoch-level, per-class metrics."""

from functools import partial

import pytest
import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader

from eisen_lightning import keys
from eisen_lightning.tasks import ClassificationTask

NAMES = ["normal", "benign", "malignant"]


def _data(multilabel: bool, n: int = 96):
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(n, 1, 8, 8, generator=generator)
    if multilabel:
        label = torch.stack([image[:, 0, :4].mean((1, 2)) > 0, image[:, 0, 4:].mean((1, 2)) > 0], 1).long()
    else:
        label = (image[:, 0, :4].mean((1, 2)) > 0).long() + (image[:, 0, 4:].mean((1, 2)) > 0.2).long()
    samples = [{"image": image[i], "label": label[i], "case_id": f"c{i}"} for i in range(n)]
    return DataLoader(samples, batch_size=16, shuffle=False)


def _task(multilabel: bool, **overrides):
    kind = "multilabel" if multilabel else "multiclass"
    metrics = {
        "accuracy": partial(torchmetrics.Accuracy, task=kind, average="macro"),
        "auroc": partial(torchmetrics.AUROC, task=kind, average="none"),
    }
    args = dict(
        net=nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2 if multilabel else 3)),
        loss=nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss(),
        optimizer=partial(torch.optim.Adam, lr=1e-2),
        num_classes=2 if multilabel else 3,
        label_names=["left", "right"] if multilabel else NAMES,
        multilabel=multilabel,
        metrics=metrics,
    )
    return ClassificationTask(**{**args, **overrides})


def _fit(task, tmp_path, loader):
    trainer = pl.Trainer(
        max_epochs=8,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(task, train_dataloaders=loader, val_dataloaders=loader)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


@pytest.mark.parametrize("multilabel", [False, True])
def test_learns_and_logs_per_class_metrics(multilabel, tmp_path):
    metrics = _fit(_task(multilabel), tmp_path, _data(multilabel))
    names = ["left", "right"] if multilabel else NAMES
    assert metrics["val/accuracy"] > 0.8
    assert {f"val/auroc/{n}" for n in names} <= metrics.keys()
    assert metrics["val/accuracy_best"] >= metrics["val/accuracy"]
    assert metrics["train/loss"] < 1.0


def test_steps_return_probabilities_and_predictions():
    task = _task(False)
    batch = {"image": torch.randn(4, 1, 8, 8), "label": torch.tensor([[0], [1], [2], [1]])}
    result = task.shared_step(batch, keys.VAL)
    post = task.postprocess(result[keys.OUTPUT])
    assert torch.allclose(post[keys.PROB].sum(1), torch.ones(4))
    assert post[keys.PRED].shape == (4,)
    prob, target = task.metric_inputs(post, batch)
    assert target.tolist() == [0, 1, 2, 1] and prob.shape == (4, 3)
    multi = _task(True)
    post = multi.postprocess(torch.tensor([[3.0, -3.0]]))
    assert post[keys.PRED].tolist() == [[1, 0]]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_classes": 1}, "task.num_classes must be an integer >= 2"),
        ({"label_names": ["a"]}, "task.label_names has 1 names for 3 classes"),
        ({"threshold": 1.5}, r"task.threshold must be in \(0, 1\)"),
        ({"best_metric": "kappa"}, "task.best_metric 'kappa' is not among task.metrics"),
    ],
)
def test_invalid_arguments_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        _task(False, **overrides)
