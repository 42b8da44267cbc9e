"""Bad input gets one clear error naming the file, the problem and the fix: never a library traceback."""

import pickle

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from io_samples import PYDICOM_FILES, sitk_image, volume_xyz, write_dicom_series
from monai.transforms import Compose, LoadImage, LoadImaged

from eisen_lightning.io import ImageReadError, load, readers

TEXT = "patient list\nthis is not an image\n"


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    volume = np.random.default_rng(0).normal(size=(20, 20, 20)).astype(np.float32)
    for name in ("whole.nii.gz", "whole.nii"):
        nib.save(nib.Nifti1Image(volume, np.eye(4)), root / name)
        raw = (root / name).read_bytes()
        (root / f"truncated_{name}").write_bytes(raw[: len(raw) // 2])
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(root / "whole.mha"))
    raw = (root / "whole.mha").read_bytes()
    (root / "truncated_whole.mha").write_bytes(raw[: len(raw) // 2])
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(root / "header.mhd"))
    (root / "header.raw").unlink()
    for suffix in (".nii.gz", ".nii", ".mha", ".nrrd", ".png", ".dcm", ".h5", ".tif", ".xyz"):
        (root / f"text{suffix}").write_text(TEXT)
    (root / "empty.nii.gz").write_bytes(b"")
    return root


CASES = {
    "truncated_whole.nii.gz": "the file is truncated",
    "truncated_whole.nii": "the file is truncated",
    "truncated_whole.mha": "SimpleITK could not read it .* starting with 'ObjectType = Image'.*truncated",
    "header.mhd": "voxel data file header.raw is missing",
    "text.nii.gz": "not a valid NIfTI file .*it is a text file .* starting with 'patient list'",
    "text.nii": "not a valid NIfTI file .*it is a text file",
    "text.mha": "it is a text file",
    "text.nrrd": "it is a text file",
    "text.png": "PIL recognises no picture in it; it is a text file",
    "text.tif": "PIL recognises no picture in it; it is a text file",
    "text.dcm": "it is not a DICOM file .*it is a text file",
    "text.h5": "h5py cannot open it as HDF5 .*it is a text file",
    "text.xyz": "its format is not supported",
    "empty.nii.gz": "the file is empty",
    "does_not_exist.nii.gz": "the file or folder does not exist",
    "no_such_folder/scan.nii.gz": "the folder .*no_such_folder does not exist either",
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_file_error_names_file_problem_and_fix(bad, name):
    path = bad / name
    with pytest.raises(ImageReadError, match=CASES[name]) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"cannot read {path}: ") and ". Fix: " in message
    assert "Traceback" not in message and "sitk::ERROR" not in message and ".cxx" not in message


def test_missing_file_suggests_a_sibling(bad):
    with pytest.raises(ImageReadError, match="holds whole.mha, whole.nii, whole.nii.gz"):
        load(bad / "whole.nrrd")


def test_truncated_dicom_pixel_data():
    with pytest.raises(ImageReadError, match="pixel data is truncated or damaged: .*Fix: copy or export"):
        load(PYDICOM_FILES / "MR_truncated.dcm")


def test_loadimage_passes_the_error_through_unchanged(bad):
    """LoadImage swallows reader.read errors into 'cannot find a suitable reader'; ours come from get_data."""
    with pytest.raises(ImageReadError, match="the file is truncated"):
        LoadImage(reader=readers())(bad / "truncated_whole.nii.gz")
    with pytest.raises(ImageReadError, match="does not exist"):
        LoadImaged("image", reader=readers())({"image": str(bad / "nope.nii.gz")})


def test_compose_keeps_the_error_as_the_cause(bad):
    pipeline = Compose([LoadImaged("image", reader=readers())])
    with pytest.raises(RuntimeError) as info:
        pipeline({"image": str(bad / "header.mhd")})
    causes = []
    error = info.value
    while error is not None:
        causes.append(error)
        error = error.__cause__
    assert any(isinstance(e, ImageReadError) for e in causes)


def test_error_survives_pickling_and_recreation_from_its_message():
    error = ImageReadError("a.nii", "broken", "fix it")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) == "cannot read a.nii: broken. Fix: fix it."
    assert str(ImageReadError(str(error))) == str(error)  # how DataLoader workers re-raise
    assert isinstance(error, ValueError)


def test_dicom_folder_errors(tmp_path):
    image = sitk_image(volume_xyz((6, 5, 5)))
    files = sorted(write_dicom_series(image, tmp_path / "series"), key=lambda p: p.name)
    files[2].unlink()
    with pytest.raises(ImageReadError, match=r"1 slice\(s\) missing .*Fix: find the missing file"):
        load(tmp_path / "series")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text(TEXT)
    with pytest.raises(
        ImageReadError, match=r"the folder holds no DICOM image \(1 file\(s\), e.g. notes.txt"
    ):
        load(tmp_path / "empty")
