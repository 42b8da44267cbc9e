"""EMIDEC (MICCAI 2020) delayed-enhancement cardiac MRI: ``Case_XXXX/Images/``, ``Case_XXXX/Contours/``.

Labels: 0 background, 1 LV cavity, 2 normal myocardium, 3 infarction, 4 no-reflow. A case folder
named with ``P`` (``Case_P042``) is pathological, with ``N`` (``Case_N069``) normal. The clinical
information of ``Case_P042`` is the text file ``Case P042.txt`` (a space, not an underscore) beside
the case folders; as in Eisen it is read as UTF-8 (undecodable bytes dropped), newlines removed.
"""

from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.datasets.decathlon import LayoutError
from eisen_lightning.data.datasets.json_list import pair_problem, require_folder

LABEL_NAMES = ("background", "cavity", "myocardium", "infarction", "no_reflow")
PATHOLOGICAL = "pathological"
METADATA = "metadata"
SUFFIX = ".nii.gz"


def read_emidec(root: str | Path, training: bool = True, hint: str = "") -> list[dict[str, Any]]:
    """Parse and check an EMIDEC folder into cases.

    Case fields: ``case_id`` (the folder name), ``image``, ``metadata`` (the clinical text),
    ``pathological`` (bool) and, for training, ``label``.

    Raises:
        LayoutError: Listing every problem: images or contours missing, contours without images,
            files not in ``.nii.gz``, clinical files missing.
    """
    root = Path(root)
    require_folder(root, hint)
    problems: list[str] = []
    cases = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and "." not in p.name):
        problems += _suffix_problems(folder)
        image = folder / "Images" / f"{folder.name}{SUFFIX}"
        label = folder / "Contours" / f"{folder.name}{SUFFIX}"
        problem = pair_problem(image, label, training, "contours", "training needs them")
        if problem:
            problems.append(problem)
            continue
        case = {
            keys.CASE_ID: folder.name,
            keys.IMAGE: str(image.absolute()),
            PATHOLOGICAL: "P" in folder.name,
        }
        if training:
            case[keys.LABEL] = str(label.absolute())
        clinical = root / f"{folder.name.replace('_', ' ')}.txt"
        if clinical.is_file():
            case[METADATA] = (
                clinical.read_text(encoding="utf-8", errors="ignore").replace("\n", "").replace("\r", "")
            )
        else:
            problems.append(f"{clinical}: missing (the clinical information of {folder.name})")
        cases.append(case)
    if not cases and not problems:
        problems.append("no Case_XXXX/ folder with Images/Case_XXXX.nii.gz")
    if problems:
        raise LayoutError(
            root, problems, hint or "Fix the files listed above or extract the EMIDEC archive again."
        )
    return cases


def _suffix_problems(folder: Path) -> list[str]:
    problems = []
    for sub in ("Images", "Contours"):
        for path in sorted((folder / sub).glob(f"{folder.name}.*")) if (folder / sub).is_dir() else []:
            if path.name != f"{folder.name}{SUFFIX}":
                problems.append(
                    f"{path}: wrong suffix; EMIDEC volumes are {folder.name}{SUFFIX} (gzip NIfTI)"
                )
    return problems
