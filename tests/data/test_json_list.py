"""Your own data: a JSON list of sample dicts, relative paths, channels from several keys, entry errors."""

import json

import pytest

from eisen_lightning.data import JsonListDataModule
from eisen_lightning.data.datasets import LayoutError
from eisen_lightning.data.datasets.json_list import read_json_list


@pytest.fixture
def json_file(tmp_path):
    return JsonListDataModule.write_replica(str(tmp_path / "mine" / "list.json"))


def test_paths_are_relative_to_the_json_file_and_fields_are_kept(json_file):
    dm = JsonListDataModule(str(json_file), ["background", "organ"], patch_size=(32, 32, 16), num_folds=2)
    labelled, unlabelled = dm.labelled_cases(), dm.unlabelled_cases()
    assert len(labelled) == 12 and len(unlabelled) == 1
    assert labelled[0]["image"] == str(json_file.parent / "images" / "case_000.nii.gz")
    assert labelled[0]["case_id"] == "case_000" and labelled[0]["patient_id"] == "p0"
    dm.setup("validate")
    where = {cid: name for name, ids in dm.splits.items() for cid in ids}
    assert where["case_000"] == where["case_001"], "cases of one patient share a split"
    assert dm.datasets["val"][0]["image"].shape[0] == 1


def test_several_image_keys_are_channels(json_file):
    entries = json.loads(json_file.read_text())
    for entry in entries:
        entry["t2"] = entry["image"]
    json_file.write_text(json.dumps(entries))
    dm = JsonListDataModule(
        str(json_file), ["background", "organ"], image_keys=["image", "t2"], patch_size=(32, 32, 16)
    )
    assert dm.info.in_channels == 2 and len(dm.labelled_cases()[0]["image"]) == 2


def test_errors_name_the_entry_index_and_key(tmp_path):
    (tmp_path / "a.nii.gz").write_bytes(b"")
    entries = [
        {"image": "a.nii.gz", "label": "missing.nii.gz"},
        {"label": "a.nii.gz"},
        {"image": 3},
        "not an object",
        {"image": "a.nii.gz", "case_id": "a"},
    ]
    (tmp_path / "list.json").write_text(json.dumps(entries))
    with pytest.raises(LayoutError) as err:
        read_json_list(tmp_path / "list.json")
    text = str(err.value)
    assert "entry 0, key 'label': missing.nii.gz is missing" in text
    assert "entry 1: no key(s) ['image']" in text
    assert "entry 2, key 'image': must be a path string, got 3" in text
    assert "entry 3: must be an object" in text
    assert "case_id 'a' repeats entry 0" in text


def test_bad_files_and_arguments(tmp_path):
    with pytest.raises(LayoutError, match="the JSON file is missing"):
        read_json_list(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(LayoutError, match="non-empty JSON list"):
        read_json_list(tmp_path / "x.json")
    with pytest.raises(ValueError, match="data.label_names must name every class"):
        JsonListDataModule(str(tmp_path / "x.json"), ["background"])
