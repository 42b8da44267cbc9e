"""Writers: NIfTI through MONAI's ``NibabelWriter``, ITK formats through :class:`SimpleITKWriter`.

MONAI's ``ITKWriter`` needs the ``itk`` package; :class:`SimpleITKWriter` is the same
``ImageWriter`` on SimpleITK (RAS affine in, ITK's LPS geometry out), and :func:`register_writers`
makes MONAI's ``SaveImage``/``SaveImaged`` use it for .mha, .mhd, .nrrd, .nhdr.
DICOM output (series or DICOM SEG) is not written: see docs/io.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch
from monai.data import ImageWriter, MetaTensor
from monai.data.image_writer import SUPPORTED_WRITERS, init, register_writer
from monai.utils import convert_data_type

from eisen_lightning.io.base import has_suffix

SITK_WRITE_SUFFIXES = ("mha", "mhd", "nrrd", "nhdr")
NIFTI_WRITE_SUFFIXES = ("nii", "nii.gz")
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class SimpleITKWriter(ImageWriter):
    """Write an array and its RAS affine to any format SimpleITK writes (.mha, .nrrd, .nii, ...).

    Used like MONAI's writers: ``set_data_array``, ``set_metadata``, ``write``.

    Args:
        output_dtype: Data type written (``None`` keeps the array's).
        kwargs: Passed to ``ImageWriter``.

    >>> import numpy as np, tempfile, os
    >>> writer = SimpleITKWriter(output_dtype=np.int16)
    >>> writer.set_data_array(np.zeros((1, 4, 5, 6)), channel_dim=0)
    >>> writer.set_metadata({"affine": np.diag([2.0, 2.0, 3.0, 1.0])}, resample=False)
    >>> writer.write(os.path.join(tempfile.mkdtemp(), "zeros.mha"))
    """

    def __init__(self, output_dtype: np.dtype | type | str | None = np.float32, **kwargs):
        super().__init__(output_dtype=output_dtype, affine=None, channel_dim=0, **kwargs)

    def set_data_array(
        self, data_array, channel_dim: int | None = 0, squeeze_end_dims: bool = True, **kwargs
    ) -> None:
        """Take a channel-first (``channel_dim=0``) or channel-less array; stored channel-last."""
        n_channels = data_array.shape[channel_dim] if channel_dim is not None else 0
        self.data_obj = self.convert_to_channel_last(
            data=data_array,
            channel_dim=channel_dim,
            squeeze_end_dims=squeeze_end_dims,
            spatial_ndim=kwargs.pop("spatial_ndim", 3),
        )
        self.channel_dim = -1 if not (squeeze_end_dims and n_channels <= 1) and n_channels >= 1 else None
        if not squeeze_end_dims and n_channels < 1:
            self.data_obj = self.data_obj[..., 0]

    def set_metadata(self, meta_dict: Mapping | None = None, resample: bool = True, **options) -> None:
        """Take ``affine`` (and, to resample, ``original_affine``, ``spatial_shape``) from ``meta_dict``."""
        original_affine, affine, spatial_shape = self.get_meta_info(meta_dict)
        if self.output_dtype is None and hasattr(self.data_obj, "dtype"):
            self.output_dtype = self.data_obj.dtype
        self.data_obj, self.affine = self.resample_if_needed(
            data_array=self.data_obj,
            affine=affine,
            target_affine=original_affine if resample else None,
            output_spatial_shape=spatial_shape if resample else None,
            mode=options.pop("mode", "bilinear"),
            padding_mode=options.pop("padding_mode", "border"),
            align_corners=options.pop("align_corners", False),
            dtype=options.pop("dtype", np.float64),
        )

    def write(
        self, filename: str | os.PathLike, verbose: bool = False, compress: bool = True, **kwargs
    ) -> None:
        """Write the file; ``compress`` asks for the format's compression (zlib for .mha/.nrrd)."""
        import SimpleITK as sitk

        super().write(filename, verbose=verbose)
        image = self.create_backend_obj(self.data_obj, self.channel_dim, self.affine, self.output_dtype)
        sitk.WriteImage(image, os.fspath(filename), useCompression=compress)

    @classmethod
    def create_backend_obj(cls, data_array, channel_dim=None, affine=None, dtype=None, **kwargs):
        """A SimpleITK image from a channel-last array ``x, y[, z][, c]`` and a RAS affine.

        Raises:
            ValueError: When the affine is sheared (ITK stores only orthogonal directions).
        """
        import SimpleITK as sitk

        array = np.asarray(convert_data_type(data_array, np.ndarray)[0])
        if dtype is not None:
            array = array.astype(np.dtype(dtype), copy=False)
        if array.dtype == bool:
            array = array.astype(np.uint8)
        vector = channel_dim is not None
        rank = array.ndim - vector
        order = tuple(range(rank))[::-1] + ((rank,) if vector else ())
        image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(order)), isVector=vector)
        affine = (
            np.eye(4) if affine is None else np.asarray(convert_data_type(affine, np.ndarray)[0], dtype=float)
        )
        origin, spacing, direction = itk_geometry(affine, rank)
        image.SetOrigin(origin)
        image.SetSpacing(spacing)
        image.SetDirection(direction)
        return image


def itk_geometry(affine: np.ndarray, rank: int) -> tuple[tuple, tuple, tuple]:
    """RAS affine -> ITK ``(origin, spacing, direction)`` in LPS, for a ``rank``-D image.

    Raises:
        ValueError: For a sheared (non-orthogonal) affine, which ITK cannot store.
    """
    full = np.eye(4)
    size = min(affine.shape[0] - 1, 3)
    full[:size, :size], full[:size, 3] = affine[:size, :size], affine[:size, -1]
    lps = _LPS_TO_RAS @ full
    matrix = lps[:rank, :rank]
    spacing = np.sqrt((matrix**2).sum(axis=0))
    direction = matrix / spacing
    if not np.allclose(direction.T @ direction, np.eye(rank), atol=1e-4):
        raise ValueError(
            "SimpleITKWriter: the affine is sheared (its axes are not orthogonal), which ITK formats cannot "
            f"store; save as .nii/.nii.gz instead, or resample first. Affine:\n{affine}"
        )
    return tuple(lps[:rank, 3].tolist()), tuple(spacing.tolist()), tuple(direction.flatten().tolist())


def register_writers() -> None:
    """Make MONAI's ``SaveImage``/``SaveImaged`` write .mha, .mhd, .nrrd, .nhdr with SimpleITK.

    Idempotent; called when ``eisen_lightning.io`` is imported.
    """
    if not SUPPORTED_WRITERS:
        init()
    for suffix in SITK_WRITE_SUFFIXES:
        current = SUPPORTED_WRITERS.get(suffix, ())
        if not current or current[0] is not SimpleITKWriter:
            register_writer(suffix, SimpleITKWriter)


def save(
    data: np.ndarray | torch.Tensor,
    path: str | os.PathLike,
    like: str | os.PathLike | np.ndarray | torch.Tensor | None = None,
    channel_dim: int | None = None,
    dtype: np.dtype | type | str | None = None,
    mode: str | None = None,
) -> str:
    """Write an array (a prediction) to ``path``, on the grid of a reference image.

    Args:
        data: ``x, y[, z]`` array, or a ``MetaTensor`` as MONAI transforms leave it (channel first).
        path: Output file; the suffix picks the format (.nii, .nii.gz, .mha, .mhd, .nrrd, .nhdr).
        like: The reference grid: an image path (its affine and shape), a 4x4 RAS affine, or a
            ``MetaTensor``; ``None`` uses ``data``'s own affine. A ``MetaTensor`` ``data`` whose affine or
            shape differ from the reference is resampled onto it (``Orientationd``/``Spacingd`` undone).
        channel_dim: Channel axis of ``data``; default 0 for a ``MetaTensor``, none for other arrays.
        dtype: Data type written; ``None`` keeps ``data``'s.
        mode: Interpolation when resampling: ``nearest`` (default for integer data) or ``bilinear``.

    Returns:
        The path written.

    Raises:
        ValueError: Unsupported suffix, or an array whose shape does not match the reference grid.

    >>> import tempfile
    >>> from pathlib import Path
    >>> import nibabel as nib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     mask = np.zeros((4, 5, 6), dtype=np.uint8)
    ...     path = save(mask, Path(folder) / "mask.nii.gz", like=np.diag([2.0, 2.0, 3.0, 1.0]))
    ...     written = nib.load(path)
    ...     zooms = [float(size) for size in written.header.get_zooms()]
    ...     print(Path(path).name, written.shape, zooms, written.get_data_dtype())
    mask.nii.gz (4, 5, 6) [2.0, 2.0, 3.0] uint8
    """
    from monai.data import NibabelWriter

    path = os.fspath(path)
    if has_suffix(path, NIFTI_WRITE_SUFFIXES):
        writer_class = NibabelWriter
    elif has_suffix(path, SITK_WRITE_SUFFIXES):
        writer_class = SimpleITKWriter
    else:
        raise ValueError(
            f"save: cannot write {path!r}: the suffix must be one of "
            f"{', '.join('.' + s for s in NIFTI_WRITE_SUFFIXES + SITK_WRITE_SUFFIXES)}"
        )
    is_meta = isinstance(data, MetaTensor)
    channel = (0 if is_meta else None) if channel_dim is None else channel_dim
    array = data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data))
    target_affine, target_shape = _reference(like, data)
    spatial = tuple(s for i, s in enumerate(array.shape) if channel is None or i != channel % array.ndim)
    current_affine = data.affine.numpy() if is_meta else target_affine
    if not is_meta and target_shape is not None and tuple(spatial) != tuple(target_shape):
        raise ValueError(
            f"save: the array's spatial shape {tuple(spatial)} differs from the reference grid "
            f"{tuple(target_shape)}; "
            "pass a MetaTensor (it is resampled onto the reference) or an array on the reference grid"
        )
    out_dtype = np.dtype(dtype) if dtype is not None else torch.empty(0, dtype=array.dtype).numpy().dtype
    if out_dtype == np.dtype(bool):
        out_dtype = np.dtype(np.uint8)
    resample = not np.allclose(current_affine, target_affine, atol=1e-5) or (
        target_shape is not None and tuple(spatial) != tuple(target_shape)
    )
    interpolation = mode or ("nearest" if np.issubdtype(out_dtype, np.integer) else "bilinear")
    writer = writer_class(output_dtype=out_dtype)
    writer.set_data_array(
        array.detach().cpu().as_tensor() if is_meta else array.detach().cpu(), channel_dim=channel
    )
    if not resample:  # the same grid: MONAI skips the resampling when affine and shape agree
        target_affine, target_shape = current_affine, tuple(spatial)
    # MONAI's writers fail on 2D arrays without an output shape (``None >= 0`` in its resampler),
    # so the shape is always given; an unchanged grid is then returned as it is, not interpolated.
    meta = {"affine": current_affine, "original_affine": target_affine, "spatial_shape": target_shape}
    writer.set_metadata(meta, resample=True, mode=interpolation)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    writer.write(path)
    return path


def _reference(like, data) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """The target affine (4x4 RAS) and spatial shape (or ``None``) named by ``like``."""
    if like is None:
        if not isinstance(data, MetaTensor):
            raise ValueError(
                "save: give like= (a reference image, an affine or a MetaTensor) for a plain array"
            )
        like = data
    if isinstance(like, MetaTensor):
        shape = like.meta.get("spatial_shape")
        affine = like.meta.get("original_affine", like.affine)
        return _as_affine(affine), None if shape is None else tuple(int(s) for s in np.asarray(shape))
    if isinstance(like, str | os.PathLike):
        from eisen_lightning.io.auto import load

        reference = load(like, dtype=None)
        return _as_affine(reference.affine), tuple(reference.shape[1:])
    return _as_affine(like), None


def _as_affine(value) -> np.ndarray:
    affine = np.asarray(convert_data_type(value, np.ndarray)[0], dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"save: an affine must be 4x4, got shape {affine.shape}")
    return affine
