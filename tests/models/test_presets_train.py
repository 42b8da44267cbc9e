"""Every preset of conf/net/ trains one short epoch through run.train, as `net=NAME` would.

3D segmentation presets train on data=demo, 2D ones on data=demo2d, classifiers on a small
synthetic classification DataModule defined here (task=classification loss=ce). Patch sizes are
rounded up per net to a size it takes (eisen_lightning.models.nearest_valid_size). A new YAML in
conf/net/ needs no new test code.
"""

import math

import pytest
import pytorch_lightning as pl
import torch
from net_presets import NUM_CLASSES, one_thread, preset_cases, preset_kind, seeded_net
from omegaconf import open_dict
from torch.utils.data import DataLoader

from conftest import QUIET, compose
from eisen_lightning import run
from eisen_lightning.data import DatasetInfo
from eisen_lightning.models import nearest_valid_size

SEGMENTATION_DATA = {3: "demo", 2: "demo2d"}
BASE_PATCH = {3: (24, 24, 24), 2: (48, 48)}
CLASSIFICATION_SIZE = {3: (32, 32, 32), 2: (48, 48)}
ONE_EPOCH = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "callbacks=none",
    *QUIET,
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


class TinyClassificationData(pl.LightningDataModule):
    """Images whose class is the quadrant (half in 3D) holding a bright blob; for classifier presets.

    Args:
        spatial_dims: 2 or 3.
        size: Image size.
        num_images: Images per split.
        batch_size: Images per batch.
    """

    def __init__(self, spatial_dims: int, size: list[int], num_images: int = 8, batch_size: int = 4) -> None:
        super().__init__()
        self.spatial_dims, self.size = spatial_dims, list(size)
        self.num_images, self.batch_size = num_images, batch_size

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(1, NUM_CLASSES, [f"class{i}" for i in range(NUM_CLASSES)], self.spatial_dims)

    def _split(self, seed: int) -> list[dict]:
        generator = torch.Generator().manual_seed(seed)
        samples = []
        for i in range(self.num_images):
            label = i % NUM_CLASSES
            image = torch.randn(1, *self.size, generator=generator) * 0.3
            image[
                (0, slice(label * self.size[0] // NUM_CLASSES, (label + 1) * self.size[0] // NUM_CLASSES))
            ] += 1
            samples.append({"image": image, "label": torch.tensor(label)})
        return samples

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self._split(0), batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._split(1), batch_size=self.batch_size)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One data folder for the module: each demo task is written by its first run, then reused."""
    return tmp_path_factory.mktemp("presets_data")


def _sizes(sizes) -> str:
    return "[" + ",".join(str(s) for s in sizes) + "]"


@pytest.mark.parametrize(("name", "dims"), preset_cases())
def test_preset_trains_one_epoch(name, dims, data_dir, tmp_path):
    size = nearest_valid_size(seeded_net(name, dims), BASE_PATCH[dims])
    if preset_kind(name) == "classification":
        cfg = compose(
            [f"net={name}", "task=classification", "loss=ce", "optimized_metric=val/accuracy", *ONE_EPOCH],
            tmp_path,
        )
        size = nearest_valid_size(seeded_net(name, dims), CLASSIFICATION_SIZE[dims])
        with open_dict(cfg):
            cfg.data = {
                "_target_": f"{__name__}.TinyClassificationData",
                "spatial_dims": dims,
                "size": list(size),
            }
    else:
        overrides = [
            f"net={name}",
            f"data={SEGMENTATION_DATA[dims]}",
            f"paths.data_dir={data_dir}",
            f"data.patch_size={_sizes(size)}",
            "data.num_training=10",
            "data.num_test=0",
            "data.cache_rate=0",
            "data.batch_size=2",
            "data.num_samples=1",
        ]
        cfg = compose([*overrides, *ONE_EPOCH], tmp_path)
    metrics = run.train(cfg)
    assert cfg.dataset.spatial_dims == dims
    assert math.isfinite(metrics["train/loss"]) and metrics["train/loss"] > 0
    best = "val/accuracy" if preset_kind(name) == "classification" else "val/dice"
    assert 0.0 <= metrics[best] <= 1.0
