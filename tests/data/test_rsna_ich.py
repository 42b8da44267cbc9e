"""RSNA ICH: DICOM slices with the Kaggle CSV, HU windows as channels, patient-grouped splits, errors."""

import csv
import shutil

import numpy as np
import pydicom
import pytest
import torch
from monai.transforms import Compose

from conftest import QUIET, compose
from eisen_lightning import run
from eisen_lightning.data import RSNAICHDataModule
from eisen_lightning.data.datasets import LayoutError
from eisen_lightning.data.datasets.rsna_ich import PATIENTS_CSV, SUBTYPES, read_rsna_ich
from eisen_lightning.data.synthetic.rsna_ich import write_dicom


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    return RSNAICHDataModule.write_replica(str(tmp_path_factory.mktemp("ich_data")))


@pytest.fixture
def root(replica, tmp_path):
    shutil.copytree(replica, tmp_path / "rsna_ich")
    return tmp_path / "rsna_ich"


def _csv_labels(root):
    with (root / "stage_2_train.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    labels = {}
    for row in rows:
        image_id, _, subtype = row["ID"].rpartition("_")
        labels.setdefault(image_id, {})[subtype] = float(row["Label"])
    return labels


def test_replica_slices_are_ct_dicom_with_rescale_and_window(replica):
    path = next((replica / "stage_2_train").glob("ID_*.dcm"))
    ds = pydicom.dcmread(path)
    assert ds.Modality == "CT" and float(ds.RescaleIntercept) == -1024.0 and float(ds.RescaleSlope) == 1.0
    assert (ds.WindowCenter, ds.WindowWidth) == (40, 80) and ds.PatientID.startswith("ID_")
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert hu.min() < -900 and hu.max() > 900


def test_labels_are_the_six_subtypes_in_eisens_order(replica):
    layout = read_rsna_ich(replica)
    assert len(layout.labelled) == 20 and len(layout.unlabelled) == 2
    expected = _csv_labels(replica)
    for case in layout.labelled:
        assert case["label"] == [expected[case["case_id"]][s] for s in SUBTYPES]
        assert case["image"].endswith(f"stage_2_train/{case['case_id']}.dcm")
    assert any(c["label"][-1] == 1.0 for c in layout.labelled)


def test_windows_are_computed_from_hounsfield_units(tmp_path):
    hu = np.full((16, 16), 40.0)
    hu[:8] = 1000.0
    write_dicom(tmp_path / "ID_0.dcm", hu, "p", 1, 0)
    dm = RSNAICHDataModule(str(tmp_path), image_size=None)
    image = Compose(dm.predict_transforms())({"image": str(tmp_path / "ID_0.dcm")})["image"]
    assert image.shape == (3, 16, 16)
    # 40 HU: brain window 0..80 -> 0.5; subdural -20..180 -> 0.3; bone -800..2000 -> 0.3
    brain_pixel, bone_pixel = image[:, 0, 12], image[:, 0, 2]
    assert torch.allclose(brain_pixel, torch.tensor([0.5, 0.3, 0.3]), atol=1e-3)
    assert torch.allclose(bone_pixel, torch.tensor([1.0, 1.0, 1800 / 2800]), atol=1e-3)


def test_splits_keep_patients_together_and_are_saved(replica, tmp_path):
    dm = RSNAICHDataModule(str(replica.parent), output_dir=str(tmp_path), num_folds=3, test_fraction=0.2)
    dm.setup("fit")
    patient = {c["case_id"]: c["patient_id"] for c in dm.labelled_cases()}
    assert len(set(patient.values())) == 10
    seen = {name: {patient[i] for i in ids} for name, ids in dm.splits.items()}
    assert (
        not (seen["train"] & seen["val"])
        and not (seen["train"] & seen["test"])
        and not (seen["val"] & seen["test"])
    )
    assert (replica / PATIENTS_CSV).is_file() and (tmp_path / "splits.json").is_file()


def test_every_layout_problem_is_listed_in_one_error(root):
    images = sorted((root / "stage_2_train").glob("*.dcm"))
    images[0].unlink()  # CSV rows without their image
    shutil.copy(images[1], root / "stage_2_train" / "ID_00000000f.dcm")  # an image without rows
    (root / "stage_2_train" / "notes.png").write_bytes(b"png")  # wrong suffix
    rows = (root / "stage_2_train.csv").read_text().splitlines()
    conflicting = rows[7].rsplit(",", 1)[0] + ("," + ("0" if rows[7].endswith("1") else "1"))
    incomplete = rows[13].rsplit("_", 1)[0]
    text = "\n".join([r for r in rows if not r.startswith(incomplete + "_epidural")] + [conflicting]) + "\n"
    (root / "stage_2_train.csv").write_text(text)
    with pytest.raises(LayoutError) as err:
        read_rsna_ich(root)
    message = str(err.value)
    assert "5 problem(s)" in message, message
    assert f"{images[0].stem} has labels but its image {images[0]} is missing" in message
    assert "ID_00000000f.dcm has no rows in" in message
    assert "notes.png: unexpected suffix, expected one of ['.dcm']" in message
    assert f"{incomplete} has no row for ['epidural']" in message and "is listed with" in message
    assert "kaggle.com/c/rsna-intracranial-hemorrhage-detection" in message


def test_an_empty_folder_and_missing_data_are_reported(tmp_path):
    with pytest.raises(LayoutError, match="kaggle.com/c/rsna-intracranial") as err:
        RSNAICHDataModule(str(tmp_path)).prepare_data()
    assert str(tmp_path / "rsna_ich") in str(err.value)
    (tmp_path / "rsna_ich" / "stage_2_train").mkdir(parents=True)
    with pytest.raises(LayoutError, match=r"stage_2_train/ is empty") as err:
        RSNAICHDataModule(str(tmp_path)).prepare_data()
    assert "stage_2_train.csv is missing" in str(err.value)
    with pytest.raises(ValueError, match="cannot be downloaded"):
        RSNAICHDataModule(str(tmp_path), download=True)


def test_bad_windows_are_refused():
    with pytest.raises(ValueError, match=r"data.windows must be \[\[centre, width\]"):
        RSNAICHDataModule("data", windows=[[40.0, 0.0]])


def test_training_logs_auroc_per_subtype_with_summaries(replica, tmp_path):
    cfg = compose(
        [
            "+experiment=rsna_ich",
            *QUIET,
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=1",
            "test_after_fit=false",
            "data.num_workers=0",
            "data.batch_size=4",
            "data.image_size=[64,64]",
        ],
        tmp_path,
    )
    cfg.paths.data_dir = str(replica.parent)
    metrics = run.train(cfg)
    assert {f"val/auroc/{s}" for s in SUBTYPES} <= metrics.keys() and "val/auroc" in metrics
    assert any((tmp_path / "run" / "tensorboard").glob("events.*"))
