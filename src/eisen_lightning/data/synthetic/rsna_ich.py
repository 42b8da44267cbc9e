"""A tiny RSNA ICH replica: CT slices as DICOM with the real tags, the Kaggle CSV, train and test folders.

Each slice is a skull (bone, ~1000 HU) around brain (~35 HU) in air (-1000 HU), stored as unsigned
12-bit values with ``RescaleIntercept -1024`` and a brain window, as most slices of the real set. A
hemorrhage (~70 HU) is drawn at a subtype-specific place for each positive label; "any" is 1 when
one is.
"""

import csv
from pathlib import Path

import numpy as np

from eisen_lightning.data.datasets.rsna_ich import SUBTYPES

SHAPE = (64, 64)
#: Where each subtype's blob sits, as (row, col) fractions of the image.
PLACES = ((0.2, 0.5), (0.45, 0.35), (0.5, 0.5), (0.65, 0.6), (0.3, 0.75))


def ct_slice(rng: np.random.Generator, labels: list[int], shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """HU values of one axial slice with a blob of blood for each positive subtype."""
    rows, cols = np.mgrid[: shape[0], : shape[1]] / np.array(shape)[:, None, None]
    radius = np.hypot(rows - 0.5, (cols - 0.5) * 1.1)
    hu = np.full(shape, -1000.0)
    hu[radius < 0.42] = 1000.0
    hu[radius < 0.38] = 35.0
    for (r, c), positive in zip(PLACES, labels[:5], strict=True):
        if positive:
            hu[np.hypot(rows - r, cols - c) < 0.07] = 70.0
    return hu + rng.normal(0, 4, shape)


def write_dicom(path: Path, hu: np.ndarray, patient: str, study: int, index: int) -> None:
    """Write ``hu`` as a CT DICOM slice (unsigned 12-bit, rescale -1024, brain window)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID = CTImageStorage, ExplicitVRLittleEndian
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "CT", patient
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.{study}"
    ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.{study}.1"
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [-125.0, -125.0, 5.0 * index]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [0.488281, 0.488281]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = hu.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024.0, 1.0
    ds.WindowCenter, ds.WindowWidth = 40, 80
    ds.PixelData = np.clip(np.round(hu + 1024), 0, 4095).astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)


def write_rsna_ich_replica(
    root: str | Path, num_patients: int = 10, slices: int = 2, num_test: int = 2, seed: int = 0
) -> Path:
    """Write ``stage_2_train.csv``, ``stage_2_train/`` and ``stage_2_test/`` into ``root``.

    Args:
        root: The data-set folder (created); an existing replica is kept.
        num_patients: Patients of the training set, ``slices`` slices each.
        slices: Slices per patient.
        num_test: Unlabelled test slices.
        seed: Seed of labels and pixels.

    Returns:
        ``root``.
    """
    root = Path(root)
    if (root / "stage_2_train.csv").is_file():
        return root
    rng = np.random.default_rng(seed)
    for sub in ("stage_2_train", "stage_2_test"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for n in range(num_patients * slices):
        image_id = f"ID_{rng.integers(16**8, 16**9):09x}"
        labels = [int(v) for v in rng.random(5) < 0.3] if n % 2 else [0] * 5
        labels.append(int(any(labels)))
        hu = ct_slice(rng, labels)
        write_dicom(
            root / "stage_2_train" / f"{image_id}.dcm", hu, f"ID_{n // slices:08x}", n // slices, n % slices
        )
        rows += [[f"{image_id}_{s}", v] for s, v in zip(SUBTYPES, labels, strict=True)]
    for n in range(num_test):
        image_id = f"ID_{rng.integers(16**8, 16**9):09x}"
        write_dicom(
            root / "stage_2_test" / f"{image_id}.dcm", ct_slice(rng, [0] * 6), f"ID_t{n:07x}", 1000 + n, 0
        )
    with (root / "stage_2_train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "Label"])
        writer.writerows(rows)
    return root
