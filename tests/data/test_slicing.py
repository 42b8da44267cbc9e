"""2D from 3D: training a 2D net on slices of volumes (`data.slice_axis`), 3D validation and predictions."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch
from hydra.utils import get_class, instantiate

from conftest import QUIET, compose
from eisen_lightning import run
from eisen_lightning.data import DemoDataModule, MedicalDataModule
from eisen_lightning.data.pipelines import random_transforms
from eisen_lightning.data.slicing import (
    SLICE_INFERER,
    check_slice_axis,
    crop_size,
    squeeze_slice_axis,
    use_slice_inferer,
)

SLICED = ["data.slice_axis=2", "data.patch_size=[32,32]", "net=unet2d"]


# -- checks of the settings -----------------------------------------------------------------------
@pytest.mark.parametrize("value", [3, -1, "2", True, 1.5])
def test_bad_slice_axis_is_named(value, tmp_path):
    with pytest.raises(ValueError, match=r"data.slice_axis must be null .* or one of 0, 1, 2 .* got"):
        check_slice_axis(value)
    with pytest.raises(ValueError, match="data.slice_axis"):
        DemoDataModule(str(tmp_path), patch_size=[32, 32], slice_axis=value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"patch_size": [32, 32, 32], "slice_axis": 2},
            r"patch_size must have 2 sizes .* when data.slice_axis is set",
        ),
        ({"patch_size": [32, 32], "spacing": None}, r"images are 3D volumes: .* data.slice_axis=0\|1\|2"),
        ({"patch_size": [32, 32], "spacing": [2.0, 2.0, 2.0]}, r"2D net on slices .* data.slice_axis=0"),
        ({"patch_size": [32, 32], "spacing": [2.0, 2.0], "slice_axis": 1}, r"needs 3 spacings"),
        (
            {"patch_size": [64, 64], "shape": [96, 96], "spacing": [1.5, 1.5], "slice_axis": 2},
            r"shape .* is 2D",
        ),
    ],
)
def test_patch_sizes_that_do_not_fit_the_slicing_are_refused(settings, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        DemoDataModule(str(tmp_path), **settings)


def test_a_data_module_that_cannot_slice_refuses_slice_axis():
    class Images2D(MedicalDataModule):
        pass

    with pytest.raises(ValueError, match=r"slice_axis=1: Images2D does not train on slices"):
        Images2D(slice_axis=1)
    assert Images2D().slice_axis is None


# -- the slice transforms -------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_crops_are_whole_slices_of_the_volume_along_the_axis(axis):
    """Each 2D sample is exactly a block of one slice of the volume, with a 2D affine."""
    from monai.data import MetaTensor
    from monai.transforms import Compose, RandCropByLabelClassesd

    shape = (10, 12, 14)
    volume = torch.arange(np.prod(shape), dtype=torch.float32).reshape(1, *shape)
    label = torch.zeros(1, *shape)
    label[0, 2:5, 3:6, 4:7] = 1
    size = crop_size([6, 6], axis)
    assert size[axis] == 1 and len(size) == 3
    pipeline = Compose(
        [
            RandCropByLabelClassesd(["image", "label"], "label", size, num_classes=2, num_samples=8),
            *squeeze_slice_axis(["image", "label"], axis),
        ]
    ).set_random_state(seed=0)
    samples = pipeline({"image": MetaTensor(volume), "label": MetaTensor(label)})
    grid = volume[0].numpy()
    for sample in samples:
        image = sample["image"]
        assert image.shape == (1, 6, 6) and sample["label"].shape == (1, 6, 6)
        assert image.affine.shape == (3, 3)
        first = np.argwhere(grid == float(image[0, 0, 0]))[0]
        index = [slice(int(first[d]), int(first[d]) + size[d]) for d in range(3)]
        assert np.array_equal(np.squeeze(grid[tuple(index)], axis=axis), image[0].numpy())
    assert 0 < sum(bool(s["label"].any()) for s in samples) < len(samples)  # both classes drawn


def test_without_slice_axis_the_random_transforms_are_unchanged():
    assert squeeze_slice_axis(["image"], None) == []
    assert crop_size([32, 32, 32], None) == [32, 32, 32]
    names = [type(t).__name__ for t in random_transforms([32, 32, 32], 3, 2)]
    assert names[:2] == ["RandCropByLabelClassesd", "DeleteItemsd"] and "SqueezeDimd" not in names
    sliced = [type(t).__name__ for t in random_transforms([32, 32], 3, 2, slice_axis=0)]
    assert sliced[:3] == ["RandCropByLabelClassesd", "SqueezeDimd", "DeleteItemsd"]


@pytest.fixture(scope="module")
def sliced_demo(demo_data) -> DemoDataModule:
    dm = DemoDataModule(str(demo_data), patch_size=[32, 32], slice_axis=1, num_samples=4, batch_size=2)
    dm.prepare_data()
    dm.setup("fit")
    dm.datasets["train"].transform.set_random_state(seed=0)
    return dm


def test_tracked_training_slices_keep_a_2d_affine(demo_data):
    dm = DemoDataModule(
        str(demo_data), patch_size=[32, 32], slice_axis=1, num_samples=4, batch_size=2, train_meta=True
    )
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["meta"]["image"]["affine"].shape == (8, 3, 3)


def test_training_batches_are_2d_slices_and_validation_whole_volumes(sliced_demo):
    assert sliced_demo.info.spatial_dims == 2
    train = next(iter(sliced_demo.train_dataloader()))
    assert train["image"].shape == (8, 1, 32, 32) and train["label"].shape == (8, 1, 32, 32)
    assert train["meta"] == {}  # the random part runs untracked unless data.train_meta=true
    assert 0 < int((train["label"] == 2).flatten(1).any(1).sum()), "label-balanced: slices through the lesion"
    val = next(iter(sliced_demo.val_dataloader()))
    assert val["image"].ndim == 5 and val["label"].shape[2:] == val["image"].shape[2:]
    assert val["meta"]["image"]["affine"].shape == (1, 4, 4)


def test_splits_are_made_over_volumes_before_slicing(sliced_demo, demo_data):
    whole = DemoDataModule(str(demo_data), patch_size=[32, 32, 32])
    whole.setup("validate")
    assert sliced_demo.splits == whole.splits
    volumes = set(sliced_demo.splits["train"])
    assert not volumes & set(sliced_demo.splits["val"]) and not volumes & set(sliced_demo.splits["test"])
    assert len(sliced_demo.datasets["train"]) == len(volumes)  # one item per volume, sliced at random


# -- the inferer switch ---------------------------------------------------------------------------
def test_the_sliding_window_becomes_a_slice_inferer(tmp_path):
    cfg = compose(SLICED, tmp_path)
    use_slice_inferer(cfg)
    inferer = instantiate(cfg.task.inferer)
    assert cfg.task.inferer._target_ == SLICE_INFERER and inferer.spatial_dim == 2
    assert list(inferer.roi_size) == [32, 32] and inferer.overlap == 0.5
    net = torch.nn.Conv2d(1, 3, 3, padding=1)
    assert inferer(torch.rand(1, 1, 40, 36, 20), net).shape == (1, 3, 40, 36, 20)
    plain = compose([], tmp_path / "plain")
    use_slice_inferer(plain)
    assert plain.task.inferer._target_ == "monai.inferers.SlidingWindowInferer"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("task.inferer=null", r"needs task.inferer to be monai.inferers.SlidingWindowInferer"),
        ("+task.inferer.spatial_dim=0", r"spatial_dim=0 differs from data.slice_axis=2"),
    ],
)
def test_inferers_that_cannot_slice_are_refused(override, message, tmp_path):
    overrides = [*SLICED, override]
    if "spatial_dim" in override:
        overrides.append(f"task.inferer._target_={SLICE_INFERER}")
    cfg = compose(overrides, tmp_path)
    with pytest.raises(ValueError, match=message):
        use_slice_inferer(cfg)


# -- end to end -----------------------------------------------------------------------------------
def _write_data(cfg) -> None:
    get_class(cfg.data._target_).write_replica(**cfg.data)


@pytest.mark.parametrize(
    "overrides",
    [
        ["data.slice_axis=0", "data.patch_size=[32,32]", "net=segresnet", "data.num_training=8"],
        ["+experiment=decathlon", "data.slice_axis=2", "data.patch_size=[32,32]", "net=unet2d"],
    ],
    ids=["demo-axis0-segresnet", "decathlon-replica"],  # segresnet is 2D from ${dataset.spatial_dims}
)
def test_sliced_fast_dev_run(overrides, tmp_path):
    cfg = compose([*overrides, "debug=fast_dev_run", *QUIET], tmp_path)
    _write_data(cfg)
    metrics = run.train(cfg)
    assert cfg.dataset.spatial_dims == 2 and cfg.task.inferer.spatial_dim == cfg.data.slice_axis
    assert metrics["train/loss"] > 0 and 0.0 <= metrics["val/dice"] <= 1.0
    assert {f"val/dice/{name}" for name in cfg.dataset.label_names[1:]} <= metrics.keys()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2D UNet trained on axial slices of the 3D demo for a few seconds."""
    tmp = tmp_path_factory.mktemp("sliced")
    overrides = [*SLICED, "data.num_training=12", "data.num_test=1", "data.num_samples=8"]
    cfg = compose([*overrides, "trainer.max_epochs=12", *QUIET], tmp)
    metrics = run.train(cfg)
    return {"metrics": metrics, "run": tmp / "run", "data_dir": tmp / "data", "overrides": overrides}


def test_short_training_reaches_a_3d_dice_well_above_chance(trained):
    metrics = trained["metrics"]
    # an untrained net scores about 0.2 (organ 0.4, lesion 0.0) on these whole volumes
    assert metrics["val/dice"] > 0.6, metrics
    assert metrics["val/dice/organ"] > 0.8 and metrics["val/dice/lesion"] > 0.3, metrics


def test_predict_writes_3d_masks_in_the_input_geometry(trained, tmp_path):
    ckpt = trained["run"] / "checkpoints" / "best.ckpt"
    args = [f"ckpt_path={ckpt}", "input=split:val", "output=out", f"paths.data_dir={trained['data_dir']}"]
    command = [sys.executable, "-m", "eisen_lightning", "predict", *args, *trained["overrides"], *QUIET]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    val = json.loads((trained["run"] / "splits.json").read_text())["val"]
    task = trained["data_dir"] / "Task00_Demo"
    for case in val:
        written = nib.load(tmp_path / "out" / f"{case}_seg.nii.gz")
        source = nib.load(task / "imagesTr" / f"{case}.nii.gz")
        assert written.shape == source.shape and len(written.shape) == 3
        assert np.allclose(written.affine, source.affine, atol=1e-5)
        mask = np.asarray(written.dataobj)
        truth = np.asarray(nib.load(task / "labelsTr" / f"{case}.nii.gz").dataobj)
        organ = 2 * np.sum((mask > 0) & (truth > 0)) / (np.sum(mask > 0) + np.sum(truth > 0))
        assert organ > 0.8, f"{case}: Dice of the foreground in native space {organ:.2f}"
