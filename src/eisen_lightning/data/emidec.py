"""EmidecDataModule: EMIDEC myocardial infarction segmentation, splits stratified by the pathological flag."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eisen_lightning.data.datasets.emidec import LABEL_NAMES, PATHOLOGICAL, read_emidec
from eisen_lightning.data.json_list import CaseListDataModule

GET_DATA_HINT = (
    "EMIDEC is distributed after registration at http://emidec.com/. Extract it so that "
    "{root}/Case_P001/Images/Case_P001.nii.gz and {root}/Case P001.txt exist, or point paths.data_dir "
    "(EISEN_DATA_DIR) elsewhere."
)


class EmidecDataModule(CaseListDataModule):
    """EMIDEC: 3D short-axis DE-MRI into 5 labels; normal and pathological cases in every split.

    Args:
        data_dir: Folder holding the data sets (``paths.data_dir``).
        folder: The training folder (case folders and clinical ``.txt`` files), relative to ``data_dir``.
        test_folder: A folder of cases without contours, relative to ``data_dir``, or ``None``.
        **kwargs: Settings of :class:`~eisen_lightning.data.json_list.CaseListDataModule`.

    >>> EmidecDataModule("data").case_stratum({"case_id": "Case_P042", "pathological": True})
    True
    """

    def __init__(
        self,
        data_dir: str,
        folder: str = "emidec",
        test_folder: str | None = None,
        spacing: Sequence[float] | None = (1.4, 1.4, 10.0),
        patch_size: Sequence[int] = (128, 128, 8),
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir, spacing, patch_size, **kwargs)
        self.root = self.data_dir / folder
        self.test_root = self.data_dir / test_folder if test_folder else None

    @classmethod
    def write_replica(cls, data_dir: str, folder: str = "emidec", **_: Any) -> Path:
        """Write a small synthetic EMIDEC (normal and pathological cases, clinical files)."""
        from eisen_lightning.data.synthetic.emidec import write_emidec_replica

        return write_emidec_replica(Path(data_dir) / folder)

    @property
    def label_names(self) -> list[str]:
        """Background, cavity, myocardium, infarction, no-reflow."""
        return list(LABEL_NAMES)

    def case_stratum(self, case: dict[str, Any]) -> Any:
        """The pathological flag: splits keep the share of pathological cases."""
        return bool(case[PATHOLOGICAL])

    def read_cases(self) -> list[dict[str, Any]]:
        """Training cases and, when set, unlabelled ones."""
        cases = read_emidec(self.root, training=True, hint=GET_DATA_HINT.format(root=self.root))
        if self.test_root is not None:
            cases += read_emidec(
                self.test_root, training=False, hint=GET_DATA_HINT.format(root=self.test_root)
            )
        return cases
