"""KaggleCovidDataModule: the Kaggle COVID-19 CT scans, 3D segmentation of lungs, infection or both."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eisen_lightning.data.datasets.kaggle_covid import TARGETS, read_kaggle_covid
from eisen_lightning.data.json_list import CaseListDataModule

GET_DATA_HINT = (
    "The data set is on Kaggle behind a sign-in: https://www.kaggle.com/datasets/andrewmvd/covid19-ct-scans "
    "(kaggle datasets download -d andrewmvd/covid19-ct-scans). Unzip it so that {root}/metadata.csv and "
    "{root}/ct_scans/ exist, or point paths.data_dir (EISEN_DATA_DIR) elsewhere."
)


class KaggleCovidDataModule(CaseListDataModule):
    """Kaggle COVID-19 CT scans (20 volumes), read through ``metadata.csv``.

    Args:
        data_dir: Folder holding the data sets (``paths.data_dir``).
        folder: Folder of ``metadata.csv`` and the four volume folders, relative to ``data_dir``.
        target: Label to learn: ``lung`` (left, right), ``infection``, or ``lung_and_infection``.
        csv_file: The metadata CSV.
        **kwargs: Settings of :class:`~eisen_lightning.data.json_list.CaseListDataModule`.

    >>> KaggleCovidDataModule("data", target="lung").info.label_names
    ['background', 'left_lung', 'right_lung']
    """

    def __init__(
        self,
        data_dir: str,
        folder: str = "kaggle_covid",
        target: str = "infection",
        csv_file: str = "metadata.csv",
        spacing: Sequence[float] | None = (1.5, 1.5, 2.5),
        patch_size: Sequence[int] = (96, 96, 64),
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir, spacing, patch_size, **kwargs)
        if target not in TARGETS:
            raise ValueError(f"data.target must be one of {sorted(TARGETS)}, got {target!r}")
        self.root, self.target, self.csv_file = self.data_dir / folder, target, csv_file

    @classmethod
    def write_replica(cls, data_dir: str, folder: str = "kaggle_covid", **_: Any) -> Path:
        """Write a small synthetic copy with Kaggle's names, CSV and notebook paths."""
        from eisen_lightning.data.synthetic.kaggle_covid import write_kaggle_covid_replica

        return write_kaggle_covid_replica(Path(data_dir) / folder)

    @property
    def label_names(self) -> list[str]:
        """The classes of the chosen ``target``."""
        return list(TARGETS[self.target][1])

    def read_cases(self) -> list[dict[str, Any]]:
        """Every scan listed in the CSV, with its three masks."""
        hint = GET_DATA_HINT.format(root=self.root)
        return read_kaggle_covid(self.root, self.target, self.csv_file, hint=hint)
