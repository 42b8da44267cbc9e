"""make_splits, save_splits and load_splits: exact, seeded, disjoint k-fold splits."""

import json
import random

import pytest

from eisen_lightning.data.splits import SPLIT_NAMES, load_splits, make_splits, save_splits


def ids(n: int, prefix: str = "case") -> list[str]:
    return [f"{prefix}_{i:03d}" for i in range(n)]


# n, test_fraction -> (number of test cases, validation size of each of the 5 folds), computed by hand:
# round(n * test_fraction) held out, the rest cut into 5 folds, the larger folds first.
EXPECTED = {
    (10, 0.2): (2, [2, 2, 2, 1, 1]),
    (32, 0.2): (6, [6, 5, 5, 5, 5]),
    (41, 0.2): (8, [7, 7, 7, 6, 6]),
    (10, 0.0): (0, [2, 2, 2, 2, 2]),
    (32, 0.0): (0, [7, 7, 6, 6, 6]),
    (41, 0.0): (0, [9, 8, 8, 8, 8]),
}


@pytest.mark.parametrize(("n", "test_fraction"), sorted(EXPECTED))
def test_exact_sizes_disjoint_and_covering(n, test_fraction):
    n_test, val_sizes = EXPECTED[(n, test_fraction)]
    all_ids = set(ids(n))
    for fold in range(5):
        s = make_splits(ids(n), num_folds=5, fold=fold, test_fraction=test_fraction, seed=0)
        assert set(s) == set(SPLIT_NAMES)
        train, val, test = (s[k] for k in SPLIT_NAMES)
        assert len(test) == n_test
        assert len(val) == val_sizes[fold]
        assert len(train) == n - n_test - val_sizes[fold]
        # no id twice, not inside one list nor across lists, and nothing lost
        assert len(train) + len(val) + len(test) == len(set(train) | set(val) | set(test))
        assert set(train) | set(val) | set(test) == all_ids
        # every list is sorted (stable files, stable logs)
        assert all(lst == sorted(lst) for lst in (train, val, test))
    assert max(val_sizes) - min(val_sizes) <= 1


@pytest.mark.parametrize(("n", "test_fraction"), sorted(EXPECTED))
def test_true_k_fold(n, test_fraction):
    """Across fold=0..4 each non-test id is validated exactly once, and the test set never moves."""
    splits = [make_splits(ids(n), num_folds=5, fold=f, test_fraction=test_fraction, seed=3) for f in range(5)]
    tests = {tuple(s["test"]) for s in splits}
    assert len(tests) == 1
    test = set(splits[0]["test"])
    val_counts: dict[str, int] = {}
    for s in splits:
        for i in s["val"]:
            val_counts[i] = val_counts.get(i, 0) + 1
        # train of a fold is exactly the other folds' validation ids
        assert set(s["train"]) == set(ids(n)) - test - set(s["val"])
    assert set(val_counts) == set(ids(n)) - test
    assert set(val_counts.values()) == {1}
    sizes = sorted(len(s["val"]) for s in splits)
    assert sizes[-1] - sizes[0] <= 1


def test_same_seed_same_splits_regardless_of_input_order():
    base = ids(32)
    shuffled = base[:]
    random.Random(123).shuffle(shuffled)
    assert shuffled != base
    for fold in (0, 3):
        a = make_splits(base, num_folds=5, fold=fold, test_fraction=0.2, seed=7)
        b = make_splits(shuffled, num_folds=5, fold=fold, test_fraction=0.2, seed=7)
        c = make_splits(tuple(reversed(base)), num_folds=5, fold=fold, test_fraction=0.2, seed=7)
        assert a == b == c


def test_different_seed_different_splits():
    a = make_splits(ids(32), num_folds=5, fold=0, test_fraction=0.2, seed=0)
    b = make_splits(ids(32), num_folds=5, fold=0, test_fraction=0.2, seed=1)
    assert a["test"] != b["test"]
    assert a["val"] != b["val"]
    # sizes do not depend on the seed
    assert [len(a[k]) for k in SPLIT_NAMES] == [len(b[k]) for k in SPLIT_NAMES]


def test_split_is_shuffled_not_alphabetical():
    s = make_splits(ids(41), num_folds=5, fold=0, test_fraction=0.2, seed=0)
    assert s["test"] != ids(41)[: len(s["test"])]
    assert s["test"] != ids(41)[-len(s["test"]) :]


def test_docstring_example():
    s = make_splits([f"case{i}" for i in range(10)], num_folds=5, fold=0, test_fraction=0.2, seed=0)
    assert [len(s[k]) for k in SPLIT_NAMES] == [6, 2, 2]


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"fold": 5}, "data.fold"),
        ({"fold": -1}, "data.fold"),
        ({"fold": 1.0}, "data.fold"),
        ({"num_folds": 1, "fold": 0}, "data.num_folds"),
        ({"num_folds": 0, "fold": 0}, "data.num_folds"),
        ({"test_fraction": 1.0}, "data.test_fraction"),
        ({"test_fraction": 1.5}, "data.test_fraction"),
        ({"test_fraction": -0.1}, "data.test_fraction"),
    ],
)
def test_invalid_arguments_name_the_key(kwargs, key):
    args = {"num_folds": 5, "fold": 0, "test_fraction": 0.2, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=key.replace(".", r"\.")) as err:
        make_splits(ids(20), **args)
    # the offending value is quoted too
    bad = next(v for k, v in kwargs.items() if key.endswith(k))
    assert repr(bad) in str(err.value)


def test_duplicate_ids_rejected_and_named():
    case_ids = [*ids(10), "case_003", "case_007"]
    with pytest.raises(ValueError, match="unique") as err:
        make_splits(case_ids, num_folds=5, fold=0, test_fraction=0.2)
    assert "case_003" in str(err.value) and "case_007" in str(err.value)
    assert "case_001" not in str(err.value)


@pytest.mark.parametrize(("n", "test_fraction"), [(5, 0.2), (4, 0.0), (0, 0.0)])
def test_too_few_cases(n, test_fraction):
    with pytest.raises(ValueError, match=r"data\.num_folds") as err:
        make_splits(ids(n), num_folds=5, fold=0, test_fraction=test_fraction)
    assert "data.test_fraction" in str(err.value)


def test_just_enough_cases():
    s = make_splits(ids(5), num_folds=5, fold=4, test_fraction=0.0)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (4, 1, 0)


def test_save_load_round_trip(tmp_path):
    splits = make_splits(ids(32), num_folds=5, fold=2, test_fraction=0.2, seed=4)
    path = save_splits(tmp_path / "run" / "splits.json", splits, seed=4, fold=2)
    assert path == tmp_path / "run" / "splits.json"
    assert load_splits(path, ids(32)) == splits
    # a superset of ids is fine (the data set may have grown since)
    assert load_splits(path, ids(40)) == splits
    data = json.loads(path.read_text())
    assert data["seed"] == 4 and data["fold"] == 2
    assert {k: data[k] for k in SPLIT_NAMES} == splits
    # atomic write: no temporary file left beside it
    assert sorted(p.name for p in path.parent.iterdir()) == ["splits.json"]


def test_save_overwrites(tmp_path):
    path = tmp_path / "splits.json"
    save_splits(path, make_splits(ids(10), fold=0))
    second = make_splits(ids(10), fold=1)
    save_splits(path, second)
    assert load_splits(path, ids(10)) == second


def test_load_rejects_unknown_ids(tmp_path):
    path = save_splits(tmp_path / "splits.json", make_splits(ids(10), num_folds=5))
    known = [i for i in ids(10) if i not in ("case_002", "case_009")]
    with pytest.raises(ValueError) as err:
        load_splits(path, known)
    message = str(err.value)
    assert str(path) in message
    assert "case_002" in message and "case_009" in message


@pytest.mark.parametrize(
    "content",
    [
        "not json {",
        "[]",
        '{"train": [], "val": []}',
        '{"train": 5, "val": [], "test": []}',
        "",
    ],
    ids=["invalid-json", "list", "missing-test", "not-a-list", "empty"],
)
def test_load_rejects_malformed_files(tmp_path, content):
    path = tmp_path / "bad_splits.json"
    path.write_text(content)
    with pytest.raises(ValueError) as err:
        load_splits(path, ids(10))
    assert str(path) in str(err.value)


def test_load_missing_file_names_it(tmp_path):
    path = tmp_path / "nowhere" / "splits.json"
    with pytest.raises(ValueError) as err:
        load_splits(path, ids(10))
    assert str(path) in str(err.value)


def test_stratified_splits_keep_class_proportions():
    ids = [f"c{i:03d}" for i in range(100)]
    strata = {i: ("rare" if n % 10 == 0 else "common") for n, i in enumerate(ids)}
    for fold in range(5):
        s = make_splits(ids, num_folds=5, fold=fold, test_fraction=0.2, seed=3, strata=strata)
        assert [len(s[k]) for k in ("train", "val", "test")] == [64, 16, 20]
        assert sum(strata[i] == "rare" for i in s["test"]) == 2
        assert sum(strata[i] == "rare" for i in s["val"]) in (1, 2)
        assert sum(strata[i] == "rare" for i in s["train"]) in (6, 7)


def test_grouped_splits_never_split_a_patient():
    ids = [f"p{p}_img{k}" for p in range(12) for k in range(p % 3 + 1)]
    groups = {i: i.split("_")[0] for i in ids}
    seen = set()
    for fold in range(3):
        s = make_splits(ids, num_folds=3, fold=fold, test_fraction=0.25, seed=0, groups=groups)
        assert sorted(s["train"] + s["val"] + s["test"]) == sorted(ids)
        patients = [{groups[i] for i in s[k]} for k in ("train", "val", "test")]
        assert not (patients[0] & patients[1]) and not (patients[0] & patients[2])
        assert not (patients[1] & patients[2])
        assert abs(len(s["test"]) - round(len(ids) * 0.25)) <= 2
        seen |= set(s["val"])
    assert seen | set(s["test"]) == set(ids)


def test_too_few_groups_is_a_clear_error():
    ids = ["a1", "a2", "b1"]
    with pytest.raises(ValueError, match="groups \\(patients\\) for 5 folds"):
        make_splits(ids, num_folds=5, test_fraction=0.0, groups={"a1": "a", "a2": "a", "b1": "b"})


def test_test_fraction_that_rounds_to_nothing_is_a_clear_error():
    with pytest.raises(ValueError, match="rounds to an empty test split"):
        make_splits([f"c{i}" for i in range(6)], num_folds=2, test_fraction=0.05)


def test_grouped_and_stratified_folds_keep_both_classes():
    ids = [f"p{p:02d}_img{k}" for p in range(12) for k in range(2)]
    groups = {i: i.split("_")[0] for i in ids}
    strata = {i: int(i[1:3]) % 2 for i in ids}
    for fold in range(2):
        s = make_splits(ids, num_folds=2, fold=fold, test_fraction=0.0, groups=groups, strata=strata)
        for name in ("train", "val"):
            assert {strata[i] for i in s[name]} == {0, 1}, (fold, name, s[name])
