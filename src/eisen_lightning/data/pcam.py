"""PCamDataModule: PatchCamelyon read patch by patch from its HDF5 files, official splits by default."""

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.transforms import MapTransform

from eisen_lightning import keys
from eisen_lightning.data.classification import ImageDataModule, ImageLayout
from eisen_lightning.data.datamodule import DatasetInfo
from eisen_lightning.data.datasets.pcam import PCAM_HINT, has_pcam, read_pcam
from eisen_lightning.data.splits import save_splits
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

PCAM_LABELS = ["normal", "tumor"]


class LoadHDF5Itemd(MapTransform):
    """Read ``file.h5#dataset[i]`` items, keeping one open handle per file and per process.

    Opening an HDF5 file for every patch costs more than reading it; sharing a handle across
    DataLoader worker processes corrupts reads. Handles are therefore opened lazily, keyed by the
    process id, and never pickled. A picture item ``(H, W, C)`` becomes ``(C, W, H)`` float32 (the
    package's ``x, y`` axis order, as :class:`~eisen_lightning.io.HDF5Reader` gives).

    Args:
        keys: Keys holding ``file.h5#dataset[index]`` strings.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__(keys)
        self._handles: dict[tuple[int, str], Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": {}}

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Return a copy of ``data`` with each key's item read."""
        out = dict(data)
        for key in self.key_iterator(out):
            out[key] = self._read(str(out[key]))
        return out

    def _read(self, path: str) -> torch.Tensor:
        import h5py

        file, _, item = path.rpartition("#")
        name, _, index = item.partition("[")
        handle_key = (os.getpid(), file)
        if handle_key not in self._handles:
            self._handles[handle_key] = h5py.File(file, "r")
        array = np.asarray(self._handles[handle_key][name][int(index.rstrip("]"))])
        array = array[..., None] if array.ndim == 2 else array
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 1, 0), dtype=np.float32))


class PCamDataModule(ImageDataModule):
    """PatchCamelyon (327,680 patches of 96x96 RGB, tumour or not) from ``<data_dir>/<folder>``.

    Patches are read one by one from the HDF5 files (never all at start-up). By default the
    official files are the splits: ``train`` trains, ``valid`` validates, ``test`` tests; with
    ``official_splits=false`` all patches are pooled and split by ``fold``/``test_fraction``.

    Args:
        data_dir: Folder holding the data-set folder.
        folder: Folder with the ``.h5`` files.
        official_splits: Use the train/valid/test files as the splits.
        image_size: Resize to ``[h, w]``; ``None`` keeps 96x96.
        **kwargs: Settings of :class:`ImageDataModule` (``download``, ``augment``, splits, loaders).

    >>> PCamDataModule("data").root.as_posix()
    'data/pcam'
    """

    download_name = "pcam"

    def __init__(
        self,
        data_dir: str,
        folder: str = "pcam",
        official_splits: bool = True,
        image_size: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir, folder, image_size=image_size, **kwargs)
        self.official_splits = official_splits

    @classmethod
    def write_replica(cls, data_dir: str, folder: str = "pcam", **_: Any) -> Path:
        """Write a tiny PatchCamelyon replica (same file names, keys, shapes and dtypes)."""
        from eisen_lightning.data.synthetic.pcam import write_pcam_replica

        return write_pcam_replica(Path(data_dir) / folder)

    @property
    def missing_hint(self) -> str:
        """Where to get PatchCamelyon."""
        return PCAM_HINT.format(root=self.root)

    @property
    def info(self) -> DatasetInfo:
        """RGB patches, two classes."""
        return self.image_info(3, PCAM_LABELS)

    def has_data(self) -> bool:
        """Any PatchCamelyon file in the folder."""
        return has_pcam(self.root)

    def read_layout(self) -> ImageLayout:
        """Parse the HDF5 files (labels only)."""
        return read_pcam(self.root)

    def load_transforms(self, with_label: bool) -> list:
        """Read the patch from its HDF5 file, scale to [0, 1], optionally resize."""
        from monai import transforms as mt

        return [
            LoadHDF5Itemd([keys.IMAGE]),
            mt.ScaleIntensityRanged(keys.IMAGE, a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0, clip=True),
            *self.resize_transforms(),
        ]

    def _make_splits(self) -> dict[str, list[str]]:
        if not self.official_splits or self.splits_file is not None:
            return super()._make_splits()
        splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for case in self.labelled_cases():
            splits[case["split"]].append(case[keys.CASE_ID])
        empty = [name for name, ids in splits.items() if not ids and name != "test"]
        if empty:
            raise ValueError(
                f"{self.root}: the official {empty} split(s) are empty; add their files or set "
                "data.official_splits=false to split the patches by data.fold and data.test_fraction"
            )
        if self.output_dir is not None and self.trainer_is_rank_zero():
            save_splits(self.output_dir / "splits.json", splits, official_splits=True)
        log.info("official PatchCamelyon splits: %s", {k: len(v) for k, v in splits.items()})
        return splits
