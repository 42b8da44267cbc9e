"""EMIDEC: case folders, clinical text, the pathological flag as split stratum, layout errors."""

import pytest

from eisen_lightning.data import EmidecDataModule
from eisen_lightning.data.datasets import LayoutError


@pytest.fixture
def root(tmp_path):
    return EmidecDataModule.write_replica(str(tmp_path))


def test_cases_carry_the_flag_and_the_clinical_text(root):
    cases = {c["case_id"]: c for c in EmidecDataModule(str(root.parent)).labelled_cases()}
    assert len(cases) == 10
    assert cases["Case_N001"]["pathological"] is False and cases["Case_P002"]["pathological"] is True
    assert cases["Case_P002"]["metadata"].startswith("GBS: ") and "\n" not in cases["Case_P002"]["metadata"]
    assert cases["Case_P002"]["label"].endswith("Case_P002/Contours/Case_P002.nii.gz")


def test_splits_are_stratified_by_the_pathological_flag(root):
    dm = EmidecDataModule(str(root.parent), num_folds=2, test_fraction=0.3, patch_size=(32, 32, 8))
    dm.setup("validate")
    flags = {c["case_id"]: c["pathological"] for c in dm.labelled_cases()}
    for name in ("train", "val", "test"):
        values = [flags[cid] for cid in dm.splits[name]]
        assert any(values) and not all(values), f"{name} split holds both normal and pathological cases"
    sample = dm.datasets["val"][0]
    assert sample["image"].shape[0] == 1 and sample["image"].ndim == 4


def test_every_layout_problem_is_listed_in_one_error(root):
    (root / "Case_P002" / "Contours" / "Case_P002.nii.gz").unlink()
    (root / "Case_P003" / "Images" / "Case_P003.nii.gz").unlink()
    (root / "Case N004.txt").unlink()
    image = root / "Case_P005" / "Images" / "Case_P005.nii.gz"
    image.rename(image.with_name("Case_P005.nii"))
    with pytest.raises(LayoutError) as err:
        EmidecDataModule(str(root.parent)).prepare_data()
    text = str(err.value)
    assert "Contours/Case_P002.nii.gz: missing (the contours" in text
    assert "Images/Case_P003.nii.gz: its contours exist but the image is missing" in text
    assert "Case N004.txt: missing (the clinical information of Case_N004)" in text
    assert "Case_P005.nii: wrong suffix" in text


def test_missing_data_names_the_site_and_the_folder(tmp_path):
    with pytest.raises(LayoutError, match="emidec.com") as err:
        EmidecDataModule(str(tmp_path)).prepare_data()
    assert str(tmp_path / "emidec") in str(err.value)
    (tmp_path / "emidec").mkdir()
    with pytest.raises(LayoutError, match="the folder is empty"):
        EmidecDataModule(str(tmp_path)).prepare_data()
