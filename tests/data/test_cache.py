"""Caching of deterministic transforms: keys follow the settings, disk cache once per node, no copies."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from eisen_lightning.data import DecathlonDataModule
from eisen_lightning.data.cache import (
    _FRESH_OUTPUT_CROPS,
    _NON_MUTATING,
    cache_file,
    cached_dataset,
    case_hash,
    copy_cache_needed,
    fill_disk_cache,
    transform_fingerprint,
)
from eisen_lightning.data.synthetic import write_decathlon_replica

SPLEEN = "Task09_Spleen"  # CT: the CT window applies
PATCH = (16, 16, 16)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_decathlon_replica(root, SPLEEN, num_training=4, num_test=0)
    return root


def module(data_dir: Path, **settings) -> DecathlonDataModule:
    defaults = {
        "task": SPLEEN,
        "spacing": (2.0, 2.0, 2.0),
        "patch_size": PATCH,
        "num_folds": 4,
        "test_fraction": 0.0,
    }
    dm = DecathlonDataModule(str(data_dir), **{**defaults, **settings})
    dm.prepare_data()
    return dm


def test_the_fingerprint_follows_every_setting_of_the_deterministic_transforms(data_dir):
    base = transform_fingerprint(module(data_dir).eval_transforms())
    assert transform_fingerprint(module(data_dir).eval_transforms()) == base, "stable across instances"
    changed = [
        {"spacing": (2.0, 2.0, 1.5)},
        {"ct_window": (-100.0, 250.0)},
        {"normalization": "zscore"},
    ]
    keys = {transform_fingerprint(module(data_dir, **c).eval_transforms()) for c in changed}
    assert base not in keys and len(keys) == len(changed)
    train = transform_fingerprint(module(data_dir).train_transforms()[:-1])
    assert train != base, "the training prefix (padding, class indices) is another pipeline"


def test_the_fingerprint_does_not_change_when_the_transforms_run(data_dir):
    """Transforms keep runtime state (MONAI's per-thread tracing flag): it must not change the key."""
    import threading

    from monai.transforms import Compose, RandomizableTrait

    dm = module(data_dir)
    steps = dm.train_transforms()
    prefix = steps[: next(i for i, t in enumerate(steps) if isinstance(t, RandomizableTrait))]
    fresh = transform_fingerprint(prefix)
    case = dm.labelled_cases()[0]
    Compose(steps)(dict(case))
    worker = threading.Thread(target=lambda: Compose(steps)(dict(case)))
    worker.start()
    worker.join()
    assert transform_fingerprint(prefix) == fresh


def test_the_fingerprint_is_the_same_in_another_process(data_dir):
    code = (
        "import sys; from eisen_lightning.data import DecathlonDataModule; "
        "from eisen_lightning.data.cache import transform_fingerprint; "
        f"dm = DecathlonDataModule(sys.argv[1], '{SPLEEN}', spacing=(2.0, 2.0, 2.0), patch_size={PATCH}, "
        "num_folds=2); "
        "print(transform_fingerprint(dm.eval_transforms()))"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code, str(data_dir)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == transform_fingerprint(module(data_dir).eval_transforms())


def test_a_changed_file_gets_a_new_case_key(tmp_path):
    image = tmp_path / "a.nii.gz"
    image.write_bytes(b"one")
    case = {"case_id": "a", "image": str(image)}
    before = case_hash(case)
    assert case_hash(dict(case)) == before
    image.write_bytes(b"other content")
    assert case_hash(case) != before


def _val(dm: DecathlonDataModule) -> dict:
    """The first validation case; the module's validation split has one case."""
    dm.setup("validate")
    assert len(dm.datasets["val"]) == 1
    return dm.datasets["val"][0]


def test_the_disk_cache_gives_what_the_transforms_give_and_never_a_stale_entry(data_dir, tmp_path):
    cache_dir = tmp_path / "cache"
    plain = _val(module(data_dir, cache="none"))
    cached = _val(module(data_dir, cache="disk", cache_dir=str(cache_dir)))
    assert torch.equal(plain["image"].as_tensor(), cached["image"].as_tensor())
    assert torch.equal(plain["image"].affine, cached["image"].affine), "geometry kept in the cache file"
    reread = _val(module(data_dir, cache="disk", cache_dir=str(cache_dir)))
    assert torch.equal(reread["image"].as_tensor(), plain["image"].as_tensor())
    entries = set(cache_dir.glob("*.pt"))
    assert len(entries) == 1
    windowed = _val(module(data_dir, cache="disk", cache_dir=str(cache_dir), ct_window=(-50.0, 100.0)))
    expected = _val(module(data_dir, cache="none", ct_window=(-50.0, 100.0)))
    assert torch.equal(windowed["image"].as_tensor(), expected["image"].as_tensor())
    assert not torch.equal(windowed["image"].as_tensor(), plain["image"].as_tensor())
    assert len(set(cache_dir.glob("*.pt")) - entries) == 1, "a new entry for the new window"


def test_the_disk_cache_is_read_without_recomputing(data_dir, tmp_path, monkeypatch):
    dm = module(data_dir, cache="disk", cache_dir=str(tmp_path))
    dm.setup("fit")
    train = dm.datasets["train"]
    assert all(cache_file(train, case).is_file() for case in train.data), "filled when built"
    monkeypatch.setattr(type(train), "_pre_transform", lambda *_: pytest.fail("recomputed a cached case"))
    crops = train[0]
    assert len(crops) == 2 and tuple(crops[0]["image"].shape[1:]) == PATCH


FILL = """
import sys
from eisen_lightning.data import DecathlonDataModule
dm = DecathlonDataModule(sys.argv[1], "{task}", spacing=(2.0, 2.0, 2.0), patch_size={patch}, num_folds=2,
                         test_fraction=0.0, cache="disk", cache_dir=sys.argv[2])
dm.prepare_data()
from eisen_lightning.data import cache
computed = []
original = cache.fill_disk_cache
cache.fill_disk_cache = lambda ds: computed.append(original(ds)) or computed[-1]
dm.setup("fit")
print("computed", sum(computed))
"""


def test_the_disk_cache_is_computed_once_by_concurrent_builders(data_dir, tmp_path, monkeypatch):
    """Builders that start together each open the lock file, as DDP ranks do: one computes, others read."""
    import threading

    from eisen_lightning.data import cache

    counts: list[int] = []
    monkeypatch.setattr(cache, "fill_disk_cache", lambda ds: counts.append(fill_disk_cache(ds)))
    dm = module(data_dir)
    cases, steps = dm.labelled_cases(), dm.train_transforms()

    def build() -> None:
        cached_dataset(cases, steps, cache="disk", cache_dir=tmp_path)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(counts) == [0, 0, len(cases)], "the cases were computed once in all"


@pytest.mark.slow
def test_the_disk_cache_is_computed_once_by_concurrent_processes(data_dir, tmp_path):
    """Two processes (two DDP ranks of a node) build the same datasets: one computes, one reads."""
    script = FILL.format(task=SPLEEN, patch=PATCH)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-c", script, str(data_dir), str(tmp_path)]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    counts = sorted(int(p.communicate(timeout=300)[0].split()[-1]) for p in procs)
    assert sum(counts) == 4, "4 cases (2 train, 2 val) computed once in all, by either process"
    assert len(list(tmp_path.glob("*.pt"))) == 4


def _snapshot(cache: list) -> list:
    return [
        {
            k: (v.as_tensor().clone(), copy.deepcopy(v.meta), len(v.applied_operations))
            if hasattr(v, "applied_operations")
            else copy.deepcopy(v)
            for k, v in item.items()
        }
        for item in cache
    ]


def _assert_same(before: list, after: list) -> None:
    for old, new in zip(before, after, strict=True):
        assert old.keys() == new.keys()
        for key, value in old.items():
            if isinstance(value, tuple):
                tensor, meta, num_ops = value
                assert torch.equal(tensor, new[key].as_tensor()), f"{key} values changed"
                assert len(new[key].applied_operations) == num_ops, f"{key} gained transform records"
                assert str(meta) == str(new[key].meta), f"{key} metadata changed"
            else:
                assert all(np.array_equal(a, b) for a, b in zip(value, new[key], strict=True)), key


def _read_epochs(dataset, epochs: int = 3) -> None:
    for _ in range(epochs):
        for index in range(len(dataset)):
            dataset[index]


def test_cached_items_are_unchanged_after_epochs_of_random_transforms_without_a_copy(data_dir):
    dm = module(data_dir)
    steps = dm.train_transforms()
    assert not copy_cache_needed(steps), "the training pipeline reads the cache without a copy"
    dm.setup("fit")
    dataset = dm.datasets["train"]
    assert dataset.copy_cache is False
    before = _snapshot(dataset._cache)
    _read_epochs(dataset)
    _assert_same(before, dataset._cache)


def _after_crop(name: str) -> object:
    from monai import transforms as mt

    both = ["image", "label"]
    made = {
        "DeleteItemsd": lambda: mt.DeleteItemsd("unused"),
        "RandFlipd": lambda: mt.RandFlipd(both, prob=1.0, spatial_axis=0),
        "RandRotate90d": lambda: mt.RandRotate90d(both, prob=1.0, max_k=3),
        "RandScaleIntensityd": lambda: mt.RandScaleIntensityd("image", factors=0.5, prob=1.0),
        "RandShiftIntensityd": lambda: mt.RandShiftIntensityd("image", offsets=0.5, prob=1.0),
        "RandGaussianNoised": lambda: mt.RandGaussianNoised("image", prob=1.0),
        "RandAdjustContrastd": lambda: mt.RandAdjustContrastd("image", prob=1.0),
        "RandAffined": lambda: mt.RandAffined(both, prob=1.0, rotate_range=0.3, mode=("bilinear", "nearest")),
        "RandZoomd": lambda: mt.RandZoomd(both, prob=1.0, min_zoom=0.8, max_zoom=1.2, keep_size=True),
        "EnsureTyped": lambda: mt.EnsureTyped(both),
        "CastToTyped": lambda: mt.CastToTyped("image", dtype=torch.float16),
    }
    return made[name]()


@pytest.mark.parametrize("name", _NON_MUTATING)
def test_each_transform_trusted_after_the_cache_leaves_it_unchanged(name, data_dir):
    from monai import transforms as mt

    training = module(data_dir).train_transforms()
    first = next(i for i, t in enumerate(training) if isinstance(t, mt.RandomizableTrait))
    assert type(training[first]).__name__ in _FRESH_OUTPUT_CROPS
    steps = [*training[: first + 1], _after_crop(name)]
    assert not copy_cache_needed(steps)
    dataset = cached_dataset(module(data_dir).labelled_cases()[:2], steps, cache="memory")
    before = _snapshot(dataset._cache)
    _read_epochs(dataset)
    _assert_same(before, dataset._cache)


def test_an_unknown_random_transform_keeps_the_copy_and_the_cache_intact(data_dir):
    from monai import transforms as mt

    class DoubleInPlace(mt.RandomizableTransform, mt.MapTransform):
        def __init__(self, keys: list[str]) -> None:
            mt.MapTransform.__init__(self, keys)
            mt.RandomizableTransform.__init__(self, prob=1.0)

        def __call__(self, data):
            d = dict(data)
            d["image"].mul_(2)  # writes into the cropped view, i.e. into the cached volume
            return d

    training = module(data_dir).train_transforms()
    first = next(i for i, t in enumerate(training) if isinstance(t, mt.RandomizableTrait))
    steps = [*training[: first + 1], DoubleInPlace(["image"])]
    assert copy_cache_needed(steps)
    cases = module(data_dir).labelled_cases()[:2]
    dataset = cached_dataset(cases, steps, cache="memory")
    assert dataset.copy_cache is True
    before = _snapshot(dataset._cache)
    _read_epochs(dataset, epochs=2)
    _assert_same(before, dataset._cache)
    dataset.copy_cache = False  # what the copy prevents: the check above does see such a write
    _read_epochs(dataset, epochs=1)
    with pytest.raises(AssertionError, match="image values changed"):
        _assert_same(before, dataset._cache)


def test_cache_settings_are_validated(data_dir):
    with pytest.raises(
        ValueError, match=r"data.cache must be one of \('memory', 'disk', 'none'\), got 'ram'"
    ):
        DecathlonDataModule(str(data_dir), SPLEEN, cache="ram")
    with pytest.raises(ValueError, match="data.cache=disk needs data.cache_dir"):
        DecathlonDataModule(str(data_dir), SPLEEN, cache="disk")


def test_under_ddp_the_memory_cache_is_computed_once_per_node(data_dir, tmp_path, monkeypatch):
    """Each rank holds the cases in memory, but only the first one computes them (through the disk cache)."""
    from monai.data import PersistentDataset

    from eisen_lightning.data import cache

    computed = []
    original = PersistentDataset._pre_transform
    monkeypatch.setattr(
        PersistentDataset, "_pre_transform", lambda s, i: computed.append(1) or original(s, i)
    )
    monkeypatch.setattr(cache, "distributed", lambda: True)
    cache_dir = tmp_path / "cache"
    ranks = [module(data_dir, cache="memory", cache_dir=str(cache_dir)) for _ in range(2)]
    for dm in ranks:
        dm.setup("fit")
    train = [dm.datasets["train"] for dm in ranks]
    assert all(isinstance(ds, cache.DiskBackedCacheDataset) for ds in train)
    assert len(computed) == len(train[0].data) + len(ranks[0].datasets["val"].data), "once per case"
    plain = module(data_dir, cache="memory")  # one process: MONAI's CacheDataset, no disk involved
    plain.setup("fit")
    assert all(
        torch.equal(a["image"].as_tensor(), b["image"].as_tensor())
        and torch.equal(a["image"].affine, b["image"].affine)
        for a, b in zip(train[1]._cache, plain.datasets["train"]._cache, strict=True)
    )
    assert not list(tmp_path.glob("*.pt")) and list(cache_dir.glob("*.pt"))
