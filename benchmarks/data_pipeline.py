"""Data pipeline: our DataModule's default training path against the datasets MONAI recommends.

The same ``.nii.gz`` files (the demo task written at a realistic size, by default 32 volumes of
96x96x64) go through the same transforms (the demo config's training pipeline: load, orient,
resample to 2 mm, z-score, pad, class indices, then label-balanced crops, flips, rotations and
intensity changes) in seven ways:

* ``ours``: ``DemoDataModule`` as ``conf/data/demo.yaml`` sets it (``data.cache=memory``,
  ``num_workers=0``): the training dataset ``setup("fit")`` builds and ``train_dataloader()``;
* ``ours, data.num_workers=2``: the same with 2 persistent DataLoader workers (forked after the
  cache is filled: they share its pages);
* ``ours, data.train_meta=true``: ``ours`` with MONAI's metadata tracking kept in the random
  training transforms (by default they run untracked: training batches need no geometry), to
  show what recording every crop's operations costs;
* ``MONAI Dataset, 2 workers``: ``Dataset`` + ``DataLoader(num_workers=2, persistent_workers=True)``,
  with MONAI's default reader in ``LoadImaged`` (what a MONAI user writes);
* ``MONAI Dataset, 2 workers, our reader``: the same with our readers (the reader's share);
* ``MONAI CacheDataset``: MONAI's defaults (``copy_cache=True``, one filling thread), no workers;
* ``MONAI PersistentDataset``: a fresh cache folder per round, 2 persistent workers.

Every candidate is built from nothing in turn, in an order rotated per round, so that machine load
hits all alike. *Cold* is building the dataset (caches filled) plus the first epoch; *warm* is the
median of the later epochs. An epoch iterates the training loader (batch 2, ``num_samples`` crops
per volume) without training. Targets: cold at least 1.5x faster than MONAI's Dataset with 2
workers, warm at least 2x faster than MONAI's CacheDataset.

Memory is measured apart, in a fresh interpreter per candidate: resident memory (RSS, psutil or
``/proc``) of the process and its workers before the dataset is built and after two epochs, against
the nominal size of what the cache holds (the bytes of every cached array). Target: at most 1.5x.

    python benchmarks/data_pipeline.py                 # 32 volumes of 96x96x64, 3 rounds
    python benchmarks/data_pipeline.py --smoke         # 6 volumes of 24x24x16, 1 round
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")

OURS = "ours"
OURS_WORKERS = "ours, data.num_workers=2"
OURS_TRACKED = "ours, data.train_meta=true"
DATASET = "MONAI Dataset, 2 workers"
DATASET_OUR_READER = "MONAI Dataset, 2 workers, our reader"
CACHE = "MONAI CacheDataset"
PERSISTENT = "MONAI PersistentDataset"
CANDIDATES = (OURS, OURS_WORKERS, OURS_TRACKED, DATASET, DATASET_OUR_READER, CACHE, PERSISTENT)
MEMORY_CANDIDATES = (OURS, CACHE)
WORKERS = 2


# -- the data and the settings ---------------------------------------------------------------------
def demo_settings(root: Path, num_cases: int, shape: list[int]) -> dict[str, Any]:
    """The demo DataModule's settings from ``conf/data/demo.yaml``, with this benchmark's data."""
    import importlib.resources

    from omegaconf import OmegaConf

    path = importlib.resources.files("eisen_lightning.conf") / "data" / "demo.yaml"
    settings = OmegaConf.to_container(OmegaConf.load(str(path)), resolve=False)
    settings.pop("_target_")
    fixed = {"data_dir": str(root), "seed": 0, "output_dir": None, "cache_dir": None, "num_test": 0}
    return {**settings, **fixed, "num_training": num_cases, "shape": list(shape)}


def datamodule(settings: dict[str, Any]) -> Any:
    """The demo DataModule, its data written (once) and checked."""
    from eisen_lightning.data import DemoDataModule

    dm = DemoDataModule(**settings)
    dm.prepare_data()
    return dm


def training_cases(settings: dict[str, Any]) -> tuple[list[dict[str, Any]], list]:
    """The training split's cases and the training transforms of the demo DataModule."""
    dm = datamodule(settings)
    wanted = set(dm._make_splits()["train"])
    cases = [case for case in dm.labelled_cases() if case["case_id"] in wanted]
    return cases, dm.train_transforms()


def with_monai_reader(transforms: list) -> list:
    """``transforms`` with MONAI's default ``LoadImaged`` (its own reader choice) in place of ours."""
    from monai.transforms import LoadImaged

    return [
        LoadImaged(t.keys, image_only=True, ensure_channel_first=True) if isinstance(t, LoadImaged) else t
        for t in transforms
    ]


# -- the candidates: each returns (dataset, loader) built from nothing -----------------------------
def build(name: str, settings: dict[str, Any], cases: list, transforms: list, tmp: Path) -> tuple[Any, Any]:
    """Build candidate ``name``'s training dataset (filling its cache) and its loader."""
    from monai.data import CacheDataset, DataLoader, Dataset, PersistentDataset, list_data_collate
    from monai.transforms import Compose

    batch_size = settings["batch_size"]
    if name in (OURS, OURS_WORKERS, OURS_TRACKED):
        workers = WORKERS if name == OURS_WORKERS else 0
        dm = datamodule({**settings, "num_workers": workers, "train_meta": name == OURS_TRACKED})
        dm.splits = dm._make_splits()  # what setup("fit") does, for the training split alone
        dm.datasets["train"] = dm._dataset("train")
        return dm.datasets["train"], dm.train_dataloader()
    if name in (DATASET, DATASET_OUR_READER):
        steps = with_monai_reader(transforms) if name == DATASET else transforms
        dataset = Dataset(cases, Compose(steps))
    elif name == CACHE:
        dataset = CacheDataset(cases, Compose(with_monai_reader(transforms)), progress=False)
    elif name == PERSISTENT:
        folder = Path(tempfile.mkdtemp(dir=tmp))
        dataset = PersistentDataset(cases, Compose(with_monai_reader(transforms)), cache_dir=folder)
    else:
        raise ValueError(f"unknown candidate {name!r}; allowed: {CANDIDATES}")
    workers = 0 if name == CACHE else WORKERS
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        collate_fn=list_data_collate,
    )
    return dataset, loader


def epoch(loader: Any) -> int:
    """Iterate the loader once; return the number of samples (crops) it gave."""
    return sum(int(batch["image"].shape[0]) for batch in loader)


def close(loader: Any) -> None:
    """Stop a loader's persistent workers now rather than at garbage collection."""
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()


def run_candidate(name: str, settings: dict, cases: list, transforms: list, tmp: Path, warm: int) -> dict:
    """Cold (build + first epoch) and warm epoch times of one candidate, built from nothing."""
    start = time.perf_counter()
    dataset, loader = build(name, settings, cases, transforms, tmp)
    samples = epoch(loader)
    cold = time.perf_counter() - start
    warm_times = []
    for _ in range(warm):
        start = time.perf_counter()
        epoch(loader)
        warm_times.append(time.perf_counter() - start)
    close(loader)
    del dataset, loader
    gc.collect()
    return {"cold": cold, "warm": warm_times, "samples": samples}


def measure(settings: dict, rounds: int, warm: int) -> dict[str, dict[str, list[float]]]:
    """Every candidate once per round, the order rotated per round."""
    cases, transforms = training_cases(settings)
    results: dict[str, dict[str, list[float]]] = {
        n: {"cold": [], "warm": [], "samples": []} for n in CANDIDATES
    }
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = CANDIDATES[r % len(CANDIDATES) :] + CANDIDATES[: r % len(CANDIDATES)]
            for name in order:
                one = run_candidate(name, settings, cases, transforms, Path(tmp), warm)
                results[name]["cold"].append(one["cold"])
                results[name]["warm"].extend(one["warm"])
                results[name]["samples"].append(one["samples"])
    return results


# -- memory, in a fresh interpreter per candidate --------------------------------------------------
def rss_bytes() -> int:
    """Resident memory of this process and its children (DataLoader workers)."""
    try:
        import psutil

        process = psutil.Process()
        return process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))
    except ImportError:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")  # children left out without psutil


def nominal_bytes(dataset: Any) -> int:
    """Bytes of every array a ``CacheDataset`` holds (images, labels, class indices)."""
    import numpy as np
    import torch

    def size(value: Any) -> int:
        if isinstance(value, torch.Tensor):
            return value.element_size() * value.nelement()
        if isinstance(value, np.ndarray):
            return value.nbytes
        if isinstance(value, dict):
            return sum(size(v) for v in value.values())
        if isinstance(value, list | tuple):
            return sum(size(v) for v in value)
        return 0

    return size(list(dataset._cache))


def memory_probe(name: str, settings: dict) -> dict[str, float]:
    """RSS growth of building candidate ``name`` and running two epochs, against its cache's size."""
    from monai.transforms import Compose

    cases, transforms = training_cases(settings)
    with tempfile.TemporaryDirectory() as tmp:
        Compose(transforms)(dict(cases[0]))  # imports and first-call costs are no part of the cache
        gc.collect()
        before = rss_bytes()
        dataset, loader = build(name, settings, cases, transforms, Path(tmp))
        filled = rss_bytes() - before
        epoch(loader)
        epoch(loader)
        gc.collect()
        after = rss_bytes() - before
        return {"nominal": nominal_bytes(dataset), "filled": filled, "after_epochs": after}


def memory(settings: dict) -> dict[str, dict[str, float]]:
    """Run :func:`memory_probe` for each cached candidate in its own interpreter."""
    results = {}
    for name in MEMORY_CANDIDATES:
        command = [sys.executable, __file__, "--probe", name, "--settings", json.dumps(settings)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"memory probe of {name!r} failed:\n{done.stderr[-3000:]}")
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


# -- report -----------------------------------------------------------------------------------------
def table(results: dict, mem: dict) -> list[str]:
    """The printed table and the ratios against the targets."""
    mib = 2**20
    lines = [
        f"{'candidate':38} {'cold s':>7} {'cold min':>8} {'warm s':>7} {'warm min':>8} {'warm samples/s':>14}"
    ]
    stats: dict[str, tuple[float, float, float, float]] = {}
    for name, res in results.items():
        samples = statistics.median(res["samples"])
        cold, cold_min = statistics.median(res["cold"]), min(res["cold"])
        warm, warm_min = (statistics.median(res["warm"]), min(res["warm"])) if res["warm"] else (cold, cold)
        stats[name] = (cold, cold_min, warm, warm_min)
        lines.append(
            f"{name:38} {cold:7.2f} {cold_min:8.2f} {warm:7.3f} {warm_min:8.3f} {samples / warm:14.1f}"
        )
    ours, dataset, cache = stats[OURS], stats[DATASET], stats[CACHE]
    lines.append(
        f"ratio cold, MONAI Dataset 2 workers / ours: {dataset[0] / ours[0]:.2f}x "
        f"(of the minima: {dataset[1] / ours[1]:.2f}x; target >= 1.5x)"
    )
    lines.append(
        f"ratio warm, MONAI CacheDataset / ours: {cache[2] / ours[2]:.2f}x "
        f"(of the minima: {cache[3] / ours[3]:.2f}x; target >= 2x)"
    )
    workers = stats[OURS_WORKERS]
    lines.append(
        f"with data.num_workers=2: cold {dataset[0] / workers[0]:.2f}x, warm {cache[2] / workers[2]:.2f}x "
        f"(of the minima: {dataset[1] / workers[1]:.2f}x, {cache[3] / workers[3]:.2f}x)"
    )
    tracked = stats[OURS_TRACKED]
    lines.append(
        f"with data.train_meta=true (tracking kept): cold {dataset[0] / tracked[0]:.2f}x, "
        f"warm {cache[2] / tracked[2]:.2f}x (of the minima: {dataset[1] / tracked[1]:.2f}x, "
        f"{cache[3] / tracked[3]:.2f}x)"
    )
    for name, m in mem.items():
        lines.append(
            f"memory {name}: cache {m['nominal'] / mib:.1f} MiB, RSS growth after filling "
            f"{m['filled'] / mib:.1f} MiB ({m['filled'] / m['nominal']:.2f}x), after 2 epochs "
            f"{m['after_epochs'] / mib:.1f} MiB ({m['after_epochs'] / m['nominal']:.2f}x); "
            "target for ours <= 1.5x"
        )
    return lines


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--num-cases", type=int, default=32, help="volumes written (the training split is ~64%%)"
    )
    parser.add_argument("--shape", type=int, nargs=3, default=[96, 96, 64], help="volume size in voxels")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every candidate, order rotated")
    parser.add_argument("--warm", type=int, default=3, help="warm epochs timed per candidate and round")
    parser.add_argument("--smoke", action="store_true", help="6 volumes of 24x24x16, 1 round, 1 warm epoch")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the data is written (default: temp)"
    )
    parser.add_argument("--probe", choices=MEMORY_CANDIDATES, help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.num_cases, args.shape, args.rounds, args.warm = 6, [24, 24, 16], 1, 1
    return args


def with_data(args: argparse.Namespace, body: Callable[[dict], int]) -> int:
    """Write the data (in ``--workdir`` or a temporary folder) and run ``body`` on its settings."""
    if args.workdir is not None:
        return body(demo_settings(args.workdir, args.num_cases, args.shape))
    with tempfile.TemporaryDirectory() as tmp:
        return body(demo_settings(Path(tmp), args.num_cases, args.shape))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.probe:
        print(json.dumps(memory_probe(args.probe, json.loads(args.settings))))
        return 0

    def body(settings: dict) -> int:
        cases, _ = training_cases(settings)  # writes the data
        print(
            f"# data_pipeline: {args.num_cases} volumes of {'x'.join(map(str, args.shape))} (.nii.gz), "
            f"{len(cases)} in the training split, {settings['num_samples']} crops of "
            f"{settings['patch_size']} each, batch {settings['batch_size']}, {args.rounds} rounds, "
            f"{args.warm} warm epochs; python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        results = measure(settings, args.rounds, args.warm)
        print("\n".join(table(results, memory(settings))))
        return 0

    return with_data(args, body)


if __name__ == "__main__":
    sys.exit(main())
