"""BraTS 2020: subject folders, CSV rows as case fields, TC/WT/ET regions, layout errors."""

import pytest
import torch

from eisen_lightning.data import BratsDataModule
from eisen_lightning.data.datasets import LayoutError
from eisen_lightning.data.datasets.brats import read_brats


@pytest.fixture
def root(tmp_path):
    return BratsDataModule.write_replica(str(tmp_path))


def test_cases_have_eisen_fields_and_csv_rows(root):
    cases = {c["case_id"]: c for c in read_brats(root)}
    assert len(cases) == 8
    first = cases["BraTS20_Training_001"]
    assert {"t1", "t1ce", "t2", "flair", "label", "name_mapping", "survival_info"} <= set(first)
    assert first["name_mapping"]["Grade"] == "HGG" and first["survival_info"]["Extent_of_Resection"] == "GTR"
    assert "survival_info" not in cases["BraTS20_Training_004"], "an LGG subject has no survival row"


def test_the_label_becomes_the_three_overlapping_regions(root):
    dm = BratsDataModule(
        str(root.parents[1]), modalities=["flair", "t1ce"], num_folds=2, patch_size=(32, 32, 32)
    )
    assert dm.labelled_cases()[0]["image"] == [
        dm.labelled_cases()[0]["flair"],
        dm.labelled_cases()[0]["t1ce"],
    ]
    assert (dm.info.in_channels, dm.info.num_classes, dm.info.label_names) == (2, 3, ["TC", "WT", "ET"])
    dm.setup("validate")
    sample = dm.datasets["val"][0]
    from eisen_lightning.io import load

    case = next(c for c in dm.labelled_cases() if c["case_id"] == sample["case_id"])
    raw = load(case["label"])[0]
    tc, wt, et = sample["label"]
    assert sample["label"].dtype == torch.float32 and sample["image"].shape[0] == 2
    assert int(wt.sum()) == int((raw > 0).sum()) and int(et.sum()) == int((raw == 4).sum())
    assert int(tc.sum()) == int(((raw == 1) | (raw == 4)).sum()) and bool((tc <= wt).all())


def test_training_crops_are_multichannel_patches(root):
    dm = BratsDataModule(str(root.parents[1]), num_folds=2, patch_size=(32, 32, 32), num_samples=2)
    dm.setup("fit")
    crops = dm.datasets["train"][0]
    assert (
        len(crops) == 2
        and crops[0]["image"].shape == (4, 32, 32, 32)
        and crops[0]["label"].shape == (3, 32, 32, 32)
    )


def test_every_layout_problem_is_listed_in_one_error(root):
    subject = root / "BraTS20_Training_002"
    (subject / "BraTS20_Training_002_seg.nii.gz").rename(subject / "W39_1998.09.19_Segm.nii")
    (root / "BraTS20_Training_003" / "BraTS20_Training_003_t2.nii.gz").unlink()
    (root / "BraTS20_Training_005" / "BraTS20_Training_005_flair.nii.gz").rename(
        root / "BraTS20_Training_005" / "BraTS20_Training_005_flair.nii"
    )
    with (root / "name_mapping.csv").open("a") as handle:
        handle.write("HGG,,,,,BraTS20_Training_999\n")
    with pytest.raises(LayoutError) as err:
        read_brats(root)
    text = str(err.value)
    assert (
        "BraTS20_Training_002_seg.nii.gz: missing (the segmentation" in text
        and "rename W39_1998.09.19_Segm.nii" in text
    )
    assert "BraTS20_Training_003_t2.nii.gz: missing (its segmentation exists)" in text
    assert "BraTS20_Training_005_flair.nii: wrong suffix" in text
    assert "row 'BraTS20_Training_999' names no subject folder" in text


def test_missing_data_names_the_registration_page(tmp_path):
    with pytest.raises(LayoutError, match="brats2020/registration.html") as err:
        BratsDataModule(str(tmp_path)).prepare_data()
    assert "MICCAI_BraTS2020_TrainingData" in str(err.value)
    (tmp_path / "brats2020" / "MICCAI_BraTS2020_TrainingData").mkdir(parents=True)
    with pytest.raises(LayoutError, match="the folder is empty"):
        BratsDataModule(str(tmp_path)).prepare_data()


def test_brats_trains_a_2d_net_on_slices(tmp_path):
    from hydra.utils import get_class

    from conftest import QUIET, compose
    from eisen_lightning import run

    cfg = compose(
        [
            "+experiment=brats",
            "data.slice_axis=2",
            "data.patch_size=[32,32]",
            "net=unet2d",
            "debug=fast_dev_run",
            *QUIET,
        ],
        tmp_path,
    )
    get_class(cfg.data._target_).write_replica(**cfg.data)
    dm = get_class(cfg.data._target_)(**{k: v for k, v in cfg.data.items() if k != "_target_"})
    dm.setup("fit")
    crop = dm.datasets["train"][0][0]
    assert crop["image"].shape == (4, 32, 32) and crop["label"].shape == (3, 32, 32)
    metrics = run.train(cfg)
    assert cfg.dataset.spatial_dims == 2 and 0.0 <= metrics["val/dice"] <= 1.0
    assert {"val/dice/TC", "val/dice/WT", "val/dice/ET"} <= metrics.keys()
