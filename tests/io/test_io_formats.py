"""Pictures (PIL), whole-slide TIFF (MONAI WSIReader + tifffile), HDF5 (h5py) and NumPy arrays."""

import numpy as np
import pytest
from monai.transforms import LoadImage
from PIL import Image

from eisen_lightning.io import ImageReadError, load, readers


def _tifffile():
    return pytest.importorskip("tifffile", reason="whole-slide TIFF needs tifffile (pip install tifffile)")


@pytest.fixture(scope="module")
def rgb():
    """An RGB picture, rows x columns x 3 (PIL's layout), 48 x 64."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)


def _monai_pil(path):
    return LoadImage(reader="PILReader", image_only=True, ensure_channel_first=True)(str(path))


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_rgb_picture_matches_monai_pil_reader(tmp_path, rgb, suffix):
    path = tmp_path / f"picture{suffix}"
    Image.fromarray(rgb).save(path)
    image = load(path)
    assert tuple(image.shape) == (3, 64, 48)  # channel, x (columns), y (rows)
    np.testing.assert_array_equal(image.numpy(), _monai_pil(path).numpy())
    np.testing.assert_array_equal(image.affine.numpy(), np.eye(4))


def test_grey_png_and_jpeg(tmp_path, rgb):
    grey = rgb[..., 0]
    Image.fromarray(grey).save(tmp_path / "grey.png")
    image = load(tmp_path / "grey.png")
    np.testing.assert_array_equal(image[0].numpy(), grey.T.astype(np.float32))
    Image.fromarray(grey).save(tmp_path / "grey.jpg", quality=95)
    jpeg = load(tmp_path / "grey.jpg")
    np.testing.assert_array_equal(jpeg[0].numpy(), np.asarray(Image.open(tmp_path / "grey.jpg")).T)


def test_tiled_tiff_is_read_as_a_whole_slide_and_matches_the_png(tmp_path, rgb):
    tifffile = _tifffile()
    Image.fromarray(rgb).save(tmp_path / "same.png")
    tifffile.imwrite(tmp_path / "slide.tif", rgb, tile=(16, 16), photometric="rgb")
    slide = LoadImage(reader=readers(), image_only=True, ensure_channel_first=True)(
        str(tmp_path / "slide.tif")
    )
    assert slide.meta["format"] == "wsi"
    np.testing.assert_array_equal(slide.numpy(), load(tmp_path / "same.png").numpy())


def test_whole_slide_level(tmp_path, rgb):
    tifffile = _tifffile()
    path = tmp_path / "pyramid.tif"
    half = np.ascontiguousarray(rgb[::2, ::2])
    with tifffile.TiffWriter(path) as tif:  # a SubIFD pyramid, as OME-TIFF slides store it
        tif.write(rgb, tile=(16, 16), photometric="rgb", subifds=1)
        tif.write(half, tile=(16, 16), photometric="rgb", subfiletype=1)
    level1 = load(path, wsi_level=1)
    assert tuple(level1.shape) == (3, 32, 24)
    np.testing.assert_array_equal(level1.numpy(), np.moveaxis(half.swapaxes(0, 1), -1, 0).astype(np.float32))
    np.testing.assert_array_equal(
        load(path).numpy(), np.moveaxis(rgb.swapaxes(0, 1), -1, 0).astype(np.float32)
    )
    with pytest.raises(ImageReadError, match="level 5 was asked for, the slide has 2 level"):
        load(path, wsi_level=5)


@pytest.fixture
def pcam(tmp_path):
    """A PatchCamelyon-like pair of files: x (N, 96->16, 16, 3) uint8 and y (N, 1, 1, 1)."""
    h5py = pytest.importorskip("h5py", reason="HDF5 needs h5py (pip install h5py)")
    x = np.random.default_rng(2).integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)
    with h5py.File(tmp_path / "split_x.h5", "w") as f:
        f.create_dataset("x", data=x)
    with h5py.File(tmp_path / "split_y.h5", "w") as f:
        f.create_dataset("y", data=np.arange(4, dtype=np.uint8).reshape(4, 1, 1, 1))
    with h5py.File(tmp_path / "both.h5", "w") as f:
        f.create_dataset("x", data=x)
        f.create_dataset("y", data=np.zeros(4))
    return tmp_path, x


def test_hdf5_item_is_a_picture(pcam):
    root, x = pcam
    image = load(f"{root / 'split_x.h5'}#x[2]")
    assert tuple(image.shape) == (3, 16, 16)
    np.testing.assert_array_equal(image.numpy(), np.moveaxis(x[2].swapaxes(0, 1), -1, 0).astype(np.float32))
    assert image.meta["dataset"] == "x"
    label = load(f"{root / 'split_y.h5'}#y[3]", ensure_channel_first=False)
    assert label.numpy().ravel().tolist() == [3.0]


def test_hdf5_single_dataset_file_reads_whole(pcam):
    root, x = pcam
    image = load(root / "split_x.h5", ensure_channel_first=False)
    assert tuple(image.shape) == x.shape


def test_hdf5_errors_name_the_datasets(pcam):
    root, _ = pcam
    with pytest.raises(ImageReadError, match=r"holds 2 datasets \(x, y\)"):
        load(root / "both.h5")
    with pytest.raises(ImageReadError, match="index 9 is out of range for 'x' of length 4"):
        load(f"{root / 'split_x.h5'}#x[9]")
    with pytest.raises(ImageReadError, match="no dataset 'z'"):
        load(f"{root / 'split_x.h5'}#z[0]")


def test_numpy_array(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.save(tmp_path / "a.npy", data)
    image = load(tmp_path / "a.npy", ensure_channel_first=False)
    np.testing.assert_array_equal(image.numpy(), data)
