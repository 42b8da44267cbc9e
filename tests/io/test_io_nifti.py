"""NIfTI against nibabel: the package's test data, NIfTI-2, big-endian, sform/qform precedence, scaling."""

import nibabel as nib
import numpy as np
import pytest
from io_samples import NIBABEL_DATA

from eisen_lightning.io import load, nifti


def _check_like_nibabel(path, image):
    reference = nib.load(path)
    expected = reference.get_fdata(dtype=np.float64)
    got = image.numpy()
    if expected.ndim > 3:  # channel last in the file, first in the MetaTensor
        expected = np.moveaxis(expected, -1, 0)
    else:
        got = got[0]
    np.testing.assert_allclose(got, expected.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(image.affine.numpy(), reference.affine, atol=1e-6)


@pytest.mark.parametrize(
    "name",
    ["example4d.nii.gz", "example_nifti2.nii.gz", "anatomical.nii", "functional.nii", "standard.nii.gz"],
)
def test_nibabel_test_data_reads_like_nibabel(name):
    path = NIBABEL_DATA / name
    _check_like_nibabel(path, load(path))


def test_oblique_4d_example_is_channel_first():
    image = load(NIBABEL_DATA / "example4d.nii.gz")
    assert tuple(image.shape) == (2, 128, 96, 24)
    assert not np.allclose(image.affine.numpy()[:3, :3], np.diag(np.diag(image.affine.numpy()[:3, :3])))


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti2_written_by_nibabel(tmp_path, suffix):
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    affine = np.array([[0, -2.0, 0, 10], [1.5, 0, 0, -5], [0, 0, 3.0, 7], [0, 0, 0, 1]])
    path = tmp_path / f"two{suffix}"
    nib.save(nib.Nifti2Image(data, affine), path)
    image = load(path)
    assert image.meta["format"] == "nifti2"
    _check_like_nibabel(path, image)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_big_endian_file(tmp_path, suffix):
    data = np.random.default_rng(1).normal(size=(5, 4, 3)).astype(">f4")
    header = nib.Nifti1Header(endianness=">")
    path = tmp_path / f"big{suffix}"
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 3.0, 4.0, 1.0]), header=header), path)
    assert nib.load(path).header.endianness == ">"
    image = load(path)
    np.testing.assert_array_equal(image[0].numpy(), data.astype(np.float32))
    native = load(path, dtype=None)
    assert native.dtype.is_floating_point and native.numpy().dtype.isnative


def _image_with(qform, qcode, sform, scode):
    image = nib.Nifti1Image(np.zeros((3, 4, 5), np.float32), None)
    image.set_qform(qform, code=qcode)
    image.set_sform(sform, code=scode)
    return image


QFORM = np.array([[-2.0, 0, 0, 30], [0, 2.0, 0, -10], [0, 0, 2.5, 5], [0, 0, 0, 1]])
SFORM = np.array([[1.9, 0.2, 0, 31], [-0.2, 1.9, 0, -11], [0, 0, 2.6, 4], [0, 0, 0, 1]])


@pytest.mark.parametrize(
    "qcode, scode, expected",
    [(1, 2, SFORM), (1, 0, QFORM), (0, 1, SFORM), (0, 0, None)],
    ids=["sform-wins", "qform-only", "sform-only", "neither"],
)
def test_sform_qform_precedence_is_nibabels(tmp_path, qcode, scode, expected):
    path = tmp_path / "forms.nii.gz"
    nib.save(_image_with(QFORM, qcode, SFORM, scode), path)
    image = load(path)
    reference = nib.load(path).affine
    np.testing.assert_allclose(image.affine.numpy(), reference, atol=1e-5)
    if expected is not None:
        np.testing.assert_allclose(image.affine.numpy(), expected, atol=1e-5)
    else:  # nibabel's fall-back: the pixdim zooms only, no rotation (the qform's zooms here)
        matrix = image.affine.numpy()[:3, :3]
        np.testing.assert_allclose(np.abs(matrix), np.diag([2.0, 2.0, 2.5]), atol=1e-6)
    assert (image.meta["qform_code"], image.meta["sform_code"]) == (qcode, scode)


def test_scl_slope_and_inter_are_applied(tmp_path):
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    image = nib.Nifti1Image(data, np.eye(4))
    image.header.set_slope_inter(2.5, -7.0)
    path = tmp_path / "scaled.nii"
    nib.save(image, path)
    loaded = load(path)
    np.testing.assert_allclose(loaded[0].numpy(), data * 2.5 - 7.0)


def test_isal_and_plain_gzip_give_the_same_voxels(tmp_path, monkeypatch):
    path = NIBABEL_DATA / "example4d.nii.gz"
    fast = load(path, ensure_channel_first=False)
    monkeypatch.setattr(nifti, "_igzip", None)
    plain = nifti.NiftiReader().load_one(str(path))
    np.testing.assert_array_equal(fast.numpy(), plain.array.astype(np.float32))


def test_vector_image_drops_the_time_axis(tmp_path):
    data = np.random.default_rng(0).normal(size=(4, 5, 6, 1, 3)).astype(np.float32)
    path = tmp_path / "vector.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    image = load(path)
    assert tuple(image.shape) == (3, 4, 5, 6)
    np.testing.assert_array_equal(image.numpy(), np.moveaxis(data[:, :, :, 0, :], -1, 0))


def test_header_of_an_image_pair_is_refused(tmp_path):
    pair = nib.Nifti1Pair(np.zeros((2, 2, 2), np.float32), np.eye(4))
    nib.save(pair, tmp_path / "pair.img")
    (tmp_path / "pair.hdr").rename(tmp_path / "pair.nii")
    with pytest.raises(ValueError, match="pair.nii.*hdr/.img pair"):
        load(tmp_path / "pair.nii")


def test_content_decides_compression_not_the_suffix(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "packed.nii.gz")
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "plain.nii")
    (tmp_path / "packed.nii.gz").rename(tmp_path / "gzipped_but_named.nii")
    (tmp_path / "plain.nii").rename(tmp_path / "plain_but_named.nii.gz")
    for name in ("gzipped_but_named.nii", "plain_but_named.nii.gz"):
        np.testing.assert_array_equal(load(tmp_path / name)[0].numpy(), data)
