"""The direct read of uncompressed MetaImage/NRRD voxels gives exactly what ITK's full read gives."""

import numpy as np
import pytest
import SimpleITK as sitk

from eisen_lightning.io import SimpleITKReader
from eisen_lightning.io.itk_raw import read_raw
from eisen_lightning.io.sitk_reader import array_view, sitk_affine


def _image(shape, dtype=np.float32, dim=3):
    rng = np.random.default_rng(len(shape))
    image = sitk.GetImageFromArray((rng.normal(0, 100, shape)).astype(dtype))
    if dim == 3:
        image.SetDirection([0.0, 0.0, 1.0, 0.8, -0.6, 0.0, 0.6, 0.8, 0.0])  # oblique, axes permuted
        image.SetSpacing((0.7, 1.3, 2.9))
        image.SetOrigin((-12.5, 40.25, 3.0))
    else:
        image.SetDirection([0.6, 0.8, -0.8, 0.6])
        image.SetSpacing((0.4, 0.9))
        image.SetOrigin((5.0, -7.0))
    return image


def _itk_full(path):
    image = sitk.ReadImage(str(path))
    return np.array(array_view(image)), sitk_affine(image)


def _fast(path, fmt):
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    return read_raw(str(path), fmt, reader)


@pytest.mark.parametrize("suffix", ["mha", "mhd", "nrrd"])
@pytest.mark.parametrize(
    ("shape", "dtype", "dim"),
    [((6, 5, 4), np.float32, 3), ((6, 5, 4), np.int16, 3), ((5, 7), np.uint8, 2), ((3, 4, 5), np.float64, 3)],
)
def test_fast_path_equals_itk(tmp_path, suffix, shape, dtype, dim):
    path = tmp_path / f"v.{suffix}"
    sitk.WriteImage(_image(shape, dtype, dim), str(path))
    fast = _fast(path, suffix)
    assert fast is not None, "an uncompressed single-component file takes the fast path"
    array, geometry = fast
    expected_array, expected_affine = _itk_full(path)
    assert array.dtype == expected_array.dtype and np.array_equal(array, expected_array)
    np.testing.assert_allclose(sitk_affine(geometry), expected_affine, atol=1e-12)


def test_reader_result_is_identical_through_both_paths(tmp_path):
    path = tmp_path / "v.mha"
    sitk.WriteImage(_image((6, 5, 4)), str(path))
    loaded = SimpleITKReader().load_one(str(path))
    expected_array, expected_affine = _itk_full(path)
    assert np.array_equal(loaded.array, expected_array)
    np.testing.assert_allclose(loaded.affine, expected_affine, atol=1e-12)


def test_big_endian_metaimage(tmp_path):
    path = tmp_path / "v.mha"
    sitk.WriteImage(_image((4, 3, 2), np.int16), str(path))
    header, data = path.read_bytes().split(b"ElementDataFile = LOCAL\n")
    swapped = np.frombuffer(data, "<i2").astype(">i2").tobytes()
    big = header.replace(b"BinaryDataByteOrderMSB = False", b"BinaryDataByteOrderMSB = True")
    path.write_bytes(big + b"ElementDataFile = LOCAL\n" + swapped)
    array, _ = _fast(path, "mha")
    assert np.array_equal(array, _itk_full(path)[0])


def test_unknown_header_key_takes_itk_geometry(tmp_path):
    path = tmp_path / "v.mha"
    sitk.WriteImage(_image((4, 3, 2)), str(path))
    path.write_bytes(path.read_bytes().replace(b"NDims = 3\n", b"NDims = 3\nModality = MET_MOD_CT\n"))
    array, geometry = _fast(path, "mha")
    assert isinstance(geometry, sitk.ImageFileReader)
    np.testing.assert_allclose(sitk_affine(geometry), _itk_full(path)[1], atol=1e-12)


@pytest.mark.parametrize("suffix", ["mha", "nrrd"])
def test_compressed_or_vector_files_go_through_itk(tmp_path, suffix):
    compressed = tmp_path / f"c.{suffix}"
    sitk.WriteImage(_image((6, 5, 4)), str(compressed), True)
    assert _fast(compressed, suffix) is None
    vector = tmp_path / f"rgb.{suffix}"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 3), np.uint8), isVector=True), str(vector))
    assert _fast(vector, suffix) is None
    for path in (compressed, vector):
        assert np.array_equal(SimpleITKReader(dtype=None).load_one(str(path)).array, _itk_full(path)[0])


def test_truncated_file_is_not_read_by_the_fast_path(tmp_path):
    path = tmp_path / "v.mha"
    sitk.WriteImage(_image((6, 5, 4)), str(path))
    path.write_bytes(path.read_bytes()[:-10])
    assert _fast(path, "mha") is None
