"""One convention: the same oblique, anisotropic scan gives the same array and affine in every format."""

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from io_samples import expected_affine, sitk_image, volume_xyz, write_dicom_series, write_enhanced
from monai.transforms import Compose, Invertd, LoadImage, LoadImaged, Orientationd, Spacingd

from eisen_lightning.io import load, readers

FORMATS = ("nifti-nibabel", "nifti-sitk", "mha", "nrrd", "dicom-series", "dicom-files", "dicom-enhanced")


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """One volume written in every format; returns (array x,y,z, expected RAS affine, {format: path})."""
    root = tmp_path_factory.mktemp("convention")
    array = volume_xyz()
    image = sitk_image(array)
    affine = expected_affine()
    paths = {
        "nifti-nibabel": root / "scan.nii.gz",
        "nifti-sitk": root / "scan_itk.nii.gz",
        "mha": root / "scan.mha",
        "nrrd": root / "scan.nrrd",
        "dicom-series": root / "series",
        "dicom-enhanced": root / "enhanced.dcm",
    }
    nib.save(nib.Nifti1Image(array, affine), paths["nifti-nibabel"])
    for key in ("nifti-sitk", "mha", "nrrd"):
        sitk.WriteImage(image, str(paths[key]), useCompression=True)
    files = write_dicom_series(image, paths["dicom-series"])
    paths["dicom-files"] = [str(p) for p in files]
    write_enhanced(image, paths["dicom-enhanced"])
    return array, affine, paths


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_to_the_same_array_and_affine(scan, fmt):
    array, affine, paths = scan
    loader = LoadImage(reader=readers(), image_only=True)
    image = loader(paths[fmt])
    np.testing.assert_array_equal(image.numpy(), array.astype(np.float32))
    np.testing.assert_allclose(image.affine.numpy(), affine, atol=1e-4)
    assert image.dtype == torch.float32
    assert image.meta["space"] == "RAS"
    np.testing.assert_allclose(image.meta["spacing"], [0.7, 0.9, 2.5], atol=1e-4)
    np.testing.assert_array_equal(image.meta["spatial_shape"], array.shape)
    np.testing.assert_allclose(image.meta["original_affine"], affine, atol=1e-4)


def test_formats_agree_with_each_other(scan):
    _, _, paths = scan
    loaded = {fmt: load(paths[fmt]) for fmt in FORMATS}
    first = loaded["nifti-nibabel"]
    for fmt, image in loaded.items():
        assert image.shape == first.shape, fmt
        torch.testing.assert_close(image.as_tensor(), first.as_tensor(), msg=fmt)
        np.testing.assert_allclose(image.affine.numpy(), first.affine.numpy(), atol=1e-4, err_msg=fmt)


def test_same_as_monai_nibabel_reader_on_nifti(scan):
    _, _, paths = scan
    ours = load(paths["nifti-nibabel"])
    monai = LoadImage(reader="NibabelReader", image_only=True, ensure_channel_first=True)(
        str(paths["nifti-nibabel"])
    )
    torch.testing.assert_close(ours.as_tensor(), monai.as_tensor())
    np.testing.assert_allclose(ours.affine.numpy(), monai.affine.numpy())


def test_no_copy_into_c_order(scan):
    """The volume reaches the MetaTensor in the file's memory order (no 13 ms transpose copy)."""
    _, _, paths = scan
    image = load(paths["nifti-nibabel"], ensure_channel_first=False)
    assert image.stride()[0] == 1  # x fastest, as stored


def test_pipeline_orientation_spacing_and_inverse(scan):
    """Orientationd, Spacingd and Invertd work on what the readers return, from any format."""
    _, _, paths = scan
    keys = ["image"]
    pre = Compose(
        [
            LoadImaged(keys, reader=readers(), image_only=True, ensure_channel_first=True),
            Orientationd(keys, axcodes="RAS", labels=None),
            Spacingd(keys, pixdim=(1.5, 1.5, 1.5), mode="nearest"),
        ]
    )
    for fmt in ("nifti-nibabel", "mha", "dicom-series"):
        data = pre({"image": paths[fmt]})
        assert data["image"].shape[0] == 1
        np.testing.assert_allclose(data["image"].meta["spacing"], [0.7, 0.9, 2.5], atol=1e-4)
        inverted = Invertd(keys, transform=pre, orig_keys=keys, nearest_interp=True)(data)
        assert tuple(inverted["image"].shape[1:]) == (12, 10, 7)
        np.testing.assert_allclose(inverted["image"].affine.numpy(), expected_affine(), atol=1e-4)


def test_channel_list_of_formats_stacks(scan):
    """Several files of one grid are channels, whatever their formats."""
    array, _, paths = scan
    image = load([paths["nifti-nibabel"], paths["mha"]])
    assert tuple(image.shape) == (2, *array.shape)
    np.testing.assert_array_equal(image[1].numpy(), array.astype(np.float32))


def test_native_dtype_kept_when_asked(scan):
    array, _, paths = scan
    for fmt in ("nifti-nibabel", "mha", "dicom-series"):
        image = load(paths[fmt], dtype=None)
        assert not image.dtype.is_floating_point, fmt
        np.testing.assert_array_equal(image[0].numpy(), array)
