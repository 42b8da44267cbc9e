"""ITK formats (.mha, .mhd + .raw, .nrrd, .nhdr, ...) through SimpleITK.

MONAI's ``ITKReader`` needs the separate ``itk`` package (hundreds of MB); SimpleITK is already a
dependency and wraps the same ITK ImageIO classes, so this reader is the same idea on SimpleITK.
Its array is a zero-copy view of SimpleITK's buffer (kept alive by the array itself), transposed to
``x, y, z``, and its affine is ITK's LPS geometry converted to RAS, as MONAI's ``ITKReader`` does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from eisen_lightning.io.base import BaseReader, Loaded
from eisen_lightning.io.errors import ImageReadError, describe_content
from eisen_lightning.io.itk_raw import read_raw

SITK_SUFFIXES = (
    "mha",
    "mhd",
    "nrrd",
    "nhdr",
    "gipl",
    "gipl.gz",
    "vtk",
    "hdr",
    "img",
    "nia",
    "mnc",
)
# Header formats whose voxels live in a separate file, and the header field that names it.
_DETACHED = {".mhd": r"^\s*ElementDataFile\s*=\s*(.+?)\s*$", ".nhdr": r"^\s*data ?file\s*:\s*(.+?)\s*$"}
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_IMAGE_IO = {"mha": "MetaImageIO", "mhd": "MetaImageIO", "nrrd": "NrrdImageIO", "nhdr": "NrrdImageIO"}


@contextmanager
def quiet_itk() -> Iterator[None]:
    """Silence ITK's stderr warnings (non-uniform sampling, no series found): we report those ourselves."""
    import SimpleITK as sitk

    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def sitk_pixel_type(dtype: np.dtype | None, components: int = 1) -> int:
    """The SimpleITK pixel type ITK should cast to while reading: float32/float64, else the file's."""
    import SimpleITK as sitk

    if dtype is None or np.dtype(dtype) not in (np.float32, np.float64):
        return sitk.sitkUnknown
    if components > 1:
        return sitk.sitkVectorFloat32 if np.dtype(dtype) == np.float32 else sitk.sitkVectorFloat64
    return sitk.sitkFloat32 if np.dtype(dtype) == np.float32 else sitk.sitkFloat64


class _KeepAlive:
    """Expose a SimpleITK buffer to NumPy while holding the image, so the view never dangles."""

    def __init__(self, image, view: np.ndarray):
        self.image = image
        interface = dict(view.__array_interface__)
        interface["data"] = (interface["data"][0], False)  # writable: the image is ours alone
        self.__array_interface__ = interface


def array_view(image) -> np.ndarray:
    """SimpleITK image -> array ``x, y[, z][, c]`` sharing the image's memory (no copy)."""
    import SimpleITK as sitk

    view = sitk.GetArrayViewFromImage(image)  # (z, y, x[, c]), C order
    array = np.asarray(_KeepAlive(image, view))
    spatial = image.GetDimension()
    order = tuple(range(spatial))[::-1] + tuple(range(spatial, array.ndim))
    return array.transpose(order)


def sitk_affine(image) -> np.ndarray:
    """The 4x4 voxel-to-RAS affine of a SimpleITK image or header (ITK's LPS geometry, converted).

    ``image`` is a ``SimpleITK.Image`` or an ``ImageFileReader`` after ``ReadImageInformation``.

    Images of more than 3 dimensions use their first three; 2D images get a unit z column.
    """
    dim = image.GetDimension()
    rank = min(dim, 3)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(dim, dim)[:rank, :rank]
    affine = np.eye(4)
    affine[:rank, :rank] = direction * np.asarray(image.GetSpacing()[:rank], dtype=np.float64)
    affine[:rank, 3] = image.GetOrigin()[:rank]
    return _LPS_TO_RAS @ affine


def check_detached_data(path: str) -> None:
    """Fail clearly when a header (.mhd, .nhdr) names a data file that is not there."""
    suffix = Path(path).suffix.lower()
    if suffix not in _DETACHED:
        return
    with open(path, "rb") as handle:
        text = handle.read(8192).decode("latin-1")
    match = re.search(_DETACHED[suffix], text, re.IGNORECASE | re.MULTILINE)
    if match is None:
        raise ImageReadError(
            path,
            f"the header has no data-file field; {describe_content(path)}",
            "give a complete MetaImage (.mhd) or detached NRRD (.nhdr) header",
        )
    name = match.group(1).strip()
    if name.upper().startswith(("LOCAL", "LIST")) or "%" in name:
        return  # data follows the header, or a file-list pattern that ITK resolves itself
    data = Path(name) if os.path.isabs(name) else Path(path).parent / name
    if not data.exists():
        raise ImageReadError(
            path,
            f"the header's voxel data file {data.name} is missing (expected at {data})",
            f"copy {data.name} next to the header; a .mhd/.nhdr header holds no voxels itself",
        )


class SimpleITKReader(BaseReader):
    """Read the formats of ITK's ImageIO through SimpleITK: MetaImage, NRRD, GIPL, VTK, Analyze, MINC.

    NIfTI files are better read by :class:`~eisen_lightning.io.NiftiReader` (nibabel's sform/qform
    rules); this reader reads them too when asked directly (``SimpleITKReader(suffixes=("nii",))``).

    Args:
        dtype: Data type of the returned array; ``None`` keeps the file's type.
        suffixes: The file suffixes to claim (without the dot).

    >>> SimpleITKReader().verify_suffix(["a.mha", "b.nrrd"])
    True
    """

    library = "SimpleITK"

    def __init__(
        self, dtype: np.dtype | type | str | None = np.float32, suffixes: tuple[str, ...] = SITK_SUFFIXES
    ):
        super().__init__(dtype)
        self.suffixes = tuple(s.lower().lstrip(".") for s in suffixes)

    def load_one(self, path: str) -> Loaded:
        """Read one file."""
        import SimpleITK as sitk

        check_detached_data(path)
        reader = sitk.ImageFileReader()
        reader.SetFileName(path)
        fmt = _format_name(path)
        if _looks_like(path, fmt):  # skip ITK's probing of every registered format
            reader.SetImageIO(_IMAGE_IO[fmt])
            fast = read_raw(path, fmt, reader)
            if fast is not None:
                return Loaded(fast[0], sitk_affine(fast[1]), None, {"format": fmt})
        image = reader.Execute()  # no cast while reading: the pixel type (vector or not) is not known yet
        del reader
        return image_to_loaded(image, {"format": fmt})

    def explain(self, path: str, err: Exception) -> ImageReadError:
        """Name the usual ITK failures: unknown content, unreadable data."""
        text = str(err)
        if "Unable to determine ImageIO reader" in text or "Could not create IO object" in text:
            return ImageReadError(
                path,
                f"ITK recognises no image format in it; {describe_content(path)}",
                "give an image file of the format its suffix says, or rename it to its real format",
            )
        if "ReadImageInformation" in text or "Read" in text:
            return ImageReadError(
                path,
                f"SimpleITK could not read it ({_itk_reason(text)}); {describe_content(path)}",
                "the file is probably truncated or damaged: export or download it again",
            )
        return super().explain(path, err)


def image_to_loaded(image, meta: dict) -> Loaded:
    """Wrap a SimpleITK image as a :class:`Loaded` (channel last for vector pixels and 4D images)."""
    array = array_view(image)
    rank = min(image.GetDimension(), 3)
    channel_dim = -1 if array.ndim > rank else None
    if image.GetDimension() > 3 and image.GetNumberOfComponentsPerPixel() > 1:
        raise ImageReadError(
            meta.get("path", "image"),
            "it is a 4D image of vector pixels, which has no single channel axis",
            "split it into 3D files first",
        )
    return Loaded(array, sitk_affine(image), channel_dim, meta)


def _format_name(path: str) -> str:
    name = path.lower()
    return name.rsplit(".", 2)[-2] if name.endswith(".gz") else name.rsplit(".", 1)[-1]


def _looks_like(path: str, fmt: str) -> bool:
    """Whether the file starts as a MetaImage or NRRD header (else ITK probes, and explains, itself)."""
    if fmt not in _IMAGE_IO:
        return False
    with open(path, "rb") as handle:
        head = handle.read(64)
    if _IMAGE_IO[fmt] == "NrrdImageIO":
        return head.startswith(b"NRRD")
    first = head.split(b"\n", 1)[0]
    return b"=" in first and first.split(b"=", 1)[0].strip().isalpha()


def _itk_reason(text: str) -> str:
    for line in text.splitlines():
        line = re.sub(r"^ITK ERROR: \w+\(0x[0-9a-f]+\): ", "", line.strip())
        if line and not line.startswith(("/", "Exception thrown", "sitk::ERROR")) and "itk::" not in line:
            return line[:200]
    return "ITK gave no reason"
