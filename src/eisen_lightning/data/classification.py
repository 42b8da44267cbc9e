"""ImageDataModule: the shared base of the image-level (classification, regression) data sets.

A subclass parses its layout (:meth:`read_layout`), says what the data set is (:attr:`info`) and,
where the images need more than "load, scale, resize", overrides :meth:`load_transforms`. This
class adds the rest: missing-data handling (download or a clear error), stratified splits, 2D
augmentation and label typing.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from eisen_lightning import keys
from eisen_lightning.data.datamodule import DatasetInfo, MedicalDataModule, as_list
from eisen_lightning.data.datasets.decathlon import LayoutError
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)


@dataclass
class ImageLayout:
    """A parsed image-level data set.

    Attributes:
        root: The data-set folder.
        labelled: Cases with a label: ``{"case_id", "image", "label", ...}``.
        unlabelled: Cases without one (the official test images).
    """

    root: Path
    labelled: list[dict[str, Any]]
    unlabelled: list[dict[str, Any]] = field(default_factory=list)


class ImageDataModule(MedicalDataModule):
    """Base of the 2D image-level data sets: one label (or value, or label vector) per image.

    Subclasses set :attr:`name` (the folder under ``data_dir`` and the download name), implement
    :meth:`read_layout`, :meth:`has_data`, :attr:`info` and :attr:`missing_hint`, and may override
    :meth:`load_transforms`. Images are read per sample (no cache by default: these sets are large).

    Args:
        data_dir: Folder holding the data-set folder (``paths.data_dir``).
        folder: Name of the data-set folder under ``data_dir``.
        image_size: Size every image is resized to, ``[height, width]``; ``None`` keeps the size.
        augment: Random flips, 90-degree rotations and intensity jitter while training.
        download: Download the data when missing (data sets with a public address only).
        **kwargs: Split, loader and cache settings of :class:`MedicalDataModule`.
    """

    #: Download name of the data set, or ``None`` when it sits behind a login.
    download_name: str | None = None

    def __init__(
        self,
        data_dir: str,
        folder: str,
        image_size: Sequence[int] | None = (224, 224),
        augment: bool = True,
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("cache_rate", 0.0)
        super().__init__(**kwargs)
        if not folder or "/" in folder:
            raise ValueError(f"data.folder must be a folder name, got {folder!r}")
        if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
            raise ValueError(f"data.image_size must be [height, width] or null, got {list(image_size)}")
        self.data_dir, self.root = Path(data_dir), Path(data_dir) / folder
        if download and self.download_name is None:
            raise ValueError(
                f"data.download=true: {type(self).__name__} cannot be downloaded (it needs a login); "
                f"set data.download=false. {self.missing_hint}"
            )
        self.image_size, self.augment, self.download = as_list(image_size), augment, download

    # -- what subclasses provide ------------------------------------------------------------
    @property
    def missing_hint(self) -> str:
        """Where to get the data and where to put it."""
        raise NotImplementedError

    def has_data(self) -> bool:
        """Whether the data-set files are present (the layout may still be broken)."""
        raise NotImplementedError

    def read_layout(self) -> ImageLayout:
        """Parse and check the folder; raise :class:`LayoutError` listing every problem."""
        raise NotImplementedError

    def load_transforms(self, with_label: bool) -> list:
        """Read an image into a ``(C, H, W)`` float tensor in [0, 1] (pictures by default)."""
        from monai import transforms as mt

        from eisen_lightning.io import readers

        steps = [
            mt.LoadImaged(keys.IMAGE, reader=readers(), image_only=True, ensure_channel_first=True),
            mt.ScaleIntensityRanged(keys.IMAGE, a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0, clip=True),
        ]
        return steps + self.resize_transforms()

    # -- shared behaviour -------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Download missing data when asked to, else explain where to get it; then check the layout."""
        if not self.has_data():
            if not self.download:
                raise LayoutError(self.root, ["the data set is not there"], self.missing_hint)
            from eisen_lightning.data.download import download_dataset

            log.info("downloading %s into %s", self.download_name, self.data_dir)
            folder = download_dataset(self.download_name, str(self.data_dir))
            if not self.has_data():
                raise LayoutError(
                    self.root,
                    [f"the download went to {folder}, not here"],
                    f"set data.folder={Path(folder).name} (the folder the download creates)",
                )
        _ = self.layout

    @cached_property
    def layout(self) -> ImageLayout:
        """The parsed and checked layout (read once)."""
        if not self.has_data():
            raise LayoutError(self.root, ["the data set is not there"], self.missing_hint)
        return self.read_layout()

    def labelled_cases(self) -> list[dict[str, Any]]:
        """Every labelled image."""
        return self.layout.labelled

    def unlabelled_cases(self) -> list[dict[str, Any]]:
        """The official test images (no label)."""
        return self.layout.unlabelled

    def case_stratum(self, case: dict[str, Any]) -> Any:
        """The class of a single-label case (splits keep class proportions)."""
        label = case.get(keys.LABEL)
        return label if isinstance(label, int | str | bool | np.integer) else None

    def resize_transforms(self) -> list:
        """Resize to ``image_size`` (nothing when it is ``None``)."""
        from monai import transforms as mt

        if self.image_size is None:
            return []
        return [mt.Resized(keys.IMAGE, spatial_size=self.image_size, mode="bilinear", anti_aliasing=True)]

    def augment_transforms(self) -> list:
        """Random flips, 90-degree rotations and intensity jitter (2D, image only)."""
        from monai import transforms as mt

        image = keys.IMAGE
        return [
            mt.RandFlipd(image, prob=0.5, spatial_axis=0),
            mt.RandFlipd(image, prob=0.5, spatial_axis=1),
            mt.RandRotate90d(image, prob=0.5, max_k=3),
            mt.RandScaleIntensityd(image, factors=0.1, prob=0.5),
            mt.RandShiftIntensityd(image, offsets=0.05, prob=0.5),
        ]

    def label_transforms(self) -> list:
        """Labels as float32 tensors (the task casts them to what its loss expects)."""
        from monai import transforms as mt

        return [mt.EnsureTyped(keys.LABEL, data_type="tensor", dtype=np.float32, track_meta=False)]

    def train_transforms(self) -> list:
        """Load, augment, type the label."""
        augment = self.augment_transforms() if self.augment else []
        return self.load_transforms(True) + augment + self.label_transforms()

    def eval_transforms(self) -> list:
        """Load and type the label."""
        return self.load_transforms(True) + self.label_transforms()

    def predict_transforms(self) -> list:
        """Load an image alone."""
        return self.load_transforms(False)

    def verify_spec(self) -> Any:
        """Images read as in training (:meth:`load_transforms`); labels are values, not files."""
        from eisen_lightning.data.verify import VerifySpec

        return VerifySpec(label_key=None, num_outputs=self.info.num_classes, read=self._read_image)

    def _read_image(self, case: dict[str, Any], key: str) -> Any:
        from monai.transforms import Compose

        return Compose(self.load_transforms(False))({k: v for k, v in case.items() if k != keys.LABEL})[key]

    def image_info(self, in_channels: int, label_names: list[str]) -> DatasetInfo:
        """A 2D :class:`DatasetInfo` with ``len(label_names)`` outputs."""
        return DatasetInfo(in_channels, len(label_names), list(label_names), spatial_dims=2)


def to_grey(image: Any) -> Any:
    """Average the colour channels of a ``(C, H, W)`` image into one (alpha dropped); grey stays grey.

    >>> import torch
    >>> to_grey(torch.ones(4, 2, 2) * torch.tensor([3.0, 6.0, 9.0, 255.0])[:, None, None])[:, 0, 0]
    tensor([6.])
    """
    if image.shape[0] == 1:
        return image
    return image[:3].mean(0, keepdim=True)


def read_csv(path: Path, columns: Sequence[str], problems: list[str]) -> list[dict[str, str]]:
    """Rows of a CSV file with a header holding ``columns``; a problem is noted when it cannot be read.

    Returns:
        One dict per row (column -> text), or an empty list when the file is missing or lacks a column.
    """
    import csv

    if not path.is_file():
        problems.append(f"{path} is missing")
        return []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            problems.append(f"{path}: no column(s) {missing}; its header is {reader.fieldnames}")
            return []
        rows = list(reader)
    if not rows:
        problems.append(f"{path} has a header but no rows")
    return rows


def folder_images(folder: Path, suffixes: Sequence[str], problems: list[str]) -> dict[str, Path]:
    """``stem -> path`` of the files in ``folder``; other suffixes and an empty or absent folder are problems.

    Hidden files (``.DS_Store``) are ignored.
    """
    if not folder.is_dir():
        problems.append(f"{folder}/ is missing")
        return {}
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        problems.append(f"{folder}/ is empty")
    wanted = tuple(s.lower() for s in suffixes)
    for path in files:
        if not path.name.lower().endswith(wanted):
            problems.append(
                f"{path}: unexpected suffix, expected one of {list(suffixes)}; remove or convert it"
            )
    return {
        p.name[: p.name.lower().rfind(".")]: p.absolute() for p in files if p.name.lower().endswith(wanted)
    }


def problems_error(root: Path, problems: list[str], hint: str) -> None:
    """Raise one :class:`LayoutError` listing ``problems`` (at most 50 shown), or nothing when none."""
    if not problems:
        return
    shown = problems[:50]
    if len(problems) > 50:
        shown.append(f"... and {len(problems) - 50} more problem(s) of the same kinds")
    raise LayoutError(root, shown, hint)
