"""CamusDataModule: CAMUS 2D echocardiography, one view or both, ED and ES frames grouped by patient."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eisen_lightning.data.datasets.camus import LABEL_NAMES, VIEWS, read_camus
from eisen_lightning.data.json_list import CaseListDataModule

GET_DATA_HINT = (
    "CAMUS is distributed after registration at https://www.creatis.insa-lyon.fr/Challenge/camus/ "
    "(https://humanheart-project.creatis.insa-lyon.fr/database/). Extract it so that "
    "{root}/patient0001/patient0001_2CH_ED.mhd exists (set data.folder to the training folder, "
    "data.test_folder to the testing one), or point paths.data_dir (EISEN_DATA_DIR) elsewhere."
)
VIEW_CHOICES = (*VIEWS, "both")


class CamusDataModule(CaseListDataModule):
    """CAMUS, read from its patient folders; 2D segmentation into 4 labels.

    Args:
        data_dir: Folder holding the data sets (``paths.data_dir``).
        folder: The training folder (patient folders with ``_gt`` labels), relative to ``data_dir``.
        test_folder: The testing folder (no labels), relative to ``data_dir``, or ``None``.
        view: ``2CH``, ``4CH``, or ``both`` (each view's frames as separate samples).
        with_sequences: Keep the cine sequences as ``sequence_<view>`` case fields.
        **kwargs: Settings of :class:`~eisen_lightning.data.json_list.CaseListDataModule`.

    >>> CamusDataModule("data", view="4CH", patch_size=(256, 256)).views
    ('4CH',)
    """

    sliceable = False  # the images are 2D already
    image_dims = 2

    def __init__(
        self,
        data_dir: str,
        folder: str = "camus/training",
        test_folder: str | None = None,
        view: str = "2CH",
        with_sequences: bool = False,
        spacing: Sequence[float] | None = (0.6, 0.6),
        patch_size: Sequence[int] = (256, 256),
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, spacing=spacing, patch_size=patch_size, **kwargs)
        if view not in VIEW_CHOICES:
            raise ValueError(f"data.view must be one of {VIEW_CHOICES}, got {view!r}")
        self.root = self.data_dir / folder
        self.test_root = self.data_dir / test_folder if test_folder else None
        self.views = VIEWS if view == "both" else (view,)
        self.with_sequences = with_sequences

    @classmethod
    def write_replica(
        cls, data_dir: str, folder: str = "camus/training", test_folder: str | None = None, **_: Any
    ) -> Path:
        """Write a small synthetic CAMUS (training and, when named, testing folders)."""
        from eisen_lightning.data.synthetic.camus import write_camus_replica

        return write_camus_replica(
            Path(data_dir) / folder, Path(data_dir) / test_folder if test_folder else None
        )

    @property
    def label_names(self) -> list[str]:
        """Background, LV endocardium, myocardium, left atrium."""
        return list(LABEL_NAMES)

    def read_cases(self) -> list[dict[str, Any]]:
        """The training folder's labelled frames, and the testing folder's frames when set."""
        hint = GET_DATA_HINT.format(root=self.root)
        args = {"views": self.views, "with_sequences": self.with_sequences, "check_files": self.check_files}
        cases = read_camus(self.root, with_ground_truth=True, hint=hint, **args)
        if self.test_root is not None:
            hint = GET_DATA_HINT.format(root=self.test_root)
            cases += read_camus(self.test_root, with_ground_truth=False, hint=hint, **args)
        return cases
