"""BoneAgeDataModule: RSNA Bone Age, months regressed from a hand radiograph and the patient's sex."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eisen_lightning import keys
from eisen_lightning.data.classification import ImageDataModule, ImageLayout, to_grey
from eisen_lightning.data.datamodule import DatasetInfo
from eisen_lightning.data.datasets.boneage import BONEAGE_HINT, MALE, has_boneage, read_boneage


class BoneAgeDataModule(ImageDataModule):
    """RSNA Bone Age from ``<data_dir>/<folder>`` in its Kaggle layout.

    Each case has ``image`` (grey PNG, resized to ``image_size``, scaled to [0, 1]), ``label`` (bone
    age in months) and ``male`` (1.0 or 0.0), an extra net input (``task.input_keys=[image,male]``).
    Splits keep the share of each sex (one image per patient: no grouping needed).

    Args:
        data_dir: Folder holding the data-set folder.
        folder: The data-set folder.
        image_size: ``[height, width]`` every radiograph is resized to.
        **kwargs: Settings of :class:`ImageDataModule`.

    >>> BoneAgeDataModule("data").root.as_posix()
    'data/rsna_boneage'
    """

    def __init__(
        self,
        data_dir: str,
        folder: str = "rsna_boneage",
        image_size: Sequence[int] | None = (256, 256),
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir, folder, image_size=image_size, **kwargs)

    @classmethod
    def write_replica(cls, data_dir: str, folder: str = "rsna_boneage", **_: Any) -> Path:
        """Write a tiny replica of the Kaggle layout (doubled folders, CSV columns, grey PNGs)."""
        from eisen_lightning.data.synthetic.boneage import write_boneage_replica

        return write_boneage_replica(Path(data_dir) / folder)

    @property
    def missing_hint(self) -> str:
        """Where to get the data (Kaggle, behind a login)."""
        return BONEAGE_HINT.format(root=self.root)

    @property
    def info(self) -> DatasetInfo:
        """Grey images, one regressed value."""
        return self.image_info(1, ["boneage_months"])

    def has_data(self) -> bool:
        """The training CSV or image folder is present."""
        return has_boneage(self.root)

    def read_layout(self) -> ImageLayout:
        """Parse the CSV files and image folders."""
        return read_boneage(self.root)

    def case_stratum(self, case: dict[str, Any]) -> Any:
        """The sex: every split keeps the share of boys and girls."""
        return case[MALE]

    def load_transforms(self, with_label: bool) -> list:
        """Read the PNG as one grey channel, scale it to [0, 1] per image, resize."""
        from monai import transforms as mt

        from eisen_lightning.io import readers

        return [
            mt.LoadImaged(keys.IMAGE, reader=readers(), image_only=True, ensure_channel_first=True),
            mt.Lambdad(keys.IMAGE, func=to_grey),
            mt.ScaleIntensityd(keys.IMAGE, minv=0.0, maxv=1.0),
            *self.resize_transforms(),
            mt.EnsureTyped(
                MALE, data_type="tensor", dtype=np.float32, track_meta=False, allow_missing_keys=True
            ),
        ]
