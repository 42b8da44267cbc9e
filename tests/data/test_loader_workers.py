"""Loader workers draw their own random crops: each reseeds the transforms' generators."""

import numpy as np
import torch
from monai.transforms import RandSpatialCropd

from eisen_lightning.data.datamodule import DatasetInfo, MedicalDataModule


class SameCase(MedicalDataModule):
    """Eight copies of one volume, randomly cropped: only the random state tells the items apart."""

    info = DatasetInfo(in_channels=1, num_classes=2, label_names=["background", "a"])

    def labelled_cases(self):
        volume = np.arange(16**3, dtype=np.float32).reshape(1, 16, 16, 16)
        return [{"case_id": f"c{i}", "image": volume, "label": volume} for i in range(8)]

    def train_transforms(self):
        return [RandSpatialCropd(["image", "label"], roi_size=(4, 4, 4), random_size=False)]

    eval_transforms = train_transforms


def _first_batches(num_workers: int) -> list[torch.Tensor]:
    torch.manual_seed(0)
    dm = SameCase(batch_size=1, num_workers=num_workers, num_folds=2, test_fraction=0.0)
    dm.setup("fit")
    loader = dm._loader("train", 1, shuffle=False)
    return [batch["image"] for _, batch in zip(range(2), loader, strict=False)]


def test_two_workers_draw_different_crops():
    first, second = _first_batches(num_workers=2)  # batch 0 from worker 0, batch 1 from worker 1
    assert not torch.equal(first, second), "both workers drew the same crop from the same state"


def test_worker_crops_are_reproducible():
    assert all(torch.equal(a, b) for a, b in zip(_first_batches(2), _first_batches(2), strict=True))
