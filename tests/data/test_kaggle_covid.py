"""Kaggle COVID-19 CT scans: metadata.csv basenames, the target choice and layout errors."""

import pytest

from eisen_lightning.data import KaggleCovidDataModule
from eisen_lightning.data.datasets import LayoutError


@pytest.fixture
def root(tmp_path):
    return KaggleCovidDataModule.write_replica(str(tmp_path))


@pytest.mark.parametrize(
    ("target", "field", "classes"),
    [
        ("lung", "lung_mask", 3),
        ("infection", "infection_mask", 2),
        ("lung_and_infection", "lung_infection_mask", 4),
    ],
)
def test_target_picks_the_mask_column(root, target, field, classes):
    dm = KaggleCovidDataModule(str(root.parent), target=target)
    cases = dm.labelled_cases()
    assert len(cases) == 8 and all(c["label"] == c[field] for c in cases)
    assert cases[0]["case_id"] == "coronacases_org_001"
    assert cases[0]["image"] == str(root / "ct_scans" / "coronacases_org_001.nii")
    assert dm.info.num_classes == classes


def test_a_sample_loads_with_the_label_values_of_its_target(root):
    dm = KaggleCovidDataModule(
        str(root.parent), target="lung_and_infection", num_folds=2, patch_size=(32, 32, 16)
    )
    dm.setup("validate")
    sample = dm.datasets["val"][0]
    assert sample["image"].shape[0] == 1 and sample["image"].ndim == 4
    assert set(sample["label"].unique().tolist()) == {0.0, 1.0, 2.0, 3.0}


def test_every_layout_problem_is_listed_in_one_error(root):
    (root / "infection_mask" / "coronacases_002.nii").unlink()
    (root / "ct_scans" / "extra_scan.nii").write_bytes(b"")
    lines = (root / "metadata.csv").read_text().splitlines()
    lines[4] = lines[4].replace("lung_mask/radiopaedia_3_85903_0.nii", "lung_mask/radiopaedia_3_85903_0.mha")
    lines.append("only,two")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(LayoutError) as err:
        KaggleCovidDataModule(str(root.parent)).prepare_data()
    text = str(err.value)
    assert "line 4: " in text and "coronacases_002.nii is missing (infection_mask)" in text
    assert "line 5: " in text and "radiopaedia_3_85903_0.mha has a wrong suffix" in text
    assert "extra_scan.nii: a scan without masks" in text
    assert "2 columns, expected 4" in text


def test_missing_data_names_kaggle_and_the_folder(tmp_path):
    with pytest.raises(LayoutError, match="kaggle.com/datasets/andrewmvd/covid19-ct-scans") as err:
        KaggleCovidDataModule(str(tmp_path)).prepare_data()
    assert str(tmp_path / "kaggle_covid") in str(err.value)
    (tmp_path / "kaggle_covid").mkdir()
    with pytest.raises(LayoutError, match="the folder is empty"):
        KaggleCovidDataModule(str(tmp_path)).prepare_data()
    with pytest.raises(ValueError, match="data.target must be one of"):
        KaggleCovidDataModule(str(tmp_path), target="lungs")


def test_slice_axis_trains_a_2d_net_on_slices_of_the_volumes(root):
    dm = KaggleCovidDataModule(
        str(root.parent), slice_axis=2, patch_size=(32, 32), num_folds=2, num_samples=3
    )
    assert dm.info.spatial_dims == 2
    dm.setup("fit")
    crops = dm.datasets["train"][0]
    assert (
        len(crops) == 3 and crops[0]["image"].shape == (1, 32, 32) and crops[0]["label"].shape == (1, 32, 32)
    )
    assert dm.datasets["val"][0]["image"].ndim == 4, "validation stays on whole volumes"
    with pytest.raises(ValueError, match="data.spacing must be 3 positive spacings"):
        KaggleCovidDataModule(str(root.parent), slice_axis=2, patch_size=(32, 32), spacing=(1.5, 1.5))
