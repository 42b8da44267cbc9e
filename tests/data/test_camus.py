"""CAMUS: layout parsing, views, patient grouping, layout errors and 2D samples from .mhd files."""

import pytest

from eisen_lightning.data import CamusDataModule
from eisen_lightning.data.datasets import LayoutError
from eisen_lightning.data.datasets.camus import read_camus


@pytest.fixture
def root(tmp_path):
    CamusDataModule.write_replica(str(tmp_path), test_folder="camus/testing")
    return tmp_path / "camus" / "training"


def test_one_case_per_view_and_frame_with_eisen_fields(root):
    cases = read_camus(root, views=("2CH", "4CH"), with_sequences=True)
    assert len(cases) == 8 * 2 * 2
    first = cases[0]
    assert first["case_id"] == "patient0001_2CH_ED" and first["patient_id"] == "patient0001"
    assert (
        first["type"] == "ED"
        and first["image"] == first["image_2CH"]
        and first["label"] == first["label_2CH"]
    )
    assert first["sequence_2CH"].endswith("patient0001_2CH_sequence.mhd")
    assert first["info_2CH"]["ImageQuality"] in {"Good", "Medium", "Poor"}


def test_view_choice_and_test_folder(tmp_path, root):
    dm = CamusDataModule(str(tmp_path), view="4CH", test_folder="camus/testing")
    assert {c["view"] for c in dm.labelled_cases()} == {"4CH"}
    assert len(dm.unlabelled_cases()) == 2 * 2 and all("label" not in c for c in dm.unlabelled_cases())
    both = CamusDataModule(str(tmp_path), view="both")
    assert len(both.labelled_cases()) == 32
    with pytest.raises(ValueError, match="data.view must be one of"):
        CamusDataModule(str(tmp_path), view="3CH")


def test_frames_of_a_patient_share_a_split_and_load_as_2d(tmp_path, root):
    dm = CamusDataModule(str(tmp_path), view="both", num_folds=2, test_fraction=0.25, patch_size=(64, 64))
    dm.setup("validate")
    where = {cid: name for name, ids in dm.splits.items() for cid in ids}
    for case in dm.labelled_cases():
        assert where[case["case_id"]] == where[f"{case['patient_id']}_2CH_ED"]
    sample = dm.datasets["val"][0]
    assert sample["image"].ndim == 3 and sample["image"].shape[0] == 1
    assert set(sample["label"].unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert sample["label"].max() == 3


def test_every_layout_problem_is_listed_in_one_error(root):
    patient = root / "patient0002"
    (patient / "patient0002_2CH_ES_gt.mhd").unlink()  # image without label
    (patient / "patient0002_4CH_ED.mhd").unlink()  # label without image
    (patient / "patient0002_2CH_ED.raw").unlink()  # header without its data
    (patient / "patient0002_4CH_ES.mhd").rename(patient / "patient0002_4CH_ES.nii")  # wrong suffix
    with pytest.raises(LayoutError) as err:
        read_camus(root)
    text = str(err.value)
    assert "patient0002_2CH_ES_gt.mhd: missing" in text
    assert "patient0002_4CH_ED.mhd: its label exists but the image is missing" in text
    assert "data file patient0002_2CH_ED.raw is missing" in text
    assert "patient0002_4CH_ES.nii: wrong suffix" in text


def test_missing_or_empty_folder_says_where_to_get_the_data(tmp_path):
    with pytest.raises(LayoutError, match="creatis.insa-lyon.fr") as err:
        CamusDataModule(str(tmp_path)).prepare_data()
    assert str(tmp_path / "camus" / "training") in str(err.value)
    (tmp_path / "camus" / "training").mkdir(parents=True)
    with pytest.raises(LayoutError, match="the folder is empty"):
        CamusDataModule(str(tmp_path)).prepare_data()


def test_2d_images_refuse_3d_patches_and_slicing(tmp_path):
    with pytest.raises(ValueError, match="must have 2 sizes for 2D images"):
        CamusDataModule(str(tmp_path), patch_size=(64, 64, 64), spacing=None)
    with pytest.raises(ValueError, match="does not train on slices"):
        CamusDataModule(str(tmp_path), slice_axis=2)
