"""MONAI dictionary-transform pipelines for volumetric segmentation.

The deterministic prefix (load, orient, resample, normalise) is what caching datasets keep;
the random suffix (crops, flips, rotations) runs every epoch.
"""

from collections.abc import Sequence

from eisen_lightning import keys

NORMALIZATIONS = ("auto", "ct", "zscore", "none")
CLASS_INDICES = f"{keys.LABEL}_cls_indices"
# Candidate crop centres kept per class: all background voxels of a CT volume would cost ~75 MB
# of int64 indices per cached case; an evenly spaced subset of this size costs 400 kB.
MAX_CROP_CENTRES_PER_CLASS = 50_000


def normalization_for(modalities: Sequence[str], normalization: str) -> str:
    """Resolve ``auto`` from the modalities: ``ct`` when every channel is CT, else ``zscore``.

    >>> normalization_for(["CT"], "auto"), normalization_for(["T2", "ADC"], "auto")
    ('ct', 'zscore')
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"data.normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if normalization != "auto":
        return normalization
    return "ct" if modalities and all(m.upper() == "CT" for m in modalities) else "zscore"


def deterministic_transforms(
    with_label: bool,
    spacing: Sequence[float] | None,
    normalization: str,
    ct_window: Sequence[float],
    num_classes: int | None = None,
    patch_size: Sequence[int] | None = None,
    spatial_dims: int = 3,
) -> list:
    """Load, channel-first, RAS orientation, resampling and intensity normalisation.

    Args:
        with_label: Whether samples carry a ``label`` key.
        spacing: Target voxel spacing in mm, or ``None`` to keep the native grid.
        normalization: ``ct`` (clip to ``ct_window``, scale to [0, 1]), ``zscore`` (per channel,
            over non-zero voxels) or ``none``.
        ct_window: ``[low, high]`` Hounsfield window for ``ct``.
        num_classes: When given with a label, the voxel indices of each class are precomputed so
            that label-balanced crops need not search the volume every epoch.
        patch_size: When given, volumes smaller than a patch are padded to it.
        spatial_dims: 3 for volumes, 2 for images.
    """
    from monai import transforms as mt

    from eisen_lightning.io import readers

    image_keys = [keys.IMAGE, keys.LABEL] if with_label else [keys.IMAGE]
    modes = ("bilinear", "nearest") if with_label else ("bilinear",)
    steps: list = [
        mt.LoadImaged(image_keys, reader=readers(), image_only=True, ensure_channel_first=True),
        mt.Orientationd(image_keys, axcodes="RAS"[:spatial_dims], labels=None),
    ]
    if spacing is not None:
        steps.append(mt.Spacingd(image_keys, pixdim=list(spacing), mode=modes))
    steps += _normalization(normalization, ct_window)
    if patch_size is not None:
        steps.append(mt.SpatialPadd(image_keys, spatial_size=list(patch_size)))
    if with_label and num_classes is not None:
        steps.append(
            mt.ClassesToIndicesd(
                keys.LABEL,
                num_classes=num_classes,
                indices_postfix="_cls_indices",
                max_samples_per_class=MAX_CROP_CENTRES_PER_CLASS,
            )
        )
    steps.append(mt.EnsureTyped(image_keys, track_meta=True))
    return steps


def _normalization(normalization: str, ct_window: Sequence[float]) -> list:
    from monai import transforms as mt

    if normalization == "ct":
        low, high = _window(ct_window)
        return [mt.ScaleIntensityRanged(keys.IMAGE, a_min=low, a_max=high, b_min=0.0, b_max=1.0, clip=True)]
    if normalization == "zscore":
        return [mt.NormalizeIntensityd(keys.IMAGE, nonzero=True, channel_wise=True)]
    if normalization == "none":
        return []
    raise ValueError(f"normalization must be one of {NORMALIZATIONS[1:]}, got {normalization!r}")


def _window(ct_window: Sequence[float]) -> tuple[float, float]:
    if len(ct_window) != 2 or not float(ct_window[0]) < float(ct_window[1]):
        raise ValueError(f"data.ct_window must be [low, high] with low < high, got {list(ct_window)}")
    return float(ct_window[0]), float(ct_window[1])


def random_transforms(
    patch_size: Sequence[int], num_classes: int, num_samples: int, slice_axis: int | None = None
) -> list:
    """Label-balanced random crops of ``patch_size``, then flips on every axis and in-plane rotations.

    Args:
        patch_size: Crop size in voxels (the in-plane size of a slice when ``slice_axis`` is set).
        num_classes: Number of classes (background included); crops are centred on each class
            with equal probability.
        num_samples: Crops taken from each volume per epoch.
        slice_axis: When set, the crops are 2D slices of the 3D volumes along this axis
            (see :mod:`eisen_lightning.data.slicing`); flips and rotations then act in the slice.
    """
    from monai import transforms as mt

    from eisen_lightning.data.slicing import crop_size, squeeze_slice_axis

    both = [keys.IMAGE, keys.LABEL]
    crop = mt.RandCropByLabelClassesd(
        both,
        label_key=keys.LABEL,
        spatial_size=crop_size(patch_size, slice_axis),
        num_classes=num_classes,
        num_samples=num_samples,
        indices_key=CLASS_INDICES,
        warn=False,
    )
    return [
        crop,
        *squeeze_slice_axis(both, slice_axis),
        mt.DeleteItemsd(CLASS_INDICES),
        *[mt.RandFlipd(both, prob=0.5, spatial_axis=axis) for axis in range(len(patch_size))],
        mt.RandRotate90d(both, prob=0.5, max_k=3, spatial_axes=(0, 1)),
        mt.RandScaleIntensityd(keys.IMAGE, factors=0.1, prob=0.5),
        mt.RandShiftIntensityd(keys.IMAGE, offsets=0.1, prob=0.5),
    ]
