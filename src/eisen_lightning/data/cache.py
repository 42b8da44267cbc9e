"""Caching of the deterministic prefix of a transform pipeline, in memory or on disk.

The prefix (load, orient, resample, normalise: everything before the first random transform) is
computed once per case and kept; the random rest runs every epoch on the kept result.

* ``memory``: MONAI ``CacheDataset`` (per process; filled when the dataset is built). Under DDP,
  with a ``cache_dir``, the node computes each case once into the disk cache and every rank loads
  the entries into its memory (:class:`DiskBackedCacheDataset`).
* ``disk``: MONAI ``PersistentDataset`` under ``cache_dir``: one ``.pt`` file per case, named by
  a hash of the case (its paths, their sizes and modification times) and of the prefix
  (:func:`transform_fingerprint`), so a changed parameter (spacing, CT window, ...) or a changed
  file never reads a stale entry. It is filled once per node: the first process to take the
  folder's file lock computes the missing entries while the others (DDP ranks) wait, then read.
* ``none``: every transform runs every time.
"""

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType
from typing import Any

from monai.data import CacheDataset

from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

CACHE_MODES = ("memory", "disk", "none")
MAX_DEPTH = 12
#: Loggers and locks say nothing about what a transform computes.
_SKIPPED_ATTRIBUTES = ("logger", "_logger", "lock", "_lock")


def check_cache(cache: str, cache_dir: str | os.PathLike | None) -> None:
    """Validate ``data.cache`` and ``data.cache_dir``.

    Raises:
        ValueError: For an unknown mode, or ``disk`` without a folder.
    """
    if cache not in CACHE_MODES:
        raise ValueError(f"data.cache must be one of {CACHE_MODES}, got {cache!r}")
    if cache == "disk" and not cache_dir:
        raise ValueError(
            "data.cache=disk needs data.cache_dir, a folder for the cached cases "
            "(for example data.cache_dir=${paths.data_dir}/.cache); got none"
        )


def cached_dataset(
    cases: Sequence[dict[str, Any]],
    transforms: Sequence[Any],
    cache: str = "memory",
    cache_dir: str | os.PathLike | None = None,
    cache_rate: float = 1.0,
    track_random_meta: bool = True,
) -> Any:
    """A MONAI dataset over ``cases`` that caches the deterministic prefix of ``transforms``.

    Args:
        cases: Sample dicts (paths and labels).
        transforms: The pipeline, deterministic transforms first.
        cache: ``memory``, ``disk`` or ``none``.
        cache_dir: Folder of the ``disk`` cache (shared by runs and processes).
        cache_rate: Share of cases cached in ``memory`` mode (the others run every transform).
        track_random_meta: Keep MONAI's metadata tracking in the random part of the pipeline;
            ``False`` runs it through :class:`~eisen_lightning.transforms.meta.Untracked`
            (plain tensors out, about twice as fast; the cached prefix keeps its geometry).

    >>> ds = cached_dataset([{"x": 1}], [], cache="none")
    >>> ds[0]
    {'x': 1}
    """
    from monai.data import Dataset
    from monai.transforms import Compose

    from eisen_lightning.transforms.meta import untrack_random_part

    check_cache(cache, cache_dir)
    pipeline = Compose(list(transforms) if track_random_meta else untrack_random_part(transforms))
    if cache == "none":
        return Dataset(list(cases), pipeline)
    if cache == "memory":
        settings = dict(cache_rate=cache_rate, num_workers=None, progress=False)
        if cache_dir is not None and distributed():
            # DDP: every rank needs the cases in its memory, but a node computes them once: the
            # first rank fills the disk cache (file lock), then each rank loads the entries
            disk = _persistent(cases, pipeline, cache_dir)
            fill_disk_cache(disk)
            dataset = DiskBackedCacheDataset(disk, copy_cache=copy_cache_needed(transforms), **settings)
        else:
            copy = copy_cache_needed(transforms)
            dataset = CacheDataset(list(cases), pipeline, copy_cache=copy, **settings)
        release_free_heap()
        return dataset
    dataset = _persistent(cases, pipeline, cache_dir)
    fill_disk_cache(dataset)
    return dataset


def _persistent(cases: Sequence[dict[str, Any]], pipeline: Any, cache_dir: str | os.PathLike) -> Any:
    from monai.data import PersistentDataset

    _allow_metadata_in_cache_files()
    return PersistentDataset(
        list(cases),
        pipeline,
        cache_dir=Path(cache_dir),
        hash_func=case_hash,
        hash_transform=_transform_hash,
        track_meta=True,  # keep the MetaTensor geometry that predictions are written back with
    )


def distributed() -> bool:
    """Whether this process is one of several DDP ranks (the process group is up)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class DiskBackedCacheDataset(CacheDataset):
    """MONAI's ``CacheDataset`` whose cached items are read from a filled ``PersistentDataset``.

    Args:
        disk: The disk cache of the same cases and pipeline, already filled.
        **kwargs: ``CacheDataset`` settings (``cache_rate``, ``copy_cache``, ...).
    """

    def __init__(self, disk: Any, **kwargs: Any) -> None:
        self.disk = disk  # set before CacheDataset fills its cache through _load_cache_item
        super().__init__(list(disk.data), disk.transform, **kwargs)

    def _load_cache_item(self, idx: int) -> Any:
        from monai.transforms import convert_to_contiguous

        item = self.disk._cachecheck(self.data[idx])  # MONAI reads the entry the disk cache holds
        return convert_to_contiguous(item) if self.as_contiguous else item


def release_free_heap() -> None:
    """Give the heap that filling the cache freed back to the system (glibc ``malloc_trim``).

    Loading and resampling allocate intermediates (float64 grids, decompressed files) in every
    filling thread's malloc arena; once freed, glibc keeps them in the process. For the demo
    (32 cached cases, 17.9 MiB of tensors) the process grew by 1.77x the cached size without
    this and by 1.28x with it. Elsewhere than glibc this does nothing.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


# -- memory: when can the cached item be handed to the random transforms without a copy ---------
#: Random crops whose outputs are new objects: cropped keys are new (view) tensors with their own
#: metadata, every other key is deep-copied, and the class indices are popped from a shallow copy.
_FRESH_OUTPUT_CROPS = ("RandCropByLabelClassesd", "RandCropByPosNegLabeld", "RandSpatialCropSamplesd")
#: Transforms that never write into their input's storage (they return new tensors), checked for
#: each one by tests/data/test_cache.py.
_NON_MUTATING = (
    "DeleteItemsd",
    "RandFlipd",
    "RandRotate90d",
    "RandScaleIntensityd",
    "RandShiftIntensityd",
    "RandGaussianNoised",
    "RandAdjustContrastd",
    "RandAffined",
    "RandZoomd",
    "EnsureTyped",
    "CastToTyped",
)


def copy_cache_needed(transforms: Sequence[Any]) -> bool:
    """Whether ``CacheDataset`` must deep-copy each cached item before the random transforms run.

    MONAI copies by default (``copy_cache=True``) because a random transform might change the
    cached tensors in place; the copy costs a deep copy of every cached array at every read
    (the demo's training reads, 2 CPU cores: 350 against 411 samples/s; the gap grows with the
    volume size). It is skipped only when the first random transform is a crop of
    :data:`_FRESH_OUTPUT_CROPS` (so nothing downstream holds a cached object, only views of
    cached storage) and every later transform is one of :data:`_NON_MUTATING` (so no view is
    written to). Any other pipeline keeps the copy.
    """
    from monai.transforms import RandomizableTrait, Transform

    names = [type(t).__name__ for t in transforms]
    first = next(
        (
            i
            for i, t in enumerate(transforms)
            if isinstance(t, RandomizableTrait) or not isinstance(t, Transform)
        ),
        None,
    )
    if first is None:
        return False  # nothing runs after the cache
    return names[first] not in _FRESH_OUTPUT_CROPS or any(n not in _NON_MUTATING for n in names[first + 1 :])


# -- disk: keys ---------------------------------------------------------------------------------
def case_hash(case: Any) -> bytes:
    """Hash of a case: its fields, plus the size and modification time of each file it names.

    A file replaced in place (same path, new content) gets a new key. ``PersistentDataset`` calls
    this before it loads an entry, in whatever process reads (DataLoader workers started by
    ``spawn`` included), so the types its metadata needs are allowed here too.
    """
    _allow_metadata_in_cache_files()
    files = {}
    for value in _strings(case):
        if os.path.isfile(value):
            stat = os.stat(value)
            files[value] = [stat.st_size, stat.st_mtime_ns]
    text = json.dumps({"case": _describe(case, set(), 0), "files": files}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest().encode()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def transform_fingerprint(transforms: Sequence[Any]) -> str:
    """A sha256 of what ``transforms`` compute: each one's class and settings, and the MONAI version.

    Stable across processes and runs; any changed parameter (a spacing, a CT window, a reader
    option) changes it.

    >>> from monai.transforms import ScaleIntensityRanged
    >>> a = transform_fingerprint([ScaleIntensityRanged("image", -175, 250, 0, 1)])
    >>> b = transform_fingerprint([ScaleIntensityRanged("image", -100, 250, 0, 1)])
    >>> a == b
    False
    """
    import monai

    description = {"monai": monai.__version__, "transforms": _describe(list(transforms), set(), 0)}
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def _transform_hash(transforms: Sequence[Any]) -> bytes:
    """``PersistentDataset``'s ``hash_transform``: it passes the transforms before the first random one.

    MONAI's own ``json_hashing`` falls back to the class names for transforms that JSON cannot
    encode (all of them), so a changed spacing would keep the key; this describes the settings.
    """
    return transform_fingerprint(transforms).encode()


def _describe(value: Any, seen: set[int], depth: int) -> Any:
    """A JSON-able description of ``value`` that is equal for equal settings in any process."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Enum):
        return f"{_name(type(value))}.{value.name}"
    if isinstance(value, type | FunctionType | BuiltinFunctionType | MethodType | ModuleType):
        return _name(value)
    if depth > MAX_DEPTH:
        return "<deep>"
    array = _as_array(value)
    if array is not None:
        digest = hashlib.sha256(array.tobytes()).hexdigest()
        return {"array": str(array.dtype), "shape": list(array.shape), "sha256": digest}
    if isinstance(value, dict):
        return {
            str(k): _describe(v, seen, depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
        }
    if isinstance(value, list | tuple):
        return [_describe(v, seen, depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(json.dumps(_describe(v, seen, depth + 1), sort_keys=True) for v in value)
    return _describe_object(value, seen, depth)


def _describe_object(value: Any, seen: set[int], depth: int) -> Any:
    if id(value) in seen:
        return f"<cycle {_name(type(value))}>"
    state = getattr(value, "__dict__", None)
    if state is None:
        text = repr(value)
        return _name(type(value)) if " at 0x" in text else f"{_name(type(value))}:{text}"
    seen = seen | {id(value)}
    kept = {k: v for k, v in state.items() if k not in _SKIPPED_ATTRIBUTES and not _is_runtime_state(v)}
    return {"class": _name(type(value)), "state": _describe(kept, seen, depth + 1)}


def _is_runtime_state(value: Any) -> bool:
    """Per-thread state that transforms create while they run (MONAI's ``_tracing`` flag).

    It appears after a transform's first call, so describing it would give a pipeline that has
    run another key than the same pipeline fresh.
    """
    import threading

    return isinstance(value, threading.local)


def _as_array(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray | np.generic):
        return np.ascontiguousarray(value)
    import torch

    if isinstance(value, torch.Tensor):
        return np.ascontiguousarray(value.detach().cpu().numpy())
    return None


def _name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


@functools.cache
def _allow_metadata_in_cache_files() -> None:
    """Let ``torch.load(weights_only=True)`` read the numpy arrays of MetaTensor metadata.

    MONAI registers ``MetaTensor`` itself as safe; the metadata it carries (original affine,
    spacing, shape) holds numpy arrays and a MONAI enum, which ``weights_only`` refuses by default,
    and MONAI then deletes every entry as corrupt and recomputes it. Allowing these plain-data
    types keeps the cache files loaded without running arbitrary pickled code.
    """
    import importlib

    import numpy as np
    import torch
    from monai.utils.enums import TraceKeys

    core = "numpy._core" if hasattr(np, "_core") else "numpy.core"  # numpy 2 renamed it
    reconstruct = importlib.import_module(f"{core}.multiarray")._reconstruct
    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    torch.serialization.add_safe_globals([reconstruct, np.ndarray, np.dtype, TraceKeys, *dtypes])


# -- disk: filling once per node ------------------------------------------------------------------
def fill_disk_cache(dataset: Any) -> int:
    """Compute the missing entries of a ``PersistentDataset`` under a file lock; return how many.

    The first process to take the lock (``<cache_dir>/.lock``) writes; the others wait for it
    and then find every entry present, so a node computes each case once whatever its number
    of DDP ranks. Entries are written by MONAI through a temporary file and a rename.
    """
    from filelock import FileLock

    cache_dir = Path(dataset.cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / ".lock")):
        missing = [item for item in dataset.data if not cache_file(dataset, item).is_file()]
        for item in missing:
            dataset._cachecheck(item)  # MONAI's own compute-and-write of one entry
    if missing:
        log.info("disk cache: %d of %d cases computed into %s", len(missing), len(dataset.data), cache_dir)
    return len(missing)


def cache_file(dataset: Any, case: Any) -> Path:
    """The file a ``PersistentDataset`` keeps ``case`` in: MONAI names it by the two hashes."""
    return Path(dataset.cache_dir) / f"{dataset.hash_func(case).decode('utf-8')}{dataset.transform_hash}.pt"
