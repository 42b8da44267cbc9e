"""MedicalDataModule: splits, caching, loaders and collate, shared by every data set."""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from eisen_lightning import keys
from eisen_lightning.data.cache import cached_dataset, check_cache
from eisen_lightning.data.collate import collate
from eisen_lightning.data.slicing import check_slice_axis
from eisen_lightning.data.splits import SPLIT_NAMES, load_splits, make_splits, save_splits
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)


@dataclass
class DatasetInfo:
    """What the rest of a run needs to know about a data set, merged into the config as ``dataset``.

    Attributes:
        in_channels: Input channels of the net.
        num_classes: Output classes, background included.
        label_names: One name per class, background first.
        spatial_dims: 2 or 3.

    >>> DatasetInfo(in_channels=1, num_classes=3, label_names=["background", "organ", "lesion"]).as_dict()
    {'in_channels': 1, 'num_classes': 3, 'label_names': ['background', 'organ', 'lesion'], 'spatial_dims': 3}
    """

    in_channels: int
    num_classes: int
    label_names: list[str]
    spatial_dims: int = 3

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict."""
        return asdict(self)


class MedicalDataModule(pl.LightningDataModule):
    """Base DataModule: subclasses list the cases and the transforms; this class does the rest.

    Subclasses implement :meth:`labelled_cases`, :meth:`train_transforms`, :meth:`eval_transforms`
    and the :attr:`info` property; :meth:`prepare_data` checks (or fetches) the data.

    Args:
        batch_size: Volumes per training batch (each gives ``num_samples`` crops where a subclass crops).
        val_batch_size: Volumes per validation and test batch.
        num_workers: DataLoader worker processes.
        fold: Validation fold, ``0 <= fold < num_folds``.
        num_folds: Cross-validation folds.
        test_fraction: Share of labelled cases held out for the test stage.
        seed: Seed of the split shuffle.
        cache_rate: Share of cases whose deterministic transforms are cached in memory (0 to 1).
        cache: Where the deterministic transforms' results are kept: ``memory`` (each process),
            ``disk`` (``cache_dir``, computed once per node, reused by later runs) or ``none``.
        cache_dir: Folder of the ``disk`` cache (entries are keyed by the transforms' settings).
        output_dir: Where ``splits.json`` is written (the run directory), or ``None``.
        splits_file: A ``splits.json`` to reuse (an earlier run's) instead of computing the splits.
        slice_axis: ``None`` (whole images), or the axis (0, 1, 2) along which 3D volumes are sliced
            to train a 2D net; only for subclasses with ``sliceable = True`` (see ``data/slicing.py``).
        augmentations: Extra MONAI dictionary transforms (``MapTransform``) run, in order, after the
            data set's own training transforms, on the training split only (on the 2D slices when
            ``slice_axis`` is set): a mapping ``name -> transform`` (the ``transforms`` config
            group) or a list.
        train_meta: Keep MONAI's metadata tracking (``MetaTensor`` affines, applied operations) in
            the random part of the training transforms, so that training batches carry
            ``batch["meta"]``. Off by default: nothing in training reads it, and tracking costs
            about half of a warm epoch. Validation, test and predict batches always carry it.

    A minimal subclass, on cases held in memory:

    >>> import torch
    >>> from monai.transforms import EnsureTyped
    >>> class Blobs(MedicalDataModule):
    ...     info = DatasetInfo(in_channels=1, num_classes=2, label_names=["background", "blob"])
    ...
    ...     def labelled_cases(self):
    ...         shape = (1, 8, 8, 8)
    ...         return [
    ...             {"case_id": f"blob_{i}", "image": torch.rand(shape), "label": torch.zeros(shape)}
    ...             for i in range(10)
    ...         ]
    ...
    ...     def train_transforms(self):
    ...         return [EnsureTyped(keys=["image", "label"])]
    ...
    ...     eval_transforms = train_transforms
    >>> data = Blobs(batch_size=2, num_folds=4, test_fraction=0.2, cache="none")
    >>> data.setup("fit")
    >>> {split: len(ids) for split, ids in data.splits.items()}
    {'train': 6, 'val': 2, 'test': 2}
    >>> next(iter(data.train_dataloader()))["image"].shape
    torch.Size([2, 1, 8, 8, 8])
    """

    #: Whether the subclass honours ``slice_axis``: its ``info.spatial_dims`` is then 2, its training
    #: samples are 2D slices of its volumes, and its evaluation samples stay whole 3D volumes.
    sliceable: bool = False
    #: Whether each image file is a stack of 2D samples along its last axis, a case being one slice
    #: (``slice_index``): ``eisen predict`` then predicts a whole file slice by slice into one volume.
    slice_stacks: bool = False

    def __init__(
        self,
        batch_size: int = 2,
        val_batch_size: int = 1,
        num_workers: int = 0,
        fold: int = 0,
        num_folds: int = 5,
        test_fraction: float = 0.2,
        seed: int = 0,
        cache_rate: float = 1.0,
        cache: str = "memory",
        cache_dir: str | None = None,
        output_dir: str | None = None,
        splits_file: str | None = None,
        slice_axis: int | None = None,
        augmentations: Mapping[str, Any] | Sequence[Any] | None = None,
        train_meta: bool = False,
    ) -> None:
        super().__init__()
        _check_positive(batch_size=batch_size, val_batch_size=val_batch_size)
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}")
        if not 0.0 <= cache_rate <= 1.0:
            raise ValueError(f"data.cache_rate must be in [0, 1], got {cache_rate}")
        self.batch_size, self.val_batch_size, self.num_workers = batch_size, val_batch_size, num_workers
        self.fold, self.num_folds, self.test_fraction, self.seed = fold, num_folds, test_fraction, seed
        self.cache_rate = cache_rate
        check_cache(cache, cache_dir)
        self.cache, self.cache_dir = cache, Path(cache_dir) if cache_dir else None
        self.output_dir = Path(output_dir) if output_dir else None
        self.splits_file = Path(splits_file) if splits_file else None
        self.slice_axis = check_slice_axis(slice_axis)
        if self.slice_axis is not None and not self.sliceable:
            raise ValueError(
                f"data.slice_axis={slice_axis}: {type(self).__name__} does not train on slices of 3D "
                "volumes; set data.slice_axis=null"
            )
        self.augmentations = check_augmentations(augmentations)
        if not isinstance(train_meta, bool):
            raise TypeError(f"data.train_meta must be true or false, got {train_meta!r}")
        self.train_meta = train_meta
        #: Check the listed files (existence, headers) while parsing the layout; ``eisen verify``
        #: turns this off because it reads every file itself and reports all problems together.
        self.check_files = True
        self.splits: dict[str, list[str]] = {}
        self.datasets: dict[str, Any] = {}

    # -- what subclasses provide ------------------------------------------------------------
    @property
    def info(self) -> DatasetInfo:
        """Channels, classes and label names of the data set."""
        raise NotImplementedError(f"{type(self).__name__} must define the 'info' property")

    def labelled_cases(self) -> list[dict[str, Any]]:
        """Return every labelled case as a dict with a unique ``case_id``."""
        raise NotImplementedError(f"{type(self).__name__} must define labelled_cases()")

    def unlabelled_cases(self) -> list[dict[str, Any]]:
        """Return the cases without labels (a data set's official test images); none by default."""
        return []

    def case_group(self, case: dict[str, Any]) -> str:
        """The patient (or volume) a case belongs to: cases of one group never cross splits.

        Defaults to the case's ``patient_id`` when it has one, else its own ``case_id``.
        """
        return str(case.get(keys.PATIENT_ID, case[keys.CASE_ID]))

    def case_stratum(self, case: dict[str, Any]) -> Any:
        """The class the splits keep in proportion (classification overrides it); ``None``: none."""
        return None

    def verify_spec(self) -> Any:
        """What ``eisen verify`` reads and checks in each case: a ``data.verify.VerifySpec``.

        By default: ``image`` is an image file (or a list of channel files), ``label`` a label-map
        file holding values in ``range(num_classes)``. Data sets whose labels are values or other
        codes override it.
        """
        from eisen_lightning.data.verify import VerifySpec

        return VerifySpec(label_values=range(self.info.num_classes))

    def predict_transforms(self) -> list:
        """Return the deterministic transforms for an image alone (no label), for prediction."""
        raise NotImplementedError(f"{type(self).__name__} must define predict_transforms()")

    def train_transforms(self) -> list:
        """Return the training transforms (deterministic prefix first, then random ones)."""
        raise NotImplementedError(f"{type(self).__name__} must define train_transforms()")

    def eval_transforms(self) -> list:
        """Return the validation and test transforms (deterministic)."""
        raise NotImplementedError(f"{type(self).__name__} must define eval_transforms()")

    # -- Lightning hooks --------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Split the labelled cases, save ``splits.json`` and build the datasets of the stage."""
        if not self.splits:
            self.splits = self._make_splits()
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(stage, SPLIT_NAMES)
        for name in wanted:
            if name not in self.datasets:
                self.datasets[name] = self._dataset(name)

    def train_dataloader(self) -> Any:
        """Shuffled loader over the training split."""
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> Any:
        """Loader over the validation split, whole volumes."""
        return self._loader("val", self.val_batch_size, shuffle=False)

    def test_dataloader(self) -> Any:
        """Loader over the held-out test split, whole volumes."""
        if not self.splits.get("test"):
            raise ValueError(
                "the test stage needs held-out cases but data.test_fraction is "
                f"{self.test_fraction}; set data.test_fraction=0.2 (for example) and train again"
            )
        return self._loader("test", self.val_batch_size, shuffle=False)

    # -- internals --------------------------------------------------------------------------
    def _make_splits(self) -> dict[str, list[str]]:
        cases = self.labelled_cases()
        ids = [case[keys.CASE_ID] for case in cases]
        if self.splits_file is not None:
            splits = load_splits(self.splits_file, ids)
        else:
            groups = {case[keys.CASE_ID]: self.case_group(case) for case in cases}
            strata = {case[keys.CASE_ID]: self.case_stratum(case) for case in cases}
            splits = make_splits(
                ids,
                self.num_folds,
                self.fold,
                self.test_fraction,
                self.seed,
                groups=None if len(set(groups.values())) == len(ids) else groups,
                strata=None if all(v is None for v in strata.values()) else strata,
            )
        if self.output_dir is not None and self.trainer_is_rank_zero():
            settings = {"seed": self.seed, "fold": self.fold, "num_folds": self.num_folds}
            save_splits(self.output_dir / "splits.json", splits, test_fraction=self.test_fraction, **settings)
        log.info("splits: %s", {k: len(v) for k, v in splits.items()})
        return splits

    def trainer_is_rank_zero(self) -> bool:
        """Whether this process writes shared files (true when no trainer is attached)."""
        return self.trainer is None or self.trainer.is_global_zero

    def _dataset(self, split: str) -> Any:
        wanted = set(self.splits[split])
        cases = [case for case in self.labelled_cases() if case[keys.CASE_ID] in wanted]
        if split == "train":
            check_augmentation_keys(self.augmentations, self.verify_spec(), type(self).__name__)
            steps = [*self.train_transforms(), *self.augmentations.values()]
        else:
            steps = self.eval_transforms()
        track = self.train_meta or split != "train"
        return cached_dataset(cases, steps, self.cache, self.cache_dir, self.cache_rate, track)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> Any:
        from monai.data.utils import worker_init_fn
        from torch.utils.data import DataLoader

        if split not in self.datasets:
            self.setup({"train": "fit", "val": "fit", "test": "test"}[split])
        sampler = None if shuffle else _unpadded_distributed_sampler(self.datasets[split])
        return DataLoader(
            self.datasets[split],
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate,
            # each worker reseeds the random transforms' own generators from its torch seed (which
            # Lightning's seed_everything makes reproducible); otherwise every worker starts from the
            # same generator state and the workers draw the same crops
            worker_init_fn=worker_init_fn if self.num_workers > 0 else None,
            persistent_workers=self.num_workers > 0,
            pin_memory=False,
        )


def _unpadded_distributed_sampler(dataset: Any) -> Any:
    """Under DDP, give each process its share of the cases without repeating any.

    Lightning's default sampler pads the last share with repeated cases so that every process
    gets as many; evaluation metrics would then count those cases twice. MONAI's sampler with
    ``even_divisible=False`` does not pad. Outside DDP, Lightning's default (no sampler) is kept.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    from monai.data import DistributedSampler

    return DistributedSampler(dataset, even_divisible=False, shuffle=False)


def check_augmentations(augmentations: Mapping[str, Any] | Sequence[Any] | None) -> dict[str, Any]:
    """Return ``augmentations`` as an ordered ``name -> transform`` dict of MONAI ``MapTransform``s.

    Args:
        augmentations: A mapping (the ``transforms`` config group, in its order), a list (entries
            named by their position) or ``None``. ``None`` entries (a removed option) are skipped.

    Raises:
        TypeError: Naming the entry that is not a MONAI dictionary transform, and the fix.
    """
    from monai.transforms import MapTransform

    if augmentations is None:
        return {}
    if isinstance(augmentations, Mapping):
        named = {str(k): v for k, v in augmentations.items()}
    elif isinstance(augmentations, Sequence) and not isinstance(augmentations, str):
        named = {str(i): v for i, v in enumerate(augmentations)}
    else:
        raise TypeError(
            "data.augmentations must be a mapping name -> transform or a list, "
            f"got {type(augmentations).__name__}"
        )
    for name, transform in named.items():
        if transform is not None and not isinstance(transform, MapTransform):
            kind = f"{type(transform).__module__}.{type(transform).__qualname__}"
            raise TypeError(
                f"transforms.{name}: got {kind}, which is not a MONAI dictionary transform (MapTransform); "
                "the transforms group takes transforms of sample dicts with `keys`, such as "
                "monai.transforms.RandGaussianNoised (the name ending in 'd')"
            )
    return {name: t for name, t in named.items() if t is not None}


def check_augmentation_keys(augmentations: Mapping[str, Any], spec: Any, data_name: str) -> None:
    """Refuse augmentations of sample keys that are not images (a classification label is a class).

    Args:
        augmentations: ``name -> MapTransform``.
        spec: The data set's ``VerifySpec``: its image keys and, for label maps, its label key.
        data_name: The DataModule's class name, for the message.

    Raises:
        ValueError: Naming the augmentation, the key and the keys that are images.
    """
    images = [*spec.image_keys, *([spec.label_key] if spec.label_key else [])]
    for name, transform in augmentations.items():
        other = [str(k) for k in transform.keys if k not in images]
        if other:
            raise ValueError(
                f"transforms.{name} transforms keys {other}, which are not images in the samples of "
                f"{data_name} (its images: {images}; a class label is not an image): spatial "
                "augmentations are for segmentation data sets; choose intensity ones (keys: [image])"
            )


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"data.{name} must be a positive integer, got {value!r}")


def as_list(value: Sequence[Any] | None) -> list[Any] | None:
    """Return ``value`` as a plain list (OmegaConf ListConfig included), or ``None``."""
    return None if value is None else list(value)
