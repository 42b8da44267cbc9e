"""RSNAICHDataModule: RSNA Intracranial Hemorrhage, six labels per CT slice, windows as channels."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.classification import ImageDataModule, ImageLayout
from eisen_lightning.data.datamodule import DatasetInfo
from eisen_lightning.data.datasets.rsna_ich import (
    RSNA_ICH_HINT,
    SUBTYPES,
    has_rsna_ich,
    patient_ids,
    read_rsna_ich,
)
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

#: (centre, width) in HU: brain, subdural and bone windows, the usual three for this data set.
DEFAULT_WINDOWS = ((40.0, 80.0), (80.0, 200.0), (600.0, 2800.0))


class RSNAICHDataModule(ImageDataModule):
    """RSNA ICH (stage 2) from ``<data_dir>/<folder>`` in its Kaggle layout.

    Each slice is read in Hounsfield units (DICOM rescale slope and intercept applied), then each
    window ``(centre, width)`` of ``windows`` is clipped and scaled to [0, 1] and the windows are
    stacked as channels. The label is the 0/1 vector over epidural, intraparenchymal,
    intraventricular, subarachnoid, subdural and any. Splits keep the share of "any" hemorrhage and,
    with ``group_by_patient``, keep all slices of one patient (DICOM PatientID) in one split.

    Args:
        data_dir: Folder holding the data-set folder.
        folder: The data-set folder.
        windows: ``[[centre, width], ...]`` HU windows, one channel each.
        group_by_patient: Read each slice's PatientID (once; cached as ``stage_2_train_patients.csv``).
        image_size: ``[height, width]`` slices are resized to.
        **kwargs: Settings of :class:`ImageDataModule`.

    >>> RSNAICHDataModule("data").info.in_channels
    3
    """

    def __init__(
        self,
        data_dir: str,
        folder: str = "rsna_ich",
        windows: Sequence[Sequence[float]] = DEFAULT_WINDOWS,
        group_by_patient: bool = True,
        image_size: Sequence[int] | None = (256, 256),
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir, folder, image_size=image_size, **kwargs)
        bad = [list(w) for w in windows if len(w) != 2 or not float(w[1]) > 0]
        if not windows or bad:
            raise ValueError(
                f"data.windows must be [[centre, width], ...] with width > 0, got {bad or windows}"
            )
        self.windows = [(float(c), float(w)) for c, w in windows]
        self.group_by_patient = group_by_patient

    @classmethod
    def write_replica(cls, data_dir: str, folder: str = "rsna_ich", **_: Any) -> Path:
        """Write a tiny replica: CT DICOM slices with real tags, the 6-rows-per-image CSV."""
        from eisen_lightning.data.synthetic.rsna_ich import write_rsna_ich_replica

        return write_rsna_ich_replica(Path(data_dir) / folder)

    @property
    def missing_hint(self) -> str:
        """Where to get the data (Kaggle, behind a login)."""
        return RSNA_ICH_HINT.format(root=self.root)

    @property
    def info(self) -> DatasetInfo:
        """One channel per window, six labels."""
        return self.image_info(len(self.windows), list(SUBTYPES))

    def has_data(self) -> bool:
        """The training CSV or DICOM folder is present."""
        return has_rsna_ich(self.root)

    def read_layout(self) -> ImageLayout:
        """Parse the CSV and the DICOM folders; add each slice's patient when grouping."""
        layout = read_rsna_ich(self.root)
        if self.group_by_patient:
            log.info("reading the PatientID of %d slices (cached afterwards)", len(layout.labelled))
            patients = patient_ids(self.root, layout.labelled)
            for case in layout.labelled:
                case[keys.PATIENT_ID] = patients[case[keys.CASE_ID]]
        return layout

    def case_stratum(self, case: dict[str, Any]) -> Any:
        """Whether the slice shows any hemorrhage."""
        return int(case[keys.LABEL][-1] > 0.5)

    def load_transforms(self, with_label: bool) -> list:
        """Read HU, stack the windows as channels, resize."""
        from monai import transforms as mt

        from eisen_lightning.io import readers

        names = [f"{keys.IMAGE}_window{i}" for i in range(len(self.windows))]
        steps: list = [
            mt.LoadImaged(keys.IMAGE, reader=readers(), image_only=True, ensure_channel_first=True),
            mt.CopyItemsd(keys.IMAGE, times=len(names), names=names),
        ]
        for name, (centre, width) in zip(names, self.windows, strict=True):
            low, high = centre - width / 2, centre + width / 2
            steps.append(
                mt.ScaleIntensityRanged(name, a_min=low, a_max=high, b_min=0.0, b_max=1.0, clip=True)
            )
        steps += [mt.ConcatItemsd(names, keys.IMAGE), mt.DeleteItemsd(names)]
        return steps + self.resize_transforms()
