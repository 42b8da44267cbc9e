"""Classification metrics of conf/task/classification.yaml (accuracy, AUROC, F1) logged every epoch."""

import csv
from functools import partial

import pytest
import pytorch_lightning as pl
import torch
import torchmetrics
from hydra.utils import instantiate
from pytorch_lightning.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader

from conftest import compose
from eisen_lightning import keys
from eisen_lightning.tasks import ClassificationTask
from eisen_lightning.tasks.metrics import StageMetrics

NAMES = ["normal", "benign", "malignant"]
DATASET = ["dataset.in_channels=1", "dataset.num_classes=3", f"dataset.label_names=[{','.join(NAMES)}]"]


def _loader(n: int = 48) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(n, 1, 4, 4, generator=generator)
    label = (image[:, 0, :2].mean((1, 2)) > 0).long() + (image[:, 0, 2:].mean((1, 2)) > 0.3).long()
    return DataLoader([{"image": image[i], "label": label[i]} for i in range(n)], batch_size=16)


def test_classification_config_metrics_are_logged_per_epoch_and_per_class(tmp_path):
    cfg = compose(["task=classification", *DATASET], tmp_path)
    metrics = {name: instantiate(node) for name, node in cfg.task.metrics.items()}
    assert set(metrics) == {"accuracy", "auroc", "f1"}
    task = ClassificationTask(
        net=nn.Sequential(nn.Flatten(), nn.Linear(16, 3)),
        loss=nn.CrossEntropyLoss(),
        optimizer=partial(torch.optim.Adam, lr=1e-2),
        num_classes=3,
        label_names=NAMES,
        metrics=metrics,
    )
    logger = CSVLogger(tmp_path, name="csv", version=0)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
    )
    trainer.fit(task, train_dataloaders=_loader(), val_dataloaders=_loader())
    with open(tmp_path / "csv" / "version_0" / "metrics.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("val/accuracy")]
    assert [int(r["epoch"]) for r in rows] == [0, 1], "one row of validation metrics per epoch"
    expected = {
        "val/accuracy",
        "val/f1",
        "val/auroc",
        "val/accuracy_best",
        *(f"val/auroc/{n}" for n in NAMES),
    }
    for row in rows:
        values = {k: float(v) for k, v in row.items() if v}
        assert expected <= values.keys()
        assert all(0.0 <= values[k] <= 1.0 for k in expected)
        mean_auroc = sum(values[f"val/auroc/{n}"] for n in NAMES) / 3
        assert values["val/auroc"] == pytest.approx(mean_auroc, abs=1e-6)


def test_confusion_matrix_is_logged_cell_by_cell():
    factories = {"confusion_matrix": partial(torchmetrics.ConfusionMatrix, task="multiclass")}
    metrics = StageMetrics(factories, {"num_classes": 3}, NAMES, None)
    prob = torch.eye(3)[[0, 1, 2, 2]]  # predicts normal, benign, malignant, malignant
    metrics.update(keys.VAL, prob, torch.tensor([0, 1, 2, 1]))
    logged = metrics.compute(keys.VAL, track_best=False)
    assert logged["val/confusion_matrix/benign/malignant"] == 1.0  # true benign predicted malignant
    assert logged["val/confusion_matrix/malignant/malignant"] == 1.0
    assert (
        logged["val/confusion_matrix/benign/benign"] == 1.0
        and logged["val/confusion_matrix/normal/benign"] == 0
    )
    assert len([k for k in logged if k.startswith("val/confusion_matrix/")]) == 9
