"""PANDA (Kaggle Prostate cANcer graDe Assessment): whole-slide biopsies, ISUP grade 0-5.

Layout as distributed::

    train.csv                              image_id,data_provider,isup_grade,gleason_score
    train_images/<image_id>.tiff           pyramidal tiled TIFF (3 levels: 1, 1/4, 1/16)
    train_label_masks/<image_id>_mask.tiff optional (missing for some slides in the real set)
    test.csv, test_images/                 optional (image_id,data_provider)

Fields follow Eisen: ``image``, ``mask`` (``""`` for a slide without one), ``provider``, ``isup``
and ``gleason``; ``label`` is the ISUP grade (0-5, the class). The real ``gleason_score`` mixes
``negative`` and ``0+0`` for benign slides; both are kept as written.
"""

from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.classification import ImageLayout, folder_images, problems_error, read_csv

ISUP_GRADES = 6
PANDA_HINT = (
    "Get PANDA from https://www.kaggle.com/c/prostate-cancer-grade-assessment/data (a Kaggle login is "
    "needed) and extract it so that {root}/train.csv and {root}/train_images/<image_id>.tiff exist."
)
COLUMNS = ("image_id", "data_provider", "isup_grade", "gleason_score")


def has_panda(root: Path) -> bool:
    """Whether ``train.csv`` or ``train_images/`` is in ``root``."""
    return (root / "train.csv").is_file() or (root / "train_images").is_dir()


def read_panda(root: str | Path) -> ImageLayout:
    """Parse a PANDA folder: one case per slide, ``label`` = ISUP grade.

    Raises:
        LayoutError: Listing CSV rows without a slide, slides or masks without a row, wrong
            suffixes, bad grades, an empty folder.
    """
    root = Path(root)
    problems: list[str] = []
    rows = read_csv(root / "train.csv", COLUMNS, problems)
    images = folder_images(root / "train_images", (".tiff",), problems)
    masks = _masks(root / "train_label_masks", problems)
    labelled = _training(root, rows, images, masks, problems)
    unlabelled = _test(root, problems) if (root / "test.csv").is_file() else []
    problems_error(root, problems, PANDA_HINT.format(root=root))
    return ImageLayout(root, labelled, unlabelled)


def _masks(folder: Path, problems: list[str]) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    found = folder_images(folder, ("_mask.tiff",), problems)
    return {stem.removesuffix("_mask"): path for stem, path in found.items()}


def _training(
    root: Path,
    rows: list[dict[str, str]],
    images: dict[str, Path],
    masks: dict[str, Path],
    problems: list[str],
) -> list[dict[str, Any]]:
    csv_path, cases, seen = root / "train.csv", [], set()
    for line, row in enumerate(rows, start=2):
        image_id, grade = row["image_id"].strip(), row["isup_grade"].strip()
        where = f"{csv_path} line {line} ({image_id})"
        if image_id in seen:
            problems.append(f"{where}: duplicate image_id")
        seen.add(image_id)
        if not grade.isdigit() or int(grade) >= ISUP_GRADES:
            problems.append(f"{where}: isup_grade must be 0 to 5, got {grade!r}")
            continue
        if image_id not in images:
            problems.append(f"{where}: its slide {root / 'train_images' / (image_id + '.tiff')} is missing")
            continue
        case = {
            keys.CASE_ID: image_id,
            keys.IMAGE: str(images[image_id]),
            keys.LABEL: int(grade),
            "provider": row["data_provider"].strip(),
            "isup": int(grade),
            "gleason": row["gleason_score"].strip(),
            "mask": str(masks.get(image_id, "")),
        }
        cases.append(case)
    if rows:
        problems += [f"{images[i]} has no row in {csv_path}" for i in sorted(images.keys() - seen)]
        problems += [
            f"{masks[i]} is a mask without its slide in train.csv" for i in sorted(masks.keys() - seen)
        ]
    return cases


def _test(root: Path, problems: list[str]) -> list[dict[str, Any]]:
    rows = read_csv(root / "test.csv", ("image_id", "data_provider"), problems)
    folder = root / "test_images"
    images = folder_images(folder, (".tiff",), problems) if folder.is_dir() else {}
    return [
        {keys.CASE_ID: r["image_id"], keys.IMAGE: str(images[r["image_id"]]), "provider": r["data_provider"]}
        for r in rows
        if r["image_id"] in images  # the real test images are hidden: the CSV lists more than the folder
    ]
