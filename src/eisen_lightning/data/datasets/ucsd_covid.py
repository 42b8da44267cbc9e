"""UCSD-AI4H COVID-CT: CT slices cut from papers, ``CT_COVID/`` (positive) and ``CT_NonCOVID/`` (negative).

Layout as distributed (``Images-processed/CT_COVID.zip`` and ``CT_NonCOVID.zip`` extracted)::

    CT_COVID/*.png|jpg        label 1
    CT_NonCOVID/*.png|jpg     label 0

Several slices of one patient (one figure of a paper) share a name up to a ``%<n>`` suffix
(``...-p6-52%0.png``, ``...-p6-52%1.png``); that stem is used as the patient for grouped splits.
"""

import re
from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.classification import ImageLayout, folder_images, problems_error

CLASS_DIRS = ("CT_NonCOVID", "CT_COVID")
SUFFIXES = (".png", ".jpg", ".jpeg")
_SUB_IMAGE = re.compile(r"%\d+$")
UCSD_COVID_HINT = (
    "Get COVID-CT from https://github.com/UCSD-AI4H/COVID-CT (Images-processed/CT_COVID.zip and "
    "CT_NonCOVID.zip) and extract both so that {root}/CT_COVID/ and {root}/CT_NonCOVID/ hold the images, "
    "or set data.download=true."
)


def has_ucsd_covid(root: Path) -> bool:
    """Whether either class folder is in ``root``."""
    return any((root / d).is_dir() for d in CLASS_DIRS)


def read_ucsd_covid(
    root: str | Path, positive_dir: str = "CT_COVID", negative_dir: str = "CT_NonCOVID"
) -> ImageLayout:
    """Parse the two class folders: ``{case_id, image, label (1 COVID, 0 not), patient_id}`` per image.

    Raises:
        LayoutError: Listing missing or empty folders and files of other formats.
    """
    root = Path(root)
    problems: list[str] = []
    cases: list[dict[str, Any]] = []
    for label, folder in ((1, positive_dir), (0, negative_dir)):
        for stem, path in sorted(folder_images(root / folder, SUFFIXES, problems).items()):
            cases.append(
                {
                    keys.CASE_ID: f"{folder}/{path.name}",
                    keys.IMAGE: str(path),
                    keys.LABEL: label,
                    keys.PATIENT_ID: f"{folder}/{_SUB_IMAGE.sub('', stem)}",
                }
            )
    problems_error(root, problems, UCSD_COVID_HINT.format(root=root))
    return ImageLayout(root, cases)
