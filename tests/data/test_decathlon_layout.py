"""read_decathlon on replicas of the ten Decathlon tasks, the LayoutError report, and DataModule arguments."""

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from eisen_lightning.data import DecathlonDataModule
from eisen_lightning.data.datasets import DECATHLON_TASKS, LayoutError, read_decathlon
from eisen_lightning.data.synthetic import DECATHLON_META, write_decathlon_replica

NUM_TRAINING, NUM_TEST = 3, 1


@pytest.fixture(scope="module")
def replicas(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("decathlon")
    for task in DECATHLON_TASKS:
        write_decathlon_replica(root, task, num_training=NUM_TRAINING, num_test=NUM_TEST)
    return root


@pytest.fixture
def spleen(replicas, tmp_path) -> Path:
    """A private, editable copy of the Task09_Spleen replica."""
    return Path(shutil.copytree(replicas / "Task09_Spleen", tmp_path / "Task09_Spleen"))


def edit_json(root: Path, change) -> None:
    path = root / "dataset.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def layout_error(root: Path) -> LayoutError:
    with pytest.raises(LayoutError) as err:
        read_decathlon(root)
    assert isinstance(err.value, ValueError)  # callers may catch ValueError
    assert str(root) in str(err.value)
    return err.value


def test_all_ten_tasks_are_replicated():
    assert set(DECATHLON_META) == set(DECATHLON_TASKS)
    assert len(DECATHLON_TASKS) == 10


@pytest.mark.parametrize("task", DECATHLON_TASKS)
def test_read_replica(replicas, task):
    prefix, modalities, label_names = DECATHLON_META[task]
    root = replicas / task
    layout = read_decathlon(root)
    assert layout.root == root
    assert layout.name == task
    assert layout.modalities == list(modalities)
    assert layout.label_names == list(label_names)
    assert layout.label_names[0] == "background"
    assert [c["case_id"] for c in layout.training] == [f"{prefix}_{i}" for i in range(NUM_TRAINING)]
    assert [c["case_id"] for c in layout.test] == [f"{prefix}_{NUM_TRAINING + i}" for i in range(NUM_TEST)]
    for case in layout.training:
        assert set(case) == {"case_id", "image", "label"}
        for key, folder in (("image", "imagesTr"), ("label", "labelsTr")):
            path = Path(case[key])
            assert path.is_absolute() and path.is_file()
            assert path == root / folder / f"{case['case_id']}.nii.gz"
    for case in layout.test:
        assert set(case) == {"case_id", "image"}
        path = Path(case["image"])
        assert path.is_absolute() and path.is_file()
        assert path == root / "imagesTs" / f"{case['case_id']}.nii.gz"
    assert layout.attributes["numTraining"] == NUM_TRAINING
    assert "training" not in layout.attributes


@pytest.mark.parametrize("task", ["Task01_BrainTumour", "Task09_Spleen"])
def test_replica_images_match_modalities(replicas, task):
    layout = read_decathlon(replicas / task)
    image = nib.load(layout.training[0]["image"])
    label = nib.load(layout.training[0]["label"])
    channels = len(layout.modalities)
    assert image.shape == ((40, 40, 20, channels) if channels > 1 else (40, 40, 20))
    assert label.shape == (40, 40, 20)
    assert np.unique(np.asarray(label.dataobj)).max() < len(layout.label_names)


def test_paths_are_absolute_for_a_relative_root(replicas, tmp_path, monkeypatch):
    shutil.copytree(replicas / "Task02_Heart", tmp_path / "data" / "Task02_Heart")
    monkeypatch.chdir(tmp_path)
    layout = read_decathlon(Path("data") / "Task02_Heart")
    monkeypatch.chdir(tmp_path.parent)  # the paths must still work from elsewhere
    for case in layout.training + layout.test:
        for key in ("image", "label"):
            if key in case:
                assert Path(case[key]).is_absolute(), case[key]
                assert Path(case[key]).is_file()


def test_check_files_false_skips_file_checks(spleen):
    (spleen / "imagesTr" / "spleen_0.nii.gz").unlink()
    layout = read_decathlon(spleen, check_files=False)
    assert [c["case_id"] for c in layout.training] == ["spleen_0", "spleen_1", "spleen_2"]
    with pytest.raises(LayoutError):
        read_decathlon(spleen)


# -- errors ---------------------------------------------------------------------------------


def test_missing_dataset_json(spleen):
    (spleen / "dataset.json").unlink()
    err = layout_error(spleen)
    assert "dataset.json" in str(err) and "missing" in str(err)
    assert len(err.problems) == 1


def test_invalid_json(spleen):
    (spleen / "dataset.json").write_text('{"labels": {"0": "background",')
    err = layout_error(spleen)
    assert "dataset.json is not valid JSON" in str(err)


def test_json_not_an_object(spleen):
    (spleen / "dataset.json").write_text("[1, 2]")
    err = layout_error(spleen)
    assert "dataset.json" in str(err) and "object" in str(err)


def test_missing_labels_and_training_keys_both_reported(spleen):
    edit_json(spleen, lambda m: (m.pop("labels"), m.pop("training")))
    err = layout_error(spleen)
    message = str(err)
    assert "dataset.json has no 'labels' entry" in message
    assert "dataset.json has no 'training' entry" in message
    assert "'modality'" not in message  # only what is wrong
    assert f"{len(err.problems)} problem(s)" in message
    assert all(p in message for p in err.problems)


def test_label_keys_not_contiguous_and_missing_image_both_reported(spleen):
    edit_json(spleen, lambda m: m.update(labels={"0": "background", "2": "spleen"}))
    missing = spleen / "imagesTr" / "spleen_1.nii.gz"
    missing.unlink()
    err = layout_error(spleen)
    message = str(err)
    assert "'labels' keys must be 0..1, got [0, 2]" in message
    assert f"{missing} is listed in dataset.json but missing" in message
    assert len(err.problems) == 2
    assert "2 problem(s)" in message


def test_label_keys_not_integers(spleen):
    edit_json(spleen, lambda m: m.update(labels={"zero": "background"}, modality={}))
    err = layout_error(spleen)
    assert "'labels' keys must be integers" in str(err)
    assert "'modality' must be a non-empty object" in str(err)


def test_every_deleted_file_is_listed(spleen):
    image = spleen / "imagesTr" / "spleen_0.nii.gz"
    label = spleen / "labelsTr" / "spleen_2.nii.gz"
    test_image = spleen / "imagesTs" / "spleen_3.nii.gz"
    for path in (image, label, test_image):
        path.unlink()
    err = layout_error(spleen)
    for path in (image, label, test_image):
        assert f"{path} is listed in dataset.json but missing" in str(err)
    assert len(err.problems) == 3


def test_label_shape_mismatch_and_duplicate_id_both_reported(spleen):
    label_path = spleen / "labelsTr" / "spleen_1.nii.gz"
    original = nib.load(label_path)
    smaller = np.zeros((40, 40, 19), dtype=np.uint8)
    nib.save(nib.Nifti1Image(smaller, original.affine), label_path)

    def duplicate(meta):
        meta["training"].append(
            {"image": "./imagesTr/spleen_0.nii.gz", "label": "./labelsTr/spleen_2.nii.gz"}
        )

    edit_json(spleen, duplicate)
    err = layout_error(spleen)
    message = str(err)
    assert f"{label_path}: shape (40, 40, 19) does not match image shape (40, 40, 20)" in message
    assert "training[3]: duplicate case id 'spleen_0'" in message
    assert len(err.problems) == 2


def test_training_entry_without_label(spleen):
    edit_json(spleen, lambda m: m["training"].append({"image": "./imagesTr/spleen_9.nii.gz"}))
    edit_json(spleen, lambda m: m.pop("modality"))
    err = layout_error(spleen)
    assert "training[3] must have 'image' and 'label'" in str(err)
    assert "no 'modality' entry" in str(err)


def test_unreadable_nifti_reported(spleen):
    broken = spleen / "labelsTr" / "spleen_0.nii.gz"
    broken.write_bytes(b"not a nifti file")
    err = layout_error(spleen)
    assert "cannot be read as NIfTI" in str(err)
    assert "spleen_0.nii.gz" in str(err)


# -- the DataModule ----------------------------------------------------------------------------


def test_prepare_data_on_missing_folder_says_where_to_get_it(tmp_path):
    dm = DecathlonDataModule(data_dir=str(tmp_path), task="Task09_Spleen")
    with pytest.raises(LayoutError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert "medicaldecathlon.com" in message
    assert "paths.data_dir" in message
    assert "Task09_Spleen" in message
    assert str(tmp_path / "Task09_Spleen") in message
    assert not (tmp_path / "Task09_Spleen").exists()  # nothing half-created


def test_prepare_data_reports_a_broken_layout(spleen):
    (spleen / "labelsTr" / "spleen_2.nii.gz").unlink()
    dm = DecathlonDataModule(data_dir=str(spleen.parent), task="Task09_Spleen")
    with pytest.raises(LayoutError, match="spleen_2.nii.gz is listed in dataset.json but missing"):
        dm.prepare_data()


def test_prepare_data_on_a_replica(replicas):
    dm = DecathlonDataModule(data_dir=str(replicas), task="Task05_Prostate")
    dm.prepare_data()
    assert dm.info.in_channels == 2
    assert dm.info.num_classes == 3
    assert dm.info.label_names == ["background", "PZ", "TZ"]
    assert [c["case_id"] for c in dm.labelled_cases()] == ["prostate_0", "prostate_1", "prostate_2"]


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"patch_size": (96, 96, 96, 96)}, "data.patch_size"),
        ({"patch_size": (96, 96), "spacing": (1.5, 1.5, 2.0)}, "data.spacing"),
        ({"patch_size": (96, 0, 96)}, "data.patch_size"),
        ({"spacing": (1.5, -1.5, 2.0)}, "data.spacing"),
        ({"spacing": (1.5, 2.0)}, "data.spacing"),
        ({"task": "data/Task09_Spleen"}, "data.task"),
        ({"task": ""}, "data.task"),
        ({"normalization": "foo"}, "data.normalization"),
        ({"batch_size": 0}, "data.batch_size"),
        ({"cache_rate": 1.5}, "data.cache_rate"),
        ({"num_workers": -1}, "data.num_workers"),
    ],
)
def test_invalid_arguments_name_the_key(tmp_path, kwargs, key):
    args = {"data_dir": str(tmp_path), "task": "Task09_Spleen", **kwargs}
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        DecathlonDataModule(**args)


def test_spacing_may_be_none(tmp_path):
    dm = DecathlonDataModule(data_dir=str(tmp_path), task="Task09_Spleen", spacing=None)
    assert dm.spacing is None
