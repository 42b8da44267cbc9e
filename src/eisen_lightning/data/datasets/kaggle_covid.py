"""Kaggle "COVID-19 CT scans" (andrewmvd): ``metadata.csv`` and four folders of ``.nii`` volumes.

The CSV has a header and four columns (``ct_scan``, ``lung_mask``, ``infection_mask``,
``lung_and_infection_mask``) holding Kaggle-notebook paths such as
``../input/covid19-ct-scans/ct_scans/coronacases_org_001.nii``: as in Eisen, only each basename is
used, joined to the folder of its column.
"""

import csv
from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.datasets.decathlon import NIFTI_SUFFIXES, LayoutError
from eisen_lightning.data.datasets.json_list import require_folder

#: CSV column -> (folder, Eisen's case field), by position.
COLUMNS = (
    ("ct_scans", keys.IMAGE),
    ("lung_mask", "lung_mask"),
    ("infection_mask", "infection_mask"),
    ("lung_and_infection_mask", "lung_infection_mask"),
)
#: data.target -> (case field of the label, class names).
TARGETS = {
    "lung": ("lung_mask", ("background", "left_lung", "right_lung")),
    "infection": ("infection_mask", ("background", "infection")),
    "lung_and_infection": ("lung_infection_mask", ("background", "left_lung", "right_lung", "infection")),
}


def read_kaggle_covid(
    root: str | Path, target: str = "infection", csv_file: str = "metadata.csv", hint: str = ""
) -> list[dict[str, Any]]:
    """Parse and check the data set into cases with ``image``, the three masks and ``label`` (``target``'s).

    Raises:
        LayoutError: Listing every problem: short rows, missing or wrongly suffixed files, scans
            in ``ct_scans/`` that the CSV does not list.
    """
    if target not in TARGETS:
        raise ValueError(f"data.target must be one of {sorted(TARGETS)}, got {target!r}")
    root = Path(root)
    require_folder(root, hint)
    table = root / csv_file
    if not table.is_file():
        raise LayoutError(root, [f"{csv_file} is missing"], hint)
    problems: list[str] = []
    cases = []
    with open(table, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]  # the header is skipped, columns are taken by position
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(COLUMNS):
            problems.append(f"{csv_file} line {number}: {len(row)} columns, expected {len(COLUMNS)}: {row}")
            continue
        case = {
            field: str((root / folder / Path(cell.strip()).name).absolute())
            for (folder, field), cell in zip(COLUMNS, row, strict=False)
        }
        problems += _row_problems(case, f"{csv_file} line {number}")
        case[keys.CASE_ID] = _stem(case[keys.IMAGE])
        case[keys.LABEL] = case[TARGETS[target][0]]
        cases.append(case)
    problems += _unlisted(root, cases, csv_file)
    if not cases and not problems:
        problems.append(f"{csv_file} lists no scans")
    if problems:
        raise LayoutError(
            root, problems, "Fix the files or rows listed above, or unzip the Kaggle archive again."
        )
    return cases


def _row_problems(case: dict[str, str], where: str) -> list[str]:
    problems = []
    for field, path in case.items():
        if not path.endswith(NIFTI_SUFFIXES):
            problems.append(f"{where}: {path} has a wrong suffix, expected .nii or .nii.gz ({field})")
        elif not Path(path).is_file():
            problems.append(f"{where}: {path} is missing ({field})")
    return problems


def _unlisted(root: Path, cases: list[dict[str, Any]], csv_file: str) -> list[str]:
    listed = {Path(c[keys.IMAGE]).name for c in cases}
    scans = root / "ct_scans"
    found = sorted(p for p in scans.iterdir() if p.is_file()) if scans.is_dir() else []
    return [f"{p}: a scan without masks (not listed in {csv_file})" for p in found if p.name not in listed]


def _stem(path: str) -> str:
    name = Path(path).name
    return next((name[: -len(s)] for s in NIFTI_SUFFIXES if name.endswith(s)), name)
