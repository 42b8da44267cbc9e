"""MedSegDataModule: the MedSeg COVID-19 CT stack, one 2D sample per slice, each stack read once."""

import threading
from collections.abc import Hashable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from monai.transforms import MapTransform

from eisen_lightning import keys
from eisen_lightning.data.datasets.json_list import missing_data_error
from eisen_lightning.data.datasets.medseg import LABEL_NAMES, SLICE_INDEX, read_medseg
from eisen_lightning.data.json_list import CaseListDataModule
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

GET_DATA_HINT = (
    "Get tr_im.nii.gz and tr_mask.nii.gz from https://medicalsegmentation.com/covid19/ (or set "
    "data.download=true) and put them in {root}/, or point paths.data_dir (EISEN_DATA_DIR) elsewhere."
)
_LOCK = threading.Lock()


@lru_cache(maxsize=4)
def _stack(path: str, mtime_ns: int) -> Any:
    from eisen_lightning.io import load

    log.info("reading %s", path)
    return load(path)


def load_stack(path: str) -> Any:
    """The whole stack at ``path`` as a channel-first MetaTensor, read once per process (and per change)."""
    with _LOCK:
        return _stack(str(path), Path(path).stat().st_mtime_ns)


def slice_of(stack: Any, index: int) -> Any:
    """Slice ``index`` along the last axis of ``stack``, a 2D MetaTensor with the slice's own geometry.

    The affine keeps the stack's 4x4 orientation and spacing; its origin moves to the slice, so a
    slice maps to the same world coordinates as in the volume.
    """
    from monai.data import MetaTensor

    if not 0 <= index < stack.shape[-1]:
        raise IndexError(
            f"{stack.meta.get('filename_or_obj')}: slice {index} out of 0..{stack.shape[-1] - 1}"
        )
    affine = np.array(stack.affine, dtype=np.float64)
    affine[:3, 3] = affine[:3, :3] @ np.array([0.0, 0.0, float(index)]) + affine[:3, 3]
    meta = {k: v for k, v in stack.meta.items() if k not in ("affine", "original_affine", "spatial_shape")}
    meta.update(
        original_affine=affine.copy(), spatial_shape=np.array(stack.shape[1:-1]), **{SLICE_INDEX: index}
    )
    return MetaTensor(stack.as_tensor()[..., index].clone(), affine=affine, meta=meta)


def read_slice(case: dict[str, Any], key: str) -> Any:
    """The slice ``case["slice_index"]`` of the stack at ``case[key]`` (the whole image without an index)."""
    return LoadStackSliced([key])(case)[key]


class LoadStackSliced(MapTransform):
    """Load ``keys`` as slice ``d["slice_index"]`` of their (cached) stacks; whole images without an index.

    A deterministic MONAI dictionary transform (so caching datasets keep its output): stacks are
    read once per process through :func:`eisen_lightning.io.load`, never once per slice.

    Args:
        keys: Sample keys holding stack paths.
        allow_missing_keys: Skip keys absent from a sample.
    """

    def __init__(self, keys: Sequence[Hashable], allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        """Replace each path by its slice (or by the whole image when there is no slice index)."""
        from eisen_lightning.io import load

        d = dict(data)
        for key in self.key_iterator(d):
            if SLICE_INDEX in d:
                d[key] = slice_of(load_stack(d[key]), int(d[SLICE_INDEX]))
            else:
                d[key] = load(d[key])
        return d


class MedSegDataModule(CaseListDataModule):
    """MedSeg COVID-19: 2D segmentation of the slices of ``tr_im.nii.gz`` (4 labels).

    Args:
        data_dir: Folder holding the data sets (``paths.data_dir``).
        folder: Folder of the files, relative to ``data_dir``.
        image_file: The image stack.
        mask_file: The mask stack.
        test_file: An unlabelled stack (``val_im.nii.gz``) for prediction, or ``None``.
        download: Download the data when it is missing.
        **kwargs: Settings of :class:`~eisen_lightning.data.json_list.CaseListDataModule`.

    >>> MedSegDataModule("data").root.as_posix()
    'data/medseg_covid'
    """

    sliceable = False  # the images are 2D already
    image_dims = 2
    slice_stacks = True

    def __init__(
        self,
        data_dir: str,
        folder: str = "medseg_covid",
        image_file: str = "tr_im.nii.gz",
        mask_file: str = "tr_mask.nii.gz",
        test_file: str | None = None,
        download: bool = False,
        spacing: Sequence[float] | None = None,
        patch_size: Sequence[int] = (256, 256),
        normalization: str = "ct",
        ct_window: Sequence[float] = (-1250.0, 250.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            data_dir, spacing, patch_size, normalization=normalization, ct_window=ct_window, **kwargs
        )
        if not mask_file:
            raise ValueError(
                "data.mask_file must name the mask stack (tr_mask.nii.gz): training needs labels"
            )
        self.root = self.data_dir / folder
        self.image_file, self.mask_file, self.test_file, self.download = (
            image_file,
            mask_file,
            test_file,
            download,
        )

    @classmethod
    def write_replica(
        cls, data_dir: str, folder: str = "medseg_covid", test_file: str | None = None, **_: Any
    ) -> Path:
        """Write small synthetic stacks with the real file names."""
        from eisen_lightning.data.synthetic.medseg import write_medseg_replica

        return write_medseg_replica(Path(data_dir) / folder, test_file)

    def prepare_data(self) -> None:
        """Download the stacks when asked and missing, then check them."""
        if not (self.root / self.image_file).is_file():
            if not self.download:
                raise missing_data_error(
                    self.root / self.image_file, "the image stack", GET_DATA_HINT.format(root=self.root)
                )
            from eisen_lightning.data.download import download_dataset

            download_dataset("medseg_covid", self.data_dir)
        super().prepare_data()

    @property
    def label_names(self) -> list[str]:
        """Background, ground-glass opacity, consolidation, pleural effusion."""
        return list(LABEL_NAMES)

    def verify_spec(self) -> Any:
        """Each case is read as its slice of the stacks (each stack read once); a slice may be empty."""
        from eisen_lightning.data.verify import VerifySpec

        spec = super().verify_spec()
        return VerifySpec(label_values=spec.label_values, read=read_slice, empty_labels_ok=True)

    def read_cases(self) -> list[dict[str, Any]]:
        """One case per slice of the stacks."""
        hint = GET_DATA_HINT.format(root=self.root)
        return read_medseg(self.root, self.image_file, self.mask_file, self.test_file, hint=hint)

    def deterministic(self, with_label: bool, pad: bool) -> list:
        """The shared chain, loading slices of the cached stacks instead of whole files."""
        from monai.transforms import LoadImaged

        steps = super().deterministic(with_label, pad)
        load = [keys.IMAGE, keys.LABEL] if with_label else [keys.IMAGE]
        return [LoadStackSliced(load) if isinstance(step, LoadImaged) else step for step in steps]
