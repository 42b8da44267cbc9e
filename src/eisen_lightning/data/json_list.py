"""Segmentation over lists of cases with paths: the base of the public data sets, and your own data."""

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.datamodule import DatasetInfo, MedicalDataModule, as_list
from eisen_lightning.data.datasets.json_list import read_json_list
from eisen_lightning.data.pipelines import (
    CLASS_INDICES,
    deterministic_transforms,
    normalization_for,
    random_transforms,
)
from eisen_lightning.data.slicing import check_patch_size, crop_size

#: Case fields kept in samples after loading; every other field (paths, clinical text, CSV rows)
#: stays in the case dicts (``labelled_cases()``) and out of the batches.
SAMPLE_KEYS = (keys.IMAGE, keys.LABEL, keys.CASE_ID, keys.PATIENT_ID, CLASS_INDICES)


class CaseListDataModule(MedicalDataModule):
    """Base of the DataModules whose cases are sample dicts with an ``image`` and a ``label`` path.

    Subclasses parse their layout in :meth:`read_cases` and name their classes in
    :attr:`label_names`; this class checks the layout once (in ``prepare_data``), splits it, and
    runs the shared load / orient / resample / normalise chain, label-balanced crops in training.
    With ``slice_axis`` set (3D data sets only), a 2D net trains on slices of the volumes.

    Args:
        data_dir: Folder holding the data sets (``paths.data_dir``).
        spacing: Target voxel spacing in mm (one per image axis), or ``None`` to keep each image's own.
        patch_size: Training crop size (2 sizes for 2D data or with ``slice_axis``, 3 for 3D); also
            the sliding window.
        num_samples: Crops per image per epoch.
        normalization: ``ct``, ``zscore`` or ``none`` (``auto``: ``zscore``).
        ct_window: Hounsfield window ``[low, high]`` used by ``ct``.
        **kwargs: Split, loader and cache settings of :class:`MedicalDataModule`.
    """

    sliceable = True
    #: Spatial dimensions of the data set's images (2 or 3), or ``None`` when the config decides.
    image_dims: int | None = 3

    def __init__(
        self,
        data_dir: str,
        spacing: Sequence[float] | None = None,
        patch_size: Sequence[int] = (96, 96, 96),
        num_samples: int = 2,
        normalization: str = "zscore",
        ct_window: Sequence[float] = (-1000.0, 400.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_patch_size(patch_size, self.slice_axis, self.image_dims)
        self.image_dims = len(patch_size) + (self.slice_axis is not None)
        check_geometry(spacing, patch_size, self.slice_axis)
        normalization_for([], normalization)  # validates the name
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"data.num_samples must be a positive integer, got {num_samples!r}")
        self.data_dir = Path(data_dir)
        self.spacing, self.patch_size = as_list(spacing), as_list(patch_size)
        self.num_samples, self.normalization, self.ct_window = num_samples, normalization, as_list(ct_window)

    # -- what subclasses provide ------------------------------------------------------------
    def read_cases(self) -> list[dict[str, Any]]:
        """Parse and check the layout; return every case (labelled ones have a ``label``)."""
        raise NotImplementedError(f"{type(self).__name__} must define read_cases()")

    @property
    def label_names(self) -> list[str]:
        """One name per class, background first."""
        raise NotImplementedError(f"{type(self).__name__} must define label_names")

    @property
    def in_channels(self) -> int:
        """Input channels (1 unless a subclass stacks several images)."""
        return 1

    # -- shared behaviour -------------------------------------------------------------------
    @cached_property
    def cases(self) -> list[dict[str, Any]]:
        """Every case of the layout, parsed and checked once."""
        return self.read_cases()

    def prepare_data(self) -> None:
        """Check the layout before anything else is built (every problem in one error)."""
        _ = self.cases

    @property
    def info(self) -> DatasetInfo:
        """Channels, classes and names; 2D or 3D from ``patch_size``."""
        names = list(self.label_names)
        return DatasetInfo(self.in_channels, len(names), names, len(self.patch_size))

    def labelled_cases(self) -> list[dict[str, Any]]:
        """Cases with a label."""
        return [dict(case) for case in self.cases if keys.LABEL in case]

    def unlabelled_cases(self) -> list[dict[str, Any]]:
        """Cases without a label (prediction only)."""
        return [dict(case) for case in self.cases if keys.LABEL not in case]

    def train_transforms(self) -> list:
        """Deterministic prefix (padded to a patch, class indices precomputed), then random crops."""
        return self.deterministic(with_label=True, pad=True) + random_transforms(
            self.patch_size, self.info.num_classes, self.num_samples, self.slice_axis
        )

    def eval_transforms(self) -> list:
        """Whole images through the deterministic prefix."""
        return self.deterministic(with_label=True, pad=False)

    def predict_transforms(self) -> list:
        """The deterministic prefix for images without labels."""
        return self.deterministic(with_label=False, pad=False)

    def deterministic(self, with_label: bool, pad: bool) -> list:
        """Load, orient, resample, normalise (and pad, with class indices, for training)."""
        from monai.transforms import SelectItemsd

        steps = deterministic_transforms(
            with_label=with_label,
            spacing=self.spacing,
            normalization=normalization_for([], self.normalization),
            ct_window=self.ct_window,
            num_classes=self.info.num_classes if pad else None,
            patch_size=crop_size(self.patch_size, self.slice_axis) if pad else None,
            spatial_dims=self.image_dims,
        )
        return [*steps, SelectItemsd(SAMPLE_KEYS, allow_missing_keys=True)]


class JsonListDataModule(CaseListDataModule):
    """Your own data: a JSON list of sample dicts whose paths are relative to the JSON file.

    Which entry keys are images (several: one channel each) and which is the label, and the class
    names, come from the config (2D or 3D: from ``patch_size`` and ``slice_axis``); see
    :func:`~eisen_lightning.data.datasets.json_list.read_json_list`.

    Args:
        json_file: The JSON file.
        label_names: One name per class, background first.
        image_keys: Entry keys of the input images, in channel order.
        label_key: Entry key of the label map.
        **kwargs: Settings of :class:`CaseListDataModule` (``data_dir``, ``spacing``, ``patch_size``, ...).

    >>> dm = JsonListDataModule("data/mine/dataset.json", ["background", "tumour"], patch_size=(64, 64))
    >>> dm.info.num_classes, dm.info.spatial_dims
    (2, 2)
    """

    image_dims = None

    def __init__(
        self,
        json_file: str,
        label_names: Sequence[str],
        image_keys: Sequence[str] = (keys.IMAGE,),
        label_key: str = keys.LABEL,
        data_dir: str = ".",
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        names = as_list(label_names) or []
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(
                "data.label_names must name every class, background first: at least 2 distinct names; "
                f"got {names}"
            )
        if not image_keys:
            raise ValueError("data.image_keys must name at least one entry key, such as [image]")
        self.json_file = Path(json_file)
        self.names, self.image_keys, self.label_key = names, list(image_keys), label_key

    @classmethod
    def write_replica(
        cls, json_file: str, label_names: Sequence[str] = ("background", "organ"), **_: Any
    ) -> Path:
        """Write a small synthetic data set and its JSON list at ``json_file``."""
        from eisen_lightning.data.synthetic.json_list import write_json_list_replica

        return write_json_list_replica(json_file, len(label_names))

    @property
    def label_names(self) -> list[str]:
        """The configured class names."""
        return self.names

    @property
    def in_channels(self) -> int:
        """One channel per image key."""
        return len(self.image_keys)

    def read_cases(self) -> list[dict[str, Any]]:
        """Parse and check the JSON list."""
        return read_json_list(self.json_file, self.image_keys, self.label_key, check_files=self.check_files)


def check_geometry(
    spacing: Sequence[float] | None, patch_size: Sequence[int], slice_axis: int | None
) -> None:
    """Check ``patch_size`` (positive sizes) and ``spacing`` (one positive value per image axis, or null)."""
    if len(patch_size) not in (2, 3) or min(patch_size) < 1:
        raise ValueError(f"data.patch_size must be 2 or 3 positive sizes, got {list(patch_size)}")
    dims = len(patch_size) + (slice_axis is not None)
    if spacing is not None and (len(spacing) != dims or min(spacing) <= 0):
        slicing = (
            f" (data.slice_axis={slice_axis}: one per axis of the 3D volumes)"
            if slice_axis is not None
            else ""
        )
        raise ValueError(
            f"data.spacing must be {dims} positive spacings in mm{slicing}, or null; "
            f"got {list(spacing)} for data.patch_size {list(patch_size)}"
        )
