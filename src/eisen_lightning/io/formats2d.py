"""Pictures, whole-slide images, HDF5 and NumPy arrays: formats without patient geometry.

2D images (PNG, JPEG, BMP, plain TIFF) go through MONAI's PILReader, whole-slide TIFF through MONAI's
WSIReader (tifffile backend), HDF5 arrays through h5py, and NumPy files through MONAI's NumpyReader.

Arrays follow the package convention: spatial axes ``x, y`` (MONAI's ``PILReader`` order, i.e.
columns first), the colour channel last, and an identity affine (these formats carry no geometry).
MONAI's whole-slide readers return ``(C, H, W)``; it is turned into ``(W, H, C)`` here so that a
slide and the same picture saved as PNG give the same array.
"""

from __future__ import annotations

import re

import numpy as np

from eisen_lightning.io.base import BaseReader, Loaded, has_suffix
from eisen_lightning.io.errors import ImageReadError, describe_content

PIL_SUFFIXES = ("png", "jpg", "jpeg", "bmp", "tif", "tiff")
WSI_SUFFIXES = ("svs", "tif", "tiff")
HDF5_SUFFIXES = ("h5", "hdf5", "he5")
NUMPY_SUFFIXES = ("npy", "npz")
_HDF5_PATH = re.compile(
    r"^(?P<file>.*?\.(?:h5|hdf5|he5))(?:#(?P<dataset>[^\[\]]*)(?:\[(?P<index>-?\d+)\])?)?$", re.I
)


def _install_hint(package: str) -> str:
    return f"pip install {package} (or pip install 'eisen-lightning[all]')"


def is_whole_slide(path: str) -> bool:
    """Whether a TIFF is tiled or pyramidal (a whole-slide image) rather than a plain picture."""
    if has_suffix(path, ("svs",)):
        return True
    try:
        import tifffile
    except ImportError:
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return bool(tif.pages[0].is_tiled or len(series.levels) > 1)
    except Exception:  # not a TIFF tifffile understands: let PIL try, and explain
        return False


class PILImageReader(BaseReader):
    """2D pictures through MONAI's ``PILReader``: ``(x, y)`` grey or ``(x, y, c)`` colour, identity affine.

    >>> PILImageReader().verify_suffix("slide.png")
    True
    """

    suffixes = PIL_SUFFIXES
    library = "PIL"

    def load_one(self, path: str) -> Loaded:
        """Read one picture."""
        from monai.data import PILReader

        reader = PILReader()
        image = reader.read(path)
        try:
            data, meta = reader.get_data(image)
        finally:
            image.close()
        channel_dim = None if np.isnan(meta["original_channel_dim"]) else -1
        return Loaded(np.array(data), np.eye(4), channel_dim, {"format": str(meta.get("format", "")).lower()})

    def explain(self, path: str, err: Exception) -> ImageReadError:
        """Name PIL's 'cannot identify image file'."""
        if type(err).__name__ == "UnidentifiedImageError":
            return ImageReadError(
                path,
                f"PIL recognises no picture in it; {describe_content(path)}",
                "give a PNG/JPEG/BMP/TIFF file, or rename the file to the suffix of its real format",
            )
        return super().explain(path, err)


class WholeSlideReader(BaseReader):
    """Whole-slide TIFF/SVS at one pyramid level through MONAI's ``WSIReader(backend="tifffile")``.

    Args:
        dtype: Data type of the returned array (``None``: uint8 as stored).
        level: Pyramid level to read whole (0 is full resolution; large slides want a higher one).
    """

    suffixes = WSI_SUFFIXES
    library = "tifffile"

    def __init__(self, dtype: np.dtype | type | str | None = np.float32, level: int = 0):
        super().__init__(dtype)
        if not isinstance(level, int) or level < 0:
            raise ValueError(f"level must be an int >= 0, got {level!r}")
        self.level = level

    def load_one(self, path: str) -> Loaded:
        """Read one slide level."""
        try:
            import tifffile
            from monai.data import WSIReader
        except ImportError as err:
            raise ImageReadError(
                path, "reading whole-slide images needs tifffile", _install_hint("tifffile")
            ) from err
        with tifffile.TiffFile(path) as tif:
            levels = tif.series[0].levels
            if self.level >= len(levels):
                raise ImageReadError(
                    path,
                    f"level {self.level} was asked for, the slide has {len(levels)} level(s)",
                    "use a lower level",
                )
            if self.level > 0:
                # MONAI's tifffile backend counts levels as TIFF pages but reads tifffile's pyramid
                # levels, which differ in SVS (thumbnail page) and SubIFD pyramids: read the level here.
                array = levels[self.level].asarray()
                array = array[..., None] if array.ndim == 2 else array[..., :3]
                return Loaded(np.swapaxes(array, 0, 1), np.eye(4), -1, {"format": "wsi", "level": self.level})
        reader = WSIReader(backend="tifffile", level=0, channel_dim=-1)
        slide = reader.read(path)
        try:
            patch, _ = reader.get_data(slide)
        finally:
            slide.close()
        array = np.swapaxes(np.asarray(patch), 0, 1)  # (H, W, C) -> (W, H, C)
        return Loaded(array, np.eye(4), -1, {"format": "wsi", "level": 0})


class HDF5Reader(BaseReader):
    """Arrays in HDF5 files (PatchCamelyon): ``file.h5``, ``file.h5#dataset`` or ``file.h5#dataset[i]``.

    ``file.h5`` alone reads the file's only dataset. ``[i]`` takes item ``i`` along the first axis.
    An item of shape ``(H, W)`` or ``(H, W, C)`` with C in 1, 3, 4 is a picture and is returned as
    ``(W, H[, C])`` like PIL's; other arrays come as stored, without a channel axis.

    >>> HDF5Reader().verify_suffix("camelyonpatch_level_2_split_valid_x.h5#x[3]")
    True
    """

    suffixes = HDF5_SUFFIXES
    library = "h5py"

    def verify_suffix(self, filename) -> bool:
        """HDF5 file names, with or without a ``#dataset[index]`` part."""
        from monai.utils import ensure_tuple

        return all(_HDF5_PATH.match(str(name)) for name in ensure_tuple(filename))

    def load_one(self, path: str) -> Loaded:
        """Read one dataset, or one item of it."""
        try:
            import h5py
        except ImportError as err:
            raise ImageReadError(path, "reading HDF5 files needs h5py", _install_hint("h5py")) from err
        match = _HDF5_PATH.match(path)
        file, name, index = match["file"], match["dataset"], match["index"]
        with h5py.File(file, "r") as handle:
            names: list[str] = []
            handle.visititems(lambda key, obj: names.append(key) if isinstance(obj, h5py.Dataset) else None)
            if not name:
                if len(names) != 1:
                    raise ImageReadError(
                        path,
                        f"the file holds {len(names)} datasets ({', '.join(names[:8])})",
                        f"name one: {file}#<dataset> or {file}#<dataset>[<index>]",
                    )
                name = names[0]
            if name not in names:
                raise ImageReadError(
                    path, f"no dataset {name!r}; it holds {', '.join(names[:8])}", "use one of these"
                )
            dataset = handle[name]
            if index is None:
                array = dataset[()]
            elif not -len(dataset) <= int(index) < len(dataset):
                raise ImageReadError(
                    path,
                    f"index {index} is out of range for {name!r} of length {len(dataset)}",
                    "use a valid index",
                )
            else:
                array = dataset[int(index)]
        array = np.asarray(array)
        picture = array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3, 4))
        if picture:
            array = np.swapaxes(array, 0, 1)
        channel_dim = -1 if picture and array.ndim == 3 else None
        return Loaded(array, np.eye(4), channel_dim, {"format": "hdf5", "dataset": name})

    def explain(self, path: str, err: Exception) -> ImageReadError:
        """Name 'not an HDF5 file'."""
        if isinstance(err, OSError):
            file = _HDF5_PATH.match(path)["file"]
            return ImageReadError(
                path,
                f"h5py cannot open it as HDF5 ({err}); {describe_content(file)}",
                "give a complete HDF5 file (a partial download is a common cause)",
            )
        return super().explain(path, err)


class NumpyArrayReader(BaseReader):
    """.npy/.npz arrays through MONAI's ``NumpyReader``: as stored, identity affine.

    An .npz holding several arrays gives them as channels.
    """

    suffixes = NUMPY_SUFFIXES
    library = "numpy"

    def load_one(self, path: str) -> Loaded:
        """Read one array file (all arrays of an .npz stacked on a new first axis, as MONAI does)."""
        from monai.data import NumpyReader

        reader = NumpyReader()
        data, meta = reader.get_data(reader.read(path))
        if np.isnan(meta["original_channel_dim"]):
            return Loaded(np.asarray(data), np.eye(4), None, {"format": "numpy"})
        return Loaded(np.moveaxis(np.asarray(data), 0, -1), np.eye(4), -1, {"format": "numpy"})
