"""DecathlonDataModule end to end on replicas: loaders, the batch boundary, resampling, normalisation."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from eisen_lightning.data import DecathlonDataModule, DemoDataModule
from eisen_lightning.data.pipelines import normalization_for
from eisen_lightning.data.synthetic import DECATHLON_META, write_decathlon_replica, write_demo_task

BRAIN = "Task01_BrainTumour"
PATCH = (16, 16, 16)
SPACING = (2.0, 2.0, 2.0)
BATCH_SIZE, NUM_SAMPLES = 2, 2


def run_eval(dm: DecathlonDataModule, case: dict) -> dict:
    from monai.transforms import Compose

    return Compose(dm.eval_transforms())(dict(case))


def world_centroid(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    voxel = np.argwhere(mask).mean(0)
    return (np.asarray(affine, dtype=float) @ np.append(voxel, 1.0))[:3]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_decathlon_replica(root, BRAIN, num_training=6, num_test=1)
    write_decathlon_replica(root, "Task09_Spleen", num_training=3, num_test=1)
    return root


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="module")
def brain(data_dir, output_dir) -> DecathlonDataModule:
    dm = DecathlonDataModule(
        str(data_dir),
        task=BRAIN,
        patch_size=PATCH,
        spacing=SPACING,
        num_samples=NUM_SAMPLES,
        batch_size=BATCH_SIZE,
        num_workers=0,
        output_dir=str(output_dir),
    )
    dm.prepare_data()
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def train_batch(brain) -> dict:
    return next(iter(brain.train_dataloader()))


@pytest.fixture(scope="module")
def val_batches(brain) -> list[dict]:
    return list(brain.val_dataloader())


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> DemoDataModule:
    dm = DemoDataModule(
        data_dir=str(tmp_path_factory.mktemp("demo")), num_training=4, num_test=1, spacing=(1.5, 1.5, 2.0)
    )
    dm.prepare_data()  # generates the task
    return dm


def test_info(brain):
    info = brain.info
    assert info.in_channels == 4
    assert info.num_classes == 4
    assert info.label_names == list(DECATHLON_META[BRAIN][2])
    assert info.spatial_dims == 3
    assert info.as_dict()["label_names"][0] == "background"


def test_splits(brain):
    ids = {f"BRATS_{i}" for i in range(6)}
    assert {k: len(v) for k, v in brain.splits.items()} == {"train": 4, "val": 1, "test": 1}
    assert set().union(*brain.splits.values()) == ids
    assert set(brain.datasets) == {"train", "val"}  # 'fit' builds no test set
    assert len(brain.datasets["train"]) == 4 and len(brain.datasets["val"]) == 1


def test_splits_json_written(brain, output_dir):
    saved = json.loads((output_dir / "splits.json").read_text())
    assert {k: saved[k] for k in ("train", "val", "test")} == brain.splits
    assert saved["seed"] == 0 and saved["fold"] == 0 and saved["num_folds"] == 5


def test_splits_file_is_reused(data_dir, output_dir, brain, tmp_path):
    dm = DecathlonDataModule(
        str(data_dir),
        task=BRAIN,
        patch_size=PATCH,
        spacing=SPACING,
        seed=99,
        fold=3,
        splits_file=str(output_dir / "splits.json"),
        output_dir=str(tmp_path),
    )
    dm.setup("validate")
    assert dm.splits == brain.splits
    assert set(dm.datasets) == {"val"}
    assert json.loads((tmp_path / "splits.json").read_text())["val"] == brain.splits["val"]


def test_train_batch_is_plain_tensors(train_batch):
    from monai.data import MetaTensor

    image, label = train_batch["image"], train_batch["label"]
    n = BATCH_SIZE * NUM_SAMPLES
    assert type(image) is torch.Tensor and not isinstance(image, MetaTensor)
    assert type(label) is torch.Tensor and not isinstance(label, MetaTensor)
    assert image.shape == (n, 4, *PATCH)
    assert label.shape == (n, 1, *PATCH)
    assert image.dtype == torch.float32
    assert torch.isfinite(image).all()
    assert label.min() >= 0 and label.max() <= 3
    assert torch.equal(label, label.round())  # nearest-neighbour resampling keeps integer classes
    assert "label_cls_indices" not in train_batch


def test_train_batches_carry_case_ids_and_no_geometry_by_default(brain, train_batch):
    case_ids = train_batch["case_id"]
    assert isinstance(case_ids, list) and len(case_ids) == BATCH_SIZE * NUM_SAMPLES
    assert all(isinstance(c, str) for c in case_ids)
    assert set(case_ids) <= set(brain.splits["train"])
    # the random part runs untracked: plain tensors, no MetaTensor bookkeeping per crop
    assert train_batch["meta"] == {}
    assert type(train_batch["image"]) is torch.Tensor


def test_train_meta_keeps_the_geometry_of_every_crop(data_dir, tmp_path):
    tracked = DecathlonDataModule(
        str(data_dir), task=BRAIN, patch_size=PATCH, spacing=SPACING, num_samples=NUM_SAMPLES,
        batch_size=BATCH_SIZE, output_dir=str(tmp_path), train_meta=True, cache="none",
    )  # fmt: skip
    tracked.setup("fit")
    batch = next(iter(tracked.train_dataloader()))
    n = BATCH_SIZE * NUM_SAMPLES
    meta = batch["meta"]["image"]
    assert meta["affine"].shape == (n, 4, 4)
    assert all(Path(f).parent.name == "imagesTr" for f in meta["filename_or_obj"])
    assert batch["meta"]["label"]["affine"].shape == (n, 4, 4)
    # each crop keeps the file it came from
    assert [Path(f).name for f in meta["filename_or_obj"]] == [f"{c}.nii.gz" for c in batch["case_id"]]
    with pytest.raises(TypeError, match="data.train_meta must be true or false, got 'yes'"):
        DecathlonDataModule(str(data_dir), task=BRAIN, train_meta="yes")


def test_val_batches_are_whole_resampled_volumes(brain, val_batches):
    assert [b["case_id"] for b in val_batches] == [[c] for c in brain.splits["val"]]
    for batch in val_batches:
        image, label = batch["image"], batch["label"]
        assert type(image) is torch.Tensor
        assert image.shape[:2] == (1, 4) and label.shape[:2] == (1, 1)
        assert label.shape[2:] == image.shape[2:]
        source = nib.load(batch["meta"]["image"]["filename_or_obj"][0])
        expected = np.array(source.shape[:3]) * np.array(source.header.get_zooms()[:3]) / np.array(SPACING)
        assert np.all(np.abs(np.array(image.shape[2:]) - expected) <= 1), (image.shape, expected)
        # not the patch size: validation does not crop or pad
        assert tuple(image.shape[2:]) != PATCH
        affine = batch["meta"]["image"]["affine"][0].numpy()
        assert np.allclose(np.linalg.norm(affine[:3, :3], axis=0), SPACING, atol=1e-3)
        # z-score per channel
        for channel in image[0]:
            assert abs(float(channel.mean())) < 0.1 and abs(float(channel.std()) - 1) < 0.1


def test_test_stage(brain):
    brain.setup("test")
    batches = list(brain.test_dataloader())
    assert [b["case_id"] for b in batches] == [[c] for c in brain.splits["test"]]


def test_test_loader_without_held_out_cases(data_dir):
    dm = DecathlonDataModule(str(data_dir), task=BRAIN, patch_size=PATCH, spacing=SPACING, test_fraction=0.0)
    dm.setup("validate")
    assert dm.splits["test"] == []
    with pytest.raises(ValueError, match=r"data\.test_fraction"):
        dm.test_dataloader()


def test_train_crops_padded_when_volume_is_smaller_than_patch(data_dir):
    from monai.transforms import Compose

    patch = (32, 32, 32)  # the resampled volume is about 26 x 26 x 25
    dm = DecathlonDataModule(
        str(data_dir), task="Task09_Spleen", patch_size=patch, spacing=SPACING, num_samples=3
    )
    crops = Compose(dm.train_transforms())(dict(dm.labelled_cases()[0]))
    assert len(crops) == 3
    for crop in crops:
        assert tuple(crop["image"].shape) == (1, *patch)
        assert tuple(crop["label"].shape) == (1, *patch)


@pytest.mark.parametrize("task", sorted(DECATHLON_META))
def test_normalization_for_tasks(task):
    modalities = DECATHLON_META[task][1]
    expected = "ct" if modalities == ("CT",) else "zscore"
    assert normalization_for(modalities, "auto") == expected
    assert normalization_for(modalities, "none") == "none"


def test_normalization_for_edge_cases():
    assert normalization_for(["ct"], "auto") == "ct"
    assert normalization_for(["CT", "MRI"], "auto") == "zscore"
    assert normalization_for([], "auto") == "zscore"
    assert normalization_for(["MRI"], "ct") == "ct"
    with pytest.raises(ValueError, match=r"data\.normalization"):
        normalization_for(["CT"], "foo")


def test_ct_window(data_dir):
    kwargs = {"task": "Task09_Spleen", "patch_size": PATCH, "spacing": SPACING}
    dm = DecathlonDataModule(str(data_dir), **kwargs)
    raw_dm = DecathlonDataModule(str(data_dir), normalization="none", **kwargs)
    case = dm.labelled_cases()[0]
    image = run_eval(dm, case)["image"].as_tensor()
    raw = run_eval(raw_dm, case)["image"].as_tensor()
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    # the replica's HU-like values spill out of the window on both sides, so both ends are reached
    assert float(raw.min()) < -175 and float(raw.max()) > 250
    assert float(image.min()) == pytest.approx(0.0) and float(image.max()) == pytest.approx(1.0)
    expected = ((raw + 175.0) / 425.0).clamp(0.0, 1.0)
    assert torch.allclose(image, expected, atol=1e-5)


def test_custom_ct_window(data_dir):
    dm = DecathlonDataModule(
        str(data_dir), "Task09_Spleen", patch_size=PATCH, spacing=SPACING, ct_window=(0, 100)
    )
    raw_dm = DecathlonDataModule(
        str(data_dir), "Task09_Spleen", patch_size=PATCH, spacing=SPACING, normalization="none"
    )
    case = dm.labelled_cases()[1]
    image, raw = run_eval(dm, case)["image"].as_tensor(), run_eval(raw_dm, case)["image"].as_tensor()
    assert torch.allclose(image, (raw / 100.0).clamp(0.0, 1.0), atol=1e-5)
    bad = DecathlonDataModule(str(data_dir), "Task09_Spleen", patch_size=PATCH, ct_window=(100, 0))
    with pytest.raises(ValueError, match=r"data\.ct_window"):
        bad.eval_transforms()


def test_demo_zscore(demo):
    assert normalization_for(demo.layout.modalities, demo.normalization) == "zscore"
    image = run_eval(demo, demo.labelled_cases()[0])["image"].as_tensor()
    assert abs(float(image.mean())) < 0.1
    assert abs(float(image.std()) - 1.0) < 0.1


def test_demo_orientation_is_ras(demo):
    case = demo.labelled_cases()[0]
    source = nib.load(case["label"])
    file_signs = np.sign(np.diag(source.affine)[:3])
    assert file_signs.tolist() == [-1.0, -1.0, 1.0]  # LPS-like on disk
    out = run_eval(demo, case)
    for key in ("image", "label"):
        affine = out[key].affine.numpy()
        assert np.sign(np.diag(affine)[:3]).tolist() == [1.0, 1.0, 1.0], key
    # the voxels moved with the affine: the organ stays where it is in the world (mm)
    before = world_centroid(np.asarray(source.dataobj) > 0, source.affine)
    after = world_centroid(out["label"][0].numpy() > 0, out["label"].affine.numpy())
    assert np.allclose(before, after, atol=1.5), (before, after)


def test_demo_layout_matches_generator(demo, tmp_path):
    reference = write_demo_task(tmp_path / "Task00_Demo", num_training=4, num_test=1, seed=demo.seed)
    assert json.loads((reference / "dataset.json").read_text()) == json.loads(
        (demo.root / "dataset.json").read_text()
    )
    assert demo.info.label_names == ["background", "organ", "lesion"]
    assert demo.info.in_channels == 1
