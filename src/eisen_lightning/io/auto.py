"""One reader for every format, the list to hand to ``LoadImage``, and ``load(path)``.

``AutoReader`` claims every path in ``read`` and picks the format reader in ``get_data``, from the
suffix or, for a folder, a suffix-less or an unknown file, from the content. So an unsupported or
broken file always ends in an :class:`ImageReadError` that names it, rather than in ``LoadImage``'s
"cannot find a suitable reader" followed by every reader's traceback.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np

from eisen_lightning.io.base import BaseReader, Loaded, existing_part, has_suffix
from eisen_lightning.io.dicom import DicomReader, is_dicom_file
from eisen_lightning.io.errors import ImageReadError, describe_content, missing_path_error
from eisen_lightning.io.formats2d import (
    HDF5Reader,
    NumpyArrayReader,
    PILImageReader,
    WholeSlideReader,
    is_whole_slide,
)
from eisen_lightning.io.nifti import NiftiReader
from eisen_lightning.io.sitk_reader import SimpleITKReader

# Magic numbers of the formats a suffix-less (or oddly named) file is recognised by.
_MAGIC = (
    (0, b"\x89PNG", "pil"),
    (0, b"\xff\xd8\xff", "pil"),
    (0, b"BM", "pil"),
    (0, b"\x89HDF", "hdf5"),
    (0, b"ObjectType", "sitk"),
    (0, b"NRRD", "sitk"),
    (0, b"\x93NUMPY", "numpy"),
)


class AutoReader(BaseReader):
    """Every supported format behind one MONAI ``ImageReader``.

    ====================================  ======================================================
    input                                 read by
    ====================================  ======================================================
    ``.nii``, ``.nii.gz``                 :class:`NiftiReader` (nibabel)
    folder, ``.dcm``, list of DICOM files :class:`DicomReader` (pydicom; series via SimpleITK)
    ``.mha``, ``.mhd``, ``.nrrd``, ...    :class:`SimpleITKReader`
    ``.png``, ``.jpg``, ``.bmp``, TIFF    :class:`PILImageReader` (MONAI's PILReader)
    tiled/pyramidal TIFF, ``.svs``        :class:`WholeSlideReader` (MONAI's WSIReader, tifffile)
    ``.h5`` (``#dataset[index]``)         :class:`HDF5Reader` (h5py)
    ``.npy``, ``.npz``                    :class:`NumpyArrayReader` (MONAI's NumpyReader)
    ====================================  ======================================================

    Several paths are stacked as channels (they must share one grid), except several DICOM
    files, which are one series.

    Args:
        dtype: Data type of the returned arrays; ``None`` keeps each file's type.
        series_uid: SeriesInstanceUID to read from DICOM folders holding several series.
        wsi_level: Pyramid level read from whole-slide images.
    """

    library = "eisen_lightning.io"

    def __init__(
        self,
        dtype: np.dtype | type | str | None = np.float32,
        series_uid: str | None = None,
        wsi_level: int = 0,
    ):
        super().__init__(dtype)
        self.nifti = NiftiReader(dtype)
        self.dicom = DicomReader(dtype, series_uid=series_uid)
        self.sitk = SimpleITKReader(dtype)
        self.pil = PILImageReader(dtype)
        self.wsi = WholeSlideReader(dtype, level=wsi_level)
        self.hdf5 = HDF5Reader(dtype)
        self.numpy = NumpyArrayReader(dtype)
        self.suffixes = tuple(
            dict.fromkeys(
                s
                for r in (self.nifti, self.dicom, self.sitk, self.pil, self.wsi, self.hdf5, self.numpy)
                for s in r.suffixes
            )
        )

    def claims(self, paths: tuple[str, ...]) -> bool:
        """Every path: one that no format reads gets a clear error from ``get_data``."""
        return True

    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        """Whether a format reader takes these names (for MONAI's suffix-based selection)."""
        names = [str(n) for n in ((filename,) if isinstance(filename, str | os.PathLike) else filename)]
        return all(
            os.path.isdir(n) or self.hdf5.verify_suffix(n) or has_suffix(n, self.suffixes) for n in names
        )

    def groups(self, paths: tuple[str, ...]) -> list[str | tuple[str, ...]]:
        """DICOM files together form one series; anything else is one channel per path."""
        if len(paths) > 1 and all(self._is_dicom_slice(p) for p in paths):
            return [paths]
        return list(paths)

    def _is_dicom_slice(self, path: str) -> bool:
        return os.path.isfile(path) and (has_suffix(path, self.dicom.suffixes) or is_dicom_file(path))

    def pick(self, path: str) -> BaseReader:
        """The reader for one existing path (by suffix, else by content)."""
        if os.path.isdir(path):
            return self.dicom
        if self.nifti.verify_suffix(path):
            return self.nifti
        if self.hdf5.verify_suffix(path):
            return self.hdf5
        for reader in (self.dicom, self.sitk, self.numpy):
            if has_suffix(path, reader.suffixes):
                return reader
        if has_suffix(path, self.wsi.suffixes):
            return self.wsi if is_whole_slide(path) else self.pil
        if has_suffix(path, self.pil.suffixes):
            return self.pil
        return self._by_content(path)

    def _by_content(self, path: str) -> BaseReader:
        if is_dicom_file(path):
            return self.dicom
        with open(path, "rb") as handle:
            head = handle.read(352)
        for offset, magic, name in _MAGIC:
            if head[offset : offset + len(magic)] == magic:
                return getattr(self, name)
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return self.wsi if is_whole_slide(path) else self.pil
        if head[344:348] in (b"n+1\x00", b"n+2\x00") or head[4:8] == b"n+2\x00":
            raise ImageReadError(path, "it is a NIfTI file without the .nii suffix", "rename it to .nii")
        raise ImageReadError(
            path,
            f"its format is not supported ({describe_content(path)})",
            "give one of: a DICOM file or folder, .nii/.nii.gz, .mha/.mhd/.nrrd, .png/.jpg/.bmp/.tif, "
            ".svs, .h5, .npy/.npz",
        )

    def load_checked(self, group: str | tuple[str, ...]) -> Loaded:
        """Check the path exists, pick its reader, and let that reader read and explain."""
        if isinstance(group, tuple):
            return self.dicom.load_checked(group)
        if not os.path.exists(existing_part(group)):
            raise missing_path_error(existing_part(group))
        return self.pick(group).load_checked(group)


def readers(
    dtype: np.dtype | type | str | None = np.float32, series_uid: str | None = None, wsi_level: int = 0
) -> list[BaseReader]:
    """The readers to give MONAI's ``LoadImage``/``LoadImaged``: every supported format, one convention.

    Args:
        dtype: Data type of the arrays; use the same as ``LoadImage(dtype=...)`` (float32 by default),
            so that ``LoadImage`` has nothing left to convert.
        series_uid: SeriesInstanceUID to read from DICOM folders holding several series.
        wsi_level: Pyramid level read from whole-slide images.

    Returns:
        A list to pass as ``reader=``. ``LoadImage`` tries the last reader first, so a reader of your
        own appended after these takes precedence.

    >>> from monai.transforms import LoadImaged
    >>> load = LoadImaged(["image", "label"], reader=readers(), ensure_channel_first=True)
    """
    return [AutoReader(dtype=dtype, series_uid=series_uid, wsi_level=wsi_level)]


@functools.lru_cache(maxsize=8)
def _loader(dtype: str | None, series_uid: str | None, wsi_level: int, channel_first: bool):
    from monai.transforms import LoadImage

    return LoadImage(
        reader=readers(dtype, series_uid, wsi_level),
        image_only=True,
        dtype=dtype,
        ensure_channel_first=channel_first,
    )


def load(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    dtype: np.dtype | type | str | None = np.float32,
    series_uid: str | None = None,
    wsi_level: int = 0,
    ensure_channel_first: bool = True,
):
    """Read an image, DICOM series or channel list as a MONAI ``MetaTensor`` (channel first).

    This is ``LoadImage(reader=readers(), ensure_channel_first=True)``: the same code path as the
    training pipelines, so ``meta["affine"]`` (RAS), ``original_affine``, ``spatial_shape`` and
    ``filename_or_obj`` are what ``Orientationd``, ``Spacingd`` and ``Invertd`` expect.

    Args:
        path: A file, a DICOM folder, or several files (DICOM slices of one series, or channels).
        dtype: Data type; ``None`` keeps the file's.
        series_uid: SeriesInstanceUID to read from a DICOM folder holding several series.
        wsi_level: Pyramid level read from whole-slide images.
        ensure_channel_first: Add or move the channel axis to the front (MONAI's ``EnsureChannelFirst``).

    Raises:
        ImageReadError: The path does not exist, or cannot be read; the message says why and what to do.

    >>> import tempfile
    >>> from pathlib import Path
    >>> import nibabel as nib
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "scan.nii.gz"
    ...     nib.save(nib.Nifti1Image(np.ones((4, 5, 6), np.int16), np.diag([2.0, 2.0, 3.0, 1.0])), path)
    ...     image = load(path)
    >>> tuple(image.shape), image.dtype, image.pixdim.tolist()
    ((1, 4, 5, 6), torch.float32, [2.0, 2.0, 3.0])
    """
    if isinstance(path, str | os.PathLike):
        target: str | tuple[str, ...] = os.fspath(path)
    else:
        target = tuple(os.fspath(p) for p in path)
    key = None if dtype is None else np.dtype(dtype).name
    return _loader(key, series_uid, wsi_level, ensure_channel_first)(target)
