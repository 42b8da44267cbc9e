"""Your own data: a JSON list of sample dicts with paths, plus the checks every layout parser shares.

A JSON list file looks like::

    [
      {"image": "images/a.nii.gz", "label": "labels/a.nii.gz", "patient_id": "p1"},
      {"image": "images/b.nii.gz", "label": "labels/b.nii.gz", "patient_id": "p1"},
      {"image": "images/c.nii.gz"}
    ]

Paths are relative to the JSON file's folder (absolute paths are kept). Several image keys
(``{"t1": ..., "t2": ...}`` with ``image_keys=["t1", "t2"]``) become channels. Entries without the
label key are unlabelled (used for prediction only).
"""

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.datasets.decathlon import LayoutError


def missing_data_error(root: Path, what: str, hint: str) -> LayoutError:
    """The error for a data set that is not there at all: where to get it and where to put it."""
    return LayoutError(root, [f"{what} not found"], hint)


def require_folder(root: Path, hint: str) -> None:
    """Raise a :class:`LayoutError` with ``hint`` when ``root`` is missing or empty."""
    if not root.is_dir():
        raise missing_data_error(root, "the data folder", hint)
    if not any(root.iterdir()):
        raise LayoutError(root, ["the folder is empty"], hint)


def pair_problem(image: Path, label: Path, needs_label: bool, label_name: str, need: str) -> str | None:
    """The problem with an image and its label file, or ``None``: the image first, then the label.

    >>> pair_problem(Path("/no/a.mhd"), Path("/no/a_gt.mhd"), True, "label", "training needs it")
    '/no/a.mhd: missing'
    """
    if not image.is_file():
        if not label.is_file():
            return f"{image}: missing"
        verb = "exist" if label_name.endswith("s") else "exists"  # "contours exist", "label exists"
        return f"{image}: its {label_name} {verb} but the image is missing"
    if needs_label and not label.is_file():
        return f"{label}: missing (the {label_name} of {image.name}); {need}"
    return None


def suffix_problems(paths: Iterable[Path], suffixes: Sequence[str], fix: str) -> list[str]:
    """One line per file whose name does not end in one of ``suffixes``."""
    return [
        f"{path}: wrong suffix, expected one of {list(suffixes)}; {fix}"
        for path in paths
        if not path.name.endswith(tuple(suffixes))
    ]


def read_json_list(
    json_file: str | Path,
    image_keys: Sequence[str] = (keys.IMAGE,),
    label_key: str | None = keys.LABEL,
    check_files: bool = True,
) -> list[dict[str, Any]]:
    """Parse a JSON list of sample dicts into cases with absolute paths.

    Each case gets ``image`` (one path, or a list of paths when ``image_keys`` names several, one
    channel each), ``label`` when the entry has ``label_key``, a ``case_id`` (the entry's own, else
    the first image's file name without suffix) and every other field of the entry unchanged.

    Args:
        json_file: The JSON file.
        image_keys: Entry keys holding input images, in channel order.
        label_key: Entry key holding the label map, or ``None`` for unlabelled data.
        check_files: Also check that every listed file exists.

    Raises:
        LayoutError: Listing every problem, each naming the entry index and key.
    """
    json_file = Path(json_file)
    entries = _load_list(json_file)
    base = json_file.parent.absolute()
    problems: list[str] = []
    indexed = [(i, _case(i, e, base, list(image_keys), label_key, problems)) for i, e in enumerate(entries)]
    indexed = [(i, case) for i, case in indexed if case is not None]
    seen: dict[str, int] = {}
    for i, case in indexed:
        first = seen.setdefault(case[keys.CASE_ID], i)
        if first != i:
            problems.append(f"entry {i}: case_id {case[keys.CASE_ID]!r} repeats entry {first}")
    if check_files:
        names = [*image_keys, label_key]
        problems += [
            f"entry {i}, key {name!r}: {entries[i][name]} is missing ({base / entries[i][name]})"
            for i, _ in indexed
            for name in names
            if name is not None
            and isinstance(entries[i].get(name), str)
            and entries[i][name]
            and not (base / entries[i][name]).is_file()
        ]
    cases = [case for _, case in indexed]
    if problems:
        raise LayoutError(
            json_file, problems, "Fix the entries listed above (paths are relative to the JSON file)."
        )
    return cases


def _load_list(json_file: Path) -> list:
    if not json_file.is_file():
        raise LayoutError(
            json_file,
            ["the JSON file is missing"],
            "Set data.json_file to a JSON file holding a list of sample dicts (see docs/datasets.md).",
        )
    try:
        entries = json.loads(json_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LayoutError(json_file, [f"not valid JSON: {err}"]) from err
    if not isinstance(entries, list) or not entries:
        got = type(entries).__name__ if not isinstance(entries, list) else "an empty list"
        raise LayoutError(json_file, [f"must hold a non-empty JSON list of sample dicts, got {got}"])
    return entries


def _case(
    index: int, entry: Any, base: Path, image_keys: list[str], label_key: str | None, problems: list[str]
) -> dict[str, Any] | None:
    if not isinstance(entry, dict):
        problems.append(f"entry {index}: must be an object with keys {image_keys}, got {entry!r}")
        return None
    missing = [k for k in image_keys if k not in entry]
    if missing:
        problems.append(f"entry {index}: no key(s) {missing}; it has {sorted(entry)}")
        return None
    paths = [_path(index, k, entry[k], base, problems) for k in image_keys]
    case = {k: v for k, v in entry.items() if k not in (*image_keys, label_key)}
    case[keys.IMAGE] = paths[0] if len(paths) == 1 else paths
    if label_key is not None and entry.get(label_key) is not None:
        case[keys.LABEL] = _path(index, label_key, entry[label_key], base, problems)
    case[keys.CASE_ID] = str(entry.get(keys.CASE_ID) or _stem(paths[0]))
    return case


def _path(index: int, key: str, value: Any, base: Path, problems: list[str]) -> str:
    if not isinstance(value, str) or not value:
        problems.append(f"entry {index}, key {key!r}: must be a path string, got {value!r}")
        return ""
    return str(base / value)


def _stem(path: str) -> str:
    name = Path(path).name
    for suffix in (".nii.gz", ".gz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem
