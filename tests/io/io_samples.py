"""Test inputs for tests/io: the packages' own scans, and oblique volumes written with SimpleITK/pydicom."""

from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
import pydicom
import SimpleITK as sitk

# Real scans shipped inside the installed packages (never fetched: pydicom's get_testdata_files would).
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
NIBABEL_DATA = Path(nibabel.__file__).parent / "tests" / "data"
CT5N = (
    PYDICOM_FILES / "dicomdirtests" / "98892001" / "CT5N"
)  # 5 axial CT slices, InstanceNumber vs z reversed
CT2 = PYDICOM_FILES / "dicomdirtests" / "77654033" / "CT2"  # 4 slices: a 202.5 mm gap, then 1.25 mm steps
CT2N = PYDICOM_FILES / "dicomdirtests" / "98892001" / "CT2N"  # 2 slices of one series, two orientations
MR1 = PYDICOM_FILES / "dicomdirtests" / "98892003" / "MR1"  # 3 single-slice series
MR700 = PYDICOM_FILES / "dicomdirtests" / "98892003" / "MR700"  # 7 radial slices of one series

SPACING = (0.7, 0.9, 2.5)
ORIGIN = (12.5, -30.0, 41.0)
SERIES_UID = "1.2.826.0.1.3680043.8.498.7001"


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    """A rotation matrix from angles in degrees about x, then y, then z."""
    a, b, c = np.deg2rad([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


DIRECTION = rotation(20.0, -15.0, 30.0)  # oblique: the slice normal is along no axis


def volume_xyz(shape=(12, 10, 7), seed: int = 0) -> np.ndarray:
    """An int16 volume in x, y, z order, with values that reveal any axis swap or flip."""
    rng = np.random.default_rng(seed)
    return rng.integers(-1000, 2000, size=shape).astype(np.int16)


def sitk_image(array_xyz: np.ndarray, spacing=SPACING, direction=DIRECTION, origin=ORIGIN) -> sitk.Image:
    """A SimpleITK image of an ``x, y, z`` array with the given LPS geometry."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array_xyz.T))
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(np.asarray(direction, float).flatten()))
    image.SetOrigin(tuple(float(o) for o in origin))
    return image


def expected_affine(spacing=SPACING, direction=DIRECTION, origin=ORIGIN) -> np.ndarray:
    """The RAS affine of that geometry, computed independently of the package."""
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(direction) @ np.diag(spacing)
    affine[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def write_dicom_series(
    image: sitk.Image, folder: Path, series_uid: str = SERIES_UID, prefix: str = "s"
) -> list[Path]:
    """One DICOM file per slice, written by SimpleITK/GDCM from 3D single-slice images.

    Files are named in reverse slice order and InstanceNumber counts backwards, so that neither
    file name nor InstanceNumber gives the right order: only the positions do.
    """
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    depth = image.GetSize()[2]
    paths = []
    for k in range(depth):
        piece = image[:, :, k : k + 1]
        piece.SetMetaData("0008|0060", "CT")
        piece.SetMetaData("0020|000e", series_uid)
        piece.SetMetaData("0020|0013", str(depth - k))
        path = folder / f"{prefix}{depth - k:03d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(piece)
        paths.append(path)
    return paths


def edit_dicom(path: Path, **values) -> None:
    """Overwrite attributes of a DICOM file in place (pydicom)."""
    ds = pydicom.dcmread(path)
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    ds.save_as(path)


def write_enhanced(image: sitk.Image, path: Path, slope: float = 1.0, intercept: float = 0.0) -> np.ndarray:
    """An enhanced multi-frame CT-like object (functional groups), frames stored last slice first.

    Returns:
        The stored pixel values per frame ``(frames, rows, columns)`` in storage order.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    array_xyz = sitk.GetArrayFromImage(image).T
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    frames = [np.ascontiguousarray(array_xyz[:, :, k].T) for k in range(array_xyz.shape[2])][::-1]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.Modality = generate_uid(), generate_uid(), "CT"
    ds.Rows, ds.Columns, ds.NumberOfFrames = frames[0].shape[0], frames[0].shape[1], len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    shared = Dataset()
    measures, orientation, transform = Dataset(), Dataset(), Dataset()
    measures.PixelSpacing = [image.GetSpacing()[1], image.GetSpacing()[0]]
    measures.SliceThickness = image.GetSpacing()[2]
    orientation.ImageOrientationPatient = [*direction[:, 0].tolist(), *direction[:, 1].tolist()]
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = slope, intercept, "HU"
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    depth = array_xyz.shape[2]
    for k in range(depth)[::-1]:
        group, position = Dataset(), Dataset()
        position.ImagePositionPatient = list(image.TransformIndexToPhysicalPoint((0, 0, k)))
        group.PlanePositionSequence = Sequence([position])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.PixelData = np.stack(frames).astype(np.int16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return np.stack(frames)
