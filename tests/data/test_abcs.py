"""ABCs: flat and one-level layouts, task choice, modalities as channels, layout errors."""

import shutil

import pytest

from eisen_lightning.data import AbcsDataModule
from eisen_lightning.data.datasets import LayoutError
from eisen_lightning.data.datasets.abcs import read_abcs


@pytest.fixture
def root(tmp_path):
    return AbcsDataModule.write_replica(str(tmp_path))


def test_nested_and_flat_layouts_give_the_same_cases(root, tmp_path):
    nested = read_abcs(root)
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in root.glob("*/*.mha"):
        shutil.copy(path, flat / path.name)
    assert (
        [c["case_id"] for c in read_abcs(flat)]
        == [c["case_id"] for c in nested]
        == [f"{i:03d}" for i in range(8)]
    )
    assert set(nested[0]) == {"case_id", "ct", "t1", "t2", "label_task1", "label_task2"}


@pytest.mark.parametrize(("task", "classes"), [(1, 6), (2, 11)])
def test_task_picks_the_label_map_and_modalities_are_channels(root, task, classes):
    dm = AbcsDataModule(
        str(root.parent), task=task, modalities=["t1", "t2"], num_folds=2, patch_size=(32, 32, 32)
    )
    case = dm.labelled_cases()[0]
    assert case["label"] == case[f"label_task{task}"] and case["image"] == [case["t1"], case["t2"]]
    assert (dm.info.in_channels, dm.info.num_classes) == (2, classes)
    dm.setup("validate")
    sample = dm.datasets["val"][0]
    assert sample["image"].shape[0] == 2 and sample["label"].shape[0] == 1
    assert sample["label"].max() <= classes - 1


def test_every_layout_problem_is_listed_in_one_error(root):
    part = root / "ABCs_training_data_Part1"
    (part / "001_t2.mha").unlink()  # image channel missing
    (part / "002_labelmap_task2.mha").unlink()  # label missing
    (part / "003_ct.mha").unlink()  # labels without their image
    (part / "000_t1.mha").rename(part / "000_t1.nii.gz")  # wrong suffix
    with pytest.raises(LayoutError) as err:
        read_abcs(root)
    text = str(err.value)
    assert "001_t2.mha: missing (an input of 001)" in text
    assert "002_labelmap_task2.mha: missing (a training label map of 002)" in text
    assert "003_labelmap_task1.mha: a label map without its image 003_ct.mha" in text
    assert "000_t1.nii.gz: wrong suffix '.nii.gz'" in text


def test_missing_data_and_bad_arguments(tmp_path):
    with pytest.raises(LayoutError, match="abcs.mgh.harvard.edu"):
        AbcsDataModule(str(tmp_path)).prepare_data()
    (tmp_path / "abcs").mkdir()
    with pytest.raises(LayoutError, match="the folder is empty"):
        AbcsDataModule(str(tmp_path)).prepare_data()
    with pytest.raises(ValueError, match="data.task must be one of"):
        AbcsDataModule(str(tmp_path), task=3)
    with pytest.raises(ValueError, match="data.modalities must be distinct entries"):
        AbcsDataModule(str(tmp_path), modalities=["ct", "pet"])
