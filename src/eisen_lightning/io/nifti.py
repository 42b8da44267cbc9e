"""NIfTI-1 and NIfTI-2 (.nii, .nii.gz) through nibabel, with faster gzip inflation.

Why not MONAI's ``NibabelReader`` as it is: through ``LoadImage`` it costs ~9x nibabel on an
uncompressed 128^3 volume, because its NumPy array is copied into C order (see ``base.py``), and
it reads .nii.gz through Python's ``gzip`` module, where ~97% of the time is spent inflating.

What this reader changes, and nothing more:

* the array reaches ``LoadImage`` as a tensor in the file's own (Fortran) order: no copy;
* a .nii.gz file is inflated with ``isal`` (ISA-L, 1.5-2x faster than zlib, same bytes) when that
  package is installed, else with Python's ``gzip``. ``indexed_gzip`` is deliberately bypassed:
  once installed, nibabel routes whole-volume reads through it, 2-2.7x slower;
* the voxel block is read straight into the array (see :func:`read_nifti`).

Everything else is nibabel's: header parsing, NIfTI-2, byte order, scaling (``scl_slope``/``scl_inter``)
and the affine (``header.get_best_affine()``, what ``img.affine`` is: the sform when ``sform_code > 0``,
else the qform when ``qform_code > 0``, else the pixdim-only fall-back, exactly as nibabel defines it).
"""

from __future__ import annotations

import gzip
import zlib

import numpy as np

from eisen_lightning.io.base import BaseReader, Loaded
from eisen_lightning.io.errors import ImageReadError, describe_content

try:  # optional: faster inflate; nibabel's own gzip path is used without it
    from isal import igzip as _igzip
except ImportError:  # pragma: no cover - depends on the environment
    _igzip = None

NIFTI_SUFFIXES = ("nii", "nii.gz")


class NiftiReader(BaseReader):
    """Read .nii and .nii.gz files (NIfTI-1 or NIfTI-2, either byte order) as ``x, y, z[, t/c]`` arrays.

    A 4D file's fourth axis becomes the channel axis (MONAI's convention for NIfTI); a 5D vector
    file ``(x, y, z, 1, c)`` drops the singleton time axis.

    Args:
        dtype: Data type of the returned array; ``None`` keeps the file's (scaled) type.

    >>> NiftiReader().verify_suffix("ct.nii.gz"), NiftiReader().verify_suffix("ct.mha")
    (True, False)
    """

    suffixes = NIFTI_SUFFIXES
    library = "nibabel"

    def load_one(self, path: str) -> Loaded:
        """Read one NIfTI file."""
        header, array = read_nifti(path)
        if array.ndim == 5 and array.shape[3] == 1:
            array = array[:, :, :, 0, :]
        channel_dim = -1 if array.ndim > 3 else None
        meta = {
            "format": "nifti2" if type(header).__name__.startswith("Nifti2") else "nifti1",
            "qform_code": int(header["qform_code"]),
            "sform_code": int(header["sform_code"]),
        }
        return Loaded(
            np.asarray(array), np.asarray(header.get_best_affine(), dtype=np.float64), channel_dim, meta
        )

    def explain(self, path: str, err: Exception) -> ImageReadError:
        """Name the usual NIfTI failures: truncated data, broken gzip, not a NIfTI header."""
        text = str(err)
        if isinstance(err, EOFError) or "end-of-stream" in text or "Expected" in text and "bytes" in text:
            return ImageReadError(
                path,
                "the file is truncated: it ends before all voxels are stored (an interrupted copy, download)",
                "copy, download or export the file again",
            )
        invalid = type(err).__name__ in ("ImageFileError", "WrapStructError", "HeaderDataError")
        if invalid or isinstance(err, gzip.BadGzipFile | zlib.error) or "gzip" in text.lower():
            return ImageReadError(
                path,
                f"it is not a valid NIfTI file ({text.splitlines()[0] if text else type(err).__name__}); "
                f"{describe_content(path)}",
                "give a .nii or .nii.gz image, or rename the file to the suffix of its real format",
            )
        return super().explain(path, err)


def read_nifti(path: str) -> tuple:
    """``(header, array)`` of a single-file NIfTI: nibabel's header, voxels read straight into the array.

    nibabel's ``ArrayProxy`` reads into a zero-filled ``bytearray`` through its opener machinery,
    which costs ~0.6 ms more per 128^3 volume than reading into an uninitialised array: alone more
    than the speed budget (benchmarks/io_readers.py). So only the read of the voxel block is ours;
    header parsing, data type and byte order, scaling and the affine stay nibabel's.
    """
    import nibabel as nib
    from nibabel.volumeutils import apply_read_scaling

    with open(path, "rb") as raw:  # the content decides, not the suffix: some tools gzip a ".nii"
        gz = raw.read(2) == b"\x1f\x8b"
    opener = (_igzip.open if _igzip is not None else gzip.open) if gz else open
    with opener(path, "rb") as handle:
        head = handle.read(4)
        handle.seek(0)
        two = 540 in (int.from_bytes(head, "little"), int.from_bytes(head, "big"))  # sizeof_hdr
        header = (nib.Nifti2Header if two else nib.Nifti1Header).from_fileobj(handle, check=True)
        if header["magic"].item() not in (b"n+1", b"n+2"):
            raise ImageReadError(
                path,
                f"its header is that of a .hdr/.img pair (magic {header['magic'].item()!r}), not of a .nii",
                "read the pair through its .hdr file, or convert it to .nii.gz",
            )
        offset = int(header.get_data_offset())
        handle.read(max(0, offset - handle.tell()))
        array = np.empty(header.get_data_shape(), dtype=header.get_data_dtype(), order="F")
        _read_into(handle, array)
    slope, inter = header.get_slope_inter()
    if slope is not None and (slope != 1 or (inter or 0) != 0):
        array = apply_read_scaling(array, slope, inter)
    return header, array


def _read_into(handle, array: np.ndarray) -> None:
    view = memoryview(array.reshape(-1, order="A")).cast("B")
    done = 0
    while done < len(view):
        count = handle.readinto(view[done:])
        if not count:
            raise EOFError(f"Expected {len(view)} bytes of voxel data, got {done} bytes")
        done += count
