"""RSNA Bone Age (Kaggle): hand radiographs, bone age in months, sex as an extra input.

Layout as distributed (note the doubled folder names)::

    boneage-training-dataset.csv                         id,boneage,male   (male: True/False)
    boneage-training-dataset/boneage-training-dataset/<id>.png
    boneage-test-dataset.csv                             Case ID,Sex       (Sex: M/F)
    boneage-test-dataset/boneage-test-dataset/<id>.png   (optional)
"""

from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.classification import ImageLayout, folder_images, problems_error, read_csv

TRAIN_CSV = "boneage-training-dataset.csv"
TEST_CSV = "boneage-test-dataset.csv"
TRAIN_DIR = "boneage-training-dataset/boneage-training-dataset"
TEST_DIR = "boneage-test-dataset/boneage-test-dataset"
#: Extra input key: 1.0 for male, 0.0 for female (Eisen's field name).
MALE = "male"
BONEAGE_HINT = (
    "Get the RSNA Bone Age data from https://www.kaggle.com/datasets/kmader/rsna-bone-age (a Kaggle "
    "login is needed) and extract it so that {root}/boneage-training-dataset.csv and "
    "{root}/boneage-training-dataset/boneage-training-dataset/*.png exist."
)


def has_boneage(root: Path) -> bool:
    """Whether the training CSV or image folder is in ``root``."""
    return (root / TRAIN_CSV).is_file() or (root / TRAIN_DIR).is_dir()


def read_boneage(root: str | Path) -> ImageLayout:
    """Parse a bone-age folder: ``{case_id, image, label (months, float), male (0/1)}`` per image.

    Raises:
        LayoutError: Listing every missing image, image without a CSV row, wrong suffix, bad value.
    """
    root = Path(root)
    problems: list[str] = []
    labelled = _training(root, problems)
    unlabelled = _test(root, problems) if (root / TEST_CSV).is_file() else []
    problems_error(root, problems, BONEAGE_HINT.format(root=root))
    return ImageLayout(root, labelled, unlabelled)


def _training(root: Path, problems: list[str]) -> list[dict[str, Any]]:
    csv_path = root / TRAIN_CSV
    rows = read_csv(csv_path, ("id", "boneage", "male"), problems)
    images = folder_images(root / TRAIN_DIR, (".png",), problems)
    cases, seen = [], set()
    for line, row in enumerate(rows, start=2):
        case_id = row["id"].strip()
        where = f"{csv_path} line {line} (id {case_id})"
        if case_id in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(case_id)
        months, male = _number(row["boneage"]), _flag(row["male"], ("True", "False"))
        if months is None or months < 0:
            problems.append(f"{where}: boneage must be a number of months >= 0, got {row['boneage']!r}")
        if male is None:
            problems.append(f"{where}: male must be True or False, got {row['male']!r}")
        if case_id not in images:
            problems.append(f"{where}: its image {root / TRAIN_DIR / (case_id + '.png')} is missing")
            continue
        if months is not None and male is not None:
            cases.append(_case(case_id, images[case_id], male, float(months)))
    if rows:
        problems += [
            f"{images[i]} has no row in {csv_path}; add one or remove it"
            for i in sorted(images.keys() - seen)
        ]
    return cases


def _test(root: Path, problems: list[str]) -> list[dict[str, Any]]:
    csv_path = root / TEST_CSV
    rows = read_csv(csv_path, ("Case ID", "Sex"), problems)
    if not (root / TEST_DIR).is_dir():
        return []
    images = folder_images(root / TEST_DIR, (".png",), problems)
    cases = []
    for line, row in enumerate(rows, start=2):
        case_id, male = row["Case ID"].strip(), _flag(row["Sex"], ("M", "F"))
        if male is None:
            problems.append(f"{csv_path} line {line}: Sex must be M or F, got {row['Sex']!r}")
        elif case_id not in images:
            problems.append(
                f"{csv_path} line {line}: its image {root / TEST_DIR / (case_id + '.png')} is missing"
            )
        else:
            cases.append(_case(case_id, images[case_id], male))
    return cases


def _case(case_id: str, image: Path, male: float, months: float | None = None) -> dict[str, Any]:
    case: dict[str, Any] = {keys.CASE_ID: case_id, keys.IMAGE: str(image), MALE: male}
    if months is not None:
        case[keys.LABEL] = months
    return case


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _flag(text: str, values: tuple[str, str]) -> float | None:
    """``values[0]`` -> 1.0, ``values[1]`` -> 0.0, anything else -> ``None``."""
    text = text.strip()
    return 1.0 if text == values[0] else 0.0 if text == values[1] else None
