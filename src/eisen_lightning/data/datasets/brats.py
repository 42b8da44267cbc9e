"""BraTS 2020: ``BraTS20_Training_XXX/<id>_{t1,t1ce,t2,flair,seg}.nii.gz`` and two CSV files.

Labels: 1 necrotic / non-enhancing tumour core, 2 peritumoral oedema, 4 enhancing tumour (no 3).
Rows of ``name_mapping.csv`` (matched on ``BraTS_2020_subject_ID``) and ``survival_info.csv``
(matched on ``Brats20ID``) become the case fields ``name_mapping`` and ``survival_info`` when present.
"""

import csv
from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.datasets.decathlon import LayoutError
from eisen_lightning.data.datasets.json_list import require_folder

MODALITIES = (keys.T1, keys.T1CE, keys.T2, keys.FLAIR)
REGIONS = ("TC", "WT", "ET")
SUFFIX = ".nii.gz"
#: CSV file -> (subject id column, case field).
TABLES = {
    "name_mapping.csv": ("BraTS_2020_subject_ID", "name_mapping"),
    "survival_info.csv": ("Brats20ID", "survival_info"),
}


def read_brats(root: str | Path, training: bool = True, hint: str = "") -> list[dict[str, Any]]:
    """Parse and check a BraTS 2020 folder into cases with Eisen's fields.

    Case fields: ``case_id`` (the subject folder), ``t1``, ``t1ce``, ``t2``, ``flair``, ``label``
    (the ``_seg`` file, training only) and ``name_mapping`` / ``survival_info`` (CSV rows as dicts).

    Raises:
        LayoutError: Listing every problem: modalities or segmentations missing, segmentations
            without images, files not in ``.nii.gz``, CSV rows naming no subject folder.
    """
    root = Path(root)
    require_folder(root, hint)
    problems: list[str] = []
    tables = {name: _table(root / name, column, problems) for name, (column, _) in TABLES.items()}
    subjects = sorted(p for p in root.iterdir() if p.is_dir())
    cases = [_case(folder, training, problems) for folder in subjects]
    cases = [case for case in cases if case is not None]
    for name, rows in tables.items():
        field = TABLES[name][1]
        for case in cases:
            if case[keys.CASE_ID] in rows:
                case[field] = rows[case[keys.CASE_ID]]
        if training or name == "name_mapping.csv":
            names = {p.name for p in subjects}
            problems += [
                f"{root / name}: row {sid!r} names no subject folder" for sid in rows if sid not in names
            ]
    if not cases and not problems:
        problems.append("no BraTS20_*/ subject folder")
    if problems:
        raise LayoutError(
            root, problems, hint or "Fix the files listed above or extract the BraTS archive again."
        )
    return cases


def _case(folder: Path, training: bool, problems: list[str]) -> dict[str, Any] | None:
    sid = folder.name
    problems += [
        f"{p}: wrong suffix; BraTS volumes are {sid}_<modality>{SUFFIX}"
        for p in sorted(folder.glob(f"{sid}_*"))
        if p.is_file() and not p.name.endswith(SUFFIX)
    ]
    images = {m: folder / f"{sid}_{m}{SUFFIX}" for m in MODALITIES}
    seg = folder / f"{sid}_seg{SUFFIX}"
    missing = [p for p in images.values() if not p.is_file()]
    if missing:
        extra = " (its segmentation exists)" if seg.is_file() else ""
        problems += [f"{p}: missing{extra}" for p in missing]
        return None
    case: dict[str, Any] = {keys.CASE_ID: sid, **{m: str(p.absolute()) for m, p in images.items()}}
    if training:
        if not seg.is_file():
            odd = sorted(p.name for p in folder.glob("*[Ss]egm*"))
            fix = f"; rename {odd[0]} to {seg.name}" if odd else ""
            problems.append(f"{seg}: missing (the segmentation of {sid}){fix}")
            return None
        case[keys.LABEL] = str(seg.absolute())
    return case


def _table(path: Path, column: str, problems: list[str]) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if column not in (reader.fieldnames or []):
            problems.append(f"{path}: no column {column!r}; it has {reader.fieldnames}")
            return {}
        return {row[column]: dict(row) for row in reader if row.get(column)}
