"""UCSDCovidDataModule: UCSD-AI4H COVID-CT, COVID or not from one CT slice."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.classification import ImageDataModule, ImageLayout, to_grey
from eisen_lightning.data.datamodule import DatasetInfo
from eisen_lightning.data.datasets.ucsd_covid import UCSD_COVID_HINT, has_ucsd_covid, read_ucsd_covid

UCSD_COVID_LABELS = ["non_covid", "covid"]


class UCSDCovidDataModule(ImageDataModule):
    """COVID-CT from ``<data_dir>/<folder>/CT_COVID`` and ``CT_NonCOVID`` (PNG and JPEG).

    The pictures come in grey, RGB and RGBA and in many sizes: each is made one grey channel,
    scaled to [0, 1] per image and resized to ``image_size``. Splits keep the class shares and
    the slices of one patient (one paper figure) together.

    Args:
        data_dir: Folder holding the data-set folder.
        folder: The data-set folder.
        image_size: ``[height, width]`` of the net input.
        **kwargs: Settings of :class:`ImageDataModule` (``download=true`` fetches it).

    >>> UCSDCovidDataModule("data").info.label_names
    ['non_covid', 'covid']
    """

    download_name = "ucsd_covid"

    def __init__(
        self,
        data_dir: str,
        folder: str = "ucsd_covid",
        image_size: Sequence[int] | None = (224, 224),
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir, folder, image_size=image_size, **kwargs)

    @classmethod
    def write_replica(cls, data_dir: str, folder: str = "ucsd_covid", **_: Any) -> Path:
        """Write a tiny replica: both class folders with PNG and JPEG slices named as the real ones."""
        from eisen_lightning.data.synthetic.ucsd_covid import write_ucsd_covid_replica

        return write_ucsd_covid_replica(Path(data_dir) / folder)

    @property
    def missing_hint(self) -> str:
        """Where to get the data."""
        return UCSD_COVID_HINT.format(root=self.root)

    @property
    def info(self) -> DatasetInfo:
        """One grey channel, two classes."""
        return self.image_info(1, UCSD_COVID_LABELS)

    def has_data(self) -> bool:
        """A class folder is present."""
        return has_ucsd_covid(self.root)

    def read_layout(self) -> ImageLayout:
        """List the two class folders."""
        return read_ucsd_covid(self.root)

    def load_transforms(self, with_label: bool) -> list:
        """Read the picture as one grey channel in [0, 1], resized."""
        from monai import transforms as mt

        from eisen_lightning.io import readers

        return [
            mt.LoadImaged(keys.IMAGE, reader=readers(), image_only=True, ensure_channel_first=True),
            mt.Lambdad(keys.IMAGE, func=to_grey),
            mt.ScaleIntensityd(keys.IMAGE, minv=0.0, maxv=1.0),
            *self.resize_transforms(),
        ]
