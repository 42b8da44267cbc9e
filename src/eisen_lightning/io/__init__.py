"""Image readers and writers that plug into MONAI's ``LoadImage`` and ``SaveImage``.

Every format gives the same array and affine for the same scan: spatial axes ``x, y[, z]`` (channel
last when the file has one), and a 4x4 voxel-to-RAS affine. See docs/io.md.

>>> from monai.transforms import LoadImaged
>>> from eisen_lightning.io import readers
>>> load = LoadImaged(["image", "label"], reader=readers(), ensure_channel_first=True)
"""

from eisen_lightning.io.auto import AutoReader, load, readers
from eisen_lightning.io.base import BaseReader, Loaded
from eisen_lightning.io.dicom import DicomReader
from eisen_lightning.io.errors import ImageReadError
from eisen_lightning.io.formats2d import HDF5Reader, NumpyArrayReader, PILImageReader, WholeSlideReader
from eisen_lightning.io.nifti import NiftiReader
from eisen_lightning.io.sitk_reader import SimpleITKReader
from eisen_lightning.io.writers import SimpleITKWriter, register_writers, save

register_writers()

__all__ = [
    "AutoReader",
    "BaseReader",
    "DicomReader",
    "HDF5Reader",
    "ImageReadError",
    "Loaded",
    "NiftiReader",
    "NumpyArrayReader",
    "PILImageReader",
    "SimpleITKReader",
    "SimpleITKWriter",
    "WholeSlideReader",
    "load",
    "readers",
    "register_writers",
    "save",
]
