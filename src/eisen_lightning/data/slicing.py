"""2D nets on 3D volumes: training on slices, inference slice by slice over whole volumes.

With ``data.slice_axis`` set (0, 1 or 2), a DataModule of 3D volumes trains a 2D net:

* the splits are made over volumes, before any slicing, so the slices of one volume (and of one
  patient) never cross splits;
* training samples are label-balanced crops one voxel thick along the slice axis, taken after
  the volume's deterministic preprocessing (orientation, resampling, normalisation), with that
  axis then squeezed away: 2D samples of ``data.patch_size`` (two in-plane sizes);
* validation, testing and prediction run on whole 3D volumes through MONAI's ``SliceInferer``
  (the 2D net over every slice, with a 2D sliding window inside each slice), so metrics are 3D
  and predictions are label maps in the volume's own geometry.
"""

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, open_dict

SLICE_AXES = (0, 1, 2)
SLIDING_WINDOW = "monai.inferers.SlidingWindowInferer"
SLICE_INFERER = "monai.inferers.SliceInferer"


def check_slice_axis(slice_axis: Any) -> int | None:
    """Return ``slice_axis`` if it is ``None`` or one of the three spatial axes of a volume.

    Raises:
        ValueError: Naming the value received and the values allowed.

    >>> check_slice_axis(2), check_slice_axis(None)
    (2, None)
    """
    if slice_axis is None:
        return None
    if isinstance(slice_axis, bool) or not isinstance(slice_axis, int) or slice_axis not in SLICE_AXES:
        raise ValueError(
            "data.slice_axis must be null (train on whole images) or one of 0, 1, 2 (the spatial axis "
            f"of the 3D volumes to slice along; 2 gives axial slices in RAS), got {slice_axis!r}"
        )
    return slice_axis


def check_patch_size(
    patch_size: Sequence[int], slice_axis: int | None, image_dims: int | None = None
) -> None:
    """Check that ``data.patch_size`` has the sizes the net's inputs have.

    Args:
        patch_size: The training crop size.
        slice_axis: ``data.slice_axis``: with an axis, the crops are 2D slices (two sizes).
        image_dims: Spatial dimensions of the data set's images when known (2 or 3).

    Raises:
        ValueError: Saying how many sizes are expected and why, with the fix.
    """
    sizes = list(patch_size)
    if slice_axis is not None and image_dims is not None and image_dims != 3:
        raise ValueError(
            f"data.slice_axis={slice_axis} slices 3D volumes, but the images of this data set are "
            f"{image_dims}D; set data.slice_axis=null"
        )
    if slice_axis is not None and len(sizes) != 2:
        raise ValueError(
            f"data.patch_size must have 2 sizes (the in-plane size of a slice) when data.slice_axis is "
            f"set, got {sizes} with data.slice_axis={slice_axis}; use e.g. data.patch_size={sizes[:2]}, "
            "or data.slice_axis=null to train on 3D patches"
        )
    if slice_axis is None and image_dims == 3 and len(sizes) == 2:
        raise ValueError(
            f"data.patch_size {sizes} has 2 sizes but the images are 3D volumes: give 3 sizes for 3D "
            "patches, or set data.slice_axis=0|1|2 to train a 2D net on slices"
        )
    if image_dims is not None and slice_axis is None and len(sizes) != image_dims:
        raise ValueError(
            f"data.patch_size must have {image_dims} sizes for {image_dims}D images, got {sizes}"
        )


def crop_size(patch_size: Sequence[int], slice_axis: int | None) -> list[int]:
    """The 3D crop that gives a 2D patch: ``patch_size`` with 1 inserted at ``slice_axis``.

    >>> crop_size([32, 32], 2), crop_size([32, 32, 32], None)
    ([32, 32, 1], [32, 32, 32])
    """
    size = [int(s) for s in patch_size]
    if slice_axis is not None:
        size.insert(slice_axis, 1)
    return size


def squeeze_slice_axis(spatial_keys: Sequence[str], slice_axis: int | None) -> list:
    """The step that turns crops one voxel thick along ``slice_axis`` into 2D samples (none if unset).

    Put it right after the crop of size :func:`crop_size`; MONAI's ``SqueezeDimd`` also drops the
    axis from each MetaTensor's affine.

    Args:
        spatial_keys: Keys of the cropped images and label maps.
        slice_axis: ``data.slice_axis``.
    """
    if check_slice_axis(slice_axis) is None:
        return []
    from monai.transforms import SqueezeDimd

    return [SqueezeDimd(list(spatial_keys), dim=slice_axis + 1)]


def use_slice_inferer(cfg: DictConfig) -> None:
    """Run the task's sliding window slice by slice when ``cfg.data.slice_axis`` is set.

    The ``task.inferer`` of a config (MONAI's ``SlidingWindowInferer`` with ``roi_size`` the 2D
    ``data.patch_size``) becomes MONAI's ``SliceInferer`` over ``data.slice_axis`` with the same
    settings, so a 2D net segments whole 3D volumes in validation, testing and prediction.

    Raises:
        ValueError: If the task has no inferer, or one that cannot run slice by slice.
    """
    slice_axis = check_slice_axis(cfg.get("data", {}).get("slice_axis"))
    task = cfg.get("task")
    if slice_axis is None or task is None or "inferer" not in task:
        return
    inferer = task.inferer
    target = inferer.get("_target_") if inferer is not None else None
    if target not in (SLIDING_WINDOW, SLICE_INFERER):
        raise ValueError(
            f"data.slice_axis={slice_axis} needs task.inferer to be {SLIDING_WINDOW} (made slice by "
            f"slice automatically) or {SLICE_INFERER}, got {target!r}"
        )
    if target == SLICE_INFERER and inferer.get("spatial_dim", slice_axis) != slice_axis:
        raise ValueError(
            f"task.inferer.spatial_dim={inferer.spatial_dim} differs from data.slice_axis={slice_axis}; "
            "remove task.inferer.spatial_dim (it follows data.slice_axis)"
        )
    with open_dict(inferer):
        inferer._target_ = SLICE_INFERER
        inferer.spatial_dim = slice_axis
