"""DICOM: pydicom's real test scans against pydicom and SimpleITK, series assembly and its checks."""

import random
import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from io_samples import (
    CT2,
    CT2N,
    CT5N,
    MR1,
    MR700,
    PYDICOM_FILES,
    edit_dicom,
    expected_affine,
    sitk_image,
    volume_xyz,
    write_dicom_series,
)
from monai.transforms import LoadImaged

from eisen_lightning.io import ImageReadError, load, readers

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def pydicom_affine(ds, step=None) -> np.ndarray:
    """RAS affine of a slice from its header, as the DICOM standard defines it."""
    iop = np.asarray(ds.ImageOrientationPatient, float)
    dy, dx = (float(v) for v in ds.PixelSpacing)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1] = iop[:3] * dx, iop[3:] * dy
    affine[:3, 2] = (
        np.cross(iop[:3], iop[3:]) * float(ds.get("SliceThickness", 1) or 1) if step is None else step
    )
    affine[:3, 3] = np.asarray(ds.ImagePositionPatient, float)
    return LPS_TO_RAS @ affine


def test_single_ct_slice_matches_pydicom():
    path = PYDICOM_FILES / "CT_small.dcm"
    ds = pydicom.dcmread(path)
    image = load(path, ensure_channel_first=False)
    expected = ds.pixel_array.T * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(image.numpy(), expected.astype(np.float32))
    np.testing.assert_allclose(image.affine.numpy(), pydicom_affine(ds), atol=1e-4)
    assert image.meta["modality"] == "CT" and image.meta["format"] == "dicom"


MR_VARIANTS = [
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_padded.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
]


@pytest.mark.parametrize("name", MR_VARIANTS)
def test_mr_transfer_syntaxes_give_the_uncompressed_pixels(name):
    """Lossless variants of one MR slice all give MR_small.dcm's pixels (GDCM decodes what pydicom can't)."""
    reference = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm").pixel_array.T
    try:
        image = load(PYDICOM_FILES / name, ensure_channel_first=False)
    except ImageReadError as err:
        if "cannot be decoded" in str(err):
            pytest.skip(
                f"{name}: neither pydicom nor SimpleITK has a decoder for its transfer syntax here: {err}"
            )
        raise
    np.testing.assert_array_equal(image.numpy(), reference.astype(np.float32))
    try:
        pixels = pydicom.dcmread(PYDICOM_FILES / name).pixel_array
    except Exception:  # pydicom lacks the decoder: the comparison above (via GDCM) stands
        return
    np.testing.assert_array_equal(image.numpy(), pixels.T.astype(np.float32))


def _ct5n_pydicom():
    datasets = [pydicom.dcmread(p) for p in CT5N.iterdir()]
    normal = np.cross(*np.reshape(np.asarray(datasets[0].ImageOrientationPatient, float), (2, 3)))
    datasets.sort(key=lambda ds: float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal)))
    return datasets


def test_series_folder_matches_pydicom_sorted_by_position():
    datasets = _ct5n_pydicom()
    instance_order = [int(ds.InstanceNumber) for ds in datasets]
    assert instance_order == sorted(instance_order, reverse=True)  # InstanceNumber would give the wrong order
    image = load(CT5N, ensure_channel_first=False)
    expected = np.stack(
        [ds.pixel_array.T * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in datasets], -1
    )
    np.testing.assert_array_equal(image.numpy(), expected.astype(np.float32))
    first, last = (np.asarray(ds.ImagePositionPatient, float) for ds in (datasets[0], datasets[-1]))
    np.testing.assert_allclose(
        image.affine.numpy(), pydicom_affine(datasets[0], (last - first) / 4), atol=1e-4
    )
    np.testing.assert_allclose(image.meta["spacing"], [0.488281, 0.488281, 2.5], atol=1e-5)


def test_series_folder_matches_simpleitk_series_reader():
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(CT5N)))
    reference = reader.Execute()
    image = load(CT5N, ensure_channel_first=False)
    np.testing.assert_array_equal(image.numpy(), sitk.GetArrayFromImage(reference).T.astype(np.float32))
    direction = np.asarray(reference.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(
        image.affine.numpy(),
        expected_affine(reference.GetSpacing(), direction, reference.GetOrigin()),
        atol=1e-4,
    )


def test_list_of_files_in_any_order_is_one_series():
    files = [str(p) for p in CT5N.iterdir()]
    random.Random(3).shuffle(files)
    shuffled = load(files)
    folder = load(CT5N)
    np.testing.assert_array_equal(shuffled.numpy(), folder.numpy())
    np.testing.assert_allclose(shuffled.affine.numpy(), folder.affine.numpy())


def test_regular_subset_of_a_gapped_series_reads():
    files = sorted(str(p) for p in CT2.iterdir())[1:]  # drop the far slice: three slices 1.25 mm apart
    image = load(files)
    assert tuple(image.shape) == (1, 16, 16, 3)
    np.testing.assert_allclose(image.meta["spacing"][2], 1.25, atol=1e-4)


def test_real_series_with_a_gap_reports_missing_slices():
    with pytest.raises(ImageReadError, match=r"161 slice\(s\) missing between 17106 and 17136"):
        load(CT2)


@pytest.mark.parametrize("folder", [CT2N, MR700], ids=["CT2N", "MR700"])
def test_real_series_with_several_orientations_is_refused(folder):
    with pytest.raises(ImageReadError, match="different orientations") as info:
        load(folder)
    assert str(folder) in str(info.value) and "Fix:" in str(info.value)


def test_folder_of_several_series_lists_them_and_reads_the_named_one():
    with pytest.raises(ImageReadError, match="holds 3 series") as info:
        load(MR1)
    uids = sorted({str(pydicom.dcmread(p).SeriesInstanceUID) for p in MR1.iterdir()})
    assert all(uid in str(info.value) for uid in uids) and "FAST LOCALIZER" in str(info.value)
    image = load(MR1, series_uid=uids[1])
    assert tuple(image.shape) == (1, 16, 16, 1)
    with pytest.raises(ImageReadError, match="no series 1.2.3 in it"):
        load(MR1, series_uid="1.2.3")


def test_series_selection_through_loadimaged(tmp_path):
    image = sitk_image(volume_xyz((6, 5, 4)))
    write_dicom_series(image, tmp_path / "mixed", series_uid="1.2.826.0.1.3680043.8.498.1", prefix="a")
    write_dicom_series(
        image[:, :, :3], tmp_path / "mixed", series_uid="1.2.826.0.1.3680043.8.498.2", prefix="b"
    )
    with pytest.raises(ImageReadError, match="holds 2 series"):
        load(tmp_path / "mixed")
    load_b = LoadImaged(
        "image", reader=readers(series_uid="1.2.826.0.1.3680043.8.498.2"), ensure_channel_first=True
    )
    assert tuple(load_b({"image": tmp_path / "mixed"})["image"].shape) == (1, 6, 5, 3)


@pytest.fixture
def series(tmp_path):
    image = sitk_image(volume_xyz((6, 5, 6)))
    files = write_dicom_series(image, tmp_path / "series")
    return image, tmp_path / "series", sorted(files, key=lambda p: -int(p.stem[1:]))  # slice order


def test_missing_slice_is_reported(series):
    _, folder, files = series
    files[2].unlink()
    with pytest.raises(ImageReadError, match=r"1 slice\(s\) missing between s005.dcm and s003.dcm"):
        load(folder)


def test_uneven_spacing_is_reported(series):
    image, folder, files = series
    position = np.asarray(image.TransformIndexToPhysicalPoint((0, 0, 3)))
    normal = np.asarray(image.GetDirection()).reshape(3, 3)[:, 2]
    edit_dicom(files[3], ImagePositionPatient=[float(v) for v in position + 0.6 * normal])
    with pytest.raises(ImageReadError, match="uneven slice spacing"):
        load(folder)


def test_two_orientations_are_reported(series):
    _, folder, files = series
    ds = pydicom.dcmread(files[1])
    iop = np.asarray(ds.ImageOrientationPatient, float)
    edit_dicom(files[1], ImageOrientationPatient=[*iop[3:].tolist(), *iop[:3].tolist()])
    with pytest.raises(ImageReadError, match="2 different orientations"):
        load(folder)


def test_slices_of_different_sizes_are_reported(series, tmp_path):
    _, folder, files = series
    small = write_dicom_series(sitk_image(volume_xyz((4, 5, 1))), tmp_path / "small", prefix="x")
    shutil.copy(small[0], folder / "x_extra.dcm")
    with pytest.raises(ImageReadError, match="differ in size"):
        load(folder)


@pytest.mark.parametrize("dtype", [np.float32, None], ids=["float32-via-GDCM", "native-via-pydicom"])
def test_per_slice_rescale_is_applied_slice_by_slice(series, dtype):
    image, folder, files = series
    for k, path in enumerate(files):
        edit_dicom(path, RescaleSlope=1.0 if k == 0 else 0.37 * k, RescaleIntercept=-10 * k)
    loaded = load(folder, dtype=dtype, ensure_channel_first=False)
    stored = sitk.GetArrayFromImage(image).T.astype(np.float64)
    expected = np.stack([stored[:, :, k] * (1.0 if k == 0 else 0.37 * k) - 10 * k for k in range(6)], -1)
    np.testing.assert_allclose(loaded.numpy(), expected, rtol=1e-6)


def test_rt_dose_multiframe_uses_grid_frame_offsets():
    path = PYDICOM_FILES / "rtdose.dcm"
    ds = pydicom.dcmread(path)
    image = load(path, ensure_channel_first=False)
    expected = np.moveaxis(ds.pixel_array, 0, -1).swapaxes(0, 1) * float(ds.DoseGridScaling)
    np.testing.assert_allclose(image.numpy(), expected.astype(np.float32), rtol=1e-6)
    offsets = np.asarray(ds.GridFrameOffsetVector, float)
    iop = np.asarray(ds.ImageOrientationPatient, float)
    step = np.cross(iop[:3], iop[3:]) * (offsets[1] - offsets[0])
    np.testing.assert_allclose(image.affine.numpy(), pydicom_affine(ds, step), atol=1e-4)


def test_rgb_ultrasound_frame_is_channel_first():
    path = PYDICOM_FILES / "examples_rgb_color.dcm"
    pixels = pydicom.dcmread(path).pixel_array  # rows, columns, 3
    image = load(path)
    assert tuple(image.shape) == (3, pixels.shape[1], pixels.shape[0])
    np.testing.assert_array_equal(image.numpy(), np.moveaxis(pixels.swapaxes(0, 1), -1, 0).astype(np.float32))


def test_dicom_without_pixels_is_refused():
    with pytest.raises(ImageReadError, match=r"holds no pixel data \(it is a RT Plan Storage\)"):
        load(PYDICOM_FILES / "rtplan.dcm")


def test_rgb_series_is_channel_last_then_first(tmp_path):
    rgb = np.random.default_rng(5).integers(0, 256, size=(6, 5, 3, 3), dtype=np.uint8)  # x, y, z, colour
    image = sitk.GetImageFromArray(np.ascontiguousarray(rgb.transpose(2, 1, 0, 3)), isVector=True)
    image.SetSpacing((0.5, 0.5, 2.0))
    write_dicom_series(image, tmp_path / "rgb")
    loaded = load(tmp_path / "rgb")
    assert tuple(loaded.shape) == (3, 6, 5, 3)
    np.testing.assert_array_equal(loaded.numpy(), np.moveaxis(rgb, -1, 0).astype(np.float32))
