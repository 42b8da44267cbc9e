"""DecathlonDataModule: any of the ten Medical Segmentation Decathlon tasks, read as distributed."""

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from eisen_lightning.data.datamodule import DatasetInfo, MedicalDataModule, as_list
from eisen_lightning.data.datasets.decathlon import DecathlonLayout, LayoutError, read_decathlon
from eisen_lightning.data.pipelines import (
    deterministic_transforms,
    normalization_for,
    random_transforms,
)
from eisen_lightning.data.slicing import check_patch_size, crop_size

GET_DATA_HINT = (
    "Get it from http://medicaldecathlon.com ({task}.tar), extract it so that {root}/dataset.json exists, "
    "or point paths.data_dir (environment variable EISEN_DATA_DIR) at the folder that holds {task}/; "
    "or let it be downloaded: data.download=true, or `eisen download decathlon {task}`."
)


class DecathlonDataModule(MedicalDataModule):
    """A Decathlon task read from ``<data_dir>/<task>/dataset.json``, ``imagesTr/``, ``labelsTr/``.

    Multi-modal 4D images become channels; label names come from ``dataset.json``. Training takes
    label-balanced random crops of ``patch_size``; validation and testing use whole volumes. With
    ``slice_axis`` set, the crops are 2D slices of the volumes and ``patch_size`` is 2D.

    Args:
        data_dir: Folder holding the task folders (``paths.data_dir``).
        task: Task folder name, such as ``Task09_Spleen``.
        spacing: Target voxel spacing in mm, or ``None`` to keep each volume's own.
        patch_size: Training crop size in voxels (also the sliding-window size); 2 sizes with
            ``slice_axis`` (the in-plane size of a slice).
        num_samples: Crops per volume per epoch.
        normalization: ``auto`` (CT window for CT, z-score otherwise), ``ct``, ``zscore`` or ``none``.
        ct_window: Hounsfield window ``[low, high]`` used by ``ct``.
        download: Download a missing task (checksum-verified, once per node) in :meth:`prepare_data`.
        **kwargs: Split, loader and cache settings of :class:`MedicalDataModule`.

    >>> dm = DecathlonDataModule("data", "Task09_Spleen", patch_size=(96, 96, 96))
    >>> dm.root.as_posix()
    'data/Task09_Spleen'
    """

    sliceable = True

    def __init__(
        self,
        data_dir: str,
        task: str = "Task09_Spleen",
        spacing: Sequence[float] | None = (1.5, 1.5, 2.0),
        patch_size: Sequence[int] = (96, 96, 96),
        num_samples: int = 2,
        normalization: str = "auto",
        ct_window: Sequence[float] = (-175.0, 250.0),
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not task or "/" in task:
            raise ValueError(f"data.task must be a task folder name such as 'Task09_Spleen', got {task!r}")
        if len(patch_size) not in (2, 3) or min(patch_size) < 1:
            raise ValueError(f"data.patch_size must be 2 or 3 positive sizes, got {list(patch_size)}")
        check_patch_size(patch_size, self.slice_axis)
        #: Spatial dimensions of the images: the patch's, plus the slice axis when slicing volumes.
        self.image_dims = len(patch_size) + (self.slice_axis is not None)
        _check_spacing(spacing, patch_size, self.slice_axis)
        normalization_for([], normalization)  # validates the name
        self.root = Path(data_dir) / task
        self.saved_description: dict[str, Any] | None = None
        self.task = task
        self.spacing, self.patch_size = as_list(spacing), as_list(patch_size)
        self.num_samples, self.normalization, self.ct_window = num_samples, normalization, as_list(ct_window)
        self.download = _checked_download(download, task)

    @classmethod
    def write_replica(cls, data_dir: str, task: str = "Task09_Spleen", **_: Any) -> Path:
        """Write a small synthetic copy of ``task`` in its real layout (tests, dry runs)."""
        from eisen_lightning.data.synthetic import write_decathlon_replica

        return write_decathlon_replica(data_dir, task)

    def prepare_data(self) -> None:
        """Check the task folder; a missing one goes through :meth:`fetch` first."""
        if not (self.root / "dataset.json").is_file():
            self.fetch()
        _ = self.layout

    def fetch(self) -> None:
        """Provide a missing task folder: download it with ``download=true``, else explain where to get it.

        Subclasses that can produce the data (a synthetic replica) override this.
        """
        if self.download:
            from eisen_lightning.data.download import download_dataset

            download_dataset("decathlon", self.root.parent, self.task)
            return
        raise LayoutError(
            self.root, ["dataset.json not found"], GET_DATA_HINT.format(task=self.task, root=self.root)
        )

    @cached_property
    def layout(self) -> DecathlonLayout:
        """The parsed and checked ``dataset.json``.

        Without the data folder, the description saved in a checkpoint (see :meth:`state_dict`)
        stands in, so a trained model predicts on new images without its training data.
        """
        if not (self.root / "dataset.json").is_file():
            if self.saved_description is not None:
                return DecathlonLayout(self.root, **self.saved_description)
            self.fetch()
        return read_decathlon(self.root, check_files=self.check_files)

    def state_dict(self) -> dict[str, Any]:
        """What inference needs to know about the data set, saved in every checkpoint."""
        layout = self.layout
        return {"name": layout.name, "modalities": layout.modalities, "label_names": layout.label_names}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep a checkpoint's data-set description for when the data folder is absent."""
        self.saved_description = {k: state_dict[k] for k in ("name", "modalities", "label_names")}

    def predict_transforms(self) -> list:
        """The deterministic prefix for images without labels (what predictions are inverted through)."""
        normalization = normalization_for(self.layout.modalities, self.normalization)
        return deterministic_transforms(
            with_label=False,
            spacing=self.spacing,
            normalization=normalization,
            ct_window=self.ct_window,
            spatial_dims=self.image_dims,
        )

    @property
    def info(self) -> DatasetInfo:
        """Channels from ``modality``, classes and names from ``labels``; the patch's dimensions."""
        layout = self.layout
        dims = len(self.patch_size)
        return DatasetInfo(len(layout.modalities), len(layout.label_names), list(layout.label_names), dims)

    def labelled_cases(self) -> list[dict[str, Any]]:
        """The ``training`` list of ``dataset.json`` with absolute paths."""
        return [dict(case) for case in self.layout.training]

    def unlabelled_cases(self) -> list[dict[str, Any]]:
        """The ``test`` list of ``dataset.json`` (``imagesTs/``) with absolute paths."""
        return [dict(case) for case in self.layout.test]

    def train_transforms(self) -> list:
        """Deterministic prefix (padded to a patch, class indices precomputed), then random crops."""
        return self._deterministic(pad=True) + random_transforms(
            self.patch_size, self.info.num_classes, self.num_samples, self.slice_axis
        )

    def eval_transforms(self) -> list:
        """Whole volumes through the deterministic prefix."""
        return self._deterministic(pad=False)

    def _deterministic(self, pad: bool) -> list:
        normalization = normalization_for(self.layout.modalities, self.normalization)
        return deterministic_transforms(
            with_label=True,
            spacing=self.spacing,
            normalization=normalization,
            ct_window=self.ct_window,
            num_classes=self.info.num_classes if pad else None,
            patch_size=crop_size(self.patch_size, self.slice_axis) if pad else None,
            spatial_dims=self.image_dims,
        )


def _check_spacing(
    spacing: Sequence[float] | None, patch_size: Sequence[int], slice_axis: int | None
) -> None:
    """One positive spacing per image axis: the patch's axes, plus the slice axis when slicing."""
    dims = len(patch_size) + (slice_axis is not None)
    if spacing is None or (len(spacing) == dims and min(spacing) > 0):
        return
    if min(spacing) <= 0:
        reason = "every spacing must be above 0"
    elif slice_axis is not None:
        reason = (
            f"data.slice_axis={slice_axis} slices 3D volumes, so it needs 3 spacings (one per volume axis)"
        )
    elif len(spacing) == 3 and dims == 2:
        reason = (
            f"data.patch_size {list(patch_size)} is 2D; to train a 2D net on slices of 3D volumes set "
            "data.slice_axis=0|1|2, else give 3 patch sizes"
        )
    else:
        reason = f"it needs one per data.patch_size axis ({dims})"
    raise ValueError(f"data.spacing must be positive spacings in mm or null, got {list(spacing)}: {reason}")


def _checked_download(download: bool, task: str) -> bool:
    from eisen_lightning.data.sources import DECATHLON_MD5

    if download and task not in DECATHLON_MD5:
        raise ValueError(
            f"data.download=true needs data.task to be one of the ten Decathlon tasks {list(DECATHLON_MD5)}; "
            f"got {task!r} (set data.download=false for a task of your own)"
        )
    return bool(download)
