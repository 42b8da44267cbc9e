"""Training through PipelineParallel follows the unsplit net: loss curves, Lightning, checkpoints, config."""

import copy

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import get_class
from monai.networks.nets import UNet
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import QUIET, compose
from eisen_lightning import run
from eisen_lightning.parallel import PipelineParallel, example_input
from eisen_lightning.parallel.config import check_single_process


def _unet(norm: str) -> nn.Module:
    torch.manual_seed(0)
    return UNet(2, 1, 2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1, norm=norm)


def _batches(steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(steps, 4, 1, 16, 16, generator=generator)
    return [(image, (image > 0.5).float()) for image in images]


def _loss_curve(module: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> list[float]:
    losses = []
    for image, target in _batches(steps):
        optimizer.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(module(image)[:, 1:], target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize(
    ("norm", "chunks", "optimizer"),
    [("batch", 1, torch.optim.AdamW), ("instance", 2, torch.optim.SGD), ("instance", 4, torch.optim.SGD)],
)
def test_training_follows_the_unsplit_loss_curve(norm, chunks, optimizer):
    net = _unet(norm)
    twin = copy.deepcopy(net)
    pipe = PipelineParallel(net, devices=["cpu"] * 3, chunks=chunks, example_input=torch.rand(1, 1, 16, 16))
    kwargs = {"lr": 1e-2} if optimizer is torch.optim.AdamW else {"lr": 0.1, "momentum": 0.9}
    expected = _loss_curve(twin, optimizer(twin.parameters(), **kwargs), steps=6)
    losses = _loss_curve(pipe, optimizer(pipe.parameters(), **kwargs), steps=6)
    assert expected[-1] < expected[0], "the reference run does not learn: the comparison would be empty"
    assert losses == pytest.approx(expected, rel=1e-4)


class _Segmenter(pl.LightningModule):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.losses: list[float] = []

    def training_step(self, batch, batch_idx):
        image, target = batch
        loss = nn.functional.binary_cross_entropy_with_logits(self.net(image)[:, 1:], target)
        self.losses.append(loss.item())
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-2)


def _fit(net: nn.Module, tmp_path) -> _Segmenter:
    images = torch.cat([image for image, _ in _batches(4)])
    loader = DataLoader(TensorDataset(images, (images > 0.5).float()), batch_size=4)
    task = _Segmenter(net)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(task, loader)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    return task


def test_lightning_trains_the_pipeline_like_the_unsplit_net_and_checkpoints_interchange(tmp_path):
    net = _unet("batch")
    twin = copy.deepcopy(net)
    pipe = PipelineParallel(
        net, devices=[torch.device("cpu")] * 2, chunks=1, example_input=torch.rand(1, 1, 16, 16)
    )
    split = _fit(pipe, tmp_path / "pipe")
    unsplit = _fit(twin, tmp_path / "twin")
    assert split.losses == pytest.approx(unsplit.losses, rel=1e-4)
    assert split.net is pipe and pipe.is_split
    # the pipeline's checkpoint loads, strictly, into the unsplit net, and the reverse
    checkpoint = torch.load(tmp_path / "pipe" / "last.ckpt", weights_only=False)
    fresh = _Segmenter(_unet("batch"))
    fresh.load_state_dict(checkpoint["state_dict"])
    reverse = _Segmenter(PipelineParallel(_unet("batch"), devices=["cpu", "cpu"]))
    reverse.load_state_dict(torch.load(tmp_path / "twin" / "last.ckpt", weights_only=False)["state_dict"])
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(fresh.net.eval()(x), pipe.eval()(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(reverse.net.eval()(x), twin.eval()(x), rtol=1e-4, atol=1e-5)


def test_parallel_pipeline_is_one_override(tmp_path, monkeypatch):
    built = []

    def recording_build(cfg):
        objects = build(cfg)
        built.append(objects[1])
        return objects

    build = run.build
    monkeypatch.setattr(run, "build", recording_build)
    cfg = compose(["parallel=pipeline", "debug=fast_dev_run", *QUIET], tmp_path)
    get_class(cfg.data._target_).write_replica(**cfg.data)
    metrics = run.train(cfg)
    assert cfg.optimized_metric in metrics and metrics["train/loss"] > 0
    (task,) = built
    assert isinstance(task.net, PipelineParallel) and task.net.is_split
    assert len(task.net.stage_costs) == 2 and task.net.chunks == 4


def test_a_trainer_with_several_processes_is_refused(tmp_path):
    cfg = compose(["parallel=pipeline", "trainer=ddp_cpu", *QUIET], tmp_path)
    with pytest.raises(
        ValueError, match="trainer.devices=2 with trainer.strategy=ddp would start one process"
    ):
        check_single_process(cfg)
    check_single_process(compose(["parallel=pipeline", "trainer=cpu"], tmp_path))


def test_example_input_comes_from_the_patch_size():
    cfg = OmegaConf.create(
        {"data": {"patch_size": [8, 8, 4]}, "dataset": {"in_channels": 2, "spatial_dims": 3}}
    )
    first, second = example_input(cfg), example_input(cfg)
    assert first.shape == (1, 2, 8, 8, 4) and torch.equal(first, second)
    cfg.dataset.spatial_dims = 2  # a 2D net on slices of 3D patches: split on the first batch instead
    assert example_input(cfg) is None


def test_activation_checkpointing_with_a_pipeline_is_refused_before_the_data_is_loaded(tmp_path):
    cfg = compose(["parallel=pipeline", "callbacks=[default,activation_checkpointing]", *QUIET], tmp_path)
    get_class(cfg.data._target_).write_replica(**cfg.data)
    with pytest.raises(ValueError, match="activation_checkpointing callback does not combine with parallel"):
        run.build(cfg)
