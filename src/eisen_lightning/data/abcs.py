"""AbcsDataModule: ABCs brain structures (task 1 or task 2) from CT, T1 and T2 stacked as channels."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.datasets.abcs import LABEL_FIELDS, LABEL_NAMES, MODALITIES, TASKS, read_abcs
from eisen_lightning.data.json_list import CaseListDataModule

GET_DATA_HINT = (
    "ABCs is distributed after registration at https://abcs.mgh.harvard.edu/. Extract the training "
    "archives into {root}/ (flat, or one folder per archive such as ABCs_training_data_Part1/), or "
    "point paths.data_dir (EISEN_DATA_DIR) elsewhere."
)


class AbcsDataModule(CaseListDataModule):
    """ABCs: multi-modal 3D segmentation; ``image`` stacks ``modalities``, ``label`` is ``label_task<task>``.

    Args:
        data_dir: Folder holding the data sets (``paths.data_dir``).
        folder: The training folder, relative to ``data_dir``.
        test_folder: A folder of unlabelled cases (no label maps), relative to ``data_dir``, or ``None``.
        task: 1 (five brain structures) or 2 (ten organs at risk).
        modalities: Input channels, some of ``ct``, ``t1``, ``t2``, in this order.
        **kwargs: Settings of :class:`~eisen_lightning.data.json_list.CaseListDataModule`.

    >>> AbcsDataModule("data", task=2).info.num_classes
    11
    """

    def __init__(
        self,
        data_dir: str,
        folder: str = "abcs",
        test_folder: str | None = None,
        task: int = 1,
        modalities: Sequence[str] = MODALITIES,
        spacing: Sequence[float] | None = (1.2, 1.2, 1.2),
        patch_size: Sequence[int] = (96, 96, 96),
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir, spacing, patch_size, **kwargs)
        if task not in TASKS:
            raise ValueError(f"data.task must be one of {TASKS}, got {task!r}")
        bad = [m for m in modalities if m not in MODALITIES]
        if bad or not modalities or len(set(modalities)) != len(modalities):
            raise ValueError(
                f"data.modalities must be distinct entries of {list(MODALITIES)}, got {list(modalities)}"
            )
        self.root = self.data_dir / folder
        self.test_root = self.data_dir / test_folder if test_folder else None
        self.task, self.modalities = task, list(modalities)

    @classmethod
    def write_replica(cls, data_dir: str, folder: str = "abcs", **_: Any) -> Path:
        """Write a small synthetic ABCs in two part folders, as the archives extract."""
        from eisen_lightning.data.synthetic.abcs import write_abcs_replica

        return write_abcs_replica(Path(data_dir) / folder)

    @property
    def label_names(self) -> list[str]:
        """The task's structures, background first."""
        return list(LABEL_NAMES[self.task])

    @property
    def in_channels(self) -> int:
        """One channel per modality."""
        return len(self.modalities)

    def read_cases(self) -> list[dict[str, Any]]:
        """Training cases (with the task's label) and, when set, unlabelled ones."""
        cases = read_abcs(self.root, training=True, hint=GET_DATA_HINT.format(root=self.root))
        for case in cases:
            case[keys.LABEL] = case[LABEL_FIELDS[self.task]]
        if self.test_root is not None:
            cases += read_abcs(self.test_root, training=False, hint=GET_DATA_HINT.format(root=self.test_root))
        for case in cases:
            case[keys.IMAGE] = [case[m] for m in self.modalities]
        return cases
