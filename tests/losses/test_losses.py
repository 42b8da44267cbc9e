"""Every conf/loss option: a finite scalar with gradients, and float32 out of a task under bf16 autocast.

Each YAML declares the inputs it takes in a comment line ``# input: segmentation|classification|
multilabel|regression`` (docs/losses_metrics.md); a new loss YAML needs no new test code.
"""

import re
from functools import partial

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from conftest import CONF, compose
from eisen_lightning.tasks import ClassificationTask, RegressionTask, SegmentationTask

KINDS = ("segmentation", "classification", "multilabel", "regression")
INPUT_LINE = re.compile(r"^#\s*input:\s*(.*?)\s*$", re.M)
NUM_CLASSES = 3
DATASET = [
    "dataset.in_channels=1",
    f"dataset.num_classes={NUM_CLASSES}",
    "dataset.label_names=[background,organ,lesion]",
    "dataset.spatial_dims=3",
]
LOSSES = [pytest.param(p, id=p.stem) for p in sorted((CONF / "loss").glob("*.yaml"))]


def _kind(path) -> str:
    found = INPUT_LINE.findall(path.read_text())
    if len(found) != 1 or found[0] not in KINDS:
        pytest.fail(
            f"conf/loss/{path.name} must have exactly one comment line '# input: <kind>' with kind one of "
            f"{KINDS} (see docs/losses_metrics.md); found {found}"
        )
    return found[0]


def _loss(path, tmp_path):
    return instantiate(compose([f"loss={path.stem}", *DATASET], tmp_path).loss)


def _batch(kind: str) -> dict[str, torch.Tensor]:
    """A batch as the data modules give it: float label maps (B, 1, ...) or class targets."""
    generator = torch.Generator().manual_seed(0)
    if kind == "segmentation":
        image = torch.randn(2, 1, 6, 6, 6, generator=generator)
        label = torch.randint(0, NUM_CLASSES, (2, 1, 6, 6, 6), generator=generator).float()
    elif kind == "classification":
        image, label = torch.randn(4, 8, generator=generator), torch.randint(0, NUM_CLASSES, (4,))
    elif kind == "regression":
        image, label = torch.randn(4, 8, generator=generator), 100 * torch.rand(4, generator=generator)
    else:
        image = torch.randn(4, 8, generator=generator)
        label = torch.randint(0, 2, (4, NUM_CLASSES), generator=generator).float()
    return {"image": image, "label": label}


def _task(kind: str, loss):
    common = dict(loss=loss, optimizer=partial(torch.optim.SGD, lr=0.1), num_classes=NUM_CLASSES)
    if kind == "segmentation":
        return SegmentationTask(net=nn.Conv3d(1, NUM_CLASSES, 1), **common)
    if kind == "regression":
        del common["num_classes"]
        return RegressionTask(net=nn.Linear(8, 1), target_mean=50.0, target_std=30.0, **common)
    return ClassificationTask(net=nn.Linear(8, NUM_CLASSES), multilabel=kind == "multilabel", **common)


def _target(task, batch):
    return task.target(batch) if isinstance(task, ClassificationTask | RegressionTask) else batch["label"]


@pytest.mark.parametrize("path", LOSSES)
def test_loss_declares_its_input(path):
    assert _kind(path) in KINDS


@pytest.mark.parametrize("path", LOSSES)
def test_loss_is_a_finite_scalar_and_gradients_flow(path, tmp_path):
    kind = _kind(path)
    loss_fn, batch = _loss(path, tmp_path), _batch(kind)
    task = _task(kind, loss_fn)
    shape = {"segmentation": (2, NUM_CLASSES, 6, 6, 6), "regression": (4, 1)}.get(kind, (4, NUM_CLASSES))
    logits = torch.randn(shape, generator=torch.Generator().manual_seed(1), requires_grad=True)
    loss = loss_fn(logits, _target(task, batch))
    assert loss.ndim == 0 and torch.isfinite(loss), f"{path.stem} gave {loss}"
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("path", LOSSES)
def test_task_loss_is_float32_under_bf16_autocast(path, tmp_path):
    kind = _kind(path)
    batch = _batch(kind)
    task = _task(kind, _loss(path, tmp_path))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = task(batch["image"])
        assert output.dtype == torch.bfloat16, "the net runs in bf16 under autocast"
        loss = task.compute_loss(output, _target(task, batch))
    assert loss.dtype == torch.float32, f"{path.stem}: the loss is reduced in {loss.dtype}"
    assert torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in task.net.parameters())
