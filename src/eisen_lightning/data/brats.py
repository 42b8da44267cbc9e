"""BratsDataModule: BraTS 2020, four MR channels, labels 1/2/4 as the overlapping regions TC, WT, ET."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.datasets.brats import MODALITIES, REGIONS, read_brats
from eisen_lightning.data.json_list import SAMPLE_KEYS, CaseListDataModule
from eisen_lightning.data.slicing import crop_size, squeeze_slice_axis

GET_DATA_HINT = (
    "BraTS 2020 is distributed after registration at "
    "https://www.med.upenn.edu/cbica/brats2020/registration.html "
    "(also on Kaggle: awsaf49/brats20-dataset-training-validation). Extract it so that "
    "{root}/BraTS20_Training_001/BraTS20_Training_001_t1.nii.gz exists, or point paths.data_dir "
    "(EISEN_DATA_DIR) elsewhere."
)
FG, BG = f"{keys.LABEL}_fg_indices", f"{keys.LABEL}_bg_indices"
#: Values of the segmentation files: background, necrotic core, oedema, enhancing tumour (no 3).
LABEL_VALUES = (0, 1, 2, 4)


class BratsDataModule(CaseListDataModule):
    """BraTS 2020: multi-label 3D segmentation of TC (1+4), WT (1+2+4) and ET (4).

    Train it with ``task=segmentation_regions loss=dice_sigmoid`` (as ``+experiment=brats`` does).

    Args:
        data_dir: Folder holding the data sets (``paths.data_dir``).
        folder: The training folder of subject folders, relative to ``data_dir``.
        test_folder: The validation folder (no segmentations), relative to ``data_dir``, or ``None``.
        modalities: Input channels, in order: some of ``t1``, ``t1ce``, ``t2``, ``flair``.
        **kwargs: Settings of :class:`~eisen_lightning.data.json_list.CaseListDataModule`.

    >>> BratsDataModule("data").info.label_names
    ['TC', 'WT', 'ET']
    """

    sliceable = True

    def __init__(
        self,
        data_dir: str,
        folder: str = "brats2020/MICCAI_BraTS2020_TrainingData",
        test_folder: str | None = None,
        modalities: Sequence[str] = MODALITIES,
        spacing: Sequence[float] | None = (1.0, 1.0, 1.0),
        patch_size: Sequence[int] = (128, 128, 128),
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir, spacing, patch_size, **kwargs)
        bad = [m for m in modalities if m not in MODALITIES]
        if bad or not modalities or len(set(modalities)) != len(modalities):
            raise ValueError(
                f"data.modalities must be distinct entries of {list(MODALITIES)}, got {list(modalities)}"
            )
        self.root = self.data_dir / folder
        self.test_root = self.data_dir / test_folder if test_folder else None
        self.modalities = list(modalities)

    @classmethod
    def write_replica(
        cls, data_dir: str, folder: str = "brats2020/MICCAI_BraTS2020_TrainingData", **_: Any
    ) -> Path:
        """Write a small synthetic BraTS 2020 training folder with its two CSV files."""
        from eisen_lightning.data.synthetic.brats import write_brats_replica

        return write_brats_replica(Path(data_dir) / folder)

    @property
    def label_names(self) -> list[str]:
        """The regions: tumour core, whole tumour, enhancing tumour (no background channel)."""
        return list(REGIONS)

    @property
    def in_channels(self) -> int:
        """One channel per modality."""
        return len(self.modalities)

    def verify_spec(self) -> Any:
        """The segmentation files hold BraTS' own labels 0, 1, 2, 4 (the regions are derived from them)."""
        from eisen_lightning.data.verify import VerifySpec

        return VerifySpec(label_values=LABEL_VALUES)

    def read_cases(self) -> list[dict[str, Any]]:
        """Training subjects and, when set, the unlabelled ones; ``image`` lists the modalities' files."""
        cases = read_brats(self.root, training=True, hint=GET_DATA_HINT.format(root=self.root))
        if self.test_root is not None:
            cases += read_brats(
                self.test_root, training=False, hint=GET_DATA_HINT.format(root=self.test_root)
            )
        for case in cases:
            case[keys.IMAGE] = [case[m] for m in self.modalities]
        return cases

    def train_transforms(self) -> list:
        """Deterministic prefix (padded, tumour and background voxels indexed), then crops half on tumour."""
        from monai import transforms as mt

        both = [keys.IMAGE, keys.LABEL]
        axes = range(len(self.patch_size))  # after the squeeze with data.slice_axis: the 2 in-plane axes
        return [
            *self.deterministic(with_label=True, pad=True),
            mt.RandCropByPosNegLabeld(
                both,
                label_key=keys.LABEL,
                spatial_size=crop_size(self.patch_size, self.slice_axis),
                pos=1,
                neg=1,
                num_samples=self.num_samples,
                fg_indices_key=FG,
                bg_indices_key=BG,
            ),
            mt.DeleteItemsd([FG, BG]),
            *squeeze_slice_axis(both, self.slice_axis),
            *[mt.RandFlipd(both, prob=0.5, spatial_axis=axis) for axis in axes],
            mt.RandScaleIntensityd(keys.IMAGE, factors=0.1, prob=0.5),
            mt.RandShiftIntensityd(keys.IMAGE, offsets=0.1, prob=0.5),
        ]

    def deterministic(self, with_label: bool, pad: bool) -> list:
        """Load, orient, resample, z-score per channel; the label becomes the TC, WT, ET channels."""
        import torch
        from monai import transforms as mt

        from eisen_lightning.io import readers

        both = [keys.IMAGE, keys.LABEL] if with_label else [keys.IMAGE]
        steps: list = [
            mt.LoadImaged(both, reader=readers(), image_only=True, ensure_channel_first=True),
            mt.Orientationd(both, axcodes="RAS", labels=None),
        ]
        if self.spacing is not None:
            steps.append(mt.Spacingd(both, pixdim=self.spacing, mode=("bilinear", "nearest")[: len(both)]))
        steps.append(mt.NormalizeIntensityd(keys.IMAGE, nonzero=True, channel_wise=True))
        if pad:
            steps.append(mt.SpatialPadd(both, spatial_size=crop_size(self.patch_size, self.slice_axis)))
        if with_label and pad:
            steps.append(mt.FgBgToIndicesd(keys.LABEL, fg_postfix="_fg_indices", bg_postfix="_bg_indices"))
        if with_label:
            steps.append(mt.ConvertToMultiChannelBasedOnBratsClassesd(keys.LABEL))
        steps += [
            mt.EnsureTyped(both, dtype=torch.float32, track_meta=True),
            mt.SelectItemsd([*SAMPLE_KEYS, FG, BG], allow_missing_keys=True),
        ]
        return steps
