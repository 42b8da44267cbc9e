"""Seeded, exact splits: a held-out test set, then k folds of train/validation on the rest.

>>> s = make_splits([f"case{i}" for i in range(10)], num_folds=5, fold=0, test_fraction=0.2, seed=0)
>>> [len(s[k]) for k in ("train", "val", "test")]
[6, 2, 2]
"""

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eisen_lightning.utils.files import atomic_write_text

SPLIT_NAMES = ("train", "val", "test")


def make_splits(
    case_ids: Sequence[str],
    num_folds: int = 5,
    fold: int = 0,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Split case ids into ``train``, ``val`` and ``test`` lists, identically on every machine.

    The ids are sorted, shuffled with ``seed``, ``round(n * test_fraction)`` of them are held out
    for testing (the same set for every fold), and the rest is cut into ``num_folds`` folds whose
    sizes differ by at most one. Fold ``fold`` is the validation set.

    Args:
        case_ids: Unique case identifiers.
        num_folds: Number of cross-validation folds, at least 2.
        fold: The validation fold, ``0 <= fold < num_folds``.
        test_fraction: Share of cases held out for the test stage, ``0 <= test_fraction < 1``.
        seed: Seed of the shuffle.

    Raises:
        ValueError: On duplicate ids, out-of-range arguments, or too few cases for the folds.
    """
    ids = sorted(case_ids)
    _check_arguments(ids, num_folds, fold, test_fraction)
    order = np.random.default_rng(seed).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    n_test = int(round(len(ids) * test_fraction))
    test, rest = shuffled[:n_test], shuffled[n_test:]
    if len(rest) < num_folds:
        raise ValueError(
            f"{len(ids)} cases leave {len(rest)} for {num_folds} folds after holding out {n_test} for "
            f"testing; lower data.num_folds or data.test_fraction, or add cases"
        )
    folds = np.array_split(np.arange(len(rest)), num_folds)
    val = [rest[i] for i in folds[fold]]
    train = [rest[i] for k, f in enumerate(folds) if k != fold for i in f]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def _check_arguments(ids: list[str], num_folds: int, fold: int, test_fraction: float) -> None:
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"case ids must be unique; duplicated: {duplicates}")
    if not isinstance(num_folds, int) or num_folds < 2:
        raise ValueError(f"data.num_folds must be an integer >= 2, got {num_folds!r}")
    if not isinstance(fold, int) or not 0 <= fold < num_folds:
        raise ValueError(f"data.fold must be an integer in [0, {num_folds - 1}], got {fold!r}")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"data.test_fraction must be in [0, 1), got {test_fraction!r}")


def save_splits(path: str | os.PathLike, splits: dict[str, list[str]], **settings: object) -> Path:
    """Write ``splits`` (and the settings that produced them) as JSON, atomically.

    Args:
        path: Destination, usually ``<run dir>/splits.json``.
        splits: The mapping returned by :func:`make_splits`.
        **settings: Extra entries recorded beside the lists (seed, fold, ...).
    """
    return atomic_write_text(path, json.dumps({**settings, **splits}, indent=2) + "\n")


def load_splits(path: str | os.PathLike, case_ids: Sequence[str]) -> dict[str, list[str]]:
    """Read a ``splits.json`` and check that every id in it is one of ``case_ids``.

    Raises:
        ValueError: If the file is unreadable, lacks a split, or names unknown cases.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        splits = {name: [str(i) for i in data[name]] for name in SPLIT_NAMES}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a splits file with lists {SPLIT_NAMES} ({err})") from err
    unknown = sorted(set().union(*splits.values()) - set(case_ids))
    if unknown:
        raise ValueError(f"{path}: names cases that this data set does not have: {unknown[:10]}")
    return splits
