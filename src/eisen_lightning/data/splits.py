"""Seeded, exact splits: a held-out test set, then k folds of train/validation on the rest.

>>> s = make_splits([f"case{i}" for i in range(10)], num_folds=5, fold=0, test_fraction=0.2, seed=0)
>>> [len(s[k]) for k in ("train", "val", "test")]
[6, 2, 2]
"""

import json
import os
from collections.abc import Hashable, Mapping, Sequence
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
    groups: Mapping[str, str] | None = None,
    strata: Mapping[str, Hashable] | None = None,
) -> dict[str, list[str]]:
    """Split case ids into ``train``, ``val`` and ``test`` lists, identically on every machine.

    The ids are sorted, shuffled with ``seed``, ``round(n * test_fraction)`` of them are held out
    for testing (the same set for every fold), and the rest is cut into ``num_folds`` folds whose
    sizes differ by at most one. Fold ``fold`` is the validation set.

    With ``strata`` (a class per case), every split keeps the class proportions: the cases are
    interleaved by their rank within their class before the cut. With ``groups`` (a patient per
    case), the unit of the split is the group: the images of one patient never land in two
    splits, and the sizes are as near the exact counts as whole groups allow.

    Args:
        case_ids: Unique case identifiers.
        num_folds: Number of cross-validation folds, at least 2.
        fold: The validation fold, ``0 <= fold < num_folds``.
        test_fraction: Share of cases held out for the test stage, ``0 <= test_fraction < 1``.
        seed: Seed of the shuffle.
        groups: Case id -> group (patient) id; cases of one group stay together.
        strata: Case id -> class used to stratify (a group takes its first case's class).

    Raises:
        ValueError: On duplicate ids, out-of-range arguments, or too few cases (or groups) to give
            every split and fold at least one.

    >>> s = make_splits(["a", "b", "c", "d"], 2, 0, 0.0, groups={"a": "p", "b": "p", "c": "q", "d": "q"})
    >>> sorted(s["train"] + s["val"]) == ["a", "b", "c", "d"] and len(s["val"]) == 2
    True
    """
    ids = sorted(case_ids)
    _check_arguments(ids, num_folds, fold, test_fraction)
    units = _units(ids, groups)
    order = _stratified_order(units, strata, seed)
    shuffled = [units[i] for i in order]
    n_test = int(round(len(ids) * test_fraction))
    test, rest = _take(shuffled, n_test)
    if len(rest) < num_folds:
        what = "cases" if groups is None else "groups (patients)"
        raise ValueError(
            f"{len(ids)} cases leave {len(rest)} {what} for {num_folds} folds after holding out "
            f"{sum(map(len, test))} for testing; lower data.num_folds or data.test_fraction, or add cases"
        )
    folds = _deal(rest, num_folds)
    val = folds[fold]
    train = [i for k, f in enumerate(folds) if k != fold for i in f]
    if test_fraction > 0 and not test:
        raise ValueError(
            f"data.test_fraction={test_fraction} of {len(ids)} cases rounds to an empty test split; "
            "raise data.test_fraction, set it to 0 to train without a test stage, or add cases"
        )
    return {"train": sorted(train), "val": sorted(val), "test": sorted(i for u in test for i in u)}


def _units(ids: list[str], groups: Mapping[str, str] | None) -> list[list[str]]:
    """The indivisible pieces of a split: single cases, or the cases of one group."""
    if groups is None:
        return [[i] for i in ids]
    missing = [i for i in ids if i not in groups]
    if missing:
        raise ValueError(f"groups must name a group for every case; missing: {missing[:10]}")
    by_group: dict[str, list[str]] = {}
    for i in ids:
        by_group.setdefault(str(groups[i]), []).append(i)
    return [by_group[g] for g in sorted(by_group)]


def _stratified_order(units: list[list[str]], strata: Mapping[str, Hashable] | None, seed: int) -> list[int]:
    """A seeded shuffle of the units; with strata, classes interleaved in proportion."""
    order = np.random.default_rng(seed).permutation(len(units))
    if strata is None:
        return [int(i) for i in order]
    classes: dict[str, list[int]] = {}
    for i in order:
        classes.setdefault(repr(strata[units[i][0]]), []).append(int(i))
    position = {}
    for c, members in enumerate(classes.values()):
        for k, unit in enumerate(members):
            position[unit] = ((k + 0.5) / len(members), c)
    return sorted(position, key=position.__getitem__)


def _take(units: list[list[str]], count: int) -> tuple[list[list[str]], list[list[str]]]:
    """Move units from the front into the first list while that brings it nearer ``count`` cases."""
    taken, size = 0, 0
    while taken < len(units) and abs(size + len(units[taken]) - count) < abs(size - count):
        size += len(units[taken])
        taken += 1
    return units[:taken], units[taken:]


def _deal(units: list[list[str]], num_folds: int) -> list[list[str]]:
    """Cut units into contiguous folds of (nearly) equal case counts, keeping their order.

    Contiguous cuts of the stratified order keep every class in proportion in every fold; single
    cases give folds whose sizes differ by at most one.
    """
    if all(len(u) == 1 for u in units):
        cuts = np.array_split(np.arange(len(units)), num_folds)
        return [[units[i][0] for i in cut] for cut in cuts]
    total = sum(len(u) for u in units)
    folds: list[list[str]] = [[] for _ in range(num_folds)]
    done = 0
    for unit in units:
        middle = done + len(unit) / 2
        folds[min(num_folds - 1, int(middle * num_folds / total))].extend(unit)
        done += len(unit)
    if all(folds):
        return folds
    folds = [[] for _ in range(num_folds)]  # a few large groups: fill the smallest fold first
    for unit in units:
        folds[min(range(num_folds), key=lambda k: (len(folds[k]), k))].extend(unit)
    return folds


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
