"""What every reader of this package shares: lazy ``read``, one ``get_data``, one geometry convention.

The convention (see docs/io.md): spatial axes first in the order ``x, y[, z]`` (NIfTI's voxel order,
the order MONAI's ``NibabelReader`` returns), a channel axis last when the file has one, and a 4x4
``affine`` from voxel indices to RAS millimetres, whatever the format.

Two MONAI behaviours shape this base class, and both are deliberate:

* ``LoadImage`` catches every exception raised by ``reader.read`` and moves on to the next reader,
  ending with a generic "cannot find a suitable reader" and the tracebacks of all of them. It does
  not catch ``get_data``. So ``read`` here only claims the path (no I/O), and all reading and
  checking happens in ``get_data``, whose :class:`ImageReadError` reaches the user as raised.
* ``LoadImage`` turns a NumPy array into a tensor with ``np.ascontiguousarray``, which costs ~13 ms
  per 128^3 volume for the Fortran-ordered arrays of NIfTI and ITK files (and is why MONAI's
  ``NibabelReader`` costs ~9x nibabel on a .nii). A torch tensor passes through without a copy,
  so ``get_data`` returns a tensor that shares the reader's buffer, in whatever memory order the
  file had, already in the requested ``dtype``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import ImageReader
from monai.utils import ensure_tuple

from eisen_lightning.io.errors import ImageReadError, describe_content, missing_path_error

# The dtypes torch cannot hold, and the ones MONAI maps them to (monai.utils.type_conversion).
_HDF5_FILE = re.compile(r"^(.*?\.(?:h5|hdf5|he5))#", re.IGNORECASE)
_TORCH_UNSUPPORTED = {
    np.dtype("uint16"): np.int32,
    np.dtype("uint32"): np.int64,
    np.dtype("uint64"): np.int64,
}


@dataclass
class Pending:
    """What ``read`` returns: the claimed paths, read later by ``get_data``."""

    paths: tuple[str, ...]


@dataclass
class Loaded:
    """One file (or DICOM series) as read: array, RAS affine, channel axis and format extras.

    Attributes:
        array: Spatial axes first (``x, y[, z]``), then the channel axis when ``channel_dim`` is -1.
        affine: 4x4 voxel-to-RAS matrix (millimetres), also for 2D images.
        channel_dim: ``None`` (no channel axis) or ``-1``.
        meta: Extra metadata for this format: plain ``str``/``int``/``float`` values only, so that
            batches collate.
    """

    array: np.ndarray
    affine: np.ndarray
    channel_dim: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def lower_name(path: str | os.PathLike) -> str:
    """The lower-case file name, for suffix checks."""
    return Path(str(path)).name.lower()


def has_suffix(path: str | os.PathLike, suffixes: Sequence[str]) -> bool:
    """Whether the file name ends with one of ``suffixes`` (given without the dot, any case)."""
    name = lower_name(path)
    return any(name.endswith("." + suffix) for suffix in suffixes)


class BaseReader(ImageReader):
    """A MONAI ``ImageReader`` whose ``get_data`` does the work and raises :class:`ImageReadError`.

    Subclasses set ``suffixes`` and implement ``load_one(path) -> Loaded``; they may override
    ``claims`` (which paths they take), ``groups`` (which paths form one image) and ``explain``
    (how a library's exception becomes a clear error).

    Args:
        dtype: Data type of the returned array (``None`` keeps the file's type). Pass the same
            ``dtype`` as ``LoadImage``'s (float32 by default), so that ``LoadImage`` has nothing left
            to convert: its conversion would copy the volume into C order.
    """

    suffixes: tuple[str, ...] = ()
    library = "the reader"

    def __init__(self, dtype: np.dtype | type | str | None = np.float32):
        super().__init__()
        self.dtype = None if dtype is None else np.dtype(dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dtype={self.dtype})"

    # ---- the ImageReader API -------------------------------------------------------------------
    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        """Whether every file of ``filename`` has a suffix this reader reads."""
        return all(has_suffix(name, self.suffixes) for name in ensure_tuple(filename))

    def claims(self, paths: tuple[str, ...]) -> bool:
        """Whether ``read`` takes these paths (by name only: no I/O)."""
        return self.verify_suffix(paths)

    def read(self, data: Sequence[str | os.PathLike] | str | os.PathLike, **kwargs) -> Pending:
        """Claim ``data`` without reading it; ``get_data`` reads it.

        Raises:
            ValueError: When this reader does not read such files (``LoadImage`` then tries the next).
        """
        paths = tuple(str(p) for p in ensure_tuple(data))
        if not paths or not self.claims(paths):
            raise ValueError(f"{type(self).__name__} does not read {paths}")
        return Pending(paths)

    def get_data(self, img: Pending | Sequence[Pending]) -> tuple[torch.Tensor, dict]:
        """Read the claimed paths: one image, or several stacked as channels.

        Returns:
            ``(tensor, meta)``: the tensor shares the reader's buffer (no copy into C order); the meta
            dict has ``affine`` and ``original_affine`` (RAS), ``spatial_shape``, ``spacing``,
            ``original_channel_dim``, ``space`` and the format's extras.

        Raises:
            ImageReadError: For anything wrong with the input, naming the file, problem and fix.
        """
        pending = img if isinstance(img, Pending) else Pending(tuple(p for i in img for p in i.paths))
        items = [self.load_checked(group) for group in self.groups(pending.paths)]
        return finish(items, pending.paths, self.dtype)

    # ---- for subclasses ------------------------------------------------------------------------
    def groups(self, paths: tuple[str, ...]) -> list[str | tuple[str, ...]]:
        """Split the paths into images: by default each file is one image (one channel)."""
        return list(paths)

    def load_one(self, path: str | tuple[str, ...]) -> Loaded:  # pragma: no cover - abstract
        """Read one image."""
        raise NotImplementedError

    def explain(self, path: str, err: Exception) -> ImageReadError:
        """Turn a library exception into a clear error; subclasses map the failures they know."""
        return ImageReadError(
            path,
            f"{self.library} failed with {type(err).__name__}: {first_line(err)}; {describe_content(path)}",
            "check that the file is complete and of the format its name says (re-export or re-download it)",
        )

    def load_checked(self, group: str | tuple[str, ...]) -> Loaded:
        """``load_one`` with the path checked first and library errors explained."""
        for name in ensure_tuple(group):
            if not os.path.exists(existing_part(name)):
                raise missing_path_error(existing_part(name))
        try:
            return self.load_one(group)
        except ImageReadError:
            raise
        except Exception as err:  # each library raises its own types; all become ImageReadError
            name = group if isinstance(group, str) else group[0]
            raise self.explain(name, err) from err


def existing_part(path: str) -> str:
    """The part of a path that must exist on disk (HDF5 paths may carry ``#dataset[index]``)."""
    match = _HDF5_FILE.match(path)
    return match.group(1) if match else path


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message, without C++ source locations."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Exception thrown", "sitk::ERROR", "/"))]
    return (useful or lines or [type(err).__name__])[0][:300]


def spacing_of(affine: np.ndarray, spatial_rank: int) -> np.ndarray:
    """Voxel size in mm: the lengths of the affine's first ``spatial_rank`` columns."""
    return np.sqrt((affine[:3, :spatial_rank] ** 2).sum(axis=0))


def convert(array: np.ndarray, dtype: np.dtype | None) -> np.ndarray:
    """Cast to ``dtype`` (or to a native, torch-supported type) keeping the memory order."""
    target = dtype if dtype is not None else array.dtype.newbyteorder("=")
    target = np.dtype(_TORCH_UNSUPPORTED.get(target.newbyteorder("="), target))
    if array.dtype != target:
        array = array.astype(target, order="K")
    return array


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``array``'s memory when torch allows it (writable, positive strides)."""
    if not array.flags.writeable or any(s < 0 for s in array.strides):
        array = np.array(array, order="K" if all(s >= 0 for s in array.strides) else "F")
    return torch.from_numpy(array)


def finish(items: list[Loaded], paths: tuple[str, ...], dtype: np.dtype | None) -> tuple[torch.Tensor, dict]:
    """Stack ``items`` as channels (when several), convert, and build MONAI's meta dict."""
    first = items[0]
    arrays = [convert(item.array, dtype) for item in items]
    if len(items) == 1:
        data, channel_dim = arrays[0], first.channel_dim
    else:
        data = _stack_channels(items, arrays, paths)
        channel_dim = -1
    rank = min(data.ndim - (channel_dim is not None), 3)
    meta = dict(first.meta)
    meta.update(
        affine=first.affine.copy(),
        original_affine=first.affine.copy(),
        spatial_shape=np.asarray(data.shape[:rank]),
        spacing=spacing_of(first.affine, rank),
        original_channel_dim=float("nan") if channel_dim is None else channel_dim,
        space="RAS",
    )
    return as_tensor(data), meta


def _stack_channels(items: list[Loaded], arrays: list[np.ndarray], paths: tuple[str, ...]) -> np.ndarray:
    first = items[0]
    rank = min(first.array.ndim - (first.channel_dim is not None), 3)
    for item, path in zip(items[1:], paths[1:], strict=False):
        item_rank = min(item.array.ndim - (item.channel_dim is not None), 3)
        same_grid = item.array.shape[:item_rank] == first.array.shape[:rank]
        if not same_grid or not np.allclose(item.affine, first.affine, atol=1e-4):
            raise ImageReadError(
                paths,
                f"the files are stacked as channels but {path} has another grid "
                f"(shape {item.array.shape[:item_rank]} vs {first.array.shape[:rank]}, or another affine)",
                "resample the channels onto one grid first, or load them under separate keys",
            )
    # Channel last, in Fortran order: each channel is one contiguous block, copied without a transpose.
    expanded = [
        a if item.channel_dim is not None else a[..., None] for a, item in zip(arrays, items, strict=True)
    ]
    shape = (*expanded[0].shape[:-1], sum(a.shape[-1] for a in expanded))
    out = np.empty(shape, dtype=np.result_type(*expanded), order="F")
    start = 0
    for array in expanded:
        out[..., start : start + array.shape[-1]] = array
        start += array.shape[-1]
    return out
