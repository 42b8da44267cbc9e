"""Writers: write with ours, read back: same array, same geometry."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from io_samples import expected_affine, sitk_image, volume_xyz
from monai.data import MetaTensor
from monai.transforms import Orientation, SaveImage

from eisen_lightning.io import SimpleITKWriter, load, save

AFFINE = expected_affine()


@pytest.mark.parametrize("suffix", [".mha", ".nrrd", ".nii.gz", ".mhd"])
def test_simpleitk_writer_round_trip(tmp_path, suffix):
    array = volume_xyz()
    writer = SimpleITKWriter(output_dtype=np.int16)
    writer.set_data_array(array, channel_dim=None)
    writer.set_metadata({"affine": AFFINE}, resample=False)
    path = tmp_path / f"out{suffix}"
    writer.write(path)
    image = load(path, dtype=None, ensure_channel_first=False)
    np.testing.assert_array_equal(image.numpy(), array)
    np.testing.assert_allclose(image.affine.numpy(), AFFINE, atol=1e-4)
    reference = sitk.ReadImage(str(path))  # and ITK sees the geometry it was given
    np.testing.assert_allclose(reference.GetSpacing(), (0.7, 0.9, 2.5), atol=1e-5)


def test_simpleitk_writer_vector_channels(tmp_path):
    array = np.random.default_rng(0).normal(size=(3, 6, 5, 4)).astype(np.float32)  # channel first
    writer = SimpleITKWriter(output_dtype=np.float32)
    writer.set_data_array(array, channel_dim=0)
    writer.set_metadata({"affine": AFFINE}, resample=False)
    writer.write(tmp_path / "vector.mha")
    image = load(tmp_path / "vector.mha")
    np.testing.assert_array_equal(image.numpy(), array)
    np.testing.assert_allclose(image.affine.numpy(), AFFINE, atol=1e-4)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".nrrd"])
def test_save_metatensor_round_trip(tmp_path, suffix):
    source = tmp_path / "source.mha"
    sitk.WriteImage(sitk_image(volume_xyz()), str(source))
    image = load(source, dtype=None)
    out = save(image, tmp_path / f"copy{suffix}")
    again = load(out, dtype=None)
    np.testing.assert_array_equal(again.numpy(), image.numpy())
    np.testing.assert_allclose(again.affine.numpy(), image.affine.numpy(), atol=1e-4)
    assert again.dtype == torch.int16


def test_save_undoes_orientation_onto_the_original_grid(tmp_path):
    source = tmp_path / "source.nii.gz"
    save(volume_xyz().astype(np.uint8), source, like=AFFINE)
    image = load(source, dtype=None)
    oriented = Orientation(axcodes="RAS", labels=None)(image)
    assert not np.allclose(oriented.affine.numpy(), image.affine.numpy())
    save(oriented, tmp_path / "back.nii.gz")
    back = load(tmp_path / "back.nii.gz", dtype=None)
    np.testing.assert_array_equal(back.numpy(), image.numpy())
    np.testing.assert_allclose(back.affine.numpy(), AFFINE, atol=1e-4)


def test_save_plain_array_like_a_reference_file(tmp_path):
    reference = tmp_path / "ref.mha"
    sitk.WriteImage(sitk_image(volume_xyz()), str(reference))
    labels = (volume_xyz() > 0).astype(np.uint8)
    save(labels, tmp_path / "labels.nii.gz", like=reference)
    back = load(tmp_path / "labels.nii.gz", dtype=None)
    np.testing.assert_array_equal(back[0].numpy(), labels)
    np.testing.assert_allclose(back.affine.numpy(), AFFINE, atol=1e-4)
    with pytest.raises(
        ValueError, match=r"spatial shape \(3, 3, 3\) differs from the reference grid \(12, 10, 7\)"
    ):
        save(np.zeros((3, 3, 3)), tmp_path / "bad.nii.gz", like=reference)


def test_save_refuses_unknown_suffix_and_missing_reference(tmp_path):
    with pytest.raises(ValueError, match=r"the suffix must be one of \.nii, \.nii\.gz, \.mha"):
        save(np.zeros((2, 2, 2)), tmp_path / "x.png", like=np.eye(4))
    with pytest.raises(ValueError, match="give like="):
        save(np.zeros((2, 2, 2)), tmp_path / "x.nii.gz")


def test_sheared_affine_cannot_go_to_an_itk_format(tmp_path):
    sheared = np.eye(4)
    sheared[0, 2] = 0.5
    with pytest.raises(ValueError, match="sheared"):
        save(np.zeros((2, 2, 2), np.float32), tmp_path / "x.mha", like=sheared)
    save(np.zeros((2, 2, 2), np.float32), tmp_path / "x.nii.gz", like=sheared)  # NIfTI stores it
    np.testing.assert_allclose(load(tmp_path / "x.nii.gz").affine.numpy(), sheared, atol=1e-6)


def test_monai_saveimage_writes_mha_without_itk(tmp_path):
    image = MetaTensor(torch.as_tensor(volume_xyz()[None]), affine=torch.as_tensor(AFFINE))
    image.meta["filename_or_obj"] = "case1.nii.gz"
    saver = SaveImage(
        output_dir=tmp_path, output_ext=".mha", separate_folder=False, output_postfix="pred", resample=False
    )
    saver(image)
    written = load(tmp_path / "case1_pred.mha", ensure_channel_first=False)
    np.testing.assert_array_equal(written.numpy(), volume_xyz().astype(np.float32))
    np.testing.assert_allclose(written.affine.numpy(), AFFINE, atol=1e-4)
